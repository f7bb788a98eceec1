import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { mac, type MacAddress } from "../../../src/protocols/address.js"
import * as A from "../../../src/protocols/ipv6/address.js"
import { DEFAULT_CONFIG, NeighborCache, type NeighborAction, type NeighborConfig } from "../../../src/protocols/ipv6/neighbor.js"

const ip = (n: number): A.Ipv6Address => A.ipv6(0x2001, 0xdb8, 0, 0, 0, 0, 0, n)
const hw = (n: number): MacAddress => mac(0x0000, 0x5e005300 + n)

/** RFC 4861 §10 constants with small bounds; random() = 0.5 makes ReachableTime exactly 30 s. */
const CFG: NeighborConfig = { ...DEFAULT_CONFIG, maxEntries: 4, queuePerEntry: 3, queueTotal: 5 }
const make = (cfg: NeighborConfig = CFG, random: () => number = () => 0.5) => new NeighborCache<string>(cfg, random)

/** Run one step and return the actions it produced. */
const act = (f: (out: Array<NeighborAction<string>>) => unknown): Array<NeighborAction<string>> => {
  const out: Array<NeighborAction<string>> = []
  f(out)
  return out
}

const multicastNs = (n: number) => ({ _tag: "Solicit", target: ip(n), unicast: undefined })
const unicastNs = (n: number, m: number) => ({ _tag: "Solicit", target: ip(n), unicast: hw(m) })
const S = { router: false, solicited: true, override: true } as const
const U = { router: false, solicited: false, override: true } as const

/** An entry for ip(1) at hw(1) in REACHABLE, confirmed at `at`. */
const reachable = (at = 0) => {
  const c = make()
  c.resolve(ip(1), "p", at, [])
  c.onAdvertisement(ip(1), hw(1), S, at, [])
  return c
}

