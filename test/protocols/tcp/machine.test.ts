/**
 * Machine tests, sectioned per RFC 9293 state (smoltcp tcp.rs style). Pure: nowMs is passed in.
 * Fixtures put a Tcb into a state; assertions are on TcpRepr values.
 */
import { describe, expect, it } from "vitest"
import * as Tcp from "../../../src/protocols/tcp/machine.js"
import { seqAdd } from "../../../src/protocols/tcp/seq.js"
import { TimerKind } from "../../../src/protocols/tcp/timer.js"
import * as W from "../../../src/protocols/tcp/wire.js"
import { ISS, L, P, RISS, Rec, peer, s, bytes, input, poll } from "./peer.js"

const base = Tcp.makeConfig({ timestamps: false, sack: false, windowScale: false, congestion: "newreno", tailLossProbe: false, sendBufBytes: 64 * 1024, recvBufBytes: 64 * 1024 })
const cfgWith = (p: Partial<Tcp.Config>) => Tcp.makeConfig({ ...base, ...p })


/** SYN from the peer, with options per cfg. */
const peerSyn = (cfg: Tcp.Config, extra: Partial<W.TcpRepr> = {}) =>
  peer({
    seq: s(RISS), flags: W.SYN, mss: 1460, wscale: cfg.windowScale ? 7 : -1, sackPermitted: cfg.sack,
    hasTs: cfg.timestamps, tsVal: cfg.timestamps ? 100 : 0, ...extra
  })

const synReceived = (cfg = base) => {
  const rec = new Rec()
  const t = Tcp.acceptSyn(cfg, peerSyn(cfg), L, P, ISS, 0, rec)
  return { t, rec, synAck: rec.take() }
}

/** ESTABLISHED at t=10 (RTT sample 10 ms -> rto 200). */
const established = (cfg = base) => {
  const { t, rec } = synReceived(cfg)
  input(t, rec, 10, peer({ seq: s(RISS + 1), ack: s(ISS + 1), hasTs: cfg.timestamps, tsVal: 101, tsEcr: t.tsOk ? (t.tsOffset + 0) >>> 0 : 0 }))
  Tcp.takeEvents(t)
  return { t, rec }
}

/** ack from the peer for our data. */
const ackOf = (n: number, extra: Partial<W.TcpRepr> = {}) => peer({ seq: s(RISS + 1), ack: s(n), ...extra })

// =============================================================================================
describe("rstFor (CLOSED port)", () => {
  it("SYN -> RST|ACK acking SYN", () => {
    const r = Tcp.rstFor(peer({ seq: s(7), flags: W.SYN }))!
    expect(r).toMatchObject({ srcPort: 80, dstPort: 49500, seq: 0, ack: 8, flags: W.RST | W.ACK })
  })
  it("ACK -> RST with seq = SEG.ACK", () => {
    expect(Tcp.rstFor(peer({ seq: s(7), ack: s(99), payloadLen: 10 }))).toMatchObject({ seq: 99, flags: W.RST })
  })
  it("data + FIN without ACK -> ack covers data and FIN", () => {
    expect(Tcp.rstFor(peer({ seq: s(7), flags: W.FIN, payloadLen: 10 }))).toMatchObject({ ack: 18, flags: W.RST | W.ACK })
  })
  it("RST -> nothing", () => {
    expect(Tcp.rstFor(peer({ flags: W.RST }))).toBeUndefined()
  })
})

