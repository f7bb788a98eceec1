/**
 * The shell around protocols/logLimit.ts: refusal and drop lines of a kind are printed a few per second, the rest
 * summed up once a second ("412 connections refused in the last second (not logged one by one)").
 * A fiber under the caller's scope prints the summaries of windows that ended, so a flood that stops is summed up too.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as LogLimit from "../protocols/logLimit.js"

export interface LogLimiter {
  /**
   * Print `line` unless too many lines of `kind` were printed in this second (then it is only counted). `before`: a
   * line printed just before it when it is printed (a column header), never on its own.
   */
  readonly line: (kind: string, line: string, before?: string) => void
  /** Lines held back so far. */
  readonly suppressed: () => number
}

export const make = (print: (line: string) => void, perSecond: number = LogLimit.DEFAULT_PER_WINDOW): Effect.Effect<LogLimiter, never, Scope.Scope> =>
  Effect.gen(function* () {
    const clock = yield* Effect.clock
    const lim = LogLimit.make(perSecond)
    const summaries: Array<string> = []
    const drain = (): void => {
      for (const s of summaries.splice(0, summaries.length)) print(s)
    }
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.zipRight(
          Effect.sleep(Duration.millis(LogLimit.WINDOW_MS)),
          Effect.sync(() => {
            LogLimit.flush(lim, clock.unsafeCurrentTimeMillis(), summaries)
            drain()
          })
        )
      )
    )
    return {
      line: (kind, line, before) => {
        const ok = LogLimit.admit(lim, kind, clock.unsafeCurrentTimeMillis(), summaries)
        drain()
        if (!ok) return
        if (before !== undefined) print(before)
        print(line)
      },
      suppressed: () => lim.suppressed
    }
  })
