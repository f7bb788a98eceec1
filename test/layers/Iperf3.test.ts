/**
 * The iperf3 layer over two of our stacks on a simulated link, under TestClock: a scripted iperf3 client (our own
 * TCP on stack A) runs whole tests; clients that vanish, stall or never send a cookie end only their own test, with
 * a logged reason, and the next client is served.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Iperf3 from "../../src/layers/Iperf3.js"
import * as Stats from "../../src/layers/Stats.js"
import * as Tcp from "../../src/layers/Tcp.js"
import * as W from "../../src/protocols/iperf3/wire.js"
import { B_IP, make, runVirtual, type TwoStacks } from "../support/twoStacks.js"

const withIperf3 = (net: TwoStacks, lines: Array<string>) =>
  Layer.build(Iperf3.layer({ print: (l) => void lines.push(l), wallClockUs: () => 0 }).pipe(Layer.provide(Layer.succeedContext(net.b))))

const enc = new TextEncoder()
const cookieBytes = (s: string): Uint8Array => Uint8Array.from([...enc.encode(s), 0])
const COOKIE_A = "abcdefghijklmnopqrstuvwxyz2345672345"
const COOKIE_B = "zyxwvutsrqponmlkjihgfedcba7654327654"

/** Reads exact byte counts from a buffer-mode connection (keeps what it read beyond). */
const reader = (c: Tcp.TcpConnection) => {
  let buf = new Uint8Array(0)
  const exact = (n: number): Effect.Effect<Uint8Array, Tcp.TcpError | string> =>
    Effect.gen(function* () {
      while (buf.length < n) {
        const r = yield* c.read()
        if (Option.isNone(r)) return yield* Effect.fail(`EOF after ${buf.length} of ${n} bytes`)
        const nb = new Uint8Array(buf.length + r.value.length)
        nb.set(buf)
        nb.set(r.value, buf.length)
        buf = nb
      }
      const out = buf.slice(0, n)
      buf = buf.slice(n)
      return out
    })
  const json = Effect.gen(function* () {
    const len = yield* exact(4)
    const n = ((len[0]! << 24) | (len[1]! << 16) | (len[2]! << 8) | len[3]!) >>> 0
    return JSON.parse(new TextDecoder().decode(yield* exact(n))) as Record<string, unknown>
  })
  /** Everything until the peer closes (or resets): the count. */
  const drain = Effect.gen(function* () {
    let n = buf.length
    buf = new Uint8Array(0)
    while (true) {
      const r = yield* Effect.either(c.read())
      if (r._tag === "Left" || Option.isNone(r.right)) return n
      n += r.right.value.length
    }
  })
  return { exact, json, drain }
}

const clientResults = (ids: ReadonlyArray<number>) =>
  W.encodeJson({
    cpu_util_total: 1, cpu_util_user: 1, cpu_util_system: 0, sender_has_retransmits: 0,
    streams: ids.map((id) => ({ id, bytes: 1, retransmits: 0, jitter: 0, errors: 0, packets: 0, start_time: 0, end_time: 1 }))
  })

