/**
 * The IP/ICMP/ARP/Ethernet input side refusing to be a reflector, and reassembly under attack
 * (design.md §7), over a channel NIC: frames a hostile peer could send, and what the stack answers.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { MAC_BROADCAST, ipv4, mac, parseIpv4, parseMac, writeMac, type MacAddress } from "../../src/protocols/address.js"
import * as ArpWire from "../../src/protocols/arp/wire.js"
import * as Eth from "../../src/protocols/ethernet/wire.js"
import * as IcmpWire from "../../src/protocols/icmp/wire.js"
import * as Ip from "../../src/protocols/ipv4/wire.js"
import { Reassembler } from "../../src/protocols/ipv4/reassembly.js"
import { Arp } from "../../src/layers/Arp.js"
import { Ethernet } from "../../src/layers/Ethernet.js"
import { Icmp } from "../../src/layers/Icmp.js"
import { Ipv4 } from "../../src/layers/Ipv4.js"
import * as Stack from "../../src/layers/Stack.js"
import * as Stats from "../../src/layers/Stats.js"
import * as Tcp from "../../src/layers/Tcp.js"
import * as Cs from "../../src/protocols/checksum.js"
import type { SeqNum } from "../../src/protocols/tcp/seq.js"
import * as TcpWire from "../../src/protocols/tcp/wire.js"
import { Udp } from "../../src/layers/Udp.js"
import type { Frame } from "../../src/nic/Frame.js"
import { PEER_MAC, STACK_MAC, channelLayer, makeChannel, type Channel } from "../support/channelNic.js"
import { arpFrame, fragments, icmpEcho, ipFrame, udpDatagram } from "../support/frames.js"

const US = ipv4(198, 51, 100, 2)
const PEER = ipv4(198, 51, 100, 1)
const DIRECTED = ipv4(198, 51, 100, 255)
const MARTIANS: ReadonlyArray<string> = ["198.51.100.255", "255.255.255.255", "0.0.0.0", "0.0.0.9", "127.0.0.1", "224.0.0.1", "240.0.0.1", "198.51.100.2"]

const withStack = <A, E>(body: (ch: Channel) => Effect.Effect<A, E, Stack.StackServices | Scope.Scope>) =>
  Effect.gen(function* () {
    const ch = yield* makeChannel()
    const ctx = yield* Layer.build(Stack.layer({ address: { address: US, prefix: 24, gateway: undefined } }).pipe(Layer.provide(channelLayer(ch))))
    return yield* Effect.provide(body(ch), ctx)
  })

const withStats = <A, E>(body: (ch: Channel, lines: Array<string>) => Effect.Effect<A, E, Stats.Stats | Stack.StackServices | Scope.Scope>) =>
  Effect.gen(function* () {
    const ch = yield* makeChannel()
    const lines: Array<string> = []
    const layer = Stats.layer({ dumpEveryMs: 500, dumpTotals: true, print: (l) => lines.push(l) }).pipe(
      Layer.provideMerge(Stack.layer({ address: { address: US, prefix: 24, gateway: undefined } })),
      Layer.provide(channelLayer(ch))
    )
    const ctx = yield* Layer.build(layer)
    return yield* Effect.provide(body(ch, lines), ctx)
  })

/** Teach the stack the peer's MAC with a request for our address, and discard everything sent so far. */
const learnPeer = (ch: Channel) => Effect.zipRight(ch.inject([arpFrame(ArpWire.OP_REQUEST, PEER_MAC, PEER, MAC_BROADCAST, US)]), Effect.sync(() => ch.take()))

const ping = (src: number, seq = 1, srcMac: MacAddress = PEER_MAC, dstMac: MacAddress = STACK_MAC, dst: number = US) =>
  ipFrame(srcMac, dstMac, src, dst, Ip.PROTO_ICMP, icmpEcho(0x51, seq, new Uint8Array(16)))

/** Only the last fragment of a 65515-byte datagram: the reassembler holds the whole buffer, forever incomplete. */
const bigHole = (src: number, ident: number) =>
  ipFrame(PEER_MAC, STACK_MAC, src, US, Ip.PROTO_UDP, new Uint8Array(11), { ident, moreFragments: false, fragmentOffset: 65504 })

