// The direct lane: a TCP connection between two paired devices that reach each other (the
// same machine, a LAN) for the block channel, in TLS 1.3 authenticated by a pre-shared key
// that the listening device made for that one peer and sent it over their swarm connection.
// The swarm connection stays the control path (index logs, actions, presence); when no
// address works the blocks simply keep going over it. TLS and not Noise (secret-stream,
// until issue 14): between two processes here it carried 1 MiB messages faster for less
// CPU on both sides (OpenSSL's AES-GCM against libsodium's XChaCha20; scripts/bench/lane.ts).
import crypto from 'node:crypto';
import type net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { config } from '../config.js';
import { log } from '../log.js';
import type { Peer } from '../vdfs/peers.js';
import { FramedStream, ReadRelay } from './frames.js';
import type { LaneOffer } from './messages.js';

export type LaneStream = FramedStream;

/**
 * TLS 1.3 only (forward secret: OpenSSL uses a pre-shared key only with an ephemeral
 * X25519 exchange), with the suites node:tls's PSK callback allows (SHA-256 ones).
 * AES-128-GCM first: with AES instructions it costs the least CPU (scripts/bench/lane.ts);
 * the dialer's order decides.
 */
const TLS_OPTIONS = {
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  ciphers: 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256',
} as const;

/** A credential this device offered a peer: the peer's lane is the one TLS connection that knows the secret. */
interface Credential {
  peer: Peer;
  secret: Buffer;
}

/** This machine's addresses a peer may reach: external IPv4 first, loopback last. */
function localHosts(): string[] {
  const hosts: string[] = [];
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) hosts.push(a.address);
  }
  return [...hosts.slice(0, 15), '127.0.0.1'];
}

/**
 * Whether a dialled connection was authenticated by the offer's key, forward secret: TLS
 * 1.3 reports a pre-shared key as a reused session (this side never resumes one), no
 * certificate came (a certificate means some other server answered), and an ephemeral
 * key exchange took place.
 */
function keyedByOffer(socket: tls.TLSSocket): boolean {
  return socket.getProtocol() === 'TLSv1.3'
    && socket.isSessionReused()
    && Object.keys(socket.getPeerCertificate()).length === 0
    && (socket.getEphemeralKeyInfo() as { type?: string } | null)?.type === 'ECDH';
}

/** Bytes of a dialled lane's one read buffer: a TLS record (16 KiB) fits. */
const READ_BUFFER_BYTES = 64 * 1024;

/** A dialled, authenticated connection and its reads (made with a reused read buffer). */
interface Dialled {
  socket: tls.TLSSocket;
  relay: ReadRelay;
}

/** Dials one address with the offer's key; the connection once authenticated, undefined otherwise. */
function dial(host: string, offer: LaneOffer, timeoutMs: number): Promise<Dialled | undefined> {
  return new Promise((resolve) => {
    const relay = new ReadRelay();
    // (node:tls takes onread since 15.1 / 14.18; @types/node does not list it.)
    const options: tls.ConnectionOptions & { onread: net.OnReadOpts } = {
      ...TLS_OPTIONS,
      host,
      port: offer.port,
      pskCallback: () => ({ identity: offer.identity.toString('hex'), psk: offer.secret }),
      // Only the pre-shared key authenticates: any certificate is refused, whoever signed it.
      checkServerIdentity: (_host, cert) => (Object.keys(cert).length > 0 ? new Error('the lane listener sent a certificate') : undefined),
      onread: relay.option(READ_BUFFER_BYTES),
    };
    const socket = tls.connect(options);
    const timer = setTimeout(() => finish(false), timeoutMs);
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      socket.off('secureConnect', onSecure);
      socket.off('close', onClose);
      if (!ok) socket.destroy();
      resolve(ok ? { socket, relay } : undefined);
    };
    const onSecure = (): void => finish(keyedByOffer(socket));
    const onClose = (): void => finish(false);
    socket.on('secureConnect', onSecure);
    socket.on('close', onClose);
    socket.on('error', () => undefined);
  });
}

export class DirectLane {
  private readonly server: tls.Server;
  private readonly streams = new Set<FramedStream>();
  /** Offered credentials not used yet, by identity (hex): each lets its peer in once. */
  private readonly credentials = new Map<string, Credential>();
  /** The identity an incoming connection named, set by the PSK callback once it is a live one. */
  private readonly presented = new WeakMap<tls.TLSSocket, string>();
  private port = 0;
  private closed = false;

