/**
 * The link contract's middleware builder: a wrapped NIC never forwards the synchronous fast path (so pcap or fault
 * injection cannot be bypassed on a TAP), forwards the device's SYN filter, and sends every batch through its own rx/tx.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { PLAIN, type Frame } from "../../src/nic/Frame.js"
import * as FaultInjector from "../../src/nic/FaultInjector.js"
import { makeNicStats, wrap, type NicShape, type SynFilter } from "../../src/nic/Nic.js"
import * as Pcap from "../../src/nic/Pcap.js"
import { mac } from "../../src/protocols/address.js"

const frame = (b: number): Frame => ({ data: Uint8Array.of(b), meta: PLAIN })

const device = (): { readonly nic: NicShape; readonly written: Array<number>; readonly filter: SynFilter } => {
  const written: Array<number> = []
  const filter: SynFilter = { keepShift: 6, maxSources: 64, set: () => true }
  const nic: NicShape = {
    name: "dev0",
    mac: mac(0x0200, 7),
    caps: { ipMtu: 1500, rxOffload: true, txChecksumOffload: true, tso: true, maxTxFrame: 65549 },
    rx: Stream.make([frame(1)], [frame(2)]),
    tx: (frames) => Effect.sync(() => void written.push(...frames.map((f) => f.data[0]!))),
    stats: makeNicStats(),
    direct: { rx: () => Effect.void, tx: (frames) => void written.push(...frames.map(() => -1)) },
    synFilter: filter
  }
  return { nic, written, filter }
}

describe("Nic.wrap", () => {
  it.effect("drops the fast path, keeps the device's identity, stats and SYN filter, and uses the middleware's rx and tx", () =>
    Effect.gen(function* () {
      const d = device()
      const seen: Array<number> = []
      const w = wrap(d.nic, {
        rx: Stream.map(d.nic.rx, (batch) => batch.map((f) => frame(f.data[0]! * 10))),
        tx: (frames) => Effect.zipRight(Effect.sync(() => void seen.push(...frames.map((f) => f.data[0]!))), d.nic.tx(frames))
      })
      expect(w.direct).toBeUndefined()
      expect(w.synFilter).toBe(d.filter)
      expect([w.name, w.mac, w.caps, w.stats]).toEqual([d.nic.name, d.nic.mac, d.nic.caps, d.nic.stats])
      const got = yield* Stream.runCollect(w.rx)
      expect(Chunk.toArray(got).map((b) => b[0]!.data[0])).toEqual([10, 20])
      yield* w.tx([frame(5)])
      expect(seen).toEqual([5])
      expect(d.written).toEqual([5]) // through the device's tx, never its direct path
    }))

  it.effect("pcap and fault injection are built with it: neither forwards the fast path, both keep the SYN filter", () =>
    Effect.gen(function* () {
      const d = device()
      const sink: Pcap.PcapSink = { write: () => {}, stats: { frames: 0, bytes: 0, errors: 0 } }
      const p = Pcap.wrap(d.nic, sink)
      const f = FaultInjector.wrap(d.nic, { seed: 1 })
      for (const w of [p, f]) {
        expect(w.direct).toBeUndefined()
        expect(w.synFilter).toBe(d.filter)
      }
    }))
})
