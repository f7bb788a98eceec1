/**
 * The iperf 2 server's UDP sending streams (iperf-wire.md §B.4, planned and paced by `UdpSend`): `-u -d` starts one
 * at once and `-u -r` one 250 ms after our report, both from a new ephemeral port to (client, mPort), ending with
 * final datagrams repeated with backoff (10 ms doubling to 250 ms, at most 12) until the client's listener sends its
 * 128-byte report, which we print; `-u -R` sends from the iperf port to the client's source port and ends with one
 * final datagram (the real server runs it with no-udp-fin). Bounded: `maxUdpSenders` streams at once, at most
 * `maxUdpSendersPerAddress` to one address, the duration cap, ICMP unreachable, and for `-d`/`-r` the return-path
 * rule (Guard.maySend).
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { endpointKey, formatEndpoint, formatIp, sourceKey, type EndpointKey, type IpAddress, type SourceKey } from "../../protocols/ipAddress.js"
import * as Fmt from "../../protocols/iperf/format.js"
import * as Guard from "../../protocols/iperf/guard.js"
import * as IperfUdp from "../../protocols/iperf/udp.js"
import * as UdpSend from "../../protocols/iperf/udpSend.js"
import * as Wire from "../../protocols/iperf/wire.js"
import { Signal } from "../Signal.js"
import { Udp } from "../Udp.js"
import type { IperfShell } from "./shell.js"

export interface SendTarget {
  readonly id: number
  readonly local: IpAddress
  readonly dst: IpAddress
  readonly dstPort: number
  /** Our port: the iperf port (`-R`), or undefined for a new ephemeral one (`-r`, `-d`). */
  readonly srcPort: number | undefined
  /** Wait for the receiver's report, repeating the final datagram (`-r`/`-d`); `-R` runs with no-udp-fin. */
  readonly awaitReport: boolean
  readonly plan: UdpSend.SendPlan
  /** Start this long after the fiber does (`-r`: after our report; `-d`: at once). */
  readonly delayMs: number
  /**
   * What the client's own stream has shown (`-d`, `-r`): we send at most Guard.AMPLIFICATION times its bytes, and
   * with `live` (`-d`) only while it keeps arriving. Undefined for `-R` (the 2.1.8 client shows nothing more).
   */
  readonly evidence: Guard.ClientEvidence | undefined
  readonly live: boolean
}

export type StopReason =
  | { readonly kind: "unreachable"; readonly code: number; readonly reporter: IpAddress }
  | { readonly kind: "unverified"; readonly why: Guard.SendVerdict }

/** How often a sending stream looks for a stop while it waits between datagrams. */
const STOP_POLL_MS = 50

/** The client's request in words, for the log: `-t 2.00 s at 1048576 bit/s`. */
const describeLimit = (s: Wire.SettingsRepr): string =>
  (s.amount.kind === "time" ? `-t ${(s.amount.durationMs / 1000).toFixed(2)} s` : `-n ${s.amount.bytes} bytes`) +
  ` at ${s.rate} ${(s.upperFlags & Wire.UPPER_UNITS_PPS) !== 0 ? "pps" : "bit/s"}`

