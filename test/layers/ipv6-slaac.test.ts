/**
 * The Ipv6 layer's router discovery and address autoconfiguration on a channel NIC under TestClock: router
 * solicitations at start (RFC 4861 §6.3.7), an address from an advertised autonomous /64 (RFC 4862 §5.5.3) through
 * DAD to assigned and then removed when its valid lifetime ends, and a static default router (`--gw6`) that carries
 * off-link traffic and outlives an advertisement that withdraws it.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Icmp6 from "../../src/protocols/icmpv6/wire.js"
import * as Nd from "../../src/protocols/icmpv6/nd.js"
import {
  IPV6_ALL_NODES,
  IPV6_ALL_ROUTERS,
  IPV6_UNSPECIFIED,
  linkLocalFromMac,
  multicastMac,
  parseIpv6,
  solicitedNode,
  type Ipv6Address
} from "../../src/protocols/ipv6/address.js"
import * as Ip6 from "../../src/protocols/ipv6/wire.js"
import { Ipv6, type Ipv6Options } from "../../src/layers/Ipv6.js"
import * as Stack from "../../src/layers/Stack.js"
import { PEER_MAC, STACK_MAC, channelLayer, makeChannel, type Channel } from "../support/channelNic.js"
import { echoRequest, icmpType, ip6Frame, ndMsg, ndOf, v6Frames } from "../support/ipv6Frames.js"

const a6 = (s: string): Ipv6Address => parseIpv6(s)!
const US_LL = linkLocalFromMac(STACK_MAC)
const ROUTER_LL = linkLocalFromMac(PEER_MAC)
/** 2001:db8::/64 and our modified EUI-64 interface identifier (02:00:00:00:00:02 -> 0000:00ff:fe00:0002). */
const SLAAC_ADDR = a6("2001:db8::ff:fe00:2")
const US = a6("2001:db8::2")
const FAR = a6("2001:db8:99::7")

const withV6 = <A, E>(body: (ch: Channel) => Effect.Effect<A, E, Stack.StackServices | Scope.Scope>, v6: Ipv6Options) =>
  Effect.gen(function* () {
    const ch = yield* makeChannel()
    const ctx = yield* Layer.build(Stack.layer({ ipv6: { random: () => 0, print: () => {}, ...v6 } }).pipe(Layer.provide(channelLayer(ch))))
    return yield* Effect.provide(body(ch), ctx)
  })

const ra = (prefixes: ReadonlyArray<Nd.PrefixInfo>, routerLifetimeS = 1800): Uint8Array => {
  const r: Nd.NdRepr = {
    _tag: "RouterAdvertisement",
    curHopLimit: 64,
    managed: false,
    other: false,
    routerLifetimeS,
    reachableTimeMs: 0,
    retransTimerMs: 0,
    sourceLinkAddr: PEER_MAC,
    mtu: undefined,
    prefixes
  }
  return ip6Frame(PEER_MAC, multicastMac(IPV6_ALL_NODES), ROUTER_LL, IPV6_ALL_NODES, Ip6.NH_ICMPV6, ndMsg(r, ROUTER_LL, IPV6_ALL_NODES), 255)
}

const prefix = (p: Partial<Nd.PrefixInfo> = {}): Nd.PrefixInfo => ({
  prefix: a6("2001:db8::"),
  prefixLen: 64,
  onLink: true,
  autonomous: true,
  validLifetimeS: 86400,
  preferredLifetimeS: 14400,
  ...p
})

const rsOf = (ch: Channel) => v6Frames(ch.take()).filter((s) => icmpType(s) === Icmp6.TYPE_ROUTER_SOLICITATION)

