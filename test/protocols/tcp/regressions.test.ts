/**
 * Regressions found with two full stacks on a SimLink (test/layers/tcp-sim.test.ts), reproduced here
 * on the pure machine (nowMs passed in) and on the two-Tcb harness with an MTU on the link.
 */
import { describe, expect, it } from "vitest"
import * as Tcp from "../../../src/protocols/tcp/machine.js"
import { type SeqNum } from "../../../src/protocols/tcp/seq.js"
import * as W from "../../../src/protocols/tcp/wire.js"
import { run, type LinkOpts } from "./harness.js"
import { ISS, L, P, RISS, Rec, peer, s } from "./peer.js"

const feed = (t: Tcp.Tcb, rec: Rec, now: number, r: W.TcpRepr, len = 0): W.TcpRepr[] => {
  const buf = new Uint8Array(len)
  Tcp.input(t, { ...r, payloadLen: len }, buf, 0, now, rec)
  return rec.take()
}

/** An ESTABLISHED passive Tcb (peer MSS 1460, wscale 7, SACK and timestamps as cfg says). */
const established = (cfg: Tcp.Config) => {
  const rec = new Rec()
  const syn = peer({
    seq: s(RISS), flags: W.SYN, mss: 1460, wscale: 7, sackPermitted: cfg.sack, hasTs: cfg.timestamps, tsVal: cfg.timestamps ? 100 : 0
  })
  const t = Tcp.acceptSyn(cfg, syn, L, P, ISS, 0, rec)
  rec.take()
  feed(t, rec, 10, peer({ seq: s(RISS + 1), ack: s(ISS + 1), hasTs: cfg.timestamps, tsVal: 101, tsEcr: t.tsOk ? t.tsOffset >>> 0 : 0 }))
  Tcp.takeEvents(t)
  return { t, rec }
}

/** IP packet size of a segment on the wire (a TSO segment: of each wire segment, cut at tcb.sndMss). */
const ipLen = (t: Tcp.Tcb, r: W.TcpRepr) => 20 + W.headerLen(r) + Math.min(r.payloadLen, t.sndMss)

describe("segments carrying SACK blocks still fit the MTU (RFC 6691: options come out of the MSS)", () => {
  it.each([
    ["timestamps, 3 SACK blocks", true, false],
    ["no timestamps, 4 SACK blocks", false, false],
    ["timestamps, TSO", true, true]
  ])("%s: every data segment sent while holding out-of-order data is at most mss + 40 bytes of IP", (_name, ts, tso) => {
    const cfg = Tcp.makeConfig({ timestamps: ts, sack: true, tso, maxSegmentBytes: 64_000, nagle: false })
    const { t, rec } = established(cfg)
    expect(t.sackOk).toBe(true)
    const mtu = cfg.mss + 40
    // out-of-order data from the peer: four separate ranges past a hole at RCV.NXT
    for (let k = 0; k < 4; k++) {
      const out = feed(t, rec, 20 + k, peer({ seq: s(RISS + 1 + 1000 + k * 2000), ack: s(ISS + 1), hasTs: ts, tsVal: 102 + k }), 500)
      expect(out.length).toBe(1) // the duplicate ACK, with SACK blocks
      expect(out[0]!.sack.length).toBeGreaterThan(0)
    }
    // now the app writes: data goes out with the SACK blocks on every segment
    expect(Tcp.send(t, new Uint8Array(60_000))).toBe(60_000)
    Tcp.poll(t, 30, rec)
    const data = rec.take().filter((r) => r.payloadLen > 0)
    expect(data.length).toBeGreaterThan(0)
    for (const r of data) {
      expect(r.sack.length).toBeGreaterThan(0)
      expect(ipLen(t, r)).toBeLessThanOrEqual(mtu)
      // no TSO super-segment while the per-segment option space is smaller than sndMss assumes
      expect(r.payloadLen).toBeLessThanOrEqual(t.sndMss)
    }
    // the sequence space is contiguous
    for (let i = 1; i < data.length; i++) expect(data[i]!.seq).toBe((data[i - 1]!.seq + data[i - 1]!.payloadLen) >>> 0)
    // fill the holes: no SACK blocks are due any more, full-size segments come back
    for (const [a, b] of [[0, 1000], [1500, 3000], [3500, 5000], [5500, 7000]] as const) {
      expect(Tcp.segmentPayloadMax(t)).toBeLessThan(t.sndMss)
      feed(t, rec, 40, peer({ seq: s(RISS + 1 + a), ack: s(ISS + 1), hasTs: ts, tsVal: 110 }), b - a)
    }
    expect(t.ooo.isEmpty).toBe(true)
    expect(Tcp.segmentPayloadMax(t)).toBe(t.sndMss)
  })

  it("segmentPayloadMax is sndMss without out-of-order data", () => {
    const { t } = established(Tcp.makeConfig())
    expect(Tcp.segmentPayloadMax(t)).toBe(t.sndMss)
    expect(t.sndMss).toBe(1448)
  })
})

