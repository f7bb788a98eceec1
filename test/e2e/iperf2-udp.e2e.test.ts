/**
 * The real iperf 2.1.8 client against our server in the UDP modes where the server sends (iperf-wire.md §B.4):
 * `-u -r`, `-u -d`, `-u -R`. iperf 2 exits 0 even when it fails, so each test judges the client's printed lines
 * (both directions' reports, datagram counts, loss) and the elapsed time, with bounds taken from the real
 * `iperf -s -u` on this machine (2026-11-26: `-u -r -t 2` 4.56 s, `-u -d -t 2` 2.28 s, `-u -R -t 2` 2.04 s; the
 * server's stream 180 datagrams + the final one, 0/181 at the client).
 */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { describeRoot } from "../support/netns.js"
import { SERVER_IP, withServer, type RunResult } from "../support/server.js"

interface UdpLine {
  readonly id: string
  readonly start: number
  readonly end: number
  readonly mbits: number
  readonly jitterMs: number
  readonly lost: number
  readonly total: number
}

const UNIT: Record<string, number> = { "bits/sec": 1e-6, "Kbits/sec": 1e-3, "Mbits/sec": 1, "Gbits/sec": 1e3 }

/**
 * `[ *1] 0.0000-2.0187 sec   260 KBytes  1.05 Mbits/sec   0.003 ms 0/181 (0%)`. The client prints `-nan bits/sec`
 * for a stream of one datagram (zero duration); that parses to NaN, which fails every rate check.
 */
