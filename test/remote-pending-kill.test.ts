// A mount killed -9 while new files in a peer's tree were still open (never released), or
// while a release waited out another process holding the library: their bytes were staged
// in <library>/outgoing/ but no copy job was committed, or the job was paused for a handle
// opened again. They stayed pending for good, shown and never sent. The restarted mount
// sends them as a release would (replacing the peer's file when that is what was written
// over), and takes back one whose staged bytes are gone.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type * as Tap from 'tap';
import { config } from '../src/config.js';
import { runSd, waitFor } from './helpers.js';
import { writerOf } from './library-writer.js';
import { startMount } from './mount-helpers.js';
import { jobsOf, killMount, pairedMounts, readOr } from './remote-helpers.js';


/** Opens a file through the mount and writes to it, left open (closed in teardown, after the mount is gone: errors then are expected). */
function writeLeftOpen(t: Tap.Test, file: string, flags: string, text: string): number {
  const fd = fs.openSync(file, flags);
  t.teardown(() => {
    try {
      fs.closeSync(fd);
    } catch {
      /* the mount behind it was killed */
    }
  });
  fs.writeSync(fd, text);
  fs.fsyncSync(fd);
  return fd;
}

async function alphaAndBeta(t: Tap.Test, betaEnv: NodeJS.ProcessEnv = {}) {
  return pairedMounts(
    t,
    { name: 'alpha', location: 'media', files: { 'hi.txt': 'hello from alpha\n', 'keep.txt': 'the old version\n' } },
    { name: 'beta', location: 'notes', files: { 'note.txt': 'beta note\n' }, env: betaEnv },
    { file: 'hi.txt', text: 'hello from alpha\n' },
  );
}

t.test('files left open in a peer tree by a mount killed -9 are sent by the restarted mount; one whose staged bytes are gone is taken back', async (t) => {
  const { a: alpha, b: beta, bootstrap } = await alphaAndBeta(t);
  const peerTree = path.join(beta.mount.mountpoint, 'alpha/media');
  writeLeftOpen(t, path.join(peerTree, 'new.txt'), 'w', 'a new file, never closed\n');
  writeLeftOpen(t, path.join(peerTree, 'keep.txt'), 'w', 'written over, never closed\n');
  writeLeftOpen(t, path.join(peerTree, 'lost.txt'), 'w', 'staged bytes to lose\n');
  t.equal(readOr(path.join(peerTree, 'new.txt')), 'a new file, never closed\n', 'the mount shows the new file from its staged bytes');
  t.same(await jobsOf(beta.library), [], 'no copy job yet: the handles are open');

  await killMount(beta.mount);
  const outgoing = path.join(beta.library, 'outgoing');
  const staged = fs.readdirSync(outgoing);
  t.equal(staged.length, 3, 'three files staged in outgoing/');
  const lost = staged.find((f) => fs.readFileSync(path.join(outgoing, f), 'utf8') === 'staged bytes to lose\n')!;
  fs.rmSync(path.join(outgoing, lost));

  const restarted = await startMount(t, beta.library, ['--bootstrap', bootstrap]);
  const sent = await waitFor(() => readOr(path.join(alpha.root, 'new.txt')) === 'a new file, never closed\n' && readOr(path.join(alpha.root, 'keep.txt')) === 'written over, never closed\n', 90_000, 250);
  t.ok(sent, `the restarted mount sent both files to alpha${sent ? '' : `: ${restarted.stderr().slice(-2000)}`}`);
  t.same(fs.readdirSync(alpha.root).sort(), ['hi.txt', 'keep.txt', 'new.txt'], 'keep.txt was replaced (as written over), not kept beside a copy; lost.txt never went');
  t.match(restarted.stdout(), /2 new files in other devices' trees left unsent by a stopped mount, queued to send/, 'the mount says how many it recovered');
  t.match(restarted.stdout(), /sd:\/\/alpha\/media\/lost\.txt cannot be sent and is no longer shown \(its staged bytes are gone/, 'and names the one it could not send');
  t.notOk(fs.readdirSync(path.join(restarted.mountpoint, 'alpha/media')).includes('lost.txt'), 'lost.txt is no longer shown in the peer tree');
  t.ok(await waitFor(async () => (await jobsOf(beta.library)).filter((j) => j.status === 'completed').length === 2, 30_000, 250), 'two copy jobs, completed');
  t.equal((await jobsOf(beta.library)).length, 2, 'and no other job');
});

t.test('a file opened again while its copy job waited for the peer, then killed -9 open: the restarted mount queues the paused job again', async (t) => {
  const { a: alpha, b: beta, bootstrap } = await alphaAndBeta(t);
  await alpha.mount.stop();
  const peerTree = path.join(beta.mount.mountpoint, 'alpha/media');
  const file = path.join(peerTree, 'log.txt');
  fs.writeFileSync(file, 'first line\n');
  t.ok(await waitFor(async () => (await jobsOf(beta.library)).some((j) => j.status === 'queued'), 10_000), 'closed: its copy job waits for alpha (offline)');
  writeLeftOpen(t, file, 'a', 'second line\n');
  t.same((await jobsOf(beta.library)).map((j) => j.status), ['paused'], 'opened again to append: the job is paused until it is closed');

  await killMount(beta.mount);
  const restarted = await startMount(t, beta.library, ['--bootstrap', bootstrap]);
  t.ok(await waitFor(async () => (await jobsOf(beta.library)).every((j) => j.status === 'queued'), 30_000, 250), 'the restarted mount queues it again');
  t.match(restarted.stdout(), /1 new file in other devices' trees left unsent by a stopped mount, queued to send/, 'and says so');
  await startMount(t, alpha.library, ['--bootstrap', bootstrap]);
  const sent = await waitFor(() => readOr(path.join(alpha.root, 'log.txt')) === 'first line\nsecond line\n', 90_000, 250);
  t.ok(sent, `alpha, back online, gets the file with both lines${sent ? '' : `: ${restarted.stderr().slice(-2000)}`}`);
  t.same((await jobsOf(beta.library)).map((j) => j.status), ['completed'], 'one copy job, completed');
});

t.test('killed -9 while a closed file waited for the library (another process held it): the restarted mount sends it', async (t) => {
  const { a: alpha, b: beta, bootstrap } = await alphaAndBeta(t, { SD_LOG: 'warn' });
  const file = path.join(beta.mount.mountpoint, 'alpha/media/held.txt');
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, 'written while the library was held\n');
  const writer = await writerOf(t, beta.library, 'hold', config.dbBusyTimeoutMs + 8000);
  fs.closeSync(fd);
  const waiting = await waitFor(() => /"op":"release".*the library is busy with another process/.test(beta.mount.stderr()), config.dbBusyTimeoutMs + 5000, 100);
  t.ok(waiting, `closed, its copy job waits for the library${waiting ? '' : `: ${beta.mount.stderr().slice(-2000)}`}`);
  await killMount(beta.mount);
  t.equal(await writer.stop(), 1, "the other process's transaction committed");
  t.same(await jobsOf(beta.library), [], 'the mount died before the copy job was committed');

  const restarted = await startMount(t, beta.library, ['--bootstrap', bootstrap]);
  const sent = await waitFor(() => readOr(path.join(alpha.root, 'held.txt')) === 'written while the library was held\n', 90_000, 250);
  t.ok(sent, `the restarted mount sent it to alpha${sent ? '' : `: ${restarted.stderr().slice(-2000)}`}`);
  t.ok(await waitFor(async () => (await jobsOf(beta.library)).map((j) => j.status).join() === 'completed', 30_000, 250), 'one copy job, completed');
});