describe("IPv6 router solicitations (RFC 4861 §6.3.7)", () => {
  it.scoped("three, 4 s apart: the first from :: without our MAC (link-local still tentative), then from it with our MAC; an advertisement stops them", () =>
    withV6(
      (ch) =>
        Effect.gen(function* () {
          const ip = yield* Ipv6
          yield* TestClock.adjust("1 millis")
          const first = rsOf(ch)
          expect(first).toHaveLength(1)
          expect(first[0]!.ip).toMatchObject({ src: IPV6_UNSPECIFIED, dst: IPV6_ALL_ROUTERS, hopLimit: 255 })
          expect(first[0]!.ethDst).toBe(multicastMac(IPV6_ALL_ROUTERS))
          expect(ndOf(first[0]!)).toEqual({ _tag: "RouterSolicitation", sourceLinkAddr: undefined })
          yield* TestClock.adjust("4 seconds")
          const second = rsOf(ch)
          expect(second).toHaveLength(1)
          expect(second[0]!.ip.src).toBe(US_LL)
          expect(ndOf(second[0]!)).toEqual({ _tag: "RouterSolicitation", sourceLinkAddr: STACK_MAC })
          yield* ch.inject([ra([])])
          yield* TestClock.adjust("20 seconds")
          expect(rsOf(ch)).toHaveLength(0)
          expect(ip.ndStats.routerSolicitationsOut).toBe(2)
        }),
      { slaac: true }
    )
  )

  it.scoped("without SLAAC (static addresses), none", () =>
    withV6(
      (ch) =>
        Effect.gen(function* () {
          yield* TestClock.adjust("20 seconds")
          expect(rsOf(ch)).toHaveLength(0)
        }),
      { addresses: [{ address: US, prefixLen: 64 }] }
    )
  )
})

describe("SLAAC (RFC 4862 §5.5.3) in the layer", () => {
  it.scoped("an autonomous /64: the address goes through DAD to assigned, is used, and leaves when its valid lifetime ends", () =>
    withV6(
      (ch) =>
        Effect.gen(function* () {
          const ip = yield* Ipv6
          yield* TestClock.adjust("1100 millis")
          ch.take()
          yield* ch.inject([ra([prefix({ validLifetimeS: 60, preferredLifetimeS: 30 })])])
          yield* TestClock.adjust("1 millis")
          expect(ip.addresses().find((a) => a.address === SLAAC_ADDR)?.state).toBe("Tentative")
          const probes = v6Frames(ch.take()).filter((s) => icmpType(s) === Icmp6.TYPE_NEIGHBOR_SOLICITATION && s.ip.src === IPV6_UNSPECIFIED)
          expect(probes.map((p) => (ndOf(p) as { target: Ipv6Address }).target)).toEqual([SLAAC_ADDR])
          expect(probes[0]!.ip.dst).toBe(solicitedNode(SLAAC_ADDR))
          yield* TestClock.adjust("1100 millis")
          expect(ip.isOurs(SLAAC_ADDR)).toBe(true)
          // the source for a global destination is the new address
          expect(ip.selectSource(a6("2001:db8::1"))).toBe(SLAAC_ADDR)
          // an echo to it from the router's link-local address is answered from it
          ch.take()
          yield* ch.inject([
            ip6Frame(PEER_MAC, STACK_MAC, ROUTER_LL, SLAAC_ADDR, Ip6.NH_ICMPV6, echoRequest(ROUTER_LL, SLAAC_ADDR, 7, 1, new Uint8Array(8)))
          ])
          yield* TestClock.adjust("1 millis")
          const replies = v6Frames(ch.take()).filter((s) => icmpType(s) === Icmp6.TYPE_ECHO_REPLY)
          expect(replies.map((r) => [r.ip.src, r.ip.dst])).toEqual([[SLAAC_ADDR, ROUTER_LL]])
          // just before 60 s after the advertisement: still there; at 60 s: gone
          yield* TestClock.adjust("57 seconds")
          expect(ip.addresses().some((a) => a.address === SLAAC_ADDR)).toBe(true)
          yield* TestClock.adjust("2 seconds")
          expect(ip.addresses().some((a) => a.address === SLAAC_ADDR)).toBe(false)
          expect(ip.isOurs(SLAAC_ADDR)).toBe(false)
        }),
      { slaac: true }
    )
  )

  it.scoped("not autonomous, or not a /64: no address, the reason counted", () =>
    withV6(
      (ch) =>
        Effect.gen(function* () {
          const ip = yield* Ipv6
          yield* TestClock.adjust("1100 millis")
          yield* ch.inject([ra([prefix({ autonomous: false }), prefix({ prefix: a6("2001:db8:1::"), prefixLen: 56 })])])
          yield* TestClock.adjust("3 seconds")
          expect(ip.addresses().map((a) => a.address)).toEqual([US_LL])
          expect(ip.ndStats.slaacIgnored).toEqual({ NotAutonomous: 1, PrefixLength: 1 })
        }),
      { slaac: true }
    )
  )

  it.scoped("with SLAAC off, an advertised prefix forms no address", () =>
    withV6(
      (ch) =>
        Effect.gen(function* () {
          const ip = yield* Ipv6
          yield* TestClock.adjust("1100 millis")
          yield* ch.inject([ra([prefix()])])
          yield* TestClock.adjust("3 seconds")
          expect(ip.addresses().map((a) => a.address)).toEqual([US_LL, US])
        }),
      { addresses: [{ address: US, prefixLen: 64 }] }
    )
  )
})

