/**
 * The TCP machine against hostile peers (issue 9): TS.Recent poisoning, bounded SYN-ACK retries, the
 * FIN-WAIT-2 timeout, bounded zero-window probing after close, the scoreboard after an RTO, and the
 * SYN cookie codec with the machine's cookie open. Pure: nowMs is passed in.
 */
import { parseIpv6 } from "../../../src/protocols/ipv6/address.js"
import { describe, expect, it } from "vitest"
import * as Cookie from "../../../src/protocols/tcp/cookie.js"
import * as Tcp from "../../../src/protocols/tcp/machine.js"
import * as W from "../../../src/protocols/tcp/wire.js"
import { A, B, ISS, L, P, RISS, Rec, peer, s, bytes, input, poll } from "./peer.js"

const base = Tcp.makeConfig({ congestion: "newreno", tailLossProbe: false, sendBufBytes: 64 * 1024, recvBufBytes: 64 * 1024 })
const cfgWith = (p: Partial<Tcp.Config>) => Tcp.makeConfig({ ...base, ...p })


/** Established at t=10 with timestamps (peer TSval 101 at the ACK), window scale and SACK. */
const established = (cfg = base) => {
  const rec = new Rec()
  const t = Tcp.acceptSyn(cfg, peer({ seq: s(RISS), flags: W.SYN, mss: 1460, wscale: 7, sackPermitted: true, hasTs: true, tsVal: 100 }), L, P, ISS, 0, rec)
  const synAck = rec.take()[0]!
  input(t, rec, 10, peer({ seq: s(RISS + 1), ack: s(ISS + 1), hasTs: true, tsVal: 101, tsEcr: synAck.tsVal, window: 512 }))
  Tcp.takeEvents(t)
  return { t, rec }
}

describe("TS.Recent (RFC 7323 §4.3) against a forged segment", () => {
  it("a SYN at RCV.NXT with TSval + 2^30 is challenged and does not move TS.Recent; in-order data still arrives", () => {
    const { t, rec } = established()
    expect(t.tsRecent).toBe(101)
    const out = input(t, rec, 20, peer({ seq: s(RISS + 1), flags: W.SYN, hasTs: true, tsVal: (101 + 2 ** 30) >>> 0 }))
    expect(out).toHaveLength(1) // the challenge ACK
    expect(out[0]!.flags).toBe(W.ACK)
    expect(t.tsRecent).toBe(101)
    expect(t.state).toBe("Established")
    input(t, rec, 30, peer({ seq: s(RISS + 1), ack: s(ISS + 1), hasTs: true, tsVal: 102, payloadLen: 100 }), bytes(100))
    expect(t.counters.pawsDrops).toBe(0)
    expect(Tcp.recvAvailable(t)).toBe(100)
    expect(t.tsRecent).toBe(102)
  })
  it("an in-window ACK for data never sent (challenged, RFC 5961 §5.2) does not move TS.Recent either", () => {
    const { t, rec } = established()
    input(t, rec, 20, peer({ seq: s(RISS + 1), ack: s(ISS + 100_000), hasTs: true, tsVal: (101 + 2 ** 30) >>> 0 }))
    expect(t.counters.challengeAcks).toBe(1)
    expect(t.tsRecent).toBe(101)
    input(t, rec, 30, peer({ seq: s(RISS + 1), ack: s(ISS + 1), hasTs: true, tsVal: 102, payloadLen: 10 }), bytes(10))
    expect(Tcp.recvAvailable(t)).toBe(10)
  })
})

describe("SYN-RECEIVED is bounded like Linux (tcp_synack_retries = 5)", () => {
  it("the default gives up after 5 SYN-ACK retransmissions (1+2+4+8+16+32 s = 63 s)", () => {
    const rec = new Rec()
    const t = Tcp.acceptSyn(Tcp.defaultConfig, peer({ seq: s(RISS), flags: W.SYN, mss: 1460 }), L, P, ISS, 0, rec)
    expect(rec.take()).toHaveLength(1)
    let now = 0
    let synAcks = 0
    while (t.state !== "Closed" && now < 200_000) {
      now = Tcp.pollAt(t)!
      synAcks += poll(t, rec, now).filter((r) => r.flags === (W.SYN | W.ACK)).length
    }
    expect(synAcks).toBe(5)
    expect(t.state).toBe("Closed")
    expect(t.error).toBe("TimedOut")
    expect(now).toBe(63_000)
  })
})