/** A whole -t 1 test (or -R when `reverse`) by the book; returns the server's results. */
const goodClient = (cookie: string, opts: { readonly reverse?: boolean } = {}) =>
  Effect.scoped(
    Effect.gen(function* () {
      const tcp = yield* Tcp.Tcp
      const ctl = yield* tcp.connect(B_IP, 5201, { nagle: false })
      const r = reader(ctl)
      yield* ctl.write(cookieBytes(cookie))
      expect([...(yield* r.exact(1))]).toEqual([W.PARAM_EXCHANGE])
      yield* ctl.write(W.encodeJson({ tcp: true, omit: 0, time: 1, num: 0, blockcount: 0, parallel: 1, len: 131072, ...(opts.reverse === true ? { reverse: true } : {}) }))
      expect([...(yield* r.exact(1))]).toEqual([W.CREATE_STREAMS])
      const st = yield* tcp.connect(B_IP, 5201, { nagle: false })
      yield* st.write(cookieBytes(cookie))
      expect([...(yield* r.exact(2))]).toEqual([W.TEST_START, W.TEST_RUNNING])
      let got = 0
      if (opts.reverse === true) {
        const sr = reader(st)
        yield* sr.exact(300_000)
        got = 300_000
      } else {
        yield* st.write(new Uint8Array(100_000))
        yield* Effect.sleep("500 millis") // let it all arrive before TEST_END (the server counts until then)
      }
      yield* ctl.write(Uint8Array.of(W.TEST_END))
      expect([...(yield* r.exact(1))]).toEqual([W.EXCHANGE_RESULTS])
      yield* ctl.write(clientResults([1]))
      const results = yield* r.json
      expect([...(yield* r.exact(1))]).toEqual([W.DISPLAY_RESULTS])
      yield* ctl.write(Uint8Array.of(W.IPERF_DONE))
      yield* ctl.shutdownWrite
      expect(yield* r.drain).toBe(0)
      return { results, got }
    })
  )

