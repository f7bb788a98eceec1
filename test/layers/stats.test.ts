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
import { PEER_MAC, STACK_MAC, channelLayer, makeChannel, type Channel } from "../support/channelNic.js"
import { arpFrame, icmpEcho, ipFrame } from "../support/frames.js"

const US = ipv4(198, 51, 100, 2)
const PEER = ipv4(198, 51, 100, 1)
const settle = Effect.repeatN(Effect.yieldNow(), 30)

const withStats = <A, E>(body: (ch: Channel, lines: Array<string>) => Effect.Effect<A, E, Stats.Stats | Stack.StackServices | Scope.Scope>) =>
  Effect.gen(function* () {
    const ch = yield* makeChannel()
    const lines: Array<string> = []
    const layer = Stats.layer({ dumpEveryMs: 500, print: (l) => lines.push(l) }).pipe(
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
  it.scoped("the dump comes every 500 ms, with the echo count, and keeps coming", () =>
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
        expect(perDump).toBe(6) // header, link, arp, ipv4, icmp, udp (no TCP/iperf/DHCP in this stack)
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
