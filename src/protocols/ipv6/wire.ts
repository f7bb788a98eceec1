/**
 * IPv6 (RFC 8200): the fixed header, and the walk over the extension header chain to the upper-layer
 * header. Extension headers are never emitted except the fragment header (our own fragmentation) and the
 * hop-by-hop router alert that MLD needs (RFC 3810 §5).
 *
 * The walk (`walk`) does what RFC 8200 §4 asks of a destination host, with bounds:
 * - hop-by-hop options only right after the fixed header (§4.3); next header 0 anywhere else is an
 *   unrecognized next header (§4);
 * - options (hop-by-hop, destination) by their type's action bits (§4.2): skip, or discard, or discard and
 *   answer with a parameter problem (code 2), the last kind only when the destination is not multicast;
 * - a routing header with segments left 0 is ignored whatever its type (§4.4); with segments left > 0 we
 *   have nothing to route, so the packet is dropped with a parameter problem pointing at the type (code 0),
 *   counted apart for type 0 (RFC 5095);
 * - a fragment header stops the walk (the rest is the fragmentable part) unless it is an atomic fragment
 *   (offset 0, M clear), which is skipped and processed alone (RFC 6946 §4); a fragment whose length is not
 *   a multiple of 8 while M is set, or that would reassemble past 65535 bytes, gets a parameter problem
 *   (§4.5); a first fragment must hold the whole header chain through the upper-layer header (§4.5, RFC 7112),
 *   or it is dropped with code 3;
 * - bounds of our own (the IPv6 node requirements, RFC 8504, let a node set them): at most `maxHeaders` extension headers,
 *   `maxChainBytes` bytes of them, `maxOptions` non-padding options per options header, and no padding run
 *   longer than 7 bytes (Pad1/PadN only align to 8 bytes, RFC 8200 §4.2, so a longer run carries nothing).
 *   Past a bound the packet is dropped without an ICMPv6 error.
 */
import { u16, u32, setU16, setU32 } from "../bytes.js"
import type { DropReason } from "../drop.js"
import { readIpv6, writeIpv6, type Ipv6Address } from "./address.js"

export const HEADER_LEN = 40
/** Every link must carry 1280-byte packets (RFC 8200 §5). */
export const MIN_MTU = 1280
const F = { VER_TC_FLOW: 0, PAYLOAD_LEN: 4, NEXT_HEADER: 6, HOP_LIMIT: 7, SRC: 8, DST: 24 } as const

// Next header values (IANA protocol numbers)
export const NH_HOP_BY_HOP = 0
export const NH_TCP = 6
export const NH_UDP = 17
export const NH_ROUTING = 43
export const NH_FRAGMENT = 44
export const NH_ICMPV6 = 58
export const NH_NONE = 59
export const NH_DEST_OPTS = 60

export const FRAGMENT_HEADER_LEN = 8
/** Hop-by-hop header with one router alert option (RFC 2711) and padding to 8 bytes. */
export const ROUTER_ALERT_HBH_LEN = 8
const OPT_PAD1 = 0
const OPT_PADN = 1
const OPT_ROUTER_ALERT = 5

export interface Ipv6Repr {
  readonly src: Ipv6Address
  readonly dst: Ipv6Address
  /** The fixed header's next header: an extension header or the upper-layer protocol. */
  readonly nextHeader: number
  readonly hopLimit: number
  readonly trafficClass: number
  readonly flowLabel: number
  /** Bytes after the fixed header: extension headers and upper-layer data. */
  readonly payloadLen: number
}

export const payloadLength = (b: Uint8Array): number => u16(b, F.PAYLOAD_LEN)

export const checkLen = (b: Uint8Array): boolean => b.length >= HEADER_LEN && HEADER_LEN + payloadLength(b) <= b.length

