import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { parseIpv4 } from "../../../src/protocols/address.js"
import * as Cs from "../../../src/protocols/checksum.js"
import { isDrop } from "../../../src/protocols/drop.js"
import * as Eth from "../../../src/protocols/ethernet/wire.js"
import * as Icmp from "../../../src/protocols/icmp/wire.js"
import * as Ip from "../../../src/protocols/ipv4/wire.js"
import { DEFAULT_CONFIG, fragmentPlan, Reassembler, type ReassemblyConfig } from "../../../src/protocols/ipv4/reassembly.js"
import { frame } from "../common/fixtures.js"

const SRC = parseIpv4("198.51.100.1")!
const DST = parseIpv4("198.51.100.2")!
const CFG: ReassemblyConfig = { maxDatagrams: 4, maxPerSource: 4, maxBytes: 16_384, timeoutMs: 1_000 }

interface Frag {
  readonly offset: number
  readonly mf: boolean
  readonly data: Uint8Array
}

/** Split a payload the way a sender would, with fragmentPlan. */
const split = (payload: Uint8Array, mtu: number): Array<Frag> => {
  const plan = fragmentPlan(payload.length, mtu)
  return plan.map(([o, n], i) => ({ offset: o, mf: i < plan.length - 1, data: payload.slice(o, o + n) }))
}

const addAll = (r: Reassembler, frags: ReadonlyArray<Frag>, ident = 1, nowMs = 0): Array<ReturnType<Reassembler["add"]>> =>
  frags.map((f) => r.add(SRC, DST, Ip.PROTO_UDP, ident, f.offset, f.mf, f.data, nowMs))

const pattern = (n: number, seed = 0): Uint8Array => {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed + (i >>> 8)) & 0xff
  return b
}

/** Byte equality without the cost of a deep-equality matcher on large arrays. */
const same = (a: unknown, b: Uint8Array): boolean => a instanceof Uint8Array && Buffer.compare(a, b) === 0

const permutations = <T>(xs: ReadonlyArray<T>): Array<Array<T>> =>
  xs.length <= 1 ? [[...xs]] : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]))

describe("Reassembler: the captured ping -s 4000", () => {
  const captured = ["ipv4-frag-1", "ipv4-frag-2", "ipv4-frag-3"].map((n) => {
    const b = frame(n).subarray(Eth.HEADER_LEN)
    const r = Ip.parse(b, true)
    if (isDrop(r)) throw new Error(`${n}: ${r}`)
    return { r, data: Ip.payload(b, r) }
  })

  it("the kernel's fragmentation is exactly fragmentPlan(4008, 1500)", () => {
    expect(captured.map(({ r }) => [r.fragmentOffset, r.payloadLen])).toEqual(fragmentPlan(4008, 1500))
  })

  it("reassembles in every order to the 4008-byte echo request whose ICMP checksum verifies", () => {
    for (const order of permutations([0, 1, 2])) {
      const re = new Reassembler(CFG)
      const results = order.map((i) => {
        const { r, data } = captured[i]!
        return re.add(r.src, r.dst, r.protocol, r.ident, r.fragmentOffset, r.moreFragments, data, 0)
      })
      expect(results.slice(0, 2)).toEqual([undefined, undefined])
      const whole = results[2]
      if (!(whole instanceof Uint8Array)) throw new Error(`order ${order}: ${String(whole)}`)
      expect(whole.length).toBe(4008)
      expect(Cs.verifies(Cs.sum(whole, 0, whole.length))).toBe(true)
      expect(Icmp.parse(whole, true)).toEqual({ type: Icmp.TYPE_ECHO_REQUEST, code: 0, rest: 0x20d10001, payloadLen: 4000 })
      expect(re.bufferedBytes).toBe(0)
      expect(re.inProgress).toBe(0)
    }
  })
})

