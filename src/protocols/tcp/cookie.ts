/**
 * SYN cookies (RFC 4987 §3.6): when a listener's half-open table is full, the SYN-ACK's initial sequence
 * number carries what the entry would have held, and the peer's ACK of it re-creates the connection
 * without any state kept in between.
 *
 * Layout of the 32-bit cookie (our ISS):
 *
 *     31      27 26  24 23                                0
 *     | period  | mss  |  keyed hash of the 4-tuple, the   |
 *     | (5 bit) | index|  peer's ISN and the period (24)   |
 *
 * `period` is the low 5 bits of the count of 64 s steps of the clock, so a cookie is accepted for 64-128 s
 * (two periods, like Linux's MAX_SYNCOOKIE_AGE); the hash covers the whole count, so a recorded cookie ACK
 * does not become valid again when the 5 bits wrap. The MSS is one of eight values, the largest not above
 * the peer's (216 for the smallest peers: the table has no entry between, as Linux's has none below 536). What does
 * not fit (window scale, SACK permitted) travels, as Linux does, in the low six bits of the SYN-ACK's
 * TSval, which the peer echoes in every TSecr: without timestamps the connection gets neither.
 *
 * The hash is HalfSipHash-2-4 over 32-bit words with a 64-bit secret from the shell: a peer that sees its
 * own cookies learns nothing it can use to forge one for another 4-tuple or period.
 */

/** MSS values a cookie can carry (index 0..7). */
export const MSS_TABLE: ReadonlyArray<number> = [216, 536, 1200, 1360, 1400, 1440, 1460, 8960]

/** Cookie period, ms (64 s). */
export const PERIOD_MS = 64_000

export interface CookieKey {
  readonly k0: number
  readonly k1: number
}

const rotl = (x: number, b: number): number => ((x << b) | (x >>> (32 - b))) >>> 0

/** HalfSipHash-2-4 of `n` 32-bit words from `w`, 32-bit result. */
export const halfSipHash = (key: CookieKey, w: ArrayLike<number>, n: number): number => {
  let v0 = key.k0 >>> 0
  let v1 = key.k1 >>> 0
  let v2 = (0x6c796765 ^ key.k0) >>> 0
  let v3 = (0x74656462 ^ key.k1) >>> 0
  const round = (): void => {
    v0 = (v0 + v1) >>> 0
    v1 = rotl(v1, 5) ^ v0
    v0 = rotl(v0, 16)
    v2 = (v2 + v3) >>> 0
    v3 = rotl(v3, 8) ^ v2
    v0 = (v0 + v3) >>> 0
    v3 = rotl(v3, 7) ^ v0
    v2 = (v2 + v1) >>> 0
    v1 = rotl(v1, 13) ^ v2
    v2 = rotl(v2, 16)
  }
  for (let i = 0; i <= n; i++) {
    // the last word is the length in bytes in the top byte, as in the reference construction
    const m = i < n ? w[i]! >>> 0 : ((n * 4) << 24) >>> 0
    v3 = (v3 ^ m) >>> 0
    round()
    round()
    v0 = (v0 ^ m) >>> 0
  }
  v2 = (v2 ^ 0xff) >>> 0
  round()
  round()
  round()
  round()
  return (v1 ^ v3) >>> 0
}

const words = new Uint32Array(11)

/** The two 16-bit groups `i` and `i + 1` of an IPv6 address (an 8-code-unit string) as one word. */
const word6 = (a: string, i: number): number => ((a.charCodeAt(i) << 16) | a.charCodeAt(i + 1)) >>> 0

/**
 * The keyed hash of the 4-tuple, the peer's ISN and the period. IPv4 addresses are numbers (5 words);
 * IPv6 ones are 8-code-unit strings and go in whole (4 words each, 11 in all).
 */
const hash24 = (key: CookieKey, src: number | string, dst: number | string, srcPort: number, dstPort: number, peerIsn: number, period: number): number => {
  if (typeof src === "number" && typeof dst === "number") {
    words[0] = src
    words[1] = dst
    words[2] = ((srcPort << 16) | dstPort) >>> 0
    words[3] = peerIsn >>> 0
    words[4] = period
    return halfSipHash(key, words, 5) & 0xffffff
  }
  const s = String(src)
  const d = String(dst)
  for (let i = 0; i < 4; i++) {
    words[i] = word6(s, 2 * i)
    words[4 + i] = word6(d, 2 * i)
  }
  words[8] = ((srcPort << 16) | dstPort) >>> 0
  words[9] = peerIsn >>> 0
  words[10] = period
  return halfSipHash(key, words, 11) & 0xffffff
}

/** The whole period count (its low 5 bits travel in the cookie). */
export const periodOf = (nowMs: number): number => Math.floor(nowMs / PERIOD_MS) >>> 0

/** Index of the largest table MSS not above the peer's (536 when it sent none). */
export const mssIndex = (peerMss: number): number => {
  const m = peerMss === 0 ? 536 : peerMss
  let i = 0
  if (m < MSS_TABLE[1]!) return 0
  while (i + 1 < MSS_TABLE.length && MSS_TABLE[i + 1]! <= m) i++
  return i
}

/** The cookie (our ISS) for a SYN from src:srcPort to dst:dstPort with sequence number `peerIsn`. */
export const make = (
  key: CookieKey,
  src: number | string,
  dst: number | string,
  srcPort: number,
  dstPort: number,
  peerIsn: number,
  peerMss: number,
  nowMs: number
): number => {
  const p = periodOf(nowMs)
  return (((p & 31) << 27) | (mssIndex(peerMss) << 24) | hash24(key, src, dst, srcPort, dstPort, peerIsn, p)) >>> 0
}

/**
 * Check the cookie in an ACK (`cookie` = SEG.ACK - 1, `peerIsn` = SEG.SEQ - 1). Returns the MSS it
 * carries, or 0 when it is not one of ours or older than two periods.
 */
export const check = (
  key: CookieKey,
  src: number | string,
  dst: number | string,
  srcPort: number,
  dstPort: number,
  peerIsn: number,
  cookie: number,
  nowMs: number
): number => {
  const now = periodOf(nowMs)
  const age = (now - (cookie >>> 27)) & 31
  if (age > 1) return 0
  const p = (now - age) >>> 0
  if ((cookie & 0xffffff) !== hash24(key, src, dst, srcPort, dstPort, peerIsn, p)) return 0
  return MSS_TABLE[(cookie >>> 24) & 7]!
}

/** Options carried in the low six bits of the SYN-ACK's TSval: window scale (0..14, 15 = none) and SACK. */
export const TS_OPT_BITS = 6
const WS_NONE = 0xf

export const encodeTsOptions = (wscale: number, sack: boolean): number => (wscale < 0 ? WS_NONE : wscale & 0xf) | (sack ? 0x10 : 0)

export const decodeTsOptions = (tsEcr: number): { readonly wscale: number; readonly sack: boolean } => {
  const ws = tsEcr & 0xf
  return { wscale: ws === WS_NONE || ws > 14 ? -1 : ws, sack: (tsEcr & 0x10) !== 0 }
}

/**
 * The SYN-ACK's TSval: our clock with its low six bits replaced by `bits`, moved back one step when that
 * would run ahead of the clock, so the connection's later TSvals (the plain clock) never go backwards.
 */
export const tsValWithOptions = (clock: number, bits: number): number => {
  let v = ((clock & ~((1 << TS_OPT_BITS) - 1)) | bits) >>> 0
  if (((v - clock) | 0) > 0) v = (v - (1 << TS_OPT_BITS)) >>> 0
  return v
}
