import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { Dad, DEFAULT_CONFIG, type DadAction, type DadConfig } from "../../../src/protocols/ipv6/dad.js"
import { IP1, LL1 } from "./helpers.js"

/** random() answers from `xs` in turn (then 0). */
const seq = (...xs: Array<number>) => () => xs.shift() ?? 0

const act = (f: (out: Array<DadAction>) => unknown): Array<DadAction> => {
  const out: Array<DadAction> = []
  f(out)
  return out
}

describe("DAD: a tentative address becomes assigned", () => {
  it("after a random start delay: report and probe, then RetransTimer of silence: assigned and announced", () => {
    const d = new Dad(DEFAULT_CONFIG, seq(0.25, 0.5))
    expect(act((out) => d.add(LL1, 0, out))).toEqual([])
    expect(d.state(LL1)).toBe("Tentative")
    expect(d.nextDeadline()).toBe(250)
    expect(act((out) => d.tick(249, out))).toEqual([])
    expect(act((out) => d.tick(250, out))).toEqual([
      { _tag: "Report", address: LL1 },
      { _tag: "Probe", address: LL1 }
    ])
    // the report's repeat at 250 + 0.5 x 1000, then the end of DAD at 250 + 1000
    expect(d.nextDeadline()).toBe(750)
    expect(act((out) => d.tick(750, out))).toEqual([{ _tag: "Report", address: LL1 }])
    expect(d.isTentative(LL1)).toBe(true)
    expect(act((out) => d.tick(1_249, out))).toEqual([])
    expect(act((out) => d.tick(1_250, out))).toEqual([
      { _tag: "Assigned", address: LL1 },
      { _tag: "Announce", address: LL1 }
    ])
    expect(d.isAssigned(LL1)).toBe(true)
    expect(d.nextDeadline()).toBeUndefined()
    expect(act((out) => d.tick(100_000, out))).toEqual([])
  })

  it("without the start delay the report and probe go out at once", () => {
    const d = new Dad(DEFAULT_CONFIG, seq(0.9, 0.9))
    expect(act((out) => d.add(IP1, 5_000, out, false))).toEqual([
      { _tag: "Report", address: IP1 },
      { _tag: "Probe", address: IP1 }
    ])
    expect(act((out) => d.tick(5_900, out))).toEqual([{ _tag: "Report", address: IP1 }]) // the repeat, 0.9 s later
    expect(act((out) => d.tick(6_000, out)).map((a) => a._tag)).toEqual(["Assigned", "Announce"])
  })

  it("DupAddrDetectTransmits probes RetransTimer apart; announcements likewise", () => {
    const cfg: DadConfig = { ...DEFAULT_CONFIG, transmits: 3, announcements: 3, reports: 1 }
    const d = new Dad(cfg, seq(0))
    const log: Array<string> = []
    for (const a of act((out) => d.add(IP1, 0, out))) log.push(`0 ${a._tag}`)
    for (let t = 250; t <= 6_000; t += 250) for (const a of act((out) => d.tick(t, out))) log.push(`${t} ${a._tag}`)
    expect(log).toEqual(["0 Report", "0 Probe", "1000 Probe", "2000 Probe", "3000 Assigned", "3000 Announce", "4000 Announce", "5000 Announce"])
  })

  it("DupAddrDetectTransmits 0: no DAD, assigned at once (the group is still joined)", () => {
    const d = new Dad({ ...DEFAULT_CONFIG, transmits: 0, reports: 1 }, seq(0.5))
    expect(act((out) => d.add(IP1, 0, out)).map((a) => a._tag)).toEqual(["Assigned", "Announce"])
    expect(act((out) => d.tick(500, out))).toEqual([{ _tag: "Report", address: IP1 }])
    expect(d.isAssigned(IP1)).toBe(true)
  })

  it("adding an address again does nothing; addresses run independently; remove forgets", () => {
    const d = new Dad(DEFAULT_CONFIG, seq(0, 0, 0.5, 0))
    d.add(LL1, 0, [])
    expect(act((out) => d.add(LL1, 10, out))).toEqual([])
    d.add(IP1, 100, [])
    expect(act((out) => d.tick(1_000, out)).filter((a) => a._tag === "Assigned")).toEqual([{ _tag: "Assigned", address: LL1 }])
    expect(d.isTentative(IP1)).toBe(true)
    d.remove(IP1)
    expect(d.state(IP1)).toBeUndefined()
  })
})

