/**
 * What the send and receive rings share: a fixed capacity, [head, head+len) in use, and the byte array
 * allocated on first use, so a connection that never sends (or, in sink mode, never sees data out of order)
 * costs no buffer memory, which matters with many connections (iperf -P 64).
 */
export class Ring {
  private ring: Uint8Array | undefined = undefined
  head = 0
  len = 0
  constructor(readonly capacity: number) {}
  get buf(): Uint8Array {
    if (this.ring === undefined) this.ring = new Uint8Array(this.capacity)
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
  get free(): number {
    return this.capacity - this.len
  }
}
