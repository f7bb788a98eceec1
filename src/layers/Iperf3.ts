/**
 * The iperf3 server (iperf3 3.12 clients; iperf-wire.md §C) on TCP 5201 over our Tcp layer: the Effect shell around
 * the pure machine in protocols/iperf3/session.ts.
 *
 * Every accepted connection is one fiber in this layer's FiberSet. Its bytes go to the machine in the receive burst
 * (sink mode: stream data is only counted, never copied; the cookie and control bytes are copied into small bounded
 * buffers). The machine's actions are dispatched at once: writes and closes go to the connection's own outbox, which
 * its fiber performs in order (so a peer that stops reading blocks only its own connection, and each write and close
 * is bounded in time); `StartStreams` forks one sender fiber per sending stream (views of one preallocated buffer);
 * `StopStreams` stops them and measures CPU use. One timer fiber drives the machine's deadlines.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { endpointKey, endpointKeyAddress, endpointKeyPort, type EndpointKey } from "../protocols/ipAddress.js"
import { formatHost } from "../protocols/iperf/format.js"
import * as os from "node:os"
import * as F from "../protocols/iperf3/format.js"
import * as Json from "../protocols/iperf3/json.js"
import * as Session from "../protocols/iperf3/session.js"
import * as U from "../protocols/iperf3/udp.js"
import * as W from "../protocols/iperf3/wire.js"
import * as LogLimiter from "./LogLimiter.js"
import { printer } from "./Output.js"
import { Signal } from "./Signal.js"
import { Tcp, type TcpConnection, type TcpError } from "./Tcp.js"
import { Udp, type UdpError } from "./Udp.js"
import { sleepMillis } from "./Sleep.js"

export interface Iperf3Stats {
  connections: number
  tests: number
  testsCompleted: number
  testsAborted: number
  denied: number
  /** TCP bytes received on iperf3 connections (control and streams). */
  bytesIn: number
  /** TCP bytes sent by sending streams. */
  bytesOut: number
  /** Data streams admitted to a test (TCP and UDP), the machine's count. */
  streams: number
  /** Datagrams and their payload bytes taken by a UDP stream of the current test. */
  udpDatagramsIn: number
  udpBytesIn: number
  writeTimeouts: number
  /** UDP datagrams to the iperf3 port that belong to no stream and are no connect message of an awaited stream. */
  udpIgnored: number
  udpDatagramsOut: number
  /** Datagrams our UDP layer refused to send (no route, too large). */
  udpSendErrors: number
  /** Running tests ended by the stall deadline. */
  stalled: number
  /** Connections still to send their cookie, reset to admit a newer one. */
  pendingEvicted: number
  /** Bad cookies (each costs one connection, reset at once). */
  badCookies: number
  /** UDP connects from an address that is not the test's client (ignored). */
  udpWrongPeer: number
  /** Refusal log lines held back by the log limiter. */
  logSuppressed: number
}

export interface Iperf3Shape {
  readonly port: number
  readonly stats: Iperf3Stats
  /** The machine's counters (tests, denials, bad cookies). */
  readonly server: Session.Server
  /** Succeeds once the first test is over (the machine's TestOver, completed or not, after its last lines): `--one-off`. */
  readonly firstTestOver: Effect.Effect<void>
}

export class Iperf3 extends Context.Tag("@miniperf/Iperf3")<Iperf3, Iperf3Shape>() {}

export interface Iperf3Options {
  readonly port?: number
  /** Where console lines go (default: stdout). */
  readonly print?: (line: string) => void
  /** Bound on one control write or a graceful close before the connection is reset (default 10 s). */
  readonly ioTimeoutMs?: number
  /** Serve UDP tests (`-u`) on the same port (default true). */
  readonly udp?: boolean
  /** Wall-clock microseconds, for UDP timestamps and transit times. */
  readonly wallClockUs?: () => number
  /** A running test in which no stream moves a byte for this long ends (default 10 s). */
  readonly stallTimeoutMs?: number
  /** Interval report lines every this many seconds while a test runs, as `iperf3 -s` (default 1; 0: none). */
  readonly intervalS?: number
  /**
   * `-J`: each finished test is one JSON document on one line, in 3.12's `-J` layout (protocols/iperf3/json.ts),
   * instead of its console lines and the listening banner (refusal lines still print).
   */
  readonly json?: boolean
  /** `-1`: the program exits after the first test, so no `Server listening` banner follows it (as `iperf3 -s -1`). */
  readonly oneOff?: boolean
}