// =============================================================================================
describe("SYN-SENT", () => {
  const open = (cfg = base) => {
    const rec = new Rec()
    const t = Tcp.connect(cfg, L, P, ISS, 0, rec)
    return { t, rec, syn: rec.take() }
  }
  it("connect emits a SYN with all options offered", () => {
    const { t, syn } = open(Tcp.makeConfig({ recvBufBytes: 1 << 20 }))
    expect(syn).toHaveLength(1)
    expect(syn[0]).toMatchObject({ seq: ISS, flags: W.SYN, mss: 1460, sackPermitted: true, hasTs: true, tsEcr: 0, wscale: 5, window: 65535 })
    expect(t.state).toBe("SynSent")
    expect(Tcp.pollAt(t)).toBe(1000)
  })
  it("SYN is retransmitted with doubling RTO, then TimedOut after synRetries", () => {
    const { t, rec } = open(cfgWith({ synRetries: 3 }))
    expect(poll(t, rec, 999)).toHaveLength(0)
    const times: number[] = []
    let now = 0
    for (let i = 0; i < 10 && t.state !== "Closed"; i++) {
      now = Tcp.pollAt(t)!
      const out = poll(t, rec, now)
      if (out.length > 0) {
        expect(out[0]).toMatchObject({ seq: ISS, flags: W.SYN })
        times.push(now)
      }
    }
    expect(times).toEqual([1000, 3000, 7000])
    expect(now).toBe(15000)
    expect(t.state).toBe("Closed")
    expect(t.error).toBe("TimedOut")
    expect(Tcp.takeEvents(t) & (Tcp.EV_TIMED_OUT | Tcp.EV_CLOSED)).toBe(Tcp.EV_TIMED_OUT | Tcp.EV_CLOSED)
  })
  it("SYN-ACK -> ESTABLISHED, ACK sent, options negotiated", () => {
    const cfg = Tcp.makeConfig()
    const { t, rec } = open(cfg)
    const out = input(t, rec, 20, peer({ seq: s(RISS), ack: s(ISS + 1), flags: W.SYN | W.ACK, mss: 1400, wscale: 7, sackPermitted: true, hasTs: true, tsVal: 55, tsEcr: t.tsOffset }))
    expect(t.state).toBe("Established")
    expect(out).toHaveLength(1)
    expect(out[0]).toMatchObject({ seq: ISS + 1, ack: RISS + 1, flags: W.ACK, hasTs: true, tsEcr: 55 })
    expect(t.sndMss).toBe(1400 - 12)
    expect(t.sndWscale).toBe(7)
    expect(t.sackOk).toBe(true)
    expect(Tcp.takeEvents(t) & Tcp.EV_CONNECTED).toBe(Tcp.EV_CONNECTED)
    expect(t.rtt.srttMs).toBe(20)
  })
  it("peer without options: MSS 536 default, no scaling/SACK/timestamps", () => {
    const { t, rec } = open(Tcp.makeConfig())
    input(t, rec, 20, peer({ seq: s(RISS), ack: s(ISS + 1), flags: W.SYN | W.ACK }))
    expect(t.sndMss).toBe(536)
    expect(t.wsOk || t.sackOk || t.tsOk).toBe(false)
  })
  it("RST with acceptable ACK -> Refused; RST without ACK ignored", () => {
    const { t, rec } = open()
    input(t, rec, 5, peer({ seq: s(0), flags: W.RST }))
    expect(t.state).toBe("SynSent")
    input(t, rec, 5, peer({ seq: s(0), ack: s(ISS + 1), flags: W.RST | W.ACK }))
    expect(t.state).toBe("Closed")
    expect(t.error).toBe("Refused")
  })
  it("unacceptable ACK -> RST with seq = SEG.ACK", () => {
    const { t, rec } = open()
    const out = input(t, rec, 5, peer({ seq: s(RISS), ack: s(ISS + 100), flags: W.SYN | W.ACK }))
    expect(out).toEqual([expect.objectContaining({ seq: ISS + 100, flags: W.RST })])
    expect(t.state).toBe("SynSent")
  })
  it("simultaneous open: SYNs cross, both reach ESTABLISHED", () => {
    const ra = new Rec()
    const rb = new Rec()
    const a = Tcp.connect(base, L, P, ISS, 0, ra)
    const b = Tcp.connect(base, P, L, RISS, 0, rb)
    const synA = ra.take()[0]!
    const synB = rb.take()[0]!
    const sa = input(a, ra, 1, synB)
    const sb = input(b, rb, 1, synA)
    expect(a.state).toBe("SynReceived")
    expect(sa[0]).toMatchObject({ seq: ISS, ack: RISS + 1, flags: W.SYN | W.ACK })
    expect(sb[0]).toMatchObject({ seq: RISS, ack: ISS + 1, flags: W.SYN | W.ACK })
    const ackA = input(a, ra, 2, sb[0]!)
    const ackB = input(b, rb, 2, sa[0]!)
    expect(ackA[0]).toMatchObject({ seq: ISS + 1, ack: RISS + 1, flags: W.ACK })
    input(a, ra, 3, ackB[0]!)
    input(b, rb, 3, ackA[0]!)
    expect(a.state).toBe("Established")
    expect(b.state).toBe("Established")
  })
})

