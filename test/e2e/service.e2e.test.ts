/**
 * The server as the systemd example runs it (examples/systemd/miniperf@.service): on a persistent TAP created
 * beforehand for its user, started with no capabilities at all. Here the user is root with an empty capability
 * bounding set (setpriv), so the checks the kernel makes are those it makes for any unprivileged owner of the
 * TAP (TUNSETIFF on a persistent TAP it owns, the offload and filter ioctls), while the files stay readable
 * wherever the test's clone lives. Checked: the process's effective capabilities are empty; it opens the TAP
 * with offloads; ping and the real iperf 2 client are served; a SYN flood still gets the kernel SYN filter
 * attached (the filter ioctl is not refused without CAP_NET_ADMIN); the TAP outlives the server.
 */
import * as fs from "node:fs"
import { expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { describeRoot, NetnsError, uniqueIfName, withNetns } from "../support/netns.js"
import { CLIENT_IP, MAIN, SERVER_IP, runAny } from "../support/server.js"

const ATTACKER_IP = "198.51.100.3"

/** The last value of `field N` in the -d dump lines of `out` (the dump repeats every interval). */
const lastCount = (out: string, re: RegExp): number => {
  const all = [...out.matchAll(re)]
  return all.length === 0 ? -1 : Number(all[all.length - 1]![1])
}

describeRoot("the server without capabilities on a persistent TAP it owns (the systemd example)", () => {
  it.scopedLive(
    "runs with no capabilities, opens the TAP with offloads, serves ping and iperf, attaches the SYN filter",
    () =>
      Effect.gen(function* () {
        const ns = yield* withNetns("svc")
        const tap = uniqueIfName("mps")
        // what the unit's ExecStartPre lines do (as root): a persistent TAP owned by the service user, with the
        // virtio-net header, its kernel side addressed and up
        yield* ns.ip(["tuntap", "add", "dev", tap, "mode", "tap", "user", "0", "vnet_hdr"])
        yield* ns.ip(["addr", "add", `${CLIENT_IP}/24`, "dev", tap])
        yield* ns.ip(["addr", "add", `${ATTACKER_IP}/24`, "dev", tap])
        yield* ns.ip(["link", "set", "dev", tap, "up"])
        const child = yield* ns.spawn("setpriv", [
          "--bounding-set=-all",
          "--inh-caps=-all",
          "--",
          "node",
          MAIN,
          "--tap",
          tap,
          "-i",
          `${SERVER_IP}/24`,
          "-d",
          "300,totals"
        ])
        let out = ""
        child.stdout?.on("data", (d: Buffer) => (out += d.toString()))
        child.stderr?.on("data", (d: Buffer) => (out += d.toString()))
        const t0 = Date.now()
        while (!/Entering main event loop/.test(out)) {
          if (child.exitCode !== null || Date.now() - t0 > 10_000) {
            return yield* new NetnsError({ message: `server did not start without capabilities: ${out}` })
          }
          yield* Effect.sleep(Duration.millis(20))
        }
        // `ip netns exec` and setpriv exec, so the child's PID is the server's
        const status = fs.readFileSync(`/proc/${child.pid}/status`, "utf8")
        expect(status).toMatch(/^CapEff:\s+0+$/m)
        expect(status).toMatch(/^CapPrm:\s+0+$/m)
        expect(out).toMatch(/offloads on \(checksum, TSO\)/)

        const ping = yield* runAny("ip", ["netns", "exec", ns.name, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", SERVER_IP], 15)
        expect(ping.stdout, ping.stdout + ping.stderr).toMatch(/3 packets transmitted, 3 received/)
        const ip2 = yield* runAny("ip", ["netns", "exec", ns.name, "iperf", "-c", SERVER_IP, "-t", "1", "-f", "m"], 20)
        expect(ip2.stdout, ip2.stdout + ip2.stderr).toMatch(/0\.0+-1\.\d+ sec\s+[\d.]+ MBytes\s+[\d.]+ Mbits\/sec/)

        // a SYN flood from another address of the link: the limiter refuses it and hands the source to the kernel
        // filter; without CAP_NET_ADMIN the filter ioctl must still succeed (`refused 0`, updates counted)
        yield* runAny(
          "ip",
          ["netns", "exec", ns.name, "timeout", "-s", "KILL", "1.5", "hping3", "--flood", "-q", "-S", "-a", ATTACKER_IP, "-p", "5001", SERVER_IP],
          10
        )
        yield* Effect.sleep(Duration.millis(800))
        const updates = lastCount(out, /syn filter sources \d+ level \d+\/64 \(updates (\d+), refused \d+\)/g)
        const refused = lastCount(out, /syn filter sources \d+ level \d+\/64 \(updates \d+, refused (\d+)\)/g)
        expect(updates, out.slice(-3000)).toBeGreaterThan(0)
        expect(refused, out.slice(-3000)).toBe(0)
        // still served after the flood
        const after = yield* runAny("ip", ["netns", "exec", ns.name, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", SERVER_IP], 15)
        expect(after.stdout, after.stdout + out.slice(-2000)).toMatch(/2 packets transmitted, 2 received/)

        // the server goes, the persistent TAP stays (the unit's ExecStopPost removes it)
        child.kill("SIGTERM")
        const t1 = Date.now()
        while (child.exitCode === null && child.signalCode === null && Date.now() - t1 < 5000) yield* Effect.sleep(Duration.millis(20))
        expect(child.exitCode ?? child.signalCode).not.toBeNull()
        const link = yield* ns.ip(["link", "show", "dev", tap])
        expect(link.stdout).toContain(tap)
      }),
    60_000
  )
})
