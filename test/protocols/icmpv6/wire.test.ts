import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { toHex } from "../../../src/protocols/bytes.js"
import * as Cs from "../../../src/protocols/checksum.js"
import { isDrop } from "../../../src/protocols/drop.js"
import * as Icmp6 from "../../../src/protocols/icmpv6/wire.js"
import * as A from "../../../src/protocols/ipv6/address.js"
import * as Ip6 from "../../../src/protocols/ipv6/wire.js"
import { copy, truncations } from "../common/fixtures.js"
import { addrArb, IP1, IP2, ip6Of, parsed } from "../ipv6/helpers.js"

/** The ICMPv6 message of a captured packet, and its pseudo-header sum. */
const icmpOf = (name: string) => {
  const b = ip6Of(name)
  const r = parsed(b)
  const c = Ip6.walk(b, r)
  if (c._tag !== "Upper" || c.proto !== Ip6.NH_ICMPV6) throw new Error(`${name}: not ICMPv6`)
  const m = b.subarray(c.offset, 40 + r.payloadLen)
  return { m, pseudo: Cs.pseudoV6(r.src, r.dst, Ip6.NH_ICMPV6, m.length), ip: r }
}

const golden: ReadonlyArray<readonly [string, Icmp6.Icmpv6Repr]> = [
  ["ipv6-echo-request", { type: Icmp6.TYPE_ECHO_REQUEST, code: 0, rest: 0x53600001, payloadLen: 56 }],
  ["ipv6-echo-reply", { type: Icmp6.TYPE_ECHO_REPLY, code: 0, rest: 0x53600001, payloadLen: 56 }],
  ["icmpv6-port-unreachable", { type: Icmp6.TYPE_DEST_UNREACHABLE, code: Icmp6.CODE_PORT_UNREACHABLE, rest: 0, payloadLen: 69 }],
  ["icmpv6-param-problem-option", { type: Icmp6.TYPE_PARAM_PROBLEM, code: Icmp6.CODE_UNRECOGNIZED_OPTION, rest: 42, payloadLen: 80 }],
  ["icmpv6-param-problem-rh0", { type: Icmp6.TYPE_PARAM_PROBLEM, code: Icmp6.CODE_ERRONEOUS_HEADER, rest: 42, payloadLen: 64 }],
  ["icmpv6-param-problem-nh", { type: Icmp6.TYPE_PARAM_PROBLEM, code: Icmp6.CODE_UNRECOGNIZED_NEXT_HEADER, rest: 6, payloadLen: 72 }]
]

describe("ICMPv6 wire: captured messages", () => {
  for (const [name, repr] of golden) {
    it(`${name}: parse -> Repr (checksum over the pseudo-header), emit -> the captured message`, () => {
      const { m, pseudo } = icmpOf(name)
      expect(Icmp6.parse(m, pseudo)).toEqual(repr)
      const b = new Uint8Array(m.length)
      b.set(Icmp6.payload(m), Icmp6.HEADER_LEN)
      Icmp6.emit(repr, b, pseudo)
      expect(toHex(b)).toBe(toHex(m))
    })

    it(`${name}: truncations and any flipped byte are rejected`, () => {
      const { m, pseudo } = icmpOf(name)
      for (const t of truncations(m).slice(0, Icmp6.HEADER_LEN)) expect(Icmp6.parse(t, pseudo)).toBe("Truncated")
      // a cut message fails its checksum: the pseudo-header carries the length
      expect(Icmp6.parse(m.subarray(0, m.length - 2), Cs.pseudoV6(IP1, IP2, 58, m.length - 2))).toBe("BadChecksum")
      const bad: Array<number> = []
      for (let i = 0; i < m.length; i++) {
        const b = copy(m)
        b[i] = b[i]! ^ 0x10
        if (Icmp6.parse(b, pseudo) !== "BadChecksum") bad.push(i)
      }
      expect(bad).toEqual([])
    })
  }

  it("the echo request's identifier and sequence are those ping -6 used", () => {
    const { m } = icmpOf("ipv6-echo-request")
    expect([Icmp6.echoIdent(m), Icmp6.echoSeq(m)]).toEqual([0x5360, 1])
  })

  it("emitError writes the kernel's port unreachable and parameter problems byte for byte from the packets they quote", () => {
    const cases: ReadonlyArray<readonly [string, Uint8Array | undefined]> = [
      ["icmpv6-port-unreachable", ip6Of("ipv6-udp-closed")],
      ["icmpv6-param-problem-option", undefined],
      ["icmpv6-param-problem-rh0", undefined],
      ["icmpv6-param-problem-nh", undefined]
    ]
    for (const [name, invoking] of cases) {
      const { m, pseudo } = icmpOf(name)
      const r = Icmp6.parse(m, pseudo)
      if (isDrop(r)) throw new Error(r)
      const quoted = invoking ?? Icmp6.payload(m)
      expect(toHex(Icmp6.payload(m)), name).toBe(toHex(quoted))
      const b = new Uint8Array(Icmp6.errorLength(quoted.length))
      Icmp6.emitError(b, r.type, r.code, r.rest, quoted, pseudo)
      expect(toHex(b), name).toBe(toHex(m))
    }
  })
})

