/**
 * SimLink: two NicShapes joined by an in-memory wire, for layer tests and netsim (style.md §2.7).
 *
 * Each direction models, per frame, in this order: oversize check (caps.maxTxFrame), loss
 * (`lossRate`), a bottleneck queue (`queueBytes`, tail drop) in front of a serializer
 * (`bandwidthBps`), corruption (`corruptRate`, one random byte flipped), propagation `delay` plus
 * uniform `jitter` in [0, jitter), duplication (`duplicateRate`) and reordering (`reorderRate`:
 * the frame is held back and delivered right after the next frame, or `reorderHoldMs` later if no
 * frame follows). Frames are copied on tx (meta kept), so the sender may reuse its buffers.
 *
 * All decisions are made synchronously in tx with a seeded PRNG (deterministic for a seed); one
 * delivery fiber per direction sleeps with Effect.sleep until the next arrival, so TestClock drives
 * every delay. Everything is bounded: the queue, the frames in flight (`maxInFlight`), the
 * receiver's buffer of batches (`rxBufferBatches`, then rx drops) and the wire log.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { makeNicStats, type NicCaps, type NicShape, type NicStats } from "./Nic.js"
import { mac, type MacAddress } from "../protocols/address.js"
import { MAX_GSO_FRAME, type Frame } from "./Frame.js"
import * as Pcap from "./Pcap.js"
import * as Rng from "./Rng.js"

export interface SimLinkOptions {
  /** PRNG seed (default 1). */
  readonly seed?: number
  readonly lossRate?: number
  readonly duplicateRate?: number
  readonly corruptRate?: number
  readonly reorderRate?: number
  /** How long a reordered frame waits for a successor before it is delivered anyway (default 10 ms). */
  readonly reorderHoldMs?: number
  /** One-way propagation delay (default 0). */
  readonly delay?: Duration.DurationInput
  /** Extra uniform random delay in [0, jitter) (default 0); can reorder frames by itself. */
  readonly jitter?: Duration.DurationInput
  /** Serialization rate in bit/s (default unlimited). */
  readonly bandwidthBps?: number
  /** Bottleneck queue in bytes in front of the serializer, tail drop (default 1 MiB; needs bandwidthBps). */
  readonly queueBytes?: number
  /** Frames accepted but not yet delivered, per direction (default 65536); beyond it, drop. */
  readonly maxInFlight?: number
  /** Batches a receiver buffers before rx drops (default 1024). */
  readonly rxBufferBatches?: number
  /** IP MTU of both ends (default 1500). */
  readonly mtu?: number
  readonly rxOffload?: boolean
  readonly txChecksumOffload?: boolean
  readonly tso?: boolean
  readonly macA?: MacAddress
  readonly macB?: MacAddress
  /** Entries kept in the wire log (default 1024; 0 = off). */
  readonly wireLogSize?: number
}

export interface DirectionStats {
  /** Frames offered to tx. */
  offered: number
  /** Frames put on the wire (after loss and queue drops; duplicates not included). */
  sent: number
  delivered: number
  lost: number
  queueDropped: number
  oversize: number
  duplicated: number
  corrupted: number
  reordered: number
  /** Delivered batches refused by the receiver's full buffer (frames). */
  rxDropped: number
}

export type WireEvent = "tx" | "lost" | "queueDrop" | "oversize" | "deliver" | "rxDrop"

export interface WireEntry {
  readonly atMs: number
  readonly dir: "a->b" | "b->a"
  readonly event: WireEvent
  readonly frame: Frame
}

export interface WireLog {
  /** The retained entries, oldest first (at most wireLogSize). */
  readonly entries: () => ReadonlyArray<WireEntry>
  /** Delivered frames as a pcap file image (for a failing test's artifacts). */
  readonly toPcap: () => Uint8Array
}

export interface SimLink {
  readonly a: NicShape
  readonly b: NicShape
  readonly stats: { readonly aToB: DirectionStats; readonly bToA: DirectionStats }
  readonly wire: WireLog
}

/**
 * Arrival times are fractional milliseconds; a sleep of (at - now) can wake one float ulp early, and
 * a sleep shorter than an ulp of `now` would not advance a TestClock at all. Frames due within this
 * tolerance are delivered.
 */
