import { describe, expect, it } from "vitest"
import { ipv6, parseIpv6, interfaceIdFromMac, type Ipv6Address } from "../../../src/protocols/ipv6/address.js"
import { DEFAULT_CONFIG, INFINITE_LIFETIME, Slaac, type PrefixOption, type SlaacAction } from "../../../src/protocols/ipv6/slaac.js"
import { mac } from "../../../src/protocols/address.js"

const IID = interfaceIdFromMac(mac(0x0000, 0x5e005301)) // 00:00:5e:00:53:01 (RFC 7042)
const PREFIX = ipv6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)
/** What the Linux kernel formed from the same prefix and MAC in test/fixtures/wire/capture6.sh. */
const ADDR = parseIpv6("2001:db8::200:5eff:fe00:5301")!
const HOUR_S = 3600

const opt = (p: Partial<PrefixOption> = {}): PrefixOption => ({
  prefix: PREFIX,
  prefixLen: 64,
  autonomous: true,
  validLifetimeS: 24 * HOUR_S,
  preferredLifetimeS: 4 * HOUR_S,
  ...p
})

const act = (f: (out: Array<SlaacAction>) => unknown): Array<SlaacAction> => {
  const out: Array<SlaacAction> = []
  f(out)
  return out
}

const fresh = (solicit = false): Slaac => new Slaac(DEFAULT_CONFIG, IID, 0, () => 0.5, solicit)

describe("SLAAC: router solicitations (RFC 4861 §6.3.7)", () => {
  it("after a random delay under 1 s, three solicitations 4 s apart, then none", () => {
    const s = fresh(true)
    expect(s.nextDeadline()).toBe(500)
    expect(act((out) => s.tick(499, out))).toEqual([])
    expect(act((out) => s.tick(500, out))).toEqual([{ _tag: "Solicit" }])
    expect(s.nextDeadline()).toBe(4500)
    expect(act((out) => s.tick(4500, out))).toEqual([{ _tag: "Solicit" }])
    expect(act((out) => s.tick(8500, out))).toEqual([{ _tag: "Solicit" }])
    expect(s.nextDeadline()).toBe(Infinity)
    expect(act((out) => s.tick(60_000, out))).toEqual([])
  })

  it("an advertisement stops them", () => {
    const s = fresh(true)
    act((out) => s.tick(500, out))
    act((out) => s.onAdvertisement([], 1000, out))
    expect(s.nextDeadline()).toBe(Infinity)
    expect(act((out) => s.tick(4500, out))).toEqual([])
  })

  it("none when asked not to solicit", () => {
    expect(fresh(false).nextDeadline()).toBe(Infinity)
  })
})

