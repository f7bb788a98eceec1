import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { setU16, toHex } from "../../../src/protocols/bytes.js"
import * as Cs from "../../../src/protocols/checksum.js"
import { isDrop } from "../../../src/protocols/drop.js"
import * as Mld from "../../../src/protocols/icmpv6/mld.js"
import * as Icmp6 from "../../../src/protocols/icmpv6/wire.js"
import * as A from "../../../src/protocols/ipv6/address.js"
import * as Ip6 from "../../../src/protocols/ipv6/wire.js"
import { addrArb, IP1, ip6Of, LL1, parsed } from "../ipv6/helpers.js"

describe("MLDv2: the kernel's report at link-up", () => {
  const b = ip6Of("ipv6-mldv2-report")
  const r = parsed(b)
  const c = Ip6.walk(b, r)
  if (c._tag !== "Upper") throw new Error("walk")
  const m = b.subarray(c.offset, 40 + r.payloadLen)
  const pseudo = Cs.pseudoV6(r.src, r.dst, Ip6.NH_ICMPV6, m.length)
  const groups = [A.solicitedNode(LL1), A.solicitedNode(IP1)]

  it("goes from :: to ff02::16 with hop limit 1 and a router alert, and verifies", () => {
    expect([r.src, r.dst, r.hopLimit]).toEqual([A.IPV6_UNSPECIFIED, A.IPV6_ALL_MLDV2_ROUTERS, Mld.HOP_LIMIT])
    expect(c.routerAlert).toBe(true)
    expect(Icmp6.parse(m, pseudo)).toMatchObject({ type: Icmp6.TYPE_MLDV2_REPORT, code: 0 })
  })

  it("parseReport: one CHANGE_TO_EXCLUDE record without sources per solicited-node group", () => {
    expect(Mld.parseReport(m)).toEqual(groups.map((group) => ({ type: Mld.CHANGE_TO_EXCLUDE, group, sources: 0 })))
  })

  it("emitReport writes the same bytes", () => {
    const out = new Uint8Array(Mld.reportLength(groups.length)).fill(0xee)
    Mld.emitReport(out, groups, Mld.CHANGE_TO_EXCLUDE, pseudo)
    expect(toHex(out)).toBe(toHex(m))
  })
})

describe("MLDv2: reports and queries", () => {
  it("parseReport walks over records with sources and auxiliary data, and rejects cut ones", () => {
    const b = new Uint8Array(8 + 20 + 32 + 8 + 20)
    b[0] = Icmp6.TYPE_MLDV2_REPORT
    setU16(b, 6, 2)
    b[8] = Mld.MODE_IS_INCLUDE
    b[9] = 2 // two 32-bit words of auxiliary data
    setU16(b, 10, 2) // two sources
    A.writeIpv6(b, 12, A.solicitedNode(IP1))
    b[68] = Mld.MODE_IS_EXCLUDE
    A.writeIpv6(b, 72, A.IPV6_ALL_ROUTERS)
    expect(Mld.parseReport(b)).toEqual([
      { type: Mld.MODE_IS_INCLUDE, group: A.solicitedNode(IP1), sources: 2 },
      { type: Mld.MODE_IS_EXCLUDE, group: A.IPV6_ALL_ROUTERS, sources: 0 }
    ])
    for (const n of [7, 27, 60, 87]) expect(Mld.parseReport(b.subarray(0, n)), `${n}`).toBe("Truncated")
  })

  it("emitReport and parseReport agree for any set of groups (property)", () => {
    fc.assert(
      fc.property(fc.array(addrArb.map(A.solicitedNode), { maxLength: 10 }), fc.constantFrom(Mld.MODE_IS_EXCLUDE, Mld.CHANGE_TO_EXCLUDE), (groups, type) => {
        const b = new Uint8Array(Mld.reportLength(groups.length))
        const pseudo = Cs.pseudoV6(LL1, A.IPV6_ALL_MLDV2_ROUTERS, 58, b.length)
        Mld.emitReport(b, groups, type, pseudo)
        expect(isDrop(Icmp6.parse(b, pseudo))).toBe(false)
        expect(Mld.parseReport(b)).toEqual(groups.map((group) => ({ type, group, sources: 0 })))
      })
    )
  })

  it("the maximum response code: literal below 32768, then mantissa and exponent (RFC 3810 §5.1.3)", () => {
    expect(Mld.maxResponseDelayMs(10_000)).toBe(10_000)
    expect(Mld.maxResponseDelayMs(0x7fff)).toBe(32_767)
    expect(Mld.maxResponseDelayMs(0x8000)).toBe(32_768) // mant 0, exp 0: 0x1000 << 3
    expect(Mld.maxResponseDelayMs(0xffff)).toBe(8_387_584) // the largest, as the RFC gives it
    // monotonic over the whole code space
    let last = -1
    for (let code = 0; code <= 0xffff; code++) {
      const ms = Mld.maxResponseDelayMs(code)
      expect(ms).toBeGreaterThan(last)
      last = ms
    }
  })

  it("queries: 24 bytes is MLDv1 (delay in ms), 28 or more MLDv2; between is malformed", () => {
    const q = (len: number, code: number, group: A.Ipv6Address) => {
      const b = new Uint8Array(len)
      b[0] = Icmp6.TYPE_MLD_QUERY
      setU16(b, 4, code)
      A.writeIpv6(b, 8, group)
      return Mld.parseQuery(b)
    }
    expect(q(24, 0x8000, A.IPV6_UNSPECIFIED)).toEqual({ group: A.IPV6_UNSPECIFIED, maxResponseDelayMs: 0x8000, v1: true })
    expect(q(28, 0x8000, A.solicitedNode(IP1))).toEqual({ group: A.solicitedNode(IP1), maxResponseDelayMs: 32_768, v1: false })
    expect(q(44, 10_000, A.IPV6_UNSPECIFIED)).toMatchObject({ maxResponseDelayMs: 10_000, v1: false })
    expect(q(26, 0, A.IPV6_UNSPECIFIED)).toBe("Malformed")
    expect(q(23, 0, A.IPV6_UNSPECIFIED)).toBe("Truncated")
  })

  it("never reports ff02::1 or interface-local groups (RFC 3810 §6)", () => {
    expect(Mld.isReportable(A.IPV6_ALL_NODES)).toBe(false)
    expect(Mld.isReportable(A.ipv6(0xff01, 0, 0, 0, 0, 0, 0, 2))).toBe(false)
    expect(Mld.isReportable(A.solicitedNode(IP1))).toBe(true)
  })
})
