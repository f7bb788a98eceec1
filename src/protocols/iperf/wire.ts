/**
 * iperf 2 (2.1.8, and the 2.0.x clients that send only the 24-byte v1 block): the settings header the client
 * sends at stream offset 0, and the 28-byte CLIENTHDRACK the server sends back. Byte reference:
 * shared/docs/iperf-wire.md §A.2, §A.3. Pure code: no Effect, no IO, never throws on peer input.
 *
 * ## How the shell uses this file (TCP)
 *
 * ```ts
 * const hp = Wire.makeHeaderParser()
 * // for every chunk the connection delivers, until the parser is settled:
 * const r = Wire.feedHeader(hp, chunk)
 * rxBytes += chunk.length                  // header bytes count as received data, like the real server
 * switch (r._tag) {
 *   case "NeedMore": break                 // every byte of `chunk` was header; feed the next chunk
 *   case "Done":     plan = Session.plan(r.settings, ...)   // chunk[r.consumed..] is plain data
 *   case "Rejected": close the connection; count r.reason
 * }
 * ```
 * The header is parsed ONCE, at stream offset 0. After `Done` the client's later writes also begin with the same
 * 60 bytes (its send buffer starts with them): they are data, never look at them. The parser copies at most
 * `HEADER_MAX_LEN + KEY_MAX_LEN` bytes into its own scratch buffer, so chunks may be borrowed views.
 *
 * For UDP the header sits in every datagram at offset 16 (after the sequence/timestamp prefix): use
 * `decodeUdpSettings(datagramPayload)` once per new stream, not the incremental parser.
 *
 * ## Length rules (iperf-wire.md §A.2, iperf2 `Settings_ClientTestHdrLen`)
 * From the first 4 bytes (`flags`):
 * 1. none of VERSION1 / VERSION2 / EXTEND set: no header (`-C` or a 2.0.x client in a plain test); those bytes
 *    are data. (KEYCHECK alone is not enough: `-C` data begins "0123" = 0x30313233, which has that bit.)
 * 2. LEN_BIT set: length = `(flags & 0xFFFE) >> 1` (the client writes the length with this 15-bit mask;
 *    2.1.8's server reads only 9 bits of it, `0x1FE`, and so cannot see a length over 255). Over 256 is refused
 *    (`HeaderTooLong`), and under 24 (no complete v1 block) too (`HeaderTooShort`).
 * 3. otherwise 24 when VERSION1 or EXTEND is set, plus 36 when VERSION2 or EXTEND is set.
 * With KEYCHECK (`--permit-key`) the last 2 bytes of that length are the key length (4..128, else `BadKeyLength`)
 * and the key itself follows the header; it is read (consumed) and exposed, never checked.
 * BOUNCEBACK (`--bounceback`) has a different layout: settled after the 4 flag bytes with `mode: "bounceback"`
 * (unsupported; the session planner refuses it).
 */
import { u16, u32, i32, setU16, setU32 } from "../bytes.js"

// ---------------------------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------------------------

/** Flag bits in the first word of the header (iperf2 include/payloads.h). */
export const HEADER_VERSION1 = 0x80000000
export const HEADER_EXTEND = 0x40000000
export const HEADER_UDPTESTS = 0x20000000
export const HEADER_KEYCHECK = 0x10000000
export const HEADER_SEQNO64B = 0x08000000
export const HEADER_VERSION2 = 0x04000000
export const HEADER_V2PEERDETECT = 0x02000000
export const HEADER_BOUNCEBACK = 0x00800000
export const HEADER_LEN_BIT = 0x00010000
/** The mask the client writes the length with (`HEADER_KEYLEN_MASK`). */
export const HEADER_LEN_MASK = 0x0000fffe
export const RUN_NOW = 0x00000001

