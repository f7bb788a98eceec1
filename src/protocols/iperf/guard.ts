/**
 * Deadlines and return-path rules for iperf 2 sessions (design.md §7). Pure code: no Effect, no IO, no clock.
 *
 * ## Stall deadline (TCP sessions and connect-back streams)
 * A session makes progress when bytes arrive or, when we send, when TCP accepts bytes into its send buffer (a
 * peer that keeps a zero window stops that once the buffer is full). The shell keeps one monotonically growing
 * progress count per session (bytes in + bytes accepted) and calls `check` at the times `nextCheckMs` gives; no
 * progress for `limitMs` ends the session (`"Stalled"`). The check runs at most every CHECK_MS, so a stall is seen
 * between `limitMs` and `limitMs + CHECK_MS` after the last progress.
 * A rate-limited TCP client (iperf 2.1.8 `-b`, iperf3 `-b`) writes whole buffers in bursts, one every
 * `len × 8 / rate` seconds (128 KiB at 80 kbit/s: 13 s), so its limit is `stallLimitMs`: at least two such gaps.
 *
 * ## Sending UDP to an address that has not shown it wants it (server-sent `-u -d`, `-u -r`)
 * A datagram's source address can be forged, so a request alone does not prove that its source wants our stream
 * (iperf 2.1.8 reflects one forged `-u -d` datagram into megabytes). The rule, after QUIC's anti-amplification limit
 * (RFC 9000 §8.1): we send a client at most AMPLIFICATION × the bytes its own stream brought us, and with `-u -d`,
 * whose client stream flows at the same time as ours, only while that stream keeps arriving (at most SILENCE_MS
 * without a datagram of it). A real client asks us to send at its own rate for its own time, so a legitimate
 * `-d` or `-r` test never meets the limit; one forged datagram of 1470 bytes buys 3 datagrams.
 * "Silent" is relative to the client's own pace (`silenceMs`): at least SILENCE_MS and 3 inter-datagram gaps, so
 * `-u -d -b 8k` (1470 bytes every 1.47 s) is not cut after its first datagram.
 * `-u -R` cannot be judged this way: the 2.1.8 client sends only its header datagram (repeated until our first
 * datagram arrives) and nothing after; it is bounded by the duration cap, the streams per address and ICMP errors.
 */

export const CHECK_MS = 1_000
/** Bytes we may send per byte received from the client's stream (QUIC uses 3). */
export const AMPLIFICATION = 3
/** `-u -d`: stop when the client's own stream has been silent this long (at least; see `silenceMs`). */
export const SILENCE_MS = 1_000
/** `silenceMs`: this many of the client's inter-datagram gaps. */
export const SILENCE_GAPS = 3
/** `stallLimitMs`: this many of a rate-limited client's write gaps. */
export const STALL_GAPS = 2
/** `stallLimitMs` raises a limit to at most this (a header asking for 1 bit/s must not buy a silent month). */
export const MAX_STALL_LIMIT_MS = 600_000

// ---------------------------------------------------------------------------------------------------------------
// Stall deadline
// ---------------------------------------------------------------------------------------------------------------

export interface Stall {
  /** Raised once the client's header says it writes slowly (`stallLimitMs`). */
  limitMs: number
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

/**
 * The stall limit of a session whose client writes `lenBytes` at a time at `rateBps` bit/s (0 or less: not
 * rate-limited): `stallMs`, raised to STALL_GAPS write gaps (`lenBytes × 8 / rateBps` s each) when that is longer,
 * but by this rule to no more than MAX_STALL_LIMIT_MS.
 */
export const stallLimitMs = (stallMs: number, rateBps: number, lenBytes: number): number =>
  rateBps > 0 && lenBytes > 0 && Number.isFinite(rateBps) && Number.isFinite(lenBytes)
    ? Math.max(stallMs, Math.min(MAX_STALL_LIMIT_MS, Math.ceil((STALL_GAPS * lenBytes * 8 * 1000) / rateBps)))
    : stallMs

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
  /** When its last datagram arrived (ms, on the same clock as `maySend`'s `nowMs`). */
  readonly lastMs: number
}

/**
 * How long the client's own stream (`-u -d`) may be silent before we stop ours: SILENCE_MS, or SILENCE_GAPS of its
 * inter-datagram gaps when longer. `intervalMs` is the gap its header asks for (rate and length, bit/s or pps).
 */
export const silenceMs = (intervalMs: number): number =>
  Number.isFinite(intervalMs) && intervalMs > 0 ? Math.max(SILENCE_MS, SILENCE_GAPS * intervalMs) : SILENCE_MS

export type SendVerdict = "Ok" | "OverBudget" | "ClientSilent"

/**
 * May `len` more bytes go to the client now, having sent `sentBytes` so far? `live` (`-u -d`): its stream must still
 * be arriving: no datagram of it for more than `silentAfterMs` (`silenceMs`) is "ClientSilent".
 */
export const maySend = (
  e: ClientEvidence, sentBytes: number, len: number, live: boolean, nowMs: number, silentAfterMs: number = SILENCE_MS
): SendVerdict => {
  if (live && nowMs - e.lastMs > silentAfterMs) return "ClientSilent"
  if (sentBytes + len > AMPLIFICATION * e.bytes) return "OverBudget"
  return "Ok"
}

// ---------------------------------------------------------------------------------------------------------------
// The UDP receive-stream table when it is full
// ---------------------------------------------------------------------------------------------------------------

/** An entry with fewer datagrams than this has not proven it is a client (any forged source port makes one). */
export const PROVEN_DATAGRAMS = 8
/** Entries one source address may hold; a further new one evicts that source's own (`pickVictim` over them). */
export const MAX_STREAMS_PER_SOURCE = 16

/** What the eviction rule looks at in an entry of the receive-stream table. */
export interface TableEntry {
  readonly datagrams: number
  readonly lastMs: number
  /** It feeds a stream we send (`-u -d` evidence, an active `-u -R`): evicted only when nothing else can go. */
  readonly feedsSender: boolean
}

const evictRank = (e: TableEntry): number => (e.feedsSender ? 2 : e.datagrams >= PROVEN_DATAGRAMS ? 1 : 0)

/**
 * The entry to forget to make room: the least proven first (fewer than PROVEN_DATAGRAMS datagrams, then proven
 * ones, an entry feeding a sending stream last), the idlest among equals. Forged new keys, however many per
 * inter-datagram gap, then evict each other, not a client whose stream has shown PROVEN_DATAGRAMS datagrams.
 */
export const pickVictim = <K>(entries: Iterable<readonly [K, TableEntry]>): K | undefined => {
  let best: K | undefined
  let bestEntry: TableEntry | undefined
  for (const [k, e] of entries) {
    if (bestEntry === undefined) {
      best = k
      bestEntry = e
      continue
    }
    const a = evictRank(e)
    const b = evictRank(bestEntry)
    if (a < b || (a === b && e.lastMs < bestEntry.lastMs)) {
      best = k
      bestEntry = e
    }
  }
  return best
}
