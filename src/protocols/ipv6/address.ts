/**
 * IPv6 addresses (RFC 4291) as values that cost nothing to compare or hash (style.md §2.3, "numeric
 * addresses"): a branded string of exactly eight UTF-16 code units, the address's eight 16-bit groups in
 * network order. So `===` compares two addresses, a `Map`/`Set` keys by one (V8 caches a string's hash),
 * `<` orders them numerically (strings of equal length compare code unit by code unit, as unsigned
 * numbers), and reading one from a packet is one `String.fromCharCode`. The string is not text: only
 * `formatIpv6` turns it into the RFC 5952 form, at the edges.
 */
import { mac, type MacAddress } from "../address.js"

declare const Ipv6Brand: unique symbol
export type Ipv6Address = string & { readonly [Ipv6Brand]: "Ipv6Address" }

const fromCodes = String.fromCharCode

/** An address from its eight 16-bit groups (extra bits are cut). */
export const ipv6 = (g0: number, g1: number, g2: number, g3: number, g4: number, g5: number, g6: number, g7: number): Ipv6Address =>
  fromCodes(g0 & 0xffff, g1 & 0xffff, g2 & 0xffff, g3 & 0xffff, g4 & 0xffff, g5 & 0xffff, g6 & 0xffff, g7 & 0xffff) as Ipv6Address

/** Group i (0..7) as a number 0..0xffff. */
export const group = (a: Ipv6Address, i: number): number => a.charCodeAt(i)

export const groups = (a: Ipv6Address): Array<number> => [0, 1, 2, 3, 4, 5, 6, 7].map((i) => a.charCodeAt(i))

export const readIpv6 = (b: Uint8Array, o: number): Ipv6Address =>
  fromCodes(
    (b[o]! << 8) | b[o + 1]!,
    (b[o + 2]! << 8) | b[o + 3]!,
    (b[o + 4]! << 8) | b[o + 5]!,
    (b[o + 6]! << 8) | b[o + 7]!,
    (b[o + 8]! << 8) | b[o + 9]!,
    (b[o + 10]! << 8) | b[o + 11]!,
    (b[o + 12]! << 8) | b[o + 13]!,
    (b[o + 14]! << 8) | b[o + 15]!
  ) as Ipv6Address

