import { describe, expect, it } from "vitest"
import { DEFAULT_SYN_LIMIT, SynLimiter } from "../../../src/protocols/tcp/synLimit.js"

const count = (l: SynLimiter, src: number, n: number, now: number): number => {
  let ok = 0
  for (let i = 0; i < n; i++) if (l.admit(src, now)) ok++
  return ok
}

describe("SynLimiter (cookie SYN-ACKs per source and in all)", () => {
  it("a source gets its burst, then its rate; another source is not affected by the first one's flood", () => {
    const l = new SynLimiter({ perSource: 100, total: 1000, maxSources: 16, burstMs: 1000 })
    expect(count(l, 1, 500, 0)).toBe(100)
    expect(count(l, 2, 5, 0)).toBe(5)
    expect(count(l, 1, 500, 500)).toBe(50) // half a second refills half the bucket
    expect(count(l, 1, 500, 10_000)).toBe(100) // never more than the burst
  })
  it("all sources together get at most the total rate", () => {
    const l = new SynLimiter({ perSource: 100, total: 250, maxSources: 1000, burstMs: 1000 })
    let ok = 0
    for (let s = 0; s < 100; s++) ok += count(l, s, 10, 0)
    expect(ok).toBe(250)
    ok = 0
    for (let s = 100; s < 200; s++) ok += count(l, s, 10, 1000)
    expect(ok).toBe(250)
  })
  it("the source table is bounded: the source seen first is forgotten first", () => {
    const l = new SynLimiter({ perSource: 2, total: 1e9, maxSources: 3, burstMs: 1000 })
    expect(count(l, 1, 5, 0)).toBe(2)
    count(l, 2, 1, 0)
    count(l, 3, 1, 0)
    count(l, 4, 1, 0) // forgets source 1
    expect(l.trackedSources).toBe(3)
    expect(count(l, 1, 5, 0)).toBe(2) // a fresh bucket
  })
  it("by default a burst is a tenth of a second's worth: a flood's onset gets 100 answers from one source, not 1000", () => {
    const l = new SynLimiter(DEFAULT_SYN_LIMIT)
    expect(count(l, 1, 5000, 0)).toBe(100)
    expect(count(l, 1, 5000, 50)).toBe(50) // then the rate: 1000 a second
    expect(count(l, 1, 5000, 10_000)).toBe(100)
    // in all: 2000 at once (a tenth of 20 000), from sources that each stay under their own burst
    let ok = 0
    for (let s = 100; s < 200; s++) ok += count(l, s, 50, 20_000)
    expect(ok).toBe(2000)
  })
})
