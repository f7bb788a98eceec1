import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { fromHex } from "../../../src/protocols/bytes.js"
import * as Cs from "../../../src/protocols/checksum.js"

/** Reference: RFC 1071 ones' complement sum, folding after every word (slow and obviously right). */
const refSum = (b: Uint8Array, start: number, end: number): number => {
  let s = 0
  for (let i = start; i < end; i += 2) {
    const w = (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0)
    s += w
    if (s > 0xffff) s = (s & 0xffff) + 1
  }
  return s
}

describe("checksum", () => {
  it("RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2", () => {
    const b = fromHex("0001f203f4f5f6f7")
    expect(Cs.fold(Cs.sum(b, 0, b.length))).toBe(0xddf2)
    expect(Cs.finish(Cs.sum(b, 0, b.length))).toBe(0x220d)
  })

  it("an odd trailing byte is padded with zero on the right", () => {
    const b = fromHex("0102 03")
    expect(Cs.sum(b, 0, 3)).toBe(0x0102 + 0x0300)
  })

  it("the sum of all zeros is +0, whose checksum is 0xffff", () => {
    expect(Cs.finish(Cs.sum(new Uint8Array(10), 0, 10))).toBe(0xffff)
    expect(Cs.verifies(0xffff)).toBe(true)
    expect(Cs.verifies(0)).toBe(false)
  })

  it("fold does not overflow on a maximal 64 KiB buffer of 0xff", () => {
    const b = new Uint8Array(65536).fill(0xff)
    expect(Cs.fold(Cs.sum(b, 0, b.length))).toBe(0xffff)
  })

  it("sum/fold equals the reference for any buffer, range and accumulator split (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(), (b, x, y) => {
        const s = b.length === 0 ? 0 : x % (b.length + 1)
        const e = s + (b.length === 0 ? 0 : y % (b.length - s + 1))
        const expected = refSum(b, s, e)
        const got = Cs.fold(Cs.sum(b, s, e))
        expect(got).toBe(expected)
        // splitting at an even boundary and chaining through `acc` changes nothing
        const mid = s + (((e - s) >>> 1) & ~1)
        expect(Cs.fold(Cs.sum(b, mid, e, Cs.sum(b, s, mid)))).toBe(got)
      })
    )
  })

  it("the wide (16-bit native word) path equals the reference on views at any offset of a shared buffer (property)", () => {
    // Frames from the TAP ring are subarrays of one ArrayBuffer; regions of 64+ bytes at even addresses take
    // the wide path, others the byte path. Both must fold to the same value.
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 70, maxLength: 3000 }), fc.nat(), fc.nat(), fc.nat(), fc.nat(1 << 20), (b, o, x, y, acc) => {
        const view = b.subarray(o % 8)
        const s = x % Math.max(1, view.length - 64)
        const e = s + 64 + (y % Math.max(1, view.length - s - 63))
        expect(Cs.fold(Cs.sum(view, s, Math.min(e, view.length), acc))).toBe(Cs.fold(acc + refSum(view, s, Math.min(e, view.length))))
      }),
      { numRuns: 500 }
    )
  })

  it("storing finish() in a zeroed checksum field makes the region verify (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 2, maxLength: 200 }), fc.nat(), (data, at) => {
        const b = Uint8Array.from(data)
        const o = (at % (b.length >>> 1)) * 2
        b[o] = 0
        b[o + 1] = 0
        const c = Cs.finish(Cs.sum(b, 0, b.length))
        b[o] = c >>> 8
        b[o + 1] = c & 0xff
        expect(Cs.verifies(Cs.sum(b, 0, b.length))).toBe(true)
      })
    )
  })

  it("any single-byte change of a checksummed region is detected (property)", () => {
    // A change of one byte moves the sum by d or d*256 with 0 < |d| < 256: never a multiple of 0xffff.
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 2, maxLength: 200 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (data, at, x) => {
        const b = Uint8Array.from(data)
        b[0] = 0
        b[1] = 0
        const c = Cs.finish(Cs.sum(b, 0, b.length))
        b[0] = c >>> 8
        b[1] = c & 0xff
        const i = at % b.length
        b[i] = b[i]! ^ x
        expect(Cs.verifies(Cs.sum(b, 0, b.length))).toBe(false)
      })
    )
  })

  it("a word changed 0x0000 <-> 0xffff is NOT detected: both are zero in ones' complement (known limit)", () => {
    const b = fromHex("0000 1234 0000 abcd")
    const c = Cs.finish(Cs.sum(b, 0, b.length))
    b[0] = c >>> 8
    b[1] = c & 0xff
    expect(Cs.verifies(Cs.sum(b, 0, b.length))).toBe(true)
    b[4] = 0xff
    b[5] = 0xff
    expect(Cs.verifies(Cs.sum(b, 0, b.length))).toBe(true)
  })

  it("update16 (RFC 1624 eqn. 3) equals a full recompute (property)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4, maxLength: 120 }).filter((b) => b.length % 2 === 0),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffff }),
        (data, at, newWord) => {
          const b = Uint8Array.from(data)
          const words = b.length >>> 1
          // word 0 is the checksum field; change some other word
          const w = 1 + (at % (words - 1))
          b[0] = 0
          b[1] = 0
          const before = Cs.finish(Cs.sum(b, 0, b.length))
          const oldWord = (b[2 * w]! << 8) | b[2 * w + 1]!
          b[2 * w] = newWord >>> 8
          b[2 * w + 1] = newWord & 0xff
          const recomputed = Cs.finish(Cs.sum(b, 0, b.length))
          const updated = Cs.update16(before, oldWord, newWord)
          const allZero = b.every((x) => x === 0)
          if (allZero) {
            // The only divergence: a from-scratch sum of all zeros is +0 (field 0xffff); eqn. 3 yields the
            // other zero, 0x0000 (RFC 1624 §3). Same value in ones' complement.
            expect(recomputed).toBe(0xffff)
            expect(updated).toBe(0x0000)
          } else {
            expect(updated).toBe(recomputed)
          }
        }
      )
    )
  })

  it("update16 on a real IPv4 header: decrementing TTL matches a recompute and verifies", () => {
    // captured echo request header (test/fixtures/wire/icmp-echo-request.hex)
    const h = fromHex("4500 0054 9a88 4000 4001 4bb6 c633 6401 c633 6402")
    expect(Cs.verifies(Cs.sum(h, 0, 20))).toBe(true)
    const oldWord = (h[8]! << 8) | h[9]!
    h[8] = h[8]! - 1
    const newWord = (h[8]! << 8) | h[9]!
    const updated = Cs.update16((h[10]! << 8) | h[11]!, oldWord, newWord)
    h[10] = 0
    h[11] = 0
    expect(updated).toBe(Cs.finish(Cs.sum(h, 0, 20)))
  })

  it("pseudoV4 is the sum of the 12-byte pseudo-header words", () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), fc.nat({ max: 255 }), fc.nat({ max: 0xffff }), (s, d, p, l) => {
        const ph = new Uint8Array(12)
        const dv = new DataView(ph.buffer)
        dv.setUint32(0, s)
        dv.setUint32(4, d)
        ph[9] = p
        dv.setUint16(10, l)
        expect(Cs.fold(Cs.pseudoV4(s, d, p, l))).toBe(Cs.fold(Cs.sum(ph, 0, 12)))
      })
    )
  })
})