// ---------------------------------------------------------------------------------------------------------------
describe("NeighborCache: INCOMPLETE", () => {
  it("an unknown neighbour queues the packet and sends a multicast solicitation", () => {
    const c = make()
    let got: MacAddress | undefined = hw(9)
    expect(act((out) => (got = c.resolve(ip(1), "p1", 0, out)))).toEqual([multicastNs(1)])
    expect(got).toBeUndefined()
    expect(c.lookup(ip(1))).toEqual({ state: "Incomplete", mac: undefined, isRouter: false, isStatic: false })
    expect(c.queuedPackets).toBe(1)
    // more packets wait without more solicitations
    expect(act((out) => c.resolve(ip(1), "p2", 10, out))).toEqual([])
    expect(c.queuedPackets).toBe(2)
  })

  it("MAX_MULTICAST_SOLICIT solicitations RetransTimer apart, then resolution fails and every waiting packet is dropped", () => {
    const c = make()
    c.resolve(ip(1), "p1", 0, [])
    c.resolve(ip(1), "p2", 500, [])
    expect(c.nextDeadline()).toBe(1_000)
    expect(act((out) => c.tick(999, out))).toEqual([])
    expect(act((out) => c.tick(1_000, out))).toEqual([multicastNs(1)])
    expect(act((out) => c.tick(2_000, out))).toEqual([multicastNs(1)])
    expect(act((out) => c.tick(2_999, out))).toEqual([])
    expect(act((out) => c.tick(3_000, out))).toEqual([
      { _tag: "Drop", packet: "p1", reason: "AddressUnreachable" },
      { _tag: "Drop", packet: "p2", reason: "AddressUnreachable" }
    ])
    expect(c.lookup(ip(1))).toBeUndefined()
    expect(c.queuedPackets).toBe(0)
    expect(c.nextDeadline()).toBeUndefined()
  })

  it("a solicited advertisement makes it REACHABLE and sends the waiting packets in order", () => {
    const c = make()
    c.resolve(ip(1), "p1", 0, [])
    c.resolve(ip(1), "p2", 0, [])
    expect(act((out) => c.onAdvertisement(ip(1), hw(1), S, 300, out))).toEqual([
      { _tag: "Send", packet: "p1", mac: hw(1) },
      { _tag: "Send", packet: "p2", mac: hw(1) }
    ])
    expect(c.lookup(ip(1))?.state).toBe("Reachable")
    expect(c.queuedPackets).toBe(0)
    expect(c.resolve(ip(1), "p3", 400, [])).toBe(hw(1))
  })

  it("an unsolicited advertisement makes it STALE (and sends); one without a target address is ignored", () => {
    const c = make()
    c.resolve(ip(1), "p1", 0, [])
    expect(act((out) => c.onAdvertisement(ip(1), undefined, S, 100, out))).toEqual([])
    expect(c.lookup(ip(1))?.state).toBe("Incomplete")
    expect(act((out) => c.onAdvertisement(ip(1), hw(1), U, 200, out))).toEqual([{ _tag: "Send", packet: "p1", mac: hw(1) }])
    expect(c.lookup(ip(1))?.state).toBe("Stale")
  })

  it("a solicitation from the neighbour carrying its address resolves it too (STALE, §7.2.3)", () => {
    const c = make()
    c.resolve(ip(1), "p1", 0, [])
    expect(act((out) => c.learn(ip(1), hw(1), 100, out))).toEqual([{ _tag: "Send", packet: "p1", mac: hw(1) }])
    expect(c.lookup(ip(1))).toMatchObject({ state: "Stale", mac: hw(1) })
  })

  it("a full queue drops its oldest packet, not the new one (§7.2.2)", () => {
    const c = make()
    for (const p of ["a", "b", "c"]) c.resolve(ip(1), p, 0, [])
    expect(act((out) => c.resolve(ip(1), "d", 0, out))).toEqual([{ _tag: "Drop", packet: "a", reason: "QueueFull" }])
    expect(c.queuedPackets).toBe(3)
    expect(act((out) => c.onAdvertisement(ip(1), hw(1), S, 1, out)).map((a) => (a._tag === "Send" ? a.packet : "?"))).toEqual(["b", "c", "d"])
  })

  it("past queueTotal the oldest waiting packet of all is dropped", () => {
    const c = make()
    c.resolve(ip(1), "1a", 0, [])
    c.resolve(ip(2), "2a", 1, [])
    c.resolve(ip(1), "1b", 2, [])
    c.resolve(ip(2), "2b", 3, [])
    c.resolve(ip(3), "3a", 4, [])
    expect(c.queuedPackets).toBe(5)
    expect(act((out) => c.resolve(ip(3), "3b", 5, out))).toEqual([{ _tag: "Drop", packet: "1a", reason: "QueueFull" }])
    expect(act((out) => c.resolve(ip(2), "2c", 6, out))).toEqual([{ _tag: "Drop", packet: "2a", reason: "QueueFull" }])
    expect(c.queuedPackets).toBe(5)
  })
})

