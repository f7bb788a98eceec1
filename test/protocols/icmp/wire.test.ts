import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { toHex, u16 } from "../../../src/protocols/bytes.js"
import * as Cs from "../../../src/protocols/checksum.js"
import { isDrop } from "../../../src/protocols/drop.js"
import * as Eth from "../../../src/protocols/ethernet/wire.js"
import * as Icmp from "../../../src/protocols/icmp/wire.js"
import * as Ip from "../../../src/protocols/ipv4/wire.js"
import * as Udp from "../../../src/protocols/udp/wire.js"
import { copy, frame, truncations } from "../common/fixtures.js"

/** The ICMP message of a captured frame (the IPv4 payload). */
const icmpOf = (name: string): Uint8Array => {
  const b = frame(name).subarray(Eth.HEADER_LEN)
  const r = Ip.parse(b, true)
  if (isDrop(r)) throw new Error(`${name}: ${r}`)
  return Ip.payload(b, r)
}

const golden: ReadonlyArray<readonly [string, Icmp.IcmpRepr]> = [
  ["icmp-echo-request", { type: Icmp.TYPE_ECHO_REQUEST, code: 0, rest: 0x20d00001, payloadLen: 56 }],
  ["icmp-echo-reply", { type: Icmp.TYPE_ECHO_REPLY, code: 0, rest: 0x20d00001, payloadLen: 56 }],
  ["icmp-port-unreachable", { type: Icmp.TYPE_DEST_UNREACHABLE, code: Icmp.CODE_PORT_UNREACHABLE, rest: 0, payloadLen: 49 }],
  ["ipv4-options-rr", { type: Icmp.TYPE_ECHO_REQUEST, code: 0, rest: 0x20d20001, payloadLen: 56 }]
]

const reprArb = (maxPayload: number): fc.Arbitrary<Icmp.IcmpRepr> =>
  fc.record({
    type: fc.nat(255),
    code: fc.nat(255),
    rest: fc.nat({ max: 0xffffffff }),
    payloadLen: fc.nat(maxPayload)
  })

/** Emit `r` with `payload` into a fresh buffer of exactly 8 + payloadLen bytes. */
const build = (r: Icmp.IcmpRepr, payload: Uint8Array): Uint8Array => {
  const b = new Uint8Array(Icmp.HEADER_LEN + r.payloadLen)
  b.set(payload.subarray(0, r.payloadLen), Icmp.HEADER_LEN)
  Icmp.emit(r, b)
  return b
}