const ipOf = (f: Frame) => {
  const r = Ip.parse(f.data.subarray(14), true)
  if (typeof r === "string") throw new Error(`bad IPv4 frame sent: ${r}`)
  return r
}

const isEchoReplyTo = (f: Frame, dst: number): boolean =>
  Eth.etherType(f.data) === Eth.ETHERTYPE_IPV4 && ipOf(f).dst === dst && ipOf(f).protocol === Ip.PROTO_ICMP && f.data[34] === IcmpWire.TYPE_ECHO_REPLY

describe("martian sources (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7)", () => {
  it.scoped("an echo request from any martian source is unanswered, asks no ARP question, and is counted", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        yield* learnPeer(ch)
        yield* ch.inject(MARTIANS.map((s, i) => ping(parseIpv4(s)!, i)))
        expect(ch.take()).toEqual([])
        const ip = yield* Ipv4
        expect(ip.stats.drops.MartianSource).toBe(MARTIANS.length)
        expect(ip.stats.delivered).toBe(0)
        expect((yield* Icmp).stats.echoRequestsIn).toBe(0)
        // the same ping from the peer is answered
        yield* ch.inject([ping(PEER)])
        const out = ch.take()
        expect(out).toHaveLength(1)
        expect(isEchoReplyTo(out[0]!, PEER)).toBe(true)
      })
    )
  )

  it.scoped("UDP from a broadcast source reaches no bound port and draws no port unreachable", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        yield* learnPeer(ch)
        const got: Array<number> = []
        yield* (yield* Udp).bind(5001, (d) => void got.push(d.src as number))
        yield* ch.inject([
          ipFrame(PEER_MAC, STACK_MAC, DIRECTED, US, Ip.PROTO_UDP, udpDatagram(DIRECTED, US, 40000, 5001, new Uint8Array(8))),
          ipFrame(PEER_MAC, STACK_MAC, DIRECTED, US, Ip.PROTO_UDP, udpDatagram(DIRECTED, US, 40000, 9, new Uint8Array(8)))
        ])
        expect(ch.take()).toEqual([])
        expect(got).toEqual([])
        expect((yield* Ipv4).stats.drops.MartianSource).toBe(2)
        yield* ch.inject([ipFrame(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_UDP, udpDatagram(PEER, US, 40000, 5001, new Uint8Array(8)))])
        expect(got).toEqual([PEER])
      })
    )
  )

  it.scoped("fragments from a martian source take no reassembly slot", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        yield* learnPeer(ch)
        const frags = fragments(PEER_MAC, STACK_MAC, DIRECTED, US, Ip.PROTO_ICMP, icmpEcho(3, 1, new Uint8Array(3000)), 1480, 9)
        yield* ch.inject(frags)
        expect(ch.take()).toEqual([])
        const ip = yield* Ipv4
        expect(ip.stats.fragmentsIn).toBe(0)
        expect(ip.stats.drops.MartianSource).toBe(frags.length)
      })
    )
  )
})

const syn = (src: number, dstPort: number): Uint8Array => {
  const r: TcpWire.TcpRepr = {
    srcPort: 40000,
    dstPort,
    seq: 1000 as SeqNum,
    ack: 0 as SeqNum,
    flags: TcpWire.SYN,
    window: 65535,
    urgent: 0,
    mss: 1460,
    wscale: -1,
    sackPermitted: false,
    hasTs: false,
    tsVal: 0,
    tsEcr: 0,
    sack: TcpWire.NO_SACK,
    headerLen: 0,
    payloadLen: 0
  }
  const b = new Uint8Array(TcpWire.headerLen(r))
  TcpWire.emit(r, b, Cs.pseudoV4(src, US, Ip.PROTO_TCP, b.length), true)
  return ipFrame(PEER_MAC, STACK_MAC, src, US, Ip.PROTO_TCP, b)
}