const EPSILON_MS = 1e-3

interface Pending {
  at: number
  readonly seq: number
  readonly frame: Frame
}

const newDirectionStats = (): DirectionStats => ({
  offered: 0,
  sent: 0,
  delivered: 0,
  lost: 0,
  queueDropped: 0,
  oversize: 0,
  duplicated: 0,
  corrupted: 0,
  reordered: 0,
  rxDropped: 0
})

const makeWireLog = (size: number) => {
  const ring: Array<WireEntry> = []
  let next = 0
  const add = (e: WireEntry): void => {
    if (size <= 0) return
    if (ring.length < size) ring.push(e)
    else ring[next] = e
    next = (next + 1) % size
  }
  const entries = (): ReadonlyArray<WireEntry> => (ring.length < size ? ring.slice() : [...ring.slice(next), ...ring.slice(0, next)])
  const toPcap = (): Uint8Array => {
    const parts = [Pcap.globalHeader()]
    for (const e of entries()) {
      if (e.event === "deliver") parts.push(Pcap.encode([e.frame], BigInt(Math.round(e.atMs * 1000)) * 1000n))
    }
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
    let o = 0
    for (const p of parts) {
      out.set(p, o)
      o += p.length
    }
    return out
  }
  return { add, log: { entries, toPcap } satisfies WireLog }
}

