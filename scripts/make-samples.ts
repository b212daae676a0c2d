// Generates the demo's sample files in mnt-example/ (PNG photos, text documents, a short
// Y4M video): deterministic, so the committed files can be made again byte for byte.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const root = path.resolve(process.argv[2] ?? 'mnt-example');

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])));
  return Buffer.concat([head, data, crc]);
}

/** An RGB PNG whose pixels come from paint(x, y). */
function png(width: number, height: number, paint: (x: number, y: number) => [number, number, number]): Buffer {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 3 + 1)] = 0;
    for (let x = 0; x < width; x++) {
      const [r, g, b] = paint(x, y);
      const o = y * (width * 3 + 1) + 1 + x * 3;
      raw[o] = r;
      raw[o + 1] = g;
      raw[o + 2] = b;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.writeUInt8(8, 8);
  ihdr.writeUInt8(2, 9);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), pngChunk('IHDR', ihdr), pngChunk('IDAT', zlib.deflateSync(raw, { level: 9 })), pngChunk('IEND', Buffer.alloc(0))]);
}

/** Where the ball is in frame f of n, as fractions of the width and height. */
type BallPath = (f: number, n: number) => [number, number];

const crossing: BallPath = (f, n) => [f / n, 0.5 + Math.sin(f / 4) * 0.3];
const orbit: BallPath = (f, n) => [0.5 + Math.cos((f / n) * 4 * Math.PI) * 0.35, 0.5 + Math.sin((f / n) * 4 * Math.PI) * 0.35];

/** A YUV4MPEG2 video (plays in mpv, ffplay, vlc): a ball moving across a sky. */
function y4m(width: number, height: number, frames: number, ball: BallPath = crossing): Buffer {
  const parts = [Buffer.from(`YUV4MPEG2 W${width} H${height} F10:1 Ip A1:1 C420jpeg\n`)];
  for (let f = 0; f < frames; f++) {
    const y = Buffer.alloc(width * height);
    const [fx, fy] = ball(f, frames);
    const cx = fx * width;
    const cy = fy * height;
    for (let j = 0; j < height; j++) for (let i = 0; i < width; i++) y[j * width + i] = (i - cx) ** 2 + (j - cy) ** 2 < 100 ? 235 : 60 + (j * 120) / height;
    const u = Buffer.alloc((width / 2) * (height / 2), 150);
    const v = Buffer.alloc((width / 2) * (height / 2), 110);
    parts.push(Buffer.from('FRAME\n'), y, u, v);
  }
  return Buffer.concat(parts);
}

function write(rel: string, data: string | Buffer): void {
  const file = path.join(root, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
}

const sunset = png(640, 400, (x, y) => [255 - y / 3, 120 + x / 8 - y / 4, 80 + y / 3]);
write('laptop/Photos/2024 Holiday/sunset.png', sunset);
write('laptop/Photos/2024 Holiday/sea.png', png(640, 400, (x, y) => [20 + y / 8, 90 + (x % 64), 160 + y / 4]));
write('laptop/Photos/2025/garden.png', png(512, 512, (x, y) => [(x ^ y) & 0x7f, 140 + ((x * y) % 100), 60]));
write('laptop/Photos/2025/sunset copy.png', sunset);
write('laptop/Documents/notes.md', '# Notes\n\nsdfs mounts every device under one tree.\nTry `sd search notes` or `sd dupes`.\n');
write('laptop/Documents/taxes/2025 receipts.csv', 'date,item,amount\n2025-01-03,train,12.40\n2025-02-11,books,31.00\n2025-03-20,laptop stand,45.90\n');
write('laptop/Documents/taxes/letter.txt', 'Dear tax office,\n\nplease find the receipts attached.\n');
write('laptop/Videos/ball.y4m', y4m(160, 120, 60));

// The second demo device: a NAS with films, an archive (one photo the laptop has too) and an inbox.
write('nas/Movies/orbit.y4m', y4m(160, 120, 100, orbit));
write('nas/Archive/2024 Holiday/sunset.png', sunset);
write('nas/Archive/2024 Holiday/harbour.png', png(640, 400, (x, y) => [40 + y / 5, 60 + y / 6, 110 + ((x * 3 + y) % 90)]));
write('nas/Archive/readme.txt', 'This folder is on the nas. The laptop reads it through its mount, fetching the bytes\nfrom the nas when they are read.\n');
write('nas/Inbox/README.txt', "Copy files here from the laptop's mount (mnt-example/sd/nas/Inbox/): the nas\nfetches them and puts them in this folder on its own disk.\n");
