/**
 * The DHCP client's Effect shell (style.md §2.6): binds UDP port 68, feeds received messages to the pure
 * machine (protocols/dhcp/machine.ts) inline in the receive burst, runs the machine's timers in one
 * fiber, and applies what the machine decides to the Interface (address, prefix, gateway: IPv4, ARP
 * and TCP read it from there). While unconfigured, IPv4 already accepts unicast datagrams for any
 * address and sends from 0.0.0.0 to 255.255.255.255, which is what DISCOVER/OFFER need.
 *
 * When a lease ends (expiry or NAK) the address is cleared, so TCP can no longer send or receive on it;
 * the client starts over at once. On shutdown a bound client sends DHCPRELEASE.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { formatIpv4, prefixMask } from "../protocols/address.js"
import * as M from "../protocols/dhcp/machine.js"
import * as W from "../protocols/dhcp/wire.js"
import { countDrop, type DropCounts } from "./Counters.js"
import { Ethernet } from "./Ethernet.js"
import { Interface, UNCONFIGURED } from "./Interface.js"
import { Signal } from "./Signal.js"
import { printer } from "./Output.js"
import { sleepMillis } from "./Sleep.js"
import { Udp } from "./Udp.js"

export interface DhcpStats {
  readonly counters: M.Counters
  /** Messages on port 68 that did not parse. */
  readonly drops: DropCounts
}

export interface DhcpShape {
  readonly state: () => M.State
  readonly lease: () => M.Lease | undefined
  /** Completes when a lease is bound (at once if one is). */
  readonly awaitBound: Effect.Effect<M.Lease>
  readonly stats: DhcpStats
}

export class Dhcp extends Context.Tag("@miniperf/Dhcp")<Dhcp, DhcpShape>() {}

export interface DhcpOptions {
  /** Machine timing overrides (retransmission, sanity defaults). */
  readonly config?: Partial<M.Config>
  /** Where the "bound" lines go (default stdout); `null` prints nothing. */
  readonly print?: ((line: string) => void) | null
  /** Random source for xids and jitter (default Math.random). */
  readonly random?: () => number
  /** Send DHCPRELEASE when the layer closes (default true). */
  readonly releaseOnClose?: boolean
}


/** The lines printed when a lease is bound. */
export const describeLease = (l: M.Lease): ReadonlyArray<string> => [
  `DHCP: leased ${formatIpv4(l.address)} from ${formatIpv4(l.serverId)} for ${l.infinite ? "ever" : `${l.leaseS} s`}` +
    (l.infinite ? "" : ` (renew at ${l.t1S} s, rebind at ${l.t2S} s)`),
  `Interface 0: ${formatIpv4(l.address)} netmask ${formatIpv4(prefixMask(l.prefix))} gw ${formatIpv4(l.gateway ?? 0)}`
]

export const make = (opts: DhcpOptions = {}) =>
  Effect.gen(function* () {
    const udp = yield* Udp
    const iface = yield* Interface
    const eth = yield* Ethernet
    const print = opts.print === null ? () => {} : yield* printer(opts.print)
    const client = M.make(eth.mac, yield* Clock.currentTimeMillis, opts.random ?? Math.random, opts.config ?? {})
    const stats: DhcpStats = { counters: client.counters, drops: {} }
    const wake = new Signal()
    const boundSignal = new Signal()
    const out: Array<M.Action> = []

    const perform = (): void => {
      for (let i = 0; i < out.length; i++) {
        const a = out[i]!
        switch (a._tag) {
          case "Send": {
            const len = W.bufferLen(a.msg)
            udp.sendWith(W.CLIENT_PORT, a.dst, W.SERVER_PORT, len, (b) => W.emit(a.msg, b.subarray(0, len)))
            break
          }
          case "Bind": {
            const l = a.lease
            const cur = iface.current()
            if (cur.address !== l.address || cur.prefix !== l.prefix || cur.gateway !== l.gateway) {
              iface.set({ address: l.address, prefix: l.prefix, gateway: l.gateway })
            }
            if (!a.renewed) for (const line of describeLease(l)) print(line)
            boundSignal.notify()
            break
          }
          case "Unbind":
            print(`DHCP: lease of ${formatIpv4(a.address)} ${a.reason === "Expired" ? "expired" : "refused by the server (NAK)"}; address dropped, starting over`)
            iface.set(UNCONFIGURED)
            break
        }
      }
      out.length = 0
    }

    yield* udp.bind(W.CLIENT_PORT, (d) => {
      if (d.srcPort !== W.SERVER_PORT) {
        countDrop(stats.drops, "NotForUs")
        return
      }
      const m = W.parse(d.payload)
      if (typeof m === "string") {
        countDrop(stats.drops, m)
        return
      }
      M.input(client, m, d.nowMs, out)
      perform()
      wake.notify()
    })

    // The machine's timers: one fiber, woken early when input changed the deadline.
    yield* Effect.gen(function* () {
      while (true) {
        const now = yield* Clock.currentTimeMillis
        M.poll(client, now, out)
        if (out.length > 0) {
          perform()
          yield* eth.flush
        }
        const at = M.pollAt(client)
        wake.clear()
        if (at === Infinity) yield* wake.wait
        else yield* Effect.raceFirst(wake.wait, sleepMillis(Math.max(1, at - now))) // T1/T2/lease may be > 24.8 days
      }
    }).pipe(Effect.forkScoped)

    if (opts.releaseOnClose !== false) {
      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          const r = M.release(client, yield* Clock.currentTimeMillis)
          if (r === undefined) return
          out.push(r)
          perform()
          yield* eth.flush
        })
      )
    }

    const awaitBound: Effect.Effect<M.Lease> = Effect.suspend(() => {
      const loop: Effect.Effect<M.Lease> = Effect.suspend(() => {
        const l = client.lease
        if (l !== undefined && client.state !== "Init") return Effect.succeed(l)
        return Effect.zipRight(boundSignal.wait, loop)
      })
      return loop
    })

    return Dhcp.of({
      state: () => client.state,
      lease: () => client.lease,
      awaitBound,
      stats
    })
  })

export const layer = (opts: DhcpOptions = {}): Layer.Layer<Dhcp, import("./Udp.js").UdpError, Udp | Interface | Ethernet> =>
  Layer.scoped(Dhcp, make(opts))

