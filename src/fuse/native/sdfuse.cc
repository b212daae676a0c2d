// sdfs's own FUSE binding, on libfuse3's low-level API.
//
// The native side owns the session: the /dev/fuse connection, libfuse's worker threads,
// the table of node ids the kernel holds (id -> parent + name, and lookup counts), and
// the fast paths that need no namespace decision: reads and writes on a handle whose
// real file descriptor JS gave at open, listings served from the names JS gave at
// opendir, forget, flush, releasedir. Every other request becomes a call of the JS
// `dispatch` function (through a thread-safe function, never blocking a FUSE thread)
// with the request's path(s); JS answers by calling one of the reply functions below
// with the request's id, from its own thread, whenever it is ready.
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <malloc.h>
#include <sys/uio.h>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

// ---------------------------------------------------------------------------------
// Requests handed to JS. The numbers are the glue's (src/fuse/lowlevel.ts, Op).

enum Op {
  OP_LOOKUP = 1, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD, OP_MKDIR, OP_UNLINK, OP_RMDIR,
  OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN, OP_READ, OP_WRITE, OP_RELEASE, OP_FSYNC, OP_READDIR,
  OP_STATFS, OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR, OP_REMOVEXATTR, OP_ACCESS, OP_CREATE,
  OP_LSEEK, OP_CREATED, OP_CLOSED,
};

struct Session;
struct DirHandle;

struct Req {
  fuse_req_t req = nullptr;
  int op = 0;
  uint64_t id = 0;
  uint64_t ino = 0;       // the node (or the parent for name requests)
  uint64_t ino2 = 0;      // rename's new parent, link's new parent
  std::string name;       // the name under ino, for name requests
  std::string name2;      // rename's and link's new name
  bool hasPath = false;
  std::string path;       // the node's path in the mount, "/" for the root
  bool hasPath2 = false;
  std::string path2;      // rename's destination, link's new path, symlink's target
  double a = 0, b = 0, c = 0;  // op arguments (mode, flags, size, offset, ...)
  int64_t fh = -1;        // the JS handle, -1 without one
  bool written = false;   // release/fsync: data was written natively through the handle
  double setattr[10] = {0};
  std::vector<char> data; // write data, xattr value
  uint32_t uid = 0, gid = 0, umask = 0, pid = 0;
  // A JS-served read: the buffer JS fills (kept alive until the reply).
  napi_ref bufRef = nullptr;
  char *bufData = nullptr;
  DirHandle *dir = nullptr;
  bool notice = false;  // tells JS what the native side did; nothing to answer  // readdir: the handle whose names JS gives
};

/**
 * Another device's file as far as its blocks are in the disk cache: the cache's data file
 * (blocks in place, at index x span) and which blocks JS verified there. Reads that fall
 * on verified blocks are served here, from the data file, without JS; the rest go to JS,
 * which fetches them. JS unmarks a block (taking the lock exclusively) before it frees
 * its bytes, so a read served here never sees a block being evicted.
 *
 * A block JS's background fetch is bringing into the cache is marked coming: a read of it
 * waits here for it (for at most BLOCK_WAIT, and on at most BLOCK_WAITERS threads at
 * once) rather than go to JS, which would wait for the same fetch and then answer the read
 * on its own thread, in a buffer of its heap. Measured on a 512 MiB first read, most of
 * the reads came while their block was on its way.
 */
enum BlockState : uint8_t { BLOCK_ABSENT = 0, BLOCK_READY = 1, BLOCK_COMING = 2 };
const auto BLOCK_WAIT = std::chrono::seconds(1);
const int BLOCK_WAITERS = 8;  // of the session's 16 threads: the rest serve everything else
std::atomic<int> blockWaiters{0};

struct Backing {
  int fd = -1;       // a duplicate of the cache's own descriptor: the same file whatever happens to its name
  uint64_t size = 0;  // the remote file's size
  uint64_t span = 0;
  std::shared_mutex mu;
  std::condition_variable_any changed;  // a block became ready, or will not come
  std::vector<uint8_t> ready;           // BlockState per block
  ~Backing() {
    if (fd >= 0) close(fd);
  }
};

/** Backings by the id JS knows them by (backing, markBacking, expectBacking, unbacking). */
std::mutex backingsMu;
std::unordered_map<uint32_t, std::shared_ptr<Backing>> backings;
uint32_t nextBacking = 1;

std::shared_ptr<Backing> backingOf(uint32_t id) {
  std::lock_guard<std::mutex> lock(backingsMu);
  auto it = backings.find(id);
  return it == backings.end() ? nullptr : it->second;
}

/** A file handle: the JS handle, and the real descriptor when reads and writes are native. */
struct FileHandle {
  int64_t jsfh;
  int fd;  // -1: every read and write goes to JS (or to the backing's cached blocks)
  std::atomic<bool> written{false};
  std::shared_ptr<Backing> backing;  // another device's file: its cached blocks
};

/** A name's attributes as JS gave them with its folder's listing (st_mode 0: none). */
struct ListedAttr {
  struct stat st;
  uint64_t dev;
  bool shortLived;
};

/** An open directory: the names JS listed at opendir, served by offset. */
struct DirHandle {
  bool loaded = false;            // names asked of JS at the first readdir
  std::vector<std::string> names;
  std::vector<uint8_t> types;     // each name's DT_* (DT_UNKNOWN: the kernel's reader stats it)
  std::vector<ListedAttr> attrs;  // each name's attributes (another device's tree); empty: none at hand
  std::string realDir;            // a local folder's real path: readdirplus stats its names here
};

/** One name of a node: the folder node it is in, and the name there. */
struct Name {
  struct Node *parent;
  std::string name;
};

// One per inode the kernel holds (a million after an ls -R of a million files): what only
// some nodes need (a folder's names, a hard link's other names, a real root) is allocated
// when they need it, about 90 bytes less for a plain file. With its name in its folder's
// map, a kernel inode costs about 350 bytes (bench/scale: 348 MB after an ls -R of 1M).
struct Node {
  uint64_t id;
  Node *parent = nullptr;  // its first name (the one its path is built from); null for the root and unlinked nodes
  std::string name;
  std::unique_ptr<std::vector<Name>> aliases;  // its other names: hard links of one real file share one node
  uint64_t nlookup = 0;
  uint64_t children = 0;   // names of other nodes inside this one
  std::unique_ptr<std::unordered_map<std::string, Node *>> kids;  // made with its first name inside
  // The real file's identity (device, inode) when it has several names; 0 otherwise.
  uint64_t dev = 0, rino = 0;
  // What the kernel was last told of it: inode number and ctime (ns), to see what changed on disk.
  uint64_t ino = 0;
  int64_t ctime = -1;
  // What the page cache holds (for keep_cache at open): mtime in ns and size at the last open.
  int64_t cacheMtime = -1;
  int64_t cacheSize = -1;
  uint32_t touched = 0;    // when the kernel last looked it up (seconds of the session's clock): the budget prunes the oldest
  bool shortLived = true;  // attributes kept briefly (not invalidated exactly): its listing is not cached either
  // A folder JS said is a plain local folder: its names are the disk's, looked up here.
  // Its real path is realRoot when set (a location's root, or where JS placed it), else
  // its parent's real path and its name (so a rename inside a location keeps it right).
  bool local = false;
  std::unique_ptr<std::string> realRoot;

  bool hasAliases() const { return aliases && !aliases->empty(); }
};

struct InodeKey {
  uint64_t dev, ino;
  bool operator==(const InodeKey &o) const { return dev == o.dev && ino == o.ino; }
};
struct InodeKeyHash {
  size_t operator()(const InodeKey &k) const { return std::hash<uint64_t>()(k.ino * 31 + k.dev); }
};

/** A cache invalidation to send: a name (parent path + name), or a folder to compare with the disk. */
struct InvalJob {
  bool folder;
  std::string mountPath;  // the parent folder (name jobs) or the folder (folder jobs), in the mount
  std::string nameOrReal; // the name, or the folder's real path
};

struct Session {
  int index = -1;
  fuse_session *se = nullptr;
  napi_threadsafe_function tsfn = nullptr;
  pthread_t loop;
  std::atomic<bool> closed{false};
  double entryTimeout = 1, attrTimeout = 1;
  double shortTimeout = 1;  // for what sdfs cannot invalidate exactly (virtual folders, other devices' trees)

  // Invalidations are sent from their own thread: the kernel takes a folder's lock for
  // them, which a lookup waiting for the JS thread may hold.
  std::thread notifier;
  std::mutex invalMu;
  std::condition_variable invalCv;
  std::deque<InvalJob> invalQueue;
  std::atomic<int> invalPending{0};
  bool notifierStop = false;
  std::atomic<uint64_t> invalSent{0}, invalFailed{0};
  int maxThreads = 10;
  bool writeback = false;
  bool readOnly = false;  // every change answers EROFS (sd mount --read-only): nothing is created here

  // The kernel-inode budget: past nodeBudget nodes (0: none), the notifier asks the kernel
  // to forget the least recently looked-up ones it does not use (FUSE_NOTIFY_PRUNE).
  uint64_t nodeBudget = 0;
  bool pruneWanted = false;  // under invalMu
  std::atomic<bool> pruneUnsupported{false};
  std::atomic<uint64_t> pruneAsked{0};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  std::mutex nodesMu;
  std::unordered_map<uint64_t, Node *> nodes;
  std::unordered_map<InodeKey, Node *, InodeKeyHash> byInode;  // nodes of real files with several names
  uint64_t nextId = 2;

  std::mutex reqsMu;
  std::unordered_map<uint64_t, Req *> pending;
  std::atomic<uint64_t> nextReq{1};
};

std::vector<Session *> sessions;
std::mutex sessionsMu;

// ---------------------------------------------------------------------------------
// The node table.

Node *nodeOf(Session *s, uint64_t id) {
  auto it = s->nodes.find(id);
  return it == s->nodes.end() ? nullptr : it->second;
}

bool pathOf(Session *s, uint64_t id, std::string &out) {
  Node *n = nodeOf(s, id);
  if (!n) return false;
  if (n->id == FUSE_ROOT_ID) {
    out = "/";
    return true;
  }
  std::vector<const std::string *> parts;
  while (n && n->id != FUSE_ROOT_ID) {
    if (!n->parent) return false;  // unlinked: no path any more
    parts.push_back(&n->name);
    n = n->parent;
  }
  out.clear();
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    out += '/';
    out += **it;
  }
  return true;
}

