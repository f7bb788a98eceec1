import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { toHex, u16 } from "../../../src/protocols/bytes.js"
import * as Cs from "../../../src/protocols/checksum.js"
import { isDrop } from "../../../src/protocols/drop.js"
import * as A from "../../../src/protocols/ipv6/address.js"
import * as Ip6 from "../../../src/protocols/ipv6/wire.js"
import { copy, truncations } from "../common/fixtures.js"
import { addr, addrArb, fragmentHeader, IP1, IP2, ip6Of, LL1, LL2, optionsHeader, packet, parsed, routingHeader } from "./helpers.js"

const base = { src: IP1, dst: IP2, trafficClass: 0, hopLimit: 64 } as const
const back = { src: IP2, dst: IP1, trafficClass: 0, hopLimit: 64 } as const
const nd = { trafficClass: 0, flowLabel: 0, hopLimit: 255, nextHeader: Ip6.NH_ICMPV6 } as const

/** Captured packets (test/fixtures/wire, capture6.sh) and their fixed headers as tshark decodes them. */
const golden: ReadonlyArray<readonly [string, Ip6.Ipv6Repr]> = [
  ["ipv6-echo-request", { ...base, nextHeader: Ip6.NH_ICMPV6, flowLabel: 0x07adc, payloadLen: 64 }],
  ["ipv6-echo-reply", { ...back, nextHeader: Ip6.NH_ICMPV6, flowLabel: 0x0e27e6, payloadLen: 64 }],
  ["ipv6-frag-1", { ...base, nextHeader: Ip6.NH_FRAGMENT, flowLabel: 0x07adc, payloadLen: 1456 }],
  ["ipv6-frag-2", { ...base, nextHeader: Ip6.NH_FRAGMENT, flowLabel: 0x07adc, payloadLen: 1456 }],
  ["ipv6-frag-3", { ...base, nextHeader: Ip6.NH_FRAGMENT, flowLabel: 0x07adc, payloadLen: 1120 }],
  ["ipv6-mldv2-report", { src: A.IPV6_UNSPECIFIED, dst: A.IPV6_ALL_MLDV2_ROUTERS, trafficClass: 0, flowLabel: 0, hopLimit: 1, nextHeader: Ip6.NH_HOP_BY_HOP, payloadLen: 56 }],
  ["ipv6-dad-ns", { ...nd, src: A.IPV6_UNSPECIFIED, dst: A.solicitedNode(IP1), payloadLen: 32 }],
  ["ipv6-ns", { ...nd, src: IP1, dst: A.solicitedNode(IP2), payloadLen: 32 }],
  ["ipv6-na", { ...nd, src: IP2, dst: IP1, payloadLen: 32 }],
  ["ipv6-rs", { ...nd, src: LL1, dst: A.IPV6_ALL_ROUTERS, payloadLen: 16 }],
  ["ipv6-ra", { ...nd, src: LL2, dst: LL1, trafficClass: 0xc0, flowLabel: 0x2af28, payloadLen: 64 }],
  ["ipv6-tcp-syn", { ...base, nextHeader: Ip6.NH_TCP, flowLabel: 0x094dae, payloadLen: 40 }],
  ["ipv6-udp-closed", { ...base, nextHeader: Ip6.NH_UDP, flowLabel: 0x0e5ae9, payloadLen: 29 }],
  ["ipv6-udp-dstopts", { ...base, nextHeader: Ip6.NH_DEST_OPTS, flowLabel: 0x0e3c78, payloadLen: 38 }]
]

const reprArb: fc.Arbitrary<Ip6.Ipv6Repr> = fc.record({
  src: addrArb,
  dst: addrArb,
  nextHeader: fc.nat(255),
  hopLimit: fc.nat(255),
  trafficClass: fc.nat(255),
  flowLabel: fc.nat(0xfffff),
  payloadLen: fc.nat(600)
})

const walked = (b: Uint8Array, limits?: Ip6.WalkLimits): Ip6.Chain => Ip6.walk(b, parsed(b), limits)

