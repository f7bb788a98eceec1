/**
 * The Prometheus text exposition (src/layers/Prometheus.ts) from Effect Metrics, and the `--metrics` HTTP server
 * (src/layers/MetricsServer.ts) over the host's loopback: names, HELP/TYPE lines, label escaping, counter vs gauge,
 * the scrape moving with traffic, and the server's bounds (paths, methods, connection cap, request deadline).
 */
import { describe, expect, it } from "@effect/vitest"
import * as http from "node:http"
import * as net from "node:net"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import { ipv4 } from "../../src/protocols/address.js"
import * as ArpWire from "../../src/protocols/arp/wire.js"
import * as Ip from "../../src/protocols/ipv4/wire.js"
import { MAC_BROADCAST } from "../../src/protocols/address.js"
import * as MetricsServer from "../../src/layers/MetricsServer.js"
import * as Prometheus from "../../src/layers/Prometheus.js"
import * as Stack from "../../src/layers/Stack.js"
import * as Stats from "../../src/layers/Stats.js"
import { PEER_MAC, STACK_MAC, channelLayer, makeChannel } from "../support/channelNic.js"
import { arpFrame, icmpEcho, ipFrame } from "../support/frames.js"

/** Metric names unique to this file, so the global registry's other metrics do not get in the way. */
let seq = 0
const uniq = (s: string): string => `ptest${process.pid}_${seq++}_${s}`

const snapshotOf = (prefix: string) => Effect.map(Metric.snapshot, (all) => all.filter((p) => p.metricKey.name.startsWith(prefix)))

describe("Prometheus text format", () => {
  it("escapes label values (backslash, double quote, newline) and help text (backslash, newline); names keep only allowed characters", () => {
    expect(Prometheus.escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd')
    expect(Prometheus.escapeHelp('say "hi"\\\nbye')).toBe('say "hi"\\\\\\nbye')
    expect(Prometheus.metricName("miniperf.link-rx frames")).toBe("miniperf_link_rx_frames")
    expect(Prometheus.metricName("9lives")).toBe("_9lives")
    expect(Prometheus.metricName("ns:sub_total")).toBe("ns:sub_total")
    expect(Prometheus.labelName("stack-name")).toBe("stack_name")
    expect(Prometheus.labelName("a:b")).toBe("a_b")
    expect(Prometheus.labelName("__name__")).toBe("x__name__")
    expect([Prometheus.formatValue(3), Prometheus.formatValue(0.5), Prometheus.formatValue(NaN), Prometheus.formatValue(Infinity),
      Prometheus.formatValue(-Infinity), Prometheus.formatValue(12345678901234567890n)]).toEqual(["3", "0.5", "NaN", "+Inf", "-Inf", "12345678901234567890"])
  })

  it.effect("counters get _total and TYPE counter, gauges TYPE gauge; one HELP/TYPE per name, series sorted by labels", () =>
    Effect.gen(function* () {
      const p = uniq("")
      const frames = Metric.counter(`${p}frames`, { description: "frames in\nby the \\link", incremental: true })
      yield* Metric.tagged(frames, "stack", 'tap"1').pipe(Metric.incrementBy(7))
      yield* Metric.tagged(frames, "stack", "tap0").pipe(Metric.incrementBy(2))
      yield* Metric.set(Metric.gauge(`${p}level`), 4.5)
      yield* Metric.incrementBy(Metric.counter(`${p}already_total`, { description: "x", incremental: true }), 1)
      // a counter that may go down (not incremental) is no Prometheus counter: a gauge, no _total
      const active = Metric.counter(`${p}active`)
      yield* Metric.incrementBy(active, 3)
      yield* Metric.incrementBy(active, -1)
      const text = Prometheus.render(yield* snapshotOf(p))
      expect(text).toBe(
        [
          `# TYPE ${p}active gauge`,
          `${p}active 2`,
          `# HELP ${p}already_total x`,
          `# TYPE ${p}already_total counter`,
          `${p}already_total 1`,
          `# HELP ${p}frames_total frames in\\nby the \\\\link`,
          `# TYPE ${p}frames_total counter`,
          `${p}frames_total{stack="tap0"} 2`, // sorted by the label text: '0' before the escaped quote's backslash
          `${p}frames_total{stack="tap\\"1"} 7`,
          `# TYPE ${p}level gauge`,
          `${p}level 4.5`,
          ""
        ].join("\n")
      )
    })
  )

  it.effect("histograms: cumulative buckets, +Inf, _sum and _count; frequencies are left out; a name's second type is left out", () =>
    Effect.gen(function* () {
      const p = uniq("")
      const h = Metric.histogram(`${p}rtt`, MetricBoundaries.fromIterable([1, 10]), "round trips")
      yield* Metric.update(h, 0.5)
      yield* Metric.update(h, 5)
      yield* Metric.update(h, 50)
      yield* Metric.update(Metric.frequency(`${p}freq`), "x")
      yield* Metric.set(Metric.gauge(`${p}clash_total`), 1) // gauge first ...
      yield* Metric.incrementBy(Metric.counter(`${p}clash`, { incremental: true }), 1) // ... then a counter scraped by the same name
      const text = Prometheus.render(yield* snapshotOf(p))
      expect(text).toContain(`# TYPE ${p}rtt histogram\n${p}rtt_bucket{le="1"} 1\n${p}rtt_bucket{le="10"} 2\n${p}rtt_bucket{le="+Inf"} 3\n${p}rtt_sum 55.5\n${p}rtt_count 3\n`)
      expect(text).not.toContain("freq")
      expect(text.match(/# TYPE \S+clash_total /g)).toHaveLength(1)
      expect(text.split("\n").filter((l) => l.startsWith(`${p}clash_total`))).toHaveLength(1)
      // every line is a comment or `name{labels} value`
      for (const l of text.trimEnd().split("\n")) expect(l).toMatch(/^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+)$/)
    })
  )

  it("an empty snapshot is an empty body", () => {
    expect(Prometheus.render([])).toBe("")
  })
})

// ---- the server ------------------------------------------------------------------------------------------------

const US = ipv4(198, 51, 100, 2)
const PEER = ipv4(198, 51, 100, 1)

interface Reply {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

const request = (host: string, port: number, method: string, path: string): Effect.Effect<Reply, Error> =>
  Effect.async<Reply, Error>((resume) => {
    const req = http.request({ host, port, method, path, agent: false, timeout: 5000 }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (d: string) => (body += d))
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, headers: res.headers, body })))
    })
    req.on("timeout", () => req.destroy(new Error("client timeout")))
    req.on("error", (e) => resume(Effect.fail(e)))
    req.end()
  })

