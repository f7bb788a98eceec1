import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { parseMac, type MacAddress } from "../../../src/protocols/address.js"
import { toHex } from "../../../src/protocols/bytes.js"
import * as Cs from "../../../src/protocols/checksum.js"
import { isDrop } from "../../../src/protocols/drop.js"
import * as Nd from "../../../src/protocols/icmpv6/nd.js"
import * as Icmp6 from "../../../src/protocols/icmpv6/wire.js"
import * as A from "../../../src/protocols/ipv6/address.js"
import * as Ip6 from "../../../src/protocols/ipv6/wire.js"
import { addr, addrArb, IP1, IP2, ip6Of, LL1, LL2, parsed } from "../ipv6/helpers.js"

const MAC1 = parseMac("00:00:5e:00:53:01")!
const MAC2 = parseMac("00:00:5e:00:53:02")!

/** A captured ND message: its ICMPv6 bytes (checksum verified) and IPv6 context. */
const ndOf = (name: string) => {
  const b = ip6Of(name)
  const r = parsed(b)
  const m = b.subarray(40, 40 + r.payloadLen)
  const pseudo = Cs.pseudoV6(r.src, r.dst, Ip6.NH_ICMPV6, m.length)
  if (isDrop(Icmp6.parse(m, pseudo))) throw new Error(`${name}: checksum`)
  return { m, pseudo, ip: { src: r.src, dst: r.dst, hopLimit: r.hopLimit } }
}

const golden: ReadonlyArray<readonly [string, Nd.NdRepr]> = [
  ["ipv6-rs", { _tag: "RouterSolicitation", sourceLinkAddr: MAC1 }],
  [
    "ipv6-ra",
    {
      _tag: "RouterAdvertisement",
      curHopLimit: 64,
      managed: false,
      other: false,
      routerLifetimeS: 600,
      reachableTimeMs: 0,
      retransTimerMs: 0,
      sourceLinkAddr: MAC2,
      mtu: 1500,
      prefixes: [{ prefix: addr("2001:db8::"), prefixLen: 64, onLink: true, autonomous: true, validLifetimeS: 3600, preferredLifetimeS: 3600 }]
    }
  ],
  ["ipv6-ns", { _tag: "NeighborSolicitation", target: IP2, sourceLinkAddr: MAC1 }],
  ["ipv6-na", { _tag: "NeighborAdvertisement", router: false, solicited: true, override: true, target: IP2, targetLinkAddr: MAC2 }]
]

describe("Neighbor Discovery: captured messages", () => {
  for (const [name, repr] of golden) {
    it(`${name}: parse -> Repr, emit -> the captured bytes`, () => {
      const { m, pseudo, ip } = ndOf(name)
      expect(Nd.parse(m, ip)).toEqual(repr)
      expect(Nd.length(repr)).toBe(m.length)
      const b = new Uint8Array(m.length).fill(0xee)
      Nd.emit(repr, b, pseudo)
      expect(toHex(b)).toBe(toHex(m))
    })
  }

  it("the kernel's DAD probe: source ::, to the solicited-node group, no link-layer address, its nonce option skipped", () => {
    const { m, ip } = ndOf("ipv6-dad-ns")
    expect(ip.src).toBe(A.IPV6_UNSPECIFIED)
    expect(ip.dst).toBe(A.solicitedNode(IP1))
    expect(m[24]).toBe(14) // RFC 7527 nonce: an option we do not know
    expect(Nd.parse(m, ip)).toEqual({ _tag: "NeighborSolicitation", target: IP1, sourceLinkAddr: undefined })
  })

  it("dnsmasq's router advertisement from a global address is invalid (§6.1.2: the source must be link-local)", () => {
    const { m, ip } = ndOf("ipv6-ra-global-source")
    expect(ip.src).toBe(IP2)
    expect(Nd.parse(m, ip)).toBe("NdInvalid")
    expect(Nd.parse(m, { ...ip, src: LL2 })).toMatchObject({ _tag: "RouterAdvertisement", routerLifetimeS: 600 })
  })
})

