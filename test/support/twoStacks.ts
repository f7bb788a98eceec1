/**
 * Two full stacks (A = 198.51.100.1, B = 198.51.100.2) joined by a SimLink, for layer tests under TestClock.
 * With `ipv6`, each also has IPv6 on (A6 = 2001:db8::1, B6 = 2001:db8::2, /64, DAD with no start delay: the
 * addresses are assigned after 1 s of virtual time).
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import type * as Context from "effect/Context"
import { ipv4 } from "../../src/protocols/address.js"
import { parseIpv6, type Ipv6Address } from "../../src/protocols/ipv6/address.js"
import { Nic } from "../../src/nic/Nic.js"
import * as Stack from "../../src/layers/Stack.js"
import * as Tcp from "../../src/layers/Tcp.js"
import * as SimLink from "../../src/nic/SimLink.js"

export const A_IP = ipv4(198, 51, 100, 1)
export const B_IP = ipv4(198, 51, 100, 2)
export const A6 = parseIpv6("2001:db8::1") as Ipv6Address
export const B6 = parseIpv6("2001:db8::2") as Ipv6Address
/** Virtual time after which both IPv6 addresses passed DAD. */
export const DAD_DONE_MS = 1_100

export type Services = Stack.StackServices | Tcp.Tcp

export interface TwoStacks {
  readonly link: SimLink.SimLink
  readonly a: Context.Context<Services>
  readonly b: Context.Context<Services>
}

const stackOver = (nic: SimLink.SimLink["a"], address: number, tcp: Tcp.TcpOptions, v6: Ipv6Address | undefined) =>
  Tcp.layer(tcp).pipe(
    Layer.provideMerge(
      Stack.layer({
        address: { address: address as never, prefix: 24, gateway: undefined },
        ...(v6 === undefined ? {} : { ipv6: { random: () => 0, addresses: [{ address: v6, prefixLen: 64 }] } })
      })
    ),
    Layer.provide(Layer.succeed(Nic, nic))
  )

export const make = (link: SimLink.SimLinkOptions = {}, tcp: Tcp.TcpOptions = {}, opts: { readonly ipv6?: boolean } = {}) =>
  Effect.gen(function* () {
    const l = yield* SimLink.make(link)
    const a = yield* Layer.build(stackOver(l.a, A_IP, tcp, opts.ipv6 === true ? A6 : undefined))
    const b = yield* Layer.build(stackOver(l.b, B_IP, tcp, opts.ipv6 === true ? B6 : undefined))
    return { link: l, a, b } satisfies TwoStacks
  })

/**
 * Run `fiber` to completion by advancing the TestClock in steps of `stepMs`, at most `maxMs` of
 * virtual time. Returns the virtual time it took; fails the test if the bound is exceeded.
 */
export const runVirtual = <A, E>(fiber: Fiber.Fiber<A, E>, stepMs = 5, maxMs = 600_000) =>
  Effect.gen(function* () {
    let t = 0
    while (t <= maxMs) {
      const done = yield* Fiber.poll(fiber)
      if (done._tag === "Some") {
        const value = yield* Fiber.join(fiber)
        return { value, virtualMs: t }
      }
      yield* TestClock.adjust(`${stepMs} millis`)
      yield* Effect.repeatN(Effect.yieldNow(), 3)
      t += stepMs
    }
    yield* Fiber.interrupt(fiber)
    return yield* Effect.dieMessage(`did not finish within ${maxMs} ms of virtual time`)
  })
