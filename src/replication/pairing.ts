// Pairing two devices with 12 BIP39 words: both derive a rendezvous topic and a key from
// the words, prove they know them by challenge/response, and exchange signed device keys.
import crypto from 'node:crypto';
import { entropyToMnemonic, mnemonicToEntropy, validateMnemonic } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english.js';
import type DHT from 'hyperdht';
import Hyperswarm, { type SwarmConnection } from 'hyperswarm';
import hypercoreCrypto from 'hypercore-crypto';
import Protomux from 'protomux';
import { config } from '../config.js';
import { SdError } from '../errors.js';
import { log } from '../log.js';
import type { Library } from '../vdfs/library.js';
import { peerByKey, savePairedPeer, type Peer } from '../vdfs/peers.js';
import { deviceKeys, type DeviceKeys } from './identity.js';
import { PAIR_PROTOCOL, pairDevice, pairDone, pairNonce, pairProof, pairRefusal, type PairDevice } from './messages.js';
import { createDht, destroySwarm, type BootstrapNode } from './swarm.js';

export const PAIR_WORD_COUNT = 12;

export interface PairingWords {
  words: string[];
  /** The 16 random bytes the words encode. */
  secret: Buffer;
  expiresAt: number;
}

export function newPairingWords(ttlMs = config.pairWordsTtlMs, now = Date.now()): PairingWords {
  const secret = crypto.randomBytes(16);
  return { words: entropyToMnemonic(secret, wordlist).split(' '), secret, expiresAt: now + ttlMs };
}

/** The secret of words typed by a user (one argument each, or all in one); a typo is a usage error. */
export function parsePairingWords(input: string[]): Buffer {
  const words = input.flatMap((w) => w.trim().toLowerCase().split(/\s+/)).filter(Boolean);
  if (words.length !== PAIR_WORD_COUNT) {
    throw new SdError('USAGE', `pairing takes the ${PAIR_WORD_COUNT} words 'sd pair' shows on the other device; got ${words.length}`);
  }
  const unknown = words.filter((w) => !wordlist.includes(w));
  if (unknown.length) throw new SdError('USAGE', `not a pairing word: ${unknown.join(', ')}; check the spelling against the other device`);
  const mnemonic = words.join(' ');
  if (!validateMnemonic(mnemonic, wordlist)) {
    throw new SdError('USAGE', 'these words fail their checksum: a word is wrong or out of order; check them against the other device');
  }
  return Buffer.from(mnemonicToEntropy(mnemonic, wordlist));
}