const SEND_BUF = 1 << 20
const RECV_WINDOW = 1 << 20
/** Largest single write of a sending stream (its bytes are views of one buffer of this size). */
const WRITE_CHUNK = 128 * 1024

interface Outbox {
  readonly q: Array<Session.Action>
  readonly signal: Signal
}

export const make = (opts: Iperf3Options = {}) =>
  Effect.gen(function* () {
    const tcp = yield* Tcp
    const udp = yield* Udp
    const udpOn = opts.udp !== false
    const wallUs = opts.wallClockUs ?? (() => Math.round((performance.timeOrigin + performance.now()) * 1000))
    const clock = yield* Effect.clock
    const port = opts.port ?? W.PORT
    const print = yield* printer(opts.print)
    const ioTimeout = Duration.millis(opts.ioTimeoutMs ?? 10_000)
    const server = Session.makeServer({
      udp: udpOn,
      intervalMs: (opts.intervalS ?? 1) * 1000,
      ...(opts.stallTimeoutMs !== undefined ? { stallMs: opts.stallTimeoutMs } : {})
    })
    const stats: Iperf3Stats = {
      connections: 0, tests: 0, testsCompleted: 0, testsAborted: 0, denied: 0, bytesIn: 0, bytesOut: 0, streams: 0, udpDatagramsIn: 0,
      udpBytesIn: 0, writeTimeouts: 0, udpIgnored: 0,
      udpDatagramsOut: 0, udpSendErrors: 0, stalled: 0, pendingEvicted: 0, badCookies: 0, udpWrongPeer: 0, logSuppressed: 0
    }
    const limiter = yield* LogLimiter.make(print)
    const fibers = yield* FiberSet.make<void, never>()
    const fork = yield* FiberSet.runtime(fibers)<never>()
    const now = (): number => clock.unsafeCurrentTimeMillis()
    // payload of sending streams: iperf3 sends random bytes; any content will do, so one buffer serves every stream
    const payload = new Uint8Array(WRITE_CHUNK)
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 131 + 7) & 0xff

    const conns = new Map<number, TcpConnection>()
    const outboxes = new Map<number, Outbox>()
    const timerSignal = new Signal()
    const firstTestOver = Deferred.unsafeMake<void>(FiberId.none)
    /** The first finished test's control connection, while it is still closing. */
    let firstTestControl: number | undefined
    /** Per running test: the stop signal its senders wait on, and the CPU baseline. */
    const running = new Map<Session.Test, { readonly stop: Deferred.Deferred<void>; readonly cpu0: NodeJS.CpuUsage; readonly t0: number }>()

    const json = opts.json === true
    /** The `-J` document of a test that is over, stamped with the wall-clock time its streams started. */
    const document = (t: Session.Test) => {
      const wallMs = wallUs() / 1000
      return Json.testDocument(t, {
        startedEpochMs: t.startMs > 0 ? wallMs - (now() - t.startMs) : wallMs,
        systemInfo: `${os.type()} ${os.hostname()} ${os.release()} ${os.arch()}`,
        sendBufBytes: SEND_BUF,
        recvBufBytes: RECV_WINDOW,
        congestion: "cubic",
        ...(t.endReason !== undefined ? { error: t.endReason } : {})
      })
    }
    const out: Array<Session.Action> = []
    /** Perform what the machine asked for; called right after every machine call. */
    const dispatch = (): void => {
      // take the batch first: anything this dispatch causes lands in a fresh batch
      const batch = out.splice(0, out.length)
      for (let i = 0; i < batch.length; i++) {
        const a = batch[i]!
        switch (a._tag) {
          case "Write":
          case "Close": {
            const box = outboxes.get(a.conn)
            if (box !== undefined) {
              box.q.push(a)
              box.signal.notify()
            }
            break
          }
          case "Log":
            if (json && a.test === true) break // the test's lines: its document says it all
            if (a.kind === undefined) print(a.line)
            else limiter.line(a.kind, a.line)
            break
          case "UdpReply":
            if (!udp.send(port, endpointKeyAddress(a.key), endpointKeyPort(a.key), U.CONNECT_REPLY)) stats.udpSendErrors++
            break
          case "StartStreams": {
            const run = { stop: Deferred.unsafeMake<void>(FiberId.none), cpu0: process.cpuUsage(), t0: now() }
            running.set(a.test, run)
            for (const st of a.test.streams) {
              if (!st.sender) continue
              if (st.udpKey !== undefined) {
                fork(udpSender(a.test, st, st.udpKey, run.stop))
                continue
              }
              const c = conns.get(st.conn)
              if (c !== undefined) fork(sender(a.test, st, c, run.stop))
            }
            break
          }
          case "StopStreams": {
            const run = running.get(a.test)
            if (run !== undefined) {
              running.delete(a.test)
              const cpu = process.cpuUsage(run.cpu0)
              const wallUs = Math.max(1, (now() - run.t0) * 1000)
              Session.setCpu(a.test, (100 * (cpu.user + cpu.system)) / wallUs, (100 * cpu.user) / wallUs, (100 * cpu.system) / wallUs)
              Deferred.unsafeDone(run.stop, Exit.void) // latched: every sender sees it, whenever it looks
            }
            for (const st of a.test.streams) if (st.sender) conns.get(st.conn)?.wakeWriters()
            break
          }
          case "TestOver":
            if (a.completed) stats.testsCompleted++
            else stats.testsAborted++
            if (json) print(JSON.stringify(document(a.test)))
            // ready for the next test, as 3.12 says after every test
            else if (opts.oneOff !== true) for (const l of F.listening(port, server.nextTest)) print(l)
            // over once its control connection is closed too (the client gets our FIN, not a reset at exit)
            if (conns.has(a.test.control)) firstTestControl ??= a.test.control
            else Deferred.unsafeDone(firstTestOver, Exit.void)
            break
        }
      }
      stats.tests = server.stats.tests
      stats.denied = server.stats.denied
      stats.stalled = server.stats.stalled
      stats.pendingEvicted = server.stats.pendingEvicted
      stats.badCookies = server.stats.badCookies
      stats.udpWrongPeer = server.stats.udpWrongPeer
      stats.streams = server.stats.streams
      stats.logSuppressed = limiter.suppressed()
      timerSignal.notify()
    }

    // --- a sending stream -------------------------------------------------------------------
    const sender = (t: Session.Test, st: Session.StreamState, c: TcpConnection, stop: Deferred.Deferred<void>) =>
      Effect.gen(function* () {
        while (true) {
          const n = Session.sendLen(t, st, WRITE_CHUNK, now())
          if (n === 0) {
            if (Session.senderDone(t, st)) return
            // -b pacing: ask again after the pacing tick, or when the test stops
            yield* Effect.raceFirst(Deferred.await(stop), Effect.sleep(Duration.millis(Session.PACING_MS)))
            continue
          }
          const k = yield* c.tryWrite(payload, 0, n)
          if (k > 0) {
            Session.commitSent(t, st, k, c.counters().retransSegs, c.cwnd())
            stats.bytesOut += k
          } else yield* c.awaitWritable
        }
      }).pipe(
        Effect.catchAll((e: TcpError) =>
          Effect.sync(() => {
            if (!st.stopped) print(`[${String(st.id).padStart(3)}] sending stopped: ${e.message}`)
          })
        )
      )

    // --- a sending UDP stream (-u -R, -u --bidir): paced datagrams from one preallocated buffer per stream -------
    const udpSender = (t: Session.Test, st: Session.StreamState, key: EndpointKey, stop: Deferred.Deferred<void>) =>
      Effect.gen(function* () {
        const p = t.params!
        const dgram = new Uint8Array(p.len)
        for (let i = U.headerLen(p.udpCounters64); i < dgram.length; i++) dgram[i] = 0x30 + (i % 10)
        const dst = endpointKeyAddress(key)
        const dstPort = endpointKeyPort(key)
        const write = (b: Uint8Array): void => b.set(dgram)
        while (true) {
          const n = Session.udpDue(t, st, now())
          if (n > 0) {
            const wall = wallUs()
            for (let k = 0; k < n; k++) {
              U.stamp(dgram, st.packetsSent + 1, wall, p.udpCounters64)
              // a datagram the layer refuses still takes its sequence number: the receiver counts it lost
              if (udp.sendWith(port, dst, dstPort, dgram.length, write)) stats.udpDatagramsOut++
              else stats.udpSendErrors++
              Session.commitUdpSent(t, st, dgram.length)
            }
          }
          if (Session.senderDone(t, st)) return
          yield* Effect.raceFirst(Deferred.await(stop), Effect.sleep(Duration.millis(Session.udpSleepMs(t, st, now()))))
        }
      })

    // --- one connection -----------------------------------------------------------------------
    const connection = (c: TcpConnection) =>
      Effect.gen(function* () {
        stats.connections++
        const box: Outbox = { q: [], signal: new Signal() }
        conns.set(c.id, c)
        outboxes.set(c.id, box)
        const peer: Session.PeerInfo = {
          local: formatHost(c.localAddress),
          localPort: c.localPort,
          remote: formatHost(c.remoteAddress),
          remotePort: c.remotePort
        }
        Session.onAccept(server, c.id, peer, now(), out)
        dispatch()
        c.sink((buf, start, end) => {
          stats.bytesIn += end - start
          Session.onBytes(server, c.id, buf, start, end, now(), out)
          if (out.length > 0) dispatch()
        })
        // the peer's FIN or reset, told to the machine
        yield* Effect.forkScoped(
          Effect.either(c.awaitPeerFin).pipe(
            Effect.flatMap((r) =>
              Effect.sync(() => {
                Session.onPeerClosed(server, c.id, r._tag === "Left", now(), out)
                dispatch()
              })
            )
          )
        )
        // perform this connection's writes and its close, in order
        while (true) {
          const a = box.q.shift()
          if (a === undefined) {
            yield* box.signal.wait
            continue
          }
          if (a._tag === "Write") {
            const r = yield* c.write(a.data).pipe(Effect.timeout(ioTimeout), Effect.either)
            if (r._tag === "Left") {
              if (r.left._tag === "TimeoutException") stats.writeTimeouts++
              yield* c.abort
              Session.onPeerClosed(server, c.id, true, now(), out)
              dispatch()
              break
            }
            continue
          }
          if (a._tag === "Close") {
            if (a.abort) {
              yield* c.abort
            } else {
              yield* c.shutdownWrite
              const closed = yield* c.awaitClosed.pipe(Effect.timeout(a.graceMs !== undefined ? Duration.millis(a.graceMs) : ioTimeout), Effect.option)
              if (closed._tag === "None") yield* c.abort
            }
            break
          }
        }
      }).pipe(
        Effect.scoped,
        Effect.ensuring(
          Effect.sync(() => {
            Session.onGone(server, c.id)
            conns.delete(c.id)
            outboxes.delete(c.id)
            if (c.id === firstTestControl) Deferred.unsafeDone(firstTestOver, Exit.void)
          })
        )
      )

    const accepted = yield* tcp.listen(port, { recvMode: "sink", backlog: 64, nagle: false, sendBufBytes: SEND_BUF, recvBufBytes: RECV_WINDOW })
    yield* accepted.pipe(
      Stream.runForEach((c) => FiberSet.run(fibers, connection(c))),
      Effect.forkScoped
    )

    // --- UDP on the same port: connect messages and the receiving streams' datagrams --------------------------
    if (udpOn) {
      yield* udp.bind(port, (d) => {
        const key = endpointKey(d.src, d.srcPort)
        if (Session.onUdp(server, key, d.payload, wallUs())) {
          stats.udpDatagramsIn++
          stats.udpBytesIn += d.payload.length
          return
        }
        if (!U.isConnect(d.payload)) {
          stats.udpIgnored++
          return
        }
        const peer: Session.PeerInfo = { local: formatHost(d.dst), localPort: port, remote: formatHost(d.src), remotePort: d.srcPort }
        if (!Session.onUdpConnect(server, key, peer, now(), out)) stats.udpIgnored++
        if (out.length > 0) dispatch()
      })
    }

    // --- deadlines ------------------------------------------------------------------------------
    yield* Effect.gen(function* () {
      while (true) {
        const t = yield* Clock.currentTimeMillis
        Session.onTick(server, t, out)
        if (out.length > 0) dispatch()
        timerSignal.clear()
        const at = Session.pollAt(server)
        if (at === undefined) yield* timerSignal.wait
        else yield* Effect.raceFirst(timerSignal.wait, sleepMillis(Math.max(1, at - t)))
      }
    }).pipe(Effect.forkScoped)

    // 3.12's banner (its UDP tests come over the same port, so one block tells both)
    if (!json) for (const l of F.listening(port, server.nextTest)) print(l)
    return Iperf3.of({ port, stats, server, firstTestOver: Deferred.await(firstTestOver) })
  })

export const layer = (opts: Iperf3Options = {}): Layer.Layer<Iperf3, TcpError | UdpError, Tcp | Udp> => Layer.scoped(Iperf3, make(opts))
