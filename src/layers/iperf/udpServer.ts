/**
 * The iperf 2 server's UDP side on the iperf port (iperf-wire.md §B): one accounting stream per client (address,
 * port), bounded in number and per source (the least proven entry is evicted first); the 128-byte server report
 * goes back on the client's end-of-stream datagram and again for every repeat, up to iperf's limit. `-u -R`
 * requests, and the sending half of `-u -r`/`-u -d`, start streams of udpSender.ts; a `-R` request's entry absorbs
 * the client's repeated header datagrams.
 */
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberSet from "effect/FiberSet"
import { endpointKey, endpointKeyAddress, endpointKeyPort, formatEndpoint, formatIp, sourceKey, type EndpointKey, type IpAddress, type SourceKey } from "../../protocols/ipAddress.js"
import * as Fmt from "../../protocols/iperf/format.js"
import * as Guard from "../../protocols/iperf/guard.js"
import * as Session from "../../protocols/iperf/session.js"
import * as IperfUdp from "../../protocols/iperf/udp.js"
import * as UdpSend from "../../protocols/iperf/udpSend.js"
import * as Wire from "../../protocols/iperf/wire.js"
import { sleepMillis } from "../Sleep.js"
import { Udp } from "../Udp.js"
import type { IperfShell, TestPart } from "./shell.js"
import { makeUdpSender } from "./udpSender.js"

