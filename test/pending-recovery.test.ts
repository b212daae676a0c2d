// What the start of a mount does with the new files a stopped mount left in a peer's tree
// (RemoteChanges.recover), on a real library without a mount: a file staged and never
// committed gets its copy job (replacing or keeping both as it was staged), a job paused for
// a handle opened again is queued again, staged bytes gone or a fetch cut short are taken
// back and audited; jobs queued or settled, a user's pause and files open here stay as they are.
// And changes the device applied that a stopped process still showed (waiting for its mirror)
// are cleared by the next start's delivery once the mirror has them.
import fs from 'node:fs';
import t from 'tap';
import type * as Tap from 'tap';
import { Delivery } from '../src/replication/remote-actions.js';
import { AuditLog } from '../src/vdfs/audit.js';
import { JobManager } from '../src/vdfs/jobs/job-manager.js';
import { JobStore } from '../src/vdfs/jobs/job-store.js';
import { savePairedPeer } from '../src/vdfs/peers.js';
import { RemoteChanges, remoteOf, type PeerRef } from '../src/vdfs/remote-changes.js';
import { tempLibrary, waitFor } from './helpers.js';

function setUp(t: Tap.Test) {
  const library = tempLibrary(t, 'beta');
  const peer = savePairedPeer(library.db, { id: 'alpha-id', name: 'alpha', publicKey: '11'.repeat(32), logKey: '22'.repeat(32) });
  const device: PeerRef = { id: peer.id, slug: peer.slug };
  const changes = new RemoteChanges(library);
  /** A new file staged as the mount does, its handle closed (as a killed process's are). */
  const staged = (rel: string, bytes: string, overwrite = false, fetching = false) => {
    const { change, fd } = changes.newFile(device, 'media', rel, 0o644, { overwrite, fetching });
    fs.writeSync(fd, bytes);
    fs.closeSync(fd);
    return change;
  };
  return { library, device, changes, staged, jobs: new JobStore(library.db), audit: new AuditLog(library.db) };
}

t.test('a file staged and never committed gets its copy job, replacing the device\'s file as it was staged to', async (t) => {
  const { changes, staged, jobs } = setUp(t);
  const fresh = staged('new.txt', 'new bytes');
  const over = staged('hi.txt', 'replaced', true);
  const done = changes.recover();
  t.same(done.committed.map((c) => c.path), ['sd://alpha/media/new.txt', 'sd://alpha/media/hi.txt'], 'both are committed');
  t.same(done.requeued, [], 'nothing was paused');
  t.same(done.withdrawn, [], 'nothing taken back');
  for (const [change, overwrite] of [[fresh, false], [over, true]] as const) {
    const jobId = changes.pending.get(change.id)!.jobId!;
    const job = jobs.get(jobId)!;
    t.equal(job.status, 'queued', `${change.path}: its job is queued for delivery`);
    t.match(remoteOf(job)?.op, { op: 'copy', path: change.path, pendingId: change.id, overwrite }, `${change.path}: a copy, overwrite ${overwrite}`);
    t.ok(fs.existsSync(changes.stagedPath(change)), `${change.path}: its staged bytes stay for the delivery`);
  }
  t.same(changes.recover(), { committed: [], requeued: [], withdrawn: [] }, 'run again, it does nothing: no second job');
});

t.test('a job paused for a handle opened again is queued again; one a user paused stays paused', async (t) => {
  const { library, device, changes, staged, jobs } = setUp(t);
  const reopened = staged('a.txt', 'a');
  const aJob = changes.written(device, reopened);
  changes.reopened(changes.pending.get(reopened.id)!);
  t.equal(jobs.get(aJob)!.status, 'paused', 'opened again: paused');
  const byUser = staged('b.txt', 'b');
  const bJob = changes.written(device, byUser);
  await new JobManager(library).pause(bJob);
  t.equal(jobs.get(bJob)!.status, 'paused', 'sd jobs pause: paused');
  const done = changes.recover();
  t.same(done.requeued, [{ path: 'sd://alpha/media/a.txt', jobId: aJob }], 'the reopened one is queued again');
  t.equal(jobs.get(aJob)!.status, 'queued', 'queued');
  t.equal(jobs.get(bJob)!.status, 'paused', "the user's pause stands");
  t.same(done.committed, [], 'no new job for either');
});

