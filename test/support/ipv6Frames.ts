/**
 * IPv6 frames a peer sends, built with our codecs (the wire tests check those against the kernel's captures), and the
 * IPv6 frames our stack sent, parsed back. For the layer tests on a channel NIC.
 */
import { expect } from "@effect/vitest"
import type { MacAddress } from "../../src/protocols/address.js"
import * as Cs from "../../src/protocols/checksum.js"
import * as Eth from "../../src/protocols/ethernet/wire.js"
import * as Icmp6 from "../../src/protocols/icmpv6/wire.js"
import * as Nd from "../../src/protocols/icmpv6/nd.js"
import type { Ipv6Address } from "../../src/protocols/ipv6/address.js"
import * as Ip6 from "../../src/protocols/ipv6/wire.js"
import type { Frame } from "../../src/nic/Frame.js"

export const ip6Frame = (
  srcMac: MacAddress,
  dstMac: MacAddress,
  src: Ipv6Address,
  dst: Ipv6Address,
  nh: number,
  l4: Uint8Array,
  hopLimit = 64
): Uint8Array => {
  const b = new Uint8Array(Eth.HEADER_LEN + Ip6.HEADER_LEN + l4.length)
  Eth.emitFields(b, dstMac, srcMac, Eth.ETHERTYPE_IPV6)
  Ip6.emitFields(b.subarray(Eth.HEADER_LEN), src, dst, nh, l4.length, hopLimit)
  b.set(l4, Eth.HEADER_LEN + Ip6.HEADER_LEN)
  return b
}

export const ndMsg = (r: Nd.NdRepr, src: Ipv6Address, dst: Ipv6Address): Uint8Array => {
  const b = new Uint8Array(Nd.length(r))
  Nd.emit(r, b, Cs.pseudoV6(src, dst, Ip6.NH_ICMPV6, b.length))
  return b
}

export const echoRequest = (src: Ipv6Address, dst: Ipv6Address, ident: number, seq: number, data: Uint8Array): Uint8Array => {
  const b = new Uint8Array(8 + data.length)
  b.set(data, 8)
  Icmp6.emit(
    { type: Icmp6.TYPE_ECHO_REQUEST, code: 0, rest: ((ident << 16) | seq) >>> 0, payloadLen: data.length },
    b,
    Cs.pseudoV6(src, dst, Ip6.NH_ICMPV6, b.length)
  )
  return b
}

export interface Sent {
  readonly ethDst: MacAddress
  readonly ip: Ip6.Ipv6Repr
  readonly packet: Uint8Array
  readonly chain: Ip6.Chain
  /** The upper-layer message, when the walk reached it. */
  readonly upper: Uint8Array | undefined
}

/** Our IPv6 frames, parsed; every ICMPv6 message must carry a valid checksum. */
export const v6Frames = (frames: ReadonlyArray<Frame>): Array<Sent> =>
  frames
    .filter((f) => Eth.etherType(f.data) === Eth.ETHERTYPE_IPV6)
    .map((f) => {
      const packet = f.data.subarray(Eth.HEADER_LEN)
      const ip = Ip6.parse(packet)
      if (typeof ip === "string") throw new Error(`bad IPv6 packet sent: ${ip}`)
      const chain = Ip6.walk(packet, ip)
      const upper = chain._tag === "Upper" ? packet.subarray(chain.offset, Ip6.HEADER_LEN + ip.payloadLen) : undefined
      if (upper !== undefined && chain._tag === "Upper" && chain.proto === Ip6.NH_ICMPV6) {
        expect(typeof Icmp6.parse(upper, Cs.pseudoV6(ip.src, ip.dst, Ip6.NH_ICMPV6, upper.length))).toBe("object")
      }
      return { ethDst: Eth.dst(f.data), ip, packet, chain, upper }
    })

/** The ND message of a sent frame (throws when it is not one). */
export const ndOf = (s: Sent): Nd.NdRepr => {
  const r = Nd.parse(s.upper!, s.ip)
  if (typeof r === "string") throw new Error(`bad ND message sent: ${r}`)
  return r
}

export const icmpType = (s: Sent): number | undefined => (s.upper === undefined ? undefined : s.upper[0])
