/**
 * iperf 2 (2.1.8) UDP in the server → client direction (`-u -r`, `-u -d`, `-u -R`; iperf-wire.md §B.4): what to
 * send, how fast, and how the stream ends. Pure code: no Effect, no IO, no clock. Time comes in as `nowMs`
 * (monotonic milliseconds, fractions allowed) for pacing, and as `wallUs` (wall-clock µs since the Unix epoch) for
 * the timestamps written into datagrams, because the receiver's jitter compares them with its own wall clock.
 *
 * ## How the shell uses this file
 *
 * ```ts
 * const plan = UdpSend.planSend(settings)             // once per stream, from the client's header
 * if (plan._tag === "Refused") { log plan.reason; stop }   // plan.clamped lists what was clamped (log it)
 * const s = UdpSend.makeSender(plan, nowMs)
 * const dgram = UdpSend.makeDatagram(plan.datagramLen)       // preallocated: pattern + prefix slot
 * // data phase, one fiber per stream, woken about every millisecond:
 * for (;;) {
 *   const n = UdpSend.due(s, nowMs, MAX_BURST)        // datagrams due now (token bucket over elapsed time)
 *   for (k < n) { const len = UdpSend.stampNext(s, dgram, wallUs); send dgram[0..len] }   // advances s
 *   if (UdpSend.dataDone(s, nowMs)) break
 *   sleep(UdpSend.sleepMs(s, nowMs))                  // ≥ TICK_MS: the event loop gets its turn between bursts
 * }
 * // end of stream: the negated next sequence, repeated until the receiver's report arrives (bounded):
 * while (UdpSend.finDue(s)) { len = UdpSend.stampFin(s, dgram, wallUs); send; wait(UdpSend.finWaitMs(s)) or a reply }
 * // a reply of ≥ 128 bytes from the receiver: UdpSend.onReply(s, payload, nowMs) → the report (Udp.parseServerReport)
 * // then keep the port open while UdpSend.lingerMs(s, nowMs) > 0 (the receiver may repeat its report)
 * ```
 *
 * ## Pacing
 * Datagram k (counting from a base, 0 at the start) is due at `baseMs + k × intervalMs`, with `intervalMs` =
 * datagram bits / rate (or 1000 / rate in packets-per-second mode). `due` counts every datagram whose time has
 * come, so a late wake-up (timer granularity, a busy event loop) is made up by a larger burst, as the real sender's
 * running delay does; the backlog is bounded: past `backlogLimit` late datagrams (20 ms worth, at least 8) the
 * base is moved to now and the skipped datagrams are counted (`s.skipped`) instead of being sent in one flood.
 * Time mode sends while `nowMs < start + duration` (like the real client's `InProgress`); amount mode sends
 * exactly the asked number of bytes (the last datagram shortened, never below the 16-byte prefix).
 */
import * as Udp from "./udp.js"
import type { SettingsRepr } from "./wire.js"
import { UPPER_UNITS_PPS } from "./wire.js"

// ---------------------------------------------------------------------------------------------------------------
// Limits and defaults
// ---------------------------------------------------------------------------------------------------------------

/** The 2.1.8 client's default `-b` for UDP: 1 Mbit/s read with M = 2^20 (iperf-wire.md §B.1, `lRate` 0x00100000). */
export const DEFAULT_RATE_BPS = 1_048_576
/** The 2.1.8 client's default UDP datagram (`-l`): 1470 bytes. */
export const DEFAULT_DATAGRAM_LEN = 1470
/** A datagram holds at least the sequence/timestamp prefix. */
export const MIN_DATAGRAM_LEN = Udp.PREFIX_LEN
/** The largest UDP payload over IPv4. */
export const MAX_DATAGRAM_LEN = 65_507
/** Rates above this are clamped: no link here carries more, and the backlog cap already makes "faster" harmless. */
export const MAX_RATE_BPS = 10_000_000_000
/** Packets-per-second mode (`-b 1000pps`): the same ceiling in datagrams. */
export const MAX_RATE_PPS = 10_000_000
/** Tests (time or implied by bytes/rate) longer than this are refused: one datagram must not start hours of sending. */
export const MAX_DURATION_MS = 3_600_000
/** The shell's pacing tick: it never sleeps less than this between bursts. */
export const TICK_MS = 1
/**
 * At most this many datagrams per burst (one burst per wake-up, wake-ups ≥ TICK_MS apart): 256 × 1470 bytes per
 * millisecond is about 3 Gbit/s, well above what a 1 ms timer has to sustain for `-b 500M` (43 per ms).
 */