export const writeIpv6 = (b: Uint8Array, o: number, a: Ipv6Address): void => {
  for (let i = 0; i < 8; i++) {
    const g = a.charCodeAt(i)
    b[o + 2 * i] = g >>> 8
    b[o + 2 * i + 1] = g & 0xff
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Well-known addresses (RFC 4291 §2.5.2, §2.5.3, §2.7.1; RFC 3810 §5.2.14)

export const IPV6_UNSPECIFIED = ipv6(0, 0, 0, 0, 0, 0, 0, 0)
export const IPV6_LOOPBACK = ipv6(0, 0, 0, 0, 0, 0, 0, 1)
export const IPV6_ALL_NODES = ipv6(0xff02, 0, 0, 0, 0, 0, 0, 1)
export const IPV6_ALL_ROUTERS = ipv6(0xff02, 0, 0, 0, 0, 0, 0, 2)
/** Where MLDv2 reports go (RFC 3810 §5.2.14). */
export const IPV6_ALL_MLDV2_ROUTERS = ipv6(0xff02, 0, 0, 0, 0, 0, 0, 0x16)
/** fe80::/64, the prefix of link-local addresses formed from an interface identifier (RFC 4291 §2.5.6). */
export const LINK_LOCAL_PREFIX = ipv6(0xfe80, 0, 0, 0, 0, 0, 0, 0)

// ---------------------------------------------------------------------------------------------------------------
// Text: RFC 4291 §2.2 in, RFC 5952 out

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/
const DOTTED = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/

/** Groups of one side of "::" (or of the whole string); `lastMayBeDotted` for the string's final part. */
const sideGroups = (side: string, lastMayBeDotted: boolean, out: Array<number>): boolean => {
  if (side === "") return true
  const parts = side.split(":")
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!
    if (HEX_GROUP.test(p)) {
      out.push(parseInt(p, 16))
      continue
    }
    const m = lastMayBeDotted && i === parts.length - 1 ? DOTTED.exec(p) : null
    if (m === null) return false
    out.push((Number(m[1]) << 8) | Number(m[2]), (Number(m[3]) << 8) | Number(m[4]))
  }
  return true
}

/**
 * Every text form of RFC 4291 §2.2: eight hex groups of 1..4 digits in either case; one "::" standing for
 * one or more zero groups; a dotted-quad IPv4 address as the last 32 bits (decimal octets without leading
 * zeros, as inet_pton reads them). Anything else is undefined: zone indices ("%eth0", RFC 4007 §11, a
 * different syntax), brackets, spaces, a prefix length.
 */
export const parseIpv6 = (s: string): Ipv6Address | undefined => {
  if (s.length < 2 || s.length > 45) return undefined
  const dbl = s.indexOf("::")
  const head: Array<number> = []
  const tail: Array<number> = []
  if (dbl === -1) {
    if (!sideGroups(s, true, head) || head.length !== 8) return undefined
  } else {
    if (s.indexOf("::", dbl + 1) !== -1) return undefined
    if (!sideGroups(s.slice(0, dbl), false, head) || !sideGroups(s.slice(dbl + 2), true, tail)) return undefined
    if (head.length + tail.length > 7) return undefined
    while (head.length + tail.length < 8) head.push(0)
  }
  const g = head.concat(tail)
  return ipv6(g[0]!, g[1]!, g[2]!, g[3]!, g[4]!, g[5]!, g[6]!, g[7]!)
}

/**
 * The RFC 5952 §4 form: lower case, no leading zeros, the longest run of two or more zero groups as "::"
 * (the first of equal runs), a lone zero group written "0". We never use the mixed notation of §5 (a
 * dotted quad at the end); no address we use is an IPv4-mapped or -translated one.
 */
export const formatIpv6 = (a: Ipv6Address): string => {
  let bestAt = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (a.charCodeAt(i) !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && a.charCodeAt(j) === 0) j++
    if (j - i > bestLen) {
      bestAt = i
      bestLen = j - i
    }
    i = j
  }
  const hex = (from: number, to: number): string => {
    const xs: Array<string> = []
    for (let i = from; i < to; i++) xs.push(a.charCodeAt(i).toString(16))
    return xs.join(":")
  }
  if (bestAt === -1) return hex(0, 8)
  return `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`
}

/** "2001:db8::1/64" to the address and its prefix length 0..128 (a decimal without leading zeros). */
export const parseIpv6Prefix = (s: string): { readonly address: Ipv6Address; readonly prefixLen: number } | undefined => {
  const slash = s.indexOf("/")
  if (slash === -1) return undefined
  const len = s.slice(slash + 1)
  if (!/^(0|[1-9]\d{0,2})$/.test(len) || Number(len) > 128) return undefined
  const address = parseIpv6(s.slice(0, slash))
  return address === undefined ? undefined : { address, prefixLen: Number(len) }
}

// ---------------------------------------------------------------------------------------------------------------
// Prefixes

/** The address with every bit past the first `len` (0..128) cleared. */
export const maskPrefix = (a: Ipv6Address, len: number): Ipv6Address => {
  const g = groups(a)
  for (let i = 0; i < 8; i++) {
    const keep = Math.min(16, Math.max(0, len - 16 * i))
    g[i] = keep === 0 ? 0 : g[i]! & ((0xffff << (16 - keep)) & 0xffff)
  }
  return ipv6(g[0]!, g[1]!, g[2]!, g[3]!, g[4]!, g[5]!, g[6]!, g[7]!)
}

/** Whether the first `len` bits (0..128) of `a` and `prefix` agree. Allocation-free. */
export const inPrefix = (a: Ipv6Address, prefix: Ipv6Address, len: number): boolean => {
  let i = 0
  for (; len >= 16; i++, len -= 16) if (a.charCodeAt(i) !== prefix.charCodeAt(i)) return false
  if (len === 0) return true
  const m = (0xffff << (16 - len)) & 0xffff
  return (a.charCodeAt(i) & m) === (prefix.charCodeAt(i) & m)
}

/** The number of leading bits `a` and `b` share, 0..128 (RFC 6724 §2.2 CommonPrefixLen, without its 64-bit cap). */
export const commonPrefixLen = (a: Ipv6Address, b: Ipv6Address): number => {
  for (let i = 0; i < 8; i++) {
    const x = a.charCodeAt(i) ^ b.charCodeAt(i)
    if (x !== 0) return 16 * i + Math.clz32(x) - 16
  }
  return 128
}

