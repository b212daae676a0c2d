// The part of hypercore and corestore sdfs uses (the packages ship no types).
declare module 'hypercore' {
  import { EventEmitter } from 'node:events';

  export interface HypercoreKeyPair {
    publicKey: Buffer;
    secretKey: Buffer;
  }

  export interface Download {
    done(): Promise<void>;
    destroy(): void;
  }

  export default class Hypercore extends EventEmitter {
    readonly key: Buffer | null;
    readonly discoveryKey: Buffer | null;
    readonly length: number;
    readonly byteLength: number;
    readonly contiguousLength: number;
    readonly writable: boolean;
    readonly closed: boolean;
    ready(): Promise<void>;
    append(blocks: Buffer | Buffer[]): Promise<{ length: number; byteLength: number }>;
    get(index: number, opts?: { wait?: boolean; timeout?: number }): Promise<Buffer | null>;
    /** Waits for peers' length when wait is true; resolves whether the length grew. */
    update(opts?: { wait?: boolean }): Promise<boolean>;
    download(range?: { start?: number; end?: number; linear?: boolean }): Download;
    close(): Promise<void>;
    /** The storage (hypercore-storage, over RocksDB) a corestore can be given; opts reach RocksDB's column family (writeBufferSize...). */
    static defaultStorage(directory: string, opts?: Record<string, unknown>): CoreStorage;
  }

  /** hypercore-storage's storage of many cores in one RocksDB. */
  export interface CoreStorage {
    readonly path: string;
  }
}

declare module 'corestore' {
  import type Hypercore from 'hypercore';
  import type { HypercoreKeyPair } from 'hypercore';

  /** A replication stream (streamx Duplex): pipe it to the other side's and back. */
  export interface ReplicationStream {
    pipe<T>(destination: T): T;
    destroy(err?: Error): void;
    on(event: 'error' | 'close', listener: (err?: Error) => void): this;
  }

  export default class Corestore {
    constructor(storage: string | import('hypercore').CoreStorage, opts?: Record<string, unknown>);
    ready(): Promise<void>;
    /** key alone: a peer's core (read-only); key with keyPair: a writable core with that key. */
    /** inflightRange: blocks requested at once from one peer, fewest and most (scaled with the round trip). */
    get(opts: { key?: Buffer; keyPair?: HypercoreKeyPair; name?: string; inflightRange?: [number, number] }): Hypercore;
    /** A boolean makes a new stream; a Noise stream (a swarm connection) is replicated over as is. */
    replicate(isInitiatorOrStream: boolean | import('node:stream').Duplex, opts?: Record<string, unknown>): ReplicationStream;
    close(): Promise<void>;
  }
}