/** Upper-flag bits (u16 at offset 32). */
export const UPPER_ISOCH = 0x0001
export const UPPER_L2ETHPIPV6 = 0x0002
export const UPPER_L2LENCHECK = 0x0004
export const UPPER_NOUDPFIN = 0x0008
export const UPPER_TRIPTIME = 0x0010
export const UPPER_ISOCH_SETTINGS = 0x0040
export const UPPER_UNITS_PPS = 0x0080
export const UPPER_BWSET = 0x0100
export const UPPER_FQRATESET = 0x0200
export const UPPER_REVERSE = 0x0400
export const UPPER_FULLDUPLEX = 0x0800
export const UPPER_EPOCH_START = 0x1000
export const UPPER_PERIODICBURST = 0x2000
export const UPPER_WRITEPREFETCH = 0x4000
export const UPPER_TCPQUICKACK = 0x8000

export const FLAGS_LEN = 4
export const HEADER_V1_LEN = 24
export const HEADER_EXT_LEN = 36
/** 24 + 36: what a 2.1.8 client sends for TCP. */
export const HEADER_V2_LEN = HEADER_V1_LEN + HEADER_EXT_LEN
/** The largest declared header length accepted (iperf2 `MAX_HEADER_LEN`). */
export const HEADER_MAX_LEN = 256
export const KEY_MIN_LEN = 4
export const KEY_MAX_LEN = 128
/** UDP: the sequence/timestamp prefix before the settings header. */
export const UDP_PREFIX_LEN = 16

/** CLIENTHDRACK (iperf-wire.md §A.3). */
export const ACK_TYPE_CLIENTHDRACK = 2
export const ACK_LEN = 28
/** The version we announce: 2.1.8 release, like the real server (`0x00020001`, `0x00080003`). */
export const VERSION_U = 0x00020001
export const VERSION_L = 0x00080003

/** Field offsets from the start of the settings header. */
const F = {
  FLAGS: 0,
  NUM_THREADS: 4,
  MPORT: 8,
  BUFFER_LEN: 12,
  WIN_BAND: 16,
  AMOUNT: 20,
  EXT_TYPE: 24,
  EXT_LENGTH: 28,
  UPPER_FLAGS: 32,
  LOWER_FLAGS: 34,
  VERSION_U: 36,
  VERSION_L: 40,
  RESERVED: 44,
  TOS: 46,
  RATE_L: 48,
  RATE_U: 52,
  WRITE_PREFETCH: 56
} as const

const ACK_F = { TYPE: 0, LENGTH: 4, FLAGS: 8, VERSION_U: 12, VERSION_L: 16, RESERVED1: 20, RESERVED2: 24 } as const

// ---------------------------------------------------------------------------------------------------------------
// The typed record
// ---------------------------------------------------------------------------------------------------------------

/**
 * What the client asked for, derived from the flags:
 * - `plain`: the client sends, the server receives (also `-P`, `-n`, `-t`, `-C`).
 * - `tradeoff` (`-r`): VERSION1 without RUN_NOW: connect back to (client ip, mPort) after this test ends.
 * - `dual` (`-d`): VERSION1 with RUN_NOW: connect back at once, receive here at the same time.
 * - `reverse` (`-R`): EXTEND+VERSION2 with upper REVERSE: the server sends on this socket.
 * - `fullDuplex` (`--full-duplex`): EXTEND+VERSION2 with upper FULLDUPLEX: both directions on this socket.
 * - `bounceback`: unsupported (different header layout).
 */
export type Mode = "plain" | "tradeoff" | "dual" | "reverse" | "fullDuplex" | "bounceback"

/** The client's `mAmount`: negative = a duration in 10 ms units, otherwise a byte count (31 bits). */
export type AmountRepr =
  | { readonly kind: "time"; readonly durationMs: number }
  | { readonly kind: "bytes"; readonly bytes: number }

