/** Unit tests of the parts: RTT estimator, ranges/reassembly, rings, SACK helpers, congestion control. */
import { describe, expect, it } from "vitest"
import * as fc from "fast-check"
import { RttEstimator } from "../../../src/protocols/tcp/rtt.js"
import { RangeSet } from "../../../src/protocols/tcp/reassembly.js"
import { SendBuf } from "../../../src/protocols/tcp/sendbuf.js"
import { RecvBuf } from "../../../src/protocols/tcp/recvbuf.js"
import * as Sack from "../../../src/protocols/tcp/sack.js"
import * as Cc from "../../../src/protocols/tcp/congestion.js"
import type { SeqNum } from "../../../src/protocols/tcp/seq.js"

describe("RttEstimator (RFC 6298)", () => {
  it("first sample: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR (clamped to min)", () => {
    const r = new RttEstimator(1000, 200, 60000)
    expect(r.rtoMs).toBe(1000)
    r.sample(100)
    expect([r.srttMs, r.rttvarMs, r.rtoMs]).toEqual([100, 50, 300])
    r.sample(100)
    expect(r.srttMs).toBe(100)
    expect(r.rttvarMs).toBe(37.5)
    expect(r.rtoMs).toBe(250)
    r.sample(1)
    expect(r.rtoMs).toBeGreaterThanOrEqual(200)
  })
  it("backoff doubles up to the max and stays until the next sample", () => {
    const r = new RttEstimator(1000, 200, 60000)
    for (let i = 0; i < 10; i++) r.backoff()
    expect(r.rtoMs).toBe(60000)
    r.sample(10)
    expect(r.rtoMs).toBe(200)
  })
})

describe("RangeSet (offsets, bounded, merged)", () => {
  it("merges overlapping and adjacent ranges", () => {
    const s = new RangeSet(8)
    s.add(10, 20)
    s.add(30, 40)
    s.add(20, 30)
    expect(s.r).toEqual([10, 40])
    s.add(5, 12)
    s.add(50, 60)
    s.add(39, 55)
    expect(s.r).toEqual([5, 60])
  })
  it("refuses a new range past its bound but still merges into existing ones", () => {
    const s = new RangeSet(2)
    expect(s.add(0, 1)).toBe(true)
    expect(s.add(10, 11)).toBe(true)
    expect(s.add(20, 21)).toBe(false)
    expect(s.add(1, 5)).toBe(true)
    expect(s.r).toEqual([0, 5, 10, 11])
  })
  it("shift drops covered bytes and clips at 0", () => {
    const s = new RangeSet(8)
    s.add(10, 20)
    s.add(30, 40)
    s.shift(15)
    expect(s.r).toEqual([0, 5, 15, 25])
    expect(s.prefixLen()).toBe(5)
    s.shift(100)
    expect(s.isEmpty).toBe(true)
  })
  it("matches a bitmap model", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 40 }))), fc.integer({ min: 0, max: 100 }), (adds, sh) => {
        const s = new RangeSet(1000)
        const bits = new Array<boolean>(300).fill(false)
        for (const [a, l] of adds) {
          s.add(a, a + l)
          for (let i = a; i < a + l; i++) bits[i] = true
        }
        const model = bits.slice(sh)
        s.shift(sh)
        const got = new Array<boolean>(model.length).fill(false)
        for (let i = 0; i < s.count; i++) for (let k = s.start(i); k < s.end(i); k++) got[k] = true
        expect(got).toEqual(model)
        expect(s.total()).toBe(model.filter(Boolean).length)
        for (let i = 1; i < s.count; i++) expect(s.start(i)).toBeGreaterThan(s.end(i - 1))
      })
    )
  })
})

describe("rings", () => {
  it("SendBuf wraps, copyOut reads across the end, consume frees", () => {
    const b = new SendBuf(10)
    expect(b.write(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]))).toBe(8)
    b.consume(6)
    expect(b.write(Uint8Array.from([9, 10, 11, 12, 13, 14, 15, 16, 17]))).toBe(8)
    const d = new Uint8Array(10)
    b.copyOut(1, 9, d, 1)
    expect([...d]).toEqual([0, 8, 9, 10, 11, 12, 13, 14, 15, 16])
    expect(b.free).toBe(0)
  })
  it("RecvBuf stores out-of-order bytes past the readable region and reads across the end", () => {
    const r = new RecvBuf(8)
    r.put(0, Uint8Array.from([1, 2, 3, 4, 5, 6]), 0, 6)
    r.commit(6)
    const d = new Uint8Array(8)
    expect(r.read(d, 0, 5)).toBe(5)
    r.put(3, Uint8Array.from([40, 50]), 0, 2) // offsets past rcv.nxt, wraps
    r.put(0, Uint8Array.from([7, 8, 9]), 0, 3)
    r.commit(5)
    expect(r.read(d)).toBe(6)
    expect([...d.subarray(0, 6)]).toEqual([6, 7, 8, 9, 40, 50])
  })
})

