/**
 * `-1`/`--one-off` and `--logfile`, with the real clients (iperf 2.1.8, iperf3 3.12) against `node dist/main.js` in a
 * private namespace (test/support/server.ts):
 * - `-1`: the server exits 0 on its own after one test (iperf 2 TCP -P 2, iperf 2 UDP -r, iperf3), after that
 *   test's last console line, and its TAP is gone (its scope closed);
 * - `--logfile`: the banner, the servers' lines and the -d dump land in the file and none on stdout; after the file
 *   is renamed and the server gets SIGHUP, new lines go to a new file of the same name;
 * - a log file that cannot be opened: exit 2 and one line naming the flag, the value and an example.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { ChildProcess } from "node:child_process"
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { describeRoot } from "../support/netns.js"
import { SERVER_IP, runMain, withServer, type Server } from "../support/server.js"

/** The child's exit code once it exits (bounded: null when it is still running after `timeoutMs`). */
const exitOf = (child: ChildProcess, timeoutMs: number): Effect.Effect<number | null> =>
  Effect.async<number | null>((resume) => {
    if (child.exitCode !== null) return resume(Effect.succeed(child.exitCode))
    const onExit = (code: number | null) => resume(Effect.succeed(code))
    child.once("exit", onExit)
    const t = setTimeout(() => {
      child.off("exit", onExit)
      resume(Effect.succeed(null))
    }, timeoutMs)
    return Effect.sync(() => {
      clearTimeout(t)
      child.off("exit", onExit)
    })
  })

/** A temporary directory, removed with the scope. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "miniperf-cli-"))),
  (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
)

const read = (f: string): string => (fs.existsSync(f) ? fs.readFileSync(f, "utf8") : "")

/** Wait (bounded) until the file's text matches. */
const waitInFile = (f: string, re: RegExp, timeoutMs = 10_000) =>
  Effect.gen(function* () {
    const t0 = Date.now()
    while (!re.test(read(f))) {
      if (Date.now() - t0 > timeoutMs) return yield* Effect.die(new Error(`timed out waiting for ${re} in ${f}: ${read(f)}`))
      yield* Effect.sleep(Duration.millis(20))
    }
  })

/** The server exited 0 by itself, and its TAP is gone with it. */
const exitedCleanly = (s: Server) =>
  Effect.gen(function* () {
    const code = yield* exitOf(s.child, 15_000)
    expect(code, s.output()).toBe(0)
    expect(s.output()).not.toMatch(/System is going down|miniperf: /)
    const link = yield* Effect.either(s.ns.ip(["link", "show", "dev", s.tap]))
    expect(link._tag, "the TAP should be closed with the server").toBe("Left")
  })

describeRoot("e2e: -1/--one-off and --logfile with the real clients", () => {
  it.live("-1: one iperf 2 TCP test with -P 2 (both streams), then exit 0", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("one-p2", { args: ["-1"] })
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-t", "1", "-P", "2"])
        expect(r.stdout, r.stdout + r.stderr).toMatch(/\[SUM\].*bits\/sec/)
        yield* exitedCleanly(s)
        const out = s.output()
        // both streams were served to the end: two connection lines, two result lines, and their [SUM] last
        expect(out.match(/^\[\s*\d+\] local 198\.51\.100\.2 port 5001 connected with 198\.51\.100\.1 port \d+$/gm)?.length, out).toBe(2)
        expect(out.match(/^\[\s*\d+\] 0\.0000-\d+\.\d{4} sec .*bits\/sec$/gm)?.length, out).toBe(2)
        expect(out.trimEnd().split("\n").at(-1), out).toMatch(/^\[SUM\] 0\.0000-\d+\.\d{4} sec .*bits\/sec$/)
      })
    )
  )

  it.live("-1: one iperf 2 UDP test with -r (the server report, then our stream back), then exit 0", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("one-ur", { args: ["-1"] })
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-u", "-t", "1", "-r"], 30)
        expect(r.stdout, r.stdout + r.stderr).toMatch(/Server Report:/)
        yield* exitedCleanly(s)
        const out = s.output()
        // our own stream to the client's listener ran, and printed its server report, before the exit
        expect(out, out).toMatch(/Client connecting to 198\.51\.100\.1, UDP port 5001/)
        expect(out, out).toMatch(/Server Report:/)
      })
    )
  )

  it.live("--one-off: one iperf3 test, then exit 0", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("one-ip3", { args: ["--one-off"] })
        const r = yield* s.client("iperf3", ["-c", SERVER_IP, "-t", "1"])
        expect(r.stdout + r.stderr, s.output()).toMatch(/^iperf Done\.$/m)
        expect(r.code, r.stdout + r.stderr).toBe(0)
        yield* exitedCleanly(s)
        // as iperf3 -s -1: the banner before the test, none after it
        expect(s.output().match(/^Server listening on 5201 \(test #\d+\)$/gm), s.output()).toEqual(["Server listening on 5201 (test #1)"])
      })
    )
  )

  it.live("--logfile: every line in the file, none on stdout; SIGHUP after a rename starts a new file", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir
        const log = path.join(dir, "miniperf.log")
        // nothing comes on stdout, so the harness waits for nothing; the file says when the server is ready
        const s = yield* withServer("logfile", { args: ["--logfile", log, "-d", "300"], ready: /^/ })
        yield* waitInFile(log, /^Entering main event loop$/m)
        const r2 = yield* s.client("iperf", ["-c", SERVER_IP, "-t", "1"])
        expect(r2.stdout, r2.stdout + r2.stderr).toMatch(/bits\/sec/)
        yield* waitInFile(log, /^\[\s*\d+\] 0\.0000-\d+\.\d{4} sec .*bits\/sec$/m)
        const r3 = yield* s.client("iperf3", ["-c", SERVER_IP, "-t", "1"])
        expect(r3.code, r3.stdout + r3.stderr).toBe(0)
        yield* waitInFile(log, /^Accepted connection from 198\.51\.100\.1, port \d+$[\s\S]*receiver$/m)
        const first = read(log)
        expect(first).toMatch(/^Interface mp/m) // the banner
        expect(first).toMatch(/^Server listening on TCP port 5001$/m)
        expect(first).toMatch(/^Server listening on 5201 \(test #1\)$/m)
        expect(first).toMatch(/ connected with 198\.51\.100\.1 port \d+$/m)
        expect(first).toMatch(/^--- interval [\d.]+-[\d.]+ s ---\nrates: in \d+ frames\/s /m) // the -d dump
        expect(s.output()).toBe("") // nothing on stdout or stderr

        // logrotate: rename, then SIGHUP; the old file gets nothing more
        fs.renameSync(log, log + ".1")
        process.kill(s.child.pid!, "SIGHUP")
        yield* waitInFile(log, /^rates: in \d+ frames\/s /m) // the next dump lands in the new file
        const r4 = yield* s.client("iperf", ["-c", SERVER_IP, "-t", "1"])
        expect(r4.stdout, r4.stdout + r4.stderr).toMatch(/bits\/sec/)
        yield* waitInFile(log, /^\[\s*\d+\] 0\.0000-\d+\.\d{4} sec .*bits\/sec$/m)
        const rotated = read(log + ".1")
        const fresh = read(log)
        expect(fresh).toMatch(/ port 5001 connected with 198\.51\.100\.1 port \d+$/m)
        expect(rotated.match(/ port 5001 connected with /g)?.length, rotated).toBe(1) // only the first iperf 2 test
        expect(s.child.exitCode).toBe(null) // SIGHUP did not end the server
        expect(s.output()).toBe("")
        // every line is whole: a dump line or a server line, never two run together
        for (const line of (rotated + fresh).split("\n")) expect(line.length).toBeLessThan(400)
      })
    )
  )
})

