/** Builders for frames a peer would send, made with our own codecs (the wire tests check those against real captures). */
import { MAC_ZERO, type Ipv4Address, type MacAddress } from "../../src/protocols/address.js"
import * as ArpWire from "../../src/protocols/arp/wire.js"
import * as Cs from "../../src/protocols/checksum.js"
import * as Eth from "../../src/protocols/ethernet/wire.js"
import * as IcmpWire from "../../src/protocols/icmp/wire.js"
import * as Ip from "../../src/protocols/ipv4/wire.js"
import * as UdpWire from "../../src/protocols/udp/wire.js"

export const arpFrame = (op: number, srcMac: MacAddress, srcIp: number, dstMac: MacAddress, targetIp: number, targetMac: MacAddress = MAC_ZERO): Uint8Array => {
  const b = new Uint8Array(42)
  Eth.emitFields(b, dstMac, srcMac, Eth.ETHERTYPE_ARP)
  ArpWire.emit({ op, senderMac: srcMac, senderIp: srcIp as Ipv4Address, targetMac, targetIp: targetIp as Ipv4Address }, b.subarray(14))
  return b
}

export const ipFrame = (
  srcMac: MacAddress,
  dstMac: MacAddress,
  src: number,
  dst: number,
  protocol: number,
  l4: Uint8Array,
  opts: { ident?: number; moreFragments?: boolean; fragmentOffset?: number; ttl?: number } = {}
): Uint8Array => {
  const b = new Uint8Array(34 + l4.length)
  Eth.emitFields(b, dstMac, srcMac, Eth.ETHERTYPE_IPV4)
  b.set(l4, 34)
  Ip.emitFields(b.subarray(14), src, dst, protocol, l4.length, opts.ident ?? 1, opts.ttl ?? 64, 0, false, opts.moreFragments ?? false, opts.fragmentOffset ?? 0)
  return b
}

export const icmpEcho = (ident: number, seq: number, data: Uint8Array): Uint8Array => {
  const b = new Uint8Array(8 + data.length)
  b.set(data, 8)
  IcmpWire.emit({ type: IcmpWire.TYPE_ECHO_REQUEST, code: 0, rest: ((ident << 16) | seq) >>> 0, payloadLen: data.length }, b)
  return b
}

export const udpDatagram = (src: number, dst: number, srcPort: number, dstPort: number, data: Uint8Array): Uint8Array => {
  const b = new Uint8Array(8 + data.length)
  b.set(data, 8)
  UdpWire.emit({ srcPort, dstPort, payloadLen: data.length }, b, Cs.pseudoV4(src, dst, Ip.PROTO_UDP, 8 + data.length), true)
  return b
}

/** Split an IP payload into fragments frames of at most `per` payload bytes (multiple of 8). */
export const fragments = (srcMac: MacAddress, dstMac: MacAddress, src: number, dst: number, protocol: number, l4: Uint8Array, per: number, ident: number): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  for (let o = 0; o < l4.length; o += per) {
    const part = l4.subarray(o, Math.min(l4.length, o + per))
    out.push(ipFrame(srcMac, dstMac, src, dst, protocol, part, { ident, moreFragments: o + per < l4.length, fragmentOffset: o }))
  }
  return out
}