describe("Reassembler: ordering, duplicates, overlaps", () => {
  it("in-order, reverse-order and random-order fragments reassemble to the exact payload, with duplicates (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9000 }),
        fc.integer({ min: 68, max: 1500 }),
        fc.constantFrom("in", "reverse", "random"),
        fc.array(fc.nat(), { maxLength: 64 }),
        fc.array(fc.nat(), { maxLength: 3 }),
        (len, mtu, how, keys, dups) => {
          const payload = pattern(len, len)
          const frags = split(payload, mtu)
          let order = frags.map((_, i) => i)
          if (how === "reverse") order.reverse()
          if (how === "random") order = order.map((i) => [keys[i % Math.max(1, keys.length)]! ^ (i * 2654435761), i] as const).sort((a, b) => a[0] - b[0]).map(([, i]) => i)
          // duplicates of fragments already sent go in before the last fragment
          const seq = order.map((i) => frags[i]!)
          const last = seq.pop()!
          const sent = seq.length
          if (sent > 0) for (const d of dups) seq.push(seq[d % sent]!)
          seq.push(last)
          const re = new Reassembler({ ...CFG, maxBytes: 1 << 20 })
          const results = addAll(re, seq)
          const done = results.filter((x) => x instanceof Uint8Array)
          const completedAt = results.findIndex((x) => x instanceof Uint8Array)
          expect(done.length).toBe(1)
          expect(same(done[0], payload)).toBe(true)
          expect(results.every((x, i) => (i === completedAt ? true : x === undefined))).toBe(true)
          // all fragments after completion (none here) would start a new datagram
          expect(completedAt).toBe(results.length - 1)
          expect(re.bufferedBytes).toBe(0)
          expect(re.inProgress).toBe(0)
        }
      )
    )
  })

  it("a partially overlapping fragment discards the whole datagram, even when its bytes agree (FragmentOverlap)", () => {
    const payload = pattern(40)
    const re = new Reassembler(CFG)
    const frag = (o: number, e: number, mf: boolean) => re.add(SRC, DST, 17, 9, o, mf, payload.slice(o, e), 0)
    expect(frag(8, 24, true)).toBeUndefined()
    expect(frag(0, 16, true)).toBe("FragmentOverlap")
    expect(re.inProgress).toBe(0)
    expect(re.bufferedBytes).toBe(0)
    // the rest of that datagram starts afresh and, lacking [8, 24), never completes
    expect(frag(32, 40, false)).toBeUndefined()
    expect(frag(16, 32, true)).toBeUndefined()
    expect(re.inProgress).toBe(1)
  })

  it("a fragment covering data already received (a superset) is an overlap, not a completion", () => {
    const payload = pattern(48)
    const re = new Reassembler(CFG)
    expect(re.add(SRC, DST, 17, 9, 8, true, payload.slice(8, 16), 0)).toBeUndefined()
    expect(re.add(SRC, DST, 17, 9, 40, false, payload.slice(40), 0)).toBeUndefined()
    expect(re.add(SRC, DST, 17, 9, 0, true, payload.slice(0, 40), 0)).toBe("FragmentOverlap")
    expect(re.inProgress).toBe(0)
    expect(re.bufferedBytes).toBe(0)
  })

  it("the classic rewrite (a later fragment changing bytes already held) never reaches the transport", () => {
    // e.g. a second fragment at offset 0 rewriting the transport header after a firewall saw the first
    const honest = pattern(24, 1)
    const evil = honest.slice(0, 8)
    evil[2] = evil[2]! ^ 0xff
    const re = new Reassembler(CFG)
    expect(re.add(SRC, DST, 6, 3, 0, true, honest.slice(0, 8), 0)).toBeUndefined()
    expect(re.add(SRC, DST, 6, 3, 0, true, evil, 0)).toBe("FragmentOverlap")
    expect(re.add(SRC, DST, 6, 3, 8, false, honest.slice(8), 0)).toBeUndefined()
    expect(re.inProgress).toBe(1)
    expect(re.duplicates).toBe(0)
  })

  it("an exact duplicate is ignored and the datagram kept; so is a copy of bytes inside one received run", () => {
    const payload = pattern(40)
    const re = new Reassembler(CFG)
    const frag = (o: number, e: number, mf: boolean) => re.add(SRC, DST, 17, 9, o, mf, payload.slice(o, e), 0)
    expect(frag(0, 16, true)).toBeUndefined()
    expect(frag(16, 24, true)).toBeUndefined()
    expect(frag(0, 16, true)).toBeUndefined() // exact duplicate
    expect(frag(8, 24, true)).toBeUndefined() // same bytes, inside the run [0, 24)
    expect(re.duplicates).toBe(2)
    expect(frag(32, 40, false)).toBeUndefined()
    expect(frag(32, 40, false)).toBeUndefined() // the last fragment again
    expect(re.duplicates).toBe(3)
    expect(frag(24, 32, true)).toEqual(payload)
    expect(re.bufferedBytes).toBe(0)
  })

  it("a duplicate of the last fragment completes a datagram whose data was all there (total learnt from it)", () => {
    const payload = pattern(24)
    const re = new Reassembler(CFG)
    expect(re.add(SRC, DST, 17, 9, 0, true, payload.slice(0, 24), 0)).toBeUndefined()
    // bytes [16, 24) again, now saying they are the end: the datagram is complete
    expect(re.add(SRC, DST, 17, 9, 16, false, payload.slice(16), 0)).toEqual(payload)
    expect(re.duplicates).toBe(1)
    expect(re.inProgress).toBe(0)
  })

  it("a contained fragment with different bytes discards the datagram, and any shared byte counts (property)", () => {
    fc.assert(
      fc.property(fc.nat(7), fc.nat(7), fc.integer({ min: 1, max: 8 }), fc.nat(63), (a, b, n, flip) => {
        // received: [8a, 8a+64); new fragment [8b, 8b+8n), which overlaps iff it starts before 8a+64 and ends after 8a
        const held = pattern(64, 3)
        const s = 8 * b
        const e = s + 8 * n
        const re = new Reassembler(CFG)
        expect(re.add(SRC, DST, 17, 1, 8 * a, true, held, 0)).toBeUndefined()
        const frag = new Uint8Array(e - s)
        for (let i = s; i < e; i++) frag[i - s] = i >= 8 * a && i < 8 * a + 64 ? held[i - 8 * a]! : 0x5a
        const inside = s >= 8 * a && e <= 8 * a + 64
        const shares = s < 8 * a + 64 && e > 8 * a
        if (inside) frag[flip % frag.length] = frag[flip % frag.length]! ^ 1 // not a true duplicate any more
        const r = re.add(SRC, DST, 17, 1, s, true, frag, 0)
        expect(r).toBe(shares ? "FragmentOverlap" : undefined)
        expect(re.duplicates).toBe(0)
      })
    )
  })

  it("a duplicate arriving after completion starts a new datagram that times out", () => {
    const frags = split(pattern(3000), 1500)
    const re = new Reassembler(CFG)
    expect(addAll(re, frags).at(-1)).toBeInstanceOf(Uint8Array)
    expect(addAll(re, [frags[0]!], 1, 10)).toEqual([undefined])
    expect(re.inProgress).toBe(1)
    expect(re.bufferedBytes).toBeGreaterThan(0)
    expect(re.nextDeadline()).toBe(10 + CFG.timeoutMs)
    expect(re.expire(10 + CFG.timeoutMs)).toBe(1)
    expect(re.bufferedBytes).toBe(0)
  })

  it("datagrams are keyed by (src, dst, protocol, ident)", () => {
    const a = pattern(24, 1)
    const b = pattern(24, 2)
    const re = new Reassembler(CFG)
    expect(re.add(SRC, DST, 17, 5, 0, true, a.slice(0, 16), 0)).toBeUndefined()
    expect(re.add(SRC, DST, 1, 5, 0, true, b.slice(0, 16), 0)).toBeUndefined()
    expect(re.add(DST, SRC, 17, 5, 16, false, b.slice(16), 0)).toBeUndefined()
    expect(re.add(SRC, DST, 17, 6, 16, false, b.slice(16), 0)).toBeUndefined()
    expect(re.inProgress).toBe(4)
    expect(re.add(SRC, DST, 17, 5, 16, false, a.slice(16), 0)).toEqual(a)
    expect(re.add(SRC, DST, 1, 5, 16, false, b.slice(16), 0)).toEqual(b)
    expect(re.inProgress).toBe(2)
  })
})

