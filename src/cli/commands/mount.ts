// sd mount / sd umount: run this device with its tree mounted, and unmount it.
import path from 'node:path';
import { forceUnmount, isMounted } from '../../fuse/mount.js';
import { startNode } from '../../node.js';
import { SdError } from '../../errors.js';
import { ProgressLine } from '../progress.js';
import { UsageError, type Command, type CommandContext } from '../command.js';

const DEFAULT_MOUNTPOINT = '/sd';

function mountpointOf(ctx: CommandContext): string {
  const [given, ...extra] = ctx.positionals;
  if (extra.length > 0) throw new UsageError('takes at most one MOUNTPOINT');
  return path.resolve(given ?? DEFAULT_MOUNTPOINT);
}

export const mountCommand: Command = {
  name: 'mount',
  usage: `Usage: sd mount [MOUNTPOINT] [--read-only] [--attr-timeout SECONDS]

Mounts every device's tree at MOUNTPOINT (default /sd) and keeps the index true while
it runs:
  MOUNTPOINT/<device>/<location>/...   the files, with real names, sizes, modes, times
  MOUNTPOINT/.content/<content-id>     any local copy of that content
xattrs user.sd.content_id, user.sd.sdpath and user.sd.copies on every file.
Changes made through the mount go through sdfs's actions and are in the index at once;
changes made on disk show within about a second. Ctrl-C (or SIGTERM) unmounts cleanly.
A stale mount left by a crash is cleaned at start.
  --read-only          refuse every change (EROFS)
  --attr-timeout S     seconds the kernel caches names and attributes (default 1); higher
                       is faster for big listings, but outside changes show later`,
  options: { 'read-only': { type: 'boolean' }, 'attr-timeout': { type: 'string' } },
  async run(ctx) {
    const mountpoint = mountpointOf(ctx);
    const timeoutText = ctx.values['attr-timeout'] as string | undefined;
    const attrTimeout = timeoutText === undefined ? undefined : Number(timeoutText);
    if (attrTimeout !== undefined && !(attrTimeout >= 0)) throw new UsageError('--attr-timeout takes a number of seconds');
    // A peer's index arriving in bulk (a new device's backfill) draws a bar on a terminal.
    const progress = new ProgressLine();
    const onSyncProgress = (_deviceId: string, p: { device: string; applied: number; length: number }) => {
      if (p.applied >= p.length) progress.clear();
      else progress.bar(`index of ${p.device}`, p.applied, p.length);
    };
    const node = await startNode({ libraryDir: ctx.libraryDir, mountpoint, readOnly: ctx.values['read-only'] === true, attrTimeout, onSyncProgress });
    const slug = node.library.device.slug;
    ctx.out.result({ mounted: mountpoint, device: slug, pid: process.pid }, () => [`Mounted at ${mountpoint} (this device: ${path.join(mountpoint, slug)}); Ctrl-C to unmount`]);
    const reason = await Promise.race([ctx.stopped, node.ended.then(() => 'unmounted from outside')]);
    ctx.out.info(`sd: ${reason}: stopping`);
    await node.stop();
    return 0;
  },
};

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
