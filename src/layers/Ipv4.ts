/**
 * IPv4 (RFC 791, RFC 1122): input checks and demux by protocol number, reassembly with limits, routing
 * to the subnet or via the gateway, fragmentation of outgoing datagrams over the MTU, and ICMP errors on
 * behalf of the layers above (rate limited like a host should, RFC 1812 §4.3.2.8).
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { isMartianSource, isMulticastIpv4, isMulticastMac, readIpv4, type Ipv4Address } from "../protocols/address.js"
import { countDrop, type DropCounts } from "./Counters.js"
import * as Eth from "../protocols/ethernet/wire.js"
import * as Icmp from "../protocols/icmp/wire.js"
import * as Ip from "../protocols/ipv4/wire.js"
import { Reassembler, fragmentPlan, DEFAULT_CONFIG as REASSEMBLY_DEFAULTS, type ReassemblyConfig } from "../protocols/ipv4/reassembly.js"
import { PLAIN, VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM, type Frame, type VnetMeta } from "../nic/Frame.js"
import { Arp } from "./Arp.js"
import { TokenBucket } from "../protocols/tokenBucket.js"
import { Ethernet } from "./Ethernet.js"
import { Interface } from "./Interface.js"

/** Offset of the IP header in an outgoing frame, and of the transport header. */
export const IP_OFFSET = Eth.HEADER_LEN
export const L4_OFFSET = Eth.HEADER_LEN + Ip.HEADER_LEN

/**
 * A received datagram handed to a transport. `payload` is a view into the (borrowed) frame, or the
 * reassembled buffer. `checksumTrusted` is true when the NIC verified the L4 checksum or the sender was
 * local and left it partial (virtio NEEDS_CSUM / DATA_VALID): the transport must then not verify it.
 */
export type ProtocolHandler = (ip: Ip.Ipv4Repr, payload: Uint8Array, frame: Frame, checksumTrusted: boolean, nowMs: number) => void

/**
 * An ICMP error about a datagram we sent (RFC 1122 §3.2.2.1, §4.1.3.3): the quoted header names our
 * port and the remote endpoint. `remotePort`/`localPort` are the first two 16-bit words of the quoted
 * transport header (UDP and TCP both start with the ports).
 */
export interface IcmpErrorInfo {
  readonly type: number
  readonly code: number
  /** Who sent the ICMP error (the destination host, or a router on the way). */
  readonly reporter: Ipv4Address
  readonly remote: Ipv4Address
  readonly localPort: number
  readonly remotePort: number
  readonly nowMs: number
}

export type IcmpErrorHandler = (e: IcmpErrorInfo) => void

export interface Ipv4Stats {
  packetsIn: number
  packetsOut: number
  delivered: number
  fragmentsIn: number
  reassembled: number
  reassemblyTimeouts: number
  fragmentsOut: number
  fragmentedOut: number
  noRoute: number
  icmpErrorsOut: number
  icmpErrorsRateLimited: number
  /**
   * ICMP errors not sent because RFC 1122 §3.2.2 forbids them: the offending datagram came from a
   * martian source, or went to a broadcast or multicast address (IP or link layer).
   */
  icmpErrorsSuppressed: number
  /** Incomplete datagrams evicted (oldest first) to admit a newer one; see Reassembler. */
  reassemblyEvictions: number
  /** Fragments that repeated bytes already held (ignored, the datagram kept). */
  fragmentDuplicates: number
  readonly drops: DropCounts
}

export interface SendOptions {
  readonly ttl?: number
  readonly tos?: number
  readonly dontFragment?: boolean
  readonly meta?: VnetMeta
}

export interface Ipv4Shape {
  readonly register: (protocol: number, handler: ProtocolHandler) => void
  /** Receive ICMP errors about datagrams of `protocol` we sent (like Linux's err_handler per protocol). */
  readonly registerErrorHandler: (protocol: number, handler: IcmpErrorHandler) => void
  /** Called by the ICMP layer with a received error's quoted datagram (IP header + at least 8 bytes). */
  readonly deliverIcmpError: (type: number, code: number, reporter: Ipv4Address, quoted: Uint8Array, nowMs: number) => void
  readonly address: () => Ipv4Address
  readonly mtu: number
  /** An outgoing frame (from the TX pool, not zeroed) with `l4Len` bytes of transport data at L4_OFFSET: write them all. */
  readonly alloc: (l4Len: number) => Uint8Array
  /**
   * Fill the IPv4 and Ethernet headers of a frame from `alloc` and send it to `dst`. Datagrams over the
   * MTU are fragmented unless DF is set or `meta` marks a GSO super-frame. Returns false when there is no
   * route (counted).
   */
  readonly send: (frame: Uint8Array, dst: Ipv4Address, protocol: number, l4Len: number, opts?: SendOptions) => boolean
  /** ICMP error (type, code) about a received datagram (its IP header and payload as received). */
  readonly sendIcmpError: (type: number, code: number, offending: Uint8Array, rest?: number) => void
  readonly stats: Ipv4Stats
}

