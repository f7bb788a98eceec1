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
import { Signal } from "./Signal.js"
import { Tcp, type TcpConnection, type TcpError } from "./Tcp.js"
import { Udp } from "./Udp.js"

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
  /** Wall-clock microseconds, for UDP transit times against the client's timestamps. */
  readonly wallClockUs?: () => number
}

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
      udpBadReplies: 0
    }
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
            : yield* Effect.fork(Effect.zipRight(Effect.sleep(Duration.millis(Math.max(0, deadline - s.startMs))), Effect.sync(() => c.wakeWriters())))
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
            print(`[${String(id).padStart(3)}] connect back to ${formatIpv4(to)}:${cb.port} failed: ${lastError?.message ?? "unknown"}`)
            return
          }
          stats.connectBacks++
          const c = conn
          print(`Connected to ${formatIpv4(to)}:${cb.port}`)
          print(`[ *${id}] local ${formatIpv4(c.localAddress)} port ${c.localPort} connected with ${formatIpv4(to)} port ${cb.port} (reverse)`)
          const t0 = yield* Clock.currentTimeMillis
          const sent = yield* runSender(c, cb.send, writeLen)
          yield* c.shutdownWrite
          // the client's listener reads until our FIN, then closes its side
          const t1 = yield* Clock.currentTimeMillis
          print(Fmt.formatInterval(id, 0, (t1 - t0) / 1000, sent, true))
          yield* c.awaitClosed.pipe(Effect.timeout(Duration.seconds(5)), Effect.ignore)
          print(`[ *${id}] closed`)
        })
      ).pipe(
        Effect.catchAll((e) =>
          Effect.sync(() => {
            stats.sessionErrors++
            print(`[ *${id}] reverse stream ended: ${e.message}`)
          })
        )
      )

    // --- one TCP session ------------------------------------------------------------------------
    const session = (c: TcpConnection) =>
      Effect.gen(function* () {
        const id = nextId++
        stats.tcpSessions++
        stats.tcpSessionsActive++
        const t0 = yield* Clock.currentTimeMillis
        print(`[${String(id).padStart(3)}] Connection from ${peer(c)}`)
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
                    yield* Effect.sleep(Duration.millis(ival.step))
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
          if (settled?._tag === "Rejected") {
            stats.rejectedHeaders++
            print(`[${String(id).padStart(3)}] bad header from ${peer(c)}: ${settled.reason}; closing`)
            yield* c.abort
          } else if (waited === "timeout") {
            print(`[${String(id).padStart(3)}] no header from ${peer(c)} within ${headerTimeoutMs} ms; closing`)
            yield* c.abort
          } else {
            // the client closed (or reset) before a whole header arrived: count what came and close
            print(`[${String(id).padStart(3)}] ${peer(c)} closed the connection before sending a whole header`)
            yield* c.shutdownWrite
          }
          const t1 = yield* Clock.currentTimeMillis
          yield* finishIntervals(t1)
          if (bytes > 0) print(Fmt.formatInterval(id, 0, (t1 - t0) / 1000, bytes))
          print(`[${String(id).padStart(3)}] closed`)
          return
        }
        const settings = settled.settings
        const plan = Session.plan(settings)
        if (plan.refuse !== undefined) {
          stats.rejectedHeaders++
          print(`[${String(id).padStart(3)}] unsupported test from ${peer(c)} (${plan.refuse}); closing`)
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
                  Effect.sleep(Duration.millis(plan.receiveDeadlineMs + (plan.sendHere !== undefined ? 2_000 : 0))),
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
        if (fin.kind === "error") {
          stats.sessionErrors++
          print(`[${String(id).padStart(3)}] ${peer(c)} ended the test early: ${fin.error.message}`)
        } else if (fin.kind === "deadline") {
          stats.sessionErrors++
          print(`[${String(id).padStart(3)}] ${peer(c)} did not finish within the test time + 2 s; closing`)
        }
        print(Fmt.formatInterval(id, 0, (tEnd - t0) / 1000, bytes))
        if (sender !== undefined) print(Fmt.formatInterval(id, 0, (tEnd - t0) / 1000, sentHere, true))
        yield* c.awaitClosed.pipe(Effect.timeout(Duration.seconds(3)), Effect.ignore)
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
      const forkSession = yield* FiberSet.runtime(sessions)<never>()
      const idCol = (id: number): string => `[${String(id).padStart(3)}]`

      // --- sending (-u -r, -u -d, -u -R) ------------------------------------------------------------
      /** Monotonic milliseconds with fractions (pacing needs better than whole milliseconds at high rates). */
      const nowMs = Effect.map(Clock.currentTimeNanos, (n) => Number(n) / 1e6)

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
      }

      /** Reserve one of the sending slots; false (counted, logged) when all are taken. */
      const takeSenderSlot = (id: number, from: string): boolean => {
        if (stats.udpSendStreamsActive >= maxSenders) {
          stats.udpSendDrops++
          print(`${idCol(id)} not sending UDP to ${from}: ${maxSenders} sending streams already run`)
          return false
        }
        stats.udpSendStreamsActive++
        stats.udpSendStreams++
        return true
      }

      /** Plan a sending stream from the client's header, or log why not (clamps are logged too). */
      const planFor = (id: number, settings: Wire.SettingsRepr, from: string): UdpSend.SendPlan | undefined => {
        const p = UdpSend.planSend(settings)
        if (p._tag === "Refused") {
          stats.udpSendRefused++
          print(`${idCol(id)} refusing to send UDP to ${from}: ${p.reason} (${describeLimit(settings)}; at most ${UdpSend.MAX_DURATION_MS / 1000} s)`)
          return undefined
        }
        if (p.clamped.length > 0) print(`${idCol(id)} UDP send request from ${from} adjusted: ${p.clamped.join(", ")}`)
        return p
      }

      /** One sending stream: paced bursts from one preallocated datagram, then the final datagram(s) and the report. */
      const runUdpSender = (t: SendTarget) =>
        Effect.scoped(
          Effect.gen(function* () {
            if (t.delayMs > 0) yield* Effect.sleep(Duration.millis(t.delayMs))
            const p = t.plan
            const s = UdpSend.makeSender(p, yield* nowMs)
            const replied = new Signal()
            const onReply = (payload: Uint8Array, atMs: number): void => {
              const r = UdpSend.onReply(s, payload, atMs)
              if (r === "Report") {
                stats.udpReportsIn++
                replied.notify()
              } else if (r === "NotAReport") stats.udpBadReplies++
            }
            const local =
              t.srcPort ??
              (yield* udp.bind(0, (d) => {
                if (d.src === t.dst && d.srcPort === t.dstPort) onReply(d.payload, d.nowMs)
                else stats.udpBadReplies++
              }))
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
            // data: a burst of whatever is due at each wake-up, wake-ups at least a tick apart
            for (;;) {
              const now = yield* nowMs
              const n = UdpSend.due(s, now)
              if (n > 0) {
                const wall = wallUs()
                for (let k = 0; k < n; k++) {
                  len = UdpSend.stampNext(s, dgram, wall)
                  sendOne()
                }
              }
              if (UdpSend.dataDone(s, now)) break
              yield* Effect.sleep(Duration.millis(UdpSend.sleepMs(s, now)))
            }
            stats.udpSendSkipped += s.skipped
            print(Fmt.BW_HEADER)
            print(Fmt.formatInterval(t.id, 0, UdpSend.elapsedS(s, 0), s.bytes, back))
            // end of stream: the negated next sequence, repeated with backoff until the report (bounded); `-R`: once
            if (t.awaitReport) {
              while (UdpSend.finDue(s)) {
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
              const wait = UdpSend.lingerMs(s, yield* Clock.currentTimeMillis)
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
          Effect.ensuring(Effect.sync(() => stats.udpSendStreamsActive--))
        )

      /** `-r`/`-d`: a new stream from an ephemeral port to (client, mPort), after `delayMs`. */
      const startConnectBack = (id: number, local: Ipv4Address, client: Ipv4Address, settings: Wire.SettingsRepr, delayMs: number): void => {
        const from = `${formatIpv4(client)}:${settings.mPort}`
        if (settings.mPort === 0) {
          stats.udpSendRefused++
          print(`${idCol(id)} refusing to send UDP to ${formatIpv4(client)}: no port in the header`)
          return
        }
        const p = planFor(id, settings, from)
        if (p === undefined || !takeSenderSlot(id, from)) return
        forkSession(runUdpSender({ id, local, dst: client, dstPort: settings.mPort, srcPort: undefined, awaitReport: true, plan: p, delayMs }))
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
        print(
          Fmt.formatUdpInterval(s.id, 0, IperfUdp.pairSeconds(r.stop), s.st.bytes, IperfUdp.pairSeconds(r.jitter), r.lost, r.datagrams) + note
        )
        if (s.settings.mode === "tradeoff") startConnectBack(nextId++, s.local, s.src, s.settings, IperfUdp.REPORT_SILENCE_MS)
      }
      /**
       * `-r` in time mode when the client's final datagrams are all lost: like the real server (T + 2 s, `SLOPSECS`),
       * end the receive side anyway, so the client's listener still gets our stream.
       */
      const tradeoffWatchdog = (s: RecvSession, durationMs: number) =>
        Effect.zipRight(
          Effect.sleep(Duration.millis(durationMs + Session.SERVER_SLOP_MS)),
          Effect.sync(() => {
            s.watchdog = undefined
            finishReceive(s, " (no final datagram)")
          })
        )
      const forgettable = (o: UdpSession, nowMs: number): boolean =>
        o.kind === "recv"
          ? (o.st.finished && IperfUdp.isSettled(o.st, nowMs)) || nowMs - o.lastMs > 10_000
          : !o.active && nowMs - Math.max(o.endMs, o.lastMs) > REVERSE_LINGER_MS

      const forget = (key: number, o: UdpSession): void => {
        streams.delete(key)
        stats.udpStreamsActive--
        if (o.kind === "recv") {
          o.watchdog?.unsafeInterruptAsFork(FiberId.none)
          o.watchdog = undefined
        }
      }

      yield* udp.bind(port, (d) => {
        const key = d.src * 65536 + d.srcPort
        let s = streams.get(key)
        if (s !== undefined && ((s.kind === "recv" && s.st.finished && IperfUdp.isSettled(s.st, d.nowMs)) || (s.kind === "reverse" && forgettable(s, d.nowMs)))) {
          forget(key, s)
          s = undefined
        }
        if (s === undefined) {
          if (streams.size >= maxStreams) {
            // make room: forget streams that are done or silent for 10 s
            for (const [k, o] of streams) {
              if (forgettable(o, d.nowMs)) forget(k, o)
            }
            if (streams.size >= maxStreams) {
              stats.udpStreamDrops++
              return
            }
          }
          const settings = Wire.decodeUdpSettings(d.payload)
          if (typeof settings === "string") {
            stats.rejectedHeaders++
            return
          }
          const id = nextId++
          const from = `${formatIpv4(d.src)}:${d.srcPort}`
          if (settings.mode === "reverse") {
            // -R: send from this port to the client's source port; nothing of the client's is accounted
            const rs: ReverseSession = { kind: "reverse", id, lastMs: d.nowMs, active: true, endMs: 0 }
            streams.set(key, rs)
            stats.udpStreams++
            stats.udpStreamsActive++
            const p = planFor(id, settings, from)
            if (p === undefined || !takeSenderSlot(id, from)) {
              // refused or over the cap: one end-of-stream datagram, so the client stops waiting for a stream that
              // will not come (its later header repeats are absorbed by this entry, so this answers once)
              rs.active = false
              rs.endMs = d.nowMs
              UdpSend.stamp(endMarker, -1, wallUs())
              if (udp.send(port, d.src, d.srcPort, endMarker)) stats.udpDatagramsOut++
              return
            }
            const ended = Effect.flatMap(Clock.currentTimeMillis, (t) =>
              Effect.sync(() => {
                rs.active = false
                rs.endMs = t
              })
            )
            forkSession(
              runUdpSender({ id, local: d.dst, dst: d.src, dstPort: d.srcPort, srcPort: port, awaitReport: false, plan: p, delayMs: 0 }).pipe(
                Effect.ensuring(ended)
              )
            )
            return
          }
          const rs: RecvSession = {
            kind: "recv", id, st: IperfUdp.makeStream(settings.seqNo64), src: d.src, srcPort: d.srcPort, local: d.dst, settings, lastMs: d.nowMs,
            printed: false, watchdog: undefined
          }
          s = rs
          streams.set(key, rs)
          stats.udpStreams++
          stats.udpStreamsActive++
          const label = settings.mode === "dual" ? " (dual)" : settings.mode === "tradeoff" ? " (tradeoff)" : ""
          print(`${idCol(id)} UDP stream from ${from}${label}`)
          // -d: the server's own test starts at once, beside this one
          if (settings.mode === "dual") startConnectBack(nextId++, d.dst, d.src, settings, Session.CONNECT_BACK_DELAY_MS)
          if (settings.mode === "tradeoff" && settings.amount.kind === "time" && settings.amount.durationMs <= UdpSend.MAX_DURATION_MS) {
            rs.watchdog = forkSession(tradeoffWatchdog(rs, settings.amount.durationMs))
          }
        }
        s.lastMs = d.nowMs
        if (s.kind === "reverse") return // a header repeat from before our first datagram reached the client
        stats.udpDatagramsIn++
        stats.udpBytesIn += d.payload.length
        const r = IperfUdp.onPayload(s.st, d.payload, wallUs())
        if (r === "Final") sendReport(s, d.nowMs)
        else if (r === "AfterFinal" && IperfUdp.shouldResend(s.st)) sendReport(s, d.nowMs)
      })
      print(`Server listening on UDP port ${port}`)
    }

    return Iperf.of({ port, stats })
  })

export const layer = (opts: IperfOptions = {}): Layer.Layer<Iperf, TcpError | import("./Udp.js").UdpError, Tcp | Udp> =>
  Layer.scoped(Iperf, make(opts))
