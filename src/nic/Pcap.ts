/**
 * Pcap: Nic -> Nic middleware that writes every received and transmitted frame to a classic
 * libpcap file (magic a1b2c3d4, microsecond timestamps, LINKTYPE_ETHERNET, snaplen 262144 so GSO
 * super-frames up to 64 KiB are written whole). Timestamps come from the Clock (TestClock in tests).
 *
 * One synchronous write() per batch. A failing write (disk full) disables the capture and is
 * counted in `errors`; it never fails the link. `encode`/`globalHeader` are pure and also used for
 * in-memory captures (SimLink's wire log).
 */
import * as fs from "node:fs"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Nic, NicError, wrap as wrapNic, type NicShape } from "./Nic.js"
import type { Frame } from "./Frame.js"

export const MAGIC_MICROS = 0xa1b2c3d4
export const LINKTYPE_ETHERNET = 1
export const SNAPLEN = 262144
export const GLOBAL_HEADER_LEN = 24
export const RECORD_HEADER_LEN = 16

/** The 24-byte global header (little-endian). */
export const globalHeader = (snaplen = SNAPLEN, linktype = LINKTYPE_ETHERNET): Uint8Array => {
  const b = new Uint8Array(GLOBAL_HEADER_LEN)
  const v = new DataView(b.buffer)
  v.setUint32(0, MAGIC_MICROS, true)
  v.setUint16(4, 2, true) // version 2.4
  v.setUint16(6, 4, true)
  v.setInt32(8, 0, true) // thiszone
  v.setUint32(12, 0, true) // sigfigs
  v.setUint32(16, snaplen, true)
  v.setUint32(20, linktype, true)
  return b
}

/** Records for `frames`, all stamped `timeNanos` (Clock.currentTimeNanos), truncated to `snaplen`. */
export const encode = (frames: ReadonlyArray<Frame>, timeNanos: bigint, snaplen = SNAPLEN): Uint8Array => {
  let total = 0
  for (const f of frames) total += RECORD_HEADER_LEN + Math.min(f.data.length, snaplen)
  const out = new Uint8Array(total)
  const v = new DataView(out.buffer)
  const sec = Number(timeNanos / 1_000_000_000n) >>> 0
  const usec = Number((timeNanos % 1_000_000_000n) / 1000n)
  let o = 0
  for (const f of frames) {
    const incl = Math.min(f.data.length, snaplen)
    v.setUint32(o, sec, true)
    v.setUint32(o + 4, usec, true)
    v.setUint32(o + 8, incl, true)
    v.setUint32(o + 12, f.data.length, true)
    out.set(incl === f.data.length ? f.data : f.data.subarray(0, incl), o + RECORD_HEADER_LEN)
    o += RECORD_HEADER_LEN + incl
  }
  return out
}

export interface PcapSink {
  /** Appends the batch; never throws. */
  readonly write: (frames: ReadonlyArray<Frame>, timeNanos: bigint) => void
  readonly stats: { frames: number; bytes: number; errors: number }
}

/** A pcap file for the scope's lifetime (created or truncated; closed at the end). */
export const fileSink = (path: string): Effect.Effect<PcapSink, NicError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        const fd = fs.openSync(path, "w")
        fs.writeSync(fd, globalHeader())
        return fd
      },
      catch: (e) => new NicError({ reason: "Open", message: `cannot create pcap file ${path}: ${String(e)}`, cause: e })
    }),
    (fd) => Effect.sync(() => fs.closeSync(fd))
  ).pipe(
    Effect.map((fd) => {
      const stats = { frames: 0, bytes: 0, errors: 0 }
      let broken = false
      return {
        stats,
        write: (frames, timeNanos) => {
          if (broken || frames.length === 0) return
          const rec = encode(frames, timeNanos)
          try {
            fs.writeSync(fd, rec)
            stats.frames += frames.length
            stats.bytes += rec.length
          } catch {
            stats.errors++
            broken = true
          }
        }
      } satisfies PcapSink
    })
  )

/** Wraps a Nic so that every rx batch and every tx batch also goes to `sink`. */
export const wrap = (inner: NicShape, sink: PcapSink): NicShape =>
  wrapNic(inner, {
    rx: Stream.tap(inner.rx, (batch) => Effect.clockWith((c) => Effect.sync(() => sink.write(batch, c.unsafeCurrentTimeNanos())))),
    tx: (frames) =>
      Effect.zipRight(
        Effect.clockWith((c) => Effect.sync(() => sink.write(frames, c.unsafeCurrentTimeNanos()))),
        inner.tx(frames)
      )
  })

/** Middleware layer: needs a Nic, provides a Nic that also captures to `path`. */
export const layer = (path: string): Layer.Layer<Nic, NicError, Nic> =>
  Layer.scoped(
    Nic,
    Effect.gen(function* () {
      const inner = yield* Nic
      const sink = yield* fileSink(path)
      return wrap(inner, sink)
    })
  )