export const MAX_BURST = 256
/** …and at most this many bytes (big `-l` datagrams are IP-fragmented: 256 × 64 KiB in one go would stall the loop). */
export const MAX_BURST_BYTES = 512 * 1024
/**
 * Late datagrams beyond this much sending time (and beyond MIN_BACKLOG datagrams) are skipped and counted, not
 * sent in one flood after a stall.
 */
export const MAX_BACKLOG_MS = 20
export const MIN_BACKLOG = 8
/**
 * End of stream: the final datagram is repeated until the receiver's report arrives, first after 10 ms, each wait
 * twice the one before up to 250 ms, at most 12 times in all (about 2.1 s, the real client's budget of 200 × 10 ms).
 * Why not the real client's fixed 10 ms: the 2.1.8 listener answers every datagram that reaches it after its report
 * with another report and gives up ("WARNING: ack of last datagram failed") after 9 such rounds without 250 ms of
 * silence (iperf2 `write_UDP_AckFIN`). It answered 12-15 ms after the final datagram here (so a second final is
 * usual); with fixed 10 ms repeats a listener delayed by 100 ms would meet 10 of them. Backing off keeps the count
 * small (5 for a 300 ms delay). (The e2e flake with that warning turned out to be another cause, see `lingerMs`.)
 */
export const FIN_RETRY_MS = 10
export const FIN_RETRY_MAX_MS = 250
export const FIN_MAX_SENDS = 12
/** After the report: close our port only after this much silence from the receiver (its resends wait 250 ms)… */
export const REPLY_LINGER_MS = 500
/** …but never later than this after the report. */
export const LINGER_MAX_MS = 3_000
/** A reply shorter than this is not a report (the receiver's report is 128 bytes, iperf-wire.md §B.3). */
export const REPORT_MIN_LEN = Udp.REPORT_LEN

// ---------------------------------------------------------------------------------------------------------------
// The plan: what the client's header asks for, bounded
// ---------------------------------------------------------------------------------------------------------------

export type SendLimit =
  | { readonly kind: "time"; readonly durationMs: number }
  | { readonly kind: "bytes"; readonly bytes: number }

export type Clamp = "RateDefaulted" | "RateClamped" | "LengthRaised" | "LengthClamped" | "DurationCapped"
export type SendRefusal = "DurationTooLong" | "ZeroDuration"

export interface SendPlan {
  readonly _tag: "Plan"
  /** Bits per second, or datagrams per second when `pps`. */
  readonly rate: number
  readonly pps: boolean
  readonly datagramLen: number
  readonly limit: SendLimit
  /** The data phase ends this long after it started whatever the limit says (the server's cap; Infinity: none). */
  readonly capMs: number
  /** Milliseconds between datagrams (fractional). */
  readonly intervalMs: number
  /** What was changed from the client's request (for the log), empty when nothing was. */
  readonly clamped: ReadonlyArray<Clamp>
}

export interface Refused {
  readonly _tag: "Refused"
  readonly reason: SendRefusal
}

export interface SendRequest {
  /** `-b` as the header carries it: bits per second (0 = not given), or datagrams per second with `pps`. */
  readonly rate: number
  readonly pps: boolean
  /** The client's `-l` (0 = not given). */
  readonly bufferLen: number
  readonly limit: SendLimit
}

