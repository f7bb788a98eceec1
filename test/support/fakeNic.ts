/**
 * A minimal in-memory Nic for middleware tests: `inject` feeds rx batches, `sent` records tx.
 */
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { makeNicStats, type NicShape } from "../../src/nic/Nic.js"
import { mac } from "../../src/protocols/address.js"
import type { Frame } from "../../src/nic/Frame.js"

export interface FakeNic {
  readonly nic: NicShape
  readonly inject: (batch: ReadonlyArray<Frame>) => Effect.Effect<void>
  readonly sent: Array<Frame>
}

export const makeFakeNic = Effect.gen(function* () {
  const q = yield* Queue.unbounded<ReadonlyArray<Frame>>()
  const sent: Array<Frame> = []
  const stats = makeNicStats()
  const nic: NicShape = {
    name: "fake0",
    mac: mac(0x0200, 0x00000001),
    caps: { ipMtu: 1500, rxOffload: false, txChecksumOffload: false, tso: false, maxTxFrame: 1514 },
    stats,
    rx: Stream.fromQueue(q),
    tx: (frames) =>
      Effect.sync(() => {
        for (const f of frames) {
          sent.push(f)
          stats.txFrames++
          stats.txBytes += f.data.length
        }
      })
  }
  return { nic, sent, inject: (batch: ReadonlyArray<Frame>) => Queue.offer(q, batch).pipe(Effect.asVoid) } satisfies FakeNic
})