function hash(label: string, ...parts: Buffer[]): Buffer {
  const h = crypto.createHash('sha256').update(label);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Where both devices meet on the DHT; knowing it does not reveal the key. */
export function pairTopic(secret: Buffer): Buffer {
  return hash('sdfs pair topic', secret);
}

/** The key of the challenge/response; never sent. */
export function pairKey(secret: Buffer): Buffer {
  return hash('sdfs pair key', secret);
}

type Role = 'initiator' | 'responder';

/** Both nonces and both Noise keys of this connection, initiator first: binds proofs to it. */
function transcriptOf(conn: SwarmConnection, localNonce: Buffer, remoteNonce: Buffer): Buffer {
  const [nonceI, nonceR] = conn.isInitiator ? [localNonce, remoteNonce] : [remoteNonce, localNonce];
  const [keyI, keyR] = conn.isInitiator ? [conn.publicKey, conn.remotePublicKey] : [conn.remotePublicKey, conn.publicKey];
  return Buffer.concat([nonceI, nonceR, keyI, keyR]);
}

function proofOf(key: Buffer, role: Role, transcript: Buffer): Buffer {
  return crypto.createHmac('sha256', key).update(`sdfs pair proof ${role}\0`).update(transcript).digest();
}

/** What a device signs with its swarm key: the transcript and every field it claims. */
function deviceStatement(role: Role, transcript: Buffer, d: Omit<PairDevice, 'signature'>): Buffer {
  return hash(`sdfs pair device ${role}\0`, transcript, d.swarmKey, d.logKey, Buffer.from(d.deviceId), Buffer.from([0]), Buffer.from(d.name));
}

/** Why a pairing connection failed: the other side's proof was wrong, or it refused, or broke off. */
export class PairingFailure extends Error {
  constructor(readonly reason: 'proof' | 'refused' | 'protocol' | 'timeout', message: string) {
    super(message);
    this.name = 'PairingFailure';
  }
}

export interface LocalDevice {
  id: string;
  name: string;
  keys: DeviceKeys;
}

export function localDeviceOf(library: Library): LocalDevice {
  return { id: library.device.id, name: library.device.name, keys: deviceKeys(library.dir) };
}

/**
 * Runs the pairing protocol on one connection: nonces, proofs of the key, signed device
 * info, then each side's "done". `accept` checks the other device (may throw an SdError
 * to refuse); `store` records it once both sides accepted. Resolves with what store returns.
 */
export function pairOverConnection<T>(
  conn: SwarmConnection,
  key: Buffer,
  me: LocalDevice,
  hooks: { accept(device: PairDevice): void; store(device: PairDevice): T },
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const role: Role = conn.isInitiator ? 'initiator' : 'responder';
    const remoteRole: Role = conn.isInitiator ? 'responder' : 'initiator';
    const localNonce = crypto.randomBytes(32);
    let transcript: Buffer | undefined;
    let proven = false;
    let accepted: PairDevice | undefined;
    let remoteDone = false;
    let settled = false;

    const settle = (err: PairingFailure | undefined, value?: T, afterRefusal = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        reject(err);
        if (afterRefusal) {
          // Ended, not destroyed, so the refusal reaches the other side before the close.
          conn.end();
          setTimeout(() => conn.destroy(), 1000).unref();
        } else {
          conn.destroy();
        }
      } else {
        resolve(value as T);
      }
    };
    const refuse = (reason: 'proof' | 'refused', message: string) => {
      refusalMessage.send(message);
      settle(new PairingFailure(reason, message), undefined, true);
    };
    const timer = setTimeout(() => settle(new PairingFailure('timeout', 'the other device did not finish pairing in time')), config.pairHandshakeTimeoutMs);
    conn.on('close', () => settle(new PairingFailure('protocol', 'the other device closed the connection before pairing finished')));

    const mux = Protomux.from(conn);
    const channel = mux.createChannel({ protocol: PAIR_PROTOCOL, onclose: () => settle(new PairingFailure('protocol', 'the other device left the pairing channel')) });
    if (!channel) return settle(new PairingFailure('protocol', 'a pairing channel is already open on this connection'));

    const nonceMessage = channel.addMessage({
      encoding: pairNonce,
      onmessage(remoteNonce) {
        if (transcript) return settle(new PairingFailure('protocol', 'the other device sent its nonce twice'));
        transcript = transcriptOf(conn, localNonce, remoteNonce);
        proofMessage.send(proofOf(key, role, transcript));
      },
    });
    const proofMessage = channel.addMessage({
      encoding: pairProof,
      onmessage(proof) {
        if (!transcript || proven) return settle(new PairingFailure('protocol', 'pairing messages out of order'));
        if (!crypto.timingSafeEqual(proof, proofOf(key, remoteRole, transcript))) {
          return refuse('proof', 'the other device does not know these pairing words');
        }
        proven = true;
        const info = { deviceId: me.id, name: me.name, swarmKey: me.keys.swarm.publicKey, logKey: me.keys.log.publicKey };
        deviceMessage.send({ ...info, signature: hypercoreCrypto.sign(deviceStatement(role, transcript, info), me.keys.swarm.secretKey) });
      },
    });
    const deviceMessage = channel.addMessage({
      encoding: pairDevice,
      onmessage(device) {
        if (!transcript || !proven || accepted) return settle(new PairingFailure('protocol', 'pairing messages out of order'));
        if (!hypercoreCrypto.verify(deviceStatement(remoteRole, transcript, device), device.signature, device.swarmKey)) {
          return refuse('proof', 'the other device did not prove it owns the device key it sent');
        }
        if (device.swarmKey.equals(me.keys.swarm.publicKey) || device.deviceId === me.id) {
          return refuse('refused', 'a device cannot pair with itself');
        }
        try {
          hooks.accept(device);
        } catch (err) {
          return refuse('refused', err instanceof Error ? err.message : String(err));
        }
        accepted = device;
        doneMessage.send(1);
        finishIfBothDone();
      },
    });
    const doneMessage = channel.addMessage({
      encoding: pairDone,
      onmessage() {
        if (!proven || remoteDone) return settle(new PairingFailure('protocol', 'pairing messages out of order'));
        remoteDone = true;
        finishIfBothDone();
      },
    });
    const refusalMessage = channel.addMessage({
      encoding: pairRefusal,
      onmessage(message) {
        settle(new PairingFailure('refused', `the other device refused to pair: ${message}`));
      },
    });
    const finishIfBothDone = () => {
      if (!accepted || !remoteDone || settled) return;
      try {
        settle(undefined, hooks.store(accepted));
      } catch (err) {
        settle(new PairingFailure('refused', err instanceof Error ? err.message : String(err)));
      }
    };
    channel.open();
    nonceMessage.send(localNonce);
  });
}

/** Refuses devices revoked here, before anything is stored. */
function acceptUnlessRevoked(library: Library) {
  return (device: PairDevice) => {
    const known = peerByKey(library.db, device.swarmKey.toString('hex'));
    if (known?.revokedAt) throw new SdError('NOT_PERMITTED', `device '${known.name}' was revoked here and cannot pair again`);
  };
}

function storePeer(library: Library) {
  return (device: PairDevice): Peer =>
    savePairedPeer(library.db, { id: device.deviceId, name: device.name, publicKey: device.swarmKey.toString('hex'), logKey: device.logKey.toString('hex') });
}