// =============================================================================================
describe("SYN-RECEIVED (passive open from LISTEN)", () => {
  it("acceptSyn emits SYN-ACK with only the options the peer offered", () => {
    const rec = new Rec()
    const cfg = Tcp.makeConfig()
    const t = Tcp.acceptSyn(cfg, peerSyn(base), L, P, ISS, 0, rec) // peer offers MSS only
    expect(rec.take()).toEqual([
      expect.objectContaining({ seq: ISS, ack: RISS + 1, flags: W.SYN | W.ACK, mss: 1460, wscale: -1, sackPermitted: false, hasTs: false })
    ])
    expect(t.state).toBe("SynReceived")
    const { synAck } = synReceived(cfg)
    expect(synAck[0]).toMatchObject({ wscale: 3, sackPermitted: true, hasTs: true, tsEcr: 100 })
  })
  it("SYN-ACK retransmitted on RTO; retransmitted SYN from the peer also re-sends it", () => {
    const { t, rec } = synReceived()
    expect(poll(t, rec, 1000)).toEqual([expect.objectContaining({ seq: ISS, flags: W.SYN | W.ACK })])
    expect(Tcp.pollAt(t)).toBe(3000)
    expect(input(t, rec, 1100, peerSyn(base))).toEqual([expect.objectContaining({ seq: ISS, flags: W.SYN | W.ACK })])
  })
  it("ACK -> ESTABLISHED with data on the ACK accepted", () => {
    const { t, rec } = synReceived()
    const out = input(t, rec, 10, peer({ seq: s(RISS + 1), ack: s(ISS + 1) }), bytes(100))
    expect(t.state).toBe("Established")
    expect(Tcp.recvAvailable(t)).toBe(100)
    expect(out).toHaveLength(0) // delayed ACK
    expect(Tcp.pollAt(t)).toBe(50)
  })
  it("bad ACK -> RST seq = SEG.ACK", () => {
    const { t, rec } = synReceived()
    expect(input(t, rec, 10, peer({ seq: s(RISS + 1), ack: s(ISS + 50) }))).toEqual([expect.objectContaining({ seq: ISS + 50, flags: W.RST })])
    expect(t.state).toBe("SynReceived")
  })
  it("RST (exact) -> Closed", () => {
    const { t, rec } = synReceived()
    input(t, rec, 10, peer({ seq: s(RISS + 1), flags: W.RST }))
    expect(t.state).toBe("Closed")
    expect(t.error).toBe("Reset")
  })
  it("allocates no ring; resizeRings before the handshake ACK sets the sizes, never the receive ring below the SYN-ACK's window", () => {
    const cfg = Tcp.makeConfig() // 256 KiB rings: window scale 3 offered
    const { t, rec, synAck } = synReceived(cfg)
    expect(synAck[0]).toMatchObject({ window: 65535, wscale: 3 })
    poll(t, rec, 1000) // a SYN-ACK retransmission
    expect([t.sendbuf.allocated, t.recvbuf.allocated]).toEqual([false, false])
    expect(Tcp.resizeRings(t, 32 * 1024, 32 * 1024)).toBe(true)
    expect([t.sendbuf.capacity, t.recvbuf.capacity]).toEqual([32 * 1024, 65535]) // the receive ring keeps the offered window
    expect([t.cfg.sendBufBytes, t.cfg.recvBufBytes]).toEqual([32 * 1024, 65535])
    expect(cfg.recvBufBytes).toBe(256 * 1024) // the shared cfg is not touched
    expect(t.ourWscale).toBe(3)
    // the peer sends all it was offered, on the ACK that completes the handshake: every byte fits
    const out = input(t, rec, 1010, peer({ seq: s(RISS + 1), ack: s(ISS + 1), hasTs: true, tsVal: 101, tsEcr: 0 }), bytes(65535))
    expect(t.state).toBe("Established")
    expect(Tcp.recvAvailable(t)).toBe(65535)
    expect(out).toEqual([expect.objectContaining({ ack: RISS + 1 + 65535, window: 0 })])
    expect(Tcp.send(t, bytes(40_000))).toBe(32 * 1024)
    // rings in use: nothing changes any more
    expect(Tcp.resizeRings(t, 1 << 20, 1 << 20)).toBe(false)
    expect([t.sendbuf.capacity, t.recvbuf.capacity]).toEqual([32 * 1024, 65535])
    const dst = new Uint8Array(65535)
    expect(Tcp.recv(t, dst)).toBe(65535)
    expect(dst).toEqual(bytes(65535))
  })
  it("gives up after synAckRetries SYN-ACKs", () => {
    const { t, rec } = synReceived(cfgWith({ synAckRetries: 2 }))
    poll(t, rec, 1000)
    poll(t, rec, 3000)
    poll(t, rec, 7000)
    expect(t.state).toBe("Closed")
    expect(t.error).toBe("TimedOut")
  })
})

