// sd do: a sentence becomes copy, move, delete (to the trash) or tag over the files a
// search finds; the preview comes first and nothing runs without --yes (no terminal here);
// a sentence it cannot map says what it understood and what not.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { SdError } from '../src/errors.js';
import { addPeerDevice } from '../src/vdfs/device.js';
import { EntryStore } from '../src/vdfs/entries.js';
import { openLibrary } from '../src/vdfs/library.js';
import { setLocationRoot, upsertMirroredLocation } from '../src/vdfs/locations.js';
import { parseIntent } from '../src/vdfs/search/intent.js';
import { sd } from './cli-process.js';
import { libraryWithLocation } from './mount-helpers.js';

t.test('sentences become intents', async (t) => {
  t.same(parseIntent('copy my 2024 photos to the nas'), { verb: 'copy', what: 'my 2024 photos', duplicates: false, to: 'the nas' });
  t.same(parseIntent('move screenshots older than a month to archive'), { verb: 'move', what: 'screenshots older than a month', duplicates: false, to: 'archive' });
  t.same(parseIntent('tag everything in taxes 2025 as tax'), { verb: 'tag', what: 'everything in taxes 2025', duplicates: false, tags: ['tax'] });
  t.same(parseIntent('delete duplicates in Downloads'), { verb: 'delete', what: 'in Downloads', duplicates: true });
  t.same(parseIntent('Please tag the invoices with tax and 2025.'), { verb: 'tag', what: 'the invoices', duplicates: false, tags: ['tax', '2025'] }, 'please, two tags, a full stop');
  for (const [text, message] of [
    ['frobnicate the photos', /not understood: what to do \('frobnicate'\); sd do knows copy, move, delete/],
    ['copy my photos', /understood: copy 'my photos'; not understood: to where/],
    ['tag the invoices', /not understood: with which tag/],
    ['', /needs a sentence/],
    ['copy '.repeat(300), /too long/],
  ] as const) {
    let refused: unknown;
    try {
      parseIntent(text);
    } catch (err) {
      refused = err;
    }
    t.ok(refused instanceof SdError && refused.code === 'USAGE' && message.test(refused.message), `'${text.slice(0, 30)}': ${String(refused)}`);
  }
});

