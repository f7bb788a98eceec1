/**
 * The real iperf3 3.12 client against our server (node dist/main.js on a TAP in a private namespace), one test per
 * row 13-18 of iperf-wire.md §E (17 is UDP, also with -R and --bidir), judged by the client's output and exit status; then hostile clients (garbage
 * instead of a cookie, an oversize parameter length, a second client while a test runs), each followed by a real
 * client that still completes.
 */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { describeRoot } from "../support/netns.js"
import { SERVER_IP, withServer, type RunResult, type Server } from "../support/server.js"

interface Line {
  readonly id: string
  readonly role: string | undefined
  readonly start: number
  readonly end: number
  readonly transfer: string
  readonly retr: number | undefined
  readonly side: "sender" | "receiver"
}

/** Summary lines of the client: `[  5]   0.00-2.00   sec  3.95 GBytes  16.9 Gbits/sec    1             sender`. */
const summaries = (out: string): Array<Line> => {
  const re = /^\[\s*(\d+|SUM)\](?:\[(TX-C|RX-C)\])?\s+(\d+\.\d+)-(\d+\.\d+)\s+sec\s+([\d.]+ \w*Bytes)\s+[\d.]+ \w*bits\/sec\s+(?:(\d+)\s+)?(sender|receiver)\s*$/gm
  return [...out.matchAll(re)].map((m) => ({
    id: m[1]!,
    role: m[2],
    start: Number(m[3]),
    end: Number(m[4]),
    transfer: m[5]!,
    retr: m[6] === undefined ? undefined : Number(m[6]),
    side: m[7] as "sender" | "receiver"
  }))
}

interface UdpLine {
  readonly role: string | undefined
  readonly jitterMs: number
  readonly lost: number
  readonly total: number
  readonly side: "sender" | "receiver"
}

/** UDP summary lines: `[  5]   0.00-2.00   sec  2.38 MBytes  9.98 Mbits/sec  0.007 ms  0/1726 (0%)  receiver`. */
const udpSummaries = (out: string): Array<UdpLine> => {
  const re = /^\[\s*(?:\d+|SUM)\](?:\[(TX-C|RX-C)\])?\s+\d+\.\d+-\d+\.\d+\s+sec\s+[\d.]+ \w*Bytes\s+[\d.]+ \w*bits\/sec\s+([\d.]+) ms\s+(\d+)\/(\d+) \([^)]*\)\s+(sender|receiver)\s*$/gm
  return [...out.matchAll(re)].map((m) => ({
    role: m[1],
    jitterMs: Number(m[2]),
    lost: Number(m[3]),
    total: Number(m[4]),
    side: m[5] as "sender" | "receiver"
  }))
}

const nonZero = (l: Line | undefined): void => {
  expect(l).toBeDefined()
  expect(l!.transfer).not.toMatch(/^0\.00 /)
}

/** The client finished normally: `iperf Done.`, exit 0, no error line. */
const done = (r: RunResult, s: Server): void => {
  const all = r.stdout + r.stderr
  expect(all, all + "\n--- server:\n" + s.output()).toMatch(/^iperf Done\.$/m)
  expect(r.code, all).toBe(0)
  expect(all).not.toMatch(/iperf3: error|unable to|has closed unexpectedly|invalid id|idle timeout|4294967295/)
}

const iperf3 = (s: Server, args: ReadonlyArray<string>) => s.client("iperf3", ["-c", SERVER_IP, ...args], 40)

/** A raw TCP peer inside the namespace: connect to 5201, send `hex` (after `pauseS`), print what comes back as hex. */
const rawPeer = (s: Server, hex: string, pauseS = 0) =>
  s.client(
    "python3",
    [
      "-c",
      [
        "import socket,sys,time",
        `c=socket.create_connection(("${SERVER_IP}",5201),timeout=5)`,
        `data=bytes.fromhex("${hex}")`,
        "c.sendall(data[:37])",
        `time.sleep(${pauseS})`,
        "try:",
        "  c.sendall(data[37:])",
        "except OSError: pass",
        "got=b''",
        "try:",
        "  while True:",
        "    b=c.recv(4096)",
        "    if not b: break",
        "    got+=b",
        "except OSError as e: print('error', e)",
        "print('got', got.hex())"
      ].join("\n")
    ],
    20
  )

