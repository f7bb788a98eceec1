/**
 * An in-memory Nic for layer and middleware tests (gVisor's channel endpoint): the test injects received frames and
 * reads what the stack transmitted (copies, counted in the NIC's stats).
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { mac, type MacAddress } from "../../src/protocols/address.js"
import { PLAIN, type Frame } from "../../src/nic/Frame.js"
import { Nic, makeNicStats, type NicCaps, type NicShape } from "../../src/nic/Nic.js"

export interface Channel {
  readonly nic: NicShape
  /** Deliver frames to the stack as one batch. */
  readonly inject: (frames: ReadonlyArray<Uint8Array | Frame>) => Effect.Effect<void>
  /** Everything the stack sent so far (copies), oldest first; `take` empties it. */
  readonly sent: Array<Frame>
  readonly take: () => Array<Frame>
  /** With `{ synFilter: true }`: every SYN filter the stack set, oldest first (the channel filters nothing). */
  readonly filterSets: Array<{ readonly sources: ReadonlyArray<number>; readonly allLevel: number }>
}

export const STACK_MAC: MacAddress = mac(0x0200, 0x00000002)
export const PEER_MAC: MacAddress = mac(0x0200, 0x00000001)

export const makeChannel = (caps: Partial<NicCaps> = {}, opts: { readonly synFilter?: boolean } = {}) =>
  Effect.gen(function* () {
    const filterSets: Array<{ readonly sources: ReadonlyArray<number>; readonly allLevel: number }> = []
    const q = yield* Queue.unbounded<ReadonlyArray<Frame>>()
    const sent: Array<Frame> = []
    const fullCaps: NicCaps = { ipMtu: 1500, rxOffload: false, txChecksumOffload: false, tso: false, maxTxFrame: 1514, ...caps }
    const stats = makeNicStats()
    const nic: NicShape = {
      name: "channel0",
      mac: STACK_MAC,
      caps: fullCaps,
      rx: Stream.fromQueue(q),
      tx: (frames) =>
        Effect.sync(() => {
          for (const f of frames) {
            sent.push({ data: f.data.slice(), meta: f.meta })
            stats.txFrames++
            stats.txBytes += f.data.length
          }
        }),
      stats,
      ...(opts.synFilter === true
        ? {
            synFilter: {
              keepShift: 6,
              maxSources: 64,
              set: (sources: ReadonlyArray<number>, allLevel: number) => {
                filterSets.push({ sources: [...sources], allLevel })
                return true
              }
            }
          }
        : {})
    }
    const channel: Channel = {
      nic,
      inject: (frames) =>
        Effect.zipRight(
          Queue.offer(q, frames.map((f) => (f instanceof Uint8Array ? { data: f, meta: PLAIN } : f))),
          // let the demux fiber run the batch
          Effect.repeatN(Effect.yieldNow(), 20)
        ),
      sent,
      take: () => sent.splice(0, sent.length),
      filterSets
    }
    return channel
  })

export const channelLayer = (ch: Channel): Layer.Layer<Nic> => Layer.succeed(Nic, ch.nic)
