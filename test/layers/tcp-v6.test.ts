/**
 * TCP over IPv6 in the layer (issue 11 phase 2): two stacks on a SimLink with 2001:db8::1 and ::2, under
 * TestClock. A connection opened from a SYN cookie (cookies always on: the whole IPv6 4-tuple is hashed),
 * the MSS of 1440 both ends advertise (read off the wire log), and an IPv4 and an IPv6 connection between the same two stacks at
 * once, counted apart. Then raw SYNs on a channel NIC: the per-source half-open bound and the cookie rate limit count an IPv6
 * source by its /64.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Stack from "../../src/layers/Stack.js"
import * as Tcp from "../../src/layers/Tcp.js"
import * as Cs from "../../src/protocols/checksum.js"
import { parseIpv6, type Ipv6Address } from "../../src/protocols/ipv6/address.js"
import type { SeqNum } from "../../src/protocols/tcp/seq.js"
import { PEER_MAC, STACK_MAC, channelLayer, makeChannel, type Channel } from "../support/channelNic.js"
import * as Eth from "../../src/protocols/ethernet/wire.js"
import * as Ip6 from "../../src/protocols/ipv6/wire.js"
import * as W from "../../src/protocols/tcp/wire.js"
import { A6, A_IP, B6, B_IP, DAD_DONE_MS, make, runVirtual } from "../support/twoStacks.js"

const readAll = (c: Tcp.TcpConnection) =>
  Effect.gen(function* () {
    const parts: Array<number> = []
    while (true) {
      const r = yield* c.read()
      if (Option.isNone(r)) return parts
      parts.push(...r.value)
    }
  })

/** B listens on `port`, reads one connection to its FIN and returns its bytes and endpoints. */
const serveOnce = (port: number) =>
  Effect.gen(function* () {
    const tcp = yield* Tcp.Tcp
    const conns = yield* tcp.listen(port)
    const c = yield* Stream.runHead(conns).pipe(Effect.flatMap(Effect.orDie))
    const got = yield* readAll(c)
    yield* c.shutdownWrite
    return { got, local: c.localAddress, remote: c.remoteAddress }
  })

const sendOnce = (to: typeof B6 | typeof B_IP, port: number, data: Uint8Array) =>
  Effect.gen(function* () {
    const tcp = yield* Tcp.Tcp
    const c = yield* tcp.connect(to, port)
    yield* c.write(data)
    yield* c.shutdownWrite
    yield* readAll(c) // to the server's FIN
    return { local: c.localAddress, counters: c.counters() }
  })

describe("TCP over IPv6, two stacks", () => {
  it.scoped("a SYN cookie over IPv6 opens the connection (cookies always on), 100 kB arrive intact", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 21, delay: "1 millis" }, { synCookies: "always" }, { ipv6: true })
      yield* TestClock.adjust(`${DAD_DONE_MS} millis`)
      const data = new Uint8Array(100_000).map((_, i) => (i * 7) & 0xff)
      const server = yield* Effect.fork(Effect.scoped(serveOnce(5001)).pipe(Effect.provide(net.b)))
      const client = yield* Effect.fork(Effect.scoped(sendOnce(B6, 5001, data)).pipe(Effect.provide(net.a)))
      const { value: c } = yield* runVirtual(client, 5, 30_000)
      const { value: s } = yield* runVirtual(server, 5, 30_000)
      expect(s.got.length).toBe(data.length)
      expect(Buffer.from(s.got).equals(Buffer.from(data))).toBe(true)
      expect([s.local, s.remote, c.local]).toEqual([B6, A6, A6])
      const bStats = yield* Effect.map(Tcp.Tcp, (t) => t.stats).pipe(Effect.provide(net.b))
      expect(bStats.synCookiesSent).toBe(1)
      expect(bStats.synCookiesOk).toBe(1)
      // on the wire: the SYN and the cookie SYN-ACK are IPv6 and both advertise MSS 1440 (MTU 1500 - 60)
      const syns = net.link.wire
        .entries()
        // IPv6 frames whose next header is TCP (we send no extension headers before it)
        .filter((e) => e.event === "tx" && Eth.etherType(e.frame.data) === Eth.ETHERTYPE_IPV6 && e.frame.data[Eth.HEADER_LEN + 6] === Ip6.NH_TCP)
        .map((e) => ({ dir: e.dir, tcp: e.frame.data.subarray(Eth.HEADER_LEN + Ip6.HEADER_LEN) }))
        .filter((x) => (x.tcp[13]! & W.SYN) !== 0)
        .map((x) => {
          const r = W.parse(x.tcp, 0, false)
          if (typeof r === "string") throw new Error(r)
          return [x.dir, r.flags & (W.SYN | W.ACK), r.mss]
        })
      expect(syns).toEqual([
        ["a->b", W.SYN, 1440],
        ["b->a", W.SYN | W.ACK, 1440]
      ])
    })
  )

  it.scoped("IPv4 and IPv6 connections between the same stacks at once: each arrives on its own family", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 22, delay: "1 millis" }, {}, { ipv6: true })
      yield* TestClock.adjust(`${DAD_DONE_MS} millis`)
      const d4 = new Uint8Array(50_000).fill(4)
      const d6 = new Uint8Array(60_000).fill(6)
      const servers = yield* Effect.fork(
        Effect.all([Effect.scoped(serveOnce(5004)), Effect.scoped(serveOnce(5006))], { concurrency: 2 }).pipe(Effect.provide(net.b))
      )
      const clients = yield* Effect.fork(
        Effect.all([Effect.scoped(sendOnce(B_IP, 5004, d4)), Effect.scoped(sendOnce(B6, 5006, d6))], { concurrency: 2 }).pipe(Effect.provide(net.a))
      )
      yield* runVirtual(clients, 5, 30_000)
      const { value: [s4, s6] } = yield* runVirtual(servers, 5, 30_000)
      expect([s4.got.length, s4.got.every((x) => x === 4), s4.remote]).toEqual([50_000, true, A_IP])
      expect([s6.got.length, s6.got.every((x) => x === 6), s6.remote]).toEqual([60_000, true, A6])
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// Raw SYNs over IPv6 on a channel NIC

