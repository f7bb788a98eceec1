/**
 * The Ethernet layer: the demux fiber over `Nic.rx` and the transmit queue.
 *
 * Per frame everything is plain synchronous code (design.md §2). The demux fiber takes one batch at a
 * time from the NIC stream, reads the Clock once, hands each frame to the handler registered for its
 * EtherType, then flushes whatever the handlers queued for sending as one `Nic.tx` batch and yields.
 * Frames queued outside a burst (timers, application writes) wake a small transmit fiber instead.
 * The transmit queue is bounded: past `txQueueLimit` frames, new frames are dropped and counted.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"
import { isMulticastMac, type MacAddress } from "../protocols/address.js"
import * as Eth from "../protocols/ethernet/wire.js"
import type { Frame } from "../nic/Frame.js"
import { countDrop, type DropCounts } from "./Counters.js"
import { Nic, type NicCaps, type NicShape } from "../nic/Nic.js"

export type FrameHandler = (frame: Frame, nowMs: number) => void

export interface EthernetStats {
  rxFrames: number
  rxBytes: number
  txFrames: number
  txBytes: number
  /** Frames dropped because the transmit queue was full. */
  txQueueDrops: number
  /** Frames with no handler for their EtherType (IPv6, VLAN, ...). */
  rxUnknownType: number
  /** Unicast frames for another MAC. */
  rxNotForUs: number
  /** Handler threw: a bug, never a peer's fault; counted so the stack survives it. */
  rxHandlerErrors: number
  readonly drops: DropCounts
}

export interface EthernetShape {
  readonly mac: MacAddress
  readonly caps: NicCaps
  readonly nic: NicShape
  /** Time of the current burst, or of the last Clock read. */
  readonly nowMs: () => number
  readonly register: (etherType: number, handler: FrameHandler) => void
  /** Called after each receive burst, before its transmissions are flushed (e.g. to coalesce ACKs). */
  readonly onBurstEnd: (f: (nowMs: number) => void) => void
  /**
   * A buffer of exactly `len` bytes for an outgoing frame, from a bounded pool of recycled buffers (NOT
   * zeroed: write every byte). After the frame is sent through `send`, the buffer goes back to the pool.
   */
  readonly allocTx: (len: number) => Uint8Array
  /** Queue a frame for transmission. The frame's bytes must not be reused by the caller afterwards. */
  readonly send: (frame: Frame) => void
  /** Transmit everything queued now. */
  readonly flush: Effect.Effect<void>
  readonly stats: EthernetStats
}

export class Ethernet extends Context.Tag("@miniperf/Ethernet")<Ethernet, EthernetShape>() {}

export interface EthernetOptions {
  readonly txQueueLimit?: number
}

