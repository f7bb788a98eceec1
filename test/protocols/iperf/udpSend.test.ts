/**
 * The UDP sender of `-u -r`, `-u -d`, `-u -R` (src/protocols/iperf/udpSend.ts): plan bounds, pacing with plain
 * numbers for time, the datagram bytes, and the end-of-stream exchange. No clock, no sleeps.
 */
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import * as Udp from "../../../src/protocols/iperf/udp.js"
import * as Send from "../../../src/protocols/iperf/udpSend.js"
import { fromHex, toHex } from "../../../src/protocols/bytes.js"

const timePlan = (rate: number, durationMs: number, bufferLen = 0, pps = false): Send.SendPlan => {
  const p = Send.plan({ rate, pps, bufferLen, limit: { kind: "time", durationMs } })
  if (p._tag !== "Plan") throw new Error(p.reason)
  return p
}

/** Drive a sender with wake-ups at the given times (ms); returns the datagrams sent per wake-up. */
const drive = (s: Send.UdpSender, times: ReadonlyArray<number>): Array<number> => {
  const b = Send.makeDatagram(s.plan.datagramLen)
  const out: Array<number> = []
  for (const t of times) {
    const n = Send.due(s, t)
    for (let k = 0; k < n; k++) Send.stampNext(s, b, 1_700_000_000_000_000 + t * 1000)
    out.push(n)
  }
  return out
}

const ticks = (from: number, to: number, step: number): Array<number> => {
  const out: Array<number> = []
  for (let t = from; t <= to + 1e-9; t += step) out.push(t)
  return out
}

describe("plan: the client's request, bounded", () => {
  it("defaults: no rate → 1 Mbit/s (2^20), no -l → 1470 bytes, 11.215 ms apart", () => {
    const p = timePlan(0, 2000)
    expect(p.rate).toBe(1_048_576)
    expect(p.datagramLen).toBe(1470)
    expect(p.intervalMs).toBeCloseTo((1470 * 8 * 1000) / 1_048_576, 9)
    expect(p.clamped).toEqual(["RateDefaulted"])
    expect(timePlan(1_048_576, 2000).clamped).toEqual([])
  })

  it("-b 10M and -l 1000, packets per second", () => {
    const p = timePlan(10 * 1_048_576, 2000, 1000)
    expect(p.intervalMs).toBeCloseTo((1000 * 8 * 1000) / (10 * 1_048_576), 9)
    expect(timePlan(500, 1000, 0, true).intervalMs).toBe(2)
  })

  it("absurd rates and lengths are clamped (and listed); absurd durations are refused", () => {
    const huge = timePlan(2 ** 56, 1000, 1_000_000)
    expect(huge.rate).toBe(Send.MAX_RATE_BPS)
    expect(huge.datagramLen).toBe(Send.MAX_DATAGRAM_LEN)
    expect(huge.clamped).toEqual(["RateClamped", "LengthClamped"])
    expect(timePlan(1e6, 1000, 3).datagramLen).toBe(16)
    expect(timePlan(1e6, 1000, 3).clamped).toEqual(["LengthRaised"])
    expect(timePlan(Number.NaN, 1000).clamped).toEqual(["RateDefaulted"])
    const long = Send.plan({ rate: 0, pps: false, bufferLen: 0, limit: { kind: "time", durationMs: 3_600_010 } })
    expect(long).toEqual({ _tag: "Refused", reason: "DurationTooLong" })
    // 2^31 bytes at 1 Mbit/s is 4.5 hours of sending
    const bytes = Send.plan({ rate: 0, pps: false, bufferLen: 0, limit: { kind: "bytes", bytes: 0x7fffffff } })
    expect(bytes).toEqual({ _tag: "Refused", reason: "DurationTooLong" })
    expect(Send.plan({ rate: 0, pps: false, bufferLen: 0, limit: { kind: "time", durationMs: 0 } })).toEqual({
      _tag: "Refused",
      reason: "ZeroDuration"
    })
    expect(timePlan(0, 3_600_000)._tag).toBe("Plan")
  })

  it("fast-check: any request either is refused or gives a bounded plan", () => {
    fc.assert(
      fc.property(
        fc.double({ noNaN: false }),
        fc.boolean(),
        fc.nat(0xffffffff),
        fc.oneof(
          fc.record({ kind: fc.constant("time" as const), durationMs: fc.integer({ min: -10, max: 2 ** 31 * 10 }) }),
          fc.record({ kind: fc.constant("bytes" as const), bytes: fc.nat(0x7fffffff) })
        ),
        (rate, pps, bufferLen, limit) => {
          const p = Send.plan({ rate, pps, bufferLen, limit })
          if (p._tag === "Refused") return
          expect(p.rate).toBeGreaterThan(0)
          expect(p.rate).toBeLessThanOrEqual(pps ? Send.MAX_RATE_PPS : Send.MAX_RATE_BPS)
          expect(p.datagramLen).toBeGreaterThanOrEqual(16)
          expect(p.datagramLen).toBeLessThanOrEqual(65_507)
          expect(p.intervalMs).toBeGreaterThan(0)
          if (p.limit.kind === "time") expect(p.limit.durationMs).toBeLessThanOrEqual(Send.MAX_DURATION_MS)
        }
      )
    )
  })
})

