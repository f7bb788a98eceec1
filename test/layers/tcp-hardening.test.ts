/**
 * The TCP shell's resource model against hostile peers (issue 9): spoofed SYN floods answered with
 * cookies so a real client is still accepted, probes to a listener dropped unanswered, per-source caps,
 * TIME-WAIT bounded with the oldest recycled, buffer memory pressure. A channel NIC lets the test speak
 * raw TCP as any on-link address; two stacks on a SimLink check that a real TCP completes a cookie
 * handshake with every option.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Stack from "../../src/layers/Stack.js"
import * as Tcp from "../../src/layers/Tcp.js"
import { MAC_BROADCAST, ipv4, mac } from "../../src/protocols/address.js"
import * as ArpWire from "../../src/protocols/arp/wire.js"
import * as Cs from "../../src/protocols/checksum.js"
import * as Eth from "../../src/protocols/ethernet/wire.js"
import * as Ip from "../../src/protocols/ipv4/wire.js"
import type { SeqNum } from "../../src/protocols/tcp/seq.js"
import * as W from "../../src/protocols/tcp/wire.js"
import { PEER_MAC, STACK_MAC, channelLayer, makeChannel, type Channel } from "../support/channelNic.js"
import { arpFrame, ipFrame } from "../support/frames.js"
import { B_IP, make, runVirtual } from "../support/twoStacks.js"

const US = ipv4(198, 51, 100, 2)
const PEER = ipv4(198, 51, 100, 1)

type Services = Stack.StackServices | Tcp.Tcp

const withTcp = <A, E>(
  body: (ch: Channel) => Effect.Effect<A, E, Services | Scope.Scope>,
  tcp: Tcp.TcpOptions = {},
  nic: { readonly synFilter?: boolean } = {}
) =>
  Effect.gen(function* () {
    const ch = yield* makeChannel({}, nic)
    const layer = Tcp.layer(tcp).pipe(
      Layer.provideMerge(Stack.layer({ address: { address: US, prefix: 24, gateway: undefined } })),
      Layer.provide(channelLayer(ch))
    )
    const ctx = yield* Layer.build(layer)
    return yield* Effect.provide(body(ch), ctx)
  })

/** A TCP segment from `src` (MAC derived from the address) to us. */
const tcpFrame = (src: number, p: Partial<W.TcpRepr> & Pick<W.TcpRepr, "srcPort" | "dstPort">, payload = new Uint8Array(0)): Uint8Array => {
  const r = W.make({ window: 65535, ...p, payloadLen: payload.length })
  const hl = W.headerLen(r)
  const l4 = new Uint8Array(hl + payload.length)
  l4.set(payload, hl)
  W.emit({ ...r, headerLen: hl }, l4, Cs.pseudoV4(src, US, Ip.PROTO_TCP, l4.length), true)
  return ipFrame(src === PEER ? PEER_MAC : mac(0x0200, src), STACK_MAC, src, US, Ip.PROTO_TCP, l4)
}

/** TCP segments we sent, parsed. */
const sentTcp = (ch: Channel): Array<{ dst: number; seg: W.TcpRepr }> =>
  ch.take().flatMap((f) => {
    if (Eth.etherType(f.data) !== Eth.ETHERTYPE_IPV4) return []
    const ip = Ip.parse(f.data.subarray(14), false)
    if (typeof ip === "string" || ip.protocol !== Ip.PROTO_TCP) return []
    const seg = W.parse(Ip.payload(f.data.subarray(14), ip), 0, false)
    return typeof seg === "string" ? [] : [{ dst: ip.dst, seg }]
  })

const learnPeer = (ch: Channel) =>
  Effect.zipRight(ch.inject([arpFrame(ArpWire.OP_REQUEST, PEER_MAC, PEER, MAC_BROADCAST, US)]), Effect.sync(() => ch.take()))

/** 300 spoofed SYNs from on-link addresses that will never answer ARP. */
const spoofedSyns = (n: number, port: number): Array<Uint8Array> =>
  Array.from({ length: n }, (_, i) =>
    tcpFrame(ipv4(198, 51, 100, 10 + (i % 200)), { srcPort: 20000 + i, dstPort: port, seq: (i * 7919) as SeqNum, flags: W.SYN, mss: 1460 })
  )

