/**
 * IPv6 end to end (issue 11, phase 1): the real ping -6 and the Linux kernel's IPv6 (its neighbour discovery,
 * its reassembly of our fragmented replies) against our server process on a TAP in a namespace of the test's own.
 * Kernel side 2001:db8::1/64 (added with nodad, so its own DAD does not delay the test), ours 2001:db8::2/64 by
 * --ip6, and both link-local addresses. Needs root; CI runs it.
 */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { describeRoot, run, type Netns } from "../support/netns.js"
import { withServer } from "../support/server.js"

/** New namespaces here start with IPv6 disabled on their interfaces: turn it on for the TAP, then add the kernel's address. */
const kernelSide = (ns: Netns, tap: string) =>
  Effect.gen(function* () {
    yield* run("ip", ["netns", "exec", ns.name, "sysctl", "-q", "-w", `net.ipv6.conf.${tap}.disable_ipv6=0`])
    yield* ns.ip(["-6", "addr", "add", "2001:db8::1/64", "dev", tap, "nodad"])
  })

const received = (ping: string): number => Number(/(\d+) received/.exec(ping)?.[1] ?? "0")

describeRoot("e2e: IPv6 on a real TAP", () => {
  it.live("ping -6 our link-local and --ip6 addresses (also -s 4000, fragmented both ways), after DAD", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("ping6", {
          args: ["--ip6", "2001:db8::2/64"],
          setup: kernelSide
        })
        yield* s.waitFor(/IPv6 address 2001:db8::2\/64 assigned/, 10_000)
        const ll = /IPv6: (fe80::[0-9a-f:]+)\/64/.exec(s.output())?.[1]
        expect(ll).toBeDefined()
        yield* s.waitFor(new RegExp(`IPv6 address ${ll}/64 assigned`), 10_000)

        const pLl = yield* s.client("ping", ["-6", "-c", "3", "-i", "0.2", "-W", "2", `${ll}%${s.tap}`])
        console.log(pLl.stdout)
        expect(received(pLl.stdout)).toBe(3)

        const pG = yield* s.client("ping", ["-6", "-c", "3", "-i", "0.2", "-W", "2", "2001:db8::2"])
        console.log(pG.stdout)
        expect(received(pG.stdout)).toBe(3)
        expect(pG.stdout).toMatch(/64 bytes from 2001:db8::2: icmp_seq=1/)

        const p4k = yield* s.client("ping", ["-6", "-c", "3", "-i", "0.2", "-W", "2", "-s", "4000", "2001:db8::2"])
        console.log(p4k.stdout)
        expect(received(p4k.stdout)).toBe(3)
        expect(p4k.stdout).toMatch(/4008 bytes from 2001:db8::2/)

        // the kernel resolved us by NS/NA: its neighbour table holds our MAC for both addresses
        const mac = /MAC ([0-9a-f:]{17})/.exec(s.output())?.[1]
        const neigh = yield* s.ns.ip(["-6", "neigh", "show", "dev", s.tap])
        expect(neigh.stdout).toMatch(new RegExp(`2001:db8::2 lladdr ${mac}`))
        expect(neigh.stdout).toMatch(new RegExp(`${ll} lladdr ${mac}`))
        // IPv4 still answers beside it
        const p4 = yield* s.client("ping", ["-c", "1", "-W", "2", "198.51.100.2"])
        expect(received(p4.stdout)).toBe(1)
      })
    ),
    60_000
  )

  it.live("--no-ipv6: nothing answers over IPv6, IPv4 does", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("noip6", {
          args: ["--no-ipv6"],
          setup: kernelSide
        })
        expect(s.output()).toContain("IPv6: off (--no-ipv6)")
        const p = yield* s.client("ping", ["-6", "-c", "2", "-i", "0.2", "-W", "1", "2001:db8::2"])
        expect(received(p.stdout)).toBe(0)
        const p4 = yield* s.client("ping", ["-c", "1", "-W", "2", "198.51.100.2"])
        expect(received(p4.stdout)).toBe(1)
      })
    ),
    30_000
  )
})