/** The request a UDP settings header makes for the server's sending stream. */
export const requestOf = (s: SettingsRepr): SendRequest => ({
  rate: s.rate,
  pps: (s.upperFlags & UPPER_UNITS_PPS) !== 0,
  bufferLen: s.bufferLen,
  limit: s.amount.kind === "time" ? { kind: "time", durationMs: s.amount.durationMs } : { kind: "bytes", bytes: s.amount.bytes }
})

/**
 * Bound a request. Clamped (and listed in `clamped`): a rate of 0 → 1 Mbit/s (the client's default); a rate over
 * the ceiling → the ceiling; a datagram length under 16 → 16, over 65507 → 65507. Refused: a duration (given, or
 * implied by bytes at the rate) over one hour, and a time-mode duration of 0.
 */
export const plan = (r: SendRequest, capMs: number = Infinity): SendPlan | Refused => {
  const clamped: Array<Clamp> = []
  let rate = Number.isFinite(r.rate) ? r.rate : 0
  if (rate <= 0) {
    rate = r.pps ? DEFAULT_RATE_BPS / (8 * DEFAULT_DATAGRAM_LEN) : DEFAULT_RATE_BPS
    clamped.push("RateDefaulted")
  }
  const max = r.pps ? MAX_RATE_PPS : MAX_RATE_BPS
  if (rate > max) {
    rate = max
    clamped.push("RateClamped")
  }
  let len = r.bufferLen > 0 ? r.bufferLen : DEFAULT_DATAGRAM_LEN
  if (len < MIN_DATAGRAM_LEN) {
    len = MIN_DATAGRAM_LEN
    clamped.push("LengthRaised")
  } else if (len > MAX_DATAGRAM_LEN) {
    len = MAX_DATAGRAM_LEN
    clamped.push("LengthClamped")
  }
  const intervalMs = r.pps ? 1000 / rate : (len * 8 * 1000) / rate
  if (r.limit.kind === "time") {
    if (r.limit.durationMs <= 0) return { _tag: "Refused", reason: "ZeroDuration" }
    if (r.limit.durationMs > MAX_DURATION_MS) return { _tag: "Refused", reason: "DurationTooLong" }
  } else if (Math.ceil(r.limit.bytes / len) * intervalMs > MAX_DURATION_MS) {
    return { _tag: "Refused", reason: "DurationTooLong" }
  }
  // the server's cap: a longer test is cut to it (logged), a byte count gets it as a time limit
  let limit = r.limit
  if (limit.kind === "time" && limit.durationMs > capMs) {
    limit = { kind: "time", durationMs: capMs }
    clamped.push("DurationCapped")
  } else if (limit.kind === "bytes" && Math.ceil(limit.bytes / len) * intervalMs > capMs) clamped.push("DurationCapped")
  return { _tag: "Plan", rate, pps: r.pps, datagramLen: len, limit, capMs, intervalMs, clamped }
}

/** `plan(requestOf(settings), capMs)`. */
export const planSend = (s: SettingsRepr, capMs: number = Infinity): SendPlan | Refused => plan(requestOf(s), capMs)

// ---------------------------------------------------------------------------------------------------------------
// The datagram
// ---------------------------------------------------------------------------------------------------------------

/**
 * A datagram buffer of `len` bytes: a zeroed 16-byte prefix slot, then iperf's payload pattern, byte i being the
 * digit `'0' + i % 10` (observed from the real 2.1.8 server: byte 16 is '6', byte 1469 is '9'; no settings header).
 * Allocate once per stream; `stampNext`/`stampFin` rewrite only the prefix.
 */
export const makeDatagram = (len: number): Uint8Array => {
  const b = new Uint8Array(len)
  for (let i = 0; i < len; i++) b[i] = 0x30 + (i % 10)
  b.fill(0, 0, Math.min(len, Udp.PREFIX_LEN))
  return b
}

/** Write sequence and wall-clock timestamp (µs since the epoch) into the prefix, as the real sender does. */
export const stamp = (b: Uint8Array, seq: number, wallUs: number): void => {
  const sec = Math.floor(wallUs / 1_000_000)
  Udp.emitDatagramPrefix(b, seq, sec, Math.floor(wallUs - sec * 1_000_000))
}

