import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { parseIpv4, type Ipv4Address } from "../../../src/protocols/address.js"
import { toHex } from "../../../src/protocols/bytes.js"
import * as Cs from "../../../src/protocols/checksum.js"
import { isDrop } from "../../../src/protocols/drop.js"
import * as Eth from "../../../src/protocols/ethernet/wire.js"
import * as Ip from "../../../src/protocols/ipv4/wire.js"
import { copy, frame, truncations } from "../common/fixtures.js"

const IP1 = parseIpv4("198.51.100.1")!
const IP2 = parseIpv4("198.51.100.2")!

const base = { ttl: 64, tos: 0, moreFragments: false, fragmentOffset: 0, headerLen: 20 } as const
const out = { src: IP1, dst: IP2 } as const
const back = { src: IP2, dst: IP1 } as const

/** Captured packets (test/fixtures/wire, Linux kernel) and the Repr each must parse to. */
const golden: ReadonlyArray<readonly [string, Ip.Ipv4Repr]> = [
  ["icmp-echo-request", { ...base, ...out, protocol: Ip.PROTO_ICMP, ident: 0x9a88, dontFragment: true, payloadLen: 64 }],
  ["icmp-echo-reply", { ...base, ...back, protocol: Ip.PROTO_ICMP, ident: 0xefe5, dontFragment: false, payloadLen: 64 }],
  [
    "ipv4-frag-1",
    { ...base, ...out, protocol: Ip.PROTO_ICMP, ident: 0x9a89, dontFragment: false, moreFragments: true, payloadLen: 1480 }
  ],
  [
    "ipv4-frag-2",
    { ...base, ...out, protocol: Ip.PROTO_ICMP, ident: 0x9a89, dontFragment: false, moreFragments: true, fragmentOffset: 1480, payloadLen: 1480 }
  ],
  [
    "ipv4-frag-3",
    { ...base, ...out, protocol: Ip.PROTO_ICMP, ident: 0x9a89, dontFragment: false, fragmentOffset: 2960, payloadLen: 1048 }
  ],
  ["udp-closed", { ...base, ...out, protocol: Ip.PROTO_UDP, ident: 0x1330, dontFragment: true, payloadLen: 29 }],
  ["icmp-port-unreachable", { ...base, ...back, tos: 0xc0, protocol: Ip.PROTO_ICMP, ident: 0xefe8, dontFragment: false, payloadLen: 57 }],
  ["udp-open", { ...base, ...out, protocol: Ip.PROTO_UDP, ident: 0x39ad, dontFragment: true, payloadLen: 27 }],
  ["ipv4-options-rr", { ...base, ...out, protocol: Ip.PROTO_ICMP, ident: 0x9a8b, dontFragment: true, headerLen: 60, payloadLen: 64 }]
]

const ipOf = (name: string): Uint8Array => frame(name).subarray(Eth.HEADER_LEN)

const reprArb = (maxPayload: number): fc.Arbitrary<Ip.Ipv4Repr> =>
  fc.record({
    src: fc.nat({ max: 0xffffffff }).map((a) => a as Ipv4Address),
    dst: fc.nat({ max: 0xffffffff }).map((a) => a as Ipv4Address),
    protocol: fc.nat(255),
    ttl: fc.nat(255),
    tos: fc.nat(255),
    ident: fc.nat(0xffff),
    dontFragment: fc.boolean(),
    moreFragments: fc.boolean(),
    fragmentOffset: fc.nat(0x1fff).map((x) => x * 8),
    headerLen: fc.constant(20),
    payloadLen: fc.nat(maxPayload)
  })

