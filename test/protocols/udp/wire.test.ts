import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { parseIpv4 } from "../../../src/protocols/address.js"
import { setU16, toHex, u16 } from "../../../src/protocols/bytes.js"
import * as Cs from "../../../src/protocols/checksum.js"
import { isDrop } from "../../../src/protocols/drop.js"
import * as Eth from "../../../src/protocols/ethernet/wire.js"
import * as Ip from "../../../src/protocols/ipv4/wire.js"
import * as Udp from "../../../src/protocols/udp/wire.js"
import { copy, frame, truncations } from "../common/fixtures.js"

const IP1 = parseIpv4("198.51.100.1")!
const IP2 = parseIpv4("198.51.100.2")!

/** The UDP datagram of a captured frame and its pseudo-header sum. */
const udpOf = (name: string): { readonly b: Uint8Array; readonly pseudo: number } => {
  const f = frame(name).subarray(Eth.HEADER_LEN)
  const ip = Ip.parse(f, true)
  if (isDrop(ip)) throw new Error(`${name}: ${ip}`)
  const b = Ip.payload(f, ip)
  return { b, pseudo: Cs.pseudoV4(ip.src, ip.dst, Ip.PROTO_UDP, b.length) }
}

const golden: ReadonlyArray<readonly [string, Udp.UdpRepr, string]> = [
  ["udp-closed", { srcPort: 41269, dstPort: 9999, payloadLen: 21 }, "miniperf closed port\n"],
  ["udp-open", { srcPort: 58498, dstPort: 5001, payloadLen: 19 }, "miniperf open port\n"]
]

const reprArb = (maxPayload: number): fc.Arbitrary<Udp.UdpRepr> =>
  fc.record({ srcPort: fc.nat(0xffff), dstPort: fc.nat(0xffff), payloadLen: fc.nat(maxPayload) })

const addrArb = fc.nat({ max: 0xffffffff })

/** Emit into a fresh buffer of exactly 8 + payloadLen bytes; returns the buffer and the pseudo sum used. */
const build = (r: Udp.UdpRepr, payload: Uint8Array, src: number, dst: number, fill = true) => {
  const b = new Uint8Array(Udp.HEADER_LEN + r.payloadLen)
  b.set(payload.subarray(0, r.payloadLen), Udp.HEADER_LEN)
  const pseudo = Cs.pseudoV4(src, dst, Ip.PROTO_UDP, b.length)
  Udp.emit(r, b, pseudo, fill)
  return { b, pseudo }
}

describe("UDP wire: captured datagrams", () => {
  for (const [name, repr, text] of golden) {
    it(`${name}: parse -> Repr, emit -> the captured bytes`, () => {
      const { b, pseudo } = udpOf(name)
      expect(Udp.checkLen(b)).toBe(true)
      expect(Udp.parse(b, pseudo, true)).toEqual(repr)
      expect(Buffer.from(Udp.payload(b)).toString("latin1")).toBe(text)
      const mine = build(repr, Udp.payload(b), IP1, IP2)
      expect(mine.pseudo).toBe(pseudo)
      expect(toHex(mine.b)).toBe(toHex(b))
    })

    it(`${name}: every truncation 0..n-1 is rejected`, () => {
      const { b, pseudo } = udpOf(name)
      const bad: Array<string> = []
      for (const t of truncations(b)) {
        const r = Udp.parse(t, pseudo, true)
        if (Udp.checkLen(t) || r !== "Truncated") bad.push(`len ${t.length}: ${String(r)}`)
      }
      expect(bad).toEqual([])
    })
  }

  it("bytes after the UDP length (IP padding) are not payload", () => {
    const { b, pseudo } = udpOf("udp-open")
    const padded = new Uint8Array(b.length + 5).fill(0xee)
    padded.set(b)
    expect(Udp.parse(padded, pseudo, true)).toEqual(golden[1]![1])
    expect(Udp.payload(padded)).toEqual(b.subarray(8))
  })

  it("a length field below 8 is BadLength", () => {
    const b = copy(udpOf("udp-open").b)
    setU16(b, 4, 7)
    expect(Udp.parse(b, 0, false)).toBe("BadLength")
    expect(Udp.checkLen(b)).toBe(false)
  })

  it("a wrong pseudo-header (another destination) is BadChecksum; verify=false skips the check", () => {
    const { b } = udpOf("udp-open")
    const wrong = Cs.pseudoV4(IP1, parseIpv4("198.51.100.3")!, Ip.PROTO_UDP, b.length)
    expect(Udp.parse(b, wrong, true)).toBe("BadChecksum")
    expect(Udp.parse(b, wrong, false)).toEqual(golden[1]![1])
  })

  it("a zero checksum field means 'no checksum' over IPv4 and is accepted", () => {
    const { b, pseudo } = udpOf("udp-closed")
    const c = copy(b)
    setU16(c, 6, 0)
    c[10] = c[10]! ^ 0x20 // even with damaged data: nothing to check against
    expect(Udp.parse(c, pseudo, true)).toEqual(golden[0]![1])
    const { b: unfilled } = build(golden[0]![1], Udp.payload(b), IP1, IP2, false)
    expect(u16(unfilled, 6)).toBe(0)
  })

  it("a computed checksum of 0 is sent as 0xffff, which verifies", () => {
    const r: Udp.UdpRepr = { srcPort: 5001, dstPort: 41269, payloadLen: 4 }
    // first pass with zero data; then put the resulting checksum into the data so the sum becomes -0
    const first = build(r, new Uint8Array(4), IP2, IP1)
    const c = u16(first.b, 6)
    const data = new Uint8Array(4)
    setU16(data, 2, c)
    const { b, pseudo } = build(r, data, IP2, IP1)
    expect(u16(b, 6)).toBe(0xffff)
    expect(Udp.parse(b, pseudo, true)).toEqual(r)
  })
})

