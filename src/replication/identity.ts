// This device's keys, all derived from the seed in <library>/device.key: the swarm key
// pair (Noise, the device's public identity) and the key pair of its own index log.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import hypercoreCrypto from 'hypercore-crypto';
import { SdError } from '../errors.js';

export interface KeyPair {
  publicKey: Buffer;
  secretKey: Buffer;
}

export interface DeviceKeys {
  /** Noise key pair of the swarm; its public key is the device's identity to peers. */
  swarm: KeyPair;
  /** Signing key pair of the device's index log (hypercore); its public key is the log key. */
  log: KeyPair;
}

export const DEVICE_KEY_FILE = 'device.key';

/** The 32-byte seed this device's keys come from. */
export function readDeviceSeed(libraryDir: string): Buffer {
  const file = path.join(libraryDir, DEVICE_KEY_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch {
    throw new SdError('LIBRARY_CORRUPT', `the device key ${file} is missing; this library cannot join the swarm (restore it from a backup, or run 'sd init' on a new library)`);
  }
  if (!/^[0-9a-f]{64}$/.test(text)) throw new SdError('LIBRARY_CORRUPT', `the device key ${file} is damaged (expected 64 hex digits)`);
  return Buffer.from(text, 'hex');
}

function derive(seed: Buffer, purpose: string): KeyPair {
  const sub = crypto.createHash('sha256').update(`sdfs/${purpose}/`).update(seed).digest();
  return hypercoreCrypto.keyPair(sub) as KeyPair;
}

export function deviceKeys(libraryDir: string): DeviceKeys {
  const seed = readDeviceSeed(libraryDir);
  return { swarm: derive(seed, 'swarm'), log: derive(seed, 'device-log') };
}