describe("ICMP wire: captured messages", () => {
  for (const [name, repr] of golden) {
    it(`${name}: parse -> Repr, emit -> the captured bytes`, () => {
      const b = icmpOf(name)
      expect(Icmp.checkLen(b)).toBe(true)
      expect(Icmp.parse(b, true)).toEqual(repr)
      expect(Icmp.payload(b).length).toBe(repr.payloadLen)
      expect(toHex(build(repr, Icmp.payload(b)))).toBe(toHex(b))
    })

    it(`${name}: every truncation 0..n-1 is rejected`, () => {
      const bad: Array<string> = []
      for (const t of truncations(icmpOf(name))) {
        const r = Icmp.parse(t, true)
        if (t.length < Icmp.HEADER_LEN && (Icmp.checkLen(t) || r !== "Truncated")) bad.push(`len ${t.length}: ${String(r)}`)
        // past the 8-byte header the IP layer gives the length: a shortened message fails its checksum
        if (t.length >= Icmp.HEADER_LEN && r !== "BadChecksum") bad.push(`len ${t.length}: ${String(r)}`)
      }
      expect(bad).toEqual([])
    })
  }

  it("echo accessors read ident and sequence", () => {
    const b = icmpOf("icmp-echo-request")
    const r = Icmp.parse(b, true)
    if (isDrop(r)) throw new Error(r)
    expect(Icmp.ident(r)).toBe(0x20d0)
    expect(Icmp.seq(r)).toBe(1)
    expect(Icmp.echoIdent(b)).toBe(0x20d0)
    expect(Icmp.echoSeq(b)).toBe(1)
  })

  it("turning the captured request into a reply with update16 gives the kernel's reply checksum", () => {
    const req = icmpOf("icmp-echo-request")
    const rep = icmpOf("icmp-echo-reply")
    const c = Cs.update16(u16(req, 2), (Icmp.TYPE_ECHO_REQUEST << 8) | 0, (Icmp.TYPE_ECHO_REPLY << 8) | 0)
    expect(c).toBe(u16(rep, 2))
    const mine = copy(req)
    mine[0] = Icmp.TYPE_ECHO_REPLY
    mine[2] = c >>> 8
    mine[3] = c & 0xff
    expect(toHex(mine)).toBe(toHex(rep))
  })

  it("the port unreachable quotes the whole captured UDP datagram, which parses and verifies", () => {
    const msg = icmpOf("icmp-port-unreachable")
    const quote = Icmp.payload(msg)
    const sent = frame("udp-closed").subarray(Eth.HEADER_LEN)
    expect(toHex(quote)).toBe(toHex(sent))
    const ip = Ip.parse(quote, true)
    if (isDrop(ip)) throw new Error(ip)
    expect(ip.protocol).toBe(Ip.PROTO_UDP)
    const udp = Ip.payload(quote, ip)
    const pseudo = Cs.pseudoV4(ip.src, ip.dst, Ip.PROTO_UDP, Udp.length(udp))
    expect(Udp.parse(udp, pseudo, true)).toEqual({ srcPort: 41269, dstPort: 9999, payloadLen: 21 })
    expect(Icmp.ERROR_QUOTE_MAX).toBeGreaterThanOrEqual(quote.length)
  })

  it("a bad checksum is BadChecksum, and accepted when the NIC vouched", () => {
    const b = copy(icmpOf("icmp-echo-reply"))
    b[20] = b[20]! ^ 0x40
    expect(Icmp.parse(b, true)).toBe("BadChecksum")
    expect(Icmp.parse(b, false)).toEqual(golden[1]![1])
  })
})

describe("ICMP wire: properties", () => {
  it("parse(emit(r)) = r, and the emitted message verifies (property)", () => {
    fc.assert(
      fc.property(reprArb(200), fc.uint8Array({ minLength: 200, maxLength: 200 }), (r, pl) => {
        const b = build(r, pl)
        expect(Cs.verifies(Cs.sum(b, 0, b.length))).toBe(true)
        expect(Icmp.parse(b, true)).toEqual(r)
        expect(Icmp.payload(b)).toEqual(pl.subarray(0, r.payloadLen))
      })
    )
  })

  it("any single-byte change of an emitted message is detected (property)", () => {
    fc.assert(
      fc.property(reprArb(64), fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (r, pl, at, x) => {
        const b = build(r, pl)
        const i = at % b.length
        b[i] = b[i]! ^ x
        expect(Icmp.parse(b, true)).toBe("BadChecksum")
      })
    )
  })

  it("an all-zero message (echo reply, ident 0, seq 0, no data) gets checksum 0xffff and verifies", () => {
    const b = build({ type: 0, code: 0, rest: 0, payloadLen: 0 }, new Uint8Array(0))
    expect(u16(b, 2)).toBe(0xffff)
    expect(Icmp.parse(b, true)).toEqual({ type: 0, code: 0, rest: 0, payloadLen: 0 })
  })

  it("parse never throws on arbitrary bytes (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.boolean(), (b, verify) => {
        const r = Icmp.parse(b, verify)
        if (b.length < Icmp.HEADER_LEN) expect(r).toBe("Truncated")
        else if (!isDrop(r)) expect(r.payloadLen).toBe(b.length - Icmp.HEADER_LEN)
      })
    )
  })
})
