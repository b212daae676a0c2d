// Message framing over a byte stream (TCP, TLS): each message goes out as a 4-byte length
// and its bytes, and comes out whole, as protomux wants (secret-stream frames by itself).
import { Duplex } from 'node:stream';

const HEADER_BYTES = 4;

/** Frames longer than this close the stream: the other end is broken or hostile. */
export const MAX_FRAME_BYTES = 8 * 1024 * 1024;

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

  constructor(
    readonly socket: Duplex,
    private readonly maxFrameBytes = MAX_FRAME_BYTES,
  ) {
    // One message per read: without object mode a paused stream would merge them.
    super({ readableObjectMode: true, readableHighWaterMark: 16 });
    socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
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
    const framed = Buffer.allocUnsafe(HEADER_BYTES + length);
    const message = framed.subarray(HEADER_BYTES);
    this.allocated.set(message, framed);
    return message;
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
    if (this.socket.write(framed)) done();
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

  private onSocketData(chunk: Buffer): void {
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
        // A whole frame inside this chunk is passed on without a copy.
        if (chunk.byteLength - offset >= length) {
          this.deliver(chunk.subarray(offset, offset + length));
          offset += length;
          continue;
        }
        this.body = Buffer.allocUnsafe(length);
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