int64_t ctimeNs(const struct stat &st) { return (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec; }
int64_t mtimeNs(const struct stat &st) { return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec; }

/**
 * Notes what the page cache of a node holds after an open or a create (its mtime and size),
 * and says whether that is what it held before (so the kernel may keep it).
 */
bool noteCached(Node *n, const struct stat &st) {
  bool same = n->cacheMtime == mtimeNs(st) && n->cacheSize == st.st_size;
  n->cacheMtime = mtimeNs(st);
  n->cacheSize = st.st_size;
  return same;
}

/** Notes the attributes the kernel is given for a node. */
void told(Node *n, const struct stat &st, bool shortLived) {
  n->ino = (uint64_t)st.st_ino;
  n->ctime = ctimeNs(st);
  n->shortLived = shortLived;
}

/** Takes one name of a node out of its folder (the node itself stays while anything refers to it). */
void dropName(Session *s, Node *n, Node *parent, const std::string &name) {
  if (parent->kids) {
    auto it = parent->kids->find(name);
    if (it != parent->kids->end() && it->second == n) parent->kids->erase(it);
  }
  parent->children--;
  if (n->parent == parent && n->name == name) {
    if (!n->hasAliases()) {
      n->parent = nullptr;
    } else {
      n->parent = n->aliases->back().parent;
      n->name = n->aliases->back().name;
      n->aliases->pop_back();
    }
    return;
  }
  if (!n->aliases) return;
  for (auto a = n->aliases->begin(); a != n->aliases->end(); ++a) {
    if (a->parent == parent && a->name == name) {
      n->aliases->erase(a);
      return;
    }
  }
}

/** Gives a node a name in a folder: its first one, or another (a hard link). */
void addName(Node *n, Node *parent, const std::string &name) {
  if (!parent->kids) parent->kids = std::make_unique<std::unordered_map<std::string, Node *>>();
  (*parent->kids)[name] = n;
  parent->children++;
  if (!n->parent) {
    n->parent = parent;
    n->name = name;
  } else {
    if (!n->aliases) n->aliases = std::make_unique<std::vector<Name>>();
    n->aliases->push_back({parent, name});
  }
}

/** Drops nodes nobody refers to any more (no kernel lookups, no names inside), and then the folders that frees. */
void maybeDrop(Session *s, Node *first) {
  std::vector<Node *> work = {first};
  while (!work.empty()) {
    Node *n = work.back();
    work.pop_back();
    if (!n || n->id == FUSE_ROOT_ID || n->nlookup > 0 || n->children > 0) continue;
    // Each of its names leaves its folder (pruning drops a million of these: no copies).
    auto leave = [&](Node *parent, const std::string &name) {
      if (parent->kids) {
        auto it = parent->kids->find(name);
        if (it != parent->kids->end() && it->second == n) parent->kids->erase(it);
      }
      parent->children--;
      work.push_back(parent);
    };
    if (n->parent) leave(n->parent, n->name);
    if (n->aliases) for (auto &a : *n->aliases) leave(a.parent, a.name);
    if (n->rino) {
      auto it = s->byInode.find({n->dev, n->rino});
      if (it != s->byInode.end() && it->second == n) s->byInode.erase(it);
    }
    s->nodes.erase(n->id);
    delete n;
  }
}

/** A name unlinked or replaced: the node loses it, and lives while the kernel holds it. */
void detach(Session *s, Node *n, Node *parent, const std::string &name) {
  dropName(s, n, parent, name);
  maybeDrop(s, n);
  maybeDrop(s, parent);
}

Node *childOf(Node *parent, const std::string &name) {
  if (!parent->kids) return nullptr;
  auto it = parent->kids->find(name);
  return it == parent->kids->end() ? nullptr : it->second;
}

/** Seconds since the session started: when a node was last looked up. */
uint32_t clockOf(Session *s) {
  return (uint32_t)std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - s->started).count();
}

/** Wakes the notifier to bring the node table back under its budget. (Takes invalMu: callers may hold nodesMu, never the reverse.) */
void wantPrune(Session *s) {
  if (s->pruneUnsupported) return;
  std::lock_guard<std::mutex> lock(s->invalMu);
  if (s->pruneWanted) return;
  s->pruneWanted = true;
  s->invalCv.notify_one();
}

/**
 * One more kernel lookup of a node just given a name: with a device (its real file has
 * several names), it is found by its real inode from now on; what the kernel is told is noted.
 */
Node *counted(Session *s, Node *n, const struct stat &st, uint64_t sharedDev, bool shortLived) {
  if (sharedDev && !n->rino) {
    n->dev = sharedDev;
    n->rino = (uint64_t)st.st_ino;
    s->byInode[{sharedDev, n->rino}] = n;
  }
  told(n, st, shortLived);
  n->touched = clockOf(s);
  if (s->nodeBudget && s->nodes.size() > s->nodeBudget) wantPrune(s);
  n->nlookup++;
  return n;
}

/**
 * The node for parent/name, made when new; one more kernel lookup of it. A real file with
 * several names (dev != 0, nlink > 1) gets the node its other names have, so the kernel
 * keeps one inode for it: a link count or ctime changed through one name shows in all.
 */
Node *lookedUp(Session *s, uint64_t parentId, const std::string &name, const struct stat &st, uint64_t dev, bool shortLived) {
  Node *parent = nodeOf(s, parentId);
  if (!parent) return nullptr;
  bool shared = dev != 0 && st.st_nlink > 1 && !S_ISDIR(st.st_mode);
  Node *n = childOf(parent, name);
  if (n && n->rino && (n->rino != (uint64_t)st.st_ino || n->dev != dev)) {
    // The name now holds another file (replaced outside the mount): a node of its own.
    dropName(s, n, parent, name);
    maybeDrop(s, n);
    n = nullptr;
  }
  if (!n && shared) {
    auto it = s->byInode.find({dev, (uint64_t)st.st_ino});
    if (it != s->byInode.end()) {
      n = it->second;
      addName(n, parent, name);
    }
  }
  if (!n) {
    n = new Node();
    n->id = s->nextId++;
    s->nodes[n->id] = n;
    addName(n, parent, name);
  }
  return counted(s, n, st, shared ? dev : 0, shortLived);
}

/** A hard link made through the mount: the new name joins the source's node (one kernel inode, one link count). */
Node *linked(Session *s, uint64_t sourceId, uint64_t parentId, const std::string &name, const struct stat &st, uint64_t dev, bool shortLived) {
  Node *n = nodeOf(s, sourceId);
  Node *parent = nodeOf(s, parentId);
  if (!n || !parent || childOf(parent, name)) return lookedUp(s, parentId, name, st, dev, shortLived);
  addName(n, parent, name);
  return counted(s, n, st, dev, shortLived);
}

/** A local folder's real path, from the nearest folder whose real path JS gave. */
bool realPathOf(Node *n, std::string &out) {
  std::vector<const std::string *> names;
  while (n && n->local && !n->realRoot) {
    if (!n->parent) return false;
    names.push_back(&n->name);
    n = n->parent;
  }
  if (!n || !n->local) return false;
  out = *n->realRoot;
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    out += '/';
    out += **it;
  }
  return true;
}

/** JS says a folder is a plain local folder at realDir. */
void setLocal(Node *n, const std::string &realDir) {
  std::string parentReal;
  n->local = true;
  n->realRoot.reset();
  if (n->parent && realPathOf(n->parent, parentReal) && parentReal + "/" + n->name == realDir) return;
  n->realRoot = std::make_unique<std::string>(realDir);
}

/** The node at a path of the mount, if the kernel holds it. */
Node *nodeAt(Session *s, const std::string &path) {
  Node *n = nodeOf(s, FUSE_ROOT_ID);
  size_t at = 1;
  while (n && at < path.size()) {
    size_t end = path.find('/', at);
    if (end == std::string::npos) end = path.size();
    if (end > at) n = childOf(n, path.substr(at, end - at));
    at = end + 1;
  }
  return n;
}

void notifyEntry(Session *s, uint64_t parent, const std::string &name) {
  int rc = fuse_lowlevel_notify_inval_entry(s->se, parent, name.c_str(), name.size());
  s->invalSent++;
  if (rc != 0 && rc != -ENOENT) s->invalFailed++;
}

void notifyInode(Session *s, uint64_t ino) {
  int rc = fuse_lowlevel_notify_inval_inode(s->se, ino, 0, 0);
  s->invalSent++;
  if (rc != 0 && rc != -ENOENT) s->invalFailed++;
}

/**
 * A folder changed on disk: compares each name the kernel holds in it with the disk. A
 * name gone or now another file loses its cached entry; a file whose ctime moved loses its
 * cached attributes and pages (open or not); the folder loses its attributes and listing.
 */
void invalidateFolder(Session *s, const std::string &mountPath, const std::string &realPath) {
  struct Kid {
    uint64_t id;
    std::string name;
    uint64_t ino;
    int64_t ctime;
  };
  std::vector<Kid> kids;
  uint64_t dirId;
  {
    std::lock_guard<std::mutex> lock(s->nodesMu);
    Node *dir = nodeAt(s, mountPath);
    if (!dir) return;
    dirId = dir->id;
    if (dir->kids) for (auto &k : *dir->kids) kids.push_back({k.second->id, k.first, k.second->ino, k.second->ctime});
  }
  for (auto &k : kids) {
    struct stat st;
    std::string real = realPath + "/" + k.name;
    bool gone = lstat(real.c_str(), &st) != 0 || (uint64_t)st.st_ino != k.ino;
    if (gone || ctimeNs(st) != k.ctime) notifyInode(s, k.id);
    if (gone) notifyEntry(s, dirId, k.name);
  }
  notifyInode(s, dirId);
}

/** FUSE_NOTIFY_PRUNE (protocol 7.45, Linux 6.16): libfuse 3.14 has no call for it, so it is written to the device as libfuse writes its notices. */
constexpr int32_t NOTIFY_PRUNE = 9;
constexpr size_t PRUNE_BATCH = 512;

/** Asks the kernel to forget these nodes if nothing uses them (it sends FORGET for those it drops). */
bool sendPrune(Session *s, const uint64_t *ids, uint32_t count) {
  struct {
    uint32_t len;
    int32_t error;
    uint64_t unique;
  } out;
  struct {
    uint32_t count, padding;
    uint64_t spare;
  } arg = {count, 0, 0};
  out.len = (uint32_t)(sizeof out + sizeof arg + count * sizeof(uint64_t));
  out.error = NOTIFY_PRUNE;
  out.unique = 0;
  iovec iov[3] = {{&out, sizeof out}, {&arg, sizeof arg}, {(void *)ids, count * sizeof(uint64_t)}};
  return writev(fuse_session_fd(s->se), iov, 3) == (ssize_t)out.len;
}

/**
 * Brings the node table back to three quarters of its budget: the nodes looked up longest
 * ago that hold no names of their own (files, and folders whose names went first) are
 * offered to the kernel to forget. A node the kernel still uses (an open file, a current
 * folder, a name in a folder it keeps) stays: the kernel drops only what nothing holds.
 */
