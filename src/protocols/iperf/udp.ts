/**
 * iperf 2 (2.1.8) UDP (`iperf -u`): the datagram prefix, the server's per-stream accounting, and the 128-byte
 * server report (iperf-wire.md §B). Pure code: no Effect, no IO, no clock. Times come in as integer
 * **microseconds of wall-clock time since the Unix epoch** (`nowUs`): the client stamps each datagram with its own
 * wall clock and iperf's jitter compares the two, so a monotonic clock with another origin would distort it.
 *
 * ## How the shell uses this file
 *
 * ```ts
 * // a datagram from a new (ip, port) starts a stream:
 * const settings = Wire.decodeUdpSettings(payload)           // header at offset 16, once per stream
 * const st = Udp.makeStream(isDrop(settings) ? false : settings.seqNo64)
 * // every datagram of that stream (the first one too):
 * const out = Udp.onPayload(st, payload, nowUs)   // = parseDatagram + onDatagram, without allocating
 * switch (out) {
 *   case "Truncated": case "Malformed": count the drop; break
 *   case "Data": break
 *   case "Final":        // first end-of-stream datagram: send the report to the client's (ip, port)
 *     Udp.emitServerReport(Udp.report(st), reportBuf)          // reportBuf: 128 bytes, reusable
 *     send reportBuf; Udp.noteReportSent(st, nowMs)
 *     break
 *   case "AfterFinal":   // the client resent its final datagram: our report was probably lost
 *     if (Udp.shouldResend(st)) { send reportBuf again; Udp.noteReportSent(st, nowMs) }
 * }
 * // forget the stream when Udp.isSettled(st, nowMs) (250 ms of silence after the last report sent, or 9 sends)
 * ```
 * Send nothing else to the client's port: it takes any datagram after its final one as the report.
 *
 * ## Accounting (iperf2 `reporter_handle_packet_server_udp`, `reporter_handle_packet_oneway_transit`)
 * For each datagram with p = |sequence| > 0 (sequence 0 is ignored, as the real server's reporter does):
 * bytes += payload length; datagrams += 1; if p ≠ last+1: p < last+1 → outOfOrder += 1, else lost += p−last−1;
 * last = max(last, p). transit = arrival − sent (seconds, as iperf's `TimeDifference`); D = |transit − prevTransit|
 * with prevTransit starting at **0**; jitter += (D − jitter)/16. Transit min/max/sum/mean/m2 are kept (Welford) for
 * the report's extension. The end-of-stream datagram is counted like the others.
 * Report: bytes; duration = last arrival − first arrival; lost = max(0, lost − outOfOrder); outOfOrder;
 * datagrams = highest sequence; jitter (0 when only one datagram arrived).
 */
import { u32, i32, setU32 } from "../bytes.js"

export const PREFIX_LEN = 16
export const REPORT_LEN = 128
/** Report flags: VERSION1 | SEQNO64B (the real server adds EXTEND 0x40000000 only with `-e`). */
export const REPORT_FLAGS = 0x88000000
export const REPORT_FLAG_EXTEND = 0x40000000
/** The real server waits this long for silence after each report it sends… */
export const REPORT_SILENCE_MS = 250
/** …and sends it at most this many times (`TRYCOUNT` 10, `while (--count)`). */
export const REPORT_MAX_SENDS = 9

const F = { ID: 0, SEC: 4, USEC: 8, ID2: 12 } as const

/** Report offsets (from the start of the 128-byte datagram; 0..15 is the zeroed sequence/timestamp slot). */
const R = {
  FLAGS: 16,
  TOTAL_LEN1: 20,
  TOTAL_LEN2: 24,
  STOP_SEC: 28,
  STOP_USEC: 32,
  ERROR_CNT: 36,
  OUTORDER_CNT: 40,
  DATAGRAMS: 44,
  JITTER1: 48,
  JITTER2: 52,
  MIN_TRANSIT: 56,
  MAX_TRANSIT: 64,
  SUM_TRANSIT: 72,
  MEAN_TRANSIT: 80,
  M2_TRANSIT: 88,
  VD_TRANSIT: 96,
  CNT_TRANSIT: 104,
  CNT_IPG: 108,
  IPG_SUM: 112,
  ERROR_CNT2: 116,
  OUTORDER_CNT2: 120,
  DATAGRAMS2: 124
} as const

// ---------------------------------------------------------------------------------------------------------------
// Datagram prefix
// ---------------------------------------------------------------------------------------------------------------

export interface DatagramRepr {
  /** Signed sequence number (negative = end of stream, its magnitude is the next sequence). */
  readonly seq: number
  readonly sec: number
  readonly usec: number
}