export interface SettingsRepr {
  /** false: the stream carried no header (`-C`, old client); every other field is then zero/default. */
  readonly hasHeader: boolean
  /** Declared header length (0 without a header; 4 for bounceback, where only the flags were read). */
  readonly headerLen: number
  /** Length of the permit key that followed the header (0 without KEYCHECK). */
  readonly keyLen: number
  /** The key bytes (latin1), "" without KEYCHECK. Never checked. */
  readonly key: string
  readonly flags: number
  readonly numThreads: number
  /** Port for the connect-back of `-r`/`-d` (the client's `-L`, else its `-p`, else 5001). */
  readonly mPort: number
  /** The client's `-l`, 0 when not given. */
  readonly bufferLen: number
  readonly winBand: number
  /** The raw signed 32-bit `mAmount`. */
  readonly amountRaw: number
  readonly amount: AmountRepr
  readonly upperFlags: number
  readonly lowerFlags: number
  readonly versionU: number
  readonly versionL: number
  readonly tos: number
  /** `-b` in bit/s (lRate | (uRate >> 8) << 32); 0 when not given (TCP) or not present. */
  readonly rate: number
  readonly mode: Mode
  /** TCP: send the 28-byte CLIENTHDRACK (EXTEND and not VERSION2, or V2PEERDETECT). Always false for UDP. */
  readonly needsAck: boolean
  /** UDP: sequence numbers are 64-bit (SEQNO64B). */
  readonly seqNo64: boolean
}

export type HeaderReject = "HeaderTooLong" | "HeaderTooShort" | "NegativeThreads" | "BadKeyLength"

const ZERO_AMOUNT: AmountRepr = { kind: "bytes", bytes: 0 }

/** The record for a stream that carried no header. */
export const NO_HEADER: SettingsRepr = Object.freeze({
  hasHeader: false,
  headerLen: 0,
  keyLen: 0,
  key: "",
  flags: 0,
  numThreads: 1,
  mPort: 0,
  bufferLen: 0,
  winBand: 0,
  amountRaw: 0,
  amount: ZERO_AMOUNT,
  upperFlags: 0,
  lowerFlags: 0,
  versionU: 0,
  versionL: 0,
  tos: 0,
  rate: 0,
  mode: "plain",
  needsAck: false,
  seqNo64: false
})

// ---------------------------------------------------------------------------------------------------------------
// Length rules (pure functions of the flag word)
// ---------------------------------------------------------------------------------------------------------------

/**
 * Rule 1: does a stream starting with this flag word carry a header at all? KEYCHECK alone does not count: a
 * `-C` stream starts with the digits "0123" = 0x30313233, which has the KEYCHECK bit set (2.1.8's server looks
 * at KEYCHECK alone only when it runs with `--permit-key` itself). BOUNCEBACK is checked first by the real server.
 */
export const hasHeader = (flags: number): boolean =>
  (flags & (HEADER_VERSION1 | HEADER_VERSION2 | HEADER_EXTEND | HEADER_BOUNCEBACK)) !== 0

/**
 * The declared header length (the key, if any, comes after it), or a reason to refuse.
 * Call only when `hasHeader(flags)`; bounceback is handled by the caller.
 */
export const declaredLength = (flags: number): number | HeaderReject => {
  let len = 0
  if ((flags & HEADER_LEN_BIT) !== 0) {
    len = (flags & HEADER_LEN_MASK) >>> 1
    if (len > HEADER_MAX_LEN) return "HeaderTooLong"
  } else {
    if ((flags & (HEADER_VERSION1 | HEADER_EXTEND)) !== 0) len = HEADER_V1_LEN
    if ((flags & (HEADER_VERSION2 | HEADER_EXTEND)) !== 0) len += HEADER_EXT_LEN
  }
  const min = (flags & HEADER_KEYCHECK) !== 0 ? HEADER_V1_LEN + 2 : HEADER_V1_LEN
  return len < min ? "HeaderTooShort" : len
}

/** `mAmount` → amount record (iperf2 `Settings_ReadClientSettingsV1`: bit 31 set = time). */
export const decodeAmount = (raw: number): AmountRepr =>
  raw < 0 ? { kind: "time", durationMs: -raw * 10 } : { kind: "bytes", bytes: raw }

