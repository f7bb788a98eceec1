/**
 * The iperf 2 server (iperf 2.1.8 and 2.0.x clients; iperf-wire.md §A, §B) over our Tcp and Udp layers.
 *
 * TCP: every accepted connection is a session fiber (in a FiberSet under this layer's scope). Received
 * bytes go to a sink in the receive burst: the settings header is parsed once at stream offset 0, and the
 * rest is only counted, never copied. The session follows `Session.plan`: the 28-byte ack, sending on the
 * same socket (`-R`, `--full-duplex`), connect-back now (`-d`) or after this connection closed (`-r`), and a
 * FIN right after the client's FIN. Data we send are views of one preallocated pattern buffer.
 * A session that goes wrong (reset, garbage header, refused connect-back) ends alone, with a logged reason.
 *
 * UDP: one accounting stream per client (address, port), bounded in number; the 128-byte server report goes
 * back on the client's end-of-stream datagram and again for every repeat, up to iperf's limit.
 * Sending (iperf-wire.md §B.4, planned and paced by `UdpSend`): `-u -d` starts a stream at once and `-u -r` one
 * 250 ms after our report, both from a new ephemeral port to (client, mPort), ending with final datagrams
 * repeated with backoff (10 ms doubling to 250 ms, at most 12) until the client's listener sends its 128-byte
 * report, which we print;
 * `-u -R` sends from the iperf port to the client's source port and ends with one final datagram (the real server
 * runs it with no-udp-fin); the client's repeated header datagrams are absorbed by that stream's entry. Each
 * sending stream is one fiber in the session FiberSet (interrupted at shutdown), at most `maxUdpSenders` at once.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { formatIpv4, type Ipv4Address } from "../protocols/address.js"
import * as Fmt from "../protocols/iperf/format.js"
import * as Session from "../protocols/iperf/session.js"
import * as IperfUdp from "../protocols/iperf/udp.js"
import * as UdpSend from "../protocols/iperf/udpSend.js"
import * as Wire from "../protocols/iperf/wire.js"
import * as Guard from "../protocols/iperf/guard.js"
import * as LogLimiter from "./LogLimiter.js"
import { Signal } from "./Signal.js"
import { Tcp, type TcpConnection, type TcpError } from "./Tcp.js"
import { Udp } from "./Udp.js"
import { sleepMillis } from "./Sleep.js"

export interface IperfStats {
  tcpSessions: number
  tcpSessionsActive: number
  tcpBytesIn: number
  tcpBytesOut: number
  connectBacks: number
  connectBackFailures: number
  rejectedHeaders: number
  sessionErrors: number
  udpStreams: number
  udpStreamsActive: number
  udpBytesIn: number
  udpDatagramsIn: number
  udpReportsOut: number
  udpStreamDrops: number
  /** UDP streams the server sent (`-u -r`, `-u -d`, `-u -R`), refused by the plan or past the cap. */
  udpSendStreams: number
  udpSendStreamsActive: number
  udpSendRefused: number
  udpSendDrops: number
  udpDatagramsOut: number
  udpBytesOut: number
  /** Datagrams udp.sendWith refused (no route, too large), and datagrams skipped by a sender that fell behind. */
  udpSendErrors: number
  udpSendSkipped: number
  /** Reports received from the client's listener, and replies that were not one. */
  udpReportsIn: number
  udpBadReplies: number
  /** Connections closed for want of a complete, valid header within the header timeout. */
  headerTimeouts: number
  /** Sessions and connect-back streams ended because nothing moved (no byte in, none into the peer's window). */
  stalledSessions: number
  /** Connections reset after the test because the peer did not let them close within the grace. */
  closeGraceAborts: number
  /** UDP receive streams forgotten to make room for a new client (the table was full). */
  udpStreamEvictions: number
  /** Server-sent UDP streams stopped by an ICMP destination unreachable from their destination. */
  udpSendUnreachableStops: number
  /** Server-sent UDP streams stopped because the destination had not shown it wants them (budget, silence). */
  udpSendUnverifiedStops: number
  /** Requests for a second sending stream to an address that already gets one. */
  udpSendPerDestRefused: number
  /** Sending streams cut to the server's duration cap. */
  udpSendCapped: number
  /** Refusal/drop log lines held back by the log limiter. */
  logSuppressed: number
}

export interface IperfShape {
  readonly port: number
  readonly stats: IperfStats
}

export class Iperf extends Context.Tag("@miniperf/Iperf")<Iperf, IperfShape>() {}

