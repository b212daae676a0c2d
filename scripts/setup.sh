#!/usr/bin/env bash
# Installs what sdfs needs on Debian: the FUSE libraries (apt), the npm packages, and
# the TypeScript build. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -e /usr/lib/x86_64-linux-gnu/libfuse.so.2 ] || ls /usr/lib/*/libfuse.so.2 >/dev/null 2>&1 || need_apt+=(libfuse2)
command -v fusermount >/dev/null 2>&1 || command -v fusermount3 >/dev/null 2>&1 || need_apt+=(fuse3)
command -v getfattr >/dev/null 2>&1 || need_apt+=(attr)
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

echo "setup: building" >&2
npx tsc -p tsconfig.json