describe("martian sources and TCP", () => {
  it.scoped("a SYN from the directed broadcast gets neither SYN-ACK (listening port) nor RST (closed port)", () =>
    Effect.gen(function* () {
      const ch = yield* makeChannel()
      const layer = Tcp.layer().pipe(
        Layer.provideMerge(Stack.layer({ address: { address: US, prefix: 24, gateway: undefined } })),
        Layer.provide(channelLayer(ch))
      )
      const ctx = yield* Layer.build(layer)
      yield* Effect.gen(function* () {
        yield* learnPeer(ch)
        yield* (yield* Tcp.Tcp).listen(5001)
        yield* ch.inject([syn(DIRECTED, 5001), syn(DIRECTED, 9)])
        expect(ch.take()).toEqual([])
        expect((yield* Ipv4).stats.drops.MartianSource).toBe(2)
        // the same two from the peer: a SYN-ACK and a RST
        yield* ch.inject([syn(PEER, 5001), syn(PEER, 9)])
        const flags = ch.take().map((f) => {
          expect(ipOf(f).dst).toBe(PEER)
          return f.data[34 + 13]! & (TcpWire.SYN | TcpWire.RST | TcpWire.ACK)
        })
        expect(flags.sort()).toEqual([TcpWire.SYN | TcpWire.ACK, TcpWire.RST | TcpWire.ACK].sort())
      }).pipe(Effect.provide(ctx))
    })
  )
})

describe("Ethernet and ARP sources", () => {
  it.scoped("a frame with a multicast or broadcast source MAC is dropped at the link and counted", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        ch.take()
        const group = parseMac("01:00:5e:00:00:01")!
        yield* ch.inject([
          arpFrame(ArpWire.OP_REQUEST, group, PEER, MAC_BROADCAST, US),
          arpFrame(ArpWire.OP_REQUEST, MAC_BROADCAST, PEER, MAC_BROADCAST, US),
          ping(PEER, 1, MAC_BROADCAST)
        ])
        expect(ch.take()).toEqual([])
        expect((yield* Ethernet).stats.drops.MartianSource).toBe(3)
        expect((yield* Arp).lookup(PEER)).toBeUndefined()
        expect((yield* Arp).stats.requestsIn).toBe(0)
      })
    )
  )

  it.scoped("ARP neither learns nor answers a martian sender IP, a sender claiming our address, or a multicast sender MAC", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        ch.take()
        const arp = yield* Arp
        const groupBody = arpFrame(ArpWire.OP_REQUEST, PEER_MAC, PEER, MAC_BROADCAST, US)
        writeMac(groupBody, 14 + 8, parseMac("01:00:5e:7f:00:01")!) // ARP sender MAC only; the Ethernet source is unicast
        yield* ch.inject([
          arpFrame(ArpWire.OP_REQUEST, PEER_MAC, DIRECTED, MAC_BROADCAST, US),
          arpFrame(ArpWire.OP_REQUEST, PEER_MAC, parseIpv4("224.0.0.251")!, MAC_BROADCAST, US),
          arpFrame(ArpWire.OP_REPLY, PEER_MAC, parseIpv4("127.0.0.1")!, STACK_MAC, US, STACK_MAC),
          arpFrame(ArpWire.OP_REQUEST, PEER_MAC, US, MAC_BROADCAST, US), // someone else announcing our address
          groupBody
        ])
        expect(ch.take()).toEqual([])
        expect(arp.stats.drops.MartianSource).toBe(5)
        expect(arp.cacheSize()).toBe(0)
        expect(arp.lookup(US)).toBeUndefined()
        expect(arp.lookup(DIRECTED)).toBeUndefined()
        expect(arp.lookup(PEER)).toBeUndefined()
        // a probe (sender 0.0.0.0) is ignored but not counted as a drop; a real request is answered
        yield* ch.inject([arpFrame(ArpWire.OP_REQUEST, PEER_MAC, 0, MAC_BROADCAST, US), arpFrame(ArpWire.OP_REQUEST, PEER_MAC, PEER, MAC_BROADCAST, US)])
        const out = ch.take()
        expect(out).toHaveLength(1)
        expect(ArpWire.parse(out[0]!.data.subarray(14))).toMatchObject({ op: ArpWire.OP_REPLY, targetIp: PEER, targetMac: PEER_MAC })
        expect(arp.stats.drops.MartianSource).toBe(5)
      })
    )
  )
})

