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
const CFG: ReassemblyConfig = { maxDatagrams: 4, maxBytes: 16_384, timeoutMs: 1_000 }

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

  it("overlapping fragments with consistent data reassemble", () => {
    const payload = pattern(40)
    const re = new Reassembler(CFG)
    const frag = (o: number, e: number, mf: boolean) => re.add(SRC, DST, 17, 9, o, mf, payload.slice(o, e), 0)
    expect(frag(8, 24, true)).toBeUndefined()
    expect(frag(0, 16, true)).toBeUndefined()
    expect(frag(32, 40, false)).toBeUndefined()
    expect(frag(16, 32, true)).toEqual(payload)
    expect(re.bufferedBytes).toBe(0)
  })

  it("a fragment covering everything already received completes the datagram", () => {
    const payload = pattern(48)
    const re = new Reassembler(CFG)
    expect(re.add(SRC, DST, 17, 9, 8, true, payload.slice(8, 16), 0)).toBeUndefined()
    expect(re.add(SRC, DST, 17, 9, 40, false, payload.slice(40), 0)).toBeUndefined()
    expect(re.add(SRC, DST, 17, 9, 0, true, payload.slice(0, 40), 0)).toEqual(payload)
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

  it("maxDatagrams: one more datagram is refused with ReassemblyLimit; memory is freed on expiry", () => {
    const re = new Reassembler(CFG)
    for (let id = 0; id < CFG.maxDatagrams; id++) expect(re.add(SRC, DST, 17, id, 0, true, new Uint8Array(8), 0)).toBeUndefined()
    expect(re.add(SRC, DST, 17, 99, 0, true, new Uint8Array(8), 0)).toBe("ReassemblyLimit")
    expect(re.inProgress).toBe(CFG.maxDatagrams)
    // fragments of datagrams already in progress are still taken
    expect(re.add(SRC, DST, 17, 0, 8, false, new Uint8Array(8), 0)).toEqual(new Uint8Array(16))
    expect(re.add(SRC, DST, 17, 99, 0, true, new Uint8Array(8), 0)).toBeUndefined()
    re.expire(CFG.timeoutMs)
    expect(re.inProgress).toBe(0)
    expect(re.bufferedBytes).toBe(0)
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

  it("maxBytes is shared: a second datagram is refused while the first holds the memory", () => {
    const re = new Reassembler({ ...CFG, maxBytes: 4_000 })
    expect(re.add(SRC, DST, 17, 1, 2992, false, new Uint8Array(8), 0)).toBeUndefined()
    expect(re.bufferedBytes).toBe(3000)
    expect(re.add(SRC, DST, 17, 2, 1992, false, new Uint8Array(8), 0)).toBe("ReassemblyLimit")
    expect(re.bufferedBytes).toBe(3000)
    expect(re.inProgress).toBe(1)
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
    const fragArb = fc.record({
      ident: fc.nat(5),
      offset: fc.nat(400).map((x) => x * 8),
      mf: fc.boolean(),
      len: fc.nat(1500),
      dt: fc.nat(300)
    })
    fc.assert(
      fc.property(fc.array(fragArb, { maxLength: 60 }), (fs) => {
        const cfg: ReassemblyConfig = { maxDatagrams: 3, maxBytes: 6_000, timeoutMs: 1_000 }
        const re = new Reassembler(cfg)
        let now = 0
        for (const f of fs) {
          now += f.dt
          const len = f.mf ? Math.max(8, f.len & ~7) : f.len
          const r = re.add(SRC, DST, 17, f.ident, f.offset, f.mf, pattern(len), now)
          if (r instanceof Uint8Array) {
            // complete: it reaches at least this fragment's end, and exactly to it when this is the last fragment
            // (a lone offset-0 last fragment of 0 bytes is a complete, empty datagram)
            if (f.mf) expect(r.length).toBeGreaterThanOrEqual(f.offset + len)
            else expect(r.length).toBe(f.offset + len)
          }
          expect(re.inProgress).toBeLessThanOrEqual(cfg.maxDatagrams)
          expect(re.bufferedBytes).toBeLessThanOrEqual(cfg.maxBytes)
          expect(re.bufferedBytes).toBeGreaterThanOrEqual(0)
        }
        re.expire(now + cfg.timeoutMs)
        expect(re.inProgress).toBe(0)
        expect(re.bufferedBytes).toBe(0)
      })
    )
  })

  it("has sane defaults", () => {
    expect(new Reassembler().config).toBe(DEFAULT_CONFIG)
    expect(DEFAULT_CONFIG.maxBytes).toBeGreaterThanOrEqual(65535)
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