void pruneNodes(Session *s) {
  // What the kernel's FORGETs of the last pass freed goes back to the system (the FUSE
  // threads' malloc arenas kept it: 40 MB a pass at a million lookups).
  malloc_trim(0);
  std::vector<uint64_t> ids;
  {
    std::lock_guard<std::mutex> lock(s->nodesMu);
    size_t count = s->nodes.size();
    if (!s->nodeBudget || count <= s->nodeBudget) return;
    size_t want = count - s->nodeBudget * 3 / 4;
    // How many leaves were last looked up at each age (in seconds, the oldest capped): the
    // age from which the oldest `want` of them are taken.
    uint32_t now = clockOf(s);
    constexpr uint32_t AGES = 4096;
    std::vector<size_t> byAge(AGES, 0);
    auto leaf = [](const Node *n) { return n->id != FUSE_ROOT_ID && n->nlookup > 0 && n->children == 0; };
    auto ageOf = [now](const Node *n) { return std::min<uint32_t>(now - std::min(now, n->touched), AGES - 1); };
    for (auto &e : s->nodes) if (leaf(e.second)) byAge[ageOf(e.second)]++;
    uint32_t from = AGES;
    for (size_t sum = 0; from > 0 && sum < want;) sum += byAge[--from];
    ids.reserve(want);
    for (auto &e : s->nodes) {
      if (ids.size() >= want) break;
      if (leaf(e.second) && ageOf(e.second) >= from) ids.push_back(e.first);
    }
  }
  for (size_t at = 0; at < ids.size(); at += PRUNE_BATCH) {
    uint32_t n = (uint32_t)std::min(PRUNE_BATCH, ids.size() - at);
    if (!sendPrune(s, ids.data() + at, n)) {
      // An older kernel: the table stays unbounded, as before the budget (counted in stats).
      s->pruneUnsupported = true;
      return;
    }
    s->pruneAsked += n;
  }
}

void notifierMain(Session *s) {
  auto lastPrune = std::chrono::steady_clock::time_point();
  for (;;) {
    InvalJob job;
    {
      std::unique_lock<std::mutex> lock(s->invalMu);
      s->invalCv.wait(lock, [s] { return s->notifierStop || !s->invalQueue.empty() || s->pruneWanted; });
      if (s->notifierStop) return;
      if (s->invalQueue.empty()) {
        // A prune pass at most once a second: the kernel's FORGETs take a moment to arrive.
        auto next = lastPrune + std::chrono::seconds(1);
        if (std::chrono::steady_clock::now() < next) {
          s->invalCv.wait_until(lock, next, [s] { return s->notifierStop || !s->invalQueue.empty(); });
          if (s->notifierStop) return;
          if (!s->invalQueue.empty()) continue;
        }
        s->pruneWanted = false;
        lock.unlock();
        lastPrune = std::chrono::steady_clock::now();
        if (!s->closed) pruneNodes(s);
        continue;
      }
      job = std::move(s->invalQueue.front());
      s->invalQueue.pop_front();
    }
    if (!s->closed) {
      if (job.folder) {
        invalidateFolder(s, job.mountPath, job.nameOrReal);
      } else {
        uint64_t parent = 0;
        {
          std::lock_guard<std::mutex> lock(s->nodesMu);
          Node *p = nodeAt(s, job.mountPath);
          if (p) parent = p->id;
        }
        if (parent) notifyEntry(s, parent, job.nameOrReal);
      }
    }
    s->invalPending--;
  }
}

void renamed(Session *s, uint64_t parentId, const std::string &name, uint64_t newParentId, const std::string &newName, bool exchange) {
  Node *from = nodeOf(s, parentId);
  Node *to = nodeOf(s, newParentId);
  if (!from || !to) return;
  Node *moving = childOf(from, name);
  Node *replaced = childOf(to, newName);
  if (moving == replaced) return;  // two names of one file: rename(2) changes nothing
  if (moving) dropName(s, moving, from, name);
  if (replaced) {
    dropName(s, replaced, to, newName);
    if (exchange) addName(replaced, from, name);
  }
  if (moving) addName(moving, to, newName);
  if (replaced && !exchange) maybeDrop(s, replaced);
}

// ---------------------------------------------------------------------------------
// Handing requests to JS.

Session *sessionOf(fuse_req_t req) { return static_cast<Session *>(fuse_req_userdata(req)); }

Req *newReq(fuse_req_t req, int op, uint64_t ino) {
  Req *r = new Req();
  r->req = req;
  r->op = op;
  r->ino = ino;
  if (req) {
    const fuse_ctx *ctx = fuse_req_ctx(req);
    r->uid = ctx->uid;
    r->gid = ctx->gid;
    r->umask = ctx->umask;
    r->pid = ctx->pid;
  }
  return r;
}

void failAndFree(Req *r, int err) {
  if (r->req) fuse_reply_err(r->req, err);
  delete r;
}

/** Queues a request for JS: its paths are read from the table now, as the kernel sees them. */
void send(Session *s, Req *r, bool withPath = true) {
  if (withPath) {
    std::lock_guard<std::mutex> lock(s->nodesMu);
    r->hasPath = pathOf(s, r->ino, r->path);
    if (!r->name.empty() && r->hasPath) {
      if (r->path.size() > 1) r->path += '/';
      r->path += r->name;
    }
    if (r->op == OP_RENAME || r->op == OP_LINK) {
      r->hasPath2 = pathOf(s, r->ino2, r->path2);
      if (r->hasPath2) {
        if (r->path2.size() > 1) r->path2 += '/';
        r->path2 += r->name2;
      }
    }
  }
  if (withPath && !r->hasPath && r->fh < 0) return failAndFree(r, ENOENT);
  r->id = s->nextReq++;
  if (!r->notice) {
    std::lock_guard<std::mutex> lock(s->reqsMu);
    s->pending[r->id] = r;
  }
  if (napi_call_threadsafe_function(s->tsfn, r, napi_tsfn_nonblocking) != napi_ok) {
    if (!r->notice) {
      std::lock_guard<std::mutex> lock(s->reqsMu);
      s->pending.erase(r->id);
    }
    failAndFree(r, EIO);
  }
}

FileHandle *fileOf(fuse_file_info *fi) { return fi ? reinterpret_cast<FileHandle *>(fi->fh) : nullptr; }

// ---------------------------------------------------------------------------------
// The low-level operations.

void sd_init(void *userdata, fuse_conn_info *conn) {
  Session *s = static_cast<Session *>(userdata);
  // Parallel lookups and readdirs in one folder; the kernel takes care of locking.
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  if (conn->capable & FUSE_CAP_SPLICE_READ) conn->want |= FUSE_CAP_SPLICE_READ;
  // Page cache kept or dropped per open (keep_cache, below), not by the kernel guessing from mtime.
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  // Asked for (SD_FUSE_WRITEBACK=1): writes gather in the kernel's page cache and come in
  // big requests; the kernel then trusts its own size and mtime of a file over ours, so a
  // change made outside the mount to a file it holds is not seen: off by default. Handles
  // are opened for reading too (the kernel reads a page before writing part of it), and
  // O_APPEND is the kernel's.
  if (s->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  else s->writeback = false;
  // Listings come with attributes (readdirplus, always: stat here costs less than a lookup each).
  if (conn->capable & FUSE_CAP_READDIRPLUS) {
    conn->want |= FUSE_CAP_READDIRPLUS;
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
  }
}

void forgetOne(Session *s, fuse_ino_t ino, uint64_t nlookup) {
  Node *n = nodeOf(s, ino);
  if (!n || n->id == FUSE_ROOT_ID) return;
  n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
  maybeDrop(s, n);
}

/**
 * Gives the kernel a name: the entry of node `id` (one lookup of it counted already), with
 * an open handle for a create. When the caller is gone, the lookup is taken back and the
 * create's handle freed; says whether the kernel took it.
 */
bool sendEntry(Session *s, fuse_req_t req, uint64_t id, const struct stat &st, bool shortLived, fuse_file_info *fi) {
  fuse_entry_param e;
  memset(&e, 0, sizeof e);
  e.ino = id;
  e.attr = st;
  e.attr_timeout = shortLived ? s->shortTimeout : s->attrTimeout;
  e.entry_timeout = shortLived ? s->shortTimeout : s->entryTimeout;
  if ((fi ? fuse_reply_create(req, &e, fi) : fuse_reply_entry(req, &e)) == 0) return true;
  if (fi) delete reinterpret_cast<FileHandle *>(fi->fh);
  std::lock_guard<std::mutex> lock(s->nodesMu);
  forgetOne(s, id, 1);
  return false;
}

/**
 * A name in a plain local folder is looked up here, on disk (what JS's answer would be:
 * the real file's attributes); anywhere else JS answers.
 */
bool lookupLocal(Session *s, fuse_req_t req, fuse_ino_t parent, const char *name) {
  std::string dir;
  {
    std::lock_guard<std::mutex> lock(s->nodesMu);
    Node *p = nodeOf(s, parent);
    if (!p || !realPathOf(p, dir)) return false;
  }
  struct stat st;
  std::string real = dir + "/" + name;
  if (lstat(real.c_str(), &st) != 0) {
    fuse_reply_err(req, errno);
    return true;
  }
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(s->nodesMu);
    Node *n = lookedUp(s, parent, name, st, (uint64_t)st.st_dev, false);
    if (!n) {
      fuse_reply_err(req, ENOENT);
      return true;
    }
    if (S_ISDIR(st.st_mode)) setLocal(n, real);
    id = n->id;
  }
  sendEntry(s, req, id, st, false, nullptr);
  return true;
}

void sd_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  if (lookupLocal(sessionOf(req), req, parent, name)) return;
  Req *r = newReq(req, OP_LOOKUP, parent);
  r->name = name;
  send(sessionOf(req), r);
}


void sd_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Session *s = sessionOf(req);
  {
    std::lock_guard<std::mutex> lock(s->nodesMu);
    forgetOne(s, ino, nlookup);
  }
  fuse_reply_none(req);
}

void sd_forget_multi(fuse_req_t req, size_t count, fuse_forget_data *forgets) {
  Session *s = sessionOf(req);
  {
    std::lock_guard<std::mutex> lock(s->nodesMu);
    for (size_t i = 0; i < count; i++) forgetOne(s, forgets[i].ino, forgets[i].nlookup);
  }
  fuse_reply_none(req);
}

/**
 * A node of a plain local folder (a folder JS named local, or a file or link in one) has
 * the real file's attributes, read here as JS would. With default_permissions the kernel
 * asks a folder's attributes before each lookup or create in it, once they were dropped
 * by the last change there: answered by JS, that was a wait for the JS thread per file made.
 */
bool getattrLocal(Session *s, fuse_req_t req, fuse_ino_t ino) {
  std::string real;
  {
    std::lock_guard<std::mutex> lock(s->nodesMu);
    Node *n = nodeOf(s, ino);
    if (!n) return false;
    if (n->local) {
      if (!realPathOf(n, real)) return false;
    } else {
      if (!n->parent || !n->parent->local || !realPathOf(n->parent, real)) return false;
      real += '/';
      real += n->name;
    }
  }
  struct stat st;
  if (lstat(real.c_str(), &st) != 0) return false;  // gone or moved on disk: JS answers as it knows
  {
    std::lock_guard<std::mutex> lock(s->nodesMu);
    Node *n = nodeOf(s, ino);
    if (n) told(n, st, false);
  }
  fuse_reply_attr(req, &st, s->attrTimeout);
  return true;
}

void sd_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info *fi) {
  if (getattrLocal(sessionOf(req), req, ino)) return;
  Req *r = newReq(req, OP_GETATTR, ino);
  FileHandle *fh = fileOf(fi);
  if (fh) r->fh = fh->jsfh;
  send(sessionOf(req), r);
}