describe("ICMPv6 wire: errors", () => {
  it("an error quotes at most 1232 bytes, so it fits the 1280-byte minimum MTU", () => {
    expect(Icmp6.ERROR_QUOTE_MAX).toBe(1232)
    const big = new Uint8Array(4000).map((_, i) => i & 0xff)
    const b = new Uint8Array(Icmp6.errorLength(big.length))
    expect(b.length).toBe(1240)
    expect(40 + b.length).toBe(Ip6.MIN_MTU)
    const pseudo = Cs.pseudoV6(IP2, IP1, 58, b.length)
    Icmp6.emitError(b, Icmp6.TYPE_TIME_EXCEEDED, Icmp6.CODE_REASSEMBLY_TIME_EXCEEDED, 0, big, pseudo)
    expect(Icmp6.parse(b, pseudo)).toEqual({ type: 3, code: 1, rest: 0, payloadLen: 1232 })
    expect(toHex(Icmp6.payload(b))).toBe(toHex(big.subarray(0, 1232)))
    expect(Icmp6.errorLength(100)).toBe(108)
  })

  it("packet too big reports its MTU, never below 1280 (RFC 8201 §4)", () => {
    const ptb = (mtu: number) => ({ type: Icmp6.TYPE_PACKET_TOO_BIG, code: 0, rest: mtu, payloadLen: 0 })
    expect(Icmp6.packetTooBigMtu(ptb(1400))).toBe(1400)
    expect(Icmp6.packetTooBigMtu(ptb(1280))).toBe(1280)
    expect(Icmp6.packetTooBigMtu(ptb(576))).toBe(1280)
    expect(Icmp6.packetTooBigMtu(ptb(0))).toBe(1280)
    expect(Icmp6.packetTooBigMtu(ptb(0xffffffff))).toBe(0xffffffff)
    expect(Icmp6.isError(Icmp6.TYPE_PACKET_TOO_BIG)).toBe(true)
    expect(Icmp6.isError(Icmp6.TYPE_ECHO_REQUEST)).toBe(false)
  })

  it("RFC 4443 §2.4 e: no errors about errors, multicast (but for the exceptions) or sources naming no single node", () => {
    const p = { src: IP1, dst: IP2, linkMulticast: false, errorOrRedirect: false }
    expect(Icmp6.errorAllowed(p, false)).toBe(true)
    expect(Icmp6.errorAllowed({ ...p, errorOrRedirect: true }, true)).toBe(false)
    expect(Icmp6.errorAllowed({ ...p, dst: A.IPV6_ALL_NODES }, false)).toBe(false)
    expect(Icmp6.errorAllowed({ ...p, dst: A.IPV6_ALL_NODES }, true)).toBe(true)
    expect(Icmp6.errorAllowed({ ...p, linkMulticast: true }, false)).toBe(false)
    expect(Icmp6.errorAllowed({ ...p, linkMulticast: true }, true)).toBe(true)
    expect(Icmp6.errorAllowed({ ...p, src: A.IPV6_UNSPECIFIED }, true)).toBe(false)
    expect(Icmp6.errorAllowed({ ...p, src: A.solicitedNode(IP1) }, true)).toBe(false)
  })

  it("parse(emit(r)) = r with the checksum over any pseudo-header; parse never throws (property)", () => {
    fc.assert(
      fc.property(
        fc.record({ type: fc.nat(255), code: fc.nat(255), rest: fc.nat({ max: 0xffffffff }), payloadLen: fc.nat(300) }),
        addrArb,
        addrArb,
        (r, src, dst) => {
          const b = new Uint8Array(Icmp6.HEADER_LEN + r.payloadLen).map((_, i) => (i * 31) & 0xff)
          const pseudo = Cs.pseudoV6(src, dst, 58, b.length)
          Icmp6.emit(r, b, pseudo)
          expect(Icmp6.parse(b, pseudo)).toEqual(r)
          // a pseudo-header one off (a length off by one) does not verify
          expect(Icmp6.parse(b, Cs.pseudoV6(src, dst, 58, b.length + 1))).toBe("BadChecksum")
        }
      )
    )
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(), (b, pseudo) => {
        const r = Icmp6.parse(b, pseudo)
        if (!isDrop(r)) expect(r.payloadLen).toBe(b.length - 8)
      })
    )
  })
})
