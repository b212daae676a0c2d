// Bytes of another device's file are taken only as their owner vouches for them, through
// real mounts on a local DHT testnet: a third device holding a copy with the same (sampled)
// content id but altered bytes serves them with its own, valid, hashes; the reader refuses
// them, reads the owner's bytes, and `sd devices` counts the liar as faulty.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { contentHashOfBuffer } from '../src/vdfs/content/identity.js';
import { runSd, waitFor } from './helpers.js';
import { libraryWithLocation, startMount } from './mount-helpers.js';
import { pair, testnetAddress, waitForPeerFile } from './remote-helpers.js';

const MiB = 1024 * 1024;

t.test("a copy with altered bytes and the owner's content id is refused; the owner's bytes are read; the liar is counted faulty", async (t) => {
  const clip = crypto.randomBytes(3 * MiB);
  // Altered between the samples the content id reads (8 KiB head and tail, 4 × 10 KiB):
  // the same id, other bytes — in the first 128 KiB too, which the first read asks for.
  const altered = Buffer.from(clip);
  for (const at of [20_000, 1_500_000, 2_600_000]) altered[at] = altered[at]! ^ 0x5a;
  t.equal(contentHashOfBuffer(altered)!.contentId, contentHashOfBuffer(clip)!.contentId, 'precondition: the altered copy has the same content id');
  t.notOk(altered.equals(clip));

  const alpha = await libraryWithLocation(t, { 'clip.bin': clip, 'probe.txt': 'alpha\n' }, 'alpha', 'media', 'content');
  const beta = await libraryWithLocation(t, { 'readme.txt': 'beta\n' }, 'beta', 'backup', 'content');
  const gamma = await libraryWithLocation(t, { 'copy.bin': altered, 'probe.txt': 'gamma\n' }, 'gamma', 'vault', 'content');
  const bootstrap = await testnetAddress(t);
  await pair(t, alpha.library, beta.library, bootstrap);
  await pair(t, beta.library, gamma.library, bootstrap);
  const mounts = [];
  for (const d of [alpha, beta, gamma]) mounts.push(await startMount(t, d.library, ['--bootstrap', bootstrap]));
  const reader = mounts[1]!;
  await waitForPeerFile(reader, 'alpha/media/probe.txt', 'alpha\n');
  await waitForPeerFile(reader, 'gamma/vault/probe.txt', 'gamma\n');
  // beta knows gamma holds that content (its log carries the content id), so gamma is a source.
  const knowsCopy = async () => {
    const r = await runSd(['--json', 'ls', 'sd://gamma/vault/copy.bin'], { library: beta.library });
    return r.code === 0 && r.stdout.includes(contentHashOfBuffer(clip)!.contentId);
  };
  t.ok(await waitFor(knowsCopy, 60_000, 250), "beta's mirror of gamma has the copy's content id");

  const read = fs.readFileSync(path.join(reader.mountpoint, 'alpha', 'media', 'clip.bin'));
  t.equal(read.length, clip.length, 'the whole file is read');
  t.ok(read.equals(clip), "the bytes are alpha's, not gamma's altered ones");

  const devices = async () => JSON.parse((await runSd(['--json', 'devices'], { library: beta.library })).stdout) as Array<{ name: string; faults: number; last_fault: string | null }>;
  const liar = (await devices()).find((d) => d.name === 'gamma');
  t.ok(liar && liar.faults >= 1, `sd devices counts gamma faulty (${liar?.faults})`);
  t.match(liar?.last_fault ?? '', /not what the owner signed/, 'and says why');
  t.equal((await devices()).find((d) => d.name === 'alpha')?.faults, 0, 'alpha is not');
  const table = await runSd(['devices'], { library: beta.library });
  t.match(table.stdout, /FAULTS/, "the table has a FAULTS column");
});
