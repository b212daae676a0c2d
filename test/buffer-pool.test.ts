// Buffers lent and given back for the block data path: a buffer is lent to one user at a
// time, a stray or repeated give changes nothing, and what does not fit is not pooled.
import t from 'tap';
import { BufferPool } from '../src/replication/buffer-pool.js';

t.test('a buffer given back is lent again, to one user at a time', async (t) => {
  const pool = new BufferPool(1024, 4);
  const first = pool.take(1000);
  t.equal(first.length, 1000, 'as long as asked');
  const second = pool.take(1024);
  t.not(second.buffer, first.buffer, 'a buffer lent is not lent twice');
  pool.give(first.subarray(10, 20));
  t.equal(pool.freeCount, 1, 'any view of a lent buffer gives it back');
  const third = pool.take(500);
  t.equal(third.buffer, first.buffer, 'and it is lent again');
  t.equal(pool.freeCount, 0);
});

t.test('a stray or repeated give changes nothing; what does not fit is not pooled', async (t) => {
  const pool = new BufferPool(1024, 2);
  const lent = pool.take(100);
  pool.give(lent);
  pool.give(lent);
  t.equal(pool.freeCount, 1, 'given back once, however often given');
  const again = pool.take(100);
  const other = pool.take(100);
  t.not(again.buffer, other.buffer, 'so two users never share it');
  pool.give(Buffer.alloc(1024));
  t.equal(pool.freeCount, 0, 'a buffer the pool never lent is not taken');
  const big = pool.take(4096);
  t.equal(big.length, 4096, 'longer than a slab: allocated apart');
  pool.give(big);
  t.equal(pool.freeCount, 0, 'and not pooled');
});

t.test('at most `keep` free buffers are held', async (t) => {
  const pool = new BufferPool(64, 2);
  const lent = [pool.take(64), pool.take(64), pool.take(64)];
  for (const b of lent) pool.give(b);
  t.equal(pool.freeCount, 2, 'the third is left to the garbage collector');
});