void sd_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, fuse_file_info *fi) {
  Req *r = newReq(req, OP_SETATTR, ino);
  FileHandle *fh = fileOf(fi);
  if (fh) r->fh = fh->jsfh;
  r->setattr[0] = to_set;
  r->setattr[1] = attr->st_mode;
  r->setattr[2] = (to_set & FUSE_SET_ATTR_UID) ? (double)attr->st_uid : -1;
  r->setattr[3] = (to_set & FUSE_SET_ATTR_GID) ? (double)attr->st_gid : -1;
  r->setattr[4] = (double)attr->st_size;
  r->setattr[5] = (double)attr->st_atim.tv_sec;
  r->setattr[6] = (double)attr->st_atim.tv_nsec;
  r->setattr[7] = (double)attr->st_mtim.tv_sec;
  r->setattr[8] = (double)attr->st_mtim.tv_nsec;
  r->setattr[9] = fh && fh->written.exchange(false) ? 1 : 0;  // written natively: JS marks its handle
  send(sessionOf(req), r);
}

void sd_readlink(fuse_req_t req, fuse_ino_t ino) { send(sessionOf(req), newReq(req, OP_READLINK, ino)); }

void sd_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  Req *r = newReq(req, OP_MKNOD, parent);
  r->name = name;
  r->a = mode;
  r->b = (double)rdev;
  send(sessionOf(req), r);
}

void sd_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  Req *r = newReq(req, OP_MKDIR, parent);
  r->name = name;
  r->a = mode;
  send(sessionOf(req), r);
}

void sd_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  Req *r = newReq(req, OP_UNLINK, parent);
  r->name = name;
  send(sessionOf(req), r);
}

void sd_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  Req *r = newReq(req, OP_RMDIR, parent);
  r->name = name;
  send(sessionOf(req), r);
}

void sd_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  Req *r = newReq(req, OP_SYMLINK, parent);
  r->name = name;
  r->name2 = link;  // the target, handed to JS as the second string
  send(sessionOf(req), r);
}

void sd_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned int flags) {
  Req *r = newReq(req, OP_RENAME, parent);
  r->name = name;
  r->ino2 = newparent;
  r->name2 = newname;
  r->a = flags;
  send(sessionOf(req), r);
}

void sd_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  Req *r = newReq(req, OP_LINK, ino);
  r->ino2 = newparent;
  r->name2 = newname;
  send(sessionOf(req), r);
}

/** The flags a handle is opened with: with the writeback cache, readable and never O_APPEND. */
int openFlags(Session *s, int flags) {
  if (!s->writeback) return flags;
  if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
  return flags & ~O_APPEND;
}

void sd_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info *fi) {
  Req *r = newReq(req, OP_OPEN, ino);
  r->a = openFlags(sessionOf(req), fi->flags);
  send(sessionOf(req), r);
}

/** The kernel never took a handle JS opened (its caller was gone): JS releases it as if the kernel had. */
void releaseInJs(Session *s, const std::string &path, int64_t jsfh) {
  Req *release = newReq(nullptr, OP_RELEASE, 0);
  release->notice = true;
  release->hasPath = true;
  release->path = path;
  release->fh = jsfh;
  send(s, release, false);
}

/**
 * A new file in a plain local folder is made here, as JS would make it: on disk with
 * exactly the mode asked, given to the caller (their uid, and their gid unless the folder
 * is setgid) when sdfs runs as root, opened for native reads and writes. JS is told after
 * (OP_CREATED, before the kernel hears back): it records the file in the index and keeps
 * the handle, as for a file it made itself.
 */
bool createLocal(Session *s, fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, fuse_file_info *fi) {
  std::string dir, mountPath;
  {
    std::lock_guard<std::mutex> lock(s->nodesMu);
    Node *p = nodeOf(s, parent);
    if (!p || !realPathOf(p, dir) || !pathOf(s, parent, mountPath)) return false;
  }
  if (s->readOnly) {
    fuse_reply_err(req, EROFS);
    return true;
  }
  std::string real = dir + "/" + name;
  int flags = openFlags(s, fi->flags) & ~(O_CREAT | O_EXCL);
  bool existed = false;
  int fd = open(real.c_str(), flags | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777);
  if (fd < 0 && errno == EEXIST && !(fi->flags & O_EXCL)) {
    // Made on disk since the kernel looked: opened as it is (as open(2) would).
    existed = true;
    fd = open(real.c_str(), flags | O_CLOEXEC);
  }
  if (fd < 0) {
    fuse_reply_err(req, errno);
    return true;
  }
  struct stat st;
  if (!existed) {
    const fuse_ctx *ctx = fuse_req_ctx(req);
    struct stat parentSt;
    int failed = 0;
    if (geteuid() == 0 && (ctx->uid != 0 || ctx->gid != 0)) {
      gid_t gid = stat(dir.c_str(), &parentSt) == 0 && (parentSt.st_mode & S_ISGID) ? (gid_t)-1 : ctx->gid;
      if (fchown(fd, ctx->uid, gid) != 0) failed = errno;
    }
    // Exactly the mode asked (the kernel applied the caller's umask; ours must not apply twice).
    if (!failed && fstat(fd, &st) == 0 && (st.st_mode & 07777) != (mode & 07777) && fchmod(fd, mode & 07777) != 0) failed = errno;
    if (failed) {
      close(fd);
      unlink(real.c_str());
      fuse_reply_err(req, failed);
      return true;
    }
  }
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    fuse_reply_err(req, err);
    return true;
  }
  std::string filePath = mountPath.size() > 1 ? mountPath + "/" + name : mountPath + name;
  Req *notice = newReq(req, OP_CREATED, parent);
  notice->req = nullptr;
  notice->notice = true;
  notice->hasPath = true;
  notice->path = filePath;
  notice->fh = fd;
  notice->a = mode;
  notice->b = existed ? ((fi->flags & O_TRUNC) ? 2 : 1) : 0;
  send(s, notice, false);

  FileHandle *fh = new FileHandle();
  fh->jsfh = fd;
  fh->fd = fd;
  fi->fh = reinterpret_cast<uint64_t>(fh);
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(s->nodesMu);
    Node *n = lookedUp(s, parent, name, st, (uint64_t)st.st_dev, false);
    if (n) {
      noteCached(n, st);
      id = n->id;
    }
  }
  if (!id) {
    delete fh;
    fuse_reply_err(req, ENOENT);
  }
  if (!id || !sendEntry(s, req, id, st, false, fi)) releaseInJs(s, filePath, fd);
  return true;
}

void sd_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, fuse_file_info *fi) {
  if (createLocal(sessionOf(req), req, parent, name, mode, fi)) return;
  Req *r = newReq(req, OP_CREATE, parent);
  r->name = name;
  r->a = mode;
  r->b = openFlags(sessionOf(req), fi->flags);
  send(sessionOf(req), r);
}

/** One of the few threads that may wait for a coming block (see Backing), for as long as it lives. */
struct BlockWaiter {
  bool admitted = blockWaiters.fetch_add(1) < BLOCK_WAITERS;
  ~BlockWaiter() { blockWaiters.fetch_sub(1); }
};

/**
 * Whether blocks first..last are all ready, waiting (the lock held shared, released while
 * waiting) while any is coming and none is absent; false: JS serves the read.
 */
bool waitReady(Backing &b, std::shared_lock<std::shared_mutex> &lock, uint64_t first, uint64_t last) {
  std::unique_ptr<BlockWaiter> waiter;
  const auto deadline = std::chrono::steady_clock::now() + BLOCK_WAIT;
  for (;;) {
    bool coming = false;
    for (uint64_t i = first; i <= last; i++) {
      if (i >= b.ready.size() || b.ready[i] == BLOCK_ABSENT) return false;
      if (b.ready[i] == BLOCK_COMING) coming = true;
    }
    if (!coming) return true;
    if (!waiter) {
      waiter = std::make_unique<BlockWaiter>();
      if (!waiter->admitted) return false;
    }
    if (b.changed.wait_until(lock, deadline) == std::cv_status::timeout) return false;
  }
}

/** Serves a read from the cache's data file when every block it covers is verified there; false: JS serves it. */
bool readCached(fuse_req_t req, Backing &b, size_t size, off_t off) {
  if ((uint64_t)off >= b.size) {
    fuse_reply_buf(req, nullptr, 0);
    return true;
  }
  size_t len = (size_t)std::min<uint64_t>(size, b.size - (uint64_t)off);
  // Read here, not spliced: a block cut short on disk since it was checked (a cleaner, a
  // truncate) must go to JS, which fetches it again, rather than end the file early.
  thread_local std::vector<char> data;
  if (data.size() < len) data.resize(len);
  std::shared_lock<std::shared_mutex> lock(b.mu);
  if (!waitReady(b, lock, (uint64_t)off / b.span, ((uint64_t)off + len - 1) / b.span)) return false;
  size_t got = 0;
  while (got < len) {
    ssize_t n = pread(b.fd, data.data() + got, len - got, off + (off_t)got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += (size_t)n;
  }
  lock.unlock();
  fuse_reply_buf(req, data.data(), len);
  return true;
}

void sd_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info *fi) {
  FileHandle *fh = fileOf(fi);
  if (fh->fd >= 0) {
    // Straight from the real file, on this thread (spliced when the kernel allows).
    fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    buf.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
    buf.buf[0].fd = fh->fd;
    buf.buf[0].pos = off;
    fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
    return;
  }
  if (fh->backing && readCached(req, *fh->backing, size, off)) return;
  Req *r = newReq(req, OP_READ, ino);
  r->fh = fh->jsfh;
  r->a = (double)size;
  r->b = (double)off;
  send(sessionOf(req), r, false);
}

void sd_write_buf(fuse_req_t req, fuse_ino_t ino, fuse_bufvec *in, off_t off, fuse_file_info *fi) {
  FileHandle *fh = fileOf(fi);
  size_t size = fuse_buf_size(in);
  if (fh->fd >= 0) {
    fuse_bufvec out = FUSE_BUFVEC_INIT(size);
    out.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
    out.buf[0].fd = fh->fd;
    out.buf[0].pos = off;
    ssize_t n = fuse_buf_copy(&out, in, static_cast<fuse_buf_copy_flags>(0));
    if (n < 0) {
      fuse_reply_err(req, (int)-n);
      return;
    }
    fh->written = true;
    fuse_reply_write(req, (size_t)n);
    return;
  }
  Req *r = newReq(req, OP_WRITE, ino);
  r->fh = fh->jsfh;
  r->b = (double)off;
  r->data.resize(size);
  fuse_bufvec mem = FUSE_BUFVEC_INIT(size);
  mem.buf[0].mem = r->data.data();
  ssize_t n = fuse_buf_copy(&mem, in, static_cast<fuse_buf_copy_flags>(0));
  if (n < 0) return failAndFree(r, (int)-n);
  r->data.resize((size_t)n);
  send(sessionOf(req), r, false);
}

void sd_flush(fuse_req_t req, fuse_ino_t, fuse_file_info *) { fuse_reply_err(req, 0); }

/** fallocate on the real descriptor; a handle without one answers EOPNOTSUPP (glibc then writes zeros). */
void sd_fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length, fuse_file_info *fi) {
  FileHandle *fh = fileOf(fi);
  if (fh->fd < 0) return (void)fuse_reply_err(req, EOPNOTSUPP);
  if (fallocate(fh->fd, mode, offset, length) != 0) return (void)fuse_reply_err(req, errno);
  fh->written = true;
  fuse_reply_err(req, 0);
}

