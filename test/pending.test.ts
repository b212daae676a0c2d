// The overlay of changes made in a peer's tree and not applied there yet: what a path
// resolves to through pending renames, removals and new folders.
import t from 'tap';
import type * as Tap from 'tap';
import { PendingStore } from '../src/vdfs/pending.js';
import { tempLibrary } from './helpers.js';

function store(t: Tap.Test): PendingStore {
  return new PendingStore(tempLibrary(t).db);
}

/** Records a rename the way the mount does: the old name goes, the new one shows the old entry. */
function move(p: PendingStore, from: string, to: string, jobId: number): void {
  p.add({ deviceId: 'd', location: 'm', path: from, kind: 'gone', jobId });
  p.add({ deviceId: 'd', location: 'm', path: to, kind: 'moved', source: from, jobId });
}

const at = (p: PendingStore, rel: string) => p.resolve('d', 'm', rel.split('/'));

t.test('a pending rename shows the entry at its new name and nothing at the old one', async (t) => {
  const p = store(t);
  move(p, 'tree/a.txt', 'tree/renamed.txt', 1);
  t.same(at(p, 'tree/renamed.txt'), { kind: 'mirror', path: 'tree/a.txt' }, 'the new name reads the mirrored entry at the old path');
  t.same(at(p, 'tree/a.txt'), { kind: 'gone' }, 'the old name is gone');
  t.same(p.childChanges('d', 'm', 'tree'), { added: new Map([['renamed.txt', 'moved']]), removed: new Set(['a.txt']) }, 'the folder lists the new name instead of the old');
});

t.test('renamed there and back, then removed', async (t) => {
  const p = store(t);
  move(p, 'a', 'b', 1);
  move(p, 'b', 'a', 2);
  t.same(at(p, 'a'), { kind: 'mirror', path: 'a' }, 'back at its own name');
  t.same(at(p, 'b'), { kind: 'gone' }, 'nothing at the name in between');
  p.add({ deviceId: 'd', location: 'm', path: 'a', kind: 'gone', jobId: 3 });
  t.same(at(p, 'a'), { kind: 'gone' }, 'removed after');
});

t.test('a renamed folder takes what is below it along', async (t) => {
  const p = store(t);
  move(p, 'photos', 'pictures', 1);
  t.same(at(p, 'pictures/2024/x.jpg'), { kind: 'mirror', path: 'photos/2024/x.jpg' }, 'a file below the new name is read below the old');
  t.same(at(p, 'photos/2024/x.jpg'), { kind: 'gone' }, 'and is gone below the old name');
  const folder = p.add({ deviceId: 'd', location: 'm', path: 'pictures/new', kind: 'dir', jobId: 2 });
  t.same(at(p, 'pictures/new'), { kind: 'dir', change: folder, path: null }, 'a folder made below the new name shows');
});