describe("pacing (token bucket over elapsed time)", () => {
  it("-t 2 at 1 Mbit/s with a 1 ms tick: 179 datagrams, one every 11.2 ms, first at once", () => {
    const s = Send.makeSender(timePlan(1_048_576, 2000), 0)
    const sent = drive(s, ticks(0, 2000, 1))
    expect(sent[0]).toBe(1)
    expect(s.sent).toBe(179) // due at k × 11.215 ms < 2000 ms: k = 0..178
    expect(Math.max(...sent)).toBe(1)
    expect(s.bytes).toBe(179 * 1470)
    expect(Send.dataDone(s, 2000)).toBe(true)
    expect(s.endMs).toBe(2000)
    expect(s.skipped).toBe(0)
  })

  it("-b 500M with a 1 ms tick does not fall behind: 44 to 45 datagrams per tick, 44583 in 1 s", () => {
    const p = timePlan(500 * 1_048_576, 1000)
    const s = Send.makeSender(p, 0)
    const sent = drive(s, ticks(0, 1000, 1))
    expect(s.sent).toBe(Math.floor(999 / p.intervalMs) + 1)
    expect(Math.abs(s.sent - 1000 / p.intervalMs)).toBeLessThan(50)
    for (const n of sent.slice(1, -1)) expect(n === 44 || n === 45).toBe(true)
    expect(s.skipped).toBe(0)
  })

  it("fast-check: irregular wake-ups (1-4 ms apart) send exactly the datagrams due by the last one", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1, max: 4, noNaN: true }), { minLength: 1, maxLength: 400 }),
        fc.constantFrom(1_048_576, 10 * 1_048_576, 20 * 1_048_576, 500 * 1_048_576),
        (gaps, rate) => {
          const p = timePlan(rate, 10_000)
          const s = Send.makeSender(p, 100)
          let t = 100
          const times = [t]
          for (const g of gaps) times.push((t += g))
          drive(s, times)
          expect(s.sent).toBe(Math.floor((t - 100) / p.intervalMs) + 1)
          expect(s.skipped).toBe(0)
        }
      )
    )
  })

  it("a long stall skips the backlog (counted) instead of flooding, then paces from now", () => {
    const p = timePlan(10 * 1_048_576, 2000) // 1.12 ms apart; backlog limit 20 ms = 18 datagrams
    expect(Send.backlogLimit(p)).toBe(18)
    const s = Send.makeSender(p, 0)
    drive(s, [0])
    expect(drive(s, [15])).toEqual([13]) // 15 ms late: within the limit, caught up at once
    const before = s.sent
    expect(drive(s, [215])).toEqual([1]) // 200 ms stall: one now, the rest skipped
    expect(s.skipped).toBe(Math.floor(215 / p.intervalMs) + 1 - before - 1)
    expect(drive(s, [216, 217])).toEqual([0, 1])
  })

  it("bursts are capped at MAX_BURST; the rest follow at the next wake-up", () => {
    const p = timePlan(Send.MAX_RATE_BPS, 1000, 16) // 0.0000128 ms apart
    const s = Send.makeSender(p, 0)
    expect(drive(s, [0, 0.01, 1, 2])).toEqual([1, Send.MAX_BURST, Send.MAX_BURST, Send.MAX_BURST])
  })

  it("bursts of big datagrams are capped by bytes: 8 × 65507 per wake-up", () => {
    const p = timePlan(Send.MAX_RATE_BPS, 1000, 65_507)
    const s = Send.makeSender(p, 0)
    expect(drive(s, [0, 1, 2])).toEqual([1, 8, 8])
    expect(8 * 65_507).toBeLessThanOrEqual(Send.MAX_BURST_BYTES)
  })

  it("sleepMs: to the next due datagram or the end, never under a tick", () => {
    const p = timePlan(1_048_576, 100)
    const s = Send.makeSender(p, 0)
    drive(s, [0])
    expect(Send.sleepMs(s, 0)).toBe(12) // 11.215 ms, rounded up to whole milliseconds
    expect(Send.sleepMs(s, 11)).toBe(1)
    expect(Send.sleepMs(s, 5.5)).toBe(6)
    drive(s, ticks(1, 99, 1))
    expect(Send.sleepMs(s, 99.5)).toBe(1)
    const fast = Send.makeSender(timePlan(100 * 1_048_576, 100), 0)
    expect(Send.sleepMs(fast, 5)).toBe(Send.TICK_MS)
  })

  it("amount mode (-n): exactly the bytes asked for, the last datagram shortened", () => {
    const p = Send.plan({ rate: 10 * 1_048_576, pps: false, bufferLen: 0, limit: { kind: "bytes", bytes: 10_000 } })
    if (p._tag !== "Plan") throw new Error(p.reason)
    const s = Send.makeSender(p, 0)
    const b = Send.makeDatagram(p.datagramLen)
    const lens: Array<number> = []
    for (let t = 0; t < 100 && !Send.dataDone(s, t); t++) {
      const n = Send.due(s, t)
      for (let k = 0; k < n; k++) lens.push(Send.stampNext(s, b, 0))
    }
    expect(lens).toEqual([1470, 1470, 1470, 1470, 1470, 1470, 1180])
    expect(s.bytes).toBe(10_000)
    expect(Send.dataDone(s, 100)).toBe(true)
  })
})