describe("FIN-WAIT-2 timeout (60 s without a segment)", () => {
  const finWait2 = () => {
    const { t, rec } = established()
    Tcp.close(t)
    const fin = poll(t, rec, 20)
    expect(fin[0]!.flags & W.FIN).toBe(W.FIN)
    input(t, rec, 30, peer({ seq: s(RISS + 1), ack: s(ISS + 2), hasTs: true, tsVal: 102, window: 512 }))
    expect(t.state).toBe("FinWait2")
    return { t, rec }
  }
  it("a peer that goes quiet after ACKing our FIN gets a RST at 60 s and the connection ends", () => {
    const { t, rec } = finWait2()
    expect(Tcp.pollAt(t)).toBe(60_030)
    expect(poll(t, rec, 60_029)).toHaveLength(0)
    const out = poll(t, rec, 60_030)
    expect(out.map((r) => r.flags)).toEqual([W.RST])
    expect(t.state).toBe("Closed")
    expect(t.error).toBe("TimedOut")
  })
  it("a peer still sending (a half-close in use) keeps the connection", () => {
    const { t, rec } = finWait2()
    input(t, rec, 50_000, peer({ seq: s(RISS + 1), ack: s(ISS + 2), hasTs: true, tsVal: 103, payloadLen: 10 }), bytes(10))
    poll(t, rec, 60_030)
    expect(t.state).toBe("FinWait2")
    expect(Tcp.pollAt(t)).toBe(110_000)
  })
})

describe("after close, a peer that keeps its window shut is probed a bounded number of times", () => {
  it("closedProbeLimit probes, then RST and TimedOut; the window opening resets the count", () => {
    const { t, rec } = established(cfgWith({ closedProbeLimit: 3 }))
    // the peer closes its window; we have data queued and then close
    input(t, rec, 20, peer({ seq: s(RISS + 1), ack: s(ISS + 1), hasTs: true, tsVal: 102, window: 0 }))
    Tcp.send(t, bytes(1000))
    Tcp.close(t)
    poll(t, rec, 20)
    let probes = 0
    let now = 20
    while (t.state !== "Closed" && now < 1_000_000) {
      now = Tcp.pollAt(t)!
      const out = poll(t, rec, now)
      probes += out.filter((r) => r.flags === W.ACK && r.payloadLen === 0).length
      if (out.some((r) => (r.flags & W.RST) !== 0)) break
    }
    expect(probes).toBe(3)
    expect(t.state).toBe("Closed")
    expect(t.error).toBe("TimedOut")
  })
  it("without close, zero-window probing goes on (the application still owns the connection)", () => {
    const { t, rec } = established(cfgWith({ closedProbeLimit: 3 }))
    input(t, rec, 20, peer({ seq: s(RISS + 1), ack: s(ISS + 1), hasTs: true, tsVal: 102, window: 0 }))
    Tcp.send(t, bytes(1000))
    poll(t, rec, 20)
    let now = 20
    for (let i = 0; i < 10; i++) {
      now = Tcp.pollAt(t)!
      poll(t, rec, now)
    }
    expect(t.state).toBe("Established")
    expect(t.counters.probes).toBe(10)
  })
})

describe("after close, data in flight to a peer that answers every retransmission with a zero window", () => {
  it("is bounded by closedProbeLimit too (the RTO is the probe there): RST and TimedOut", () => {
    const { t, rec } = established(cfgWith({ closedProbeLimit: 3, timestamps: false }))
    input(t, rec, 20, peer({ seq: s(RISS + 1), ack: s(ISS + 1), window: 512 }))
    Tcp.send(t, bytes(1000))
    Tcp.close(t)
    poll(t, rec, 20)
    let now = 20
    let rst = false
    for (let i = 0; i < 20 && !rst; i++) {
      now = Tcp.pollAt(t)!
      const out = poll(t, rec, now)
      rst = out.some((r) => (r.flags & W.RST) !== 0)
      // the peer ACKs nothing new and shuts its window each time
      if (!rst) input(t, rec, now + 1, peer({ seq: s(RISS + 1), ack: s(ISS + 1), window: 0 }))
    }
    expect(rst).toBe(true)
    expect(t.state).toBe("Closed")
    expect(t.error).toBe("TimedOut")
  })
})

