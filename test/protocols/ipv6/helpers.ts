/** Shared pieces of the IPv6 tests: addresses (RFC 3849 and link-local only), captured packets, builders. */
import fc from "fast-check"
import { isDrop } from "../../../src/protocols/drop.js"
import * as Eth from "../../../src/protocols/ethernet/wire.js"
import * as A from "../../../src/protocols/ipv6/address.js"
import * as Ip6 from "../../../src/protocols/ipv6/wire.js"
import { frame } from "../common/fixtures.js"

export const addr = (s: string): A.Ipv6Address => {
  const a = A.parseIpv6(s)
  if (a === undefined) throw new Error(`test address ${s} does not parse`)
  return a
}

export const IP1 = addr("2001:db8::1")
export const IP2 = addr("2001:db8::2")
export const LL1 = addr("fe80::200:5eff:fe00:5301")
export const LL2 = addr("fe80::200:5eff:fe00:5302")

/** Addresses from 2001:db8::/32 and fe80::/10 only. */
export const addrArb: fc.Arbitrary<A.Ipv6Address> = fc.oneof(
  fc.tuple(fc.nat(0xffff), fc.nat(0xffff), fc.nat(0xffff), fc.nat(0xffff), fc.nat(0xffff), fc.nat(0xffff)).map(([a, b, c, d, e, f]) =>
    A.ipv6(0x2001, 0x0db8, a, b, c, d, e, f)
  ),
  fc.tuple(fc.nat(0xffff), fc.nat(0xffff), fc.nat(0xffff), fc.nat(0xffff)).map(([a, b, c, d]) => A.ipv6(0xfe80, 0, 0, 0, a, b, c, d))
)

/** The IPv6 packet (Ethernet payload) of a captured frame. */
export const ip6Of = (name: string): Uint8Array => frame(name).subarray(Eth.HEADER_LEN)

export const parsed = (b: Uint8Array): Ip6.Ipv6Repr => {
  const r = Ip6.parse(b)
  if (isDrop(r)) throw new Error(`not an IPv6 packet: ${r}`)
  return r
}

/** A packet: fixed header (next header `nh`), then `rest` (extension headers and upper-layer bytes). */
export const packet = (nh: number, rest: ReadonlyArray<number> | Uint8Array, dst: A.Ipv6Address = IP2, src: A.Ipv6Address = IP1): Uint8Array => {
  const b = new Uint8Array(Ip6.HEADER_LEN + rest.length)
  Ip6.emitFields(b, src, dst, nh, rest.length, 64)
  b.set(rest, Ip6.HEADER_LEN)
  return b
}

/** An options header (hop-by-hop or destination) holding `opts` (raw TLV bytes), padded with PadN/Pad1 to 8n. */
export const optionsHeader = (next: number, opts: ReadonlyArray<number>): Array<number> => {
  const body = [...opts]
  const total = Math.ceil((2 + body.length) / 8) * 8
  const pad = total - 2 - body.length
  if (pad === 1) body.push(0)
  else if (pad > 1) body.push(1, pad - 2, ...new Array<number>(pad - 2).fill(0))
  return [next, total / 8 - 1, ...body]
}

/** A routing header with `addresses` 16-byte entries. */
export const routingHeader = (next: number, type: number, segmentsLeft: number, addresses = 1): Array<number> => [
  next,
  addresses * 2,
  type,
  segmentsLeft,
  0,
  0,
  0,
  0,
  ...new Array<number>(16 * addresses).fill(0x20)
]

export const fragmentHeader = (next: number, offset: number, more: boolean, ident: number): Array<number> => {
  const b = new Uint8Array(8)
  Ip6.emitFragmentHeader(b, 0, next, offset, more, ident)
  return [...b]
}

/** `n` bytes of a recognisable pattern. */
export const pattern = (n: number, seed = 0): Uint8Array => {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed + (i >>> 8)) & 0xff
  return b
}