const US6 = parseIpv6("2001:db8::2")!

const withTcp6 = <A, E>(body: (ch: Channel) => Effect.Effect<A, E, Stack.StackServices | Tcp.Tcp | Scope.Scope>, tcp: Tcp.TcpOptions = {}) =>
  Effect.gen(function* () {
    const ch = yield* makeChannel()
    const layer = Tcp.layer(tcp).pipe(
      Layer.provideMerge(Stack.layer({ ipv6: { random: () => 0, addresses: [{ address: US6, prefixLen: 64 }] } })),
      Layer.provide(channelLayer(ch))
    )
    const ctx = yield* Layer.build(layer)
    yield* TestClock.adjust(`${DAD_DONE_MS} millis`) // our address passes DAD
    ch.take()
    return yield* Effect.provide(body(ch), ctx)
  })

/** A SYN from `src` (any address) to our 2001:db8::2. */
const syn6 = (src: Ipv6Address, srcPort: number, dstPort: number): Uint8Array => {
  const r = W.make({ window: 65535, srcPort, dstPort, seq: srcPort as SeqNum, flags: W.SYN, mss: 1440, payloadLen: 0 })
  const hl = W.headerLen(r)
  const l4 = new Uint8Array(hl)
  W.emit({ ...r, headerLen: hl }, l4, Cs.pseudoV6(src, US6, Ip6.NH_TCP, hl), true)
  const b = new Uint8Array(Eth.HEADER_LEN + Ip6.HEADER_LEN + hl)
  Eth.emitFields(b, STACK_MAC, PEER_MAC, Eth.ETHERTYPE_IPV6)
  Ip6.emitFields(b.subarray(Eth.HEADER_LEN), src, US6, Ip6.NH_TCP, hl, 64)
  b.set(l4, Eth.HEADER_LEN + Ip6.HEADER_LEN)
  return b
}

/** `n` SYNs, each from another address of the /64 `prefix` (its interface identifiers 1..n), ports 30000.. */
const synsFrom64 = (prefix: string, n: number, port: number): Array<Uint8Array> =>
  Array.from({ length: n }, (_, i) => syn6(parseIpv6(`${prefix}::${(i + 1).toString(16)}`)!, 30000 + i, port))

const inject = (ch: Channel, frames: ReadonlyArray<Uint8Array>) =>
  Effect.forEach(
    Array.from({ length: Math.ceil(frames.length / 64) }, (_, i) => frames.slice(i * 64, i * 64 + 64)),
    (b) => ch.inject(b),
    { discard: true }
  )

describe("TCP over IPv6 against a flood: sources counted by /64", () => {
  it.scoped("100 SYNs from 100 addresses of one /64: 16 half-open (the per-source bound), 84 cookies; another /64 still gets a half-open entry after the hold", () =>
    withTcp6((ch) =>
      Effect.gen(function* () {
        const tcp = yield* Tcp.Tcp
        yield* tcp.listen(5001, { backlog: 1000 })
        yield* inject(ch, synsFrom64("2001:db8:0:1", 100, 5001))
        expect(tcp.stats.halfOpen).toBe(16)
        expect(tcp.stats.synCookiesSent).toBe(84)
        // the listener holds cookies for 2 s after a bound was reached; then another /64 gets an entry
        yield* TestClock.adjust("2100 millis")
        yield* ch.inject([syn6(parseIpv6("2001:db8:0:2::1")!, 40000, 5001)])
        expect(tcp.stats.halfOpen).toBe(17)
        expect(tcp.stats.synCookiesSent).toBe(84)
        // while the first /64 is still at its bound
        yield* ch.inject([syn6(parseIpv6("2001:db8:0:1::ffff")!, 40001, 5001)])
        expect(tcp.stats.halfOpen).toBe(17)
        expect(tcp.stats.synCookiesSent).toBe(85)
      })
    ))

  it.scoped("cookie SYN-ACKs are rate limited per /64: a flood spread over one /64's addresses is dropped past its rate, another /64 is still answered", () =>
    withTcp6(
      (ch) =>
        Effect.gen(function* () {
          const tcp = yield* Tcp.Tcp
          yield* tcp.listen(5001, { backlog: 4 })
          yield* inject(ch, synsFrom64("2001:db8:0:1", 50, 5001))
          expect(tcp.stats.halfOpen).toBe(4)
          expect(tcp.stats.synCookiesSent).toBe(10)
          expect(tcp.stats.synRateLimited).toBe(36)
          yield* ch.inject([syn6(parseIpv6("2001:db8:0:2::1")!, 40000, 5001)])
          expect(tcp.stats.synCookiesSent).toBe(11)
          expect(tcp.stats.synRateLimited).toBe(36)
        }),
      { synLimit: { perSource: 10, total: 1000, burstMs: 1000 } }
    ))
})
