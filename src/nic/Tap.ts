/**
 * Tap: the Nic over a Linux TAP device, through the native addon (native/tap.c, tap-addon.ts).
 *
 * - `make(opts)` opens the device in acquireRelease (created by name, or attached to a persistent
 *   TAP the user owns) and returns a NicShape; `layer(opts)` provides it as the `Nic` service.
 * - RX: while `rx` is being consumed, a uv_poll drains up to `rxBatch` frames per wake into a ring
 *   allocated once and calls JS once per batch. Each batch becomes ONE stream element (an array of
 *   Frame views into the ring) pushed through `Stream.asyncPush` with a bounded "dropping" buffer
 *   of `rxBufferBatches` batches. A batch refused by the full buffer is counted in stats.rxDropped
 *   and its ring slots are reused at once. Frames are borrowed: the ring holds
 *   (2 * rxBufferBatches + 2) batches, enough for a full buffer plus a chunk of the same size being
 *   consumed plus the batch being read, so no queued or in-use frame is overwritten. Keep bytes
 *   longer than that by copying them.
 * - TX: one native call per batch (one write()/writev() per frame). A full kernel queue drops and
 *   counts (stats.txDropped), it never fails the effect.
 * - Offloads: with `offload`, the TAP gets IFF_VNET_HDR + TUNSETOFFLOAD(CSUM|TSO4|TSO6); the caps
 *   say true only when the kernel accepted it. Frames then carry virtio-net meta (Frame.ts).
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Nic, NicError, makeNicStats, type NicCaps, type NicDirect, type NicShape, type SynFilter } from "./Nic.js"
import type { MacAddress } from "../protocols/address.js"
import { MAX_GSO_FRAME, PLAIN, VNET_HDR_LEN, type Frame } from "./Frame.js"
import * as Addon from "./tap-addon.js"

export interface TapOptions {
  /** Interface name (at most 15 bytes). "" lets the kernel pick tapN. */
  readonly name: string
  /** Our MAC on this link (the kernel side of the TAP has its own). */
  readonly mac: MacAddress
  /** IP MTU, default 1500. Configure the kernel side of the TAP to match. */
  readonly mtu?: number
  /** Ask for a virtio-net header plus checksum/TSO offloads. Default false. */
  readonly offload?: boolean
  /** Use a virtio-net header even without offloads (default: same as `offload`). */
  readonly vnetHdr?: boolean
  /** Frames per RX wake-up (default 64, or 16 with offload since frames can be 64 KiB). */
  readonly rxBatch?: number
  /** Batches the RX stream buffers before dropping (default 4). */
  readonly rxBufferBatches?: number
  /**
   * Adaptive busy polling: after a frame arrives, keep the event loop from sleeping until no frame has come for
   * this many microseconds (0, the default here, turns it off). Saves the thread's sleep and wake-up per frame,
   * which is most of a TAP round trip on a VM, at the price of one busy core while traffic keeps coming.
   */
  readonly busyPollUs?: number
  /** Device node (default /dev/net/tun). */
  readonly devicePath?: string
  /**
   * The kernel's queue of frames toward us (the device's txqueuelen), raised to at least this when we may
   * (default 16384; the kernel's default is 1000; 0 leaves it alone). It absorbs the moments the reader is
   * busy elsewhere or waits for a core (a collection, a timer run, a flooder on the other core of a small
   * machine), which at a SYN flood's onset, before the SYN filter is attached, otherwise tail-drop other
   * flows. Only a flood's onset fills it: once the filter is on, the kernel drops the flood before queueing.
   */
  readonly txQueueLen?: number
}

const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to

/** Maps an addon open() failure to the NicError reason (ENOENT -> NoDevice, EPERM -> Permission). */
export const openError = (name: string, e: unknown): NicError => {
  const code = Addon.isAddonError(e) ? e.code : "EUNKNOWN"
  const reason =
    code === "ENOENT" || code === "ENODEV" || code === "ENXIO"
      ? "NoDevice"
      : code === "EPERM" || code === "EACCES"
        ? "Permission"
        : "Open"
  const detail = e instanceof Error ? e.message : String(e)
  return new NicError({ reason, message: `cannot open TAP "${name}": ${detail}`, cause: e })
}

