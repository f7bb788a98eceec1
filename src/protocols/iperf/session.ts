/**
 * iperf 2 (2.1.8) TCP: what the server does with one accepted connection, as data (iperf-wire.md §A.4–§A.6).
 * Pure code: no Effect, no IO, no clock (time comes in as `nowMs`).
 *
 * ## How the shell uses this file
 *
 * 1. Feed the connection's bytes to `Wire.feedHeader` until it settles (see wire.ts).
 * 2. `const p = Session.plan(settings)`. Then, in this order:
 *    - `p.refuse !== undefined`: close the connection (count the reason). Nothing else.
 *    - `p.sendAck`: write `Wire.makeAck()` (28 bytes) before anything else on this socket. With `-X` the client
 *      blocks until it reads it, and never times out.
 *    - `p.sendHere`: start a `Sender` on this socket now (`-R`, `--full-duplex`). When it finishes, half-close
 *      (FIN) this socket; keep reading until the client's FIN, then close.
 *    - `p.connectBack?.when === "now"` (`-d`): connect to (the client's source IP, `p.connectBack.port`) at once and
 *      run a `Sender` on that new connection with `p.connectBack.send`; close it when the sender is done.
 *    - Always: read and discard (count) everything the client sends. On the client's FIN close this socket at
 *      once (`p.closeOnPeerFin`): the client measures its test up to our FIN and waits max(T, 2 s) for it.
 *    - `p.connectBack?.when === "afterClose"` (`-r`): after this connection is closed, connect back and send as
 *      above. With `-P k -r` each of the k connections makes one connect-back.
 *    - `p.receiveDeadlineMs` (time mode only): a safety limit for this connection counted from the header; the
 *      real server gives up at T + 2 s. Close the connection if the client has not finished by then.
 * 3. Connect-back connections carry **no header and no ack**: just `Pattern` bytes.
 *
 * ## Sending (`Sender`)
 * A sender is a tiny machine over `{ spec, startMs, sent }`: ask `nextWriteLen(s, nowMs, max)` for the size of the
 * next write (0 = finished: send FIN), write that many bytes from `Pattern.view(pattern, s.sent, n)`, then
 * `commit(s, n)` with the number the socket accepted. Amount mode never overshoots: the last write is trimmed
 * so exactly N bytes are sent. Time mode stops at the first write asked for at or after `startMs + durationMs`
 * (counted from when this sender starts, like the real server). `deadlineMs(s)` tells the shell when a time-mode
 * sender will be finished, to arm its timer.
 */
import type { AmountRepr, SettingsRepr } from "./wire.js"

// ---------------------------------------------------------------------------------------------------------------
// Client-side time limits (iperf-wire.md §A.4, §A.6): documentation for the shell and for tests. T = -t in ms.
// ---------------------------------------------------------------------------------------------------------------

/** After its FIN, the client waits for the server's FIN up to max(T, 2 s); its report ends at our FIN. */
export const clientFinWaitMs = (tMs: number): number => Math.max(tMs, 2_000)
/** `-r`: the client's listener gives up after T + 3 s with no connect-back, and reads a reverse stream ≤ T + 3 s. */
export const TRADEOFF_LISTENER_SLACK_MS = 3_000
/** `-d`: the same windows are T + 2 s. */
export const DUAL_LISTENER_SLACK_MS = 2_000
/** `-R`: the client stops reading at T + 2 s if the server has not closed. */
export const REVERSE_CLIENT_SLACK_MS = 2_000
/** The real server's own safety timer on a receiving connection in time mode: T + 2 s (`SLOPSECS`). */
export const SERVER_SLOP_MS = 2_000
/** The real server connected back about 1 ms after the first connection closed (`-r`) or the header (`-d`). */
export const CONNECT_BACK_DELAY_MS = 1
/** The 2.1.8 client's default write size, used when the header does not carry `-l` (128 KiB). */
export const DEFAULT_WRITE_LEN = 128 * 1024
/** Upper bound we accept for a client-given `-l` when sizing our writes (keeps buffers bounded). */
export const MAX_WRITE_LEN = 1024 * 1024

// ---------------------------------------------------------------------------------------------------------------
// The plan
// ---------------------------------------------------------------------------------------------------------------

/** How much to send: for `durationMs` from the sender's start, or exactly `bytes` bytes. */
export type SendSpec = AmountRepr

export interface ConnectBack {
  /** `now` (`-d`) or `afterClose` (`-r`: once this connection has been closed). */
  readonly when: "now" | "afterClose"
  /** TCP port on the client's source IP (the header's mPort). */
  readonly port: number
  readonly send: SendSpec
}

export type Refusal = "Bounceback" | "NoConnectBackPort"

