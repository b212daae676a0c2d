// System calls as another user, for the POSIX suite: a small Python program runs a list
// of calls under `setpriv` (that uid and gid, no supplementary groups) and answers, for
// each, its value or the errno name it failed with. Python reaches what Node does not:
// mkfifo, mknod, sockets, renameat2, posix_fallocate, copy_file_range, SEEK_DATA and
// SEEK_HOLE, utimensat to the nanosecond. It runs from /tmp with /usr/bin/python3 in
// isolated mode: nothing of the repository (which may sit in a mode-700 home) is needed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

export interface User {
  uid: number;
  gid: number;
}

export const ROOT: User = { uid: 0, gid: 0 };

/** What stat answers, times in ns and the inode number as decimal strings (exact). */
export interface PyStat {
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  blocks: number;
  rdev: number;
  ino: string;
  atime: string;
  mtime: string;
  ctime: string;
}

export type Op =
  | { op: 'umask'; mask: number }
  | { op: 'create'; path: string; mode: number; data?: string }
  | { op: 'open'; path: string; how: 'r' | 'w' | 'rw' }
  | { op: 'read'; path: string }
  | { op: 'mkdir'; path: string; mode: number }
  | { op: 'symlink'; path: string; target: string }
  | { op: 'mkfifo'; path: string; mode: number }
  | { op: 'mknod'; path: string; mode: number; major?: number; minor?: number }
  /** Binds a unix socket there; with talk, also connects to it and sends a line back and forth. */
  | { op: 'socket'; path: string; talk?: boolean }
  | { op: 'lstat' | 'stat'; path: string }
  /** A folder's entries as readdir gives them: [name, d_ino as a decimal string]. */
  | { op: 'scandir'; path: string }
  /**
   * A folder's entries as the kernel gives them, with nothing stat'ed (the getdents64 call,
   * through a 4 KiB buffer): [name, d_ino as a decimal string, d_type (0: unknown)].
   */
  | { op: 'getdents'; path: string }
  | { op: 'unlink' | 'rmdir'; path: string }
  | { op: 'rename' | 'link'; path: string; to: string }
  | { op: 'renameat2'; path: string; to: string; flags: number }
  | { op: 'chmod'; path: string; mode: number }
  /** -1 leaves the id as it is. */
  | { op: 'chown'; path: string; uid: number; gid: number }
  /** Exact times in ns (decimal strings); without them, both become now (UTIME_NOW). */
  | { op: 'utime'; path: string; atime?: string; mtime?: string }
  | { op: 'fallocate'; path: string; offset: number; length: number }
  /** copy_file_range of `length` bytes (all of `path` when left out); answers the bytes copied. */
  | { op: 'copy'; path: string; to: string; length?: number; from?: number; at?: number }
  | { op: 'seek'; path: string; offset: number; whence: 'data' | 'hole' }
  /** A writer and a reader through a fifo; answers what the reader got. */
  | { op: 'fifo'; path: string; data: string }
  /** Writes to a device node, then reads from it: answers [bytes written, bytes read]. */
  | { op: 'device'; path: string; data: string };

export type Result = { ok: true; value?: unknown } | { ok: false; code: string };

