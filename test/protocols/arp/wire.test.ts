import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { parseIpv4, parseMac, MAC_ZERO, type Ipv4Address, type MacAddress } from "../../../src/protocols/address.js"
import { toHex } from "../../../src/protocols/bytes.js"
import { isDrop } from "../../../src/protocols/drop.js"
import * as Arp from "../../../src/protocols/arp/wire.js"
import * as Eth from "../../../src/protocols/ethernet/wire.js"
import { copy, frame, truncations } from "../common/fixtures.js"

const MAC1 = parseMac("00:00:5e:00:53:01")!
const MAC2 = parseMac("00:00:5e:00:53:02")!
const IP1 = parseIpv4("198.51.100.1")!
const IP2 = parseIpv4("198.51.100.2")!

const golden: ReadonlyArray<readonly [string, Arp.ArpRepr]> = [
  ["arp-request", { op: Arp.OP_REQUEST, senderMac: MAC1, senderIp: IP1, targetMac: MAC_ZERO, targetIp: IP2 }],
  ["arp-reply", { op: Arp.OP_REPLY, senderMac: MAC2, senderIp: IP2, targetMac: MAC1, targetIp: IP1 }]
]

const arpOf = (name: string): Uint8Array => frame(name).subarray(Eth.HEADER_LEN)

const reprArb: fc.Arbitrary<Arp.ArpRepr> = fc.record({
  op: fc.constantFrom(Arp.OP_REQUEST, Arp.OP_REPLY),
  senderMac: fc.nat({ max: 2 ** 48 - 1 }).map((m) => m as MacAddress),
  senderIp: fc.nat({ max: 0xffffffff }).map((a) => a as Ipv4Address),
  targetMac: fc.nat({ max: 2 ** 48 - 1 }).map((m) => m as MacAddress),
  targetIp: fc.nat({ max: 0xffffffff }).map((a) => a as Ipv4Address)
})

describe("ARP wire", () => {
  for (const [name, repr] of golden) {
    it(`${name}: parse -> Repr, emit -> the captured 28 bytes`, () => {
      const b = arpOf(name)
      expect(b.length).toBe(Arp.PACKET_LEN)
      expect(Arp.checkLen(b)).toBe(true)
      expect(Arp.parse(b)).toEqual(repr)
      const out = new Uint8Array(Arp.PACKET_LEN)
      Arp.emit(repr, out)
      expect(toHex(out)).toBe(toHex(b))
    })

    it(`${name}: every truncation 0..27 is rejected`, () => {
      for (const t of truncations(arpOf(name))) {
        expect(Arp.checkLen(t)).toBe(false)
        expect(Arp.parse(t)).toBe("Truncated")
      }
    })
  }

  it("Ethernet padding after the 28 bytes is ignored", () => {
    const b = new Uint8Array(46)
    b.set(arpOf("arp-reply"))
    expect(Arp.parse(b)).toEqual(golden[1]![1])
  })

  it("other hardware/protocol types, lengths and opcodes are Unsupported", () => {
    const cases: ReadonlyArray<readonly [number, number]> = [
      [1, 0x06], // htype 6 (IEEE 802)
      [3, 0xdd], // ptype 0x08dd
      [4, 8], // hlen 8
      [5, 16], // plen 16 (IPv6)
      [7, 3], // opcode 3 (RARP request)
      [7, 0]
    ]
    for (const [at, v] of cases) {
      const b = copy(arpOf("arp-request"))
      b[at] = v
      expect(Arp.parse(b), `byte ${at} = ${v}`).toBe("Unsupported")
    }
  })

  it("parse(emit(r)) = r (property)", () => {
    fc.assert(
      fc.property(reprArb, (r) => {
        const b = new Uint8Array(Arp.PACKET_LEN)
        Arp.emit(r, b)
        expect(Arp.parse(b)).toEqual(r)
      })
    )
  })

  it("parse never throws on arbitrary bytes (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (b) => {
        const r = Arp.parse(b)
        if (b.length < Arp.PACKET_LEN) expect(r).toBe("Truncated")
        else expect(typeof r === "string" || typeof r === "object").toBe(true)
      })
    )
  })

  it("parse never throws on mutations of a captured packet (property)", () => {
    fc.assert(
      fc.property(fc.nat(Arp.PACKET_LEN - 1), fc.nat(255), (at, v) => {
        const b = copy(arpOf("arp-reply"))
        b[at] = v
        const r = Arp.parse(b)
        if (!isDrop(r)) expect(r.op === Arp.OP_REQUEST || r.op === Arp.OP_REPLY).toBe(true)
      })
    )
  })
})
