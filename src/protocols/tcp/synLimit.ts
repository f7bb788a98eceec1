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

interface Bucket {
  tokens: number
  at: number
}

export interface SynLimitConfig {
  readonly perSource: number
  readonly total: number
  readonly maxSources: number
  /** Bursts: each bucket holds at most this many milliseconds of its rate (at least one token). */
  readonly burstMs: number
}

export const DEFAULT_SYN_LIMIT: SynLimitConfig = { perSource: 1000, total: 20_000, maxSources: 4096, burstMs: 100 }

export class SynLimiter {
  private readonly sources = new Map<number, Bucket>()
  private totalTokens: number
  private totalAt = 0
  private readonly sourceBurst: number
  private readonly totalBurst: number
  constructor(readonly cfg: SynLimitConfig = DEFAULT_SYN_LIMIT) {
    this.sourceBurst = Math.max(1, (cfg.perSource * cfg.burstMs) / 1000)
    this.totalBurst = Math.max(1, (cfg.total * cfg.burstMs) / 1000)
    this.totalTokens = this.totalBurst
  }

  /** Whether a cookie SYN-ACK may go to `src` now (takes a token from both buckets when it may). */
  admit(src: number, nowMs: number): boolean {
    const c = this.cfg
    this.totalTokens = Math.min(this.totalBurst, this.totalTokens + ((nowMs - this.totalAt) * c.total) / 1000)
    this.totalAt = nowMs
    if (this.totalTokens < 1) return false
    let b = this.sources.get(src)
    if (b === undefined) {
      if (this.sources.size >= c.maxSources) {
        const oldest = this.sources.keys().next().value as number
        this.sources.delete(oldest)
      }
      b = { tokens: this.sourceBurst, at: nowMs }
      this.sources.set(src, b)
    } else {
      // refilled in place: deleting and re-inserting on every SYN made V8 shrink and grow the map's table
      b.tokens = Math.min(this.sourceBurst, b.tokens + ((nowMs - b.at) * c.perSource) / 1000)
      b.at = nowMs
    }
    if (b.tokens < 1) return false
    b.tokens -= 1
    this.totalTokens -= 1
    return true
  }

  /** Whether `admit` would refuse `src` now (nothing is taken or recorded). */
  refuses(src: number, nowMs: number): boolean {
    const c = this.cfg
    if (Math.min(this.totalBurst, this.totalTokens + ((nowMs - this.totalAt) * c.total) / 1000) < 1) return true
    const b = this.sources.get(src)
    return b !== undefined && Math.min(this.sourceBurst, b.tokens + ((nowMs - b.at) * c.perSource) / 1000) < 1
  }

  get trackedSources(): number {
    return this.sources.size
  }
}
