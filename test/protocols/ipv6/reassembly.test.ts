import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { toHex } from "../../../src/protocols/bytes.js"
import * as Cs from "../../../src/protocols/checksum.js"
import type { DropReason } from "../../../src/protocols/drop.js"
import * as Ip6 from "../../../src/protocols/ipv6/wire.js"
import { DEFAULT_CONFIG, fragmentPlan, Reassembler, writeFragment, type ReassemblyConfig } from "../../../src/protocols/ipv6/reassembly.js"
import { addr, fragmentHeader, IP1, IP2, ip6Of, LL1, LL2, optionsHeader, packet, parsed, pattern } from "./helpers.js"

const CFG: ReassemblyConfig = { maxDatagrams: 4, maxPerSource: 4, maxBytes: 16_384, timeoutMs: 60_000 }

/** What a shell does with one received packet: walk it, reassemble a fragment, deliver the rest. */
type Outcome = { readonly delivered: Uint8Array } | { readonly dropped: DropReason } | "pending"
const receive = (re: Reassembler, b: Uint8Array, nowMs = 0): Outcome => {
  const r = parsed(b)
  const c = Ip6.walk(b, r)
  if (c._tag === "Drop") return { dropped: c.reason }
  if (c._tag === "Upper") return { delivered: b }
  const whole = re.add(b, r, c, nowMs)
  if (whole === undefined) return "pending"
  return typeof whole === "string" ? { dropped: whole } : { delivered: whole }
}

/** Split a packet (fixed header + upper-layer data) the way we send: fragmentPlan + writeFragment. */
const split = (pkt: Uint8Array, mtu: number, ident: number): Array<Uint8Array> => {
  const plan = fragmentPlan(pkt.length - 40, mtu)
  return plan.map(([o, n], i) => {
    const f = new Uint8Array(48 + n)
    writeFragment(f, 0, pkt, o, n, i < plan.length - 1, ident)
    return f
  })
}

const udpPacket = (len: number, seed = 0, src = IP1): Uint8Array => packet(Ip6.NH_UDP, pattern(len, seed), IP2, src)

const same = (a: unknown, b: Uint8Array): boolean => a instanceof Uint8Array && Buffer.compare(a, b) === 0

const permutations = <T>(xs: ReadonlyArray<T>): Array<Array<T>> =>
  xs.length <= 1 ? [[...xs]] : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]))

describe("IPv6 reassembly: the captured ping -6 -s 4000", () => {
  const frags = ["ipv6-frag-1", "ipv6-frag-2", "ipv6-frag-3"].map(ip6Of)

  it("the kernel's split is exactly fragmentPlan(4008, 1500)", () => {
    expect(frags.map((b) => {
      const c = Ip6.walk(b, parsed(b))
      return c._tag === "Fragment" ? [c.fragmentOffset, parsed(b).payloadLen - 8] : []
    })).toEqual(fragmentPlan(4008, 1500))
  })

  it("reassembles in every order to the 4048-byte echo request, whose ICMPv6 checksum verifies", () => {
    for (const order of permutations([0, 1, 2])) {
      const re = new Reassembler(CFG)
      const out = order.map((i) => receive(re, frags[i]!))
      expect(out.slice(0, 2)).toEqual(["pending", "pending"])
      const last = out[2]
      if (typeof last !== "object" || !("delivered" in last)) throw new Error(`order ${order}: ${JSON.stringify(last)}`)
      const b = last.delivered
      const r = parsed(b)
      expect(r).toMatchObject({ src: IP1, dst: IP2, nextHeader: Ip6.NH_ICMPV6, payloadLen: 4008, hopLimit: 64 })
      expect(Ip6.walk(b, r)).toMatchObject({ _tag: "Upper", proto: Ip6.NH_ICMPV6, offset: 40 })
      const icmp = b.subarray(40)
      expect(icmp[0]).toBe(128) // echo request
      expect(Cs.verifies(Cs.sum(icmp, 0, icmp.length, Cs.pseudoV6(r.src, r.dst, Ip6.NH_ICMPV6, icmp.length)))).toBe(true)
      expect(re.inProgress).toBe(0)
      expect(re.bufferedBytes).toBe(0)
    }
  })

  it("our fragmentation of the reassembled packet is the kernel's, byte for byte (with its identification)", () => {
    const re = new Reassembler(CFG)
    frags.forEach((f, i) => {
      const o = receive(re, f)
      if (i === 2 && typeof o === "object" && "delivered" in o) {
        const ident = (f[44]! << 24) | (f[45]! << 16) | (f[46]! << 8) | f[47]!
        expect(split(o.delivered, 1500, ident >>> 0).map(toHex)).toEqual(frags.map(toHex))
      }
    })
    expect(re.inProgress).toBe(0)
  })

  it("a datagram missing its middle fragment times out after 60 s, yielding the first fragment as received", () => {
    const re = new Reassembler()
    expect(DEFAULT_CONFIG.timeoutMs).toBe(60_000)
    expect(receive(re, frags[2]!, 1_000)).toBe("pending")
    expect(receive(re, frags[0]!, 2_000)).toBe("pending")
    expect(re.nextDeadline()).toBe(61_000)
    expect(re.expire(60_999)).toEqual([])
    const t = re.expire(61_000)
    expect(t.length).toBe(1)
    expect(t[0]!.src).toBe(IP1)
    expect(toHex(t[0]!.firstFragment)).toBe(toHex(frags[0]!))
    expect(re.timeouts).toBe(1)
    expect(re.inProgress).toBe(0)
    expect(re.bufferedBytes).toBe(0)
  })

  it("one that never got its first fragment times out silently (counted)", () => {
    const re = new Reassembler()
    receive(re, frags[1]!, 0)
    receive(re, frags[2]!, 0)
    expect(re.expire(60_000)).toEqual([])
    expect(re.timeouts).toBe(1)
  })
})

