// The action protocol without a swarm: a device's Applier over a local Noise pair, a real
// library and location, the real ActionManager. Paths outside a location and unknown
// locations are refused, a request sent twice runs once, and malformed or oversized
// messages close the connection without crashing anything.
import fs from 'node:fs';
import path from 'node:path';
import c from 'compact-encoding';
import Protomux from 'protomux';
import t, { type Test } from 'tap';
import { config } from '../src/config.js';
import { ACTION_PROTOCOL, actionRequest, type ActionRequest } from '../src/replication/action-messages.js';
import { BlockService } from '../src/replication/blocks.js';
import { ActionChannel, Applier } from '../src/replication/remote-actions.js';
import { ActionManager } from '../src/vdfs/actions/action-manager.js';
import { EntryStore } from '../src/vdfs/entries.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import { JobStore } from '../src/vdfs/jobs/job-store.js';
import { addLocation } from '../src/vdfs/locations.js';
import type { Peer } from '../src/vdfs/peers.js';
import { noisePair, tempDir, tempLibrary } from './helpers.js';
import { writerOf } from './library-writer.js';

const asker: Peer = { id: 'beta-id', name: 'Beta', slug: 'beta', publicKey: '00', logKey: null, pairedAt: 0, revokedAt: null, onlineAt: null, lastSeen: null, rttMs: null, faults: 0, lastFaultAt: null, lastFault: null, introducedBy: null, revokedBy: null };

/** Alpha's Applier on one end of a connection; the test asks from the other. */
async function alphaServing(t: Test, withClient = true) {
  const library = tempLibrary(t, 'alpha');
  const root = tempDir(t, 'sd-actions-loc-');
  fs.writeFileSync(path.join(root, 'keep.txt'), 'keep\n');
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name: 'media' });
  indexLocation(library, location);
  const actions = new ActionManager(library, { actor: 'fuse' });
  let runs = 0;
  const blocks = await BlockService.open(library);
  t.teardown(() => blocks.close());
  const applier = new Applier(library, {
    execute: (action, actor) => {
      runs++;
      return actions.execute(action, actor);
    },
    applyFsOp: (loc, op, actor) => actions.applyFsOp(loc, op, actor),
  }, blocks, async () => 7);
  const [a, b] = noisePair(t);
  new ActionChannel(Protomux.from(a), asker, (request, channel) => applier.serve(request, channel));
  const client = withClient ? new ActionChannel(Protomux.from(b), asker, () => Promise.reject(new Error('not asked'))) : undefined;
  return { library, root, client: client!, runs: () => runs, stream: b };
}

t.test('decoding refuses anything malformed', async (t) => {
  const decode = (v: unknown) => c.decode(actionRequest, c.encode(c.string, typeof v === 'string' ? v : JSON.stringify(v)));
  t.throws(() => decode('{not json'), /malformed action message: not JSON/);
  t.throws(() => decode([1, 2]), /not an object/);
  t.throws(() => decode({ id: 1, op: { op: 'format-disk', location: 'm', path: 'x' } }), /unknown op/);
  t.throws(() => decode({ id: -1, op: { op: 'mkdir', location: 'm', path: 'x', mode: 0 } }), /id is not a non-negative integer/);
  t.throws(() => decode({ id: 1, op: { op: 'delete', location: 'm', path: 'a\u0000b' } }), /path is not a string/);
  t.throws(() => decode({ id: 1, op: { op: 'delete', location: 'm', path: 'x'.repeat(5000) } }), /path is not a string/);
  t.throws(() => decode({ id: 1, op: { op: 'copy', location: 'm', path: 'x', pendingId: 1, overwrite: false }, fullHash: 'zz' }), /fullHash/);
  t.throws(() => decode({ id: 1, op: { op: 'delete', location: 'm', path: 'x' }, pad: 'y'.repeat(20_000) }), /larger than/);
  t.same(decode({ id: 3, op: { op: 'move', location: 'm', path: 'a', to: 'b' } }), { id: 3, op: { op: 'move', location: 'm', path: 'a', to: 'b' }, size: undefined, contentId: undefined, fullHash: undefined, mode: undefined, mtimeMs: undefined });
});

