// The part of protomux sdfs uses (the package ships no types).
declare module 'protomux' {
  import type { Duplex } from 'node:stream';
  import type { Encoding } from 'compact-encoding';

  export interface Message<T> {
    send(value: T): boolean;
  }

  export interface Channel {
    readonly closed: boolean;
    addMessage<T>(options: { encoding: Encoding<T>; onmessage?(value: T, channel: Channel): void | Promise<void> }): Message<T>;
    open(handshake?: unknown): void;
    close(): void;
  }

  export interface ChannelOptions {
    protocol: string;
    id?: Buffer;
    unique?: boolean;
    onopen?(handshake: unknown): void | Promise<void>;
    onclose?(): void | Promise<void>;
    ondestroy?(): void | Promise<void>;
  }

  export default class Protomux {
    static from(stream: Duplex | Protomux): Protomux;
    readonly stream: Duplex;
    /** null when a channel of that protocol and id is already open on this muxer. */
    createChannel(options: ChannelOptions): Channel | null;
    destroy(err?: Error): void;
  }
}
