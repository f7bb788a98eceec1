/**
 * FaultInjector: Nic -> Nic middleware that damages traffic on purpose, like smoltcp's
 * --drop-chance/--corrupt-chance/--size-limit, on rx and tx, with a seeded PRNG (Rng.ts) so a
 * seed always produces the same faults for the same traffic.
 *
 * Per frame, in order: size limit (drop frames longer than `sizeLimit`), drop (`dropRate`),
 * corrupt (`corruptRate`: a copy with one random byte XORed with a random non-zero value),
 * duplicate (`duplicateRate`: the frame is passed twice), reorder (`reorderRate`: the frame is held
 * back and released right after the next frame that passes; it waits for that next frame).
 * Corrupted and held frames are copies: received frames are borrowed from the TAP ring, and the
 * caller of tx may reuse its buffers. Every fault is counted in `counters`; drops are also counted
 * in the NicStats (rxDropped / txDropped) of the wrapped Nic, which the wrapper shares.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { Nic, wrap as wrapNic, type NicShape } from "./Nic.js"
import * as Cs from "../protocols/checksum.js"
import { PLAIN, VNET_F_NEEDS_CSUM, type Frame } from "./Frame.js"
import * as Rng from "./Rng.js"

export interface Faults {
  readonly dropRate?: number
  readonly corruptRate?: number
  readonly duplicateRate?: number
  readonly reorderRate?: number
  /** Frames longer than this many bytes are dropped. */
  readonly sizeLimit?: number
}

export interface FaultInjectorOptions extends Faults {
  readonly seed: number
  /** Which directions the faults apply to (default both). */
  readonly directions?: "both" | "rx" | "tx"
  /** Caller-owned counters (from makeCounters) to read the fault counts in tests. */
  readonly counters?: FaultCounters
}

export interface DirectionCounters {
  frames: number
  dropped: number
  oversize: number
  corrupted: number
  duplicated: number
  reordered: number
}

export interface FaultCounters {
  readonly rx: DirectionCounters
  readonly tx: DirectionCounters
}

const dirCounters = (): DirectionCounters => ({
  frames: 0,
  dropped: 0,
  oversize: 0,
  corrupted: 0,
  duplicated: 0,
  reordered: 0
})

export const makeCounters = (): FaultCounters => ({ rx: dirCounters(), tx: dirCounters() })

const copyFrame = (f: Frame): Frame => ({ data: f.data.slice(), meta: f.meta })

/**
 * Corrupt one byte the way a wire would: after the checksum is complete. A frame whose L4 checksum is still
 * partial (NEEDS_CSUM) gets it computed first; the offload flags are then cleared so the receiver verifies
 * (DATA_VALID would make it trust the damaged bytes). A GSO super-frame stands for many wire segments whose
 * checksums only the segmenter computes: it is dropped instead (returns undefined).
 */
const corruptFrame = (f0: Frame, rng: Rng.Rng): Frame | undefined => {
  const m = f0.meta
  if (m.gsoType !== 0) return undefined
  const f = copyFrame(f0)
  if ((m.flags & VNET_F_NEEDS_CSUM) !== 0 && m.csumStart + m.csumOffset + 2 <= f.data.length) {
    const at = m.csumStart + m.csumOffset
    const c = Cs.finish(Cs.sum(f.data, m.csumStart, f.data.length))
    f.data[at] = c >>> 8
    f.data[at + 1] = c & 0xff
  }
  const i = rng.int(f.data.length)
  f.data[i] = f.data[i]! ^ (1 + rng.int(255))
  return m.flags === 0 ? f : { data: f.data, meta: PLAIN }
}

/** One direction's fault state: a pure, synchronous batch transformer. */
export const makeDirection = (faults: Faults, rng: Rng.Rng, c: DirectionCounters) => {
  let held: Frame | undefined
  const dropRate = faults.dropRate ?? 0
  const corruptRate = faults.corruptRate ?? 0
  const duplicateRate = faults.duplicateRate ?? 0
  const reorderRate = faults.reorderRate ?? 0
  const sizeLimit = faults.sizeLimit ?? Infinity
  /** Returns the frames that pass, in their new order; the number dropped is in the counters. */
  return (frames: ReadonlyArray<Frame>): Array<Frame> => {
    const out: Array<Frame> = []
    for (const f0 of frames) {
      c.frames++
      let f = f0
      if (f.data.length > sizeLimit) {
        c.oversize++
        continue
      }
      if (rng.chance(dropRate)) {
        c.dropped++
        continue
      }
      if (rng.chance(corruptRate) && f.data.length > 0) {
        c.corrupted++
        const g = corruptFrame(f, rng)
        if (g === undefined) {
          c.dropped++
          continue
        }
        f = g
      }
      const copies = rng.chance(duplicateRate) ? 2 : 1
      if (copies === 2) c.duplicated++
      if (held !== undefined) {
        for (let i = 0; i < copies; i++) out.push(f)
        out.push(held)
        held = undefined
      } else if (rng.chance(reorderRate)) {
        c.reordered++
        held = f === f0 ? copyFrame(f) : f
        if (copies === 2) out.push(f) // the duplicate goes ahead, the original waits
      } else {
        for (let i = 0; i < copies; i++) out.push(f)
      }
    }
    return out
  }
}

/** Wraps `inner` with faults. The returned shape shares `inner.stats`. */
export const wrap = (inner: NicShape, opts: FaultInjectorOptions): NicShape => {
  const counters = opts.counters ?? makeCounters()
  const dirs = opts.directions ?? "both"
  // one generator per direction, so rx traffic does not shift the tx fault sequence
  const rxFaults = dirs === "tx" ? undefined : makeDirection(opts, Rng.make(opts.seed), counters.rx)
  const txFaults = dirs === "rx" ? undefined : makeDirection(opts, Rng.make(opts.seed ^ 0x5bd1e995), counters.tx)
  const stats = inner.stats
  const rx =
    rxFaults === undefined
      ? inner.rx
      : inner.rx.pipe(
          Stream.map((batch) => {
            const before = counters.rx.dropped + counters.rx.oversize
            const out = rxFaults(batch)
            stats.rxDropped += counters.rx.dropped + counters.rx.oversize - before
            return out
          }),
          Stream.filter((batch) => batch.length > 0)
        )
  const tx =
    txFaults === undefined
      ? inner.tx
      : (frames: ReadonlyArray<Frame>) =>
          Effect.suspend(() => {
            const before = counters.tx.dropped + counters.tx.oversize
            const out = txFaults(frames)
            stats.txDropped += counters.tx.dropped + counters.tx.oversize - before
            return out.length === 0 ? Effect.void : inner.tx(out)
          })
  return wrapNic(inner, { rx, tx }) // every frame passes through the faults
}

/** Middleware layer: needs a Nic, provides the same Nic with faults injected. */
export const layer = (opts: FaultInjectorOptions): Layer.Layer<Nic, never, Nic> =>
  Layer.effect(
    Nic,
    Effect.map(Nic, (inner) => wrap(inner, opts))
  )
