import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { ipv4, mac, type Ipv4Address, type MacAddress } from "../../../src/protocols/address.js"
import { ArpCache, DEFAULT_CONFIG, type ArpCacheConfig } from "../../../src/protocols/arp/cache.js"

const CFG: ArpCacheConfig = {
  maxEntries: 4,
  entryTtlMs: 1_000,
  requestIntervalMs: 100,
  maxRequests: 3,
  pendingPerAddress: 2,
  pendingTotal: 3
}

const ip = (n: number): Ipv4Address => ipv4(198, 51, 100, n)
const hw = (n: number): MacAddress => mac(0x0000, 0x5e005300 + n)

describe("ArpCache: entries", () => {
  it("a learned entry lives exactly entryTtlMs", () => {
    const c = new ArpCache<string>(CFG)
    expect(c.learn(ip(1), hw(1), 5_000)).toEqual([])
    expect(c.lookup(ip(1), 5_000)).toBe(hw(1))
    expect(c.lookup(ip(1), 5_999)).toBe(hw(1))
    expect(c.lookup(ip(1), 6_000)).toBeUndefined()
    expect(c.size).toBe(0)
    expect(c.hasEntry(ip(1))).toBe(false)
  })

  it("learning again refreshes the TTL and the MAC", () => {
    const c = new ArpCache<string>(CFG)
    c.learn(ip(1), hw(1), 0)
    c.learn(ip(1), hw(9), 900)
    expect(c.lookup(ip(1), 1_500)).toBe(hw(9))
    expect(c.lookup(ip(1), 1_900)).toBeUndefined()
  })

  it("tick removes expired dynamic entries", () => {
    const c = new ArpCache<string>(CFG)
    c.learn(ip(1), hw(1), 0)
    c.learn(ip(2), hw(2), 500)
    c.tick(1_000)
    expect(c.entriesSnapshot().map((e) => e.ip)).toEqual([ip(2)])
    c.tick(1_500)
    expect(c.size).toBe(0)
  })

  it("static entries never expire and are not overwritten by learn()", () => {
    const c = new ArpCache<string>(CFG)
    c.addStatic(ip(1), hw(1))
    expect(c.isStatic(ip(1))).toBe(true)
    c.learn(ip(1), hw(7), 10)
    c.tick(1e12)
    expect(c.lookup(ip(1), 1e12)).toBe(hw(1))
    expect(c.entriesSnapshot()).toEqual([{ ip: ip(1), mac: hw(1), isStatic: true }])
  })

  it("learn() for a static address still hands back the packets queued for it", () => {
    const c = new ArpCache<string>(CFG)
    c.addStatic(ip(1), hw(1))
    c.enqueue(ip(1), "a", 0)
    expect(c.learn(ip(1), hw(7), 0)).toEqual(["a"])
    expect(c.pendingPackets).toBe(0)
  })

  it("a full table evicts the dynamic entry closest to expiry, never a static one", () => {
    const c = new ArpCache<string>(CFG)
    c.addStatic(ip(1), hw(1))
    c.learn(ip(2), hw(2), 0)
    c.learn(ip(3), hw(3), 10)
    c.learn(ip(4), hw(4), 20)
    c.learn(ip(5), hw(5), 30)
    expect(c.size).toBe(CFG.maxEntries)
    expect(c.lookup(ip(2), 30)).toBeUndefined()
    expect(c.lookup(ip(1), 30)).toBe(hw(1))
    expect(c.lookup(ip(3), 30)).toBe(hw(3))
    expect(c.lookup(ip(5), 30)).toBe(hw(5))
  })

  it("a full table prefers evicting an already expired entry", () => {
    const c = new ArpCache<string>(CFG)
    c.learn(ip(2), hw(2), 500)
    c.learn(ip(3), hw(3), 0) // expires at 1000
    c.learn(ip(4), hw(4), 600)
    c.learn(ip(5), hw(5), 700)
    c.learn(ip(6), hw(6), 1_200)
    expect(c.hasEntry(ip(3))).toBe(false)
    expect(c.hasEntry(ip(2))).toBe(true)
    expect(c.hasEntry(ip(6))).toBe(true)
  })

  it("a static entry added to a full table displaces the dynamic entry closest to expiry", () => {
    const c = new ArpCache<string>(CFG)
    for (let i = 1; i <= CFG.maxEntries; i++) c.learn(ip(i), hw(i), i * 10)
    c.addStatic(ip(9), hw(9))
    expect(c.size).toBe(CFG.maxEntries)
    expect(c.hasEntry(ip(1))).toBe(false)
    expect(c.lookup(ip(9), 1e12)).toBe(hw(9))
    // replacing a present address never evicts anything
    c.addStatic(ip(2), hw(7))
    expect(c.size).toBe(CFG.maxEntries)
    expect(c.hasEntry(ip(3))).toBe(true)
    expect(c.isStatic(ip(2))).toBe(true)
  })

  it("a table full of static entries refuses a new dynamic one but still returns its queue", () => {
    const c = new ArpCache<string>(CFG)
    for (let i = 1; i <= CFG.maxEntries; i++) c.addStatic(ip(i), hw(i))
    c.enqueue(ip(9), "p", 0)
    expect(c.learn(ip(9), hw(9), 0)).toEqual(["p"])
    expect(c.hasEntry(ip(9))).toBe(false)
    expect(c.size).toBe(CFG.maxEntries)
    for (let i = 1; i <= CFG.maxEntries; i++) expect(c.lookup(ip(i), 1e9)).toBe(hw(i))
  })

  it("has sane defaults", () => {
    const c = new ArpCache<string>()
    expect(c.config).toBe(DEFAULT_CONFIG)
    expect(DEFAULT_CONFIG.maxEntries).toBeGreaterThan(0)
    expect(DEFAULT_CONFIG.pendingPerAddress).toBeLessThanOrEqual(DEFAULT_CONFIG.pendingTotal)
  })
})