export interface IperfOptions {
  readonly port?: number
  /** Server-side interval reports every this many seconds (like `iperf -s -i`). */
  readonly intervalS?: number
  /** Where console lines go (default: stdout). */
  readonly print?: (line: string) => void
  /** Serve UDP too (default true). */
  readonly udp?: boolean
  /** Concurrent UDP streams kept (default 64); datagrams of further new streams are dropped and counted. */
  readonly maxUdpStreams?: number
  /** A client that sends no complete header within this time is closed (default 10 s). */
  readonly headerTimeoutMs?: number
  /** Concurrent UDP streams the server sends (`-u -r`/`-d`/`-R`, default 16); further requests are dropped and counted. */
  readonly maxUdpSenders?: number
  /**
   * Of those, to one address at most (default 8, half of the default cap: `iperf -c -u -P 8 -R` is served, and one
   * address cannot take every slot); further requests from it are refused and counted.
   */
  readonly maxUdpSendersPerAddress?: number
  /** Wall-clock microseconds, for UDP transit times against the client's timestamps. */
  readonly wallClockUs?: () => number
  /**
   * A TCP session or connect-back stream where nothing moves for this long (no byte received, none sent into the
   * peer's window) is reset, in every mode (default 10 s).
   */
  readonly stallTimeoutMs?: number
  /** Server-sent UDP streams (`-u -r`/`-d`/`-R`) end after at most this long (default 60 s); longer requests are cut. */
  readonly udpSendMaxMs?: number
  /** After the test, a connection that has not closed within this grace is reset (default 3 s). */
  readonly closeGraceMs?: number
}

export const DEFAULT_STALL_TIMEOUT_MS = 10_000
/** Session-start lines printed per second and kind; the rest are summed up once a second. */
export const SESSION_LINES_PER_S = 64
type SessionLineKind = "connections" | "UDP streams started" | "UDP stream results"
export const DEFAULT_UDP_SEND_MAX_MS = 60_000

const defaultPrint = (line: string): void => {
  process.stdout.write(line + "\n")
}

/**
 * Buffers of iperf connections. The send buffer bounds data in flight for -R/-d/-r; the receive window of a
 * sink-mode connection costs no memory until segments arrive out of order (the ring's pages are untouched).
 */
const SEND_BUF = 1 << 20
const RECV_WINDOW = 1 << 20 // 64 connections x 1 MiB bounds -P 64 at the default TAP queue (peak RSS 229 -> 183 MB here)

/** The client's request in words, for the log: `-t 2.00 s at 1048576 bit/s, 1470-byte datagrams`. */
const describeLimit = (s: Wire.SettingsRepr): string =>
  (s.amount.kind === "time" ? `-t ${(s.amount.durationMs / 1000).toFixed(2)} s` : `-n ${s.amount.bytes} bytes`) +
  ` at ${s.rate} ${(s.upperFlags & Wire.UPPER_UNITS_PPS) !== 0 ? "pps" : "bit/s"}`

const peer = (c: TcpConnection): string => `${formatIpv4(c.remoteAddress)}:${c.remotePort}`

