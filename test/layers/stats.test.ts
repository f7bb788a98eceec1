/**
 * Statistics as Effect Metrics, and the `-d` dump reading them, over a channel NIC under TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { MAC_BROADCAST, ipv4 } from "../../src/protocols/address.js"
import * as ArpWire from "../../src/protocols/arp/wire.js"
import * as Ip from "../../src/protocols/ipv4/wire.js"
import * as Stack from "../../src/layers/Stack.js"
import * as Stats from "../../src/layers/Stats.js"
import * as Tcp from "../../src/layers/Tcp.js"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Stream from "effect/Stream"
import { B_IP, make as twoStacks } from "../support/twoStacks.js"
import { PEER_MAC, STACK_MAC, channelLayer, makeChannel, type Channel } from "../support/channelNic.js"
import { arpFrame, icmpEcho, ipFrame } from "../support/frames.js"

const US = ipv4(198, 51, 100, 2)
const PEER = ipv4(198, 51, 100, 1)
const settle = Effect.repeatN(Effect.yieldNow(), 30)

const withStats = <A, E>(
  body: (ch: Channel, lines: Array<string>) => Effect.Effect<A, E, Stats.Stats | Stack.StackServices | Scope.Scope>,
  dumpTotals = true
) =>
  Effect.gen(function* () {
    const ch = yield* makeChannel()
    const lines: Array<string> = []
    const layer = Stats.layer({ dumpEveryMs: 500, dumpTotals, print: (l) => lines.push(l) }).pipe(
      Layer.provideMerge(Stack.layer({ address: { address: US, prefix: 24, gateway: undefined } })),
      Layer.provide(channelLayer(ch))
    )
    const ctx = yield* Layer.build(layer)
    yield* ch.inject([arpFrame(ArpWire.OP_REQUEST, PEER_MAC, PEER, MAC_BROADCAST, US)])
    return yield* Effect.provide(body(ch, lines), ctx)
  })

const pings = (n: number) =>
  Array.from({ length: n }, (_, i) => ipFrame(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_ICMP, icmpEcho(7, i, new Uint8Array(56))))

describe("Stats", () => {
  it.scoped("-d 500,totals: the interval block then the totals come every 500 ms, with the echo count, and keep coming", () =>
    withStats((ch, lines) =>
      Effect.gen(function* () {
        yield* ch.inject(pings(100))
        expect(lines).toHaveLength(0)
        yield* TestClock.adjust("500 millis")
        yield* settle
        const dump1 = lines.join("\n")
        expect(dump1).toMatch(/^--- statistics at 0\.5 s ---$/m)
        expect(dump1).toMatch(/^icmp: echo requests 100, echo replies 100,/m)
        expect(dump1).toMatch(/^link: in 101 frames /m) // the ARP request and 100 pings
        expect(dump1).toMatch(/^ipv4: in 100, out 100, delivered 100, drops 0,/m)
        expect(dump1).toMatch(/^arp: requests in 1 out 1, replies in 0 out 1, cache 1,/m)
        const perDump = lines.length
        // the interval block (header, rates, now), then the totals: header, link, arp, ipv4, icmp, udp (no TCP/iperf/DHCP here)
        expect(perDump).toBe(9)
        expect(lines.slice(0, 4).map((l) => l.split(" ")[0])).toEqual(["---", "rates:", "now:", "---"])
        expect(lines[3]).toBe("--- statistics at 0.5 s ---")
        yield* ch.inject(pings(3))
        yield* TestClock.adjust("1000 millis")
        yield* settle
        expect(lines).toHaveLength(3 * perDump)
        expect(lines.filter((l) => l.startsWith("icmp:")).map((l) => /echo requests (\d+)/.exec(l)![1])).toEqual(["100", "103", "103"])
      })
    )
  )

  it.scoped("counters are Effect Metrics tagged with the stack, visible in Metric.snapshot", () =>
    withStats((ch) =>
      Effect.gen(function* () {
        yield* ch.inject(pings(4))
        const stats = yield* Stats.Stats
        yield* stats.sample
        const snap = yield* Metric.snapshot
        const mine = snap.filter((p) => p.metricKey.tags.some((t) => t.key === "stack" && t.value === stats.stackTag))
        const echo = mine.find((p) => p.metricKey.name === "miniperf_icmp_echo_requests_in")
        expect(echo).toBeDefined()
        expect((echo!.metricState as unknown as { count: number }).count).toBe(4)
        const cache = mine.find((p) => p.metricKey.name === "miniperf_arp_cache_entries")
        expect((cache!.metricState as unknown as { value: number }).value).toBe(1)
        // a counter grows by the delta: sampling twice does not double it
        yield* stats.sample
        yield* ch.inject(pings(1))
        const v = yield* stats.read
        expect(v.get("icmp.echo_requests_in")).toBe(5)
        expect(v.get("link.rx_frames")).toBe(6)
      })
    )
  )

  it.scoped("drops by reason become tagged counters and appear in the dump", () =>
    withStats((ch, lines) =>
      Effect.gen(function* () {
        const bad = ipFrame(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_ICMP, icmpEcho(7, 1, new Uint8Array(8)))
        bad[24] = (bad[24]! + 1) & 0xff // IPv4 header checksum
        const other = ipFrame(PEER_MAC, STACK_MAC, PEER, ipv4(198, 51, 100, 99), Ip.PROTO_ICMP, icmpEcho(7, 2, new Uint8Array(8)))
        yield* ch.inject([bad, bad, other])
        const stats = yield* Stats.Stats
        const v = yield* stats.read
        expect(v.get("ipv4.drops.BadChecksum")).toBe(2)
        expect(v.get("ipv4.drops.NotForUs")).toBe(1)
        const m = stats.metrics().find((x) => x.def.layer === "ipv4" && x.def.name === "drops.BadChecksum")
        expect(m?.metric.unsafeValue([])).toMatchObject({ count: 2 })
        yield* TestClock.adjust("500 millis")
        yield* settle
        expect(lines.find((l) => l.startsWith("ipv4:"))).toMatch(/drops 3 \((BadChecksum 2, NotForUs 1|NotForUs 1, BadChecksum 2)\), checksum errors 2,/)
      })
    )
  )

  it("formatDump names every layer present, and only those", () => {
    const v = new Map<string, number>([
      ["tcp.passive_opens", 3],
      ["tcp.retransmits", 7],
      ["iperf.tcp_sessions", 2],
      ["iperf.tcp_bytes_in", 1000],
      ["dhcp.renewals", 1]
    ])
    const lines = Stats.formatDump(v, 12.34, "Bound")
    expect(lines[0]).toBe("--- statistics at 12.3 s ---")
    expect(lines.find((l) => l.startsWith("tcp:"))).toContain("passive opens 3")
    expect(lines.find((l) => l.startsWith("tcp:"))).toContain("retransmits 7")
    expect(lines.find((l) => l.startsWith("iperf:"))).toContain("tcp sessions 2 (active 0), bytes in 1000")
    expect(lines.find((l) => l.startsWith("dhcp:"))).toContain("state Bound")
    expect(Stats.formatDump(new Map(), 0).some((l) => l.startsWith("tcp:"))).toBe(false)
  })
})

describe("Stats: the interval block (-d MS)", () => {
  it.scoped("rates over each interval, gauges at its end, no totals unless asked", () =>
    withStats((ch, lines) =>
      Effect.gen(function* () {
        const stats = yield* Stats.Stats
        yield* ch.inject(pings(100))
        yield* TestClock.adjust("500 millis")
        yield* settle
        const v1 = yield* stats.read
        expect(lines[0]).toBe("--- interval 0.0-0.5 s ---")
        // 101 frames in (the ARP request and 100 pings) in 0.5 s
        const inMbit = ((v1.get("link.rx_bytes")! * 8) / 0.5 / 1e6).toFixed(2)
        const out = v1.get("link.tx_frames")!
        expect(out).toBeGreaterThanOrEqual(101) // the ARP reply and 100 echo replies (and our own announcement)
        const outMbit = ((v1.get("link.tx_bytes")! * 8) / 0.5 / 1e6).toFixed(2)
        expect(lines[1]).toBe(`rates: in 202 frames/s ${inMbit} Mbit/s, out ${out * 2} frames/s ${outMbit} Mbit/s, drops 0/s`)
        expect(lines[2]).toBe("now: queued: arp 0 frames")
        expect(lines).toHaveLength(3) // no drops line, no totals
        expect(lines.some((l) => l.startsWith("icmp:") || l.startsWith("--- statistics"))).toBe(false)

        // 3 pings and 4 broken frames in the next interval: 14 frames/s in, 8 drops/s, by reason
        const bad = ipFrame(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_ICMP, icmpEcho(7, 1, new Uint8Array(8)))
        bad[24] = (bad[24]! + 1) & 0xff // IPv4 header checksum
        yield* ch.inject([...pings(3), bad, bad, bad, bad])
        yield* TestClock.adjust("500 millis")
        yield* settle
        expect(lines[3]).toBe("--- interval 0.5-1.0 s ---")
        expect(lines[4]).toMatch(/^rates: in 14 frames\/s [\d.]+ Mbit\/s, out 6 frames\/s [\d.]+ Mbit\/s, drops 8\/s$/)
        expect(lines[6]).toBe("drops: ipv4 BadChecksum 8/s")
        // a quiet interval: all rates 0, no drops line
        yield* TestClock.adjust("500 millis")
        yield* settle
        expect(lines.slice(7)).toEqual([
          "--- interval 1.0-1.5 s ---",
          "rates: in 0 frames/s 0.00 Mbit/s, out 0 frames/s 0.00 Mbit/s, drops 0/s",
          "now: queued: arp 0 frames"
        ])
      }), false)
  )

  it("counterRates: per-second deltas of counters only; new counters count from 0; never negative", () => {
    const before = new Map([["link.rx_frames", 100], ["tcp.connections", 5], ["link.rx_bytes", 1000], ["x.restarted", 50]])
    const now = new Map([
      ["link.rx_frames", 350], ["tcp.connections", 9], ["link.rx_bytes", 1000], ["ipv4.drops.BadChecksum", 3], ["x.restarted", 10]
    ])
    const r = Stats.counterRates(before, now, 0.5)
    expect(r.get("link.rx_frames")).toBe(500)
    expect(r.get("link.rx_bytes")).toBe(0)
    expect(r.get("ipv4.drops.BadChecksum")).toBe(6)
    expect(r.get("x.restarted")).toBe(0)
    expect(r.has("tcp.connections")).toBe(false) // a gauge has a level, not a rate
    expect([...Stats.counterRates(before, now, 0).values()].every((x) => x === 0)).toBe(true)
    expect(Stats.isGaugeKey("tcp.memory_committed_bytes")).toBe(true)
    expect(Stats.isGaugeKey("tcp.segments_in")).toBe(false)
  })

  it("number formats: rates whole from 100 up, one decimal below; Mbit/s decimal megabits", () => {
    expect([Stats.fmtRate(0), Stats.fmtRate(2.5), Stats.fmtRate(3), Stats.fmtRate(99.96), Stats.fmtRate(123.4)]).toEqual(["0", "2.5", "3", "100", "123"])
    expect([Stats.fmtMbits(0), Stats.fmtMbits(125_000), Stats.fmtMbits(1_250_000_000)]).toEqual(["0.00", "1.00", "10000.00"])
  })

  it("formatInterval with every layer: TCP, iperf and iperf3 rates, gauges by state, queue depths, drops by layer and reason", () => {
    const before = new Map<string, number>([
      ["link.rx_frames", 1000], ["link.rx_bytes", 0], ["link.tx_frames", 0], ["link.tx_bytes", 0],
      ["tcp.segments_in", 0], ["tcp.segments_out", 0], ["tcp.retransmits", 10], ["tcp.connections", 1],
      ["iperf.tcp_bytes_in", 0], ["iperf3.bytes_in", 0], ["iperf3.bytes_out", 0], ["link.rx_ring_drops", 0]
    ])
    const now = new Map<string, number>([
      ["link.rx_frames", 3000], ["link.rx_bytes", 250_000_000], ["link.tx_frames", 1000], ["link.tx_bytes", 66_000],
      ["link.rx_ring_drops", 4], ["tcp.drops.PerSourceLimit", 6], ["ipv4.drops.MartianSource", 2],
      ["tcp.segments_in", 2000], ["tcp.segments_out", 1000], ["tcp.retransmits", 12],
      ["tcp.connections", 3], ["tcp.established", 2], ["tcp.half_open", 0], ["tcp.time_wait", 1],
      ["tcp.memory_committed_bytes", 3 << 20], ["tcp.accept_queued", 2], ["arp.pending_frames", 5],
      ["iperf.tcp_bytes_in", 125_000_000], ["iperf.udp_bytes_in", 0], ["iperf.tcp_sessions_active", 1],
      ["iperf.udp_streams_active", 0], ["iperf.udp_send_streams_active", 0],
      ["iperf3.bytes_in", 0], ["iperf3.udp_bytes_in", 0], ["iperf3.bytes_out", 62_500_000], ["iperf3.tests_active", 1], ["iperf3.streams_active", 4]
    ])
    expect(Stats.formatInterval(before, now, 10, 12)).toEqual([
      "--- interval 10.0-12.0 s ---",
      "rates: in 1000 frames/s 1000.00 Mbit/s, out 500 frames/s 0.26 Mbit/s, drops 6/s; tcp segments in 1000/s out 500/s, retransmits 1/s; " +
        "iperf in 500.00 Mbit/s out 0.00 Mbit/s; iperf3 in 0.00 Mbit/s out 250.00 Mbit/s",
      "now: tcp connections 3 (established 2, half-open 0, time-wait 1), memory committed 3.0 MiB; iperf sessions 1, udp streams in 0 out 0; " +
        "iperf3 tests 1, streams 4; queued: arp 5 frames, tcp accept 2",
      "drops: link rx ring 2/s, tcp PerSourceLimit 3/s, ipv4 MartianSource 1/s"
    ])
  })
})

describe("Stats: queue depth gauges", () => {
  it.scoped("tcp.accept_queued counts connections waiting to be taken, never the server's waiting take (a negative Queue size)", () =>
    Effect.gen(function* () {
      const net = yield* twoStacks({ seed: 5, delay: "1 millis" })
      const stats = Context.get(yield* Layer.build(Stats.layer({ sampleEveryMs: 0 }).pipe(Layer.provide(Layer.succeedContext(net.b)))), Stats.Stats)
      const tcpB = Context.get(net.b, Tcp.Tcp)
      const conns = yield* tcpB.listen(5001)
      const queued = Effect.map(stats.read, (v) => v.get("tcp.accept_queued"))
      expect(yield* queued).toBe(0)
      // two clients connect; nobody takes them yet
      for (let i = 0; i < 2; i++) {
        yield* Effect.fork(Effect.scoped(Effect.zipRight(Effect.flatMap(Tcp.Tcp, (t) => t.connect(B_IP, 5001)), Effect.never).pipe(Effect.provide(net.a))))
      }
      for (let i = 0; i < 200 && tcpB.acceptQueued() < 2; i++) yield* TestClock.adjust("5 millis")
      expect(yield* queued).toBe(2)
      // the server takes both and waits for a third: the queue is empty, with a taker waiting
      const taken = yield* Stream.runCollect(Stream.take(conns, 2))
      expect(Chunk.size(taken)).toBe(2)
      yield* Effect.fork(Stream.runHead(conns))
      yield* settle
      expect(yield* queued).toBe(0)
    })
  )
})
