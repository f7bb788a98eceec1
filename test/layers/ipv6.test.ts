/**
 * The Ipv6 and Icmpv6 layers on an in-memory NIC under TestClock: duplicate address detection at start (MLDv2
 * report, probe from ::, assigned after RetransTimer, unsolicited advertisement), a duplicate detected,
 * neighbour solicitations answered, echo (resolving the peer first, and fragmented both ways), the 33:33
 * filter, parameter problems, and IPv6 off by default in `Stack.layer`. Frames the peer sends are built
 * with our codecs; the wire tests check those against the kernel's captures.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { mac, type MacAddress } from "../../src/protocols/address.js"
import * as Cs from "../../src/protocols/checksum.js"
import * as Eth from "../../src/protocols/ethernet/wire.js"
import * as Icmp6 from "../../src/protocols/icmpv6/wire.js"
import * as Mld from "../../src/protocols/icmpv6/mld.js"
import {
  IPV6_ALL_NODES,
  IPV6_UNSPECIFIED,
  linkLocalFromMac,
  multicastMac,
  parseIpv6,
  solicitedNode,
  type Ipv6Address
} from "../../src/protocols/ipv6/address.js"
import { Reassembler, fragmentPlan, writeFragment } from "../../src/protocols/ipv6/reassembly.js"
import * as Ip6 from "../../src/protocols/ipv6/wire.js"
import { Ethernet } from "../../src/layers/Ethernet.js"
import { Icmpv6 } from "../../src/layers/Icmpv6.js"
import { Ipv6, type Ipv6Options } from "../../src/layers/Ipv6.js"
import * as Stack from "../../src/layers/Stack.js"
import * as Stats from "../../src/layers/Stats.js"
import { Udp } from "../../src/layers/Udp.js"
import * as UdpWire from "../../src/protocols/udp/wire.js"
import { PEER_MAC, STACK_MAC, channelLayer, makeChannel, type Channel } from "../support/channelNic.js"
import { echoRequest, ip6Frame, ndMsg, ndOf, v6Frames, type Sent } from "../support/ipv6Frames.js"

const a6 = (s: string): Ipv6Address => parseIpv6(s)!
const US_LL = linkLocalFromMac(STACK_MAC)
const PEER_LL = linkLocalFromMac(PEER_MAC)
const US = a6("2001:db8::2")
const PEER = a6("2001:db8::1")
const OTHER_MAC: MacAddress = mac(0x0200, 0x00000077)

const withV6 = <A, E>(body: (ch: Channel) => Effect.Effect<A, E, Stack.StackServices | Scope.Scope>, v6: Ipv6Options = {}) =>
  Effect.gen(function* () {
    const ch = yield* makeChannel()
    const ctx = yield* Layer.build(
      Stack.layer({ ipv6: { random: () => 0, addresses: [{ address: US, prefixLen: 64 }], ...v6 } }).pipe(Layer.provide(channelLayer(ch)))
    )
    return yield* Effect.provide(body(ch), ctx)
  })

// ---------------------------------------------------------------------------------------------------------------
// Frames of the peer, and reading ours

const nsFrame = (srcMac: MacAddress, src: Ipv6Address, target: Ipv6Address, sll: MacAddress | undefined): Uint8Array => {
  const dst = solicitedNode(target)
  return ip6Frame(srcMac, multicastMac(dst), src, dst, Ip6.NH_ICMPV6, ndMsg({ _tag: "NeighborSolicitation", target, sourceLinkAddr: sll }, src, dst), 255)
}

const naFrame = (srcMac: MacAddress, src: Ipv6Address, dst: Ipv6Address, dstMac: MacAddress, target: Ipv6Address, solicited: boolean): Uint8Array =>
  ip6Frame(
    srcMac,
    dstMac,
    src,
    dst,
    Ip6.NH_ICMPV6,
    ndMsg({ _tag: "NeighborAdvertisement", router: false, solicited, override: true, target, targetLinkAddr: srcMac }, src, dst),
    255
  )

const kind = (s: Sent): string => {
  if (s.chain._tag === "Fragment") return "fragment"
  if (s.upper === undefined) return "?"
  switch (s.upper[0]) {
    case Icmp6.TYPE_MLDV2_REPORT:
      return "report"
    case Icmp6.TYPE_NEIGHBOR_SOLICITATION:
      return isUnspecifiedSrc(s) ? "probe" : "ns"
    case Icmp6.TYPE_NEIGHBOR_ADVERTISEMENT:
      return "na"
    case Icmp6.TYPE_ECHO_REPLY:
      return "echo-reply"
    case Icmp6.TYPE_PARAM_PROBLEM:
      return "param-problem"
    default:
      return String(s.upper[0])
  }
}
const isUnspecifiedSrc = (s: Sent): boolean => s.ip.src === IPV6_UNSPECIFIED

/** Let DAD finish for every address (random start delay 0, one probe, RetransTimer 1 s) and drop what it sent. */
const assigned = (ch: Channel) =>
  Effect.gen(function* () {
    yield* TestClock.adjust("1100 millis")
    ch.take()
  })

