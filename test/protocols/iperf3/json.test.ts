/**
 * `-J` for iperf3 tests: our document has the layout of `iperf3 -s -J` 3.12's (the key paths of the captured
 * documents in test/fixtures/iperf-console/iperf3-*-J.server.txt), less the TCP_INFO numbers our stack does not keep
 * (json.ts says which), and its numbers are the test's.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import * as J from "../../../src/protocols/iperf3/json.js"
import * as S from "../../../src/protocols/iperf3/session.js"
import * as W from "../../../src/protocols/iperf3/wire.js"
import * as U from "../../../src/protocols/iperf3/udp.js"

const DIR = path.resolve(__dirname, "../../fixtures/iperf-console")
/** The first document of a capture (the server's interrupt adds a second). */
const realDoc = (name: string): unknown => {
  const t = fs.readFileSync(path.join(DIR, `${name}.server.txt`), "utf8")
  let depth = 0
  for (let i = 0; i < t.length; i++) {
    if (t[i] === "{") depth++
    else if (t[i] === "}" && --depth === 0) return JSON.parse(t.slice(0, i + 1))
  }
  throw new Error("no document")
}
/** Every key path (`end.streams[].sender.bytes`), arrays through all their elements. */
const shape = (o: unknown, p = ""): Set<string> => {
  const out = new Set<string>()
  const walk = (x: unknown, q: string): void => {
    if (Array.isArray(x)) for (const e of x) walk(e, `${q}[]`)
    else if (x !== null && typeof x === "object") {
      for (const [k, v] of Object.entries(x)) {
        out.add(`${q}.${k}`)
        walk(v, `${q}.${k}`)
      }
    }
  }
  walk(o, p)
  return out
}
/** TCP_INFO numbers the real server has and we do not (json.ts). */
const NOT_OURS = [
  ".intervals[].streams[].snd_wnd", ".intervals[].streams[].rtt", ".intervals[].streams[].rttvar", ".intervals[].streams[].pmtu",
  ".end.streams[].sender.max_snd_wnd", ".end.streams[].sender.max_rtt", ".end.streams[].sender.min_rtt", ".end.streams[].sender.mean_rtt"
]

const enc = new TextEncoder()
const COOKIE = "ms3e2nj2ifntfchkeuw3dkcqrcvhe4txh7gp"
const cookie = (): Uint8Array => Uint8Array.from([...enc.encode(COOKIE), 0])
const peer = (port: number): S.PeerInfo => ({ local: "198.51.100.1", localPort: 5201, remote: "198.51.100.2", remotePort: port })
const params = (o: Record<string, unknown>): Uint8Array =>
  W.encodeJson({ tcp: true, omit: 0, time: 3, num: 0, blockcount: 0, parallel: 1, len: 131072, pacing_timer: 1000, client_version: "3.12", ...o })
const clientResults = (ids: ReadonlyArray<number>) =>
  W.encodeJson({
    cpu_util_total: 1, cpu_util_user: 0.5, cpu_util_system: 0.5, sender_has_retransmits: 1,
    streams: ids.map((id) => ({ id, bytes: 1000, retransmits: 0, jitter: 0, errors: 0, packets: 0, start_time: 0, end_time: 3 }))
  })
const INFO: J.DocumentInfo = { startedEpochMs: Date.UTC(2026, 11, 7, 4, 55, 21), systemInfo: "Linux test", sendBufBytes: 1 << 20, recvBufBytes: 1 << 20, congestion: "cubic" }

/** A whole test through the machine with 1 s intervals: `feed` moves data at 500, 1500 and 2500 ms; TEST_END at 3000. */
const runTest = (o: Record<string, unknown>, feed: (t: S.Test, s: S.Server) => void): S.Test => {
  const s = S.makeServer({ udp: true, intervalMs: 1000 })
  const out: Array<S.Action> = []
  S.onAccept(s, 1, peer(40001), 0, out)
  S.onBytes(s, 1, cookie(), 0, 37, 0, out)
  const p = params(o)
  S.onBytes(s, 1, p, 0, p.length, 0, out)
  const t = s.test!
  const n = t.expected
  for (let i = 0; i < n; i++) {
    if (o["udp"] === true) {
      const key = 0xc6336402 * 65536 + 50000 + i
      S.onUdpConnect(s, key, peer(50000 + i), 0, out)
    } else {
      S.onAccept(s, 10 + i, peer(40010 + i), 0, out)
      S.onBytes(s, 10 + i, cookie(), 0, 37, 0, out)
    }
  }
  for (const at of [500, 1000, 1500, 2000, 2500]) {
    if (at % 1000 === 500) feed(t, s)
    else S.onTick(s, at, out)
  }
  S.onBytes(s, 1, Uint8Array.of(W.TEST_END), 0, 1, 3000, out)
  const r = clientResults(t.streams.map((st) => st.id))
  S.onBytes(s, 1, r, 0, r.length, 3001, out)
  return t
}

