/**
 * iperf3 (3.12) control protocol on the wire (iperf-wire.md §C): the cookie, the one-byte states, and JSON messages
 * framed by a 4-byte big-endian length. Pure code: no Effect, no IO, no clock.
 *
 * - `isValidCookie`: 36 characters from iperf3's alphabet [a-z2-7] and a NUL (37 bytes on the wire).
 * - `makeReader`/`feed`/`takeByte`/`takeJson`: the control connection's bytes, collected across segments into one
 *   bounded buffer (a frame of more than `MAX_JSON_LEN` bytes is refused as soon as its length is in), then read as
 *   single state bytes or whole JSON messages. Never throws on peer input: errors are `Iperf3Drop` strings.
 * - `decodeParams`: the client's parameter object, checked and clamped into `ParamsRepr`.
 * - `decodeClientResults`: the client's results object, checked for the keys the 3.12 peer requires.
 * - `encodeJson`, `encodeResults`, `serverError`: what the server sends.
 */
import { setU32, u32 } from "../bytes.js"

// ---------------------------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------------------------

export const PORT = 5201

/** One signed byte on the control connection (§C.1). */
export const TEST_START = 1
export const TEST_RUNNING = 2
export const TEST_END = 4
export const PARAM_EXCHANGE = 9
export const CREATE_STREAMS = 10
export const SERVER_TERMINATE = 11
export const CLIENT_TERMINATE = 12
export const EXCHANGE_RESULTS = 13
export const DISPLAY_RESULTS = 14
export const IPERF_DONE = 16
/** -1 and -2 as unsigned bytes. */
export const ACCESS_DENIED = 0xff
export const SERVER_ERROR = 0xfe

/** iperf3's error numbers (iperf_api.h, 3.12) that we send with SERVER_ERROR. */
export const IE_NUMSTREAMS = 6
export const IE_BLOCKSIZE = 7
export const IE_DURATION = 5
export const IE_RECVPARAMS = 114
export const IE_PROTOCOL = 131

/** 36 characters and a NUL. */
export const COOKIE_LEN = 37
/** Largest JSON message accepted (results of 256 streams take about 30 KiB). */
export const MAX_JSON_LEN = 64 * 1024
/** iperf3's MAX_STREAMS: the real client refuses `-P` above this. */
export const MAX_PARALLEL = 128
/** iperf3's limits: MAX_TIME (s), MAX_BLOCKSIZE (TCP), MAX_UDP_BLOCKSIZE, MAX_OMIT_TIME (s). */
export const MAX_TIME_S = 86_400
export const MAX_TCP_BLOCK = 1024 * 1024
export const MAX_UDP_BLOCK = 65_507
export const MAX_OMIT_S = 600
/**
 * Our ceiling on a UDP stream's rate (bit/s). The 3.12 client sends 1 Mbit/s unless told otherwise; `-b 0` means
 * "unlimited" and sends no "bandwidth" key at all. We never send or expect unpaced UDP: no rate, or one above this,
 * becomes this (logged as an adjustment).
 */
export const MAX_UDP_RATE_BPS = 1_000_000_000

export type Iperf3Drop = "JsonTooLong" | "BadJson" | "BadUtf8" | "ReaderOverflow"

// ---------------------------------------------------------------------------------------------------------------
// Cookie
// ---------------------------------------------------------------------------------------------------------------

const isCookieChar = (c: number): boolean => (c >= 0x61 && c <= 0x7a) || (c >= 0x32 && c <= 0x37)

/** True for 36 bytes of [a-z2-7] followed by NUL. */
export const isValidCookie = (b: Uint8Array): boolean => {
  if (b.length !== COOKIE_LEN || b[COOKIE_LEN - 1] !== 0) return false
  for (let i = 0; i < COOKIE_LEN - 1; i++) if (!isCookieChar(b[i]!)) return false
  return true
}

/** The cookie's 36 characters (call only on a valid cookie). */
export const cookieText = (b: Uint8Array): string => String.fromCharCode(...b.subarray(0, COOKIE_LEN - 1))