describe("Neighbor Discovery: validity checks (RFC 4861 §6.1, §7.1)", () => {
  const ns = ndOf("ipv6-ns")
  const na = ndOf("ipv6-na")
  const rs = ndOf("ipv6-rs")
  const ra = ndOf("ipv6-ra")
  const with_ = (m: Uint8Array, i: number, v: number): Uint8Array => {
    const b = Uint8Array.from(m)
    b[i] = v
    return b
  }

  it("hop limit must be 255: anything else came through a router", () => {
    for (const x of [ns, na, rs, ra]) {
      expect(Nd.parse(x.m, { ...x.ip, hopLimit: 254 })).toBe("BadHopLimit")
      expect(Nd.parse(x.m, { ...x.ip, hopLimit: 64 })).toBe("BadHopLimit")
    }
  })

  it("code must be 0; the fixed part must be there", () => {
    expect(Nd.parse(with_(ns.m, 1, 1), ns.ip)).toBe("NdInvalid")
    expect(Nd.parse(ns.m.subarray(0, 23), ns.ip)).toBe("Truncated")
    expect(Nd.parse(ra.m.subarray(0, 15), ra.ip)).toBe("Truncated")
    expect(Nd.parse(rs.m.subarray(0, 7), rs.ip)).toBe("Truncated")
    expect(Nd.parse(na.m.subarray(0, 24), na.ip)).toMatchObject({ _tag: "NeighborAdvertisement", targetLinkAddr: undefined })
  })

  it("an option of length 0, or running past the message, drops it; so does a link-layer option not 6 bytes", () => {
    expect(Nd.parse(with_(ns.m, 25, 0), ns.ip)).toBe("BadOption")
    expect(Nd.parse(with_(ns.m, 25, 2), ns.ip)).toBe("BadOption")
    expect(Nd.parse(ns.m.subarray(0, 30), ns.ip)).toBe("BadOption")
    expect(Nd.parse(ns.m.subarray(0, 25), ns.ip)).toBe("BadOption")
    const twoUnit = new Uint8Array(24 + 16)
    twoUnit.set(ns.m.subarray(0, 24))
    twoUnit[24] = 1
    twoUnit[25] = 2 // a 16-byte source link-layer address: not Ethernet
    expect(Nd.parse(twoUnit, ns.ip)).toBe("BadOption")
    // the MTU and prefix options have fixed sizes; a prefix longer than 128 bits is nonsense
    const mtuAt = 16 + 32
    expect(ra.m[mtuAt]).toBe(5)
    expect(Nd.parse(with_(ra.m, 18, 129), ra.ip)).toBe("BadOption")
    expect(Nd.parse(with_(ra.m, 17, 3), ra.ip)).toBe("BadOption")
  })

  it("unknown options are skipped", () => {
    const b = new Uint8Array(24 + 16)
    b.set(ns.m.subarray(0, 24))
    b.set([253, 1, 1, 2, 3, 4, 5, 6], 24) // an experimental option
    b.set(ns.m.subarray(24), 32)
    expect(Nd.parse(b, ns.ip)).toEqual({ _tag: "NeighborSolicitation", target: IP2, sourceLinkAddr: MAC1 })
  })

  it("NS: the target is not multicast; from :: it goes to a solicited-node group without a link-layer address", () => {
    const solicit = (target: A.Ipv6Address, sll: MacAddress | undefined, ip: Nd.NdContext) => {
      const r: Nd.NdRepr = { _tag: "NeighborSolicitation", target, sourceLinkAddr: sll }
      const b = new Uint8Array(Nd.length(r))
      Nd.emit(r, b, 0)
      return Nd.parse(b, ip)
    }
    const dad = { src: A.IPV6_UNSPECIFIED, dst: A.solicitedNode(IP1), hopLimit: 255 }
    expect(solicit(A.IPV6_ALL_NODES, MAC1, ns.ip)).toBe("NdInvalid")
    expect(solicit(IP1, undefined, dad)).toMatchObject({ target: IP1 })
    expect(solicit(IP1, MAC1, dad)).toBe("NdInvalid")
    expect(solicit(IP1, undefined, { ...dad, dst: IP1 })).toBe("NdInvalid")
    expect(solicit(IP1, undefined, { ...dad, dst: A.IPV6_ALL_NODES })).toBe("NdInvalid")
  })

  it("NA: the target is not multicast; one sent to a multicast address is not solicited", () => {
    const advert = (solicited: boolean, target: A.Ipv6Address, dst: A.Ipv6Address) => {
      const r: Nd.NdRepr = { _tag: "NeighborAdvertisement", router: false, solicited, override: true, target, targetLinkAddr: MAC2 }
      const b = new Uint8Array(Nd.length(r))
      Nd.emit(r, b, 0)
      return Nd.parse(b, { src: IP2, dst, hopLimit: 255 })
    }
    expect(advert(true, IP2, IP1)).toMatchObject({ solicited: true })
    expect(advert(false, IP2, A.IPV6_ALL_NODES)).toMatchObject({ solicited: false }) // unsolicited, to all nodes
    expect(advert(true, IP2, A.IPV6_ALL_NODES)).toBe("NdInvalid")
    expect(advert(false, A.solicitedNode(IP2), IP1)).toBe("NdInvalid")
  })

  it("RS: from :: without a link-layer address only", () => {
    expect(Nd.parse(rs.m, { ...rs.ip, src: A.IPV6_UNSPECIFIED })).toBe("NdInvalid")
    expect(Nd.parse(rs.m.subarray(0, 8), { ...rs.ip, src: A.IPV6_UNSPECIFIED })).toEqual({ _tag: "RouterSolicitation", sourceLinkAddr: undefined })
  })

  it("at most MAX_PREFIXES prefix options are kept from one advertisement", () => {
    const prefixes = Array.from({ length: 20 }, (_, i) => ({
      prefix: A.ipv6(0x2001, 0xdb8, i, 0, 0, 0, 0, 0),
      prefixLen: 64,
      onLink: true,
      autonomous: true,
      validLifetimeS: 100,
      preferredLifetimeS: 50
    }))
    const r: Nd.NdRepr = { _tag: "RouterAdvertisement", curHopLimit: 64, managed: false, other: false, routerLifetimeS: 0, reachableTimeMs: 0, retransTimerMs: 0, sourceLinkAddr: undefined, mtu: undefined, prefixes }
    const b = new Uint8Array(Nd.length(r))
    Nd.emit(r, b, 0)
    const p = Nd.parse(b, { src: LL2, dst: A.IPV6_ALL_NODES, hopLimit: 255 })
    if (isDrop(p) || p._tag !== "RouterAdvertisement") throw new Error(String(p))
    expect(p.prefixes).toEqual(prefixes.slice(0, Nd.MAX_PREFIXES))
  })
})