// ---------------------------------------------------------------------------------------------------------------
// The sender
// ---------------------------------------------------------------------------------------------------------------

export interface UdpSender {
  readonly plan: SendPlan
  readonly startMs: number
  /** Pacing base: datagram number `baseCount` was due at `baseMs`. */
  baseMs: number
  baseCount: number
  /** Data datagrams sent, and their payload bytes. */
  sent: number
  bytes: number
  /** The next sequence number (the first data datagram is 1). */
  nextSeq: number
  /** Datagrams skipped because the sender fell more than MAX_BACKLOG_MS behind. */
  skipped: number
  /** When the data phase ended (ms), -1 before. */
  endMs: number
  /** Final (negative-sequence) datagrams sent. */
  finSends: number
  /** The receiver's report once it arrived, and when (ms; -1 before). */
  report: Udp.ServerReportRepr | undefined
  reportMs: number
  /** When the receiver last sent anything (ms; -1 before). */
  lastReplyMs: number
  /** Replies that were not a report (too short, unparsable). */
  badReplies: number
}

export const makeSender = (p: SendPlan, nowMs: number): UdpSender => ({
  plan: p,
  startMs: nowMs,
  baseMs: nowMs,
  baseCount: 0,
  sent: 0,
  bytes: 0,
  nextSeq: 1,
  skipped: 0,
  endMs: -1,
  finSends: 0,
  report: undefined,
  reportMs: -1,
  lastReplyMs: -1,
  badReplies: 0
})

/** Bytes of the next data datagram (amount mode trims the last one), 0 when nothing is left to send. */
export const nextLen = (s: UdpSender): number => {
  const p = s.plan
  if (p.limit.kind === "time") return p.datagramLen
  const left = p.limit.bytes - s.bytes
  if (left <= 0) return 0
  return Math.max(MIN_DATAGRAM_LEN, Math.min(p.datagramLen, left))
}

/** Is the data phase over at `nowMs` (time: at or past start + duration; bytes: all sent)? Records the end. */
export const dataDone = (s: UdpSender, nowMs: number): boolean => {
  if (s.endMs >= 0) return true
  const p = s.plan
  const over = (p.limit.kind === "time" ? nowMs >= s.startMs + p.limit.durationMs : nextLen(s) === 0) || nowMs >= s.startMs + p.capMs
  if (over) s.endMs = nowMs
  return over
}

/**
 * How many data datagrams to send now (at most `maxBurst`, and at most MAX_BURST_BYTES). Counts every datagram whose due time has come since
 * the pacing base; a backlog over `backlogLimit` moves the base to `nowMs` (the skipped ones are counted).
 */
export const due = (s: UdpSender, nowMs: number, maxBurst: number = MAX_BURST): number => {
  if (dataDone(s, nowMs)) return 0
  const p = s.plan
  const elapsed = nowMs - s.baseMs
  if (elapsed < 0) return 0
  let n = Math.floor(elapsed / p.intervalMs) + 1 - (s.sent - s.baseCount)
  if (n <= 0) return 0
  const backlog = backlogLimit(p)
  if (n > backlog) {
    s.skipped += n - 1
    s.baseMs = nowMs
    s.baseCount = s.sent
    n = 1
  }
  if (p.limit.kind === "bytes") {
    const left = Math.ceil((p.limit.bytes - s.bytes) / p.datagramLen)
    if (n > left) n = left
  }
  const byBytes = Math.max(1, Math.floor(MAX_BURST_BYTES / p.datagramLen))
  return Math.max(0, Math.min(n, maxBurst, byBytes))
}

/** The most late datagrams `due` will send in a row before it skips ahead. */
export const backlogLimit = (p: SendPlan): number => Math.max(MIN_BACKLOG, Math.ceil(MAX_BACKLOG_MS / p.intervalMs))

