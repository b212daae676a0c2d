// Device-owned sync: how long a new device takes to backfill a peer's index from its log,
// and the latency from a change on A to its row in B's mirror (both in this process, the
// two corestores piped to each other: loopback without the swarm).
// Run: node build/scripts/bench/sync.js [--json] [--files 100000] [--folders 10000] [--changes 40] [--content 1] [--keep]
import fs from 'node:fs';
import path from 'node:path';
import Corestore from 'corestore';
import { DeviceLog, openOwnLog } from '../../src/replication/device-log.js';
import { deviceKeys } from '../../src/replication/identity.js';
import { Mirror } from '../../src/replication/mirror.js';
import { addPeerDevice } from '../../src/vdfs/device.js';
import { EntryStore } from '../../src/vdfs/entries.js';
import { indexLocation, syncDirectories } from '../../src/vdfs/indexer/indexer.js';
import { initLibrary } from '../../src/vdfs/library.js';
import { addLocation } from '../../src/vdfs/locations.js';
import { Report, formatCount, generateTree, makeTempDir, numberArg, parseArgs } from './common.js';

const AIM_BACKFILL_SECONDS = 10;
const AIM_LATENCY_P95_MS = 1000;

const args = parseArgs();
const files = numberArg(args, 'files', 100_000);
const folders = numberArg(args, 'folders', 10_000);
const changes = numberArg(args, 'changes', 40);
const mode = numberArg(args, 'content', 0) ? 'content' : 'shallow';
const report = new Report('sync', args.json);
const tmp = makeTempDir('sdfs-bench-sync-', args.keep);
const treeDir = path.join(tmp, 'tree');

report.noteMachine('start');
report.progress(`generating ${formatCount(files)} files in ${formatCount(folders)} folders under ${tmp}`);
const tree = generateTree(treeDir, { files, folders, fanout: 10, minBytes: 1, maxBytes: 4096 });
report.note(`tree: ${formatCount(tree.entries)} entries (${formatCount(files)} files, ${formatCount(folders)} folders), indexed ${mode} on A`);

const { library: a } = initLibrary(path.join(tmp, 'lib-a'), 'Alpha');
const { library: b } = initLibrary(path.join(tmp, 'lib-b'), 'Beta');
addPeerDevice(b.db, { id: a.device.id, name: a.device.name });
const location = addLocation(a.db, new EntryStore(a.db), a.device.id, { path: treeDir, name: 'tree', mode });
report.progress('indexing on A');
let t0 = performance.now();
indexLocation(a, location);
const indexSeconds = (performance.now() - t0) / 1000;
report.note(`A indexed in ${indexSeconds.toFixed(2)} s`);

const storeA = new Corestore(path.join(a.dir, 'cores'));
const storeB = new Corestore(path.join(b.dir, 'cores'));
const keys = deviceKeys(a.dir).log;
const logA = new DeviceLog(a.db, a.device.id, openOwnLog(storeA, keys));
report.progress('writing A\'s log (snapshot of its index)');
t0 = performance.now();
await logA.open();
const snapshotSeconds = (performance.now() - t0) / 1000;
const entriesA = a.db.prepare('SELECT count(*) FROM entries').pluck().get() as number;
report.figure({
  name: 'log snapshot',
  value: snapshotSeconds,
  unit: 's',
  note: `${formatCount(entriesA)} entries into ${logA.core.length} blocks (${(logA.core.byteLength / 1e6).toFixed(1)} MB), the first start of a log on an indexed library`,
});

const s1 = storeA.replicate(true);
const s2 = storeB.replicate(false);
s1.pipe(s2).pipe(s1);
let lastProgress = 0;
let backfilling = true;
const mirror = new Mirror(b.db, a.device.id, storeB.get({ key: keys.publicKey }), {
  onProgress: (p) => {
    if (backfilling && (p.applied - lastProgress >= 10 || p.applied === p.length)) {
      lastProgress = p.applied;
      report.progress(`backfill ${p.applied}/${p.length} blocks`);
    }
  },
});
await mirror.open();
report.progress('backfilling B from A\'s log');
t0 = performance.now();
await mirror.catchUp(logA.core.length);
const backfillSeconds = (performance.now() - t0) / 1000;
backfilling = false;
const entriesB = b.db.prepare('SELECT count(*) FROM entries WHERE device_id = ?').pluck().get(a.device.id) as number;
report.figure({
  name: 'backfill',
  value: backfillSeconds,
  unit: 's',
  note: `${formatCount(entriesB)} of ${formatCount(entriesA)} entries into a fresh library (replicate + apply with closure and search rows), ${formatCount(entriesB / backfillSeconds)} entries/s`,
  aim: { op: '<=', value: AIM_BACKFILL_SECONDS },
});
// Against A's own index of the same tree in this run: a ratio that the machine's load moves less.
report.figure({ name: 'backfill vs index', value: backfillSeconds / indexSeconds, unit: '× A\'s index time', note: `A indexed the tree in ${indexSeconds.toFixed(2)} s` });
if (entriesB !== entriesA) process.exitCode = 1;

// Latency: a new file on A, indexed (one folder, as the watcher does), pumped by the
// running log (its poll interval included), replicated and applied on B.
report.progress(`sync latency over ${changes} changes`);
mirror.follow();
logA.startPumping();
const bStore = new EntryStore(b.db);
const aStore = new EntryStore(a.db);
const latencies: number[] = [];
for (let i = 0; i < changes; i++) {
  const dirRel = `d${i % 10}`;
  const name = `sync-${i}.txt`;
  const started = performance.now();
  fs.writeFileSync(path.join(treeDir, dirRel, name), `change ${i}`);
  syncDirectories(a, location, [dirRel]);
  const id = aStore.resolve(location.rootEntryId!, [dirRel, name])!.id;
  for (;;) {
    if (bStore.byRemoteId(a.device.id, id)) break;
    if (performance.now() - started > 10_000) throw new Error(`change ${i} not seen on B after 10 s`);
    await new Promise((r) => setTimeout(r, 1));
  }
  latencies.push(performance.now() - started);
  await new Promise((r) => setTimeout(r, 20 + (i % 7) * 9)); // not in step with the pump's poll
}
latencies.sort((x, y) => x - y);
const pct = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
report.figure({ name: 'sync latency p50', value: pct(0.5), unit: 'ms', note: `write on A → row in B's mirror, ${changes} changes, one folder re-indexed each, log polled every 50 ms` });
report.figure({ name: 'sync latency p95', value: pct(0.95), unit: 'ms', note: `max ${pct(1).toFixed(0)} ms`, aim: { op: '<=', value: AIM_LATENCY_P95_MS } });

mirror.stop();
await logA.close();
await storeA.close();
await storeB.close();
a.close();
b.close();
report.noteMachine('end');
report.finish();
