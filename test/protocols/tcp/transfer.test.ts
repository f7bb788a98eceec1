/**
 * Two pure Tcbs over a deterministic channel (harness.ts): byte-exact transfers (sha256) under
 * loss, reordering and duplication, within stated virtual-time bounds. 100 Mbit/s bottleneck,
 * 10 ms one-way delay, 256 KiB drop-tail queue.
 */
import { describe, expect, it } from "vitest"
import * as Tcp from "../../../src/protocols/tcp/machine.js"
import { run, type LinkOpts, type RunResult } from "./harness.js"

const link = (lossRate: number, extra: Partial<LinkOpts> = {}): LinkOpts => ({
  lossRate,
  dupRate: lossRate > 0 ? 0.01 : 0,
  reorderRate: lossRate > 0 ? 0.02 : 0,
  delayMs: 10,
  reorderDelayMs: 8,
  bytesPerMs: 12_500, // 100 Mbit/s
  queueBytes: 256 * 1024,
  ...extra
})

const MB = 1024 * 1024
const WRAP_ISS = 2 ** 32 - 1000

const expectExact = (r: RunResult, boundMs: number) => {
  expect(r.finished).toBe(true)
  expect(r.hashAtoB).toBe(r.expectedAtoB)
  expect(r.hashBtoA).toBe(r.expectedBtoA)
  expect(r.doneAtMs).toBeLessThan(boundMs)
  expect(r.oversize).toEqual([0, 0])
}

describe("two Tcbs over a lossy, reordering, duplicating channel (virtual time)", () => {
  it("handshake + 64 KiB each way, no loss", () => {
    const r = run({
      seed: 1, link: link(0), cfgA: Tcp.makeConfig(), cfgB: Tcp.makeConfig(), issA: 1000, issB: 900_000,
      bytesAtoB: 65536, bytesBtoA: 65536, maxVirtualMs: 10_000
    })
    expectExact(r, 1_000)
    expect(r.a.counters.retransSegs + r.b.counters.retransSegs).toBe(0)
  })

  it.each([
    [0, 2_000],
    [0.01, 20_000],
    [0.05, 45_000]
  ])("5 MB each way at %s loss (CUBIC, SACK, timestamps, window scaling) within %s ms", (loss, bound) => {
    const cfg = Tcp.makeConfig()
    const r = run({
      seed: 7, link: link(loss), cfgA: cfg, cfgB: cfg, issA: WRAP_ISS, issB: 12345,
      bytesAtoB: 5 * MB, bytesBtoA: 5 * MB, maxVirtualMs: 600_000
    })
    expectExact(r, bound)
    if (loss > 0) {
      expect(r.a.counters.retransSegs).toBeGreaterThan(0)
      expect(r.b.counters.oooSegs).toBeGreaterThan(0)
    }
  })

  it("5 MB each way at 5% loss with NewReno and no SACK (RFC 6582 recovery) within 60 s", () => {
    const cfg = Tcp.makeConfig({ congestion: "newreno", sack: false })
    const r = run({
      seed: 7, link: link(0.05), cfgA: cfg, cfgB: cfg, issA: 5, issB: WRAP_ISS,
      bytesAtoB: 5 * MB, bytesBtoA: 5 * MB, maxVirtualMs: 600_000
    })
    expectExact(r, 60_000)
    expect(r.a.counters.fastRetransmits).toBeGreaterThan(0)
  })

  it("sequence wrap-around: iss = 2^32 - 1000 both ways, 1 MB each way", () => {
    const cfg = Tcp.makeConfig()
    const r = run({
      seed: 3, link: link(0.01), cfgA: cfg, cfgB: cfg, issA: WRAP_ISS, issB: WRAP_ISS + 500,
      bytesAtoB: MB, bytesBtoA: MB, maxVirtualMs: 60_000
    })
    expectExact(r, 10_000)
    expect(r.a.sndUna).toBe((WRAP_ISS + 1 + MB + 1) % 2 ** 32)
  })

  it("sink mode (zero-copy delivery, window stays open), 5 MB at 1% loss", () => {
    const r = run({
      seed: 11, link: link(0.01), cfgA: Tcp.makeConfig(), cfgB: Tcp.makeConfig({ recvMode: "sink" }), issA: 77, issB: 88,
      bytesAtoB: 5 * MB, bytesBtoA: 0, maxVirtualMs: 120_000
    })
    expectExact(r, 20_000)
    expect(r.b.recvbuf.len).toBe(0)
  })

  it("TSO: segments larger than the MSS go out, the peer takes them as one (GSO), 3 MB at 1% loss", () => {
    const cfg = Tcp.makeConfig({ tso: true, maxSegmentBytes: 64_000 })
    const r = run({
      seed: 5, link: link(0.01, { queueBytes: 1024 * 1024 }), cfgA: cfg, cfgB: cfg, issA: WRAP_ISS, issB: 1,
      bytesAtoB: 3 * MB, bytesBtoA: MB, maxVirtualMs: 120_000
    })
    expectExact(r, 20_000)
    expect(r.maxPayload[0]).toBeGreaterThan(r.a.sndMss)
    expect(r.maxPayload[0] % r.a.sndMss).toBe(0)
    expect(r.maxPayload[0]).toBeLessThanOrEqual(64_000)
  })

  it("tiny buffers (8 KiB send, 4 KiB receive), 5% loss: SWS override and window updates keep it moving", () => {
    const r = run({
      seed: 9, link: link(0.05), cfgA: Tcp.makeConfig({ sendBufBytes: 8192 }), cfgB: Tcp.makeConfig({ recvBufBytes: 4096 }),
      issA: WRAP_ISS, issB: 0xfffff000, bytesAtoB: MB, bytesBtoA: 256 * 1024, maxVirtualMs: 600_000
    })
    expectExact(r, 120_000)
  })

  it("no timestamps, no window scaling (RFC 6298 timed segments, Karn), 2 MB each way at 1% loss", () => {
    const cfg = Tcp.makeConfig({ timestamps: false, windowScale: false })
    const r = run({
      seed: 13, link: link(0.01), cfgA: cfg, cfgB: cfg, issA: 100, issB: 200,
      bytesAtoB: 2 * MB, bytesBtoA: 2 * MB, maxVirtualMs: 120_000
    })
    expectExact(r, 20_000)
    expect(r.a.rtt.hasSample).toBe(true)
  })
})

describe("corruption", () => {
  it("2% corrupted segments are dropped on the checksum, 2 MB each way still byte-exact", () => {
    const cfg = Tcp.makeConfig()
    const r = run({
      seed: 21, link: link(0.01, { corruptRate: 0.02 }), cfgA: cfg, cfgB: cfg, issA: 1, issB: 2,
      bytesAtoB: 2 * MB, bytesBtoA: 2 * MB, maxVirtualMs: 120_000
    })
    expectExact(r, 30_000)
    expect(r.corruptDropped).toBeGreaterThan(20)
  })
})
