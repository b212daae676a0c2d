// The scrub's hashing thread: the hash equals BLAKE3 of the bytes, files are hashed in the
// order asked, a missing file fails with its errno, a rate limit holds, and a cancel stops
// the file under way and the ones queued behind it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import t from 'tap';
import { HashCancelled, HashThread } from '../src/vdfs/jobs/hash-thread.js';
import { tempDir } from './helpers.js';

t.test('hashes whole files in order, reports progress, fails a missing file with its errno', async (t) => {
  const dir = tempDir(t);
  const files = [0, 1, 131_072, 131_073, 20_000_000].map((size, i) => {
    const file = path.join(dir, `f${i}`);
    fs.writeFileSync(file, crypto.randomBytes(size));
    return file;
  });
  const thread = new HashThread();
  t.teardown(() => thread.close());
  const tasks = files.map((f) => thread.hash(f, 0));
  const progress: number[] = [];
  tasks[4]!.onProgress((bytes) => progress.push(bytes));
  const hashes = await Promise.all(tasks.map((task) => task.done));
  t.same(hashes, files.map((f) => blake3(fs.readFileSync(f)).toString('hex')), 'each equals BLAKE3 of its bytes (empty, one byte, one chunk, a chunk and a byte, 20 MB)');
  t.ok(progress.length >= 2 && progress[progress.length - 1] === 20_000_000, `progress on the way and at the end (${progress.join(', ')})`);
  await t.rejects(thread.hash(path.join(dir, 'missing'), 0).done, { code: 'ENOENT' }, 'a missing file: its errno');
  t.equal(await thread.hash(files[1]!, 0).done, hashes[1], 'the thread goes on after a failure');
});

t.test('a rate limit holds; a cancel stops the file under way and those queued', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'big');
  fs.writeFileSync(file, crypto.randomBytes(4_000_000));
  const thread = new HashThread();
  t.teardown(() => thread.close());
  const started = performance.now();
  await thread.hash(file, 10_000_000).done;
  const seconds = (performance.now() - started) / 1000;
  t.ok(seconds >= 0.35, `4 MB at 10 MB/s took ${seconds.toFixed(2)} s (at least 0.4 s less a chunk)`);

  const slow = thread.hash(file, 1_000_000); // 4 s at this rate
  const queued = thread.hash(file, 0);
  await new Promise((r) => setTimeout(r, 200));
  const cancelAt = performance.now();
  await thread.cancelAll();
  t.ok(performance.now() - cancelAt < 1000, 'the cancel is seen within a sleep slice, not at the end of the file');
  await t.rejects(slow.done, HashCancelled, 'the file under way is cancelled');
  await t.rejects(queued.done, HashCancelled, 'so is the one queued behind it');
  t.equal(await thread.hash(file, 0).done, blake3(fs.readFileSync(file)).toString('hex'), 'and the next one is hashed');
});
