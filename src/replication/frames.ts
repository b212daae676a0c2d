// Message framing over a byte stream (TCP, TLS): each message goes out as a 4-byte length
// and its bytes, and comes out whole, as protomux wants (secret-stream frames by itself).
import net from 'node:net';
import { Duplex } from 'node:stream';
import { config } from '../config.js';
import { BufferPool } from './buffer-pool.js';

const HEADER_BYTES = 4;
/** Outgoing messages this long or longer (blocks) are framed in reused buffers; shorter ones are not worth it. */
const POOLED_MIN_BYTES = 64 * 1024;
/** A block reply's fields around its bytes (id, hash, size, mtime, signer, signature, a passed-along vouch) fit in this. */
const REPLY_FIELDS_BYTES = 4096;
/** Frame buffers kept for reuse per stream and way: the blocks in flight (blockServerConcurrency, readAheadBlocks) fit. */
const FRAMES_KEPT = 12;

/** Frames longer than this close the stream: the other end is broken or hostile. */
export const MAX_FRAME_BYTES = 8 * 1024 * 1024;

/**
 * The bytes of a socket made with node's `onread` option (one read buffer reused for every
 * read) on their way to a FramedStream. Without it each read (a TLS record, up to 16 KiB)
 * comes in a Buffer of its own, outside the JS heap: 32,768 for a 512 MiB read, which with
 * the frames they fill kept V8 running a full mark-compact every few dozen milliseconds.
 * Node offers `onread` to sockets it dials only (not to those a TLS server accepts).
 */
export class ReadRelay {
  private target: ((chunk: Buffer) => void) | null = null;
  /** Reads that came before a stream took over (copied: the read buffer is reused). */
  private early: Buffer[] = [];

  /** The `onread` option of tls.connect / net.connect: one read buffer of `bytes`. */
  option(bytes: number): { buffer: Buffer; callback: (length: number, buffer: Buffer) => boolean } {
    // Always true (read on): the stream pauses the socket itself when its reader lags.
    return { buffer: Buffer.allocUnsafe(bytes), callback: (length, buffer) => (this.receive(buffer.subarray(0, length)), true) };
  }

  /** Hands every read, from now on, to `target`, which must be done with it when it returns. */
  attach(target: (chunk: Buffer) => void): void {
    this.target = target;
    for (const chunk of this.early.splice(0)) target(chunk);
  }

  private receive(chunk: Buffer): void {
    if (this.target) this.target(chunk);
    else this.early.push(Buffer.from(chunk));
  }
}

export class FramedStream extends Duplex {
  /** Protomux keeps itself here (it takes a stream whose userData is null). */
  userData: unknown = null;
  /**
   * Buffers alloc() handed out, to the whole frame with its header room in front. Not one
   * slot: protomux allocates the next message while the last still waits in the write queue.
   */
  private readonly allocated = new WeakMap<Buffer, Buffer>();
  /** The frame being read: its header bytes, then its body as it arrives. */
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFilled = 0;
  private body: Buffer | null = null;
  private bodyFilled = 0;
  private writeDone: ((err?: Error | null) => void) | null = null;
  /** Buffers of outgoing blocks, reused once the socket wrote them (see buffer-pool.ts). */
  private readonly frames = new BufferPool(HEADER_BYTES + config.blockSize + REPLY_FIELDS_BYTES, FRAMES_KEPT);
  /** Buffers incoming blocks are read into, reused once their reader says it is done with one (release). */
  private readonly bodies = new BufferPool(config.blockSize + REPLY_FIELDS_BYTES, FRAMES_KEPT);