/** Opens the TAP and returns its NicShape; the device is closed when the scope closes. */
export const make = (opts: TapOptions): Effect.Effect<NicShape, NicError, Scope.Scope> =>
  Effect.gen(function* () {
    const mtu = opts.mtu ?? 1500
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65521) {
      return yield* Effect.fail(new NicError({ reason: "Open", message: `invalid MTU ${mtu} (68..65521)` }))
    }
    const wantOffload = opts.offload ?? false
    const wantVnet = opts.vnetHdr ?? wantOffload
    const addon = yield* Effect.try({ try: () => Addon.load(), catch: (e) => openError(opts.name, e) })
    const dev: DeviceState = { closed: false, rxHandle: undefined }
    const opened = yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          addon.open(opts.name, {
            vnetHdr: wantVnet || wantOffload,
            offload: wantOffload,
            txQueueLen: opts.txQueueLen ?? 16384,
            ...(opts.devicePath !== undefined ? { path: opts.devicePath } : {})
          }),
        catch: (e) => openError(opts.name, e)
      }),
      (o) =>
        Effect.sync(() => {
          dev.closed = true
          if (dev.rxHandle !== undefined) {
            addon.stopRx(dev.rxHandle)
            dev.rxHandle = undefined
          }
          addon.close(o.fd)
        })
    )
    return yield* Effect.try({
      try: () => makeShape(addon, opened, opts, mtu, dev),
      catch: (e) => new NicError({ reason: "Open", message: `TAP ${opened.name}: ${String(e)}`, cause: e })
    })
  })

/** Per-device state shared by make's finalizer and the shape. */
interface DeviceState {
  closed: boolean
  rxHandle: Addon.RxHandle | undefined
}

