/**
 * UDP (RFC 768) over IPv4 and IPv6 (RFC 8200 §8.1): demux by destination port to bound handlers (a bound
 * port takes both families), ICMP or ICMPv6 port unreachable for closed ports (each rate limited by its IP
 * layer), and sending with a full checksum to either family. Handlers run synchronously in the receive burst; the payload they
 * get is borrowed (copy what you keep).
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { IpAddress } from "../protocols/ipAddress.js"
import type { Ipv6Address } from "../protocols/ipv6/address.js"
import * as Cs from "../protocols/checksum.js"
import * as IcmpWire from "../protocols/icmp/wire.js"
import * as Icmp6Wire from "../protocols/icmpv6/wire.js"
import * as Ip from "../protocols/ipv4/wire.js"
import * as Ip6 from "../protocols/ipv6/wire.js"
import * as UdpWire from "../protocols/udp/wire.js"
import { countDrop, type DropCounts } from "./Counters.js"
import { Interface } from "./Interface.js"
import { Ipv4, L4_OFFSET } from "./Ipv4.js"
import { Ipv6, L4_OFFSET6 } from "./Ipv6.js"

export class UdpError extends Data.TaggedError("UdpError")<{
  readonly reason: "AddressInUse" | "NoRoute" | "TooLarge"
  readonly port: number
}> {
  override get message(): string {
    return `UDP ${this.reason} (port ${this.port})`
  }
}

export interface UdpDatagram {
  readonly src: IpAddress
  readonly srcPort: number
  readonly dst: IpAddress
  readonly dstPort: number
  readonly payload: Uint8Array
  readonly nowMs: number
}

export type UdpHandler = (d: UdpDatagram) => void

/**
 * An ICMP destination unreachable about a datagram this port sent (port, host, net, protocol...):
 * what a connected kernel UDP socket reports as ECONNREFUSED/EHOSTUNREACH on its next call.
 */
export interface UdpUnreachable {
  /** ICMP's code, or ICMPv6's (port unreachable is 3 in one, 4 in the other): see `portUnreachable`. */
  readonly code: number
  /** The remote's port is closed (ICMP code 3, ICMPv6 code 4). */
  readonly portUnreachable: boolean
  readonly reporter: IpAddress
  readonly remote: IpAddress
  readonly remotePort: number
  readonly nowMs: number
}

export type UdpErrorHandler = (e: UdpUnreachable) => void

export interface UdpStats {
  datagramsIn: number
  datagramsOut: number
  noPort: number
  /** ICMP destination unreachable errors about our datagrams, delivered to the sending port. */
  unreachableIn: number
  /** Datagrams over IPv6, in and out (also counted in datagramsIn/datagramsOut). */
  datagramsIn6: number
  datagramsOut6: number
  readonly drops: DropCounts
}

export interface UdpShape {
  /** Bind a port for the lifetime of the scope. Port 0 picks an ephemeral port. Returns the port. */
  readonly bind: (port: number, handler: UdpHandler, onError?: UdpErrorHandler) => Effect.Effect<number, UdpError, Scope.Scope>
  /** Send one datagram (copied). Returns false when unroutable or too large (counted). */
  readonly send: (srcPort: number, dst: IpAddress, dstPort: number, payload: Uint8Array) => boolean
  /** Send with a payload writer, to build in place without a copy. */
  readonly sendWith: (srcPort: number, dst: IpAddress, dstPort: number, len: number, write: (b: Uint8Array) => void) => boolean
  readonly stats: UdpStats
}

export class Udp extends Context.Tag("@miniperf/Udp")<Udp, UdpShape>() {}

const MAX_PAYLOAD = 65535 - 20 - 8

