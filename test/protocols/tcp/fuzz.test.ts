/**
 * Robustness: arbitrary peer segments and app calls never throw and keep the Tcb's invariants.
 */
import { describe, expect, it } from "vitest"
import * as fc from "fast-check"
import * as Tcp from "../../../src/protocols/tcp/machine.js"
import { seqAdd, seqGe, seqLe, type SeqNum } from "../../../src/protocols/tcp/seq.js"
import * as W from "../../../src/protocols/tcp/wire.js"

const L: Tcp.Endpoint = { addr: 2, port: 80 }
const P: Tcp.Endpoint = { addr: 1, port: 49500 }

type Step =
  | { k: "seg"; flags: number; dseq: number; dack: number; len: number; window: number; ts: number; sack: number[] }
  | { k: "poll"; dt: number }
  | { k: "send"; n: number }
  | { k: "recv" }
  | { k: "close" }

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({
    k: fc.constant("seg" as const),
    flags: fc.oneof(fc.constant(W.ACK), fc.constant(W.ACK | W.FIN), fc.constant(W.ACK | W.PSH), fc.integer({ min: 0, max: 63 })),
    dseq: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: -2, max: 2 }), fc.integer({ min: -3000, max: 70000 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
    dack: fc.oneof(fc.constant(999_999), fc.constant(999_999), fc.constant(0), fc.integer({ min: -3000, max: 70000 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
    len: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 3000, max: 70000 })),
    window: fc.integer({ min: 0, max: 65535 }),
    ts: fc.integer({ min: -5, max: 1000 }),
    sack: fc.array(fc.integer({ min: -5000, max: 70000 }), { maxLength: 8 })
  }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("poll" as const), dt: fc.integer({ min: 0, max: 5000 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("send" as const), n: fc.integer({ min: 0, max: 50000 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("recv" as const) }) },
  { weight: 1, arbitrary: fc.constant({ k: "close" as const }) }
)

const checkInvariants = (t: Tcp.Tcb) => {
  expect(seqLe(t.sndUna, t.sndNxt)).toBe(true)
  expect(seqLe(t.sndNxt, t.sndMax)).toBe(true)
  expect(t.sendbuf.len).toBeGreaterThanOrEqual(0)
  expect(t.sendbuf.len).toBeLessThanOrEqual(t.sendbuf.capacity)
  expect(t.recvbuf.len).toBeGreaterThanOrEqual(0)
  expect(t.recvbuf.len).toBeLessThanOrEqual(t.recvbuf.capacity)
  expect(t.ooo.count).toBeLessThanOrEqual(t.cfg.maxRanges)
  expect(t.rec.scoreboard.count).toBeLessThanOrEqual(t.cfg.maxRanges)
  if (t.ooo.count > 0) expect(t.ooo.start(0)).toBeGreaterThan(0)
  expect(seqGe(t.bufSeq, t.sndUna) || t.state === "Closed" || t.closeRequested).toBe(true)
  expect(Number.isFinite(t.cc.cwnd) && t.cc.cwnd > 0).toBe(true)
}

describe("machine fuzz", () => {
  it.each([
    ["plain", Tcp.makeConfig({ sendBufBytes: 16384, recvBufBytes: 8192, timestamps: false, sack: false })],
    ["all options", Tcp.makeConfig({ sendBufBytes: 16384, recvBufBytes: 8192, maxRanges: 4 })],
    ["sink + tso + keepalive", Tcp.makeConfig({ recvMode: "sink", tso: true, keepAliveIdleMs: 3000, recvBufBytes: 8192 })]
  ])("%s: random segments and app calls never throw, invariants hold", (_n, cfg) => {
    const visited = new Set<string>()
    let dataIn = 0
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), fc.boolean(), (steps, active) => {
        const segs: W.TcpRepr[] = []
        const out: Tcp.Output = {
          segment(t, r) {
            segs.push(r)
            if (r.payloadLen > 0) Tcp.copyPayload(t, r.seq, r.payloadLen, new Uint8Array(r.payloadLen), 0)
            const b = new Uint8Array(W.headerLen(r) + r.payloadLen)
            W.emit(r, b, 0, true) // every emitted repr is encodable
          },
          deliver() {}
        }
        const RISS = 5000 as SeqNum
        let now = 0
        let t: Tcp.Tcb
        if (active) {
          t = Tcp.connect(cfg, L, P, 1000, now, out)
          Tcp.input(t, W.make({ srcPort: 49500, dstPort: 80, seq: RISS, ack: 1001 as SeqNum, flags: W.SYN | W.ACK, window: 1000, mss: 1000, wscale: 3, sackPermitted: true, hasTs: true, tsVal: 1 }), new Uint8Array(0), 0, 1, out)
        } else {
          t = Tcp.acceptSyn(cfg, W.make({ srcPort: 49500, dstPort: 80, seq: RISS, flags: W.SYN, window: 1000, mss: 1000, wscale: 3, sackPermitted: true, hasTs: true, tsVal: 1 }), L, P, 1000, now, out)
        }
        const payload = new Uint8Array(70000)
        const dst = new Uint8Array(4096)
        let tsv = 1
        for (const s of steps) {
          now += 1
          switch (s.k) {
            case "seg": {
              tsv += s.ts
              const r = W.make({
                srcPort: 49500, dstPort: 80, seq: seqAdd(t.rcvNxt, s.dseq), ack: s.dack === 999_999 ? t.sndMax : seqAdd(t.sndUna, s.dack), flags: s.flags,
                window: s.window, hasTs: s.ts >= 0, tsVal: tsv >>> 0, tsEcr: 0,
                sack: s.sack.map((x) => seqAdd(t.sndUna, x)).slice(0, 2 * Math.floor(s.sack.length / 2)), payloadLen: s.len
              })
              Tcp.input(t, r, payload, 0, now, out)
              break
            }
            case "poll":
              now += s.dt
              Tcp.poll(t, now, out)
              break
            case "send":
              Tcp.send(t, payload, 0, s.n)
              Tcp.poll(t, now, out)
              break
            case "recv":
              Tcp.recv(t, dst)
              Tcp.poll(t, now, out)
              break
            case "close":
              Tcp.close(t)
              Tcp.poll(t, now, out)
              break
          }
          checkInvariants(t)
          visited.add(t.state)
          const at = Tcp.pollAt(t)
          if (at !== undefined) expect(Number.isFinite(at)).toBe(true)
        }
        // the timers always make progress to a quiescent or closed state
        dataIn += t.counters.bytesIn
        for (let i = 0; i < 200; i++) {
          const at = Tcp.pollAt(t)
          if (at === undefined) break
          now = Math.max(now, at)
          Tcp.poll(t, now, out)
        }
      }),
      { numRuns: 300, seed: 4242 }
    )
    expect([...visited]).toEqual(expect.arrayContaining(["Established", "CloseWait", "FinWait1", "FinWait2", "LastAck", "TimeWait", "Closed"]))
    expect(dataIn).toBeGreaterThan(0)
  })
})
