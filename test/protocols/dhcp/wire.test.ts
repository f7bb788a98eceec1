import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { ipv4, mac, type Ipv4Address, type MacAddress } from "../../../src/protocols/address.js"
import { fromHex, setU32, toHex } from "../../../src/protocols/bytes.js"
import * as W from "../../../src/protocols/dhcp/wire.js"

const MAC = mac(0x0200, 0x00000002) as MacAddress

const base: W.DhcpRepr = {
  op: W.OP_REPLY,
  xid: 0x12345678,
  secs: 3,
  flags: 0,
  ciaddr: 0 as Ipv4Address,
  yiaddr: ipv4(198, 51, 100, 50),
  siaddr: 0 as Ipv4Address,
  giaddr: 0 as Ipv4Address,
  chaddr: MAC,
  messageType: W.DHCPOFFER,
  serverId: ipv4(198, 51, 100, 1),
  prefix: 24,
  router: ipv4(198, 51, 100, 1),
  leaseS: 120,
  renewalS: 60,
  rebindingS: 105
}

/** The fixed header of `base` followed by hand-written option bytes. */
const withOptions = (hex: string): Uint8Array => {
  const head = W.encode({ op: W.OP_REPLY, xid: 1, secs: 0, flags: 0, ciaddr: 0 as Ipv4Address, yiaddr: ipv4(198, 51, 100, 50), siaddr: 0 as Ipv4Address, giaddr: 0 as Ipv4Address, chaddr: MAC, messageType: W.DHCPOFFER }).subarray(0, W.OPTIONS_OFFSET)
  const opts = fromHex(hex)
  const b = new Uint8Array(W.OPTIONS_OFFSET + opts.length)
  b.set(head)
  b.set(opts, W.OPTIONS_OFFSET)
  return b
}

describe("DHCP wire", () => {
  it("emits the BOOTP layout, magic cookie and options in TLV form, padded to 300 bytes", () => {
    const b = W.encode(base)
    expect(b.length).toBe(300)
    expect(b[0]).toBe(2)
    expect(b[1]).toBe(1)
    expect(b[2]).toBe(6)
    expect(toHex(b.subarray(4, 8))).toBe("12345678")
    expect(toHex(b.subarray(16, 20))).toBe("c6336432") // yiaddr 198.51.100.50
    expect(toHex(b.subarray(28, 34))).toBe("020000000002") // chaddr
    expect(toHex(b.subarray(236, 240))).toBe("63825363")
    // first option: message type 2 (OFFER); the subnet mask as 255.255.255.0
    expect(toHex(b.subarray(240, 243))).toBe("350102")
    expect(toHex(b)).toContain("0104ffffff00")
    expect(toHex(b)).toContain("330400000078") // lease 120 s
  })

  it("parse(emit(r)) gives r back", () => {
    expect(W.parse(W.encode(base))).toEqual(base)
  })

  it("property: parse(emit(r)) = r for any message", () => {
    const addr = fc.nat({ max: 0xffffffff }).map((n) => n as Ipv4Address)
    fc.assert(
      fc.property(
        fc.record({
          op: fc.constantFrom(1, 2),
          xid: fc.nat({ max: 0xffffffff }),
          secs: fc.nat({ max: 0xffff }),
          flags: fc.constantFrom(0, 0x8000),
          ciaddr: addr,
          yiaddr: addr,
          siaddr: addr,
          giaddr: addr,
          chaddr: fc.nat({ max: 0xffffffffffff }).map((n) => n as MacAddress),
          messageType: fc.integer({ min: 1, max: 7 }),
          leaseS: fc.nat({ max: 0xffffffff }),
          prefix: fc.integer({ min: 1, max: 32 })
        }),
        (r) => {
          expect(W.parse(W.encode(r))).toEqual(r)
        }
      ),
      { seed: 5, numRuns: 300 }
    )
  })

  it("every truncation of the fixed part is rejected", () => {
    const b = W.encode(base)
    for (let n = 0; n < W.OPTIONS_OFFSET; n++) expect(W.parse(b.subarray(0, n))).toBe("Truncated")
  })

  it("a wrong magic cookie or hardware type is rejected", () => {
    const b = W.encode(base)
    setU32(b, 236, 0x01020304)
    expect(W.parse(b)).toBe("Malformed")
    const c = W.encode(base)
    c[1] = 6
    expect(W.parse(c)).toBe("Unsupported")
  })

  it("an option running past the end rejects the message", () => {
    expect(W.parse(withOptions("350102 3304000000"))).toBe("BadOption")
    expect(W.parse(withOptions("350102 33"))).toBe("BadOption")
  })

  it("a message without a message type is rejected", () => {
    expect(W.parse(withOptions("0104ffffff00 ff"))).toBe("Malformed")
  })

  it("known options with a wrong length or value are ignored and counted; the rest is kept", () => {
    // mask of 3 bytes, non-contiguous mask, router of 3 bytes, lease of 2 bytes, server id 0.0.0.0
    const r = W.parse(withOptions("350102 0103ffffff 0104ff00ff00 0303c63364 33020078 360400000000 3304000000b4 ff"))
    expect(typeof r).toBe("object")
    if (typeof r === "string") return
    expect(r.prefix).toBeUndefined()
    expect(r.router).toBeUndefined()
    expect(r.serverId).toBeUndefined()
    expect(r.leaseS).toBe(180)
    expect(r.ignoredOptions).toBe(5)
  })

  it("pads and unknown options pass by; parsing stops at END", () => {
    const r = W.parse(withOptions("00 00 350105 fa03010203 0104ffff0000 ff 0104ffffffff"))
    expect(r).toMatchObject({ messageType: W.DHCPACK, prefix: 16 })
  })

  it("maskToPrefix accepts only contiguous masks", () => {
    expect(W.maskToPrefix(0xffffff00)).toBe(24)
    expect(W.maskToPrefix(0xffffffff)).toBe(32)
    expect(W.maskToPrefix(0)).toBe(0)
    expect(W.maskToPrefix(0xff00ff00)).toBeUndefined()
  })

  it("property: parse never throws on arbitrary bytes (with a valid cookie or not)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (bytes, cookie) => {
        const b = bytes.slice()
        if (cookie && b.length >= 240) {
          b[1] = 1
          b[2] = 6
          setU32(b, 236, W.MAGIC_COOKIE)
        }
        const r = W.parse(b)
        expect(r === undefined).toBe(false)
      }),
      { seed: 11, numRuns: 2000 }
    )
  })
})
