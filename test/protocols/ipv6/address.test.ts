import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { formatMac, parseMac } from "../../../src/protocols/address.js"
import * as A from "../../../src/protocols/ipv6/address.js"

/** The WHATWG URL host serializer: an independent RFC 5952-style formatter (and parser) to check ours against. */
const viaUrl = (s: string): string | undefined => {
  try {
    return new URL(`http://[${s}]/`).hostname.slice(1, -1)
  } catch {
    return undefined
  }
}

const p = (s: string): A.Ipv6Address => {
  const a = A.parseIpv6(s)
  if (a === undefined) throw new Error(`test address ${s} does not parse`)
  return a
}

const u16 = fc.nat(0xffff)
/** A group that is zero half of the time, so runs of zeros (the interesting case for "::") are common. */
const sparse = fc.oneof(fc.constant(0), u16)
/**
 * Addresses only from the documentation prefix 2001:db8::/32 and link-local fe80::/10 (the project's
 * address rule), with sparse groups after the prefix.
 */
const addr: fc.Arbitrary<A.Ipv6Address> = fc.oneof(
  fc.tuple(sparse, sparse, sparse, sparse, sparse, sparse).map(([a, b, c, d, e, f]) => A.ipv6(0x2001, 0x0db8, a, b, c, d, e, f)),
  fc.tuple(fc.nat(0x3f), sparse, sparse, sparse, sparse, sparse, sparse, sparse).map(([h, a, b, c, d, e, f, g]) =>
    A.ipv6(0xfe80 | h, a, b, c, d, e, f, g)
  )
)

describe("IPv6 address representation", () => {
  it("is eight 16-bit groups: equal addresses are ===, Map keys and ordered numerically", () => {
    const a = A.ipv6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)
    const b = p("2001:db8::1")
    expect(a === b).toBe(true)
    expect(a.length).toBe(8)
    expect(A.groups(a)).toEqual([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1])
    const m = new Map([[a, "x"]])
    expect(m.get(p("2001:0DB8:0:0:0:0:0:0001"))).toBe("x")
    // ordering by group, including groups whose code units are surrogates (0xd800..0xdfff)
    expect(p("2001:db8::1") < p("2001:db8::2")).toBe(true)
    expect(p("2001:db8::ffff") < p("2001:db8::1:0")).toBe(true)
    expect(p("2001:db8::d800") < p("2001:db8::e000")).toBe(true)
    expect(p("fe80::1") > p("2001:db8:ffff::")).toBe(true)
  })

  it("orders like the 128-bit number (property)", () => {
    fc.assert(
      fc.property(addr, addr, (a, b) => {
        const n = (x: A.Ipv6Address): bigint => A.groups(x).reduce((acc, g) => (acc << 16n) | BigInt(g), 0n)
        expect(a < b).toBe(n(a) < n(b))
        expect(a === b).toBe(n(a) === n(b))
      })
    )
  })

  it("readIpv6/writeIpv6 round-trip at any offset and touch exactly 16 bytes in network order (property)", () => {
    fc.assert(
      fc.property(addr, fc.nat(8), (a, o) => {
        const b = new Uint8Array(32).fill(0xaa)
        A.writeIpv6(b, o, a)
        expect(A.readIpv6(b, o)).toBe(a)
        for (let i = 0; i < 32; i++) if (i < o || i >= o + 16) expect(b[i]).toBe(0xaa)
        const dv = new DataView(b.buffer)
        for (let i = 0; i < 8; i++) expect(dv.getUint16(o + 2 * i)).toBe(A.group(a, i))
      })
    )
  })
})