// ---------------------------------------------------------------------------------------------------------------

describe("IPv6 duplicate address detection at start", () => {
  it.scoped("reports the solicited-node groups, probes from ::, then assigns and announces each address", () =>
    withV6((ch) =>
      Effect.gen(function* () {
        const ip = yield* Ipv6
        expect(ip.linkLocal).toBe(parseIpv6("fe80::ff:fe00:2"))
        expect(ip.addresses().map((a) => a.state)).toEqual(["Tentative", "Tentative"])
        yield* TestClock.adjust("1 millis")
        const first = v6Frames(ch.take())
        const probes = first.filter((s) => kind(s) === "probe")
        expect(probes.map((s) => (ndOf(s) as { target: Ipv6Address }).target).sort()).toEqual([US_LL, US].sort())
        for (const p of probes) {
          const target = (ndOf(p) as { target: Ipv6Address }).target
          expect(p.ip.dst).toBe(solicitedNode(target))
          expect(p.ethDst).toBe(multicastMac(solicitedNode(target)))
          expect(p.ip.hopLimit).toBe(255)
          expect(ndOf(p)).toMatchObject({ sourceLinkAddr: undefined })
        }
        // each join reported twice (RFC 3810 robustness 2), from :: while nothing is assigned, with a router alert
        const reports = first.filter((s) => kind(s) === "report")
        expect(reports.length).toBe(4)
        for (const r of reports) {
          expect(r.ip.src).toBe(IPV6_UNSPECIFIED)
          expect(r.ip.hopLimit).toBe(1)
          expect(r.chain).toMatchObject({ _tag: "Upper", routerAlert: true })
          const recs = Mld.parseReport(r.upper!)
          expect(recs).toEqual([{ type: Mld.CHANGE_TO_EXCLUDE, group: expect.any(String), sources: 0 }])
        }
        expect(ip.addresses().map((a) => a.state)).toEqual(["Tentative", "Tentative"])
        // RetransTimer (1 s) after the probe: assigned, then one unsolicited advertisement each
        yield* TestClock.adjust("1 second")
        expect(ip.addresses().map((a) => a.state)).toEqual(["Assigned", "Assigned"])
        const ann = v6Frames(ch.take()).filter((s) => kind(s) === "na")
        expect(ann.map((s) => s.ip.src).sort()).toEqual([US_LL, US].sort())
        for (const a of ann) {
          expect(a.ip.dst).toBe(IPV6_ALL_NODES)
          expect(ndOf(a)).toMatchObject({ solicited: false, override: true, target: a.ip.src, targetLinkAddr: STACK_MAC })
        }
        expect(ip.ndStats.dadProbesOut).toBe(2)
      })
    )
  )

  it.scoped("an advertisement for a tentative address makes it a duplicate: never assigned, never announced", () =>
    withV6((ch) =>
      Effect.gen(function* () {
        const ip = yield* Ipv6
        yield* TestClock.adjust("1 millis")
        ch.take()
        yield* ch.inject([naFrame(OTHER_MAC, US, IPV6_ALL_NODES, multicastMac(IPV6_ALL_NODES), US, false)])
        yield* TestClock.adjust("2 seconds")
        expect(ip.addresses()).toEqual([
          { address: US_LL, prefixLen: 64, state: "Assigned" },
          { address: US, prefixLen: 64, state: "Duplicate" }
        ])
        expect(ip.ndStats.dadDuplicates).toBe(1)
        const anns = v6Frames(ch.take()).filter((s) => kind(s) === "na")
        expect(anns.map((s) => s.ip.src)).toEqual([US_LL])
        // a packet to the duplicate address is not for us
        yield* ch.inject([ip6Frame(PEER_MAC, STACK_MAC, PEER, US, Ip6.NH_ICMPV6, echoRequest(PEER, US, 1, 1, new Uint8Array(8)))])
        expect(v6Frames(ch.take())).toHaveLength(0)
        expect(ip.stats.drops.NotForUs).toBe(1)
      })
    )
  )

  it.scoped("another node's probe for our tentative address makes it a duplicate; a probe for an assigned one is defended", () =>
    withV6((ch) =>
      Effect.gen(function* () {
        const ip = yield* Ipv6
        yield* TestClock.adjust("1 millis")
        ch.take()
        yield* ch.inject([nsFrame(OTHER_MAC, IPV6_UNSPECIFIED, US, undefined)])
        expect(v6Frames(ch.take())).toHaveLength(0) // a tentative address is never answered for
        yield* TestClock.adjust("2 seconds")
        ch.take()
        expect(ip.addresses().find((a) => a.address === US)?.state).toBe("Duplicate")
        yield* ch.inject([nsFrame(OTHER_MAC, IPV6_UNSPECIFIED, US_LL, undefined)])
        const out = v6Frames(ch.take())
        expect(out.map(kind)).toEqual(["na"])
        expect(out[0]!.ip.dst).toBe(IPV6_ALL_NODES)
        expect(ndOf(out[0]!)).toMatchObject({ solicited: false, override: true, target: US_LL })
      })
    )
  )

  it.scoped("our own probe looped back by the link is not someone else's", () =>
    withV6((ch) =>
      Effect.gen(function* () {
        const ip = yield* Ipv6
        yield* TestClock.adjust("1 millis")
        ch.take()
        yield* ch.inject([nsFrame(STACK_MAC, IPV6_UNSPECIFIED, US, undefined)])
        yield* TestClock.adjust("2 seconds")
        expect(ip.addresses().map((a) => a.state)).toEqual(["Assigned", "Assigned"])
      })
    )
  )
})

