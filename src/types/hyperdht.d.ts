// The part of hyperdht sdfs uses (the package ships no types).
declare module 'hyperdht' {
  import type { EventEmitter } from 'node:events';
  import type { Duplex } from 'node:stream';
  export interface HostPort {
    host: string;
    port: number;
  }
  export interface DhtKeyPair {
    publicKey: Buffer;
    secretKey: Buffer;
  }
  export interface DhtOptions {
    bootstrap?: (HostPort | string)[];
    ephemeral?: boolean;
    firewalled?: boolean;
    host?: string;
    port?: number;
  }
  /** A Noise-encrypted, framed connection (@hyperswarm/secret-stream). */
  export interface NoiseStream extends Duplex {
    readonly publicKey: Buffer;
    readonly remotePublicKey: Buffer;
    readonly isInitiator: boolean;
    /** The UDX stream under the Noise layer; `rtt` is its smoothed round-trip time (ms). */
    readonly rawStream: { rtt: number } | null;
  }
  export interface ServerOptions {
    /** true (or a promise of true) refuses the connection. */
    firewall?(remotePublicKey: Buffer, payload: unknown, address: HostPort): boolean | Promise<boolean>;
  }
  /** Answers connections to a key pair it announces on the DHT (and re-announces). */
  export interface DhtServer extends EventEmitter {
    listen(keyPair: DhtKeyPair): Promise<void>;
    /** Unannounces and closes; connections already made stay open. */
    close(): Promise<void>;
  }
  export default class DHT extends EventEmitter {
    createServer(options: ServerOptions, onconnection: (conn: NoiseStream) => void): DhtServer;
    /** Finds the key's announcement and connects (hole punching if needed); emits 'open' or 'error'. */
    connect(remotePublicKey: Buffer, options?: { keyPair?: DhtKeyPair }): NoiseStream;
    constructor(options?: DhtOptions);
    static keyPair(seed?: Buffer): DhtKeyPair;
    readonly online: boolean;
    readonly destroyed: boolean;
    address(): { host: string; port: number };
    fullyBootstrapped(): Promise<void>;
    destroy(options?: { force?: boolean }): Promise<void>;
  }
}

declare module 'hyperdht/testnet.js' {
  import type DHT from 'hyperdht';
  import type { DhtOptions, HostPort } from 'hyperdht';
  export interface Testnet {
    nodes: DHT[];
    bootstrap: HostPort[];
    createNode(options?: DhtOptions): DHT;
    destroy(): Promise<void>;
  }
  export default function createTestnet(size?: number, options?: { host?: string; port?: number; bootstrap?: HostPort[] }): Promise<Testnet>;
}