/** TCP: the rule of iperf2 `apply_client_settings_tcp` for sending CLIENTHDRACK. */
export const needsAck = (flags: number): boolean =>
  ((flags & HEADER_VERSION2) === 0 && (flags & HEADER_EXTEND) !== 0) || (flags & HEADER_V2PEERDETECT) !== 0

const modeOf = (flags: number, upper: number, udp: boolean): Mode => {
  if ((flags & HEADER_BOUNCEBACK) !== 0) return "bounceback"
  if ((flags & HEADER_VERSION1) !== 0 && (flags & HEADER_VERSION2) === 0) {
    return (flags & RUN_NOW) !== 0 ? "dual" : "tradeoff"
  }
  // TCP reads the upper flags only inside the EXTEND branch; UDP reads them for VERSION2 alone.
  const v2 = (flags & HEADER_VERSION2) !== 0 && (udp || (flags & HEADER_EXTEND) !== 0)
  if (v2 && (upper & UPPER_FULLDUPLEX) !== 0) return "fullDuplex"
  if (v2 && (upper & UPPER_REVERSE) !== 0) return "reverse"
  return "plain"
}

/**
 * Decode a complete header held in `b[off .. off+len]` (len = declared length, already validated to be 24..256;
 * fields past `len` read as zero, as in the real server's zeroed buffer). Key fields are filled by the caller.
 */
const decodeFields = (
  b: Uint8Array,
  off: number,
  len: number,
  udp: boolean,
  keyLen: number,
  key: string
): SettingsRepr | HeaderReject => {
  const at32 = (o: number): number => (o + 4 <= len ? u32(b, off + o) : 0)
  const at16 = (o: number): number => (o + 2 <= len ? u16(b, off + o) : 0)
  const flags = u32(b, off + F.FLAGS)
  const numThreads = i32(b, off + F.NUM_THREADS)
  if (numThreads < 0) return "NegativeThreads"
  const amountRaw = i32(b, off + F.AMOUNT)
  const ext = (flags & HEADER_EXTEND) !== 0
  const upperFlags = ext || (udp && (flags & HEADER_VERSION2) !== 0) ? at16(F.UPPER_FLAGS) : 0
  const rateL = ext ? at32(F.RATE_L) : 0
  const rateU = ext ? at32(F.RATE_U) : 0
  return {
    hasHeader: true,
    headerLen: len,
    keyLen,
    key,
    flags,
    numThreads,
    mPort: u32(b, off + F.MPORT) & 0xffff,
    bufferLen: u32(b, off + F.BUFFER_LEN),
    winBand: u32(b, off + F.WIN_BAND),
    amountRaw,
    amount: decodeAmount(amountRaw),
    upperFlags,
    lowerFlags: ext ? at16(F.LOWER_FLAGS) : 0,
    versionU: ext ? at32(F.VERSION_U) : 0,
    versionL: ext ? at32(F.VERSION_L) : 0,
    tos: ext ? at16(F.TOS) & 0xff : 0,
    rate: rateL + (rateU >>> 8) * 0x1_0000_0000,
    mode: modeOf(flags, upperFlags, udp),
    needsAck: !udp && needsAck(flags),
    seqNo64: (flags & HEADER_SEQNO64B) !== 0
  }
}

const bouncebackRepr = (flags: number): SettingsRepr => ({
  ...NO_HEADER,
  hasHeader: true,
  headerLen: FLAGS_LEN,
  flags,
  mode: "bounceback"
})

const latin1 = (b: Uint8Array, from: number, to: number): string => {
  let s = ""
  for (let i = from; i < to; i++) s += String.fromCharCode(b[i]!)
  return s
}

// ---------------------------------------------------------------------------------------------------------------
// Incremental TCP parser
// ---------------------------------------------------------------------------------------------------------------

export type FeedResult =
  /** All of the chunk was header; more is needed. */
  | { readonly _tag: "NeedMore"; readonly consumed: number }
  /**
   * Settled. `consumed` bytes of this chunk belonged to the header (for a header-less stream: the ≤4 bytes that
   * were looked at, which are data); `chunk[consumed..]` is data. After this, `feedHeader` returns the same
   * settings with `consumed: 0`.
   */
  | { readonly _tag: "Done"; readonly consumed: number; readonly settings: SettingsRepr }
  /** Refused (close the connection). `consumed` as above. */
  | { readonly _tag: "Rejected"; readonly consumed: number; readonly reason: HeaderReject }