describe("ArpCache: pending packets and requests", () => {
  it("queues are bounded per address and in total (QueueFull)", () => {
    const c = new ArpCache<string>(CFG)
    expect(c.enqueue(ip(1), "a1", 0)).toBe("Queued")
    expect(c.enqueue(ip(1), "a2", 0)).toBe("Queued")
    expect(c.enqueue(ip(1), "a3", 0)).toBe("QueueFull")
    expect(c.enqueue(ip(2), "b1", 0)).toBe("Queued")
    expect(c.enqueue(ip(3), "c1", 0)).toBe("QueueFull")
    expect(c.pendingPackets).toBe(3)
    expect(c.learn(ip(1), hw(1), 0)).toEqual(["a1", "a2"])
    expect(c.pendingPackets).toBe(1)
    expect(c.enqueue(ip(3), "c1", 0)).toBe("Queued")
  })

  it("requests are rate limited per address and stop after maxRequests", () => {
    const c = new ArpCache<string>(CFG)
    expect(c.shouldRequest(ip(1), 0)).toBe(false) // nothing waiting
    c.enqueue(ip(1), "a", 0)
    expect(c.nextDeadline()).toBe(-Infinity) // due now
    expect(c.shouldRequest(ip(1), 0)).toBe(true)
    expect(c.shouldRequest(ip(1), 99)).toBe(false)
    expect(c.nextDeadline()).toBe(100)
    expect(c.shouldRequest(ip(1), 100)).toBe(true)
    expect(c.shouldRequest(ip(1), 150)).toBe(false)
    expect(c.shouldRequest(ip(1), 200)).toBe(true)
    expect(c.shouldRequest(ip(1), 300)).toBe(false) // maxRequests = 3 spent
  })

  it("tick asks for a retry once the interval passed", () => {
    const c = new ArpCache<string>(CFG)
    c.enqueue(ip(1), "a", 0)
    c.shouldRequest(ip(1), 0)
    expect(c.tick(99)).toEqual({ retry: [], failed: [] })
    expect(c.tick(100)).toEqual({ retry: [ip(1)], failed: [] })
  })

  it("after maxRequests unanswered requests, tick gives up and returns the queued packets", () => {
    const c = new ArpCache<string>(CFG)
    c.enqueue(ip(1), "a1", 0)
    c.enqueue(ip(1), "a2", 0)
    c.enqueue(ip(2), "b1", 0)
    for (const t of [0, 100, 200]) {
      expect(c.shouldRequest(ip(1), t)).toBe(true)
      expect(c.shouldRequest(ip(2), t + 50)).toBe(true)
    }
    expect(c.tick(299)).toEqual({ retry: [], failed: [] })
    expect(c.tick(300)).toEqual({ retry: [], failed: ["a1", "a2"] })
    expect(c.pendingPackets).toBe(1)
    expect(c.tick(350)).toEqual({ retry: [], failed: ["b1"] })
    expect(c.pendingPackets).toBe(0)
    expect(c.nextDeadline()).toBeUndefined()
    // a fresh packet starts a fresh resolution with a fresh request budget
    expect(c.enqueue(ip(1), "a3", 400)).toBe("Queued")
    expect(c.shouldRequest(ip(1), 400)).toBe(true)
  })

  it("an answer before giving up delivers the queue and stops the requests", () => {
    const c = new ArpCache<string>(CFG)
    c.enqueue(ip(1), "a", 0)
    c.shouldRequest(ip(1), 0)
    expect(c.learn(ip(1), hw(1), 50)).toEqual(["a"])
    expect(c.shouldRequest(ip(1), 1_000)).toBe(false)
    expect(c.tick(1_000)).toEqual({ retry: [], failed: [] })
    expect(c.lookup(ip(1), 1_000)).toBe(hw(1))
  })

  it("random operation sequences keep every bound and never lose or duplicate a packet (property)", () => {
    type Op =
      | { readonly k: "learn"; readonly a: number; readonly m: number }
      | { readonly k: "static"; readonly a: number; readonly m: number }
      | { readonly k: "enqueue"; readonly a: number }
      | { readonly k: "request"; readonly a: number }
      | { readonly k: "tick" }
      | { readonly k: "lookup"; readonly a: number }
    const addr = fc.nat(7)
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ k: fc.constant("learn" as const), a: addr, m: fc.nat(3) }),
      fc.record({ k: fc.constant("static" as const), a: addr, m: fc.nat(3) }),
      fc.record({ k: fc.constant("enqueue" as const), a: addr }),
      fc.record({ k: fc.constant("request" as const), a: addr }),
      fc.record({ k: fc.constant("tick" as const) }),
      fc.record({ k: fc.constant("lookup" as const), a: addr })
    )
    fc.assert(
      fc.property(fc.array(fc.tuple(op, fc.nat(400)), { maxLength: 80 }), (ops) => {
        const c = new ArpCache<number>(CFG)
        const statics = new Map<number, MacAddress>()
        const outstanding = new Set<number>()
        const perAddr = new Map<number, number>()
        let next = 0
        let now = 0
        const addrOf = new Map<number, number>()
        const release = (ps: ReadonlyArray<number>) => {
          for (const p of ps) {
            expect(outstanding.delete(p)).toBe(true) // returned once, and only if it was queued
            const a = addrOf.get(p)!
            perAddr.set(a, perAddr.get(a)! - 1)
          }
        }
        for (const [o, dt] of ops) {
          now += dt
          switch (o.k) {
            case "learn": {
              const got = c.learn(ip(o.a), hw(o.m), now)
              expect(got.every((p) => addrOf.get(p) === o.a)).toBe(true)
              release(got)
              expect(perAddr.get(o.a) ?? 0).toBe(0)
              break
            }
            case "static":
              if (statics.size < 2 || statics.has(o.a)) {
                c.addStatic(ip(o.a), hw(o.m + 10))
                statics.set(o.a, hw(o.m + 10))
              }
              break
            case "enqueue": {
              const p = next++
              const r = c.enqueue(ip(o.a), p, now)
              const before = perAddr.get(o.a) ?? 0
              if (before >= CFG.pendingPerAddress || outstanding.size >= CFG.pendingTotal) expect(r).toBe("QueueFull")
              if (r === "Queued") {
                outstanding.add(p)
                addrOf.set(p, o.a)
                perAddr.set(o.a, before + 1)
              }
              break
            }
            case "request":
              c.shouldRequest(ip(o.a), now)
              break
            case "tick":
              release(c.tick(now).failed)
              break
            case "lookup": {
              const m = c.lookup(ip(o.a), now)
              if (statics.has(o.a)) expect(m).toBe(statics.get(o.a))
              break
            }
          }
          expect(c.pendingPackets).toBe(outstanding.size)
          expect(c.pendingPackets).toBeLessThanOrEqual(CFG.pendingTotal)
          expect(c.size).toBeLessThanOrEqual(CFG.maxEntries)
          for (const [a, m] of statics) expect(c.lookup(ip(a), now)).toBe(m)
          for (const n of perAddr.values()) expect(n).toBeLessThanOrEqual(CFG.pendingPerAddress)
        }
      })
    )
  })
})
