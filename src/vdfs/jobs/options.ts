// The tunables of the job runner, named after what they change.

export const jobOptions = {
  /** Bytes read and written per step of a file copy. */
  copyChunkBytes: 8 * 1024 * 1024,
  /**
   * Bytes read, hashed and written per step of a repair's copy. (A scrub hashes on its own
   * thread in 128 KiB chunks: see hash-thread.ts.)
   */
  scrubChunkBytes: 2 * 1024 * 1024,
  /** A copy records how far it got at most this often (enough to resume after kill -9). */
  checkpointEveryMs: 1000,
  /**
   * A copy makes its bytes durable (fdatasync) at most this often, so a resume after a
   * power loss starts from there; syncing every checkpoint would halve the throughput.
   */
  syncEveryMs: 5000,
  /**
   * Files at least this big are fsync'ed before they are renamed into place; smaller ones
   * (and folders) are made durable together every syncEveryMs and at the end of the job,
   * so thousands of small files do not pay an fsync each. After a power loss, steps since
   * the last durable point are verified again.
   */
  fsyncMinBytes: 1024 * 1024,
  /** How many fsyncs a durable point runs at once. */
  fsyncParallel: 16,
  /** How often a running job looks for a pause or cancel asked by another process. */
  controlPollMs: 200,
  /** A job doing many small steps yields the event loop this often (the mount shares it). */
  yieldEveryMs: 20,
};
