/**
 * SimLink under TestClock: ordering, delay, loss, duplication, reordering, corruption, queue
 * limit, rate limit, caps and determinism for a seed. Frames carry a u32 sequence number at 14..17.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import type { NicShape } from "../../src/nic/Nic.js"
import { VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, plainFrame, type Frame } from "../../src/nic/Frame.js"
import * as SimLink from "../../src/nic/SimLink.js"

const frame = (seq: number, len = 100): Frame => {
  const b = new Uint8Array(len)
  b[14] = seq >>> 24
  b[15] = (seq >>> 16) & 0xff
  b[16] = (seq >>> 8) & 0xff
  b[17] = seq & 0xff
  for (let i = 18; i < len; i++) b[i] = (seq + i) & 0xff
  return plainFrame(b)
}
const seqOf = (b: Uint8Array): number => ((b[14]! << 24) | (b[15]! << 16) | (b[16]! << 8) | b[17]!) >>> 0

interface Got {
  readonly atMs: number
  readonly frame: Frame
}

/** Collects everything `nic` receives, with the (test) time of arrival. */
const collect = (nic: NicShape) =>
  Effect.gen(function* () {
    const got: Array<Got> = []
    yield* Effect.forkScoped(
      Stream.runForEach(nic.rx, (batch) =>
        Effect.clockWith((c) =>
          Effect.sync(() => {
            for (const f of batch) got.push({ atMs: c.unsafeCurrentTimeMillis(), frame: f })
          })
        )
      )
    )
    yield* settle
    return got
  })

/** Lets forked fibers run (no time passes). */
const settle = Effect.repeatN(Effect.yieldNow(), 20)

const advance = (ms: number) => Effect.zipRight(TestClock.adjust(ms), settle)

const sendAll = (nic: NicShape, n: number, perBatch = 10, len = 100) =>
  Effect.gen(function* () {
    for (let i = 0; i < n; i += perBatch) {
      const batch: Array<Frame> = []
      for (let j = i; j < Math.min(n, i + perBatch); j++) batch.push(frame(j, len))
      yield* nic.tx(batch)
    }
  })