/**
 * Parse the 16-byte prefix. With `seqNo64` (HEADER_SEQNO64B, every 2.1.8 client) the sequence is the signed
 * 64-bit (id2 << 32 | id); otherwise the signed 32-bit id. A 64-bit sequence beyond ±2^53 cannot be
 * represented exactly and is dropped as `Malformed`.
 */
export const parseDatagram = (b: Uint8Array, seqNo64: boolean): DatagramRepr | "Truncated" | "Malformed" => {
  if (b.length < PREFIX_LEN) return "Truncated"
  let seq: number
  if (seqNo64) {
    const hi = i32(b, F.ID2)
    if (hi >= 0x200000 || hi < -0x200000) return "Malformed"
    seq = hi * 0x1_0000_0000 + u32(b, F.ID)
  } else {
    seq = i32(b, F.ID)
  }
  return { seq, sec: u32(b, F.SEC), usec: u32(b, F.USEC) }
}

/** Write the 16-byte prefix (for a server that sends UDP, and for tests). `seq` must be within ±2^53. */
export const emitDatagramPrefix = (b: Uint8Array, seq: number, sec: number, usec: number): void => {
  const hi = Math.floor(seq / 0x1_0000_0000)
  const lo = seq - hi * 0x1_0000_0000
  setU32(b, F.ID, lo >>> 0)
  setU32(b, F.SEC, sec >>> 0)
  setU32(b, F.USEC, usec >>> 0)
  setU32(b, F.ID2, hi >>> 0)
}

// ---------------------------------------------------------------------------------------------------------------
// Per-stream accounting
// ---------------------------------------------------------------------------------------------------------------

export interface UdpStream {
  readonly seqNo64: boolean
  /** Highest |sequence| seen (iperf's `PacketID`). */
  packetId: number
  lost: number
  outOfOrder: number
  /** Datagrams accounted (including the final one). */
  datagrams: number
  bytes: number
  /** Seconds. */
  jitter: number
  lastTransit: number
  /** Arrival of the first accounted datagram, µs; -1 before. */
  firstArrivalUs: number
  lastArrivalUs: number
  // transit mean/min/max (seconds), Welford
  transitCnt: number
  transitMin: number
  transitMax: number
  transitSum: number
  transitMean: number
  transitM2: number
  transitVd: number
  /** Set by the first end-of-stream datagram. */
  finished: boolean
  reportSends: number
  lastReportMs: number
}

export const makeStream = (seqNo64: boolean): UdpStream => ({
  seqNo64,
  packetId: 0,
  lost: 0,
  outOfOrder: 0,
  datagrams: 0,
  bytes: 0,
  jitter: 0,
  lastTransit: 0,
  firstArrivalUs: -1,
  lastArrivalUs: 0,
  transitCnt: 0,
  transitMin: 0,
  transitMax: 0,
  transitSum: 0,
  transitMean: 0,
  transitM2: 0,
  transitVd: 0,
  finished: false,
  reportSends: 0,
  lastReportMs: 0
})

/**
 * - `Data`: accounted.
 * - `Ignored`: sequence 0 (not accounted, as in iperf).
 * - `Final`: the first end-of-stream datagram (accounted): send the report now.
 * - `AfterFinal`: anything after that (not accounted): the client did not get our report; resend it.
 */
export type DatagramOutcome = "Data" | "Ignored" | "Final" | "AfterFinal"

/** Account one datagram of `payloadLen` bytes (the UDP payload length) that arrived at `nowUs`. */
export const onDatagram = (st: UdpStream, d: DatagramRepr, payloadLen: number, nowUs: number): DatagramOutcome => {
  if (st.finished) return "AfterFinal"
  const isFinal = d.seq < 0
  const p = isFinal ? -d.seq : d.seq
  if (p === 0) return "Ignored"
  if (st.firstArrivalUs < 0) st.firstArrivalUs = nowUs
  st.lastArrivalUs = nowUs
  st.bytes += payloadLen
  st.datagrams += 1
  if (p !== st.packetId + 1) {
    if (p < st.packetId + 1) st.outOfOrder += 1
    else st.lost += p - st.packetId - 1
  }
  if (p > st.packetId) st.packetId = p
  // transit, as iperf's TimeDifference(packetTime, sentTime): whole-second difference + µs difference / 1e6
  const arrSec = Math.floor(nowUs / 1_000_000)
  const arrUsec = nowUs - arrSec * 1_000_000
  const transit = arrSec - d.sec + (arrUsec - d.usec) / 1_000_000
  let delta = transit - st.lastTransit
  if (delta < 0) delta = -delta
  st.jitter += (delta - st.jitter) / 16.0
  st.lastTransit = transit
  updateTransit(st, transit)
  if (isFinal) {
    st.finished = true
    return "Final"
  }
  return "Data"
}