/** copy_file_range between two real descriptors (reflinked where the disk can); else the kernel copies through read and write. */
void sd_copy_file_range(fuse_req_t req, fuse_ino_t, off_t off_in, fuse_file_info *fi_in, fuse_ino_t, off_t off_out, fuse_file_info *fi_out, size_t len, int flags) {
  FileHandle *in = fileOf(fi_in);
  FileHandle *out = fileOf(fi_out);
  if (in->fd < 0 || out->fd < 0) return (void)fuse_reply_err(req, EOPNOTSUPP);
  loff_t from = off_in, to = off_out;
  ssize_t n = copy_file_range(in->fd, &from, out->fd, &to, len, (unsigned)flags);
  if (n < 0) return (void)fuse_reply_err(req, errno);
  out->written = true;
  fuse_reply_write(req, (size_t)n);
}

/** SEEK_DATA and SEEK_HOLE on the real descriptor (sparse files copied as sparse); JS answers for the other handles. */
void sd_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info *fi) {
  FileHandle *fh = fileOf(fi);
  if (fh->fd < 0) {
    Req *r = newReq(req, OP_LSEEK, ino);
    r->fh = fh->jsfh;
    r->a = (double)off;
    r->b = whence;
    return send(sessionOf(req), r);  // with its path: a peer's file is stat'ed by path
  }
  off_t at = lseek(fh->fd, off, whence);
  if (at < 0) return (void)fuse_reply_err(req, errno);
  fuse_reply_lseek(req, at);
}

void sd_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info *fi) {
  FileHandle *fh = fileOf(fi);
  Req *r = newReq(req, OP_RELEASE, ino);
  r->fh = fh->jsfh;
  r->written = fh->written;
  delete fh;  // the kernel sends nothing more for this handle
  send(sessionOf(req), r);
}

void sd_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info *fi) {
  FileHandle *fh = fileOf(fi);
  Req *r = newReq(req, OP_FSYNC, ino);
  r->fh = fh->jsfh;
  r->a = datasync;
  r->written = fh->written.exchange(false);
  send(sessionOf(req), r);
}

/**
 * Answered here: the names are asked of JS at the first readdir. A folder whose attributes
 * are kept long (a local folder, invalidated exactly) lets the kernel cache its listing
 * until it is told the folder changed, or changes it itself.
 */
void sd_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info *fi) {
  Session *s = sessionOf(req);
  bool cache = false;
  {
    std::lock_guard<std::mutex> lock(s->nodesMu);
    Node *n = nodeOf(s, ino);
    cache = n && !n->shortLived;
  }
  DirHandle *dh = new DirHandle();
  fi->fh = reinterpret_cast<uint64_t>(dh);
  fi->cache_readdir = cache;
  fi->keep_cache = cache;
  if (fuse_reply_open(req, fi) != 0) delete dh;
}

/**
 * One reply of a listing from its names: with readdirplus, each name with its attributes
 * (a local folder's stat here, on this thread; another device's as JS gave them), counted
 * as a lookup of its node. Other names go with their type alone (d_type: `ls -R` and
 * `find` stat only names of unknown type): with readdirplus, as an entry of node id 0,
 * which the kernel reads for the dirent alone (fuse_direntplus_link links no dentry).
 */
void serveDir(Session *s, fuse_req_t req, uint64_t dirId, DirHandle *dh, size_t size, off_t off, bool plus) {
  std::vector<char> buf(size);
  size_t used = 0;
  std::unique_lock<std::mutex> lock(s->nodesMu, std::defer_lock);
  if (plus && (!dh->realDir.empty() || !dh->attrs.empty())) lock.lock();
  for (size_t i = (size_t)off; i < dh->names.size(); i++) {
    const std::string &name = dh->names[i];
    char *at = buf.data() + used;
    size_t room = size - used;
    bool dot = name == "." || name == "..";
    const ListedAttr *listed = !dot && i < dh->attrs.size() && dh->attrs[i].st.st_mode != 0 ? &dh->attrs[i] : nullptr;
    // Known or not: an unknown inode number is not 0, which readdir(3) would skip.
    uint64_t ino = listed ? (uint64_t)listed->st.st_ino : 0xffffffff;
    mode_t type = dot ? S_IFDIR : listed ? listed->st.st_mode & S_IFMT : DTTOIF(dh->types[i]);
    if (!plus) {
      struct stat st;
      memset(&st, 0, sizeof st);
      st.st_ino = ino;
      st.st_mode = type;
      size_t need = fuse_add_direntry(req, at, room, name.c_str(), &st, (off_t)(i + 1));
      if (need > room) break;
      used += need;
      continue;
    }
    if (fuse_add_direntry_plus(req, nullptr, 0, name.c_str(), nullptr, 0) > room) break;
    fuse_entry_param e;
    memset(&e, 0, sizeof e);
    Node *n = listed ? lookedUp(s, dirId, name, listed->st, listed->dev, listed->shortLived) : nullptr;
    if (n) {
      e.attr = listed->st;
      e.ino = n->id;
      e.attr_timeout = listed->shortLived ? s->shortTimeout : s->attrTimeout;
      e.entry_timeout = listed->shortLived ? s->shortTimeout : s->entryTimeout;
    } else if (dot || dh->realDir.empty()) {
      e.attr.st_ino = ino;  // no attributes (node id 0): the kernel looks the name up if it needs them
      e.attr.st_mode = type;
    } else {
      std::string real = dh->realDir + "/" + name;
      if (lstat(real.c_str(), &e.attr) != 0) continue;  // gone since it was listed
      Node *n = lookedUp(s, dirId, name, e.attr, (uint64_t)e.attr.st_dev, false);
      if (!n) continue;
      e.ino = n->id;
      e.attr_timeout = s->attrTimeout;
      e.entry_timeout = s->entryTimeout;
    }
    used += fuse_add_direntry_plus(req, at, room, name.c_str(), &e, (off_t)(i + 1));
  }
  fuse_reply_buf(req, buf.data(), used);
}

void readdirOf(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info *fi, bool plus) {
  DirHandle *dh = reinterpret_cast<DirHandle *>(fi->fh);
  Session *s = sessionOf(req);
  if (dh->loaded) return serveDir(s, req, ino, dh, size, off, plus);
  Req *r = newReq(req, OP_READDIR, ino);
  r->a = (double)size;
  r->b = (double)off;
  r->c = plus ? 1 : 0;
  r->dir = dh;
  send(s, r);
}

void sd_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info *fi) { readdirOf(req, ino, size, off, fi, false); }

void sd_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info *fi) { readdirOf(req, ino, size, off, fi, true); }

void sd_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info *fi) {
  delete reinterpret_cast<DirHandle *>(fi->fh);
  fuse_reply_err(req, 0);
}

void sd_fsyncdir(fuse_req_t req, fuse_ino_t, int, fuse_file_info *) { fuse_reply_err(req, 0); }

void sd_statfs(fuse_req_t req, fuse_ino_t ino) { send(sessionOf(req), newReq(req, OP_STATFS, ino)); }

/**
 * Only user.* attributes exist in the mount (sdfs's own and the files'); ACLs and security
 * labels answer "not supported" here, without asking JS: the kernel asks for
 * security.capability before every write.
 */
bool userXattr(const char *name) { return strncmp(name, "user.", 5) == 0; }

void sd_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  if (!userXattr(name)) return (void)fuse_reply_err(req, EOPNOTSUPP);
  Req *r = newReq(req, OP_SETXATTR, ino);
  r->name2 = name;
  r->data.assign(value, value + size);
  r->a = flags;
  send(sessionOf(req), r);
}

void sd_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  if (!userXattr(name)) return (void)fuse_reply_err(req, EOPNOTSUPP);
  Req *r = newReq(req, OP_GETXATTR, ino);
  r->name2 = name;
  r->a = (double)size;
  send(sessionOf(req), r);
}

void sd_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Req *r = newReq(req, OP_LISTXATTR, ino);
  r->a = (double)size;
  send(sessionOf(req), r);
}

void sd_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  if (!userXattr(name)) return (void)fuse_reply_err(req, EOPNOTSUPP);
  Req *r = newReq(req, OP_REMOVEXATTR, ino);
  r->name2 = name;
  send(sessionOf(req), r);
}

void sd_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  Req *r = newReq(req, OP_ACCESS, ino);
  r->a = mask;
  send(sessionOf(req), r);
}

fuse_lowlevel_ops makeOps() {
  fuse_lowlevel_ops ops;
  memset(&ops, 0, sizeof ops);
  ops.init = sd_init;
  ops.lookup = sd_lookup;
  ops.forget = sd_forget;
  ops.forget_multi = sd_forget_multi;
  ops.getattr = sd_getattr;
  ops.setattr = sd_setattr;
  ops.readlink = sd_readlink;
  ops.mknod = sd_mknod;
  ops.mkdir = sd_mkdir;
  ops.unlink = sd_unlink;
  ops.rmdir = sd_rmdir;
  ops.symlink = sd_symlink;
  ops.rename = sd_rename;
  ops.link = sd_link;
  ops.open = sd_open;
  ops.create = sd_create;
  ops.read = sd_read;
  ops.write_buf = sd_write_buf;
  ops.flush = sd_flush;
  ops.fallocate = sd_fallocate;
  ops.copy_file_range = sd_copy_file_range;
  ops.lseek = sd_lseek;
  ops.release = sd_release;
  ops.fsync = sd_fsync;
  ops.opendir = sd_opendir;
  ops.readdir = sd_readdir;
  ops.readdirplus = sd_readdirplus;
  ops.releasedir = sd_releasedir;
  ops.fsyncdir = sd_fsyncdir;
  ops.statfs = sd_statfs;
  ops.setxattr = sd_setxattr;
  ops.getxattr = sd_getxattr;
  ops.listxattr = sd_listxattr;
  ops.removexattr = sd_removexattr;
  ops.access = sd_access;
  return ops;
}

const fuse_lowlevel_ops OPS = makeOps();

// ---------------------------------------------------------------------------------
// The JS side: calling dispatch, and the replies.

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, nullptr, "sdfuse: " #call " failed");     \
      return nullptr;                                                 \
    }                                                                 \
  } while (0)

bool stringArg(napi_env env, napi_value v, std::string &out);