  constructor(
    readonly socket: Duplex,
    private readonly maxFrameBytes = MAX_FRAME_BYTES,
    /** The socket's reads, when it was made with a reused read buffer (see ReadRelay). */
    relay?: ReadRelay,
  ) {
    // One message per read: without object mode a paused stream would merge them.
    super({ readableObjectMode: true, readableHighWaterMark: 16 });
    if (relay) relay.attach((chunk) => this.onSocketData(chunk, true));
    else socket.on('data', (chunk: Buffer) => this.onSocketData(chunk, false));
    socket.on('end', () => this.push(null));
    socket.on('drain', () => this.onSocketDrain());
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  /**
   * A buffer for one outgoing message with room for its header in front, so that writing
   * it costs no copy (protomux encodes each message into what alloc gives it).
   */
  alloc(length: number): Buffer {
    // Pooled only over a socket: its callback means the bytes left the buffer (another
    // stream, such as a PassThrough in tests, may hand the very buffer on to its reader).
    const pooled = length >= POOLED_MIN_BYTES && this.socket instanceof net.Socket;
    const framed = pooled ? this.frames.take(HEADER_BYTES + length) : Buffer.allocUnsafe(HEADER_BYTES + length);
    const message = framed.subarray(HEADER_BYTES);
    this.allocated.set(message, framed);
    return message;
  }

  /**
   * The reader of an incoming message (any view of it) is done with it: nothing reads it or
   * keeps a view of it any more, so its buffer may take a later message. Optional: a message
   * never released is left to the garbage collector.
   */
  release(message: Buffer): void {
    this.bodies.give(message);
  }

  override _write(message: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (message.byteLength > this.maxFrameBytes) return done(new Error(`a message of ${message.byteLength} bytes, at most ${this.maxFrameBytes} can be framed`));
    let framed = this.allocated.get(message);
    if (framed) {
      this.allocated.delete(message);
    } else {
      framed = Buffer.allocUnsafe(HEADER_BYTES + message.byteLength);
      message.copy(framed, HEADER_BYTES);
    }
    framed.writeUInt32BE(message.byteLength, 0);
    // The socket holds the buffer until it calls back (TLS: encrypted, TCP: handed to the
    // kernel); only then may it be reused. A failed write leaves it to the garbage collector.
    const written = (err?: Error | null): void => {
      if (!err) this.frames.give(framed);
    };
    if (this.socket.write(framed, written)) done();
    else this.writeDone = done;
  }

  override _read(): void {
    if (this.socket.isPaused()) this.socket.resume();
  }

  override _final(done: (err?: Error | null) => void): void {
    this.socket.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.socket.destroy();
    const pending = this.writeDone;
    this.writeDone = null;
    pending?.(err ?? new Error('the stream closed'));
    done(err);
  }

  private onSocketDrain(): void {
    const done = this.writeDone;
    this.writeDone = null;
    done?.();
  }

  /** Takes a read from the socket; a borrowed one is overwritten once this returns, so nothing keeps a view of it. */
  private onSocketData(chunk: Buffer, borrowed: boolean): void {
    let offset = 0;
    while (offset < chunk.byteLength && !this.destroyed) {
      if (this.body === null) {
        const n = Math.min(HEADER_BYTES - this.headerFilled, chunk.byteLength - offset);
        chunk.copy(this.header, this.headerFilled, offset, offset + n);
        this.headerFilled += n;
        offset += n;
        if (this.headerFilled < HEADER_BYTES) return;
        const length = this.header.readUInt32BE(0);
        this.headerFilled = 0;
        if (length > this.maxFrameBytes) return void this.destroy(new Error(`the other end sent a frame of ${length} bytes, at most ${this.maxFrameBytes} allowed`));
        // A whole frame inside this chunk is passed on without a copy (unless the chunk is borrowed).
        if (chunk.byteLength - offset >= length) {
          const frame = chunk.subarray(offset, offset + length);
          this.deliver(borrowed ? Buffer.from(frame) : frame);
          offset += length;
          continue;
        }
        this.body = length >= POOLED_MIN_BYTES ? this.bodies.take(length) : Buffer.allocUnsafe(length);
        this.bodyFilled = 0;
      }
      const n = Math.min(this.body.byteLength - this.bodyFilled, chunk.byteLength - offset);
      chunk.copy(this.body, this.bodyFilled, offset, offset + n);
      this.bodyFilled += n;
      offset += n;
      if (this.bodyFilled === this.body.byteLength) {
        const body = this.body;
        this.body = null;
        this.deliver(body);
      }
    }
  }

  private deliver(message: Buffer): void {
    // Backpressure: the socket waits until the reader (protomux) takes more.
    if (!this.push(message)) this.socket.pause();
  }
}