export const make = (opts: IperfOptions = {}) =>
  Effect.gen(function* () {
    const tcp = yield* Tcp
    const udp = yield* Udp
    const port = opts.port ?? 5001
    const print = opts.print ?? defaultPrint
    const headerTimeoutMs = opts.headerTimeoutMs ?? 10_000
    const wallUs = opts.wallClockUs ?? (() => Math.round((performance.timeOrigin + performance.now()) * 1000))
    const pattern = Session.makePattern(Session.MAX_WRITE_LEN)
    const stats: IperfStats = {
      tcpSessions: 0,
      tcpSessionsActive: 0,
      tcpBytesIn: 0,
      tcpBytesOut: 0,
      connectBacks: 0,
      connectBackFailures: 0,
      rejectedHeaders: 0,
      sessionErrors: 0,
      udpStreams: 0,
      udpStreamsActive: 0,
      udpBytesIn: 0,
      udpDatagramsIn: 0,
      udpReportsOut: 0,
      udpStreamDrops: 0,
      udpSendStreams: 0,
      udpSendStreamsActive: 0,
      udpSendRefused: 0,
      udpSendDrops: 0,
      udpDatagramsOut: 0,
      udpBytesOut: 0,
      udpSendErrors: 0,
      udpSendSkipped: 0,
      udpReportsIn: 0,
      udpBadReplies: 0,
      headerTimeouts: 0,
      stalledSessions: 0,
      closeGraceAborts: 0,
      udpStreamEvictions: 0,
      udpSendUnreachableStops: 0,
      udpSendUnverifiedStops: 0,
      udpSendPerDestRefused: 0,
      udpSendCapped: 0,
      logSuppressed: 0
    }
    const stallMs = opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS
    const udpSendMaxMs = opts.udpSendMaxMs ?? DEFAULT_UDP_SEND_MAX_MS
    const graceMs = opts.closeGraceMs ?? 3_000
    const limiter = yield* LogLimiter.make(print)
    /**
     * Session starts ("Connection from", "UDP stream from" and a UDP stream's summary): a global cap of
     * SESSION_LINES_PER_S per kind (a -P 64 test prints all its lines; a flood of forged UDP source ports does not).
     */
    const sessionLimiter = yield* LogLimiter.make(print, SESSION_LINES_PER_S)
    /** A refusal/drop line: a few per second per kind, then one summary line. */
    const logLimited = (kind: string, line: string): void => {
      limiter.line(kind, line)
      stats.logSuppressed = limiter.suppressed() + sessionLimiter.suppressed()
    }
    /** A session-start line (kinds: SessionLineKind), under the session cap. */
    const logSession = (kind: SessionLineKind, line: string): void => {
      sessionLimiter.line(kind, line)
      stats.logSuppressed = limiter.suppressed() + sessionLimiter.suppressed()
    }

    /**
     * Reset `c` when nothing moves on it for `stallMs` (no byte in, no new byte sent into the peer's window), after
     * calling `onStall`. Run it forked beside the code that uses `c`; it returns only after a stall. `g.limitMs` may
     * be raised while it runs (a rate-limited client, `Guard.stallLimitMs`).
     */
    const watchStall = (c: TcpConnection, onStall: () => void, given?: Guard.Stall) =>
      Effect.gen(function* () {
        const g = given ?? Guard.makeStall(stallMs, yield* Clock.currentTimeMillis)
        for (;;) {
          const now = yield* Clock.currentTimeMillis
          const k = c.counters()
          if (Guard.check(g, k.bytesIn + k.bytesOut, now) === "Stalled") {
            stats.stalledSessions++
            onStall()
            yield* c.abort
            return
          }
          yield* Effect.sleep(Duration.millis(Guard.nextCheckMs(g, now) - now))
        }
      })

    /** Wait up to the grace for `c` to close; reset it if the peer does not let it (a zero window, no FIN). */
    const closeWithin = (c: TcpConnection, ms: number) =>
      Effect.gen(function* () {
        const r = yield* c.awaitClosed.pipe(Effect.timeout(Duration.millis(ms)), Effect.option)
        if (r._tag === "None") {
          stats.closeGraceAborts++
          yield* c.abort
        }
      })
    let nextId = 1
    const sessions = yield* FiberSet.make<void, never>()

    // --- sending -----------------------------------------------------------------------------
    /** Send per `spec` on `c` from the pattern; returns the bytes sent. Time mode stops at T even when blocked. */
    const runSender = (c: TcpConnection, spec: Session.SendSpec, writeLen: number) =>
      Effect.gen(function* () {
        const s = Session.makeSender(spec, yield* Clock.currentTimeMillis)
        const deadline = Session.deadlineMs(s)
        // Time mode: one timer for the whole stream wakes the writer at T even if it is blocked on a full buffer.
        const timer =
          deadline === undefined
            ? undefined
            : yield* Effect.fork(Effect.zipRight(sleepMillis(deadline - s.startMs), Effect.sync(() => c.wakeWriters())))
        while (true) {
          const now = yield* Clock.currentTimeMillis
          const n = Session.nextWriteLen(s, now, writeLen)
          if (n === 0) break
          const k = yield* c.tryWrite(Session.view(pattern, s.sent, n))
          if (k > 0) {
            Session.commit(s, k)
            stats.tcpBytesOut += k
            continue
          }
          yield* c.awaitWritable
        }
        if (timer !== undefined) yield* Fiber.interrupt(timer)
        return s.sent
      })

    /** Connect back to the client for `-r`/`-d`, retrying while its listener is not up yet, within its window. */
    const connectBack = (id: number, to: Ipv4Address, cb: Session.ConnectBack, writeLen: number, windowMs: number | undefined) =>
      Effect.scoped(
        Effect.gen(function* () {
          const started = yield* Clock.currentTimeMillis
          const limit = started + (windowMs ?? 10_000)
          let conn: TcpConnection | undefined
          let lastError: TcpError | undefined
          while (conn === undefined) {
            const r = yield* Effect.either(tcp.connect(to, cb.port, { sendBufBytes: SEND_BUF }))
            if (r._tag === "Right") conn = r.right
            else {
              lastError = r.left
              if (r.left.reason !== "Refused" || (yield* Clock.currentTimeMillis) + 100 > limit) break
              yield* Effect.sleep(Duration.millis(100))
            }
          }
          if (conn === undefined) {
            stats.connectBackFailures++
            logLimited(
              "connect-backs failed",
              `[${String(id).padStart(3)}] connect back to ${formatIpv4(to)}:${cb.port} failed: ${lastError?.message ?? "unknown"}`
            )
            return
          }
          stats.connectBacks++
          const c = conn
          print(`Connected to ${formatIpv4(to)}:${cb.port}`)
          print(`[ *${id}] local ${formatIpv4(c.localAddress)} port ${c.localPort} connected with ${formatIpv4(to)} port ${cb.port} (reverse)`)
          const t0 = yield* Clock.currentTimeMillis
          const watcher = yield* Effect.fork(
            watchStall(c, () => logLimited("stalled sessions reset", `[ *${id}] nothing moved for ${stallMs} ms (the client does not read); resetting`))
          )
          const sent = yield* runSender(c, cb.send, writeLen).pipe(Effect.ensuring(Fiber.interrupt(watcher)))
          yield* c.shutdownWrite
          // the client's listener reads until our FIN, then closes its side
          const t1 = yield* Clock.currentTimeMillis
          print(Fmt.formatInterval(id, 0, (t1 - t0) / 1000, sent, true))
          yield* closeWithin(c, Math.max(graceMs, 5_000))
          print(`[ *${id}] closed`)
        })
      ).pipe(
        Effect.catchAll((e) =>
          Effect.sync(() => {
            stats.sessionErrors++
            logLimited("reverse streams ended early", `[ *${id}] reverse stream ended: ${e.message}`)
          })
        )
      )

    // --- one TCP session ------------------------------------------------------------------------
    /**
     * One accepted connection: a stall watcher beside the session (it resets the connection when nothing moves, in
     * every mode and phase, the header wait included: 4 bytes that parse as "no header" and then silence end too).
     */
    const session = (c: TcpConnection) =>
      Effect.gen(function* () {
        const flag = { stalled: false, stall: Guard.makeStall(stallMs, yield* Clock.currentTimeMillis) }
        const watcher = yield* Effect.fork(watchStall(c, () => (flag.stalled = true), flag.stall))
        yield* sessionBody(c, flag).pipe(Effect.ensuring(Fiber.interrupt(watcher)))
      })

    const sessionBody = (c: TcpConnection, flag: { stalled: boolean; readonly stall: Guard.Stall }) =>
      Effect.gen(function* () {
        const id = nextId++
        stats.tcpSessions++
        stats.tcpSessionsActive++
        const t0 = yield* Clock.currentTimeMillis
        const idCol = `[${String(id).padStart(3)}]`
        const parser = Wire.makeHeaderParser()
        let header: Wire.FeedResult | undefined
        const headerSignal = new Signal()
        let bytes = 0
        c.sink((buf, start, end) => {
          bytes += end - start
          stats.tcpBytesIn += end - start
          if (header === undefined) {
            const r = Wire.feedHeader(parser, buf.subarray(start, end))
            if (r._tag !== "NeedMore") {
              header = r
              headerSignal.notify()
            }
          }
        })

        // Interval reports (server side, like iperf -s -i); the last, partial interval is printed at the end.
        const ival = { step: (opts.intervalS ?? 0) * 1000, k: 0, lastBytes: 0 }
        const intervalFiber =
          opts.intervalS === undefined
            ? undefined
            : yield* Effect.fork(
                Effect.gen(function* () {
                  while (true) {
                    yield* sleepMillis(ival.step)
                    const b = bytes
                    print(Fmt.formatInterval(id, (ival.k * ival.step) / 1000, ((ival.k + 1) * ival.step) / 1000, b - ival.lastBytes))
                    ival.lastBytes = b
                    ival.k++
                  }
                })
              )
        const finishIntervals = (tEnd: number) =>
          Effect.gen(function* () {
            if (intervalFiber === undefined) return
            yield* Fiber.interrupt(intervalFiber)
            const from = ival.k * ival.step
            if (tEnd - t0 - from >= 1) print(Fmt.formatInterval(id, from / 1000, (tEnd - t0) / 1000, bytes - ival.lastBytes))
          })

        // Wait for the header, or the client's FIN/reset, or a timeout (a client that never sends one).
        type HeaderWait = "header" | "closed" | "timeout"
        const waited: HeaderWait = yield* Effect.raceFirst(
          Effect.as(
            Effect.suspend(function loop(): Effect.Effect<void> {
              return header !== undefined ? Effect.void : Effect.zipRight(headerSignal.wait, Effect.suspend(loop))
            }),
            "header" as HeaderWait
          ),
          Effect.raceFirst(
            Effect.as(Effect.either(c.awaitPeerFin), "closed" as HeaderWait),
            Effect.as(Effect.sleep(Duration.millis(headerTimeoutMs)), "timeout" as HeaderWait)
          )
        )
        const settled = header as Wire.FeedResult | undefined
        if (settled === undefined || settled._tag !== "Done") {
          // No session started: one (rate-limited) line, so a flood of such connections cannot flood the log.
          if (settled?._tag === "Rejected") {
            stats.rejectedHeaders++
            logLimited("connections with a bad header closed", `${idCol} bad header from ${peer(c)}: ${settled.reason}; closing`)
            yield* c.abort
          } else if (waited === "timeout" || (flag.stalled && settled === undefined)) {
            stats.headerTimeouts++
            logLimited(
              "connections without a header closed",
              `${idCol} no header from ${peer(c)} within ${headerTimeoutMs} ms (${bytes} bytes); closing`
            )
            yield* c.abort
          } else if (flag.stalled) {
            stats.headerTimeouts++
            logLimited("connections without a header closed", `${idCol} ${peer(c)} sent ${bytes} bytes and then nothing for ${stallMs} ms; reset`)
          } else {
            // the client closed (or reset) before a whole header arrived
            logLimited("connections closed before a header", `${idCol} ${peer(c)} closed the connection before sending a whole header (${bytes} bytes)`)
            yield* c.shutdownWrite
            yield* closeWithin(c, graceMs)
          }
          if (intervalFiber !== undefined) yield* Fiber.interrupt(intervalFiber)
          return
        }
        const settings = settled.settings
        // a rate-limited client (`-b`) writes whole buffers in bursts (128 KiB at 80 kbit/s: one every 13 s)
        flag.stall.limitMs = Guard.stallLimitMs(stallMs, settings.rate, settings.bufferLen > 0 ? settings.bufferLen : Session.DEFAULT_WRITE_LEN)
        // a header-less stream (`-C`, an old client) is also what 4 zero bytes look like: its line is rate-limited
        if (settings.hasHeader) logSession("connections", `${idCol} Connection from ${peer(c)}`)
        else logLimited("connections without a header (-C)", `${idCol} Connection from ${peer(c)} (no header: -C)`)
        const plan = Session.plan(settings)
        if (plan.refuse !== undefined) {
          stats.rejectedHeaders++
          logLimited("unsupported tests refused", `${idCol} unsupported test from ${peer(c)} (${plan.refuse}); closing`)
          yield* c.abort
          return
        }
        if (plan.label !== "") print(`[${String(id).padStart(3)}] ${peer(c)} ${plan.label}`)
        if (plan.sendAck) yield* c.write(Wire.makeAck())

        const clientIp = c.remoteAddress
        const backWindow = Session.connectBackWindowMs(settings)
        if (plan.connectBack?.when === "now") {
          yield* FiberSet.run(sessions, connectBack(nextId++, clientIp, plan.connectBack, plan.writeLen, backWindow))
        }
        const sender =
          plan.sendHere === undefined
            ? undefined
            : yield* Effect.fork(
                Effect.gen(function* () {
                  const sent = yield* runSender(c, plan.sendHere!, plan.writeLen)
                  yield* c.shutdownWrite
                  return sent
                })
              )

        // Receive until the client's FIN; in time mode give up at T + 2 s past the header like the real server.
        type End = { readonly kind: "fin" } | { readonly kind: "error"; readonly error: TcpError } | { readonly kind: "deadline" }
        const awaitFin: Effect.Effect<End> = c.awaitPeerFin.pipe(
          Effect.as<End>({ kind: "fin" }),
          Effect.catchAll((error) => Effect.succeed<End>({ kind: "error", error }))
        )
        const fin: End =
          plan.receiveDeadlineMs === undefined
            ? yield* awaitFin
            : yield* Effect.raceFirst(
                awaitFin,
                Effect.as(
                  sleepMillis(plan.receiveDeadlineMs + (plan.sendHere !== undefined ? 2_000 : 0)),
                  { kind: "deadline" } as End
                )
              )
        const tEnd = yield* Clock.currentTimeMillis
        let sentHere = 0
        if (sender !== undefined) {
          const r = yield* Fiber.await(sender)
          if (r._tag === "Success") sentHere = r.value
        }
        yield* c.shutdownWrite
        yield* finishIntervals(tEnd)
        if (flag.stalled) {
          // one rate-limited line: a flood of connections that go silent does not flood the log
          stats.sessionErrors++
          logLimited("stalled sessions reset", `${idCol} nothing moved with ${peer(c)} for ${flag.stall.limitMs} ms (${bytes} bytes in); reset`)
          return
        }
        if (fin.kind === "error") {
          stats.sessionErrors++
          print(`[${String(id).padStart(3)}] ${peer(c)} ended the test early: ${fin.error.message}`)
        } else if (fin.kind === "deadline") {
          stats.sessionErrors++
          print(`[${String(id).padStart(3)}] ${peer(c)} did not finish within the test time + 2 s; closing`)
        }
        print(Fmt.formatInterval(id, 0, (tEnd - t0) / 1000, bytes))
        if (sender !== undefined) print(Fmt.formatInterval(id, 0, (tEnd - t0) / 1000, sentHere, true))
        // the test is over: a peer that neither closes nor reads (a zero window) gets a bounded grace, then a reset
        yield* closeWithin(c, graceMs)
        print(`[${String(id).padStart(3)}] closed`)
        if (plan.connectBack?.when === "afterClose" && fin.kind === "fin") {
          yield* Effect.sleep(Duration.millis(Session.CONNECT_BACK_DELAY_MS))
          yield* FiberSet.run(sessions, connectBack(nextId++, clientIp, plan.connectBack, plan.writeLen, backWindow))
        }
      }).pipe(
        Effect.catchAll((e) =>
          Effect.sync(() => {
            stats.sessionErrors++
            print(`[---] session with ${peer(c)} failed: ${e.message}`)
          })
        ),
        Effect.ensuring(Effect.sync(() => stats.tcpSessionsActive--))
      )

    const conns = yield* tcp.listen(port, { recvMode: "sink", backlog: 256, nagle: false, sendBufBytes: SEND_BUF, recvBufBytes: RECV_WINDOW })
    yield* conns.pipe(
      Stream.runForEach((c) => FiberSet.run(sessions, session(c))),
      Effect.forkScoped
    )
    print(`Server listening on TCP port ${port}`)

    // --- UDP ---------------------------------------------------------------------------------------
    if (opts.udp !== false) {
      const maxStreams = opts.maxUdpStreams ?? 64
      const maxSenders = opts.maxUdpSenders ?? 16
      const maxPerAddress = Math.max(1, Math.min(maxSenders, opts.maxUdpSendersPerAddress ?? 8))
      const forkSession = yield* FiberSet.runtime(sessions)<never>()
      const idCol = (id: number): string => `[${String(id).padStart(3)}]`

      // --- sending (-u -r, -u -d, -u -R) ------------------------------------------------------------
      /**
       * Monotonic milliseconds with fractions (pacing needs better than whole milliseconds at high rates). The one
       * clock of the UDP side: datagram arrivals (the `-u -d` silence rule, reports, table ages) are stamped with it
       * too, not with the stack's `d.nowMs` (Clock.currentTimeMillis, Date.now(), which may step or drift apart).
       */
      const udpClock = yield* Effect.clock
      const nowSync = (): number => Number(udpClock.unsafeCurrentTimeNanos()) / 1e6
      const nowMs = Effect.sync(nowSync)

      interface SendTarget {
        readonly id: number
        readonly local: Ipv4Address
        readonly dst: Ipv4Address
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

      /** Sending streams by destination address: at most `maxPerAddress` each. */
      const sendingTo = new Map<Ipv4Address, number>()
      /** `-R` streams (sent from the iperf port) by destination address * 65536 + port, to stop them on ICMP errors. */
      /** How often a sending stream looks for a stop while it waits between datagrams. */
      const STOP_POLL_MS = 50
      const reverseStops = new Map<number, (why: StopReason) => void>()
      type StopReason = { readonly kind: "unreachable"; readonly code: number; readonly reporter: Ipv4Address } | { readonly kind: "unverified"; readonly why: Guard.SendVerdict }

      /** Reserve one of the sending slots; false (counted, logged) when all are taken. */
      const takeSenderSlot = (id: number, from: string, dst: Ipv4Address): boolean => {
        if (stats.udpSendStreamsActive >= maxSenders) {
          stats.udpSendDrops++
          logLimited("UDP send requests over the cap dropped", `${idCol(id)} not sending UDP to ${from}: ${maxSenders} sending streams already run`)
          return false
        }
        const toDst = sendingTo.get(dst) ?? 0
        if (toDst >= maxPerAddress) {
          stats.udpSendPerDestRefused++
          logLimited(
            "UDP send requests refused (streams per address)",
            `${idCol(id)} not sending UDP to ${from}: that address already gets ${toDst} stream${toDst === 1 ? "" : "s"} from us (at most ${maxPerAddress})`
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
            `${idCol(id)} refusing to send UDP to ${from}: ${p.reason} (${describeLimit(settings)}; at most ${UdpSend.MAX_DURATION_MS / 1000} s)`
          )
          return undefined
        }
        return p
      }
      /** Once the stream has its slot: what its plan changed in the request (capped lines: a flood can ask for it). */
      const noteAdjusted = (id: number, p: UdpSend.SendPlan, from: string): void => {
        if (p.clamped.includes("DurationCapped")) stats.udpSendCapped++
        if (p.clamped.length > 0) logLimited("UDP send requests adjusted", `${idCol(id)} UDP send request from ${from} adjusted: ${p.clamped.join(", ")}`)
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
            const dstKey = t.dst * 65536 + t.dstPort
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
            if (back) {
              print(`Client connecting to ${formatIpv4(t.dst)}, UDP port ${t.dstPort}`)
              print(`Sending ${p.datagramLen} byte datagrams, IPG target: ${(p.intervalMs * 1000).toFixed(2)} us`)
            }
            print(
              `${tag}local ${formatIpv4(t.local)} port ${local} connected with ${formatIpv4(t.dst)} port ${t.dstPort} ` +
                (back ? "(reverse)" : "(reverse) (no-udp-fin)")
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
                  `${tag}stopped sending to ${formatIpv4(t.dst)}:${t.dstPort} after ${s.sent} datagrams: ICMP destination unreachable (code ${st.code}) from ${formatIpv4(st.reporter)}`
                )
              } else {
                stats.udpSendUnverifiedStops++
                logLimited(
                  "UDP streams stopped (destination not verified)",
                  `${tag}stopped sending to ${formatIpv4(t.dst)}:${t.dstPort} after ${s.sent} datagrams (${s.bytes} bytes): ` +
                    (st.why === "ClientSilent"
                      ? `its own stream stopped arriving ${Math.round(silence)} ms ago`
                      : `${Guard.AMPLIFICATION}x the ${t.evidence?.bytes ?? 0} bytes it sent us`)
                )
              }
              return
            }
            stats.udpSendSkipped += s.skipped
            print(Fmt.BW_HEADER)
            print(Fmt.formatInterval(t.id, 0, UdpSend.elapsedS(s, 0), s.bytes, back))
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
            print(`${plainTag}Sent ${s.nextSeq} datagrams`)
            const r = s.report
            if (r !== undefined) {
              print(`${plainTag}Server Report:`)
              print(Fmt.UDP_HEADER)
              const line = Fmt.formatUdpInterval(
                t.id, 0, IperfUdp.pairSeconds(r.stop), r.bytes, IperfUdp.pairSeconds(r.jitter), r.lost, r.datagrams
              )
              print(tag + line.slice(plainTag.length))
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
              const left = (sendingTo.get(t.dst) ?? 1) - 1
              if (left > 0) sendingTo.set(t.dst, left)
              else sendingTo.delete(t.dst)
            })
          )
        )

      /** `-r`/`-d`: a new stream from an ephemeral port to (client, mPort), after `delayMs`. */
      const startConnectBack = (id: number, local: Ipv4Address, client: RecvSession, delayMs: number): void => {
        const settings = client.settings
        const from = `${formatIpv4(client.src)}:${settings.mPort}`
        if (settings.mPort === 0) {
          stats.udpSendRefused++
          logLimited("UDP send requests refused", `${idCol(id)} refusing to send UDP to ${formatIpv4(client.src)}: no port in the header`)
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
        forkSession(
          runUdpSender({
            id, local, dst: client.src, dstPort: settings.mPort, srcPort: undefined, awaitReport: true, plan: p, delayMs, evidence, live
          }).pipe(Effect.ensuring(Effect.sync(() => (client.feeding = false))))
        )
      }

      // --- receiving (and the -R requests) on the iperf port ---------------------------------------
      interface RecvSession {
        readonly kind: "recv"
        readonly id: number
        readonly st: IperfUdp.UdpStream
        readonly src: Ipv4Address
        readonly srcPort: number
        readonly local: Ipv4Address
        readonly settings: Wire.SettingsRepr
        lastMs: number
        printed: boolean
        /** `-d`: our own stream to this client runs and takes this entry as its evidence (evicted last). */
        feeding: boolean
        /** `-r` only: ends the receive side at T + 2 s if the client's final datagrams never come. */
        watchdog: Fiber.RuntimeFiber<void> | undefined
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
      const streams = new Map<number, UdpSession>()
      const reportBuf = new Uint8Array(IperfUdp.REPORT_LEN)
      const sendReport = (s: RecvSession, nowMs: number): void => {
        IperfUdp.emitServerReport(IperfUdp.report(s.st), reportBuf)
        if (udp.send(port, s.src, s.srcPort, reportBuf)) stats.udpReportsOut++
        IperfUdp.noteReportSent(s.st, nowMs)
        finishReceive(s, "")
      }
      /** Print a receive stream's line once; for `-r` start the server's own stream 250 ms later (after our report). */
      const finishReceive = (s: RecvSession, note: string): void => {
        if (s.printed) return
        s.printed = true
        s.watchdog?.unsafeInterruptAsFork(FiberId.none)
        s.watchdog = undefined
        const r = IperfUdp.report(s.st)
        logSession(
          "UDP stream results",
          Fmt.formatUdpInterval(s.id, 0, IperfUdp.pairSeconds(r.stop), s.st.bytes, IperfUdp.pairSeconds(r.jitter), r.lost, r.datagrams) + note
        )
        if (s.settings.mode === "tradeoff") startConnectBack(nextId++, s.local, s, IperfUdp.REPORT_SILENCE_MS)
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
      const perSource = new Map<Ipv4Address, number>()
      const srcOf = (key: number): Ipv4Address => Math.floor(key / 65536) as Ipv4Address
      const admit = (key: number, o: UdpSession): void => {
        streams.set(key, o)
        const src = srcOf(key)
        perSource.set(src, (perSource.get(src) ?? 0) + 1)
        stats.udpStreams++
        stats.udpStreamsActive++
      }
      /** The eviction rule's view of an entry (Guard.pickVictim). */
      const tableEntry = (o: UdpSession): Guard.TableEntry =>
        o.kind === "recv"
          ? { datagrams: o.st.datagrams, lastMs: o.lastMs, feedsSender: o.feeding }
          : { datagrams: 0, lastMs: o.lastMs, feedsSender: o.active }
      function* entriesFrom(src: Ipv4Address | undefined): Generator<readonly [number, Guard.TableEntry]> {
        for (const [k, o] of streams) if (src === undefined || srcOf(k) === src) yield [k, tableEntry(o)]
      }
      /** Forget the entry Guard.pickVictim picks (among `src`'s own, or all), counted and logged (limited). */
      const evict = (src: Ipv4Address | undefined, why: string, forKey: number): void => {
        const k = Guard.pickVictim(entriesFrom(src))
        const o = k === undefined ? undefined : streams.get(k)
        if (k === undefined || o === undefined) return
        forget(k, o)
        stats.udpStreamEvictions++
        logLimited(
          "UDP streams evicted (table full)",
          `${idCol(o.id)} ${why}: forgot the least proven, idlest stream to admit ${formatIpv4(srcOf(forKey))}:${forKey % 65536}`
        )
      }

      const forget = (key: number, o: UdpSession): void => {
        streams.delete(key)
        const src = srcOf(key)
        const n = (perSource.get(src) ?? 1) - 1
        if (n > 0) perSource.set(src, n)
        else perSource.delete(src)
        stats.udpStreamsActive--
        if (o.kind === "recv") {
          o.watchdog?.unsafeInterruptAsFork(FiberId.none)
          o.watchdog = undefined
        }
      }

      yield* udp.bind(port, (d) => {
        const now = nowSync()
        const key = d.src * 65536 + d.srcPort
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
          if ((perSource.get(d.src) ?? 0) >= Guard.MAX_STREAMS_PER_SOURCE) {
            // one address (forged source ports) cannot fill the table: it makes room among its own entries
            evict(d.src, `${formatIpv4(d.src)} holds ${Guard.MAX_STREAMS_PER_SOURCE} UDP streams`, key)
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
          const id = nextId++
          const from = `${formatIpv4(d.src)}:${d.srcPort}`
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
            const ended = Effect.flatMap(nowMs, (t) =>
              Effect.sync(() => {
                rs.active = false
                rs.endMs = t
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
            printed: false, feeding: false, watchdog: undefined
          }
          s = rs
          admit(key, rs)
          const label = settings.mode === "dual" ? " (dual)" : settings.mode === "tradeoff" ? " (tradeoff)" : ""
          // a 20-byte datagram from any (forged) source port starts a header-less stream: capped, like all starts
          logSession("UDP streams started", `${idCol(id)} UDP stream from ${from}${label}`)
          // -d: the server's own test starts at once, beside this one
          if (settings.mode === "dual") startConnectBack(nextId++, d.dst, rs, Session.CONNECT_BACK_DELAY_MS)
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
        reverseStops.get(e.remote * 65536 + e.remotePort)?.({ kind: "unreachable", code: e.code, reporter: e.reporter })
      })
      print(`Server listening on UDP port ${port}`)
    }

    return Iperf.of({ port, stats })
  })

export const layer = (opts: IperfOptions = {}): Layer.Layer<Iperf, TcpError | import("./Udp.js").UdpError, Tcp | Udp> =>
  Layer.scoped(Iperf, make(opts))
