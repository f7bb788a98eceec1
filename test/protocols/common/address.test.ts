import fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as A from "../../../src/protocols/address.js"

const u32 = fc.nat({ max: 0xffffffff })
const mac48 = fc.nat({ max: 2 ** 48 - 1 })

describe("IPv4 addresses", () => {
  it("parses and formats documentation addresses", () => {
    expect(A.parseIpv4("198.51.100.1")).toBe(0xc6336401)
    expect(A.parseIpv4("0.0.0.0")).toBe(A.IPV4_ANY)
    expect(A.parseIpv4("255.255.255.255")).toBe(A.IPV4_BROADCAST)
    expect(A.formatIpv4(A.ipv4(203, 0, 113, 254))).toBe("203.0.113.254")
    expect(A.ipv4(192, 0, 2, 1)).toBe(0xc0000201)
  })

  it("rejects malformed strings", () => {
    for (const s of ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.300", " 1.2.3.4", "1.2.3.4 ", "a.b.c.d", "1.2.3.-4", "1..2.3", "1234.1.1.1", "198.51.100.1/24"]) {
      expect(A.parseIpv4(s), s).toBeUndefined()
    }
  })

  it("parseIpv4(formatIpv4(a)) === a for every u32 (property)", () => {
    fc.assert(fc.property(u32, (a) => {
        expect(A.parseIpv4(A.formatIpv4(a))).toBe(a)
      }))
  })

  it("formatIpv4(parseIpv4(s)) === s for canonical dotted quads (property)", () => {
    fc.assert(
      fc.property(fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)), (q) => {
        const s = q.join(".")
        expect(A.formatIpv4(A.parseIpv4(s)!)).toBe(s)
      })
    )
  })

  it("writeIpv4/readIpv4 round-trip at any offset and touch exactly 4 bytes (property)", () => {
    fc.assert(
      fc.property(u32, fc.nat(8), (a, o) => {
        const b = new Uint8Array(16).fill(0xaa)
        A.writeIpv4(b, o, a)
        expect(A.readIpv4(b, o)).toBe(a)
        for (let i = 0; i < 16; i++) if (i < o || i >= o + 4) expect(b[i]).toBe(0xaa)
        expect(new DataView(b.buffer).getUint32(o)).toBe(a)
      })
    )
  })

  it("prefixMask for the edges", () => {
    expect(A.prefixMask(0)).toBe(0)
    expect(A.prefixMask(1)).toBe(0x80000000)
    expect(A.prefixMask(8)).toBe(0xff000000)
    expect(A.prefixMask(24)).toBe(0xffffff00)
    expect(A.prefixMask(31)).toBe(0xfffffffe)
    expect(A.prefixMask(32)).toBe(0xffffffff)
  })

  it("prefixMask(p) has exactly p leading ones and is non-negative (property)", () => {
    fc.assert(
      fc.property(fc.nat(32), (p) => {
        const m = A.prefixMask(p)
        expect(m).toBeGreaterThanOrEqual(0)
        expect(m.toString(2).padStart(32, "0")).toBe("1".repeat(p) + "0".repeat(32 - p))
      })
    )
  })

  it("sameSubnet compares the top p bits (property)", () => {
    fc.assert(
      fc.property(u32, u32, fc.nat(32), (a, b, p) => {
        const expected = p === 0 ? true : a >>> (32 - p) === b >>> (32 - p)
        expect(A.sameSubnet(a, b, p)).toBe(expected)
        expect(A.sameSubnet(a, a, p)).toBe(true)
      })
    )
  })

  it("sameSubnet on the project's /24", () => {
    const me = A.parseIpv4("198.51.100.2")!
    expect(A.sameSubnet(me, A.parseIpv4("198.51.100.1")!, 24)).toBe(true)
    expect(A.sameSubnet(me, A.parseIpv4("198.51.101.1")!, 24)).toBe(false)
    expect(A.sameSubnet(me, A.parseIpv4("203.0.113.1")!, 0)).toBe(true)
    expect(A.sameSubnet(me, A.parseIpv4("198.51.100.3")!, 32)).toBe(false)
    // high-bit addresses (negative as int32) still compare right
    expect(A.sameSubnet(0xfffffffe, 0xffffff01, 24)).toBe(true)
    expect(A.sameSubnet(0xfffffffe, 0x7fffff01, 1)).toBe(false)
  })
})

