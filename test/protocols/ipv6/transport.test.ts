/** TCP and UDP over IPv6: the transport codecs take the IPv6 pseudo-header sum as they take the IPv4 one. */
import { describe, expect, it } from "vitest"
import { setU16 } from "../../../src/protocols/bytes.js"
import * as Cs from "../../../src/protocols/checksum.js"
import * as Ip6 from "../../../src/protocols/ipv6/wire.js"
import * as Tcp from "../../../src/protocols/tcp/wire.js"
import * as Udp from "../../../src/protocols/udp/wire.js"
import { copy } from "../common/fixtures.js"
import { IP1, IP2, ip6Of, parsed } from "./helpers.js"

/** The upper-layer bytes of a captured packet and its pseudo-header sum. */
const l4Of = (name: string) => {
  const b = ip6Of(name)
  const r = parsed(b)
  const c = Ip6.walk(b, r)
  if (c._tag !== "Upper") throw new Error(name)
  const l4 = b.subarray(c.offset, 40 + r.payloadLen)
  return { l4, pseudo: Cs.pseudoV6(r.src, r.dst, c.proto, l4.length) }
}

describe("TCP and UDP over IPv6", () => {
  it("the kernel's SYN parses with its checksum verified: MSS 1440 (1500 - 40 - 20), SACK, timestamps, window scale", () => {
    const { l4, pseudo } = l4Of("ipv6-tcp-syn")
    const r = Tcp.parse(l4, pseudo, true)
    expect(r).toMatchObject({ dstPort: 5002, flags: Tcp.SYN, mss: 1440, sackPermitted: true, hasTs: true, wscale: 10, payloadLen: 0 })
    expect(Tcp.parse(l4, Cs.pseudoV6(IP2, IP1, Ip6.NH_TCP, l4.length + 1), true)).toBe(Tcp.Drop.BadChecksum)
  })

  it("UDP datagrams parse with their checksum verified, with or without a destination options header before them", () => {
    const closed = l4Of("ipv6-udp-closed")
    expect(Udp.parseV6(closed.l4, closed.pseudo, true)).toEqual({ srcPort: expect.any(Number), dstPort: 9999, payloadLen: 21 })
    const opts = l4Of("ipv6-udp-dstopts")
    expect(Udp.parseV6(opts.l4, opts.pseudo, true)).toMatchObject({ dstPort: 9998, payloadLen: 22 })
    const bad = copy(closed.l4)
    bad[8] = bad[8]! ^ 1
    expect(Udp.parseV6(bad, closed.pseudo, true)).toBe("BadChecksum")
  })

  it("a zero UDP checksum is dropped over IPv6 (RFC 8200 §8.1) though it means 'none' over IPv4", () => {
    const { l4, pseudo } = l4Of("ipv6-udp-closed")
    const zero = copy(l4)
    setU16(zero, 6, 0)
    expect(Udp.parseV6(zero, pseudo, true)).toBe("BadChecksum")
    expect(Udp.parse(zero, pseudo, true)).toMatchObject({ dstPort: 9999 })
    expect(Udp.parseV6(zero, pseudo, false)).toMatchObject({ dstPort: 9999 }) // the NIC vouched
    expect(Udp.parseV6(zero.subarray(0, 7), pseudo, true)).toBe("Truncated")
  })

  it("Udp.emit with the IPv6 pseudo-header writes what the kernel wrote", () => {
    const { l4, pseudo } = l4Of("ipv6-udp-closed")
    const r = Udp.parseV6(l4, pseudo, true)
    if (typeof r === "string") throw new Error(r)
    const b = copy(l4)
    b.fill(0, 0, 8)
    Udp.emit(r, b, pseudo, true)
    expect(b).toEqual(l4)
  })
})