describe("IPv6 neighbour discovery and echo", () => {
  it.scoped("a solicitation for our address is answered with a solicited advertisement, and the sender is learnt", () =>
    withV6((ch) =>
      Effect.gen(function* () {
        const ip = yield* Ipv6
        yield* assigned(ch)
        yield* ch.inject([nsFrame(PEER_MAC, PEER_LL, US_LL, PEER_MAC)])
        const out = v6Frames(ch.take())
        expect(out.map(kind)).toEqual(["na"])
        expect(out[0]!.ethDst).toBe(PEER_MAC)
        expect(out[0]!.ip).toMatchObject({ src: US_LL, dst: PEER_LL, hopLimit: 255 })
        expect(ndOf(out[0]!)).toEqual({ _tag: "NeighborAdvertisement", router: false, solicited: true, override: true, target: US_LL, targetLinkAddr: STACK_MAC })
        expect(ip.neighbor(PEER_LL)?.mac).toBe(PEER_MAC)
        // one for someone else's address is not
        yield* ch.inject([nsFrame(PEER_MAC, PEER_LL, a6("2001:db8::99"), PEER_MAC)])
        expect(ch.take()).toHaveLength(0)
      })
    )
  )

  it.scoped("echo to the global address: the peer is resolved first (NS), the reply leaves on its advertisement", () =>
    withV6((ch) =>
      Effect.gen(function* () {
        const icmp = yield* Icmpv6
        yield* assigned(ch)
        const data = new Uint8Array(56).map((_, i) => i)
        yield* ch.inject([ip6Frame(PEER_MAC, STACK_MAC, PEER, US, Ip6.NH_ICMPV6, echoRequest(PEER, US, 0x1234, 7, data))])
        const ns = v6Frames(ch.take())
        expect(ns.map(kind)).toEqual(["ns"])
        expect(ns[0]!.ip).toMatchObject({ src: US, dst: solicitedNode(PEER), hopLimit: 255 })
        expect(ndOf(ns[0]!)).toEqual({ _tag: "NeighborSolicitation", target: PEER, sourceLinkAddr: STACK_MAC })
        yield* ch.inject([naFrame(PEER_MAC, PEER, US, STACK_MAC, PEER, true)])
        const out = v6Frames(ch.take())
        expect(out.map(kind)).toEqual(["echo-reply"])
        expect(out[0]!.ethDst).toBe(PEER_MAC)
        expect(out[0]!.ip).toMatchObject({ src: US, dst: PEER })
        expect(Icmp6.echoIdent(out[0]!.upper!)).toBe(0x1234)
        expect(Icmp6.echoSeq(out[0]!.upper!)).toBe(7)
        expect(Icmp6.payload(out[0]!.upper!)).toEqual(data)
        expect(icmp.stats).toMatchObject({ echoRequestsIn: 1, echoRepliesOut: 1 })
        // the next one goes at once
        yield* ch.inject([ip6Frame(PEER_MAC, STACK_MAC, PEER, US, Ip6.NH_ICMPV6, echoRequest(PEER, US, 0x1234, 8, data))])
        expect(v6Frames(ch.take()).map(kind)).toEqual(["echo-reply"])
      })
    )
  )

  it.scoped("a fragmented 4000-byte echo is reassembled and answered in fragments that reassemble to the reply", () =>
    withV6((ch) =>
      Effect.gen(function* () {
        const ip = yield* Ipv6
        yield* assigned(ch)
        yield* ch.inject([nsFrame(PEER_MAC, PEER_LL, US_LL, PEER_MAC)])
        ch.take()
        const data = new Uint8Array(4000).map((_, i) => (i * 7) & 0xff)
        const icmp = echoRequest(PEER_LL, US_LL, 9, 1, data)
        const whole = new Uint8Array(Ip6.HEADER_LEN + icmp.length)
        Ip6.emitFields(whole, PEER_LL, US_LL, Ip6.NH_ICMPV6, icmp.length, 64)
        whole.set(icmp, Ip6.HEADER_LEN)
        const frags = fragmentPlan(icmp.length, 1500).map(([off, len], i, all) => {
          const f = new Uint8Array(Eth.HEADER_LEN + 48 + len)
          Eth.emitFields(f, STACK_MAC, PEER_MAC, Eth.ETHERTYPE_IPV6)
          writeFragment(f, Eth.HEADER_LEN, whole, off, len, i < all.length - 1, 0xabcd)
          return f
        })
        expect(frags).toHaveLength(3)
        yield* ch.inject([frags[2]!, frags[0]!, frags[1]!])
        expect(ip.stats.reassembled).toBe(1)
        const out = v6Frames(ch.take())
        expect(out.map(kind)).toEqual(["fragment", "fragment", "fragment"])
        for (const s of out) {
          expect(s.packet.length).toBeLessThanOrEqual(1500)
          expect(s.ethDst).toBe(PEER_MAC)
        }
        const r = new Reassembler()
        let done: Uint8Array | undefined
        for (const s of out) {
          const x = r.add(s.packet, s.ip, s.chain as Ip6.FragmentChain, 0)
          if (x instanceof Uint8Array) done = x
        }
        expect(done).toBeDefined()
        const reply = done!.subarray(Ip6.HEADER_LEN)
        expect(reply[0]).toBe(Icmp6.TYPE_ECHO_REPLY)
        expect(typeof Icmp6.parse(reply, Cs.pseudoV6(US_LL, PEER_LL, Ip6.NH_ICMPV6, reply.length))).toBe("object")
        expect(Icmp6.payload(reply)).toEqual(data)
        expect(ip.stats.fragmentedOut).toBe(1)
      })
    )
  )

  it.scoped("frames to 33:33 groups we did not join are dropped; an unknown next header gets a parameter problem", () =>
    withV6((ch) =>
      Effect.gen(function* () {
        const ip = yield* Ipv6
        yield* assigned(ch)
        yield* ch.inject([nsFrame(PEER_MAC, PEER_LL, US_LL, PEER_MAC)])
        ch.take()
        const other = a6("ff02::1:ff00:99")
        yield* ch.inject([ip6Frame(PEER_MAC, multicastMac(other), PEER_LL, other, Ip6.NH_ICMPV6, echoRequest(PEER_LL, other, 1, 1, new Uint8Array(4)))])
        expect(ip.stats.notOurGroup).toBe(1)
        yield* ch.inject([ip6Frame(PEER_MAC, STACK_MAC, PEER_LL, US_LL, 253, new Uint8Array(16))])
        const out = v6Frames(ch.take())
        expect(out.map(kind)).toEqual(["param-problem"])
        expect(Icmp6.parse(out[0]!.upper!, Cs.pseudoV6(US_LL, PEER_LL, Ip6.NH_ICMPV6, out[0]!.upper!.length))).toMatchObject({
          type: Icmp6.TYPE_PARAM_PROBLEM,
          code: Icmp6.CODE_UNRECOGNIZED_NEXT_HEADER,
          rest: 6
        })
        expect(ip.stats.drops.UnknownNextHeader).toBe(1)
        // a multicast echo (ff02::1) is answered from the link-local address
        yield* ch.inject([ip6Frame(PEER_MAC, multicastMac(IPV6_ALL_NODES), PEER_LL, IPV6_ALL_NODES, Ip6.NH_ICMPV6, echoRequest(PEER_LL, IPV6_ALL_NODES, 1, 2, new Uint8Array(4)))])
        const rep = v6Frames(ch.take())
        expect(rep.map(kind)).toEqual(["echo-reply"])
        expect(rep[0]!.ip.src).toBe(US_LL)
      })
    )
  )

  it.scoped("a multicast source is dropped as martian, and nothing answers it", () =>
    withV6((ch) =>
      Effect.gen(function* () {
        const ip = yield* Ipv6
        yield* assigned(ch)
        yield* ch.inject([ip6Frame(PEER_MAC, STACK_MAC, IPV6_ALL_NODES, US_LL, Ip6.NH_ICMPV6, echoRequest(IPV6_ALL_NODES, US_LL, 1, 1, new Uint8Array(4)))])
        expect(ch.take()).toHaveLength(0)
        expect(ip.stats.drops.MartianSource).toBe(1)
      })
    )
  )
})

