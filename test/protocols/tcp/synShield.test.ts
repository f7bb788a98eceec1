/**
 * The SYN shield: which sources (and what share of the others) the link's SYN filter should drop, judged
 * once a window from the limiter's refusals and, for listed sources, from the sample the filter lets through.
 */
import { describe, expect, it } from "vitest"
import { DEFAULT_SYN_SHIELD, MAX_ALL_LEVEL, SynShield } from "../../../src/protocols/tcp/synShield.js"

const cfg = { ...DEFAULT_SYN_SHIELD, perSource: 1000, total: 20_000 }
const A = 0xc6336403 // 198.51.100.3
const B = 0xc6336404

/** `n` refusals (and as many bare SYNs) from `src` at time `t`. */
const refuse = (s: SynShield, src: number, n: number, t: number): void => {
  for (let i = 0; i < n; i++) {
    s.syn(src)
    s.refused(src, t)
  }
}

describe("SynShield", () => {
  it("judges nothing without refusals: bare SYNs alone open no window", () => {
    const s = new SynShield(cfg)
    for (let i = 0; i < 50_000; i++) s.syn(A)
    expect(s.dueAt).toBe(Infinity)
    expect(s.active).toBe(false)
  })

  it("the first refusal opens a one-second window; a source refused a tenth of its rate joins the list at once", () => {
    const s = new SynShield(cfg)
    expect(s.refused(A, 5000)).toBe("window") // starts the window
    expect(s.refused(A, 5001)).toBeUndefined()
    expect(s.dueAt).toBe(6000)
    for (let i = 0; i < 97; i++) expect(s.refused(A, 5100)).toBeUndefined()
    expect(s.refused(A, 5100)).toBe("join") // the 100th: a tenth of 1000/s
    expect(s.join(A)).toEqual({ sources: [A], allLevel: 0 })
    expect(s.refused(A, 5100)).toBeUndefined() // listed: its refusals no longer count toward joining
    refuse(s, B, 99, 5100)
    expect(s.sources).toEqual([A])
    // the window's end confirms A (refused before it joined) and not B; nothing changed
    expect(s.tick(6000)).toBeUndefined()
    expect(s.sources).toEqual([A])
    expect(s.active).toBe(true)
    expect(s.dueAt).toBe(7000)
  })

  it("a source that crossed the threshold without joining (the list was full) is listed at the window's end if it is busier", () => {
    const s = new SynShield({ ...cfg, maxSources: 1 })
    refuse(s, A, 100, 0)
    s.join(A)
    for (let i = 0; i < 200; i++) expect(s.refused(B, 0)).not.toBe("join") // the list is full
    // A had 100 refused, B 200: B is the busier
    expect(s.tick(1000)).toEqual({ sources: [B], allLevel: 0 })
  })

  it("a listed source stays while its sample stands for at least its rate, and is taken off when it stops", () => {
    const s = new SynShield(cfg)
    refuse(s, A, 500, 0) // joins at the 100th (the caller would apply join)
    s.join(A)
    expect(s.tick(1000)).toBeUndefined() // confirmed: unchanged
    // 16 sampled SYNs x 64 = 1024 a second: still flooding, nothing changes
    for (let i = 0; i < 16; i++) s.syn(A)
    expect(s.tick(2000)).toBeUndefined()
    expect(s.sources).toEqual([A])
    // 15 x 64 = 960 < 1000: taken off; with nothing refused, no further window
    for (let i = 0; i < 15; i++) s.syn(A)
    expect(s.tick(3000)).toEqual({ sources: [], allLevel: 0 })
    expect(s.active).toBe(false)
    expect(s.dueAt).toBe(Infinity)
  })

  it("lists at most maxSources, the busiest first", () => {
    const s = new SynShield({ ...cfg, maxSources: 2 })
    refuse(s, 1, 200, 0)
    refuse(s, 2, 900, 0)
    refuse(s, 3, 500, 0)
    expect(s.tick(1000)?.sources).toEqual([2, 3])
  })

  it("a flood from many unlisted sources sets a drop level so that about the total rate passes, and it is lifted when the flood ends", () => {
    const s = new SynShield(cfg)
    // 100 000 bare SYNs in the window from 50 000 addresses (2 each: none reaches the listing threshold)
    for (let i = 0; i < 50_000; i++) refuse(s, 0x0a000000 + i, 2, 10)
    // 5 x the total rate: 4/5 of 64 = 51
    expect(s.tick(1000)).toEqual({ sources: [], allLevel: 51 })
    // the same flood through the filter: 64 - 51 = 13/64 of it reaches us (about 20 300); the level holds
    for (let i = 0; i < 20_300; i++) s.syn(0x0b000000 + i)
    expect(s.tick(2000)).toBeUndefined()
    expect(s.allLevel).toBe(51)
    // quiet: lifted, and no more windows
    expect(s.tick(3000)).toEqual({ sources: [], allLevel: 0 })
    expect(s.dueAt).toBe(Infinity)
  })

  it("never drops every unlisted SYN", () => {
    const s = new SynShield(cfg)
    s.refused(1, 0)
    for (let i = 0; i < 10_000_000; i++) s.syn(7)
    expect(s.tick(1000)?.allLevel).toBe(MAX_ALL_LEVEL)
  })

  it("counts refusals for at most maxTracked sources (the first seen is forgotten first)", () => {
    const s = new SynShield({ ...cfg, maxTracked: 4 })
    refuse(s, 1, 150, 0) // listed if remembered
    for (let src = 2; src <= 5; src++) refuse(s, src, 1, 0)
    expect(s.tick(1000)?.sources ?? []).toEqual([])
  })
})