/** Parse the fixed header. Trailing bytes past the payload length (Ethernet padding) are allowed. */
export const parse = (b: Uint8Array): Ipv6Repr | DropReason => {
  if (b.length < HEADER_LEN) return "Truncated"
  const w = u32(b, F.VER_TC_FLOW)
  if (w >>> 28 !== 6) return "BadVersion"
  const plen = payloadLength(b)
  if (HEADER_LEN + plen > b.length) return "Truncated"
  return {
    src: readIpv6(b, F.SRC),
    dst: readIpv6(b, F.DST),
    nextHeader: b[F.NEXT_HEADER]!,
    hopLimit: b[F.HOP_LIMIT]!,
    trafficClass: (w >>> 20) & 0xff,
    flowLabel: w & 0xfffff,
    payloadLen: plen
  }
}

/** The payload (extension headers and upper-layer data) after a successful parse. */
export const payload = (b: Uint8Array, r: Ipv6Repr): Uint8Array => b.subarray(HEADER_LEN, HEADER_LEN + r.payloadLen)

/** Writes the 40-byte fixed header at the start of `b`. */
export const emit = (r: Ipv6Repr, b: Uint8Array): void =>
  emitFields(b, r.src, r.dst, r.nextHeader, r.payloadLen, r.hopLimit, r.trafficClass, r.flowLabel)

/** Allocation-free variant of `emit`. */
export const emitFields = (
  b: Uint8Array,
  src: Ipv6Address,
  dst: Ipv6Address,
  nextHeader: number,
  payloadLen: number,
  hopLimit: number,
  trafficClass = 0,
  flowLabel = 0
): void => {
  setU32(b, F.VER_TC_FLOW, ((6 << 28) | ((trafficClass & 0xff) << 20) | (flowLabel & 0xfffff)) >>> 0)
  setU16(b, F.PAYLOAD_LEN, payloadLen)
  b[F.NEXT_HEADER] = nextHeader
  b[F.HOP_LIMIT] = hopLimit
  writeIpv6(b, F.SRC, src)
  writeIpv6(b, F.DST, dst)
}

/**
 * Reads the fixed header of a packet quoted in an ICMPv6 error (RFC 4443 §2.4 c): the quote may be cut
 * anywhere past the fixed header, so only the version and the 40 bytes are checked.
 */
