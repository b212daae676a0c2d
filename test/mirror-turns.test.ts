// A node's mirrors fetch and apply by turns (replication/turns.ts): no more than the turns
// at once, each peer's log served in its turn, and a peer that went away gives its turn
// back instead of holding up the others.
import fs from 'node:fs';
import path from 'node:path';
import Corestore from 'corestore';
import t, { type Test } from 'tap';
import { config } from '../src/config.js';
import { DeviceLog, openOwnLog } from '../src/replication/device-log.js';
import { deviceKeys } from '../src/replication/identity.js';
import { Mirror } from '../src/replication/mirror.js';
import { Turns, type GiveBack } from '../src/replication/turns.js';
import { addPeerDevice } from '../src/vdfs/device.js';
import { EntryStore } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import type { Library } from '../src/vdfs/library.js';
import { addLocation } from '../src/vdfs/locations.js';
import { tempDir, tempLibrary, writeTree } from './helpers.js';
import { sqlRows } from './index-assertions.js';

t.test('turns: no more than their number at once, first asked first served, given back once', async (t) => {
  const turns = new Turns(2);
  const a = await turns.take();
  const b = await turns.take();
  const order: string[] = [];
  const c = turns.take().then((give) => (order.push('c'), give));
  const d = turns.take().then((give) => (order.push('d'), give));
  await new Promise((r) => setImmediate(r));
  t.same(turns.state, { taken: 2, waiting: 2 }, 'two taken, two waiting');
  t.same(order, [], 'the third and fourth wait');
  a();
  a();
  const giveC = await c;
  await new Promise((r) => setImmediate(r));
  t.same(order, ['c'], 'a turn given back twice lets one more in, the first in line');
  t.same(turns.state, { taken: 2, waiting: 1 }, 'still two taken');
  b();
  const giveD = await d;
  t.same(order, ['c', 'd'], 'then the next');
  giveC();
  giveD();
  t.same(turns.state, { taken: 0, waiting: 0 }, 'all given back');
  t.throws(() => new Turns(0), RangeError, 'at least one turn');
});

/** Counts how many hold a turn at once. */
class CountedTurns extends Turns {
  holding = 0;
  most = 0;
  override async take(): Promise<GiveBack> {
    const give = await super.take();
    this.most = Math.max(this.most, ++this.holding);
    let given = false;
    return () => {
      if (!given) this.holding--;
      given = true;
      give();
    };
  }
}

/** A device with files indexed and a log of one change per block, replicating to `b` (the stream is returned to cut it). */
async function peerOf(t: Test, name: string, b: Library, storeB: Corestore, files: number) {
  const lib = tempLibrary(t, name);
  addPeerDevice(b.db, { id: lib.device.id, name: lib.device.name });
  const tree = Object.fromEntries(Array.from({ length: files }, (_, i) => [`f${String(i).padStart(3, '0')}.txt`, `${name} ${i}`]));
  const root = fs.realpathSync(writeTree(tempDir(t), tree));
  indexLocation(lib, addLocation(lib.db, new EntryStore(lib.db), lib.device.id, { path: root, name: 'data' }));
  const store = new Corestore(path.join(lib.dir, 'cores'));
  t.teardown(() => store.close());
  const log = new DeviceLog(lib.db, lib.device.id, openOwnLog(store, deviceKeys(lib.dir).log), 1);
  await log.open();
  const s1 = store.replicate(true);
  const s2 = storeB.replicate(false);
  s1.pipe(s2).pipe(s1);
  s1.on('error', () => undefined);
  s2.on('error', () => undefined);
  const core = storeB.get({ key: deviceKeys(lib.dir).log.publicKey });
  await core.ready();
  await core.update({ wait: true });
  return { lib, log, store, core, cut: () => (s1.destroy(), s2.destroy()) };
}

function entriesOf(b: Library, deviceId: string): number {
  return Number(sqlRows(b, 'SELECT COUNT(*) FROM entries e JOIN locations l ON l.id = e.location_id WHERE l.device_id = ?', deviceId)[0]);
}

async function setup(t: Test) {
  const b = tempLibrary(t, 'beta');
  const storeB = new Corestore(path.join(b.dir, 'cores'));
  t.teardown(() => storeB.close());
  const saved = { perTurn: config.mirrorBatchesPerTurn, timeout: config.mirrorBlockTimeoutMs, retry: config.mirrorRetryMs };
  t.teardown(() => {
    config.mirrorBatchesPerTurn = saved.perTurn;
    config.mirrorBlockTimeoutMs = saved.timeout;
    config.mirrorRetryMs = saved.retry;
  });
  return { b, storeB };
}