const hexOf = (s: string): string => Buffer.from(s, "latin1").toString("hex")
const COOKIE = "abcdefghijklmnopqrstuvwxyz2345672345" // 36 characters of the iperf3 alphabet

describeRoot("e2e: iperf3 3.12 client against our server on TCP 5201 (iperf-wire.md §C, §E rows 13-18)", () => {
  it.live("row 13: -t 2: sender and receiver lines, iperf Done., status 0; our console shows the test", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("ip3-r13")
        yield* s.waitFor(/^-{59}\nServer listening on 5201 \(test #1\)\n-{59}$/m)
        const r = yield* iperf3(s, ["-t", "2"])
        done(r, s)
        const ls = summaries(r.stdout)
        const snd = ls.find((l) => l.side === "sender")
        const rcv = ls.find((l) => l.side === "receiver")
        nonZero(snd)
        nonZero(rcv)
        expect(rcv!.end).toBeGreaterThanOrEqual(1.9)
        expect(rcv!.end).toBeLessThan(2.5)
        yield* s.waitFor(/Accepted connection from 198\.51\.100\.1, port \d+\n/)
        yield* s.waitFor(/\[  1\] local 198\.51\.100\.2 port 5201 connected to 198\.51\.100\.1 port \d+/)
        yield* s.waitFor(/\[  1\]   0\.00-2\.\d\d   sec .*bits\/sec {18}receiver/)
        // as iperf3 -s prints it: interval lines every second under their header, the summary, the next banner
        const out = s.output()
        expect(out).toMatch(
          /^\[ ID\] Interval {11}Transfer {5}Bitrate\n\[  1\]   0\.00-1\.\d\d   sec .*bits\/sec {18}$/m
        )
        expect(out).toMatch(/^\[  1\]   1\.\d\d-2\.\d\d   sec .*bits\/sec {18}$/m)
        expect(out).toMatch(/^- - - - - - - - - - - - - - - - - - - - - - - - -\n\[ ID\] Interval {11}Transfer {5}Bitrate\n\[  1\]   0\.00-2\.\d\d   sec /m)
        yield* s.waitFor(/receiver\n-{59}\nServer listening on 5201 \(test #2\)\n-{59}$/m)
      })
    )
  )

  it.live("--iperf3-port 5301: iperf3 -p 5301 is served (TCP and -u), 5201 is closed", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("ip3-port", { args: ["--iperf3-port", "5301"] })
        yield* s.waitFor(/^Server listening on 5301 \(test #1\)$/m)
        done(yield* iperf3(s, ["-p", "5301", "-t", "1"]), s)
        done(yield* iperf3(s, ["-p", "5301", "-u", "-t", "1"]), s)
        const refused = yield* iperf3(s, ["-t", "1"])
        expect(refused.stdout + refused.stderr, s.output()).toMatch(/unable to connect to server: Connection refused/)
      })
    )
  )

  it.live("row 14: -t 2 -R: reverse mode, receiver bytes > 0, a real Retr count (not 4294967295), status 0", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("ip3-r14")
        const r = yield* iperf3(s, ["-t", "2", "-R"])
        done(r, s)
        expect(r.stdout).toMatch(/Reverse mode, remote host 198\.51\.100\.2 is sending/)
        const ls = summaries(r.stdout)
        nonZero(ls.find((l) => l.side === "receiver"))
        const snd = ls.find((l) => l.side === "sender")
        nonZero(snd)
        expect(snd!.retr).toBeDefined()
        expect(snd!.retr!).toBeLessThan(1_000_000)
        yield* s.waitFor(/\[  1\]   0\.00-2\.\d\d   sec .*bits\/sec\s+\d+\s+sender/)
      })
    )
  )

  it.live("row 15: -t 2 --bidir: [TX-C] and [RX-C] sender and receiver lines, status 0", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("ip3-r15")
        const r = yield* iperf3(s, ["-t", "2", "--bidir"])
        done(r, s)
        const ls = summaries(r.stdout)
        for (const role of ["TX-C", "RX-C"]) {
          for (const side of ["sender", "receiver"]) nonZero(ls.find((l) => l.role === role && l.side === side))
        }
        // the server's side of the same test
        yield* s.waitFor(/\[  1\]\[RX-S\]   0\.00-.*receiver\n\[  3\]\[TX-S\]   0\.00-.*sender/)
      })
    )
  )

  it.live("row 16: -t 2 -P 2: two streams and [SUM] sender and receiver lines, status 0", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("ip3-r16")
        const r = yield* iperf3(s, ["-t", "2", "-P", "2"])
        done(r, s)
        const ls = summaries(r.stdout)
        nonZero(ls.find((l) => l.id === "SUM" && l.side === "sender"))
        nonZero(ls.find((l) => l.id === "SUM" && l.side === "receiver"))
        expect(new Set(ls.filter((l) => l.id !== "SUM" && l.side === "receiver").map((l) => l.id)).size).toBe(2)
        yield* s.waitFor(/\[  3\] local 198\.51\.100\.2 port 5201/)
        yield* s.waitFor(/\[SUM\]   0\.00-.*receiver/)
      })
    )
  )

  it.live("row 18: -J -t 2: JSON with end.sum_received.bytes > 0 and no error key", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("ip3-r18")
        const r = yield* iperf3(s, ["-J", "-t", "2"])
        expect(r.code, r.stdout + r.stderr).toBe(0)
        const j = JSON.parse(r.stdout) as { error?: unknown; end: { sum_received: { bytes: number }; sum_sent: { bytes: number } } }
        expect(j.error).toBeUndefined()
        expect(j.end.sum_received.bytes).toBeGreaterThan(0)
        expect(j.end.sum_sent.bytes).toBeGreaterThanOrEqual(j.end.sum_received.bytes)
      })
    )
  )

  it.live("row 17: -u -t 2 -b 10M: receiver line with jitter and 0/N or small loss, status 0", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("ip3-r17")
        yield* s.waitFor(/^Server listening on 5201 \(test #1\)$/m)
        const r = yield* iperf3(s, ["-u", "-t", "2", "-b", "10M"])
        done(r, s)
        const rcv = udpSummaries(r.stdout).find((l) => l.side === "receiver")
        expect(rcv, r.stdout).toBeDefined()
        expect(rcv!.total).toBeGreaterThan(1000) // 10 Mbit/s of 1448-byte datagrams for 2 s is about 1726
        expect(rcv!.lost / rcv!.total).toBeLessThan(0.05)
        expect(rcv!.jitterMs).toBeLessThan(100)
        yield* s.waitFor(/\[  1\]   0\.00-2\.\d\d   sec .* ms  \d+\/\d+ \(.*%\)  receiver/)
      })
    )
  )

  it.live("-u -R -t 2 -b 10M and -u --bidir: the server's paced datagrams arrive with little loss, status 0", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("ip3-udpr")
        const r = yield* iperf3(s, ["-u", "-R", "-t", "2", "-b", "10M"])
        done(r, s)
        expect(r.stdout).toMatch(/Reverse mode, remote host 198\.51\.100\.2 is sending/)
        const ls = udpSummaries(r.stdout)
        const snd = ls.find((l) => l.side === "sender")
        const rcv = ls.find((l) => l.side === "receiver")
        expect(snd, r.stdout).toBeDefined()
        expect(rcv, r.stdout).toBeDefined()
        // paced to about 10 Mbit/s: about 1726 datagrams in 2 s, not an unpaced flood
        expect(snd!.total).toBeGreaterThan(1000)
        expect(snd!.total).toBeLessThan(2500)
        expect(rcv!.lost / rcv!.total).toBeLessThan(0.05)
        const b = yield* iperf3(s, ["-u", "--bidir", "-t", "1", "-b", "5M"])
        done(b, s)
        const bl = udpSummaries(b.stdout)
        for (const role of ["TX-C", "RX-C"]) expect(bl.some((l) => l.role === role && l.side === "receiver" && l.total > 0), b.stdout).toBe(true)
      })
    )
  )

  it.live("-n 10M and -n 10M -R: the byte count is reached and the test ends normally", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("ip3-n")
        for (const extra of [[], ["-R"]]) {
          const r = yield* iperf3(s, ["-n", "10M", "-J", ...extra])
          expect(r.code, r.stdout + r.stderr).toBe(0)
          const j = JSON.parse(r.stdout) as { error?: unknown; end: { sum_received: { bytes: number }; sum_sent: { bytes: number } } }
          expect(j.error).toBeUndefined()
          expect(j.end.sum_sent.bytes).toBeGreaterThanOrEqual(10 * 1024 * 1024)
          expect(j.end.sum_received.bytes).toBeGreaterThan(0)
        }
      })
    )
  )

  it.live("hostile: garbage instead of a cookie gets 0xff and a close; an oversize parameter length and -P 129 get SERVER_ERROR; a real client then works", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("ip3-bad")
        const garbage = yield* rawPeer(s, hexOf("GET / HTTP/1.1\r\nHost: 198.51.100.2\r\nAccept: */*\r\n\r\n"))
        expect(garbage.stdout.trim(), garbage.stdout + garbage.stderr).toBe("got ff")
        yield* s.waitFor(/Refused 198\.51\.100\.1:\d+: not an iperf3 cookie \("GET \/ HTTP\/1\.1\\x0d\\x0a\.\.\."\)/)
        // a valid cookie, then a 2 GiB "length": SERVER_ERROR (0xfe) after PARAM_EXCHANGE (09), with IERECVPARAMS (114)
        const big = yield* rawPeer(s, hexOf(COOKIE + "\0") + "7fffffff" + "00".repeat(16), 0.3)
        expect(big.stdout.trim(), big.stdout + big.stderr).toBe("got 09fe0000007200000000")
        yield* s.waitFor(/Test #1 with 198\.51\.100\.1:\d+ ended: bad parameters: JsonTooLong/)
        // -P 129 (the real client refuses it itself; a crafted one gets SERVER_ERROR with IENUMSTREAMS = 6)
        const params = JSON.stringify({ tcp: true, omit: 0, time: 1, num: 0, blockcount: 0, parallel: 129, len: 131072 })
        const p129 = yield* rawPeer(s, hexOf(COOKIE + "\0") + params.length.toString(16).padStart(8, "0") + hexOf(params), 0.3)
        expect(p129.stdout.trim(), p129.stdout + p129.stderr).toBe("got 09fe0000000600000000")
        yield* s.waitFor(/Test #2 with 198\.51\.100\.1:\d+ ended: refused parameters: "parallel" 129 is above 128/)
        const r = yield* iperf3(s, ["-t", "1"])
        done(r, s)
        nonZero(summaries(r.stdout).find((l) => l.side === "receiver"))
      })
    )
  )

  it.live("a second client while a test runs is told the server is busy; the first completes", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("ip3-busy")
        const first = yield* Effect.fork(iperf3(s, ["-t", "3"]))
        yield* s.waitFor(/\[  1\] local 198\.51\.100\.2 port 5201 connected/)
        const second = yield* iperf3(s, ["-t", "1"])
        expect(second.code).toBe(1)
        expect(second.stdout + second.stderr).toMatch(/iperf3: error - the server is busy running a test\. try again later/)
        const r = yield* Fiber.join(first)
        done(r, s)
        nonZero(summaries(r.stdout).find((l) => l.side === "receiver"))
        yield* s.waitFor(/Refused 198\.51\.100\.1:\d+: the server is busy running test #1 \(access denied\)/)
      })
    )
  )
})
