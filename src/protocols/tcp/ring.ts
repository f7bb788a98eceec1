/**
 * What the send and receive rings share: a capacity, [head, head+len) in use, and the byte array
 * allocated on first use, so a connection that never sends (or, in sink mode, never sees data out of order)
 * costs no buffer memory, which matters with many connections (iperf -P 64). Until the byte array is
 * allocated the capacity may still change (`resize`): a passive open gets its ring sizes when its
 * handshake completes.
 */
export class Ring {
  private ring: Uint8Array | undefined = undefined
  private cap: number
  head = 0
  len = 0
  constructor(capacity: number) {
    this.cap = capacity
  }
  get capacity(): number {
    return this.cap
  }
  get buf(): Uint8Array {
    if (this.ring === undefined) this.ring = new Uint8Array(this.cap)
    return this.ring
  }
  /** Whether the byte array has been allocated. */
  get allocated(): boolean {
    return this.ring !== undefined
  }
  /** Give the byte array back (when the ring is empty); it is allocated again on next use. */
  release(): void {
    if (this.len !== 0) return
    this.ring = undefined
    this.head = 0
  }
  /**
   * Another capacity, only while the ring holds nothing and its byte array is not allocated (false, and
   * nothing changes, otherwise).
   */
  resize(capacity: number): boolean {
    if (this.ring !== undefined || this.len !== 0) return false
    this.cap = capacity
    this.head = 0
    return true
  }
  get free(): number {
    return this.cap - this.len
  }
}
