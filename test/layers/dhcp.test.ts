/**
 * The DHCP client layer over a channel NIC, with the test playing the DHCP server, under TestClock:
 * lease, T1 renewal (unicast), T2 rebinding (broadcast), expiry, NAK, lost OFFER/ACK, malformed input.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { MAC_BROADCAST } from "../../src/protocols/address.js"
import * as ArpWire from "../../src/protocols/arp/wire.js"
import * as W from "../../src/protocols/dhcp/wire.js"
import * as Eth from "../../src/protocols/ethernet/wire.js"
import * as Ip from "../../src/protocols/ipv4/wire.js"
import * as UdpWire from "../../src/protocols/udp/wire.js"
import * as Dhcp from "../../src/layers/Dhcp.js"
import { Interface } from "../../src/layers/Interface.js"
import * as Stack from "../../src/layers/Stack.js"
import { PEER_MAC, STACK_MAC, channelLayer, makeChannel, type Channel } from "../support/channelNic.js"
import { arpFrame, ipFrame, udpDatagram } from "../support/frames.js"
import { LEASED, SERVER, reply, type ReplyOptions } from "../protocols/dhcp/server.js"

interface Sent {
  readonly ethDst: number
  readonly ipSrc: number
  readonly ipDst: number
  readonly msg: W.DhcpRepr
}

/** DHCP messages the stack sent since the last call (other frames are dropped). */
const dhcpSent = (ch: Channel): Array<Sent> => {
  const res: Array<Sent> = []
  for (const f of ch.take()) {
    if (Eth.etherType(f.data) !== Eth.ETHERTYPE_IPV4) continue
    const ip = Ip.parse(f.data.subarray(14), true)
    if (typeof ip === "string" || ip.protocol !== Ip.PROTO_UDP) continue
    const u = Ip.payload(f.data.subarray(14), ip)
    if (UdpWire.parse(u, 0, false) === "Truncated" || u[3] !== 67) continue
    const m = W.parse(u.subarray(8))
    if (typeof m === "string") throw new Error(`stack sent a bad DHCP message: ${m}`)
    res.push({ ethDst: Eth.dst(f.data), ipSrc: ip.src, ipDst: ip.dst, msg: m })
  }
  return res
}

const serverFrame = (m: W.DhcpRepr, dst: number): Uint8Array =>
  ipFrame(PEER_MAC, dst === 0xffffffff ? MAC_BROADCAST : STACK_MAC, SERVER, dst, Ip.PROTO_UDP, udpDatagram(SERVER, dst, 67, 68, W.encode(m)))

const settle = Effect.repeatN(Effect.yieldNow(), 30)

/** The server answers the stack's ARP requests for it (the cache entry expires long before T1). */
const answerArp = (ch: Channel) =>
  Effect.suspend(() => {
    const asks = ch.sent.filter((f) => {
      if (Eth.etherType(f.data) !== Eth.ETHERTYPE_ARP) return false
      const a = ArpWire.parse(f.data.subarray(14))
      return typeof a !== "string" && a.op === ArpWire.OP_REQUEST && a.targetIp === SERVER && a.senderIp !== a.targetIp
    })
    if (asks.length === 0) return Effect.void
    for (const f of asks) ch.sent.splice(ch.sent.indexOf(f), 1)
    return ch.inject([arpFrame(ArpWire.OP_REPLY, PEER_MAC, SERVER, STACK_MAC, LEASED, STACK_MAC)])
  })

const advance = (ch: Channel, ms: number) => Effect.zipRight(TestClock.adjust(`${ms} millis`), Effect.zipRight(settle, answerArp(ch)))

const withClient = <A, E>(body: (ch: Channel, lines: Array<string>) => Effect.Effect<A, E, Stack.StackServices | Dhcp.Dhcp | Scope.Scope>) =>
  Effect.gen(function* () {
    const ch = yield* makeChannel()
    const lines: Array<string> = []
    const layer = Dhcp.layer({ print: (l) => lines.push(l), random: () => 0.5 }).pipe(
      Layer.provideMerge(Stack.layer({})),
      Layer.provide(channelLayer(ch))
    )
    const ctx = yield* Layer.build(layer)
    yield* settle
    return yield* Effect.provide(body(ch, lines), ctx)
  })

/** DISCOVER -> OFFER -> REQUEST -> ACK; returns the client's REQUEST. */
const acquire = (ch: Channel, ack: ReplyOptions = {}) =>
  Effect.gen(function* () {
    const [d] = dhcpSent(ch)
    expect(d?.msg.messageType).toBe(W.DHCPDISCOVER)
    yield* ch.inject([serverFrame(reply(W.DHCPOFFER, d!.msg), 0xffffffff)])
    const [r] = dhcpSent(ch)
    expect(r?.msg.messageType).toBe(W.DHCPREQUEST)
    yield* ch.inject([serverFrame(reply(W.DHCPACK, r!.msg, ack), LEASED)])
    return r!
  })