describe("IPv4 wire: captured packets", () => {
  for (const [name, repr] of golden) {
    it(`${name}: parse -> Repr${repr.headerLen === 20 ? ", emit -> the captured header" : ""}`, () => {
      const b = ipOf(name)
      expect(Ip.checkLen(b)).toBe(true)
      const r = Ip.parse(b, true)
      expect(r).toEqual(repr)
      if (isDrop(r)) return
      expect(Ip.payload(b, r).length).toBe(repr.payloadLen)
      expect(Ip.isFragment(r)).toBe(name.startsWith("ipv4-frag"))
      if (repr.headerLen === 20) {
        const h = new Uint8Array(Ip.HEADER_LEN)
        Ip.emit(repr, h)
        expect(toHex(h)).toBe(toHex(b.subarray(0, Ip.HEADER_LEN)))
      }
    })

    it(`${name}: every truncation 0..n-1 is rejected`, () => {
      const bad: Array<string> = []
      for (const t of truncations(ipOf(name))) {
        const got = [Ip.checkLen(t), Ip.parse(t, true), Ip.parse(t, false)]
        if (got[0] !== false || got[1] !== "Truncated" || got[2] !== "Truncated") bad.push(`len ${t.length}: ${JSON.stringify(got)}`)
      }
      expect(bad).toEqual([])
    })

    it(`${name}: every single-byte change of the header is rejected`, () => {
      const orig = ipOf(name)
      const hl = repr.headerLen
      const accepted: Array<string> = []
      const b = copy(orig)
      for (let i = 0; i < hl; i++) {
        for (let x = 1; x < 256; x++) {
          b[i] = orig[i]! ^ x
          if (!isDrop(Ip.parse(b, true))) accepted.push(`byte ${i} ^ ${x}`)
        }
        b[i] = orig[i]!
      }
      expect(accepted).toEqual([])
    })
  }

  it("the Record Route capture: options are skipped, the payload is the ICMP message, and they are checksummed", () => {
    const b = ipOf("ipv4-options-rr")
    const r = Ip.parse(b, true)
    if (isDrop(r)) throw new Error(r)
    expect(b[20]).toBe(1) // NOP
    expect(b[21]).toBe(7) // RR
    const pl = Ip.payload(b, r)
    expect(pl[0]).toBe(8) // echo request
    expect(pl.byteOffset - b.byteOffset).toBe(60)
    const bad = copy(b)
    bad[40] = bad[40]! ^ 0x01
    expect(Ip.parse(bad, true)).toBe("BadChecksum")
  })

  it("Ethernet padding after totalLength is allowed and not part of the payload", () => {
    const udp = ipOf("udp-open")
    const b = new Uint8Array(udp.length + 13).fill(0xee)
    b.set(udp)
    const r = Ip.parse(b, true)
    if (isDrop(r)) throw new Error(r)
    expect(r.payloadLen).toBe(27)
    expect(Ip.payload(b, r)).toEqual(udp.subarray(20))
  })

  it("a bad checksum is BadChecksum, and accepted when the NIC vouched (verifyChecksum false)", () => {
    const b = copy(ipOf("udp-open"))
    b[11] = b[11]! ^ 0xff
    expect(Ip.parse(b, true)).toBe("BadChecksum")
    expect(Ip.parse(b, false)).toEqual(golden.find(([n]) => n === "udp-open")![1])
  })

  it("version, IHL and total-length errors have their own reasons", () => {
    const set = (i: number, v: number) => {
      const b = copy(ipOf("udp-open"))
      b[i] = v
      return Ip.parse(b, false)
    }
    expect(set(0, 0x65)).toBe("BadVersion")
    expect(set(0, 0x44)).toBe("BadHeaderLength")
    expect(set(0, 0x4f)).toBe("Truncated") // 60-byte header in a 47-byte packet
    expect(set(3, 19)).toBe("BadLength") // totalLength 19 < header
    expect(set(3, 0x30)).toBe("Truncated") // totalLength 48 > 47 bytes
    const hl = copy(ipOf("udp-open"))
    hl[0] = 0x46
    hl[3] = 23 // totalLength 23 < IHL 24
    expect(Ip.parse(hl, false)).toBe("BadLength")
    expect(Ip.checkLen(hl)).toBe(false)
  })
})

describe("IPv4 wire: properties", () => {
  it("parse(emit(r)) = r, and the emitted header verifies (property)", () => {
    fc.assert(
      fc.property(reprArb(300), (r) => {
        const b = new Uint8Array(Ip.HEADER_LEN + r.payloadLen)
        Ip.emit(r, b)
        expect(Cs.verifies(Cs.sum(b, 0, Ip.HEADER_LEN))).toBe(true)
        expect(Ip.checkLen(b)).toBe(true)
        expect(Ip.parse(b, true)).toEqual(r)
      })
    )
  })

  it("emitFields writes the same bytes as emit (property)", () => {
    fc.assert(
      fc.property(reprArb(0xffff - 20), (r) => {
        const a = new Uint8Array(Ip.HEADER_LEN)
        const c = new Uint8Array(Ip.HEADER_LEN)
        Ip.emit(r, a)
        Ip.emitFields(c, r.src, r.dst, r.protocol, r.payloadLen, r.ident, r.ttl, r.tos, r.dontFragment, r.moreFragments, r.fragmentOffset)
        expect(c).toEqual(a)
        expect(Ip.totalLength(a)).toBe(20 + r.payloadLen)
      })
    )
  })

  it("the largest datagram (totalLength 65535) round-trips", () => {
    const r: Ip.Ipv4Repr = { ...base, ...out, protocol: Ip.PROTO_UDP, ident: 1, dontFragment: false, payloadLen: Ip.MAX_PACKET - 20 }
    const b = new Uint8Array(Ip.MAX_PACKET)
    Ip.emit(r, b)
    expect(Ip.parse(b, true)).toEqual(r)
  })

  it("any single-byte change of an emitted header is rejected (property)", () => {
    fc.assert(
      fc.property(reprArb(0), fc.nat(19), fc.integer({ min: 1, max: 255 }), (r, i, x) => {
        const b = new Uint8Array(Ip.HEADER_LEN)
        Ip.emit(r, b)
        b[i] = b[i]! ^ x
        expect(isDrop(Ip.parse(b, true))).toBe(true)
      })
    )
  })

  it("parse never throws on arbitrary or mutated bytes, and a success is self-consistent (property)", () => {
    const mutated = fc
      .tuple(fc.constantFrom(...golden.map(([n]) => n)), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }), fc.nat())
      .map(([n, muts, cut]) => {
        const b = copy(ipOf(n))
        for (const [i, v] of muts) b[i % 24] = v
        return b.subarray(0, cut % (b.length + 1))
      })
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), mutated), fc.boolean(), (b, verify) => {
        const r = Ip.parse(b, verify)
        if (isDrop(r)) return
        expect(Ip.checkLen(b)).toBe(true)
        expect(r.headerLen).toBeGreaterThanOrEqual(20)
        expect(r.headerLen + r.payloadLen).toBeLessThanOrEqual(b.length)
        expect(Ip.payload(b, r).length).toBe(r.payloadLen)
      })
    )
  })
})