// =============================================================================================
describe("ESTABLISHED: receiving", () => {
  it("delayed ACK after ackDelayMs; every second full segment ACKed at once", () => {
    const { t, rec } = established()
    expect(input(t, rec, 100, peer({ seq: s(RISS + 1), ack: s(ISS + 1) }), bytes(1460))).toHaveLength(0)
    expect(Tcp.pollAt(t)).toBe(140)
    const out = input(t, rec, 101, peer({ seq: s(RISS + 1 + 1460), ack: s(ISS + 1) }), bytes(1460))
    expect(out).toEqual([expect.objectContaining({ ack: RISS + 1 + 2920, flags: W.ACK })])
    input(t, rec, 200, peer({ seq: s(RISS + 1 + 2920), ack: s(ISS + 1) }), bytes(10))
    expect(poll(t, rec, 239)).toHaveLength(0)
    expect(poll(t, rec, 240)).toEqual([expect.objectContaining({ ack: RISS + 1 + 2930 })])
  })
  it("GSO super-segment (payload > MSS) accepted as one, ACKed at once", () => {
    const { t, rec } = established()
    const out = input(t, rec, 100, peer({ seq: s(RISS + 1), ack: s(ISS + 1) }), bytes(60000))
    expect(out).toEqual([expect.objectContaining({ ack: RISS + 1 + 60000 })])
    const dst = new Uint8Array(60000)
    expect(Tcp.recv(t, dst)).toBe(60000)
    expect(dst).toEqual(bytes(60000))
  })
  it("out-of-order data is kept, dup-ACKed at once with a SACK block, merged when the gap fills", () => {
    const { t, rec } = established(cfgWith({ sack: true }))
    const data = bytes(3000, 5)
    let out = input(t, rec, 100, peer({ seq: s(RISS + 1 + 2000), ack: s(ISS + 1) }), data.subarray(2000, 3000))
    expect(out).toEqual([expect.objectContaining({ ack: RISS + 1, sack: [RISS + 1 + 2000, RISS + 1 + 3000] })])
    out = input(t, rec, 101, peer({ seq: s(RISS + 1 + 1000), ack: s(ISS + 1) }), data.subarray(1000, 1500))
    expect(out[0]!.sack).toEqual([RISS + 1 + 1000, RISS + 1 + 1500, RISS + 1 + 2000, RISS + 1 + 3000])
    expect(t.counters.oooSegs).toBe(2)
    out = input(t, rec, 102, peer({ seq: s(RISS + 1), ack: s(ISS + 1) }), data.subarray(0, 1000))
    expect(out).toEqual([expect.objectContaining({ ack: RISS + 1 + 1500 })]) // gap partly filled: immediate ACK
    expect(out[0]!.sack).toEqual([RISS + 1 + 2000, RISS + 1 + 3000])
    out = input(t, rec, 103, peer({ seq: s(RISS + 1 + 1400), ack: s(ISS + 1) }), data.subarray(1400, 2100)) // overlaps both sides
    expect(out).toEqual([expect.objectContaining({ ack: RISS + 1 + 3000, sack: W.NO_SACK })])
    const dst = new Uint8Array(4000)
    expect(Tcp.recv(t, dst)).toBe(3000)
    expect(dst.subarray(0, 3000)).toEqual(data)
  })
  it("data beyond the window is trimmed; a full buffer advertises 0 and a read sends a window update", () => {
    const { t, rec } = established(cfgWith({ recvBufBytes: 4096 }))
    const out = input(t, rec, 100, peer({ seq: s(RISS + 1), ack: s(ISS + 1) }), bytes(5000))
    expect(out).toEqual([expect.objectContaining({ ack: RISS + 1 + 4096, window: 0 })])
    expect(Tcp.pollAt(t)).toBeUndefined()
    expect(Tcp.recv(t, new Uint8Array(4096))).toBe(4096)
    expect(Tcp.pollAt(t)).toBe(100)
    expect(poll(t, rec, 120)).toEqual([expect.objectContaining({ ack: RISS + 1 + 4096, window: 4096 })])
  })
  it("zero-window probe from the peer is answered with an ACK", () => {
    const { t, rec } = established(cfgWith({ recvBufBytes: 2048 }))
    input(t, rec, 100, peer({ seq: s(RISS + 1), ack: s(ISS + 1) }), bytes(2048))
    expect(input(t, rec, 300, peer({ seq: s(RISS + 1 + 2048), ack: s(ISS + 1) }), bytes(1))).toEqual([
      expect.objectContaining({ ack: RISS + 1 + 2048, window: 0 })
    ])
  })
  it("sink mode: in-order payload is delivered without buffering, window stays open", () => {
    const { t, rec } = established(cfgWith({ recvMode: "sink", recvBufBytes: 8192 }))
    const data = bytes(3000)
    input(t, rec, 100, peer({ seq: s(RISS + 1 + 1500), ack: s(ISS + 1) }), data.subarray(1500))
    expect(rec.delivered).toHaveLength(0)
    const out = input(t, rec, 101, peer({ seq: s(RISS + 1), ack: s(ISS + 1) }), data.subarray(0, 1500))
    expect(rec.delivered).toEqual([...data])
    expect(out[0]).toMatchObject({ ack: RISS + 1 + 3000, window: 8192 })
    expect(Tcp.recvAvailable(t)).toBe(0)
  })
  it("window scaling: peer window scaled; our window advertised scaled", () => {
    const cfg = cfgWith({ windowScale: true, recvBufBytes: 1 << 20 })
    const { t, rec } = established(cfg)
    expect(t.sndWscale).toBe(7)
    expect(t.rcvWscale).toBe(5)
    input(t, rec, 20, ackOf(ISS + 1, { window: 1000 }))
    expect(t.sndWnd).toBe(128_000)
    const out = input(t, rec, 30, peer({ seq: s(RISS + 1), ack: s(ISS + 1) }), bytes(3000))
    expect(out[0]!.window).toBe(((1 << 20) - 3000) >>> 5)
  })
})

// =============================================================================================
describe("ESTABLISHED: timestamps and PAWS (RFC 7323)", () => {
  it("segments carry TSval/TSecr; an old TSval is rejected (PAWS) with an ACK", () => {
    const cfg = cfgWith({ timestamps: true })
    const { t, rec } = established(cfg)
    expect(t.tsOk).toBe(true)
    let out = input(t, rec, 100, peer({ seq: s(RISS + 1), ack: s(ISS + 1), hasTs: true, tsVal: 500, tsEcr: 0 }), bytes(3000))
    expect(out[0]).toMatchObject({ hasTs: true, tsEcr: 500 })
    expect(t.tsRecent).toBe(500)
    out = input(t, rec, 110, peer({ seq: s(RISS + 1 + 3000), ack: s(ISS + 1), hasTs: true, tsVal: 499 }), bytes(100))
    expect(Tcp.recvAvailable(t)).toBe(3000)
    expect(t.counters.pawsDrops).toBe(1)
    expect(out).toEqual([expect.objectContaining({ ack: RISS + 1 + 3000, tsEcr: 500 })])
  })
  it("RTT sampled from TSecr on ACKs of new data; MSS reduced by 12", () => {
    const cfg = cfgWith({ timestamps: true })
    const { t, rec } = established(cfg)
    expect(t.sndMss).toBe(1448)
    Tcp.send(t, bytes(1000))
    const out = poll(t, rec, 1000)
    input(t, rec, 1080, ackOf(ISS + 1001, { hasTs: true, tsVal: 600, tsEcr: out[0]!.tsVal }))
    expect(t.rtt.srttMs).toBeGreaterThan(10)
    expect(t.rtt.rttvarMs).toBeGreaterThan(0)
  })
})

