/**
 * Bounded send ring. Byte 0 is the oldest unacknowledged byte (the Tcb keeps its sequence number).
 * `write` copies what fits; `copyOut` copies [offset, offset+len) into a frame without an
 * intermediate allocation; `consume` drops acknowledged bytes.
 */
import { Ring } from "./ring.js"

export class SendBuf extends Ring {
  /** Copies as much of data[start, end) as fits; returns the count. */
  write(data: Uint8Array, start = 0, end = data.length): number {
    const n = Math.min(end - start, this.capacity - this.len)
    if (n <= 0) return 0
    const cap = this.capacity
    let tail = this.head + this.len
    if (tail >= cap) tail -= cap
    const first = Math.min(n, cap - tail)
    this.buf.set(data.subarray(start, start + first), tail)
    if (first < n) this.buf.set(data.subarray(start + first, start + n), 0)
    this.len += n
    return n
  }
  consume(n: number): void {
    const k = Math.min(n, this.len)
    this.head += k
    if (this.head >= this.capacity) this.head -= this.capacity
    this.len -= k
    if (this.len === 0) this.head = 0
  }
  /** Copy bytes [offset, offset+len) of the buffered data into dst at dstOffset. */
  copyOut(offset: number, len: number, dst: Uint8Array, dstOffset: number): void {
    const cap = this.capacity
    let p = this.head + offset
    if (p >= cap) p -= cap
    const first = Math.min(len, cap - p)
    dst.set(this.buf.subarray(p, p + first), dstOffset)
    if (first < len) dst.set(this.buf.subarray(0, len - first), dstOffset + first)
  }
}
