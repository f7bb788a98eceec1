/**
 * MinIperf parity end to end: a static ARP entry (-a) used without any ARP request, and the statistics
 * dump (-d) counting real pings and coming at its interval.
 */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { NetnsError, describeRoot } from "../support/netns.js"
import { CLIENT_IP, SERVER_IP, withServer } from "../support/server.js"

/** The kernel side's MAC, set by the test so it can be given to -a before the server starts. */
const KERNEL_MAC = "02:5e:11:22:33:01"
/** Ours, given with --mac so the kernel side gets a permanent neighbour entry and never asks for us. */
const OUR_MAC = "02:5e:11:22:33:02"

const countOf = (s: string, re: RegExp): number => [...s.matchAll(new RegExp(re.source, "g"))].length

describeRoot("e2e: MinIperf parity", () => {
  it.live(
    "-a <kernel MAC>/198.51.100.1: iperf -c ... -r works and tcpdump sees no ARP request from us for .1",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          let arpLog = ""
          const s = yield* withServer("sarp", {
            args: ["--mac", OUR_MAC, "-a", `${KERNEL_MAC}/${CLIENT_IP}`],
            setup: (ns, tap) =>
              Effect.gen(function* () {
                yield* ns.ip(["link", "set", "dev", tap, "address", KERNEL_MAC])
                // the kernel never sends an ARP request we could learn its MAC from: only -a can tell us
                yield* ns.ip(["neigh", "replace", SERVER_IP, "lladdr", OUR_MAC, "dev", tap, "nud", "permanent"])
                const td = yield* ns.spawn("tcpdump", ["-n", "-l", "-e", "-i", tap, "arp"])
                td.stdout?.on("data", (d: Buffer) => (arpLog += d.toString()))
                let err = ""
                td.stderr?.on("data", (d: Buffer) => (err += d.toString()))
                const t0 = Date.now()
                while (!/listening on/.test(err)) {
                  if (td.exitCode !== null || Date.now() - t0 > 10_000) return yield* new NetnsError({ message: `tcpdump did not start: ${err}` })
                  yield* Effect.sleep("20 millis")
                }
              })
          })
          const r = yield* s.client("iperf", ["-c", SERVER_IP, "-t", "2", "-r"], 40)
          expect(r.stdout + r.stderr).not.toMatch(/failed|refused|ERROR|WARNING/i)
          // both directions reported by the client: its own test, then our connect-back to it
          expect(r.stdout).toMatch(/connected with 198\.51\.100\.2 port 5001/)
          expect(r.stdout).toMatch(/local 198\.51\.100\.1 port 5001 connected with 198\.51\.100\.2/)
          expect(countOf(r.stdout, /0\.0+-\d+\.\d+ sec\s+[\d.]+ [KMG]Bytes\s+[\d.]+ [KMG]bits\/sec/)).toBeGreaterThanOrEqual(2)
          yield* s.waitFor(/^Client connecting to 198\.51\.100\.1, TCP port 5001\n/m, 5000)
          expect(arpLog).not.toMatch(/who-has 198\.51\.100\.1 tell 198\.51\.100\.2/)
          // tcpdump really captures ARP here: make the kernel ask for us now, and see that request
          yield* s.ns.ip(["neigh", "del", SERVER_IP, "dev", s.tap])
          const p = yield* s.client("ping", ["-c", "1", "-W", "2", SERVER_IP])
          expect(p.stdout).toMatch(/1 received/)
          const t0 = Date.now()
          while (!/who-has 198\.51\.100\.2 tell 198\.51\.100\.1/.test(arpLog) && Date.now() - t0 < 3000) yield* Effect.sleep("50 millis")
          expect(arpLog).toMatch(/Request who-has 198\.51\.100\.2 tell 198\.51\.100\.1/)
          // and still no request from us for .1 (a static entry is never refreshed by asking)
          expect(arpLog).not.toMatch(/who-has 198\.51\.100\.1 tell 198\.51\.100\.2/)
        })
      ),
    60_000
  )

  it.live(
    "-d 500,totals: after ping -c 100 -i 0.01 the dump's totals show at least 100 echo requests, and dumps keep coming",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const s = yield* withServer("dump", { args: ["-d", "500,totals"] })
          const p = yield* s.client("ping", ["-c", "100", "-i", "0.01", "-W", "2", SERVER_IP], 30)
          expect(p.stdout).toMatch(/100 received/)
          yield* s.waitFor(/^icmp: echo requests (1\d\d|[2-9]\d\d), echo replies (1\d\d|[2-9]\d\d)/m, 5000)
          // dumps keep coming: two more headers (bounded wait)
          const before = countOf(s.output(), /^--- statistics at /m)
          const t0 = Date.now()
          while (countOf(s.output(), /^--- statistics at /m) < before + 2 && Date.now() - t0 < 5000) yield* Effect.sleep("50 millis")
          const dumps = s.output().split(/^--- statistics at /m).slice(1)
          expect(dumps.length).toBeGreaterThanOrEqual(before + 2)
          const last = dumps[dumps.length - 1]!
          for (const layer of ["link:", "arp:", "ipv4:", "icmp:", "udp:", "tcp:", "iperf:"]) expect(last).toContain(`\n${layer} `)
          const echo = Number(/echo requests (\d+)/.exec(last)![1])
          expect(echo).toBeGreaterThanOrEqual(100)
          // headers count up in steps of the interval
          const times = [...s.output().matchAll(/^--- statistics at ([\d.]+) s ---$/gm)].map((m) => Number(m[1]))
          expect(times.length).toBe(dumps.length)
          for (let i = 1; i < times.length; i++) expect(times[i]!).toBeGreaterThan(times[i - 1]!)
        })
      ),
    60_000
  )
})
