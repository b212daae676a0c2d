// Two devices, each its own `sd mount` process and library, paired with the real CLI on a
// local DHT testnet: each lists the other's tree from the replicated index, reads its
// files byte for byte through the mount (blocks verified by BLAKE3), sees its changes
// within a second or so, and keeps listing it (reads fail with EIO, never hang) once it
// is gone.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { getAttributeSync, setAttributeSync } from '@napi-rs/xattr';
import t, { type Test } from 'tap';
import { runSd, waitFor } from './helpers.js';
import type { MountedDevice } from './mount-helpers.js';
import { pairedMounts } from './remote-helpers.js';

interface Pair {
  alpha: { library: string; root: string };
  beta: { library: string; root: string };
  bootstrap: string;
  mountA: MountedDevice;
  mountB: MountedDevice;
  big: Buffer;
}

/** alpha (a 24 MiB file among others) and beta, paired and mounted. */
async function alphaAndBeta(t: Test): Promise<Pair> {
  const big = crypto.randomBytes(24 * 1024 * 1024 + 12345);
  const { a, b, bootstrap } = await pairedMounts(t,
    // Info logs: the test checks the blocks took the direct lane.
    { name: 'alpha', location: 'media', files: { 'hi.txt': 'hello from alpha\n', 'video/big.bin': big, 'deep/a/b/c.txt': 'c' }, env: { SD_LOG: 'info' } },
    { name: 'beta', location: 'notes', files: { 'note.txt': 'beta note\n' }, env: { SD_LOG: 'info' } },
    { file: 'hi.txt', text: 'hello from alpha\n' });
  return { alpha: a, beta: b, bootstrap, mountA: a.mount, mountB: b.mount, big };
}

t.test('paired devices list and read each other through their mounts', async (t) => {
  const p = await alphaAndBeta(t);
  const remote = path.join(p.mountB.mountpoint, 'alpha', 'media');
  t.same(fs.readdirSync(remote).sort(), ['deep', 'hi.txt', 'video']);
  t.equal(fs.readFileSync(path.join(remote, 'deep/a/b/c.txt'), 'utf8'), 'c', 'a nested file');
  const st = fs.statSync(path.join(remote, 'video/big.bin'));
  t.equal(st.size, p.big.length, 'size from the replicated index');
  const started = performance.now();
  t.ok(fs.readFileSync(path.join(remote, 'video/big.bin')).equals(p.big), 'a 24 MiB remote file reads byte-identical');
  t.comment(`24 MiB remote read: ${Math.round(performance.now() - started)} ms`);

  // Random access: only the blocks asked for, right bytes at every offset.
  const fd = fs.openSync(path.join(remote, 'video/big.bin'), 'r');
  try {
    const buf = Buffer.alloc(4096);
    for (let i = 0; i < 20; i++) {
      const offset = Math.floor(Math.random() * (p.big.length - 4096));
      fs.readSync(fd, buf, 0, 4096, offset);
      if (!buf.equals(p.big.subarray(offset, offset + 4096))) t.fail(`bytes at ${offset} differ`);
    }
  } finally {
    fs.closeSync(fd);
  }
  t.equal(fs.readFileSync(path.join(p.mountA.mountpoint, 'beta/notes/note.txt'), 'utf8'), 'beta note\n', 'and the other way round');
  // Both on this machine: the dialling device opened a direct lane (TCP + TLS 1.3) for blocks.
  const lane = `${p.mountA.stderr()}${p.mountB.stderr()}`.split('\n').find((l) => l.includes('direct lane open'));
  t.ok(lane, `a direct lane carried the blocks: ${lane?.slice(0, 200)}`);

  const xattr = await runSd(['--json', 'devices'], { library: p.beta.library });
  t.match(JSON.parse(xattr.stdout), [{ name: 'alpha', online: true }], 'sd devices shows the peer online');


  // Tags are shared: set on either device, on either device's files, they end the same on both.
  const tagsOn = async (library: string, target: string) => {
    const r = await runSd(['--json', 'tag', 'ls', target], { library });
    return r.code === 0 ? ((JSON.parse(r.stdout) as Array<{ tags: string[] }>)[0]?.tags ?? []).join(',') : `error: ${r.stderr}`;
  };
  setAttributeSync(path.join(remote, 'hi.txt'), 'user.sd.tags', Buffer.from('from-beta,shared'));
  await runSd(['tag', 'add', 'from-alpha', path.join(p.alpha.root, 'hi.txt')], { library: p.alpha.library });
  const converged = await waitFor(async () => {
    const [a, b] = [await tagsOn(p.alpha.library, 'sd://alpha/media/hi.txt'), await tagsOn(p.beta.library, 'sd://alpha/media/hi.txt')];
    return a === b && a === 'from-alpha,from-beta,shared';
  }, 10_000, 200);
  t.ok(converged, 'tags set on two devices converge on both');
  // Concurrent edits of one register: the later stamp wins on both sides.
  setAttributeSync(path.join(p.mountA.mountpoint, 'alpha/media/hi.txt'), 'user.sd.tags', Buffer.from('x'));
  setAttributeSync(path.join(remote, 'hi.txt'), 'user.sd.tags', Buffer.from('y'));
  t.ok(await waitFor(async () => (await tagsOn(p.alpha.library, 'sd://alpha/media/hi.txt')) === (await tagsOn(p.beta.library, 'sd://alpha/media/hi.txt')), 10_000, 200),
    'concurrent edits end the same on both devices');
  t.comment(`after concurrent edits: ${await tagsOn(p.alpha.library, 'sd://alpha/media/hi.txt')}`);
  t.ok(fs.readdirSync(path.join(p.mountB.mountpoint, '.tags')).length > 0, "beta's /.tags lists the shared tags");

  // User metadata is shared the same way: set through beta's mount on alpha's file, by CLI on alpha.
  const metaOn = async (library: string) => {
    const r = await runSd(['--json', 'meta', 'ls', 'sd://alpha/media/hi.txt'], { library });
    return r.code === 0 ? JSON.stringify((JSON.parse(r.stdout) as Array<{ metadata: Record<string, string> }>)[0]?.metadata) : `error: ${r.stderr}`;
  };
  setAttributeSync(path.join(remote, 'hi.txt'), 'user.sd.meta.rating', Buffer.from('5'));
  t.equal((await runSd(['meta', 'set', path.join(p.alpha.root, 'hi.txt'), 'author', 'Ada'], { library: p.alpha.library })).code, 0);
  t.ok(await waitFor(async () => (await metaOn(p.alpha.library)) === '{"author":"Ada","rating":"5"}' && (await metaOn(p.beta.library)) === '{"author":"Ada","rating":"5"}', 10_000, 200),
    'metadata set on two devices converges on both');
  t.equal(getAttributeSync(path.join(p.mountA.mountpoint, 'alpha/media/hi.txt'), 'user.sd.meta.rating')?.toString(), '5', "and reads back as an xattr in alpha's mount");
});

