// The part of protomux and @hyperswarm/secret-stream that sdfs uses (the packages ship no types).
declare module 'protomux' {
  import type { Duplex } from 'node:stream';

  export interface EncodingState {
    start: number;
    end: number;
    buffer: Uint8Array | null;
  }

  export interface Encoder<T> {
    preencode(state: EncodingState, value: T): void;
    encode(state: EncodingState, value: T): void;
    decode(state: EncodingState): T;
  }

  export interface Message<T> {
    send(message: T): boolean;
  }

  export interface Channel {
    readonly closed: boolean;
    readonly opened: boolean;
    open(handshake?: unknown): void;
    close(): void;
    cork(): void;
    uncork(): void;
    addMessage<T>(opts: { encoding: Encoder<T>; onmessage?(message: T, channel: Channel): void | Promise<void> }): Message<T>;
  }

  export interface ChannelOptions {
    protocol: string;
    id?: Buffer | null;
    unique?: boolean;
    onopen?(handshake?: unknown): void | Promise<void>;
    onclose?(): void | Promise<void>;
    ondestroy?(): void | Promise<void>;
    ondrain?(): void | Promise<void>;
  }

  export default class Protomux {
    constructor(stream: Duplex);
    static from(stream: Duplex | Protomux): Protomux;
    readonly stream: Duplex & { destroyed: boolean };
    readonly drained: boolean;
    createChannel(opts: ChannelOptions): Channel | null;
    pair(opts: { protocol: string; id?: Buffer | null }, notify: (id: Buffer | null) => void): void;
    unpair(opts: { protocol: string; id?: Buffer | null }): void;
    destroy(err?: Error): void;
  }
}

declare module '@hyperswarm/secret-stream' {
  import { Duplex } from 'node:stream';

  export default class NoiseSecretStream extends Duplex {
    constructor(isInitiator: boolean, rawStream?: Duplex | null, opts?: Record<string, unknown>);
    readonly rawStream: Duplex;
    readonly publicKey: Buffer | null;
    readonly remotePublicKey: Buffer | null;
    readonly opened: Promise<boolean>;
  }
}