const sq = (n: number) => n as SeqNum
describe("SACK", () => {
  it("receiver: the block with the latest segment comes first", () => {
    const s = new RangeSet(8)
    s.add(100, 200)
    s.add(300, 400)
    s.add(500, 600)
    expect(Sack.receiverBlocks(s, sq(1000), 350, 3)).toEqual([1300, 1400, 1100, 1200, 1500, 1600])
    expect(Sack.receiverBlocks(s, sq(1000), 350, 2)).toEqual([1300, 1400, 1100, 1200])
  })
  it("sender: scoreboard ignores D-SACK and blocks beyond SND.MAX", () => {
    const sb = new RangeSet(8)
    expect(Sack.updateScoreboard(sb, [sq(50), sq(90), sq(200), sq(300), sq(900), sq(2000)], sq(100), sq(1000))).toBe(true)
    expect(sb.r).toEqual([100, 200])
    expect(Sack.updateScoreboard(sb, [sq(250), sq(300)], sq(100), sq(1000))).toBe(false)
  })
  it("IsLost / pipe / NextSeg", () => {
    const mss = 100
    const sb = new RangeSet(8)
    sb.add(100, 400) // hole [0,100) has 300 bytes SACKed above: lost
    sb.add(500, 550) // hole [400,500) has 50 above: not lost
    expect(Sack.isLost(sb, 0, mss)).toBe(true)
    expect(Sack.isLost(sb, 400, mss)).toBe(false)
    // outstanding 700: holes [0,100) lost, [400,500) not lost, tail [550,700) counts
    expect(Sack.pipe(sb, 700, 0, mss)).toBe(100 + 150)
    expect(Sack.pipe(sb, 700, 100, mss)).toBe(100 + 150 + 100)
    const he = [0]
    expect(Sack.nextLostHole(sb, 0, mss, he)).toBe(0)
    expect(he[0]).toBe(100)
    expect(Sack.nextLostHole(sb, 100, mss, he)).toBe(-1)
  })
})

describe("congestion control", () => {
  const mss = 1000
  it("NewReno: slow start, congestion avoidance, halving on loss, 1 MSS on RTO", () => {
    const c = new Cc.NewReno(mss)
    expect(c.cwnd).toBe(10 * mss)
    c.onAck(mss, 0, 10, mss)
    expect(c.cwnd).toBe(11 * mss)
    c.onEnterRecovery(0, 20 * mss, mss)
    expect(c.ssthresh).toBe(10 * mss)
    expect(c.cwnd).toBe(10 * mss)
    for (let i = 0; i < 10; i++) c.onAck(mss, 0, 10, mss)
    expect(c.cwnd).toBe(11 * mss) // +1 MSS per window
    c.onRto(0, 11 * mss, mss)
    expect(c.cwnd).toBe(mss)
  })
  it("CUBIC: multiplicative decrease by 0.7, concave regrowth toward W_max, then convex probing", () => {
    const c = new Cc.Cubic(mss)
    c.cwnd = 100 * mss
    c.onEnterRecovery(0, 100 * mss, mss)
    expect(c.cwnd).toBe(70 * mss)
    c.onExitRecovery(0, mss)
    // K = cbrt(30 / 0.4) = 4.217 s: one ACK per ms for 4.2 s with 10 ms RTT approaches 100 segments
    let now = 0
    const at = (ms: number) => {
      while (now < ms) {
        now += 1
        c.onAck(mss, now, 10, mss)
      }
      return c.cwnd / mss
    }
    const w1 = at(1000)
    const wK = at(4217)
    const w8 = at(8000)
    expect(w1).toBeGreaterThan(70)
    expect(w1).toBeLessThan(100)
    expect(wK).toBeGreaterThan(95)
    expect(wK).toBeLessThan(106)
    expect(w8).toBeGreaterThan(110)
    // fast convergence: a loss below the last W_max lowers W_max
    c.cwnd = 90 * mss
    c.onEnterRecovery(now, 90 * mss, mss)
    expect(c.cwnd).toBe(63 * mss)
  })
})