/** Printable form of untrusted bytes, for a log line: `\xNN` for anything outside ASCII 0x20..0x7e, at most `max` bytes. */
export const printable = (b: Uint8Array, max = 16): string => {
  let s = ""
  for (let i = 0; i < Math.min(b.length, max); i++) {
    const c = b[i]!
    s += c >= 0x20 && c <= 0x7e && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, "0")}`
  }
  return b.length > max ? s + "..." : s
}

// ---------------------------------------------------------------------------------------------------------------
// The control reader
// ---------------------------------------------------------------------------------------------------------------

export interface Reader {
  buf: Uint8Array
  /** Unread bytes are buf[start..end). */
  start: number
  end: number
  readonly capacity: number
}

/** A reader whose buffer holds at most one JSON frame (4 + MAX_JSON_LEN bytes); it grows on demand up to that. */
export const makeReader = (capacity = 4 + MAX_JSON_LEN): Reader => ({ buf: new Uint8Array(Math.min(256, capacity)), start: 0, end: 0, capacity })

export const buffered = (r: Reader): number => r.end - r.start

/** Append bytes (copied: the caller's are borrowed). `ReaderOverflow` when more than `capacity` would be unread. */
export const feed = (r: Reader, src: Uint8Array, start = 0, end = src.length): undefined | "ReaderOverflow" => {
  const n = end - start
  if (n <= 0) return undefined
  const unread = r.end - r.start
  if (unread + n > r.capacity) return "ReaderOverflow"
  if (r.end + n > r.buf.length) {
    if (unread + n <= r.buf.length) {
      r.buf.copyWithin(0, r.start, r.end)
    } else {
      let size = r.buf.length
      while (size < unread + n) size *= 2
      const nb = new Uint8Array(Math.min(size, r.capacity))
      nb.set(r.buf.subarray(r.start, r.end))
      r.buf = nb
    }
    r.end = unread
    r.start = 0
  }
  r.buf.set(src.subarray(start, end), r.end)
  r.end += n
  return undefined
}

/** The next byte, or undefined when none is buffered. */
export const takeByte = (r: Reader): number | undefined => {
  if (r.start === r.end) return undefined
  return r.buf[r.start++]!
}

export const NEED_MORE = "NeedMore" as const
export type NeedMore = typeof NEED_MORE

const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * The next JSON message (length, then the text), parsed; `NeedMore` until all of it is buffered. A length above
 * MAX_JSON_LEN is `JsonTooLong` as soon as the 4 length bytes are in. The bytes of a bad message are consumed.
 */
/** What `takeJson` returns. */
export type JsonResult = NeedMore | { readonly json: unknown } | { readonly _drop: Iperf3Drop; readonly len: number }

export const takeJson = (r: Reader): JsonResult => {
  const avail = r.end - r.start
  if (avail < 4) return NEED_MORE
  const len = u32(r.buf, r.start)
  if (len > MAX_JSON_LEN) return { _drop: "JsonTooLong", len }
  if (avail < 4 + len) return NEED_MORE
  const body = r.buf.subarray(r.start + 4, r.start + 4 + len)
  r.start += 4 + len
  if (r.start === r.end) r.start = r.end = 0
  let text: string
  try {
    text = utf8.decode(body)
  } catch {
    return { _drop: "BadUtf8", len }
  }
  try {
    return { json: JSON.parse(text) as unknown }
  } catch {
    return { _drop: "BadJson", len }
  }
}


// ---------------------------------------------------------------------------------------------------------------
// Parameters (client -> server, §C.3)
// ---------------------------------------------------------------------------------------------------------------

export type Protocol = "tcp" | "udp"

export interface ParamsRepr {
  readonly protocol: Protocol
  readonly omitS: number
  /** T in seconds; 0 with `-n`/`-k`. */
  readonly timeS: number
  /** `-n` bytes, 0 when not given. */
  readonly bytes: number
  /** `-k` blocks, 0 when not given. */
  readonly blocks: number
  readonly parallel: number
  /** Block size. */
  readonly len: number
  readonly reverse: boolean
  readonly bidirectional: boolean
  /** bit/s per stream; 0 = unlimited (TCP). */
  readonly bandwidth: number
  readonly udpCounters64: boolean
  readonly getServerOutput: boolean
  readonly clientVersion: string
  /** Values changed to fit our bounds, for the log. */
  readonly clamped: ReadonlyArray<string>
}

export interface ParamError {
  readonly _tag: "ParamError"
  readonly reason: string
  /** iperf3 error number to send with SERVER_ERROR. */
  readonly ierrno: number
}

const paramError = (reason: string, ierrno = IE_RECVPARAMS): ParamError => ({ _tag: "ParamError", reason, ierrno })

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x)

/** A finite non-negative number field (absent: `dflt`); undefined when present but of the wrong kind. */
const num = (o: Record<string, unknown>, k: string, dflt: number): number | undefined => {
  const v = o[k]
  if (v === undefined) return dflt
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : undefined
}

const flag = (o: Record<string, unknown>, k: string): boolean => {
  const v = o[k]
  return v === true || (typeof v === "number" && v !== 0)
}

/** Check and clamp the parameter object. Refusals carry the iperf3 error number the client will print. */
export const decodeParams = (json: unknown): ParamsRepr | ParamError => {
  if (!isObject(json)) return paramError("parameters are not a JSON object")
  const o = json
  const protocol: Protocol | undefined = flag(o, "tcp") ? "tcp" : flag(o, "udp") ? "udp" : undefined
  if (protocol === undefined) return paramError(flag(o, "sctp") ? "SCTP is not supported" : "no protocol (tcp/udp) given", IE_PROTOCOL)
  const fields = { omit: num(o, "omit", 0), time: num(o, "time", 0), num: num(o, "num", 0), blockcount: num(o, "blockcount", 0), parallel: num(o, "parallel", 1), len: num(o, "len", 0), bandwidth: num(o, "bandwidth", 0) }
  for (const [k, v] of Object.entries(fields)) if (v === undefined) return paramError(`"${k}" is not a non-negative number`)
  const clamped: Array<string> = []
  const f = fields as { readonly [K in keyof typeof fields]: number }
  const parallel = Math.floor(f.parallel)
  if (parallel < 1) return paramError(`"parallel" ${f.parallel} is below 1`, IE_NUMSTREAMS)
  if (parallel > MAX_PARALLEL) return paramError(`"parallel" ${parallel} is above ${MAX_PARALLEL}`, IE_NUMSTREAMS)
  const timeS = f.time
  if (timeS > MAX_TIME_S) return paramError(`"time" ${timeS} s is above ${MAX_TIME_S} s`, IE_DURATION)
  let omitS = f.omit
  if (omitS > MAX_OMIT_S) {
    clamped.push(`omit ${omitS} s -> ${MAX_OMIT_S} s`)
    omitS = MAX_OMIT_S
  }
  const maxBlock = protocol === "tcp" ? MAX_TCP_BLOCK : MAX_UDP_BLOCK
  let len = Math.floor(f.len)
  if (len === 0) len = protocol === "tcp" ? 128 * 1024 : 1448
  if (len > maxBlock) return paramError(`"len" ${len} is above ${maxBlock}`, IE_BLOCKSIZE)
  if (protocol === "udp" && len < 16) return paramError(`"len" ${len} is below 16 for UDP`, IE_BLOCKSIZE)
  const reverse = flag(o, "reverse")
  const bidirectional = flag(o, "bidirectional")
  if (reverse && bidirectional) return paramError("both reverse and bidirectional")
  const cv = o["client_version"]
  // 0 (or absent) is "unlimited"; a positive rate under 1 bit/s is the slowest we pace (1 bit/s), not unlimited
  let bandwidth = f.bandwidth === 0 ? 0 : Math.max(1, Math.floor(f.bandwidth))
  if (protocol === "udp" && (bandwidth === 0 || bandwidth > MAX_UDP_RATE_BPS)) {
    clamped.push(`bandwidth ${bandwidth === 0 ? "unlimited" : `${bandwidth} bit/s`} -> ${MAX_UDP_RATE_BPS} bit/s (the server's UDP ceiling)`)
    bandwidth = MAX_UDP_RATE_BPS
  }
  return {
    protocol,
    omitS,
    timeS,
    bytes: Math.floor(f.num),
    blocks: Math.floor(f.blockcount),
    parallel,
    len,
    reverse,
    bidirectional,
    bandwidth,
    udpCounters64: flag(o, "udp_counters_64bit"),
    getServerOutput: flag(o, "get_server_output"),
    clientVersion: typeof cv === "string" ? cv.slice(0, 32) : "",
    clamped
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Results (§C.5)
// ---------------------------------------------------------------------------------------------------------------

export interface StreamResult {
  readonly id: number
  readonly bytes: number
  readonly retransmits: number
  /** Seconds. */
  readonly jitter: number
  readonly errors: number
  readonly packets: number
  readonly startTime: number
  readonly endTime: number
}

export interface ResultsRepr {
  readonly cpuTotal: number
  readonly cpuUser: number
  readonly cpuSystem: number
  /** 1 with real counts, 0 to hide the column, -1 when the server only received. */
  readonly senderHasRetransmits: number
  readonly congestionUsed?: string
  readonly serverOutputText?: string
  readonly streams: ReadonlyArray<StreamResult>
}

/** The client's results: what we keep of them (per stream: what the peer reports), or why they are unusable. */
export interface ClientResults {
  readonly senderHasRetransmits: number
  readonly streams: ReadonlyArray<{ readonly id: number; readonly bytes: number; readonly retransmits: number }>
}

const finite = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x)

