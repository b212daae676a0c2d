// A peer's folder listed through the mount comes with what a walk needs of each name, from
// the replicated index: its type (`ls -R`, `find`) and its attributes (`ls -l`, `du`,
// `rsync`), so such a walk asks the mount nothing per name. Two `sd mount`s on a local DHT
// testnet; the reader logs every request JS answers (SD_LOG=debug), which the test counts.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { waitFor } from './helpers.js';
import { pairedMounts } from './remote-helpers.js';

const run = promisify(execFile);
const FILES = 200;

/**
 * Lists a folder with getdents64 (nothing stat'ed) and then lstat's every name, in one
 * process, as `ls -l` does: [name, d_type, d_ino, st_mode, st_ino, st_size] each.
 */
const LIST_THEN_LSTAT = String.raw`
import ctypes, json, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.getdents64.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
libc.getdents64.restype = ctypes.c_ssize_t
folder = sys.argv[1]
fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
buf = ctypes.create_string_buffer(4096)
listed = []
while True:
    n = libc.getdents64(fd, buf, len(buf))
    if n <= 0:
        break
    raw, at = buf.raw[:n], 0
    while at < n:
        ino, _, reclen, typ = struct.unpack_from('<QqHB', raw, at)
        name = raw[at + 19:at + reclen].split(b'\0', 1)[0].decode()
        if name not in ('.', '..'):
            listed.append((name, typ, ino))
        at += reclen
os.close(fd)
out = []
for name, typ, ino in listed:
    st = os.lstat(os.path.join(folder, name))
    out.append([name, typ, str(ino), st.st_mode, str(st.st_ino), st.st_size])
print(json.dumps(out))
`;

t.test("a peer's folder lists each name with its type and attributes: ls -l looks none up", async (t) => {
  const { a, b } = await pairedMounts(t,
    {
      name: 'alpha',
      location: 'media',
      files: (root) => {
        fs.writeFileSync(path.join(root, 'hi.txt'), 'hello from alpha\n');
        const many = path.join(root, 'many');
        fs.mkdirSync(path.join(many, 'sub'), { recursive: true });
        for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(many, `f${i}.txt`), 'x'.repeat(i));
        fs.symlinkSync('f1.txt', path.join(many, 'link'));
      },
      mode: 'shallow',
    },
    { name: 'beta', location: 'notes', files: { 'note.txt': 'beta note\n' }, env: { SD_LOG: 'debug' } },
    { file: 'hi.txt', text: 'hello from alpha\n' });
  const folder = path.join(b.mount.mountpoint, 'alpha/media/many');
  t.ok(await waitFor(() => fs.existsSync(folder) && fs.readdirSync(folder).length === FILES + 2, 30_000, 100), "alpha's folder is in beta's mirror");
  const lookedUp = () => b.mount.stderr().split('\n').filter((l) => l.includes('"op":"getattr"') && l.includes('"path":"/alpha/media/many/')).length;

  const asked = lookedUp();
  const { stdout } = await run('python3', ['-I', '-c', LIST_THEN_LSTAT, folder], { timeout: 20_000 });
  const seen = JSON.parse(stdout) as Array<[string, number, string, number, string, number]>;
  t.equal(seen.length, FILES + 2, 'every name is listed');
  t.same(seen.filter(([, type, , mode]) => type !== mode >> 12), [], "each name's d_type is the type lstat gives");
  t.same(seen.filter(([, , dIno, , stIno]) => dIno !== stIno), [], "each name's d_ino is the inode number lstat gives");
  const onAlpha = (name: string) => fs.lstatSync(path.join(a.root, 'many', name));
  t.same(seen.filter(([name, , , , , size]) => !onAlpha(name).isDirectory() && size !== onAlpha(name).size), [], "each file's size is its size on alpha's disk");
  t.equal(lookedUp() - asked, 0, 'the lstat of each listed name is answered from the listing: none is looked up in JS');
});
