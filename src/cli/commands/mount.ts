// sd mount / sd umount: run this device with its tree mounted, and unmount it.
import path from 'node:path';
import { forceUnmount, isMounted } from '../../fuse/mount.js';
import { startNode, type StartupEvent } from '../../node.js';
import { parseBootstrap } from '../../replication/swarm.js';
import { SdError } from '../../errors.js';
import { UsageError, type Command, type CommandContext } from '../command.js';
import { ProgressLine } from '../progress.js';
import { parseSize } from '../format.js';
import { PREFETCH_MODES, type PrefetchMode } from '../../replication/remote-file.js';

const DEFAULT_MOUNTPOINT = '/sd';

function mountpointOf(ctx: CommandContext): string {
  const [given, ...extra] = ctx.positionals;
  if (extra.length > 0) throw new UsageError('takes at most one MOUNTPOINT');
  return path.resolve(given ?? DEFAULT_MOUNTPOINT);
}

export const mountCommand: Command = {
  name: 'mount',
  usage: `Usage: sd mount [MOUNTPOINT] [--bootstrap HOST:PORT,...] [--read-only] [--attr-timeout SECONDS] [--cache-max SIZE]
                [--prefetch whole|seek|off] [--inode-budget N]

Mounts every device's tree at MOUNTPOINT (default /sd) and keeps the index true while
it runs:
  MOUNTPOINT/<device>/<location>/...   the files, with real names, sizes, modes, times
  MOUNTPOINT/<peer>/<location>/...     a paired device's files (read-only), listed from
                                       its replicated index, bytes fetched when read
  MOUNTPOINT/.content/<content-id>     any local copy of that content
xattrs user.sd.content_id, user.sd.sdpath and user.sd.copies on every file.
Changes made through the mount go through sdfs's actions and are in the index at once;
changes made on disk show within about a second (the kernel is told to drop what it
cached when the watcher sees them). The mount serves at once; changes made while nothing
watched (each location compared with the disk by a worker thread) and a new device log's
first snapshot are caught up after, and a line says when each is done.
Ctrl-C (or SIGTERM) unmounts cleanly.
A stale mount left by a crash is cleaned at start.
  --bootstrap H:P,...  DHT bootstrap nodes (also SD_BOOTSTRAP; default: the public DHT).
                       The swarm starts with the first paired device ('sd pair'), or at
                       once when bootstrap nodes are given
  --cache-max SIZE     disk cache for other devices' file blocks (default 2GiB)
  --prefetch MODE      once another device's file is read sequentially (a copy, a
                       video playing), fetch it into the cache in the background:
                       whole  from where it is read to the end, then the rest, when it
                                     fits in half the cache (default)
                       seek   from where it is read to the end (a seek moves it)
                       off    only a few blocks ahead of the reader
  --read-only          refuse every change (EROFS)
  --inode-budget N     files and folders the kernel may keep looked up (default 100000,
                       about 35 MB; 0: no limit). Past it, those looked up longest ago
                       that nothing uses are forgotten (Linux 6.16 or later), and looked
                       up again when next used: the mount's memory stays bounded however
                       big the trees a find or a backup walks
  --attr-timeout S     seconds the kernel keeps local files' names, attributes and
                       listings (default 60); a change made outside the mount still shows
                       at once, open files included (sdfs tells the kernel what changed)
'sd testnet' runs a local DHT to pass to --bootstrap.`,
  options: { 'read-only': { type: 'boolean' }, 'attr-timeout': { type: 'string' }, bootstrap: { type: 'string' }, 'cache-max': { type: 'string' }, prefetch: { type: 'string' }, 'inode-budget': { type: 'string' } },
  async run(ctx) {
    const mountpoint = mountpointOf(ctx);
    const timeoutText = ctx.values['attr-timeout'] as string | undefined;
    const attrTimeout = timeoutText === undefined ? undefined : Number(timeoutText);
    if (attrTimeout !== undefined && !(attrTimeout >= 0)) throw new UsageError('--attr-timeout takes a number of seconds');
    const bootstrap = parseBootstrap((ctx.values.bootstrap as string | undefined) ?? process.env.SD_BOOTSTRAP);
    const cacheText = ctx.values['cache-max'] as string | undefined;
    const cacheMaxBytes = cacheText === undefined ? undefined : parseSize(cacheText);
    if (cacheMaxBytes === undefined && cacheText !== undefined) throw new UsageError(`--cache-max takes a size like 500M or 10GiB, not '${cacheText}'`);
    const prefetch = ctx.values.prefetch as string | undefined;
    if (prefetch !== undefined && !PREFETCH_MODES.includes(prefetch as PrefetchMode)) throw new UsageError(`--prefetch takes ${PREFETCH_MODES.join(', ')}, not '${prefetch}'`);
    const budgetText = ctx.values['inode-budget'] as string | undefined;
    const inodeBudget = budgetText === undefined ? undefined : Number(budgetText);
    if (inodeBudget !== undefined && !(Number.isInteger(inodeBudget) && inodeBudget >= 0)) throw new UsageError(`--inode-budget takes a whole number of files and folders (0: no limit), not '${budgetText}'`);
    // A peer's index arriving in bulk (a new device's backfill) draws a bar on a terminal.
    const progress = new ProgressLine();
    const onSyncProgress = (_deviceId: string, p: { device: string; applied: number; length: number }) => {
      if (p.applied >= p.length) progress.clear();
      else progress.bar(`index of ${p.device}`, p.applied, p.length);
    };
    // What runs after the mount is up, said once the mount is (events before it wait).
    let mounted = false;
    const early: StartupEvent[] = [];
    const onStartup = (e: StartupEvent) => {
      if (!mounted) return void early.push(e);
      ctx.out.result({ startup: e }, () => `sd: ${describeStartup(e)}`);
    };
    const node = await startNode({
      libraryDir: ctx.libraryDir,
      mountpoint,
      readOnly: ctx.values['read-only'] === true,
      attrTimeout,
      inodeBudget,
      bootstrap,
      cacheMaxBytes,
      prefetch: prefetch as PrefetchMode | undefined,
      onWarning: (m) => ctx.out.info(`sd: warning: ${m}`),
      onSyncProgress,
      onStartup,
    });
    const slug = node.library.device.slug;
    ctx.out.result({ mounted: mountpoint, device: slug, pid: process.pid }, () => [`Mounted at ${mountpoint} (this device: ${path.join(mountpoint, slug)}); Ctrl-C to unmount`]);
    mounted = true;
    early.splice(0).forEach(onStartup);
    const reason = await Promise.race([ctx.stopped, node.ended.then(() => 'unmounted from outside')]);
    ctx.out.info(`sd: ${reason}: stopping`);
    await node.stop();
    return 0;
  },
};