describe("IPv6 reassembly: order, duplicates, overlaps (RFC 5722)", () => {
  it("any order, with duplicates, gives back exactly the packet we fragmented (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12_000 }),
        fc.integer({ min: 1280, max: 9000 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 3 }),
        fc.nat(0xffffffff),
        (len, mtu, keys, dups, ident) => {
          const pkt = udpPacket(len, len)
          const frags = split(pkt, mtu, ident)
          for (const f of frags) expect(f.length).toBeLessThanOrEqual(mtu)
          const order = frags.map((_, i) => i).sort((a, b) => ((keys[a % Math.max(1, keys.length)] ?? 0) ^ a) - ((keys[b % Math.max(1, keys.length)] ?? 0) ^ b))
          const seq = order.map((i) => frags[i]!)
          const last = seq.pop()!
          if (seq.length > 0) for (const d of dups) seq.push(seq[d % seq.length]!)
          seq.push(last)
          const re = new Reassembler({ ...CFG, maxBytes: 1 << 20 })
          const out = seq.map((f) => receive(re, f))
          if (frags.length === 1) {
            // a packet that fits is still one fragment when we split it: offset 0 and M clear, an atomic fragment
            expect(out).toEqual([{ delivered: frags[0] }])
            return
          }
          expect(out.slice(0, -1).every((o) => o === "pending")).toBe(true)
          const done = out[out.length - 1]
          expect(typeof done === "object" && "delivered" in done && same(done.delivered, pkt)).toBe(true)
          expect(re.duplicates).toBe(dups.length > 0 && seq.length > 1 ? dups.length : 0)
          expect(re.inProgress).toBe(0)
          expect(re.bufferedBytes).toBe(0)
        }
      )
    )
  })

  const frag = (offset: number, more: boolean, data: Uint8Array, ident = 5, src = IP1) =>
    packet(Ip6.NH_FRAGMENT, [...fragmentHeader(Ip6.NH_UDP, offset, more, ident), ...data], IP2, src)

  it("a fragment overlapping data already received drops the whole datagram, even when its bytes agree", () => {
    const p = pattern(48)
    const re = new Reassembler(CFG)
    expect(receive(re, frag(8, true, p.slice(8, 24)))).toBe("pending")
    expect(receive(re, frag(16, true, p.slice(16, 32)))).toEqual({ dropped: "FragmentOverlap" })
    expect(re.inProgress).toBe(0)
    // what follows starts a new datagram that lacks [8, 16) and never completes
    expect(receive(re, frag(0, true, p.slice(0, 8)))).toBe("pending")
    expect(receive(re, frag(16, false, p.slice(16, 48)))).toBe("pending")
    expect(re.inProgress).toBe(1)
  })

  it("a rewritten first fragment (the classic header-overwrite attack) never completes", () => {
    const honest = pattern(40, 3)
    const evil = honest.slice(0, 16)
    evil[2] = evil[2]! ^ 0xff // another destination port
    const re = new Reassembler(CFG)
    expect(receive(re, frag(0, true, honest.slice(0, 16)))).toBe("pending")
    expect(receive(re, frag(0, true, evil))).toEqual({ dropped: "FragmentOverlap" })
    expect(receive(re, frag(16, false, honest.slice(16)))).toBe("pending")
    expect(re.duplicates).toBe(0)
  })

  it("an exact duplicate is ignored and counted; the datagram completes", () => {
    const p = pattern(40, 9)
    const re = new Reassembler(CFG)
    expect(receive(re, frag(0, true, p.slice(0, 16)))).toBe("pending")
    expect(receive(re, frag(0, true, p.slice(0, 16)))).toBe("pending")
    const done = receive(re, frag(16, false, p.slice(16)))
    expect(typeof done === "object" && "delivered" in done && same(done.delivered.subarray(40), p)).toBe(true)
    expect(re.duplicates).toBe(1)
  })

  it("an atomic fragment with the same identification is delivered alone and leaves the datagram alone (RFC 6946)", () => {
    const p = pattern(40, 1)
    const re = new Reassembler(CFG)
    expect(receive(re, frag(0, true, p.slice(0, 16), 77))).toBe("pending")
    const atomic = frag(0, false, pattern(12, 5), 77)
    expect(receive(re, atomic)).toEqual({ delivered: atomic })
    expect(Ip6.walk(atomic, parsed(atomic))).toMatchObject({ _tag: "Upper", atomicFragment: true })
    const done = receive(re, frag(16, false, p.slice(16), 77))
    expect(typeof done === "object" && "delivered" in done && same(done.delivered.subarray(40), p)).toBe(true)
  })

  it("the first fragment's next header and unfragmentable part make the packet; extension headers after the fragment header stay", () => {
    const re = new Reassembler(CFG)
    const after = [...optionsHeader(Ip6.NH_UDP, [0x1e, 2, 1, 2]), ...pattern(24, 4)] // 32 bytes: destination options, then UDP bytes
    const before = optionsHeader(Ip6.NH_FRAGMENT, [])
    const f0 = packet(Ip6.NH_DEST_OPTS, [...before, ...fragmentHeader(Ip6.NH_DEST_OPTS, 0, true, 9), ...after.slice(0, 16)])
    // the later fragment names another next header and has no unfragmentable options: the first one's rule
    const f1 = packet(Ip6.NH_FRAGMENT, [...fragmentHeader(Ip6.NH_TCP, 16, false, 9), ...after.slice(16)])
    expect(receive(re, f1)).toBe("pending")
    const done = receive(re, f0)
    if (typeof done !== "object" || !("delivered" in done)) throw new Error(JSON.stringify(done))
    const b = done.delivered
    expect(toHex(b)).toBe(toHex(packet(Ip6.NH_DEST_OPTS, [...optionsHeader(Ip6.NH_DEST_OPTS, []), ...after])))
    expect(Ip6.walk(b, parsed(b))).toMatchObject({ _tag: "Upper", proto: Ip6.NH_UDP, offset: 40 + 8 + 8 })
  })

  it("a reassembled payload may not pass 65535 bytes: checked per fragment, and again with the first fragment's headers", () => {
    const re = new Reassembler({ ...CFG, maxBytes: 1 << 20 })
    // each fragment is fine on its own: the later ones carry no options and end at 65528...
    expect(receive(re, packet(Ip6.NH_FRAGMENT, [...fragmentHeader(Ip6.NH_UDP, 65520, false, 3), ...pattern(8)]))).toBe("pending")
    expect(receive(re, packet(Ip6.NH_FRAGMENT, [...fragmentHeader(Ip6.NH_UDP, 8, true, 3), ...new Uint8Array(65512).fill(1)]))).toBe("pending")
    // ...but the first one has 768 bytes of destination options before its fragment header: 768 + 65528 > 65535
    const opts = [0x1e, 253, ...new Array<number>(253).fill(7)]
    const first = packet(Ip6.NH_DEST_OPTS, [...optionsHeader(Ip6.NH_FRAGMENT, [...opts, ...opts, ...opts]), ...fragmentHeader(Ip6.NH_UDP, 0, true, 3), ...pattern(8)])
    expect(Ip6.walk(first, parsed(first))).toMatchObject({ _tag: "Fragment", headerAt: 40 + 768 })
    expect(receive(re, first)).toEqual({ dropped: "BadLength" })
    expect(re.inProgress).toBe(0)
  })
})

