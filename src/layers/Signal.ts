/**
 * A wake-up for fibers waiting on a condition that plain synchronous code (the receive burst) changes.
 * `notify` wakes every fiber waiting now and is also remembered for the next `wait`, so a wake-up is
 * never lost between a check and a wait. Waiters always re-check their condition (wake-ups may
 * be spurious).
 */
import * as Effect from "effect/Effect"

export class Signal {
  private waiters: Array<(e: Effect.Effect<void>) => void> = []
  private pending = false

  notify(): void {
    // Also remembered when someone is waiting: a fiber that checked its condition but has not reached
    // `wait` yet (the runtime may yield in between) then returns at once instead of missing this wake-up.
    this.pending = true
    if (this.waiters.length === 0) return
    const ws = this.waiters
    this.waiters = []
    for (const r of ws) r(Effect.void)
  }

  /** Completes at the next notification (at once if one is pending). Interruptible. */
  readonly wait: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.pending) {
      this.pending = false
      resume(Effect.void)
      return
    }
    this.waiters.push(resume)
    return Effect.sync(() => {
      const i = this.waiters.indexOf(resume)
      if (i >= 0) this.waiters.splice(i, 1)
    })
  })

  clear(): void {
    this.pending = false
  }
}
