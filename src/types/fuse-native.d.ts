// The part of fuse-native's API that sdfs uses (the package ships no types).
declare module 'fuse-native' {
  export type Cb<T = void> = T extends void ? (err: number) => void : (err: number, value?: T) => void;

  export interface FuseStat {
    mode: number;
    uid: number;
    gid: number;
    size: number;
    dev?: number;
    nlink: number;
    ino: number;
    rdev?: number;
    blksize?: number;
    blocks?: number;
    atime: Date | number;
    mtime: Date | number;
    ctime: Date | number;
    /**
     * A real file's exact inode number, device and times (ns since the epoch), for sdfs's own
     * binding; dev 0 when the attributes are a view of the file (not one of its names).
     */
    exact?: { ino: bigint; dev: bigint; atimeNs: bigint; mtimeNs: bigint; ctimeNs: bigint };
    /** sdfs cannot say exactly when these attributes change (virtual folders, other devices' trees): the kernel keeps them only briefly. */
    shortLived?: boolean;
  }

  export interface StatFs {
    bsize: number;
    frsize: number;
    blocks: number;
    bfree: number;
    bavail: number;
    files: number;
    ffree: number;
    favail: number;
    fsid: number;
    flag: number;
    namemax: number;
  }

  export interface Ops {
    init?(cb: (err: number) => void): void;
    statfs?(path: string, cb: (err: number, st?: StatFs) => void): void;
    getattr?(path: string, cb: (err: number, st?: FuseStat) => void): void;
    fgetattr?(path: string, fd: number, cb: (err: number, st?: FuseStat) => void): void;
    access?(path: string, mode: number, cb: (err: number) => void): void;
    open?(path: string, flags: number, cb: (err: number, fd?: number) => void): void;
    opendir?(path: string, flags: number, cb: (err: number, fd?: number) => void): void;
    create?(path: string, mode: number, cb: (err: number, fd?: number) => void): void;
    utimens?(path: string, atime: number, mtime: number, cb: (err: number) => void): void;
    release?(path: string, fd: number, cb: (err: number) => void): void;
    releasedir?(path: string, fd: number, cb: (err: number) => void): void;
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void;
    write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void;
    readdir?(path: string, cb: (err: number, names?: string[]) => void): void;
    setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: (err: number) => void): void;
    getxattr?(path: string, name: string, position: number, cb: (err: number, value?: Buffer | null) => void): void;
    listxattr?(path: string, cb: (err: number, list?: string[]) => void): void;
    removexattr?(path: string, name: string, cb: (err: number) => void): void;
    flush?(path: string, fd: number, cb: (err: number) => void): void;
    fsync?(path: string, datasync: boolean, fd: number, cb: (err: number) => void): void;
    fsyncdir?(path: string, datasync: boolean, fd: number, cb: (err: number) => void): void;
    truncate?(path: string, size: number, cb: (err: number) => void): void;
    ftruncate?(path: string, fd: number, size: number, cb: (err: number) => void): void;
    readlink?(path: string, cb: (err: number, target?: string) => void): void;
    chown?(path: string, uid: number, gid: number, cb: (err: number) => void): void;
    chmod?(path: string, mode: number, cb: (err: number) => void): void;
    mknod?(path: string, mode: number, dev: number, cb: (err: number) => void): void;
    unlink?(path: string, cb: (err: number) => void): void;
    rename?(src: string, dest: string, cb: (err: number) => void): void;
    link?(src: string, dest: string, cb: (err: number) => void): void;
    symlink?(target: string, path: string, cb: (err: number) => void): void;
    mkdir?(path: string, mode: number, cb: (err: number) => void): void;
    rmdir?(path: string, cb: (err: number) => void): void;
  }

  export interface FuseOptions {
    force?: boolean;
    mkdir?: boolean;
    debug?: boolean;
    timeout?: number | false;
    maxRead?: number;
    fsname?: string;
    subtype?: string;
    autoCache?: boolean;
    kernelCache?: boolean;
    entryTimeout?: number;
    attrTimeout?: number;
    acAttrTimeout?: number;
    allowOther?: boolean;
    defaultPermissions?: boolean;
    [key: string]: unknown;
  }

  export default class Fuse {
    constructor(mnt: string, ops: Ops, opts?: FuseOptions);
    readonly mnt: string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    protected _fuseOptions(): string;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    static ENOENT: number;
  }
}
