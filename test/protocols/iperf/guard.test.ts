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
