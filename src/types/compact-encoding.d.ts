// The part of compact-encoding sdfs uses (the package ships no types).
declare module 'compact-encoding' {
  export interface State {
    start: number;
    end: number;
    buffer: Buffer | null;
  }
  export interface Encoding<T> {
    preencode(state: State, value: T): void;
    encode(state: State, value: T): void;
    decode(state: State): T;
  }
  const c: {
    uint: Encoding<number>;
    string: Encoding<string>;
    buffer: Encoding<Buffer | null>;
    raw: Encoding<Buffer>;
    fixed32: Encoding<Buffer>;
    fixed64: Encoding<Buffer>;
    state(): State;
    encode<T>(encoding: Encoding<T>, value: T): Buffer;
    decode<T>(encoding: Encoding<T>, buffer: Buffer): T;
  };
  export default c;
}
