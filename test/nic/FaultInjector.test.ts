/**
 * FaultInjector over an in-memory Nic: every fault is applied, counted and deterministic for a seed,
 * on tx and on rx; copies protect the caller's (and the ring's) buffers.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { Nic } from "../../src/nic/Nic.js"
import { PLAIN, VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, plainFrame, type Frame } from "../../src/nic/Frame.js"
import * as Rng from "../../src/nic/Rng.js"
import * as Cs from "../../src/protocols/checksum.js"
import * as Ip from "../../src/protocols/ipv4/wire.js"
import { ipFrame, udpDatagram } from "../support/frames.js"
import * as FaultInjector from "../../src/nic/FaultInjector.js"
import { makeChannel } from "../support/channelNic.js"

const frame = (seq: number, len = 64): Frame => {
  const b = new Uint8Array(len)
  b[0] = seq >>> 8
  b[1] = seq & 0xff
  for (let i = 2; i < len; i++) b[i] = i & 0xff
  return plainFrame(b)
}
const seqOf = (f: Frame): number => (f.data[0]! << 8) | f.data[1]!
const frames = (n: number, len?: number) => Array.from({ length: n }, (_, i) => frame(i, len))

const txThrough = (opts: FaultInjector.FaultInjectorOptions, input: ReadonlyArray<Frame>) =>
  Effect.gen(function* () {
    const fake = yield* makeChannel()
    const counters = opts.counters ?? FaultInjector.makeCounters()
    const nic = FaultInjector.wrap(fake.nic, { ...opts, counters })
    for (let i = 0; i < input.length; i += 16) yield* nic.tx(input.slice(i, i + 16))
    return { sent: fake.sent, counters, stats: fake.nic.stats }
  })

describe("FaultInjector", () => {
  it.effect("drops about dropRate of tx frames, counts them, and is deterministic for a seed", () =>
    Effect.gen(function* () {
      const input = frames(2000)
      const one = yield* txThrough({ seed: 7, dropRate: 0.25 }, input)
      const two = yield* txThrough({ seed: 7, dropRate: 0.25 }, input)
      expect(one.counters.tx.dropped).toBeGreaterThan(400)
      expect(one.counters.tx.dropped).toBeLessThan(600)
      expect(one.sent.length + one.counters.tx.dropped).toBe(2000)
      expect(one.stats.txDropped).toBe(one.counters.tx.dropped)
      expect(one.counters.tx.frames).toBe(2000)
      expect(two.sent.map(seqOf)).toEqual(one.sent.map(seqOf))
    }))

  it.effect("size limit drops longer frames", () =>
    Effect.gen(function* () {
      const r = yield* txThrough({ seed: 1, sizeLimit: 100 }, [frame(0, 60), frame(1, 101), frame(2, 100), frame(3, 1500)])
      expect(r.sent.map(seqOf)).toEqual([0, 2])
      expect(r.counters.tx.oversize).toBe(2)
      expect(r.stats.txDropped).toBe(2)
    }))

  it.effect("corrupts a copy (one byte), never the caller's buffer", () =>
    Effect.gen(function* () {
      const input = frames(500)
      const r = yield* txThrough({ seed: 3, corruptRate: 0.2 }, input)
      expect(r.sent.length).toBe(500)
      let changed = 0
      for (const [i, f] of r.sent.entries()) {
        const orig = frame(i)
        expect(input[i]!.data).toEqual(orig.data) // untouched
        let diff = 0
        for (let k = 0; k < orig.data.length; k++) if (orig.data[k] !== f.data[k]) diff++
        expect(diff).toBeLessThanOrEqual(1)
        if (diff === 1) {
          changed++
          expect(f.data).not.toBe(input[i]!.data)
        }
      }
      expect(r.counters.tx.corrupted).toBeGreaterThan(60)
      expect(changed).toBe(r.counters.tx.corrupted)
    }))

  it.effect("duplicates frames", () =>
    Effect.gen(function* () {
      const r = yield* txThrough({ seed: 4, duplicateRate: 0.1 }, frames(1000))
      expect(r.counters.tx.duplicated).toBeGreaterThan(50)
      expect(r.sent.length).toBe(1000 + r.counters.tx.duplicated)
    }))

  it.effect("reorders: a held frame is released right after the next one", () =>
    Effect.gen(function* () {
      const r = yield* txThrough({ seed: 5, reorderRate: 0.1 }, frames(1000))
      const seqs = r.sent.map(seqOf)
      const held = r.counters.tx.reordered
      expect(held).toBeGreaterThan(50)
      // the last frame may still be held; everything else arrived exactly once
      expect(seqs.length === 1000 || seqs.length === 999).toBe(true)
      expect(new Set(seqs).size).toBe(seqs.length)
      let swaps = 0
      for (let i = 1; i < seqs.length; i++) {
        if (seqs[i]! < seqs[i - 1]!) {
          swaps++
          expect(seqs[i - 1]! - seqs[i]!).toBe(1)
        }
      }
      expect(swaps).toBe(seqs.length === 1000 ? held : held - 1)
    }))

  it.effect("a held tx frame is a copy: reusing the caller's buffer does not change it", () =>
    Effect.gen(function* () {
      const fake = yield* makeChannel()
      const nic = FaultInjector.wrap(fake.nic, { seed: 1, reorderRate: 1 })
      const buf = frame(1)
      yield* nic.tx([buf])
      buf.data.fill(0)
      yield* nic.tx([frame(2)])
      expect(fake.sent.map(seqOf)).toEqual([2, 1])
    }))

  it.scoped("applies to rx too (directions), counting drops in rxDropped", () =>
    Effect.gen(function* () {
      const fake = yield* makeChannel()
      const counters = FaultInjector.makeCounters()
      const nic = FaultInjector.wrap(fake.nic, { seed: 9, dropRate: 0.5, directions: "rx", counters })
      const input = frames(1000)
      for (let i = 0; i < 1000; i += 10) yield* fake.inject(input.slice(i, i + 10))
      const got: Array<Frame> = []
      yield* Effect.forkScoped(Stream.runForEach(nic.rx, (batch) => Effect.sync(() => got.push(...batch))))
      yield* Effect.repeatN(Effect.yieldNow(), 50)
      expect(counters.rx.frames).toBe(1000)
      expect(counters.rx.dropped).toBeGreaterThan(400)
      expect(counters.rx.dropped).toBeLessThan(600)
      expect(got.length).toBe(1000 - counters.rx.dropped)
      expect(fake.nic.stats.rxDropped).toBe(counters.rx.dropped)
      yield* nic.tx([frame(1)])
      expect(fake.sent.length).toBe(1) // tx untouched with directions: "rx"
      expect(counters.tx.frames).toBe(0)
    }))

  it.effect("the layer form wraps the Nic service", () =>
    Effect.gen(function* () {
      const fake = yield* makeChannel()
      const counters = FaultInjector.makeCounters()
      const layer = FaultInjector.layer({ seed: 1, dropRate: 1, counters }).pipe(Layer.provide(Layer.succeed(Nic, fake.nic)))
      yield* Effect.flatMap(Nic, (nic) => nic.tx(frames(5))).pipe(Effect.provide(layer))
      expect(fake.sent.length).toBe(0)
      expect(counters.tx.dropped).toBe(5)
      expect(fake.nic.stats.txDropped).toBe(5)
    }))
})

describe("FaultInjector: corrupting offloaded frames like a wire would", () => {
  const udpFrame = (): Uint8Array => {
    const src = 0xc6336401
    const dst = 0xc6336402
    const l4 = udpDatagram(src, dst, 4000, 5001, new Uint8Array(200).map((_, i) => i))
    return ipFrame(0x020000000001 as never, 0x020000000002 as never, src, dst, Ip.PROTO_UDP, l4)
  }
  const verifiesUdp = (b: Uint8Array): boolean => {
    const ip = b.subarray(14)
    const len = ip.length - 20
    return Cs.verifies(Cs.sum(ip, 20, ip.length, Cs.pseudoV4(0xc6336401, 0xc6336402, Ip.PROTO_UDP, len)))
  }
  const corruptAll = (f: Frame): Array<Frame> => {
    const c = FaultInjector.makeCounters().rx
    return FaultInjector.makeDirection({ corruptRate: 1 }, Rng.make(7), c)([f])
  }

  it("a NEEDS_CSUM frame gets its checksum completed, then a flipped byte, then no offload flags: the receiver detects it", () => {
    const b = udpFrame()
    expect(verifiesUdp(b)).toBe(true)
    // make it partial as a local sender with checksum offload would: the field holds the folded pseudo-header sum
    const partial = b.slice()
    const ip = partial.subarray(14)
    const pseudo = Cs.fold(Cs.pseudoV4(0xc6336401, 0xc6336402, Ip.PROTO_UDP, ip.length - 20))
    partial[14 + 20 + 6] = pseudo >>> 8
    partial[14 + 20 + 7] = pseudo & 0xff
    const meta = { flags: VNET_F_NEEDS_CSUM, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 34, csumOffset: 6 }
    const out = corruptAll({ data: partial, meta })
    expect(out).toHaveLength(1)
    expect(out[0]!.meta.flags).toBe(0)
    expect(out[0]!.data).not.toEqual(b)
    // exactly one byte differs from the fully checksummed original, so the checksum no longer verifies
    let diff = 0
    for (let i = 0; i < b.length; i++) if (out[0]!.data[i] !== b[i]) diff++
    expect(diff).toBe(1)
    expect(partial[14 + 20 + 6]).toBe(pseudo >>> 8) // the caller's buffer is untouched
  })

  it("a DATA_VALID frame loses the flag, so the receiver checks the damaged bytes", () => {
    const out = corruptAll({ data: udpFrame(), meta: { ...PLAIN, flags: VNET_F_DATA_VALID } })
    expect(out).toHaveLength(1)
    expect(out[0]!.meta.flags).toBe(0)
  })

  it("a GSO super-frame that would be corrupted is dropped (its segments' checksums are the segmenter's)", () => {
    const meta = { flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_TCPV4, hdrLen: 66, gsoSize: 1448, csumStart: 34, csumOffset: 16 }
    const c = FaultInjector.makeCounters().rx
    const out = FaultInjector.makeDirection({ corruptRate: 1 }, Rng.make(7), c)([{ data: new Uint8Array(20000), meta }])
    expect(out).toHaveLength(0)
    expect(c.dropped).toBe(1)
    expect(c.corrupted).toBe(1)
  })
})