/** `n` SYNs from one source, ports 30000.. */
const synsFrom = (src: number, n: number, port: number): Array<Uint8Array> =>
  Array.from({ length: n }, (_, i) => tcpFrame(src, { srcPort: 30000 + i, dstPort: port, seq: i as SeqNum, flags: W.SYN }))

const inject = (ch: Channel, frames: ReadonlyArray<Uint8Array>) =>
  Effect.forEach(
    Array.from({ length: Math.ceil(frames.length / 64) }, (_, i) => frames.slice(i * 64, i * 64 + 64)),
    (b) => ch.inject(b),
    { discard: true }
  )

/** A listener with a backlog of 4, and 50 SYNs from `src` (limits 10/s per source): 4 half-open, 10 cookies, 36 dropped. */
const floodFrom = (ch: Channel, src: number) =>
  Effect.gen(function* () {
    const tcp = yield* Tcp.Tcp
    yield* tcp.listen(5001, { backlog: 4 })
    yield* inject(ch, synsFrom(src, 50, 5001))
    expect(tcp.stats.synRateLimited).toBe(36)
    return tcp
  })

describe("TCP shell: SYN floods and SYN cookies", () => {
  it.scoped("300 spoofed SYNs fill the backlog; later SYNs get cookies, and a real client's cookie handshake is accepted with its data", () =>
    withTcp((ch) =>
      Effect.gen(function* () {
        const tcp = yield* Tcp.Tcp
        const conns = yield* tcp.listen(5001, { backlog: 256 })
        yield* learnPeer(ch)
        yield* inject(ch, spoofedSyns(300, 5001))
        expect(tcp.stats.halfOpen).toBe(256)
        expect(tcp.stats.synCookiesSent).toBe(300 - 256)
        expect(tcp.stats.synBacklogDrops).toBe(0)
        ch.take()
        // the real client: SYN with timestamps, window scale and SACK
        yield* ch.inject([tcpFrame(PEER, { srcPort: 40000, dstPort: 5001, seq: 1000 as SeqNum, flags: W.SYN, mss: 1460, wscale: 7, sackPermitted: true, hasTs: true, tsVal: 5 })])
        const synAck = sentTcp(ch).find((x) => x.dst === PEER)!.seg
        expect(synAck.flags).toBe(W.SYN | W.ACK)
        expect(synAck.ack).toBe(1001)
        expect(tcp.stats.synCookiesSent).toBe(300 - 256 + 1)
        // its ACK carries the first bytes
        const hello = new TextEncoder().encode("hello, cookie")
        yield* ch.inject([
          tcpFrame(PEER, { srcPort: 40000, dstPort: 5001, seq: 1001 as SeqNum, ack: ((synAck.seq + 1) >>> 0) as SeqNum, flags: W.ACK | W.PSH, window: 1024, hasTs: true, tsVal: 6, tsEcr: synAck.tsVal }, hello)
        ])
        expect(tcp.stats.synCookiesOk).toBe(1)
        const c = yield* Stream.runHead(conns).pipe(Effect.flatMap(Effect.orDie))
        expect(c.remoteAddress).toBe(PEER)
        expect(c.remotePort).toBe(40000)
        const got = yield* c.read()
        expect(Option.map(got, (b) => new TextDecoder().decode(b))).toEqual(Option.some("hello, cookie"))
        // and it can send: the ACK and data carry the peer's scale and timestamps
        yield* c.write(new Uint8Array(100))
        yield* Effect.repeatN(Effect.yieldNow(), 20) // the TX path flushes from its own fiber
        const out = sentTcp(ch).filter((x) => x.dst === PEER && x.seg.payloadLen > 0)
        expect(out.length).toBeGreaterThan(0)
        expect(out[0]!.seg.hasTs).toBe(true)
        expect(out[0]!.seg.tsEcr).toBe(6)
      })
    )
  )

  it.scoped("cookie handshakes past a full accept queue are reset and leave the table (no leak)", () =>
    withTcp(
      (ch) =>
        Effect.gen(function* () {
          const tcp = yield* Tcp.Tcp
          yield* tcp.listen(5001, { backlog: 1 })
          yield* learnPeer(ch)
          const synAcks: Array<W.TcpRepr> = []
          for (const port of [40010, 40011, 40012]) {
            yield* ch.inject([tcpFrame(PEER, { srcPort: port, dstPort: 5001, seq: 100 as SeqNum, flags: W.SYN, mss: 1460 })])
            synAcks.push(sentTcp(ch).find((x) => x.seg.dstPort === port)!.seg)
          }
          // the three ACKs in one burst; the application takes none
          yield* ch.inject(
            synAcks.map((sa) =>
              tcpFrame(PEER, { srcPort: sa.dstPort, dstPort: 5001, seq: 101 as SeqNum, ack: ((sa.seq + 1) >>> 0) as SeqNum, flags: W.ACK })
            )
          )
          expect(tcp.stats.synCookiesOk).toBe(3)
          expect(tcp.stats.acceptQueueDrops).toBe(2)
          expect(tcp.stats.connections).toBe(1)
          expect(tcp.stats.memoryCommitted).toBe(2 * 256 * 1024)
          expect(sentTcp(ch).filter((x) => (x.seg.flags & W.RST) !== 0)).toHaveLength(2)
        }),
      { synCookies: "always" }
    )
  )

  it.scoped("an ACK that matches no connection and no cookie is answered with RST and counted", () =>
    withTcp((ch) =>
      Effect.gen(function* () {
        const tcp = yield* Tcp.Tcp
        yield* tcp.listen(5001, { backlog: 4 })
        yield* learnPeer(ch)
        yield* inject(ch, spoofedSyns(8, 5001)) // cookies in use now
        ch.take()
        yield* ch.inject([tcpFrame(PEER, { srcPort: 40001, dstPort: 5001, seq: 1 as SeqNum, ack: 0x12345678 as SeqNum, flags: W.ACK })])
        const out = sentTcp(ch).filter((x) => x.dst === PEER)
        expect(out.map((x) => x.seg.flags)).toEqual([W.RST])
        expect(tcp.stats.drops.BadCookie).toBe(1)
        expect(tcp.stats.synCookiesOk).toBe(0)
        expect(tcp.stats.connections).toBe(4)
      })
    )
  )

  it.scoped("per source: 16 half-open entries (the default), then cookies, for every source while the flood lasts (2 s hold); then half-open entries again", () =>
    withTcp((ch) =>
      Effect.gen(function* () {
        const tcp = yield* Tcp.Tcp
        yield* tcp.listen(5001, { backlog: 1000 })
        const one = ipv4(198, 51, 100, 77)
        yield* inject(ch, synsFrom(one, 100, 5001))
        expect(tcp.stats.halfOpen).toBe(16)
        expect(tcp.stats.synCookiesSent).toBe(84)
        yield* ch.inject([tcpFrame(ipv4(198, 51, 100, 78), { srcPort: 30000, dstPort: 5001, seq: 1 as SeqNum, flags: W.SYN })])
        expect(tcp.stats.halfOpen).toBe(16)
        expect(tcp.stats.synCookiesSent).toBe(85)
        // a cookie sent only because of the hold does not renew it: 2 s after the bound was last reached,
        // half-open entries again
        yield* TestClock.adjust("1500 millis")
        yield* ch.inject([tcpFrame(ipv4(198, 51, 100, 78), { srcPort: 30001, dstPort: 5001, seq: 1 as SeqNum, flags: W.SYN })])
        expect(tcp.stats.synCookiesSent).toBe(86)
        yield* TestClock.adjust("600 millis")
        yield* ch.inject([tcpFrame(ipv4(198, 51, 100, 78), { srcPort: 30002, dstPort: 5001, seq: 1 as SeqNum, flags: W.SYN })])
        expect(tcp.stats.halfOpen).toBe(17)
        expect(tcp.stats.synCookiesSent).toBe(86)
      })
    )
  )

  it.scoped("cookie SYN-ACKs are rate limited per source: a flooding source is dropped unanswered, another source is still answered", () =>
    withTcp(
      (ch) =>
        Effect.gen(function* () {
          const tcp = yield* Tcp.Tcp
          yield* tcp.listen(5001, { backlog: 4 })
          const flooder = ipv4(198, 51, 100, 77)
          const other = ipv4(198, 51, 100, 78)
          yield* inject(ch, synsFrom(flooder, 50, 5001))
          expect(tcp.stats.halfOpen).toBe(4)
          expect(tcp.stats.synCookiesSent).toBe(10)
          expect(tcp.stats.synRateLimited).toBe(36)
          expect(tcp.stats.drops.RateLimited).toBe(36)
          yield* ch.inject([arpFrame(ArpWire.OP_REQUEST, mac(0x0200, other), other, MAC_BROADCAST, US)]) // we learn its MAC
          ch.take()
          yield* ch.inject([tcpFrame(other, { srcPort: 30000, dstPort: 5001, seq: 1 as SeqNum, flags: W.SYN })])
          expect(tcp.stats.synCookiesSent).toBe(11)
          const toOther = sentTcp(ch).filter((x) => x.dst === other)
          expect(toOther.map((x) => x.seg.flags)).toEqual([W.SYN | W.ACK])
        }),
      { synLimit: { perSource: 10, total: 1000, burstMs: 1000 } }
    )
  )

  it.scoped("a source the limiter keeps refusing is handed to the link's SYN filter at once, and taken off once its sample stops", () =>
    withTcp(
      (ch) =>
        Effect.gen(function* () {
          const flooder = ipv4(198, 51, 100, 77)
          const tcp = yield* floodFrom(ch, flooder)
          // listed as soon as a tenth of its per-second rate (here 1 of 10) was refused, not at the window's end
          expect(ch.filterSets).toEqual([{ sources: [flooder], allLevel: 0 }])
          expect(tcp.stats).toMatchObject({ synFilterSources: 1, synFilterLevel: 0, synFilterUpdates: 1 })
          yield* TestClock.adjust("1000 millis")
          expect(ch.filterSets.length).toBe(1) // the window's end confirms it
          // the filter passes one SYN in 64: one sampled SYN a second stands for 64, past the 10/s limit
          yield* ch.inject([tcpFrame(flooder, { srcPort: 40000, dstPort: 5001, seq: 1 as SeqNum, flags: W.SYN })])
          yield* TestClock.adjust("1000 millis")
          expect(ch.filterSets.length).toBe(1) // unchanged: nothing set again
          // a second without any: the source stopped, the filter is removed
          yield* TestClock.adjust("1000 millis")
          expect(ch.filterSets).toEqual([{ sources: [flooder], allLevel: 0 }, { sources: [], allLevel: 0 }])
          expect(tcp.stats).toMatchObject({ synFilterSources: 0, synFilterUpdates: 2 })
          yield* TestClock.adjust("10 seconds")
          expect(ch.filterSets.length).toBe(2) // nothing more to judge: no more windows
        }),
      { synLimit: { perSource: 10, total: 1000, burstMs: 1000 } },
      { synFilter: true }
    )
  )

  it.scoped("synFilter: false keeps the link's SYN filter untouched", () =>
    withTcp(
      (ch) =>
        Effect.gen(function* () {
          yield* floodFrom(ch, ipv4(198, 51, 100, 77))
          yield* TestClock.adjust("3 seconds")
          expect(ch.filterSets).toEqual([])
        }),
      { synLimit: { perSource: 10, total: 1000, burstMs: 1000 }, synFilter: false },
      { synFilter: true }
    )
  )

  it.scoped("live connections per source are capped; the refused SYN is dropped and counted", () =>
    withTcp(
      (ch) =>
        Effect.gen(function* () {
          const tcp = yield* Tcp.Tcp
          yield* tcp.listen(5001)
          const one = ipv4(198, 51, 100, 77)
          yield* inject(ch, synsFrom(one, 5, 5001))
          expect(tcp.stats.connections).toBe(3)
          expect(tcp.stats.perSourceRefusals).toBe(2)
          expect(tcp.stats.drops.PerSourceLimit).toBe(2)
        }),
      { perSourceConnections: 3 }
    )
  )
})

