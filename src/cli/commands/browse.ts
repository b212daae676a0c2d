// sd ls, sd stat, sd cat: read the virtual tree from the library, no mount needed.
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { SdError } from '../../errors.js';
import { listDevices } from '../../vdfs/device.js';
import { EntryStore } from '../../vdfs/entries.js';
import { EntryViewer, entryDetails, viewEntry, type EntryView } from '../../vdfs/listing.js';
import { listLocations } from '../../vdfs/locations.js';
import { resolvePath, type Resolved } from '../../vdfs/sdpath.js';
import { UsageError, type Command, type CommandContext } from '../command.js';
import { formatBytes, formatMode, formatTime, printable, table } from '../format.js';

function onePath(ctx: CommandContext, command: string, optional = false): string {
  const [target, ...extra] = ctx.positionals;
  if (extra.length > 0 || (target === undefined && !optional)) throw new UsageError(`sd ${command} takes one SDPATH (or a local path inside a location)`);
  return target ?? 'sd://';
}

function devicesListing(ctx: CommandContext): Array<{ sdpath: string; name: string; kind: string; local: boolean; locations: number }> {
  const { db } = ctx.library();
  return listDevices(db).map((d) => ({ sdpath: `sd://${d.slug}/`, name: d.name, kind: 'device', local: d.isLocal, locations: listLocations(db, d.id).length }));
}

function listing(ctx: CommandContext, resolved: Resolved): EntryView[] {
  const { db } = ctx.library();
  const store = new EntryStore(db);
  if (resolved.kind === 'device') {
    return listLocations(db, resolved.device.id).flatMap((l) => {
      const root = l.rootEntryId === null ? undefined : store.get(l.rootEntryId);
      return root ? [viewEntry(resolved.device, l, [], root)] : [];
    });
  }
  if (resolved.kind === 'content') {
    return new EntryViewer(db).views(resolved.entries);
  }
  if (resolved.kind !== 'entry') return [];
  const { device, location, entry, relPath } = resolved;
  if (entry.kind !== 'dir') return [viewEntry(device, location, relPath, entry)];
  return store.children(entry.id).map((child) => viewEntry(device, location, [...relPath, child.name], child));
}

export const lsCommand: Command = {
  name: 'ls',
  usage: `Usage: sd ls [SDPATH]

  sd ls                       the devices of this library
  sd ls sd://laptop           a device's locations
  sd ls sd://laptop/photos/x  a folder's entries (or one file)
  sd ls sd://content/<id>     every copy of that content
A plain local path inside a location works too (sd ls ~/Photos).`,
  run(ctx) {
    const target = onePath(ctx, 'ls', true);
    const resolved = resolvePath(ctx.library().db, target);
    if (resolved.kind === 'root') {
      const devices = devicesListing(ctx);
      ctx.out.result(devices, () => table(devices.map((d) => [d.sdpath, d.name + (d.local ? ' (this device)' : ''), `${d.locations} location${d.locations === 1 ? '' : 's'}`])));
      return;
    }
    const rows = listing(ctx, resolved);
    ctx.out.result(rows, () =>
      table(
        rows.map((r) => [formatMode(r.kind, parseInt(r.mode, 8)), formatBytes(r.size), formatTime(Date.parse(r.mtime)), printable(r.name) + (r.kind === 'dir' ? '/' : '')]),
        new Set([1]),
      ),
    );
  },
};

export const statCommand: Command = {
  name: 'stat',
  usage: 'Usage: sd stat SDPATH\n\nKind, size (folders: everything below), times, inode, mode, content id, full hash and copies.',
  run(ctx) {
    const target = onePath(ctx, 'stat');
    const library = ctx.library();
    const resolved = resolvePath(library.db, target);
    if (resolved.kind !== 'entry') throw new SdError('USAGE', `${target} is not a file or folder; use 'sd ls' for devices and content`);
    const d = entryDetails(library.db, resolved.device, resolved.location, resolved.relPath, resolved.entry);
    ctx.out.result(d, () =>
      table([
        ['sdpath', d.sdpath],
        ['path', d.path ?? '-'],
        ['kind', d.kind],
        ['size', `${formatBytes(d.size)} (${d.size} bytes)`],
        ['modified', d.mtime],
        ['mode', `${d.mode} ${formatMode(d.kind, parseInt(d.mode, 8))}`],
        ['inode', String(d.inode)],
        ['content id', d.contentId ?? '-'],
        ['full hash', d.fullHash ?? '-'],
        ['copies', String(d.copies)],
        ...(d.children !== undefined ? [['children', String(d.children)]] : []),
      ]),
    );
  },
};

export const catCommand: Command = {
  name: 'cat',
  usage: 'Usage: sd cat SDPATH\n\nWrites the file (or a local copy of sd://content/<id>) to stdout.',
  async run(ctx) {
    const target = onePath(ctx, 'cat');
    const library = ctx.library();
    const resolved = resolvePath(library.db, target);
    let file: string;
    if (resolved.kind === 'entry') {
      const { device, location, entry, relPath } = resolved;
      if (entry.kind === 'dir') throw new SdError('IS_A_DIRECTORY', `${target} is a folder; 'sd ls' lists it`);
      if (!device.isLocal) throw new SdError('IO', `${target} is on device '${device.name}'; its bytes are read through a running 'sd mount'`);
      file = path.join(location.rootPath, ...relPath);
      if (entry.kind === 'symlink') throw new SdError('INVALID_PATH', `${target} is a symbolic link to ${fs.readlinkSync(file)}; sdfs does not follow links`);
    } else if (resolved.kind === 'content') {
      const local = new EntryViewer(library.db).views(resolved.entries).find((v) => v.path !== null);
      if (!local?.path) throw new SdError('NOT_FOUND', `no copy of content ${resolved.contentId} is on this device`);
      file = local.path;
    } else {
      throw new SdError('IS_A_DIRECTORY', `${target} is not a file`);
    }
    try {
      await pipeline(fs.createReadStream(file), process.stdout, { end: false });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') return 0;
      throw new SdError(code === 'ENOENT' ? 'NOT_FOUND' : 'IO', `cannot read ${file}: ${code ?? String(err)}${code === 'ENOENT' ? " (gone since it was indexed; 'sd index' updates the library)" : ''}`);
    }
  },
};
