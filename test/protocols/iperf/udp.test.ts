import { describe, expect, it } from "vitest"
import fc from "fast-check"
import * as Udp from "../../../src/protocols/iperf/udp.js"
import * as Wire from "../../../src/protocols/iperf/wire.js"
import { fromHex, toHex } from "../../../src/protocols/bytes.js"
import { fixtureHex, fixtureText } from "./fixtures.js"

const prefix = (seq: number, sec: number, usec: number): Uint8Array => {
  const b = new Uint8Array(Udp.PREFIX_LEN)
  Udp.emitDatagramPrefix(b, seq, sec, usec)
  return b
}

const parsed = (b: Uint8Array, seqNo64 = true): Udp.DatagramRepr => {
  const d = Udp.parseDatagram(b, seqNo64)
  if (typeof d === "string") throw new Error(d)
  return d
}

describe("iperf UDP datagram prefix", () => {
  it("real 2.1.8 datagrams: first is seq 1, the end marker is the negated next sequence", () => {
    const first = parsed(fixtureHex("udp-first-datagram.hex"))
    expect(first).toEqual({ seq: 1, sec: 0x6b07ecb9, usec: 0x000e9b44 })
    const fin = parsed(fixtureHex("udp-final-datagram.hex"))
    expect(fin.seq).toBe(-30)
    // the iperf-wire.md example: id 0xffffff4a, id2 0xffffffff = -182
    expect(parsed(fromHex("ffffff4a 00000000 00000000 ffffffff")).seq).toBe(-182)
    // a 32-bit (pre-SEQNO64B) client
    expect(parsed(fromHex("ffffff4a 00000000 00000000 00000000"), false).seq).toBe(-182)
  })

  it("truncation and unrepresentable sequences are drops, never throws", () => {
    for (let n = 0; n < 16; n++) expect(Udp.parseDatagram(new Uint8Array(n), true)).toBe("Truncated")
    expect(Udp.parseDatagram(fromHex("00000000 00000000 00000000 7fffffff"), true)).toBe("Malformed")
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), fc.boolean(), (b, w) => void Udp.parseDatagram(b, w)))
  })

  it("fast-check: parse(emit(seq)) = seq within ±2^53", () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }), fc.nat(0xffffffff), fc.nat(999_999), (seq, sec, usec) => {
        expect(parsed(prefix(seq, sec, usec))).toEqual({ seq, sec, usec })
      })
    )
  })
})