export const make = (opts: EthernetOptions = {}) =>
  Effect.gen(function* () {
    const nic = yield* Nic
    const txLimit = opts.txQueueLimit ?? 4096
    const handlers = new Map<number, FrameHandler>()
    const burstEnd: Array<(nowMs: number) => void> = []
    const stats: EthernetStats = {
      rxFrames: 0,
      rxBytes: 0,
      txFrames: 0,
      txBytes: 0,
      txQueueDrops: 0,
      rxUnknownType: 0,
      rxNotForUs: 0,
      rxHandlerErrors: 0,
      drops: {}
    }
    let now = yield* Clock.currentTimeMillis

    // TX buffer pool: size classes, each a bounded free list of ArrayBuffers. A frame built in a pooled
    // buffer returns it after Nic.tx (which copies or writes synchronously, per the Nic contract).
    const CLASS_SIZE = [128, 2048, 16384, 65600] as const
    const CLASS_KEEP = [4096, 2048, 256, 256] as const
    const free: Array<Array<ArrayBuffer>> = CLASS_SIZE.map(() => [])
    const owned = new WeakMap<ArrayBuffer, number>()
    const allocTx = (len: number): Uint8Array => {
      let c = 0
      while (c < CLASS_SIZE.length && CLASS_SIZE[c]! < len) c++
      if (c === CLASS_SIZE.length) return new Uint8Array(len)
      const ab = free[c]!.pop() ?? new ArrayBuffer(CLASS_SIZE[c]!)
      owned.set(ab, c)
      return new Uint8Array(ab, 0, len)
    }
    const recycle = (batch: ReadonlyArray<Frame>): void => {
      for (let i = 0; i < batch.length; i++) {
        const ab = batch[i]!.data.buffer as ArrayBuffer
        const c = owned.get(ab)
        if (c === undefined) continue
        owned.delete(ab)
        const list = free[c]!
        if (list.length < CLASS_KEEP[c]!) list.push(ab)
      }
    }
    let txq: Array<Frame> = []
    let inBurst = false
    const wake = yield* Queue.sliding<void>(1)

    const send = (frame: Frame): void => {
      if (txq.length >= txLimit) {
        stats.txQueueDrops++
        return
      }
      txq.push(frame)
      if (!inBurst && txq.length === 1) wake.unsafeOffer(undefined)
    }

    /** Detach everything queued for sending, counted. */
    const takeTx = (): Array<Frame> => {
      const batch = txq
      txq = []
      for (let i = 0; i < batch.length; i++) {
        stats.txFrames++
        stats.txBytes += batch[i]!.data.length
      }
      return batch
    }

    const flush: Effect.Effect<void> = Effect.suspend(() => {
      if (txq.length === 0) return Effect.void
      const batch = takeTx()
      return nic.tx(batch).pipe(
        Effect.catchAll((e) => Effect.logWarning(`tx failed: ${e.message}`)),
        Effect.zipRight(Effect.sync(() => recycle(batch)))
      )
    })

    const input = (frame: Frame): void => {
      const b = frame.data
      stats.rxFrames++
      stats.rxBytes += b.length
      if (!Eth.checkLen(b)) {
        countDrop(stats.drops, "Truncated")
        return
      }
      const dst = Eth.dst(b)
      if (dst !== nic.mac && !isMulticastMac(dst)) {
        stats.rxNotForUs++
        return
      }
      // A group address never sends (IEEE 802: the I/G bit is for destinations). Such a frame is forged;
      // whatever it carries, an answer or a learnt neighbour would point at a group. Counted as
      // link.drops.MartianSource.
      if (isMulticastMac(Eth.src(b))) {
        countDrop(stats.drops, "MartianSource")
        return
      }
      const h = handlers.get(Eth.etherType(b))
      if (h === undefined) {
        stats.rxUnknownType++
        return
      }
      try {
        h(frame, now)
      } catch (e) {
        stats.rxHandlerErrors++
        lastHandlerError = e
      }
    }
    let lastHandlerError: unknown = undefined

    /** One receive burst: every frame to its handler, then the burst-end work (held ACKs) whatever happened. */
    const burst = (batch: ReadonlyArray<Frame>, nowMs: number): void => {
      now = nowMs
      inBurst = true
      try {
        for (let i = 0; i < batch.length; i++) input(batch[i]!)
      } finally {
        for (let i = 0; i < burstEnd.length; i++) {
          try {
            burstEnd[i]!(now)
          } catch (e) {
            stats.rxHandlerErrors++
            lastHandlerError = e
          }
        }
        inBurst = false
      }
    }

    const processBatch = (batch: ReadonlyArray<Frame>) =>
      Effect.flatMap(Clock.currentTimeMillis, (t) => {
        burst(batch, t)
        const report =
          lastHandlerError === undefined
            ? Effect.void
            : Effect.logError("frame handler failed (frame dropped)", lastHandlerError).pipe(
                Effect.tap(() => Effect.sync(() => (lastHandlerError = undefined)))
              )
        return Effect.zipRight(report, Effect.zipRight(flush, Effect.yieldNow()))
      })

    const streamRx = Stream.runForEach(nic.rx, processBatch).pipe(
      Effect.catchAll((e) => Effect.logError(`NIC receive stopped: ${e.message}`)),
      Effect.forkScoped
    )
    if (nic.direct !== undefined) {
      // The NIC's fast path (the TAP): each wake-up's batch is demuxed and its replies written synchronously
      // inside the NIC's callback, the same work as processBatch without the fiber hop per wake-up.
      const direct = nic.direct
      const clock = yield* Effect.clock
      const runtime = yield* Effect.runtime<never>()
      const report = (message: string, cause: unknown): void =>
        void Runtime.runFork(runtime)(Effect.logError(message, cause))
      const started = yield* Effect.either(direct.rx(
        (batch) => {
          burst(batch, clock.unsafeCurrentTimeMillis())
          if (txq.length > 0) {
            const out = takeTx()
            try {
              direct.tx(out)
            } catch (e) {
              report("tx failed", e)
            }
            recycle(out)
          }
          if (lastHandlerError !== undefined) {
            report("frame handler failed (frame dropped)", lastHandlerError)
            lastHandlerError = undefined
          }
        },
        (e) => report(`NIC receive stopped: ${e.message}`, e)
      ))
      if (started._tag === "Left") {
        yield* Effect.logWarning(`NIC fast path unavailable (${started.left.message}); using its stream`)
        yield* streamRx
      }
    } else {
      yield* streamRx
    }
    yield* Queue.take(wake).pipe(
      Effect.zipRight(Effect.flatMap(Clock.currentTimeMillis, (t) => Effect.sync(() => (now = Math.max(now, t))))),
      Effect.zipRight(flush),
      Effect.forever,
      Effect.forkScoped
    )

    return Ethernet.of({
      mac: nic.mac,
      caps: nic.caps,
      nic,
      nowMs: () => now,
      register: (type, h) => void handlers.set(type, h),
      onBurstEnd: (f) => void burstEnd.push(f),
      allocTx,
      send,
      flush,
      stats
    })
  })

export const layer = (opts: EthernetOptions = {}): Layer.Layer<Ethernet, never, Nic> => Layer.scoped(Ethernet, make(opts))