export const make = Effect.gen(function* () {
  const ip = yield* Ipv4
  const ip6 = yield* Ipv6
  const iface = yield* Interface
  const ports = new Map<number, UdpHandler>()
  const errorPorts = new Map<number, UdpErrorHandler>()
  const stats: UdpStats = { datagramsIn: 0, datagramsOut: 0, noPort: 0, unreachableIn: 0, datagramsIn6: 0, datagramsOut6: 0, drops: {} }
  let nextEphemeral = 49152 + Math.floor(Math.random() * 16384)

  ip.register(Ip.PROTO_UDP, (h, payload, _frame, trusted, nowMs) => {
    const pseudo = Cs.pseudoV4(h.src, h.dst, Ip.PROTO_UDP, payload.length >= 8 ? UdpWire.length(payload) : 0)
    const r = UdpWire.parse(payload, pseudo, !trusted)
    if (typeof r === "string") {
      countDrop(stats.drops, r)
      return
    }
    stats.datagramsIn++
    const handler = ports.get(r.dstPort)
    if (handler === undefined) {
      stats.noPort++
      if (!iface.isBroadcast(h.dst) && h.dst === iface.current().address) {
        // Quote the datagram as received: rebuild the IP header view from the payload's position.
        const dgram = payload.byteOffset >= h.headerLen ? new Uint8Array(payload.buffer, payload.byteOffset - h.headerLen, h.headerLen + payload.length) : undefined
        if (dgram !== undefined) ip.sendIcmpError(IcmpWire.TYPE_DEST_UNREACHABLE, IcmpWire.CODE_PORT_UNREACHABLE, dgram)
      }
      return
    }
    handler({ src: h.src, srcPort: r.srcPort, dst: h.dst, dstPort: r.dstPort, payload: UdpWire.payload(payload), nowMs })
  })

  ip.registerErrorHandler(Ip.PROTO_UDP, (e) => {
    if (e.type !== IcmpWire.TYPE_DEST_UNREACHABLE) return
    const h = errorPorts.get(e.localPort)
    if (h === undefined) return
    stats.unreachableIn++
    h({
      code: e.code,
      portUnreachable: e.code === IcmpWire.CODE_PORT_UNREACHABLE,
      reporter: e.reporter,
      remote: e.remote,
      remotePort: e.remotePort,
      nowMs: e.nowMs
    })
  })

  ip6.register(Ip6.NH_UDP, ({ ip: h, payload, packet, linkMulticast, nowMs, checksumTrusted }) => {
    const pseudo = Cs.pseudoV6(h.src, h.dst, Ip6.NH_UDP, payload.length >= 8 ? UdpWire.length(payload) : 0)
    const r = UdpWire.parseV6(payload, pseudo, !checksumTrusted)
    if (typeof r === "string") {
      countDrop(stats.drops, r)
      return
    }
    stats.datagramsIn++
    stats.datagramsIn6++
    const handler = ports.get(r.dstPort)
    if (handler === undefined) {
      stats.noPort++
      // to a group or in a link multicast frame the Ipv6 layer suppresses it (RFC 4443 §2.4 e); rate limited there
      ip6.sendIcmpError(Icmp6Wire.TYPE_DEST_UNREACHABLE, Icmp6Wire.CODE_PORT_UNREACHABLE, 0, packet, linkMulticast)
      return
    }
    handler({ src: h.src, srcPort: r.srcPort, dst: h.dst, dstPort: r.dstPort, payload: UdpWire.payload(payload), nowMs })
  })

  ip6.registerErrorHandler(Ip6.NH_UDP, (e) => {
    if (e.type !== Icmp6Wire.TYPE_DEST_UNREACHABLE) return
    const h = errorPorts.get(e.localPort)
    if (h === undefined) return
    stats.unreachableIn++
    h({
      code: e.code,
      portUnreachable: e.code === Icmp6Wire.CODE_PORT_UNREACHABLE,
      reporter: e.reporter,
      remote: e.remote,
      remotePort: e.remotePort,
      nowMs: e.nowMs
    })
  })

  const sendWith6 = (srcPort: number, dst: Ipv6Address, dstPort: number, len: number, write: (b: Uint8Array) => void): boolean => {
    const src = ip6.selectSource(dst)
    if (src === undefined) {
      countDrop(stats.drops, "NoRoute")
      return false
    }
    const f = ip6.alloc(UdpWire.HEADER_LEN + len)
    write(f.subarray(L4_OFFSET6 + UdpWire.HEADER_LEN, L4_OFFSET6 + UdpWire.HEADER_LEN + len))
    const pseudo = Cs.pseudoV6(src, dst, Ip6.NH_UDP, UdpWire.HEADER_LEN + len)
    UdpWire.emit({ srcPort, dstPort, payloadLen: len }, f.subarray(L4_OFFSET6, L4_OFFSET6 + UdpWire.HEADER_LEN + len), pseudo, true)
    const ok = ip6.send(f, src, dst, Ip6.NH_UDP, UdpWire.HEADER_LEN + len)
    if (ok) {
      stats.datagramsOut++
      stats.datagramsOut6++
    }
    return ok
  }

  const sendWith = (srcPort: number, dst: IpAddress, dstPort: number, len: number, write: (b: Uint8Array) => void): boolean => {
    if (len > MAX_PAYLOAD) {
      countDrop(stats.drops, "BadLength")
      return false
    }
    if (typeof dst !== "number") return sendWith6(srcPort, dst, dstPort, len, write)
    const f = ip.alloc(UdpWire.HEADER_LEN + len)
    write(f.subarray(L4_OFFSET + UdpWire.HEADER_LEN))
    const src = ip.address()
    const pseudo = Cs.pseudoV4(src, dst, Ip.PROTO_UDP, UdpWire.HEADER_LEN + len)
    UdpWire.emit({ srcPort, dstPort, payloadLen: len }, f.subarray(L4_OFFSET), pseudo, true)
    const ok = ip.send(f, dst, Ip.PROTO_UDP, UdpWire.HEADER_LEN + len)
    if (ok) stats.datagramsOut++
    return ok
  }

  return Udp.of({
    bind: (port, handler, onError) =>
      Effect.acquireRelease(
        Effect.suspend(() => {
          let p = port
          if (p === 0) {
            for (let i = 0; i < 16384; i++) {
              const c = 49152 + ((nextEphemeral + i) % 16384)
              if (!ports.has(c)) {
                p = c
                nextEphemeral = c + 1
                break
              }
            }
            if (p === 0) return Effect.fail(new UdpError({ reason: "AddressInUse", port }))
          }
          if (ports.has(p)) return Effect.fail(new UdpError({ reason: "AddressInUse", port: p }))
          ports.set(p, handler)
          if (onError !== undefined) errorPorts.set(p, onError)
          return Effect.succeed(p)
        }),
        (p) =>
          Effect.sync(() => {
            ports.delete(p)
            errorPorts.delete(p)
          })
      ),
    send: (srcPort, dst, dstPort, payload) => sendWith(srcPort, dst, dstPort, payload.length, (b) => b.set(payload)),
    sendWith,
    stats
  })
})

export const layer: Layer.Layer<Udp, never, Ipv4 | Ipv6 | Interface> = Layer.effect(Udp, make)
