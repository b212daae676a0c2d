// Every wire message of sdfs and its compact-encoding. Decoders bound every length, so
// an oversized or malformed message throws, and protomux closes that connection.
import c from 'compact-encoding';

/** compact-encoding's state and encoder shapes (its typings do not export them). */
export type State = ReturnType<typeof c.state>;
export interface Encoding<T> {
  preencode(state: State, value: T): void;
  encode(state: State, value: T): void;
  decode(state: State): T;
}

/** A fixed-size byte field decoded as a Buffer (compact-encoding's typings say Uint8Array). */
function fixedBytes(inner: { preencode(state: State, v: Uint8Array): void; encode(state: State, v: Uint8Array): void; decode(state: State): Uint8Array }): Encoding<Buffer> {
  return {
    preencode: (state, v) => inner.preencode(state, v),
    encode: (state, v) => inner.encode(state, v),
    decode: (state) => {
      const u = inner.decode(state);
      return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
    },
  };
}
const fixed32 = fixedBytes(c.fixed32);
const fixed64 = fixedBytes(c.fixed64);

/** Protocol names of the protomux channels on a device connection. */
export const PAIR_PROTOCOL = 'sdfs/pair/1';
export const PING_PROTOCOL = 'sdfs/ping/1';

/** A UTF-8 string of at most `maxBytes`, refused before it is decoded when longer. */
export function boundedString(maxBytes: number): Encoding<string> {
  return {
    preencode(state, value) {
      c.string.preencode(state, value);
    },
    encode(state, value) {
      if (Buffer.byteLength(value) > maxBytes) throw new Error(`string longer than ${maxBytes} bytes`);
      c.string.encode(state, value);
    },
    decode(state: State) {
      const start = state.start;
      const length = c.uint.decode(state);
      if (length > maxBytes) throw new Error(`string of ${length} bytes, at most ${maxBytes} allowed`);
      state.start = start;
      return c.string.decode(state);
    },
  };
}

/** Refuses trailing bytes: a message is exactly its fields. */
function exact<T>(encoding: Encoding<T>): Encoding<T> {
  return {
    preencode: (state, value) => encoding.preencode(state, value),
    encode: (state, value) => encoding.encode(state, value),
    decode(state) {
      const value = encoding.decode(state);
      if (state.start !== state.end) throw new Error(`${state.end - state.start} unexpected bytes after a message`);
      return value;
    },
  };
}

// --- pairing (sdfs/pair/1) ---

/** 32 random bytes each side sends first; both go into the transcript. */
export const pairNonce = exact(fixed32);

/** HMAC-SHA256 over the transcript with the key derived from the words. */
export const pairProof = exact(fixed32);

export interface PairDevice {
  deviceId: string;
  name: string;
  /** The device's swarm public key (its identity), 32 bytes. */
  swarmKey: Buffer;
  /** The device's index log public key, 32 bytes. */
  logKey: Buffer;
  /** Signature by the swarm secret key over the transcript: proves the key is theirs. */
  signature: Buffer;
}

const deviceId = boundedString(64);
const deviceName = boundedString(256);

export const pairDevice: Encoding<PairDevice> = exact({
  preencode(state, m) {
    deviceId.preencode(state, m.deviceId);
    deviceName.preencode(state, m.name);
    fixed32.preencode(state, m.swarmKey);
    fixed32.preencode(state, m.logKey);
    fixed64.preencode(state, m.signature);
  },
  encode(state, m) {
    deviceId.encode(state, m.deviceId);
    deviceName.encode(state, m.name);
    fixed32.encode(state, m.swarmKey);
    fixed32.encode(state, m.logKey);
    fixed64.encode(state, m.signature);
  },
  decode(state) {
    return {
      deviceId: deviceId.decode(state),
      name: deviceName.decode(state),
      swarmKey: fixed32.decode(state),
      logKey: fixed32.decode(state),
      signature: fixed64.decode(state),
    };
  },
});

/** The last message of pairing: the sender stored the other device. */
export const pairDone = exact(c.uint);

// --- presence (sdfs/ping/1) ---

/** A ping carries a sequence number; the pong echoes it. */
export const ping = exact(c.uint);
export const pong = exact(c.uint);

/** Sent before closing when a side refuses (wrong proof, revoked device): the reason, for the user. */
export const pairRefusal = exact(boundedString(300));

// --- the group (sdfs/group/1) ---

export const GROUP_PROTOCOL = 'sdfs/group/1';

/** At most this many members and as many revocations in one membership message. */
export const GROUP_MAX_DEVICES = 1024;

/** A paired device the sender introduces, signed by the sender's swarm key (see group.ts). */
export interface GroupMember {
  deviceId: string;
  name: string;
  swarmKey: Buffer;
  logKey: Buffer;
  signature: Buffer;
}

/** A device the sender revoked or took a revocation of, signed by the sender's swarm key. */
export interface GroupRevocation {
  deviceId: string;
  name: string;
  swarmKey: Buffer;
  signature: Buffer;
}

/** Every device the sender is paired with, and every one it refuses: sent whole on each change. */
export interface GroupMembership {
  members: GroupMember[];
  revoked: GroupRevocation[];
}