const MB = 1024 * 1024
const lan = (p: Partial<LinkOpts>): LinkOpts => ({
  lossRate: 0, dupRate: 0, reorderRate: 0, delayMs: 1, reorderDelayMs: 0, bytesPerMs: 125_000, queueBytes: 4 * MB, ...p
})

describe("two Tcbs, both directions at once, IP MTU enforced on the link", () => {
  // Before the fix: while one direction had a hole, every full-MSS segment of the other direction
  // carried SACK blocks, was 12-28 bytes over the MTU and was dropped (in the stack: IP BadLength),
  // including every retransmission of SND.UNA: RTO back-off until TimedOut.
  it("1% loss, 1 ms delay, 4 MB each way: no oversize segment, finishes", () => {
    const cfg = Tcp.makeConfig()
    const r = run({
      seed: 7, link: lan({ lossRate: 0.01 }), cfgA: cfg, cfgB: cfg, issA: 0x12345678, issB: 0x12345678,
      bytesAtoB: 4 * MB, bytesBtoA: 4 * MB, maxVirtualMs: 120_000
    })
    expect(r.oversize).toEqual([0, 0])
    expect(r.finished).toBe(true)
    expect(r.hashAtoB).toBe(r.expectedAtoB)
    expect(r.hashBtoA).toBe(r.expectedBtoA)
    expect(r.a.counters.rtoExpiries + r.b.counters.rtoExpiries).toBeLessThan(10)
    expect(r.doneAtMs).toBeLessThan(5_000)
  })

  it("5 ms delay + 2 ms jitter (reordering), TSO, no loss, 4 MB each way: no oversize segment, no RTO", () => {
    const cfg = Tcp.makeConfig({ tso: true, maxSegmentBytes: 63_712 })
    const r = run({
      seed: 7, link: lan({ delayMs: 5, jitterMs: 2 }), cfgA: cfg, cfgB: cfg, issA: 0x12345678, issB: 0x12345678,
      bytesAtoB: 4 * MB, bytesBtoA: 4 * MB, maxVirtualMs: 120_000
    })
    expect(r.oversize).toEqual([0, 0])
    expect(r.finished).toBe(true)
    expect(r.hashAtoB).toBe(r.expectedAtoB)
    expect(r.hashBtoA).toBe(r.expectedBtoA)
    expect(r.a.counters.rtoExpiries + r.b.counters.rtoExpiries).toBe(0)
    expect(r.doneAtMs).toBeLessThan(5_000)
  })
})

describe("SACK loss detection in a two-way transfer (RFC 6675 §2, §5)", () => {
  const MSS = 1448
  const cfg = Tcp.makeConfig({ tailLossProbe: false, nagle: false })
  /** ESTABLISHED with 10 full segments in flight (the initial window): [ISS+1, ISS+1+10*MSS). */
  const sending = () => {
    const { t, rec } = established(cfg)
    expect(t.sndMss).toBe(MSS)
    Tcp.send(t, new Uint8Array(20 * MSS))
    Tcp.poll(t, 20, rec)
    const sent = rec.take().filter((r) => r.payloadLen > 0)
    expect(sent.reduce((n, r) => n + r.payloadLen, 0)).toBe(10 * MSS)
    return { t, rec }
  }
  const una = ISS + 1
  const sackOf = (from: number, to: number) => [s(una + from * MSS), s(una + to * MSS)]
  let peerSeq = RISS + 1
  let tsVal = 200
  /** An ACK from the peer; with `data` it carries that many payload bytes (in order). */
  const ackFrom = (t: Tcp.Tcb, rec: Rec, now: number, ack: number, sack: SeqNum[], data = 0) => {
    const r = peer({ seq: s(peerSeq), ack: s(ack), hasTs: true, tsVal: tsVal++, tsEcr: 0, sack })
    peerSeq += data
    return feed(t, rec, now, r, data)
  }

  it("ACKs that ride on data and SACK new bytes count as duplicates: fast retransmit after three", () => {
    peerSeq = RISS + 1
    const { t, rec } = sending()
    ackFrom(t, rec, 30, una, sackOf(1, 2), 100)
    ackFrom(t, rec, 31, una, sackOf(1, 3), 100)
    expect(t.counters.fastRetransmits).toBe(0)
    const out = ackFrom(t, rec, 32, una, sackOf(1, 4), 100)
    expect(t.counters.dupAcksIn).toBe(3)
    expect(t.counters.fastRetransmits).toBe(1)
    expect(t.rec.active).toBe(true)
    const rexmit = out.filter((r) => r.payloadLen > 0 && r.seq === una)
    expect(rexmit.length).toBe(1)
    expect(rexmit[0]!.payloadLen).toBeLessThanOrEqual(MSS)
  })

  it("an ACK that SACKs nothing new is not a duplicate (e.g. the reply to a dropped old segment)", () => {
    peerSeq = RISS + 1
    const { t, rec } = sending()
    ackFrom(t, rec, 30, una, sackOf(1, 2))
    ackFrom(t, rec, 31, una, sackOf(1, 2))
    ackFrom(t, rec, 32, una, sackOf(1, 2))
    ackFrom(t, rec, 33, una, sackOf(1, 2))
    expect(t.counters.dupAcksIn).toBe(1)
    expect(t.counters.fastRetransmits).toBe(0)
    expect(t.rec.active).toBe(false)
  })

  it("an ACK that moves SND.UNA but SACKs more than 2 MSS above the next hole starts recovery at once", () => {
    peerSeq = RISS + 1
    const { t, rec } = sending()
    // segment 0 arrived, segment 1 lost, segments 2..5 arrived: the cumulative ACK moves by one segment
    const out = ackFrom(t, rec, 30, una + MSS, sackOf(2, 6), 100)
    expect(t.sndUna).toBe(s(una + MSS))
    expect(t.rec.active).toBe(true)
    expect(t.counters.fastRetransmits).toBe(1)
    expect(out.some((r) => r.payloadLen > 0 && r.seq === s(una + MSS))).toBe(true)
  })
})