describe("TCP shell: a listener ignores probes (RFC 9293 §3.10.7.2)", () => {
  it.scoped("FIN, NULL, Xmas and SYN+FIN to a listening port get no answer; a closed port still answers RST", () =>
    withTcp((ch) =>
      Effect.gen(function* () {
        const tcp = yield* Tcp.Tcp
        yield* tcp.listen(5001)
        yield* learnPeer(ch)
        const probe = (flags: number, port = 5001) => tcpFrame(PEER, { srcPort: 41000 + flags, dstPort: port, seq: 9 as SeqNum, flags })
        yield* ch.inject([probe(W.FIN), probe(0), probe(W.FIN | W.PSH | W.URG), probe(W.SYN | W.FIN), probe(W.RST)])
        expect(sentTcp(ch)).toEqual([])
        expect(tcp.stats.drops.ProbeToListener).toBe(4)
        expect(tcp.stats.connections).toBe(0)
        yield* ch.inject([probe(W.FIN, 5002)])
        expect(sentTcp(ch).map((x) => x.seg.flags)).toEqual([W.RST | W.ACK])
      })
    )
  )
})

/** Echo one byte on each accepted connection and close first (the server side holds TIME-WAIT). */
const closeFirstServer = (n: number) =>
  Effect.gen(function* () {
    const tcp = yield* Tcp.Tcp
    const conns = yield* tcp.listen(7000)
    yield* Stream.runForEach(Stream.take(conns, n), (c) =>
      Effect.gen(function* () {
        yield* c.read()
        yield* c.shutdownWrite
        yield* c.awaitClosed
      })
    )
  })

