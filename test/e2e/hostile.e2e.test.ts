/**
 * The attack recipes of design.md §7 as tests: each starts our server (`node dist/main.js -d 500`) in a namespace of
 * its own, runs one attack from the kernel side of the TAP (test/support/attack/attack.py with /usr/bin/python3,
 * hping3, tcpdump), and then asserts that a REAL client (iperf 2.1.8, iperf3, ping) is served during or right after
 * it; where the attack is about state, that the refusal or drop counter in our -d dump moved (names in
 * test/support/attack/index.ts, COUNTERS and DROPS).
 *
 * Attackers that are not meant to be spoofed connect from 198.51.100.3, a second address of the kernel side, so a
 * per-source cap on the attacker does not hit the victim client at 198.51.100.1. Spoofed sources are RFC 5737
 * addresses in 198.51.100.0/24 that no host owns (they never answer ARP), except where noted.
 *
 * "Served at once" is judged by the iperf 2 client's own connect time (`ct=` with `-e`): a SYN dropped by the server
 * costs the Linux client a 1 s retransmission timeout, so ct < 1000 ms means the first SYN was answered. Speeds are
 * never asserted (the bench does that), only that data flowed.
 */
import { expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import {
  attack,
  capture,
  counter,
  DUMP_LINE,
  drops,
  dumpNow,
  FIXTURES,
  hold,
  iperf2Tcp,
  iperf2Udp,
  iperf3Receiver,
  lastDump,
  pingResult,
  release,
  waitDump,
  type Dump
} from "../support/attack/index.js"
import { describeRoot, type Netns } from "../support/netns.js"
import { SERVER_IP, withServer, type RunResult, type Server } from "../support/server.js"

const ATTACKER_IP = "198.51.100.3"
const sleep = (ms: number) => Effect.sleep(Duration.millis(ms))

/**
 * Our server with a 500 ms statistics dump, totals included (the counters below are cumulative: drops by reason,
 * cookies, refusals); the kernel side also owns ATTACKER_IP.
 */
const hostileServer = (prefix: string, extra: (ns: Netns, tap: string) => Effect.Effect<unknown, unknown> = () => Effect.void) =>
  withServer(prefix, {
    args: ["-d", "500,totals"],
    setup: (ns, tap) =>
      Effect.gen(function* () {
        yield* ns.ip(["addr", "add", `${ATTACKER_IP}/24`, "dev", tap])
        yield* Effect.orDie(extra(ns, tap))
      })
  })

const fixture = (name: string): string => fs.readFileSync(path.join(FIXTURES, name), "utf8").trim()

/** A 60-byte iperf 2.1.8 TCP settings header (iperf-wire.md A.2) from a golden capture, with mAmount (offset 20) replaced. */
const tcpHeader = (name: string, amount: number): string => {
  const b = Buffer.from(fixture(name), "hex")
  b.writeInt32BE(amount, 20)
  return b.toString("hex")
}

const context = (s: Server, ...runs: ReadonlyArray<RunResult | { readonly run: RunResult }>): string =>
  [
    ...runs.map((r) => ("run" in r ? r.run : r)).map((r) => `--- client (exit ${r.code}, ${r.elapsedS.toFixed(2)} s):\n${r.stdout}${r.stderr}`),
    `--- server (its lines but the dumps, last 2000 chars):\n${serverLines(s.output()).slice(-2000)}`,
    `--- last dump:\n${s.output().slice(s.output().lastIndexOf("--- statistics at"))}`
  ].join("\n")

/** The server's output without its statistics dumps. */
const serverLines = (out: string): string =>
  out
    .split("\n")
    .filter((l) => !l.startsWith("--- statistics at ") && !l.startsWith("--- interval ") && !DUMP_LINE.test(l))
    .join("\n")

/** A real `iperf -c -e -t T` was served: a result line with data, and (when `firstSyn`) the first SYN answered. */
const expectIperf2Served = (s: Server, r: RunResult, opts: { maxConnectMs: number }) => {
  const c = iperf2Tcp(r.stdout)
  const all = context(s, r)
  expect(r.stdout + r.stderr, all).not.toMatch(/connect failed|refused|timed out|WARNING|ERROR/i)
  expect(c.connectMs, `no connect line: ${all}`).toBeDefined()
  expect(c.connectMs!, `connect took ${c.connectMs} ms: a SYN was dropped\n${all}`).toBeLessThan(opts.maxConnectMs)
  expect(c.mbits, `no result line: ${all}`).toBeDefined()
  expect(c.mbits!, all).toBeGreaterThan(0)
}

const iperf2 = (s: Server, t: number, timeoutS: number, extra: ReadonlyArray<string> = []) =>
  s.client("iperf", ["-c", SERVER_IP, "-e", "-t", String(t), ...extra], timeoutS)

const counterOf = (d: Dump | undefined, f: (d: Dump) => number | undefined): number | undefined => (d === undefined ? undefined : f(d))

describeRoot("e2e: hostile peers (design.md §7): a real client is served during or right after each attack", () => {
  // a. Silent connections holding the table. Fails today (observed at 50e5f97): 1024 of the 1100 open, 1024 iperf
  // sessions wait for the rest of their header forever; the table (1024) is full, the real client's SYNs are dropped
  // (`tcp.table_full_drops`, which the dump does not even show) and it prints no connect line in 12 s.
  it.live(
    "a. 1100 connections from one host that send 4 zero bytes and go silent: a real iperf -c is served within a couple of seconds while they are held; refusals counted, held ones in the count",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const s = yield* hostileServer("h-silent")
          const h = yield* hold(
            s,
            "silent",
            ["--src", ATTACKER_IP, "--count", "1100", "--payload-hex", "00000000", "--window", "128", "--connect-timeout", "2", "--deadline", "30", "--hold", "90"],
            40_000
          )
          // the attack really happened: all 1100 connects were tried (a per-source cap may refuse most of them)
          expect(Number(h.ready.get("opened")) + Number(h.ready.get("failed")), h.output()).toBe(1100)
          expect(Number(h.ready.get("opened")), h.output()).toBeGreaterThan(0)
          const r = yield* iperf2(s, 1, 12)
          // a couple of seconds: at most one SYN retransmission (1 s) of the Linux client
          expectIperf2Served(s, r, { maxConnectMs: 3000 })
          expect(h.child.exitCode, "the silent connections were still held during the client's test").toBeNull()
          // the state is accounted for: connects refused past a per-source or table bound, or SYNs past the cookie
          // rate (a burst of 1100 connects from one host is a flood to the SYN limiter), are counted (drop reasons, or
          // the tcp line's own refusal counters); the ones let in show in the connection count while they are held
          const opened = Number(h.ready.get("opened"))
          const refusals = (x: Dump) =>
            drops(x, "perSourceLimit") + drops(x, "tableFull") + drops(x, "rateLimited") + (counter(x, "tcpPerSourceRefusals") ?? 0) +
            (counter(x, "tcpTableFull") ?? 0)
          if (opened < 1100) {
            const d = yield* waitDump(s, (x) => refusals(x) > 0, { afterS: dumpNow(s), timeoutMs: 3000 })
            expect(counterOf(d, refusals), `${1100 - opened} connects refused, refusals not counted:\n${context(s, r)}`).toBeGreaterThan(0)
          }
          const d = yield* waitDump(s, (x) => (counter(x, "tcpConnections") ?? 0) >= opened, { afterS: dumpNow(s), timeoutMs: 3000 })
          expect(counterOf(d, (x) => counter(x, "tcpConnections")), `the ${opened} held connections are not in the count:\n${context(s, r)}`).toBeGreaterThanOrEqual(opened)
        })
      ),
    120_000
  )

  // b. Garbage iperf3 cookies, half of them cookie-shaped (36 of iperf3's cookie characters and a NUL), half junk.
  // Fails today only on the log bound: 512 "Refused 198.51.100.3:port: not an iperf3 cookie" lines, one per refusal
  // (design.md §7: refusals are aggregated). The clients ARE served today: this recipe (connect, 37 bytes, close, one
  // after the other) did not reproduce the 60 s denial here; the reproduction may have differed.
  it.live("b. 1024 garbage iperf3 cookies (connect, 37 junk bytes, close) to 5201: iperf and iperf3 clients are served at once after it; refusals are not logged one line each", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* hostileServer("h-cookie")
        const a = yield* attack(s, "cookies", ["--src", ATTACKER_IP, "--count", "1024", "--len", "37", "--connect-timeout", "2", "--deadline", "40"], 50)
        // the attack happened (a per-source cap or rate limit may refuse part of it)
        expect(Number(a.result.get("sent")), context(s, a)).toBeGreaterThan(0)
        const r3 = yield* s.client("iperf3", ["-c", SERVER_IP, "-t", "1", "--connect-timeout", "3000"], 12)
        const rate3 = iperf3Receiver(r3.stdout)
        expect(r3.stdout + r3.stderr, context(s, r3)).not.toMatch(/error|busy/i)
        expect(rate3, context(s, r3)).toBeDefined()
        expect(rate3!, context(s, r3)).toBeGreaterThan(0)
        const r2 = yield* iperf2(s, 1, 10)
        expectIperf2Served(s, r2, { maxConnectMs: 1000 })
        // design.md §7: log lines about refusals are aggregated: at most 5 a second per kind, then one line that counts
        // the rest. The bound follows the attack's duration (a loaded machine runs it slower: 32 lines was exceeded at
        // load 10 with the limiter working), and stays far below one line per refusal
        const refusals = s.output().split("\n").filter((l) => /refus/i.test(l) && l.includes(ATTACKER_IP))
        const kinds = new Set(refusals.map((l) => l.replace(/\(".*$/, "").replace(/[\d.:]+/g, "#"))).size
        const bound = 6 * Math.max(1, kinds) * (Math.ceil(a.run.elapsedS) + 2)
        expect(bound, `attack took ${a.run.elapsedS} s`).toBeLessThan(Number(a.result.get("sent")) / 2)
        expect(refusals.length, `${refusals.length} refusal lines (bound ${bound}), e.g.:\n${refusals.slice(0, 3).join("\n")}`).toBeLessThanOrEqual(bound)
      })
    ),
    90_000
  )

  // c. Half-open connections to sources that never answer ARP. Fails today: the 128-entry SYN backlog is full of them
  // (256 half-open, 1351 ARP requests out) until their SYN-ACK retransmissions give up, so the real client's SYNs are
  // dropped (backlog drops) and it prints no connect line in 12 s; there is no `syn cookies sent` counter yet.
  it.live("c. 300 SYNs to 5001 from on-link sources that never answer ARP: a real iperf -c is served at once (first SYN answered); SYN cookies counted", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* hostileServer("h-synspoof")
        const a = yield* attack(s, "synspoof", ["--count", "300", "--src-range", "100-249", "--deadline", "10"], 20)
        expect(a.result.get("sent"), context(s, a)).toBe("300")
        yield* sleep(200)
        const r = yield* iperf2(s, 1, 12)
        expectIperf2Served(s, r, { maxConnectMs: 1000 })
        const d = yield* waitDump(s, (x) => (counter(x, "synCookiesSent") ?? 0) > 0, { afterS: dumpNow(s), timeoutMs: 3000 })
        expect(counterOf(d, (x) => counter(x, "synCookiesSent")), `no 'syn cookies sent' > 0 in the tcp line:\n${context(s, a, r)}`).toBeGreaterThan(0)
      })
    ),
    60_000
  )

  // d1 fails today: we send the whole 5 s stream (about 200 datagrams in the 2.5 s window) although 8 ICMP port
  // unreachables come back. d2 passes today (we never get past ARP for a host that does not exist, and the ARP
  // requests stay within the bound); it guards the bound for the fixes.
  // d. Reflection: one spoofed iperf 2 `-u -d` request datagram (the settings header of a real `-u -t 0.3` first
  // datagram with flags VERSION1|RUN_NOW, 5 s, 1 Mbit/s) from 198.51.100.50.
  const spoofedDualRequest = (s: Server) =>
    attack(s, "udpsend", [
      "--src", "198.51.100.50", "--sport", "45001", "--port", "5001", "--count", "1",
      "--template", path.join(FIXTURES, "udp-first-datagram.hex"), "--iperf-flags", "0xC8010099", "--amount", "-500", "--rate", String(1 << 20)
    ], 10)

  it.live(
    "d1. spoofed UDP -u -d request from 198.51.100.50, a host that answers ICMP port unreachable: we send it at most 10 datagrams (we stop within ~100 ms)",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          // 198.51.100.50 is a second address of the kernel side: it answers ARP, and port unreachable for UDP 5001
          const s = yield* hostileServer("h-reflect", (ns, tap) => ns.ip(["addr", "add", "198.51.100.50/24", "dev", tap]))
          const cap = yield* capture(s, ["udp and dst host 198.51.100.50"])
          const a = yield* spoofedDualRequest(s)
          expect(a.result.get("sent"), context(s, a)).toBe("1")
          yield* sleep(2500) // unbounded, the server would send 2.5 s x 89 datagrams/s = 220 in this window
          const lines = yield* cap.stop
          // bound: the first datagram, then what 1 Mbit/s (1470-byte datagrams 11.2 ms apart) sends in the ~100 ms it may
          // take to act on the first port unreachable: 1 + 9 = 10. A server that verifies the return path first sends 0.
          expect(lines.length, `${lines.length} datagrams to 198.51.100.50:\n${lines.slice(0, 5).join("\n")}\n${context(s, a)}`).toBeLessThanOrEqual(10)
        })
      ),
    30_000
  )

  it.live(
    "d2. spoofed UDP -u -d request from 198.51.100.50, a host that does not exist: at most 3 ARP requests for it, no datagram to it",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const s = yield* hostileServer("h-reflect0")
          const cap = yield* capture(s, ["(arp and arp[24:4] = 0xc6336432) or dst host 198.51.100.50"])
          const a = yield* spoofedDualRequest(s)
          expect(a.result.get("sent"), context(s, a)).toBe("1")
          yield* sleep(2500)
          const lines = yield* cap.stop
          const ip = lines.filter((l) => / IPv4, /.test(l))
          const arp = lines.filter((l) => /ARP, Request who-has 198\.51\.100\.50 /.test(l))
          expect(ip.length, `IP to a host that never answered ARP:\n${ip.slice(0, 5).join("\n")}`).toBe(0)
          // bound: one address resolution (3 requests, as Linux's mcast_solicit) for the whole stream; a stream that keeps
          // resolving sends one per datagram or per retry interval (dozens in 2.5 s)
          expect(arp.length, `${arp.length} ARP requests for 198.51.100.50:\n${arp.slice(0, 5).join("\n")}\n${context(s, a)}`).toBeLessThanOrEqual(3)
        })
      ),
    30_000
  )

  // e. Broadcast source. Fails today: our server answers 198.51.100.255 with echo replies and SYN-ACKs to
  // ff:ff:ff:ff:ff:ff (6 frames) and counts no MartianSource.
  it.live("e. ICMP echo and SYN from source 198.51.100.255: no reply at all (nothing to ff:ff:ff:ff:ff:ff), MartianSource counted; ping still works", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* hostileServer("h-bcast")
        const cap = yield* capture(s, ["(ether dst ff:ff:ff:ff:ff:ff and not arp) or (ip and dst host 198.51.100.255)"])
        const a = yield* attack(s, "bcastsrc", ["--src", "198.51.100.255", "--count", "3"], 10)
        expect(a.result.get("sent"), context(s, a)).toBe("6")
        yield* sleep(500)
        const lines = yield* cap.stop
        expect(lines, `replies to the broadcast source:\n${lines.join("\n")}`).toEqual([])
        const d = yield* waitDump(s, (x) => drops(x, "martianSource") >= 6, { afterS: dumpNow(s), timeoutMs: 2000 })
        expect(counterOf(d, (x) => drops(x, "martianSource")), context(s, a)).toBeGreaterThanOrEqual(6)
        const p = yield* s.client("ping", ["-n", "-c", "3", "-i", "0.2", "-W", "1", SERVER_IP], 10)
        expect(pingResult(p.stdout), context(s, p)).toEqual({ transmitted: 3, received: 3 })
      })
    )
  )

  // f. TS.Recent poisoning (RFC 7323 §5.3, RFC 5961 §4): a SYN at RCV.NXT with TSval + 2^30 on a live connection of the
  // Linux stack (a Python socket that sent an iperf 2 header, `-n 10M`) must get a challenge ACK and change nothing.
  // Fails today: we answer with a challenge ACK but take TSval + 2^30 into TS.Recent (its TSecr echoes it), so every
  // later segment fails PAWS: none of the 300000 bytes after the SYN is acknowledged and the connection is dead.
  it.live("f. a SYN at RCV.NXT with TSval + 2^30 on an established timestamped connection: no RST, the connection still delivers; a real client is served", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* hostileServer("h-tsrecent")
        const a = yield* attack(s, "tspoison", [
          "--iface", s.tap, "--src", "198.51.100.1", "--header-hex", tcpHeader("tcp-header-plain.hex", 10 << 20),
          "--before", "20000", "--after", "300000", "--deadline", "4"
        ], 25)
        const all = context(s, a)
        expect(a.result.get("injected"), all).toBe("1")
        expect(a.result.get("rst"), `the injected SYN drew a RST:\n${all}`).toBe("0")
        expect(a.result.get("err"), all).toBe("none")
        // the 300000 bytes sent after the SYN were all acknowledged: the later segments (normal TSvals) passed PAWS
        expect(a.result.get("unacked"), `data after the SYN was not acknowledged (TS.Recent poisoned?):\n${all}`).toBe("0")
        const r = yield* iperf2(s, 1, 10)
        expectIperf2Served(s, r, { maxConnectMs: 1000 })
      })
    ),
    60_000
  )

  // g. Zero-window peers: 50 `-R -t 1` requests whose senders never read. Fails today: the iperf sessions give up
  // ("did not finish within the test time + 2 s; closing") but the TCP connections stay, FIN queued behind data the
  // zero window never takes, persist probing forever: `connections 50` after 20 s. The bound (G_FREED_WITHIN_S) is
  // ours: the -t 1 session, its 2 s grace and a few persist probes fit well inside it.
  const G_FREED_WITHIN_S = 20
  it.live(
    `g. 50 zero-window peers (iperf 2 -R -t 1, never read): within ${G_FREED_WITHIN_S} s the server frees them (tcp connections falls) and a real client is served`,
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const s = yield* hostileServer("h-zerowin")
          const header = tcpHeader("tcp-header-reverse.hex", -100) // -R -t 1
          const h = yield* hold(s, "zerowin", ["--src", ATTACKER_IP, "--count", "50", "--header-hex", header, "--deadline", "20", "--hold", "90"], 30_000)
          // all 50 today; a per-source cap may let fewer in, and those are the ones that must be freed
          const opened = Number(h.ready.get("opened"))
          expect(opened, h.output()).toBeGreaterThanOrEqual(5)
          const busy = yield* waitDump(s, (x) => (counter(x, "tcpConnections") ?? 0) >= opened, { afterS: dumpNow(s), timeoutMs: 5000 })
          expect(counterOf(busy, (x) => counter(x, "tcpConnections")), `the ${opened} connections never showed:\n${context(s)}`).toBeGreaterThanOrEqual(opened)
          const freed = yield* waitDump(s, (x) => (counter(x, "tcpConnections") ?? 99) <= 2, { afterS: dumpNow(s), timeoutMs: G_FREED_WITHIN_S * 1000 })
          expect(h.child.exitCode, "the zero-window peers were held all along").toBeNull()
          expect(counterOf(freed, (x) => counter(x, "tcpConnections")), `still holding them after ${G_FREED_WITHIN_S} s:\n${context(s)}`).toBeLessThanOrEqual(2)
          const r = yield* iperf2(s, 1, 10)
          expectIperf2Served(s, r, { maxConnectMs: 1000 })
        })
      ),
    90_000
  )

  // h1. UDP stream table. Fails today: 64 streams are the limit and a silent one is forgotten only after 10 s; the
  // real client's stream, arriving within that, is dropped (udp_stream_drops) and it gets no Server Report
  // ("WARNING: did not receive ack of last datagram after 10 tries").
  it.live("h1. 64 UDP streams from distinct source ports (one valid iperf 2 datagram each): a real iperf -u -c -t 1 gets its Server Report", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* hostileServer("h-udpstreams")
        const a = yield* attack(s, "udpsend", [
          "--src", ATTACKER_IP, "--sport", "40000", "--count", "64",
          "--template", path.join(FIXTURES, "udp-first-datagram.hex"), "--iperf-flags", "0x48010098", "--amount", "-1000"
        ], 10)
        expect(a.result.get("sent"), context(s, a)).toBe("64")
        yield* sleep(200)
        const r = yield* s.client("iperf", ["-c", SERVER_IP, "-u", "-t", "1"], 10)
        const u = iperf2Udp(r.stdout)
        const all = context(s, a, r)
        expect(r.stdout + r.stderr, all).not.toMatch(/WARNING|did not receive|failed|refused/i)
        expect(u.serverReport, all).toBe(true)
        // 1 s at 1 Mbit/s: 89 datagrams + the final; a report from a server that dropped the stream would say far fewer
        expect(u.total!, all).toBeGreaterThanOrEqual(80)
        expect(u.lost!, all).toBeLessThanOrEqual(5)
      })
    )
  )

  // h2. Reassembly table. Fails today: the 64 stale reassemblies fill the table, every fragment of the pings is
  // dropped (ReassemblyLimit), 0 of 3 answered.
  it.live("h2. 64 incomplete 64 KiB reassemblies (first fragments only): a fragmented ping -s 20000 is answered at once", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* hostileServer("h-reasm")
        const a = yield* attack(s, "frags", ["--mode", "incomplete", "--src", ATTACKER_IP, "--count", "64"], 10)
        expect(a.result.get("sent"), context(s, a)).toBe("64")
        yield* sleep(100)
        const p = yield* s.client("ping", ["-n", "-c", "3", "-i", "0.2", "-W", "1", "-s", "20000", SERVER_IP], 10)
        expect(pingResult(p.stdout), context(s, a, p)).toEqual({ transmitted: 3, received: 3 })
        const d = lastDump(s)
        expect(counterOf(d, (x) => counter(x, "ipv4FragmentsIn")), context(s)).toBeGreaterThanOrEqual(64)
      })
    )
  )

  // h3. Overlapping fragments. Fails today: the overlapping datagrams are reassembled and answered (4 echo replies),
  // no FragmentOverlap.
  it.live("h3. overlapping fragments are dropped and counted (ipv4 drops FragmentOverlap); nothing is answered for them", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* hostileServer("h-overlap")
        const cap = yield* capture(s, ["icmp and src host 198.51.100.2"])
        const a = yield* attack(s, "frags", ["--mode", "overlap", "--src", ATTACKER_IP, "--count", "4"], 10)
        expect(a.result.get("sent"), context(s, a)).toBe("8")
        const d = yield* waitDump(s, (x) => drops(x, "fragmentOverlap") >= 4, { afterS: dumpNow(s), timeoutMs: 2000 })
        const lines = yield* cap.stop
        expect(counterOf(d, (x) => drops(x, "fragmentOverlap")), context(s, a)).toBeGreaterThanOrEqual(4)
        expect(lines.filter((l) => /echo reply/.test(l)), lines.join("\n")).toEqual([])
        const p = yield* s.client("ping", ["-n", "-c", "2", "-i", "0.2", "-W", "1", "-s", "3000", SERVER_IP], 10)
        expect(pingResult(p.stdout), context(s, p)).toEqual({ transmitted: 2, received: 2 })
      })
    )
  )

  // (Before SYN cookies this failed most runs: the flood kept the SYN backlog full and the client connected after two
  // SYN retransmissions. Now the flooder is also handed to the TAP's kernel SYN filter within about a second.)
  // i1. SYN flood (hping3 --flood from the kernel side, bounded: timeout -s KILL 6 and killed by PID) while a real
  // iperf -c -t 3 and a ping -c 3 -i 0.2 run. Ping: at most 1 of 3 lost. The TAP's kernel-side queue is shared by the
  // flood and the echo requests; when our reader falls behind a --flood (which the kernel feeds as fast as one core can
  // make packets), the kernel tail-drops from that queue before any of our code sees the frame. One loss in three is
  // that; two would mean we are not draining the link at all. (The bench reports the loss; its target is none.)
  it.live("i1. hping3 --flood -S -p 5001 for a few seconds: a concurrent iperf -c -t 3 gets data through and ping loses at most 1 of 3", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* hostileServer("h-flood")
        // the flooder is another host on the link (ATTACKER_IP): our SYN-ACKs reach its kernel, which resets each
        const flood = yield* s.ns.spawn("timeout", ["-s", "KILL", "6", "hping3", "--flood", "-q", "-S", "-a", ATTACKER_IP, "-p", "5001", SERVER_IP])
        yield* sleep(500)
        const [r, p] = yield* Effect.all(
          [iperf2(s, 3, 20), sleep(1000).pipe(Effect.zipRight(s.client("ping", ["-n", "-c", "3", "-i", "0.2", "-W", "1", SERVER_IP], 10)))],
          { concurrency: 2 }
        )
        const floodAlive = flood.exitCode === null
        // the flooder was handed to the TAP's kernel SYN filter (a dump taken while the flood still ran)
        const listed = yield* waitDump(s, (x) => (counter(x, "synFilterSources") ?? 0) >= 1, { timeoutMs: 2000 })
        yield* release(flood)
        const all = context(s, r, p)
        expect(floodAlive, "the flood ran during the clients").toBe(true)
        expect(counterOf(listed, (x) => counter(x, "synFilterSources")), all).toBe(1)
        // served during the flood: connected with at most one SYN retransmission (the flood fills a plain SYN backlog;
        // with SYN cookies the first SYN is answered) and data went through
        expectIperf2Served(s, r, { maxConnectMs: 3000 })
        const pr = pingResult(p.stdout)
        expect(pr, all).toBeDefined()
        expect(pr!.received, all).toBeGreaterThanOrEqual(2)
        // the server is still up and serves a client after the flood
        const r2 = yield* iperf2(s, 1, 10)
        expectIperf2Served(s, r2, { maxConnectMs: 1000 })
      })
    ),
    60_000
  )

  // i2. Stealth probes. Fails today: we answer the 9 FIN, NULL and Xmas segments to a listening port with RSTs
  // (RFC 9293 §3.10.7.2, LISTEN: "any other control or text-bearing segment ... should be dropped"), which lets a
  // scanner tell open from closed ports.
  it.live("i2. FIN, NULL and Xmas probes to listening 5001 (hping3 -F / no flags / -FPU): no RST, ProbeToListener counted; a real client is served", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* hostileServer("h-probes")
        const cap = yield* capture(s, ["tcp and src host 198.51.100.2 and tcp[tcpflags] & tcp-rst != 0"])
        for (const flags of [["-F"], [], ["-F", "-P", "-U"]]) {
          yield* s.client("hping3", ["-q", "-c", "3", "-i", "u20000", ...flags, "-p", "5001", SERVER_IP], 10)
        }
        yield* sleep(300)
        const lines = yield* cap.stop
        expect(lines, `RSTs for the probes:\n${lines.join("\n")}`).toEqual([])
        const d = yield* waitDump(s, (x) => drops(x, "probeToListener") >= 9, { afterS: dumpNow(s), timeoutMs: 2000 })
        expect(counterOf(d, (x) => drops(x, "probeToListener")), context(s)).toBeGreaterThanOrEqual(9)
        const r = yield* iperf2(s, 1, 10)
        expectIperf2Served(s, r, { maxConnectMs: 1000 })
      })
    )
  )
})