// ---------------------------------------------------------------------------------------------------------------
// Kinds of address (RFC 4291 §2.4)

export const isUnspecified = (a: Ipv6Address): boolean => a === IPV6_UNSPECIFIED
export const isLoopback = (a: Ipv6Address): boolean => a === IPV6_LOOPBACK
/** ff00::/8 (RFC 4291 §2.7). */
export const isMulticast = (a: Ipv6Address): boolean => a.charCodeAt(0) >>> 8 === 0xff
/** fe80::/10 (RFC 4291 §2.5.6). */
export const isLinkLocal = (a: Ipv6Address): boolean => (a.charCodeAt(0) & 0xffc0) === 0xfe80
/** The 4-bit scope of a multicast address (RFC 4291 §2.7): 1 interface-local, 2 link-local, 5 site, 0xe global. */
export const multicastScope = (a: Ipv6Address): number => a.charCodeAt(0) & 0x0f

/**
 * A source no packet may legitimately carry on a link: multicast (RFC 4291 §2.7, "must not be used as a
 * source address") or loopback (§2.5.3, never sent outside a node). The unspecified address is left to the
 * caller: it is the legitimate source of DAD probes (RFC 4862 §5.4.2) and of some MLD reports.
 */
export const isInvalidSource = (a: Ipv6Address): boolean => isMulticast(a) || a === IPV6_LOOPBACK

/** ff02::1:ff00:0/104 (RFC 4291 §2.7.1). */
export const isSolicitedNode = (a: Ipv6Address): boolean =>
  a.charCodeAt(0) === 0xff02 &&
  a.charCodeAt(1) === 0 &&
  a.charCodeAt(2) === 0 &&
  a.charCodeAt(3) === 0 &&
  a.charCodeAt(4) === 0 &&
  a.charCodeAt(5) === 1 &&
  a.charCodeAt(6) >>> 8 === 0xff

/** The solicited-node multicast address of `a`: ff02::1:ff00:0 plus its low 24 bits (RFC 4291 §2.7.1). */
export const solicitedNode = (a: Ipv6Address): Ipv6Address =>
  ipv6(0xff02, 0, 0, 0, 0, 1, 0xff00 | (a.charCodeAt(6) & 0xff), a.charCodeAt(7))

// ---------------------------------------------------------------------------------------------------------------
// Link layer (RFC 2464: IPv6 over Ethernet)

const TWO32 = 0x100000000

/**
 * The modified EUI-64 interface identifier of an Ethernet MAC (RFC 4291 §2.5.1 and Appendix A, RFC 2464
 * §4): 0xfffe inserted between the two halves and the universal/local bit inverted. Returned as the low
 * 64 bits of an otherwise zero address, ready for `withInterfaceId`.
 */
export const interfaceIdFromMac = (m: MacAddress): Ipv6Address => {
  const hi = Math.floor(m / TWO32)
  const lo = m >>> 0
  return ipv6(0, 0, 0, 0, hi ^ 0x0200, ((lo >>> 24) << 8) | 0xff, 0xfe00 | ((lo >>> 16) & 0xff), lo & 0xffff)
}

/** The upper 64 bits of `prefix` and the lower 64 of `iid` (RFC 4862 §5.5.3 d, for a /64 prefix). */
export const withInterfaceId = (prefix: Ipv6Address, iid: Ipv6Address): Ipv6Address => (prefix.slice(0, 4) + iid.slice(4)) as Ipv6Address

/** fe80::/64 plus the MAC's EUI-64 interface identifier (RFC 4862 §5.3, RFC 2464 §5). */
export const linkLocalFromMac = (m: MacAddress): Ipv6Address => withInterfaceId(LINK_LOCAL_PREFIX, interfaceIdFromMac(m))

/** The Ethernet destination of an IPv6 multicast packet: 33:33 and the address's last 32 bits (RFC 2464 §7). */
export const multicastMac = (a: Ipv6Address): MacAddress => mac(0x3333, ((a.charCodeAt(6) << 16) | a.charCodeAt(7)) >>> 0)
