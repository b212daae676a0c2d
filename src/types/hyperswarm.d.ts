// The part of hyperswarm sdfs uses (the package ships no types).
declare module 'hyperswarm' {
  import type { EventEmitter } from 'node:events';
  import type DHT from 'hyperdht';
  import type { DhtKeyPair, NoiseStream } from 'hyperdht';

  export type SwarmConnection = NoiseStream;

  export interface PeerInfo {
    publicKey: Buffer;
    banned: boolean;
    client: boolean;
    ban(banned: boolean): void;
  }

  export interface Discovery {
    flushed(): Promise<boolean>;
    refresh(options?: { server?: boolean; client?: boolean }): Promise<void>;
    destroy(): Promise<void>;
  }

  export interface SwarmOptions {
    dht?: DHT;
    keyPair?: DhtKeyPair;
    bootstrap?: { host: string; port: number }[];
    maxPeers?: number;
    /** true refuses the connection (and bans that key for this swarm). */
    firewall?(remotePublicKey: Buffer, payload: unknown): boolean;
  }

  export default class Hyperswarm extends EventEmitter {
    constructor(options?: SwarmOptions);
    readonly dht: DHT;
    readonly keyPair: DhtKeyPair;
    readonly connections: Set<SwarmConnection>;
    readonly peers: Map<string, PeerInfo>;
    readonly destroyed: boolean;
    join(topic: Buffer, options?: { server?: boolean; client?: boolean }): Discovery;
    leave(topic: Buffer): Promise<void>;
    joinPeer(publicKey: Buffer): void;
    leavePeer(publicKey: Buffer): void;
    listen(): Promise<void>;
    flush(): Promise<boolean>;
    destroy(options?: { force?: boolean }): Promise<void>;
    on(event: 'connection', listener: (conn: SwarmConnection, info: PeerInfo) => void): this;
    on(event: 'update', listener: () => void): this;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
}
