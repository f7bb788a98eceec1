/**
 * Sleeping for any duration. Effect's clock treats a sleep longer than the JS timer limit (2^31-1 ms,
 * about 24.8 days) as infinite: it never fires. Deadlines that come from a peer or a flag (a DHCP lease,
 * an iperf -t, a keep-alive) can be longer than that, so long sleeps are taken in steps of at most
 * 2^30 ms, each re-reading the clock, and end at the same instant a single sleep would have.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

/** Longest single sleep handed to the clock. */
export const MAX_SLEEP_MS = 2 ** 30

/** Sleep `ms` milliseconds (0 or less: yield nothing; Infinity or NaN: forever). */
export const sleepMillis = (ms: number): Effect.Effect<void> => {
  if (!(ms > 0)) return Number.isNaN(ms) ? Effect.never : Effect.void
  if (ms === Infinity) return Effect.never
  if (ms <= MAX_SLEEP_MS) return Effect.sleep(Duration.millis(ms))
  return Effect.flatMap(Clock.currentTimeMillis, (start) => {
    const end = start + ms
    const step: Effect.Effect<void> = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      now >= end ? Effect.void : Effect.zipRight(Effect.sleep(Duration.millis(Math.min(MAX_SLEEP_MS, end - now))), step)
    )
    return step
  })
}
