/**
 * The connection's one exclusive timer (smoltcp `Timer`): at most one of retransmit, zero-window
 * probe (persist), keep-alive or close (TIME-WAIT) runs at a time. The delayed-ACK deadline is
 * separate (`Tcb.ackDelayAt`). Kinds are small integers so the Tcb keeps one hidden class.
 */
export const TimerKind = {
  Idle: 0,
  Retransmit: 1,
  Persist: 2,
  KeepAlive: 3,
  Close: 4
} as const
export type TimerKind = (typeof TimerKind)[keyof typeof TimerKind]

export const timerName = (k: TimerKind): string =>
  k === 0 ? "Idle" : k === 1 ? "Retransmit" : k === 2 ? "Persist" : k === 3 ? "KeepAlive" : "Close"

/** "No deadline" marker for numeric deadlines. */
export const NEVER = Number.POSITIVE_INFINITY

/** Where the timer lives (the Tcb's own fields, so the hot path reads no other object). */
export interface TimerState {
  timerKind: TimerKind
  timerAt: number
}

/** Run `kind`, due at `at` (replacing whatever ran). */
export const arm = (t: TimerState, kind: TimerKind, at: number): void => {
  t.timerKind = kind
  t.timerAt = at
}

/** Stop the timer. */
export const disarm = (t: TimerState): void => {
  t.timerKind = TimerKind.Idle
  t.timerAt = NEVER
}

/** The running timer (whatever its kind) is now due at `at`. */
export const rearm = (t: TimerState, at: number): void => {
  t.timerAt = at
}

/** Whether a timer runs and its deadline has come. */
export const due = (t: TimerState, now: number): boolean => t.timerKind !== TimerKind.Idle && now >= t.timerAt

/** The timer's deadline, NEVER when idle. */
export const deadline = (t: TimerState): number => (t.timerKind !== TimerKind.Idle ? t.timerAt : NEVER)
