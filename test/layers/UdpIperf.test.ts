/**
 * The iperf layer's UDP sending streams (`-u -r`, `-u -d`, `-u -R`; iperf-wire.md §B.4) over two stacks on a
 * simulated link under TestClock. Stack A plays the 2.1.8 client with its own Udp service: it sends the header
 * datagrams, its listener accounts our stream with the server's own accounting and answers with the 128-byte
 * report. Each test checks the datagrams on the wire (ports, sequences, count for the time asked) and what the
 * server printed; the hostile cases check that only the offending stream ends, with a logged reason.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Exit from "effect/Exit"
import * as Clock from "effect/Clock"
import { setU32, u32 } from "../../src/protocols/bytes.js"
import * as IperfUdp from "../../src/protocols/iperf/udp.js"
import * as UdpSend from "../../src/protocols/iperf/udpSend.js"
import * as Wire from "../../src/protocols/iperf/wire.js"
import * as Iperf from "../../src/layers/Iperf.js"
import { Udp } from "../../src/layers/Udp.js"
import { A_IP, B_IP, make, runVirtual, type TwoStacks } from "../support/twoStacks.js"

const withIperf = (net: TwoStacks, lines: Array<string>, opts: Partial<Iperf.IperfOptions> = {}) =>
  Layer.build(
    Iperf.layer({ port: 5001, print: (l) => void lines.push(l), wallClockUs: () => 1_700_000_000_000_000, ...opts }).pipe(
      Layer.provide(Layer.succeedContext(net.b))
    )
  )

interface HeaderOpts {
  readonly mode: "plain" | "tradeoff" | "dual" | "reverse"
  readonly durationMs: number
  readonly mPort?: number
  readonly rate?: number
}

/** A 1470-byte client datagram with the 2.1.8 UDP settings header at offset 16 (flags as observed: SEQNO64B, length 76). */
const headerDatagram = (o: HeaderOpts): Uint8Array => {
  const d = new Uint8Array(1470)
  const h = d.subarray(16)
  Wire.emitClientHeader({ mode: o.mode, amount: { kind: "time", durationMs: o.durationMs }, mPort: o.mPort ?? 5001, rate: o.rate ?? 1_048_576 }, h)
  let flags = u32(h, 0) & ~Wire.HEADER_LEN_MASK
  flags |= Wire.HEADER_SEQNO64B | ((76 << 1) & Wire.HEADER_LEN_MASK)
  if (o.mode === "reverse") flags |= Wire.HEADER_UDPTESTS
  setU32(h, 0, flags >>> 0)
  return d
}

interface Seen {
  readonly srcPorts: Set<number>
  readonly seqs: Array<number>
  reports: number
}

/**
 * The client's listener on A:`port`: accounts datagrams from B like the real one and answers the first final
 * datagram (and repeats) with the 128-byte report, unless `silent`.
 */
const listen = (port: number, silent = false) =>
  Effect.gen(function* () {
    const udp = yield* Udp
    const seen: Seen = { srcPorts: new Set(), seqs: [], reports: 0 }
    const st = IperfUdp.makeStream(true)
    const rep = new Uint8Array(IperfUdp.REPORT_LEN)
    yield* udp.bind(port, (d) => {
      if (d.src !== B_IP) return
      seen.srcPorts.add(d.srcPort)
      const p = IperfUdp.parseDatagram(d.payload, true)
      if (typeof p !== "string") seen.seqs.push(p.seq)
      const r = IperfUdp.onPayload(st, d.payload, 1_700_000_000_000_000 + d.nowMs * 1000)
      if (silent) return
      if (r === "Final" || (r === "AfterFinal" && IperfUdp.shouldResend(st))) {
        IperfUdp.emitServerReport(IperfUdp.report(st), rep)
        udp.send(port, d.src, d.srcPort, rep)
        IperfUdp.noteReportSent(st, d.nowMs)
        seen.reports++
      }
    })
    return seen
  })

/**
 * The client's sending side: `n` datagrams 11 ms (`gapMs`) apart from A:`srcPort`, then the final one until the report (≤ 200);
 * `finals: false` leaves the finals out (as if every one was lost).
 */