describe("iperf UDP accounting (2.1.8's algorithm)", () => {
  // seq 1, 2, 4, 3, 5, 8, 8 (duplicate), -9 (end); transit (µs) 10, 20, 15, 40, 10, 10, 30, 20; arrivals 1 ms apart
  const SEQ = [1, 2, 4, 3, 5, 8, 8, -9]
  const TRANSIT_US = [10, 20, 15, 40, 10, 10, 30, 20]
  const BASE_US = 1_700_000_000_000_000 + 999_000 // crosses a second boundary on the second datagram

  const run = (): { st: Udp.UdpStream; outcomes: Udp.DatagramOutcome[] } => {
    const st = Udp.makeStream(true)
    const outcomes = SEQ.map((seq, i) => {
      const arr = BASE_US + i * 1000
      const sent = arr - TRANSIT_US[i]!
      const sec = Math.floor(sent / 1e6)
      return Udp.onDatagram(st, parsed(prefix(seq, sec, sent - sec * 1e6)), 100, arr)
    })
    return { st, outcomes }
  }

  it("lost, out-of-order, totals", () => {
    const { st, outcomes } = run()
    expect(outcomes).toEqual(["Data", "Data", "Data", "Data", "Data", "Data", "Data", "Final"])
    // by hand: 4 after 2 → lost 1; 3 after 4 → ooo 1; 8 after 5 → lost 2; 8 again → ooo 2; 9 in order
    expect(st.lost).toBe(3)
    expect(st.outOfOrder).toBe(2)
    expect(st.packetId).toBe(9)
    expect(st.datagrams).toBe(8)
    expect(st.bytes).toBe(800)
    const r = Udp.report(st)
    expect(r.lost).toBe(1) // max(0, lost − outOfOrder)
    expect(r.outOfOrder).toBe(2)
    expect(r.datagrams).toBe(9) // highest sequence
    expect(r.bytes).toBe(800)
    expect(r.stop).toEqual({ sec: 0, usec: 7000 })
    expect(r.cntTransit).toBe(8)
    expect(r.cntIpg).toBe(1285) // (long)(9 / 0.007)
    expect(r.ipgSum).toBe(1)
    expect(r.flags).toBe(0x88000000)
  })

  it("jitter per RFC 1889 with iperf's start from a previous transit of 0", () => {
    const { st } = run()
    // by hand, in µs: D = 10,10,5,25,30,0,20,10 and J += (D − J)/16 from J = 0
    let j = 0
    for (const d of [10, 10, 5, 25, 30, 0, 20, 10]) j += (d - j) / 16
    expect(j).toBeCloseTo(5.597279665526, 9)
    expect(st.jitter * 1e6).toBeCloseTo(j, 6)
    const r = Udp.report(st)
    expect(r.jitter).toEqual({ sec: 0, usec: 5 })
    expect(Udp.pairSeconds(r.minTransit) * 1e6).toBeCloseTo(10, 0)
    expect(Udp.pairSeconds(r.maxTransit) * 1e6).toBeCloseTo(40, 0)
    expect(Udp.pairSeconds(r.sumTransit) * 1e6).toBeCloseTo(155, 0)
    expect(Udp.pairSeconds(r.meanTransit) * 1e6).toBeCloseTo(155 / 8, 0)
  })

  it("onPayload (no allocation) gives the same accounting as parseDatagram + onDatagram", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ seq: fc.integer({ min: -50, max: 50 }), usec: fc.nat(999_999), gapUs: fc.nat(20_000), len: fc.integer({ min: 16, max: 1500 }) }), { maxLength: 40 }),
        (ds) => {
          const a = Udp.makeStream(true)
          const b = Udp.makeStream(true)
          let now = 1_700_000_000_000_000
          for (const d of ds) {
            now += d.gapUs
            const payload = new Uint8Array(d.len)
            Udp.emitDatagramPrefix(payload, d.seq, 1_700_000_000, d.usec)
            expect(Udp.onPayload(a, payload, now)).toBe(Udp.onDatagram(b, parsed(payload), d.len, now))
          }
          expect(a).toEqual(b)
          expect(Udp.report(a)).toEqual(Udp.report(b))
        }
      )
    )
    expect(Udp.onPayload(Udp.makeStream(true), new Uint8Array(15), 0)).toBe("Truncated")
  })

  it("one datagram only: jitter reported as 0; sequence 0 is ignored", () => {
    const st = Udp.makeStream(true)
    expect(Udp.onDatagram(st, { seq: 0, sec: 0, usec: 0 }, 100, 5_000_000)).toBe("Ignored")
    expect(Udp.onDatagram(st, { seq: -1, sec: 5, usec: 0 }, 100, 5_000_050)).toBe("Final")
    expect(st.jitter).toBeGreaterThan(0)
    const r = Udp.report(st)
    expect(r.jitter).toEqual({ sec: 0, usec: 0 })
    expect(r).toMatchObject({ datagrams: 1, bytes: 100, lost: 0, stop: { sec: 0, usec: 0 }, cntIpg: 0 })
  })

  it("after the end marker: AfterFinal, resend up to 9 times, settled after 250 ms of silence", () => {
    const st = Udp.makeStream(true)
    Udp.onDatagram(st, { seq: 1, sec: 0, usec: 0 }, 10, 1000)
    expect(Udp.isSettled(st, 0)).toBe(false)
    expect(Udp.onDatagram(st, { seq: -2, sec: 0, usec: 0 }, 10, 2000)).toBe("Final")
    Udp.noteReportSent(st, 100)
    expect(Udp.isSettled(st, 349)).toBe(false)
    expect(Udp.onDatagram(st, { seq: -3, sec: 0, usec: 0 }, 10, 3000)).toBe("AfterFinal")
    expect(st.datagrams).toBe(2) // not accounted
    for (let i = 1; i < 9; i++) {
      expect(Udp.shouldResend(st)).toBe(true)
      Udp.noteReportSent(st, 100 + i)
    }
    expect(Udp.shouldResend(st)).toBe(false)
    expect(Udp.isSettled(st, 110)).toBe(true)
    const st2 = Udp.makeStream(true)
    Udp.onDatagram(st2, { seq: -1, sec: 0, usec: 0 }, 10, 0)
    Udp.noteReportSent(st2, 1000)
    expect(Udp.isSettled(st2, 1249)).toBe(false)
    expect(Udp.isSettled(st2, 1250)).toBe(true)
  })
})