  constructor(
    /** The paired, non-revoked device with this swarm key (hex), if any. */
    private readonly allowed: (keyHex: string) => Peer | undefined,
    /** A lane opened: dialled by this device (its reads come through one reused buffer), or by the peer. */
    private readonly onLane: (peer: Peer, stream: LaneStream, dialled: boolean) => void,
  ) {
    this.server = tls.createServer(
      { ...TLS_OPTIONS, handshakeTimeout: config.laneHandshakeMs, pskCallback: (socket, identity) => this.secretFor(socket, identity) },
      (socket) => this.accept(socket),
    );
    // A wrong or unknown credential ends the handshake here (the server has no certificate to fall back on).
    this.server.on('tlsClientError', (err, socket) => {
      log.info({ op: 'lane', from: socket.remoteAddress, err: err.message.split('\n')[0] }, 'refused a direct connection without a valid credential');
      socket.destroy();
    });
    this.server.on('error', (err) => log.warn({ op: 'lane', err: String(err) }, 'direct lane listener failed; blocks go over the swarm'));
  }

  /** Listens on every interface (port 0: any free one); false when it cannot. */
  listen(port = config.lanePort): Promise<boolean> {
    return new Promise((resolve) => {
      this.server.once('error', () => resolve(false));
      this.server.listen(port, () => {
        this.port = (this.server.address() as { port: number }).port;
        log.info({ op: 'lane', port: this.port }, 'taking direct connections from paired devices');
        resolve(true);
      });
    });
  }

  /**
   * What to tell one paired device, over its swarm connection: where to dial and a fresh
   * credential for it alone; undefined while not listening. Withdraw it when that
   * connection closes.
   */
  offer(peer: Peer): LaneOffer | undefined {
    if (this.port === 0 || this.closed) return undefined;
    const identity = crypto.randomBytes(16);
    const secret = crypto.randomBytes(32);
    this.credentials.set(identity.toString('hex'), { peer, secret });
    return { port: this.port, hosts: localHosts(), identity, secret };
  }

  /** Forgets an offer's credential: no connection can use it any more. */
  withdraw(offer: LaneOffer): void {
    this.credentials.delete(offer.identity.toString('hex'));
  }

  /** The PSK callback: the secret of a live credential whose device is still paired, else none (the handshake fails). */
  private secretFor(socket: tls.TLSSocket, identity: string): Buffer | null {
    const credential = this.credentials.get(identity);
    if (!credential || this.closed) return null;
    if (!this.allowed(credential.peer.publicKey)) {
      log.info({ op: 'lane', device: credential.peer.slug }, 'refused a direct connection from a device that is no longer paired');
      this.credentials.delete(identity);
      return null;
    }
    this.presented.set(socket, identity);
    return credential.secret;
  }

  private accept(socket: tls.TLSSocket): void {
    socket.on('error', () => undefined);
    // The handshake finished with a live credential's key (a session resumed from a ticket
    // would not have passed through the PSK callback): it is used up.
    const identity = this.presented.get(socket);
    const credential = identity === undefined ? undefined : this.credentials.get(identity);
    const peer = credential && this.allowed(credential.peer.publicKey);
    if (!peer || this.closed) {
      log.info({ op: 'lane', device: credential?.peer.slug }, 'refused a direct connection: its credential is used up or its device is no longer paired');
      socket.destroy();
      return;
    }
    this.credentials.delete(identity!);
    this.adopt(peer, socket);
  }

  /** Dials the peer's offered addresses in order; true once one completes the handshake with the offer's key. */
  async connect(peer: Peer, offer: LaneOffer): Promise<boolean> {
    for (const host of offer.hosts) {
      if (this.closed) return false;
      // The address may be some other machine's (or our own) sdfs: only the peer knows the key.
      const dialled = await dial(host, offer, config.laneHandshakeMs);
      if (dialled && !this.closed) {
        log.info({ op: 'lane', device: peer.slug, host, port: offer.port, cipher: dialled.socket.getCipher().name }, 'direct lane open');
        this.adopt(peer, dialled.socket, dialled.relay);
        return true;
      }
      dialled?.socket.destroy();
    }
    log.info({ op: 'lane', device: peer.slug, hosts: offer.hosts.length }, 'no direct lane; blocks go over the swarm');
    return false;
  }

  private adopt(peer: Peer, socket: tls.TLSSocket, relay?: ReadRelay): void {
    // Nagle stays on: off, the transport's ceiling fell by 35–45% (bench/lane), and the
    // 40–50 ms misses it once caused (a request waiting for the peer's delayed ACK behind
    // a block fetched after each random miss) went with that fetch (bench/remote-mount:
    // 4 KiB random reads p95 2.2–3.2 ms with it on, 2.5–3.2 off; first read 153–162 MB/s
    // on, 136–146 off).
    const stream = new FramedStream(socket, undefined, relay);
    this.streams.add(stream);
    stream.on('close', () => this.streams.delete(stream));
    this.onLane(peer, stream, relay !== undefined);
  }

  close(): void {
    this.closed = true;
    this.server.close();
    this.credentials.clear();
    for (const s of this.streams) s.destroy();
    this.streams.clear();
  }
}
