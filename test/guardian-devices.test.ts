// The guardian across devices: two `sd mount` processes on a local DHT testnet. Copies
// verified on each device count on both; policies and trust set on one device reach the
// other through its log; the mount's xattrs (user.sd.copies, user.sd.policy,
// user.sd.at_risk) and /sd/.guardian/at-risk follow.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { getAttributeSync } from '@napi-rs/xattr';
import Database from 'better-sqlite3';
import t from 'tap';
import { deviceKeys } from '../src/replication/identity.js';
import { runSd, waitFor } from './helpers.js';
import { pairedMounts } from './remote-helpers.js';

const same = crypto.randomBytes(200_000);

function xattr(file: string, name: string): string | undefined {
  try {
    const v = getAttributeSync(file, name);
    return v === null ? undefined : String(v);
  } catch {
    return undefined;
  }
}

t.test('copy counts, policies and trust converge on two devices and show in both mounts', async (t) => {
  const { a, b } = await pairedMounts(
    t,
    { name: 'alpha', location: 'media', files: { 'same.bin': same, 'alone.txt': 'only on alpha\n' }, mode: 'deep', env: { SD_SCRUB_CHECK_MS: '500' } },
    { name: 'beta', location: 'backup', files: { 'same.bin': same }, mode: 'deep' },
    { file: 'alone.txt', text: 'only on alpha\n' },
  );
  const onBeta = (rel: string) => path.join(b.mount.mountpoint, rel);
  const onAlpha = (rel: string) => path.join(a.mount.mountpoint, rel);

  t.ok(await waitFor(() => xattr(onBeta('beta/backup/same.bin'), 'user.sd.copies') === '2', 30_000, 200), "beta: its same.bin and alpha's, both deep-indexed, are 2 counting copies");
  t.ok(await waitFor(() => xattr(onAlpha('beta/backup/same.bin'), 'user.sd.copies') === '2', 30_000, 200), 'alpha counts the same');
  t.equal(xattr(onBeta('alpha/media/alone.txt'), 'user.sd.copies'), '1', "alpha's alone.txt: one copy");
  t.equal(xattr(onBeta('alpha/media/alone.txt'), 'user.sd.at_risk'), 'one copy', 'at risk, and why');
  t.same(fs.readdirSync(onBeta('.guardian/at-risk')), ['alone.txt'], "beta's /.guardian/at-risk lists it");

  // A policy set on beta reaches alpha through beta's log.
  const set = await runSd(['guardian', 'policy', 'set', '--copies', '1', 'sd://alpha/media'], { library: b.library });
  t.equal(set.code, 0, `sd guardian policy set on beta: ${set.stderr}`);
  t.ok(await waitFor(() => xattr(onAlpha('alpha/media/alone.txt'), 'user.sd.policy') === '1', 30_000, 200), "alpha's mount shows the policy beta set");
  t.equal(xattr(onAlpha('alpha/media/alone.txt'), 'user.sd.at_risk'), undefined, 'alone.txt is no longer at risk there');
  t.same(fs.readdirSync(onAlpha('.guardian/at-risk')), [], "alpha's at-risk folder is empty");
  const listed = JSON.parse((await runSd(['--json', 'guardian', 'policy', 'ls'], { library: a.library })).stdout) as Array<{ target: string; copies: number }>;
  t.same(listed, [{ target: 'sd://alpha/media', copies: 1 }], "sd guardian policy ls on alpha lists beta's policy");

  // Trust set on alpha reaches beta: beta's own copies stop counting everywhere.
  t.equal((await runSd(['guardian', 'untrust', 'beta'], { library: a.library })).code, 0, 'sd guardian untrust beta on alpha');
  t.ok(await waitFor(() => xattr(onBeta('beta/backup/same.bin'), 'user.sd.copies') === '1', 30_000, 200), "beta learns it is untrusted: its copy of same.bin no longer counts");
  t.equal(xattr(onAlpha('beta/backup/same.bin'), 'user.sd.copies'), '1', 'nor on alpha');
  const status = JSON.parse((await runSd(['--json', 'guardian', 'status'], { library: b.library })).stdout) as { untrusted: string[] };
  t.same(status.untrusted, ['beta'], 'sd guardian status on beta names it untrusted');
  t.equal((await runSd(['guardian', 'trust', 'beta'], { library: a.library })).code, 0, 'trusted again');
  t.ok(await waitFor(() => xattr(onBeta('beta/backup/same.bin'), 'user.sd.copies') === '2', 30_000, 200), 'both copies count again');

  // Bit rot on alpha, found by its scrub: beta learns that alpha's copy no longer counts, and never gets its bytes.
  const file = path.join(a.root, 'same.bin');
  const ref = `${file}.time`;
  fs.writeFileSync(ref, '');
  execFileSync('touch', ['-r', file, ref]);
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from([same[100_000]! ^ 0xff]), 0, 1, 100_000);
  fs.closeSync(fd);
  execFileSync('touch', ['-r', ref, file]);
  fs.rmSync(ref);
  const scrub = await runSd(['guardian', 'scrub'], { library: a.library });
  t.equal(scrub.code, 1, 'alpha\'s scrub finds the rot');
  t.match(scrub.stdout, /sd:\/\/alpha\/media\/same\.bin/, 'and names the file');
  t.ok(await waitFor(() => xattr(onBeta('beta/backup/same.bin'), 'user.sd.copies') === '1', 30_000, 200), "beta: alpha's corrupt copy no longer counts");
  t.ok(fs.readFileSync(onBeta('alpha/media/same.bin')).equals(same), "reading alpha's same.bin through beta's mount gives the good bytes (beta's own copy), never the rotten ones");

  // Repair on alpha: no good copy there, so its running mount fetches beta's and checks it.
  const repair = await runSd(['guardian', 'repair'], { library: a.library });
  t.equal(repair.code, 0, `sd guardian repair on alpha ${repair.stderr}`);
  t.match(repair.stdout, /Queued as job \d+: the running 'sd mount' fetches the bytes from a paired device/, 'is queued for the running mount');
  t.ok(await waitFor(() => fs.readFileSync(file).equals(same), 30_000, 300), "alpha's mount repaired same.bin from beta's copy: the bytes are right again");
  const db = new Database(path.join(a.library, 'library.db'), { readonly: true });
  try {
    const signers = (db.prepare('SELECT DISTINCT signer FROM content_vouches').all() as Array<{ signer: Buffer }>).map((r) => r.signer.toString('hex'));
    t.same(signers, [deviceKeys(b.library).log.publicKey.toString('hex')], "alpha keeps what beta signed for the blocks it sent (passed along when alpha serves that content)");
  } finally {
    db.close();
  }
  t.ok(await waitFor(() => xattr(onBeta('beta/backup/same.bin'), 'user.sd.copies') === '2', 30_000, 200), 'and both copies count again on beta');
  t.equal((await runSd(['guardian', 'scrub'], { library: a.library })).code, 0, 'a scrub on alpha finds nothing corrupt');
});
