#!/usr/bin/env bash
# Installs what sdfs needs on Debian: the FUSE libraries (apt), the npm packages, and
# the TypeScript build. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v fusermount3 >/dev/null 2>&1 || need_apt+=(fuse3)
# sdfs's own FUSE binding is built against libfuse3 (headers and pkg-config file).
[ -e /usr/include/fuse3/fuse_lowlevel.h ] || need_apt+=(libfuse3-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v getfattr >/dev/null 2>&1 || need_apt+=(attr)
# A C/C++ toolchain: better-sqlite3 and sdfs's FUSE binding build from source.
{ command -v g++ && command -v make && command -v python3; } >/dev/null 2>&1 || need_apt+=(build-essential python3)
# The tests copy into peers' trees with rsync, as a backup would.
command -v rsync >/dev/null 2>&1 || need_apt+=(rsync)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing ${need_apt[*]} with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: the mount needs ${need_apt[*]}; run: sudo apt-get install -y ${need_apt[*]}" >&2
  fi
fi

# npm ci when the installed tree is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages (better-sqlite3 builds from source: 1-2 minutes)" >&2
  # Exactly the locked tree on every machine. @napi-rs/blake-hash is pinned at 1.3.4:
  # 1.3.6 names platform packages that were never published at that version, so its
  # lock file is incomplete and `npm ci` refuses it.
  npm ci --no-audit --no-fund --loglevel=error
fi

# sdfs's FUSE binding (src/fuse/native), built when missing or older than its source.
native=src/fuse/native
addon=$native/build/Release/sdfuse.node
if [ ! -e "$addon" ] || [ "$native/sdfuse.cc" -nt "$addon" ] || [ "$native/binding.gyp" -nt "$addon" ]; then
  echo "setup: building the FUSE binding" >&2
  # Node's own headers when they are installed beside it (node-gyp would download them otherwise).
  prefix=$(dirname "$(dirname "$(command -v node)")")
  nodedir=()
  [ -e "$prefix/include/node/node_api.h" ] && nodedir=(--nodedir="$prefix")
  (cd "$native" && ../../../node_modules/.bin/node-gyp rebuild "${nodedir[@]}" --loglevel=error >/dev/null) ||
    { echo "setup: building the FUSE binding failed (needs libfuse3-dev, pkg-config and a C++ compiler)" >&2; exit 1; }
fi

echo "setup: building" >&2
npx tsc -p tsconfig.json
# The commands that open only the library, each in one file: they start ~10 ms sooner.
node build/scripts/bundle-cli.js
