// /sd/.search/<query>/ in a real mount: any query (a sentence or filters) is a folder of
// relative symlinks to its results, evaluated again each time it is listed; a query that
// cannot be read, or a name a file manager probes (.directory), is not there.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { waitFor } from './helpers.js';
import { libraryWithLocation, startMount } from './mount-helpers.js';

t.test('ls "/sd/.search/<query>" lists the results as links into the tree', async (t) => {
  const lastYear = new Date(new Date().getFullYear() - 1, 3, 15);
  const { library, root } = await libraryWithLocation(t, { 'W-2 form.pdf': 'wages', 'holiday.jpg': 'a photo', 'notes.txt': 'plain', 'sub/receipt 17.pdf': 'paid' }, 'box', 'data', 'content');
  for (const name of ['W-2 form.pdf', 'sub/receipt 17.pdf']) fs.utimesSync(path.join(root, name), lastYear, lastYear);
  const m = await startMount(t, library);
  const search = path.join(m.mountpoint, '.search');
  // The watcher has the times set before the mount started; the index may still take them in.
  const list = (query: string) => fs.readdirSync(path.join(search, query)).sort();
  t.ok(await waitFor(() => list('tax documents from last year').length === 2, 10_000, 100), 'a sentence is a folder');
  t.same(list('tax documents from last year'), ['W-2 form.pdf', 'receipt 17.pdf'], 'tax documents from last year: the W-2 and the receipt');
  t.same(list('w2'), ['W-2 form.pdf'], 'w2 finds W-2');
  t.same(list('kind:image'), ['holiday.jpg'], 'filters are queries too');
  const link = path.join(search, 'w2', 'W-2 form.pdf');
  t.equal(fs.readlinkSync(link), '../../box/data/W-2 form.pdf', 'a relative link into the tree');
  t.equal(fs.readFileSync(link, 'utf8'), 'wages', 'which reads the file');
  t.ok(fs.statSync(path.join(search, 'photos')).isDirectory(), 'a query is a folder to stat too');

  // Listed again: evaluated again.
  fs.writeFileSync(path.join(m.mountpoint, 'box', 'data', 'W2 copy.txt'), 'again');
  t.ok(await waitFor(() => list('w2').length === 2, 10_000, 100), 'a new file shows when the folder is listed again');

  for (const name of ['the of and', '.directory', 'kind:bogus']) {
    t.notOk(fs.existsSync(path.join(search, name)), `'${name}' is not there (nothing to search for, a probe, a bad filter)`);
  }
  t.same(fs.readdirSync(search), [], '/.search itself lists nothing: any query can be looked up in it');
  t.throws(() => fs.mkdirSync(path.join(search, 'new')), { code: 'EEXIST' }, 'mkdir of a query: it is there already');
  t.throws(() => fs.writeFileSync(path.join(search, 'new', 'x.txt'), 'no'), { code: 'EROFS' }, 'nothing is written in a query folder');
});
