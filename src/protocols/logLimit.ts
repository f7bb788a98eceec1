/**
 * Log aggregation under floods (design.md §7: "log lines about refusals are aggregated"). Pure code: no Effect, no
 * IO, no clock; time comes in as `nowMs`.
 *
 * Lines are grouped by kind (a short phrase such as "connections refused"). In each one-second window the first
 * `perWindow` lines of a kind are printed; the rest are only counted, and when the window is over one summary line
 * says how many were held back: "412 connections refused in the last second (not logged one by one)".
 *
 * ```ts
 * const lim = LogLimit.make()
 * if (LogLimit.admit(lim, "connections refused", nowMs, summaries)) print(line)   // else: counted
 * for (const s of summaries.splice(0)) print(s)                                    // summaries of closed windows
 * LogLimit.flush(lim, nowMs, summaries)             // call about once a second, so a flood that stops is summed up too
 * ```
 * The number of kinds is bounded (`maxKinds`, default 64): past it, lines of new kinds share one bucket "other lines".
 */

export const WINDOW_MS = 1_000
export const DEFAULT_PER_WINDOW = 5
export const DEFAULT_MAX_KINDS = 64
export const OTHER_KIND = "other lines"

interface Bucket {
  windowStartMs: number
  printed: number
  held: number
}

export interface Limiter {
  readonly perWindow: number
  readonly maxKinds: number
  readonly kinds: Map<string, Bucket>
  /** Lines held back in total (a counter for the stats). */
  suppressed: number
}

export const make = (perWindow: number = DEFAULT_PER_WINDOW, maxKinds: number = DEFAULT_MAX_KINDS): Limiter => ({
  perWindow: Math.max(1, perWindow),
  maxKinds: Math.max(1, maxKinds),
  kinds: new Map(),
  suppressed: 0
})

/** The summary line for `held` lines of `kind` held back in the window that just ended. */
export const summaryLine = (kind: string, held: number): string => `${held} ${kind} in the last second (not logged one by one)`

/** Close the bucket's window if it is over, appending its summary to `out`. */
const roll = (kind: string, b: Bucket, nowMs: number, out: Array<string>): void => {
  if (nowMs - b.windowStartMs < WINDOW_MS) return
  if (b.held > 0) out.push(summaryLine(kind, b.held))
  b.windowStartMs = nowMs
  b.printed = 0
  b.held = 0
}

/**
 * May a line of `kind` be printed now? True for the first `perWindow` of a window; otherwise it is counted and false.
 * Summaries of windows that ended are appended to `out` (print them first).
 */
export const admit = (l: Limiter, kind: string, nowMs: number, out: Array<string>): boolean => {
  let k = kind
  let b = l.kinds.get(k)
  if (b === undefined) {
    if (l.kinds.size >= l.maxKinds) {
      k = OTHER_KIND
      b = l.kinds.get(k)
    }
    if (b === undefined) {
      b = { windowStartMs: nowMs, printed: 0, held: 0 }
      l.kinds.set(k, b)
    }
  }
  roll(k, b, nowMs, out)
  if (b.printed < l.perWindow) {
    b.printed++
    return true
  }
  b.held++
  l.suppressed++
  return false
}

/** Summaries of every window that has ended by `nowMs`; quiet kinds are forgotten (the table stays small). */
export const flush = (l: Limiter, nowMs: number, out: Array<string>): void => {
  for (const [k, b] of l.kinds) {
    roll(k, b, nowMs, out)
    if (b.printed === 0 && b.held === 0) l.kinds.delete(k)
  }
}
