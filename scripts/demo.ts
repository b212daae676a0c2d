// `npm start`: a demo library over the sample folders in mnt-example/, indexed and
// mounted at mnt-example/sd (or the folder given with --mount, e.g. /sd), with a list
// of things to try. Ctrl-C unmounts and leaves nothing behind.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const example = path.join(repo, 'mnt-example');
const library = path.join(example, '.library');
const mountArg = process.argv.indexOf('--mount');
const mountpoint = path.resolve(mountArg >= 0 ? (process.argv[mountArg + 1] ?? '/sd') : path.join(example, 'sd'));
const main = path.join(repo, 'build', 'src', 'cli', 'main.js');
const env = { ...process.env, SD_LIBRARY: library };

function sd(args: string[], quiet = false): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main, ...args], { env, stdio: ['ignore', quiet ? 'ignore' : 'inherit', 'inherit'] });
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

async function setUp(): Promise<void> {
  if (!fs.existsSync(path.join(library, 'library.db'))) {
    console.log(`Creating the demo library in ${path.relative(repo, library)}/ (device "laptop")`);
    if ((await sd(['init', '--name', 'laptop'], true)) !== 0) process.exit(1);
    for (const folder of ['Photos', 'Documents', 'Videos']) {
      const code = await sd(['location', 'add', path.join(example, 'laptop', folder), '--mode', 'deep']);
      if (code !== 0) process.exit(1);
    }
  } else {
    await sd(['index']);
  }
}

await setUp();
const rel = path.relative(process.cwd(), mountpoint) || '.';
console.log(`
Mounting at ${mountpoint}. Try, in another terminal (sd is bin/sd in this checkout):
  ls -lR ${rel}/laptop
  getfattr -d ${rel}/laptop/Photos/2025/garden.png
  cat ${rel}/laptop/Documents/notes.md
  ls ${rel}/.content
  setfattr -n user.sd.tags -v "garden,2025" ${rel}/laptop/Photos/2025/garden.png; ls -l ${rel}/.tags/garden
  export SD_LIBRARY=${path.relative(process.cwd(), library)}
  bin/sd search sunset            bin/sd search kind:image size:>100KB
  bin/sd dupes                    bin/sd stat sd://laptop/Videos/ball.y4m
  bin/sd cp --preview sd://laptop/Photos/2025/garden.png sd://laptop/Documents/
Press Ctrl-C to unmount.
`);
const mount = spawn(process.execPath, [main, 'mount', mountpoint], { env, stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => mount.kill(sig));
mount.on('exit', (code) => process.exit(code ?? 0));
