/**
 * ICMP: answers echo requests (any size the reassembler admits; replies over the MTU go out fragmented)
 * and counts what else arrives. Destination unreachable errors about our own datagrams go to the
 * transport that sent them (Ipv4.deliverIcmpError), which decides what to do.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as IcmpWire from "../protocols/icmp/wire.js"
import * as Ip from "../protocols/ipv4/wire.js"
import { countDrop, type DropCounts } from "./Counters.js"
import { Interface } from "./Interface.js"
import { Ipv4, L4_OFFSET } from "./Ipv4.js"

export interface IcmpStats {
  echoRequestsIn: number
  echoRepliesOut: number
  echoRepliesIn: number
  unreachableIn: number
  otherIn: number
  readonly drops: DropCounts
}

export interface IcmpShape {
  readonly stats: IcmpStats
}

export class Icmp extends Context.Tag("@miniperf/Icmp")<Icmp, IcmpShape>() {}

export const make = Effect.gen(function* () {
  const ip = yield* Ipv4
  const iface = yield* Interface
  const stats: IcmpStats = { echoRequestsIn: 0, echoRepliesOut: 0, echoRepliesIn: 0, unreachableIn: 0, otherIn: 0, drops: {} }

  ip.register(Ip.PROTO_ICMP, (h, payload, _frame, _trusted, nowMs) => {
    // ICMP has no pseudo-header and NICs don't offload it: always verify.
    const r = IcmpWire.parse(payload, true)
    if (typeof r === "string") {
      countDrop(stats.drops, r)
      return
    }
    switch (r.type) {
      case IcmpWire.TYPE_ECHO_REQUEST: {
        stats.echoRequestsIn++
        if (iface.isBroadcast(h.dst)) return // no replies to broadcast pings (RFC 1122 allows either)
        const f = ip.alloc(payload.length)
        f.set(payload, L4_OFFSET)
        IcmpWire.emit({ type: IcmpWire.TYPE_ECHO_REPLY, code: 0, rest: r.rest, payloadLen: r.payloadLen }, f.subarray(L4_OFFSET))
        if (ip.send(f, h.src, Ip.PROTO_ICMP, payload.length, { tos: h.tos })) stats.echoRepliesOut++
        return
      }
      case IcmpWire.TYPE_ECHO_REPLY:
        stats.echoRepliesIn++
        return
      case IcmpWire.TYPE_DEST_UNREACHABLE:
        stats.unreachableIn++
        ip.deliverIcmpError(r.type, r.code, h.src, IcmpWire.payload(payload), nowMs)
        return
      default:
        stats.otherIn++
    }
  })

  return Icmp.of({ stats })
})

export const layer: Layer.Layer<Icmp, never, Ipv4 | Interface> = Layer.effect(Icmp, make)
