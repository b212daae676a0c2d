// The folder notifier on a big tree: starting 10,000 folder watches gives the thread back
// between slices (FUSE calls share it), and closing releases every watch.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { EntryStore } from '../src/vdfs/entries.js';
import { FolderNotifier } from '../src/vdfs/folder-notifier.js';
import { indexLocation } from '../src/vdfs/indexer/indexer.js';
import { addLocation } from '../src/vdfs/locations.js';
import { tempDir, tempLibrary, waitFor } from './helpers.js';

const FOLDERS = 10_000;
/**
 * The most CPU time the thread may spend at once while watches start. CPU time, not wall
 * time: on a shared machine the process is also preempted, which no code of ours causes.
 */
const MAX_BLOCK_MS = 50;

function fsWatches(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;
}

t.test(`starting watches on ${FOLDERS.toLocaleString('en')} folders never holds the thread long`, async (t) => {
  const library = tempLibrary(t);
  const root = fs.realpathSync(tempDir(t, 'sd-notify-'));
  // 100 folders of 100: the shape of a photo library.
  for (let i = 0; i < FOLDERS / 100 - 1; i++) for (let j = 0; j < 99; j++) fs.mkdirSync(path.join(root, `d${i}`, `e${j}`), { recursive: true });
  for (let j = 0; j < 100 - 1; j++) fs.mkdirSync(path.join(root, `e${j}`));
  const location = addLocation(library.db, new EntryStore(library.db), library.device.id, { path: root, name: 'many' });
  indexLocation(library, location);

  const changed: string[] = [];
  const notifier = new FolderNotifier(library, { onChange: (_l, rel) => void changed.push(rel) });
  t.teardown(() => notifier.close());
  // CPU time of the JS thread alone (the main thread's task id is the pid): process-wide
  // cpuUsage also counts GC and thread-pool threads, which do not hold the event loop.
  const cpuMs = () => Number(fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  let longestCpu = 0;
  let longestWall = 0;
  let lastCpu = cpuMs();
  let lastWall = performance.now();
  const tick = setInterval(() => {
    const cpu = cpuMs();
    const wall = performance.now();
    longestCpu = Math.max(longestCpu, cpu - lastCpu);
    longestWall = Math.max(longestWall, wall - lastWall);
    lastCpu = cpu;
    lastWall = wall;
  }, 1);
  const started = performance.now();
  const startedCpu = cpuMs();
  await notifier.watchLocation(location);
  const ms = performance.now() - started;
  const spent = cpuMs() - startedCpu;
  clearInterval(tick);
  longestCpu = Math.max(longestCpu, cpuMs() - lastCpu);
  const folders = notifier.watchedCount(location);
  t.equal(folders, FOLDERS, 'every indexed folder (the root included) is watched');
  t.comment(`${folders} watches in ${Math.round(ms)} ms (${Math.round(spent)} ms CPU); between two turns of the event loop at most ${Math.round(longestCpu)} ms CPU, ${Math.round(longestWall)} ms wall`);
  t.ok(longestCpu < MAX_BLOCK_MS, `the thread is given back after at most ${MAX_BLOCK_MS} ms of work (${Math.round(longestCpu)} ms)`);

  fs.writeFileSync(path.join(root, 'd42', 'e7', 'new.txt'), 'x');
  t.ok(await waitFor(() => changed.includes('d42/e7'), 1000), 'an event names its folder');
  notifier.close();
  t.ok(await waitFor(() => fsWatches() === 0, 3000), 'close releases every watch');
});
