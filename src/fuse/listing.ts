// A folder's names as readdir answers them (types.ts Listing), with each name's type where
// sdfs knows it without a lookup: from a real folder's own readdir, a peer's index entry,
// or what a folder of the virtual tree holds by construction.
import type fs from 'node:fs';
import type { EntryKind } from '../vdfs/entries.js';
import type { Listing } from './types.js';

/** d_type values (dirent.h); DT_UNKNOWN makes whoever reads the listing stat the name. */
export const DT_UNKNOWN = 0;
export const DT_DIR = 4;
export const DT_REG = 8;
export const DT_LNK = 10;
const DT_FIFO = 1;
const DT_CHR = 2;
const DT_BLK = 6;
const DT_SOCK = 12;

const KIND_TYPES: Record<EntryKind, number> = { file: DT_REG, dir: DT_DIR, symlink: DT_LNK };

/** An index entry's type, as its attributes (stat.ts fromEntry) give it. */
export function typeOfKind(kind: EntryKind): number {
  return KIND_TYPES[kind] ?? DT_UNKNOWN;
}

/** A real file's type as its folder's readdir gave it (Node lstat's a name the file system gave none for). */
function typeOfDirent(d: fs.Dirent): number {
  if (d.isFile()) return DT_REG;
  if (d.isDirectory()) return DT_DIR;
  if (d.isSymbolicLink()) return DT_LNK;
  if (d.isFIFO()) return DT_FIFO;
  if (d.isSocket()) return DT_SOCK;
  if (d.isCharacterDevice()) return DT_CHR;
  if (d.isBlockDevice()) return DT_BLK;
  return DT_UNKNOWN;
}

/** A real folder's listing (fs.readdirSync with withFileTypes). */
export function listingOfDirents(dirents: readonly fs.Dirent[]): Listing {
  const types = new Uint8Array(dirents.length);
  const names = dirents.map((d, i) => {
    types[i] = typeOfDirent(d);
    return d.name;
  });
  return { names, types };
}

/** Names all of one type (DT_UNKNOWN when a folder's names may be anything). */
export function listingOfType(names: string[], type: number): Listing {
  return { names, types: new Uint8Array(names.length).fill(type) };
}

/** The listing with '.' and '..' first, as every listing starts (`ls -a`). */
export function withDots(l: Listing): Listing {
  const types = new Uint8Array(l.names.length + 2);
  types[0] = types[1] = DT_DIR;
  types.set(l.types, 2);
  return { names: ['.', '..', ...l.names], types, attrs: l.attrs && [undefined, undefined, ...l.attrs] };
}