describe("IPv6 text (RFC 4291 §2.2 in, RFC 5952 out)", () => {
  it("parses every RFC 4291 form", () => {
    const one = A.ipv6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)
    for (const s of ["2001:db8:0:0:0:0:0:1", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:DB8::1", "2001:db8::0:1", "2001:db8:0::0:0:1", "2001:db8::0.0.0.1"]) {
      expect(A.parseIpv6(s), s).toBe(one)
    }
    expect(A.parseIpv6("::")).toBe(A.IPV6_UNSPECIFIED)
    expect(A.parseIpv6("fe80::")).toBe(A.LINK_LOCAL_PREFIX)
    expect(A.parseIpv6("ff02::1")).toBe(A.IPV6_ALL_NODES)
    expect(A.parseIpv6("2001:db8:1:2:3:4:5::")).toBe(A.ipv6(0x2001, 0xdb8, 1, 2, 3, 4, 5, 0))
    expect(A.parseIpv6("2001:db8::198.51.100.7")).toBe(A.ipv6(0x2001, 0xdb8, 0, 0, 0, 0, 0xc633, 0x6407))
    expect(A.parseIpv6("2001:db8:1:2:3:4:192.0.2.255")).toBe(A.ipv6(0x2001, 0xdb8, 1, 2, 3, 4, 0xc000, 0x02ff))
    expect(A.parseIpv6("fe80::200:5eff:fe00:5301")).toBe(A.ipv6(0xfe80, 0, 0, 0, 0x200, 0x5eff, 0xfe00, 0x5301))
  })

  it("rejects what is not an RFC 4291 address", () => {
    const bad = [
      "", ":", ":::", "2001:db8", "2001:db8:0:0:0:0:0", "2001:db8:0:0:0:0:0:1:2", "2001:db8::1::2", "2001:db8:::1",
      ":2001:db8::1", "2001:db8::1:", "2001:db8:0:0:0:0:0:1::", "::2001:db8:0:0:0:0:0:1", "2001:db8::12345", "2001:db8::g",
      "2001:db8::1%eth0", "fe80::1%1", "[2001:db8::1]", " 2001:db8::1", "2001:db8::1 ", "2001:db8::1/64",
      "2001:db8::256.0.0.1", "2001:db8::1.2.3", "2001:db8::01.2.3.4", "2001:db8::1.2.3.4:1", "198.51.100.1::",
      "2001:db8:1:2:3:4:5:1.2.3.4", "2001:db8::-1", "2001:db8::+1", "2001:db8:: 1", "0x2001:db8::1"
    ]
    for (const s of bad) {
      expect(A.parseIpv6(s), s).toBeUndefined()
      expect(viaUrl(s), s).toBeUndefined()
    }
  })

  it("formats in RFC 5952 form: lower case, no leading zeros, the first longest zero run as ::, never a lone 0", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // equal runs: the first (§4.2.3)
      ["2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"], // the longest run, not the first zero (§4.2.3)
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // one zero group stays "0" (§4.2.2)
      ["2001:db8:1:1:1:1:1:0", "2001:db8:1:1:1:1:1:0"],
      ["2001:db8::", "2001:db8::"],
      ["fe80:0:0:0:0200:5eff:fe00:5301", "fe80::200:5eff:fe00:5301"],
      ["0:0:0:0:0:0:0:0", "::"],
      ["ff02:0:0:0:0:1:ff00:1", "ff02::1:ff00:1"],
      ["2001:db8::198.51.100.7", "2001:db8::c633:6407"] // no mixed notation on output
    ]
    for (const [input, want] of cases) expect(A.formatIpv6(p(input)), input).toBe(want)
  })

  it("formatIpv6 agrees with the WHATWG URL serializer, and parse(format(a)) === a (property)", () => {
    fc.assert(
      fc.property(addr, (a) => {
        const s = A.formatIpv6(a)
        expect(s).toBe(viaUrl(s))
        expect(A.parseIpv6(s)).toBe(a)
      })
    )
  })

  it("parses any writing of an address: full, zero-padded, upper case, any zero run compressed, dotted tail (property)", () => {
    fc.assert(
      fc.property(addr, fc.boolean(), fc.boolean(), fc.boolean(), fc.nat(7), (a, pad, upper, dotted, at) => {
        const g = A.groups(a).map((x) => (pad ? x.toString(16).padStart(4, "0") : x.toString(16)))
        let parts: Array<string> = g
        if (dotted) {
          const hi = A.group(a, 6)
          const lo = A.group(a, 7)
          parts = [...g.slice(0, 6), `${hi >>> 8}.${hi & 0xff}.${lo >>> 8}.${lo & 0xff}`]
        }
        let s = parts.join(":")
        // compress the zero run starting at `at`, when there is one (and it does not split the dotted quad)
        const groupsN = A.groups(a)
        if (groupsN[at] === 0 && !(dotted && at >= 6)) {
          let end = at
          while (end < (dotted ? 6 : 8) && groupsN[end] === 0) end++
          const before = parts.slice(0, at).join(":")
          const after = parts.slice(end).join(":")
          s = `${before}::${after}`
        }
        if (upper) s = s.toUpperCase()
        expect(A.parseIpv6(s), s).toBe(a)
        expect(viaUrl(s), s).toBe(A.formatIpv6(a))
      })
    )
  })

  it("parseIpv6 never throws and returns undefined or an 8-group address on arbitrary strings (property)", () => {
    const alphabet = fc.constantFrom(..."0123456789abcdefABCDEF:.%/ g".split(""))
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 50 }).map((xs) => xs.join("")), (s) => {
        const r = A.parseIpv6(s)
        if (r !== undefined) {
          expect(r.length).toBe(8)
          // whatever we accept, the URL parser accepts as the same address
          expect(viaUrl(s)).toBe(A.formatIpv6(r))
        }
      })
    )
  })

  it("parseIpv6Prefix takes ADDR/LEN with LEN 0..128", () => {
    expect(A.parseIpv6Prefix("2001:db8::1/64")).toEqual({ address: p("2001:db8::1"), prefixLen: 64 })
    expect(A.parseIpv6Prefix("fe80::/10")).toEqual({ address: A.LINK_LOCAL_PREFIX, prefixLen: 10 })
    expect(A.parseIpv6Prefix("2001:db8::/0")).toEqual({ address: p("2001:db8::"), prefixLen: 0 })
    expect(A.parseIpv6Prefix("2001:db8::1/128")?.prefixLen).toBe(128)
    for (const s of ["2001:db8::1", "2001:db8::1/129", "2001:db8::1/064", "2001:db8::1/", "2001:db8::1/-1", "2001:db8::1/6 4", "2001:db8::g/64", "/64"]) {
      expect(A.parseIpv6Prefix(s), s).toBeUndefined()
    }
  })
})

