/**
 * A one-slot wake-up for a single waiting fiber, notified from plain synchronous code (the receive burst).
 * A notification with no waiter is remembered, so a wake-up is never lost between a check and a wait.
 */
import * as Effect from "effect/Effect"

export class Signal {
  private resume: ((e: Effect.Effect<void>) => void) | undefined = undefined
  private pending = false

  notify(): void {
    const r = this.resume
    if (r !== undefined) {
      this.resume = undefined
      r(Effect.void)
    } else {
      this.pending = true
    }
  }

  /** Completes at the next notification (at once if one is pending). Interruptible. */
  readonly wait: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.pending) {
      this.pending = false
      resume(Effect.void)
      return
    }
    this.resume = resume
    return Effect.sync(() => {
      if (this.resume === resume) this.resume = undefined
    })
  })

  clear(): void {
    this.pending = false
  }
}