// =============================================================================================
describe("ESTABLISHED: sending, Nagle, RTO (RFC 6298), Karn", () => {
  it("send -> segment whose payload is copied from the ring; ACK frees space", () => {
    const { t, rec } = established()
    const data = bytes(3000, 9)
    rec.payloads = []
    expect(Tcp.send(t, data)).toBe(3000)
    expect(Tcp.pollAt(t)).toBe(10)
    poll(t, rec, 20)
    expect(rec.segs).toHaveLength(0)
    expect(rec.payloads.map((p) => p.length)).toEqual([1460, 1460]) // Nagle holds the 80-byte tail
    expect(input(t, rec, 25, ackOf(ISS + 2921))).toEqual([expect.objectContaining({ seq: ISS + 2921, payloadLen: 80 })])
    expect(Buffer.concat(rec.payloads)).toEqual(Buffer.from(data))
    input(t, rec, 30, ackOf(ISS + 3001))
    expect(t.sendbuf.len).toBe(0)
    expect(Tcp.takeEvents(t) & Tcp.EV_WRITABLE).toBe(Tcp.EV_WRITABLE)
    expect(Tcp.pollAt(t)).toBeUndefined() // all acked: RTO stopped
  })
  it("send buffer is bounded: send returns the count accepted", () => {
    const { t } = established(cfgWith({ sendBufBytes: 1000 }))
    expect(Tcp.send(t, bytes(1500))).toBe(1000)
    expect(Tcp.send(t, bytes(10))).toBe(0)
  })
  it("Nagle holds a small segment while data is unacked; nodelay sends it", () => {
    const { t, rec } = established()
    Tcp.send(t, bytes(100))
    expect(poll(t, rec, 20)).toHaveLength(1)
    Tcp.send(t, bytes(100))
    expect(poll(t, rec, 21)).toHaveLength(0)
    expect(input(t, rec, 40, ackOf(ISS + 101))).toEqual([expect.objectContaining({ seq: ISS + 101, payloadLen: 100 })])
    t.nagle = false
    Tcp.send(t, bytes(100))
    expect(poll(t, rec, 41)).toEqual([expect.objectContaining({ seq: ISS + 201, payloadLen: 100 })])
  })
  it("RTO doubles on each expiry and stays backed off after an ACK of retransmitted data (Karn)", () => {
    const { t, rec } = established()
    expect(t.rtt.rtoMs).toBe(200)
    Tcp.send(t, bytes(500))
    poll(t, rec, 100)
    const at: number[] = []
    for (let i = 0; i < 3; i++) {
      const d = Tcp.pollAt(t)!
      const out = poll(t, rec, d)
      expect(out).toEqual([expect.objectContaining({ seq: ISS + 1, payloadLen: 500 })])
      at.push(d)
    }
    expect(at).toEqual([300, 700, 1500])
    expect(t.rtt.rtoMs).toBe(1600)
    expect(t.counters.rtoExpiries).toBe(3)
    // ACK of the retransmitted segment: no RTT sample (Karn), RTO stays backed off
    input(t, rec, 1510, ackOf(ISS + 501))
    expect(t.rtt.rtoMs).toBe(1600)
    // a fresh segment is timed, and its ACK gives a valid sample that recomputes the RTO
    Tcp.send(t, bytes(100))
    poll(t, rec, 1600)
    expect(Tcp.pollAt(t)).toBe(1600 + 1600)
    input(t, rec, 1620, ackOf(ISS + 601))
    expect(t.rtt.rtoMs).toBe(200)
  })
  it("RTO restarts when an ACK covers new data, stops only when all is acked", () => {
    const { t, rec } = established()
    Tcp.send(t, bytes(2920))
    poll(t, rec, 100)
    expect(Tcp.pollAt(t)).toBe(300)
    input(t, rec, 150, ackOf(ISS + 1461))
    expect(Tcp.pollAt(t)).toBe(150 + t.rtt.rtoMs)
    input(t, rec, 160, ackOf(ISS + 1461, { window: 65535 })) // duplicate: no restart
    expect(Tcp.pollAt(t)).toBe(150 + t.rtt.rtoMs)
    input(t, rec, 170, ackOf(ISS + 2921))
    expect(t.timerKind).toBe(TimerKind.Idle)
    expect(Tcp.pollAt(t)).toBeUndefined()
  })
  it("tail loss probe (RFC 8985 §7): at 2*SRTT the last segment is resent, no backoff; then the RTO", () => {
    const { t, rec } = established(cfgWith({ tailLossProbe: true }))
    Tcp.send(t, bytes(3 * 1460))
    expect(poll(t, rec, 100)).toHaveLength(3)
    expect(Tcp.pollAt(t)).toBe(120) // PTO = 2 * 10 ms
    expect(poll(t, rec, 120)).toEqual([expect.objectContaining({ seq: ISS + 1 + 2920, payloadLen: 1460 })])
    expect(t.counters.tailLossProbes).toBe(1)
    expect(t.rtt.rtoMs).toBe(200)
    expect(t.cc.cwnd).toBe(10 * 1460)
    expect(Tcp.pollAt(t)).toBe(320)
    expect(poll(t, rec, 320)).toEqual([expect.objectContaining({ seq: ISS + 1, payloadLen: 1460 })])
    expect(t.counters.rtoExpiries).toBe(1)
  })
  it("tail loss probe sends new data when there is some, and adds the ACK delay for a single segment", () => {
    const { t, rec } = established(cfgWith({ tailLossProbe: true }))
    t.cc.cwnd = 1460
    Tcp.send(t, bytes(2000))
    expect(poll(t, rec, 100)).toHaveLength(1)
    expect(Tcp.pollAt(t)).toBe(160) // 2 * 10 + 40
    expect(poll(t, rec, 160)).toEqual([expect.objectContaining({ seq: ISS + 1 + 1460, payloadLen: 540 })])
  })
  it("gives up after maxRetries with TimedOut", () => {
    const { t, rec } = established(cfgWith({ maxRetries: 2 }))
    Tcp.send(t, bytes(10))
    poll(t, rec, 100)
    for (let i = 0; i < 5 && t.state !== "Closed"; i++) poll(t, rec, Tcp.pollAt(t)!)
    expect(t.state).toBe("Closed")
    expect(t.error).toBe("TimedOut")
    expect(t.counters.rtoExpiries).toBe(2)
  })
  it("TSO: one segment up to cwnd, a multiple of the MSS", () => {
    const { t, rec } = established(cfgWith({ tso: true, maxSegmentBytes: 64000 }))
    Tcp.send(t, bytes(60000))
    const out = poll(t, rec, 20)
    expect(out).toHaveLength(1)
    expect(out[0]!.payloadLen).toBe(10 * 1460) // initial window 10 segments
  })
})