describe("MAC addresses", () => {
  it("parses and formats the documentation MACs of the fixtures", () => {
    const m = A.parseMac("00:00:5e:00:53:01")!
    expect(m).toBe(0x00005e005301)
    expect(A.formatMac(m)).toBe("00:00:5e:00:53:01")
    expect(A.parseMac("FF-FF-FF-FF-FF-FF")).toBe(A.MAC_BROADCAST)
    expect(A.mac(0x0000, 0x5e005301)).toBe(m)
    expect(A.formatMac(A.MAC_BROADCAST)).toBe("ff:ff:ff:ff:ff:ff")
    expect(A.formatMac(A.MAC_ZERO)).toBe("00:00:00:00:00:00")
  })

  it("rejects malformed strings", () => {
    for (const s of ["", "00:00:5e:00:53", "00:00:5e:00:53:01:02", "0:0:5e:0:53:1", "00:00:5e:00:53:0g", "00.00.5e.00.53.01", "000:00:5e:00:53:01"]) {
      expect(A.parseMac(s), s).toBeUndefined()
    }
  })

  it("parseMac(formatMac(m)) === m for every 48-bit value (property)", () => {
    fc.assert(fc.property(mac48, (m) => {
        expect(A.parseMac(A.formatMac(m))).toBe(m)
      }))
  })

  it("writeMac/readMac round-trip at any offset and touch exactly 6 bytes (property)", () => {
    fc.assert(
      fc.property(mac48, fc.nat(8), (m, o) => {
        const b = new Uint8Array(16).fill(0x55)
        A.writeMac(b, o, m)
        expect(A.readMac(b, o)).toBe(m)
        for (let i = 0; i < 16; i++) if (i < o || i >= o + 6) expect(b[i]).toBe(0x55)
        expect(A.formatMac(m)).toBe([...b.subarray(o, o + 6)].map((x) => x.toString(16).padStart(2, "0")).join(":"))
      })
    )
  })

  it("isMulticastMac looks at the I/G bit of the first octet", () => {
    expect(A.isMulticastMac(A.MAC_BROADCAST)).toBe(true)
    expect(A.isMulticastMac(A.parseMac("01:00:5e:00:00:01")!)).toBe(true)
    expect(A.isMulticastMac(A.parseMac("00:00:5e:00:53:01")!)).toBe(false)
    expect(A.isMulticastMac(A.parseMac("02:00:00:00:00:01")!)).toBe(false)
    expect(A.isMulticastMac(A.parseMac("fe:ff:ff:ff:ff:ff")!)).toBe(false)
  })
})

describe("isMartianSource", () => {
  const US = A.ipv4(198, 51, 100, 2)
  const p = (s: string) => A.parseIpv4(s)!

  it("refuses every class of address no host sends from", () => {
    for (const s of [
      "0.0.0.0",
      "0.1.2.3",
      "255.255.255.255",
      "198.51.100.255",
      "224.0.0.1",
      "239.255.255.255",
      "127.0.0.1",
      "127.255.255.254",
      "240.0.0.1",
      "254.1.2.3",
      "198.51.100.2"
    ]) {
      expect(A.isMartianSource(p(s), US, 24), s).toBe(true)
    }
  })

  it("accepts ordinary unicast sources, on and off the subnet", () => {
    for (const s of ["198.51.100.1", "198.51.100.254", "203.0.113.9", "192.0.2.1", "1.0.0.0", "126.255.255.255", "128.0.0.1", "223.255.255.255"]) {
      expect(A.isMartianSource(p(s), US, 24), s).toBe(false)
    }
  })

  it("the directed broadcast follows the prefix; /31 and /32 have none (RFC 3021)", () => {
    expect(A.isMartianSource(p("198.51.100.127"), US, 25)).toBe(true)
    expect(A.isMartianSource(p("198.51.100.255"), US, 25)).toBe(false)
    expect(A.isMartianSource(p("198.51.100.255"), US, 16)).toBe(false)
    expect(A.isMartianSource(p("198.51.255.255"), US, 16)).toBe(true)
    expect(A.isMartianSource(p("198.51.100.3"), US, 31)).toBe(false)
    expect(A.isMartianSource(p("198.51.100.3"), US, 32)).toBe(false)
    expect(A.isMartianSource(US, US, 32)).toBe(true)
  })

  it("while unconfigured only the address classes count (no subnet, no own address)", () => {
    expect(A.isMartianSource(p("198.51.100.255"), A.IPV4_ANY, 0)).toBe(false)
    expect(A.isMartianSource(p("198.51.100.1"), A.IPV4_ANY, 0)).toBe(false)
    expect(A.isMartianSource(p("0.0.0.0"), A.IPV4_ANY, 0)).toBe(true)
    expect(A.isMartianSource(p("255.255.255.255"), A.IPV4_ANY, 0)).toBe(true)
  })

  it("agrees with a first-octet table for every source outside our subnet (property)", () => {
    fc.assert(
      fc.property(u32, (a) => {
        fc.pre(!A.sameSubnet(a, US, 24))
        const top = a >>> 24
        expect(A.isMartianSource(a, US, 24)).toBe(top === 0 || top === 127 || top >= 224)
      })
    )
  })

  it("isMulticastIpv4 is exactly 224.0.0.0/4", () => {
    expect(A.isMulticastIpv4(p("224.0.0.0"))).toBe(true)
    expect(A.isMulticastIpv4(p("239.255.255.255"))).toBe(true)
    expect(A.isMulticastIpv4(p("223.255.255.255"))).toBe(false)
    expect(A.isMulticastIpv4(p("240.0.0.0"))).toBe(false)
  })
})