describe("Neighbor Discovery: properties", () => {
  const mac = fc.nat({ max: 2 ** 48 - 1 }).map((n) => n as MacAddress)
  const optMac = fc.option(mac, { nil: undefined })
  const unicast = addrArb
  const repr: fc.Arbitrary<Nd.NdRepr> = fc.oneof(
    optMac.map((m): Nd.NdRepr => ({ _tag: "RouterSolicitation", sourceLinkAddr: m })),
    fc
      .record({
        curHopLimit: fc.nat(255),
        managed: fc.boolean(),
        other: fc.boolean(),
        routerLifetimeS: fc.nat(0xffff),
        reachableTimeMs: fc.nat({ max: 0xffffffff }),
        retransTimerMs: fc.nat({ max: 0xffffffff }),
        sourceLinkAddr: optMac,
        mtu: fc.option(fc.nat({ max: 0xffffffff }), { nil: undefined }),
        prefixes: fc.array(
          fc.record({
            prefix: unicast,
            prefixLen: fc.nat(128),
            onLink: fc.boolean(),
            autonomous: fc.boolean(),
            validLifetimeS: fc.nat({ max: 0xffffffff }),
            preferredLifetimeS: fc.nat({ max: 0xffffffff })
          }),
          { maxLength: 4 }
        )
      })
      .map((r): Nd.NdRepr => ({ _tag: "RouterAdvertisement", ...r })),
    fc.record({ target: unicast, sourceLinkAddr: optMac }).map((r): Nd.NdRepr => ({ _tag: "NeighborSolicitation", ...r })),
    fc
      .record({ router: fc.boolean(), solicited: fc.boolean(), override: fc.boolean(), target: unicast, targetLinkAddr: optMac })
      .map((r): Nd.NdRepr => ({ _tag: "NeighborAdvertisement", ...r }))
  )

  it("parse(emit(r)) = r, and the emitted message verifies as ICMPv6 (property)", () => {
    fc.assert(
      fc.property(repr, (r) => {
        const ip = { src: LL1, dst: LL2, hopLimit: 255 }
        const b = new Uint8Array(Nd.length(r))
        const pseudo = Cs.pseudoV6(ip.src, ip.dst, 58, b.length)
        Nd.emit(r, b, pseudo)
        expect(Icmp6.parse(b, pseudo)).toMatchObject({ payloadLen: b.length - 8 })
        expect(Nd.isNd(b[0]!)).toBe(true)
        expect(Nd.parse(b, ip)).toEqual(r)
      })
    )
  })

  it("parse never throws on arbitrary bytes after an ND type (property)", () => {
    fc.assert(
      fc.property(fc.constantFrom(133, 134, 135, 136), fc.uint8Array({ maxLength: 120 }), addrArb, (type, body, dst) => {
        const b = new Uint8Array(1 + body.length)
        b[0] = type
        b.set(body, 1)
        const r = Nd.parse(b, { src: LL1, dst, hopLimit: 255 })
        if (!isDrop(r)) expect(["RouterSolicitation", "RouterAdvertisement", "NeighborSolicitation", "NeighborAdvertisement"]).toContain(r._tag)
      })
    )
    expect(Nd.parse(Uint8Array.of(137, 0, 0, 0, 0, 0, 0, 0), { src: LL1, dst: LL2, hopLimit: 255 })).toBe("Unsupported")
  })
})