// =============================================================================================
describe("ESTABLISHED: loss recovery", () => {
  const sendSegs = (t: Tcp.Tcb, rec: Rec, n: number, now: number) => {
    t.cc.cwnd = 100 * t.sndMss
    Tcp.send(t, bytes(n * 1460))
    return poll(t, rec, now)
  }
  it("fast retransmit on the third duplicate ACK (NewReno), recovery ends on the full ACK", () => {
    const { t, rec } = established()
    expect(sendSegs(t, rec, 10, 100)).toHaveLength(10)
    expect(input(t, rec, 120, ackOf(ISS + 1 + 1460))).toHaveLength(0)
    input(t, rec, 121, ackOf(ISS + 1 + 1460))
    input(t, rec, 122, ackOf(ISS + 1 + 1460))
    const out = input(t, rec, 123, ackOf(ISS + 1 + 1460))
    expect(out).toEqual([expect.objectContaining({ seq: ISS + 1 + 1460, payloadLen: 1460 })])
    expect(t.rec.active).toBe(true)
    expect(t.counters.fastRetransmits).toBe(1)
    expect(t.counters.dupAcksIn).toBe(3)
    // partial ACK: retransmit the next hole at once (RFC 6582)
    expect(input(t, rec, 140, ackOf(ISS + 1 + 3 * 1460))).toEqual([expect.objectContaining({ seq: ISS + 1 + 3 * 1460, payloadLen: 1460 })])
    input(t, rec, 160, ackOf(ISS + 1 + 10 * 1460))
    expect(t.rec.active).toBe(false)
    expect(t.cc.cwnd).toBe(t.cc.ssthresh)
  })
  it("SACK recovery (RFC 6675) retransmits only the holes", () => {
    const { t, rec } = established(cfgWith({ sack: true }))
    const base0 = ISS + 1
    const seq = (i: number) => s(base0 + i * 1460)
    sendSegs(t, rec, 10, 100)
    // segments 0 and 4 lost
    const sackAck = (hi: number) => ackOf(base0, { sack: hi <= 4 ? [seq(1), seq(hi)] : [seq(5), seq(hi), seq(1), seq(4)] })
    const outs: W.TcpRepr[] = []
    for (const hi of [2, 3, 4, 6, 7, 8, 9, 10]) outs.push(...input(t, rec, 120 + hi, sackAck(hi)))
    expect(outs.map((r) => (r.seq - base0) / 1460)).toEqual([0, 4])
    expect(outs.every((r) => r.payloadLen === 1460)).toBe(true)
    expect(t.rec.active).toBe(true)
    // the hole repair is acked: recovery ends, nothing else retransmitted
    expect(input(t, rec, 200, ackOf(seq(10)))).toHaveLength(0)
    expect(t.rec.active).toBe(false)
    expect(t.counters.retransSegs).toBe(2)
  })
  it("RTO: cwnd to one segment, go back to SND.UNA, skip SACKed data", () => {
    const { t, rec } = established(cfgWith({ sack: true }))
    const base0 = ISS + 1
    sendSegs(t, rec, 4, 100)
    input(t, rec, 120, ackOf(base0, { sack: [s(base0 + 1460), s(base0 + 2920)] }))
    const out = poll(t, rec, Tcp.pollAt(t)!)
    expect(out).toEqual([expect.objectContaining({ seq: base0, payloadLen: 1460 })])
    expect(t.cc.cwnd).toBe(t.sndMss)
    const out2 = input(t, rec, 400, ackOf(base0 + 1460, { sack: [s(base0 + 1460), s(base0 + 2920)] }))
    expect(out2.map((r) => r.seq - base0)).toEqual([2920, 4380]) // segment 1 was SACKed: skipped; cwnd grew to 2
  })
})

