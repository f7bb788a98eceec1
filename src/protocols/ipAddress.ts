/**
 * Either address family where a transport takes both (issue 11 phase 2): an IPv4 address is a number
 * (protocols/address.ts), an IPv6 address an eight-code-unit string (protocols/ipv6/address.ts). Both are
 * primitives, so `typeof` tells them apart without allocating, `===` compares, and either keys a Map.
 */
import { formatIpv4, parseIpv4, type Ipv4Address } from "./address.js"
import { formatIpv6, parseIpv6, type Ipv6Address } from "./ipv6/address.js"

export type IpAddress = Ipv4Address | Ipv6Address

export const isIpv6 = (a: IpAddress | number | string): a is Ipv6Address => typeof a === "string"

/** Dotted quad for IPv4, RFC 5952 for IPv6. */
export const formatIp = (a: IpAddress | number | string): string => (typeof a === "number" ? formatIpv4(a) : formatIpv6(a as Ipv6Address))

/** As iperf prints an endpoint's address where it brackets IPv6 ones ("[2001:db8::1]"). */
export const formatIpBracketed = (a: IpAddress | number | string): string =>
  typeof a === "number" ? formatIpv4(a) : `[${formatIpv6(a as Ipv6Address)}]`

/** A dotted quad or any RFC 4291 text form; undefined for anything else. */
export const parseIp = (s: string): IpAddress | undefined => parseIpv4(s) ?? parseIpv6(s)

/**
 * The key under which per-source limits count an address: the IPv4 address itself, or the /64 an IPv6
 * address is in (one host on a link can take any address of its /64, so counting whole addresses would
 * give it 2^64 budgets).
 */
export type SourceKey = number | string

export const sourceKey = (a: IpAddress | number | string): SourceKey => (typeof a === "number" ? a : a.slice(0, 4))

/**
 * An address and port as one Map key: a number for IPv4 (address * 65536 + port, the hot path, no
 * allocation), a nine-code-unit string for IPv6. The two kinds never collide.
 */
export type EndpointKey = number | string

export const endpointKey = (a: IpAddress | number | string, port: number): EndpointKey =>
  typeof a === "number" ? a * 65536 + port : a + String.fromCharCode(port)

export const endpointKeyAddress = (k: EndpointKey): IpAddress =>
  (typeof k === "number" ? Math.floor(k / 65536) : k.slice(0, 8)) as IpAddress

export const endpointKeyPort = (k: EndpointKey): number => (typeof k === "number" ? k % 65536 : k.charCodeAt(8))

/**
 * "address:port" as the console writes an endpoint: an IPv6 address in brackets ("[2001:db8::1]:5001",
 * RFC 5952 §6), since its own colons would run into the port's. Lines in the real servers' "ADDR port N"
 * form take `formatIp` (iperf 2.1.8 and iperf3 3.12 print IPv6 addresses there bare).
 */
export const formatEndpoint = (a: IpAddress | number | string, port: number): string => `${formatIpBracketed(a)}:${port}`
