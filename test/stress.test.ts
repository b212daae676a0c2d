// 10,000 random operations through a real mount, each checked against an in-memory
// model: open/write at random offsets, truncate, rename, unlink, mkdir over 50 files.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { seededRandom } from '../scripts/bench/common.js';
import { libraryWithLocation, startMount } from './mount-helpers.js';

const OPS = Number(process.env.SD_STRESS_OPS ?? 10_000);
const FILES = 50;

t.test(`${OPS} random operations match an in-memory model`, async (t) => {
  const { library } = await libraryWithLocation(t, {});
  const m = await startMount(t, library);
  const root = path.join(m.mountpoint, 'box', 'data');
  const seed = Number(process.env.SD_STRESS_SEED ?? Date.now() % 1_000_000);
  t.comment(`seed ${seed} (SD_STRESS_SEED replays it)`);
  const rand = seededRandom(seed);
  const pick = (n: number) => Math.floor(rand() * n);
  const dirs = ['', 'd0', 'd1', 'd2'];
  const model = new Map<string, Buffer>();
  const madeDirs = new Set(['']);
  const slot = () => `${dirs[pick(dirs.length)]}/f${pick(FILES)}`.replace(/^\//, '');
  let failures = 0;

  const check = (rel: string, step: number, op: string) => {
    const want = model.get(rel);
    const file = path.join(root, rel);
    const exists = fs.existsSync(file);
    if (!want) {
      if (exists) failures++, t.fail(`step ${step} (${op}): ${rel} should not exist`);
      return;
    }
    const got = exists ? fs.readFileSync(file) : undefined;
    if (!got || !got.equals(want) || fs.statSync(file).size !== want.length) {
      failures++;
      t.fail(`step ${step} (${op}): ${rel} differs (size ${got?.length} vs ${want.length})`);
    }
  };

  for (let step = 0; step < OPS && failures < 5; step++) {
    const kind = pick(10);
    const rel = slot();
    const file = path.join(root, rel);
    const dir = path.dirname(rel) === '.' ? '' : path.dirname(rel);
    let op = '';
    if (!madeDirs.has(dir)) {
      op = 'mkdir';
      fs.mkdirSync(path.join(root, dir));
      madeDirs.add(dir);
    } else if (kind < 5) {
      op = 'write';
      const data = Buffer.alloc(1 + pick(3000), 97 + pick(26));
      const offset = pick(8000);
      const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT);
      fs.writeSync(fd, data, 0, data.length, offset);
      fs.closeSync(fd);
      const old = model.get(rel) ?? Buffer.alloc(0);
      const next = Buffer.alloc(Math.max(old.length, offset + data.length));
      old.copy(next);
      data.copy(next, offset);
      model.set(rel, next);
    } else if (kind < 7 && model.has(rel)) {
      op = 'truncate';
      const size = pick(6000);
      fs.truncateSync(file, size);
      const old = model.get(rel)!;
      const next = Buffer.alloc(size);
      old.copy(next, 0, 0, Math.min(size, old.length));
      model.set(rel, next);
    } else if (kind < 9 && model.has(rel)) {
      const to = slot();
      const toDir = path.dirname(to) === '.' ? '' : path.dirname(to);
      if (!madeDirs.has(toDir) || to === rel) continue;
      op = 'rename';
      fs.renameSync(file, path.join(root, to));
      model.set(to, model.get(rel)!);
      model.delete(rel);
      check(to, step, op);
    } else if (model.has(rel)) {
      op = 'unlink';
      fs.unlinkSync(file);
      model.delete(rel);
    } else {
      continue;
    }
    check(rel, step, op);
    if (step % 1000 === 999) for (const r of model.keys()) check(r, step, 'full check');
  }
  for (const r of model.keys()) check(r, OPS, 'final check');
  const listed = (['', 'd0', 'd1', 'd2'] as const)
    .filter((d) => madeDirs.has(d))
    .flatMap((d) => fs.readdirSync(path.join(root, d), { withFileTypes: true }).filter((e) => e.isFile()).map((e) => (d ? `${d}/${e.name}` : e.name)));
  t.same(listed.sort(), [...model.keys()].sort(), 'the listing holds exactly the model files');
  t.equal(failures, 0, 'no step differed from the model');
});
