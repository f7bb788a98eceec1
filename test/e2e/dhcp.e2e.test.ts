/**
 * The DHCP client against a real DHCP server nobody here wrote: dnsmasq (Debian dnsmasq-base) runs in the
 * test's own namespace on the kernel side of the TAP, with an RFC 5737 range, a 2-minute lease, and its
 * pid and lease files in a temporary directory; it is killed by PID when the test's scope closes.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { NetnsError, describeRoot, type Netns } from "../support/netns.js"
import { CLIENT_IP, withServer } from "../support/server.js"

const tempDir = (prefix: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), prefix))),
    (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
  )

interface Dnsmasq {
  readonly log: () => string
  readonly leases: () => string
}

/** dnsmasq on `tap` inside `ns`: DHCP only (no DNS), 198.51.100.50-60, lease 2 minutes. */
const startDnsmasq = (ns: Netns, tap: string): Effect.Effect<Dnsmasq, NetnsError, Scope.Scope> =>
  Effect.gen(function* () {
    const dir = yield* tempDir("mpx-dnsmasq-")
    const leaseFile = path.join(dir, "leases")
    const child = yield* ns.spawn("dnsmasq", [
      "--no-daemon",
      "--conf-file=/dev/null",
      `--interface=${tap}`,
      "--bind-interfaces",
      "--except-interface=lo",
      "--port=0",
      `--listen-address=${CLIENT_IP}`,
      "--dhcp-range=198.51.100.50,198.51.100.60,255.255.255.0,2m",
      `--dhcp-leasefile=${leaseFile}`,
      `--pid-file=${path.join(dir, "pid")}`,
      "--log-dhcp",
      "--log-facility=-",
      "--user=root"
    ])
    let log = ""
    child.stdout?.on("data", (d: Buffer) => (log += d.toString()))
    child.stderr?.on("data", (d: Buffer) => (log += d.toString()))
    const t0 = Date.now()
    while (!/DHCP, sockets bound/.test(log)) {
      if (child.exitCode !== null) return yield* new NetnsError({ message: `dnsmasq exited (${child.exitCode}): ${log}` })
      if (Date.now() - t0 > 10_000) return yield* new NetnsError({ message: `dnsmasq did not start: ${log}` })
      yield* Effect.sleep("20 millis")
    }
    return {
      log: () => log,
      leases: () => (fs.existsSync(leaseFile) ? fs.readFileSync(leaseFile, "utf8") : "")
    }
  })

describeRoot("e2e: DHCP client with dnsmasq", () => {
  it.live(
    "without -i: a lease from dnsmasq, printed; ping and iperf -c to the leased address work",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          let dns: Dnsmasq | undefined
          const s = yield* withServer("dhcp", {
            dhcp: true,
            setup: (ns, tap) => Effect.map(startDnsmasq(ns, tap), (d) => void (dns = d))
          })
          expect(s.output()).toContain("Initialize network interface 0: DHCP")
          yield* s.waitFor(/Interface 0: 198\.51\.100\.\d+ netmask/, 30_000)
          const m = /DHCP: leased (198\.51\.100\.(\d+)) from 198\.51\.100\.1 for 120 s \(renew at 60 s, rebind at 105 s\)/.exec(s.output())
          expect(m).not.toBeNull()
          const leased = m![1]!
          const host = Number(m![2])
          expect(host).toBeGreaterThanOrEqual(50)
          expect(host).toBeLessThanOrEqual(60)
          expect(s.output()).toContain(`Interface 0: ${leased} netmask 255.255.255.0 gw 198.51.100.1`)
          // dnsmasq agrees
          const mac = /MAC ([0-9a-f:]{17})/.exec(s.output())![1]!
          expect(dns!.leases()).toContain(`${mac} ${leased}`)
          expect(dns!.log()).toMatch(new RegExp(`DHCPACK\\(${s.tap}\\) ${leased.replace(/\./g, "\\.")} ${mac}`))

          const p = yield* s.client("ping", ["-c", "3", "-i", "0.2", "-W", "2", leased])
          expect(p.stdout).toMatch(/3 received/)
          const ip = yield* s.client("iperf", ["-c", leased, "-t", "2"], 30)
          expect(ip.stdout).toMatch(new RegExp(`connected with ${leased.replace(/\./g, "\\.")} port 5001`))
          expect(ip.stdout).toMatch(/0\.0+-2\.\d+ sec\s+[\d.]+ [KMG]Bytes\s+[\d.]+ [KMG]bits\/sec/)
          yield* s.waitFor(/ port 5001 connected with 198\.51\.100\.1 port \d+/, 5000)
        })
      ),
    60_000
  )
})