export interface HeaderParser {
  /** Scratch: flags + header + key, at most 256 + 128 bytes. */
  readonly buf: Uint8Array
  /** Bytes collected in `buf`. */
  have: number
  /** Bytes needed in total (4 until the flags are known). */
  need: number
  /** Declared header length once known (key length follows). */
  declared: number
  /** Key length once known (KEYCHECK), -1 before. */
  keyLen: number
  result: FeedResult | undefined
}

export const makeHeaderParser = (): HeaderParser => ({
  buf: new Uint8Array(HEADER_MAX_LEN + KEY_MAX_LEN),
  have: 0,
  need: FLAGS_LEN,
  declared: 0,
  keyLen: -1,
  result: undefined
})

/** True once the parser returned Done or Rejected. */
export const isSettled = (p: HeaderParser): boolean => p.result !== undefined

const settle = (p: HeaderParser, r: FeedResult): FeedResult => {
  p.result =
    r._tag === "Done"
      ? { _tag: "Done", consumed: 0, settings: r.settings }
      : r._tag === "Rejected"
        ? { _tag: "Rejected", consumed: 0, reason: r.reason }
        : r
  return r
}

/** Feed the next chunk of the stream (any length, including 0). Never throws. */
export const feedHeader = (p: HeaderParser, chunk: Uint8Array): FeedResult => {
  if (p.result !== undefined) return p.result
  let used = 0
  for (;;) {
    const take = Math.min(p.need - p.have, chunk.length - used)
    if (take > 0) {
      p.buf.set(chunk.subarray(used, used + take), p.have)
      p.have += take
      used += take
    }
    if (p.have < p.need) return { _tag: "NeedMore", consumed: used }
    // A stage is complete: flags, then header, then (KEYCHECK) key.
    if (p.have === FLAGS_LEN && p.declared === 0) {
      const flags = u32(p.buf, 0)
      if (!hasHeader(flags)) return settle(p, { _tag: "Done", consumed: used, settings: NO_HEADER })
      if ((flags & HEADER_BOUNCEBACK) !== 0) {
        return settle(p, { _tag: "Done", consumed: used, settings: bouncebackRepr(flags) })
      }
      const len = declaredLength(flags)
      if (typeof len === "string") return settle(p, { _tag: "Rejected", consumed: used, reason: len })
      p.declared = len
      p.need = len
      continue
    }
    const flags = u32(p.buf, 0)
    if ((flags & HEADER_KEYCHECK) !== 0 && p.keyLen < 0) {
      const keyLen = u16(p.buf, p.declared - 2)
      if (keyLen < KEY_MIN_LEN || keyLen > KEY_MAX_LEN) {
        return settle(p, { _tag: "Rejected", consumed: used, reason: "BadKeyLength" })
      }
      p.keyLen = keyLen
      p.need = p.declared + keyLen
      continue
    }
    const keyLen = Math.max(0, p.keyLen)
    const r = decodeFields(p.buf, 0, p.declared, false, keyLen, latin1(p.buf, p.declared, p.declared + keyLen))
    return settle(
      p,
      typeof r === "string" ? { _tag: "Rejected", consumed: used, reason: r } : { _tag: "Done", consumed: used, settings: r }
    )
  }
}

/**
 * Parse a complete header from a contiguous buffer (convenience for tests and UDP): returns the settings and the
 * number of bytes it occupies (header + key), `NeedMore` if `b` is too short, or the reject reason.
 */
export const parseHeader = (b: Uint8Array): FeedResult => {
  const p = makeHeaderParser()
  return feedHeader(p, b)
}

// ---------------------------------------------------------------------------------------------------------------
// UDP: the header repeated in every datagram
// ---------------------------------------------------------------------------------------------------------------