describe("SimLink", () => {
  it.scoped("delivers every frame in order, as copies, without faults", () =>
    Effect.gen(function* () {
      const link = yield* SimLink.make({ seed: 1 })
      const got = yield* collect(link.b)
      const sent = frame(7)
      yield* link.a.tx([sent])
      sent.data.fill(0) // the link copied on tx
      yield* sendAll(link.a, 100)
      yield* advance(1)
      expect(got.map((g) => seqOf(g.frame.data))).toEqual([7, ...Array.from({ length: 100 }, (_, i) => i)])
      expect(got[0]!.frame.data[20]).toBe((7 + 20) & 0xff)
      expect(link.a.stats.txFrames).toBe(101)
      expect(link.b.stats.rxFrames).toBe(101)
      expect(link.stats.aToB.delivered).toBe(101)
    }))

  it.scoped("works in both directions", () =>
    Effect.gen(function* () {
      const link = yield* SimLink.make({ seed: 1, delay: "5 millis" })
      const atA = yield* collect(link.a)
      const atB = yield* collect(link.b)
      yield* link.a.tx([frame(1)])
      yield* link.b.tx([frame(2)])
      yield* advance(5)
      expect(atB.map((g) => seqOf(g.frame.data))).toEqual([1])
      expect(atA.map((g) => seqOf(g.frame.data))).toEqual([2])
    }))

  it.scoped("honours the delay under TestClock", () =>
    Effect.gen(function* () {
      const link = yield* SimLink.make({ seed: 1, delay: "50 millis" })
      const got = yield* collect(link.b)
      yield* link.a.tx([frame(1)])
      yield* advance(49)
      expect(got.length).toBe(0)
      yield* advance(1)
      expect(got.length).toBe(1)
      expect(got[0]!.atMs).toBe(50)
    }))

  it.scoped("jitter spreads arrivals within [delay, delay + jitter)", () =>
    Effect.gen(function* () {
      const link = yield* SimLink.make({ seed: 3, delay: "10 millis", jitter: "20 millis" })
      const got = yield* collect(link.b)
      yield* sendAll(link.a, 50)
      yield* advance(9)
      expect(got.length).toBe(0)
      yield* advance(21)
      expect(got.length).toBe(50)
      const times = got.map((g) => g.atMs)
      expect(Math.min(...times)).toBeGreaterThanOrEqual(10)
      expect(Math.max(...times)).toBeLessThan(30)
      expect(new Set(times).size).toBeGreaterThan(5)
    }))

  it.scoped("loses roughly lossRate of the frames, deterministically for a seed", () =>
    Effect.gen(function* () {
      const run = Effect.gen(function* () {
        const link = yield* SimLink.make({ seed: 42, lossRate: 0.2 })
        const got = yield* collect(link.b)
        yield* sendAll(link.a, 2000, 50)
        yield* advance(1)
        return { seqs: got.map((g) => seqOf(g.frame.data)), link }
      })
      const one = yield* run
      const two = yield* run
      const n = one.seqs.length
      expect(n).toBeGreaterThan(2000 * 0.75)
      expect(n).toBeLessThan(2000 * 0.85)
      expect(one.link.stats.aToB.lost + n).toBe(2000)
      expect(one.link.a.stats.txDropped).toBe(one.link.stats.aToB.lost)
      expect(two.seqs).toEqual(one.seqs)
      // survivors stay in order
      expect([...one.seqs].sort((x, y) => x - y)).toEqual(one.seqs)
    }))

  it.scoped("a different seed loses different frames", () =>
    Effect.gen(function* () {
      const seqsFor = (seed: number) =>
        Effect.gen(function* () {
          const link = yield* SimLink.make({ seed, lossRate: 0.2 })
          const got = yield* collect(link.b)
          yield* sendAll(link.a, 200)
          yield* advance(1)
          return got.map((g) => seqOf(g.frame.data))
        })
      expect(yield* seqsFor(1)).not.toEqual(yield* seqsFor(2))
    }))

  it.scoped("duplicates frames", () =>
    Effect.gen(function* () {
      const link = yield* SimLink.make({ seed: 5, duplicateRate: 0.1 })
      const got = yield* collect(link.b)
      yield* sendAll(link.a, 1000)
      yield* advance(1)
      const dups = link.stats.aToB.duplicated
      expect(dups).toBeGreaterThan(50)
      expect(dups).toBeLessThan(150)
      expect(got.length).toBe(1000 + dups)
      expect(new Set(got.map((g) => seqOf(g.frame.data))).size).toBe(1000)
    }))

  it.scoped("reorders frames: a held frame arrives right after its successor", () =>
    Effect.gen(function* () {
      const link = yield* SimLink.make({ seed: 9, reorderRate: 0.1 })
      const got = yield* collect(link.b)
      yield* sendAll(link.a, 1000)
      yield* advance(20) // past reorderHoldMs for a held last frame
      const seqs = got.map((g) => seqOf(g.frame.data))
      expect(seqs.length).toBe(1000)
      expect([...seqs].sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i))
      let inversions = 0
      for (let i = 1; i < seqs.length; i++) if (seqs[i]! < seqs[i - 1]!) inversions++
      expect(link.stats.aToB.reordered).toBeGreaterThan(50)
      expect(inversions).toBe(link.stats.aToB.reordered)
    }))

  it.scoped("a held frame with no successor is delivered after reorderHoldMs", () =>
    Effect.gen(function* () {
      const link = yield* SimLink.make({ seed: 1, reorderRate: 1, reorderHoldMs: 30 })
      const got = yield* collect(link.b)
      yield* link.a.tx([frame(1)])
      yield* advance(29)
      expect(got.length).toBe(0)
      yield* advance(1)
      expect(got.map((g) => seqOf(g.frame.data))).toEqual([1])
    }))

  it.scoped("corrupts frames (one byte each) and counts them", () =>
    Effect.gen(function* () {
      const link = yield* SimLink.make({ seed: 11, corruptRate: 0.1 })
      const got = yield* collect(link.b)
      yield* sendAll(link.a, 500)
      yield* advance(1)
      expect(got.length).toBe(500)
      let damaged = 0
      for (const [i, g] of got.entries()) {
        const want = frame(i).data
        let diff = 0
        for (let k = 0; k < want.length; k++) if (want[k] !== g.frame.data[k]) diff++
        expect(diff).toBeLessThanOrEqual(1)
        damaged += diff
      }
      expect(link.stats.aToB.corrupted).toBeGreaterThan(20)
      expect(damaged).toBe(link.stats.aToB.corrupted)
    }))

  it.scoped("rate limit spaces frames by their serialization time", () =>
    Effect.gen(function* () {
      // 8000 bit/s = 1000 bytes/s: a 100-byte frame takes 100 ms
      const link = yield* SimLink.make({ seed: 1, bandwidthBps: 8000 })
      const got = yield* collect(link.b)
      yield* sendAll(link.a, 3)
      yield* advance(99)
      expect(got.length).toBe(0)
      yield* advance(1)
      expect(got.length).toBe(1)
      yield* advance(200)
      expect(got.map((g) => g.atMs)).toEqual([100, 200, 300])
    }))

  it.scoped("queue limit: tail drop beyond queueBytes, counted", () =>
    Effect.gen(function* () {
      const link = yield* SimLink.make({ seed: 1, bandwidthBps: 8000, queueBytes: 1000 })
      const got = yield* collect(link.b)
      yield* sendAll(link.a, 20)
      expect(link.stats.aToB.queueDropped).toBe(10)
      expect(link.a.stats.txDropped).toBe(10)
      yield* advance(1000)
      expect(got.map((g) => seqOf(g.frame.data))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      // the queue drained: new frames are accepted again
      yield* sendAll(link.a, 5)
      expect(link.stats.aToB.queueDropped).toBe(10)
    }))

  it.scoped("receiver buffer full: rx drops are counted", () =>
    Effect.gen(function* () {
      const link = yield* SimLink.make({ seed: 1, rxBufferBatches: 2, delay: "1 millis" })
      // nobody consumes b.rx
      for (let t = 0; t < 5; t++) {
        yield* link.a.tx([frame(t)])
        yield* advance(1)
      }
      expect(link.b.stats.rxFrames).toBe(2)
      expect(link.b.stats.rxDropped).toBe(3)
      expect(link.stats.aToB.rxDropped).toBe(3)
    }))

  it.scoped("caps: without TSO an oversize frame is dropped; with TSO a GSO frame passes with its meta", () =>
    Effect.gen(function* () {
      const plain = yield* SimLink.make({ seed: 1 })
      expect(plain.a.caps).toEqual({ ipMtu: 1500, rxOffload: false, txChecksumOffload: false, tso: false, maxTxFrame: 1514 })
      const big = new Uint8Array(20000)
      const meta = { flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_TCPV4, hdrLen: 54, gsoSize: 1448, csumStart: 34, csumOffset: 16 }
      yield* plain.a.tx([{ data: big, meta }])
      expect(plain.stats.aToB.oversize).toBe(1)
      expect(plain.a.stats.txDropped).toBe(1)

      const off = yield* SimLink.make({ seed: 1, mtu: 9000, rxOffload: true, txChecksumOffload: true, tso: true })
      expect(off.a.caps).toEqual({ ipMtu: 9000, rxOffload: true, txChecksumOffload: true, tso: true, maxTxFrame: 65549 })
      const got = yield* collect(off.b)
      yield* off.a.tx([{ data: big, meta }])
      yield* advance(1)
      expect(got.length).toBe(1)
      expect(got[0]!.frame.data.length).toBe(20000)
      expect(got[0]!.frame.meta).toEqual(meta)
    }))

  it.scoped("wire log records deliveries and renders a pcap", () =>
    Effect.gen(function* () {
      const link = yield* SimLink.make({ seed: 1, lossRate: 0.5, wireLogSize: 64 })
      yield* collect(link.b)
      yield* sendAll(link.a, 20)
      yield* advance(1)
      const entries = link.wire.entries()
      const delivered = entries.filter((e) => e.event === "deliver").length
      expect(delivered).toBe(link.stats.aToB.delivered)
      expect(entries.filter((e) => e.event === "lost").length).toBe(link.stats.aToB.lost)
      const pcap = link.wire.toPcap()
      expect(pcap.length).toBe(24 + delivered * (16 + 100))
    }))
})