describe("SLAAC: addresses from prefix options (RFC 4862 §5.5.3)", () => {
  it("d: a new /64 with the autonomous flag forms prefix + modified EUI-64 (the address Linux forms)", () => {
    const s = fresh()
    expect(act((out) => s.onAdvertisement([opt()], 0, out))).toEqual([{ _tag: "Add", address: ADDR, prefixLen: 64 }])
    expect(s.addresses(0)).toEqual([{ address: ADDR, prefixLen: 64, preferred: true }])
    // the same prefix again: no second address
    expect(act((out) => s.onAdvertisement([opt()], 1000, out))).toEqual([])
  })

  it("a-c and the prefix length: no address, each counted", () => {
    const s = fresh()
    const cases: Array<[PrefixOption, keyof Slaac["ignored"]]> = [
      [opt({ autonomous: false }), "NotAutonomous"],
      [opt({ prefix: ipv6(0xfe80, 0, 0, 0, 0, 0, 0, 0) }), "LinkLocalPrefix"],
      [opt({ preferredLifetimeS: 10, validLifetimeS: 5 }), "PreferredOverValid"],
      [opt({ prefixLen: 48 }), "PrefixLength"],
      [opt({ prefixLen: 80 }), "PrefixLength"]
    ]
    for (const [o, reason] of cases) {
      const before = s.ignored[reason]
      expect(act((out) => s.onAdvertisement([o], 0, out))).toEqual([])
      expect(s.ignored[reason]).toBe(before + 1)
    }
    expect(s.addresses(0)).toEqual([])
  })

  it("a new prefix with valid lifetime 0 forms nothing; the host bits of the option's prefix are ignored", () => {
    const s = fresh()
    expect(act((out) => s.onAdvertisement([opt({ validLifetimeS: 0, preferredLifetimeS: 0 })], 0, out))).toEqual([])
    const noisy = ipv6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99)
    expect(act((out) => s.onAdvertisement([opt({ prefix: noisy })], 0, out))).toEqual([{ _tag: "Add", address: ADDR, prefixLen: 64 }])
  })

  it("valid lifetime ends: the address is removed; preferred lifetime ends first: deprecated, still there", () => {
    const s = fresh()
    act((out) => s.onAdvertisement([opt({ validLifetimeS: 100, preferredLifetimeS: 40 })], 0, out))
    expect(s.nextDeadline()).toBe(100_000)
    expect(s.isDeprecated(ADDR, 39_999)).toBe(false)
    expect(s.isDeprecated(ADDR, 40_000)).toBe(true)
    expect(s.addresses(50_000)).toEqual([{ address: ADDR, prefixLen: 64, preferred: false }])
    expect(act((out) => s.tick(99_999, out))).toEqual([])
    expect(act((out) => s.tick(100_000, out))).toEqual([{ _tag: "Remove", address: ADDR }])
    expect(s.has(ADDR)).toBe(false)
  })

  it("infinite lifetimes never expire", () => {
    const s = fresh()
    act((out) => s.onAdvertisement([opt({ validLifetimeS: INFINITE_LIFETIME, preferredLifetimeS: INFINITE_LIFETIME })], 0, out))
    expect(s.nextDeadline()).toBe(Infinity)
    expect(s.isDeprecated(ADDR, 1e15)).toBe(false)
  })

  describe("e: the two-hour rule against advertisements that cut a valid lifetime short", () => {
    const start = (): Slaac => {
      const s = fresh()
      act((out) => s.onAdvertisement([opt({ validLifetimeS: 30 * HOUR_S, preferredLifetimeS: 0 })], 0, out))
      return s
    }
    const validUntil = (s: Slaac): number => s.nextDeadline()

    it("a longer valid lifetime, or one over two hours, is taken", () => {
      const s = start()
      act((out) => s.onAdvertisement([opt({ validLifetimeS: 3 * HOUR_S, preferredLifetimeS: 0 })], 0, out))
      expect(validUntil(s)).toBe(3 * HOUR_S * 1000)
      act((out) => s.onAdvertisement([opt({ validLifetimeS: 40 * HOUR_S, preferredLifetimeS: 0 })], 0, out))
      expect(validUntil(s)).toBe(40 * HOUR_S * 1000)
    })

    it("a short one while more than two hours remain: two hours", () => {
      const s = start()
      act((out) => s.onAdvertisement([opt({ validLifetimeS: 60, preferredLifetimeS: 0 })], 1000, out))
      expect(validUntil(s)).toBe(1000 + 2 * HOUR_S * 1000)
    })

    it("a short one while two hours or less remain: ignored and counted (a spoofed 0 cannot remove the address)", () => {
      const s = fresh()
      act((out) => s.onAdvertisement([opt({ validLifetimeS: HOUR_S, preferredLifetimeS: 0 })], 0, out))
      act((out) => s.onAdvertisement([opt({ validLifetimeS: 0, preferredLifetimeS: 0 })], 1000, out))
      expect(validUntil(s)).toBe(HOUR_S * 1000)
      expect(s.ignored.TwoHourRule).toBe(1)
      expect(s.has(ADDR)).toBe(true)
    })

    it("the preferred lifetime is always taken as received", () => {
      const s = start()
      act((out) => s.onAdvertisement([opt({ validLifetimeS: 40 * HOUR_S, preferredLifetimeS: 10 })], 5000, out))
      expect(s.isDeprecated(ADDR, 14_999)).toBe(false)
      expect(s.isDeprecated(ADDR, 15_000)).toBe(true)
    })
  })

  it("bounded: at most maxAddresses prefixes form addresses; the rest are counted", () => {
    const s = fresh()
    const out: Array<SlaacAction> = []
    for (let i = 0; i < DEFAULT_CONFIG.maxAddresses + 3; i++) s.onAdvertisement([opt({ prefix: ipv6(0x2001, 0xdb8, i, 0, 0, 0, 0, 0) })], 0, out)
    expect(out.filter((a) => a._tag === "Add")).toHaveLength(DEFAULT_CONFIG.maxAddresses)
    expect(s.ignored.TableFull).toBe(3)
  })

  it("a duplicate (DAD) leaves the table and is not formed again from later advertisements", () => {
    const s = fresh()
    act((out) => s.onAdvertisement([opt()], 0, out))
    s.duplicate(ADDR)
    expect(s.has(ADDR)).toBe(false)
    expect(act((out) => s.onAdvertisement([opt()], 1000, out))).toEqual([])
    expect(s.ignored.Duplicate).toBe(1)
    const other: Ipv6Address = ipv6(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0)
    expect(act((out) => s.onAdvertisement([opt({ prefix: other })], 1000, out))).toHaveLength(1)
  })
})
