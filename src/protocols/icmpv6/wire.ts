/**
 * ICMPv6 (RFC 4443): the common 8-byte header (type, code, checksum, 4 message-specific bytes) for echo,
 * destination unreachable, packet too big, time exceeded and parameter problem, with the checksum over the
 * IPv6 pseudo-header (RFC 4443 §2.3, `checksum.pseudoV6` with next header 58). Neighbor Discovery is in
 * `nd.ts`, MLDv2 in `mld.ts`; they share `parse` for the checksum. Other types parse to their numbers and
 * are left to the shell's `default:` branch (RFC 4443 §2.4 b: unknown errors go up, unknown informational
 * messages are dropped).
 */
import { u16, u32, setU16, setU32 } from "../bytes.js"
import * as Cs from "../checksum.js"
import type { DropReason } from "../drop.js"
import { isMulticast, isUnspecified, type Ipv6Address } from "../ipv6/address.js"
import { MIN_MTU } from "../ipv6/wire.js"

export const HEADER_LEN = 8
const F = { TYPE: 0, CODE: 1, CHECKSUM: 2, REST: 4, IDENT: 4, SEQ: 6 } as const

// Error messages (types 0..127)
export const TYPE_DEST_UNREACHABLE = 1
export const TYPE_PACKET_TOO_BIG = 2
export const TYPE_TIME_EXCEEDED = 3
export const TYPE_PARAM_PROBLEM = 4
// Informational messages (128..255)
export const TYPE_ECHO_REQUEST = 128
export const TYPE_ECHO_REPLY = 129
export const TYPE_MLD_QUERY = 130
export const TYPE_ROUTER_SOLICITATION = 133
export const TYPE_ROUTER_ADVERTISEMENT = 134
export const TYPE_NEIGHBOR_SOLICITATION = 135
export const TYPE_NEIGHBOR_ADVERTISEMENT = 136
export const TYPE_REDIRECT = 137
export const TYPE_MLDV2_REPORT = 143

// Destination unreachable codes (§3.1)
export const CODE_NO_ROUTE = 0
export const CODE_ADMIN_PROHIBITED = 1
export const CODE_BEYOND_SCOPE = 2
export const CODE_ADDRESS_UNREACHABLE = 3
export const CODE_PORT_UNREACHABLE = 4
// Time exceeded codes (§3.3)
export const CODE_HOP_LIMIT_EXCEEDED = 0
export const CODE_REASSEMBLY_TIME_EXCEEDED = 1
// Parameter problem codes (§3.4; 3 from RFC 7112)
export const CODE_ERRONEOUS_HEADER = 0
export const CODE_UNRECOGNIZED_NEXT_HEADER = 1
export const CODE_UNRECOGNIZED_OPTION = 2
export const CODE_INCOMPLETE_CHAIN = 3

/** An error message quotes as much of the invoking packet as fits in 1280 bytes with its own headers (§2.4 c). */
export const ERROR_QUOTE_MAX = MIN_MTU - 40 - HEADER_LEN

export interface Icmpv6Repr {
  readonly type: number
  readonly code: number
  /** Bytes 4..7: ident<<16|seq for echo, the MTU for packet too big, the pointer for parameter problem, else 0. */
  readonly rest: number
  readonly payloadLen: number
}

export const checkLen = (b: Uint8Array): boolean => b.length >= HEADER_LEN

export const isError = (type: number): boolean => type < 128

/**
 * `b` is the whole ICMPv6 message; `pseudo` the unfolded pseudo-header sum (pseudoV6 with its length).
 * ICMPv6 always carries a checksum (§2.3); NICs do not vouch for it, so callers normally verify.
 */
export const parse = (b: Uint8Array, pseudo: number, verify = true): Icmpv6Repr | DropReason => {
  if (!checkLen(b)) return "Truncated"
  if (verify && !Cs.verifies(Cs.sum(b, 0, b.length, pseudo))) return "BadChecksum"
  return { type: b[F.TYPE]!, code: b[F.CODE]!, rest: u32(b, F.REST), payloadLen: b.length - HEADER_LEN }
}

/** The message body after the 8-byte header: the echo data, or an error's quote of the invoking packet. */
export const payload = (b: Uint8Array): Uint8Array => b.subarray(HEADER_LEN)

/** Header into b[0..8]; the payload already sits at b[8..]; `b.length` must be 8 + payloadLen. Fills the checksum. */
export const emit = (r: Icmpv6Repr, b: Uint8Array, pseudo: number): void => {
  b[F.TYPE] = r.type
  b[F.CODE] = r.code
  setU32(b, F.REST, r.rest)
  fillChecksum(b, pseudo)
}

/** (Re)compute the checksum of a complete message in `b` (its other bytes already written). */
export const fillChecksum = (b: Uint8Array, pseudo: number): void => {
  setU16(b, F.CHECKSUM, 0)
  setU16(b, F.CHECKSUM, Cs.finish(Cs.sum(b, 0, b.length, pseudo)))
}

export const echoIdent = (b: Uint8Array): number => u16(b, F.IDENT)
export const echoSeq = (b: Uint8Array): number => u16(b, F.SEQ)

/**
 * The path MTU a packet too big reports, never below the IPv6 minimum (RFC 8201 §4: a node must not
 * reduce its estimate below 1280, even when told so).
 */
export const packetTooBigMtu = (r: Icmpv6Repr): number => Math.max(MIN_MTU, r.rest >>> 0)

/** What we know of the packet that made us consider an error message about it. */
export interface Invoking {
  readonly src: Ipv6Address
  readonly dst: Ipv6Address
  /** It arrived in a link-layer multicast or broadcast frame. */
  readonly linkMulticast: boolean
  /** It was itself an ICMPv6 error message, or a redirect. */
  readonly errorOrRedirect: boolean
}

/**
 * Whether RFC 4443 §2.4 e lets us send error `type` (with `evenIfMulticast` for packet too big and a
 * parameter problem about an option of action 10) about `p`: never about an error or a redirect (e.1,
 * e.2); about a packet sent to a multicast address, or in a link-layer multicast or broadcast frame, only
 * for the exceptions (e.3 to e.5); never to a source that names no single node (e.6: unspecified,
 * multicast). Rate limiting (§2.4 f) is the shell's, on top.
 */
export const errorAllowed = (p: Invoking, evenIfMulticast: boolean): boolean => {
  if (p.errorOrRedirect) return false
  if ((isMulticast(p.dst) || p.linkMulticast) && !evenIfMulticast) return false
  return !isUnspecified(p.src) && !isMulticast(p.src)
}

/** The length of an error message quoting `invokingLen` bytes of the invoking packet (cut to ERROR_QUOTE_MAX). */
export const errorLength = (invokingLen: number): number => HEADER_LEN + Math.min(invokingLen, ERROR_QUOTE_MAX)

/**
 * Writes a whole error message into `b` (exactly errorLength(invoking.length) bytes): header, checksum, and
 * the start of the invoking packet. `rest` is the MTU (packet too big), the pointer (parameter problem) or 0.
 */
export const emitError = (b: Uint8Array, type: number, code: number, rest: number, invoking: Uint8Array, pseudo: number): void => {
  b.set(invoking.subarray(0, b.length - HEADER_LEN), HEADER_LEN)
  emit({ type, code, rest, payloadLen: b.length - HEADER_LEN }, b, pseudo)
}