describe("ICMP errors (RFC 1122 §3.2.2)", () => {
  it.scoped("none about a datagram to a broadcast or multicast address, IP or link layer; still one for a unicast datagram", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        yield* learnPeer(ch)
        const ip = yield* Ipv4
        yield* ch.inject([
          // unknown protocol to the limited and to the directed broadcast
          ipFrame(PEER_MAC, MAC_BROADCAST, PEER, 0xffffffff, 200, new Uint8Array(20)),
          ipFrame(PEER_MAC, MAC_BROADCAST, PEER, DIRECTED, 200, new Uint8Array(20)),
          // unicast IP to us in a link-layer broadcast or multicast frame: unknown protocol, closed UDP port
          ipFrame(PEER_MAC, MAC_BROADCAST, PEER, US, 200, new Uint8Array(20)),
          ipFrame(PEER_MAC, mac(0x0100, 0x5e000001), PEER, US, Ip.PROTO_UDP, udpDatagram(PEER, US, 40000, 9, new Uint8Array(4)))
        ])
        expect(ch.take()).toEqual([])
        expect(ip.stats.icmpErrorsSuppressed).toBe(4)
        expect(ip.stats.icmpErrorsOut).toBe(0)
        yield* ch.inject([ipFrame(PEER_MAC, STACK_MAC, PEER, US, 200, new Uint8Array(20))])
        const out = ch.take()
        expect(out).toHaveLength(1)
        expect(ipOf(out[0]!).dst).toBe(PEER)
        expect(IcmpWire.parse(out[0]!.data.subarray(34), true)).toMatchObject({ type: 3, code: IcmpWire.CODE_PROTOCOL_UNREACHABLE })
        expect(ip.stats.icmpErrorsOut).toBe(1)
      })
    )
  )

  it.scoped("sendIcmpError refuses an offending datagram with a martian source even when a caller asks", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        yield* learnPeer(ch)
        const ip = yield* Ipv4
        const offending = ipFrame(PEER_MAC, STACK_MAC, DIRECTED, US, Ip.PROTO_UDP, udpDatagram(DIRECTED, US, 1, 9, new Uint8Array(4))).subarray(14)
        ip.sendIcmpError(IcmpWire.TYPE_DEST_UNREACHABLE, IcmpWire.CODE_PORT_UNREACHABLE, offending)
        yield* (yield* Ethernet).flush
        expect(ch.take()).toEqual([])
        expect(ip.stats.icmpErrorsSuppressed).toBe(1)
      })
    )
  )
})

describe("reassembly under attack", () => {
  it.scoped("overlapping fragments drop the datagram (FragmentOverlap); a clean resend is answered", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        yield* learnPeer(ch)
        const req = icmpEcho(7, 1, new Uint8Array(64).map((_, i) => i))
        // [0, 48) then [40, 72): the second rewrites bytes 40..47
        yield* ch.inject([
          ipFrame(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_ICMP, req.subarray(0, 48), { ident: 5, moreFragments: true, fragmentOffset: 0 }),
          ipFrame(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_ICMP, req.subarray(40), { ident: 5, moreFragments: false, fragmentOffset: 40 })
        ])
        expect(ch.take()).toEqual([])
        const ip = yield* Ipv4
        expect(ip.stats.drops.FragmentOverlap).toBe(1)
        expect(ip.stats.reassembled).toBe(0)
        yield* ch.inject(fragments(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_ICMP, req, 48, 6))
        const out = ch.take()
        expect(out).toHaveLength(1)
        expect(isEchoReplyTo(out[0]!, PEER)).toBe(true)
      })
    )
  )

  const pingAnswered = (ch: Channel) =>
    Effect.gen(function* () {
      const data = new Uint8Array(4000).map((_, i) => (i * 13) & 0xff)
      yield* ch.inject(fragments(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_ICMP, icmpEcho(9, 2, data), 1480, 0x4242))
      const out = ch.take()
      const r = new Reassembler()
      let whole: Uint8Array | undefined
      for (const f of out) {
        const h = ipOf(f)
        const res = r.add(h.src, h.dst, h.protocol, h.ident, h.fragmentOffset, h.moreFragments, Ip.payload(f.data.subarray(14), h), 0)
        if (res instanceof Uint8Array) whole = res
      }
      expect(whole).toBeDefined()
      expect(IcmpWire.parse(whole!, true)).toMatchObject({ type: IcmpWire.TYPE_ECHO_REPLY, rest: (9 << 16) | 2 })
      expect([...whole!.subarray(8)]).toEqual([...data])
    })

  it.scoped("64 incomplete 64 KiB datagrams from 64 spoofed sources do not block a later fragmented ping", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        yield* learnPeer(ch)
        yield* ch.inject(Array.from({ length: 64 }, (_, i) => bigHole(ipv4(198, 51, 100, 100 + i), i)))
        expect(ch.take()).toEqual([])
        const ip = yield* Ipv4
        expect(ip.stats.reassemblyEvictions).toBe(0)
        // one second on, well inside the 30 s timeout
        yield* TestClock.adjust("1 second")
        yield* pingAnswered(ch)
        expect(ip.stats.reassemblyEvictions).toBe(1)
        expect(ip.stats.reassemblyTimeouts).toBe(0)
      })
    )
  )

  it.scoped("one source holds at most 16 incomplete datagrams: its flood evicts only its own", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        yield* learnPeer(ch)
        const attacker = ipv4(198, 51, 100, 66)
        // the peer starts a fragmented datagram first, then the attacker floods 40
        const data = new Uint8Array(3000).map((_, i) => (i * 5) & 0xff)
        const frags = fragments(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_ICMP, icmpEcho(4, 4, data), 1480, 0x77)
        yield* ch.inject([frags[0]!])
        yield* ch.inject(Array.from({ length: 40 }, (_, i) => bigHole(attacker, 1000 + i)))
        const ip = yield* Ipv4
        expect(ip.stats.reassemblyEvictions).toBe(40 - 16)
        // the peer's datagram survived: its remaining fragments complete it
        yield* ch.inject(frags.slice(1))
        const out = ch.take()
        expect(out.length).toBeGreaterThanOrEqual(1)
        expect(ip.stats.reassembled).toBe(1)
        expect((yield* Icmp).stats.echoRepliesOut).toBe(1)
      })
    )
  )
})