export const make = (opts: SimLinkOptions = {}): Effect.Effect<SimLink, never, Scope.Scope> =>
  Effect.gen(function* () {
    const mtu = opts.mtu ?? 1500
    const tso = opts.tso ?? false
    const caps: NicCaps = {
      ipMtu: mtu,
      rxOffload: opts.rxOffload ?? false,
      txChecksumOffload: opts.txChecksumOffload ?? false,
      tso,
      maxTxFrame: tso ? MAX_GSO_FRAME : 14 + mtu
    }
    const seed = opts.seed ?? 1
    const delayMs = Duration.toMillis(Duration.decode(opts.delay ?? 0))
    const jitterMs = Duration.toMillis(Duration.decode(opts.jitter ?? 0))
    const bandwidth = opts.bandwidthBps ?? 0
    const queueLimit = opts.queueBytes ?? 1 << 20
    const maxInFlight = opts.maxInFlight ?? 65536
    const holdMs = opts.reorderHoldMs ?? 10
    const wire = makeWireLog(opts.wireLogSize ?? 1024)

    const makeEnd = (name: string, macAddr: MacAddress) =>
      Effect.map(Queue.dropping<ReadonlyArray<Frame>>(opts.rxBufferBatches ?? 1024), (rxQ) => ({
        name,
        mac: macAddr,
        stats: makeNicStats(),
        rxQ
      }))
    const endA = yield* makeEnd("sim-a", opts.macA ?? mac(0x0200, 0x0000000a))
    const endB = yield* makeEnd("sim-b", opts.macB ?? mac(0x0200, 0x0000000b))

    const makeDirection = (
      label: "a->b" | "b->a",
      from: { readonly stats: NicStats },
      to: { readonly stats: NicStats; readonly rxQ: Queue.Queue<ReadonlyArray<Frame>> },
      rng: Rng.Rng
    ) =>
      Effect.gen(function* () {
        const stats = newDirectionStats()
        const wake = yield* Queue.sliding<void>(1)
        const pending: Array<Pending> = []
        let seq = 0
        let held: Pending | undefined
        let linkFreeAt = 0
        const serial: Array<{ doneAt: number; len: number }> = []
        let queuedBytes = 0

        const insert = (p: Pending): void => {
          let i = pending.length
          while (i > 0 && pending[i - 1]!.at > p.at) i--
          pending.splice(i, 0, p)
        }
        const schedule = (frame: Frame, at: number, reorder: boolean): void => {
          const p: Pending = { at, seq: seq++, frame }
          if (held !== undefined && held.at >= at) {
            // the held frame goes right after this one
            pending.splice(pending.indexOf(held), 1)
            insert(p)
            held.at = at
            insert(held)
            held = undefined
            return
          }
          if (reorder && held === undefined) {
            stats.reordered++
            p.at = at + holdMs
            held = p
          }
          insert(p)
        }
        const log = (atMs: number, event: WireEvent, frame: Frame) => wire.add({ atMs, dir: label, event, frame })

        const send = (frames: ReadonlyArray<Frame>, now: number): void => {
          while (serial.length > 0 && serial[0]!.doneAt <= now) queuedBytes -= serial.shift()!.len
          for (const f of frames) {
            const len = f.data.length
            stats.offered++
            if (len > caps.maxTxFrame) {
              stats.oversize++
              from.stats.txDropped++
              log(now, "oversize", f)
              continue
            }
            if (rng.chance(opts.lossRate ?? 0)) {
              stats.lost++
              from.stats.txDropped++
              log(now, "lost", f)
              continue
            }
            if (pending.length >= maxInFlight || (bandwidth > 0 && queuedBytes + len > queueLimit)) {
              stats.queueDropped++
              from.stats.txDropped++
              log(now, "queueDrop", f)
              continue
            }
            const copy: Frame = { data: f.data.slice(), meta: f.meta }
            if (rng.chance(opts.corruptRate ?? 0) && len > 0) {
              copy.data[rng.int(len)]! ^= 1 + rng.int(255)
              stats.corrupted++
            }
            let doneAt = now
            if (bandwidth > 0) {
              doneAt = Math.max(now, linkFreeAt) + (len * 8 * 1000) / bandwidth
              linkFreeAt = doneAt
              serial.push({ doneAt, len })
              queuedBytes += len
            }
            const at = doneAt + delayMs + (jitterMs > 0 ? rng.next() * jitterMs : 0)
            stats.sent++
            from.stats.txFrames++
            from.stats.txBytes += len
            log(now, "tx", copy)
            const dup = rng.chance(opts.duplicateRate ?? 0)
            const reorder = rng.chance(opts.reorderRate ?? 0)
            schedule(copy, at, reorder)
            if (dup) {
              stats.duplicated++
              schedule({ data: copy.data.slice(), meta: copy.meta }, at, false)
            }
          }
          Queue.unsafeOffer(wake, undefined)
        }

        const deliverDue = (now: number): void => {
          let k = 0
          while (k < pending.length && pending[k]!.at <= now + EPSILON_MS) k++
          if (k === 0) return
          const due = pending.splice(0, k)
          const batch = new Array<Frame>(k)
          let bytes = 0
          for (let i = 0; i < k; i++) {
            const p = due[i]!
            if (p === held) held = undefined
            batch[i] = p.frame
            bytes += p.frame.data.length
          }
          if (Queue.unsafeOffer(to.rxQ, batch)) {
            stats.delivered += k
            to.stats.rxFrames += k
            to.stats.rxBytes += bytes
            for (const f of batch) log(now, "deliver", f)
          } else {
            stats.rxDropped += k
            to.stats.rxDropped += k
            for (const f of batch) log(now, "rxDrop", f)
          }
        }

        const loop = Effect.gen(function* () {
          while (true) {
            if (pending.length === 0) {
              yield* Queue.take(wake)
              continue
            }
            const now = yield* Clock.currentTimeMillis
            const head = pending[0]!
            if (head.at > now + EPSILON_MS) {
              yield* Effect.raceFirst(Effect.sleep(Duration.millis(head.at - now)), Queue.take(wake))
              continue
            }
            deliverDue(now)
          }
        })
        yield* Effect.forkScoped(loop)
        return { stats, send }
      })

    const ab = yield* makeDirection("a->b", endA, endB, Rng.make(seed))
    const ba = yield* makeDirection("b->a", endB, endA, Rng.make((seed ^ 0x6a09e667) >>> 0))

    const shape = (
      end: { name: string; mac: MacAddress; stats: NicStats; rxQ: Queue.Queue<ReadonlyArray<Frame>> },
      dir: { send: (frames: ReadonlyArray<Frame>, now: number) => void }
    ): NicShape => ({
      name: end.name,
      mac: end.mac,
      caps,
      stats: end.stats,
      rx: Stream.fromQueue(end.rxQ),
      tx: (frames) => Effect.clockWith((c) => Effect.sync(() => dir.send(frames, c.unsafeCurrentTimeMillis())))
    })

    return {
      a: shape(endA, ab),
      b: shape(endB, ba),
      stats: { aToB: ab.stats, bToA: ba.stats },
      wire: wire.log
    }
  })