napi_value num(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

napi_value str(napi_env env, const std::string &s) {
  napi_value out;
  napi_create_string_utf8(env, s.data(), s.size(), &out);
  return out;
}

napi_value nul(napi_env env) {
  napi_value out;
  napi_get_null(env, &out);
  return out;
}

/** Runs on the JS thread for each queued request: dispatch(op, session, id, path, fh, a, b, c, uid, gid, umask, pid). */
void callJs(napi_env env, napi_value dispatch, void *context, void *data) {
  Session *s = static_cast<Session *>(context);
  Req *r = static_cast<Req *>(data);
  if (env == nullptr) {  // the function is being torn down
    if (r->req) {
      std::lock_guard<std::mutex> lock(s->reqsMu);
      s->pending.erase(r->id);
    }
    return failAndFree(r, EIO);
  }
  napi_value args[12];
  args[0] = num(env, r->op);
  args[1] = num(env, s->index);
  args[2] = num(env, (double)r->id);
  args[3] = r->hasPath ? str(env, r->path) : nul(env);
  args[4] = num(env, (double)r->fh);
  args[5] = num(env, r->a);
  args[6] = num(env, r->b);
  args[7] = nul(env);
  switch (r->op) {
    case OP_SYMLINK:
      args[7] = str(env, r->name2);
      break;
    case OP_RENAME:
    case OP_LINK:
      args[7] = r->hasPath2 ? str(env, r->path2) : nul(env);
      break;
    case OP_SETXATTR:
    case OP_GETXATTR:
    case OP_REMOVEXATTR:
      args[7] = str(env, r->name2);
      break;
    case OP_RELEASE:
    case OP_FSYNC:
      napi_get_boolean(env, r->written, &args[7]);
      break;
    case OP_SETATTR: {
      napi_value arr;
      napi_create_array_with_length(env, 10, &arr);
      for (uint32_t i = 0; i < 10; i++) napi_set_element(env, arr, i, num(env, r->setattr[i]));
      args[7] = arr;
      break;
    }
    case OP_READ: {
      void *mem;
      napi_create_buffer(env, (size_t)r->a, &mem, &args[7]);
      r->bufData = static_cast<char *>(mem);
      napi_create_reference(env, args[7], 1, &r->bufRef);
      break;
    }
    default:
      break;
  }
  if (r->op == OP_WRITE || r->op == OP_SETXATTR) {
    napi_value buf;
    void *mem;
    napi_create_buffer_copy(env, r->data.size(), r->data.data(), &mem, &buf);
    if (r->op == OP_WRITE) args[7] = buf;
    else args[6] = buf;  // setxattr: (name, value) in (c, b)
    std::vector<char>().swap(r->data);
  }
  args[8] = num(env, r->uid);
  args[9] = num(env, r->gid);
  args[10] = num(env, r->umask);
  args[11] = num(env, r->pid);
  napi_value global;
  napi_get_global(env, &global);
  if (r->op == OP_CLOSED || r->notice) {
    if (napi_call_function(env, global, dispatch, 12, args, nullptr) != napi_ok) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      fprintf(stderr, "sdfuse: dispatch threw for notice %d\n", r->op);
    }
    delete r;
    return;
  }
  napi_status st = napi_call_function(env, global, dispatch, 12, args, nullptr);
  if (st != napi_ok) {
    // dispatch threw: the request must still be answered, or the caller hangs.
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    Req *still = nullptr;
    {
      std::lock_guard<std::mutex> lock(s->reqsMu);
      auto it = s->pending.find(r->id);
      if (it != s->pending.end()) {
        still = it->second;
        s->pending.erase(it);
      }
    }
    if (still) {
      if (still->bufRef) napi_delete_reference(env, still->bufRef);
      failAndFree(still, EIO);
    }
    fprintf(stderr, "sdfuse: dispatch threw for op %d\n", r->op);
  }
}

/** Reads the arguments of a reply: session index, request id, then the rest. */
struct ReplyArgs {
  Session *s = nullptr;
  Req *r = nullptr;
  napi_value argv[6];
  size_t argc = 6;
};

bool takeReq(napi_env env, napi_callback_info info, ReplyArgs &out) {
  napi_value argv[8];
  size_t argc = 8;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 2) return false;
  double sIndex, id;
  napi_get_value_double(env, argv[0], &sIndex);
  napi_get_value_double(env, argv[1], &id);
  {
    std::lock_guard<std::mutex> lock(sessionsMu);
    if (sIndex < 0 || sIndex >= sessions.size() || !sessions[(size_t)sIndex]) return false;
    out.s = sessions[(size_t)sIndex];
  }
  {
    std::lock_guard<std::mutex> lock(out.s->reqsMu);
    auto it = out.s->pending.find((uint64_t)id);
    if (it == out.s->pending.end()) return false;  // answered already, or the session ended
    out.r = it->second;
    out.s->pending.erase(it);
  }
  out.argc = argc - 2;
  for (size_t i = 0; i < 6; i++) out.argv[i] = i + 2 < argc ? argv[i + 2] : nullptr;
  return true;
}

/** A string argument that may be null or left out: false when it is not a string. */
bool optionalString(napi_env env, napi_value v, std::string &out) {
  napi_valuetype type = napi_undefined;
  if (v) napi_typeof(env, v, &type);
  return type == napi_string && stringArg(env, v, out);
}

double numArg(napi_env env, napi_value v) {
  double d = 0;
  if (v) napi_get_value_double(env, v, &d);
  return d;
}

void finish(napi_env env, Req *r) {
  if (r->bufRef) napi_delete_reference(env, r->bufRef);
  delete r;
}

/**
 * A stat from JS: [ino high, ino low, mode, nlink, uid, gid, rdev, size, blksize, blocks,
 * atime s, ns, mtime s, ns, ctime s, ns, device (0: not a real file's name), short-lived
 * (1: cached for the short timeout, as sdfs cannot say exactly when it changes)].
 */
constexpr size_t STAT_FIELDS = 18;

void statOf(const double *f, struct stat &st, uint64_t *dev, bool *shortLived) {
  memset(&st, 0, sizeof st);
  st.st_ino = ((uint64_t)f[0] << 32) | (uint64_t)f[1];
  st.st_mode = (mode_t)f[2];
  st.st_nlink = (nlink_t)f[3];
  st.st_uid = (uid_t)f[4];
  st.st_gid = (gid_t)f[5];
  st.st_rdev = (dev_t)f[6];
  st.st_size = (off_t)f[7];
  st.st_blksize = (blksize_t)f[8];
  st.st_blocks = (blkcnt_t)f[9];
  st.st_atim.tv_sec = (time_t)f[10];
  st.st_atim.tv_nsec = (long)f[11];
  st.st_mtim.tv_sec = (time_t)f[12];
  st.st_mtim.tv_nsec = (long)f[13];
  st.st_ctim.tv_sec = (time_t)f[14];
  st.st_ctim.tv_nsec = (long)f[15];
  if (dev) *dev = (uint64_t)f[16];
  if (shortLived) *shortLived = f[17] != 0;
}

/** A stat from JS as a Float64Array (see statOf). */
bool statArg(napi_env env, napi_value v, struct stat &st, uint64_t *dev = nullptr, bool *shortLived = nullptr) {
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (!v || napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) != napi_ok) return false;
  if (type != napi_float64_array || length < STAT_FIELDS) return false;
  statOf(static_cast<const double *>(data), st, dev, shortLived);
  return true;
}

/** The entry reply of a name-making request: the node is added to the table, then the kernel told. */
void replyEntryOf(Session *s, Req *r, const struct stat &st, uint64_t dev, bool shortLived, fuse_file_info *fi, const std::string &realDir = std::string()) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(s->nodesMu);
    Node *n = r->op == OP_LINK ? linked(s, r->ino, r->ino2, r->name2, st, dev, shortLived) : lookedUp(s, r->ino, r->name, st, dev, shortLived);
    if (!n) {
      if (fi) delete reinterpret_cast<FileHandle *>(fi->fh);
      fuse_reply_err(r->req, ENOENT);
      return;
    }
    id = n->id;
    if (!realDir.empty()) setLocal(n, realDir);
    if (fi) noteCached(n, st);
  }
  sendEntry(s, r->req, id, st, shortLived, fi);
}

napi_value replyErr(napi_env env, napi_callback_info info) {
  ReplyArgs a;
  if (!takeReq(env, info, a)) return nullptr;
  int err = (int)numArg(env, a.argv[0]);
  if (err < 0) err = -err;
  if (err == 0 && (a.r->op == OP_UNLINK || a.r->op == OP_RMDIR)) {
    std::lock_guard<std::mutex> lock(a.s->nodesMu);
    Node *parent = nodeOf(a.s, a.r->ino);
    Node *n = parent ? childOf(parent, a.r->name) : nullptr;
    if (n) detach(a.s, n, parent, a.r->name);
  } else if (err == 0 && a.r->op == OP_RENAME) {
    std::lock_guard<std::mutex> lock(a.s->nodesMu);
    renamed(a.s, a.r->ino, a.r->name, a.r->ino2, a.r->name2, ((unsigned)a.r->a & RENAME_EXCHANGE) != 0);
  }
  fuse_reply_err(a.r->req, err);
  finish(env, a.r);
  return nullptr;
}

/** replyEntry(session, id, stat, realDir?) for lookup, mknod, mkdir, symlink, link; realDir: the real path of a plain local folder. */
napi_value replyEntry(napi_env env, napi_callback_info info) {
  ReplyArgs a;
  if (!takeReq(env, info, a)) return nullptr;
  struct stat st;
  uint64_t dev = 0;
  bool shortLived = false;
  std::string realDir;
  optionalString(env, a.argv[1], realDir);
  if (!statArg(env, a.argv[0], st, &dev, &shortLived)) fuse_reply_err(a.r->req, EIO);
  else replyEntryOf(a.s, a.r, st, dev, shortLived, nullptr, realDir);
  finish(env, a.r);
  return nullptr;
}

/** replyAttr(session, id, stat) for getattr and setattr. */
napi_value replyAttr(napi_env env, napi_callback_info info) {
  ReplyArgs a;
  if (!takeReq(env, info, a)) return nullptr;
  struct stat st;
  bool shortLived = false;
  if (!statArg(env, a.argv[0], st, nullptr, &shortLived)) {
    fuse_reply_err(a.r->req, EIO);
  } else {
    {
      std::lock_guard<std::mutex> lock(a.s->nodesMu);
      Node *n = nodeOf(a.s, a.r->ino);
      if (n) told(n, st, shortLived);
    }
    fuse_reply_attr(a.r->req, &st, shortLived ? a.s->shortTimeout : a.s->attrTimeout);
  }
  finish(env, a.r);
  return nullptr;
}

/**
 * Fills an open reply: the handle (native reads and writes when fd >= 0), and whether the
 * page cache the file had may be kept: yes while its mtime and size are what they were at
 * the previous open.
 */
FileHandle *openHandle(Session *s, Req *r, int64_t jsfh, int fd, const struct stat *st, uint64_t nodeId, fuse_file_info &fi) {
  memset(&fi, 0, sizeof fi);
  FileHandle *fh = new FileHandle();
  fh->jsfh = jsfh;
  fh->fd = fd;
  fi.fh = reinterpret_cast<uint64_t>(fh);
  fi.flags = r->op == OP_CREATE ? (int)r->b : (int)r->a;
  if (st && nodeId) {
    std::lock_guard<std::mutex> lock(s->nodesMu);
    Node *n = nodeOf(s, nodeId);
    if (n) fi.keep_cache = noteCached(n, *st);
  }
  return fh;
}