const makeShape = (
  addon: Addon.TapAddon,
  opened: Addon.OpenResult,
  opts: TapOptions,
  mtu: number,
  dev: DeviceState
): NicShape => {
  const fd = opened.fd
  const vnet = opened.vnetHdr
  const offload = opened.offload
  const stats = makeNicStats()
  const caps: NicCaps = {
    ipMtu: mtu,
    rxOffload: offload,
    txChecksumOffload: offload,
    tso: offload,
    maxTxFrame: offload ? MAX_GSO_FRAME : 14 + mtu
  }
  const maxBatch = Math.max(1, Math.min(1024, opts.rxBatch ?? (offload ? 16 : 64)))
  const bufferBatches = Math.max(1, Math.min(256, opts.rxBufferBatches ?? 4))
  const busyPollUs = Math.max(0, Math.min(1_000_000, Math.floor(opts.busyPollUs ?? 0)))
  const frameMax = offload ? MAX_GSO_FRAME : 14 + 4 + mtu // + 4: a VLAN tag
  const slotBytes = roundUp(frameMax + (vnet ? VNET_HDR_LEN : 0), 64)
  const slots = (2 * bufferBatches + 2) * maxBatch
  const ringBytes = slots * slotBytes
  if (ringBytes > 0x7fffffff) throw new RangeError("TAP RX ring larger than 2 GiB: lower rxBatch or rxBufferBatches")

  const closedError = new NicError({ reason: "Closed", message: `TAP ${opened.name} is closed` })

  /**
   * Start the addon's RX for the scope: each wake-up's frames become one batch of Frame records (views into the
   * ring) handed to `deliver`; `deliver` returns false when it refused the batch (then its frames are dropped,
   * counted, and their ring slots reused at once). `onError` gets a read failure.
   */
  const startRx = (deliver: (batch: ReadonlyArray<Frame>) => boolean, onError: (e: NicError) => void) =>
    Effect.acquireRelease(
      Effect.suspend(() => {
        if (dev.closed) return Effect.fail(closedError)
        if (dev.rxHandle !== undefined) {
          return Effect.fail(new NicError({ reason: "Read", message: `TAP ${opened.name}: rx is already being consumed` }))
        }
        return Effect.try({
          try: () => {
            let ring = new Uint8Array(0)
            const onBatch = (count: number, meta: Int32Array): boolean => {
              if (count < 0) {
                onError(new NicError({ reason: "Read", message: `TAP ${opened.name}: read failed (errno ${-count})` }))
                return false
              }
              const batch = new Array<Frame>(count)
              let bytes = 0
              for (let i = 0, j = 0; i < count; i++, j += Addon.META_STRIDE) {
                const off = meta[j]!
                const len = meta[j + 1]!
                bytes += len
                const data = ring.subarray(off, off + len)
                const flags = meta[j + 2]!
                const gsoType = meta[j + 3]!
                batch[i] =
                  (flags | gsoType) === 0
                    ? { data, meta: PLAIN }
                    : {
                        data,
                        meta: {
                          flags,
                          gsoType,
                          hdrLen: meta[j + 4]!,
                          gsoSize: meta[j + 5]!,
                          csumStart: meta[j + 6]!,
                          csumOffset: meta[j + 7]!
                        }
                      }
              }
              stats.rxFrames += count
              stats.rxBytes += bytes
              if (!deliver(batch)) {
                stats.rxFrames -= count
                stats.rxBytes -= bytes
                stats.rxDropped += count
                return false
              }
              return true
            }
            const started = addon.startRx(fd, vnet, ringBytes, slotBytes, maxBatch, onBatch, busyPollUs)
            ring = new Uint8Array(started.ring)
            dev.rxHandle = started.handle
            return started.handle
          },
          catch: (e) =>
            new NicError({
              reason: "Read",
              message: `TAP ${opened.name}: cannot start RX: ${e instanceof Error ? e.message : String(e)}`,
              cause: e
            })
        })
      }),
      (handle) =>
        Effect.sync(() => {
          if (dev.rxHandle === handle) {
            addon.stopRx(handle)
            dev.rxHandle = undefined
          }
        })
    )

  const rx: Stream.Stream<ReadonlyArray<Frame>, NicError> = Stream.asyncPush<ReadonlyArray<Frame>, NicError>(
    (emit) => startRx((batch) => emit.single(batch), (e) => void emit.fail(e)),
    { bufferSize: bufferBatches, strategy: "dropping" }
  )

  // TX scratch, reused across calls (bounded by the largest batch seen).
  let txData: Array<Uint8Array> = []
  let txMeta = new Int32Array(64 * Addon.TX_META_STRIDE)
  const txOut = new Int32Array(2)

  /** Writes the batch before returning; drops (counted) when the kernel side is down or its queue is full. */
  const txSync = (frames: ReadonlyArray<Frame>): void => {
    if (dev.closed) throw closedError
    const n = frames.length
    if (n === 0) return
    if (txData.length < n) txData = new Array<Uint8Array>(n)
    let meta: Int32Array | null = null
    if (vnet) {
      if (txMeta.length < n * Addon.TX_META_STRIDE) txMeta = new Int32Array(n * Addon.TX_META_STRIDE)
      meta = txMeta
    }
    for (let i = 0, j = 0; i < n; i++, j += Addon.TX_META_STRIDE) {
      const f = frames[i]!
      txData[i] = f.data
      if (meta !== null) {
        const m = f.meta
        meta[j] = m.flags
        meta[j + 1] = m.gsoType
        meta[j + 2] = m.hdrLen
        meta[j + 3] = m.gsoSize
        meta[j + 4] = m.csumStart
        meta[j + 5] = m.csumOffset
      }
    }
    try {
      addon.writeBatch(fd, vnet, txData, n, meta, caps.maxTxFrame, txOut)
    } catch (e) {
      // EIO: the kernel side of the TAP is down (no carrier yet). A real NIC drops then; so do we.
      if (Addon.isAddonError(e) && e.code === "EIO") {
        stats.txDropped += n
        return
      }
      throw new NicError({
        reason: "Write",
        message: `TAP ${opened.name}: write failed: ${e instanceof Error ? e.message : String(e)}`,
        cause: e
      })
    }
    const written = txOut[0]!
    stats.txFrames += written
    stats.txBytes += txOut[1]!
    stats.txDropped += n - written
  }

  const tx = (frames: ReadonlyArray<Frame>): Effect.Effect<void, NicError> =>
    Effect.try({ try: () => txSync(frames), catch: (e) => (e instanceof NicError ? e : new NicError({ reason: "Write", message: String(e), cause: e })) })

  const direct: NicDirect = {
    rx: (handler, onError) =>
      Effect.asVoid(
        startRx((batch) => {
          handler(batch)
          return true
        }, onError)
      ),
    tx: txSync
  }

  const filterSources = new Uint32Array(SYN_FILTER_MAX_SOURCES)
  // (an addon built before setSynFilter existed offers none)
  const synFilter: SynFilter | undefined = typeof addon.setSynFilter !== "function" ? undefined : {
    keepShift: SYN_FILTER_KEEP_SHIFT,
    maxSources: SYN_FILTER_MAX_SOURCES,
    set: (sources, allLevel) => {
      if (dev.closed) return false
      const n = Math.min(sources.length, SYN_FILTER_MAX_SOURCES)
      for (let i = 0; i < n; i++) filterSources[i] = sources[i]! >>> 0
      try {
        return addon.setSynFilter(fd, filterSources, n, SYN_FILTER_KEEP_SHIFT, Math.max(0, Math.min(64, allLevel | 0)))
      } catch (e) {
        if (Addon.isAddonError(e)) return false // the device is gone: nothing to filter
        throw e
      }
    }
  }

  return { name: opened.name, mac: opts.mac, caps, rx, tx, stats, direct, synFilter }
}

/** The TAP's SYN filter (tap.c setSynFilter): a listed source's bare SYNs pass one in 64; at most 64 sources. */
const SYN_FILTER_KEEP_SHIFT = 6
const SYN_FILTER_MAX_SOURCES = 64

/** The Nic service over a TAP device. */
export const layer = (opts: TapOptions): Layer.Layer<Nic, NicError> => Layer.scoped(Nic, make(opts))