/** A raw TCP connection; resolves with what it got when the server closes it, or "open" after `waitMs`. */
const heldSocket = (port: number, send: string, waitMs: number): Effect.Effect<{ readonly closed: boolean; readonly got: string; readonly afterMs: number }> =>
  Effect.async((resume) => {
    const t0 = Date.now()
    let got = ""
    const s = net.connect({ host: "127.0.0.1", port })
    s.setEncoding("utf8")
    s.on("connect", () => s.write(send))
    s.on("data", (d: string) => (got += d))
    const timer = setTimeout(() => {
      s.destroy()
      resume(Effect.succeed({ closed: false, got, afterMs: Date.now() - t0 }))
    }, waitMs)
    s.on("close", () => {
      clearTimeout(timer)
      resume(Effect.succeed({ closed: true, got, afterMs: Date.now() - t0 }))
    })
    s.on("error", () => {})
  })

const withMetricsServer = (opts: Partial<MetricsServer.MetricsServerOptions> = {}) =>
  Effect.gen(function* () {
    const ch = yield* makeChannel()
    const lines: Array<string> = []
    const layer = MetricsServer.layer({ host: "127.0.0.1", port: 0, print: (l) => lines.push(l), ...opts }).pipe(
      Layer.provideMerge(Stats.layer({ sampleEveryMs: 0 })),
      Layer.provideMerge(Stack.layer({ address: { address: US, prefix: 24, gateway: undefined } })),
      Layer.provide(channelLayer(ch))
    )
    const ctx = yield* Layer.build(layer)
    return { ch, lines, server: Context.get(ctx, MetricsServer.MetricsServer), stats: Context.get(ctx, Stats.Stats) }
  })

const sampleOf = (text: string, name: string, stack: string): number | undefined => {
  const esc = stack.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  const m = new RegExp(`^${name}\\{stack="${esc}"\\} (\\S+)$`, "m").exec(text)
  return m === null ? undefined : Number(m[1])
}