/**
 * Decode the settings from a UDP datagram payload (`p[0..16]` is the sequence/timestamp prefix, the header starts at
 * 16). A datagram too short to hold the 4 flag bytes, or whose flags carry no header, gives `NO_HEADER` (a
 * plain 2.0.x-style stream); a declared length past the end of the datagram reads as zeros beyond it.
 * For UDP the header length counts the 16-byte prefix (`0x98` = 76 = 16 + 60).
 */
export const decodeUdpSettings = (p: Uint8Array): SettingsRepr | HeaderReject => {
  if (p.length < UDP_PREFIX_LEN + FLAGS_LEN) return NO_HEADER
  const flags = u32(p, UDP_PREFIX_LEN)
  if (!hasHeader(flags) || (flags & HEADER_BOUNCEBACK) !== 0) {
    return (flags & HEADER_SEQNO64B) !== 0 ? { ...NO_HEADER, flags, seqNo64: true } : NO_HEADER
  }
  let len: number
  if ((flags & HEADER_LEN_BIT) !== 0) {
    len = ((flags & HEADER_LEN_MASK) >>> 1) - UDP_PREFIX_LEN
    if (len + UDP_PREFIX_LEN > HEADER_MAX_LEN) return "HeaderTooLong"
  } else {
    len = 0
    if ((flags & (HEADER_VERSION1 | HEADER_EXTEND)) !== 0) len = HEADER_V1_LEN
    if ((flags & (HEADER_VERSION2 | HEADER_EXTEND)) !== 0) len += HEADER_EXT_LEN
  }
  if (len < HEADER_V1_LEN) return "HeaderTooShort"
  // Copy into a zeroed scratch so that fields past the datagram's end read as zero (no out-of-range access).
  const scratch = new Uint8Array(HEADER_MAX_LEN)
  scratch.set(p.subarray(UDP_PREFIX_LEN, Math.min(p.length, UDP_PREFIX_LEN + len)))
  return decodeFields(scratch, 0, len, true, 0, "")
}

// ---------------------------------------------------------------------------------------------------------------
// Emit
// ---------------------------------------------------------------------------------------------------------------

/** Write the 28-byte CLIENTHDRACK into `b[off..off+28]` (server → client, §A.3). */
export const emitAck = (b: Uint8Array, off = 0, versionU = VERSION_U, versionL = VERSION_L): void => {
  setU32(b, off + ACK_F.TYPE, ACK_TYPE_CLIENTHDRACK)
  setU32(b, off + ACK_F.LENGTH, ACK_LEN)
  setU32(b, off + ACK_F.FLAGS, 0)
  setU32(b, off + ACK_F.VERSION_U, versionU)
  setU32(b, off + ACK_F.VERSION_L, versionL)
  setU32(b, off + ACK_F.RESERVED1, 0)
  setU32(b, off + ACK_F.RESERVED2, 0)
}

/** The ack as a fresh 28-byte array (allocate once per server and reuse it: it never changes). */
export const makeAck = (): Uint8Array => {
  const b = new Uint8Array(ACK_LEN)
  emitAck(b)
  return b
}

export interface AckRepr {
  readonly type: number
  readonly length: number
  readonly flags: number
  readonly versionU: number
  readonly versionL: number
}

/** Parse an ack (client side / tests). */
export const parseAck = (b: Uint8Array): AckRepr | "Truncated" | "Malformed" => {
  if (b.length < ACK_LEN) return "Truncated"
  const type = u32(b, ACK_F.TYPE)
  const length = u32(b, ACK_F.LENGTH)
  if (type !== ACK_TYPE_CLIENTHDRACK || length < ACK_LEN) return "Malformed"
  return { type, length, flags: u32(b, ACK_F.FLAGS), versionU: u32(b, ACK_F.VERSION_U), versionL: u32(b, ACK_F.VERSION_L) }
}