describe("TCP shell: TIME-WAIT", () => {
  it.scoped("is bounded: past maxTimeWait the oldest is recycled and no new connection is ever refused", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 3, delay: "1 millis" }, { maxTimeWait: 4 })
      const server = yield* Effect.fork(Effect.scoped(closeFirstServer(10)).pipe(Effect.provide(net.b)))
      const client = Effect.gen(function* () {
        const tcp = yield* Tcp.Tcp
        for (let i = 0; i < 10; i++) {
          yield* Effect.scoped(
            Effect.gen(function* () {
              const c = yield* tcp.connect(B_IP, 7000)
              yield* c.write(new Uint8Array([i]))
              yield* c.read() // the server's FIN
              yield* c.shutdownWrite
              yield* c.awaitClosed
            })
          )
        }
      }).pipe(Effect.provide(net.a))
      const cf = yield* Effect.fork(client)
      yield* runVirtual(cf, 5, 60_000)
      yield* runVirtual(server, 5, 10_000)
      const st = (yield* Effect.provide(Tcp.Tcp, net.b)).stats
      expect(st.passiveOpens).toBe(10)
      expect(st.timeWait).toBe(4)
      expect(st.timeWaitRecycled).toBe(6)
      expect(st.connections).toBe(0)
      expect(st.tableFullDrops).toBe(0)
    })
  )
})

