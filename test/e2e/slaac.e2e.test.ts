/**
 * SLAAC end to end (issue 11): dnsmasq's router advertisements (`--enable-ra`, prefix 2001:db8::/64) on the kernel side
 * of our TAP, our server started without --ip6: it solicits a router, forms 2001:db8:: + its modified EUI-64 interface
 * identifier, runs DAD, and the real ping -6 reaches that address; the kernel learnt us as its neighbour there. dnsmasq
 * runs in the test's own namespace, bound to the TAP only (no DHCP, no DNS: --port=0, ra-only), and is stopped by PID
 * with the scope. Needs root and dnsmasq; CI runs it.
 */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { describeRoot, run, type Netns } from "../support/netns.js"
import { withServer } from "../support/server.js"
import { formatIpv6, interfaceIdFromMac, parseIpv6, withInterfaceId } from "../../src/protocols/ipv6/address.js"
import { parseMac } from "../../src/protocols/address.js"

const received = (ping: string): number => Number(/(\d+) received/.exec(ping)?.[1] ?? "0")

/** IPv6 on for the TAP, the kernel's 2001:db8::1/64 (nodad), and dnsmasq advertising 2001:db8::/64 every few seconds. */
const routerSide = (ns: Netns, tap: string) =>
  Effect.gen(function* () {
    yield* run("ip", ["netns", "exec", ns.name, "sysctl", "-q", "-w", `net.ipv6.conf.${tap}.disable_ipv6=0`])
    yield* run("ip", ["netns", "exec", ns.name, "sysctl", "-q", "-w", `net.ipv6.conf.${tap}.accept_ra=0`])
    yield* ns.ip(["-6", "addr", "add", "2001:db8::1/64", "dev", tap, "nodad"])
    yield* ns.spawn("dnsmasq", [
      "-k",
      "--conf-file=/dev/null",
      "--port=0",
      `--interface=${tap}`,
      "--bind-interfaces",
      "--enable-ra",
      `--dhcp-range=::,constructor:${tap},ra-only,64,1h`,
      `--ra-param=${tap},mtu:1500,4,600`,
      "--pid-file=",
      "--dhcp-leasefile=/dev/null",
      "--user=root"
    ])
  })

describeRoot("e2e: SLAAC from dnsmasq's router advertisements", () => {
  it.live("no --ip6: a router is solicited, 2001:db8::/64 + EUI-64 is formed, passes DAD, and answers ping -6", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("slaac", { setup: routerSide })
        const mac = parseMac(/MAC ([0-9a-f:]{17})/.exec(s.output())![1]!)!
        const want = formatIpv6(withInterfaceId(parseIpv6("2001:db8::")!, interfaceIdFromMac(mac)))
        yield* s.waitFor(new RegExp(`IPv6 address ${want}/64 from a router advertisement \\(SLAAC\\)`), 20_000)
        yield* s.waitFor(new RegExp(`IPv6 address ${want}/64 assigned`), 10_000)
        const p = yield* s.client("ping", ["-6", "-c", "3", "-i", "0.2", "-W", "2", want])
        console.log(p.stdout)
        expect(received(p.stdout), p.stdout + p.stderr).toBe(3)
        const neigh = yield* s.ns.ip(["-6", "neigh", "show", "dev", s.tap])
        expect(neigh.stdout).toContain(want)
      })
    ),
    60_000
  )
})
