/**
 * ICMPv4 (RFC 792): echo request/reply and destination unreachable. Other types parse to their numbers
 * and are left to the shell's `default:` branch.
 */
import { u16, u32, setU16, setU32 } from "../bytes.js"
import * as Cs from "../checksum.js"
import type { DropReason } from "../drop.js"

export const HEADER_LEN = 8
const F = { TYPE: 0, CODE: 1, CHECKSUM: 2, REST: 4, IDENT: 4, SEQ: 6 } as const

export const TYPE_ECHO_REPLY = 0
export const TYPE_DEST_UNREACHABLE = 3
export const TYPE_ECHO_REQUEST = 8
export const TYPE_TIME_EXCEEDED = 11

export const CODE_NET_UNREACHABLE = 0
export const CODE_HOST_UNREACHABLE = 1
export const CODE_PROTOCOL_UNREACHABLE = 2
export const CODE_PORT_UNREACHABLE = 3
export const CODE_FRAG_NEEDED = 4

/** How much of the offending datagram an error message quotes: its IP header and 8 bytes (RFC 792); we quote up to 548 like Linux does not exceed 576 total. */
export const ERROR_QUOTE_MAX = 548

export interface IcmpRepr {
  readonly type: number
  readonly code: number
  /** Bytes 4..7: ident<<16|seq for echo; unused (0) or next-hop MTU for unreachable. */
  readonly rest: number
  readonly payloadLen: number
}

export const checkLen = (b: Uint8Array): boolean => b.length >= HEADER_LEN

export const ident = (r: IcmpRepr): number => r.rest >>> 16
export const seq = (r: IcmpRepr): number => r.rest & 0xffff

export const parse = (b: Uint8Array, verifyChecksum: boolean): IcmpRepr | DropReason => {
  if (!checkLen(b)) return "Truncated"
  if (verifyChecksum && !Cs.verifies(Cs.sum(b, 0, b.length))) return "BadChecksum"
  return { type: b[F.TYPE]!, code: b[F.CODE]!, rest: u32(b, F.REST), payloadLen: b.length - HEADER_LEN }
}

export const payload = (b: Uint8Array): Uint8Array => b.subarray(HEADER_LEN)

/** Header into b[0..8]; the payload already sits at b[8..]; `b.length` must be 8 + payloadLen. Fills the checksum. */
export const emit = (r: IcmpRepr, b: Uint8Array): void => {
  b[F.TYPE] = r.type
  b[F.CODE] = r.code
  setU16(b, F.CHECKSUM, 0)
  setU32(b, F.REST, r.rest)
  setU16(b, F.CHECKSUM, Cs.finish(Cs.sum(b, 0, HEADER_LEN + r.payloadLen)))
}

export const echoIdent = (b: Uint8Array): number => u16(b, F.IDENT)
export const echoSeq = (b: Uint8Array): number => u16(b, F.SEQ)
