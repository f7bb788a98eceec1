import { describe, expect, it } from "vitest"
import fc from "fast-check"
import * as U from "../../../src/protocols/iperf3/udp.js"

const dgram = (seq: number, sentUs: number, c64 = false, len = 64): Uint8Array => {
  const b = new Uint8Array(len)
  U.stamp(b, seq, sentUs, c64)
  return b
}

describe("iperf3 UDP datagrams and accounting", () => {
  it("stamp writes seconds, microseconds and the sequence big-endian (32 and 64 bit)", () => {
    expect([...dgram(0x01020304, 5_000_123, false, 12)]).toEqual([0, 0, 0, 5, 0, 0, 0, 123, 1, 2, 3, 4])
    expect([...dgram(2 ** 32 + 7, 1_000_000, true, 16)]).toEqual([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 7])
  })
  it("the connect message is any 4-byte datagram; the reply is 6789", () => {
    expect(U.isConnect(Uint8Array.of(0x39, 0x38, 0x37, 0x36))).toBe(true)
    expect(U.isConnect(new Uint8Array(12))).toBe(false)
    expect([...U.CONNECT_REPLY]).toEqual([0x36, 0x37, 0x38, 0x39])
  })
  it("in-order datagrams: no loss; jitter starts from the first transit (constant delay -> 0)", () => {
    const r = U.makeRecv()
    for (let i = 1; i <= 10; i++) U.onDatagram(r, dgram(i, i * 1000), i * 1000 + 500, false)
    expect(r).toMatchObject({ bytes: 640, packets: 10, errors: 0, outOfOrder: 0, jitterS: 0 })
  })
  it("a gap counts as loss, a late datagram takes one back (3.12's rule)", () => {
    const r = U.makeRecv()
    for (const s of [1, 2, 5]) U.onDatagram(r, dgram(s, 0), 0, false)
    expect(r).toMatchObject({ packets: 5, errors: 2, outOfOrder: 0 })
    U.onDatagram(r, dgram(3, 0), 0, false)
    expect(r).toMatchObject({ packets: 5, errors: 1, outOfOrder: 1 })
  })
  it("jitter follows J += (|D| - J)/16 in seconds", () => {
    const r = U.makeRecv()
    U.onDatagram(r, dgram(1, 0), 1000, false)
    U.onDatagram(r, dgram(2, 1000), 3600, false) // transit 1 ms then 2.6 ms: D = 1.6 ms
    expect(r.jitterS).toBeCloseTo(0.0016 / 16, 12)
  })
  it("64-bit counters are read at 8..15; runts are counted and ignored", () => {
    const r = U.makeRecv()
    U.onDatagram(r, dgram(2 ** 33, 0, true), 0, true)
    expect(r.packets).toBe(2 ** 33)
    U.onDatagram(r, new Uint8Array(15), 0, true)
    U.onDatagram(r, new Uint8Array(11), 0, false)
    expect(r.runts).toBe(2)
  })
  it("property: onDatagram never throws on arbitrary bytes and keeps counters finite", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 30 }), fc.boolean(), (ds, c64) => {
        const r = U.makeRecv()
        for (const d of ds) U.onDatagram(r, d, 1e15, c64)
        expect(Number.isFinite(r.jitterS) && r.errors >= 0).toBe(true)
      })
    )
  })
  it("pacing: one datagram at the start, then rate x elapsed, at most MAX_BURST per wake-up", () => {
    // 1000-byte datagrams at 8 Mbit/s: one per millisecond
    expect(U.due(8_000_000, 1000, 0, 0, 0)).toBe(1)
    expect(U.due(8_000_000, 1000, 0, 10, 1)).toBe(10)
    expect(U.due(8_000_000, 1000, 0, 10, 11)).toBe(0)
    expect(U.due(8_000_000, 1000, 0, 10_000, 0)).toBe(U.MAX_BURST)
    expect(U.sleepMs(8_000_000, 1000, 0, 10, 20)).toBe(10)
    expect(U.sleepMs(8_000_000, 1000, 0, 10, 5)).toBe(1)
    expect(U.due(0, 1000, 0, 0, 1_000_000)).toBe(U.MAX_BURST)
  })
})
