/**
 * The iperf 2 server's TCP side (iperf-wire.md §A): every accepted connection is a session fiber. Received bytes go
 * to a sink in the receive burst: the settings header is parsed once at stream offset 0, and the rest is only
 * counted, never copied. The session follows `Session.plan`: the 28-byte ack, sending on the same socket (`-R`,
 * `--full-duplex`), connect-back now (`-d`) or after this connection closed (`-r`), and a FIN right after the
 * client's FIN. Data we send are views of one preallocated pattern buffer. A session that goes wrong (reset, garbage
 * header, refused connect-back, nothing moving for the stall timeout) ends alone, with a logged reason.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberSet from "effect/FiberSet"
import * as Stream from "effect/Stream"
import { formatEndpoint, type IpAddress } from "../../protocols/ipAddress.js"
import * as Fmt from "../../protocols/iperf/format.js"
import * as Guard from "../../protocols/iperf/guard.js"
import * as Session from "../../protocols/iperf/session.js"
import * as Wire from "../../protocols/iperf/wire.js"
import { sleepMillis } from "../Sleep.js"
import { Tcp, type TcpConnection, type TcpError } from "../Tcp.js"
import { makeParallelGroups, pairSum, type IperfShell, type PairSum, type TestPart } from "./shell.js"

/**
 * Buffers of iperf connections. The send buffer bounds data in flight for -R/-d/-r; the receive window of a
 * sink-mode connection costs no memory until segments arrive out of order (the ring's pages are untouched).
 */
const SEND_BUF = 1 << 20
export const RECV_WINDOW = 1 << 20 // 64 connections x 1 MiB bounds -P 64 at the default TAP queue (peak RSS 229 -> 183 MB here)

const peer = (c: TcpConnection): string => `${formatEndpoint(c.remoteAddress, c.remotePort)}`
const host = Fmt.formatHost
type Ends = Pick<Fmt.StreamReport, "local" | "localPort" | "remote" | "remotePort">
const endsOf = (c: TcpConnection): Ends => ({
  local: host(c.localAddress), localPort: c.localPort, remote: host(c.remoteAddress), remotePort: c.remotePort
})

