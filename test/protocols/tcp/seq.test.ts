import { describe, expect, it } from "vitest"
import * as fc from "fast-check"
import { inWindow, seq, seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from "../../../src/protocols/tcp/seq.js"

describe("tcp seq", () => {
  it("wraps around 2^32", () => {
    const a = seq(0xffffff00)
    const b = seqAdd(a, 0x200)
    expect(b).toBe(0x100)
    expect(seqLt(a, b)).toBe(true)
    expect(seqGt(b, a)).toBe(true)
    expect(seqDiff(b, a)).toBe(0x200)
    expect(seqDiff(a, b)).toBe(-0x200)
    expect(seqLe(a, a)).toBe(true)
    expect(seqGe(a, a)).toBe(true)
    expect(inWindow(seq(5), a, 0x200)).toBe(true)
    expect(inWindow(b, a, 0x200)).toBe(false)
    expect(inWindow(a, a, 0)).toBe(false)
  })
  it("ordering is antisymmetric within 2^31", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 0x7fffffff }), (x, d) => {
        const a = seq(x)
        const b = seqAdd(a, d)
        expect(seqLt(a, b)).toBe(true)
        expect(seqLt(b, a)).toBe(false)
        expect(seqDiff(b, a)).toBe(d)
        expect(inWindow(seqAdd(a, d - 1), a, d)).toBe(true)
      })
    )
  })
})