describe("IPv6 wire: captured packets", () => {
  for (const [name, repr] of golden) {
    it(`${name}: parse -> Repr, emit -> the captured fixed header`, () => {
      const b = ip6Of(name)
      expect(Ip6.checkLen(b)).toBe(true)
      expect(Ip6.parse(b)).toEqual(repr)
      expect(Ip6.payload(b, repr).length).toBe(repr.payloadLen)
      const h = new Uint8Array(Ip6.HEADER_LEN)
      Ip6.emit(repr, h)
      expect(toHex(h)).toBe(toHex(b.subarray(0, Ip6.HEADER_LEN)))
    })

    it(`${name}: every truncation 0..n-1 is rejected`, () => {
      const bad: Array<string> = []
      for (const t of truncations(ip6Of(name))) {
        const got = [Ip6.checkLen(t), Ip6.parse(t)]
        if (got[0] !== false || got[1] !== "Truncated") bad.push(`len ${t.length}: ${JSON.stringify(got)}`)
      }
      expect(bad).toEqual([])
    })
  }

  it("the walk finds the upper layer of each unfragmented capture where tshark does", () => {
    const want: ReadonlyArray<readonly [string, number, number, number, boolean]> = [
      // name, proto, offset, namedAt, routerAlert
      ["ipv6-echo-request", Ip6.NH_ICMPV6, 40, 6, false],
      ["ipv6-na", Ip6.NH_ICMPV6, 40, 6, false],
      ["ipv6-tcp-syn", Ip6.NH_TCP, 40, 6, false],
      ["ipv6-udp-closed", Ip6.NH_UDP, 40, 6, false],
      ["ipv6-udp-dstopts", Ip6.NH_UDP, 48, 40, false], // destination options with option 0x1e (action: skip)
      ["ipv6-mldv2-report", Ip6.NH_ICMPV6, 48, 40, true] // hop-by-hop router alert
    ]
    for (const [name, proto, offset, namedAt, routerAlert] of want) {
      expect(walked(ip6Of(name)), name).toEqual({ _tag: "Upper", proto, offset, namedAt, atomicFragment: false, routerAlert })
    }
  })

  it("the fragments of ping -s 4000: offsets, M flag and identification as tshark reads them", () => {
    const frag = (offset: number, more: boolean) => ({
      _tag: "Fragment",
      nextHeader: Ip6.NH_ICMPV6,
      fragmentOffset: offset,
      more,
      ident: 0xca467c5b,
      headerAt: 40,
      namedAt: 6,
      dataAt: 48
    })
    expect(walked(ip6Of("ipv6-frag-1"))).toEqual(frag(0, true))
    expect(walked(ip6Of("ipv6-frag-2"))).toEqual(frag(1448, true))
    expect(walked(ip6Of("ipv6-frag-3"))).toEqual(frag(2896, false))
  })

  it("a fragment quoted in an ICMPv6 error (cut short) still walks to its fragment header", () => {
    const quote = ip6Of("ipv6-frag-2").subarray(0, 100)
    expect(Ip6.parse(quote)).toBe("Truncated")
    expect(Ip6.walk(quote, Ip6.parseQuoted(quote) as Ip6.Ipv6Repr)).toMatchObject({ _tag: "Fragment", fragmentOffset: 1448, more: true })
  })

  it("emitFragmentHeader and emitRouterAlertHbh write what the kernel wrote", () => {
    for (const [name, off, more] of [["ipv6-frag-1", 0, true], ["ipv6-frag-2", 1448, true], ["ipv6-frag-3", 2896, false]] as const) {
      const h = new Uint8Array(8).fill(0xee)
      Ip6.emitFragmentHeader(h, 0, Ip6.NH_ICMPV6, off, more, 0xca467c5b)
      expect(toHex(h), name).toBe(toHex(ip6Of(name).subarray(40, 48)))
    }
    const hbh = new Uint8Array(8).fill(0xee)
    Ip6.emitRouterAlertHbh(hbh, 0, Ip6.NH_ICMPV6)
    expect(toHex(hbh)).toBe(toHex(ip6Of("ipv6-mldv2-report").subarray(40, 48)))
    expect(toHex(hbh)).toBe("3a00050200000100")
  })

  /** The packet the kernel quoted in its parameter problem (after the 8-byte ICMPv6 header), and the code and pointer it sent. */
  const kernelVerdict = (name: string) => {
    const icmp = ip6Of(name).subarray(40)
    return { quote: icmp.subarray(8), code: icmp[1]!, pointer: (icmp[4]! << 24) | (icmp[5]! << 16) | (icmp[6]! << 8) | icmp[7]! }
  }

  it("an option of action 10: our walk drops it with the code and pointer the Linux kernel sent", () => {
    const k = kernelVerdict("icmpv6-param-problem-option")
    expect([k.code, k.pointer]).toEqual([2, 42])
    expect(walked(k.quote)).toEqual({ _tag: "Drop", reason: "UnknownOption", problem: { code: 2, pointer: 42, evenIfMulticast: true } })
  })

  it("a type 0 routing header with segments left: the same code and pointer as the kernel's", () => {
    const k = kernelVerdict("icmpv6-param-problem-rh0")
    expect([k.code, k.pointer]).toEqual([0, 42])
    expect(walked(k.quote)).toEqual({ _tag: "Drop", reason: "RoutingType0", problem: { code: 0, pointer: 42, evenIfMulticast: false } })
  })

  it("an unknown next header: the walk hands it up with the pointer the kernel sent (code 1)", () => {
    const k = kernelVerdict("icmpv6-param-problem-nh")
    expect([k.code, k.pointer]).toEqual([1, 6])
    const c = walked(k.quote)
    expect(c).toEqual({ _tag: "Upper", proto: 253, offset: 40, namedAt: 6, atomicFragment: false, routerAlert: false })
  })
})