t.test('requests outside a location are refused; a request sent twice runs once', async (t) => {
  const { root, client, runs } = await alphaServing(t);
  const ask = (id: number, op: ActionRequest['op']) => client.request({ id, op });

  for (const [id, p] of [[1, '../escape'], [2, 'a/../../etc'], [3, '/etc/passwd']] as const) {
    const r = await ask(id, { op: 'mkdir', location: 'media', path: p, mode: 0o755 });
    t.equal(r.ok, false, `${p} refused`);
    t.ok(r.final, 'for good');
    t.match(r.message, /inside a location/);
  }
  t.notOk(fs.existsSync(path.join(path.dirname(root), 'escape')), 'nothing made outside');
  const unknown = await ask(4, { op: 'delete', location: 'nope', path: 'keep.txt' });
  t.match(unknown, { ok: false, final: true, message: /no location 'nope'/ });
  t.equal(runs(), 0, 'no action ran for any of them');

  const made = await ask(10, { op: 'mkdir', location: 'media', path: 'new', mode: 0o750 });
  t.match(made, { ok: true, logLength: 7 });
  t.ok(fs.statSync(path.join(root, 'new')).isDirectory(), 'the folder is made');
  fs.rmdirSync(path.join(root, 'new'));
  const again = await ask(10, { op: 'mkdir', location: 'media', path: 'new', mode: 0o750 });
  t.match(again, { ok: true });
  t.notOk(fs.existsSync(path.join(root, 'new')), 'the same request again is answered from the record, not run');
  t.equal(runs(), 1);

  const deleted = await ask(11, { op: 'delete', location: 'media', path: 'keep.txt' });
  t.match(deleted, { ok: true });
  t.notOk(fs.existsSync(path.join(root, 'keep.txt')), 'deleted');
  t.ok(JSON.stringify(fs.readdirSync(path.join(root, '.sd-trash'), { recursive: true })).includes('keep.txt'), "into the location's trash");
});

t.test('a request that finds the library held past the busy timeout by another process is asked again, not refused for good', async (t) => {
  const { library, root, client } = await alphaServing(t);
  const mkdir = { id: 1, op: { op: 'mkdir', location: 'media', path: 'new', mode: 0o755 } } as const;
  const writer = await writerOf(t, library.dir, 'hold', config.dbBusyTimeoutMs + 1500);
  const held = await client.request(mkdir);
  t.match(held, { ok: false, final: false, message: /library of alpha is busy/ }, 'not final: the asker sends it again (it was refused for good: "database is locked")');
  t.equal(await writer.stop(), 1, "the other process's transaction committed");
  t.match(await client.request(mkdir), { ok: true }, 'sent again, it runs');
  t.ok(fs.statSync(path.join(root, 'new')).isDirectory(), 'the folder is made');
});

t.test('garbage on the action channel closes the connection; the device keeps serving others', async (t) => {
  const { stream } = await alphaServing(t, false);
  const mux = Protomux.from(stream);
  const raw = mux.createChannel({ protocol: ACTION_PROTOCOL })!;
  const send = raw.addMessage({ encoding: c.raw });
  raw.open();
  send.send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]));
  const closed = await new Promise<boolean>((resolve) => {
    stream.once('close', () => resolve(true));
    setTimeout(() => resolve(stream.destroyed), 5000);
  });
  t.ok(closed, 'the connection was closed');
  const second = await alphaServing(t);
  t.match(await second.client.request({ id: 1, op: { op: 'mkdir', location: 'media', path: 'ok', mode: 0o755 } }), { ok: true }, 'another connection is served');
});

t.test("a device's changes are delivered oldest first however many jobs wait", async (t) => {
  const library = tempLibrary(t, 'beta');
  const jobs = new JobStore(library.db);
  const payload = (deviceId: string | null, n: number) => ({
    action: { kind: 'mkdir' as const, input: { target: `/x/${n}` } },
    onConflict: 'abort' as const, verify: false, bwlimit: 0, summary: `job ${n}`, target: `/x/${n}`,
    ...(deviceId ? { remote: { deviceId, device: deviceId, op: { op: 'mkdir' as const, location: 'm', path: `d${n}`, mode: 0o755 } } } : {}),
  });
  const first = jobs.create('mkdir', payload('alpha-id', 0), [], 'fuse');
  library.db.transaction(() => {
    for (let i = 1; i <= 1500; i++) jobs.create('mkdir', payload(i % 3 === 0 ? 'alpha-id' : i % 3 === 1 ? 'gamma-id' : null, i), [], 'fuse');
  })();
  t.equal(jobs.oldestRemote('alpha-id')?.id, first, 'the oldest of 500 jobs for alpha, behind 1,000 newer ones');
  t.same(jobs.remoteDevicesWaiting().sort(), ['alpha-id', 'gamma-id'], 'the devices with changes waiting');
  t.equal(jobs.oldestRemote('nobody'), undefined);
});