describe("TCP shell: SYN cookies between two of our stacks", () => {
  it.scoped("with cookies always on, 4 MB go each way byte-exact and the options survive the cookie", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 4, delay: "2 millis", lossRate: 0.01 }, { synCookies: "always" })
      const data = Uint8Array.from({ length: 4_000_000 }, (_, i) => (i * 131 + (i >>> 13)) & 0xff)
      const server = Effect.gen(function* () {
        const tcp = yield* Tcp.Tcp
        const conns = yield* tcp.listen(7001, { recvBufBytes: 1 << 20 })
        const c = yield* Stream.runHead(conns).pipe(Effect.flatMap(Effect.orDie))
        let n = 0
        let ok = true
        while (true) {
          const r = yield* c.read()
          if (Option.isNone(r)) break
          for (let i = 0; i < r.value.length; i++) if (r.value[i] !== data[n + i]) ok = false
          n += r.value.length
        }
        yield* c.write(data)
        yield* c.shutdownWrite
        yield* c.awaitClosed
        return { n, ok, counters: c.counters() }
      }).pipe(Effect.provide(net.b))
      const client = Effect.gen(function* () {
        const tcp = yield* Tcp.Tcp
        const c = yield* tcp.connect(B_IP, 7001, { recvBufBytes: 1 << 20 })
        yield* c.write(data)
        yield* c.shutdownWrite
        let n = 0
        let ok = true
        while (true) {
          const r = yield* c.read()
          if (Option.isNone(r)) break
          for (let i = 0; i < r.value.length; i++) if (r.value[i] !== data[n + i]) ok = false
          n += r.value.length
        }
        return { n, ok }
      }).pipe(Effect.provide(net.a))
      const sf = yield* Effect.fork(Effect.scoped(server))
      const cf = yield* Effect.fork(Effect.scoped(client))
      const c = yield* runVirtual(cf, 5, 300_000)
      const s = yield* runVirtual(sf, 5, 60_000)
      expect(s.value).toMatchObject({ n: data.length, ok: true })
      expect(c.value).toEqual({ n: data.length, ok: true })
      const st = (yield* Effect.provide(Tcp.Tcp, net.b)).stats
      expect(st.synCookiesSent).toBeGreaterThanOrEqual(1)
      expect(st.synCookiesOk).toBe(1)
      expect(st.halfOpen).toBe(0)
      yield* Fiber.interrupt(sf)
    })
  )
})

