// Protect's asking side killed -9 mid-transfer: the copy job is in its journal, so the
// restarted mount sends it again under the same request id; the target, which lost its
// source mid-fetch, runs it again and ends with one whole, verified copy, not two.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { runSd, waitFor } from './helpers.js';
import { startMount } from './mount-helpers.js';
import { pairedMounts } from './remote-helpers.js';

const MiB = 1024 * 1024;
const big = crypto.randomBytes(96 * MiB);

async function json<T>(library: string, args: string[]): Promise<T> {
  const r = await runSd(['--json', ...args], { library });
  if (r.code !== 0) throw new Error(`sd ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

t.test('protect: the asker killed -9 mid-transfer, restarted, the copy lands once', async (t) => {
  const { a, b, bootstrap } = await pairedMounts(
    t,
    { name: 'alpha', location: 'media', files: { 'big.bin': big, 'hi.txt': 'hi\n' }, mode: 'deep' },
    { name: 'beta', location: 'backup', files: { 'readme.txt': 'beta\n' }, mode: 'deep' },
    { file: 'hi.txt', text: 'hi\n' },
  );
  t.equal((await runSd(['guardian', 'policy', 'set', '--copies', '1', 'sd://beta/backup'], { library: a.library })).code, 0, "beta's own files want one copy; alpha's the default two");
  const planned = await json<{ jobs: number[]; plan: { copies: Array<{ to: { sdPath: string } }> } }>(a.library, ['guardian', 'protect', '--to', 'beta']);
  t.same(planned.plan.copies.map((c) => c.to.sdPath).sort(), ['sd://beta/backup/alpha/media/big.bin', 'sd://beta/backup/alpha/media/hi.txt'], 'protect queues both of alpha\'s files for beta');

  const incoming = path.join(b.library, 'incoming');
  const arriving = () => fs.existsSync(incoming) && fs.readdirSync(incoming).some((f) => fs.statSync(path.join(incoming, f)).size > 0);
  t.ok(await waitFor(arriving, 60_000, 10), "big.bin's bytes are arriving on beta");
  await a.mount.stop('SIGKILL');
  const landed = path.join(b.root, 'alpha/media/big.bin');
  t.notOk(fs.existsSync(landed) && fs.readFileSync(landed).equals(big), 'alpha was killed before big.bin landed');

  await startMount(t, a.library, ['--bootstrap', bootstrap]);
  t.ok(await waitFor(async () => (await json<Array<{ id: number; status: string }>>(a.library, ['jobs'])).filter((j) => planned.jobs.includes(j.id)).every((j) => j.status === 'completed'), 120_000, 500), 'the restarted alpha sends the journaled jobs again and they complete');
  t.ok(fs.readFileSync(landed).equals(big), "big.bin is on beta's disk, whole");
  t.same(fs.readdirSync(path.dirname(landed)).sort(), ['big.bin', 'hi.txt'], 'once each');
  t.equal((await json<{ total: number }>(a.library, ['guardian', 'at-risk'])).total, 0, 'nothing at risk on alpha');
});