describe("e2e: --logfile that cannot be opened", () => {
  it.live("exits 2 with one line naming --logfile, the value and an example, before any TAP is opened", () =>
    Effect.gen(function* () {
      const bad = "/nonexistent-miniperf-dir/x.log"
      const r = yield* runMain(["--tap", "mpx-never0", "-i", "198.51.100.2/24", "--logfile", bad])
      expect(r.code, r.stdout + r.stderr).toBe(2)
      expect(r.stdout).toBe("")
      const lines = r.stderr.trimEnd().split("\n")
      expect(lines.length, r.stderr).toBe(1)
      expect(lines[0]).toMatch(/^miniperf: invalid value '\/nonexistent-miniperf-dir\/x\.log' for --logfile: cannot open it for appending \(ENOENT/)
      expect(lines[0]).toContain("e.g. --logfile /var/log/miniperf.log")
    })
  )
})

describeRoot("e2e: -J/--json with the real clients", () => {
  /** The JSON documents our server printed (one per line), waiting up to 10 s for `n`. */
  const documents = (s: Server, n: number) =>
    Effect.gen(function* () {
      const t0 = Date.now()
      let docs: Array<Record<string, any>> = []
      while (Date.now() - t0 < 10_000) {
        docs = s.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, any>)
        if (docs.length >= n) break
        yield* Effect.sleep("100 millis")
      }
      return docs
    })

  it.live("-J: an iperf3 test and an iperf 2 test give one JSON document each, with the clients' own numbers; no report lines", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("json", { args: ["-J"] })
        const r3 = yield* s.client("iperf3", ["-c", SERVER_IP, "-t", "2", "-J"])
        expect(r3.code, r3.stdout + r3.stderr).toBe(0)
        const client = JSON.parse(r3.stdout) as Record<string, any>
        const r2 = yield* s.client("iperf", ["-c", SERVER_IP, "-t", "2", "-y", "C"])
        const theirs = r2.stdout.trim().split("\n").at(-1)!.split(",")
        const docs = yield* documents(s, 2)
        expect(docs.length, s.output()).toBe(2)
        const [d3, d2] = docs as [Record<string, any>, Record<string, any>]
        // iperf3: 3.12's layout; what we received is what the client's results say the server received
        expect(Object.keys(d3)).toEqual(["start", "intervals", "end"])
        expect(d3["start"].cookie).toBe(client["start"].cookie)
        expect(d3["start"].test_start).toMatchObject({ protocol: "TCP", num_streams: 1, duration: 2 })
        expect(d3["end"].sum_received.bytes).toBeGreaterThan(0)
        expect(d3["end"].sum_received.bytes).toBe(client["end"].sum_received.bytes)
        expect(d3["intervals"].length).toBeGreaterThanOrEqual(2) // 1 s intervals by default
        // iperf 2: the CSV columns as fields; the byte count is the client's own
        expect(d2).toMatchObject({ protocol: "TCP", transfer_id: expect.any(Number), source_address: "198.51.100.1", destination_address: "198.51.100.2", destination_port: 5001 })
        expect(d2["total"].transferred_bytes).toBe(Number(theirs[7]))
        expect(d2["total"].interval).toMatch(/^0\.0-2\.\d$/)
        expect(s.output()).not.toMatch(/Server listening on|connected with|connected to|\[ ID\]|receiver$/m)
      })
    )
  )
})