describe("Reassembler: malformed fragments", () => {
  it("a non-last fragment must carry a non-zero multiple of 8 bytes", () => {
    const re = new Reassembler(CFG)
    expect(re.add(SRC, DST, 17, 1, 0, true, new Uint8Array(12), 0)).toBe("BadLength")
    expect(re.add(SRC, DST, 17, 1, 0, true, new Uint8Array(0), 0)).toBe("BadLength")
    expect(re.inProgress).toBe(0)
  })

  it("a datagram beyond 65535 bytes (with its 20-byte header) is rejected", () => {
    const re = new Reassembler({ ...CFG, maxBytes: 1 << 20 })
    // 65515 payload bytes is the largest legal: offset 65512 + 3 bytes
    expect(re.add(SRC, DST, 17, 1, 65512, false, new Uint8Array(3), 0)).toBeUndefined()
    expect(re.add(SRC, DST, 17, 2, 65512, false, new Uint8Array(4), 0)).toBe("BadLength")
    expect(re.add(SRC, DST, 17, 3, 65512, true, new Uint8Array(8), 0)).toBe("BadLength")
    expect(re.add(SRC, DST, 17, 4, 0x1fff * 8, false, new Uint8Array(1), 0)).toBe("BadLength")
  })

  it("two last fragments that disagree on the length discard the datagram", () => {
    const re = new Reassembler(CFG)
    expect(re.add(SRC, DST, 17, 1, 0, true, new Uint8Array(8), 0)).toBeUndefined()
    expect(re.add(SRC, DST, 17, 1, 16, false, new Uint8Array(8), 0)).toBeUndefined()
    expect(re.add(SRC, DST, 17, 1, 16, false, new Uint8Array(4), 0)).toBe("Malformed")
    expect(re.inProgress).toBe(0)
    expect(re.bufferedBytes).toBe(0)
  })

  it("a fragment past the end set by the last fragment discards the datagram", () => {
    const re = new Reassembler(CFG)
    expect(re.add(SRC, DST, 17, 1, 16, false, new Uint8Array(8), 0)).toBeUndefined()
    expect(re.add(SRC, DST, 17, 1, 16, true, new Uint8Array(16), 0)).toBe("Malformed")
    expect(re.inProgress).toBe(0)
    expect(re.bufferedBytes).toBe(0)
  })

  it("a last fragment ending before data already received discards the datagram", () => {
    const re = new Reassembler(CFG)
    expect(re.add(SRC, DST, 17, 1, 0, true, new Uint8Array(32), 0)).toBeUndefined()
    expect(re.add(SRC, DST, 17, 1, 8, false, new Uint8Array(8), 0)).toBe("Malformed")
    expect(re.inProgress).toBe(0)
    expect(re.bufferedBytes).toBe(0)
  })
})