const udp6 = (src: Ipv6Address, dst: Ipv6Address, srcPort: number, dstPort: number, data: Uint8Array, checksum = true): Uint8Array => {
  const b = new Uint8Array(UdpWire.HEADER_LEN + data.length)
  b.set(data, UdpWire.HEADER_LEN)
  UdpWire.emit({ srcPort, dstPort, payloadLen: data.length }, b, Cs.pseudoV6(src, dst, Ip6.NH_UDP, b.length), checksum)
  return b
}

describe("UDP over IPv6", () => {
  it.scoped("a bound port gets the datagram with IPv6 endpoints; the answer leaves with a valid IPv6 pseudo-header checksum", () =>
    withV6((ch) =>
      Effect.gen(function* () {
        const udp = yield* Udp
        yield* assigned(ch)
        yield* ch.inject([nsFrame(PEER_MAC, PEER, US, PEER_MAC)]) // the peer is learnt from its NS: no NS of ours first
        ch.take()
        const got: Array<{ src: unknown; srcPort: number; dst: unknown; data: Array<number> }> = []
        yield* udp.bind(5001, (d) => {
          got.push({ src: d.src, srcPort: d.srcPort, dst: d.dst, data: [...d.payload] })
          udp.send(5001, d.src, d.srcPort, d.payload.map((x) => x + 1))
        })
        yield* ch.inject([ip6Frame(PEER_MAC, STACK_MAC, PEER, US, Ip6.NH_UDP, udp6(PEER, US, 40000, 5001, Uint8Array.of(1, 2, 3)))])
        expect(got).toEqual([{ src: PEER, srcPort: 40000, dst: US, data: [1, 2, 3] }])
        const out = v6Frames(ch.take())
        expect(out.length).toBe(1)
        expect(out[0]!.ip).toMatchObject({ src: US, dst: PEER, nextHeader: Ip6.NH_UDP })
        const u = out[0]!.upper!
        const r = UdpWire.parseV6(u, Cs.pseudoV6(US, PEER, Ip6.NH_UDP, u.length), true)
        expect(r).toEqual({ srcPort: 5001, dstPort: 40000, payloadLen: 3 })
        expect([...UdpWire.payload(u)]).toEqual([2, 3, 4])
        expect(udp.stats).toMatchObject({ datagramsIn6: 1, datagramsOut6: 1 })
      })
    ))

  it.scoped("a zero checksum and a wrong one are dropped and counted; a closed port answers port unreachable, rate limited", () =>
    withV6(
      (ch) =>
        Effect.gen(function* () {
          const udp = yield* Udp
          const ip = yield* Ipv6
          yield* assigned(ch)
          yield* ch.inject([nsFrame(PEER_MAC, PEER, US, PEER_MAC)])
          ch.take()
          let n = 0
          yield* udp.bind(5001, () => void n++)
          const bad = udp6(PEER, US, 40000, 5001, Uint8Array.of(9))
          bad[7] = bad[7]! ^ 0x55
          yield* ch.inject([
            ip6Frame(PEER_MAC, STACK_MAC, PEER, US, Ip6.NH_UDP, udp6(PEER, US, 40000, 5001, Uint8Array.of(9), false)),
            ip6Frame(PEER_MAC, STACK_MAC, PEER, US, Ip6.NH_UDP, bad)
          ])
          expect(n).toBe(0)
          expect(udp.stats.drops["BadChecksum"]).toBe(2)
          const closed = [1, 2, 3].map(() => ip6Frame(PEER_MAC, STACK_MAC, PEER, US, Ip6.NH_UDP, udp6(PEER, US, 40001, 9, Uint8Array.of(7))))
          yield* ch.inject(closed)
          const out = v6Frames(ch.take())
          // burst 2: two errors, the third rate limited
          expect(out.map((s) => [s.upper![0], s.upper![1]])).toEqual([
            [Icmp6.TYPE_DEST_UNREACHABLE, Icmp6.CODE_PORT_UNREACHABLE],
            [Icmp6.TYPE_DEST_UNREACHABLE, Icmp6.CODE_PORT_UNREACHABLE]
          ])
          expect(out[0]!.ip).toMatchObject({ src: US, dst: PEER })
          // the error quotes the datagram from its IPv6 header on
          expect(Ip6.parse(out[0]!.upper!.subarray(8))).toMatchObject({ src: PEER, dst: US, nextHeader: Ip6.NH_UDP })
          expect(udp.stats.noPort).toBe(3)
          expect(ip.stats.icmpErrorsRateLimited).toBe(1)
        }),
      { icmpErrorBurst: 2, icmpErrorRate: 1 }
    ))

  it.scoped("an ICMPv6 port unreachable about our datagram reaches the sending port's error handler", () =>
    withV6((ch) =>
      Effect.gen(function* () {
        const udp = yield* Udp
        yield* assigned(ch)
        yield* ch.inject([nsFrame(PEER_MAC, PEER, US, PEER_MAC)])
        ch.take()
        const errors: Array<unknown> = []
        const port = yield* udp.bind(0, () => {}, (e) => void errors.push({ code: e.code, port: e.portUnreachable, remote: e.remote, remotePort: e.remotePort }))
        expect(udp.send(port, PEER, 7777, Uint8Array.of(1, 2))).toBe(true)
        yield* (yield* Ethernet).flush
        const sent = v6Frames(ch.take())[0]!
        const quote = sent.packet
        const err = new Uint8Array(8 + quote.length)
        err.set(quote, 8)
        Icmp6.emit(
          { type: Icmp6.TYPE_DEST_UNREACHABLE, code: Icmp6.CODE_PORT_UNREACHABLE, rest: 0, payloadLen: quote.length },
          err,
          Cs.pseudoV6(PEER, US, Ip6.NH_ICMPV6, err.length)
        )
        yield* ch.inject([ip6Frame(PEER_MAC, STACK_MAC, PEER, US, Ip6.NH_ICMPV6, err)])
        expect(errors).toEqual([{ code: 4, port: true, remote: PEER, remotePort: 7777 }])
        expect(udp.stats.unreachableIn).toBe(1)
      })
    ))
})