const groupMember: Encoding<GroupMember> = {
  preencode(state, m) {
    deviceId.preencode(state, m.deviceId);
    deviceName.preencode(state, m.name);
    fixed32.preencode(state, m.swarmKey);
    fixed32.preencode(state, m.logKey);
    fixed64.preencode(state, m.signature);
  },
  encode(state, m) {
    deviceId.encode(state, m.deviceId);
    deviceName.encode(state, m.name);
    fixed32.encode(state, m.swarmKey);
    fixed32.encode(state, m.logKey);
    fixed64.encode(state, m.signature);
  },
  decode(state) {
    // Copies: the records outlive the message buffer they came in.
    return {
      deviceId: deviceId.decode(state),
      name: deviceName.decode(state),
      swarmKey: Buffer.from(fixed32.decode(state)),
      logKey: Buffer.from(fixed32.decode(state)),
      signature: Buffer.from(fixed64.decode(state)),
    };
  },
};

const groupRevocation: Encoding<GroupRevocation> = {
  preencode(state, m) {
    deviceId.preencode(state, m.deviceId);
    deviceName.preencode(state, m.name);
    fixed32.preencode(state, m.swarmKey);
    fixed64.preencode(state, m.signature);
  },
  encode(state, m) {
    deviceId.encode(state, m.deviceId);
    deviceName.encode(state, m.name);
    fixed32.encode(state, m.swarmKey);
    fixed64.encode(state, m.signature);
  },
  decode(state) {
    return {
      deviceId: deviceId.decode(state),
      name: deviceName.decode(state),
      swarmKey: Buffer.from(fixed32.decode(state)),
      signature: Buffer.from(fixed64.decode(state)),
    };
  },
};

/** A list of at most GROUP_MAX_DEVICES records, refused before decoding when longer. */
function boundedList<T>(item: Encoding<T>): Encoding<T[]> {
  return {
    preencode(state, list) {
      c.uint.preencode(state, list.length);
      for (const x of list) item.preencode(state, x);
    },
    encode(state, list) {
      if (list.length > GROUP_MAX_DEVICES) throw new Error(`${list.length} devices, at most ${GROUP_MAX_DEVICES} allowed`);
      c.uint.encode(state, list.length);
      for (const x of list) item.encode(state, x);
    },
    decode(state) {
      const count = c.uint.decode(state);
      if (count > GROUP_MAX_DEVICES) throw new Error(`${count} devices, at most ${GROUP_MAX_DEVICES} allowed`);
      const list: T[] = [];
      for (let i = 0; i < count; i++) list.push(item.decode(state));
      return list;
    },
  };
}

const memberList = boundedList(groupMember);
const revocationList = boundedList(groupRevocation);

export const groupMembership: Encoding<GroupMembership> = exact({
  preencode(state, m) {
    memberList.preencode(state, m.members);
    revocationList.preencode(state, m.revoked);
  },
  encode(state, m) {
    memberList.encode(state, m.members);
    revocationList.encode(state, m.revoked);
  },
  decode(state) {
    return { members: memberList.decode(state), revoked: revocationList.decode(state) };
  },
});

// --- the direct lane (sdfs/lane/2) ---

/** 2: the offer carries a TLS 1.3 pre-shared key (1 had none: the lane was Noise with the device keys). */
export const LANE_PROTOCOL = 'sdfs/lane/2';

/**
 * Where a device takes direct TCP connections for bulk bytes (its port and at most 16
 * addresses), and the credential that lets the receiving device, and it alone, in: a TLS
 * 1.3 pre-shared key made for this one offer, named in the handshake by a random identity.
 * It travels only over the authenticated, encrypted swarm connection.
 */
export interface LaneOffer {
  port: number;
  hosts: string[];
  /** 16 random bytes; sent in the clear in the TLS handshake (as hex), so it says nothing about the devices. */
  identity: Buffer;
  /** 32 random bytes, the pre-shared key. */
  secret: Buffer;
}

const laneHost = boundedString(64);
const fixed16 = fixedBytes(c.fixed16);

export const laneOffer: Encoding<LaneOffer> = exact({
  preencode(state, m) {
    c.uint.preencode(state, m.port);
    c.uint.preencode(state, m.hosts.length);
    for (const h of m.hosts) laneHost.preencode(state, h);
    fixed16.preencode(state, m.identity);
    fixed32.preencode(state, m.secret);
  },
  encode(state, m) {
    c.uint.encode(state, m.port);
    c.uint.encode(state, m.hosts.length);
    for (const h of m.hosts) laneHost.encode(state, h);
    fixed16.encode(state, m.identity);
    fixed32.encode(state, m.secret);
  },
  decode(state) {
    const port = c.uint.decode(state);
    if (port < 1 || port > 65535) throw new Error(`lane port ${port} out of range`);
    const count = c.uint.decode(state);
    if (count > 16) throw new Error(`${count} lane addresses, at most 16 allowed`);
    const hosts: string[] = [];
    for (let i = 0; i < count; i++) hosts.push(laneHost.decode(state));
    // Copies: the credential outlives the message buffer it came in.
    return { port, hosts, identity: Buffer.from(fixed16.decode(state)), secret: Buffer.from(fixed32.decode(state)) };
  },
});