/** What a client asks for; the emitter produces the same bytes as the 2.1.8 client for these options. */
export interface ClientHeaderOptions {
  readonly mode: Exclude<Mode, "bounceback">
  /** `-P` (default 1). */
  readonly numThreads?: number
  /** The connect-back port (`-L`, else `-p`; default 5001). */
  readonly mPort?: number
  /** `-l` when given explicitly (default 0 = not given). */
  readonly bufferLen?: number
  readonly amount: AmountRepr
  /** `-S` (only the low 8 bits travel). */
  readonly tos?: number
  /** `-b` in bit/s (0 = not given). */
  readonly rate?: number
  /** `-X`. */
  readonly peerDetect?: boolean
  /** `--permit-key` value (4..128 latin1 chars). */
  readonly key?: string
  /** Emit only the 24-byte v1 block, as 2.0.x clients do (no EXTEND, no LEN_BIT). `mode` must be plain/tradeoff/dual. */
  readonly v1Only?: boolean
}

/** Bytes `emitClientHeader` writes for these options. */
export const clientHeaderLen = (o: ClientHeaderOptions): number =>
  o.v1Only === true ? HEADER_V1_LEN : HEADER_V2_LEN + (o.key !== undefined ? 2 + o.key.length : 0)

/**
 * Write a TCP client settings header (and key) into `b[0..clientHeaderLen(o)]`, as iperf 2.1.8's
 * `Settings_GenerateClientHdr` lays it out. For a 2.0.x-style `v1Only` plain test there is no header at all in
 * the real client; here `v1Only` + plain writes the v1 block with flags 0 (which a server treats as data).
 */
export const emitClientHeader = (o: ClientHeaderOptions, b: Uint8Array): number => {
  const len = clientHeaderLen(o)
  b.fill(0, 0, len)
  let flags = o.v1Only === true ? 0 : HEADER_EXTEND
  if (o.mode === "tradeoff" || o.mode === "dual") flags |= HEADER_VERSION1
  if (o.mode === "dual") flags |= RUN_NOW
  let upper = 0
  if (o.v1Only !== true) {
    if (o.peerDetect === true) flags |= HEADER_V2PEERDETECT | HEADER_VERSION2
    if (o.mode === "reverse") upper |= UPPER_REVERSE
    if (o.mode === "fullDuplex") upper |= UPPER_FULLDUPLEX
    if (o.mode === "reverse" || o.mode === "fullDuplex") flags |= HEADER_VERSION2
    let declared = HEADER_V2_LEN
    if (o.key !== undefined) {
      flags |= HEADER_KEYCHECK
      declared += 2
    }
    flags |= HEADER_LEN_BIT | ((declared << 1) & HEADER_LEN_MASK)
  }
  setU32(b, F.FLAGS, flags)
  setU32(b, F.NUM_THREADS, o.numThreads ?? 1)
  setU32(b, F.MPORT, o.mPort ?? 5001)
  setU32(b, F.BUFFER_LEN, o.bufferLen ?? 0)
  setU32(b, F.WIN_BAND, 0)
  const amount = o.amount.kind === "time" ? -Math.round(o.amount.durationMs / 10) : o.amount.bytes & 0x7fffffff
  setU32(b, F.AMOUNT, amount >>> 0)
  if (o.v1Only === true) return len
  setU16(b, F.UPPER_FLAGS, upper)
  setU16(b, F.LOWER_FLAGS, 0)
  setU32(b, F.VERSION_U, VERSION_U)
  setU32(b, F.VERSION_L, VERSION_L)
  setU16(b, F.TOS, (o.tos ?? 0) & 0xff)
  const rate = o.rate ?? 0
  setU32(b, F.RATE_L, rate >>> 0)
  setU32(b, F.RATE_U, (Math.floor(rate / 0x1_0000_0000) << 8) >>> 0)
  setU32(b, F.WRITE_PREFETCH, 0)
  if (o.key !== undefined) {
    setU16(b, HEADER_V2_LEN, o.key.length)
    for (let i = 0; i < o.key.length; i++) b[HEADER_V2_LEN + 2 + i] = o.key.charCodeAt(i) & 0xff
  }
  return len
}