// ---------------------------------------------------------------------------------------------------------------
describe("NeighborCache: REACHABLE", () => {
  it("lasts ReachableTime, then is STALE (by tick, or found so when used)", () => {
    const c = reachable(1_000)
    expect(c.reachableTimeMs).toBe(30_000)
    expect(c.nextDeadline()).toBe(31_000)
    c.tick(30_999, [])
    expect(c.lookup(ip(1))?.state).toBe("Reachable")
    c.tick(31_000, [])
    expect(c.lookup(ip(1))?.state).toBe("Stale")
    expect(c.nextDeadline()).toBeUndefined()
    const d = reachable(1_000)
    expect(d.resolve(ip(1), "late", 31_000, [])).toBe(hw(1))
    expect(d.lookup(ip(1))?.state).toBe("Delay")
  })

  it("ReachableTime is drawn from 0.5..1.5 x BaseReachableTime (§6.3.2), again when the base changes", () => {
    expect(make(CFG, () => 0).reachableTimeMs).toBe(15_000)
    expect(make(CFG, () => 0.999_999).reachableTimeMs).toBe(44_999)
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.integer({ min: 1, max: 3_600_000 }), (r, base) => {
        const c = make(CFG, () => r)
        c.setBaseReachableTime(base, 0)
        expect(c.reachableTimeMs).toBeGreaterThanOrEqual(Math.floor(base / 2))
        expect(c.reachableTimeMs).toBeLessThanOrEqual(base * 1.5) // (0.5 + r can round up to 1.5 itself)
      })
    )
    let calls = 0
    const c = make(CFG, () => (calls++ === 0 ? 0.5 : 0))
    c.setBaseReachableTime(0, 0) // "unspecified": no change
    c.setBaseReachableTime(30_000, 0) // the same base: no re-draw
    expect(c.reachableTimeMs).toBe(30_000)
    c.setBaseReachableTime(10_000, 0)
    expect(c.reachableTimeMs).toBe(5_000)
  })

  it("ReachableTime is re-drawn every two hours even without a new base", () => {
    const rs = [0.5, 0.0, 0.9]
    const c = make(CFG, () => rs.shift() ?? 0.5)
    expect(c.reachableTimeMs).toBe(30_000)
    c.tick(7_199_999, [])
    expect(c.reachableTimeMs).toBe(30_000)
    c.tick(7_200_000, [])
    expect(c.reachableTimeMs).toBe(15_000)
  })

  it("an upper-layer confirmation (§7.3.1) restarts ReachableTime", () => {
    const c = reachable(0)
    c.confirm(ip(1), 20_000)
    c.tick(30_000, [])
    expect(c.lookup(ip(1))?.state).toBe("Reachable")
    expect(c.nextDeadline()).toBe(50_000)
    c.confirm(ip(9), 0) // unknown: nothing
    expect(c.size).toBe(1)
  })
})

// ---------------------------------------------------------------------------------------------------------------
describe("NeighborCache: STALE, DELAY, PROBE", () => {
  const stale = () => {
    const c = reachable(0)
    c.tick(30_000, [])
    return c
  }

  it("sending makes DELAY; DELAY_FIRST_PROBE_TIME later PROBE with unicast solicitations, then the entry goes", () => {
    const c = stale()
    expect(act((out) => expect(c.resolve(ip(1), "p", 40_000, out)).toBe(hw(1)))).toEqual([])
    expect(c.lookup(ip(1))?.state).toBe("Delay")
    expect(c.nextDeadline()).toBe(45_000)
    expect(act((out) => c.tick(44_999, out))).toEqual([])
    expect(act((out) => c.tick(45_000, out))).toEqual([unicastNs(1, 1)])
    expect(c.lookup(ip(1))?.state).toBe("Probe")
    expect(c.resolve(ip(1), "during probe", 45_500, [])).toBe(hw(1)) // still usable, not queued
    expect(act((out) => c.tick(46_000, out))).toEqual([unicastNs(1, 1)])
    expect(act((out) => c.tick(47_000, out))).toEqual([unicastNs(1, 1)])
    expect(act((out) => c.tick(48_000, out))).toEqual([])
    expect(c.lookup(ip(1))).toBeUndefined()
  })

  it("a confirmation in DELAY avoids the probe; a solicited advertisement in PROBE ends it", () => {
    const c = stale()
    c.resolve(ip(1), "p", 40_000, [])
    c.confirm(ip(1), 42_000)
    expect(act((out) => c.tick(45_000, out))).toEqual([])
    expect(c.lookup(ip(1))?.state).toBe("Reachable")
    const d = stale()
    d.resolve(ip(1), "p", 40_000, [])
    d.tick(45_000, [])
    d.onAdvertisement(ip(1), hw(1), S, 45_200, [])
    expect(d.lookup(ip(1))?.state).toBe("Reachable")
    expect(act((out) => d.tick(46_000, out))).toEqual([])
  })

  it("RetransTimer from a router advertisement paces solicitations (0 leaves it)", () => {
    const c = make()
    c.setRetransTimer(0)
    c.setRetransTimer(250)
    expect(c.retransTimerMs).toBe(250)
    c.resolve(ip(1), "p", 0, [])
    expect(act((out) => c.tick(250, out))).toEqual([multicastNs(1)])
    expect(act((out) => c.tick(500, out))).toEqual([multicastNs(1)])
    expect(act((out) => c.tick(750, out))).toEqual([{ _tag: "Drop", packet: "p", reason: "AddressUnreachable" }])
  })
})