export const parseQuoted = (b: Uint8Array): Ipv6Repr | DropReason => {
  if (b.length < HEADER_LEN) return "Truncated"
  const w = u32(b, F.VER_TC_FLOW)
  if (w >>> 28 !== 6) return "BadVersion"
  return {
    src: readIpv6(b, F.SRC),
    dst: readIpv6(b, F.DST),
    nextHeader: b[F.NEXT_HEADER]!,
    hopLimit: b[F.HOP_LIMIT]!,
    trafficClass: (w >>> 20) & 0xff,
    flowLabel: w & 0xfffff,
    payloadLen: payloadLength(b)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The extension header walk

export interface WalkLimits {
  readonly maxHeaders: number
  readonly maxChainBytes: number
  readonly maxOptions: number
}

export const DEFAULT_LIMITS: WalkLimits = { maxHeaders: 8, maxChainBytes: 1024, maxOptions: 8 }
const MAX_PADDING = 7

/** What an ICMPv6 parameter problem about this packet should say (RFC 4443 §3.4): its code and pointer. */
export interface ParamProblem {
  readonly code: number
  readonly pointer: number
  /** Code 2 for an option of action 10: answered even when the packet went to a multicast address (RFC 4443 §2.4 e.3). */
  readonly evenIfMulticast: boolean
}

export type Chain =
  /** The walk reached the upper-layer header. */
  | {
      readonly _tag: "Upper"
      /** The upper-layer protocol; any number the walk does not know as an extension header. */
      readonly proto: number
      /** Where its header starts, from the start of the IPv6 packet. */
      readonly offset: number
      /** Where the Next Header field that named it is (a parameter problem's pointer when nobody takes `proto`, code 1). */
      readonly namedAt: number
      /** An atomic fragment header (offset 0, M clear) was skipped on the way (RFC 6946). */
      readonly atomicFragment: boolean
      /** The hop-by-hop header carried a router alert option (RFC 2711; MLD messages carry one). */
      readonly routerAlert: boolean
    }
  /** A fragment of a larger packet: the rest goes to reassembly. */
  | {
      readonly _tag: "Fragment"
      /** The fragment header's next header (the first fragment's is the one that counts, §4.5). */
      readonly nextHeader: number
      /** Fragment offset in bytes. */
      readonly fragmentOffset: number
      readonly more: boolean
      readonly ident: number
      /** Where the fragment header starts; the unfragmentable part is b[40..headerAt). */
      readonly headerAt: number
      /** Where the Next Header field that named the fragment header is (reassembly puts `nextHeader` there). */
      readonly namedAt: number
      /** Where the fragment's data starts (headerAt + 8). */
      readonly dataAt: number
    }
  | { readonly _tag: "Drop"; readonly reason: DropReason; readonly problem: ParamProblem | undefined }

export type FragmentChain = Extract<Chain, { readonly _tag: "Fragment" }>

const drop = (reason: DropReason, code?: number, pointer?: number, evenIfMulticast = false): Chain => ({
  _tag: "Drop",
  reason,
  problem: code === undefined ? undefined : { code, pointer: pointer!, evenIfMulticast }
})

/** Minimum upper-layer header a first fragment must hold (RFC 8200 §4.5: "through an Upper-Layer header"). */
const upperHeaderLen = (proto: number): number => (proto === NH_TCP ? 20 : proto === NH_UDP || proto === NH_ICMPV6 ? 8 : 0)

/**
 * Walk the extension headers of a packet whose fixed header parsed as `r`. Offsets in the result count from
 * `b[0]`, the fixed header. `b` may be a whole packet or an ICMPv6 error's quote cut short (the walk then
 * ends in "Truncated" where the quote does).
 */
export const walk = (b: Uint8Array, r: Ipv6Repr, limits: WalkLimits = DEFAULT_LIMITS): Chain => {
  const end = Math.min(b.length, HEADER_LEN + r.payloadLen)
  const dstMulticast = b[F.DST] === 0xff
  let nh = r.nextHeader
  let nhAt: number = F.NEXT_HEADER
  let at = HEADER_LEN
  let headers = 0
  let atomic = false
  let routerAlert = false
  let firstFragment: Chain | undefined
  for (;;) {
    if (nh !== NH_HOP_BY_HOP && nh !== NH_DEST_OPTS && nh !== NH_ROUTING && nh !== NH_FRAGMENT) {
      if (nh === NH_NONE) return drop("NoNextHeader")
      if (firstFragment !== undefined) return at + upperHeaderLen(nh) <= end ? firstFragment : drop("IncompleteChain", 3, 0)
      return { _tag: "Upper", proto: nh, offset: at, namedAt: nhAt, atomicFragment: atomic, routerAlert }
    }
    if (nh === NH_HOP_BY_HOP && at !== HEADER_LEN) return drop("UnknownNextHeader", 1, nhAt)
    if (++headers > limits.maxHeaders) return drop("ExtHeaderLimit")
    const len = at + 8 > end ? 8 : nh === NH_FRAGMENT ? FRAGMENT_HEADER_LEN : (b[at + 1]! + 1) * 8
    if (at + len > end) return firstFragment !== undefined ? drop("IncompleteChain", 3, 0) : drop("Truncated")
    if (at + len - HEADER_LEN > limits.maxChainBytes) return drop("ExtHeaderLimit")
    switch (nh) {
      case NH_HOP_BY_HOP:
      case NH_DEST_OPTS: {
        const bad = options(b, at, at + len, nh === NH_HOP_BY_HOP, dstMulticast, limits.maxOptions)
        if (bad !== undefined) return bad
        if (nh === NH_HOP_BY_HOP) routerAlert = hasRouterAlert(b, at, at + len)
        break
      }
      case NH_ROUTING: {
        if (b[at + 3] !== 0) return drop(b[at + 2] === 0 ? "RoutingType0" : "RoutingHeader", 0, at + 2)
        break
      }
      case NH_FRAGMENT: {
        const w = u16(b, at + 2)
        const offset = w & 0xfff8
        const more = (w & 1) !== 0
        if (offset === 0 && !more) {
          atomic = true
          break
        }
        if (firstFragment !== undefined) return drop("Malformed")
        const dataLen = HEADER_LEN + r.payloadLen - at - FRAGMENT_HEADER_LEN // as declared: a quote may be cut short
        if (more && (dataLen & 7) !== 0) return drop("BadLength", 0, F.PAYLOAD_LEN)
        if (at - HEADER_LEN + offset + dataLen > 65535) return drop("BadLength", 0, at + 2)
        const frag: Chain = {
          _tag: "Fragment",
          nextHeader: b[at]!,
          fragmentOffset: offset,
          more,
          ident: u32(b, at + 4),
          headerAt: at,
          namedAt: nhAt,
          dataAt: at + FRAGMENT_HEADER_LEN
        }
        if (offset !== 0) return frag
        firstFragment = frag // walk on: the first fragment must hold the rest of the chain (RFC 7112)
        break
      }
    }
    nhAt = at
    nh = b[at]!
    at += len
  }
}

/** Check the options of a hop-by-hop or destination options header at b[start..end). */
const options = (b: Uint8Array, start: number, end: number, hbh: boolean, dstMulticast: boolean, maxOptions: number): Chain | undefined => {
  let i = start + 2
  let padding = 0
  let count = 0
  while (i < end) {
    const t = b[i]!
    if (t === OPT_PAD1) {
      if (++padding > MAX_PADDING) return drop("ExtHeaderLimit")
      i++
      continue
    }
    if (i + 2 > end || i + 2 + b[i + 1]! > end) return drop("BadOption")
    const len = b[i + 1]!
    if (t === OPT_PADN) {
      padding += len + 2
      if (padding > MAX_PADDING) return drop("ExtHeaderLimit")
    } else {
      padding = 0
      if (++count > maxOptions) return drop("ExtHeaderLimit")
      if (!(hbh && t === OPT_ROUTER_ALERT && len === 2)) {
        switch (t >>> 6) {
          case 1:
            return drop("UnknownOption")
          case 2:
            return drop("UnknownOption", 2, i, true)
          case 3:
            return dstMulticast ? drop("UnknownOption") : drop("UnknownOption", 2, i)
        }
      }
    }
    i += 2 + len
  }
  return undefined
}

/** Whether the (already checked) options at b[start..end) hold a router alert. */
const hasRouterAlert = (b: Uint8Array, start: number, end: number): boolean => {
  for (let i = start + 2; i < end; i += b[i] === OPT_PAD1 ? 1 : 2 + b[i + 1]!) if (b[i] === OPT_ROUTER_ALERT && b[i + 1] === 2) return true
  return false
}

// ---------------------------------------------------------------------------------------------------------------
// Extension headers we emit

/** A fragment header (RFC 8200 §4.5) at b[o..o+8): `fragmentOffset` in bytes, a multiple of 8. */
export const emitFragmentHeader = (b: Uint8Array, o: number, nextHeader: number, fragmentOffset: number, more: boolean, ident: number): void => {
  b[o] = nextHeader
  b[o + 1] = 0
  setU16(b, o + 2, (fragmentOffset & 0xfff8) | (more ? 1 : 0))
  setU32(b, o + 4, ident)
}

/** A hop-by-hop header at b[o..o+8) holding a router alert for MLD (RFC 2711 value 0, RFC 3810 §5) and a PadN. */
export const emitRouterAlertHbh = (b: Uint8Array, o: number, nextHeader: number): void => {
  b[o] = nextHeader
  b[o + 1] = 0
  b[o + 2] = OPT_ROUTER_ALERT
  b[o + 3] = 2
  setU16(b, o + 4, 0)
  b[o + 6] = OPT_PADN
  b[o + 7] = 0
}
