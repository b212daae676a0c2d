/*
 * A minimal multithreaded passthrough on libfuse2's high-level API (fuse.h, v2.6
 * interface): one of the C references scripts/bench/mount.ts measures sdfs's mount
 * against, the classic path-based design. Every request is passed to the real
 * file system below SOURCE with the plain system call; reads and writes use pread and
 * pwrite on the real descriptor kept in fi->fh. Nothing is cached here: what caching there
 * is, is the kernel's, with libfuse2's default 1 s attribute and entry timeouts.
 *
 * Not implemented: xattrs and access (ENOSYS, which the kernel remembers for the mount;
 * the bench mounts with default_permissions), links and symlinks, locks.
 *
 * Build: gcc -O2 -Wall passthrough2.c $(pkg-config fuse --cflags --libs) -o passthrough2
 * Run:   passthrough2 SOURCE MOUNTPOINT [-f] [-o use_ino,big_writes,...]
 */
#define FUSE_USE_VERSION 26
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* The source folder, opened once; every path is resolved relative to it with the *at calls. */
static int source_fd = -1;

/* fuse paths start with '/'; the *at calls want them relative to source_fd ("." for the root). */
static const char *rel(const char *path)
{
	return path[1] == '\0' ? "." : path + 1;
}

/* libfuse wants -errno on failure, 0 (or a count) on success. */
static int check(int res)
{
	return res == -1 ? -errno : res;
}

static int pt_getattr(const char *path, struct stat *st)
{
	return check(fstatat(source_fd, rel(path), st, AT_SYMLINK_NOFOLLOW));
}

static int pt_fgetattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)path;
	return check(fstat(fi->fh, st));
}

/* The whole folder in one call (offset 0 to the filler); with use_ino the numbers are the real ones. */
static int pt_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t offset, struct fuse_file_info *fi)
{
	(void)offset;
	(void)fi;
	int fd = openat(source_fd, rel(path), O_RDONLY | O_DIRECTORY);
	if (fd == -1)
		return -errno;
	DIR *dir = fdopendir(fd);
	if (dir == NULL) {
		int err = errno;
		close(fd);
		return -err;
	}
	struct dirent *e;
	while ((e = readdir(dir)) != NULL) {
		struct stat st = { .st_ino = e->d_ino, .st_mode = (mode_t)DTTOIF(e->d_type) };
		if (fill(buf, e->d_name, &st, 0))
			break;
	}
	closedir(dir);
	return 0;
}

static int pt_mkdir(const char *path, mode_t mode)
{
	return check(mkdirat(source_fd, rel(path), mode));
}

static int pt_unlink(const char *path)
{
	return check(unlinkat(source_fd, rel(path), 0));
}

static int pt_rmdir(const char *path)
{
	return check(unlinkat(source_fd, rel(path), AT_REMOVEDIR));
}

static int pt_rename(const char *from, const char *to)
{
	return check(renameat(source_fd, rel(from), source_fd, rel(to)));
}

static int pt_chmod(const char *path, mode_t mode)
{
	return check(fchmodat(source_fd, rel(path), mode, 0));
}

static int pt_chown(const char *path, uid_t uid, gid_t gid)
{
	return check(fchownat(source_fd, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW));
}

/* There is no truncateat: open the file, truncate the descriptor. */
static int pt_truncate(const char *path, off_t size)
{
	int fd = openat(source_fd, rel(path), O_WRONLY);
	if (fd == -1)
		return -errno;
	int res = check(ftruncate(fd, size));
	close(fd);
	return res;
}

static int pt_ftruncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	(void)path;
	return check(ftruncate(fi->fh, size));
}

static int pt_utimens(const char *path, const struct timespec tv[2])
{
	return check(utimensat(source_fd, rel(path), tv, AT_SYMLINK_NOFOLLOW));
}

static int pt_open(const char *path, struct fuse_file_info *fi)
{
	int fd = openat(source_fd, rel(path), fi->flags);
	if (fd == -1)
		return -errno;
	fi->fh = fd;
	return 0;
}

static int pt_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int fd = openat(source_fd, rel(path), fi->flags | O_CREAT, mode);
	if (fd == -1)
		return -errno;
	fi->fh = fd;
	return 0;
}

static int pt_read(const char *path, char *buf, size_t size, off_t offset, struct fuse_file_info *fi)
{
	(void)path;
	return check(pread(fi->fh, buf, size, offset));
}

static int pt_write(const char *path, const char *buf, size_t size, off_t offset, struct fuse_file_info *fi)
{
	(void)path;
	return check(pwrite(fi->fh, buf, size, offset));
}

static int pt_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	return check(fstatvfs(source_fd, st));
}

static int pt_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	close(fi->fh);
	return 0;
}

static int pt_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	return check(datasync ? fdatasync(fi->fh) : fsync(fi->fh));
}

static struct fuse_operations ops = {
	.getattr = pt_getattr,
	.fgetattr = pt_fgetattr,
	.readdir = pt_readdir,
	.mkdir = pt_mkdir,
	.unlink = pt_unlink,
	.rmdir = pt_rmdir,
	.rename = pt_rename,
	.chmod = pt_chmod,
	.chown = pt_chown,
	.truncate = pt_truncate,
	.ftruncate = pt_ftruncate,
	.utimens = pt_utimens,
	.open = pt_open,
	.create = pt_create,
	.read = pt_read,
	.write = pt_write,
	.statfs = pt_statfs,
	.release = pt_release,
	.fsync = pt_fsync,
};

int main(int argc, char *argv[])
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s SOURCE MOUNTPOINT [fuse options]\n", argv[0]);
		return 2;
	}
	source_fd = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (source_fd == -1) {
		perror(argv[1]);
		return 1;
	}
	/* Modes come from the caller as they are (the kernel applied its umask already). */
	umask(0);
	/* SOURCE is ours; the rest (mount point, -f, -o ...) is fuse_main's. Without -s it is multithreaded. */
	argv[1] = argv[0];
	return fuse_main(argc - 1, argv + 1, &ops, NULL);
}
