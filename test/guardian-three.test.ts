// The guardian on three devices, each its own `sd mount` process on a local DHT testnet:
// policies and counts converge on all three; a device gone for good stops counting after
// --stale, and what it held copies of is at risk; `sd guardian protect` copies that content
// onto the device the policy names, checked by full BLAKE3, so at-risk empties; the device
// receiving a copy killed -9 mid-transfer gets it whole once back, once.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { runSd, waitFor } from './helpers.js';
import { libraryWithLocation, startMount, type MountedDevice } from './mount-helpers.js';
import { pair, testnetAddress, waitForPeerFile } from './remote-helpers.js';

const MiB = 1024 * 1024;
const x = crypto.randomBytes(300_000);
const big = crypto.randomBytes(96 * MiB);
/** Days: 20 s, so a stopped device soon counts as gone for good. */
const STALE = '0.00023';

interface Status {
  byCopies: Array<{ copies: number; files: number }>;
  policies: Array<{ target: string; copies: number }>;
  atRisk: { contents: number; files: number };
}

async function json<T>(library: string, args: string[]): Promise<T> {
  const r = await runSd(['--json', ...args], { library });
  if (r.code !== 0) throw new Error(`sd ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

t.test('three devices: converge, a device gone for good, protect up to policy, kill -9 mid-protect', async (t) => {
  const alpha = await libraryWithLocation(t, { 'x.bin': x, 'big.bin': big, 'notes/solo.txt': 'only on alpha\n' }, 'alpha', 'media', 'deep');
  const beta = await libraryWithLocation(t, { 'readme.txt': 'beta\n' }, 'beta', 'backup', 'deep');
  const gamma = await libraryWithLocation(t, { 'x.bin': x, 'big.bin': big }, 'gamma', 'vault', 'deep');
  const bootstrap = await testnetAddress(t);
  await pair(t, alpha.library, beta.library, bootstrap);
  await pair(t, alpha.library, gamma.library, bootstrap);
  await pair(t, beta.library, gamma.library, bootstrap);
  const libraries = [alpha.library, beta.library, gamma.library];
  const mounts: Record<string, MountedDevice> = {};
  for (const [name, d] of Object.entries({ alpha, beta, gamma })) mounts[name] = await startMount(t, d.library, ['--bootstrap', bootstrap]);
  for (const m of Object.values(mounts)) await waitForPeerFile(m, 'alpha/media/notes/solo.txt', 'only on alpha\n');

  // Policies set on two devices reach all three; so do the counts.
  t.equal((await runSd(['guardian', 'policy', 'set', '--copies', '2', '--store', 'sd://beta/backup'], { library: gamma.library })).code, 0, 'gamma: the library wants 2 copies, new ones in sd://beta/backup');
  t.equal((await runSd(['guardian', 'policy', 'set', '--copies', '1', 'sd://alpha/media/notes'], { library: beta.library })).code, 0, "beta: alpha's notes want 1");
  t.equal((await runSd(['guardian', 'policy', 'set', '--copies', '1', 'sd://beta/backup'], { library: alpha.library })).code, 0, "alpha: beta's backup wants 1");
  const converged = async (library: string) => {
    const s = await json<Status>(library, ['guardian', 'status']);
    const twice = s.byCopies.find((b) => b.copies === 2)?.files ?? 0;
    return s.policies.length === 3 && twice === 4 && s.atRisk.contents === 0;
  };
  for (const library of libraries) t.ok(await waitFor(() => converged(library), 60_000, 500), `${path.basename(path.dirname(library))}: 3 policies, x and big with 2 counting copies each (alpha's and gamma's), nothing at risk`);
  const policies = await json<Array<{ target: string; copies: number; store?: string }>>(alpha.library, ['guardian', 'policy', 'ls']);
  t.same(policies.find((p) => p.target === 'library'), { target: 'library', copies: 2, store: 'sd://beta/backup' }, 'policy ls on alpha shows the store gamma set');

  // gamma goes for good: after --stale its copies stop counting; x and big are at risk.
  t.equal(await mounts.gamma!.stop(), 0, 'gamma stops');
  t.ok(await waitFor(async () => (await json<{ total: number }>(alpha.library, ['guardian', 'at-risk', '--stale', STALE])).total === 2, 60_000, 1000), 'on alpha, x and big are at risk once gamma is past --stale');
  const risky = await json<{ items: Array<{ paths: string[]; risk: { code: string } }> }>(beta.library, ['guardian', 'at-risk', '--stale', STALE]);
  t.same(risky.items.map((i) => i.risk.code), ['one-copy', 'one-copy'], 'beta agrees: one copy each');

  const bad = await runSd(['guardian', 'protect', '--to', 'nosuch'], { library: alpha.library });
  t.equal(bad.code, 1, 'protect --to an unknown device fails');
  t.match(bad.stderr, /no device named 'nosuch'/, 'and says so');
  const preview = await json<{ preview: { copies: Array<{ from: string; to: { sdPath: string } }>; bytes: number; targets: Array<{ device: string; free: number | null }> } }>(alpha.library, ['guardian', 'protect', '--stale', STALE, '--preview']);
  t.same(preview.preview.copies.map((c) => c.to.sdPath).sort(), ['sd://beta/backup/alpha/media/big.bin', 'sd://beta/backup/alpha/media/x.bin'], 'the preview puts both in the store, under alpha/media/');
  t.equal(preview.preview.bytes, big.length + x.length, 'with their bytes');
  const disk = fs.statfsSync(beta.root);
  const free = preview.preview.targets.find((x) => x.device === 'beta')?.free ?? 0;
  t.ok(free > 0 && free <= disk.blocks * disk.bsize, "and beta's free space, which beta measured and shared through its log");
  t.notOk(fs.existsSync(path.join(beta.root, 'alpha')), 'the preview changed nothing');

  const run = await json<{ jobs: number[] }>(alpha.library, ['guardian', 'protect', '--stale', STALE]);
  t.equal(run.jobs.length, 2, 'protect queues two copies');
  // beta is killed -9 while big.bin is on its way, then comes back.
  const incoming = path.join(beta.library, 'incoming');
  const arriving = () => fs.existsSync(incoming) && fs.readdirSync(incoming).some((f) => fs.statSync(path.join(incoming, f)).size > 0);
  t.ok(await waitFor(arriving, 60_000, 10), "big.bin's bytes are arriving on beta");
  await mounts.beta!.stop('SIGKILL');
  const onBeta = (rel: string) => path.join(beta.root, rel);
  t.notOk(fs.existsSync(onBeta('alpha/media/big.bin')) && fs.readFileSync(onBeta('alpha/media/big.bin')).equals(big), 'killed before big.bin landed');
  mounts.beta = await startMount(t, beta.library, ['--bootstrap', bootstrap], undefined, { SD_SCRUB_CHECK_MS: '500' });
  t.ok(await waitFor(async () => (await json<Array<{ id: number; status: string }>>(alpha.library, ['jobs'])).filter((j) => run.jobs.includes(j.id)).every((j) => j.status === 'completed'), 120_000, 500), "both protect jobs complete on alpha once beta is back");
  t.ok(fs.readFileSync(onBeta('alpha/media/big.bin')).equals(big), "big.bin is on beta's disk, whole");
  t.ok(fs.readFileSync(onBeta('alpha/media/x.bin')).equals(x), 'and x.bin');
  t.same(fs.readdirSync(onBeta('alpha/media')).sort(), ['big.bin', 'x.bin'], 'each once: nothing copied twice');
  const after = await json<{ total: number }>(alpha.library, ['guardian', 'at-risk', '--stale', STALE]);
  t.equal(after.total, 0, 'at-risk is empty on alpha as soon as the jobs complete: the copies are verified');
  t.ok(await waitFor(async () => (await json<{ total: number }>(beta.library, ['guardian', 'at-risk', '--stale', STALE])).total === 0, 30_000, 500), 'and on beta');
  const again = await json<{ preview: { copies: unknown[] } }>(alpha.library, ['guardian', 'protect', '--stale', STALE]);
  t.equal(again.preview.copies.length, 0, 'a second protect has nothing to copy');

  // Onto the device that runs protect: its running mount fetches the bytes.
  t.equal((await runSd(['guardian', 'policy', 'set', '--copies', '2', 'sd://alpha/media/notes'], { library: beta.library })).code, 0, "beta: alpha's notes want 2 now");
  const local = await json<{ jobs: number[]; plan: { copies: Array<{ to: { sdPath: string } }> } }>(beta.library, ['guardian', 'protect', '--stale', STALE, '--to', 'beta']);
  t.same(local.plan.copies.map((c) => c.to.sdPath), ['sd://beta/backup/alpha/media/notes/solo.txt'], 'protect on beta --to beta plans solo.txt onto beta');
  t.ok(await waitFor(() => fs.existsSync(onBeta('alpha/media/notes/solo.txt')) && fs.readFileSync(onBeta('alpha/media/notes/solo.txt'), 'utf8') === 'only on alpha\n', 60_000, 300), "beta's mount fetched it from alpha");
  t.ok(await waitFor(async () => (await json<{ total: number }>(beta.library, ['guardian', 'at-risk', '--stale', STALE])).total === 0, 30_000, 500), 'and it counts: nothing at risk on beta');
});