const PROGRAM = String.raw`
import ctypes, errno, json, os, socket, struct, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.getdents64.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
libc.getdents64.restype = ctypes.c_ssize_t
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
AT_FDCWD = -100

def stat_of(p, follow):
    s = os.stat(p, follow_symlinks=follow)
    return {'mode': s.st_mode, 'uid': s.st_uid, 'gid': s.st_gid, 'nlink': s.st_nlink, 'size': s.st_size,
            'blocks': s.st_blocks, 'rdev': s.st_rdev, 'ino': str(s.st_ino),
            'atime': str(s.st_atime_ns), 'mtime': str(s.st_mtime_ns), 'ctime': str(s.st_ctime_ns)}

def fifo(p, data):
    got = {}
    def reader():
        with open(p, 'rb') as f:
            got['v'] = f.read()
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    with open(p, 'wb') as f:
        f.write(data.encode())
    th.join(5)
    return got['v'].decode() if 'v' in got else None

def unix_socket(p, talk):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(p)
        if not talk:
            return None
        s.listen(1)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(5)
        s.settimeout(5)
        try:
            c.connect(p)
            a, _ = s.accept()
            c.sendall(b'ping')
            back = a.recv(16)
            a.sendall(back.upper())
            answer = c.recv(16).decode()
            a.close()
            return answer
        finally:
            c.close()
    finally:
        s.close()

def copy(o):
    src = os.open(o['path'], os.O_RDONLY)
    dst = os.open(o['to'], os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        left = o['length'] if 'length' in o else os.fstat(src).st_size
        src_at, dst_at, done = o.get('from', 0), o.get('at', 0), 0
        while left > 0:
            n = os.copy_file_range(src, dst, left, src_at + done, dst_at + done)
            if n == 0:
                break
            done += n
            left -= n
        return done
    finally:
        os.close(src)
        os.close(dst)

def getdents(p):
    fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY)
    buf = ctypes.create_string_buffer(4096)
    out = []
    try:
        while True:
            n = libc.getdents64(fd, buf, len(buf))
            if n < 0:
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e))
            if n == 0:
                return sorted(e for e in out if e[0] not in ('.', '..'))
            raw, at = buf.raw[:n], 0
            while at < n:
                ino, _, reclen, typ = struct.unpack_from('<QqHB', raw, at)
                out.append([raw[at + 19:at + reclen].split(b'\0', 1)[0].decode(), str(ino), typ])
                at += reclen
    finally:
        os.close(fd)

def one(o):
    k, p = o['op'], o.get('path')
    if k == 'umask':
        os.umask(o['mask'])
    elif k == 'create':
        fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, o['mode'])
        try:
            if 'data' in o:
                os.write(fd, o['data'].encode())
        finally:
            os.close(fd)
    elif k == 'open':
        os.close(os.open(p, {'r': os.O_RDONLY, 'w': os.O_WRONLY, 'rw': os.O_RDWR}[o['how']]))
    elif k == 'read':
        with open(p, 'rb') as f:
            return f.read().decode('latin-1')
    elif k == 'mkdir':
        os.mkdir(p, o['mode'])
    elif k == 'symlink':
        os.symlink(o['target'], p)
    elif k == 'mkfifo':
        os.mkfifo(p, o['mode'])
    elif k == 'mknod':
        os.mknod(p, o['mode'], os.makedev(o.get('major', 0), o.get('minor', 0)))
    elif k == 'socket':
        return unix_socket(p, o.get('talk', False))
    elif k in ('lstat', 'stat'):
        return stat_of(p, k == 'stat')
    elif k == 'scandir':
        with os.scandir(p) as it:
            return sorted([e.name, str(e.inode())] for e in it)
    elif k == 'getdents':
        return getdents(p)
    elif k == 'unlink':
        os.unlink(p)
    elif k == 'rmdir':
        os.rmdir(p)
    elif k == 'rename':
        os.rename(p, o['to'])
    elif k == 'link':
        os.link(p, o['to'])
    elif k == 'renameat2':
        if libc.renameat2(AT_FDCWD, p.encode(), AT_FDCWD, o['to'].encode(), o['flags']) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
    elif k == 'chmod':
        os.chmod(p, o['mode'])
    elif k == 'chown':
        os.chown(p, o['uid'], o['gid'], follow_symlinks=False)
    elif k == 'utime':
        if 'atime' in o:
            os.utime(p, ns=(int(o['atime']), int(o['mtime'])))
        else:
            os.utime(p)
    elif k == 'fallocate':
        fd = os.open(p, os.O_WRONLY)
        try:
            os.posix_fallocate(fd, o['offset'], o['length'])
        finally:
            os.close(fd)
    elif k == 'copy':
        return copy(o)
    elif k == 'seek':
        fd = os.open(p, os.O_RDONLY)
        try:
            return os.lseek(fd, o['offset'], os.SEEK_DATA if o['whence'] == 'data' else os.SEEK_HOLE)
        finally:
            os.close(fd)
    elif k == 'fifo':
        return fifo(p, o['data'])
    elif k == 'device':
        fd = os.open(p, os.O_WRONLY)
        try:
            n = os.write(fd, o['data'].encode())
        finally:
            os.close(fd)
        fd = os.open(p, os.O_RDONLY)
        try:
            return [n, len(os.read(fd, 4096))]
        finally:
            os.close(fd)
    else:
        raise ValueError('unknown op ' + k)
    return None

out = []
for o in json.loads(sys.argv[1]):
    try:
        out.append({'ok': True, 'value': one(o)})
    except OSError as e:
        out.append({'ok': False, 'code': errno.errorcode.get(e.errno, str(e.errno))})
print(json.dumps(out))
`;

const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const asRoot = process.getuid?.() === 0;

/**
 * Runs the calls in order as `user` (as root: through setpriv; else only as oneself) and
 * answers one result per call. A failing call does not stop the ones after it.
 */
export function runAs(user: User, ops: Op[]): Result[] {
  const python = [PYTHON, '-I', '-c', PROGRAM, JSON.stringify(ops)];
  const [cmd, ...args] = asRoot ? ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', ...python] : python;
  if (!asRoot && user.uid !== process.getuid?.()) throw new Error(`running as uid ${user.uid} needs root`);
  const out = execFileSync(cmd!, args, { cwd: '/tmp', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' }, encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
  const results = JSON.parse(out) as Result[];
  if (results.length !== ops.length) throw new Error(`${results.length} answers to ${ops.length} calls`);
  return results;
}

/** One call as `user`. */
export function callAs(user: User, op: Op): Result {
  return runAs(user, [op])[0]!;
}

/** What a result says, for one assertion: 'ok' or its errno name. */
export function outcome(r: Result): string {
  return r.ok ? 'ok' : r.code;
}

/** The outcome of each result, for comparing a whole run at once. */
export function outcomes(rs: Result[]): string[] {
  return rs.map(outcome);
}

/** The value of a call that must have worked (throws with the errno otherwise). */
export function valueOf<T>(r: Result, what: string): T {
  if (!r.ok) throw new Error(`${what} failed: ${r.code}`);
  return r.value as T;
}
