/**
 * `--metrics HOST:PORT` and the `-d` interval block end to end: `node dist/main.js` in a private namespace
 * (test/support/server.ts), scraped with curl over that namespace's loopback (the only place it listens), before and
 * after real traffic (ping, the real iperf3 client); the TAP address does not answer on the metrics port. Bad values
 * exit 2 with one line naming the flag, the value and an example; so does a port already taken.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { describeRoot, uniqueIfName, withNetns } from "../support/netns.js"
import { MAIN, SERVER_IP, runAny, runMain, withServer, type Server } from "../support/server.js"

/** A port chosen at random for each run (inside the test's own namespace, so nothing else holds it). */
const randomPort = (): number => 20_000 + Math.floor(Math.random() * 40_000)

const scrape = (s: Server, url: string) =>
  Effect.map(s.client("curl", ["-sS", "--max-time", "5", "-D", "-", url], 10), (r) => {
    expect(r.code, r.stdout + r.stderr).toBe(0)
    return r.stdout
  })

/** The value of `name{stack="..."}` (our one stack), or undefined when the scrape has no such series. */
const valueOf = (text: string, name: string): number | undefined => {
  const m = new RegExp(`^${name}\\{stack="[^"]*"\\} (\\S+)\\r?$`, "m").exec(text)
  return m === null ? undefined : Number(m[1])
}

describe("e2e: --metrics values refused", () => {
  for (const [value, says] of [
    ["0.0.0.0:9100", "loopback address of this host only"],
    [`${SERVER_IP}:9100`, "never on the TAP"],
    ["localhost:9100", "not a name"]
  ] as const) {
    it.live(`--metrics ${value}: exit 2, one line naming the flag, the value and a correct example`, () =>
      Effect.gen(function* () {
        const r = yield* runMain(["--tap", "mpx-never0", "-i", "198.51.100.2/24", "--metrics", value])
        expect(r.code, r.stdout + r.stderr).toBe(2)
        expect(r.stdout).toBe("")
        const lines = r.stderr.trimEnd().split("\n")
        expect(lines, r.stderr).toHaveLength(1)
        expect(lines[0]).toContain(`miniperf: invalid value '${value}' for --metrics: `)
        expect(lines[0]).toContain(says)
        expect(lines[0]).toMatch(/, e\.g\. --metrics 127\.0\.0\.1:9100$/)
      })
    )
  }
})

describeRoot("e2e: --metrics and the -d interval block with real traffic", () => {
  it.live("GET /metrics over the namespace's loopback: counters move after ping and an iperf3 test; not reachable on the TAP address", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const port = randomPort()
        const s = yield* withServer("metr", { args: ["--metrics", `127.0.0.1:${port}`, "-d", "500"] })
        yield* s.waitFor(new RegExp(`^Metrics on http://127\\.0\\.0\\.1:${port}/metrics$`, "m"))
        const url = `http://127.0.0.1:${port}/metrics`
        const before = yield* scrape(s, url)
        expect(before).toMatch(/^HTTP\/1\.1 200 OK\r?$/m)
        expect(before).toMatch(/^Content-Type: text\/plain; version=0\.0\.4; charset=utf-8\r?$/im)
        expect(before).toMatch(/^# TYPE miniperf_icmp_echo_requests_in_total counter\r?$/m)
        expect(before).toMatch(/^# TYPE miniperf_tcp_connections gauge\r?$/m)
        expect(before).toMatch(/^# TYPE miniperf_iperf3_bytes_in_total counter\r?$/m)
        const echo0 = valueOf(before, "miniperf_icmp_echo_requests_in_total")
        const tests0 = valueOf(before, "miniperf_iperf3_tests_completed_total")
        const bytes0 = valueOf(before, "miniperf_iperf3_bytes_in_total")
        expect([echo0, tests0, bytes0]).toEqual([0, 0, 0])

        const p = yield* s.client("ping", ["-c", "5", "-i", "0.2", "-W", "2", SERVER_IP], 20)
        expect(p.stdout).toMatch(/5 received/)
        const i3 = yield* s.client("iperf3", ["-c", SERVER_IP, "-t", "1"], 30)
        expect(i3.code, i3.stdout + i3.stderr).toBe(0)

        // the test is over on the server a moment after the client's exit (its last exchange)
        let after = ""
        const t0 = Date.now()
        do {
          after = yield* scrape(s, url)
          if ((valueOf(after, "miniperf_iperf3_tests_completed_total") ?? 0) >= 1) break
          yield* Effect.sleep(Duration.millis(200))
        } while (Date.now() - t0 < 10_000)
        expect(valueOf(after, "miniperf_icmp_echo_requests_in_total")).toBeGreaterThanOrEqual(5)
        expect(valueOf(after, "miniperf_iperf3_tests_completed_total")).toBe(1)
        expect(valueOf(after, "miniperf_iperf3_streams_total")).toBe(1)
        expect(valueOf(after, "miniperf_iperf3_bytes_in_total")).toBeGreaterThan(1_000_000)
        expect(valueOf(after, "miniperf_link_rx_frames_total")).toBeGreaterThan(valueOf(before, "miniperf_link_rx_frames_total")!)

        // the -d blocks: rates while the iperf3 test ran, with no totals (not asked for)
        const rates = [...s.output().matchAll(/^rates: in (\d+) frames\/s [\d.]+ Mbit\/s, .*; iperf3 in ([\d.]+) Mbit\/s/gm)]
        expect(rates.length, s.output()).toBeGreaterThan(0)
        expect(Math.max(...rates.map((m) => Number(m[2]))), s.output()).toBeGreaterThan(1)
        expect(s.output()).not.toMatch(/^--- statistics at /m)
        expect(s.output()).toMatch(/^now: tcp connections \d+ \(established \d+, half-open \d+, time-wait \d+\), memory committed /m)

        // the TAP address has no metrics server: our stack answers the SYN with a reset
        const tap = yield* s.client("curl", ["-sS", "--max-time", "3", `http://${SERVER_IP}:${port}/metrics`], 10)
        expect(tap.code, tap.stdout + tap.stderr).not.toBe(0)
        expect(tap.stdout).toBe("")
        expect(s.child.exitCode).toBeNull()
      })
    )
  )

  it.live("a metrics port already taken on the loopback: exit 2, one line naming --metrics, the value and the error", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const ns = yield* withNetns("mbsy")
        const port = randomPort()
        const holder = yield* ns.spawn("/usr/bin/python3", [
          "-c",
          `import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",${port}))\ns.listen()\nprint("READY",flush=True)\ntime.sleep(60)`
        ])
        let out = ""
        holder.stdout?.on("data", (d: Buffer) => (out += d.toString()))
        const t0 = Date.now()
        while (!out.includes("READY") && Date.now() - t0 < 10_000) yield* Effect.sleep(Duration.millis(20))
        expect(out).toContain("READY")
        const r = yield* runAny("ip", ["netns", "exec", ns.name, "node", MAIN, "--tap", uniqueIfName("mb"), "-i", `${SERVER_IP}/24`, "--metrics", `127.0.0.1:${port}`], 20)
        expect(r.code, r.stdout + r.stderr).toBe(2)
        const lines = r.stderr.trimEnd().split("\n")
        expect(lines, r.stderr).toHaveLength(1)
        expect(lines[0]).toBe(`miniperf: invalid value '127.0.0.1:${port}' for --metrics: cannot listen on it (EADDRINUSE), e.g. --metrics 127.0.0.1:9100`)
      })
    )
  )
})