const udpLines = (out: string): Array<UdpLine> => {
  const re = /^\[\s*(\*?\d+)\]\s+(\d+\.\d+)-(\d+\.\d+) sec\s+[\d.]+ \w*Bytes\s+([\d.]+|-?nan) (\w*bits\/sec)\s+([\d.]+) ms (\d+)\/(\d+) \(/gm
  const lines: Array<UdpLine> = []
  for (const m of out.matchAll(re)) {
    lines.push({
      id: m[1]!,
      start: Number(m[2]),
      end: Number(m[3]),
      mbits: Number(m[4]) * (UNIT[m[5]!] ?? Number.NaN),
      jitterMs: Number(m[6]),
      lost: Number(m[7]),
      total: Number(m[8])
    })
  }
  return lines
}

const line = (out: string, id: string): UdpLine => {
  const l = udpLines(out).find((x) => x.id === id && x.start === 0)
  expect(l, `no UDP report line for [${id}] in:\n${out}`).toBeDefined()
  return l!
}

const noFailure = (r: RunResult): void => {
  expect(r.stdout + r.stderr).not.toMatch(/failed|refused|ERROR|WARNING|did not receive|nan|double free/i)
}

/** The server's stream as the client's listener saw it: about T seconds at 1 Mbit/s, nearly nothing lost. */
const aboutTwoSecondsAtDefaultRate = (l: UdpLine, what: string): void => {
  expect(l.end, what).toBeGreaterThanOrEqual(1.9)
  expect(l.end, what).toBeLessThan(2.5)
  expect(l.total, what).toBeGreaterThanOrEqual(170) // 2 s / 11.2 ms = 178 + the final datagram
  expect(l.total, what).toBeLessThanOrEqual(185)
  expect(l.lost, what).toBeLessThanOrEqual(2)
  expect(l.mbits, what).toBeGreaterThan(0.95)
  expect(l.mbits, what).toBeLessThan(1.2)
}

describeRoot("e2e: iperf 2.1.8 UDP client, the modes where our server sends (iperf-wire.md §B.4)", () => {
  it.live("-u -r -t 2: the client's test, then ours to its listener on 5001 from a new port; both reports", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("udp-r")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-u", "-r", "-t", "2"])
        const all = r.stdout + s.output()
        noFailure(r)
        expect(r.stdout).toContain("Server Report:")
        const mine = line(r.stdout.slice(r.stdout.indexOf("Server Report:")), "1")
        expect(mine.lost, all).toBe(0)
        const conn = /\[\s*2\] local 198\.51\.100\.1 port 5001 connected with 198\.51\.100\.2 port (\d+)/.exec(r.stdout)
        expect(conn, all).not.toBeNull()
        expect(Number(conn![1])).not.toBe(5001) // a new (ephemeral) port, as the real server uses
        aboutTwoSecondsAtDefaultRate(line(r.stdout, "2"), all)
        expect(r.elapsedS, all).toBeLessThan(6)
        // our server printed the listener's report of our stream
        yield* s.waitFor(/\[\s*2\] Server Report:\n.*\n\[ \*2\] 0\.0000-\d\.\d{4} sec .* \d+\/\d+ \(/)
      })
    )
  )

  it.live("-u -d -t 2: both directions at once, both reports, elapsed < 3.5 s", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("udp-d")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-u", "-d", "-t", "2"])
        const all = r.stdout + s.output()
        noFailure(r)
        expect(r.stdout).toMatch(/\[\s*2\] local 198\.51\.100\.1 port 5001 connected with 198\.51\.100\.2 port \d+/)
        aboutTwoSecondsAtDefaultRate(line(r.stdout, "2"), all)
        const mine = line(r.stdout.slice(r.stdout.indexOf("Server Report:")), "1")
        expect(mine.lost, all).toBe(0)
        expect(mine.end, all).toBeGreaterThanOrEqual(1.9)
        expect(r.elapsedS, all).toBeLessThan(3.5)
      })
    )
  )

  it.live("-u -d -t 1 -L 6001: our stream goes to the listener port the header names", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("udp-L")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-u", "-d", "-t", "1", "-L", "6001"])
        const all = r.stdout + s.output()
        noFailure(r)
        expect(r.stdout, all).toMatch(/\[\s*2\] local 198\.51\.100\.1 port 6001 connected with 198\.51\.100\.2 port \d+/)
        const l = line(r.stdout, "2")
        expect(l.total, all).toBeGreaterThanOrEqual(80)
        expect(l.lost, all).toBeLessThanOrEqual(2)
      })
    )
  )

  it.live("-u -R -t 2: our stream from port 5001 to the client's port, 1 Mbit/s, elapsed < 3.5 s", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("udp-R")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-u", "-R", "-t", "2"])
        const all = r.stdout + s.output()
        noFailure(r)
        expect(r.stdout).toMatch(/\[\s*1\] local 198\.51\.100\.1 port \d+ connected with 198\.51\.100\.2 port 5001 \(reverse\)/)
        aboutTwoSecondsAtDefaultRate(line(r.stdout, "*1"), all)
        expect(r.elapsedS, all).toBeLessThan(3.5)
        yield* s.waitFor(/\[\s*1\] local 198\.51\.100\.2 port 5001 connected with 198\.51\.100\.1 port \d+ \(reverse\) \(no-udp-fin\)/)
        yield* s.waitFor(/\[\s*1\] Sent \d+ datagrams/)
      })
    )
  )

  it.live("-u -P 2 -R -t 2: two streams to the same host, both about 1 Mbit/s for 2 s, and a [SUM] line", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("udp-P2R")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-u", "-P", "2", "-R", "-t", "2"])
        const all = r.stdout + s.output()
        noFailure(r)
        aboutTwoSecondsAtDefaultRate(line(r.stdout, "*1"), all)
        aboutTwoSecondsAtDefaultRate(line(r.stdout, "*2"), all)
        expect(r.stdout, all).toMatch(/^\[SUM\] 0\.0000-/m)
        expect(r.elapsedS, all).toBeLessThan(3.5)
        expect(s.output(), all).not.toMatch(/not sending UDP/)
      })
    )
  )

  it.live("-u -R -t 4000 (over our 1 h limit): refused with a logged reason, the client ends at once; a normal -R after it works", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("udp-Rx")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-u", "-R", "-t", "4000"], 20)
        const all = r.stdout + s.output()
        // the bare end-of-stream datagram: the client reports one datagram (rate 0 or -nan: zero duration) and exits
        // instead of waiting 4000 s
        expect(line(r.stdout, "*1").total, all).toBe(1)
        expect(r.elapsedS, all).toBeLessThan(3)
        yield* s.waitFor(/refusing to send UDP to 198\.51\.100\.1:\d+: DurationTooLong/)
        const ok = yield* s.client("iperf", ["-c", SERVER_IP, "-u", "-R", "-t", "1"])
        noFailure(ok)
        expect(line(ok.stdout, "*1").total, ok.stdout + s.output()).toBeGreaterThanOrEqual(85)
      })
    )
  )

  it.live("-u -R -t 2 -b 20M: the client receives about the asked 21 Mbit/s (20 x 2^20), little loss", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("udp-R20")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-u", "-R", "-t", "2", "-b", "20M"])
        const all = r.stdout + s.output()
        noFailure(r)
        const l = line(r.stdout, "*1")
        expect(l.mbits, all).toBeGreaterThan(18.5)
        expect(l.mbits, all).toBeLessThan(23)
        expect(l.total, all).toBeGreaterThanOrEqual(3400) // 2 s x 1783 datagrams/s = 3567
        expect(l.total, all).toBeLessThanOrEqual(3600)
        expect(l.lost / l.total, all).toBeLessThan(0.02)
        expect(l.end, all).toBeGreaterThanOrEqual(1.9)
        expect(l.end, all).toBeLessThan(2.5)
        expect(r.elapsedS, all).toBeLessThan(3.5)
      })
    )
  )
})
