/**
 * protocols/ipAddress.ts: the two families side by side (numbers for IPv4, 8-code-unit strings for IPv6) as
 * the transports key and print them.
 */
import { describe, expect, it } from "vitest"
import { ipv4 } from "../../src/protocols/address.js"
import {
  endpointKey,
  endpointKeyAddress,
  endpointKeyPort,
  formatEndpoint,
  formatIp,
  isIpv6,
  parseIp,
  sourceKey
} from "../../src/protocols/ipAddress.js"
import { parseIpv6 } from "../../src/protocols/ipv6/address.js"

const V4 = ipv4(198, 51, 100, 1)
const V6 = parseIpv6("2001:db8::1")!

describe("IpAddress", () => {
  it("parseIp reads either family's text and nothing else; formatIp writes it back (RFC 5952 for IPv6)", () => {
    expect(parseIp("198.51.100.1")).toBe(V4)
    expect(parseIp("2001:DB8:0:0::1")).toBe(V6)
    expect(parseIp("::ffff:198.51.100.1")).toBe(parseIpv6("::ffff:c633:6401"))
    for (const bad of ["", "198.51.100.256", "2001:db8::g", "[2001:db8::1]", "2001:db8::1%eth0", "2001:db8::1/64", "localhost"]) {
      expect(parseIp(bad)).toBeUndefined()
    }
    expect(formatIp(V4)).toBe("198.51.100.1")
    expect(formatIp(parseIpv6("2001:0db8:0000:0000:0001:0000:0000:0001")!)).toBe("2001:db8::1:0:0:1")
    expect([isIpv6(V4), isIpv6(V6)]).toEqual([false, true])
  })

  it("formatEndpoint brackets IPv6 only", () => {
    expect(formatEndpoint(V4, 5001)).toBe("198.51.100.1:5001")
    expect(formatEndpoint(V6, 5001)).toBe("[2001:db8::1]:5001")
    expect(formatEndpoint(parseIpv6("fe80::1")!, 0)).toBe("[fe80::1]:0")
  })

  it("endpointKey: the IPv4 key is the old number; both round-trip; the families and ports never collide", () => {
    expect(endpointKey(V4, 5001)).toBe(V4 * 65536 + 5001)
    for (const [a, p] of [
      [V4, 0],
      [V4, 65535],
      [V6, 0],
      [V6, 65535],
      [parseIpv6("::")!, 1]
    ] as const) {
      const k = endpointKey(a, p)
      expect(endpointKeyAddress(k)).toBe(a)
      expect(endpointKeyPort(k)).toBe(p)
    }
    const keys = new Set([endpointKey(V4, 1), endpointKey(V4, 2), endpointKey(V6, 1), endpointKey(V6, 2), endpointKey(parseIpv6("2001:db8::2")!, 1)])
    expect(keys.size).toBe(5)
    expect(typeof endpointKey(V6, 1)).toBe("string")
    expect((endpointKey(V6, 1) as string).length).toBe(9)
  })

  it("sourceKey: an IPv4 address stays itself; IPv6 addresses of one /64 share a key, another /64 does not", () => {
    expect(sourceKey(V4)).toBe(V4)
    expect(sourceKey(parseIpv6("2001:db8:1:2::1")!)).toBe(sourceKey(parseIpv6("2001:db8:1:2:ffff:ffff:ffff:ffff")!))
    expect(sourceKey(parseIpv6("2001:db8:1:2::1")!)).not.toBe(sourceKey(parseIpv6("2001:db8:1:3::1")!))
    expect(sourceKey(parseIpv6("2001:db8:1:2::1")!)).not.toBe(sourceKey(parseIpv6("2001:db9:1:2::1")!))
  })
})