describe("a lost retransmission is sent again without waiting for the RTO", () => {
  const MSS = 1448
  const cfg = Tcp.makeConfig({ tailLossProbe: false, nagle: false })
  const una = ISS + 1
  const at = (k: number) => s(una + k * MSS)

  it("the hole a partial ACK stops at was retransmitted and lost: SACKs of later data resend it", () => {
    const { t, rec } = established(cfg)
    Tcp.send(t, new Uint8Array(40 * MSS))
    Tcp.poll(t, 20, rec)
    expect(rec.take().filter((r) => r.payloadLen > 0).length).toBe(10) // segments 0..9
    let tsVal = 200
    const ack = (now: number, a: SeqNum, sack: SeqNum[]) =>
      feed(t, rec, now, peer({ seq: s(RISS + 1), ack: a, hasTs: true, tsVal: tsVal++, tsEcr: 0, sack }))
    // segments 0 and 2 lost: recovery, both retransmitted
    const r1 = ack(30, at(0), [at(1), at(2), at(3), at(7)])
    expect(t.rec.active).toBe(true)
    expect(r1.filter((r) => r.payloadLen > 0 && r.seq === at(0)).length).toBe(1)
    expect(r1.filter((r) => r.payloadLen > 0 && r.seq === at(2)).length).toBe(1)
    const markAfterRxt = t.sndMax
    // the retransmission of 0 arrives (partial ACK up to the hole at 2); the one of 2 was lost
    ack(40, at(2), [at(3), at(7)])
    expect(t.sndUna).toBe(at(2))
    expect(t.rec.active).toBe(true)
    // data sent after the retransmission of 2 is SACKed: that retransmission is lost, send it again now
    expect(t.sndMax).not.toBe(markAfterRxt) // new data went out during recovery
    const high = t.sndMax
    const before = t.counters.lostRetransmits
    const r3 = ack(45, at(2), [at(3), high])
    expect(t.counters.lostRetransmits).toBe(before + 1)
    expect(r3.filter((r) => r.payloadLen > 0 && r.seq === at(2)).length).toBe(1)
    expect(t.counters.rtoExpiries).toBe(0)
  })
})

describe("holdAck never leaves an ACK pending forever", () => {
  it("an ACK held during a receive burst goes out at the next poll even if the shell never cleared holdAck", () => {
    const cfg = Tcp.makeConfig({ timestamps: false, sack: false })
    const { t, rec } = established(cfg)
    t.holdAck = true
    // two full segments: an immediate ACK is due, but the burst holds it
    const a = feed(t, rec, 20, peer({ seq: s(RISS + 1), ack: s(ISS + 1) }), 1460)
    const b = feed(t, rec, 20, peer({ seq: s(RISS + 1 + 1460), ack: s(ISS + 1) }), 1460)
    expect(a.length + b.length).toBe(0)
    expect(t.ackNow).toBe(true)
    expect(Tcp.pollAt(t)).toBeLessThanOrEqual(20)
    // the burst end was skipped (e.g. a handler threw): any later poll still sends the ACK
    Tcp.poll(t, 21, rec)
    const out = rec.take()
    expect(out.length).toBe(1)
    expect(out[0]!.ack).toBe(s(RISS + 1 + 2 * 1460))
    expect(t.ackNow).toBe(false)
    expect(t.holdAck).toBe(false)
    expect(Tcp.pollAt(t)).toBeUndefined()
  })
})