/**
 * Hot path for the shell: parse the prefix of a whole UDP payload and account it, without allocating.
 * Same result as `parseDatagram` + `onDatagram(st, d, payload.length, nowUs)`.
 */
export const onPayload = (st: UdpStream, payload: Uint8Array, nowUs: number): DatagramOutcome | "Truncated" | "Malformed" => {
  if (payload.length < PREFIX_LEN) return "Truncated"
  let seq: number
  if (st.seqNo64) {
    const hi = i32(payload, F.ID2)
    if (hi >= 0x200000 || hi < -0x200000) return "Malformed"
    seq = hi * 0x1_0000_0000 + u32(payload, F.ID)
  } else {
    seq = i32(payload, F.ID)
  }
  scratch.seq = seq
  scratch.sec = u32(payload, F.SEC)
  scratch.usec = u32(payload, F.USEC)
  return onDatagram(st, scratch, payload.length, nowUs)
}
const scratch: { seq: number; sec: number; usec: number } = { seq: 0, sec: 0, usec: 0 }

const updateTransit = (st: UdpStream, v: number): void => {
  st.transitCnt += 1
  if (st.transitCnt === 1) {
    st.transitMin = v
    st.transitMax = v
    st.transitSum = v
    st.transitVd = v
    st.transitMean = v
    st.transitM2 = 0
  } else {
    st.transitSum += v
    st.transitVd = v - st.transitMean
    st.transitMean += st.transitVd / st.transitCnt
    st.transitM2 += st.transitVd * (v - st.transitMean)
    if (v < st.transitMin) st.transitMin = v
    if (v > st.transitMax) st.transitMax = v
  }
}

/** Record that the report was (re)sent at `nowMs`. */
export const noteReportSent = (st: UdpStream, nowMs: number): void => {
  st.reportSends += 1
  st.lastReportMs = nowMs
}

/** May the report be sent again (the real server sends it at most 9 times)? */
export const shouldResend = (st: UdpStream): boolean => st.finished && st.reportSends < REPORT_MAX_SENDS

/** The stream can be forgotten: its report went out and 250 ms of silence followed, or it was sent 9 times. */
export const isSettled = (st: UdpStream, nowMs: number): boolean =>
  st.finished &&
  st.reportSends > 0 &&
  (st.reportSends >= REPORT_MAX_SENDS || nowMs - st.lastReportMs >= REPORT_SILENCE_MS)

// ---------------------------------------------------------------------------------------------------------------
// The 128-byte server report
// ---------------------------------------------------------------------------------------------------------------

/** A seconds value split as iperf writes it: `(long)x` and `(long)((x - (long)x) * 1e6)`, each as a u32 word. */
export interface SecUsec {
  readonly sec: number
  readonly usec: number
}

export interface ServerReportRepr {
  readonly flags: number
  readonly bytes: number
  /** Duration: whole seconds and microseconds. */
  readonly stop: SecUsec
  readonly lost: number
  readonly outOfOrder: number
  readonly datagrams: number
  readonly jitter: SecUsec
  readonly minTransit: SecUsec
  readonly maxTransit: SecUsec
  readonly sumTransit: SecUsec
  readonly meanTransit: SecUsec
  /** m2 × 1e12, split the same way. */
  readonly m2Transit: SecUsec
  readonly vdTransit: SecUsec
  readonly cntTransit: number
  readonly cntIpg: number
  readonly ipgSum: number
}

/** C's `(long)x` for finite x (truncation toward zero); non-finite values give 0 (x86 yields 0 in the low word). */
const toLong = (x: number): number => (Number.isFinite(x) ? Math.trunc(x) : 0)
/** The low 32 bits of a (long) value, as `htonl((long)x)` keeps them. */
const low32 = (x: number): number => {
  const m = x % 0x1_0000_0000
  return (m < 0 ? m + 0x1_0000_0000 : m) >>> 0
}
const split = (x: number): SecUsec => {
  const whole = toLong(x)
  return { sec: low32(whole), usec: low32(toLong((x - whole) * 1_000_000)) }
}