export interface SessionPlan {
  readonly refuse: Refusal | undefined
  /** Write the 28-byte CLIENTHDRACK now, before any data. */
  readonly sendAck: boolean
  /** Send on this socket (`-R`, `--full-duplex`); then half-close, keep reading until the client's FIN. */
  readonly sendHere: SendSpec | undefined
  readonly connectBack: ConnectBack | undefined
  /** Close this socket as soon as the client's FIN arrives (always true). */
  readonly closeOnPeerFin: true
  /** Time mode: give up on this connection this long after the header (T + 2 s); undefined in amount mode. */
  readonly receiveDeadlineMs: number | undefined
  /** Size for our writes: the client's `-l` if it gave one (bounded), else 128 KiB. */
  readonly writeLen: number
  /** For the console: "(reverse)" / "(full-duplex)" / "" on the connection line. */
  readonly label: "" | "(reverse)" | "(full-duplex)"
}

/** Decide what to do for one accepted connection whose header (or lack of one) has been parsed. */
export const plan = (s: SettingsRepr): SessionPlan => {
  const writeLen = s.bufferLen > 0 ? Math.min(s.bufferLen, MAX_WRITE_LEN) : DEFAULT_WRITE_LEN
  const receiveDeadlineMs = s.amount.kind === "time" ? s.amount.durationMs + SERVER_SLOP_MS : undefined
  const base = {
    refuse: undefined,
    sendAck: s.needsAck,
    sendHere: undefined,
    connectBack: undefined,
    closeOnPeerFin: true as const,
    receiveDeadlineMs,
    writeLen,
    label: "" as const
  }
  switch (s.mode) {
    case "bounceback":
      return { ...base, sendAck: false, refuse: "Bounceback", receiveDeadlineMs: undefined }
    case "plain":
      return base
    case "reverse":
      return { ...base, sendHere: s.amount, label: "(reverse)" }
    case "fullDuplex":
      return { ...base, sendHere: s.amount, label: "(full-duplex)" }
    case "tradeoff":
    case "dual": {
      if (s.mPort === 0) return { ...base, refuse: "NoConnectBackPort" }
      return {
        ...base,
        connectBack: { when: s.mode === "dual" ? "now" : "afterClose", port: s.mPort, send: s.amount }
      }
    }
  }
}

/**
 * The client's own windows for the connect-back stream (§A.6), from the moment the client started: the shell can
 * use them to skip a connect-back that would arrive too late anyway. Amount mode: effectively unlimited.
 */
export const connectBackWindowMs = (s: SettingsRepr): number | undefined => {
  if (s.amount.kind !== "time") return undefined
  if (s.mode === "tradeoff") return s.amount.durationMs + TRADEOFF_LISTENER_SLACK_MS
  if (s.mode === "dual") return s.amount.durationMs + DUAL_LISTENER_SLACK_MS
  return undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Sender
// ---------------------------------------------------------------------------------------------------------------

export interface Sender {
  readonly spec: SendSpec
  readonly startMs: number
  /** Bytes handed to the socket so far (also the stream offset for `Pattern.view`). */
  sent: number
  /** Set once `nextWriteLen` returned 0. */
  finished: boolean
}

export const makeSender = (spec: SendSpec, startMs: number): Sender => ({ spec, startMs, sent: 0, finished: false })

/** When a time-mode sender ends (ms, same clock as `startMs`); undefined for amount mode. */
export const deadlineMs = (s: Sender): number | undefined =>
  s.spec.kind === "time" ? s.startMs + s.spec.durationMs : undefined

/**
 * Size of the next write, at most `max` (> 0); 0 when the sender is finished (then send FIN). Amount mode trims
 * the last write so the total is exactly `bytes`.
 */
export const nextWriteLen = (s: Sender, nowMs: number, max: number): number => {
  if (s.finished) return 0
  let n: number
  if (s.spec.kind === "bytes") {
    n = Math.min(max, s.spec.bytes - s.sent)
  } else {
    n = nowMs - s.startMs >= s.spec.durationMs ? 0 : max
  }
  if (n <= 0) {
    s.finished = true
    return 0
  }
  return n
}

/** Record that `n` bytes were accepted by the socket. */
export const commit = (s: Sender, n: number): void => {
  s.sent += n
}

// ---------------------------------------------------------------------------------------------------------------
// Pattern: the payload the server sends ('0123456789' repeated, as iperf's `pattern()`)
// ---------------------------------------------------------------------------------------------------------------

export interface Pattern {
  /** `'0' + (i % 10)` for i in 0 .. maxLen + 9. */
  readonly buf: Uint8Array
  readonly maxLen: number
}

/** One preallocated buffer; any view of up to `maxLen` bytes at any stream offset is a subarray of it. */
export const makePattern = (maxLen: number = MAX_WRITE_LEN): Pattern => {
  const buf = new Uint8Array(maxLen + 10)
  for (let i = 0; i < buf.length; i++) buf[i] = 0x30 + (i % 10)
  return { buf, maxLen }
}

/**
 * The `len` bytes of the pattern stream starting at stream offset `offset` (a view, no allocation, no copy):
 * consecutive views continue the digit sequence. `len` is clamped to `maxLen`.
 */
export const view = (p: Pattern, offset: number, len: number): Uint8Array => {
  const start = offset % 10
  return p.buf.subarray(start, start + Math.min(len, p.maxLen))
}