describe("Reassembler: limits and timeouts", () => {
  it("an incomplete datagram is discarded timeoutMs after its first fragment", () => {
    const frags = split(pattern(3000), 1500)
    const re = new Reassembler(CFG)
    expect(addAll(re, [frags[0]!], 1, 0)).toEqual([undefined])
    expect(re.nextDeadline()).toBe(CFG.timeoutMs)
    expect(addAll(re, [frags[1]!], 1, CFG.timeoutMs - 1)).toEqual([undefined])
    expect(re.expire(CFG.timeoutMs - 1)).toBe(0)
    // the last fragment arrives at the deadline: the old datagram is gone, this one starts afresh
    expect(addAll(re, [frags[2]!], 1, CFG.timeoutMs)).toEqual([undefined])
    expect(re.timeouts).toBe(1)
    expect(re.inProgress).toBe(1)
    expect(re.expire(2 * CFG.timeoutMs)).toBe(1)
    expect(re.timeouts).toBe(2)
    expect(re.bufferedBytes).toBe(0)
    expect(re.nextDeadline()).toBeUndefined()
  })

  it("maxDatagrams: a new datagram evicts the oldest incomplete one; memory is freed on expiry", () => {
    const re = new Reassembler(CFG)
    for (let id = 0; id < CFG.maxDatagrams; id++) expect(re.add(SRC, DST, 17, id, 0, true, new Uint8Array(8), id)).toBeUndefined()
    expect(re.add(SRC, DST, 17, 99, 0, true, new Uint8Array(8), 10)).toBeUndefined()
    expect(re.evictions).toBe(1)
    expect(re.inProgress).toBe(CFG.maxDatagrams)
    // datagram 0 (the oldest) is gone: its last fragment starts a new datagram (evicting 1)
    expect(re.add(SRC, DST, 17, 0, 8, false, new Uint8Array(8), 11)).toBeUndefined()
    expect(re.evictions).toBe(2)
    // datagram 3 is still there and completes
    expect(re.add(SRC, DST, 17, 3, 8, false, new Uint8Array(8), 12)).toEqual(new Uint8Array(16))
    expect(re.add(SRC, DST, 17, 99, 8, false, new Uint8Array(8), 12)).toEqual(new Uint8Array(16))
    expect(re.evictions).toBe(2)
    re.expire(11 + CFG.timeoutMs)
    expect(re.inProgress).toBe(0)
    expect(re.bufferedBytes).toBe(0)
  })

  it("maxPerSource: a source at its cap evicts its own oldest datagram, never another source's", () => {
    const cfg: ReassemblyConfig = { ...CFG, maxDatagrams: 8, maxPerSource: 3 }
    const re = new Reassembler(cfg)
    const OTHER = parseIpv4("198.51.100.7")!
    expect(re.add(OTHER, DST, 17, 1, 0, true, new Uint8Array(8), 0)).toBeUndefined()
    for (let id = 0; id < 10; id++) expect(re.add(SRC, DST, 17, id, 0, true, new Uint8Array(8), 1 + id)).toBeUndefined()
    expect(re.inProgressFrom(SRC)).toBe(3)
    expect(re.inProgressFrom(OTHER)).toBe(1)
    expect(re.inProgress).toBe(4)
    expect(re.evictions).toBe(7)
    // OTHER's datagram, the oldest of all, survived the flood and completes
    expect(re.add(OTHER, DST, 17, 1, 8, false, new Uint8Array(8), 20)).toEqual(new Uint8Array(16))
    // SRC keeps its three newest (7, 8, 9)
    expect(re.add(SRC, DST, 17, 9, 8, false, new Uint8Array(8), 20)).toEqual(new Uint8Array(16))
    expect(re.add(SRC, DST, 17, 7, 8, false, new Uint8Array(8), 20)).toEqual(new Uint8Array(16))
    expect(re.add(SRC, DST, 17, 6, 8, false, new Uint8Array(8), 20)).toBeUndefined()
    expect(re.inProgressFrom(SRC)).toBe(2)
  })

  it("64 incomplete 64 KiB datagrams from 64 sources do not stop a later fragmented ping (the default limits)", () => {
    const re = new Reassembler()
    for (let i = 0; i < 64; i++) {
      const src = parseIpv4(`198.51.100.${100 + i}`)!
      // the last fragment only: the whole 65515-byte buffer at once, data never completes
      expect(re.add(src, DST, 1, i, 65504, false, new Uint8Array(11), 0)).toBeUndefined()
    }
    expect(re.inProgress).toBe(64)
    expect(re.bufferedBytes).toBe(64 * 65515)
    const ping = pattern(4008)
    const results = addAll(re, split(ping, 1500), 0x4242, 5)
    expect(same(results.at(-1), ping)).toBe(true)
    expect(re.evictions).toBeGreaterThanOrEqual(1)
    expect(re.bufferedBytes).toBeLessThanOrEqual(DEFAULT_CONFIG.maxBytes)
  })

  it("maxBytes: a datagram that would exceed it is discarded with ReassemblyLimit and its memory freed", () => {
    const re = new Reassembler({ ...CFG, maxBytes: 4_000 })
    const frags = split(pattern(6000), 1500)
    const results = addAll(re, frags)
    expect(results).toContain("ReassemblyLimit")
    expect(results.some((x) => x instanceof Uint8Array)).toBe(false)
    expect(re.bufferedBytes).toBe(0)
    expect(re.inProgress).toBe(0)
  })

  it("maxBytes is shared: a second datagram that needs the memory evicts the older one", () => {
    const re = new Reassembler({ ...CFG, maxBytes: 4_000 })
    expect(re.add(SRC, DST, 17, 1, 2992, false, new Uint8Array(8), 0)).toBeUndefined()
    expect(re.bufferedBytes).toBe(3000)
    expect(re.add(SRC, DST, 17, 2, 1992, false, new Uint8Array(8), 1)).toBeUndefined()
    expect(re.evictions).toBe(1)
    expect(re.bufferedBytes).toBe(2000)
    expect(re.inProgress).toBe(1)
    // a datagram that fits beside it evicts nothing
    expect(re.add(SRC, DST, 17, 3, 992, false, new Uint8Array(8), 2)).toBeUndefined()
    expect(re.evictions).toBe(1)
    expect(re.bufferedBytes).toBe(3000)
  })

  it("a datagram that fits in maxBytes reassembles whatever the fragment order (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8000 }), fc.integer({ min: 68, max: 1500 }), fc.array(fc.nat(), { minLength: 1, maxLength: 64 }), (len, mtu, keys) => {
        const payload = pattern(len)
        const frags = split(payload, mtu)
        const order = frags.map((f, i) => [keys[i % keys.length]! + i, f] as const).sort((a, b) => a[0] - b[0]).map(([, f]) => f)
        const re = new Reassembler({ ...CFG, maxBytes: len })
        const results = addAll(re, order)
        expect(same(results.at(-1), payload)).toBe(true)
        expect(re.bufferedBytes).toBe(0)
      })
    )
  })

  it("random fragment streams never exceed the limits and always give all memory back (property)", () => {
    const SRCS = [SRC, parseIpv4("198.51.100.9")!, parseIpv4("203.0.113.5")!]
    const fragArb = fc.record({
      src: fc.nat(2),
      ident: fc.nat(5),
      offset: fc.nat(400).map((x) => x * 8),
      mf: fc.boolean(),
      len: fc.nat(1500),
      dt: fc.nat(300)
    })
    fc.assert(
      fc.property(fc.array(fragArb, { maxLength: 60 }), (fs) => {
        const cfg: ReassemblyConfig = { maxDatagrams: 3, maxPerSource: 2, maxBytes: 6_000, timeoutMs: 1_000 }
        const re = new Reassembler(cfg)
        let now = 0
        for (const f of fs) {
          now += f.dt
          const len = f.mf ? Math.max(8, f.len & ~7) : f.len
          const r = re.add(SRCS[f.src]!, DST, 17, f.ident, f.offset, f.mf, pattern(len), now)
          if (r instanceof Uint8Array) {
            // complete: it reaches at least this fragment's end, and exactly to it when this is the last fragment
            // (a lone offset-0 last fragment of 0 bytes is a complete, empty datagram)
            if (f.mf) expect(r.length).toBeGreaterThanOrEqual(f.offset + len)
            else expect(r.length).toBe(f.offset + len)
          }
          expect(re.inProgress).toBeLessThanOrEqual(cfg.maxDatagrams)
          expect(SRCS.map((s) => re.inProgressFrom(s)).reduce((a, b) => a + b, 0)).toBe(re.inProgress)
          for (const s of SRCS) expect(re.inProgressFrom(s)).toBeLessThanOrEqual(cfg.maxPerSource)
          expect(re.bufferedBytes).toBeLessThanOrEqual(cfg.maxBytes)
          expect(re.bufferedBytes).toBeGreaterThanOrEqual(0)
        }
        re.expire(now + cfg.timeoutMs)
        expect(re.inProgress).toBe(0)
        expect(re.bufferedBytes).toBe(0)
      })
    )
  })

  it("whatever incomplete datagrams fill the table, a datagram sent back to back afterwards completes (property)", () => {
    const SRCS = [SRC, parseIpv4("198.51.100.9")!, parseIpv4("203.0.113.5")!, parseIpv4("192.0.2.77")!]
    const junkArb = fc.record({ src: fc.nat(3), ident: fc.nat(40), offset: fc.nat(700).map((x) => x * 8), len: fc.nat(1480).map((x) => Math.max(8, x & ~7)) })
    fc.assert(
      fc.property(fc.array(junkArb, { maxLength: 80 }), fc.nat(3), fc.integer({ min: 1, max: 6000 }), fc.integer({ min: 68, max: 1500 }), (junk, who, len, mtu) => {
        const cfg: ReassemblyConfig = { maxDatagrams: 6, maxPerSource: 3, maxBytes: 8_000, timeoutMs: 1_000 }
        const re = new Reassembler(cfg)
        for (const j of junk) re.add(SRCS[j.src]!, DST, 17, j.ident, j.offset, true, pattern(j.len), 0)
        const payload = pattern(len, 5)
        const frags = split(payload, mtu)
        const results = frags.map((f) => re.add(SRCS[who]!, DST, 17, 1000, f.offset, f.mf, f.data, 1))
        expect(same(results.at(-1), payload)).toBe(true)
        expect(re.bufferedBytes).toBeLessThanOrEqual(cfg.maxBytes)
      })
    )
  })

  it("has sane defaults", () => {
    expect(new Reassembler().config).toBe(DEFAULT_CONFIG)
    expect(DEFAULT_CONFIG.maxBytes).toBeGreaterThanOrEqual(65535)
    expect(DEFAULT_CONFIG.maxPerSource).toBeLessThan(DEFAULT_CONFIG.maxDatagrams)
    // one source's datagrams at their largest fit in the byte budget with room for others
    expect(DEFAULT_CONFIG.maxPerSource * 65535).toBeLessThan(DEFAULT_CONFIG.maxBytes)
  })
})