// ---------------------------------------------------------------------------------------------------------------
describe("NeighborCache: advertisements and learnt addresses (§7.2.3, §7.2.5)", () => {
  it("without override, a different address only makes REACHABLE STALE and is not taken", () => {
    const c = reachable(0)
    c.onAdvertisement(ip(1), hw(2), { router: false, solicited: true, override: false }, 10, [])
    expect(c.lookup(ip(1))).toMatchObject({ state: "Stale", mac: hw(1) })
    c.onAdvertisement(ip(1), hw(2), { router: false, solicited: true, override: false }, 20, [])
    expect(c.lookup(ip(1))).toMatchObject({ state: "Stale", mac: hw(1) })
  })

  it("with override, the new address is taken: REACHABLE when solicited, else STALE", () => {
    const c = reachable(0)
    c.onAdvertisement(ip(1), hw(2), U, 10, [])
    expect(c.lookup(ip(1))).toMatchObject({ state: "Stale", mac: hw(2) })
    c.onAdvertisement(ip(1), hw(3), S, 20, [])
    expect(c.lookup(ip(1))).toMatchObject({ state: "Reachable", mac: hw(3) })
  })

  it("the same address, unsolicited, changes nothing; advertisements never create entries", () => {
    const c = reachable(0)
    c.onAdvertisement(ip(1), hw(1), U, 10, [])
    expect(c.lookup(ip(1))?.state).toBe("Reachable")
    c.onAdvertisement(ip(1), undefined, U, 10, [])
    expect(c.lookup(ip(1))?.state).toBe("Reachable")
    c.onAdvertisement(ip(7), hw(7), S, 10, [])
    expect(c.lookup(ip(7))).toBeUndefined()
  })

  it("a router that clears its R flag is reported lost", () => {
    const c = make()
    c.resolve(ip(1), "p", 0, [])
    c.onAdvertisement(ip(1), hw(1), { router: true, solicited: true, override: true }, 0, [])
    expect(c.lookup(ip(1))?.isRouter).toBe(true)
    expect(act((out) => c.onAdvertisement(ip(1), hw(1), { router: false, solicited: true, override: true }, 5, out))).toEqual([
      { _tag: "RouterLost", ip: ip(1) }
    ])
    expect(c.lookup(ip(1))?.isRouter).toBe(false)
  })

  it("learn: a new neighbour is STALE; a changed address makes STALE; the same keeps the state; a router's RA marks it", () => {
    const c = make()
    c.learn(ip(1), hw(1), 0, [])
    expect(c.lookup(ip(1))).toEqual({ state: "Stale", mac: hw(1), isRouter: false, isStatic: false })
    c.confirm(ip(1), 1)
    c.learn(ip(1), hw(1), 2, [])
    expect(c.lookup(ip(1))?.state).toBe("Reachable")
    c.learn(ip(1), hw(2), 3, [])
    expect(c.lookup(ip(1))).toMatchObject({ state: "Stale", mac: hw(2) })
    c.learn(ip(2), hw(2), 4, [], true)
    expect(c.lookup(ip(2))?.isRouter).toBe(true)
  })
})