describe("a static default router (--gw6)", () => {
  /** An echo request from an off-link address; the reply's link destination (undefined: no reply left). */
  const replyVia = (ch: Channel, seq: number) =>
    Effect.gen(function* () {
      yield* ch.inject([ip6Frame(PEER_MAC, STACK_MAC, FAR, US, Ip6.NH_ICMPV6, echoRequest(FAR, US, 9, seq, new Uint8Array(8)))])
      yield* TestClock.adjust("1 millis")
      let sent = v6Frames(ch.take())
      const ns = sent.find((s) => icmpType(s) === Icmp6.TYPE_NEIGHBOR_SOLICITATION)
      if (ns !== undefined) {
        // resolve the router: its advertisement releases the waiting reply
        expect((ndOf(ns) as { target: Ipv6Address }).target).toBe(ROUTER_LL)
        const na: Nd.NdRepr = { _tag: "NeighborAdvertisement", router: true, solicited: true, override: true, target: ROUTER_LL, targetLinkAddr: PEER_MAC }
        yield* ch.inject([ip6Frame(PEER_MAC, STACK_MAC, ROUTER_LL, ns.ip.src, Ip6.NH_ICMPV6, ndMsg(na, ROUTER_LL, ns.ip.src), 255)])
        yield* TestClock.adjust("1 millis")
        sent = v6Frames(ch.take())
      }
      const reply = sent.find((s) => icmpType(s) === Icmp6.TYPE_ECHO_REPLY)
      return reply === undefined ? undefined : { ethDst: reply.ethDst, dst: reply.ip.dst }
    })

  it.scoped("off-link traffic goes through it, also after an advertisement from it with router lifetime 0", () =>
    withV6(
      (ch) =>
        Effect.gen(function* () {
          yield* TestClock.adjust("1100 millis")
          ch.take()
          expect(yield* replyVia(ch, 1)).toEqual({ ethDst: PEER_MAC, dst: FAR })
          yield* ch.inject([ra([], 0)])
          yield* TestClock.adjust("1 millis")
          ch.take()
          expect(yield* replyVia(ch, 2)).toEqual({ ethDst: PEER_MAC, dst: FAR })
        }),
      { addresses: [{ address: US, prefixLen: 64 }], gateway: ROUTER_LL }
    )
  )

  it.scoped("without it (and no advertisement), an off-link destination has no route: no reply", () =>
    withV6(
      (ch) =>
        Effect.gen(function* () {
          yield* TestClock.adjust("1100 millis")
          ch.take()
          expect(yield* replyVia(ch, 1)).toBeUndefined()
        }),
      { addresses: [{ address: US, prefixLen: 64 }] }
    )
  )
})