describe("IPv6 wire: the fixed header", () => {
  it("version other than 6 is BadVersion; trailing bytes past the payload length are not payload", () => {
    const b = copy(ip6Of("ipv6-udp-closed"))
    b[0] = 0x40
    expect(Ip6.parse(b)).toBe("BadVersion")
    const padded = new Uint8Array(ip6Of("ipv6-udp-closed").length + 17).fill(0xee)
    padded.set(ip6Of("ipv6-udp-closed"))
    const r = parsed(padded)
    expect(r.payloadLen).toBe(29)
    expect(Ip6.payload(padded, r).length).toBe(29)
  })

  it("parse(emit(r)) = r, emitFields = emit (property)", () => {
    fc.assert(
      fc.property(reprArb, (r) => {
        const b = new Uint8Array(Ip6.HEADER_LEN + r.payloadLen)
        Ip6.emit(r, b)
        expect(Ip6.checkLen(b)).toBe(true)
        expect(Ip6.parse(b)).toEqual(r)
        const c = new Uint8Array(b.length)
        Ip6.emitFields(c, r.src, r.dst, r.nextHeader, r.payloadLen, r.hopLimit, r.trafficClass, r.flowLabel)
        expect(c).toEqual(b)
      })
    )
  })

  it("parseQuoted reads a fixed header cut anywhere past 40 bytes", () => {
    const b = ip6Of("ipv6-tcp-syn")
    for (let n = 40; n <= b.length; n++) expect(Ip6.parseQuoted(b.subarray(0, n))).toEqual(parsed(b))
    expect(Ip6.parseQuoted(b.subarray(0, 39))).toBe("Truncated")
  })

  it("parse and walk never throw on arbitrary bytes, and what they return stays inside the packet (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.nat(255), (raw, nh) => {
        const b = raw.length >= 40 ? raw : new Uint8Array(0)
        if (b.length >= 40) {
          b[0] = 0x60
          b[4] = 0
          b[5] = b.length - 40
          b[6] = nh
        }
        const r = Ip6.parse(b)
        if (isDrop(r)) return
        const c = Ip6.walk(b, r)
        if (c._tag === "Upper") expect(c.offset).toBeLessThanOrEqual(40 + r.payloadLen)
        if (c._tag === "Fragment") expect(c.dataAt).toBeLessThanOrEqual(40 + r.payloadLen)
        if (c._tag === "Drop" && c.problem !== undefined) expect(c.problem.pointer).toBeLessThan(40 + r.payloadLen)
      })
    )
  })
})