const clientStream = (srcPort: number, first: Uint8Array, n: number, finals = true, gapMs = 11) =>
  Effect.gen(function* () {
    const udp = yield* Udp
    let report = false
    yield* udp.bind(srcPort, (d) => {
      if (d.src === B_IP && d.srcPort === 5001 && d.payload.length >= IperfUdp.REPORT_LEN) report = true
    })
    const b = first.slice()
    for (let seq = 1; seq <= n; seq++) {
      IperfUdp.emitDatagramPrefix(b, seq, 0, 0)
      udp.send(srcPort, B_IP, 5001, b)
      yield* Effect.sleep(`${gapMs} millis`)
    }
    for (let k = 0; k < (finals ? 200 : 0) && !report; k++) {
      IperfUdp.emitDatagramPrefix(b, -(n + 1 + k), 0, 0)
      udp.send(srcPort, B_IP, 5001, b)
      yield* Effect.sleep("10 millis")
    }
    return report
  }).pipe(Effect.scoped)

/** `-R`: the header datagram from A:`srcPort`, repeated every 10 ms until something arrives (≤ 100 times). */
const reverseClient = (srcPort: number, first: Uint8Array) =>
  Effect.gen(function* () {
    const udp = yield* Udp
    const seen: Seen = { srcPorts: new Set(), seqs: [], reports: 0 }
    yield* udp.bind(srcPort, (d) => {
      if (d.src !== B_IP) return
      seen.srcPorts.add(d.srcPort)
      const p = IperfUdp.parseDatagram(d.payload, true)
      if (typeof p !== "string") seen.seqs.push(p.seq)
    })
    const b = first.slice()
    let sends = 0
    for (; sends < 100 && seen.seqs.length === 0; sends++) {
      IperfUdp.emitDatagramPrefix(b, 0, 0, 0)
      udp.send(srcPort, B_IP, 5001, b)
      yield* Effect.sleep("10 millis")
    }
    return { seen, sends }
  })

/** Advance virtual time by `ms` in steps of `stepMs` (a sender that wakes late catches up in a larger burst). */
const advance = (ms: number, stepMs = 5) =>
  Effect.gen(function* () {
    const f = yield* Effect.fork(Effect.sleep(`${ms} millis`))
    yield* runVirtual(f, stepMs, ms + 10)
  })

const data = (seqs: ReadonlyArray<number>): Array<number> => seqs.filter((s) => s > 0)
const fins = (seqs: ReadonlyArray<number>): Array<number> => seqs.filter((s) => s < 0)

