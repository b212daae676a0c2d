// Buffers of one size lent and given back, for the block data path: a served block is read
// into one and framed in another, then both are reused. A fresh Buffer per block lives outside
// the JS heap, and V8 runs a full mark-compact for every 64 MiB or so of those (measured on a
// 512 MiB read: 0.4–0.8 s of GC in the serving process); fresh memory also faults its pages in.
export class BufferPool {
  private readonly free: ArrayBuffer[] = [];
  /** Slabs lent and not given back: only those are taken back, once (a stray give is ignored). */
  private readonly lent = new WeakSet<ArrayBuffer>();

  constructor(
    /** Bytes of each slab: a longer buffer asked for is allocated apart, not pooled. */
    readonly slabBytes: number,
    /** Free slabs kept at most; more given back are left to the garbage collector. */
    private readonly keep: number,
  ) {}

  /** A buffer of `length` bytes, its contents left from earlier use: a view of a slab when one fits. */
  take(length: number): Buffer {
    if (length > this.slabBytes) return Buffer.allocUnsafeSlow(length);
    const slab = this.free.pop() ?? new ArrayBuffer(this.slabBytes);
    this.lent.add(slab);
    return Buffer.from(slab, 0, length);
  }

  /** Gives back a buffer from take (any view of its slab) once nothing reads or writes it any more. */
  give(buf: Buffer): void {
    const slab = buf.buffer;
    if (!(slab instanceof ArrayBuffer) || !this.lent.has(slab)) return;
    this.lent.delete(slab);
    if (this.free.length < this.keep) this.free.push(slab);
  }

  /** Free slabs held now (tests). */
  get freeCount(): number {
    return this.free.length;
  }
}
