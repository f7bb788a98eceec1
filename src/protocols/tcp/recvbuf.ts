/**
 * Bounded receive ring. [head, head+len) is in-order data the application has not read yet;
 * out-of-order data is written at offsets past it (relative to RCV.NXT), tracked by the Tcb's
 * RangeSet. In sink mode `len` stays 0 and the ring only holds out-of-order bytes.
 */
import { Ring } from "./ring.js"

export class RecvBuf extends Ring {
  /** Ring position of offset `off` past the readable data (off = seq - RCV.NXT). */
  pos(off: number): number {
    let p = this.head + this.len + off
    while (p >= this.capacity) p -= this.capacity
    return p
  }
  /** Store src[start, end) at offset `off` past the readable data. Caller checks off+len <= free. */
  put(off: number, src: Uint8Array, start: number, end: number): void {
    const n = end - start
    if (n <= 0) return
    const p = this.pos(off)
    const first = Math.min(n, this.capacity - p)
    this.buf.set(src.subarray(start, start + first), p)
    if (first < n) this.buf.set(src.subarray(start + first, end), 0)
  }
  /** Mark n bytes past the readable region as readable (in-order arrival). */
  commit(n: number): void {
    this.len += n
  }
  /** Discard n bytes at the head (sink mode after delivery, or after a read). */
  discard(n: number): void {
    this.head += n
    while (this.head >= this.capacity) this.head -= this.capacity
    this.len = Math.max(0, this.len - n)
  }
  /** Advance the head by n without touching len (sink mode: bytes delivered straight from a segment). */
  skipHead(n: number): void {
    this.head = (this.head + n) % this.capacity
  }
  /** Copy up to dst.length readable bytes into dst; returns the count. */
  read(dst: Uint8Array, dstOffset = 0, max = dst.length - dstOffset): number {
    const n = Math.min(max, this.len)
    if (n <= 0) return 0
    const first = Math.min(n, this.capacity - this.head)
    dst.set(this.buf.subarray(this.head, this.head + first), dstOffset)
    if (first < n) dst.set(this.buf.subarray(0, n - first), dstOffset + first)
    this.head += n
    if (this.head >= this.capacity) this.head -= this.capacity
    this.len -= n
    return n
  }
}