describe("IPv6 prefixes", () => {
  it("inPrefix at the edges", () => {
    const a = p("2001:db8:1234:5678::1")
    expect(A.inPrefix(a, p("2001:db8::"), 32)).toBe(true)
    expect(A.inPrefix(a, p("2001:db8:1234::"), 48)).toBe(true)
    expect(A.inPrefix(a, p("2001:db8:1234::"), 49)).toBe(true) // 0x5678 starts with a 0 bit
    expect(A.inPrefix(a, p("2001:db8:1234::"), 50)).toBe(false) // ... and then a 1
    expect(A.inPrefix(a, p("2001:db8:1234:5678::"), 64)).toBe(true)
    expect(A.inPrefix(a, p("2001:db8:1234:5679::"), 64)).toBe(false)
    expect(A.inPrefix(a, p("2001:db8:1234:5679::"), 63)).toBe(true)
    expect(A.inPrefix(a, a, 128)).toBe(true)
    expect(A.inPrefix(a, p("2001:db8:1234:5678::2"), 128)).toBe(false)
    expect(A.inPrefix(a, p("fe80::"), 0)).toBe(true)
    expect(A.inPrefix(p("fe80::1"), p("fe80::"), 10)).toBe(true)
    expect(A.inPrefix(p("febf:ffff::1"), p("fe80::"), 10)).toBe(true)
    expect(A.inPrefix(A.IPV6_ALL_NODES, p("fe80::"), 10)).toBe(false) // ff02: 1111 1111 00.. against 1111 1110 10..
  })

  it("inPrefix(a, p, n) exactly when maskPrefix(a, n) === maskPrefix(p, n), and commonPrefixLen is the largest such n (property)", () => {
    fc.assert(
      fc.property(addr, addr, fc.nat(128), (a, b, n) => {
        expect(A.inPrefix(a, b, n)).toBe(A.maskPrefix(a, n) === A.maskPrefix(b, n))
        const c = A.commonPrefixLen(a, b)
        expect(A.inPrefix(a, b, c)).toBe(true)
        if (c < 128) expect(A.inPrefix(a, b, c + 1)).toBe(false)
        expect(A.commonPrefixLen(a, b)).toBe(A.commonPrefixLen(b, a))
      })
    )
  })

  it("maskPrefix clears exactly the host bits", () => {
    const a = p("2001:db8:abcd:ef01:2345:6789:abcd:ef01")
    expect(A.formatIpv6(A.maskPrefix(a, 64))).toBe("2001:db8:abcd:ef01::")
    expect(A.formatIpv6(A.maskPrefix(a, 36))).toBe("2001:db8:a000::")
    expect(A.formatIpv6(A.maskPrefix(a, 127))).toBe("2001:db8:abcd:ef01:2345:6789:abcd:ef00")
    expect(A.maskPrefix(a, 128)).toBe(a)
    expect(A.maskPrefix(a, 0)).toBe(A.IPV6_UNSPECIFIED)
  })
})

