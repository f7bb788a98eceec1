import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import fc from "fast-check"
import { MAC_BROADCAST, ipv4, readIpv4 } from "../../src/protocols/address.js"
import * as ArpWire from "../../src/protocols/arp/wire.js"
import * as Eth from "../../src/protocols/ethernet/wire.js"
import * as IcmpWire from "../../src/protocols/icmp/wire.js"
import * as Ip from "../../src/protocols/ipv4/wire.js"
import { Reassembler } from "../../src/protocols/ipv4/reassembly.js"
import { Arp } from "../../src/layers/Arp.js"
import { Ethernet } from "../../src/layers/Ethernet.js"
import { Icmp } from "../../src/layers/Icmp.js"
import { Interface } from "../../src/layers/Interface.js"
import { Ipv4 } from "../../src/layers/Ipv4.js"
import * as Stack from "../../src/layers/Stack.js"
import { Udp } from "../../src/layers/Udp.js"
import type { Frame } from "../../src/nic/Frame.js"
import { PEER_MAC, STACK_MAC, channelLayer, makeChannel, type Channel } from "../support/channelNic.js"
import { arpFrame, fragments, icmpEcho, ipFrame, udpDatagram } from "../support/frames.js"

const US = ipv4(198, 51, 100, 2)
const PEER = ipv4(198, 51, 100, 1)
const OFFNET = ipv4(203, 0, 113, 9)

const withStack = <A, E>(
  body: (ch: Channel) => Effect.Effect<A, E, Stack.StackServices | Scope.Scope>,
  opts: Stack.StackOptions = { address: { address: US, prefix: 24, gateway: undefined } }
) =>
  Effect.gen(function* () {
    const ch = yield* makeChannel()
    const ctx = yield* Layer.build(Stack.layer(opts).pipe(Layer.provide(channelLayer(ch))))
    return yield* Effect.provide(body(ch), ctx)
  })

/** Teach the stack the peer's MAC with a request for our address, and discard its reply. */
const learnPeer = (ch: Channel) => Effect.zipRight(ch.inject([arpFrame(ArpWire.OP_REQUEST, PEER_MAC, PEER, MAC_BROADCAST, US)]), Effect.sync(() => ch.take()))

const ipOf = (f: Frame) => {
  const r = Ip.parse(f.data.subarray(14), true)
  if (typeof r === "string") throw new Error(`bad IPv4 frame sent: ${r}`)
  return r
}

describe("ARP", () => {
  it.scoped("announces itself with a gratuitous ARP at start", () =>
    withStack((ch) =>
      Effect.sync(() => {
        const f = ch.take()[0]!
        expect(Eth.etherType(f.data)).toBe(Eth.ETHERTYPE_ARP)
        expect(Eth.dst(f.data)).toBe(MAC_BROADCAST)
        const a = ArpWire.parse(f.data.subarray(14))
        expect(a).toMatchObject({ op: ArpWire.OP_REQUEST, senderIp: US, targetIp: US, senderMac: STACK_MAC })
      })
    )
  )

  it.scoped("answers a request for its address and learns the sender", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        ch.take()
        yield* ch.inject([arpFrame(ArpWire.OP_REQUEST, PEER_MAC, PEER, MAC_BROADCAST, US)])
        const out = ch.take()
        expect(out).toHaveLength(1)
        expect(Eth.dst(out[0]!.data)).toBe(PEER_MAC)
        expect(ArpWire.parse(out[0]!.data.subarray(14))).toMatchObject({ op: ArpWire.OP_REPLY, senderIp: US, senderMac: STACK_MAC, targetIp: PEER, targetMac: PEER_MAC })
        const arp = yield* Arp
        expect(arp.lookup(PEER)).toBe(PEER_MAC)
      })
    )
  )

  it.scoped("ignores requests for other addresses", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        ch.take()
        yield* ch.inject([arpFrame(ArpWire.OP_REQUEST, PEER_MAC, PEER, MAC_BROADCAST, ipv4(198, 51, 100, 77))])
        expect(ch.take()).toHaveLength(0)
        expect((yield* Arp).lookup(PEER)).toBeUndefined()
      })
    )
  )

  it.scoped("static entries are used without a request and never overwritten", () =>
    withStack(
      (ch) =>
        Effect.gen(function* () {
          ch.take()
          const other = 0x020000000099
          yield* ch.inject([arpFrame(ArpWire.OP_REPLY, other as never, PEER, STACK_MAC, US, STACK_MAC)])
          expect((yield* Arp).lookup(PEER)).toBe(PEER_MAC)
          ch.take()
          yield* ch.inject([ipFrame(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_ICMP, icmpEcho(1, 1, new Uint8Array(8)))])
          const out = ch.take()
          expect(out).toHaveLength(1)
          expect(Eth.etherType(out[0]!.data)).toBe(Eth.ETHERTYPE_IPV4)
          expect(Eth.dst(out[0]!.data)).toBe(PEER_MAC)
        }),
      { address: { address: US, prefix: 24, gateway: undefined }, staticArp: [{ ip: PEER, mac: PEER_MAC }] }
    )
  )

  it.scoped("queues a packet while resolving, then sends it after the reply", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        ch.take()
        const udp = yield* Udp
        udp.send(5000, PEER, 6000, new Uint8Array([1, 2, 3]))
        yield* (yield* Ethernet).flush
        const req = ch.take()
        expect(req).toHaveLength(1)
        expect(ArpWire.parse(req[0]!.data.subarray(14))).toMatchObject({ op: ArpWire.OP_REQUEST, targetIp: PEER })
        yield* ch.inject([arpFrame(ArpWire.OP_REPLY, PEER_MAC, PEER, STACK_MAC, US, STACK_MAC)])
        const out = ch.take()
        expect(out).toHaveLength(1)
        expect(Eth.dst(out[0]!.data)).toBe(PEER_MAC)
        expect(ipOf(out[0]!).protocol).toBe(Ip.PROTO_UDP)
      })
    )
  )
})

