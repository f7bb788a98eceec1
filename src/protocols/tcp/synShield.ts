/**
 * Which bare SYNs the link should drop before they reach us: the SYN limiter's verdicts, handed down to a
 * filter the device runs (on a TAP, a classic BPF program the kernel runs as it queues each frame, in the
 * sender's context).
 *
 * Why: past the limiter (synLimit.ts) a flood's SYNs are dropped unanswered, but each one was still read from
 * the TAP (a system call per frame) and looked at; at a full-speed hping3 flood that reading, not the answering,
 * is what takes the CPU from established connections. Sources the limiter keeps refusing are therefore listed
 * for the device, which drops their bare SYNs but one in 2^keepShift: that sample still reaches us, so we can tell
 * when a source stops (its rate is the sample times 2^keepShift) and take it off the list. SYNs from sources not
 * listed (a flood from many spoofed addresses) are dropped by the device with probability allLevel/64, set so that
 * what passes is about the limiter's total rate.
 *
 * Nothing here stops a connection: a real client behind a listed address loses the same share of its SYNs to
 * the filter as it would to the limiter, and its TCP retries. The verdicts are taken once per window (1 s) and
 * expire: a list is kept only while the sample says the source still floods.
 *
 * Pure: time comes in as nowMs; the shell calls `syn` for each bare SYN to a listener, `refused` for each one the
 * limiter dropped, and `tick` when `dueAt` is reached, and applies what `tick` returns.
 */

export interface SynShieldConfig {
  /** The limiter's rate per source and in all (SYNs a second). */
  readonly perSource: number
  readonly total: number
  /** A listed source's bare SYNs pass one in 2^keepShift. */
  readonly keepShift: number
  /** At most this many sources listed (the device's bound). */
  readonly maxSources: number
  /** Sources whose refusals are counted in a window, at most (the first seen is forgotten first). */
  readonly maxTracked: number
  readonly windowMs: number
}

export const DEFAULT_SYN_SHIELD: Omit<SynShieldConfig, "perSource" | "total"> = {
  keepShift: 6,
  maxSources: 64,
  maxTracked: 4096,
  windowMs: 1000
}

/** What the device should filter now. */
export interface SynFilterUpdate {
  readonly sources: ReadonlyArray<number>
  readonly allLevel: number
}

/** The device drops unlisted sources' bare SYNs with probability allLevel/64; never all of them. */
export const MAX_ALL_LEVEL = 56

export class SynShield {
  /** Refusals per unlisted source in this window. */
  private readonly refusedBy = new Map<number, number>()
  /** Bare SYNs per listed source in this window (the sample). */
  private readonly sampled = new Map<number, number>()
  private listed: ReadonlyArray<number> = []
  private readonly listedSet = new Set<number>()
  /** Bare SYNs from unlisted sources in this window (after the device's allLevel share was dropped). */
  private bare = 0
  private refusedUnlisted = 0
  private level = 0
  /** When `tick` is due (Infinity while there is nothing to judge). */
  dueAt = Infinity

  constructor(readonly cfg: SynShieldConfig) {}

  get sources(): ReadonlyArray<number> {
    return this.listed
  }
  get allLevel(): number {
    return this.level
  }
  /** Whether the device is filtering anything now. */
  get active(): boolean {
    return this.listed.length > 0 || this.level > 0
  }

  /** A bare SYN for a listener from `src` reached us. */
  syn(src: number): void {
    if (this.dueAt === Infinity) return // no window open: nothing to judge
    if (this.listedSet.has(src)) this.sampled.set(src, (this.sampled.get(src) ?? 0) + 1)
    else this.bare++
  }

  /**
   * The limiter dropped a bare SYN from `src`. Returns "join" when `src` just had a tenth of its per-source rate
   * refused in this window (the caller applies `join(src)` at once: a flood is filtered within milliseconds, not
   * at the window's end), "window" when this opens a window (the caller makes sure `tick` runs at `dueAt`).
   */
  refused(src: number, nowMs: number): "join" | "window" | undefined {
    let verdict: "join" | "window" | undefined
    if (this.dueAt === Infinity) {
      this.dueAt = nowMs + this.cfg.windowMs
      verdict = "window"
    }
    if (!this.listedSet.has(src)) {
      this.refusedUnlisted++
      let n = this.refusedBy.get(src)
      if (n !== undefined) this.refusedBy.set(src, ++n)
      else {
        if (this.refusedBy.size >= this.cfg.maxTracked) this.refusedBy.delete(this.refusedBy.keys().next().value as number)
        this.refusedBy.set(src, (n = 1))
      }
      if (n === this.joinAt() && this.listed.length < this.cfg.maxSources) return "join"
    }
    return verdict
  }

  /** Lists `src` now (after `refused` said "join"); the filter to apply. */
  join(src: number): SynFilterUpdate {
    if (!this.listedSet.has(src) && this.listed.length < this.cfg.maxSources) {
      this.listed = [...this.listed, src]
      this.listedSet.add(src)
    }
    return { sources: this.listed, allLevel: this.level }
  }

  /** Refusals in a window that list a source: a tenth of its per-source rate. */
  private joinAt(): number {
    return Math.max(1, Math.ceil((this.cfg.perSource * this.cfg.windowMs) / 10_000))
  }

  /**
   * The window ended: the new list and level, or undefined when they did not change. Sources stay listed while
   * their sample says they still send at least the per-source rate (or, listed during this window, they had a
   * tenth of it refused before); a source joins when it had a tenth of the per-source rate refused.
   */
  tick(nowMs: number): SynFilterUpdate | undefined {
    const c = this.cfg
    const perWindow = (c.perSource * c.windowMs) / 1000
    const scale = 2 ** c.keepShift
    // estimated SYNs a second of each source that should be (or stay) listed
    const rated = new Map<number, number>()
    for (const [src, n] of this.sampled) if (n * scale >= perWindow) rated.set(src, n * scale)
    const joinAt = this.joinAt()
    for (const [src, n] of this.refusedBy) if (n >= joinAt) rated.set(src, (rated.get(src) ?? 0) + n + perWindow)
    const sources = [...rated]
      .sort((a, b) => b[1] - a[1])
      .slice(0, c.maxSources)
      .map(([src]) => src)

    // unlisted sources: what reached us was (64 - level)/64 of what they sent
    const totalWindow = (c.total * c.windowMs) / 1000
    const sent = (this.bare * 64) / (64 - this.level)
    let level = 0
    if ((this.refusedUnlisted > 0 || this.level > 0) && sent > totalWindow) {
      level = Math.min(MAX_ALL_LEVEL, Math.floor(64 * (1 - totalWindow / sent)))
    }

    const refusing = this.refusedUnlisted > 0
    this.refusedBy.clear()
    this.sampled.clear()
    this.bare = 0
    this.refusedUnlisted = 0
    const changed = level !== this.level || sources.length !== this.listed.length || sources.some((s) => !this.listedSet.has(s))
    if (changed) {
      this.level = level
      this.listed = sources
      this.listedSet.clear()
      for (const s of sources) this.listedSet.add(s)
    }
    this.dueAt = this.active || refusing ? nowMs + c.windowMs : Infinity
    return changed ? { sources, allLevel: level } : undefined
  }
}