/** replyOpen(session, id, jsfh, fd, stat?, backing?): backing, the id of another device's file's cached blocks. */
napi_value replyOpen(napi_env env, napi_callback_info info) {
  ReplyArgs a;
  if (!takeReq(env, info, a)) return nullptr;
  int64_t jsfh = (int64_t)numArg(env, a.argv[0]);
  int fd = (int)numArg(env, a.argv[1]);
  struct stat st;
  bool haveStat = fd >= 0 ? fstat(fd, &st) == 0 : statArg(env, a.argv[2], st);
  fuse_file_info fi;
  FileHandle *fh = openHandle(a.s, a.r, jsfh, fd, haveStat ? &st : nullptr, a.r->ino, fi);
  napi_valuetype backingType = napi_undefined;
  if (a.argv[3]) napi_typeof(env, a.argv[3], &backingType);
  if (backingType == napi_number) fh->backing = backingOf((uint32_t)numArg(env, a.argv[3]));
  if (fuse_reply_open(a.r->req, &fi) != 0) {
    delete fh;
    releaseInJs(a.s, a.r->path, jsfh);
  }
  finish(env, a.r);
  return nullptr;
}

/** replyCreate(session, id, stat, jsfh, fd) */
napi_value replyCreate(napi_env env, napi_callback_info info) {
  ReplyArgs a;
  if (!takeReq(env, info, a)) return nullptr;
  struct stat st;
  uint64_t dev = 0;
  bool shortLived = false;
  if (!statArg(env, a.argv[0], st, &dev, &shortLived)) {
    fuse_reply_err(a.r->req, EIO);
    finish(env, a.r);
    return nullptr;
  }
  fuse_file_info fi;
  openHandle(a.s, a.r, (int64_t)numArg(env, a.argv[1]), (int)numArg(env, a.argv[2]), nullptr, 0, fi);
  replyEntryOf(a.s, a.r, st, dev, shortLived, &fi);
  finish(env, a.r);
  return nullptr;
}

/**
 * replyCount(session, id, n): a read's byte count (the buffer handed to dispatch holds
 * them), a write's, or lseek's offset; negative: an errno.
 */
napi_value replyCount(napi_env env, napi_callback_info info) {
  ReplyArgs a;
  if (!takeReq(env, info, a)) return nullptr;
  double n = numArg(env, a.argv[0]);
  if (n < 0) fuse_reply_err(a.r->req, (int)-n);
  else if (a.r->op == OP_READ) fuse_reply_buf(a.r->req, a.r->bufData, (size_t)n);
  else if (a.r->op == OP_WRITE) fuse_reply_write(a.r->req, (size_t)n);
  else if (a.r->op == OP_LSEEK) fuse_reply_lseek(a.r->req, (off_t)n);
  else fuse_reply_err(a.r->req, EIO);
  finish(env, a.r);
  return nullptr;
}

bool bufferArg(napi_env env, napi_value v, const char *&data, size_t &len) {
  bool is = false;
  if (!v || napi_is_buffer(env, v, &is) != napi_ok || !is) return false;
  void *d;
  napi_get_buffer_info(env, v, &d, &len);
  data = static_cast<const char *>(d);
  return true;
}

/** replyBuffer(session, id, buffer) for readlink (the target's bytes), getxattr and listxattr (size rules). */
napi_value replyBuffer(napi_env env, napi_callback_info info) {
  ReplyArgs a;
  if (!takeReq(env, info, a)) return nullptr;
  const char *data;
  size_t len;
  if (!bufferArg(env, a.argv[0], data, len)) {
    fuse_reply_err(a.r->req, EIO);
  } else if (a.r->op == OP_READLINK) {
    std::string target(data, len);
    fuse_reply_readlink(a.r->req, target.c_str());
  } else {
    size_t size = (size_t)a.r->a;
    if (size == 0) fuse_reply_xattr(a.r->req, len);
    else if (len > size) fuse_reply_err(a.r->req, ERANGE);
    else fuse_reply_buf(a.r->req, data, len);
  }
  finish(env, a.r);
  return nullptr;
}

/** A typed array's elements when v is one of `want` type with `length` of them, else null. */
template <typename T>
const T *typedArrayArg(napi_env env, napi_value v, napi_typedarray_type want, size_t length) {
  napi_typedarray_type type;
  size_t count;
  void *data;
  if (!v || napi_get_typedarray_info(env, v, &type, &count, &data, nullptr, nullptr) != napi_ok) return nullptr;
  return type == want && count == length ? static_cast<const T *>(data) : nullptr;
}

/**
 * replyNames(session, id, names[], realDir | null, types: Uint8Array, attrs: Float64Array | null)
 * for a listing's first readdir: kept in its handle and served from there. types: each
 * name's DT_* (0: unknown); attrs: each one's stat as statOf reads one, one after another
 * (mode 0: none at hand).
 */
napi_value replyNames(napi_env env, napi_callback_info info) {
  ReplyArgs a;
  if (!takeReq(env, info, a)) return nullptr;
  uint32_t length = 0;
  if (!a.argv[0] || napi_get_array_length(env, a.argv[0], &length) != napi_ok || !a.r->dir) {
    fuse_reply_err(a.r->req, EIO);
    finish(env, a.r);
    return nullptr;
  }
  const uint8_t *types = typedArrayArg<uint8_t>(env, a.argv[2], napi_uint8_array, length);
  const double *attrs = typedArrayArg<double>(env, a.argv[3], napi_float64_array, (size_t)length * STAT_FIELDS);
  DirHandle *dh = a.r->dir;
  dh->names.clear();
  dh->names.reserve(length);
  dh->types.clear();
  dh->types.reserve(length);
  dh->attrs.clear();
  if (attrs) dh->attrs.reserve(length);
  std::string name;
  for (uint32_t i = 0; i < length; i++) {
    napi_value v;
    napi_get_element(env, a.argv[0], i, &v);
    if (!stringArg(env, v, name)) continue;
    dh->names.push_back(name);
    dh->types.push_back(types ? types[i] & 017 : DT_UNKNOWN);  // d_type is the 4 bits of S_IFMT
    if (!attrs) continue;
    dh->attrs.emplace_back();
    ListedAttr &la = dh->attrs.back();
    statOf(attrs + (size_t)i * STAT_FIELDS, la.st, &la.dev, &la.shortLived);
  }
  if (optionalString(env, a.argv[1], dh->realDir)) {
    std::lock_guard<std::mutex> lock(a.s->nodesMu);
    Node *dir = nodeOf(a.s, a.r->ino);
    if (dir) setLocal(dir, dh->realDir);
  }
  dh->loaded = true;
  serveDir(a.s, a.r->req, a.r->ino, dh, (size_t)a.r->a, (off_t)a.r->b, a.r->c != 0);
  finish(env, a.r);
  return nullptr;
}

/** replyStatfs(session, id, [bsize, frsize, blocks, bfree, bavail, files, ffree, favail, namemax]) */
napi_value replyStatfs(napi_env env, napi_callback_info info) {
  ReplyArgs a;
  if (!takeReq(env, info, a)) return nullptr;
  double f[9] = {0};
  for (uint32_t i = 0; i < 9; i++) {
    napi_value v;
    if (napi_get_element(env, a.argv[0], i, &v) == napi_ok) napi_get_value_double(env, v, &f[i]);
  }
  struct statvfs sv;
  memset(&sv, 0, sizeof sv);
  sv.f_bsize = (unsigned long)f[0];
  sv.f_frsize = (unsigned long)f[1];
  sv.f_blocks = (fsblkcnt_t)f[2];
  sv.f_bfree = (fsblkcnt_t)f[3];
  sv.f_bavail = (fsblkcnt_t)f[4];
  sv.f_files = (fsfilcnt_t)f[5];
  sv.f_ffree = (fsfilcnt_t)f[6];
  sv.f_favail = (fsfilcnt_t)f[7];
  sv.f_namemax = (unsigned long)f[8];
  fuse_reply_statfs(a.r->req, &sv);
  finish(env, a.r);
  return nullptr;
}

// ---------------------------------------------------------------------------------
// Mounting and unmounting.

void *loopMain(void *arg) {
  Session *s = static_cast<Session *>(arg);
  fuse_loop_config *cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(cfg, 0);
  fuse_loop_cfg_set_max_threads(cfg, s->maxThreads);
  fuse_session_loop_mt(s->se, cfg);
  fuse_loop_cfg_destroy(cfg);
  s->closed = true;
  Req *r = newReq(nullptr, OP_CLOSED, 0);
  napi_call_threadsafe_function(s->tsfn, r, napi_tsfn_nonblocking);
  return nullptr;
}

/** mount(mountpoint, options string, entryTimeout, attrTimeout, maxThreads, debug, dispatch, shortTimeout, writeback, readOnly, inodeBudget) -> session index */
napi_value mount(napi_env env, napi_callback_info info) {
  napi_value argv[11];
  size_t argc = 11;
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 11) {
    napi_throw_error(env, nullptr, "sdfuse.mount: 11 arguments expected");
    return nullptr;
  }
  size_t len;
  std::string mountpoint, options;
  CHECK(napi_get_value_string_utf8(env, argv[0], nullptr, 0, &len));
  mountpoint.resize(len);
  CHECK(napi_get_value_string_utf8(env, argv[0], mountpoint.data(), len + 1, &len));
  CHECK(napi_get_value_string_utf8(env, argv[1], nullptr, 0, &len));
  options.resize(len);
  CHECK(napi_get_value_string_utf8(env, argv[1], options.data(), len + 1, &len));
  bool debug = false;
  napi_get_value_bool(env, argv[5], &debug);

  Session *s = new Session();
  s->entryTimeout = numArg(env, argv[2]);
  s->attrTimeout = numArg(env, argv[3]);
  s->maxThreads = (int)numArg(env, argv[4]);
  s->shortTimeout = numArg(env, argv[7]);
  napi_get_value_bool(env, argv[8], &s->writeback);
  napi_get_value_bool(env, argv[9], &s->readOnly);
  s->nodeBudget = (uint64_t)std::max(0.0, numArg(env, argv[10]));
  Node *root = new Node();
  root->id = FUSE_ROOT_ID;
  root->nlookup = 1;
  s->nodes[FUSE_ROOT_ID] = root;

  std::vector<std::string> argStrings = {"sdfs", "-o", options};
  if (debug) argStrings.push_back("-d");
  std::vector<char *> cargs;
  for (auto &a : argStrings) cargs.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT((int)cargs.size(), cargs.data());
  s->se = fuse_session_new(&args, &OPS, sizeof OPS, s);
  if (!s->se) {
    delete root;
    delete s;
    napi_throw_error(env, "EINVAL", "could not start a FUSE session (bad mount options?)");
    return nullptr;
  }
  if (fuse_session_mount(s->se, mountpoint.c_str()) != 0) {
    fuse_session_destroy(s->se);
    delete root;
    delete s;
    napi_throw_error(env, "EIO", "the kernel refused the FUSE mount (is fuse3 installed and /dev/fuse usable?)");
    return nullptr;
  }
  napi_value name;
  napi_create_string_utf8(env, "sdfuse", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[6], nullptr, name, 0, 1, nullptr, nullptr, s, callJs, &s->tsfn) != napi_ok) {
    fuse_session_unmount(s->se);
    fuse_session_destroy(s->se);
    delete s;
    napi_throw_error(env, nullptr, "sdfuse: could not make the request queue");
    return nullptr;
  }
  {
    std::lock_guard<std::mutex> lock(sessionsMu);
    s->index = (int)sessions.size();
    sessions.push_back(s);
  }
  if (pthread_create(&s->loop, nullptr, loopMain, s) != 0) {
    fuse_session_unmount(s->se);
    napi_throw_error(env, nullptr, "sdfuse: could not start the FUSE thread");
    return nullptr;
  }
  s->notifier = std::thread(notifierMain, s);
  return num(env, s->index);
}