describe("IPv4 and ICMP", () => {
  it.scoped("answers a ping with the same ident, sequence and data", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        yield* learnPeer(ch)
        const data = new Uint8Array(56).map((_, i) => i)
        yield* ch.inject([ipFrame(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_ICMP, icmpEcho(0x1234, 7, data))])
        const out = ch.take()
        expect(out).toHaveLength(1)
        const ip = ipOf(out[0]!)
        expect(ip).toMatchObject({ src: US, dst: PEER, protocol: Ip.PROTO_ICMP })
        const icmp = out[0]!.data.subarray(34)
        expect(IcmpWire.parse(icmp, true)).toMatchObject({ type: IcmpWire.TYPE_ECHO_REPLY, code: 0, rest: (0x1234 << 16) | 7 })
        expect([...icmp.subarray(8)]).toEqual([...data])
        expect((yield* Icmp).stats.echoRepliesOut).toBe(1)
      })
    )
  )

  it.scoped("reassembles a fragmented 4000-byte ping and answers with fragments that reassemble to the same data", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        yield* learnPeer(ch)
        const data = new Uint8Array(4000).map((_, i) => (i * 7) & 0xff)
        const req = icmpEcho(9, 1, data)
        const frags = fragments(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_ICMP, req, 1480, 0x4242)
        expect(frags.length).toBe(3)
        yield* ch.inject(frags.reverse())
        const out = ch.take()
        expect(out.length).toBe(3)
        const r = new Reassembler()
        let whole: Uint8Array | undefined
        for (const f of out) {
          expect(f.data.length).toBeLessThanOrEqual(1514)
          const ip = ipOf(f)
          const res = r.add(ip.src, ip.dst, ip.protocol, ip.ident, ip.fragmentOffset, ip.moreFragments, Ip.payload(f.data.subarray(14), ip), 0)
          if (res instanceof Uint8Array) whole = res
        }
        expect(whole).toBeDefined()
        expect(IcmpWire.parse(whole!, true)).toMatchObject({ type: IcmpWire.TYPE_ECHO_REPLY, rest: (9 << 16) | 1 })
        expect([...whole!.subarray(8)]).toEqual([...data])
      })
    )
  )

  it.scoped("drops bad header checksums and counts them", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        yield* learnPeer(ch)
        const f = ipFrame(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_ICMP, icmpEcho(1, 1, new Uint8Array(8)))
        f[24] = f[24]! ^ 0xff
        yield* ch.inject([f])
        expect(ch.take()).toHaveLength(0)
        expect((yield* Ipv4).stats.drops.BadChecksum).toBe(1)
      })
    )
  )

  it.scoped("protocol unreachable for an unknown protocol; nothing for other hosts", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        yield* learnPeer(ch)
        yield* ch.inject([ipFrame(PEER_MAC, STACK_MAC, PEER, US, 200, new Uint8Array(20))])
        const out = ch.take()
        expect(out).toHaveLength(1)
        expect(IcmpWire.parse(out[0]!.data.subarray(34), true)).toMatchObject({ type: 3, code: IcmpWire.CODE_PROTOCOL_UNREACHABLE })
        yield* ch.inject([ipFrame(PEER_MAC, STACK_MAC, PEER, ipv4(198, 51, 100, 50), 200, new Uint8Array(20))])
        expect(ch.take()).toHaveLength(0)
        expect((yield* Ipv4).stats.drops.NotForUs).toBe(1)
      })
    )
  )

  it.scoped("off-subnet destinations go through the gateway, or count as no route without one", () =>
    Effect.gen(function* () {
      yield* withStack(
        (ch) =>
          Effect.gen(function* () {
            yield* learnPeer(ch)
            ;(yield* Udp).send(1000, OFFNET, 2000, new Uint8Array(4))
            yield* (yield* Ethernet).flush
            const out = ch.take()
            expect(out).toHaveLength(1)
            expect(Eth.dst(out[0]!.data)).toBe(PEER_MAC) // the gateway's MAC
            expect(ipOf(out[0]!).dst).toBe(OFFNET)
          }),
        { address: { address: US, prefix: 24, gateway: PEER } }
      )
      yield* withStack((ch) =>
        Effect.gen(function* () {
          ch.take()
          expect((yield* Udp).send(1000, OFFNET, 2000, new Uint8Array(4))).toBe(false)
          expect((yield* Ipv4).stats.noRoute).toBe(1)
        })
      )
    })
  )
})