t.test('jobs queued, running or settled are left to the delivery: nothing goes twice', async (t) => {
  const { device, changes, staged, jobs } = setUp(t);
  const queued = changes.written(device, staged('q.txt', 'q'));
  const running = changes.written(device, staged('r.txt', 'r'));
  jobs.transition(running, 'queued', 'running');
  const failed = changes.written(device, staged('f.txt', 'f'));
  jobs.transition(failed, 'queued', 'failed');
  t.same(changes.recover(), { committed: [], requeued: [], withdrawn: [] }, 'nothing done');
  t.same([queued, running, failed].map((id) => jobs.get(id)!.status), ['queued', 'running', 'failed'], 'each as it was');
  t.equal(jobs.list({ limit: 100 }).length, 3, 'no other job');
});

t.test('staged bytes gone, or a fetch to change a file in place cut short: taken back and audited', async (t) => {
  const { changes, staged, jobs, audit } = setUp(t);
  const gone = staged('gone.txt', 'lost');
  fs.rmSync(changes.stagedPath(gone));
  const half = staged('big.bin', 'half of it', true, true);
  const done = changes.recover();
  t.same(done.committed, [], 'nothing committed');
  t.same(done.withdrawn.map((w) => w.path), ['sd://alpha/media/gone.txt', 'sd://alpha/media/big.bin'], 'both taken back');
  t.match(done.withdrawn[0]!.reason, /staged bytes are gone/, 'gone: says so');
  t.match(done.withdrawn[1]!.reason, /fetched the file to change it in place/, 'cut short: says so');
  t.same(changes.pending.list(), [], 'no pending row is left: the mount stops showing them');
  t.notOk(fs.existsSync(changes.stagedPath(half)), 'the half-fetched bytes are removed');
  t.equal(jobs.list({ limit: 100 }).length, 0, 'no job');
  const failed = audit.list({ action: 'copy' }).filter((r) => r.status === 'Failed');
  t.same(failed.map((r) => r.target).sort(), ['sd://alpha/media/big.bin', 'sd://alpha/media/gone.txt'], 'each has a Failed audit row');
});

t.test('a fetch that finished is the user\'s to send; files open in this process are left to their release', async (t) => {
  const { changes, staged, jobs } = setUp(t);
  const fetched = staged('doc.txt', 'fetched, then appended to', true, true);
  changes.pending.fetched(fetched.id);
  const open = staged('open.txt', 'still being written');
  const done = changes.recover((id) => id === open.id);
  t.same(done.committed.map((c) => c.path), ['sd://alpha/media/doc.txt'], 'the fetched file is sent');
  t.match(remoteOf(jobs.get(done.committed[0]!.jobId)!)?.op, { overwrite: true }, 'replacing the device\'s file');
  t.equal(changes.pending.get(open.id)!.jobId, null, 'the open one is untouched');
});

t.test("changes the device applied, still shown when the process stopped (its mirror lagged), are cleared by the next start once mirrored", async (t) => {
  const { library, device, changes, staged, jobs, audit } = setUp(t);
  const file = staged('sent.txt', 'sent');
  const fileJob = changes.written(device, file);
  const dirJob = changes.mkdir(device, 'media', 'made', 0o755);
  for (const [id, logLength] of [[fileJob, 12], [dirJob, undefined]] as const) {
    jobs.transition(id, 'queued', 'completed');
    audit.append({ actor: 'job', action: 'copy', status: 'Completed', details: { device: 'alpha', message: 'done', ...(logLength === undefined ? {} : { logLength }) }, jobId: id });
  }
  const queued = changes.written(device, staged('waiting.txt', 'w'));
  const asked: Array<[string, number]> = [];
  const delivery = new Delivery(library, () => undefined, async (deviceId, length) => void asked.push([deviceId, length]));
  delivery.start();
  t.teardown(() => delivery.stop());
  t.ok(await waitFor(() => changes.pending.list().every((c) => c.jobId === queued), 10_000, 100), 'the rows of both applied changes go');
  t.same(asked.sort((x, y) => x[1] - y[1]), [['alpha-id', 0], ['alpha-id', 12]], "once the device's mirror has the log length each was applied at (0: not recorded)");
  t.notOk(fs.existsSync(changes.stagedPath(file)), "the sent file's staged bytes are removed");
  t.equal(changes.pending.ofJob(queued).length, 1, 'a change not delivered yet stays');
});
