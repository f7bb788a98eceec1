/**
 * ICMPv6 (RFC 4443) above the Ipv6 layer: answers echo requests (any size the reassembler admits; replies
 * over the MTU go out fragmented) and counts what else arrives. Neighbor Discovery and MLD never come here:
 * the Ipv6 layer handles them, as ARP sits beside IPv4.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Cs from "../protocols/checksum.js"
import * as Icmp6 from "../protocols/icmpv6/wire.js"
import { isMulticast } from "../protocols/ipv6/address.js"
import * as Ip6 from "../protocols/ipv6/wire.js"
import { countDrop, type DropCounts } from "./Counters.js"
import { Ipv6, L4_OFFSET6 } from "./Ipv6.js"

export interface Icmpv6Stats {
  echoRequestsIn: number
  echoRepliesOut: number
  echoRepliesIn: number
  errorsIn: number
  otherIn: number
  readonly drops: DropCounts
}

export interface Icmpv6Shape {
  readonly stats: Icmpv6Stats
}

export class Icmpv6 extends Context.Tag("@miniperf/Icmpv6")<Icmpv6, Icmpv6Shape>() {}

export const make = Effect.gen(function* () {
  const ip = yield* Ipv6
  const stats: Icmpv6Stats = { echoRequestsIn: 0, echoRepliesOut: 0, echoRepliesIn: 0, errorsIn: 0, otherIn: 0, drops: {} }

  ip.register(Ip6.NH_ICMPV6, ({ ip: h, payload, nowMs }) => {
    const r = Icmp6.parse(payload, Cs.pseudoV6(h.src, h.dst, Ip6.NH_ICMPV6, payload.length))
    if (typeof r === "string") {
      countDrop(stats.drops, r)
      return
    }
    switch (r.type) {
      case Icmp6.TYPE_ECHO_REQUEST: {
        stats.echoRequestsIn++
        if (r.code !== 0) {
          countDrop(stats.drops, "Malformed")
          return
        }
        // the reply comes from the address asked (RFC 4443 §4.2), or for a group from our best source
        const src = isMulticast(h.dst) ? ip.selectSource(h.src) : h.dst
        if (src === undefined) return
        const f = ip.alloc(payload.length)
        f.set(payload, L4_OFFSET6)
        Icmp6.emit(
          { type: Icmp6.TYPE_ECHO_REPLY, code: 0, rest: r.rest, payloadLen: r.payloadLen },
          f.subarray(L4_OFFSET6, L4_OFFSET6 + payload.length),
          Cs.pseudoV6(src, h.src, Ip6.NH_ICMPV6, payload.length)
        )
        if (ip.send(f, src, h.src, Ip6.NH_ICMPV6, payload.length, { trafficClass: h.trafficClass })) stats.echoRepliesOut++
        return
      }
      case Icmp6.TYPE_ECHO_REPLY:
        stats.echoRepliesIn++
        return
      default:
        if (Icmp6.isError(r.type)) {
          stats.errorsIn++
          // the quoted packet goes to the transport that sent it (destination unreachable to UDP's sender)
          ip.deliverIcmpError(r.type, r.code, h.src, payload.subarray(Icmp6.HEADER_LEN), nowMs)
        } else stats.otherIn++
    }
  })

  return Icmpv6.of({ stats })
})

export const layer: Layer.Layer<Icmpv6, never, Ipv6> = Layer.effect(Icmpv6, make)