/** When the next data datagram is due (ms). */
export const nextDueMs = (s: UdpSender): number => s.baseMs + (s.sent - s.baseCount) * s.plan.intervalMs

/**
 * How long the shell sleeps before the next burst, in whole milliseconds (what timers offer): the time to the next
 * due datagram or to the end of a time-mode test, rounded up, but never less than TICK_MS (a sender that is behind
 * catches up with a larger burst, not by spinning).
 */
export const sleepMs = (s: UdpSender, nowMs: number): number => {
  let next = nextDueMs(s)
  if (s.plan.limit.kind === "time") next = Math.min(next, s.startMs + s.plan.limit.durationMs)
  next = Math.min(next, s.startMs + s.plan.capMs)
  return Math.max(TICK_MS, Math.ceil(next - nowMs))
}

/**
 * Prepare the next data datagram in `b` (from `makeDatagram`): its sequence and timestamp. Returns its length
 * (send `b[0..len]`) and counts it as sent.
 */
export const stampNext = (s: UdpSender, b: Uint8Array, wallUs: number): number => {
  const len = nextLen(s)
  if (len === 0) return 0
  stamp(b, s.nextSeq, wallUs)
  s.nextSeq += 1
  s.sent += 1
  s.bytes += len
  return len
}

/** How long to wait for the report after the latest final datagram (10, 20, 40, … ms, at most 250). */
export const finWaitMs = (s: UdpSender): number =>
  Math.min(FIN_RETRY_MAX_MS, FIN_RETRY_MS * 2 ** Math.max(0, Math.min(s.finSends - 1, 10)))

/** Should another final datagram go out (no report yet, fewer than FIN_MAX_SENDS sent)? */
export const finDue = (s: UdpSender): boolean => s.report === undefined && s.finSends < FIN_MAX_SENDS

/**
 * Prepare a final datagram in `b`: the negated next sequence, one more negative on every repeat (as the real client
 * does, so the receiver never sees a repeated final as out of order). Returns the length to send (the full datagram).
 */
export const stampFin = (s: UdpSender, b: Uint8Array, wallUs: number): number => {
  stamp(b, -s.nextSeq, wallUs)
  s.nextSeq += 1
  s.finSends += 1
  return s.plan.datagramLen
}

export type ReplyOutcome = "Report" | "NotAReport" | "Duplicate"

/** A datagram from the receiver (its address and port) at `nowMs`: the first report ends the stream. */
export const onReply = (s: UdpSender, payload: Uint8Array, nowMs: number): ReplyOutcome => {
  s.lastReplyMs = nowMs
  if (s.report !== undefined) return "Duplicate"
  if (payload.length < REPORT_MIN_LEN) {
    s.badReplies += 1
    return "NotAReport"
  }
  const r = Udp.parseServerReport(payload)
  if (typeof r === "string") {
    s.badReplies += 1
    return "NotAReport"
  }
  s.report = r
  s.reportMs = nowMs
  return "Report"
}

/**
 * After the report, keep our port open until the receiver has been quiet for REPLY_LINGER_MS (at most
 * LINGER_MAX_MS after the report). The 2.1.8 listener answers every final datagram that reaches it after its
 * report with another report; if our port were closed by then, our ICMP port-unreachable makes its next read fail
 * with ECONNREFUSED and it prints "WARNING: ack of last datagram failed" (seen in e2e runs when its first report
 * came more than 10 ms after our first final datagram, so that a second one was on its way).
 * Returns how long to wait still (0 = close now).
 */
export const lingerMs = (s: UdpSender, nowMs: number): number => {
  if (s.report === undefined || nowMs - s.reportMs >= LINGER_MAX_MS) return 0
  return Math.max(0, Math.min(s.lastReplyMs + REPLY_LINGER_MS, s.reportMs + LINGER_MAX_MS) - nowMs)
}

/** Seconds of the data phase (start to end, or to `nowMs` while running). */
export const elapsedS = (s: UdpSender, nowMs: number): number => ((s.endMs >= 0 ? s.endMs : nowMs) - s.startMs) / 1000