describe("address as the CLI writes it", () => {
  it.scoped("\"198.51.100.2/24\" and gateway \"198.51.100.1\": the interface is configured and off-subnet traffic uses the gateway", () =>
    withStack(
      (ch) =>
        Effect.gen(function* () {
          expect((yield* Interface).current()).toEqual({ address: US, prefix: 24, gateway: PEER })
          yield* learnPeer(ch)
          ;(yield* Udp).send(1000, OFFNET, 2000, new Uint8Array(4))
          yield* (yield* Ethernet).flush
          const out = ch.take()
          expect(out).toHaveLength(1)
          expect(Eth.dst(out[0]!.data)).toBe(PEER_MAC)
          expect(ipOf(out[0]!).dst).toBe(OFFNET)
        }),
      { address: "198.51.100.2/24", gateway: "198.51.100.1" }
    )
  )

  it.scoped("without a gateway: no route off the subnet; a ping on it is answered", () =>
    withStack(
      (ch) =>
        Effect.gen(function* () {
          expect((yield* Interface).current()).toEqual({ address: US, prefix: 24 })
          expect((yield* Udp).send(1000, OFFNET, 2000, new Uint8Array(4))).toBe(false)
          yield* learnPeer(ch)
          yield* ch.inject([ipFrame(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_ICMP, icmpEcho(0x77, 1, new Uint8Array(8)))])
          const out = ch.take()
          expect(out).toHaveLength(1)
          expect(ipOf(out[0]!)).toMatchObject({ src: US, dst: PEER, protocol: Ip.PROTO_ICMP })
        }),
      { address: "198.51.100.2/24" }
    )
  )

  const refused: ReadonlyArray<readonly [Stack.StackOptions, Stack.StackConfigError["reason"], string, string]> = [
    [{ address: "198.51.100.2" }, "InvalidAddress", "198.51.100.2", "prefix length is missing"],
    [{ address: "198.51.100.300/24" }, "InvalidAddress", "198.51.100.300/24", "expected IPv4/prefix"],
    [{ address: "198.51.100.2/33" }, "InvalidAddress", "198.51.100.2/33", "1..32"],
    [{ address: "198.51.100.0/24" }, "InvalidAddress", "198.51.100.0/24", "network address"],
    [{ address: "127.0.0.2/8" }, "InvalidAddress", "127.0.0.2/8", "loopback"],
    [{ address: "198.51.100.2/24", gateway: "203.0.113.1" }, "InvalidGateway", "203.0.113.1", "inside the subnet 198.51.100.0/24"],
    [{ address: "198.51.100.2/24", gateway: "198.51.100.2" }, "InvalidGateway", "198.51.100.2", "our own address"],
    [{ address: "198.51.100.2/24", gateway: "198.51.100.255" }, "InvalidGateway", "198.51.100.255", "broadcast address"],
    [{ address: "198.51.100.2/24", gateway: "198.51.100.1/24" }, "InvalidGateway", "198.51.100.1/24", "without a prefix"],
    [{ gateway: "198.51.100.1" }, "GatewayWithoutAddress", "198.51.100.1", "needs a static address"],
    [{ address: { address: US, prefix: 24, gateway: PEER }, gateway: "198.51.100.3" }, "InvalidGateway", "198.51.100.3", "already names"]
  ]
  for (const [opts, reason, value, text] of refused) {
    it.scoped(`refused before anything is built: ${JSON.stringify(opts)}`, () =>
      Effect.gen(function* () {
        const ch = yield* makeChannel()
        const exit = yield* Effect.exit(Layer.build(Stack.layer(opts).pipe(Layer.provide(channelLayer(ch)))))
        expect(exit).toStrictEqual(Exit.fail(expect.any(Stack.StackConfigError)))
        if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
          const e = exit.cause.error
          expect(e).toMatchObject({ _tag: "StackConfigError", reason, value })
          expect(e.message).toContain(text)
          expect(e.message).toContain(JSON.stringify(value))
        }
        expect(ch.take()).toEqual([]) // no gratuitous ARP: the stack never started
      })
    )
  }

  it.scoped("a parsed address with a gateway string gets the same checks", () =>
    withStack(
      () => Effect.map(Interface, (i) => expect(i.current()).toEqual({ address: US, prefix: 24, gateway: PEER })),
      { address: { address: US, prefix: 24 }, gateway: "198.51.100.1" }
    )
  )
})

