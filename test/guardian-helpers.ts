// Libraries for guardian tests: locations indexed from real folders, and a second device's
// view without a swarm (B's mirror of A, fed A's log blocks encoded and decoded as they
// travel, so checks and shared settings go the way they go between devices).
import fs from 'node:fs';
import path from 'node:path';
import Corestore from 'corestore';
import hypercoreCrypto from 'hypercore-crypto';
import type { Test } from 'tap';
import { encodeLogBlock } from '../src/replication/log-messages.js';
import { Mirror } from '../src/replication/mirror.js';
import { addPeerDevice } from '../src/vdfs/device.js';
import { EntryStore } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import type { Library } from '../src/vdfs/library.js';
import { addLocation, type Location } from '../src/vdfs/locations.js';
import { indexSnapshot, queuedChanges, type IndexChange } from '../src/vdfs/outbox.js';
import { tempDir, writeTree } from './helpers.js';

/** B's mirror of A: fed A's log as A would write it (a snapshot, then what A queues). */
export async function mirrorOf(t: Test, a: Library, b: Library) {
  addPeerDevice(b.db, { id: a.device.id, name: a.device.name });
  const store = new Corestore(path.join(tempDir(t), 'cores'));
  t.teardown(() => store.close());
  const keyPair = hypercoreCrypto.keyPair();
  const mirror = new Mirror(b.db, a.device.id, store.get({ key: keyPair.publicKey, keyPair }));
  await mirror.open();
  const snapshot = indexSnapshot(a.db, a.device.id);
  let seq = snapshot.lastSeq;
  let next = 0;
  const send = (ops: IndexChange[]): void => {
    mirror.applyBatch(next, [encodeLogBlock({ lastSeq: seq, ops })]);
    next++;
  };
  send(snapshot.changes);
  return {
    /** Sends what A queued since the last call. */
    sync(): void {
      const queued = queuedChanges(a.db, seq, 1_000_000);
      if (queued.length === 0) return;
      seq = queued.at(-1)!.seq;
      send(queued.map((q) => q.change));
    },
    send,
  };
}

/** A location over a fresh folder holding `files`, indexed. */
export function location(t: Test, library: Library, name: string, mode: 'content' | 'deep', files: Record<string, string | Buffer>): Location {
  const root = fs.realpathSync(writeTree(tempDir(t), files));
  const l = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name, mode });
  indexLocation(library, l);
  return l;
}
