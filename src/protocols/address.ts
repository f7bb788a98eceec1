/**
 * Addresses as numbers (style.md §2.3): an IPv4 address is a branded u32, a MAC a branded 48-bit
 * integer. Comparisons and Map keys cost nothing; formatting happens only at the edges.
 */
declare const Ipv4Brand: unique symbol
declare const MacBrand: unique symbol
export type Ipv4Address = number & { readonly [Ipv4Brand]: "Ipv4Address" }
export type MacAddress = number & { readonly [MacBrand]: "MacAddress" }

export const ipv4 = (a: number, b: number, c: number, d: number): Ipv4Address =>
  ((((a & 0xff) << 24) | ((b & 0xff) << 16) | ((c & 0xff) << 8) | (d & 0xff)) >>> 0) as Ipv4Address

export const IPV4_ANY = 0 as Ipv4Address
export const IPV4_BROADCAST = 0xffffffff as Ipv4Address

const ipv4Re = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

export const parseIpv4 = (s: string): Ipv4Address | undefined => {
  const m = ipv4Re.exec(s)
  if (m === null) return undefined
  const parts = [m[1], m[2], m[3], m[4]].map((x) => Number(x))
  if (parts.some((p) => p > 255)) return undefined
  return ipv4(parts[0]!, parts[1]!, parts[2]!, parts[3]!)
}

export const formatIpv4 = (a: number): string => `${(a >>> 24) & 0xff}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`

export const readIpv4 = (b: Uint8Array, o: number): Ipv4Address =>
  (((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0) as Ipv4Address

export const writeIpv4 = (b: Uint8Array, o: number, a: number): void => {
  b[o] = (a >>> 24) & 0xff
  b[o + 1] = (a >>> 16) & 0xff
  b[o + 2] = (a >>> 8) & 0xff
  b[o + 3] = a & 0xff
}

/** Network mask for a prefix length 0..32. */
export const prefixMask = (prefix: number): number => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0)

export const sameSubnet = (a: number, b: number, prefix: number): boolean => {
  const m = prefixMask(prefix)
  return ((a & m) >>> 0) === ((b & m) >>> 0)
}

export const MAC_BROADCAST = 0xffffffffffff as MacAddress
export const MAC_ZERO = 0 as MacAddress
const TWO32 = 0x100000000

export const mac = (hi16: number, lo32: number): MacAddress => ((hi16 & 0xffff) * TWO32 + (lo32 >>> 0)) as MacAddress

const macRe = /^([0-9a-fA-F]{2})([:-][0-9a-fA-F]{2}){5}$/

export const parseMac = (s: string): MacAddress | undefined => {
  if (!macRe.test(s)) return undefined
  const p = s.split(/[:-]/).map((x) => parseInt(x, 16))
  return mac((p[0]! << 8) | p[1]!, ((p[2]! << 24) | (p[3]! << 16) | (p[4]! << 8) | p[5]!) >>> 0)
}

export const formatMac = (m: number): string => {
  const hi = Math.floor(m / TWO32)
  const lo = m >>> 0
  const bytes = [(hi >>> 8) & 0xff, hi & 0xff, (lo >>> 24) & 0xff, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff]
  return bytes.map((x) => x.toString(16).padStart(2, "0")).join(":")
}

export const readMac = (b: Uint8Array, o: number): MacAddress =>
  (((b[o]! << 8) | b[o + 1]!) * TWO32 + (((b[o + 2]! << 24) | (b[o + 3]! << 16) | (b[o + 4]! << 8) | b[o + 5]!) >>> 0)) as MacAddress

export const writeMac = (b: Uint8Array, o: number, m: number): void => {
  const hi = Math.floor(m / TWO32)
  const lo = m >>> 0
  b[o] = (hi >>> 8) & 0xff
  b[o + 1] = hi & 0xff
  b[o + 2] = (lo >>> 24) & 0xff
  b[o + 3] = (lo >>> 16) & 0xff
  b[o + 4] = (lo >>> 8) & 0xff
  b[o + 5] = lo & 0xff
}

/** Multicast bit (I/G) of the first octet; broadcast counts as multicast. */
export const isMulticastMac = (m: number): boolean => (Math.floor(m / TWO32) & 0x0100) !== 0

/** 224.0.0.0/4 (RFC 5771). */
export const isMulticastIpv4 = (a: number): boolean => a >>> 28 === 0xe

/**
 * Whether `src` is an address no host may send from (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7), seen from an
 * interface with address `ourAddr`/`prefix` (ourAddr 0 while unconfigured):
 *
 * - 0.0.0.0/8, "this host on this network": only a host that does not know its address yet may use it
 *   (RFC 1122 (a), (b)). We are a DHCP client, never a DHCP server or BOOTP relay, so no datagram we take
 *   comes legitimately from it. (Linux drops 0/8 sources as martian too.)
 * - 127.0.0.0/8, loopback: never on a wire (RFC 1122 (g)).
 * - 224.0.0.0/4, multicast, and 240.0.0.0/4, class E with 255.255.255.255 in it: not a host address.
 * - our subnet's directed broadcast (none on /31 and /32 links, RFC 3021), and our own address (a loop,
 *   or someone spoofing us).
 *
 * A datagram from any of these must not be answered: an answer would go to a broadcast or multicast
 * address (a reflector), to ourselves, or nowhere.
 */
export const isMartianSource = (src: number, ourAddr: number, prefix: number): boolean => {
  const top = src >>> 24
  if (top === 0 || top === 127 || top >= 224) return true
  if (ourAddr === 0) return false
  if (src === ourAddr) return true
  if (prefix >= 31) return false
  return src === (ourAddr | ~prefixMask(prefix)) >>> 0
}