describe("the SACK scoreboard after an RTO (RFC 6675 §5.1)", () => {
  it("is expunged, so data the receiver SACKed and then reneged on is retransmitted", () => {
    const { t, rec } = established(cfgWith({ timestamps: false }))
    // peer window large; send 4 segments
    input(t, rec, 20, peer({ seq: s(RISS + 1), ack: s(ISS + 1), window: 4096 }))
    Tcp.send(t, bytes(4 * t.sndMss))
    poll(t, rec, 20)
    const mss = t.sndMss
    // the peer SACKs segments 2..4 (not the first)
    input(t, rec, 30, peer({ seq: s(RISS + 1), ack: s(ISS + 1), window: 4096, sack: [s(ISS + 1 + mss), s(ISS + 1 + 4 * mss)] }))
    expect(t.rec.scoreboard.isEmpty).toBe(false)
    // RTO
    let now = 30
    let sent: W.TcpRepr[] = []
    for (let i = 0; i < 5 && sent.length === 0; i++) {
      now = Tcp.pollAt(t)!
      sent = poll(t, rec, now)
    }
    expect(t.counters.rtoExpiries).toBe(1)
    expect(t.rec.scoreboard.isEmpty).toBe(true)
    // the first segment is resent; then the peer ACKs it but reneged on the rest: it is all resent
    const resent = input(t, rec, now + 5, peer({ seq: s(RISS + 1), ack: s(ISS + 1 + mss), window: 4096 })).concat(poll(t, rec, now + 6))
    const covered = resent.filter((r) => r.payloadLen > 0).reduce((n, r) => n + r.payloadLen, 0)
    expect(covered).toBeGreaterThanOrEqual(mss) // go-back: segment 2 at least, not skipped as SACKed
    expect(resent.some((r) => r.seq === ((ISS + 1 + mss) >>> 0) && r.payloadLen > 0)).toBe(true)
  })
})

