/**
 * A token bucket: `rate` tokens a second, never more than `burst` held, full at the start. Time comes in as
 * nowMs. The one rate mechanism of the stack: ICMP errors (IPv4 and IPv6), cookie SYN-ACKs per source and in all.
 */
export class TokenBucket {
  private tokens: number
  private at: number

  constructor(
    readonly rate: number,
    readonly burst: number,
    nowMs: number
  ) {
    this.tokens = burst
    this.at = nowMs
  }

  /** The tokens there would be at `nowMs` (nothing changes). */
  level(nowMs: number): number {
    return Math.min(this.burst, this.tokens + ((nowMs - this.at) * this.rate) / 1000)
  }

  /** Add what `nowMs` brings; returns the tokens now. */
  refill(nowMs: number): number {
    this.tokens = this.level(nowMs)
    this.at = nowMs
    return this.tokens
  }

  /** Spend one token (after `refill` said there is one). */
  spend(): void {
    this.tokens -= 1
  }

  /** Refill, then spend one token if there is one; false when there is none. */
  take(nowMs: number): boolean {
    if (this.refill(nowMs) < 1) return false
    this.tokens -= 1
    return true
  }
}