/** As 3.12's get_results: the cpu keys, sender_has_retransmits and streams, each stream with its six keys and a known id. */
export const decodeClientResults = (json: unknown, knownIds: ReadonlyArray<number>): ClientResults | ParamError => {
  if (!isObject(json)) return paramError("results are not a JSON object")
  for (const k of ["cpu_util_total", "cpu_util_user", "cpu_util_system", "sender_has_retransmits"]) {
    if (!finite(json[k])) return paramError(`results lack "${k}"`)
  }
  const ss = json["streams"]
  if (!Array.isArray(ss)) return paramError(`results lack "streams"`)
  if (ss.length > 2 * MAX_PARALLEL) return paramError(`results list ${ss.length} streams`)
  const streams: Array<{ id: number; bytes: number; retransmits: number }> = []
  for (const s of ss) {
    if (!isObject(s)) return paramError("a stream result is not an object")
    for (const k of ["id", "bytes", "retransmits", "jitter", "errors", "packets"]) {
      if (!finite(s[k])) return paramError(`a stream result lacks "${k}"`)
    }
    const id = s["id"] as number
    if (!knownIds.includes(id)) return paramError(`stream result with unknown id ${id}`)
    streams.push({ id, bytes: s["bytes"] as number, retransmits: s["retransmits"] as number })
  }
  return { senderHasRetransmits: json["sender_has_retransmits"] as number, streams }
}

