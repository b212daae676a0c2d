// The part of hypercore-crypto sdfs uses (the package ships no types).
declare module 'hypercore-crypto' {
  interface KeyPair {
    publicKey: Buffer;
    secretKey: Buffer;
  }
  const hypercoreCrypto: {
    keyPair(seed?: Buffer): KeyPair;
    sign(message: Buffer, secretKey: Buffer): Buffer;
    verify(message: Buffer, signature: Buffer, publicKey: Buffer): boolean;
    randomBytes(n: number): Buffer;
    discoveryKey(publicKey: Buffer): Buffer;
  };
  export default hypercoreCrypto;
}
