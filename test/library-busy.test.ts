// Another process writing the library while a command or the mount changes it: `sd` commands
// and `sd mount` share one library.db. A change waits for the other writer (up to the busy
// timeout) before it reads, and one held up longer says the library is busy; none fails at
// once, none is half made.
import fs from 'node:fs';
import path from 'node:path';
import { getAttributeSync, setAttributeSync } from '@napi-rs/xattr';
import t from 'tap';
import { config } from '../src/config.js';
import { runSd, tempDir, writeTree, type SdResult } from './helpers.js';
import { mountIdle, writerOf } from './library-writer.js';
import { libraryWithLocation, startMount } from './mount-helpers.js';

/** Well within the busy timeout, and long enough for five commands to start meanwhile. */
const HOLD_MS = 3000;

async function json<T>(library: string, args: string[]): Promise<T> {
  const r = await runSd(['--json', ...args], { library });
  if (r.code !== 0) throw new Error(`sd ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

t.test('commands that change shared data wait for another process writing the library (each failed at once: database is locked)', async (t) => {
  const { library } = await libraryWithLocation(t, { 'a.txt': 'a', 'taxes/w2.pdf': 'w2' }, 'box', 'data');
  const old = writeTree(tempDir(t), { 'b.txt': 'b' });
  t.equal((await runSd(['location', 'add', old, '--name', 'old'], { library })).code, 0, 'a second location, to remove');
  const writer = await writerOf(t, library, 'hold', HOLD_MS);
  const run = (args: string[]): Promise<SdResult & { args: string[] }> => runSd(args, { library }).then((r) => ({ ...r, args }));
  const results = await Promise.all([
    run(['tag', 'add', 'tax', 'sd://box/data/a.txt']),
    run(['meta', 'set', 'sd://box/data/a.txt', 'rating', '4']),
    run(['guardian', 'policy', 'set', '--copies', '3']),
    run(['location', 'rm', 'old']),
    run(['do', '--yes', 'tag everything in taxes as 2025']),
  ]);
  for (const r of results) t.equal(r.code, 0, `sd ${r.args.join(' ')} ${r.code === 0 ? 'waited, then did it' : `failed: ${r.stderr.trim()}`}`);
  t.equal(await writer.stop(), 1, "the other process's transaction committed");
  const tagged = await json<Array<{ sdpath: string }>>(library, ['tag', 'files', 'tax']);
  t.same(tagged.map((v) => v.sdpath), ['sd://box/data/a.txt'], 'the tag is there');
  const meta = await json<Array<{ metadata: Record<string, string> }>>(library, ['meta', 'ls', 'sd://box/data/a.txt']);
  t.same(meta[0]?.metadata, { rating: '4' }, 'the metadata is there');
  const policies = await json<Array<{ target: string; copies: number }>>(library, ['guardian', 'policy', 'ls']);
  t.match(policies, [{ target: 'library', copies: 3 }], 'the policy is there');
  const locations = await json<Array<{ name: string }>>(library, ['location', 'ls']);
  t.same(locations.map((l) => l.name), ['data'], 'the location is gone');
  const fromDo = await json<Array<{ name: string }>>(library, ['tag', 'files', '2025']);
  t.same(fromDo.map((v) => v.name).sort(), ['w2.pdf'], 'sd do tagged the folder');
});

t.test('a command held up past the busy timeout says the library is busy, and changes nothing', async (t) => {
  const { library } = await libraryWithLocation(t, { 'a.txt': 'a' }, 'box', 'data');
  // Held until the command is done: a fixed hold ran out first when the command was slow to start (load 12).
  const writer = await writerOf(t, library, 'hold-until-stopped');
  const started = Date.now();
  const r = await runSd(['tag', 'add', 'tax', 'sd://box/data/a.txt'], { library });
  const waited = Date.now() - started;
  t.equal(r.code, 1, 'it fails');
  t.match(r.stderr, /is locked by another process; wait for it or stop it, then retry/, 'with a line that says what to do');
  t.ok(waited >= config.dbBusyTimeoutMs, `after waiting the busy timeout (${waited} ms)`);
  t.equal(await writer.stop(), 1, "the other process's transaction committed");
  t.same(await json(library, ['tag', 'files', 'tax']), [], 'nothing was tagged');
  t.equal((await runSd(['tag', 'add', 'tax', 'sd://box/data/a.txt'], { library })).code, 0, 'run again, it does it');
});

t.test('the mount: setfattr of tags and metadata waits for another process writing the library (it failed at once with EIO)', async (t) => {
  const { library } = await libraryWithLocation(t, { 'a.txt': 'a' }, 'lap', 'docs');
  const m = await startMount(t, library);
  const file = path.join(m.mountpoint, 'lap/docs/a.txt');
  await mountIdle(library);
  let writer = await writerOf(t, library, 'hold', 1500);
  setAttributeSync(file, 'user.sd.tags', Buffer.from('tax, 2025'));
  t.equal(await writer.stop(), 1, "the other process's transaction committed");
  await mountIdle(library);
  writer = await writerOf(t, library, 'hold', 1500);
  setAttributeSync(file, 'user.sd.meta.rating', Buffer.from('5'));
  t.equal(await writer.stop(), 1, "the other process's transaction committed");
  t.equal(getAttributeSync(file, 'user.sd.tags')?.toString(), '2025,tax', 'the tags are set');
  t.equal(getAttributeSync(file, 'user.sd.meta.rating')?.toString(), '5', 'the metadata is set');
});

t.test('the mount: a setfattr held up past the busy timeout answers EBUSY (it was EIO), and goes through once the library is free', async (t) => {
  const { library } = await libraryWithLocation(t, { 'a.txt': 'a' }, 'lap', 'docs');
  const m = await startMount(t, library);
  const file = path.join(m.mountpoint, 'lap/docs/a.txt');
  await mountIdle(library);
  // Held until the command is done: a fixed hold ran out first when the command was slow to start (load 12).
  const writer = await writerOf(t, library, 'hold-until-stopped');
  const started = Date.now();
  t.throws(() => setAttributeSync(file, 'user.sd.tags', Buffer.from('tax')), /busy/i, 'EBUSY: try again');
  t.ok(Date.now() - started >= config.dbBusyTimeoutMs - 100, `after waiting the busy timeout (${Date.now() - started} ms)`);
  t.equal(await writer.stop(), 1, "the other process's transaction committed");
  t.equal(getAttributeSync(file, 'user.sd.tags'), null, 'nothing was tagged');
  setAttributeSync(file, 'user.sd.tags', Buffer.from('tax'));
  t.equal(getAttributeSync(file, 'user.sd.tags')?.toString(), 'tax', 'set again, it is');
});

t.test("sd search is:at-risk waits for another process writing the library (the guardian's summary, brought up to date inside the search's deferred transaction, failed at once)", async (t) => {
  const { library } = await libraryWithLocation(t, { 'a.txt': 'a', 'b.txt': 'b' }, 'box', 'data');
  const writer = await writerOf(t, library, 'hold', HOLD_MS);
  const r = await runSd(['--json', 'search', 'is:at-risk'], { library });
  t.equal(r.code, 0, r.code === 0 ? 'it waited, then searched' : `it failed: ${r.stderr.trim()}`);
  t.equal(await writer.stop(), 1, "the other process's transaction committed");
  const hits = (JSON.parse(r.stdout || '{"results":[]}') as { results: Array<{ name: string }> }).results;
  t.same(hits.map((h) => h.name).sort(), ['a.txt', 'b.txt'], 'both files are at risk (one copy, two wanted)');
});

t.test('the mount answers while another process holds the library (its log pump, dropping nothing every 50 ms, waited for the write lock and held up the whole mount)', async (t) => {
  const { library } = await libraryWithLocation(t, { 'a.txt': 'a' }, 'lap', 'docs');
  const m = await startMount(t, library);
  await mountIdle(library);
  const writer = await writerOf(t, library, 'hold', HOLD_MS);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const started = Date.now();
  // A name never looked up: the kernel asks the mount.
  t.notOk(fs.existsSync(path.join(m.mountpoint, 'lap/docs', `nothing-${started}`)), 'a lookup is answered');
  t.equal(getAttributeSync(path.join(m.mountpoint, 'lap/docs/a.txt'), 'user.sd.tags'), null, 'and an xattr read');
  const took = Date.now() - started;
  t.ok(took < 1000, `at once (${took} ms), not once the other process let go (${HOLD_MS - 500} ms later)`);
  t.equal(await writer.stop(), 1, "the other process's transaction committed");
});