export const makeUdpSender = (sh: IperfShell) =>
  Effect.gen(function* () {
    const udp = yield* Udp
    const { opts, print, stats, udpSendMaxMs, wallUs, logLimited } = sh
    const maxSenders = opts.maxUdpSenders ?? 16
    const maxPerAddress = Math.max(1, Math.min(maxSenders, opts.maxUdpSendersPerAddress ?? 8))
    /**
     * Monotonic milliseconds with fractions (pacing needs better than whole milliseconds at high rates). The one
     * clock of the UDP side: datagram arrivals (the `-u -d` silence rule, reports, table ages) are stamped with it
     * too, not with the stack's `d.nowMs` (Clock.currentTimeMillis, Date.now(), which may step or drift apart).
     */
    const udpClock = yield* Effect.clock
    const nowSync = (): number => Number(udpClock.unsafeCurrentTimeNanos()) / 1e6
    const nowMs = Effect.sync(nowSync)

    /** Sending streams by destination address: at most `maxPerAddress` each. */
    const sendingTo = new Map<SourceKey, number>()
    /** `-R` streams (sent from the iperf port) by destination endpoint (endpointKey), to stop them on ICMP errors. */
    const reverseStops = new Map<EndpointKey, (why: StopReason) => void>()

    /** Reserve one of the sending slots; false (counted, logged) when all are taken. */
    const takeSenderSlot = (id: number, from: string, dstAddress: IpAddress): boolean => {
      // per destination address, an IPv6 one by its /64 (one host can use any address of its prefix)
      const dst = sourceKey(dstAddress)
      if (stats.udpSendStreamsActive >= maxSenders) {
        stats.udpSendDrops++
        logLimited("UDP send requests over the cap dropped", `${Fmt.idCol(id)} not sending UDP to ${from}: ${maxSenders} sending streams already run`)
        return false
      }
      const toDst = sendingTo.get(dst) ?? 0
      if (toDst >= maxPerAddress) {
        stats.udpSendPerDestRefused++
        logLimited(
          "UDP send requests refused (streams per address)",
          `${Fmt.idCol(id)} not sending UDP to ${from}: that address already gets ${toDst} stream${toDst === 1 ? "" : "s"} from us (at most ${maxPerAddress})`
        )
        return false
      }
      sendingTo.set(dst, toDst + 1)
      stats.udpSendStreamsActive++
      stats.udpSendStreams++
      return true
    }

    /** Plan a sending stream from the client's header, or log why not (clamps are logged too). */
    const planFor = (id: number, settings: Wire.SettingsRepr, from: string): UdpSend.SendPlan | undefined => {
      const p = UdpSend.planSend(settings, udpSendMaxMs)
      if (p._tag === "Refused") {
        stats.udpSendRefused++
        logLimited(
          "UDP send requests refused",
          `${Fmt.idCol(id)} refusing to send UDP to ${from}: ${p.reason} (${describeLimit(settings)}; at most ${UdpSend.MAX_DURATION_MS / 1000} s)`
        )
        return undefined
      }
      return p
    }
    /** Once the stream has its slot: what its plan changed in the request (capped lines: a flood can ask for it). */
    const noteAdjusted = (id: number, p: UdpSend.SendPlan, from: string): void => {
      if (p.clamped.includes("DurationCapped")) stats.udpSendCapped++
      if (p.clamped.length > 0) logLimited("UDP send requests adjusted", `${Fmt.idCol(id)} UDP send request from ${from} adjusted: ${p.clamped.join(", ")}`)
    }

    /** One sending stream: paced bursts from one preallocated datagram, then the final datagram(s) and the report. */
    const runUdpSender = (t: SendTarget) =>
      Effect.scoped(
        Effect.gen(function* () {
          if (t.delayMs > 0) yield* Effect.sleep(Duration.millis(t.delayMs))
          const p = t.plan
          const s = UdpSend.makeSender(p, yield* nowMs)
          const replied = new Signal()
          // a stop from outside (ICMP error) or from the return-path rule ends the data at once, with no final datagrams
          let stopped: StopReason | undefined
          const stop = (why: StopReason): void => {
            if (stopped !== undefined) return
            stopped = why
            replied.notify()
          }
          const dstKey = endpointKey(t.dst, t.dstPort)
          if (t.srcPort !== undefined) {
            reverseStops.set(dstKey, stop)
            yield* Effect.addFinalizer(() => Effect.sync(() => reverseStops.get(dstKey) === stop && reverseStops.delete(dstKey)))
          }
          const onReply = (payload: Uint8Array, atMs: number): void => {
            const r = UdpSend.onReply(s, payload, atMs)
            if (r === "Report") {
              stats.udpReportsIn++
              replied.notify()
            } else if (r === "NotAReport") stats.udpBadReplies++
          }
          const local =
            t.srcPort ??
            (yield* udp.bind(
              0,
              (d) => {
                if (d.src === t.dst && d.srcPort === t.dstPort) onReply(d.payload, nowSync())
                else stats.udpBadReplies++
              },
              // as a connected kernel socket would: an unreachable from the destination ends the stream
              (e) => {
                if (e.remote === t.dst && e.remotePort === t.dstPort) stop({ kind: "unreachable", code: e.code, reporter: e.reporter })
              }
            ))
          const dgram = UdpSend.makeDatagram(p.datagramLen)
          let len = 0
          const write = (b: Uint8Array): void => b.set(dgram.subarray(0, len))
          const sendOne = (): void => {
            if (udp.sendWith(local, t.dst, t.dstPort, len, write)) {
              stats.udpDatagramsOut++
              stats.udpBytesOut += len
            } else stats.udpSendErrors++
          }
          // the console, shaped like the real server's (`[ *2]` marks a connect-back stream, as iperf does)
          const back = t.srcPort === undefined
          const tag = Fmt.transferId(t.id, back)
          if (back && (sh.opts.report === undefined || sh.opts.report === "human")) {
            // the client's block, as the real server prints it for its connect-back (no buffer line: no socket here)
            print(Fmt.RULE)
            print(`Client connecting to ${Fmt.formatHost(t.dst)}, UDP port ${t.dstPort}`)
            print(`Sending ${p.datagramLen} byte datagrams, IPG target: ${(p.intervalMs * 1000).toFixed(2)} us`)
            print(Fmt.RULE)
          }
          sh.connectionLine(
            Fmt.connectedWith(t.id, back, Fmt.formatHost(t.local), local, Fmt.formatHost(t.dst), t.dstPort, back ? ["(reverse)"] : ["(reverse)", "(no-udp-fin)"])
          )
          /** `-d`: the client's stream may pause this long (3 of its gaps, at least 1 s; its header sets our pace too). */
          const silence = Guard.silenceMs(p.intervalMs)
          /** The return-path rule before each datagram: true = send it; false = hold (`-d` over budget) or stopped. */
          const mayGo = (now: number, n: number, live: boolean): boolean => {
            if (t.evidence === undefined) return true
            const v = Guard.maySend(t.evidence, s.bytes + s.finSends * p.datagramLen, n, live, now, silence)
            if (v === "Ok") return true
            // -d: its stream still arrives, so more budget will come; otherwise no more evidence can come
            if (!(v === "OverBudget" && live)) stop({ kind: "unverified", why: v })
            return false
          }
          // data: a burst of whatever is due at each wake-up, wake-ups at least a tick apart
          for (;;) {
            if (stopped !== undefined) break
            const now = yield* nowMs
            const n = UdpSend.due(s, now)
            if (n > 0) {
              const wall = wallUs()
              for (let k = 0; k < n; k++) {
                if (!mayGo(now, UdpSend.nextLen(s), t.live)) break
                len = UdpSend.stampNext(s, dgram, wall)
                sendOne()
              }
            }
            if (stopped !== undefined || UdpSend.dataDone(s, now)) break
            // a plain sleep (racing a signal on every tick cost pacing at high rates); never longer than
            // STOP_POLL_MS, so a stop from outside (ICMP) takes effect within that
            yield* Effect.sleep(Duration.millis(Math.min(UdpSend.sleepMs(s, now), STOP_POLL_MS)))
          }
          if (stopped !== undefined) {
            // no final datagrams, no report wait, no linger: the destination does not want this stream
            s.endMs = yield* nowMs
            stats.udpSendSkipped += s.skipped
            const st: StopReason = stopped
            if (st.kind === "unreachable") {
              stats.udpSendUnreachableStops++
              logLimited(
                "UDP streams stopped by ICMP unreachable",
                `${tag}stopped sending to ${formatEndpoint(t.dst, t.dstPort)} after ${s.sent} datagrams: ICMP destination unreachable (code ${st.code}) from ${formatIp(st.reporter)}`
              )
            } else {
              stats.udpSendUnverifiedStops++
              logLimited(
                "UDP streams stopped (destination not verified)",
                `${tag}stopped sending to ${formatEndpoint(t.dst, t.dstPort)} after ${s.sent} datagrams (${s.bytes} bytes): ` +
                  (st.why === "ClientSilent"
                    ? `its own stream stopped arriving ${Math.round(silence)} ms ago`
                    : `${Guard.AMPLIFICATION}x the ${t.evidence?.bytes ?? 0} bytes it sent us`)
              )
            }
            return
          }
          stats.udpSendSkipped += s.skipped
          const ends = { local: Fmt.formatHost(t.local), localPort: local, remote: Fmt.formatHost(t.dst), remotePort: t.dstPort }
          sh.report({ id: t.id, sent: true, startS: 0, endS: UdpSend.elapsedS(s, 0), bytes: s.bytes, ...ends, total: true })
          // end of stream: the negated next sequence, repeated with backoff until the report (bounded); `-R`: once
          if (t.awaitReport) {
            while (UdpSend.finDue(s) && stopped === undefined && mayGo(yield* nowMs, p.datagramLen, false)) {
              len = UdpSend.stampFin(s, dgram, wallUs())
              sendOne()
              yield* replied.wait.pipe(Effect.timeout(Duration.millis(UdpSend.finWaitMs(s))), Effect.ignore)
            }
          } else {
            len = UdpSend.stampFin(s, dgram, wallUs())
            sendOne()
          }
          const plainTag = Fmt.transferId(t.id)
          sh.human(`${plainTag}Sent ${s.nextSeq} datagrams`)
          const r = s.report
          if (r !== undefined) {
            // the client's report on our stream: on the console as the client prints it, with its own header (the
            // CSV has no such line: the client's -y C hides it too)
            if (sh.opts.report === undefined || sh.opts.report === "human") {
              sh.human(`${plainTag}Server Report:`)
              sh.headerAgain()
              sh.report({
                id: t.id, sent: back, startS: 0, endS: IperfUdp.pairSeconds(r.stop), bytes: r.bytes, ...ends,
                udp: { jitterS: IperfUdp.pairSeconds(r.jitter), lost: r.lost, datagrams: r.datagrams, outOfOrder: r.outOfOrder }
              })
            }
          } else if (t.awaitReport) {
            print(`${plainTag}WARNING: did not receive ack of last datagram after ${s.finSends} tries.`)
          }
          // keep our port until the listener is quiet: closed, it would answer its repeated report with ICMP
          for (;;) {
            const wait = UdpSend.lingerMs(s, yield* nowMs)
            if (wait <= 0) break
            yield* Effect.sleep(Duration.millis(Math.ceil(wait)))
          }
        })
      ).pipe(
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.void
            : Effect.sync(() => {
                stats.sessionErrors++
                const e = Cause.squash(cause)
                print(`${Fmt.transferId(t.id, true)}UDP stream ended: ${e instanceof Error ? e.message : String(e)}`)
              })
        ),
        Effect.ensuring(
          Effect.sync(() => {
            stats.udpSendStreamsActive--
            const left = (sendingTo.get(sourceKey(t.dst)) ?? 1) - 1
            if (left > 0) sendingTo.set(sourceKey(t.dst), left)
            else sendingTo.delete(sourceKey(t.dst))
          })
        )
      )

    return { nowMs, nowSync, takeSenderSlot, planFor, noteAdjusted, runUdpSender, reverseStops }
  })