describe("iperf layer: UDP streams the server sends", () => {
  it.scoped("-u -r -t 0.5: after the client's test, 45 datagrams from a new port to mPort, the final one, the report", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 11, delay: "1 millis" })
      const lines: Array<string> = []
      const ip = yield* withIperf(net, lines)
      const seen = yield* listen(5001).pipe(Effect.provide(net.a))
      const h = headerDatagram({ mode: "tradeoff", durationMs: 500 })
      // 20 datagrams: our 47 of the same size stay within 3x what the client sent (the return-path budget)
      const c = yield* Effect.fork(clientStream(40_000, h, 20).pipe(Effect.provide(net.a)))
      const done = yield* runVirtual(c, 5, 5_000)
      expect(done.value).toBe(true) // the server's report of the client's own test
      expect(data(seen.seqs)).toHaveLength(0) // nothing before the client's test ended
      yield* advance(1_500)
      expect([...seen.srcPorts]).toHaveLength(1)
      const [src] = [...seen.srcPorts]
      expect(src).toBeGreaterThanOrEqual(49152)
      const got = data(seen.seqs)
      expect(got).toEqual(Array.from({ length: got.length }, (_, i) => i + 1))
      expect(got.length).toBe(45) // due at k × 11.215 ms < 500 ms
      expect(fins(seen.seqs)).toEqual([-46]) // answered at once: no repeat
      expect(seen.reports).toBe(1)
      const out = lines.join("\n")
      expect(out).toMatch(/^\[ {2}\d\] local 198\.51\.100\.2 port 5001 connected with 198\.51\.100\.1 port 40000$/m)
      expect(out).toMatch(new RegExp(`\\[ \\*2\\] local 198\\.51\\.100\\.2 port ${src} connected with 198\\.51\\.100\\.1 port 5001`))
      expect(out).toMatch(/\[ \*2\] 0\.0000-0\.5\d{3} sec {2}64\.6 KBytes/)
      expect(out).toMatch(/\[ {2}2\] Sent 47 datagrams\n\[ {2}2\] Server Report:\n\[ ID\].*\n\[ \*2\] 0\.0000-0\.\d{4} sec .* 0\/46 \(0%\)/)
      const st = (yield* Iperf.Iperf.pipe(Effect.provide(ip))).stats
      expect(st).toMatchObject({ udpSendStreams: 1, udpSendStreamsActive: 0, udpReportsIn: 1, udpDatagramsOut: 46 })
    })
  )

  it.scoped("--interval 0.5 and -y C: a received stream's intervals as CSV lines (the last partial one too), then its total; no other lines", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 12, delay: "1 millis" })
      const lines: Array<string> = []
      // arrivals 12 ms apart on the wall clock too (each reading moves it on, as the client's gaps do)
      let wall = 1_700_000_000_000_000
      yield* withIperf(net, lines, { intervalS: 0.5, report: "csv", wallClockUs: () => (wall += 12_000) })
      const h = headerDatagram({ mode: "plain", durationMs: 1200 })
      // 100 datagrams 12 ms apart: 1.188 s from the first to the last
      const c = yield* Effect.fork(clientStream(40_001, h, 100, true, 12).pipe(Effect.provide(net.a)))
      const done = yield* runVirtual(c, 4, 5_000)
      expect(done.value).toBe(true)
      const csv = lines.filter((l) => /^\d{14},/.test(l)).map((l) => l.split(","))
      expect(lines.filter((l) => !/^\d{14},/.test(l)), lines.join("\n")).toEqual([]) // no banner, no connection line
      expect(csv.map((l) => l[6])).toEqual(["0.0-0.5", "0.5-1.0", expect.stringMatching(/^1\.0-1\.[1-4]$/), expect.stringMatching(/^0\.0-1\.[1-4]$/)])
      for (const l of csv) {
        expect(l).toHaveLength(14)
        expect(l.slice(1, 6)).toEqual(["198.51.100.1", "40001", "198.51.100.2", "5001", l[5]])
      }
      // the intervals add up to the total: bytes and datagrams
      const sum = (k: number) => csv.slice(0, 3).reduce((a, l) => a + Number(l[k]), 0)
      expect(sum(7)).toBe(Number(csv[3]![7]))
      expect(sum(11)).toBe(Number(csv[3]![11]))
      expect(Number(csv[3]![11])).toBe(101) // the highest sequence, the final datagram (-101) included, as 2.1.8 counts
    })
  )

  it.scoped("-u -r whose final datagrams are all lost: the receive side ends at T + 2 s and our stream still goes", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 18, delay: "1 millis" })
      const lines: Array<string> = []
      yield* withIperf(net, lines)
      const seen = yield* listen(5001).pipe(Effect.provide(net.a))
      const c = yield* Effect.fork(clientStream(40_006, headerDatagram({ mode: "tradeoff", durationMs: 200 }), 18, false).pipe(Effect.provide(net.a)))
      yield* runVirtual(c, 5, 5_000) // about 200 ms
      yield* advance(1_500)
      expect(data(seen.seqs)).toHaveLength(0) // still waiting for the client's final datagram
      yield* advance(1_000) // past 200 ms + 2 s
      expect(lines.join("\n")).toMatch(/\[ {2}1\] 0\.0000-0\.\d{4} sec .* 0\/18 \(0%\) \(no final datagram\)/)
      yield* advance(800)
      expect(data(seen.seqs)).toHaveLength(18) // 200 ms at 1 Mbit/s
      expect(seen.reports).toBe(1)
    })
  )

  it.scoped("-u -d -t 0.3: the server's stream starts at once, beside the client's", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 12, delay: "1 millis" })
      const lines: Array<string> = []
      yield* withIperf(net, lines)
      const seen = yield* listen(6001).pipe(Effect.provide(net.a))
      const h = headerDatagram({ mode: "dual", durationMs: 300, mPort: 6001 })
      const c = yield* Effect.fork(clientStream(40_001, h, 27).pipe(Effect.provide(net.a)))
      yield* advance(100)
      expect(data(seen.seqs).length).toBeGreaterThanOrEqual(8) // 100 ms in: already sending
      yield* runVirtual(c, 5, 5_000)
      yield* advance(500)
      expect(data(seen.seqs)).toHaveLength(27) // 300 / 11.215 → k = 0..26
      expect(fins(seen.seqs)).toEqual([-28])
      expect(lines.join("\n")).toMatch(/\[ {2}2\] Server Report:/)
    })
  )

  it.scoped("-u -d -b 8k -t 6: 1470-byte datagrams 1.47 s apart are not 'silence': both streams run to the end", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 19, delay: "1 millis" })
      const lines: Array<string> = []
      const ip = yield* withIperf(net, lines)
      const seen = yield* listen(6002).pipe(Effect.provide(net.a))
      const h = headerDatagram({ mode: "dual", durationMs: 6_000, mPort: 6002, rate: 8_000 })
      // the client's own stream, a little behind its nominal 1470 ms (as a real sender's sleeps overshoot): each of our
      // datagrams then leaves about 1.46 s after the client's last one arrived
      const c = yield* Effect.fork(clientStream(40_007, h, 5, true, 1_480).pipe(Effect.provide(net.a)))
      yield* runVirtual(c, 10, 10_000)
      yield* advance(2_000)
      expect(data(seen.seqs)).toEqual([1, 2, 3, 4, 5]) // our stream: 6 s at 8 kbit/s
      expect(fins(seen.seqs)).toEqual([-6])
      const st = (yield* Iperf.Iperf.pipe(Effect.provide(ip))).stats
      expect(st.udpSendUnverifiedStops).toBe(0)
      expect(lines.join("\n")).toMatch(/\[ {2}2\] Server Report:/)
    })
  )

  it.scoped("-u -d: arrivals and the pacing use one clock (the stack's clock reading 5 s behind ours changes nothing)", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 20, delay: "1 millis" })
      const lines: Array<string> = []
      // our clock's nanoseconds run 5 s ahead of the stack's milliseconds (as hrtime and a stepped Date.now() can)
      const base = yield* Effect.clock
      const AHEAD_NS = 5_000_000_000n
      const ahead: Clock.Clock = {
        [Clock.ClockTypeId]: Clock.ClockTypeId,
        unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis() + 5_000,
        currentTimeMillis: Effect.sync(() => base.unsafeCurrentTimeMillis() + 5_000),
        unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos() + AHEAD_NS,
        currentTimeNanos: Effect.sync(() => base.unsafeCurrentTimeNanos() + AHEAD_NS),
        sleep: (d) => base.sleep(d)
      }
      const ip = yield* Effect.withClock(withIperf(net, lines), ahead)
      const seen = yield* listen(6003).pipe(Effect.provide(net.a))
      const c = yield* Effect.fork(clientStream(40_008, headerDatagram({ mode: "dual", durationMs: 300, mPort: 6003 }), 27).pipe(Effect.provide(net.a)))
      yield* runVirtual(c, 5, 5_000)
      yield* advance(500)
      expect(data(seen.seqs)).toHaveLength(27)
      expect((yield* Iperf.Iperf.pipe(Effect.provide(ip))).stats.udpSendUnverifiedStops).toBe(0)
    })
  )

  it.scoped("-u -R -b 10M -t 0.2: from port 5001 to the client's port, paced, one final datagram (no-udp-fin)", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 13, delay: "1 millis" })
      const lines: Array<string> = []
      const ip = yield* withIperf(net, lines)
      const h = headerDatagram({ mode: "reverse", durationMs: 200, rate: 10 * 1_048_576 })
      const c = yield* Effect.fork(reverseClient(40_002, h).pipe(Effect.provide(net.a)))
      const r = yield* runVirtual(c, 1, 1_000)
      yield* advance(400)
      expect(r.value.sends).toBeLessThanOrEqual(2)
      const { seen } = r.value
      expect([...seen.srcPorts]).toEqual([5001])
      const n = data(seen.seqs).length
      expect(n).toBe(Math.floor(199 / ((1470 * 8000) / (10 * 1_048_576))) + 1)
      expect(fins(seen.seqs)).toEqual([-(n + 1)])
      expect(lines.join("\n")).toMatch(/\[ {2}1\] local 198\.51\.100\.2 port 5001 connected with 198\.51\.100\.1 port 40002 \(reverse\) \(no-udp-fin\)/)
      expect((yield* Iperf.Iperf.pipe(Effect.provide(ip))).stats.udpSendStreamsActive).toBe(0)
    })
  )

  it.scoped("the client's listener never answers: the final datagram repeats 12 times with backoff, then a warning", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 14, delay: "1 millis" })
      const lines: Array<string> = []
      const ip = yield* withIperf(net, lines)
      const seen = yield* listen(5001, true).pipe(Effect.provide(net.a))
      const h = headerDatagram({ mode: "dual", durationMs: 100 })
      const c = yield* Effect.fork(clientStream(40_003, h, 9).pipe(Effect.provide(net.a)))
      yield* runVirtual(c, 5, 5_000)
      yield* advance(3_000)
      expect(fins(seen.seqs)).toHaveLength(UdpSend.FIN_MAX_SENDS)
      expect(fins(seen.seqs)[11]).toBe(-(data(seen.seqs).length + 12))
      expect(lines.join("\n")).toMatch(/\[ {2}2\] WARNING: did not receive ack of last datagram after 12 tries\./)
      expect((yield* Iperf.Iperf.pipe(Effect.provide(ip))).stats.udpSendStreamsActive).toBe(0)
    })
  )

  it.scoped("hostile: a 10-hour -R is refused with a reason; a good -R beside it still runs", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 15 })
      const lines: Array<string> = []
      const ip = yield* withIperf(net, lines)
      const evil = yield* Effect.fork(reverseClient(40_004, headerDatagram({ mode: "reverse", durationMs: 36_000_000 })).pipe(Effect.provide(net.a)))
      const good = yield* Effect.fork(reverseClient(40_005, headerDatagram({ mode: "reverse", durationMs: 100 })).pipe(Effect.provide(net.a)))
      const e = yield* runVirtual(evil, 5, 2_000)
      const g = yield* runVirtual(good, 5, 2_000)
      yield* advance(300)
      expect(e.value.seen.seqs).toEqual([-1]) // a bare end of stream: the client stops waiting at once
      expect(e.value.sends).toBe(1)
      expect(data(g.value.seen.seqs).length).toBe(9)
      expect(lines.join("\n")).toMatch(/refusing to send UDP to 198\.51\.100\.1:40004: DurationTooLong/)
      // the refused request is remembered: its repeats did not start streams
      const st = (yield* Iperf.Iperf.pipe(Effect.provide(ip))).stats
      expect(st).toMatchObject({ udpSendRefused: 1, udpSendStreams: 1 })
    })
  )

  it.scoped("anti-reflection: ONE -u -d datagram (-t 4 -b 20M) gets at most 3 datagrams back, then the stream stops, counted", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 31, delay: "1 millis" })
      const lines: Array<string> = []
      const ip = yield* withIperf(net, lines)
      const seen = yield* listen(5001, true).pipe(Effect.provide(net.a))
      const one = headerDatagram({ mode: "dual", durationMs: 4_000, rate: 20 * 1_048_576 })
      IperfUdp.emitDatagramPrefix(one, 1, 0, 0)
      const u = yield* Udp.pipe(Effect.provide(net.a))
      u.send(40_020, B_IP, 5001, one)
      yield* advance(5_000)
      expect(data(seen.seqs).length).toBeGreaterThanOrEqual(1)
      expect(data(seen.seqs).length).toBeLessThanOrEqual(3) // 3 x 1470 bytes = 3 x what it sent us
      expect(fins(seen.seqs)).toEqual([])
      const st = (yield* Iperf.Iperf.pipe(Effect.provide(ip))).stats
      expect(st.udpSendUnverifiedStops).toBe(1)
      expect(st.udpDatagramsOut).toBe(data(seen.seqs).length)
      expect(lines.join("\n")).toMatch(/stopped sending to 198\.51\.100\.1:5001 after [123] datagrams/)
    })
  )

  it.scoped("-u -R: an ICMP port unreachable from the client's host stops our stream at once, counted", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 32, delay: "1 millis" })
      const lines: Array<string> = []
      const ip = yield* withIperf(net, lines)
      // the client's port closes as soon as our first datagram arrives: its host answers the next with ICMP
      const c = yield* Effect.fork(Effect.scoped(reverseClient(40_030, headerDatagram({ mode: "reverse", durationMs: 2_000 }))).pipe(Effect.provide(net.a)))
      yield* runVirtual(c, 5, 2_000)
      yield* advance(3_000)
      const st = (yield* Iperf.Iperf.pipe(Effect.provide(ip))).stats
      expect(st.udpSendUnreachableStops).toBe(1)
      expect(st.udpDatagramsOut).toBeLessThan(10) // 2 s at 1 Mbit/s would be about 180
      expect(st.udpSendStreamsActive).toBe(0)
      expect(lines.join("\n")).toMatch(/stopped sending to 198\.51\.100\.1:40030 after \d+ datagrams: ICMP destination unreachable \(code 3\)/)
    })
  )

  it.scoped("a full receive-stream table evicts the idlest entry for a newcomer (64 fake streams cannot lock real clients out)", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 33, delay: "1 millis" })
      const lines: Array<string> = []
      const ip = yield* withIperf(net, lines, { maxUdpStreams: 4 })
      const u = yield* Udp.pipe(Effect.provide(net.a))
      const fake = headerDatagram({ mode: "plain", durationMs: 10_000 })
      for (let p = 41_000; p < 41_004; p++) u.send(p, B_IP, 5001, fake)
      yield* advance(100)
      const c = yield* Effect.fork(clientStream(40_040, headerDatagram({ mode: "plain", durationMs: 100 }), 9).pipe(Effect.provide(net.a)))
      const done = yield* runVirtual(c, 5, 5_000)
      expect(done.value).toBe(true) // the real client got its report
      const st = (yield* Iperf.Iperf.pipe(Effect.provide(ip))).stats
      expect(st.udpStreamEvictions).toBe(1)
      expect(st.udpStreamDrops).toBe(0)
    })
  )

  it.scoped("a full table: 16 forged new keys in one inter-packet gap evict each other, not a client that has shown 8 datagrams", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 34, delay: "1 millis" })
      const lines: Array<string> = []
      const ip = yield* withIperf(net, lines, { maxUdpStreams: 4 })
      const u = yield* Udp.pipe(Effect.provide(net.a))
      const c = yield* Effect.fork(clientStream(40_041, headerDatagram({ mode: "plain", durationMs: 300 }), 20).pipe(Effect.provide(net.a)))
      yield* advance(120) // 11 datagrams in: proven
      const fake = headerDatagram({ mode: "plain", durationMs: 10_000 })
      IperfUdp.emitDatagramPrefix(fake, 1, 0, 0)
      for (let p = 42_000; p < 42_016; p++) u.send(p, B_IP, 5001, fake) // all newer than the client's last datagram
      const done = yield* runVirtual(c, 5, 5_000)
      expect(done.value).toBe(true)
      const st = (yield* Iperf.Iperf.pipe(Effect.provide(ip))).stats
      expect(st.udpStreams).toBe(17) // the client's stream was never forgotten and re-admitted
      expect(st.udpStreamEvictions).toBe(13) // 16 fakes, 3 free slots: fakes evicted fakes
      expect(lines.join("\n")).toMatch(/\[ {2}1\] 0\.0000-\d+\.\d{4} sec .* 0\/21 \(0%\)/) // all 20 and the final one, in one stream
    })
  )

  it.scoped("one source address holds at most 16 receive streams: its 17th evicts its own least proven", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 35, delay: "1 millis" })
      const lines: Array<string> = []
      const ip = yield* withIperf(net, lines)
      const u = yield* Udp.pipe(Effect.provide(net.a))
      const fake = headerDatagram({ mode: "plain", durationMs: 10_000 })
      IperfUdp.emitDatagramPrefix(fake, 1, 0, 0)
      for (let p = 43_000; p < 43_020; p++) u.send(p, B_IP, 5001, fake)
      yield* advance(50)
      const st = (yield* Iperf.Iperf.pipe(Effect.provide(ip))).stats
      expect(st.udpStreamsActive).toBe(16)
      expect(st.udpStreamEvictions).toBe(4)
    })
  )

  it.scoped("hostile: 200 header-less 20-byte datagrams with a final sequence from 200 ports: at most 64 start and 64 result lines, then a summary", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 36, delay: "1 millis" })
      const lines: Array<string> = []
      const ip = yield* withIperf(net, lines)
      const u = yield* Udp.pipe(Effect.provide(net.a))
      const d = new Uint8Array(20) // prefix (sequence -1) and a flags word of 0: a stream without a header, ended at once
      IperfUdp.emitDatagramPrefix(d, -1, 0, 0)
      // 20 every 10 ms (the simulated link queues less than 200 at once), all within one second
      const flood = yield* Effect.fork(
        Effect.forEach(Array.from({ length: 10 }, (_, k) => k), (k) =>
          Effect.zipRight(
            Effect.sync(() => {
              for (let p = 45_000 + 20 * k; p < 45_020 + 20 * k; p++) u.send(p, B_IP, 5001, d)
            }),
            Effect.sleep("10 millis")
          )
        )
      )
      yield* runVirtual(flood, 5, 1_000)
      yield* advance(2_100) // the held lines are summed up when their one-second window has closed
      const count = (re: RegExp) => lines.filter((l) => re.test(l)).length
      expect(count(/ port 5001 connected with 198\.51\.100\.1 port \d+$/)).toBe(Iperf.SESSION_LINES_PER_S)
      expect(count(/^\[ *\d+\] 0\.0000-/)).toBe(Iperf.SESSION_LINES_PER_S)
      // a column header comes only with a result line that is printed, never for the ones held back
      expect(count(/^\[ ID\] Interval/)).toBeLessThanOrEqual(Iperf.SESSION_LINES_PER_S)
      expect(count(/^\[ ID\] Interval/)).toBeGreaterThan(0)
      expect(lines).toContain(`${200 - Iperf.SESSION_LINES_PER_S} UDP streams started in the last second (not logged one by one)`)
      expect(lines).toContain(`${200 - Iperf.SESSION_LINES_PER_S} UDP stream results in the last second (not logged one by one)`)
      expect((yield* Iperf.Iperf.pipe(Effect.provide(ip))).stats.udpStreams).toBe(200)
    })
  )

  it.scoped("'adjusted' is printed only for a request that got its sending slot (a refused second -R prints no such line)", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 37 })
      const lines: Array<string> = []
      const ip = yield* withIperf(net, lines, { maxUdpSendersPerAddress: 1 })
      const fs = yield* Effect.forEach([40_050, 40_051], (p) =>
        Effect.fork(reverseClient(p, headerDatagram({ mode: "reverse", durationMs: 100, rate: 0 })).pipe(Effect.provide(net.a)))
      )
      yield* Effect.forEach(fs, (f) => runVirtual(f, 5, 2_000))
      yield* advance(300)
      expect((yield* Iperf.Iperf.pipe(Effect.provide(ip))).stats.udpSendPerDestRefused).toBe(1)
      expect(lines.filter((l) => /UDP send request from .* adjusted: RateDefaulted/.test(l))).toHaveLength(1)
    })
  )

  it.scoped("sending streams per address are capped (here 2): the third -R from the same host is refused, counted and told at once", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 16 })
      const lines: Array<string> = []
      const ip = yield* withIperf(net, lines, { maxUdpSenders: 4, maxUdpSendersPerAddress: 2 })
      const fs = yield* Effect.forEach([40_010, 40_011, 40_012], (p) =>
        Effect.fork(reverseClient(p, headerDatagram({ mode: "reverse", durationMs: 300 })).pipe(Effect.provide(net.a)))
      )
      const rs = yield* Effect.forEach(fs, (f) => runVirtual(f, 5, 2_000))
      const st = (yield* Iperf.Iperf.pipe(Effect.provide(ip))).stats
      expect(st.udpSendPerDestRefused).toBe(1)
      expect(st.udpSendDrops).toBe(0)
      expect(st.udpSendStreamsActive).toBe(2)
      expect(lines.join("\n")).toMatch(/not sending UDP to 198\.51\.100\.1:4001\d: that address already gets 2 streams from us \(at most 2\)/)
      yield* advance(500)
      const got = rs.map((r) => r.value.seen.seqs)
      expect(got.filter((q) => q.length > 10 && q[0] === 1)).toHaveLength(2) // two whole streams
      expect(got.filter((q) => q.length === 1 && q[0] === -1)).toHaveLength(1) // the refused one is told at once
      expect((yield* Iperf.Iperf.pipe(Effect.provide(ip))).stats.udpSendStreamsActive).toBe(0)
    })
  )

  it.scoped("closing the server's scope interrupts a running stream: nothing more is sent", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 17 })
      const lines: Array<string> = []
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(
        Iperf.layer({ port: 5001, print: (l) => void lines.push(l), wallClockUs: () => 0 }).pipe(Layer.provide(Layer.succeedContext(net.b))),
        scope
      )
      const c = yield* Effect.fork(reverseClient(40_020, headerDatagram({ mode: "reverse", durationMs: 10_000 })).pipe(Effect.provide(net.a)))
      const r = yield* runVirtual(c, 1, 1_000)
      yield* advance(200)
      yield* Scope.close(scope, Exit.void)
      const n = r.value.seen.seqs.length
      expect(n).toBeGreaterThan(10)
      yield* advance(500)
      expect(r.value.seen.seqs.length).toBe(n)
      void Fiber.interrupt
      void A_IP
    })
  )
})