describe("datagrams", () => {
  it("data datagrams: 64-bit sequence from 1, wall-clock sec/usec, the payload pattern untouched", () => {
    const s = Send.makeSender(timePlan(1_048_576, 1000), 0)
    const b = Send.makeDatagram(1470)
    const pattern = b.slice(16)
    const wall = 1_764_156_000_123_456
    expect(Send.stampNext(s, b, wall)).toBe(1470)
    expect(Udp.parseDatagram(b, true)).toEqual({ seq: 1, sec: 1_764_156_000, usec: 123_456 })
    expect(Send.stampNext(s, b, wall + 11_215)).toBe(1470)
    expect(Udp.parseDatagram(b, true)).toEqual({ seq: 2, sec: 1_764_156_000, usec: 134_671 })
    expect(b.slice(16)).toEqual(pattern)
    expect(String.fromCharCode(...b.subarray(16, 26))).toBe("6789012345")
  })

  it("a sequence beyond 32 bits is written in both words", () => {
    const b = Send.makeDatagram(64)
    Send.stamp(b, 2 ** 32 + 5, 0)
    expect(Array.from(b.subarray(0, 16))).toEqual([0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    Send.stamp(b, -(2 ** 32 + 5), 0)
    expect(Udp.parseDatagram(b, true)).toMatchObject({ seq: -(2 ** 32 + 5) })
  })

  it("the final datagram: the negated next sequence, one more negative on every repeat, full length", () => {
    const s = Send.makeSender(timePlan(1_048_576, 30), 0)
    const b = Send.makeDatagram(1470)
    drive(s, ticks(0, 30, 1))
    expect(s.sent).toBe(3)
    expect(Send.finDue(s)).toBe(true)
    expect(Send.stampFin(s, b, 0)).toBe(1470)
    expect(Udp.parseDatagram(b, true)).toMatchObject({ seq: -4 })
    Send.stampFin(s, b, 0)
    expect(Udp.parseDatagram(b, true)).toMatchObject({ seq: -5 })
    expect(s.finSends).toBe(2)
  })
})

describe("golden bytes from the real 2.1.8 server (iperf -s -u, client -u -R -t 2 / -u -r -t 2, captured 2026-11-26)", () => {
  // first data datagram and the final one of the -R run: 1470 bytes, prefix then the digits '0' + i % 10
  const REAL_FIRST_PREFIX = "000000016b081ab7000a458000000000"
  const REAL_FINAL_PREFIX = "ffffff4b6b081ab9000a8f3fffffffff" // -181 after data 1..180
  const realDatagram = (prefixHex: string): Uint8Array => {
    const b = new Uint8Array(1470)
    for (let i = 16; i < 1470; i++) b[i] = 0x30 + (i % 10)
    b.set(fromHex(prefixHex))
    return b
  }

  it("our first data datagram is byte for byte the real one, given the same time", () => {
    const s = Send.makeSender(timePlan(1_048_576, 2000), 0)
    const b = Send.makeDatagram(1470)
    const len = Send.stampNext(s, b, 0x6b081ab7 * 1_000_000 + 0x000a4580)
    expect(len).toBe(1470)
    expect(toHex(b)).toBe(toHex(realDatagram(REAL_FIRST_PREFIX)))
  })

  it("our final datagram after 180 data datagrams is byte for byte the real one", () => {
    const s = Send.makeSender(timePlan(1_048_576, 2020), 0)
    const b = Send.makeDatagram(1470)
    while (s.sent < 180) Send.stampNext(s, b, 0)
    expect(Send.stampFin(s, b, 0x6b081ab9 * 1_000_000 + 0x000a8f3f)).toBe(1470)
    expect(toHex(b)).toBe(toHex(realDatagram(REAL_FINAL_PREFIX)))
  })

  it("the client listener's real report (-u -r) is a Report: 266070 bytes, 0/181, 2.018835 s", () => {
    const real = fromHex(
      "00000000000000000000000000000000880000000000000000040f5600000002000049930000000000000000000000b5" +
        "0000000000000001000000000000000a000000000000005f0000000000001669000000000000001f00002e840004623c" +
        "0000000000000001000000b50000005900000001000000000000000000000000"
    )
    expect(real.length).toBe(128)
    const s = Send.makeSender(timePlan(1_048_576, 2000), 0)
    expect(Send.onReply(s, real, 0)).toBe("Report")
    expect(s.report).toMatchObject({ bytes: 266_070, lost: 0, outOfOrder: 0, datagrams: 181, stop: { sec: 2, usec: 18_835 }, jitter: { sec: 0, usec: 1 } })
  })
})

describe("end of stream: the receiver's report", () => {
  const report = (): Uint8Array => {
    const st = Udp.makeStream(true)
    for (let i = 1; i <= 3; i++) Udp.onDatagram(st, { seq: i, sec: 0, usec: 0 }, 1470, i * 1000)
    Udp.onDatagram(st, { seq: -4, sec: 0, usec: 0 }, 1470, 5000)
    const b = new Uint8Array(Udp.REPORT_LEN)
    Udp.emitServerReport(Udp.report(st), b)
    return b
  }

  it("without a report the final datagram repeats 12 times, waits 10, 20, 40 … 250 ms: about 2.1 s in all", () => {
    const s = Send.makeSender(timePlan(1_048_576, 10), 0)
    const b = Send.makeDatagram(1470)
    const waits: Array<number> = []
    while (Send.finDue(s) && waits.length < 10_000) {
      Send.stampFin(s, b, 0)
      waits.push(Send.finWaitMs(s))
    }
    expect(waits).toEqual([10, 20, 40, 80, 160, 250, 250, 250, 250, 250, 250, 250])
    expect(Send.FIN_MAX_SENDS).toBe(12)
    expect(waits.reduce((a, x) => a + x, 0)).toBe(2060)
  })

  it("a listener that answers 300 ms late meets 5 final datagrams (it gives up after 9 rounds)", () => {
    const s = Send.makeSender(timePlan(1_048_576, 10), 0)
    const b = Send.makeDatagram(1470)
    let t = 0
    let sent = 0
    while (Send.finDue(s) && t < 300) {
      Send.stampFin(s, b, 0)
      sent++
      t += Send.finWaitMs(s)
    }
    expect(sent).toBe(5) // at 0, 10, 30, 70, 150 ms; the next would be at 310
  })

  it("a 128-byte report ends the repeats; short replies are not reports; a second one is a duplicate", () => {
    const s = Send.makeSender(timePlan(1_048_576, 10), 0)
    expect(Send.onReply(s, new Uint8Array(28), 0)).toBe("NotAReport")
    expect(Send.onReply(s, report().subarray(0, 127), 0)).toBe("NotAReport")
    expect(s.badReplies).toBe(2)
    expect(Send.finDue(s)).toBe(true)
    expect(Send.onReply(s, report(), 0)).toBe("Report")
    expect(s.report).toMatchObject({ bytes: 4 * 1470, datagrams: 4, lost: 0 })
    expect(Send.finDue(s)).toBe(false)
    expect(Send.onReply(s, report(), 0)).toBe("Duplicate")
  })

  it("after the report the port stays open until 500 ms of quiet from the receiver, at most 3 s", () => {
    const s = Send.makeSender(timePlan(1_048_576, 10), 0)
    expect(Send.lingerMs(s, 100)).toBe(0) // no report: nothing to wait for
    Send.onReply(s, report(), 1000)
    expect(Send.lingerMs(s, 1000)).toBe(500)
    Send.onReply(s, report(), 1200) // the listener repeats its report (it saw another final datagram)
    expect(Send.lingerMs(s, 1300)).toBe(400)
    expect(Send.lingerMs(s, 1700)).toBe(0)
    for (let t = 1700; t < 5000; t += 100) Send.onReply(s, report(), t) // a chatty receiver cannot hold it open
    expect(Send.lingerMs(s, 3900)).toBe(100)
    expect(Send.lingerMs(s, 4000)).toBe(0)
  })

  it("fast-check: onReply never throws on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        const s = Send.makeSender(timePlan(1_048_576, 10), 0)
        expect(["Report", "NotAReport"]).toContain(Send.onReply(s, b, 0))
      })
    )
  })
})