describe("fragmentPlan", () => {
  it("covers the payload exactly with 8-byte multiples and respects the MTU (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 65515 }), fc.integer({ min: 68, max: 9000 }), (len, mtu) => {
        const plan = fragmentPlan(len, mtu)
        expect(plan.length).toBeGreaterThan(0)
        let at = 0
        const bad: Array<string> = []
        plan.forEach(([o, n], i) => {
          if (o !== at || o % 8 !== 0 || 20 + n > mtu) bad.push(`[${o}, ${n}] at ${at}`)
          if (i < plan.length - 1 && (n % 8 !== 0 || n <= 0)) bad.push(`[${o}, ${n}] not a non-last size`)
          at += n
        })
        expect(bad).toEqual([])
        expect(at).toBe(len)
        // as few fragments as the MTU allows
        expect(plan.length).toBe(Math.max(1, Math.ceil(len / (Math.floor((mtu - 20) / 8) * 8))))
      })
    )
  })

  it("a payload that fits is one fragment; an empty payload is one empty fragment", () => {
    expect(fragmentPlan(1480, 1500)).toEqual([[0, 1480]])
    expect(fragmentPlan(1481, 1500)).toEqual([
      [0, 1480],
      [1480, 1]
    ])
    expect(fragmentPlan(0, 1500)).toEqual([[0, 0]])
    expect(fragmentPlan(100, 68)).toEqual([
      [0, 48],
      [48, 48],
      [96, 4]
    ])
  })
})
