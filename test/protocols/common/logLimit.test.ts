import { describe, expect, it } from "@effect/vitest"
import * as LogLimit from "../../../src/protocols/logLimit.js"

describe("LogLimit: a few lines per kind per second, then one summary", () => {
  it("prints the first 5 of a kind in a second, counts the rest, and sums them up when the window ends", () => {
    const l = LogLimit.make(5)
    const out: Array<string> = []
    const admitted = Array.from({ length: 417 }, (_, i) => LogLimit.admit(l, "connections refused", 10 + i, out))
    expect(admitted.filter((x) => x)).toHaveLength(5)
    expect(admitted.slice(0, 5).every((x) => x)).toBe(true)
    expect(l.suppressed).toBe(412)
    expect(out).toEqual([])
    LogLimit.flush(l, 1_010, out)
    expect(out).toEqual(["412 connections refused in the last second (not logged one by one)"])
    // a new window prints again
    expect(LogLimit.admit(l, "connections refused", 1_020, out)).toBe(true)
  })

  it("kinds are counted apart; a quiet kind is summed up by the next admit too, and forgotten by flush", () => {
    const l = LogLimit.make(1)
    const out: Array<string> = []
    expect(LogLimit.admit(l, "a", 0, out)).toBe(true)
    expect(LogLimit.admit(l, "a", 1, out)).toBe(false)
    expect(LogLimit.admit(l, "b", 2, out)).toBe(true)
    expect(LogLimit.admit(l, "a", 1_500, out)).toBe(true)
    expect(out).toEqual(["1 a in the last second (not logged one by one)"])
    LogLimit.flush(l, 5_000, out)
    LogLimit.flush(l, 6_000, out)
    expect(l.kinds.size).toBe(0)
  })

  it("the table of kinds is bounded: past maxKinds new kinds share one bucket", () => {
    const l = LogLimit.make(1, 3)
    const out: Array<string> = []
    for (let i = 0; i < 100; i++) LogLimit.admit(l, `kind ${i}`, 0, out)
    expect(l.kinds.size).toBeLessThanOrEqual(4)
    expect(l.kinds.has(LogLimit.OTHER_KIND)).toBe(true)
    expect(l.suppressed).toBe(96)
  })
})