t.test("a change on one device shows in the other's mount, and a gone device stays listed", async (t) => {
  const p = await alphaAndBeta(t);
  const remote = path.join(p.mountB.mountpoint, 'alpha', 'media');
  fs.writeFileSync(path.join(p.alpha.root, 'fresh.txt'), 'fresh');
  const started = Date.now();
  t.ok(await waitFor(() => fs.readdirSync(remote).includes('fresh.txt'), 5000, 20), 'a new file on alpha is listed on beta');
  t.comment(`listed on beta ${Date.now() - started} ms after the write on alpha`);
  t.equal(fs.readFileSync(path.join(remote, 'fresh.txt'), 'utf8'), 'fresh');
  fs.rmSync(path.join(p.alpha.root, 'deep'), { recursive: true });
  t.ok(await waitFor(() => !fs.readdirSync(remote).includes('deep'), 5000, 20), 'a deleted folder goes from beta too');

  fs.writeFileSync(path.join(p.alpha.root, 'unread.txt'), 'never fetched by beta');
  t.ok(await waitFor(() => fs.readdirSync(remote).includes('unread.txt'), 5000, 20), 'listed on beta, bytes not fetched');
  fs.readFileSync(path.join(remote, 'hi.txt')); // now in beta's block cache
  await p.mountA.stop();
  t.ok(await waitFor(async () => {
    const r = await runSd(['--json', 'devices'], { library: p.beta.library });
    return (JSON.parse(r.stdout) as Array<{ online: boolean }>)[0]?.online === false;
  }, 20_000, 250), 'beta sees alpha go offline');
  t.ok(fs.readdirSync(remote).includes('hi.txt'), "alpha's tree stays listed while it is offline");
  t.equal(fs.readFileSync(path.join(remote, 'hi.txt'), 'utf8'), 'hello from alpha\n', 'cached bytes still read');
  const readStarted = Date.now();
  t.throws(() => fs.readFileSync(path.join(remote, 'unread.txt')), { code: 'EIO' }, 'bytes never fetched fail with EIO');
  t.ok(Date.now() - readStarted < 7000, `and do not hang (${Date.now() - readStarted} ms)`);
});
