/**
 * The real iperf 2.1.8 client against our server, one test per row of iperf-wire.md §E (rows 1-12).
 * iperf 2 exits 0 even when it fails, so each test judges the client's output and the elapsed time.
 */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { describeRoot } from "../support/netns.js"
import { SERVER_IP, withServer, type RunResult } from "../support/server.js"

interface Line {
  readonly id: string
  readonly start: number
  readonly end: number
  readonly transfer: string
  readonly bandwidth: string
}

/** Report lines of the client: `[  1] 0.0000-2.0041 sec   827 MBytes  3.46 Gbits/sec`. */
const reportLines = (out: string): Array<Line> => {
  const re = /^\[\s*(\*?\d+|SUM)\]\s+(\d+\.\d+)-(\d+\.\d+) sec\s+([\d.]+ \w*Bytes)\s+([\d.]+ \w*bits\/sec)/gm
  const lines: Array<Line> = []
  for (const m of out.matchAll(re)) lines.push({ id: m[1]!, start: Number(m[2]), end: Number(m[3]), transfer: m[4]!, bandwidth: m[5]! })
  return lines
}
/** The whole-test line of stream `id`: the one starting at 0 with the longest interval. */
const total = (out: string, id: string): Line | undefined =>
  reportLines(out)
    .filter((l) => l.id === id && l.start === 0)
    .sort((a, b) => b.end - a.end)[0]

const noFailure = (r: RunResult): void => {
  expect(r.stdout + r.stderr).not.toMatch(/failed|refused|ERROR|WARNING|Barrier timeout|double free|reset by peer/i)
}

const nonZero = (l: Line | undefined): void => {
  expect(l).toBeDefined()
  expect(l!.transfer).not.toMatch(/^0\.00 /)
}

