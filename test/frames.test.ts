// Framing of the direct lane's TLS bytes into messages for protomux: each message comes out
// whole however the bytes are cut, and a frame longer than the limit closes the stream.
import crypto from 'node:crypto';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { FramedStream } from '../src/replication/frames.js';
import { waitFor } from './helpers.js';

/** A frame as it goes on the wire: 4-byte big-endian length, then the bytes. */
function frame(message: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(message.byteLength);
  return Buffer.concat([header, message]);
}

t.test('messages come out whole and in order, however the bytes are cut', async (t) => {
  const wire = new PassThrough();
  const framed = new FramedStream(wire);
  const got: Buffer[] = [];
  framed.on('data', (m: Buffer) => got.push(Buffer.from(m)));
  const messages = [Buffer.from('a'), Buffer.alloc(0), crypto.randomBytes(1024 * 1024), Buffer.from('after a block'), crypto.randomBytes(70_000)];
  const bytes = Buffer.concat(messages.map(frame));
  // Pieces of 1 byte to 100 KB: headers and bodies split anywhere, several frames in one piece.
  for (let at = 0, size = 1; at < bytes.byteLength; at += size, size = (size * 7 + 3) % 100_000 || 1) {
    wire.write(bytes.subarray(at, at + size));
  }
  t.ok(await waitFor(() => got.length === messages.length, 5000), `${got.length} of ${messages.length} messages`);
  t.same(got.map((m) => m.byteLength), messages.map((m) => m.byteLength));
  t.ok(got.every((m, i) => m.equals(messages[i]!)), 'each byte for byte');
});

t.test('what it writes it reads back: plain writes, and alloc as protomux does (no copy)', async (t) => {
  const wire = new PassThrough();
  const framed = new FramedStream(wire);
  const raw: Buffer[] = [];
  wire.on('data', (chunk: Buffer) => raw.push(chunk));
  const got: Buffer[] = [];
  framed.on('data', (m: Buffer) => got.push(m));
  framed.write(Buffer.from('plain'));
  // Two allocated before either is written, as protomux does while writes queue.
  const first = framed.alloc(5);
  const second = framed.alloc(6);
  first.write('alloc');
  second.write('second');
  framed.write(first);
  framed.write(second);
  t.ok(await waitFor(() => got.length === 3, 5000));
  t.same(got.map(String), ['plain', 'alloc', 'second']);
  t.equal(raw[1]!.buffer, first.buffer, 'an allocated message went out in its own buffer, its header in front');
  t.equal(raw[2]!.buffer, second.buffer, 'so did the next, allocated before it was written');
  t.same(raw[1], frame(Buffer.from('alloc')));
});

t.test('a frame longer than the limit closes the stream', async (t) => {
  const wire = new PassThrough();
  const framed = new FramedStream(wire, 1024);
  let error: Error | undefined;
  framed.on('error', (err) => (error = err));
  framed.on('data', () => t.fail('no message from an oversized frame'));
  wire.write(frame(Buffer.alloc(1025)));
  t.ok(await waitFor(() => framed.destroyed && error !== undefined, 5000), 'destroyed, with an error');
  t.match(error?.message, /frame of 1025 bytes, at most 1024 allowed/);
  t.ok(wire.destroyed, 'with the connection under it');
});

t.test('a message longer than the limit is not sent', async (t) => {
  const wire = new PassThrough();
  const framed = new FramedStream(wire, 1024);
  framed.on('error', () => undefined);
  const written = new Promise<Error | null | undefined>((resolve) => framed.write(Buffer.alloc(1025), resolve));
  t.match((await written)?.message, /message of 1025 bytes, at most 1024/);
  t.equal(wire.readableLength, 0, 'nothing reached the wire');
});
