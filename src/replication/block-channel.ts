// One block-protocol channel on one peer connection (protomux), used both ways: it sends
// our requests and matches their replies, and hands the peer's requests to a server.
import type { Duplex } from 'node:stream';
import Protomux, { type Channel, type Message } from 'protomux';
import { SdError } from '../errors.js';
import { log } from '../log.js';
import {
  BLOCK_PROTOCOL, blockErrorEncoding, blockReplyEncoding, blockRequestEncoding, clipErrorMessage,
  type BlockError, type BlockReply, type BlockRequest,
} from './block-messages.js';

/** Serves the peer's requests; answers with reply or error through the channel. */
export interface BlockRequestHandler {
  handle(request: BlockRequest, channel: BlockChannel): void;
  /** The connection is gone: drop queued work. */
  detach(channel: BlockChannel): void;
}

export type BlockResponse = { ok: true; reply: BlockReply } | { ok: false; error: BlockError };

interface Pending {
  resolve(response: BlockResponse): void;
  reject(err: Error): void;
}

export interface BlockChannelOptions {
  /** Who answers the peer's requests; without one, every request is answered REFUSED. */
  server?: BlockRequestHandler;
  /** A name for logs and stats (the peer's device name or key). */
  name?: string;
}

export class BlockChannel {
  readonly name: string;
  private readonly mux: Protomux;
  private readonly channel: Channel;
  private readonly requestMessage: Message<BlockRequest>;
  private readonly replyMessage: Message<BlockReply>;
  private readonly errorMessage: Message<BlockError>;
  private readonly pending = new Map<number, Pending>();
  private readonly drainWaiters: Array<() => void> = [];
  private readonly closeListeners: Array<() => void> = [];
  private nextId = 1;
  private isClosed = false;
  private readonly opened: Promise<boolean>;

  constructor(stream: Duplex | Protomux, private readonly options: BlockChannelOptions = {}) {
    this.name = options.name ?? 'peer';
    this.mux = Protomux.from(stream);
    let openResolve!: (ok: boolean) => void;
    this.opened = new Promise((resolve) => (openResolve = resolve));
    const channel = this.mux.createChannel({
      protocol: BLOCK_PROTOCOL,
      onopen: () => openResolve(true),
      onclose: () => {
        openResolve(false);
        this.onClosed();
      },
      ondrain: () => this.onDrain(),
    });
    if (!channel) throw new SdError('IO', `the block channel to ${this.name} is already open or was refused`);
    this.channel = channel;
    this.requestMessage = channel.addMessage({ encoding: blockRequestEncoding, onmessage: (m) => this.onRequest(m) });
    this.replyMessage = channel.addMessage({ encoding: blockReplyEncoding, onmessage: (m) => this.settle(m.id, { ok: true, reply: m }) });
    this.errorMessage = channel.addMessage({ encoding: blockErrorEncoding, onmessage: (m) => this.settle(m.id, { ok: false, error: m }) });
    channel.open();
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Resolves true once the peer opened its side, false if the channel closed first. */
  waitOpened(): Promise<boolean> {
    return this.opened;
  }

  /** The raw connection under the channel (tests destroy it to simulate a vanished peer). */
  get stream(): Duplex {
    return this.mux.stream;
  }

  onClose(listener: () => void): void {
    if (this.isClosed) listener();
    else this.closeListeners.push(listener);
  }

  /** Sends a request; settles with the reply or error, rejects when the connection closes. */
  request(fields: Omit<BlockRequest, 'id'>): { id: number; response: Promise<BlockResponse> } {
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    if (this.isClosed) return { id, response: Promise.reject(closedError(this.name)) };
    const response = new Promise<BlockResponse>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.requestMessage.send({ id, ...fields });
    return { id, response };
  }

  /** Forgets a request (timed out): a late answer is dropped. */
  cancel(id: number): void {
    this.pending.delete(id);
  }

  /**
   * The caller is done with a reply's bytes (and its hash, signer, signature: views of the
   * same message) and keeps no view of them: the connection may read a later message into
   * them (a direct lane does; see FramedStream.release).
   */
  release(reply: BlockReply): void {
    const stream = this.mux.stream as Duplex & { release?: (message: Buffer) => void };
    stream.release?.(reply.data);
  }

  sendReply(reply: BlockReply): void {
    if (!this.isClosed) this.replyMessage.send(reply);
  }

  sendError(error: BlockError): void {
    if (!this.isClosed) this.errorMessage.send({ ...error, message: clipErrorMessage(error.message) });
  }

  /** Resolves when the connection's outgoing buffer drained (or it closed): servers wait on it. */
  drained(): Promise<void> {
    if (this.isClosed || this.mux.drained) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  close(): void {
    this.channel.close();
  }

  /** Closes the whole connection, as a malformed message does. */
  destroy(err?: Error): void {
    this.mux.stream.destroy(err);
  }

  private onRequest(request: BlockRequest): void {
    if (this.options.server) this.options.server.handle(request, this);
    else this.sendError({ id: request.id, code: 'REFUSED', message: 'this device serves no files on this connection' });
  }

  private settle(id: number, response: BlockResponse): void {
    const p = this.pending.get(id);
    if (!p) return; // timed out and forgotten, or never asked: dropped
    this.pending.delete(id);
    p.resolve(response);
  }

  private onDrain(): void {
    for (const w of this.drainWaiters.splice(0)) w();
  }

  private onClosed(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    log.debug({ op: 'block-channel-closed', peer: this.name, pending: this.pending.size });
    const err = closedError(this.name);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.onDrain();
    this.options.server?.detach(this);
    for (const l of this.closeListeners.splice(0)) l();
  }
}

function closedError(name: string): SdError {
  return new SdError('IO', `the connection to ${name} closed`);
}