/** Bind the iperf port and serve UDP streams for the scope's lifetime. */
export const serveUdp = (sh: IperfShell) =>
  Effect.gen(function* () {
    const udp = yield* Udp
    const { opts, port, stats, wallUs, sessions, logLimited, logSession } = sh
    const maxStreams = opts.maxUdpStreams ?? 64
    const forkSession = yield* FiberSet.runtime(sessions)<never>()
    const { nowMs, nowSync, takeSenderSlot, planFor, noteAdjusted, runUdpSender, reverseStops } = yield* makeUdpSender(sh)

    /** `-r`/`-d`: a new stream from an ephemeral port to (client, mPort), after `delayMs`. */
    const startConnectBack = (id: number, local: IpAddress, client: RecvSession, delayMs: number): void => {
      const settings = client.settings
      const from = `${formatEndpoint(client.src, settings.mPort)}`
      if (settings.mPort === 0) {
        stats.udpSendRefused++
        logLimited("UDP send requests refused", `${Fmt.idCol(id)} refusing to send UDP to ${formatIp(client.src)}: no port in the header`)
        return
      }
      const p = planFor(id, settings, from)
      if (p === undefined || !takeSenderSlot(id, from, client.src)) return
      noteAdjusted(id, p, from)
      // the client's stream is our evidence: its bytes (budget) and, for -d, that it keeps arriving
      const evidence: Guard.ClientEvidence = {
        get bytes() {
          return client.st.bytes
        },
        get lastMs() {
          return client.lastMs
        }
      }
      const live = settings.mode === "dual"
      if (live) client.feeding = true
      const sub = client.part?.sub()
      forkSession(
        runUdpSender({
          id, local, dst: client.src, dstPort: settings.mPort, srcPort: undefined, awaitReport: true, plan: p, delayMs, evidence, live
        }).pipe(Effect.ensuring(Effect.sync(() => {
          client.feeding = false
          sub?.end()
        })))
      )
    }

    // --- receiving (and the -R requests) on the iperf port ---------------------------------------
    interface RecvSession {
      readonly kind: "recv"
      readonly id: number
      readonly st: IperfUdp.UdpStream
      readonly src: IpAddress
      readonly srcPort: number
      readonly local: IpAddress
      readonly settings: Wire.SettingsRepr
      lastMs: number
      printed: boolean
      /** `-d`: our own stream to this client runs and takes this entry as its evidence (evicted last). */
      feeding: boolean
      /** `-r` only: ends the receive side at T + 2 s if the client's final datagrams never come. */
      watchdog: Fiber.RuntimeFiber<void> | undefined
      /** This stream's part of the first test (--one-off), if it is in it; ends with its result line. */
      part: TestPart | undefined
      /** `--interval`: the stream's interval reports, stopped by its result line. */
      intervals: { readonly stop: () => void; readonly finish: (endS: number) => void } | undefined
    }
    /**
     * `-R`: the entry absorbs the client's header datagrams (repeated until our data arrives) so that they start
     * nothing; the client sends nothing else (no-udp-fin).
     */
    interface ReverseSession {
      readonly kind: "reverse"
      readonly id: number
      lastMs: number
      /** Until the stream ends; then its entry only absorbs late header datagrams for REVERSE_LINGER_MS. */
      active: boolean
      endMs: number
    }
    type UdpSession = RecvSession | ReverseSession
    const REVERSE_LINGER_MS = 3_000
    /** The answer to a `-R` request we do not serve: a bare end of stream (sequence -1). */
    const endMarker = UdpSend.makeDatagram(UdpSend.DEFAULT_DATAGRAM_LEN)
    const streams = new Map<EndpointKey, UdpSession>()
    const reportBuf = new Uint8Array(IperfUdp.REPORT_LEN)
    const sendReport = (s: RecvSession, nowMs: number): void => {
      IperfUdp.emitServerReport(IperfUdp.report(s.st), reportBuf)
      if (udp.send(port, s.src, s.srcPort, reportBuf)) stats.udpReportsOut++
      IperfUdp.noteReportSent(s.st, nowMs)
      finishReceive(s, "")
    }
    /** Print a receive stream's line once; for `-r` start the server's own stream 250 ms later (after our report). */
    const endsOf = (s: RecvSession) => ({ local: Fmt.formatHost(s.local), localPort: port, remote: Fmt.formatHost(s.src), remotePort: s.srcPort })
    const finishReceive = (s: RecvSession, note: string): void => {
      if (s.printed) return
      s.printed = true
      s.watchdog?.unsafeInterruptAsFork(FiberId.none)
      s.watchdog = undefined
      const r = IperfUdp.report(s.st)
      s.intervals?.finish(IperfUdp.pairSeconds(r.stop))
      sh.report(
        {
          id: s.id, sent: false, startS: 0, endS: IperfUdp.pairSeconds(r.stop), bytes: s.st.bytes, ...endsOf(s), total: true,
          udp: { jitterS: IperfUdp.pairSeconds(r.jitter), lost: r.lost, datagrams: r.datagrams, outOfOrder: r.outOfOrder }
        },
        (l, h) => logSession("UDP stream results", note === "" ? l : `${l}${note}`, h)
      )
      if (s.settings.mode === "tradeoff") startConnectBack(sh.nextId(), s.local, s, IperfUdp.REPORT_SILENCE_MS)
      s.part?.end()
    }
    /**
     * `--interval` for a received stream: every step from its first datagram, the bytes, the datagrams (highest
     * sequence) and the losses of the step, with the jitter so far, as `iperf -s -u -i` prints them.
     */
    const udpIntervals = (s: RecvSession, stepMs: number, t0: number): { readonly stop: () => void; readonly finish: (endS: number) => void } => {
      let k = 0
      let last = { bytes: 0, datagrams: 0, lost: 0, outOfOrder: 0 }
      /** The report of the step from `k` to `endS` (seconds), and the next step's start. */
      const step = (endS: number): void => {
        const r = IperfUdp.report(s.st)
        const cur = { bytes: s.st.bytes, datagrams: r.datagrams, lost: r.lost, outOfOrder: r.outOfOrder }
        sh.report(
          {
            id: s.id, sent: false, startS: (k * stepMs) / 1000, endS, bytes: cur.bytes - last.bytes, ...endsOf(s),
            udp: {
              jitterS: IperfUdp.pairSeconds(r.jitter), lost: cur.lost - last.lost, datagrams: cur.datagrams - last.datagrams,
              outOfOrder: cur.outOfOrder - last.outOfOrder
            }
          },
          (l, h) => logSession("UDP stream results", l, h)
        )
        last = cur
        k++
      }
      const fiber = forkSession(
        Effect.gen(function* () {
          for (;;) {
            yield* sleepMillis(t0 + (k + 1) * stepMs - (yield* nowMs))
            // a stream silent for 10 s (its end lost, never forgotten) stops reporting
            if ((yield* nowMs) - s.lastMs > 10_000) return
            step(((k + 1) * stepMs) / 1000)
          }
        })
      )
      const stop = (): void => fiber.unsafeInterruptAsFork(FiberId.none)
      return {
        stop,
        // the last, partial step before the total, as the real server prints it (not one under a tenth of a step)
        finish: (endS) => {
          stop()
          if (endS * 1000 - k * stepMs >= Math.max(1, stepMs / 10)) step(endS)
        }
      }
    }

    /**
     * `-r` in time mode when the client's final datagrams are all lost: like the real server (T + 2 s, `SLOPSECS`),
     * end the receive side anyway, so the client's listener still gets our stream.
     */
    const tradeoffWatchdog = (s: RecvSession, durationMs: number) =>
      Effect.zipRight(
        sleepMillis(durationMs + Session.SERVER_SLOP_MS),
        Effect.sync(() => {
          s.watchdog = undefined
          finishReceive(s, " (no final datagram)")
        })
      )
    const forgettable = (o: UdpSession, nowMs: number): boolean =>
      o.kind === "recv"
        ? (o.st.finished && IperfUdp.isSettled(o.st, nowMs)) || nowMs - o.lastMs > 10_000
        : !o.active && nowMs - Math.max(o.endMs, o.lastMs) > REVERSE_LINGER_MS

    /** Entries per source address (Guard.MAX_STREAMS_PER_SOURCE each). */
    const perSource = new Map<SourceKey, number>()
    const srcOf = endpointKeyAddress
    const admit = (key: EndpointKey, o: UdpSession): void => {
      streams.set(key, o)
      const src = sourceKey(srcOf(key))
      perSource.set(src, (perSource.get(src) ?? 0) + 1)
      stats.udpStreams++
      stats.udpStreamsActive++
    }
    /** The eviction rule's view of an entry (Guard.pickVictim). */
    const tableEntry = (o: UdpSession): Guard.TableEntry =>
      o.kind === "recv"
        ? { datagrams: o.st.datagrams, lastMs: o.lastMs, feedsSender: o.feeding }
        : { datagrams: 0, lastMs: o.lastMs, feedsSender: o.active }
    function* entriesFrom(src: SourceKey | undefined): Generator<readonly [EndpointKey, Guard.TableEntry]> {
      for (const [k, o] of streams) if (src === undefined || sourceKey(srcOf(k)) === src) yield [k, tableEntry(o)]
    }
    /** Forget the entry Guard.pickVictim picks (among `src`'s own, or all), counted and logged (limited). */
    const evict = (src: SourceKey | undefined, why: string, forKey: EndpointKey): void => {
      const k = Guard.pickVictim(entriesFrom(src))
      const o = k === undefined ? undefined : streams.get(k)
      if (k === undefined || o === undefined) return
      forget(k, o)
      stats.udpStreamEvictions++
      logLimited(
        "UDP streams evicted (table full)",
        `${Fmt.idCol(o.id)} ${why}: forgot the least proven, idlest stream to admit ${formatEndpoint(srcOf(forKey), endpointKeyPort(forKey))}`
      )
    }

    const forget = (key: EndpointKey, o: UdpSession): void => {
      streams.delete(key)
      const src = sourceKey(srcOf(key))
      const n = (perSource.get(src) ?? 1) - 1
      if (n > 0) perSource.set(src, n)
      else perSource.delete(src)
      stats.udpStreamsActive--
      if (o.kind === "recv") {
        o.watchdog?.unsafeInterruptAsFork(FiberId.none)
        o.watchdog = undefined
        o.intervals?.stop()
        o.part?.end() // a stream forgotten before its result line (evicted, silent) still ends its part
      }
    }

    yield* udp.bind(port, (d) => {
      const now = nowSync()
      const key = endpointKey(d.src, d.srcPort)
      let s = streams.get(key)
      if (s !== undefined && ((s.kind === "recv" && s.st.finished && IperfUdp.isSettled(s.st, now)) || (s.kind === "reverse" && forgettable(s, now)))) {
        forget(key, s)
        s = undefined
      }
      if (s === undefined) {
        // a datagram that is not an iperf stream start takes no room (and evicts nothing)
        const settings = Wire.decodeUdpSettings(d.payload)
        if (typeof settings === "string") {
          stats.rejectedHeaders++
          return
        }
        if ((perSource.get(sourceKey(d.src)) ?? 0) >= Guard.MAX_STREAMS_PER_SOURCE) {
          // one address (forged source ports) cannot fill the table: it makes room among its own entries
          evict(sourceKey(d.src), `${formatIp(d.src)} holds ${Guard.MAX_STREAMS_PER_SOURCE} UDP streams`, key)
        }
        if (streams.size >= maxStreams) {
          // make room: forget streams that are done or silent for 10 s
          for (const [k, o] of streams) {
            if (forgettable(o, now)) forget(k, o)
          }
          // still full: the least proven entry goes (fewer than 8 datagrams first, a stream we send to last), so
          // forged new keys, however many per inter-packet gap, evict each other and not a real client
          if (streams.size >= maxStreams) evict(undefined, `UDP stream table full (${maxStreams})`, key)
        }
        const id = sh.nextId()
        const from = `${formatEndpoint(d.src, d.srcPort)}`
        if (settings.mode === "reverse") {
          // -R: send from this port to the client's source port; nothing of the client's is accounted
          const rs: ReverseSession = { kind: "reverse", id, lastMs: now, active: true, endMs: 0 }
          admit(key, rs)
          const p = planFor(id, settings, from)
          if (p === undefined || !takeSenderSlot(id, from, d.src)) {
            // refused or over the cap: one end-of-stream datagram, so the client stops waiting for a stream that
            // will not come (its later header repeats are absorbed by this entry, so this answers once)
            rs.active = false
            rs.endMs = now
            UdpSend.stamp(endMarker, -1, wallUs())
            if (udp.send(port, d.src, d.srcPort, endMarker)) stats.udpDatagramsOut++
            return
          }
          noteAdjusted(id, p, from)
          const part = sh.joinTest(d.src, settings.numThreads)
          const ended = Effect.flatMap(nowMs, (t) =>
            Effect.sync(() => {
              rs.active = false
              rs.endMs = t
              part?.end()
            })
          )
          forkSession(
            runUdpSender({
              id, local: d.dst, dst: d.src, dstPort: d.srcPort, srcPort: port, awaitReport: false, plan: p, delayMs: 0, evidence: undefined,
              live: false
            }).pipe(
              Effect.ensuring(ended)
            )
          )
          return
        }
        const rs: RecvSession = {
          kind: "recv", id, st: IperfUdp.makeStream(settings.seqNo64), src: d.src, srcPort: d.srcPort, local: d.dst, settings, lastMs: now,
          printed: false, feeding: false, watchdog: undefined, part: sh.joinTest(d.src, settings.numThreads), intervals: undefined
        }
        s = rs
        admit(key, rs)
        // a 20-byte datagram from any (forged) source port starts a header-less stream: capped, like all starts
        sh.connectionLine(
          Fmt.connectedWith(id, false, Fmt.formatHost(d.dst), port, Fmt.formatHost(d.src), d.srcPort),
          (l) => logSession("UDP streams started", l)
        )
        if (opts.intervalS !== undefined) rs.intervals = udpIntervals(rs, opts.intervalS * 1000, now)
        // -d: the server's own test starts at once, beside this one
        if (settings.mode === "dual") startConnectBack(sh.nextId(), d.dst, rs, Session.CONNECT_BACK_DELAY_MS)
        if (settings.mode === "tradeoff" && settings.amount.kind === "time" && settings.amount.durationMs <= UdpSend.MAX_DURATION_MS) {
          rs.watchdog = forkSession(tradeoffWatchdog(rs, settings.amount.durationMs))
        }
      }
      s.lastMs = now
      if (s.kind === "reverse") return // a header repeat from before our first datagram reached the client
      stats.udpDatagramsIn++
      stats.udpBytesIn += d.payload.length
      const r = IperfUdp.onPayload(s.st, d.payload, wallUs())
      if (r === "Final") sendReport(s, now)
      else if (r === "AfterFinal" && IperfUdp.shouldResend(s.st)) sendReport(s, now)
    }, (e) => {
      // an ICMP destination unreachable about a datagram of a -R stream (sent from this port): stop that stream
      reverseStops.get(endpointKey(e.remote, e.remotePort))?.({ kind: "unreachable", code: e.code, reporter: e.reporter })
    })
  })