describe("--metrics server (host loopback)", () => {
  it.live("GET /metrics: 200, the Prometheus content type, our counters and gauges; a counter moves after traffic", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { ch, lines, server, stats } = yield* withMetricsServer()
        expect(server.port).toBeGreaterThan(0)
        expect(lines).toEqual([`Metrics on http://127.0.0.1:${server.port}/metrics`])
        const r0 = yield* request("127.0.0.1", server.port, "GET", "/metrics")
        expect(r0.status).toBe(200)
        expect(r0.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8")
        expect(r0.body).toContain("# TYPE miniperf_icmp_echo_requests_in_total counter\n")
        expect(r0.body).toContain("# HELP miniperf_icmp_echo_requests_in_total icmp echo requests in\n")
        expect(r0.body).toContain("# TYPE miniperf_arp_cache_entries gauge\n")
        const before = sampleOf(r0.body, "miniperf_icmp_echo_requests_in_total", stats.stackTag)
        expect(before).toBe(0)
        yield* ch.inject([
          arpFrame(ArpWire.OP_REQUEST, PEER_MAC, PEER, MAC_BROADCAST, US),
          ...Array.from({ length: 5 }, (_, i) => ipFrame(PEER_MAC, STACK_MAC, PEER, US, Ip.PROTO_ICMP, icmpEcho(9, i, new Uint8Array(16))))
        ])
        // no background sampling here (sampleEveryMs 0): the scrape itself samples first
        const r1 = yield* request("127.0.0.1", server.port, "GET", "/metrics?x=1")
        expect(sampleOf(r1.body, "miniperf_icmp_echo_requests_in_total", stats.stackTag)).toBe(5)
        expect(sampleOf(r1.body, "miniperf_arp_cache_entries", stats.stackTag)).toBe(1)
        expect(sampleOf(r1.body, "miniperf_link_rx_frames_total", stats.stackTag)).toBe(6)
        // the service's scrape is what GET serves (the runtime's own effect_fiber_* metrics move in between: compare ours)
        const ours = (t: string) => t.split("\n").filter((l) => l.includes("miniperf_")).join("\n")
        expect(ours(yield* server.scrape)).toBe(ours(r1.body))
      })
    )
  )

  it.live("HEAD has the headers only; other paths 404; other methods 405 with Allow", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server } = yield* withMetricsServer()
        const h = yield* request("127.0.0.1", server.port, "HEAD", "/metrics")
        expect(h.status).toBe(200)
        expect(Number(h.headers["content-length"])).toBeGreaterThan(100)
        expect(h.body).toBe("")
        expect((yield* request("127.0.0.1", server.port, "GET", "/")).status).toBe(404)
        expect((yield* request("127.0.0.1", server.port, "GET", "/metricsx")).status).toBe(404)
        const post = yield* request("127.0.0.1", server.port, "POST", "/metrics")
        expect(post.status).toBe(405)
        expect(post.headers["allow"]).toBe("GET, HEAD")
      })
    )
  )

  it.live("bounded: connections past the cap are closed at once; a request that never completes is cut at its deadline", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server } = yield* withMetricsServer({ maxConnections: 2, requestTimeoutMs: 400, keepAliveMs: 200 })
        // two sockets hold the two slots with half a request each
        const held = yield* Effect.all([heldSocket(server.port, "GET /metrics HTTP/1.1\r\n", 5000), heldSocket(server.port, "GET /metrics HTTP/1.1\r\n", 5000)], {
          concurrency: "unbounded"
        }).pipe(Effect.fork)
        yield* Effect.sleep("100 millis")
        const third = yield* heldSocket(server.port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 3000)
        expect(third.closed).toBe(true)
        expect(third.got).toBe("") // refused before any answer
        expect(third.afterMs).toBeLessThan(1000)
        // the two half requests are cut by the deadline (408 or a plain close), well before the 5 s the clients would wait
        const [a, b] = yield* Effect.flatMap(Effect.succeed(held), (f) => f.await.pipe(Effect.flatMap((e) => (Exit.isSuccess(e) ? Effect.succeed(e.value) : Effect.die(e)))))
        for (const s of [a, b]) {
          expect(s.closed).toBe(true)
          expect(s.afterMs).toBeLessThan(3000)
        }
        // and the server is still there
        expect((yield* request("127.0.0.1", server.port, "GET", "/metrics")).status).toBe(200)
      })
    )
  )

  it.live("[::1] works too; a port already in use fails the layer with MetricsServerError naming the code", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server } = yield* withMetricsServer({ host: "::1" })
        expect((yield* request("::1", server.port, "GET", "/metrics")).status).toBe(200)
        const again = yield* Effect.exit(Effect.scoped(withMetricsServer({ host: "::1", port: server.port })))
        expect(Exit.isFailure(again)).toBe(true)
        if (Exit.isFailure(again) && again.cause._tag === "Fail") {
          expect(again.cause.error).toMatchObject({ _tag: "MetricsServerError", code: "EADDRINUSE", host: "::1", port: server.port })
        } else {
          throw new Error(`expected a MetricsServerError, got ${String(again)}`)
        }
      })
    )
  )
})

describe("--metrics listener before the stack is up", () => {
  it.live("listen answers 503 (Retry-After) until attach; then 200 with what attach gave", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const lines: Array<string> = []
        const l = yield* MetricsServer.listen({ host: "127.0.0.1", port: 0, print: (x) => lines.push(x) })
        const r0 = yield* request("127.0.0.1", l.port, "GET", "/metrics")
        expect(r0.status).toBe(503)
        expect(r0.headers["retry-after"]).toBe("1")
        expect(lines).toEqual([])
        yield* l.attach(Effect.succeed("# TYPE x gauge\nx 1\n"))
        const r1 = yield* request("127.0.0.1", l.port, "GET", "/metrics")
        expect([r1.status, r1.body]).toEqual([200, "# TYPE x gauge\nx 1\n"])
        expect(lines).toEqual([`Metrics on http://127.0.0.1:${l.port}/metrics`])
      })
    )
  )
})