describe("TCP shell: buffer memory (a connection commits its rings when its handshake completes)", () => {
  const RINGS = { sendBufBytes: 1 << 20, recvBufBytes: 1 << 20 } // 2 MiB a connection; window scale 5
  const ISS = 7000
  const syn = (src: number, port: number) => tcpFrame(src, { srcPort: port, dstPort: 5001, seq: 1 as SeqNum, flags: W.SYN, wscale: 7, mss: 1460 })
  /** The ACK completing the handshake with 1000 bytes, then 1000 more: two segments, so we ACK at once. */
  const ackWithData = (src: number, port: number) => [
    tcpFrame(src, { srcPort: port, dstPort: 5001, seq: 2 as SeqNum, ack: (ISS + 1) as SeqNum, flags: W.ACK }, new Uint8Array(1000)),
    tcpFrame(src, { srcPort: port, dstPort: 5001, seq: 1002 as SeqNum, ack: (ISS + 1) as SeqNum, flags: W.ACK }, new Uint8Array(1000))
  ]
  /** A full handshake from `src` (its MAC learnt first, so our segments to it go out). */
  const connectFrom = (ch: Channel, src: number, port: number) =>
    Effect.gen(function* () {
      if (src !== PEER) yield* ch.inject([arpFrame(ArpWire.OP_REQUEST, mac(0x0200, src), src, MAC_BROADCAST, US)])
      yield* ch.inject([syn(src, port)])
      yield* ch.inject(ackWithData(src, port))
    })
  /** The window our ACK of those 2000 bytes advertised to src:port (scaled by 32). */
  const windowTo = (sent: Array<{ dst: number; seg: W.TcpRepr }>, src: number, port: number) =>
    sent.filter((x) => x.dst === src && x.seg.dstPort === port && x.seg.flags === W.ACK && x.seg.ack === 2002).map((x) => x.seg.window)
  /** Full rings: the window opens to the 1 MiB ring. */
  const full = ((1 << 20) - 2000) >>> 5
  /**
   * Small rings: the window does not open past what the SYN-ACK offered (65535, kept: never shrunk, rounded
   * up to the scale); the receive ring under pressure is 64 KiB so that it holds those bytes.
   */
  const small = Math.ceil((65535 - 2000) / 32)
  const smallRings = 32 * 1024 + 64 * 1024

  it.scoped("established connections past memoryBytes in all, or a quarter of it from one address, give the next handshakes small rings (counted); the SYN-ACK offered the listener's window", () =>
    withTcp(
      (ch) =>
        Effect.gen(function* () {
          const tcp = yield* Tcp.Tcp
          const conns = yield* tcp.listen(5001, RINGS)
          yield* learnPeer(ch)
          // the bound is 8 MiB, so 2 MiB per address; two SYNs from one address, both offered the listener's window
          yield* ch.inject([syn(PEER, 50000), syn(PEER, 50001)])
          const synAcks = sentTcp(ch).filter((x) => x.seg.flags === (W.SYN | W.ACK))
          expect(synAcks.map((x) => [x.seg.window, x.seg.wscale])).toEqual([[65535, 5], [65535, 5]])
          expect(tcp.stats).toMatchObject({ halfOpen: 2, memoryCommitted: 0, memoryPressure: 0 })
          yield* ch.inject(ackWithData(PEER, 50000))
          expect(tcp.stats).toMatchObject({ established: 1, memoryCommitted: 2 << 20, memoryPressure: 0 })
          yield* ch.inject(ackWithData(PEER, 50001)) // over the per-address quarter
          expect(tcp.stats).toMatchObject({ established: 2, memoryCommitted: (2 << 20) + smallRings, memoryPressure: 1 })
          const sent = sentTcp(ch)
          expect(windowTo(sent, PEER, 50000)).toEqual([full])
          expect(windowTo(sent, PEER, 50001)).toEqual([small])
          for (const [i, src] of [78, 79, 80].entries()) yield* connectFrom(ch, ipv4(198, 51, 100, src), 1 + i)
          expect(tcp.stats.memoryCommitted).toBe(3 * (2 << 20) + 2 * smallRings) // the last: over the bound in all
          expect(tcp.stats.memoryPressure).toBe(2)
          expect(windowTo(sentTcp(ch), ipv4(198, 51, 100, 80), 3)).toEqual([small])
          // the rings themselves: the send side shows it
          const accepted = yield* Stream.runCollect(Stream.take(conns, 5))
          expect(Array.from(accepted, (c) => c.sendFree())).toEqual([1 << 20, 32 * 1024, 1 << 20, 1 << 20, 32 * 1024])
        }),
      { memoryBytes: 8 << 20, iss: () => ISS }
    )
  )

  it.scoped("300 spoofed SYNs (half-open, never completed) commit nothing: a later real client gets full rings; established connections past the bound still shrink the next", () =>
    withTcp(
      (ch) =>
        Effect.gen(function* () {
          const tcp = yield* Tcp.Tcp
          const conns = yield* tcp.listen(5001, { ...RINGS, backlog: 1024 })
          yield* learnPeer(ch)
          // 300 half-open entries of 2 MiB rings each: 600 MiB if they counted, against a 16 MiB bound
          yield* inject(ch, spoofedSyns(300, 5001))
          yield* TestClock.adjust("1 second") // their SYN-ACKs are retransmitted, and still nothing is committed
          expect(tcp.stats).toMatchObject({ halfOpen: 300, synCookiesSent: 0, memoryCommitted: 0, memoryPressure: 0 })
          ch.take()
          yield* ch.inject([tcpFrame(PEER, { srcPort: 40000, dstPort: 5001, seq: 1 as SeqNum, flags: W.SYN, wscale: 7, mss: 1460 })])
          yield* ch.inject(ackWithData(PEER, 40000))
          expect(tcp.stats).toMatchObject({ halfOpen: 300, established: 1, memoryCommitted: 2 << 20, memoryPressure: 0 })
          expect(windowTo(sentTcp(ch), PEER, 40000)).toEqual([full])
          // seven more clients fill the bound exactly; the eighth is past it
          for (let i = 0; i < 8; i++) yield* connectFrom(ch, ipv4(198, 51, 100, 210 + i), 1)
          expect(tcp.stats).toMatchObject({ halfOpen: 300, established: 9, memoryCommitted: (16 << 20) + smallRings, memoryPressure: 1 })
          expect(windowTo(sentTcp(ch), ipv4(198, 51, 100, 217), 1)).toEqual([small])
          const accepted = yield* Stream.runCollect(Stream.take(conns, 9))
          expect(Array.from(accepted, (c) => c.sendFree())).toEqual([...Array<number>(8).fill(1 << 20), 32 * 1024])
        }),
      { memoryBytes: 16 << 20, iss: () => ISS }
    )
  )
})