describe("counters in the metrics and the -d dump", () => {
  it.scoped("martian drops, evictions and suppressed ICMP errors show up by name", () =>
    withStats((ch, lines) =>
      Effect.gen(function* () {
        yield* learnPeer(ch)
        yield* ch.inject([
          ping(DIRECTED),
          ping(PEER, 2, MAC_BROADCAST),
          arpFrame(ArpWire.OP_REQUEST, PEER_MAC, DIRECTED, MAC_BROADCAST, US),
          ipFrame(PEER_MAC, MAC_BROADCAST, PEER, 0xffffffff, 200, new Uint8Array(20)),
          ...Array.from({ length: 17 }, (_, i) => bigHole(PEER, i))
        ])
        const stats = yield* Stats.Stats
        const v = yield* stats.read
        expect(v.get("ipv4.drops.MartianSource")).toBe(1)
        expect(v.get("link.drops.MartianSource")).toBe(1)
        expect(v.get("arp.drops.MartianSource")).toBe(1)
        expect(v.get("ipv4.icmp_errors_suppressed")).toBe(1)
        expect(v.get("ipv4.reassembly_evictions")).toBe(1)
        expect(v.get("ipv4.fragment_duplicates")).toBe(0)
        const names = new Set(stats.metrics().map((m) => `${m.def.layer}.${m.def.name}`))
        for (const n of ["ipv4.reassembly_evictions", "ipv4.icmp_errors_suppressed", "ipv4.fragment_duplicates", "ipv4.drops.MartianSource", "link.drops.MartianSource", "arp.drops.MartianSource"]) {
          expect(names.has(n), n).toBe(true)
        }
        yield* TestClock.adjust("500 millis")
        yield* Effect.repeatN(Effect.yieldNow(), 30)
        const ipLine = lines.find((l) => l.startsWith("ipv4:"))
        // (the datagram of protocol 200 counts as Unsupported too)
        expect(ipLine).toMatch(/drops 2 \((MartianSource 1, Unsupported 1|Unsupported 1, MartianSource 1)\)/)
        expect(ipLine).toMatch(/reassembly timeouts 0 evictions 1, duplicate fragments 0,/)
        expect(ipLine).toMatch(/icmp errors out 0 suppressed 1$/)
        expect(lines.find((l) => l.startsWith("link:"))).toMatch(/drops 1 \(MartianSource 1\)$/)
        expect(lines.find((l) => l.startsWith("arp:"))).toMatch(/drops 1 \(MartianSource 1\)$/)
      })
    )
  )
})