/** The server asks who we are, so the stack learns its MAC (as it would from the server's own ARP). */
const learnServer = (ch: Channel) =>
  Effect.zipRight(ch.inject([arpFrame(ArpWire.OP_REQUEST, PEER_MAC, SERVER, MAC_BROADCAST, LEASED)]), Effect.sync(() => void ch.take()))

describe("Dhcp layer", () => {
  it.scoped("DISCOVER goes out broadcast from 0.0.0.0; the lease configures the interface and is printed", () =>
    withClient((ch, lines) =>
      Effect.gen(function* () {
        const first = dhcpSent(ch)
        expect(first).toHaveLength(1)
        expect(first[0]).toMatchObject({ ethDst: MAC_BROADCAST, ipSrc: 0, ipDst: 0xffffffff, msg: { messageType: W.DHCPDISCOVER, chaddr: STACK_MAC } })
        yield* ch.inject([serverFrame(reply(W.DHCPOFFER, first[0]!.msg), 0xffffffff)])
        const [req] = dhcpSent(ch)
        expect(req).toMatchObject({ ethDst: MAC_BROADCAST, ipSrc: 0, ipDst: 0xffffffff, msg: { requestedIp: LEASED, serverId: SERVER } })
        yield* ch.inject([serverFrame(reply(W.DHCPACK, req!.msg), LEASED)])
        const iface = yield* Interface
        expect(iface.current()).toEqual({ address: LEASED, prefix: 24, gateway: SERVER })
        const dhcp = yield* Dhcp.Dhcp
        expect(dhcp.state()).toBe("Bound")
        expect(yield* dhcp.awaitBound).toMatchObject({ address: LEASED })
        expect(lines).toEqual([
          "DHCP: leased 198.51.100.50 from 198.51.100.1 for 120 s (renew at 60 s, rebind at 105 s)",
          "Interface 0: 198.51.100.50 netmask 255.255.255.0 gw 198.51.100.1"
        ])
        // the new address is announced with a gratuitous ARP
        const arp = ch.take().find((f) => Eth.etherType(f.data) === Eth.ETHERTYPE_ARP)
        expect(arp).toBeDefined()
        expect(ArpWire.parse(arp!.data.subarray(14))).toMatchObject({ senderIp: LEASED, targetIp: LEASED })
      })
    )
  )

  it.scoped("a lost OFFER: the DISCOVER is repeated at 4 s and 12 s", () =>
    withClient((ch) =>
      Effect.gen(function* () {
        expect(dhcpSent(ch)).toHaveLength(1)
        yield* advance(ch, 3999)
        expect(dhcpSent(ch)).toHaveLength(0)
        yield* advance(ch, 1)
        expect(dhcpSent(ch).map((s) => s.msg.messageType)).toEqual([W.DHCPDISCOVER])
        yield* advance(ch, 8000)
        expect(dhcpSent(ch).map((s) => s.msg.messageType)).toEqual([W.DHCPDISCOVER])
      })
    )
  )

  it.scoped("a lost ACK: the REQUEST is repeated at 4 s, and an ACK then binds", () =>
    withClient((ch) =>
      Effect.gen(function* () {
        const [d] = dhcpSent(ch)
        yield* ch.inject([serverFrame(reply(W.DHCPOFFER, d!.msg), 0xffffffff)])
        expect(dhcpSent(ch)).toHaveLength(1)
        yield* advance(ch, 4000)
        const [again] = dhcpSent(ch)
        expect(again?.msg).toMatchObject({ messageType: W.DHCPREQUEST, requestedIp: LEASED })
        yield* ch.inject([serverFrame(reply(W.DHCPACK, again!.msg), LEASED)])
        expect((yield* Interface).current().address).toBe(LEASED)
      })
    )
  )

  it.scoped("T1: renews by unicast to the server; the ACK keeps the address; the next renewal is T1 later", () =>
    withClient((ch, lines) =>
      Effect.gen(function* () {
        yield* acquire(ch)
        yield* learnServer(ch)
        yield* advance(ch, 59_999)
        expect(dhcpSent(ch)).toHaveLength(0)
        yield* advance(ch, 1)
        const [r] = dhcpSent(ch)
        expect(r).toMatchObject({ ethDst: PEER_MAC, ipSrc: LEASED, ipDst: SERVER, msg: { messageType: W.DHCPREQUEST, ciaddr: LEASED } })
        const dhcp = yield* Dhcp.Dhcp
        expect(dhcp.state()).toBe("Renewing")
        yield* ch.inject([serverFrame(reply(W.DHCPACK, r!.msg), LEASED)])
        expect(dhcp.state()).toBe("Bound")
        expect((yield* Interface).current().address).toBe(LEASED)
        expect(lines).toHaveLength(2) // a renewal prints nothing
        yield* advance(ch, 60_000)
        expect(dhcpSent(ch).map((s) => s.ipDst)).toEqual([SERVER])
        expect(dhcp.stats.counters.renewals).toBe(2)
      })
    )
  )

  it.scoped("no answers: unicast REQUESTs until T2, broadcast until expiry, then the address is dropped and DISCOVER starts over", () =>
    withClient((ch, lines) =>
      Effect.gen(function* () {
        yield* acquire(ch)
        yield* learnServer(ch)
        const iface = yield* Interface
        const dhcp = yield* Dhcp.Dhcp
        const seen: Array<readonly [number, number, number]> = []
        for (let t = 0; t < 121_000; t += 500) {
          yield* advance(ch, 500)
          for (const s of dhcpSent(ch)) seen.push([t + 500, s.msg.messageType, s.ipDst])
        }
        const req = seen.filter(([, ty]) => ty === W.DHCPREQUEST)
        expect(req.filter(([, , dst]) => dst === SERVER).map(([t]) => t)).toEqual([60_000, 82_500, 94_000, 104_000])
        expect(req.filter(([, , dst]) => dst === 0xffffffff).map(([t]) => t)).toEqual([105_000, 115_000])
        expect(seen.filter(([, ty]) => ty === W.DHCPDISCOVER).map(([t]) => t)).toEqual([120_000])
        expect(iface.current().address).toBe(0)
        expect(dhcp.state()).toBe("Selecting")
        expect(lines[2]).toBe("DHCP: lease of 198.51.100.50 expired; address dropped, starting over")
        expect(dhcp.stats.counters).toMatchObject({ renewals: 1, rebinds: 1, expiries: 1 })
      })
    )
  )

  it.scoped("NAK on renewal: the address is dropped at once, DISCOVER after 2 s", () =>
    withClient((ch) =>
      Effect.gen(function* () {
        yield* acquire(ch)
        yield* learnServer(ch)
        yield* advance(ch, 60_000)
        const [r] = dhcpSent(ch)
        yield* ch.inject([serverFrame(reply(W.DHCPNAK, r!.msg), LEASED)])
        expect((yield* Interface).current().address).toBe(0)
        yield* advance(ch, 2000)
        expect(dhcpSent(ch).map((s) => [s.msg.messageType, s.ipSrc])).toEqual([[W.DHCPDISCOVER, 0]])
      })
    )
  )

  it.scoped("malformed messages on port 68 are dropped and counted; wrong xids ignored", () =>
    withClient((ch) =>
      Effect.gen(function* () {
        const [d] = dhcpSent(ch)
        const bad = W.encode(reply(W.DHCPOFFER, d!.msg))
        bad[240 + 4] = 200 // the option after the message type claims 200 bytes
        const dgram = udpDatagram(SERVER, 0xffffffff, 67, 68, bad)
        yield* ch.inject([ipFrame(PEER_MAC, MAC_BROADCAST, SERVER, 0xffffffff, Ip.PROTO_UDP, dgram)])
        yield* ch.inject([serverFrame(reply(W.DHCPOFFER, d!.msg, { xid: 7 }), 0xffffffff)])
        yield* ch.inject([serverFrame(reply(W.DHCPOFFER, d!.msg), 0xffffffff).subarray(0, 100)])
        const dhcp = yield* Dhcp.Dhcp
        expect(dhcp.stats.drops.BadOption).toBe(1)
        expect(dhcp.stats.counters.ignoredIn).toBe(1)
        expect(dhcp.state()).toBe("Selecting")
        expect(dhcpSent(ch)).toHaveLength(0)
      })
    )
  )

  it.scoped("closing the layer while bound sends DHCPRELEASE to the server", () =>
    Effect.gen(function* () {
      const ch = yield* makeChannel()
      const layer = Dhcp.layer({ print: null, random: () => 0.5 }).pipe(Layer.provideMerge(Stack.layer({})), Layer.provide(channelLayer(ch)))
      yield* Effect.scoped(
        Effect.gen(function* () {
          yield* Layer.build(layer)
          yield* settle
          yield* acquire(ch)
          yield* learnServer(ch)
        })
      )
      const rel = dhcpSent(ch)
      expect(rel.map((s) => [s.msg.messageType, s.ipDst, s.msg.ciaddr])).toEqual([[W.DHCPRELEASE, SERVER, LEASED]])
    })
  )
})
