/**
 * The link as a swappable service (style.md rule 4). A TAP device, a simulated link, or a middleware
 * (pcap writer, fault injector) wrapping any of them: the stack above cannot tell which it has.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { MacAddress } from "../protocols/address.js"
import type { Frame } from "./Frame.js"

export class NicError extends Data.TaggedError("NicError")<{
  readonly reason: "Open" | "Permission" | "NoDevice" | "Read" | "Write" | "Closed"
  readonly message: string
  readonly cause?: unknown
}> {}

export interface NicCaps {
  /** IP MTU (not the frame size): 1500 on a default TAP. */
  readonly ipMtu: number
  /** Received frames may carry virtio-net metadata (NEEDS_CSUM, DATA_VALID, GSO super-frames). */
  readonly rxOffload: boolean
  /** Transmitted frames may leave the L4 checksum partial, with NEEDS_CSUM in their meta. */
  readonly txChecksumOffload: boolean
  /** Transmitted TCP frames may be GSO super-frames up to `maxTxFrame` bytes, segmented by the peer. */
  readonly tso: boolean
  /** Largest frame `tx` accepts, Ethernet header included. */
  readonly maxTxFrame: number
}

/** Plain mutable counters, bumped per frame on the hot path (no Effect per frame). */
export interface NicStats {
  rxFrames: number
  rxBytes: number
  /** Frames lost before the stack saw them: ring or stream buffer full, or dropped by a fault injector. */
  rxDropped: number
  txFrames: number
  txBytes: number
  /** Frames the link refused or lost (full kernel queue, simulated loss, fault injection). */
  txDropped: number
}

export const makeNicStats = (): NicStats => ({ rxFrames: 0, rxBytes: 0, rxDropped: 0, txFrames: 0, txBytes: 0, txDropped: 0 })

export interface NicShape {
  readonly name: string
  readonly mac: MacAddress
  readonly caps: NicCaps
  /**
   * Received frames, one batch per element. Frames are *borrowed*: valid while the consumer processes
   * the batch synchronously; anything kept longer must be copied.
   */
  readonly rx: Stream.Stream<ReadonlyArray<Frame>, NicError>
  /**
   * Send a batch of frames. The NIC copies or writes them before the effect completes, so the caller
   * may reuse the buffers afterwards. A full link drops and counts (txDropped) rather than failing.
   */
  readonly tx: (frames: ReadonlyArray<Frame>) => Effect.Effect<void, NicError>
  readonly stats: NicStats
  /**
   * Optional fast path of a NIC whose receive side is a native callback (the TAP): the stack may take each batch
   * synchronously inside the NIC's wake-up instead of through `rx`, and write synchronously. It saves the
   * fiber hop per wake-up that dominates the latency of a lone packet (a ping). Middleware that sees or changes
   * frames (pcap, fault injection) must not forward it, so that the stack then uses `rx`/`tx` through them.
   */
  readonly direct?: NicDirect | undefined
  /**
   * Optional: a filter the device runs on bare IPv4 SYNs before they reach us (the TAP's runs in the kernel, in
   * the sender's context), so that a SYN flood costs us no read per frame. The TCP layer sets it from its SYN
   * limiter (protocols/tcp/synShield.ts). Frames it drops are never received, so no middleware sees them.
   */
  readonly synFilter?: SynFilter | undefined
}

export interface SynFilter {
  /** A listed source's bare SYNs pass one in 2^keepShift. */
  readonly keepShift: number
  /** At most this many sources may be listed. */
  readonly maxSources: number
  /**
   * Replace the filter: bare SYNs from `sources` (IPv4 addresses as numbers) dropped but the sample, those from
   * any other source with probability allLevel/64; no sources and level 0 remove it. False if the device refused.
   */
  readonly set: (sources: ReadonlyArray<number>, allLevel: number) => boolean
}

export interface NicDirect {
  /**
   * Start delivering batches to `handler` (instead of `rx`) for the scope's lifetime; frames are borrowed for the
   * call. A read failure goes to `onError` and ends delivery.
   */
  readonly rx: (handler: (batch: ReadonlyArray<Frame>) => void, onError: (e: NicError) => void) => Effect.Effect<void, NicError, Scope.Scope>
  /** `tx` without the Effect: writes (or drops and counts) before returning; throws a NicError when the device failed. */
  readonly tx: (frames: ReadonlyArray<Frame>) => void
}

/**
 * A middleware NIC over `inner` (pcap, fault injection): every received batch comes through `rx` and every sent one
 * through `tx`, so the synchronous fast path (`direct`) is never forwarded and a middleware cannot bypass itself by
 * forgetting it. Every other field of the contract is decided here, one by one: a field added to NicShape later must
 * be decided here too (the record below names every key, or it does not compile).
 */
export const wrap = (
  inner: NicShape,
  through: {
    readonly rx: Stream.Stream<ReadonlyArray<Frame>, NicError>
    readonly tx: (frames: ReadonlyArray<Frame>) => Effect.Effect<void, NicError>
  }
): NicShape => {
  const shape: { readonly [K in keyof Required<NicShape>]: NicShape[K] } = {
    name: inner.name,
    mac: inner.mac,
    caps: inner.caps,
    rx: through.rx,
    tx: through.tx,
    stats: inner.stats,
    direct: undefined,
    // frames the device's filter drops were never received: no middleware would have seen them
    synFilter: inner.synFilter
  }
  return shape
}

export class Nic extends Context.Tag("@miniperf/Nic")<Nic, NicShape>() {}