describe("IPv6 reassembly: bounds (the IPv4 ones, per /64)", () => {
  const firstOf = (ident: number, src = IP1) => split(udpPacket(2000, ident, src), 1280, ident)[0]!

  it("a full table evicts the oldest incomplete datagram", () => {
    const re = new Reassembler(CFG)
    const srcs = ["2001:db8:1::1", "2001:db8:2::1", "2001:db8:3::1", "2001:db8:4::1", "2001:db8:5::1"].map(addr)
    srcs.forEach((s, i) => expect(receive(re, firstOf(i, s), i)).toBe("pending"))
    expect(re.inProgress).toBe(4)
    expect(re.evictions).toBe(1)
    expect(re.inProgressFrom(srcs[0]!)).toBe(0)
    expect(re.inProgressFrom(srcs[4]!)).toBe(1)
  })

  it("the per-source bound counts a /64: a host cycling addresses in its /64 only pushes out its own", () => {
    const re = new Reassembler({ ...CFG, maxDatagrams: 8, maxPerSource: 2 })
    expect(receive(re, firstOf(1, addr("2001:db8:9::1")))).toBe("pending") // someone else
    for (let i = 0; i < 6; i++) expect(receive(re, firstOf(10 + i, addr(`2001:db8:7::${i + 1}`)))).toBe("pending")
    expect(re.inProgressFrom(addr("2001:db8:7::ffff"))).toBe(2)
    expect(re.inProgressFrom(addr("2001:db8:9::1"))).toBe(1)
    expect(re.inProgress).toBe(3)
    expect(re.evictions).toBe(4)
  })

  it("link-local sources count one by one (they all share fe80::/64)", () => {
    const re = new Reassembler({ ...CFG, maxDatagrams: 8, maxPerSource: 1 })
    expect(receive(re, firstOf(1, LL1))).toBe("pending")
    expect(receive(re, firstOf(2, LL2))).toBe("pending")
    expect(re.inProgress).toBe(2)
    expect(re.inProgressFrom(LL1)).toBe(1)
  })

  it("buffered bytes stay within maxBytes; a datagram needing more than all of it is refused", () => {
    const re = new Reassembler({ ...CFG, maxBytes: 4096 })
    const frags = split(udpPacket(6000), 1280, 1)
    expect(receive(re, frags[0]!)).toBe("pending")
    expect(receive(re, frags[4]!)).toEqual({ dropped: "ReassemblyLimit" }) // the last fragment: the total is 6008 > 4096
    expect(re.bufferedBytes).toBe(0)
  })

  it("fragmentPlan: 8-byte multiples that fill the MTU, and 1232 bytes at the IPv6 minimum MTU", () => {
    expect(fragmentPlan(4008, 1280)).toEqual([[0, 1232], [1232, 1232], [2464, 1232], [3696, 312]])
    expect(fragmentPlan(0, 1500)).toEqual([[0, 0]])
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65_000 }), fc.integer({ min: 1280, max: 65_535 }), (n, mtu) => {
        const plan = fragmentPlan(n, mtu)
        expect(plan.reduce((s, [, l]) => s + l, 0)).toBe(n)
        plan.forEach(([o, l], i) => {
          expect(o % 8).toBe(0)
          expect(48 + l).toBeLessThanOrEqual(mtu)
          if (i < plan.length - 1) expect(l % 8).toBe(0)
          if (i < plan.length - 1) expect(48 + l).toBeGreaterThan(mtu - 8)
        })
      })
    )
  })
})