describe("UDP wire: properties", () => {
  it("parse(emit(r)) = r, and the emitted datagram verifies with its pseudo-header (property)", () => {
    fc.assert(
      fc.property(reprArb(200), fc.uint8Array({ minLength: 200, maxLength: 200 }), addrArb, addrArb, (r, pl, s, d) => {
        const { b, pseudo } = build(r, pl, s, d)
        expect(u16(b, 6)).not.toBe(0)
        expect(Cs.verifies(Cs.sum(b, 0, b.length, pseudo))).toBe(true)
        expect(Udp.checkLen(b)).toBe(true)
        expect(Udp.parse(b, pseudo, true)).toEqual(r)
        expect(Udp.payload(b)).toEqual(pl.subarray(0, r.payloadLen))
      })
    )
  })

  it("any single-byte change is detected, except one that zeroes the checksum field (= no checksum) (property)", () => {
    fc.assert(
      fc.property(
        reprArb(64),
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        addrArb,
        addrArb,
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (r, pl, s, d, at, x) => {
          const { b, pseudo } = build(r, pl, s, d)
          const i = at % b.length
          b[i] = b[i]! ^ x
          // the sum over the original region and pseudo-header never verifies after a one-byte change
          expect(Cs.verifies(Cs.sum(b, 0, b.length, pseudo))).toBe(false)
          const res = Udp.parse(b, pseudo, true)
          if (u16(b, 6) === 0) expect(isDrop(res)).toBe(false) // RFC 768: 0 = not computed
          else if (i !== 4 && i !== 5) expect(res).toBe("BadChecksum")
          else {
            // length damage: the checksum now covers another region, so the outcome is whatever that region says
            const len = u16(b, 4)
            if (len < 8) expect(res).toBe("BadLength")
            else if (len > b.length) expect(res).toBe("Truncated")
            else if (Cs.verifies(Cs.sum(b, 0, len, pseudo))) expect(res).toEqual({ srcPort: r.srcPort, dstPort: r.dstPort, payloadLen: len - 8 })
            else expect(res).toBe("BadChecksum")
          }
        }
      )
    )
  })

  it("parse never throws on arbitrary bytes (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.nat({ max: 0x3ffff }), fc.boolean(), (b, pseudo, verify) => {
        const r = Udp.parse(b, pseudo, verify)
        if (b.length < Udp.HEADER_LEN) expect(r).toBe("Truncated")
        else if (!isDrop(r)) {
          expect(Udp.checkLen(b)).toBe(true)
          expect(Udp.payload(b).length).toBe(r.payloadLen)
        }
      })
    )
  })
})