t.test("two peers' logs backfill one turn at a time, each in turns of a few batches", async (t) => {
  const { b, storeB } = await setup(t);
  config.mirrorBatchesPerTurn = 2;
  const alpha = await peerOf(t, 'alpha', b, storeB, 40);
  const gamma = await peerOf(t, 'gamma', b, storeB, 40);
  t.ok(alpha.core.length > 20 && gamma.core.length > 20, `logs of ${alpha.core.length} and ${gamma.core.length} blocks`);
  const turns = new CountedTurns(1);
  const seen: string[] = [];
  const mirrorOf = (peer: typeof alpha) => new Mirror(b.db, peer.lib.device.id, peer.core, { blocksPerBatch: 2, turns, onProgress: (p) => seen.push(p.device) });
  const ma = mirrorOf(alpha);
  const mg = mirrorOf(gamma);
  await ma.open();
  await mg.open();
  await Promise.all([ma.catchUp(alpha.core.length), mg.catchUp(gamma.core.length)]);
  t.equal(turns.most, 1, 'never two mirrors at it at once');
  t.same(turns.state, { taken: 0, waiting: 0 }, 'every turn given back');
  t.equal(ma.applied, alpha.core.length, "alpha's whole log applied");
  t.equal(mg.applied, gamma.core.length, "gamma's whole log applied");
  t.equal(entriesOf(b, alpha.lib.device.id), entriesOf(alpha.lib, alpha.lib.device.id), "beta holds alpha's entries");
  t.equal(entriesOf(b, gamma.lib.device.id), entriesOf(gamma.lib, gamma.lib.device.id), "beta holds gamma's entries");
  // Runs of one device's batches: at most two batches a turn, so the devices alternate (the
  // last runs, once one log is done, go on alone).
  const runs = seen.reduce<number[]>((acc, d, i) => (i > 0 && d === seen[i - 1] ? (acc[acc.length - 1]!++, acc) : [...acc, 1]), []);
  t.ok(runs.length > 20, `the two logs took turns (${runs.length} runs of batches)`);
  t.ok(Math.max(...runs.slice(0, -2)) <= 2, `no turn ran more than two batches while the other waited (runs ${runs.join(' ')})`);
});

t.test('a peer gone mid-backfill gives its turn back: the other peer is mirrored, the gone one tried again and caught up when back', async (t) => {
  const { b, storeB } = await setup(t);
  config.mirrorBlockTimeoutMs = 300;
  config.mirrorRetryMs = 100;
  const gone = await peerOf(t, 'gone', b, storeB, 30);
  gone.cut();
  const alpha = await peerOf(t, 'alpha', b, storeB, 30);
  const turns = new CountedTurns(1);
  const mg = new Mirror(b.db, gone.lib.device.id, gone.core, { blocksPerBatch: 4, turns });
  const ma = new Mirror(b.db, alpha.lib.device.id, alpha.core, { blocksPerBatch: 4, turns });
  await mg.open();
  await ma.open();
  // The gone peer's mirror asks first: its blocks do not come, and it must not keep the turn.
  mg.follow();
  await new Promise((r) => setTimeout(r, 50));
  await ma.catchUp(alpha.core.length, 20_000);
  t.equal(ma.applied, alpha.core.length, "alpha's log applied while the other peer's blocks do not come");
  t.equal(mg.applied, 0, 'nothing of the gone peer applied');
  await t.rejects(mg.catchUp(gone.core.length, 1000), { message: /applied to block 0 of \d+; its blocks did not come within 1000 ms/ }, 'catching up with the gone peer says its blocks did not come');
  // Back: its stream again; the mirror, trying again on its own, catches up.
  const s1 = gone.store.replicate(true);
  const s2 = storeB.replicate(false);
  s1.pipe(s2).pipe(s1);
  t.teardown(() => (s1.destroy(), s2.destroy()));
  const deadline = Date.now() + 20_000;
  while (mg.applied < gone.core.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.equal(mg.applied, gone.core.length, 'the peer back, its log is applied without being asked');
  t.equal(entriesOf(b, gone.lib.device.id), entriesOf(gone.lib, gone.lib.device.id), "beta holds the peer's entries");
  mg.stop();
  ma.stop();
});
