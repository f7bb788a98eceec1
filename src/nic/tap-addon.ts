/**
 * Typed loader of the TAP N-API addon (native/tap.c, built into build/Release/tap.node by
 * `npm install`). Loaded lazily so that code which never opens a TAP (SimLink tests, other OSes)
 * does not need the binary. See native/tap.c for the exact contract of each function.
 */
import { createRequire } from "node:module"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import * as path from "node:path"

/** int32 per received frame in `meta`: [offset, length, flags, gsoType, hdrLen, gsoSize, csumStart, csumOffset]. */
export const META_STRIDE = 8
/** int32 per transmitted frame in the TX meta: [flags, gsoType, hdrLen, gsoSize, csumStart, csumOffset]. */
export const TX_META_STRIDE = 6

export interface OpenResult {
  readonly fd: number
  /** The name the kernel gave the device (useful when `name` was ""). */
  readonly name: string
  readonly vnetHdr: boolean
  /** True only if TUNSETOFFLOAD(CSUM|TSO4|TSO6) was accepted. */
  readonly offload: boolean
  /** The device's queue length toward us after open (-1 when it could not be read). */
  readonly txQueueLen: number
}

export interface OpenOptions {
  readonly vnetHdr: boolean
  readonly offload: boolean
  /** Device node, default /dev/net/tun (tests point it elsewhere to provoke ENOENT). */
  readonly path?: string
  /** Raise the device's txqueuelen (the kernel's queue toward us) to at least this, where permitted. */
  readonly txQueueLen?: number
}

/** Opaque RX handle (an N-API external). */
export type RxHandle = { readonly __brand: "TapRxHandle" }

export interface RxStart {
  readonly handle: RxHandle
  /** The ring, allocated once; frames are views into it. */
  readonly ring: ArrayBuffer
  /** The per-batch meta array (the same object passed to every callback). */
  readonly meta: Int32Array
}

/**
 * Called once per batch with the number of frames in `meta`, or with -errno after a read error
 * (the poll is stopped then). Returning `false` means "not accepted": the slots are reused.
 */
export type RxCallback = (count: number, meta: Int32Array) => boolean | void

/** Error thrown by the addon: `code` is an errno name such as "EPERM", "ENOENT", "EBUSY". */
export interface AddonError extends Error {
  readonly code: string
  readonly errno?: number
}

export interface TapAddon {
  readonly open: (name: string, opts: OpenOptions) => OpenResult
  readonly close: (fd: number) => void
  readonly startRx: (
    fd: number,
    vnetHdr: boolean,
    ringBytes: number,
    slotBytes: number,
    maxBatch: number,
    cb: RxCallback,
    /** > 0: busy-poll the event loop until no frame has come for this many microseconds. */
    spinUs?: number
  ) => RxStart
  readonly stopRx: (handle: RxHandle) => void
  /**
   * Writes frames[0..count) (one write per frame). Returns the number written; count - written were
   * dropped (EAGAIN/ENOBUFS, oversize, rejected). `out`, if given, receives [written, bytesWritten].
   */
  readonly writeBatch: (
    fd: number,
    vnetHdr: boolean,
    frames: ReadonlyArray<Uint8Array>,
    count: number,
    meta: Int32Array | null,
    maxLen: number,
    out?: Int32Array | null
  ) => number
  /**
   * A kernel-side filter on the TAP for bare IPv4 SYNs (see tap.c): those from `sources[0..count)` are dropped
   * but one in 2^keepShift, those from anyone else with probability allLevel/64. count 0 and allLevel 0 detach
   * it. Returns false where the kernel refused the filter.
   */
  readonly setSynFilter: (fd: number, sources: Uint32Array, count: number, keepShift: number, allLevel: number) => boolean
}

/** The repository root: src/nic/ (or dist/src/nic/) -> up until a binding.gyp is found. */
const findRoot = (): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    if (existsSync(path.join(dir, "binding.gyp"))) return dir
    dir = path.dirname(dir)
  }
  return process.cwd()
}

let cached: TapAddon | undefined

/** Loads the addon once. Throws an AddonError with code "ENOADDON" if it was not built. */
export const load = (): TapAddon => {
  if (cached !== undefined) return cached
  const file = path.join(findRoot(), "build", "Release", "tap.node")
  if (!existsSync(file)) {
    const e = new Error(`TAP addon not built: ${file} is missing; run \`npm install\` (or npm rebuild)`) as Error & {
      code: string
    }
    e.code = "ENOADDON"
    throw e
  }
  const require = createRequire(import.meta.url)
  cached = require(file) as TapAddon
  return cached
}

export const isAddonError = (u: unknown): u is AddonError =>
  u instanceof Error && typeof (u as { code?: unknown }).code === "string"