/** The report for a stream, computed as 2.1.8's final server report (`reporter_transfer_protocol_server_udp`). */
export const report = (st: UdpStream): ServerReportRepr => {
  // TimeDifference(last arrival, first arrival), computed as iperf does (seconds part + µs part / 1e6); < 0 → 0
  let durationS = 0
  if (st.firstArrivalUs >= 0) {
    const s0 = Math.floor(st.firstArrivalUs / 1_000_000)
    const s1 = Math.floor(st.lastArrivalUs / 1_000_000)
    durationS = s1 - s0 + (st.lastArrivalUs - s1 * 1_000_000 - (st.firstArrivalUs - s0 * 1_000_000)) / 1_000_000
    if (durationS < 0) durationS = 0
  }
  const lost = Math.max(0, st.lost - st.outOfOrder)
  const jitter = st.datagrams === 1 ? 0 : st.jitter
  return {
    flags: REPORT_FLAGS,
    bytes: st.bytes,
    stop: split(durationS),
    lost,
    outOfOrder: st.outOfOrder,
    datagrams: st.packetId,
    jitter: split(jitter),
    minTransit: split(st.transitMin),
    maxTransit: split(st.transitMax),
    sumTransit: split(st.transitSum),
    meanTransit: split(st.transitMean),
    m2Transit: split(st.transitM2 * 1e12),
    vdTransit: split(st.transitVd),
    cntTransit: low32(st.transitCnt),
    cntIpg: low32(toLong(st.packetId / durationS)),
    ipgSum: 1
  }
}

const setPair = (b: Uint8Array, o: number, v: SecUsec): void => {
  setU32(b, o, v.sec)
  setU32(b, o + 4, v.usec)
}

const hi32 = (x: number): number => Math.floor(x / 0x1_0000_0000) >>> 0

/** Write the report into `b[0..128]` (the whole datagram payload). */
export const emitServerReport = (r: ServerReportRepr, b: Uint8Array): void => {
  b.fill(0, 0, REPORT_LEN)
  setU32(b, R.FLAGS, r.flags)
  setU32(b, R.TOTAL_LEN1, hi32(r.bytes))
  setU32(b, R.TOTAL_LEN2, low32(r.bytes))
  setPair(b, R.STOP_SEC, r.stop)
  setU32(b, R.ERROR_CNT, low32(r.lost))
  setU32(b, R.OUTORDER_CNT, low32(r.outOfOrder))
  setU32(b, R.DATAGRAMS, low32(r.datagrams))
  setPair(b, R.JITTER1, r.jitter)
  setPair(b, R.MIN_TRANSIT, r.minTransit)
  setPair(b, R.MAX_TRANSIT, r.maxTransit)
  setPair(b, R.SUM_TRANSIT, r.sumTransit)
  setPair(b, R.MEAN_TRANSIT, r.meanTransit)
  setPair(b, R.M2_TRANSIT, r.m2Transit)
  setPair(b, R.VD_TRANSIT, r.vdTransit)
  setU32(b, R.CNT_TRANSIT, r.cntTransit)
  setU32(b, R.CNT_IPG, r.cntIpg)
  setU32(b, R.IPG_SUM, r.ipgSum)
  if ((r.flags & 0x08000000) !== 0) {
    setU32(b, R.ERROR_CNT2, hi32(r.lost))
    setU32(b, R.OUTORDER_CNT2, hi32(r.outOfOrder))
    setU32(b, R.DATAGRAMS2, hi32(r.datagrams))
  }
}

const pair = (b: Uint8Array, o: number): SecUsec => ({ sec: u32(b, o), usec: u32(b, o + 4) })

/**
 * Parse a report (client side / tests). Counters are read as the client reads them: high words only when
 * SEQNO64B is set in the report's flags.
 */
export const parseServerReport = (b: Uint8Array): ServerReportRepr | "Truncated" => {
  if (b.length < REPORT_LEN) return "Truncated"
  const flags = u32(b, R.FLAGS)
  const wide = (flags & 0x08000000) !== 0
  const word64 = (hiOff: number, loOff: number): number => (wide ? u32(b, hiOff) * 0x1_0000_0000 : 0) + u32(b, loOff)
  return {
    flags,
    bytes: u32(b, R.TOTAL_LEN1) * 0x1_0000_0000 + u32(b, R.TOTAL_LEN2),
    stop: pair(b, R.STOP_SEC),
    lost: word64(R.ERROR_CNT2, R.ERROR_CNT),
    outOfOrder: word64(R.OUTORDER_CNT2, R.OUTORDER_CNT),
    datagrams: word64(R.DATAGRAMS2, R.DATAGRAMS),
    jitter: pair(b, R.JITTER1),
    minTransit: pair(b, R.MIN_TRANSIT),
    maxTransit: pair(b, R.MAX_TRANSIT),
    sumTransit: pair(b, R.SUM_TRANSIT),
    meanTransit: pair(b, R.MEAN_TRANSIT),
    m2Transit: pair(b, R.M2_TRANSIT),
    vdTransit: pair(b, R.VD_TRANSIT),
    cntTransit: u32(b, R.CNT_TRANSIT),
    cntIpg: u32(b, R.CNT_IPG),
    ipgSum: u32(b, R.IPG_SUM)
  }
}

/** Seconds from a (sec, usec) pair as the client reads it (both words signed). */
export const pairSeconds = (p: SecUsec): number => (p.sec | 0) + (p.usec | 0) / 1_000_000