describe("iperf UDP server report (128 bytes)", () => {
  const real = fixtureHex("udp-server-report.hex")

  it("the real 2.1.8 report parses to the fields the client printed (0.3146 s, 43.1 KBytes, 0.008 ms, 0/30)", () => {
    expect(real.length).toBe(128)
    const r = Udp.parseServerReport(real)
    if (typeof r === "string") throw new Error(r)
    expect(r).toMatchObject({ flags: 0x88000000, bytes: 44100, stop: { sec: 0, usec: 314628 }, lost: 0, outOfOrder: 0, datagrams: 30, jitter: { sec: 0, usec: 8 } })
    expect(r).toMatchObject({ cntTransit: 30, cntIpg: 95, ipgSum: 1 })
    expect(fixtureText("udp-client-output.txt")).toContain("0.0000-0.3146 sec  43.1 KBytes  1.12 Mbits/sec   0.008 ms 0/30 (0%)")
  })

  it("layout: emit(parse(real)) reproduces the real bytes exactly", () => {
    const r = Udp.parseServerReport(real)
    if (typeof r === "string") throw new Error(r)
    const out = new Uint8Array(128).fill(0xee)
    Udp.emitServerReport(r, out)
    expect(toHex(out)).toBe(toHex(real))
    for (let n = 0; n < 128; n++) expect(Udp.parseServerReport(real.subarray(0, n))).toBe("Truncated")
  })

  it("replaying the captured stream gives the real report's counters byte for byte", () => {
    const st = Udp.makeStream(true)
    let final: Udp.ServerReportRepr | undefined
    for (const line of fixtureText("udp-stream-prefixes.txt").trim().split("\n")) {
      const [time, len, hex] = line.split(" ") as [string, string, string]
      const [s, frac] = time.split(".") as [string, string]
      const nowUs = Number(s) * 1_000_000 + Number(frac.slice(0, 6))
      const out = Udp.onDatagram(st, parsed(fromHex(hex)), Number(len), nowUs)
      if (out === "Final") final = Udp.report(st)
    }
    expect(final).toBeDefined()
    const ours = new Uint8Array(128)
    Udp.emitServerReport(final!, ours)
    const hex = (b: Uint8Array, from: number, to: number): string => toHex(b.subarray(from, to))
    expect(hex(ours, 0, 28)).toBe(hex(real, 0, 28)) // zero slot, flags, total bytes
    expect(hex(ours, 36, 48)).toBe(hex(real, 36, 48)) // lost, out-of-order, datagrams
    expect(hex(ours, 104, 108)).toBe(hex(real, 104, 108)) // cntTransit
    expect(hex(ours, 112, 128)).toBe(hex(real, 112, 128)) // IPGsum, 64-bit high words
    // time-dependent fields: the capture was taken on the client side of the veth, the server stamped its own reads
    expect(Math.abs(Udp.pairSeconds(final!.stop) - 0.314628)).toBeLessThan(0.001)
    expect(final!.jitter.sec).toBe(0)
    expect(final!.jitter.usec).toBeLessThan(50)
    expect(Math.abs(final!.cntIpg - 95)).toBeLessThanOrEqual(1)
  })

  it("fast-check: parse(emit(r)) = r for reports with 64-bit counters", () => {
    const pairArb = fc.record({ sec: fc.nat(0xffffffff), usec: fc.nat(0xffffffff) })
    const u64 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })
    fc.assert(
      fc.property(
        fc.record({
          bytes: u64, stop: pairArb, lost: u64, outOfOrder: u64, datagrams: u64, jitter: pairArb, minTransit: pairArb,
          maxTransit: pairArb, sumTransit: pairArb, meanTransit: pairArb, m2Transit: pairArb, vdTransit: pairArb,
          cntTransit: fc.nat(0xffffffff), cntIpg: fc.nat(0xffffffff), ipgSum: fc.nat(0xffffffff)
        }),
        (fields) => {
          const r: Udp.ServerReportRepr = { flags: Udp.REPORT_FLAGS, ...fields }
          const b = new Uint8Array(128)
          Udp.emitServerReport(r, b)
          expect(Udp.parseServerReport(b)).toEqual(r)
        }
      )
    )
  })

  it("the settings header in every datagram says SEQNO64B", () => {
    const s = Wire.decodeUdpSettings(fixtureHex("udp-final-datagram.hex"))
    expect(typeof s === "string" ? s : s.seqNo64).toBe(true)
  })
})