function describeStartup(e: StartupEvent): string {
  switch (e.kind) {
    case 'diffed':
      return `${e.location}: compared with the disk, ${e.folders} folders and ${e.entries} entries in ${e.seconds} s; ${e.changedFolders === 0 ? 'no change' : `${e.changedFolders} changed folders re-read`}`;
    case 'log-snapshot':
      return `device log started: ${e.changes} entries and records of the index, in ${e.blocks} blocks (${e.seconds} s)`;
    case 'up-to-date':
      return `up to date with the disk, ${e.seconds} s after start`;
    case 'pending-recovered': {
      const sent = `${e.recovered} new file${e.recovered === 1 ? '' : 's'} in other devices' trees left unsent by a stopped mount, queued to send`;
      const lost = e.withdrawn.map((w) => `${w.path} cannot be sent and is no longer shown (${w.reason})`);
      return (e.recovered > 0 ? [sent, ...lost] : lost).join('; ');
    }
  }
}

export const umountCommand: Command = {
  name: 'umount',
  usage: `Usage: sd umount [MOUNTPOINT]

Unmounts MOUNTPOINT (default /sd). The 'sd mount' process serving it then exits on its
own; a stale mount left by a crashed process is cleaned the same way.`,
  async run(ctx) {
    const mountpoint = mountpointOf(ctx);
    if (!isMounted(mountpoint)) throw new SdError('NOT_FOUND', `${mountpoint} is not mounted`);
    await forceUnmount(mountpoint);
    ctx.out.result({ unmounted: mountpoint }, () => `Unmounted ${mountpoint}`);
  },
};