export interface PairingNetwork {
  bootstrap?: BootstrapNode[];
  /** A DHT node to use instead of one built from `bootstrap` (tests on an in-process testnet). */
  dht?: DHT;
}

/**
 * A swarm on a throwaway key pair: pairing must work while `sd mount` of the same library
 * holds the device key on the DHT. Every connection goes through the challenge anyway.
 */
function pairingSwarm(network: PairingNetwork): Hyperswarm {
  return new Hyperswarm({ dht: network.dht ?? createDht(network.bootstrap), keyPair: hypercoreCrypto.keyPair() });
}

/** Closes our end once the other side had time to read our last message. */
async function closeGently(conn: SwarmConnection): Promise<void> {
  conn.end();
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 2000);
    conn.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export interface HostResult {
  peer: Peer;
  /** Connections refused on the way (wrong proof, malformed messages). */
  refused: number;
}

/**
 * `sd pair`: waits on the words' topic (server side only) until one device pairs, the words
 * expire, or `cancelled` resolves. Single use: the first success ends it.
 */
export async function hostPairing(library: Library, words: PairingWords, network: PairingNetwork, cancelled?: Promise<unknown>): Promise<HostResult> {
  const me = localDeviceOf(library);
  const key = pairKey(words.secret);
  const swarm = pairingSwarm(network);
  let refused = 0;
  try {
    return await new Promise<HostResult>((resolve, reject) => {
      let done = false;
      const expiry = setTimeout(() => {
        done = true;
        reject(new SdError('INVALID', `the pairing words expired at ${new Date(words.expiresAt).toISOString()} and no device joined; run 'sd pair' again for new words`));
      }, Math.max(0, words.expiresAt - Date.now()));
      cancelled?.then(() => {
        clearTimeout(expiry);
        done = true;
        reject(new SdError('CANCELLED', 'pairing cancelled; the words no longer work'));
      });
      swarm.on('connection', (conn) => {
        conn.on('error', (err: Error) => log.debug({ op: 'pair', err: err.message }, 'pairing connection error'));
        if (done) return conn.destroy();
        pairOverConnection(conn, key, me, { accept: acceptUnlessRevoked(library), store: (d) => (done ? null : storePeer(library)(d)) }).then(
          async (peer) => {
            if (!peer) return conn.destroy();
            done = true;
            clearTimeout(expiry);
            await closeGently(conn);
            resolve({ peer, refused });
          },
          (err: unknown) => {
            refused++;
            log.warn({ op: 'pair', err: String(err) }, 'pairing attempt refused; still waiting');
          },
        );
      });
      swarm.join(pairTopic(words.secret), { server: true, client: false }).flushed().catch((err: unknown) => {
        log.warn({ op: 'pair', err: String(err) }, 'announcing the pairing topic failed');
      });
    });
  } finally {
    await destroySwarm(swarm);
  }
}

/** `sd pair join`: finds the device waiting for these words (client side only) and pairs. */
export async function joinPairing(library: Library, secret: Buffer, network: PairingNetwork, timeoutMs = config.pairJoinTimeoutMs): Promise<Peer> {
  const me = localDeviceOf(library);
  const key = pairKey(secret);
  const swarm = pairingSwarm(network);
  let relook: NodeJS.Timeout | undefined;
  try {
    return await new Promise<Peer>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        reject(new SdError('NOT_FOUND', 'no device is waiting for these words (they expire after 5 minutes and work once); run \'sd pair\' on the other device for new words'));
      }, timeoutMs);
      swarm.on('connection', (conn) => {
        conn.on('error', (err: Error) => log.debug({ op: 'pair', err: err.message }, 'pairing connection error'));
        if (done) return conn.destroy();
        pairOverConnection(conn, key, me, { accept: acceptUnlessRevoked(library), store: storePeer(library) }).then(
          async (peer) => {
            done = true;
            clearTimeout(timer);
            await closeGently(conn);
            resolve(peer);
          },
          (err: unknown) => {
            if (err instanceof PairingFailure && (err.reason === 'refused' || err.reason === 'proof')) {
              done = true;
              clearTimeout(timer);
              reject(new SdError('NOT_PERMITTED', err.message));
            } else {
              log.info({ op: 'pair', err: String(err) }, 'pairing connection lost; still looking');
            }
          },
        );
      });
      const discovery = swarm.join(pairTopic(secret), { server: false, client: true });
      // One lookup can miss a device that announced a moment later (sd pair prints its words
      // before its announcement is out): look again until connected or out of time.
      relook = setInterval(() => {
        if (!done && swarm.connections.size === 0) discovery.refresh().catch((err: unknown) => log.debug({ op: 'pair', err: String(err) }, 'lookup failed'));
      }, config.pairLookupIntervalMs);
    });
  } finally {
    clearInterval(relook);
    await destroySwarm(swarm);
  }
}
