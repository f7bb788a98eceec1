import { describe, expect, it } from "@effect/vitest"
import * as Guard from "../../../src/protocols/iperf/guard.js"

describe("Guard: the stall deadline", () => {
  it("no progress for limitMs is a stall; any progress restarts the count", () => {
    const g = Guard.makeStall(10_000, 0)
    expect(Guard.check(g, 0, 9_999)).toBe("Ok")
    expect(Guard.check(g, 4, 9_999)).toBe("Ok") // 4 bytes arrived
    expect(Guard.check(g, 4, 19_998)).toBe("Ok")
    expect(Guard.check(g, 4, 19_999)).toBe("Stalled")
  })
  it("looks again at most a second later, and exactly at the deadline when it is nearer", () => {
    const g = Guard.makeStall(10_000, 0)
    expect(Guard.nextCheckMs(g, 0)).toBe(Guard.CHECK_MS)
    expect(Guard.nextCheckMs(g, 9_500)).toBe(10_000)
    const short = Guard.makeStall(300, 0)
    expect(Guard.nextCheckMs(short, 0)).toBe(300)
  })
})

describe("Guard: what an address that has not shown it wants our UDP gets", () => {
  it("at most 3x the bytes of the client's own stream", () => {
    const one = { bytes: 1470, lastMs: 0 }
    expect(Guard.maySend(one, 0, 1470, false, 0)).toBe("Ok")
    expect(Guard.maySend(one, 2 * 1470, 1470, false, 0)).toBe("Ok")
    expect(Guard.maySend(one, 3 * 1470, 1470, false, 0)).toBe("OverBudget")
  })
  it("-d: only while the client's stream keeps arriving (1 s of silence ends it)", () => {
    const e = { bytes: 1e9, lastMs: 5_000 }
    expect(Guard.maySend(e, 0, 1470, true, 6_000)).toBe("Ok")
    expect(Guard.maySend(e, 0, 1470, true, 6_001)).toBe("ClientSilent")
    expect(Guard.maySend(e, 0, 1470, false, 60_000)).toBe("Ok") // -r: budget only
  })
})

describe("Guard: limits that follow the client's own pace", () => {
  it("stall limit: iperf 2 / iperf3 -b 80k with 128 KiB buffers (a write every 13.1 s) gets two gaps, not 10 s", () => {
    expect(Guard.stallLimitMs(10_000, 80_000, 131_072)).toBe(Math.ceil((2 * 131_072 * 8 * 1000) / 80_000)) // 26 215 ms
    expect(Guard.stallLimitMs(10_000, 1_000_000_000, 131_072)).toBe(10_000) // fast: the configured limit
    expect(Guard.stallLimitMs(10_000, 0, 131_072)).toBe(10_000) // not rate-limited
    expect(Guard.stallLimitMs(10_000, 80_000, 0)).toBe(10_000)
    expect(Guard.stallLimitMs(10_000, 1, 131_072)).toBe(Guard.MAX_STALL_LIMIT_MS) // 1 bit/s buys no silent month
    expect(Guard.stallLimitMs(900_000, 1, 131_072)).toBe(900_000) // never below the configured limit
    // a stall watcher with the raised limit does not fire in the 13 s gap between two bursts
    const g = Guard.makeStall(Guard.stallLimitMs(10_000, 80_000, 131_072), 0)
    expect(Guard.check(g, 131_072, 0)).toBe("Ok")
    expect(Guard.check(g, 131_072, 13_107)).toBe("Ok")
    expect(Guard.check(g, 131_072, 26_215)).toBe("Stalled")
  })
  it("-u -d silence: at least 1 s, else 3 of the client's gaps (8 kbit/s, 1470 bytes: 1.47 s apart)", () => {
    expect(Guard.silenceMs((1470 * 8 * 1000) / 8_000)).toBeCloseTo(3 * 1470, 6)
    expect(Guard.silenceMs(11.2)).toBe(Guard.SILENCE_MS)
    expect(Guard.silenceMs(1000 / 0.5)).toBe(6_000) // pps mode: 0.5 datagrams per second
    const e = { bytes: 1e9, lastMs: 0 }
    const quiet = Guard.silenceMs(1470)
    expect(Guard.maySend(e, 0, 1470, true, 1_470, quiet)).toBe("Ok") // the next datagram is simply not due yet
    expect(Guard.maySend(e, 0, 1470, true, 4_411, quiet)).toBe("ClientSilent")
  })
})

describe("Guard: which receive stream a full table forgets", () => {
  const entry = (datagrams: number, lastMs: number, feedsSender = false): Guard.TableEntry => ({ datagrams, lastMs, feedsSender })
  it("a fresh forged key goes before a client that has shown 8 datagrams, however idle that client is", () => {
    const t: Array<[string, Guard.TableEntry]> = [
      ["client", entry(20, 0)],
      ["fake1", entry(1, 900)],
      ["fake2", entry(1, 800)]
    ]
    expect(Guard.pickVictim(t)).toBe("fake2")
  })
  it("an entry feeding a sending stream goes last; among equals the idlest", () => {
    expect(Guard.pickVictim([["dual", entry(2, 0, true)], ["proven", entry(9, 50)], ["proven2", entry(9, 40)]])).toBe("proven2")
    expect(Guard.pickVictim([["dual", entry(2, 0, true)]])).toBe("dual")
    expect(Guard.pickVictim([])).toBeUndefined()
  })
})