describe("SYN cookies (cookie.ts)", () => {
  const key: Cookie.CookieKey = { k0: 0x01234567, k1: 0x89abcdef }
  it("a cookie checks for its own SYN within two periods and carries the MSS", () => {
    const c = Cookie.make(key, A, B, 49500, 80, RISS, 1460, 1_000)
    expect(Cookie.check(key, A, B, 49500, 80, RISS, c, 1_000)).toBe(1460)
    expect(Cookie.check(key, A, B, 49500, 80, RISS, c, 64_000 + 1_000)).toBe(1460)
    expect(Cookie.check(key, A, B, 49500, 80, RISS, c, 128_000 + 1_000)).toBe(0) // too old
    // 32 periods later the 5 bits match again, but the hash covered the whole count
    expect(Cookie.check(key, A, B, 49500, 80, RISS, c, 32 * 64_000 + 1_000)).toBe(0)
  })
  it("fails for another 4-tuple, another peer ISN, another key, or any flipped bit", () => {
    const c = Cookie.make(key, A, B, 49500, 80, RISS, 1460, 5_000)
    expect(Cookie.check(key, A + 1, B, 49500, 80, RISS, c, 5_000)).toBe(0)
    expect(Cookie.check(key, A, B, 49501, 80, RISS, c, 5_000)).toBe(0)
    expect(Cookie.check(key, A, B, 49500, 81, RISS, c, 5_000)).toBe(0)
    expect(Cookie.check(key, A, B, 49500, 80, RISS + 1, c, 5_000)).toBe(0)
    expect(Cookie.check({ k0: key.k0, k1: key.k1 ^ 1 }, A, B, 49500, 80, RISS, c, 5_000)).toBe(0)
    for (let bit = 0; bit < 24; bit++) expect(Cookie.check(key, A, B, 49500, 80, RISS, (c ^ (1 << bit)) >>> 0, 5_000)).toBe(0)
  })
  it("IPv6: the whole of both addresses is hashed (a cookie fails for any other group of either), and 1440 travels", () => {
    const a6 = parseIpv6("2001:db8::1")!
    const b6 = parseIpv6("2001:db8::2")!
    const c = Cookie.make(key, a6, b6, 49500, 5001, RISS, 1440, 5_000)
    expect(Cookie.check(key, a6, b6, 49500, 5001, RISS, c, 5_000)).toBe(1440)
    for (let g = 0; g < 8; g++) {
      const other = (x: string): string => x.slice(0, g) + String.fromCharCode(x.charCodeAt(g) ^ 1) + x.slice(g + 1)
      expect(Cookie.check(key, other(a6), b6, 49500, 5001, RISS, c, 5_000)).toBe(0)
      expect(Cookie.check(key, a6, other(b6), 49500, 5001, RISS, c, 5_000)).toBe(0)
    }
    expect(Cookie.check(key, b6, a6, 49500, 5001, RISS, c, 5_000)).toBe(0)
    expect(Cookie.check(key, a6, b6, 49501, 5001, RISS, c, 5_000)).toBe(0)
    // the IPv4 cookie of the same ports and ISN is not this one
    expect(Cookie.check(key, A, B, 49500, 5001, RISS, c, 5_000)).toBe(0)
  })
  it("the MSS is the largest table value not above the peer's", () => {
    expect(Cookie.MSS_TABLE[Cookie.mssIndex(0)]).toBe(536)
    expect(Cookie.MSS_TABLE[Cookie.mssIndex(1460)]).toBe(1460)
    expect(Cookie.MSS_TABLE[Cookie.mssIndex(1448)]).toBe(1440)
    expect(Cookie.MSS_TABLE[Cookie.mssIndex(9000)]).toBe(8960)
    expect(Cookie.MSS_TABLE[Cookie.mssIndex(300)]).toBe(216)
    expect(Cookie.MSS_TABLE[Cookie.mssIndex(100)]).toBe(216)
  })
  it("timestamp option bits round-trip and never run ahead of the clock", () => {
    for (const ws of [-1, 0, 7, 14]) {
      for (const sack of [false, true]) {
        const v = Cookie.tsValWithOptions(0x12345678, Cookie.encodeTsOptions(ws, sack))
        expect(Cookie.decodeTsOptions(v)).toEqual({ wscale: ws, sack })
        expect((v - 0x12345678) | 0).toBeLessThanOrEqual(0)
        expect((0x12345678 - v) | 0).toBeLessThan(64)
      }
    }
  })
  it("the machine: cookie SYN-ACK, then the peer's ACK opens an Established connection with the options", () => {
    const cfg = Tcp.makeConfig({ recvBufBytes: 1 << 20 })
    const syn = peer({ seq: s(RISS), flags: W.SYN, mss: 1400, wscale: 7, sackPermitted: true, hasTs: true, tsVal: 777 })
    const cookie = Cookie.make(key, A, B, P.port, L.port, RISS, 1400, 10)
    const synAck = Tcp.cookieSynAck(cfg, syn, cookie, 10)
    expect(synAck).toMatchObject({ seq: cookie, ack: RISS + 1, flags: W.SYN | W.ACK, mss: cfg.mss, wscale: 5, sackPermitted: true, hasTs: true, tsEcr: 777 })
    // the peer's ACK, 20 ms later, echoing our TSval, with the first data
    const ack = peer({ seq: s(RISS + 1), ack: s(cookie + 1), window: 1000, hasTs: true, tsVal: 790, tsEcr: synAck.tsVal, payloadLen: 24 })
    const mss = Cookie.check(key, A, B, P.port, L.port, RISS, (ack.ack - 1) >>> 0, 30)
    expect(mss).toBe(1400)
    const rec = new Rec()
    const t = Tcp.acceptCookie(cfg, cfg, ack, L, P, mss, 30)
    expect(t.state).toBe("Established")
    expect(t.wsOk && t.sackOk && t.tsOk).toBe(true)
    expect(t.sndWscale).toBe(7)
    expect(t.sndWnd).toBe(1000 << 7)
    expect(t.sndMss).toBe(1400 - 12)
    Tcp.input(t, ack, bytes(24), 0, 30, rec)
    expect(Tcp.recvAvailable(t)).toBe(24)
    // later segments carry TSvals not below the cookie's
    Tcp.send(t, bytes(100))
    const out = poll(t, rec, 40)
    expect(out[0]!.payloadLen).toBe(100)
    expect((out[0]!.tsVal - synAck.tsVal) | 0).toBeGreaterThanOrEqual(0)
  })
  it("under memory pressure the cookie connection keeps the window scale its SYN-ACK announced, with its smaller ring", () => {
    const big = Tcp.makeConfig({ recvBufBytes: 1 << 20 })
    const small = Tcp.makeConfig({ recvBufBytes: 32 * 1024 })
    const syn = peer({ seq: s(RISS), flags: W.SYN, mss: 1460, wscale: 7, sackPermitted: true, hasTs: true, tsVal: 1 })
    const synAck = Tcp.cookieSynAck(big, syn, 777, 0)
    expect(synAck.wscale).toBe(5)
    const t = Tcp.acceptCookie(small, big, peer({ seq: s(RISS + 1), ack: s(778), window: 100, hasTs: true, tsVal: 2, tsEcr: synAck.tsVal }), L, P, 1460, 1)
    expect(t.ourWscale).toBe(5)
    expect(t.recvbuf.capacity).toBe(32 * 1024)
  })
  it("without timestamps on the SYN, the cookie connection has no window scale or SACK", () => {
    const syn = peer({ seq: s(RISS), flags: W.SYN, mss: 1460, wscale: 7, sackPermitted: true })
    const synAck = Tcp.cookieSynAck(base, syn, 12345, 0)
    expect(synAck).toMatchObject({ wscale: -1, sackPermitted: false, hasTs: false })
    const t = Tcp.acceptCookie(base, base, peer({ seq: s(RISS + 1), ack: s(12346), window: 4000 }), L, P, 1460, 5)
    expect(t.wsOk || t.sackOk || t.tsOk).toBe(false)
    expect(t.sndWnd).toBe(4000)
  })
})