const compare = (ours: unknown, real: string): void => {
  const want = [...shape(realDoc(real))].filter((k) => !NOT_OURS.includes(k)).sort()
  expect([...shape(ours)].sort()).toEqual(want)
}

describe("iperf3 -J: our document against iperf3 -s -J 3.12's layout", () => {
  it("TCP, the client sends: key for key, with the bytes and the intervals of the test", () => {
    const t = runTest({}, (t) => {
      t.streams[0]!.bytes += 1_000_000
    })
    const d = J.testDocument(t, INFO) as { intervals: Array<{ sum: { bytes: number } }>; end: { sum_received: { bytes: number; seconds: number } } }
    compare(d, "iperf3-tcp-J")
    expect(d.intervals.map((i) => i.sum.bytes)).toEqual([1_000_000, 1_000_000, 1_000_000])
    expect(d.end.sum_received).toMatchObject({ bytes: 3_000_000, seconds: 3 })
  })

  it("-R: retransmits, snd_cwnd and max_snd_cwnd for the stream we send, sender_tcp_congestion", () => {
    const t = runTest({ reverse: true }, (t) => {
      const st = t.streams[0]!
      S.commitSent(t, st, 2_000_000, st.retransmits + 1, 100_000 + st.bytes / 100)
    })
    const d = J.testDocument(t, INFO) as { end: { sum_sent: Record<string, number>; streams: Array<{ sender: Record<string, number> }> } }
    compare(d, "iperf3-R-J")
    expect(d.end.sum_sent).toMatchObject({ bytes: 6_000_000, retransmits: 3 })
    expect(d.end.streams[0]!.sender["max_snd_cwnd"]).toBe(100_000 + 4_000_000 / 100)
  })

  it("-P 2: a stream entry each and the sums", () => {
    const t = runTest({ parallel: 2 }, (t) => {
      for (const st of t.streams) st.bytes += 1000
    })
    compare(J.testDocument(t, INFO), "iperf3-P2-J")
  })

  it("--bidir: the _bidir_reverse sums", () => {
    const t = runTest({ bidirectional: true }, (t) => {
      for (const st of t.streams) {
        if (st.sender) S.commitSent(t, st, 1000, 0, 5000)
        else st.bytes += 1000
      }
    })
    compare(J.testDocument(t, INFO), "iperf3-bidir-J")
  })

  it("-u: the udp stream entries, jitter, packets and the sum", () => {
    const t = runTest({ udp: true, tcp: undefined, len: 1448, bandwidth: 1048576 }, (t, s) => {
      const st = t.streams[0]!
      const d = new Uint8Array(1448)
      for (let k = 0; k < 30; k++) {
        const seq = st.udp!.packets + 1
        U.stamp(d, seq, 1_000_000 * seq, false)
        S.onUdp(s, st.udpKey!, d, 1_000_000 * seq + 100)
      }
    })
    const d = J.testDocument(t, INFO) as { end: { sum_received: Record<string, number>; streams: Array<{ udp: Record<string, number> }> } }
    compare(d, "iperf3-u-J")
    expect(d.end.sum_received).toMatchObject({ bytes: 90 * 1448, packets: 90, lost_packets: 0 })
    expect(d.end.streams[0]!.udp["packets"]).toBe(90)
  })

  it("a test that ended early: the same document with 3.12's error key", () => {
    const s = S.makeServer({ intervalMs: 1000 })
    const out: Array<S.Action> = []
    S.onAccept(s, 1, peer(40001), 0, out)
    S.onBytes(s, 1, cookie(), 0, 37, 0, out)
    const t = s.test!
    S.onPeerClosed(s, 1, true, 10, out)
    const d = J.testDocument(t, { ...INFO, ...(t.endReason !== undefined ? { error: t.endReason } : {}) }) as Record<string, unknown>
    expect(Object.keys(d)).toEqual(["start", "intervals", "end", "error"])
    expect(d["end"]).toEqual({})
    expect(String(d["error"])).toMatch(/reset|closed/)
  })
})
