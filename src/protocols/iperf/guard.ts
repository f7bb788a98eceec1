/**
 * Deadlines and return-path rules for iperf 2 sessions (design.md §7). Pure code: no Effect, no IO, no clock.
 *
 * ## Stall deadline (TCP sessions and connect-back streams)
 * A session makes progress when bytes arrive or, when we send, when TCP accepts bytes into its send buffer (a
 * peer that keeps a zero window stops that once the buffer is full). The shell keeps one monotonically growing
 * progress count per session (bytes in + bytes accepted) and calls `check` at the times `nextCheckMs` gives; no
 * progress for `limitMs` ends the session (`"Stalled"`). The check runs at most every CHECK_MS, so a stall is seen
 * between `limitMs` and `limitMs + CHECK_MS` after the last progress.
 *
 * ## Sending UDP to an address that has not shown it wants it (server-sent `-u -d`, `-u -r`)
 * A datagram's source address can be forged, so a request alone does not prove that its source wants our stream
 * (iperf 2.1.8 reflects one forged `-u -d` datagram into megabytes). The rule, after QUIC's anti-amplification limit
 * (RFC 9000 §8.1): we send a client at most AMPLIFICATION × the bytes its own stream brought us, and with `-u -d`,
 * whose client stream flows at the same time as ours, only while that stream keeps arriving (at most SILENCE_MS
 * without a datagram of it). A real client asks us to send at its own rate for its own time, so a legitimate
 * `-d` or `-r` test never meets the limit; one forged datagram of 1470 bytes buys 3 datagrams.
 * `-u -R` cannot be judged this way: the 2.1.8 client sends only its header datagram (repeated until our first
 * datagram arrives) and nothing after; it is bounded by the duration cap, one stream per address and ICMP errors.
 */

export const CHECK_MS = 1_000
/** Bytes we may send per byte received from the client's stream (QUIC uses 3). */
export const AMPLIFICATION = 3
/** `-u -d`: stop when the client's own stream has been silent this long. */
export const SILENCE_MS = 1_000

// ---------------------------------------------------------------------------------------------------------------
// Stall deadline
// ---------------------------------------------------------------------------------------------------------------

export interface Stall {
  readonly limitMs: number
  lastCount: number
  lastProgressMs: number
}

export const makeStall = (limitMs: number, nowMs: number): Stall => ({ limitMs, lastCount: 0, lastProgressMs: nowMs })

/** Look at the progress count at `nowMs`: "Stalled" when it has not grown for `limitMs`. */
export const check = (s: Stall, count: number, nowMs: number): "Ok" | "Stalled" => {
  if (count !== s.lastCount) {
    s.lastCount = count
    s.lastProgressMs = nowMs
    return "Ok"
  }
  return nowMs - s.lastProgressMs >= s.limitMs ? "Stalled" : "Ok"
}

/** When to look again (ms). */
export const nextCheckMs = (s: Stall, nowMs: number): number =>
  Math.max(nowMs + 1, Math.min(nowMs + CHECK_MS, s.lastProgressMs + s.limitMs))

// ---------------------------------------------------------------------------------------------------------------
// Return path of server-sent UDP
// ---------------------------------------------------------------------------------------------------------------

/** What the client's own stream has shown so far (kept up to date by the receive side). */
export interface ClientEvidence {
  /** Payload bytes of the client's stream received. */
  readonly bytes: number
  /** When its last datagram arrived (ms). */
  readonly lastMs: number
}

export type SendVerdict = "Ok" | "OverBudget" | "ClientSilent"

/**
 * May `len` more bytes go to the client now, having sent `sentBytes` so far? `live` (`-u -d`): its stream must still
 * be arriving.
 */
export const maySend = (e: ClientEvidence, sentBytes: number, len: number, live: boolean, nowMs: number): SendVerdict => {
  if (live && nowMs - e.lastMs > SILENCE_MS) return "ClientSilent"
  if (sentBytes + len > AMPLIFICATION * e.bytes) return "OverBudget"
  return "Ok"
}