describe("iperf3 layer over our own TCP (TestClock)", () => {
  it.scoped("a whole test: the phases in order, the bytes counted, results with every key, the console lines", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 31, delay: "1 millis" })
      const lines: Array<string> = []
      const ctx = yield* withIperf3(net, lines)
      const stats = Context.get(yield* Layer.build(Stats.layer({ sampleEveryMs: 0 }).pipe(Layer.provide(Layer.succeedContext(Context.merge(net.b, ctx))))), Stats.Stats)
      const f = yield* Effect.fork(goodClient(COOKIE_A).pipe(Effect.provide(net.a)))
      const r = yield* runVirtual(f, 5, 30_000)
      expect(r.value.results).toMatchObject({ sender_has_retransmits: -1, streams: [{ id: 1, bytes: 100_000, retransmits: -1, jitter: 0, errors: 0, packets: 0 }] })
      // the iperf3 counters in Stats (and so in the Effect Metrics): one test served, one stream, its bytes
      const v = yield* stats.read
      expect(v.get("iperf3.tests_completed")).toBe(1)
      expect(v.get("iperf3.streams")).toBe(1)
      expect(v.get("iperf3.bytes_in")).toBeGreaterThanOrEqual(100_000)
      expect(v.get("iperf3.bytes_out")).toBe(0)
      expect(v.get("iperf3.denied")).toBe(0)
      expect(v.get("iperf3.tests_active")).toBe(0)
      for (const k of ["cpu_util_total", "cpu_util_user", "cpu_util_system"]) expect(typeof r.value.results[k]).toBe("number")
      // 3.12's banner at start and again after the test
      expect(lines.slice(0, 3)).toEqual(["-".repeat(59), "Server listening on 5201 (test #1)", "-".repeat(59)])
      expect(lines).toContain("Server listening on 5201 (test #2)")
      expect(lines.some((l) => /^Accepted connection from 198\.51\.100\.1, port \d+$/.test(l))).toBe(true)
      expect(lines.some((l) => /^\[  1\]   0\.00-0\.\d\d   sec  97\.7 KBytes .* receiver$/.test(l)), lines.join("\n")).toBe(true)
    })
  )

  it.scoped("-R: the server sends from its buffer; results carry sender_has_retransmits 1 and a count", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 32, delay: "1 millis" })
      const lines: Array<string> = []
      const layer = yield* withIperf3(net, lines)
      const f = yield* Effect.fork(goodClient(COOKIE_A, { reverse: true }).pipe(Effect.provide(net.a)))
      const r = yield* runVirtual(f, 5, 30_000)
      expect(r.value.got).toBe(300_000)
      const s = (r.value.results["streams"] as Array<Record<string, number>>)[0]!
      expect(r.value.results["sender_has_retransmits"]).toBe(1)
      expect(s["bytes"]).toBeGreaterThanOrEqual(300_000)
      expect(s["retransmits"]).toBeGreaterThanOrEqual(0)
      const st = Context.get(layer, Iperf3.Iperf3)
      expect(st.stats.bytesOut).toBe(s["bytes"])
    })
  )

  it.scoped("a client that vanishes mid-test (resets both connections) ends its test only; the next client completes", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 33, delay: "1 millis" })
      const lines: Array<string> = []
      const layer = yield* withIperf3(net, lines)
      const evil = Effect.scoped(
        Effect.gen(function* () {
          const tcp = yield* Tcp.Tcp
          const ctl = yield* tcp.connect(B_IP, 5201, { nagle: false })
          const r = reader(ctl)
          yield* ctl.write(cookieBytes(COOKIE_B))
          yield* r.exact(1)
          yield* ctl.write(W.encodeJson({ tcp: true, time: 10, parallel: 1 }))
          yield* r.exact(1)
          const st = yield* tcp.connect(B_IP, 5201, { nagle: false })
          yield* st.write(cookieBytes(COOKIE_B))
          yield* r.exact(2)
          yield* st.write(new Uint8Array(50_000))
          yield* ctl.abort
          yield* st.abort
        })
      )
      const e = yield* Effect.fork(evil.pipe(Effect.provide(net.a)))
      yield* runVirtual(e, 5, 30_000)
      const f = yield* Effect.fork(goodClient(COOKIE_A).pipe(Effect.provide(net.a)))
      const g = yield* runVirtual(f, 5, 30_000)
      expect(g.value.results["streams"]).toMatchObject([{ id: 1, bytes: 100_000 }])
      expect(lines.some((l) => /^Test #1 with 198\.51\.100\.1:\d+ ended: the client reset the control connection \(test running\)$/.test(l)), lines.join("\n")).toBe(true)
      const st = Context.get(layer, Iperf3.Iperf3)
      expect(st.stats).toMatchObject({ testsAborted: 1, testsCompleted: 1 })
    })
  )

  it.scoped("a connection that never sends its cookie is closed at 10 s; a test that never gets its stream ends at 10 s", () =>
    Effect.gen(function* () {
      const net = yield* make({ seed: 34 })
      const lines: Array<string> = []
      yield* withIperf3(net, lines)
      const silent = Effect.scoped(
        Effect.gen(function* () {
          const c = yield* (yield* Tcp.Tcp).connect(B_IP, 5201)
          return yield* reader(c).drain
        })
      )
      const s = yield* Effect.fork(silent.pipe(Effect.provide(net.a)))
      const r = yield* runVirtual(s, 100, 30_000)
      expect(r.virtualMs).toBeGreaterThanOrEqual(10_000)
      expect(lines.some((l) => /198\.51\.100\.1:\d+ sent no cookie within 10 s \(0 bytes\); closing/.test(l))).toBe(true)
      const stalled = Effect.scoped(
        Effect.gen(function* () {
          const c = yield* (yield* Tcp.Tcp).connect(B_IP, 5201, { nagle: false })
          const rd = reader(c)
          yield* c.write(cookieBytes(COOKIE_A))
          yield* rd.exact(1)
          yield* c.write(W.encodeJson({ tcp: true, time: 1, parallel: 2 }))
          expect([...(yield* rd.exact(1))]).toEqual([W.CREATE_STREAMS])
          return yield* rd.drain
        })
      )
      const t = yield* Effect.fork(stalled.pipe(Effect.provide(net.a)))
      const tr = yield* runVirtual(t, 100, 30_000)
      expect(tr.virtualMs).toBeGreaterThanOrEqual(10_000)
      expect(lines.some((l) => /ended: timed out waiting for streams \(0 of 2\)/.test(l)), lines.join("\n")).toBe(true)
    })
  )
})