describeRoot("e2e: iperf 2.1.8 client, every TCP mode and UDP (iperf-wire.md §E)", () => {
  it.live("row 1: -t 2 -i 1: two intervals, total ends before 2.5 s, elapsed < 3 s", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("r1")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-t", "2", "-i", "1"])
        noFailure(r)
        const ls = reportLines(r.stdout).filter((l) => l.id === "1")
        expect(ls.some((l) => l.start === 0 && l.end === 1)).toBe(true)
        expect(ls.some((l) => l.start === 1 && l.end === 2)).toBe(true)
        const t = total(r.stdout, "1")
        nonZero(t)
        expect(t!.end).toBeGreaterThanOrEqual(2)
        expect(t!.end).toBeLessThan(2.5)
        expect(r.elapsedS, r.stdout + s.output()).toBeLessThan(3)
        // our own lines, as iperf -s prints them: the connection, then the column header and the total
        yield* s.waitFor(/^\[ ID\] Interval {7}Transfer {5}Bandwidth\n\[\s*1\] 0\.0000-\d\.\d{4} sec .*bits\/sec$/m)
        expect(s.output()).toMatch(/^\[\s*1\] local 198\.51\.100\.2 port 5001 connected with 198\.51\.100\.1 port \d+$/m)
      })
    )
  )

  it.live("row 2: -n 10M: exactly 10 MiB, elapsed < 3 s", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("r2")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-n", "10M", "-y", "C"])
        noFailure(r)
        const fields = r.stdout.trim().split("\n").pop()!.split(",")
        expect(Number(fields[7])).toBe(10 * 1024 * 1024)
        expect(r.elapsedS, r.stdout + s.output()).toBeLessThan(3)
      })
    )
  )

  it.live("row 3: -t 2 -P 4: four streams and a [SUM] of about 2 s", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("r3")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-t", "2", "-P", "4"])
        noFailure(r)
        for (const id of ["1", "2", "3", "4"]) nonZero(total(r.stdout, id))
        const sum = total(r.stdout, "SUM")
        nonZero(sum)
        expect(sum!.end).toBeGreaterThanOrEqual(2)
        expect(sum!.end).toBeLessThan(2.5)
      })
    )
  )

  it.live("row 4: -t 2 -r: connect-back after the first test, both about 2 s, elapsed < 5 s", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("r4")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-t", "2", "-r"])
        noFailure(r)
        expect(r.stdout).toMatch(/\[\s*2\] local 198\.51\.100\.1 port 5001 connected with 198\.51\.100\.2/)
        for (const id of ["1", "2"]) {
          const t = total(r.stdout, id)
          nonZero(t)
          expect(t!.end).toBeGreaterThanOrEqual(1.9)
          expect(t!.end).toBeLessThan(2.5)
        }
        expect(r.elapsedS, r.stdout + s.output()).toBeLessThan(5)
      })
    )
  )

  it.live("row 5: -t 2 -d: both directions at once, about 2 s each, elapsed < 3 s", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("r5")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-t", "2", "-d"])
        noFailure(r)
        for (const id of ["1", "2"]) {
          const t = total(r.stdout, id)
          nonZero(t)
          expect(t!.end).toBeLessThan(2.5)
        }
        expect(r.elapsedS, r.stdout + s.output()).toBeLessThan(3)
      })
    )
  )

  it.live("row 6: -p 5002 -r connects back to 5002; -L 6001 -r to 6001", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("r6", { args: ["--port", "5002"] })
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-t", "1", "-p", "5002", "-r"])
        noFailure(r)
        expect(r.stdout).toMatch(/\[\s*2\] local 198\.51\.100\.1 port 5002 connected with 198\.51\.100\.2/)
        nonZero(total(r.stdout, "2"))
        const l = yield* s.client("iperf", ["-c", SERVER_IP, "-t", "1", "-p", "5002", "-L", "6001", "-r"])
        noFailure(l)
        expect(l.stdout).toMatch(/\[\s*2\] local 198\.51\.100\.1 port 6001 connected with 198\.51\.100\.2/)
        nonZero(total(l.stdout, "2"))
      })
    )
  )

  it.live("row 7: -n 1M -r: exactly 1048576 bytes each way", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("r7")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-n", "1M", "-r", "-y", "C"])
        noFailure(r)
        const rows = r.stdout.trim().split("\n").map((l) => l.split(","))
        expect(rows).toHaveLength(2)
        for (const f of rows) expect(Number(f[7])).toBe(1048576)
      })
    )
  )

  it.live("row 8: -t 2 -R: the server sends on the same socket for about 2 s", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("r8")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-t", "2", "-R"])
        noFailure(r)
        expect(r.stdout).toContain("(reverse)")
        const t = total(r.stdout, "*1")
        nonZero(t)
        expect(t!.end).toBeGreaterThanOrEqual(1.9)
        expect(t!.end).toBeLessThan(2.5)
        expect(r.elapsedS, r.stdout + s.output()).toBeLessThan(3.5)
      })
    )
  )

  it.live("row 9: -t 2 --full-duplex: [ *1], [  1] and [SUM] about 2 s, exit 0", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("r9")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-t", "2", "--full-duplex"])
        noFailure(r)
        expect(r.code).toBe(0)
        for (const id of ["*1", "1", "SUM"]) {
          const t = total(r.stdout, id)
          nonZero(t)
          expect(t!.end).toBeLessThan(2.5)
        }
      })
    )
  )

  it.live("row 10: -t 1 -X: the client gets its ack and finishes in about 1 s", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("r10")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-t", "1", "-X"], 20)
        noFailure(r)
        nonZero(total(r.stdout, "1"))
        expect(r.code).toBe(0)
        expect(r.elapsedS, r.stdout + s.output()).toBeLessThan(2.5)
      })
    )
  )

  it.live("row 11: -t 2 -C: no header, a normal report", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("r11")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-t", "2", "-C"])
        noFailure(r)
        const t = total(r.stdout, "1")
        nonZero(t)
        expect(t!.end).toBeLessThan(2.5)
      })
    )
  )

  it.live("row 12: -u -t 2: the server report, 0 lost of one less than sent", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("r12")
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-u", "-t", "2"])
        noFailure(r)
        expect(r.stdout).toContain("Server Report:")
        const sent = Number(/Sent (\d+) datagrams/.exec(r.stdout)?.[1])
        const rep = /Server Report:[\s\S]*?0\.0000-(\d+\.\d+) sec\s+[\d.]+ \w+\s+[\d.]+ \w+\/sec\s+[\d.]+ ms (\d+)\/(\d+) \((\d+(?:\.\d+)?)%\)/.exec(r.stdout)
        expect(rep).not.toBeNull()
        expect(Number(rep![1])).toBeGreaterThanOrEqual(1.9)
        expect(Number(rep![1])).toBeLessThan(2.5)
        expect(Number(rep![2])).toBe(0)
        expect(Number(rep![3])).toBe(sent - 1)
        expect(r.stdout).not.toContain("nan")
      })
    )
  )

  it.live("--interval 0.5: the server prints interval lines like iperf -s -i, then the total", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("ival", { args: ["--interval", "0.5"] })
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-t", "2"])
        noFailure(r)
        // the whole-test line comes last: the first line starting at 0 that ends past 1.9 s
        yield* s.waitFor(/^\[\s*1\] 0\.0000-(?:1\.9|[2-9]\.)\d+ sec /m)
        expect(s.output()).toMatch(/^\[ ID\] Interval {7}Transfer {5}Bandwidth\n\[\s*1\] 0\.0000-0\.5000 sec /m)
        const ours = reportLines(s.output()).filter((l) => l.id === "1")
        for (const [a, b] of [[0, 0.5], [0.5, 1], [1, 1.5]] as const) {
          expect(ours.some((l) => l.start === a && l.end === b), s.output()).toBe(true)
        }
        // the last interval ends at the client's FIN (on time or a little after 2 s), then the whole-test line
        expect(ours.some((l) => l.start === 1.5 && l.end >= 1.9 && l.end < 2.5), s.output()).toBe(true)
        expect(ours.some((l) => l.start === 0 && l.end >= 1.9 && l.end < 2.5), s.output()).toBe(true)
      })
    )
  )

  it.live("-y C: -t 2 -r and -u -t 2 give CSV lines only (no banner, no connection lines), with the real byte counts", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("csv", { args: ["-y", "C"] })
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-t", "2", "-r", "-y", "C"])
        noFailure(r)
        const u = yield* s.client("iperf", ["-c", SERVER_IP, "-u", "-t", "2"])
        noFailure(u)
        const sent = Number(/Sent (\d+) datagrams/.exec(u.stdout)?.[1])
        const csvRe = /^\d{14},198\.51\.100\.\d,\d+,198\.51\.100\.\d,\d+,\d+,\d+\.\d-\d+\.\d,\d+,\d+(?:,\d+\.\d{3},\d+,\d+,\d+\.\d{3},\d+)?$/
        const t0 = Date.now()
        let lines: Array<Array<string>> = []
        while (Date.now() - t0 < 5000) {
          lines = s.output().split("\n").filter((l) => csvRe.test(l)).map((l) => l.split(","))
          if (lines.length >= 3) break
          yield* Effect.sleep("100 millis")
        }
        expect(lines.length, s.output()).toBe(3)
        const [recv, back, udp] = lines as [Array<string>, Array<string>, Array<string>]
        // what we received: the client's end first; what we sent back: ours first, to the client's port 5001
        expect(recv.slice(1, 5)).toEqual(["198.51.100.1", recv[2], "198.51.100.2", "5001"])
        expect(back.slice(1, 5)).toEqual(["198.51.100.2", back[2], "198.51.100.1", "5001"])
        // the client's own CSV report of each direction has the same byte count as ours
        const theirs = r.stdout.split("\n").filter((l) => csvRe.test(l)).map((l) => l.split(","))
        expect(theirs.map((l) => l[7]).sort()).toEqual([recv[7], back[7]].sort())
        for (const l of [recv, back]) {
          expect(l).toHaveLength(9)
          // our measured duration (from the header, or from the connect) rounds to 1.9 or 2.x
          expect(l[6]).toMatch(/^0\.0-(?:1\.9|2\.\d)$/)
          const bps = Number(l[8])
          expect(bps).toBeGreaterThan(Number(l[7]) * 8 / 2.6)
          expect(bps).toBeLessThan(Number(l[7]) * 8 / 1.8)
        }
        // UDP: 14 fields, the total is one less than the client sent (its final datagram is not data)
        expect(udp).toHaveLength(14)
        expect(Number(udp[11])).toBe(sent - 1)
        expect(Number(udp[10])).toBe(0)
        expect(s.output()).not.toMatch(/Server listening on (?:TCP|UDP) port|connected with|\[ ID\]|Client connecting/)
      })
    )
  )
})