// =============================================================================================
describe("ESTABLISHED: zero window and persist", () => {
  it("zero window -> probes (seq = SND.UNA - 1) with their own backoff; data flows when the window opens", () => {
    const { t, rec } = established()
    input(t, rec, 20, ackOf(ISS + 1, { window: 0 }))
    Tcp.send(t, bytes(1000))
    expect(poll(t, rec, 30)).toHaveLength(0)
    expect(t.timerKind).toBe(TimerKind.Persist)
    const at: number[] = []
    for (let i = 0; i < 4; i++) {
      const d = Tcp.pollAt(t)!
      const out = poll(t, rec, d)
      expect(out).toEqual([expect.objectContaining({ seq: ISS, payloadLen: 0, flags: W.ACK })])
      at.push(d)
      input(t, rec, d + 5, ackOf(ISS + 1, { window: 0 }))
    }
    expect(at).toEqual([230, 630, 1430, 3030])
    expect(t.rtt.rtoMs).toBe(200) // the RTO itself is not backed off by probes
    const out = input(t, rec, 3100, ackOf(ISS + 1, { window: 5000 }))
    expect(out).toEqual([expect.objectContaining({ seq: ISS + 1, payloadLen: 1000 })])
    expect(t.timerKind).toBe(TimerKind.Retransmit)
  })
})

// =============================================================================================
describe("ESTABLISHED: RFC 5961", () => {
  it("RST exactly at RCV.NXT resets", () => {
    const { t, rec } = established()
    input(t, rec, 20, peer({ seq: s(RISS + 1), flags: W.RST }))
    expect(t.state).toBe("Closed")
    expect(t.error).toBe("Reset")
    expect(Tcp.takeEvents(t) & Tcp.EV_RESET).toBe(Tcp.EV_RESET)
  })
  it("RST in window but not exact -> challenge ACK, connection stays", () => {
    const { t, rec } = established()
    expect(input(t, rec, 20, peer({ seq: s(RISS + 100), flags: W.RST }))).toEqual([
      expect.objectContaining({ seq: ISS + 1, ack: RISS + 1, flags: W.ACK })
    ])
    expect(t.state).toBe("Established")
  })
  it("RST outside the window is dropped silently", () => {
    const { t, rec } = established()
    expect(input(t, rec, 20, peer({ seq: s(RISS + 1 + 100000), flags: W.RST }))).toHaveLength(0)
    expect(t.state).toBe("Established")
  })
  it("SYN in ESTABLISHED -> challenge ACK", () => {
    const { t, rec } = established()
    expect(input(t, rec, 20, peer({ seq: s(RISS + 1), flags: W.SYN }))).toEqual([expect.objectContaining({ ack: RISS + 1, flags: W.ACK })])
    expect(t.state).toBe("Established")
  })
  it("ACK of data never sent -> challenge ACK, data not accepted", () => {
    const { t, rec } = established()
    const out = input(t, rec, 20, peer({ seq: s(RISS + 1), ack: s(ISS + 5000) }), bytes(10))
    expect(out).toEqual([expect.objectContaining({ ack: RISS + 1 })])
    expect(Tcp.recvAvailable(t)).toBe(0)
  })
  it("challenge ACKs are rate limited per second", () => {
    const { t, rec } = established(cfgWith({ challengeAckLimit: 3 }))
    let n = 0
    for (let i = 0; i < 10; i++) n += input(t, rec, 20 + i, peer({ seq: s(RISS + 1), flags: W.SYN })).length
    expect(n).toBe(3)
    expect(input(t, rec, 1100, peer({ seq: s(RISS + 1), flags: W.SYN }))).toHaveLength(1)
  })
})

// =============================================================================================
describe("ESTABLISHED: keep-alive", () => {
  it("probes after idle, then TimedOut after keepAliveCount unanswered probes", () => {
    const { t, rec } = established(cfgWith({ keepAliveIdleMs: 1000, keepAliveIntervalMs: 100, keepAliveCount: 3 }))
    input(t, rec, 20, ackOf(ISS + 1))
    expect(Tcp.pollAt(t)).toBe(1020)
    const at: number[] = []
    while (t.state !== "Closed") {
      const d = Tcp.pollAt(t)!
      const out = poll(t, rec, d)
      if (out.length) {
        expect(out[0]).toMatchObject({ seq: ISS, payloadLen: 0 })
        at.push(d)
      }
    }
    expect(at).toEqual([1020, 1120, 1220])
    expect(t.error).toBe("TimedOut")
  })
  it("an answer resets the keep-alive", () => {
    const { t, rec } = established(cfgWith({ keepAliveIdleMs: 1000, keepAliveIntervalMs: 100, keepAliveCount: 3 }))
    input(t, rec, 20, ackOf(ISS + 1))
    poll(t, rec, 1020)
    input(t, rec, 1030, ackOf(ISS + 1))
    expect(Tcp.pollAt(t)).toBe(2030)
    expect(t.kaProbes).toBe(0)
  })
})

