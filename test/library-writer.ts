// Another process writing a library while the code under test uses it, as `sd pair` or
// any other `sd` command does beside a running mount: they share one library.db file.
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Test } from 'tap';
import { openReader } from '../src/vdfs/db/database.js';
import { DATABASE_FILE } from '../src/vdfs/library.js';
import { cleanEnv, waitFor } from './helpers.js';

/**
 * Another process writing `library`, as `sd pair` does (a device paired again, one
 * transaction each time): 'churn' writes over and over until stopped; 'hold' keeps one write
 * transaction open for holdMs (within the busy timeout, or past it); 'hold-until-stopped'
 * keeps it open until stop(). Resolves once it writes (holds the write lock, for the
 * holds). stop() resolves with how many transactions it committed.
 */
export async function writerOf(t: Test, library: string, mode: 'churn' | 'hold' | 'hold-until-stopped', holdMs = 0): Promise<{ stop(): Promise<number> }> {
  const modules = { library: new URL('../src/vdfs/library.js', import.meta.url).href, peers: new URL('../src/vdfs/peers.js', import.meta.url).href };
  const script = `
    const { openLibrary } = await import(${JSON.stringify(modules.library)});
    const { savePairedPeer } = await import(${JSON.stringify(modules.peers)});
    const library = openLibrary(${JSON.stringify(library)});
    const info = { id: 'writer-device', name: 'writer', publicKey: '77'.repeat(32), logKey: '88'.repeat(32) };
    let writes = 0;
    let stopping = false;
    const done = () => process.stdout.write(writes + '\\n', () => process.exit(0));
    process.stdin.on('data', () => void (stopping = true));
    if (${JSON.stringify(mode)} === 'hold-until-stopped') {
      library.db.exec('BEGIN IMMEDIATE');
      savePairedPeer(library.db, info);
      process.stdout.write('writing\\n');
      const wait = () => {
        if (!stopping) return setTimeout(wait, 10);
        library.db.exec('COMMIT');
        writes++;
        done();
      };
      wait();
    } else if (${JSON.stringify(mode)} === 'hold') {
      library.db.exec('BEGIN IMMEDIATE');
      savePairedPeer(library.db, info);
      process.stdout.write('writing\\n');
      setTimeout(() => {
        library.db.exec('COMMIT');
        writes++;
        const wait = () => (stopping ? done() : setTimeout(wait, 10));
        wait();
      }, ${holdMs});
    } else {
      process.stdout.write('writing\\n');
      const write = () => {
        if (stopping) return done();
        savePairedPeer(library.db, info);
        writes++;
        setImmediate(write);
      };
      write();
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: cleanEnv(), stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => void child.kill('SIGKILL'));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  if (!(await waitFor(() => out.includes('writing\n'), 10_000))) throw new Error('the writer process did not start');
  return {
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end('stop\n');
      await exited;
      return Number(out.split('\n')[1]);
    },
  };
}

/**
 * Waits until the mount has nothing left to write of its own (contents to extract, changes
 * for its log, copy counts to update): else, held up by the other process itself, it would
 * take the FUSE call only once the library is free again, and the test would show nothing.
 */
export async function mountIdle(library: string): Promise<void> {
  const db = openReader(path.join(library, DATABASE_FILE));
  const left = db.prepare(`SELECT (SELECT count(*) FROM extract_pending) + (SELECT count(*) FROM index_outbox)
                                 + (SELECT count(*) FROM guardian_dirty) + (SELECT count(*) FROM device_log_snapshot)`).pluck();
  // Nothing left for a second on end.
  let quietChecks = 0;
  const settled = () => (quietChecks = left.get() === 0 ? quietChecks + 1 : 0) >= 10;
  try {
    if (!(await waitFor(settled, 30_000, 100))) throw new Error('the mount did not settle within 30 s');
  } finally {
    db.close();
  }
}