Session *sessionArg(napi_env env, napi_value v) {
  double i = numArg(env, v);
  std::lock_guard<std::mutex> lock(sessionsMu);
  if (i < 0 || i >= sessions.size()) return nullptr;
  return sessions[(size_t)i];
}

/** A session function's arguments (n of them, the session first; missing ones undefined) and its session, if any. */
Session *sessionCall(napi_env env, napi_callback_info info, napi_value *argv, size_t n) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc == 0) return nullptr;
  for (size_t i = argc; i < n; i++) napi_get_undefined(env, &argv[i]);
  return sessionArg(env, argv[0]);
}

/**
 * Ends the session once the kernel mount is gone (JS unmounts first): waits for the FUSE
 * thread, answers what JS never answered, frees the session. close(session).
 */
napi_value closeSession(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Session *s = sessionCall(env, info, argv, 1);
  if (!s) return nullptr;
  if (!s->closed) {
    // Still serving (files held open after a lazy unmount): let the process end without it.
    fuse_session_exit(s->se);
    napi_unref_threadsafe_function(env, s->tsfn);
    return nullptr;
  }
  pthread_join(s->loop, nullptr);
  {
    std::lock_guard<std::mutex> lock(s->invalMu);
    s->notifierStop = true;
  }
  s->invalCv.notify_one();
  s->notifier.join();
  {
    std::lock_guard<std::mutex> lock(s->reqsMu);
    for (auto &p : s->pending) {
      if (p.second->bufRef) napi_delete_reference(env, p.second->bufRef);
      failAndFree(p.second, EIO);
    }
    s->pending.clear();
  }
  fuse_session_unmount(s->se);
  fuse_session_destroy(s->se);
  s->se = nullptr;
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  {
    std::lock_guard<std::mutex> lock(sessionsMu);
    sessions[(size_t)s->index] = nullptr;
  }
  for (auto &p : s->nodes) delete p.second;
  delete s;
  return nullptr;
}

/**
 * invalidate(session, folder, mountPath, nameOrRealPath): queues an invalidation for the
 * notifier thread. folder false: the name under the folder at mountPath; true: the folder at
 * mountPath, compared with the disk at realPath.
 */
napi_value invalidate(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  Session *s = sessionCall(env, info, argv, 4);
  if (!s || s->closed) return nullptr;
  InvalJob job;
  napi_get_value_bool(env, argv[1], &job.folder);
  if (!stringArg(env, argv[2], job.mountPath) || !stringArg(env, argv[3], job.nameOrReal)) return nullptr;
  s->invalPending++;
  {
    std::lock_guard<std::mutex> lock(s->invalMu);
    s->invalQueue.push_back(std::move(job));
  }
  s->invalCv.notify_one();
  return nullptr;
}

/**
 * invalidations(session) -> [queued, sent, refused, nodes, pruneAsked, pruneUnsupported]:
 * refused are those the kernel did not take (not counting names it had not cached); nodes
 * the kernel inodes held now; pruneAsked those offered to the kernel to forget (the budget).
 */
napi_value invalidations(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Session *s = sessionCall(env, info, argv, 1);
  size_t nodes = 0;
  if (s) {
    std::lock_guard<std::mutex> lock(s->nodesMu);
    nodes = s->nodes.size();
  }
  napi_value arr;
  napi_create_array_with_length(env, 6, &arr);
  napi_set_element(env, arr, 0, num(env, s ? s->invalPending.load() : 0));
  napi_set_element(env, arr, 1, num(env, s ? (double)s->invalSent.load() : 0));
  napi_set_element(env, arr, 2, num(env, s ? (double)s->invalFailed.load() : 0));
  napi_set_element(env, arr, 3, num(env, (double)nodes));
  napi_set_element(env, arr, 4, num(env, s ? (double)s->pruneAsked.load() : 0));
  napi_set_element(env, arr, 5, num(env, s && s->pruneUnsupported ? 1 : 0));
  return arr;
}

// ---------------------------------------------------------------------------------
// System calls Node has no binding for (used by the actions that change a location).

bool stringArg(napi_env env, napi_value v, std::string &out) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) return false;
  out.resize(len);
  return napi_get_value_string_utf8(env, v, out.data(), len + 1, &len) == napi_ok;
}

/** mknod(path, mode, dev) -> errno: fifos, sockets and device nodes. */
napi_value sysMknod(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc = 3;
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  std::string p;
  if (argc < 3 || !stringArg(env, argv[0], p)) return num(env, EINVAL);
  return num(env, mknod(p.c_str(), (mode_t)numArg(env, argv[1]), (dev_t)numArg(env, argv[2])) == 0 ? 0 : errno);
}

/**
 * utimens(path, atime s, atime ns, mtime s, mtime ns) -> errno: exact nanoseconds, on a
 * link itself; ns may be UTIME_NOW or UTIME_OMIT.
 */
napi_value sysUtimens(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  size_t argc = 5;
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  std::string p;
  if (argc < 5 || !stringArg(env, argv[0], p)) return num(env, EINVAL);
  struct timespec ts[2];
  ts[0].tv_sec = (time_t)numArg(env, argv[1]);
  ts[0].tv_nsec = (long)numArg(env, argv[2]);
  ts[1].tv_sec = (time_t)numArg(env, argv[3]);
  ts[1].tv_nsec = (long)numArg(env, argv[4]);
  return num(env, utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno);
}

/** renameat2(from, to, flags) -> errno: RENAME_NOREPLACE, RENAME_EXCHANGE. */
napi_value sysRename(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc = 3;
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  std::string from, to;
  if (argc < 3 || !stringArg(env, argv[0], from) || !stringArg(env, argv[1], to)) return num(env, EINVAL);
  return num(env, renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), (unsigned)numArg(env, argv[2])) == 0 ? 0 : errno);
}

/** punchHole(fd, offset, length) -> errno: frees a range of a file (its size kept), as a cache evicting a block. */
napi_value sysPunchHole(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc = 3;
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 3) return num(env, EINVAL);
  int fd = (int)numArg(env, argv[0]);
  return num(env, fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)numArg(env, argv[1]), (off_t)numArg(env, argv[2])) == 0 ? 0 : errno);
}

/**
 * trimMemory() -> 1 if memory went back to the system: the heap pages malloc keeps free
 * (its per-thread arenas hold what a finished worker thread or a burst of start-up work
 * freed: 50 MB or more of a mount's resident memory that nothing uses).
 */
napi_value trimMemory(napi_env env, napi_callback_info info) {
  return num(env, malloc_trim(0));
}

// ---------------------------------------------------------------------------------
// Cached blocks of other devices' files, read on the FUSE threads (see Backing).

/** backing(fd, size, span) -> id (> 0), or -errno: fd is the cache's data file, duplicated here. */
napi_value openBacking(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc = 3;
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 3) return num(env, -EINVAL);
  double span = numArg(env, argv[2]), size = numArg(env, argv[1]);
  if (!(span >= 4096) || !(size >= 0)) return num(env, -EINVAL);
  int fd = fcntl((int)numArg(env, argv[0]), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return num(env, -errno);
  auto b = std::make_shared<Backing>();
  b->fd = fd;
  b->size = (uint64_t)size;
  b->span = (uint64_t)span;
  b->ready.assign((size_t)((b->size + b->span - 1) / b->span), 0);
  std::lock_guard<std::mutex> lock(backingsMu);
  uint32_t id = nextBacking++;
  if (nextBacking == 0) nextBacking = 1;
  backings[id] = b;
  return num(env, id);
}

/**
 * What markBacking and expectBacking share: their arguments (id, block, flag), and the
 * block's state changed by `change(backing, state, flag)` under the backing's lock. An
 * unknown id, or a block outside the file, changes nothing.
 */
template <typename Change>
napi_value changeBlockState(napi_env env, napi_callback_info info, Change change) {
  napi_value argv[3];
  size_t argc = 3;
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 3) return nullptr;
  std::shared_ptr<Backing> b = backingOf((uint32_t)numArg(env, argv[0]));
  if (!b) return nullptr;
  double index = numArg(env, argv[1]);
  bool flag = false;
  napi_get_value_bool(env, argv[2], &flag);
  std::unique_lock<std::shared_mutex> lock(b->mu);
  if (!(index >= 0 && index < b->ready.size())) return nullptr;
  change(*b, b->ready[(size_t)index], flag);
  return nullptr;
}

/** markBacking(id, block, ready): a block verified in the data file, or about to be freed (waits for reads of it here). */
napi_value markBacking(napi_env env, napi_callback_info info) {
  return changeBlockState(env, info, [](Backing &b, uint8_t &state, bool ready) {
    state = ready ? BLOCK_READY : BLOCK_ABSENT;
    b.changed.notify_all();
  });
}

/**
 * expectBacking(id, block, coming): a background fetch is bringing an absent block into the
 * cache (reads of it wait here for it), or it will not come after all (they go to JS).
 * Never touches a ready block.
 */
napi_value expectBacking(napi_env env, napi_callback_info info) {
  return changeBlockState(env, info, [](Backing &b, uint8_t &state, bool coming) {
    if (coming && state == BLOCK_ABSENT) state = BLOCK_COMING;
    if (!coming && state == BLOCK_COMING) {
      state = BLOCK_ABSENT;
      b.changed.notify_all();
    }
  });
}

/** unbacking(id): JS is done with it; handles still holding it keep it until released. */
napi_value closeBacking(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t argc = 1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 1) return nullptr;
  std::shared_ptr<Backing> b;
  {
    std::lock_guard<std::mutex> lock(backingsMu);
    auto it = backings.find((uint32_t)numArg(env, argv[0]));
    if (it == backings.end()) return nullptr;
    b = it->second;
    backings.erase(it);
  }
  // Handles that still hold it read nothing more from it: every block is JS's again.
  std::unique_lock<std::shared_mutex> lock(b->mu);
  std::fill(b->ready.begin(), b->ready.end(), BLOCK_ABSENT);
  b->changed.notify_all();
  return nullptr;
}

napi_value init(napi_env env, napi_value exports) {
  struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"mount", mount},           {"close", closeSession},    
      {"invalidate", invalidate}, {"replyErr", replyErr},     {"replyEntry", replyEntry},
      {"replyAttr", replyAttr},   {"replyOpen", replyOpen},   {"replyCreate", replyCreate},
      {"replyCount", replyCount}, {"replyBuffer", replyBuffer},
      {"replyNames", replyNames}, {"replyStatfs", replyStatfs}, {"mknod", sysMknod},
      {"utimens", sysUtimens},    {"rename", sysRename},      {"invalidations", invalidations},
      {"punchHole", sysPunchHole}, {"backing", openBacking},   {"markBacking", markBacking},
      {"expectBacking", expectBacking}, {"unbacking", closeBacking}, {"trimMemory", trimMemory},
  };
  for (auto &f : fns) {
    napi_value v;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &v);
    napi_set_named_property(env, exports, f.name, v);
  }
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