describe("IPv6 off", () => {
  it.scoped("Stack.layer without ipv6 options sends nothing and leaves type 0x86dd unknown", () =>
    Effect.gen(function* () {
      const ch = yield* makeChannel()
      const ctx = yield* Layer.build(Stack.layer({}).pipe(Layer.provide(channelLayer(ch))))
      yield* TestClock.adjust("3 seconds")
      expect(v6Frames(ch.take())).toHaveLength(0)
      yield* ch.inject([nsFrame(PEER_MAC, PEER_LL, linkLocalFromMac(STACK_MAC), PEER_MAC)])
      const eth = yield* Effect.provide(Ethernet, ctx)
      expect(eth.stats.rxUnknownType).toBe(1)
      expect(ch.take()).toHaveLength(0)
      const ip = yield* Effect.provide(Ipv6, ctx)
      expect(ip.enabled).toBe(false)
    })
  )
})

describe("IPv6 statistics", () => {
  it.scoped("the -d dump and the metrics carry IPv6, ICMPv6 and ND counters (and none when IPv6 is off)", () =>
    withV6((ch) =>
      Effect.gen(function* () {
        const lines: Array<string> = []
        const st = yield* Stats.make({ print: (l) => lines.push(l), sampleEveryMs: 0 })
        yield* assigned(ch)
        yield* ch.inject([nsFrame(PEER_MAC, PEER_LL, US_LL, PEER_MAC)])
        yield* ch.inject([ip6Frame(PEER_MAC, STACK_MAC, PEER_LL, US_LL, Ip6.NH_ICMPV6, echoRequest(PEER_LL, US_LL, 1, 1, new Uint8Array(8)))])
        yield* ch.inject([ip6Frame(PEER_MAC, STACK_MAC, IPV6_ALL_NODES, US_LL, Ip6.NH_ICMPV6, echoRequest(IPV6_ALL_NODES, US_LL, 1, 1, new Uint8Array(8)))])
        const v = yield* st.read
        expect(v.get("icmpv6.echo_requests_in")).toBe(1)
        expect(v.get("icmpv6.echo_replies_out")).toBe(1)
        expect(v.get("nd.solicitations_in")).toBe(1)
        expect(v.get("nd.advertisements_out")).toBe(3) // two announcements and the answer
        expect(v.get("nd.dad_probes_out")).toBe(2)
        expect(v.get("nd.addresses_assigned")).toBe(2)
        expect(v.get("ipv6.drops.MartianSource")).toBe(1)
        const dump = yield* st.dumpLines
        expect(dump.find((l) => l.startsWith("ipv6:"))).toMatch(/drops 1 \(MartianSource 1\)/)
        expect(dump.find((l) => l.startsWith("icmpv6:"))).toContain("echo requests 1, echo replies 1")
        expect(dump.find((l) => l.startsWith("nd:"))).toContain("addresses assigned 2, neighbours 1, solicitations in 1")
      })
    )
  )

  it.scoped("IPv6 off: no ipv6, icmpv6 or nd lines", () =>
    Effect.gen(function* () {
      const ch = yield* makeChannel()
      const ctx = yield* Layer.build(Stack.layer({}).pipe(Layer.provide(channelLayer(ch))))
      const st = yield* Effect.provide(Stats.make({ sampleEveryMs: 0 }), ctx)
      const dump = yield* st.dumpLines
      expect(dump.filter((l) => /^(ipv6|icmpv6|nd):/.test(l))).toEqual([])
    })
  )
})