describe("DAD: duplicates (RFC 4862 §5.4.3, §5.4.4)", () => {
  const tentative = () => {
    const d = new Dad(DEFAULT_CONFIG, seq(0))
    d.add(IP1, 0, [], false)
    return d
  }

  it("someone else probing for it (a solicitation from ::) makes it a duplicate, and everything stops", () => {
    const d = tentative()
    let mine = false
    expect(act((out) => (mine = d.onSolicitation(IP1, true, out)))).toEqual([{ _tag: "Duplicate", address: IP1 }])
    expect(mine).toBe(true)
    expect(d.state(IP1)).toBe("Duplicate")
    expect(d.nextDeadline()).toBeUndefined()
    expect(act((out) => d.tick(10_000, out))).toEqual([])
  })

  it("a solicitation for it from a unicast source is not answered and changes nothing", () => {
    const d = tentative()
    let mine = false
    expect(act((out) => (mine = d.onSolicitation(IP1, false, out)))).toEqual([])
    expect(mine).toBe(true)
    expect(d.isTentative(IP1)).toBe(true)
  })

  it("an advertisement for it while tentative makes it a duplicate; once assigned it is only reported as ours", () => {
    const d = tentative()
    expect(act((out) => d.onAdvertisement(IP1, out))).toEqual([{ _tag: "Duplicate", address: IP1 }])
    const e = tentative()
    e.tick(1_000, [])
    let mine = false
    expect(act((out) => (mine = e.onAdvertisement(IP1, out)))).toEqual([])
    expect(mine).toBe(true)
    expect(e.isAssigned(IP1)).toBe(true)
    expect(e.onSolicitation(IP1, true, [])).toBe(false) // assigned: the shell answers (and defends) it
    expect(e.onAdvertisement(LL1, [])).toBe(false)
  })

  it("whatever arrives when, an address ends assigned or duplicate at most once, never probing after (property)", () => {
    const event = fc.tuple(fc.nat(4_000), fc.constantFrom("ns-dad", "ns", "na", "tick"))
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.array(event, { maxLength: 30 }), (transmits, r, events) => {
        const cfg = { ...DEFAULT_CONFIG, transmits }
        const d = new Dad(cfg, () => r)
        const log: Array<DadAction & { readonly t: number }> = []
        const run = (t: number, f: (out: Array<DadAction>) => void) => {
          const out: Array<DadAction> = []
          f(out)
          for (const a of out) log.push({ ...a, t })
        }
        // as a shell does: tick at every deadline as it comes, and handle each arrival at its time
        const until = (t: number) => {
          for (let due = d.nextDeadline(); due !== undefined && due <= t; due = d.nextDeadline()) run(due, (out) => d.tick(due, out))
        }
        run(0, (out) => d.add(IP1, 0, out))
        for (const [t, e] of [...events].sort((a, b) => a[0] - b[0])) {
          until(t)
          run(t, (out) => {
            if (e === "tick") d.tick(t, out)
            if (e === "ns-dad") d.onSolicitation(IP1, true, out)
            if (e === "ns") d.onSolicitation(IP1, false, out)
            if (e === "na") d.onAdvertisement(IP1, out)
          })
        }
        until(10_000)
        const ends = log.filter((a) => a._tag === "Assigned" || a._tag === "Duplicate")
        expect(ends.length).toBe(1)
        const end = ends[0]!
        const probes = log.filter((a) => a._tag === "Probe")
        expect(probes.length).toBeLessThanOrEqual(transmits)
        for (const p of probes) expect(p.t).toBeLessThanOrEqual(end.t)
        if (end._tag === "Assigned") {
          expect(probes.length).toBe(transmits)
          if (transmits > 0) expect(end.t).toBeGreaterThanOrEqual(probes[probes.length - 1]!.t + cfg.retransTimerMs)
        }
        expect(log.filter((a) => a._tag === "Announce").every((a) => end._tag === "Assigned" && a.t >= end.t)).toBe(true)
      })
    )
  })
})