const round6 = (x: number): number => Math.round(x * 1e6) / 1e6

/** The server's results object, with every key 3.12's get_results requires. */
export const resultsJson = (r: ResultsRepr): Record<string, unknown> => ({
  cpu_util_total: round6(r.cpuTotal),
  cpu_util_user: round6(r.cpuUser),
  cpu_util_system: round6(r.cpuSystem),
  sender_has_retransmits: r.senderHasRetransmits,
  ...(r.congestionUsed !== undefined ? { congestion_used: r.congestionUsed } : {}),
  ...(r.serverOutputText !== undefined ? { server_output_text: r.serverOutputText } : {}),
  streams: r.streams.map((s) => ({
    id: s.id,
    bytes: s.bytes,
    retransmits: s.retransmits,
    jitter: s.jitter,
    errors: s.errors,
    packets: s.packets,
    start_time: round6(s.startTime),
    end_time: round6(s.endTime)
  }))
})

const utf8Enc = new TextEncoder()

/** 4-byte big-endian length, then the JSON text. */
export const encodeJson = (value: unknown): Uint8Array => {
  const body = utf8Enc.encode(JSON.stringify(value))
  const b = new Uint8Array(4 + body.length)
  setU32(b, 0, body.length)
  b.set(body, 4)
  return b
}

export const encodeResults = (r: ResultsRepr): Uint8Array => encodeJson(resultsJson(r))

/** SERVER_ERROR, then iperf's error number and errno as 4-byte big-endian ints (the client prints the first). */
export const serverError = (ierrno: number, errno = 0): Uint8Array => {
  const b = new Uint8Array(9)
  b[0] = SERVER_ERROR
  setU32(b, 1, ierrno >>> 0)
  setU32(b, 5, errno >>> 0)
  return b
}

export const stateByte = (s: number): Uint8Array => Uint8Array.of(s & 0xff)
