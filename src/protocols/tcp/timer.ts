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
