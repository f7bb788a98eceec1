/** IPv4 header (RFC 791). Options are accepted and skipped on receive; never emitted. */
import { readIpv4, writeIpv4, type Ipv4Address } from "../address.js"
import { u16, setU16 } from "../bytes.js"
import * as Cs from "../checksum.js"
import type { DropReason } from "../drop.js"

export const HEADER_LEN = 20
export const MAX_PACKET = 65535
const F = { VER_IHL: 0, TOS: 1, TOTAL_LEN: 2, IDENT: 4, FLAGS_FRAG: 6, TTL: 8, PROTOCOL: 9, CHECKSUM: 10, SRC: 12, DST: 16 } as const

export const PROTO_ICMP = 1
export const PROTO_TCP = 6
export const PROTO_UDP = 17

const FLAG_DF = 0x4000
const FLAG_MF = 0x2000
const FRAG_MASK = 0x1fff

export interface Ipv4Repr {
  readonly src: Ipv4Address
  readonly dst: Ipv4Address
  readonly protocol: number
  readonly ttl: number
  readonly tos: number
  readonly ident: number
  readonly dontFragment: boolean
  readonly moreFragments: boolean
  /** Fragment offset in bytes (the wire field times 8). */
  readonly fragmentOffset: number
  /** Header length in bytes (20..60). */
  readonly headerLen: number
  /** Length of the IP payload: totalLength - headerLen. */
  readonly payloadLen: number
}

export const totalLength = (b: Uint8Array): number => u16(b, F.TOTAL_LEN)
export const headerLength = (b: Uint8Array): number => (b[F.VER_IHL]! & 0x0f) * 4

export const checkLen = (b: Uint8Array): boolean => {
  if (b.length < HEADER_LEN) return false
  const hl = headerLength(b)
  const tl = totalLength(b)
  return hl >= HEADER_LEN && tl >= hl && tl <= b.length
}

/**
 * Parse and check a header. `verifyChecksum` false when the NIC vouched for the frame.
 * Trailing bytes past totalLength (Ethernet padding) are allowed.
 */
export const parse = (b: Uint8Array, verifyChecksum: boolean): Ipv4Repr | DropReason => {
  if (b.length < HEADER_LEN) return "Truncated"
  if (b[F.VER_IHL]! >>> 4 !== 4) return "BadVersion"
  const hl = headerLength(b)
  if (hl < HEADER_LEN) return "BadHeaderLength"
  if (hl > b.length) return "Truncated"
  const tl = totalLength(b)
  if (tl < hl) return "BadLength"
  if (tl > b.length) return "Truncated"
  if (verifyChecksum && !Cs.verifies(Cs.sum(b, 0, hl))) return "BadChecksum"
  const ff = u16(b, F.FLAGS_FRAG)
  return {
    src: readIpv4(b, F.SRC),
    dst: readIpv4(b, F.DST),
    protocol: b[F.PROTOCOL]!,
    ttl: b[F.TTL]!,
    tos: b[F.TOS]!,
    ident: u16(b, F.IDENT),
    dontFragment: (ff & FLAG_DF) !== 0,
    moreFragments: (ff & FLAG_MF) !== 0,
    fragmentOffset: (ff & FRAG_MASK) * 8,
    headerLen: hl,
    payloadLen: tl - hl
  }
}

/** View of the payload; valid after a successful parse. */
export const payload = (b: Uint8Array, r: Ipv4Repr): Uint8Array => b.subarray(r.headerLen, r.headerLen + r.payloadLen)

export const isFragment = (r: Ipv4Repr): boolean => r.moreFragments || r.fragmentOffset !== 0

/** Writes a 20-byte header with checksum at the start of `b`. `r.headerLen` must be 20. */
export const emit = (r: Ipv4Repr, b: Uint8Array): void => {
  emitFields(b, r.src, r.dst, r.protocol, r.payloadLen, r.ident, r.ttl, r.tos, r.dontFragment, r.moreFragments, r.fragmentOffset)
}

/** Allocation-free variant of `emit` for the hot path. */
export const emitFields = (
  b: Uint8Array,
  src: number,
  dst: number,
  protocol: number,
  payloadLen: number,
  ident: number,
  ttl: number,
  tos: number,
  dontFragment: boolean,
  moreFragments: boolean,
  fragmentOffset: number
): void => {
  b[F.VER_IHL] = 0x45
  b[F.TOS] = tos
  setU16(b, F.TOTAL_LEN, HEADER_LEN + payloadLen)
  setU16(b, F.IDENT, ident)
  setU16(b, F.FLAGS_FRAG, (dontFragment ? FLAG_DF : 0) | (moreFragments ? FLAG_MF : 0) | ((fragmentOffset >>> 3) & FRAG_MASK))
  b[F.TTL] = ttl
  b[F.PROTOCOL] = protocol
  setU16(b, F.CHECKSUM, 0)
  writeIpv4(b, F.SRC, src)
  writeIpv4(b, F.DST, dst)
  setU16(b, F.CHECKSUM, Cs.finish(Cs.sum(b, 0, HEADER_LEN)))
}
