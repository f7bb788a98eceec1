import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { parseMac, type MacAddress } from "../../../src/protocols/address.js"
import { toHex } from "../../../src/protocols/bytes.js"
import { isDrop } from "../../../src/protocols/drop.js"
import * as Eth from "../../../src/protocols/ethernet/wire.js"
import { frame, truncations } from "../common/fixtures.js"

const MAC1 = parseMac("00:00:5e:00:53:01")!
const MAC2 = parseMac("00:00:5e:00:53:02")!
const BCAST = parseMac("ff:ff:ff:ff:ff:ff")!

const golden: ReadonlyArray<readonly [string, Eth.EthernetRepr]> = [
  ["arp-request", { dst: BCAST, src: MAC1, etherType: Eth.ETHERTYPE_ARP }],
  ["arp-reply", { dst: MAC1, src: MAC2, etherType: Eth.ETHERTYPE_ARP }],
  ["icmp-echo-request", { dst: MAC2, src: MAC1, etherType: Eth.ETHERTYPE_IPV4 }],
  ["icmp-echo-reply", { dst: MAC1, src: MAC2, etherType: Eth.ETHERTYPE_IPV4 }],
  ["udp-open", { dst: MAC2, src: MAC1, etherType: Eth.ETHERTYPE_IPV4 }]
]

const reprArb: fc.Arbitrary<Eth.EthernetRepr> = fc.record({
  dst: fc.nat({ max: 2 ** 48 - 1 }).map((m) => m as MacAddress),
  src: fc.nat({ max: 2 ** 48 - 1 }).map((m) => m as MacAddress),
  etherType: fc.nat(0xffff)
})

describe("Ethernet II wire", () => {
  for (const [name, repr] of golden) {
    it(`${name}: parse -> Repr, emit -> the captured 14 bytes`, () => {
      const f = frame(name)
      expect(Eth.checkLen(f)).toBe(true)
      expect(Eth.parse(f)).toEqual(repr)
      expect(Eth.dst(f)).toBe(repr.dst)
      expect(Eth.src(f)).toBe(repr.src)
      expect(Eth.etherType(f)).toBe(repr.etherType)
      expect(Eth.payload(f).length).toBe(f.length - Eth.HEADER_LEN)
      const out = new Uint8Array(Eth.HEADER_LEN)
      Eth.emit(repr, out)
      expect(toHex(out)).toBe(toHex(f.subarray(0, Eth.HEADER_LEN)))
      const out2 = new Uint8Array(Eth.HEADER_LEN)
      Eth.emitFields(out2, repr.dst, repr.src, repr.etherType)
      expect(out2).toEqual(out)
    })
  }

  it("every truncation 0..13 of a captured header is rejected", () => {
    const f = frame("arp-request").subarray(0, Eth.HEADER_LEN)
    for (const t of truncations(f)) {
      expect(Eth.checkLen(t)).toBe(false)
      expect(Eth.parse(t)).toBe("Truncated")
    }
  })

  it("a bare 14-byte header is accepted with an empty payload", () => {
    const f = frame("arp-request").slice(0, Eth.HEADER_LEN)
    expect(isDrop(Eth.parse(f))).toBe(false)
    expect(Eth.payload(f).length).toBe(0)
  })

  it("parse(emit(r)) = r (property)", () => {
    fc.assert(
      fc.property(reprArb, fc.uint8Array({ maxLength: 32 }), (r, pl) => {
        const b = new Uint8Array(Eth.HEADER_LEN + pl.length)
        b.set(pl, Eth.HEADER_LEN)
        Eth.emit(r, b)
        expect(Eth.parse(b)).toEqual(r)
        expect(Eth.payload(b)).toEqual(Uint8Array.from(pl))
      })
    )
  })

  it("parse never throws on arbitrary bytes (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        const r = Eth.parse(b)
        expect(isDrop(r)).toBe(b.length < Eth.HEADER_LEN)
      })
    )
  })
})