export class Ipv4 extends Context.Tag("@miniperf/Ipv4")<Ipv4, Ipv4Shape>() {}

export interface Ipv4Options {
  readonly reassembly?: Partial<ReassemblyConfig>
  readonly defaultTtl?: number
  /** ICMP error token bucket: burst and tokens per second. */
  readonly icmpErrorBurst?: number
  readonly icmpErrorRate?: number
}

export const make = (opts: Ipv4Options = {}) =>
  Effect.gen(function* () {
    const eth = yield* Ethernet
    const arp = yield* Arp
    const iface = yield* Interface
    const mtu = eth.caps.ipMtu
    const ttlDefault = opts.defaultTtl ?? 64
    const reasm = new Reassembler({ ...REASSEMBLY_DEFAULTS, ...opts.reassembly })
    const handlers: Array<ProtocolHandler | undefined> = new Array(256).fill(undefined)
    const errorHandlers: Array<IcmpErrorHandler | undefined> = new Array(256).fill(undefined)
    const stats: Ipv4Stats = {
      packetsIn: 0,
      packetsOut: 0,
      delivered: 0,
      fragmentsIn: 0,
      reassembled: 0,
      reassemblyTimeouts: 0,
      fragmentsOut: 0,
      fragmentedOut: 0,
      noRoute: 0,
      icmpErrorsOut: 0,
      icmpErrorsRateLimited: 0,
      icmpErrorsSuppressed: 0,
      reassemblyEvictions: 0,
      fragmentDuplicates: 0,
      drops: {}
    }
    let ident = (Math.random() * 0x10000) | 0
    const burst = opts.icmpErrorBurst ?? 50
    const rate = opts.icmpErrorRate ?? 1000
    const icmpErrors = new TokenBucket(rate, burst, eth.nowMs())

    const alloc = (l4Len: number): Uint8Array => eth.allocTx(L4_OFFSET + l4Len)

    const emitHeaders = (
      b: Uint8Array,
      src: number,
      dst: number,
      protocol: number,
      l4Len: number,
      id: number,
      o: SendOptions | undefined,
      mf: boolean,
      fragOff: number
    ): void => {
      Ip.emitFields(
        b.subarray(IP_OFFSET),
        src,
        dst,
        protocol,
        l4Len,
        id,
        o?.ttl ?? ttlDefault,
        o?.tos ?? 0,
        o?.dontFragment ?? false,
        mf,
        fragOff
      )
      // destination MAC is filled by ARP
      Eth.emitFields(b, 0, eth.mac, Eth.ETHERTYPE_IPV4)
    }

    const send = (frame: Uint8Array, dst: Ipv4Address, protocol: number, l4Len: number, o?: SendOptions): boolean => {
      const hop = iface.nextHop(dst)
      if (hop === undefined) {
        stats.noRoute++
        return false
      }
      const src = iface.current().address
      const meta = o?.meta ?? PLAIN
      const id = (ident = (ident + 1) & 0xffff)
      if (Ip.HEADER_LEN + l4Len <= mtu || meta.gsoType !== 0) {
        emitHeaders(frame, src, dst, protocol, l4Len, id, o, false, 0)
        stats.packetsOut++
        arp.output({ data: frame.subarray(0, L4_OFFSET + l4Len), meta }, hop)
        return true
      }
      if (o?.dontFragment === true) {
        countDrop(stats.drops, "BadLength")
        return false
      }
      // Fragment: each piece gets its own frame; the transport checksum must be complete already.
      const plan = fragmentPlan(l4Len, mtu)
      stats.fragmentedOut++
      for (let i = 0; i < plan.length; i++) {
        const [off, len] = plan[i]!
        const f = eth.allocTx(L4_OFFSET + len)
        f.set(frame.subarray(L4_OFFSET + off, L4_OFFSET + off + len), L4_OFFSET)
        emitHeaders(f, src, dst, protocol, len, id, o, i < plan.length - 1, off)
        stats.fragmentsOut++
        stats.packetsOut++
        arp.output({ data: f, meta: PLAIN }, hop)
      }
      return true
    }

    /** True while a handler runs for a datagram that arrived in a link-layer broadcast or multicast frame. */
    let inputLinkMulticast = false

    const sendIcmpError = (type: number, code: number, offending: Uint8Array, rest = 0): void => {
      if (offending.length < Ip.HEADER_LEN) return
      // RFC 1122 §3.2.2: never about a datagram to a broadcast or multicast address (IP or link layer), nor
      // from an address that does not name one host. Otherwise a spoofed source turns us into a reflector.
      const src = readIpv4(offending, 12)
      const dst = readIpv4(offending, 16)
      const cfg = iface.current()
      if (inputLinkMulticast || iface.isBroadcast(dst) || isMulticastIpv4(dst) || isMartianSource(src, cfg.address, cfg.prefix)) {
        stats.icmpErrorsSuppressed++
        return
      }
      if (icmpErrors.refill(eth.nowMs()) < 1) {
        stats.icmpErrorsRateLimited++
        return
      }
      icmpErrors.spend()
      const quote = Math.min(offending.length, Icmp.ERROR_QUOTE_MAX)
      const l4Len = Icmp.HEADER_LEN + quote
      const f = alloc(l4Len)
      f.set(offending.subarray(0, quote), L4_OFFSET + Icmp.HEADER_LEN)
      Icmp.emit({ type, code, rest, payloadLen: quote }, f.subarray(L4_OFFSET))
      if (send(f, src, Ip.PROTO_ICMP, l4Len)) stats.icmpErrorsOut++
    }

    const input = (frame: Frame, nowMs: number): void => {
      const b = Eth.payload(frame.data)
      stats.packetsIn++
      const meta = frame.meta
      const r = Ip.parse(b, (meta.flags & VNET_F_DATA_VALID) === 0)
      if (typeof r === "string") {
        countDrop(stats.drops, r)
        return
      }
      const cfg = iface.current()
      if (!iface.acceptsDestination(r.dst)) {
        // While unconfigured (DHCP) accept datagrams for any unicast address as well; UDP 68 sorts them out.
        if (cfg.address !== 0) {
          countDrop(stats.drops, "NotForUs")
          return
        }
      }
      // Before reassembly, so martian fragments hold no reassembly slot either.
      if (isMartianSource(r.src, cfg.address, cfg.prefix)) {
        countDrop(stats.drops, "MartianSource")
        return
      }
      const handler = handlers[r.protocol]
      if (Ip.isFragment(r)) {
        stats.fragmentsIn++
        const whole = reasm.add(r.src, r.dst, r.protocol, r.ident, r.fragmentOffset, r.moreFragments, Ip.payload(b, r), nowMs)
        stats.reassemblyTimeouts = reasm.timeouts
        stats.reassemblyEvictions = reasm.evictions
        stats.fragmentDuplicates = reasm.duplicates
        if (whole === undefined) return
        if (typeof whole === "string") {
          countDrop(stats.drops, whole)
          return
        }
        stats.reassembled++
        const whole2: Ip.Ipv4Repr = { ...r, moreFragments: false, fragmentOffset: 0, payloadLen: whole.length }
        if (handler === undefined) {
          countDrop(stats.drops, "Unsupported")
          return
        }
        stats.delivered++
        handler(whole2, whole, frame, false, nowMs)
        return
      }
      if (handler === undefined) {
        countDrop(stats.drops, "Unsupported")
        sendIcmpError(Icmp.TYPE_DEST_UNREACHABLE, Icmp.CODE_PROTOCOL_UNREACHABLE, b.subarray(0, r.headerLen + r.payloadLen))
        return
      }
      stats.delivered++
      handler(r, Ip.payload(b, r), frame, (meta.flags & (VNET_F_DATA_VALID | VNET_F_NEEDS_CSUM)) !== 0, nowMs)
    }

    eth.register(Eth.ETHERTYPE_IPV4, (frame, nowMs) => {
      inputLinkMulticast = isMulticastMac(Eth.dst(frame.data))
      try {
        input(frame, nowMs)
      } finally {
        inputLinkMulticast = false
      }
    })

    // Reassembly timeouts are also swept when no fragments arrive.
    yield* Effect.gen(function* () {
      while (true) {
        yield* Effect.sleep(Duration.seconds(1))
        reasm.expire(yield* Clock.currentTimeMillis)
        stats.reassemblyTimeouts = reasm.timeouts
      }
    }).pipe(Effect.forkScoped)

    const deliverIcmpError = (type: number, code: number, reporter: Ipv4Address, quoted: Uint8Array, nowMs: number): void => {
      // The quote must be one of ours: version 4, a header that fits, our address as its source, and
      // the first 8 bytes of the transport header present (RFC 792).
      if (quoted.length < Ip.HEADER_LEN || quoted[0]! >> 4 !== 4) return
      const hl = Ip.headerLength(quoted)
      if (hl < Ip.HEADER_LEN || quoted.length < hl + 8) return
      const src = ((quoted[12]! << 24) | (quoted[13]! << 16) | (quoted[14]! << 8) | quoted[15]!) >>> 0
      if (src !== iface.current().address) return
      const handler = errorHandlers[quoted[9]!]
      if (handler === undefined) return
      const dst = ((quoted[16]! << 24) | (quoted[17]! << 16) | (quoted[18]! << 8) | quoted[19]!) >>> 0
      handler({
        type,
        code,
        reporter,
        remote: dst as Ipv4Address,
        localPort: (quoted[hl]! << 8) | quoted[hl + 1]!,
        remotePort: (quoted[hl + 2]! << 8) | quoted[hl + 3]!,
        nowMs
      })
    }

    return Ipv4.of({
      register: (p, h) => void (handlers[p] = h),
      registerErrorHandler: (p, h) => void (errorHandlers[p] = h),
      deliverIcmpError,
      address: () => iface.current().address,
      mtu,
      alloc,
      send,
      sendIcmpError,
      stats
    })
  })

export const layer = (opts: Ipv4Options = {}): Layer.Layer<Ipv4, never, Ethernet | Arp | Interface> => Layer.scoped(Ipv4, make(opts))