describe("IPv6 kinds of address", () => {
  it("link-local is fe80::/10, multicast ff00::/8 with its scope", () => {
    expect(A.isLinkLocal(p("fe80::1"))).toBe(true)
    expect(A.isLinkLocal(p("febf::1"))).toBe(true)
    expect(A.isLinkLocal(A.IPV6_ALL_NODES)).toBe(false)
    expect(A.isLinkLocal(p("2001:db8::1"))).toBe(false)
    expect(A.isMulticast(A.IPV6_ALL_NODES)).toBe(true)
    expect(A.isMulticast(p("fe80::1"))).toBe(false)
    expect(A.multicastScope(A.IPV6_ALL_NODES)).toBe(2)
    expect(A.isUnspecified(p("::"))).toBe(true)
    expect(A.isUnspecified(p("2001:db8::"))).toBe(false)
  })

  it("invalid sources: multicast and loopback; the unspecified address is left to the caller", () => {
    expect(A.isInvalidSource(A.IPV6_ALL_NODES)).toBe(true)
    expect(A.isInvalidSource(A.solicitedNode(p("2001:db8::1")))).toBe(true)
    expect(A.isInvalidSource(A.IPV6_LOOPBACK)).toBe(true)
    expect(A.isInvalidSource(A.IPV6_UNSPECIFIED)).toBe(false)
    expect(A.isInvalidSource(p("2001:db8::1"))).toBe(false)
    expect(A.isInvalidSource(p("fe80::1"))).toBe(false)
  })

  it("solicited-node address: ff02::1:ff and the low 24 bits (RFC 4291 §2.7.1)", () => {
    expect(A.formatIpv6(A.solicitedNode(p("2001:db8::1")))).toBe("ff02::1:ff00:1")
    expect(A.formatIpv6(A.solicitedNode(p("fe80::200:5eff:fe00:5301")))).toBe("ff02::1:ff00:5301")
    expect(A.formatIpv6(A.solicitedNode(p("2001:db8::12:3456:789a")))).toBe("ff02::1:ff56:789a")
    expect(A.isSolicitedNode(p("ff02::1:ff56:789a"))).toBe(true)
    expect(A.isSolicitedNode(p("ff02::1:fe56:789a"))).toBe(false)
    expect(A.isSolicitedNode(p("ff02::2:ff56:789a"))).toBe(false)
    expect(A.isSolicitedNode(A.IPV6_ALL_NODES)).toBe(false)
  })

  it("solicitedNode(a) is a solicited-node address sharing a's low 24 bits, the same for addresses that share them (property)", () => {
    fc.assert(
      fc.property(addr, addr, (a, b) => {
        const s = A.solicitedNode(a)
        expect(A.isSolicitedNode(s)).toBe(true)
        expect(A.isMulticast(s)).toBe(true)
        expect(A.multicastScope(s)).toBe(2)
        expect(A.inPrefix(s, p("ff02::1:ff00:0"), 104)).toBe(true)
        const low24 = (x: A.Ipv6Address) => ((A.group(x, 6) & 0xff) << 16) | A.group(x, 7)
        expect(low24(s)).toBe(low24(a))
        expect(A.solicitedNode(b) === s).toBe(low24(a) === low24(b))
      })
    )
  })
})

describe("IPv6 over Ethernet (RFC 2464)", () => {
  it("the EUI-64 interface identifier and link-local address of a MAC", () => {
    // RFC 7042 documentation MAC; the Linux kernel forms fe80::200:5eff:fe00:5301 from it (capture6.sh)
    const m = parseMac("00:00:5e:00:53:01")!
    expect(A.formatIpv6(A.interfaceIdFromMac(m))).toBe("::200:5eff:fe00:5301")
    expect(A.formatIpv6(A.linkLocalFromMac(m))).toBe("fe80::200:5eff:fe00:5301")
    // a locally administered MAC has the U/L bit set; inverted, it is clear in the identifier
    expect(A.formatIpv6(A.linkLocalFromMac(parseMac("02:00:5e:10:00:01")!))).toBe("fe80::5eff:fe10:1")
    expect(A.formatIpv6(A.withInterfaceId(p("2001:db8:1:2::"), A.interfaceIdFromMac(m)))).toBe("2001:db8:1:2:200:5eff:fe00:5301")
  })

  it("the EUI-64 identifier holds the MAC around ff:fe with one bit flipped, and is link-local under fe80::/64 (property)", () => {
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 48 - 1 }), (n) => {
        const m = n as Parameters<typeof A.interfaceIdFromMac>[0]
        const bytes = formatMac(m).split(":").map((x) => parseInt(x, 16))
        const iid = new Uint8Array(16)
        A.writeIpv6(iid, 0, A.interfaceIdFromMac(m))
        expect([...iid.subarray(0, 8)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0])
        expect([...iid.subarray(8)]).toEqual([bytes[0]! ^ 2, bytes[1], bytes[2], 0xff, 0xfe, bytes[3], bytes[4], bytes[5]])
        const ll = A.linkLocalFromMac(m)
        expect(A.isLinkLocal(ll)).toBe(true)
        expect(A.inPrefix(ll, A.LINK_LOCAL_PREFIX, 64)).toBe(true)
      })
    )
  })

  it("multicast MAC: 33:33 and the last 32 bits (RFC 2464 §7)", () => {
    expect(formatMac(A.multicastMac(A.IPV6_ALL_NODES))).toBe("33:33:00:00:00:01")
    expect(formatMac(A.multicastMac(A.solicitedNode(p("2001:db8::12:3456:789a"))))).toBe("33:33:ff:56:78:9a")
    expect(formatMac(A.multicastMac(A.IPV6_ALL_MLDV2_ROUTERS))).toBe("33:33:00:00:00:16")
  })
})