/** Listen on the iperf port and serve every connection for the scope's lifetime. */
export const serveTcp = (sh: IperfShell) =>
  Effect.gen(function* () {
    const tcp = yield* Tcp
    const { opts, port, stats, stallMs, graceMs, headerTimeoutMs, pattern, sessions, logLimited } = sh
    const parallelSum = makeParallelGroups(sh)

    /**
     * Interval reports of one stream (server side, like `iperf -s -i`): `bytes` read every step; `finish` prints the
     * last, partial interval (unless it is very short), as the real server does before the total.
     */
    const intervals = (id: number, reverse: boolean, bytes: () => number, t0: number, ends: Ends, sum?: PairSum) =>
      Effect.gen(function* () {
        const ival = { step: (opts.intervalS ?? 0) * 1000, k: 0, lastBytes: 0 }
        const fiber =
          opts.intervalS === undefined
            ? undefined
            : yield* Effect.fork(
                Effect.gen(function* () {
                  while (true) {
                    yield* sleepMillis(t0 + (ival.k + 1) * ival.step - (yield* Clock.currentTimeMillis))
                    const b = bytes()
                    const startS = (ival.k * ival.step) / 1000
                    const endS = ((ival.k + 1) * ival.step) / 1000
                    sh.report({ id, sent: reverse, startS, endS, bytes: b - ival.lastBytes, ...ends })
                    sum?.addInterval(ival.k, startS, endS, b - ival.lastBytes)
                    ival.lastBytes = b
                    ival.k++
                  }
                })
              )
        return {
          stop: fiber === undefined ? Effect.void : Fiber.interrupt(fiber),
          finish: (tEnd: number) =>
            Effect.gen(function* () {
              if (fiber === undefined) return
              yield* Fiber.interrupt(fiber)
              const from = ival.k * ival.step
              // the real server printed no final partial interval of 1 to 16 ms in our captures (1 s steps): a
              // partial shorter than a tenth of the step is left out, a longer one printed before the total
              if (tEnd - t0 - from >= Math.max(1, ival.step / 10)) {
                sh.report({ id, sent: reverse, startS: from / 1000, endS: (tEnd - t0) / 1000, bytes: bytes() - ival.lastBytes, ...ends })
                sum?.addInterval(ival.k, from / 1000, (tEnd - t0) / 1000, bytes() - ival.lastBytes)
              }
            })
        }
      })

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

    // --- sending -----------------------------------------------------------------------------
    /** Send per `spec` on `c` from the pattern; returns the bytes sent. Time mode stops at T even when blocked. */
    const runSender = (c: TcpConnection, spec: Session.SendSpec, writeLen: number, progress?: { sent: number }) =>
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
            if (progress !== undefined) progress.sent = s.sent
            continue
          }
          yield* c.awaitWritable
        }
        if (timer !== undefined) yield* Fiber.interrupt(timer)
        return s.sent
      })

    /** Connect back to the client for `-r`/`-d`, retrying while its listener is not up yet, within its window. */
    const connectBack = (id: number, to: IpAddress, cb: Session.ConnectBack, writeLen: number, windowMs: number | undefined, sum?: PairSum) =>
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
              `${Fmt.idCol(id)} connect back to ${formatEndpoint(to, cb.port)} failed: ${lastError?.message ?? "unknown"}`
            )
            return
          }
          stats.connectBacks++
          const c = conn
          for (const l of Fmt.clientConnecting(host(to), "TCP", cb.port, SEND_BUF)) sh.human(l)
          const ends = endsOf(c)
          sh.connectionLine(Fmt.connectedWith(id, true, host(c.localAddress), c.localPort, host(to), cb.port, ["(reverse)"]))
          const t0 = yield* Clock.currentTimeMillis
          const progress = { sent: 0 }
          const ival = yield* intervals(id, true, () => progress.sent, t0, ends, sum)
          const watcher = yield* Effect.fork(
            watchStall(c, () => logLimited("stalled sessions reset", `${Fmt.transferId(id, true)}nothing moved for ${stallMs} ms (the client does not read); resetting`))
          )
          const sent = yield* runSender(c, cb.send, writeLen, progress).pipe(Effect.ensuring(Fiber.interrupt(watcher)), Effect.ensuring(ival.stop))
          yield* c.shutdownWrite
          // the client's listener reads until our FIN, then closes its side
          const t1 = yield* Clock.currentTimeMillis
          yield* ival.finish(t1)
          sh.report({ id, sent: true, startS: 0, endS: (t1 - t0) / 1000, bytes: sent, ...ends, total: true })
          sum?.add(sent, (t1 - t0) / 1000)
          yield* closeWithin(c, Math.max(graceMs, 5_000))
        })
      ).pipe(
        Effect.catchAll((e) =>
          Effect.sync(() => {
            stats.sessionErrors++
            logLimited("reverse streams ended early", `${Fmt.transferId(id, true)}reverse stream ended: ${e.message}`)
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
        const flag: SessionFlags = { stalled: false, stall: Guard.makeStall(stallMs, yield* Clock.currentTimeMillis), part: undefined }
        const watcher = yield* Effect.fork(watchStall(c, () => (flag.stalled = true), flag.stall))
        yield* sessionBody(c, flag).pipe(
          Effect.ensuring(Fiber.interrupt(watcher)),
          // after the session's last line: its part of the first test (--one-off) has ended
          Effect.ensuring(Effect.sync(() => flag.part?.end()))
        )
      })

    interface SessionFlags {
      stalled: boolean
      readonly stall: Guard.Stall
      /** This session's part of the first test, if it is in it. */
      part: TestPart | undefined
    }

    /** A connect-back of a session, as a part of the first test when the session is in it. */
    const runConnectBack = (flag: SessionFlags, connect: Effect.Effect<void>) => {
      const sub = flag.part?.sub()
      return FiberSet.run(sessions, sub === undefined ? connect : Effect.ensuring(connect, Effect.sync(() => sub.end())))
    }

    const sessionBody = (c: TcpConnection, flag: SessionFlags) =>
      Effect.gen(function* () {
        const id = sh.nextId()
        stats.tcpSessions++
        stats.tcpSessionsActive++
        const t0 = yield* Clock.currentTimeMillis
        const idCol = Fmt.idCol(id)
        const parser = Wire.makeHeaderParser()
        let header: Wire.FeedResult | undefined
        // settled once, from the receive burst: the header parsed or refused
        const headerDone = Deferred.unsafeMake<void>(FiberId.none)
        let bytes = 0
        c.sink((buf, start, end) => {
          bytes += end - start
          stats.tcpBytesIn += end - start
          if (header === undefined) {
            const r = Wire.feedHeader(parser, buf.subarray(start, end))
            if (r._tag !== "NeedMore") {
              header = r
              Deferred.unsafeDone(headerDone, Exit.void)
            }
          }
        })

        // Wait for the header, or the client's FIN/reset, or a timeout (a client that never sends one).
        type HeaderWait = "header" | "closed" | "timeout"
        const waited: HeaderWait = yield* Effect.raceFirst(
          Effect.as(Deferred.await(headerDone), "header" as HeaderWait),
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
          return
        }
        const settings = settled.settings
        // a rate-limited client (`-b`) writes whole buffers in bursts (128 KiB at 80 kbit/s: one every 13 s)
        flag.stall.limitMs = Guard.stallLimitMs(stallMs, settings.rate, settings.bufferLen > 0 ? settings.bufferLen : Session.DEFAULT_WRITE_LEN)
        const plan = Session.plan(settings)
        // -R: the stream is ours to send, marked `[ *1]` as the real server does
        const reverseOnly = plan.label === "(reverse)"
        const connLine = Fmt.connectedWith(
          id, reverseOnly, host(c.localAddress), c.localPort, host(c.remoteAddress), c.remotePort, plan.label === "" ? [] : [plan.label]
        )
        // a header-less stream (`-C`, an old client) is also what 4 zero bytes look like: its line is rate-limited
        if (settings.hasHeader) sh.connectionLine(connLine, (l) => sh.logSession("connections", l))
        else sh.connectionLine(`${connLine} (no header: -C)`, (l) => logLimited("connections without a header (-C)", l))
        if (plan.refuse !== undefined) {
          stats.rejectedHeaders++
          logLimited("unsupported tests refused", `${idCol} unsupported test from ${peer(c)} (${plan.refuse}); closing`)
          yield* c.abort
          return
        }
        flag.part = sh.joinTest(c.remoteAddress, settings.numThreads)
        if (plan.sendAck) yield* c.write(Wire.makeAck())

        const clientIp = c.remoteAddress
        const backWindow = Session.connectBackWindowMs(settings)
        // -d and --full-duplex end with a [SUM] of their two streams
        // -P k: the k streams' [SUM] (a plain one-direction test only)
        const pair = plan.connectBack?.when === "now" || (plan.sendHere !== undefined && !reverseOnly)
        const sum = pair
          ? pairSum(sh)
          : settings.numThreads > 1 && plan.connectBack === undefined && !reverseOnly
            ? parallelSum(c.remoteAddress, settings.numThreads)
            : undefined
        if (plan.connectBack?.when === "now") {
          yield* runConnectBack(flag, connectBack(sh.nextId(), clientIp, plan.connectBack, plan.writeLen, backWindow, sum))
        }
        const progress = { sent: 0 }
        // interval reports of what this connection carries: what we send for -R, what we receive otherwise
        // (--full-duplex: the received side; its sent side gets only its total)
        const ends = endsOf(c)
        // (--full-duplex: the [SUM] of its two directions has no interval part, only this side reports intervals)
        const ival = yield* intervals(id, reverseOnly, () => (reverseOnly ? progress.sent : bytes), t0, ends, plan.sendHere !== undefined ? undefined : sum)
        const sender =
          plan.sendHere === undefined
            ? undefined
            : yield* Effect.fork(
                Effect.gen(function* () {
                  const sent = yield* runSender(c, plan.sendHere!, plan.writeLen, progress)
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
        if (flag.stalled || fin.kind !== "fin") yield* ival.stop
        else yield* ival.finish(tEnd)
        if (flag.stalled) {
          // one rate-limited line: a flood of connections that go silent does not flood the log
          stats.sessionErrors++
          logLimited("stalled sessions reset", `${idCol} nothing moved with ${peer(c)} for ${flag.stall.limitMs} ms (${bytes} bytes in); reset`)
          return
        }
        if (fin.kind === "error") {
          stats.sessionErrors++
          sh.print(`${Fmt.idCol(id)} ${peer(c)} ended the test early: ${fin.error.message}`)
        } else if (fin.kind === "deadline") {
          stats.sessionErrors++
          sh.print(`${Fmt.idCol(id)} ${peer(c)} did not finish within the test time + 2 s; closing`)
        }
        const endS = (tEnd - t0) / 1000
        if (!reverseOnly) sh.report({ id, sent: false, startS: 0, endS, bytes, ...ends, total: true })
        if (sender !== undefined) sh.report({ id, sent: true, startS: 0, endS, bytes: sentHere, ...ends, total: true })
        if (sum !== undefined) {
          if (sender !== undefined) sum.add(sentHere, endS)
          sum.add(bytes, endS)
        }
        // the test is over: a peer that neither closes nor reads (a zero window) gets a bounded grace, then a reset
        yield* closeWithin(c, graceMs)
        if (plan.connectBack?.when === "afterClose" && fin.kind === "fin") {
          yield* Effect.sleep(Duration.millis(Session.CONNECT_BACK_DELAY_MS))
          yield* runConnectBack(flag, connectBack(sh.nextId(), clientIp, plan.connectBack, plan.writeLen, backWindow))
        }
      }).pipe(
        Effect.catchAll((e) =>
          Effect.sync(() => {
            stats.sessionErrors++
            sh.print(`[---] session with ${peer(c)} failed: ${e.message}`)
          })
        ),
        Effect.ensuring(Effect.sync(() => stats.tcpSessionsActive--))
      )

    const conns = yield* tcp.listen(port, { recvMode: "sink", backlog: 256, nagle: false, sendBufBytes: SEND_BUF, recvBufBytes: RECV_WINDOW })
    yield* conns.pipe(
      Stream.runForEach((c) => FiberSet.run(sessions, session(c))),
      Effect.forkScoped
    )

  })
