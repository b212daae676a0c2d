// The part of hyperdht sdfs uses (the package ships no types).
declare module 'hyperdht' {
  import type { EventEmitter } from 'node:events';
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
  export default class DHT extends EventEmitter {
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