describe("IPv6 wire: the extension header walk (RFC 8200 §4)", () => {
  const udp = [0x13, 0x89, 0x13, 0x89, 0, 8, 0, 0]
  const up = (proto: number, offset: number, namedAt: number, extra: Partial<{ atomicFragment: boolean; routerAlert: boolean }> = {}) => ({
    _tag: "Upper",
    proto,
    offset,
    namedAt,
    atomicFragment: false,
    routerAlert: false,
    ...extra
  })
  const dropped = (reason: string, code?: number, pointer?: number, evenIfMulticast = false) => ({
    _tag: "Drop",
    reason,
    problem: code === undefined ? undefined : { code, pointer, evenIfMulticast }
  })

  it("hop-by-hop first, then destination options, routing with segments left 0, destination options again", () => {
    const chain = [
      ...optionsHeader(Ip6.NH_DEST_OPTS, [5, 2, 0, 0]),
      ...optionsHeader(Ip6.NH_ROUTING, [0x1e, 1, 0]),
      ...routingHeader(Ip6.NH_DEST_OPTS, 0, 0),
      ...optionsHeader(Ip6.NH_UDP, []),
      ...udp
    ]
    expect(walked(packet(Ip6.NH_HOP_BY_HOP, chain))).toEqual(up(Ip6.NH_UDP, 40 + 8 + 8 + 24 + 8, 40 + 8 + 8 + 24, { routerAlert: true }))
  })

  it("hop-by-hop anywhere but first is an unrecognized next header (code 1, pointing at the field that named it)", () => {
    const b = packet(Ip6.NH_DEST_OPTS, [...optionsHeader(Ip6.NH_HOP_BY_HOP, []), ...optionsHeader(Ip6.NH_UDP, []), ...udp])
    expect(walked(b)).toEqual(dropped("UnknownNextHeader", 1, 40))
  })

  it("no next header (59) delivers nothing", () => {
    expect(walked(packet(Ip6.NH_NONE, []))).toEqual(dropped("NoNextHeader"))
    expect(walked(packet(Ip6.NH_DEST_OPTS, optionsHeader(Ip6.NH_NONE, [])))).toEqual(dropped("NoNextHeader"))
  })

  it("unknown options act by their two high bits: skip, discard, answer always, answer unless multicast (§4.2)", () => {
    const withOpt = (type: number, dst = IP2) => packet(Ip6.NH_DEST_OPTS, [...optionsHeader(Ip6.NH_UDP, [0, type, 2, 0xab, 0xcd]), ...udp], dst)
    expect(walked(withOpt(0x1e))).toEqual(up(Ip6.NH_UDP, 48, 40))
    expect(walked(withOpt(0x5e))).toEqual(dropped("UnknownOption"))
    expect(walked(withOpt(0x9e))).toEqual(dropped("UnknownOption", 2, 43, true))
    expect(walked(withOpt(0xde))).toEqual(dropped("UnknownOption", 2, 43))
    expect(walked(withOpt(0x9e, A.IPV6_ALL_NODES))).toEqual(dropped("UnknownOption", 2, 43, true))
    expect(walked(withOpt(0xde, A.IPV6_ALL_NODES))).toEqual(dropped("UnknownOption"))
    // the jumbo payload option (0xc2, RFC 2675) is not for Ethernet: action 11
    expect(walked(packet(Ip6.NH_HOP_BY_HOP, [...optionsHeader(Ip6.NH_UDP, [0xc2, 4, 0, 1, 0, 0]), ...udp]))).toEqual(dropped("UnknownOption", 2, 42))
  })

  it("a router alert is recognised only in hop-by-hop and only with its 2-byte value", () => {
    expect(walked(packet(Ip6.NH_DEST_OPTS, [...optionsHeader(Ip6.NH_UDP, [5, 2, 0, 0]), ...udp]))).toEqual(up(Ip6.NH_UDP, 48, 40))
    expect(walked(packet(Ip6.NH_HOP_BY_HOP, [...optionsHeader(Ip6.NH_UDP, [5, 1, 0]), ...udp]))).toEqual(up(Ip6.NH_UDP, 48, 40))
  })

  it("an option running past its header is BadOption", () => {
    const h = optionsHeader(Ip6.NH_UDP, [0x1e, 2, 0, 0])
    h[3] = 5 // claims 5 data bytes where 4 remain in the header
    expect(walked(packet(Ip6.NH_DEST_OPTS, [...h, ...udp]))).toEqual(dropped("BadOption"))
    const lone = [Ip6.NH_UDP, 0, 1, 3, 0, 0, 0, 0x1e] // the last byte starts an option with no length byte
    expect(walked(packet(Ip6.NH_DEST_OPTS, [...lone, ...udp]))).toEqual(dropped("BadOption"))
  })

  it("padding runs of up to 7 bytes pass; 8 do not (Pad1 or PadN)", () => {
    const pad1s = (n: number) => new Array<number>(n).fill(0)
    expect(walked(packet(Ip6.NH_DEST_OPTS, [Ip6.NH_UDP, 1, ...pad1s(7), 0x1e, 5, 1, 2, 3, 4, 5, ...udp]))).toEqual(up(Ip6.NH_UDP, 56, 40))
    expect(walked(packet(Ip6.NH_DEST_OPTS, [Ip6.NH_UDP, 1, ...pad1s(8), 0x1e, 4, 1, 2, 3, 4, ...udp]))).toEqual(dropped("ExtHeaderLimit"))
    expect(walked(packet(Ip6.NH_DEST_OPTS, [Ip6.NH_UDP, 1, 1, 5, 0, 0, 0, 0, 0, 0x1e, 5, 1, 2, 3, 4, 5, ...udp]))).toEqual(up(Ip6.NH_UDP, 56, 40))
    expect(walked(packet(Ip6.NH_DEST_OPTS, [Ip6.NH_UDP, 1, 1, 6, 0, 0, 0, 0, 0, 0, 0x1e, 4, 1, 2, 3, 4, ...udp]))).toEqual(dropped("ExtHeaderLimit"))
    // padding separated by an option is two runs
    expect(walked(packet(Ip6.NH_DEST_OPTS, [Ip6.NH_UDP, 1, 1, 4, 0, 0, 0, 0, 0x1e, 0, 1, 4, 0, 0, 0, 0, ...udp]))).toEqual(up(Ip6.NH_UDP, 56, 40))
  })

  it("at most maxOptions non-padding options per header", () => {
    const opts = (n: number) => Array.from({ length: n }, () => [0x1e, 0]).flat()
    const limits = { ...Ip6.DEFAULT_LIMITS, maxOptions: 8 }
    expect(walked(packet(Ip6.NH_DEST_OPTS, [...optionsHeader(Ip6.NH_UDP, opts(8)), ...udp]), limits)._tag).toBe("Upper")
    expect(walked(packet(Ip6.NH_DEST_OPTS, [...optionsHeader(Ip6.NH_UDP, opts(9)), ...udp]), limits)).toEqual(dropped("ExtHeaderLimit"))
  })

  it("at most maxHeaders extension headers and maxChainBytes bytes of them", () => {
    const chain = (n: number) => {
      const hs: Array<number> = []
      for (let i = 0; i < n; i++) hs.push(...optionsHeader(i === n - 1 ? Ip6.NH_UDP : Ip6.NH_DEST_OPTS, []))
      return [...hs, ...udp]
    }
    const limits = { maxHeaders: 8, maxChainBytes: 1024, maxOptions: 8 }
    expect(walked(packet(Ip6.NH_DEST_OPTS, chain(8)), limits)).toEqual(up(Ip6.NH_UDP, 40 + 64, 40 + 56))
    expect(walked(packet(Ip6.NH_DEST_OPTS, chain(9)), limits)).toEqual(dropped("ExtHeaderLimit"))
    const big = (bytes: number) => {
      const h = [Ip6.NH_UDP, bytes / 8 - 1, 1, bytes - 4, ...new Array<number>(bytes - 4).fill(0)]
      return [...h, ...udp]
    }
    // a PadN that long is itself past the padding bound, so give the limit a header of options instead
    const opts = (bytes: number) => {
      const body: Array<number> = []
      while (body.length < bytes - 2) body.push(0x1e, 0)
      return [Ip6.NH_UDP, bytes / 8 - 1, ...body.slice(0, bytes - 2), ...udp]
    }
    expect(walked(packet(Ip6.NH_DEST_OPTS, big(1024)), limits)).toEqual(dropped("ExtHeaderLimit"))
    expect(walked(packet(Ip6.NH_DEST_OPTS, opts(1024)), { ...limits, maxOptions: 1000 })).toEqual(up(Ip6.NH_UDP, 40 + 1024, 40))
    expect(walked(packet(Ip6.NH_DEST_OPTS, opts(1032)), { ...limits, maxOptions: 1000 })).toEqual(dropped("ExtHeaderLimit"))
  })

  it("routing headers: segments left 0 is ignored whatever the type; otherwise dropped with a pointer at the type (§4.4, RFC 5095)", () => {
    for (const type of [0, 2, 3, 4, 253]) {
      expect(walked(packet(Ip6.NH_ROUTING, [...routingHeader(Ip6.NH_UDP, type, 0), ...udp])), `type ${type}`).toEqual(up(Ip6.NH_UDP, 64, 40))
    }
    expect(walked(packet(Ip6.NH_ROUTING, [...routingHeader(Ip6.NH_UDP, 0, 1), ...udp]))).toEqual(dropped("RoutingType0", 0, 42))
    expect(walked(packet(Ip6.NH_ROUTING, [...routingHeader(Ip6.NH_UDP, 4, 2), ...udp]))).toEqual(dropped("RoutingHeader", 0, 42))
    const afterOpts = packet(Ip6.NH_DEST_OPTS, [...optionsHeader(Ip6.NH_ROUTING, []), ...routingHeader(Ip6.NH_UDP, 0, 3, 3), ...udp])
    expect(walked(afterOpts)).toEqual(dropped("RoutingType0", 0, 50))
  })

  it("an atomic fragment is skipped and flagged (RFC 6946); a real one stops the walk", () => {
    expect(walked(packet(Ip6.NH_FRAGMENT, [...fragmentHeader(Ip6.NH_UDP, 0, false, 7), ...udp]))).toEqual(up(Ip6.NH_UDP, 48, 40, { atomicFragment: true }))
    const data = new Array<number>(16).fill(1)
    expect(walked(packet(Ip6.NH_FRAGMENT, [...fragmentHeader(Ip6.NH_UDP, 8, true, 7), ...data]))).toEqual({
      _tag: "Fragment",
      nextHeader: Ip6.NH_UDP,
      fragmentOffset: 8,
      more: true,
      ident: 7,
      headerAt: 40,
      namedAt: 6,
      dataAt: 48
    })
  })

  it("a fragment not a multiple of 8 while M is set points at the payload length; one past 65535 at the offset (§4.5)", () => {
    expect(walked(packet(Ip6.NH_FRAGMENT, [...fragmentHeader(Ip6.NH_UDP, 8, true, 7), ...new Array<number>(12).fill(1)]))).toEqual(
      dropped("BadLength", 0, 4)
    )
    // the last fragment may have any length
    expect(walked(packet(Ip6.NH_FRAGMENT, [...fragmentHeader(Ip6.NH_UDP, 8, false, 7), ...new Array<number>(12).fill(1)]))._tag).toBe("Fragment")
    // 65528 + 8 bytes of data = 65536 > 65535
    expect(walked(packet(Ip6.NH_FRAGMENT, [...fragmentHeader(Ip6.NH_UDP, 65528, false, 7), ...new Array<number>(8).fill(1)]))).toEqual(
      dropped("BadLength", 0, 42)
    )
    expect(walked(packet(Ip6.NH_FRAGMENT, [...fragmentHeader(Ip6.NH_UDP, 65528, false, 7), ...new Array<number>(7).fill(1)]))._tag).toBe("Fragment")
    // the unfragmentable part counts too: 8 bytes of destination options before the fragment header
    const withOpts = packet(Ip6.NH_DEST_OPTS, [...optionsHeader(Ip6.NH_FRAGMENT, []), ...fragmentHeader(Ip6.NH_UDP, 65520, false, 7), ...new Array<number>(8).fill(1)])
    expect(walked(withOpts)).toEqual(dropped("BadLength", 0, 50))
  })

  it("a first fragment must hold the chain through the upper-layer header (§4.5, RFC 7112: code 3)", () => {
    const frag0 = (rest: ReadonlyArray<number>) => packet(Ip6.NH_FRAGMENT, [...fragmentHeader(Ip6.NH_UDP, 0, true, 9), ...rest])
    expect(walked(frag0([...udp, ...new Array<number>(8).fill(0)]))._tag).toBe("Fragment")
    const tcpFirst = packet(Ip6.NH_FRAGMENT, [...fragmentHeader(Ip6.NH_TCP, 0, true, 9), ...new Array<number>(16).fill(0)])
    expect(walked(tcpFirst)).toEqual(dropped("IncompleteChain", 3, 0)) // 16 bytes: less than a TCP header
    // a destination options header after the fragment header, itself cut by the end of the fragment
    const cut = packet(Ip6.NH_FRAGMENT, [...fragmentHeader(Ip6.NH_DEST_OPTS, 0, true, 9), Ip6.NH_UDP, 1, ...new Array<number>(6).fill(0)])
    expect(walked(cut)).toEqual(dropped("IncompleteChain", 3, 0))
    const whole = packet(Ip6.NH_FRAGMENT, [...fragmentHeader(Ip6.NH_DEST_OPTS, 0, true, 9), ...optionsHeader(Ip6.NH_UDP, []), ...udp])
    expect(walked(whole)).toMatchObject({ _tag: "Fragment", nextHeader: Ip6.NH_DEST_OPTS, fragmentOffset: 0 })
    // later fragments carry no chain
    expect(walked(packet(Ip6.NH_FRAGMENT, [...fragmentHeader(Ip6.NH_TCP, 16, true, 9), ...new Array<number>(8).fill(0)]))._tag).toBe("Fragment")
  })

  it("truncated extension headers are Truncated", () => {
    expect(walked(packet(Ip6.NH_DEST_OPTS, [Ip6.NH_UDP, 0, 1, 4]))).toEqual(dropped("Truncated"))
    expect(walked(packet(Ip6.NH_DEST_OPTS, [Ip6.NH_UDP, 1, 1, 4, 0, 0, 0, 0]))).toEqual(dropped("Truncated"))
    expect(walked(packet(Ip6.NH_FRAGMENT, [Ip6.NH_UDP, 0, 0, 1]))).toEqual(dropped("Truncated"))
  })

  it("a valid chain of any shape leads to the upper layer at the sum of the header lengths (property)", () => {
    const header = fc.oneof(
      fc.array(fc.constantFrom(0x1e, 0x3e), { maxLength: 4 }).map((ts) => ({ kind: Ip6.NH_DEST_OPTS, opts: ts.flatMap((t) => [t, 1, 0xaa]) })),
      fc.nat(255).map((type) => ({ kind: Ip6.NH_ROUTING, opts: [type] })),
      fc.nat(0xffffffff).map((ident) => ({ kind: Ip6.NH_FRAGMENT, opts: [ident] }))
    )
    fc.assert(
      fc.property(fc.boolean(), fc.array(header, { maxLength: 6 }), fc.constantFrom(Ip6.NH_UDP, Ip6.NH_TCP, Ip6.NH_ICMPV6, 253), (hbh, hs, upper) => {
        const kinds = [...(hbh ? [Ip6.NH_HOP_BY_HOP] : []), ...hs.map((h) => h.kind)]
        const bytes: Array<number> = []
        for (let i = 0; i < kinds.length; i++) {
          const next = i + 1 < kinds.length ? kinds[i + 1]! : upper
          const h = i === 0 && hbh ? { kind: Ip6.NH_HOP_BY_HOP, opts: [] as Array<number> } : hs[hbh ? i - 1 : i]!
          if (h.kind === Ip6.NH_ROUTING) bytes.push(...routingHeader(next, h.opts[0]!, 0))
          else if (h.kind === Ip6.NH_FRAGMENT) bytes.push(...fragmentHeader(next, 0, false, h.opts[0]!))
          else bytes.push(...optionsHeader(next, h.opts))
        }
        const chainLen = bytes.length
        bytes.push(...new Array<number>(20).fill(0))
        const c = walked(packet(kinds[0] ?? upper, bytes), { ...Ip6.DEFAULT_LIMITS, maxHeaders: 7 })
        expect(c).toMatchObject({ _tag: "Upper", proto: upper, offset: 40 + chainLen, atomicFragment: hs.some((h) => h.kind === Ip6.NH_FRAGMENT), routerAlert: false })
      })
    )
  })
})