t.test('sd do over a real library: preview first, --yes does it', async (t) => {
  const old = new Date(Date.now() - 90 * 86_400_000);
  const dup = crypto.randomBytes(5000);
  const { library, root } = await libraryWithLocation(t, {
    'Screenshot 2026-01-01.png': 'shot one',
    'Screenshot new.png': 'shot two',
    'archive/.keep': '',
    'photos/beach.jpg': crypto.randomBytes(3000),
    'backup/.keep': '',
    'Downloads/setup.bin': dup,
    'Downloads/setup (1).bin': dup,
    'Downloads/unique.txt': 'only here',
    'Downloads/report.pdf': 'a report',
    'docs/report.pdf': 'a report',
    'taxes 2025/W-2.pdf': 'wages',
    'taxes 2025/receipts/receipt 1.pdf': 'paid',
  }, 'box', 'data', 'content');
  fs.utimesSync(path.join(root, 'Screenshot 2026-01-01.png'), old, old);
  // The second setup is the newer one: the older is the copy a duplicates delete keeps.
  fs.utimesSync(path.join(root, 'Downloads', 'setup.bin'), old, old);
  t.equal((await sd(['index'], { library })).code, 0, 'indexed');
  const o = { library };

  // No --yes and no terminal: the preview, and nothing done.
  const dry = await sd(['do', 'move', 'screenshots', 'older', 'than', 'a', 'month', 'to', 'archive'], o);
  t.equal(dry.code, 0, 'a preview exits 0');
  t.match(dry.stdout, /understood: older than a month → modified/, 'it says how it read the sentence');
  t.match(dry.stdout, /Preview: move 1 file/, 'the action preview');
  t.match(dry.stdout, /sd:\/\/box\/data\/Screenshot 2026-01-01\.png/, 'the files it would move');
  t.match(dry.stdout, /nothing was changed: run again with --yes/, 'nothing runs without --yes');
  t.ok(fs.existsSync(path.join(root, 'Screenshot 2026-01-01.png')), 'still in place');

  const moved = await sd(['do', '--yes', 'move screenshots older than a month to archive'], o);
  t.equal(moved.code, 0, `--yes: done (${moved.stderr})`);
  t.ok(fs.existsSync(path.join(root, 'archive', 'Screenshot 2026-01-01.png')), 'moved into archive');
  t.ok(fs.existsSync(path.join(root, 'Screenshot new.png')), 'the new screenshot stays');

  const tagged = await sd(['--json', 'do', '--yes', 'tag everything in taxes 2025 as tax'], o);
  t.equal(tagged.code, 0, 'tag: done');
  t.equal((JSON.parse(tagged.stdout) as { tagged: number }).tagged, 3, 'the folder below taxes 2025 and its two files');
  const files = JSON.parse((await sd(['--json', 'tag', 'files', 'tax'], o)).stdout) as Array<{ name: string }>;
  t.same(files.map((f) => f.name).sort(), ['W-2.pdf', 'receipt 1.pdf', 'receipts'], 'sd tag files lists them');

  const dupes = await sd(['do', '--yes', 'delete duplicates in Downloads'], o);
  t.equal(dupes.code, 0, `delete duplicates: done (${dupes.stderr})`);
  const left = fs.readdirSync(path.join(root, 'Downloads')).sort();
  t.same(left, ['setup.bin', 'unique.txt'], 'one of the two setups stays (the oldest), the report with a copy in docs goes, the unique file stays');
  t.ok(fs.existsSync(path.join(root, '.sd-trash')), 'into the trash, not gone');

  // The last copy of a content: the preview says so, and only --force deletes it (into the trash).
  const guarded = await sd(['do', '--yes', 'delete unique'], o);
  t.equal(guarded.code, 1, 'a delete of a last copy does not start');
  t.match(guarded.stdout, /the last copy/, 'the preview says why');
  t.ok(fs.existsSync(path.join(root, 'Downloads', 'unique.txt')), 'still there');
  const forced = await sd(['do', '--yes', '--force', 'delete unique'], o);
  t.equal(forced.code, 0, `--force: done (${forced.stderr})`);
  t.notOk(fs.existsSync(path.join(root, 'Downloads', 'unique.txt')), 'gone from its folder, into the trash');

  const copied = await sd(['do', '--yes', 'copy photos to backup'], o);
  t.equal(copied.code, 0, `copy to a folder by name: done (${copied.stderr})`);
  t.same(fs.readdirSync(path.join(root, 'backup')).filter((n) => !n.startsWith('.')).sort(), ['Screenshot 2026-01-01.png', 'Screenshot new.png', 'beach.jpg'], 'the photos (the screenshots, in archive too, are images) copied into backup');

  // Onto a paired device: queued as jobs its running mount would deliver.
  const lib = openLibrary(library);
  try {
    const nas = addPeerDevice(lib.db, { id: crypto.randomUUID(), name: 'nas', publicKey: crypto.randomBytes(32).toString('hex') });
    const l = upsertMirroredLocation(lib.db, nas.id, 1, { name: 'vault', rootPath: '/srv/vault', indexMode: 'deep' });
    setLocationRoot(lib.db, l.id, new EntryStore(lib.db).insertMirrored(nas.id, l.id, [], { name: '', kind: 'dir', size: 0, mtime: Date.now(), mode: 0o40755 }, null, 1));
  } finally {
    lib.close();
  }
  const remote = await sd(['--json', 'do', '--yes', 'copy beach photos to the nas'], o);
  t.equal(remote.code, 0, `copy to the nas: queued (${remote.stderr})`);
  const out = JSON.parse(remote.stdout) as { plan: { to: string; files: string[] }; jobs: number[] };
  t.equal(out.plan.to, 'sd://nas/vault', 'to the only location of the nas');
  t.same(out.plan.files, ['sd://box/data/photos/beach.jpg', 'sd://box/data/backup/beach.jpg'].filter((p) => out.plan.files.includes(p)), 'the beach photos');
  t.ok(out.jobs.length >= 1, 'one job per file');
  const jobs = JSON.parse((await sd(['--json', 'jobs'], o)).stdout) as Array<{ id: number; device?: string; status: string }>;
  t.ok(out.jobs.every((id) => jobs.some((j) => j.id === id && j.device === 'nas' && j.status === 'queued')), "queued for the nas in 'sd jobs'");

  // What it cannot do or map.
  const [unknown, noWhere, nowhere, nothing, moveAway] = await Promise.all([
    sd(['do', 'frobnicate the photos'], o),
    sd(['do', 'copy photos'], o),
    sd(['do', 'move photos to nowhere'], o),
    sd(['do', 'delete zebra pictures'], o),
    sd(['do', 'move photos to the nas'], o),
  ]);
  for (const [r, code, message, what] of [
    [unknown, 2, /not understood: what to do \('frobnicate'\)/, 'an unknown verb'],
    [noWhere, 2, /to where/, 'a copy with no destination'],
    [nowhere, 1, /no device, location or folder named 'nowhere'/, 'a destination that is not there'],
    [nothing, 1, /nothing to delete: no file matches/, 'a sentence that finds nothing'],
    [moveAway, 1, /move to another device \(nas\): copy there first/, 'a move onto another device'],
  ] as const) {
    t.equal(r.code, code, `${what}: exit ${code}`);
    t.match(r.stderr, message, `${what}: says so (${r.stderr.trim()})`);
  }
});