// =============================================================================================
describe("closing: FIN-WAIT-1/2, CLOSING, TIME-WAIT, CLOSE-WAIT, LAST-ACK", () => {
  it("active close: FIN after queued data, half-close still receives, TIME-WAIT 2MSL", () => {
    const { t, rec } = established(cfgWith({ mslMs: 1000 }))
    Tcp.send(t, bytes(100))
    Tcp.close(t)
    expect(t.state).toBe("FinWait1")
    expect(Tcp.send(t, bytes(1))).toBe(0)
    expect(poll(t, rec, 20)).toEqual([expect.objectContaining({ seq: ISS + 1, payloadLen: 100, flags: W.ACK | W.PSH | W.FIN })])
    input(t, rec, 30, ackOf(ISS + 102))
    expect(t.state).toBe("FinWait2")
    input(t, rec, 40, peer({ seq: s(RISS + 1), ack: s(ISS + 102) }), bytes(50))
    expect(Tcp.recvAvailable(t)).toBe(50)
    const out = input(t, rec, 50, peer({ seq: s(RISS + 51), ack: s(ISS + 102), flags: W.ACK | W.FIN }))
    expect(out).toEqual([expect.objectContaining({ seq: ISS + 102, ack: RISS + 52 })])
    expect(t.state).toBe("TimeWait")
    expect(Tcp.takeEvents(t) & Tcp.EV_PEER_FIN).toBe(Tcp.EV_PEER_FIN)
    // retransmitted FIN: ACK again, 2MSL restarts
    expect(input(t, rec, 500, peer({ seq: s(RISS + 51), ack: s(ISS + 102), flags: W.ACK | W.FIN }))).toHaveLength(1)
    expect(Tcp.pollAt(t)).toBe(2500)
    poll(t, rec, 2499)
    expect(t.state).toBe("TimeWait")
    poll(t, rec, 2500)
    expect(t.state).toBe("Closed")
    expect(t.error).toBeUndefined()
  })
  it("FIN is retransmitted on RTO", () => {
    const { t, rec } = established()
    Tcp.close(t)
    expect(poll(t, rec, 20)).toEqual([expect.objectContaining({ seq: ISS + 1, flags: W.ACK | W.FIN })])
    expect(poll(t, rec, 220)).toEqual([expect.objectContaining({ seq: ISS + 1, flags: W.ACK | W.FIN })])
  })
  it("simultaneous close: FINs cross -> CLOSING -> TIME-WAIT", () => {
    const { t, rec } = established()
    Tcp.close(t)
    poll(t, rec, 20)
    const out = input(t, rec, 25, peer({ seq: s(RISS + 1), ack: s(ISS + 1), flags: W.ACK | W.FIN }))
    expect(t.state).toBe("Closing")
    expect(out).toEqual([expect.objectContaining({ seq: ISS + 2, ack: RISS + 2 })])
    input(t, rec, 30, peer({ seq: s(RISS + 2), ack: s(ISS + 2) }))
    expect(t.state).toBe("TimeWait")
  })
  it("FIN+ACK of our FIN in FIN-WAIT-1 goes straight to TIME-WAIT", () => {
    const { t, rec } = established()
    Tcp.close(t)
    poll(t, rec, 20)
    input(t, rec, 25, peer({ seq: s(RISS + 1), ack: s(ISS + 2), flags: W.ACK | W.FIN }))
    expect(t.state).toBe("TimeWait")
  })
  it("passive close: peer FIN -> CLOSE-WAIT (we can still send), close -> LAST-ACK -> Closed", () => {
    const { t, rec } = established()
    const out = input(t, rec, 20, peer({ seq: s(RISS + 1), ack: s(ISS + 1), flags: W.ACK | W.FIN }))
    expect(out).toEqual([expect.objectContaining({ ack: RISS + 2 })])
    expect(t.state).toBe("CloseWait")
    expect(Tcp.canRecv(t)).toBe(false)
    Tcp.send(t, bytes(10))
    Tcp.close(t)
    expect(t.state).toBe("LastAck")
    expect(poll(t, rec, 30)).toEqual([expect.objectContaining({ seq: ISS + 1, payloadLen: 10, flags: W.ACK | W.PSH | W.FIN })])
    input(t, rec, 40, peer({ seq: s(RISS + 2), ack: s(ISS + 12) }))
    expect(t.state).toBe("Closed")
    expect(Tcp.takeEvents(t) & Tcp.EV_CLOSED).toBe(Tcp.EV_CLOSED)
  })
  it("an out-of-order FIN waits for the data before it", () => {
    const { t, rec } = established()
    input(t, rec, 20, peer({ seq: s(RISS + 101), ack: s(ISS + 1), flags: W.ACK | W.FIN }), bytes(10))
    expect(t.state).toBe("Established")
    const out = input(t, rec, 21, peer({ seq: s(RISS + 1), ack: s(ISS + 1) }), bytes(100))
    expect(t.state).toBe("CloseWait")
    expect(out[out.length - 1]).toMatchObject({ ack: RISS + 112 })
  })
  it("abort sends RST and closes", () => {
    const { t, rec } = established()
    Tcp.send(t, bytes(10))
    poll(t, rec, 20)
    Tcp.abort(t, 30, rec)
    expect(rec.take()).toEqual([expect.objectContaining({ seq: ISS + 11, flags: W.RST })])
    expect(t.state).toBe("Closed")
    expect(t.error).toBe("Aborted")
  })
  it("close in SYN-SENT closes without FIN", () => {
    const rec = new Rec()
    const t = Tcp.connect(base, L, P, ISS, 0, rec)
    Tcp.close(t)
    expect(t.state).toBe("Closed")
  })
  it("TIME-WAIT helper accepts a new SYN with a higher sequence number", () => {
    const { t, rec } = established()
    Tcp.close(t)
    poll(t, rec, 20)
    input(t, rec, 25, peer({ seq: s(RISS + 1), ack: s(ISS + 2), flags: W.ACK | W.FIN }))
    expect(Tcp.timeWaitAcceptsSyn(t, peer({ seq: seqAdd(s(RISS), 100000), flags: W.SYN }))).toBe(true)
    expect(Tcp.timeWaitAcceptsSyn(t, peer({ seq: s(RISS), flags: W.SYN }))).toBe(false)
  })
})