describe("IPv6 pseudo-header checksum (RFC 8200 §8.1)", () => {
  it("the captured TCP SYN, UDP datagrams and ICMPv6 messages verify with pseudoV6 and not with a wrong one", () => {
    const cases: ReadonlyArray<readonly [string, number]> = [
      ["ipv6-tcp-syn", Ip6.NH_TCP],
      ["ipv6-udp-closed", Ip6.NH_UDP],
      ["ipv6-udp-dstopts", Ip6.NH_UDP],
      ["ipv6-echo-request", Ip6.NH_ICMPV6],
      ["ipv6-na", Ip6.NH_ICMPV6],
      ["ipv6-mldv2-report", Ip6.NH_ICMPV6]
    ]
    for (const [name, proto] of cases) {
      const b = ip6Of(name)
      const r = parsed(b)
      const c = Ip6.walk(b, r)
      if (c._tag !== "Upper") throw new Error(name)
      const l4 = b.subarray(c.offset, 40 + r.payloadLen)
      expect(Cs.verifies(Cs.sum(l4, 0, l4.length, Cs.pseudoV6(r.src, r.dst, proto, l4.length))), name).toBe(true)
      expect(Cs.verifies(Cs.sum(l4, 0, l4.length, Cs.pseudoV6(r.src, addr("2001:db8::3"), proto, l4.length))), name).toBe(false)
    }
  })

  it("equals the sum over the 40-byte pseudo-header written out (property)", () => {
    fc.assert(
      fc.property(addrArb, addrArb, fc.nat(255), fc.nat(0xfffff), (src, dst, nh, len) => {
        const ph = new Uint8Array(40)
        A.writeIpv6(ph, 0, src)
        A.writeIpv6(ph, 16, dst)
        ph[32] = len >>> 24
        ph[33] = (len >>> 16) & 0xff
        ph[34] = (len >>> 8) & 0xff
        ph[35] = len & 0xff
        ph[39] = nh
        expect(Cs.fold(Cs.pseudoV6(src, dst, nh, len))).toBe(Cs.fold(Cs.sum(ph, 0, 40)))
        expect(u16(ph, 38)).toBe(nh)
      })
    )
  })
})
