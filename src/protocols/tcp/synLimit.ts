/**
 * How many SYNs we answer with a cookie, per second: per source address and in all (token buckets).
 *
 * A SYN cookie keeps no state, but answering costs a SYN-ACK written to the link (on a TAP, the write
 * also runs the peer kernel's handling of it: its RST comes back in the same system call). Under a
 * full-speed flood that work, not the table, starves established connections. So while the half-open
 * bounds are reached, each source gets `perSource` answers per second and
 * all sources together `total`; SYNs past that are dropped unanswered, as a loaded kernel drops them, and
 * the peer's TCP retries. A flood from one address therefore never takes the answers of another, and a
 * spoofed flood from many addresses costs at most `total` SYN-ACKs a second. Bursts are bounded by
 * `burstMs` worth of either rate (a tenth of a second's by default): at a flood's onset a source gets 100
 * answers at once, not a whole second's 1000 (on a TAP each SYN-ACK write also runs the peer kernel's RST,
 * and a thousand of them at once stalled every other packet for about 100 ms).
 *
 * Sources are kept in a bounded map (the one seen first is forgotten first). Time comes in as nowMs.
 */

import { TokenBucket } from "../tokenBucket.js"

export interface SynLimitConfig {
  readonly perSource: number
  readonly total: number
  readonly maxSources: number
  /** Bursts: each bucket holds at most this many milliseconds of its rate (at least one token). */
  readonly burstMs: number
}

export const DEFAULT_SYN_LIMIT: SynLimitConfig = { perSource: 1000, total: 20_000, maxSources: 4096, burstMs: 100 }

export class SynLimiter {
  /** Refilled in place: deleting and re-inserting on every SYN made V8 shrink and grow the map's table. */
  private readonly sources = new Map<number | string, TokenBucket>()
  private readonly total: TokenBucket
  private readonly sourceBurst: number
  constructor(readonly cfg: SynLimitConfig = DEFAULT_SYN_LIMIT) {
    this.sourceBurst = Math.max(1, (cfg.perSource * cfg.burstMs) / 1000)
    this.total = new TokenBucket(cfg.total, Math.max(1, (cfg.total * cfg.burstMs) / 1000), 0)
  }

  /**
   * Whether a cookie SYN-ACK may go to `src` now (takes a token from both buckets when it may). `src` is the
   * source's key: an IPv4 address, or the /64 of an IPv6 one (protocols/ipAddress.ts sourceKey).
   */
  admit(src: number | string, nowMs: number): boolean {
    if (this.total.refill(nowMs) < 1) return false
    let b = this.sources.get(src)
    if (b === undefined) {
      if (this.sources.size >= this.cfg.maxSources) {
        const oldest = this.sources.keys().next().value as number | string
        this.sources.delete(oldest)
      }
      b = new TokenBucket(this.cfg.perSource, this.sourceBurst, nowMs)
      this.sources.set(src, b)
    }
    if (b.refill(nowMs) < 1) return false
    b.spend()
    this.total.spend()
    return true
  }

  /** Whether `admit` would refuse `src` now (nothing is taken or recorded). */
  refuses(src: number | string, nowMs: number): boolean {
    if (this.total.level(nowMs) < 1) return true
    const b = this.sources.get(src)
    return b !== undefined && b.level(nowMs) < 1
  }

  get trackedSources(): number {
    return this.sources.size
  }
}