describe("UDP", () => {
  it.scoped("closed port gets ICMP port unreachable quoting the datagram", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        yield* learnPeer(ch)
        const f = ipFrame(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_UDP, udpDatagram(PEER, US, 40000, 9, new Uint8Array([1, 2, 3, 4])))
        yield* ch.inject([f])
        const out = ch.take()
        expect(out).toHaveLength(1)
        const icmp = out[0]!.data.subarray(34)
        expect(IcmpWire.parse(icmp, true)).toMatchObject({ type: 3, code: IcmpWire.CODE_PORT_UNREACHABLE })
        expect(readIpv4(icmp, 8 + 16)).toBe(US) // quoted IP header: destination
        expect([...icmp.subarray(8, 8 + 32)]).toEqual([...f.subarray(14, 14 + 32)])
      })
    )
  )

  it.scoped("bound port receives the payload; bad checksum dropped", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        yield* learnPeer(ch)
        const got: Array<number[]> = []
        yield* (yield* Udp).bind(7000, (d) => void got.push([...d.payload, d.srcPort]))
        yield* ch.inject([ipFrame(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_UDP, udpDatagram(PEER, US, 40000, 7000, new Uint8Array([5, 6])))])
        const bad = ipFrame(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_UDP, udpDatagram(PEER, US, 40000, 7000, new Uint8Array([5, 6])))
        bad[bad.length - 1] = bad[bad.length - 1]! ^ 1
        yield* ch.inject([bad])
        expect(got).toEqual([[5, 6, 40000]])
        expect((yield* Udp).stats.drops.BadChecksum).toBe(1)
      })
    )
  )
})

describe("robustness", () => {
  it.scoped("100k random and mutated frames: no crash, drops counted, ping answered afterwards", () =>
    withStack((ch) =>
      Effect.gen(function* () {
        yield* learnPeer(ch)
        const seeds = [
          arpFrame(ArpWire.OP_REQUEST, PEER_MAC, PEER, MAC_BROADCAST, US),
          ipFrame(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_ICMP, icmpEcho(1, 1, new Uint8Array(32))),
          ipFrame(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_UDP, udpDatagram(PEER, US, 1, 2, new Uint8Array(16))),
          ...fragments(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_ICMP, icmpEcho(2, 2, new Uint8Array(3000)), 1480, 77)
        ]
        const gen = fc.oneof(
          fc.uint8Array({ minLength: 0, maxLength: 1600 }),
          fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.nat()).map(
            ([s, muts, cut]) => {
              const b = s.slice()
              for (const [pos, v] of muts) b[14 + (pos % Math.max(1, b.length - 14))] = v
              return cut % 4 === 0 ? b.subarray(0, cut % (b.length + 1)) : b
            }
          )
        )
        const frames = fc.sample(gen, { numRuns: 100_000, seed: 42 })
        for (let i = 0; i < frames.length; i += 64) {
          yield* ch.inject(frames.slice(i, i + 64))
          ch.take()
        }
        const eth = yield* Ethernet
        const ip = yield* Ipv4
        expect(eth.stats.rxFrames).toBeGreaterThanOrEqual(100_000)
        expect(eth.stats.rxHandlerErrors).toBe(0)
        const drops = Object.values(ip.stats.drops).reduce((a, b) => a + (b ?? 0), 0) + Object.values(eth.stats.drops).reduce((a, b) => a + (b ?? 0), 0)
        expect(drops).toBeGreaterThan(1000)
        yield* learnPeer(ch)
        yield* ch.inject([ipFrame(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_ICMP, icmpEcho(0x77, 1, new Uint8Array(8)))])
        const out = ch.take()
        expect(out.some((f) => ipOf(f).protocol === Ip.PROTO_ICMP && f.data[34] === IcmpWire.TYPE_ECHO_REPLY)).toBe(true)
      })
    )
  )
})