// ---------------------------------------------------------------------------------------------------------------
describe("NeighborCache: bounds and static entries", () => {
  it("a full table evicts the least recently used entry, INCOMPLETE ones last (their packets dropped)", () => {
    const c = make()
    c.learn(ip(1), hw(1), 0, [])
    c.learn(ip(2), hw(2), 10, [])
    c.resolve(ip(3), "3a", 20, [])
    c.learn(ip(4), hw(4), 30, [])
    c.resolve(ip(1), "use 1", 40, []) // ip(2) is now the least recently used
    c.learn(ip(5), hw(5), 50, [])
    expect(c.lookup(ip(2))).toBeUndefined()
    expect(c.size).toBe(4)
    expect(c.evictions).toBe(1)
    // now make everything else INCOMPLETE-or-recent: ip(3) goes only when nothing else can
    const d = make()
    for (let n = 1; n <= 4; n++) d.resolve(ip(n), `${n}`, n, [])
    expect(act((out) => d.resolve(ip(5), "5", 10, out))).toEqual([{ _tag: "Drop", packet: "1", reason: "TableFull" }, multicastNs(5)])
    expect(d.queuedPackets).toBe(4)
  })

  it("static entries: always reachable, never touched by traffic or timers, never evicted", () => {
    const c = make()
    c.resolve(ip(1), "waiting", 0, [])
    expect(act((out) => c.addStatic(ip(1), hw(1), out))).toEqual([{ _tag: "Send", packet: "waiting", mac: hw(1) }])
    c.onAdvertisement(ip(1), hw(2), S, 10, [])
    c.learn(ip(1), hw(3), 10, [])
    c.tick(10_000_000, [])
    expect(c.lookup(ip(1))).toEqual({ state: "Reachable", mac: hw(1), isRouter: false, isStatic: true })
    expect(c.resolve(ip(1), "p", 10_000_000, [])).toBe(hw(1))
    const d = make()
    for (let n = 1; n <= 4; n++) d.addStatic(ip(n), hw(n), [])
    expect(act((out) => d.resolve(ip(5), "p", 0, out))).toEqual([{ _tag: "Drop", packet: "p", reason: "TableFull" }])
    d.learn(ip(6), hw(6), 0, [])
    expect(d.size).toBe(4)
  })

  it("whatever happens, every packet is sent or dropped exactly once or still waits, and the bounds hold (property)", () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant("resolve" as const), n: fc.integer({ min: 1, max: 7 }) }),
      fc.record({ k: fc.constant("advert" as const), n: fc.integer({ min: 1, max: 7 }), m: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }), s: fc.boolean(), o: fc.boolean(), r: fc.boolean() }),
      fc.record({ k: fc.constant("learn" as const), n: fc.integer({ min: 1, max: 7 }), m: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ k: fc.constant("confirm" as const), n: fc.integer({ min: 1, max: 7 }) }),
      fc.record({ k: fc.constant("tick" as const) }),
      fc.record({ k: fc.constant("static" as const), n: fc.integer({ min: 1, max: 7 }) })
    )
    fc.assert(
      fc.property(fc.array(fc.tuple(op, fc.nat(3_000)), { maxLength: 80 }), (ops) => {
        const c = make()
        let now = 0
        let made = 0
        const seen = new Set<string>()
        let direct = 0
        const record = (out: ReadonlyArray<NeighborAction<string>>) => {
          for (const a of out) {
            if (a._tag === "Send" || a._tag === "Drop") {
              expect(seen.has(a.packet)).toBe(false)
              seen.add(a.packet)
            }
          }
        }
        for (const [o, dt] of ops) {
          now += dt
          const out: Array<NeighborAction<string>> = []
          switch (o.k) {
            case "resolve": {
              const p = `p${made++}`
              if (c.resolve(ip(o.n), p, now, out) !== undefined) direct++
              break
            }
            case "advert":
              c.onAdvertisement(ip(o.n), o.m === undefined ? undefined : hw(o.m), { router: o.r, solicited: o.s, override: o.o }, now, out)
              break
            case "learn":
              c.learn(ip(o.n), hw(o.m), now, out)
              break
            case "confirm":
              c.confirm(ip(o.n), now)
              break
            case "tick":
              c.tick(now, out)
              break
            case "static":
              c.addStatic(ip(o.n), hw(o.n), out)
              break
          }
          record(out)
          expect(c.size).toBeLessThanOrEqual(CFG.maxEntries)
          expect(c.queuedPackets).toBeLessThanOrEqual(CFG.queueTotal)
          const d = c.nextDeadline()
          if (d !== undefined) expect(Number.isFinite(d)).toBe(true)
        }
        expect(direct + seen.size + c.queuedPackets).toBe(made)
      })
    )
  })
})
