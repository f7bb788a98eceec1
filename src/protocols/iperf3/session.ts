/**
 * The iperf3 (3.12) server as a pure state machine (iperf-wire.md §C): one test at a time, its control connection,
 * its streams, and every other connection to the port. Pure code: no Effect, no IO, no clock (`nowMs` comes in).
 *
 * ## Connections
 * Every accepted connection is reported with `onAccept`, its bytes with `onBytes` (in order, borrowed), the
 * peer's FIN or reset with `onPeerClosed`, and its end with `onGone`. A new connection is
 * - denied at once (ACCESS_DENIED 0xff, then close) while a test is past CREATE_STREAMS or waiting for parameters,
 *   or when too many connections are still to send their cookie (as 3.12's iperf_accept, which does not read);
 * - otherwise it must send its 37-byte cookie within COOKIE_TIMEOUT_MS. With no test, a valid cookie makes it the
 *   control connection of a new test; during CREATE_STREAMS, the test's cookie makes it the next stream
 *   (ids 1, 3, 4, 5, ...), and any other cookie gets 0xff and a close. An invalid cookie with no test is closed.
 *
 * ## A test
 * ParamExchange (we sent 9, wait for the parameter JSON) -> CreateStreams (sent 10; wait for `parallel` streams, twice
 * that with `--bidir`) -> Running (sent 1 and 2; `StartStreams`) -> on TEST_END (4): `StopStreams`, close the streams,
 * send 13 -> ExchangeResults (read the client's results, send ours, send 14) -> DisplayResults -> on IPERF_DONE (16):
 * close the control connection, `TestOver`. Deadlines: COOKIE/SETUP/RESULTS timeouts, and while running the safety
 * timer T + omit + 40 s (with `-n`/`-k`: IDLE_TIMEOUT_MS without progress). Anything unexpected (bad JSON, an
 * unknown state byte, a closed or reset control connection, a timeout) ends only this test, with a `Log` line
 * saying why, and the server is free for the next client.
 *
 * ## Data
 * Receiving streams are counted in `onBytes` (a field increment: no copy). Sending streams are driven by the shell:
 * `sendLen` says how much to write now (budget of `-n`/`-k`, pacing of `-b`), `commitSent` records what the socket
 * took. Actions are appended to `out`; the shell performs them in order per connection.
 */
import * as W from "./wire.js"
import * as F from "./format.js"
import * as U from "./udp.js"
import { stallLimitMs } from "../iperf/guard.js"

export const COOKIE_TIMEOUT_MS = 10_000
export const SETUP_TIMEOUT_MS = 10_000
export const RESULTS_TIMEOUT_MS = 10_000
export const SAFETY_SLACK_MS = 40_000
export const IDLE_TIMEOUT_MS = 60_000
/** Default stall deadline: a running test in which no stream moves a byte for this long ends (any mode). */
export const DEFAULT_STALL_MS = 10_000
/** How often a running test's progress is looked at (a stall is seen within stallMs + this). */
export const STALL_CHECK_MS = 1_000
/** A busy client (valid cookie) is denied with 0xff and a FIN; if it does not close within this, it is reset. */
export const DENY_GRACE_MS = 1_000
/** Connections accepted that have not sent their cookie yet; more are denied at once. */
export const MAX_PENDING = 16
/** Lines kept per test for `--get-server-output`. */
export const MAX_TEST_LINES = 256

export interface PeerInfo {
  readonly local: string
  readonly localPort: number
  readonly remote: string
  readonly remotePort: number
}

export type Phase = "ParamExchange" | "CreateStreams" | "Running" | "ExchangeResults" | "DisplayResults" | "Over"

export interface StreamState {
  readonly id: number
  /** The TCP connection; for a UDP stream a negative number, and `udpKey` says where it is. */
  readonly conn: number
  /** UDP: the peer as address * 65536 + port. */
  readonly udpKey: number | string | undefined
  /** UDP receiving stream: the accounting. */
  readonly udp: U.UdpRecv | undefined
  /** UDP sending stream: datagrams sent (its sequence numbers ran 1..packetsSent). */
  packetsSent: number
  /** The server sends on this stream (`-R`, the second half of `--bidir`). */
  readonly sender: boolean
  readonly peer: PeerInfo
  /** Bytes received (receiving stream) or accepted by the socket (sending stream). */
  bytes: number
  retransmits: number
  /** Snapshot at the end of the omit period. */
  omitBytes: number
  omitRetransmits: number
  stopped: boolean
  peerClosed: boolean
  /** Sending TCP stream: the congestion window (bytes) the shell saw last. */
  cwnd: number
  /** At the start of the current interval: bytes, retransmits, UDP datagrams and losses. */
  ivBytes: number
  ivRetransmits: number
  ivPackets: number
  ivErrors: number
}

export interface Test {
  readonly n: number
  readonly control: number
  readonly cookie: string
  readonly peer: PeerInfo
  phase: Phase
  params: W.ParamsRepr | undefined
  readonly reader: W.Reader
  readonly streams: Array<StreamState>
  expected: number
  deadlineMs: number
  startMs: number
  endMs: number
  omitEndMs: number
  omitDone: boolean
  sentTotal: number
  lastTotal: number
  lastProgressMs: number
  /** Next look at progress while running (the stall deadline). */
  stallCheckMs: number
  /**
   * This test's stall deadline: the server's, raised for a rate-limited test (`-b`: whole blocks of `len` bytes
   * leave in bursts, 128 KiB at 80 kbit/s one every 13 s, as 3.12's iperf_check_throttle lets them).
   */
  stallMs: number
  cpu: readonly [number, number, number]
  client: W.ClientResults | undefined
  readonly lines: Array<string>
  /** Interval reports (`--interval`): the current interval's start, the next report, groups printed so far. */
  ivStartMs: number
  ivNextMs: number
  ivGroups: number
  /** The interval reports as numbers, for `-J` (at most MAX_INTERVAL_RECORDS; later ones are counted only). */
  readonly intervals: Array<IntervalRecord>
  intervalsDropped: number
  /** Largest congestion window seen per sending stream id, for `-J`'s max_snd_cwnd. */
  readonly maxCwnd: Map<number, number>
  /** Why the test ended early (undefined for a completed test). */
  endReason: string | undefined
}

/** One stream's part of an interval report. */
export interface IntervalStream {
  readonly id: number
  readonly sender: boolean
  readonly bytes: number
  /** TCP sender. */
  readonly retransmits?: number
  readonly cwnd?: number
  /** UDP receiver. */
  readonly jitterS?: number
  readonly lost?: number
  readonly packets?: number
}

export interface IntervalRecord {
  readonly startS: number
  readonly endS: number
  readonly streams: ReadonlyArray<IntervalStream>
}

/** Interval records kept per test for `-J` (a day of 1 s intervals with room to spare; more are only counted). */
export const MAX_INTERVAL_RECORDS = 100_000

type Role =
  | { readonly kind: "pending"; readonly cookie: Uint8Array; got: number; readonly deadlineMs: number; readonly peer: PeerInfo }
  | { readonly kind: "control"; readonly test: Test }
  | { readonly kind: "stream"; readonly test: Test; readonly stream: StreamState }
  /** Denied, or done with: bytes are ignored until the shell reports it gone. */
  | { readonly kind: "closing" }

export interface ServerStats {
  tests: number
  testsCompleted: number
  testsAborted: number
  denied: number
  badCookies: number
  /** Running tests ended because no stream moved a byte for `stallMs`. */
  stalled: number
  /** Connections still to send their cookie, reset to make room for a newer one. */
  pendingEvicted: number
  /** UDP connect datagrams from an address other than the control connection's peer (ignored). */
  udpWrongPeer: number
  /** Data streams admitted to a test (TCP connections and UDP streams). */
  streams: number
}

export interface ServerOptions {
  /** Accept UDP tests (`-u`); refused with SERVER_ERROR when false. */
  readonly udp?: boolean
  /** Stall deadline (ms) for a running test, default DEFAULT_STALL_MS. */
  readonly stallMs?: number
  /** Interval report lines every this many ms while a test runs, as `iperf3 -s -i`; undefined or 0: none. */
  readonly intervalMs?: number
}

export interface Server {
  readonly conns: Map<number, Role>
  /** UDP streams of the current test by peer (address * 65536 + port). */
  readonly udpStreams: Map<number | string, StreamState>
  test: Test | undefined
  pending: number
  nextTest: number
  readonly udp: boolean
  readonly stallMs: number
  readonly intervalMs: number
  readonly stats: ServerStats
}

export type Action =
  | { readonly _tag: "Write"; readonly conn: number; readonly data: Uint8Array }
  /** Close after the writes queued before it: FIN, or RST when `abort`; `graceMs`: reset if not closed by then. */
  | { readonly _tag: "Close"; readonly conn: number; readonly abort: boolean; readonly graceMs?: number }
  /** Start the sending streams (all streams are in, 1 and 2 are queued on the control connection). */
  | { readonly _tag: "StartStreams"; readonly test: Test }
  /** Stop the sending streams now, and call `setCpu`. */
  | { readonly _tag: "StopStreams"; readonly test: Test }
  /**
   * A console line; `kind` marks a refusal/drop line the shell may aggregate under a flood; `test`: one of a test's
   * report lines (what `-J` replaces with its document).
   */
  | { readonly _tag: "Log"; readonly line: string; readonly kind?: string; readonly test?: true }
  /** Send the UDP connect reply ("6789") from the iperf3 port to the peer address * 65536 + port. */
  | { readonly _tag: "UdpReply"; readonly key: number | string }
  | { readonly _tag: "TestOver"; readonly test: Test; readonly completed: boolean }

export const makeServer = (opts: ServerOptions = {}): Server => ({
  conns: new Map(),
  udpStreams: new Map(),
  test: undefined,
  pending: 0,
  nextTest: 1,
  udp: opts.udp ?? false,
  stallMs: opts.stallMs ?? DEFAULT_STALL_MS,
  intervalMs: opts.intervalMs ?? 0,
  stats: { tests: 0, testsCompleted: 0, testsAborted: 0, denied: 0, badCookies: 0, stalled: 0, pendingEvicted: 0, udpWrongPeer: 0, streams: 0 }
})

const log = (out: Array<Action>, line: string, t?: Test): void => {
  out.push(t === undefined ? { _tag: "Log", line } : { _tag: "Log", line, test: true })
  if (t !== undefined && t.lines.length < MAX_TEST_LINES) t.lines.push(line)
}

/** A refusal line: the shell aggregates these by `kind` under a flood. */
const logRefusal = (out: Array<Action>, kind: string, line: string, t?: Test): void => {
  out.push({ _tag: "Log", line, kind })
  if (t !== undefined && t.lines.length < MAX_TEST_LINES) t.lines.push(line)
}

/**
 * 0xff and a FIN, as 3.12 does; a peer that has not closed too within DENY_GRACE_MS is reset, so a denied or garbage
 * connection holds its slot for at most that long. (A reset right after the 0xff would discard it unsent.)
 */
const deny = (s: Server, conn: number, out: Array<Action>): void => {
  s.stats.denied++
  s.conns.set(conn, { kind: "closing" })
  out.push({ _tag: "Write", conn, data: W.stateByte(W.ACCESS_DENIED) }, { _tag: "Close", conn, abort: false, graceMs: DENY_GRACE_MS })
}

const who = (p: PeerInfo): string => `${p.remote}:${p.remotePort}`

// ---------------------------------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------------------------------

export const onAccept = (s: Server, conn: number, peer: PeerInfo, nowMs: number, out: Array<Action>): void => {
  const t = s.test
  if (t !== undefined && t.phase !== "CreateStreams") {
    logRefusal(out, "connections refused (busy)", `Refused ${who(peer)}: the server is busy running test #${t.n} (access denied)`)
    deny(s, conn, out)
    return
  }
  if (s.pending >= MAX_PENDING) {
    // make room: reset the connection that has waited longest for its cookie (a silent one holds a slot at most
    // until newer ones push it out, so silent connections cannot keep a real client out)
    let oldest: number | undefined
    let oldestAt = Infinity
    for (const [c, r] of s.conns) {
      if (r.kind === "pending" && r.deadlineMs < oldestAt) {
        oldest = c
        oldestAt = r.deadlineMs
      }
    }
    if (oldest !== undefined) {
      const r = s.conns.get(oldest) as Extract<Role, { kind: "pending" }>
      s.pending--
      s.stats.pendingEvicted++
      s.conns.set(oldest, { kind: "closing" })
      logRefusal(out, "connections without a cookie reset (table full)", `${who(r.peer)} reset: ${MAX_PENDING} connections were waiting for their cookie, this one longest (${r.got} bytes)`)
      out.push({ _tag: "Close", conn: oldest, abort: true })
    }
  }
  s.pending++
  s.conns.set(conn, { kind: "pending", cookie: new Uint8Array(W.COOKIE_LEN), got: 0, deadlineMs: nowMs + COOKIE_TIMEOUT_MS, peer })
}

/** In-order bytes of connection `conn` (borrowed: copied only into the cookie and the control reader). */
export const onBytes = (s: Server, conn: number, buf: Uint8Array, start: number, end: number, nowMs: number, out: Array<Action>): void => {
  const r = s.conns.get(conn)
  if (r === undefined) return
  switch (r.kind) {
    case "stream": {
      const st = r.stream
      if (!st.sender && r.test.phase === "Running") st.bytes += end - start
      return
    }
    case "control":
      return controlBytes(s, r.test, buf, start, end, nowMs, out)
    case "pending": {
      const n = Math.min(end - start, W.COOKIE_LEN - r.got)
      r.cookie.set(buf.subarray(start, start + n), r.got)
      r.got += n
      if (r.got < W.COOKIE_LEN) return
      s.pending--
      cookieIn(s, conn, r.cookie, r.peer, nowMs, out)
      // whatever followed the cookie belongs to the connection's new role
      if (start + n < end) onBytes(s, conn, buf, start + n, end, nowMs, out)
      return
    }
    case "closing":
      return
  }
}

const cookieIn = (s: Server, conn: number, cookie: Uint8Array, peer: PeerInfo, nowMs: number, out: Array<Action>): void => {
  const t = s.test
  const valid = W.isValidCookie(cookie)
  if (t === undefined) {
    if (!valid) {
      s.stats.badCookies++
      logRefusal(out, "connections with a bad cookie refused", `Refused ${who(peer)}: not an iperf3 cookie ("${W.printable(cookie)}")`)
      deny(s, conn, out)
      return
    }
    const test: Test = {
      n: s.nextTest++,
      control: conn,
      cookie: W.cookieText(cookie),
      peer,
      phase: "ParamExchange",
      params: undefined,
      reader: W.makeReader(),
      streams: [],
      expected: 0,
      deadlineMs: nowMs + SETUP_TIMEOUT_MS,
      startMs: 0,
      endMs: 0,
      omitEndMs: 0,
      omitDone: false,
      sentTotal: 0,
      lastTotal: 0,
      lastProgressMs: 0,
      stallCheckMs: 0,
      stallMs: s.stallMs,
      cpu: [0, 0, 0],
      client: undefined,
      lines: [],
      ivStartMs: 0,
      ivNextMs: Infinity,
      ivGroups: 0,
      intervals: [],
      intervalsDropped: 0,
      maxCwnd: new Map(),
      endReason: undefined
    }
    s.test = test
    s.stats.tests++
    s.conns.set(conn, { kind: "control", test })
    log(out, F.accepted(peer.remote, peer.remotePort), test)
    out.push({ _tag: "Write", conn, data: W.stateByte(W.PARAM_EXCHANGE) })
    return
  }
  if (t.phase !== "CreateStreams" || !valid || W.cookieText(cookie) !== t.cookie || t.streams.length >= t.expected || t.params?.protocol !== "tcp") {
    if (!valid) s.stats.badCookies++
    logRefusal(out, "connections refused (not a stream of the test)", `Refused ${who(peer)}: ${valid ? "not a stream of" : "not an iperf3 cookie during"} test #${t.n} (access denied)`, t)
    deny(s, conn, out)
    return
  }
  const st = addStream(t, conn, undefined, peer)
  s.stats.streams++
  s.conns.set(conn, { kind: "stream", test: t, stream: st })
  streamIn(s, t, st, nowMs, out)
}

const addStream = (t: Test, conn: number, udpKey: number | string | undefined, peer: PeerInfo): StreamState => {
  const k = t.streams.length
  const p = t.params!
  const sender = p.reverse || (p.bidirectional && k >= p.parallel)
  const st: StreamState = {
    id: k === 0 ? 1 : k + 2,
    conn,
    udpKey,
    udp: udpKey !== undefined && !sender ? U.makeRecv() : undefined,
    packetsSent: 0,
    sender,
    peer,
    bytes: 0,
    retransmits: 0,
    omitBytes: 0,
    omitRetransmits: 0,
    stopped: false,
    peerClosed: false,
    cwnd: 0,
    ivBytes: 0,
    ivRetransmits: 0,
    ivPackets: 0,
    ivErrors: 0
  }
  t.streams.push(st)
  return st
}

/** A stream was added: log it, and start the test once all are in. */
const streamIn = (s: Server, t: Test, st: StreamState, nowMs: number, out: Array<Action>): void => {
  const p = t.params!
  const peer = st.peer
  log(out, F.connected(st.id, peer.local, peer.localPort, peer.remote, peer.remotePort), t)
  if (t.streams.length === t.expected) {
    t.phase = "Running"
    t.startMs = nowMs
    t.lastProgressMs = nowMs
    t.lastTotal = 0
    t.stallCheckMs = nowMs + STALL_CHECK_MS
    t.omitEndMs = nowMs + p.omitS * 1000
    t.omitDone = p.omitS === 0
    t.deadlineMs = p.timeS > 0 ? nowMs + (p.timeS + p.omitS) * 1000 + SAFETY_SLACK_MS : nowMs + IDLE_TIMEOUT_MS
    t.ivStartMs = nowMs
    t.ivNextMs = s.intervalMs > 0 ? nowMs + s.intervalMs : Infinity
    out.push({ _tag: "Write", conn: t.control, data: W.stateByte(W.TEST_START) })
    out.push({ _tag: "Write", conn: t.control, data: W.stateByte(W.TEST_RUNNING) })
    out.push({ _tag: "StartStreams", test: t })
  }
}

// ---------------------------------------------------------------------------------------------------------------
// UDP streams (§C.4)
// ---------------------------------------------------------------------------------------------------------------

/**
 * A datagram to the iperf3 port from `key` (protocols/ipAddress.ts endpointKey: a number for IPv4, a string for IPv6), arrived at wall-clock `arrivalUs`. The hot path:
 * a receiving stream's datagram is accounted here. Returns false when the datagram belongs to no stream; the shell then
 * calls `onUdpConnect` if it is a connect message.
 */
export const onUdp = (s: Server, key: number | string, payload: Uint8Array, arrivalUs: number): boolean => {
  const st = s.udpStreams.get(key)
  if (st === undefined) return false
  const t = s.test
  if (st.udp !== undefined && t !== undefined && t.phase === "Running") {
    st.bytes += payload.length
    U.onDatagram(st.udp, payload, arrivalUs, t.params!.udpCounters64)
  }
  return true
}

/** A 4-byte connect datagram from a new peer: the next stream of a UDP test awaiting streams; otherwise ignored (false). */
export const onUdpConnect = (s: Server, key: number | string, peer: PeerInfo, nowMs: number, out: Array<Action>): boolean => {
  const t = s.test
  const known = s.udpStreams.get(key)
  if (known !== undefined) {
    // a repeated connect: answer again
    out.push({ _tag: "UdpReply", key })
    return true
  }
  if (t === undefined || t.phase !== "CreateStreams" || t.params?.protocol !== "udp" || t.streams.length >= t.expected) return false
  // a UDP stream is the control connection's client only: never stream to an address that did not open the test
  if (peer.remote !== t.peer.remote) {
    s.stats.udpWrongPeer++
    logRefusal(out, "UDP connects from a foreign address ignored", `Ignored a UDP stream connect from ${who(peer)}: test #${t.n} belongs to ${t.peer.remote}`, t)
    return true
  }
  const st = addStream(t, -(t.streams.length + 1), key, peer)
  s.stats.streams++
  s.udpStreams.set(key, st)
  out.push({ _tag: "UdpReply", key })
  streamIn(s, t, st, nowMs, out)
  return true
}

/** The peer sent FIN (`reset` false) or reset the connection. */
export const onPeerClosed = (s: Server, conn: number, reset: boolean, nowMs: number, out: Array<Action>): void => {
  const r = s.conns.get(conn)
  if (r === undefined) return
  switch (r.kind) {
    case "pending":
      s.pending--
      s.conns.set(conn, { kind: "closing" })
      // a connect-then-close costs a client nothing: aggregated under a flood like the refusals
      logRefusal(out, "connections closed before a cookie", `${who(r.peer)} ${reset ? "reset the connection" : "closed"} before sending a cookie`)
      out.push({ _tag: "Close", conn, abort: reset })
      return
    case "control":
      endTest(s, r.test, `the client ${reset ? "reset" : "closed"} the control connection (${phaseWords(r.test.phase)})`, nowMs, out, undefined, reset)
      return
    case "stream":
      r.stream.peerClosed = true
      if (reset) {
        log(out, `[${String(r.stream.id).padStart(3)}] stream reset by the client`, r.test)
        s.conns.set(conn, { kind: "closing" })
        out.push({ _tag: "Close", conn, abort: true })
      }
      return
    case "closing":
      return
  }
}

/** The shell is done with the connection (closed, or its fiber ended). */
export const onGone = (s: Server, conn: number): void => {
  const r = s.conns.get(conn)
  if (r?.kind === "pending") s.pending--
  s.conns.delete(conn)
}

const phaseWords = (p: Phase): string =>
  p === "ParamExchange"
    ? "waiting for parameters"
    : p === "CreateStreams"
      ? "waiting for streams"
      : p === "Running"
        ? "test running"
        : p === "ExchangeResults"
          ? "waiting for results"
          : p === "DisplayResults"
            ? "waiting for IPERF_DONE"
            : "over"

// ---------------------------------------------------------------------------------------------------------------
// The control connection
// ---------------------------------------------------------------------------------------------------------------

const controlBytes = (s: Server, t: Test, buf: Uint8Array, start: number, end: number, nowMs: number, out: Array<Action>): void => {
  if (W.feed(t.reader, buf, start, end) !== undefined) {
    endTest(s, t, `the client sent more than ${W.MAX_JSON_LEN + 4} unread control bytes`, nowMs, out, undefined, true)
    return
  }
  while (s.test === t) {
    switch (t.phase) {
      case "ParamExchange": {
        const j = W.takeJson(t.reader)
        if (j === W.NEED_MORE) return
        if ("_drop" in j) return endTest(s, t, `bad parameters: ${j._drop} (length ${j.len})`, nowMs, out, W.serverError(W.IE_RECVPARAMS))
        const p = W.decodeParams(j.json)
        if ("_tag" in p) return endTest(s, t, `refused parameters: ${p.reason}`, nowMs, out, W.serverError(p.ierrno))
        if (p.protocol === "udp" && !s.udp) return endTest(s, t, "refused parameters: UDP tests are not supported", nowMs, out, W.serverError(W.IE_PROTOCOL))
        t.params = p
        t.stallMs = stallLimitMs(s.stallMs, p.bandwidth, p.len)
        t.expected = p.parallel * (p.bidirectional ? 2 : 1)
        t.phase = "CreateStreams"
        t.deadlineMs = nowMs + SETUP_TIMEOUT_MS
        // 3.12 prints nothing about the parameters; we tell only what we clamped
        for (const c of p.clamped) log(out, `Test #${t.n}: adjusted ${c}`, t)
        out.push({ _tag: "Write", conn: t.control, data: W.stateByte(W.CREATE_STREAMS) })
        break
      }
      case "CreateStreams":
      case "Running":
      case "DisplayResults": {
        const b = W.takeByte(t.reader)
        if (b === undefined) return
        stateIn(s, t, b, nowMs, out)
        break
      }
      case "ExchangeResults": {
        const j = W.takeJson(t.reader)
        if (j === W.NEED_MORE) return
        if ("_drop" in j) return endTest(s, t, `bad results from the client: ${j._drop} (length ${j.len})`, nowMs, out)
        const r = W.decodeClientResults(j.json, t.streams.map((x) => x.id))
        if ("_tag" in r) return endTest(s, t, `bad results from the client: ${r.reason}`, nowMs, out)
        t.client = r
        summarize(t, out)
        out.push({ _tag: "Write", conn: t.control, data: W.encodeResults(serverResults(t)) })
        out.push({ _tag: "Write", conn: t.control, data: W.stateByte(W.DISPLAY_RESULTS) })
        t.phase = "DisplayResults"
        t.deadlineMs = nowMs + RESULTS_TIMEOUT_MS
        break
      }
      case "Over":
        return
    }
  }
}

const stateIn = (s: Server, t: Test, b: number, nowMs: number, out: Array<Action>): void => {
  if (b === W.CLIENT_TERMINATE) return endTest(s, t, `the client terminated the test (${phaseWords(t.phase)})`, nowMs, out)
  if (t.phase === "Running" && b === W.TEST_END) {
    // the last, partial interval (3.12 prints it before the summary; not one of a few ms)
    if (s.intervalMs > 0 && nowMs - t.ivStartMs >= MIN_LAST_INTERVAL_MS) intervalLines(t, nowMs, out)
    t.endMs = nowMs
    t.phase = "ExchangeResults"
    t.deadlineMs = nowMs + RESULTS_TIMEOUT_MS
    for (const st of t.streams) st.stopped = true
    out.push({ _tag: "StopStreams", test: t })
    closeStreams(s, t, false, out)
    out.push({ _tag: "Write", conn: t.control, data: W.stateByte(W.EXCHANGE_RESULTS) })
    return
  }
  if (t.phase === "Running" && b === W.TEST_START) return // 3.12 ignores it too
  if (t.phase === "DisplayResults" && b === W.IPERF_DONE) {
    t.phase = "Over"
    s.test = undefined
    s.udpStreams.clear()
    s.stats.testsCompleted++
    s.conns.set(t.control, { kind: "closing" })
    out.push({ _tag: "Close", conn: t.control, abort: false })
    out.push({ _tag: "TestOver", test: t, completed: true })
    return
  }
  endTest(s, t, `unexpected state byte ${b} from the client (${phaseWords(t.phase)})`, nowMs, out, undefined, true)
}

const closeStreams = (s: Server, t: Test, abort: boolean, out: Array<Action>): void => {
  for (const st of t.streams) {
    const r = s.conns.get(st.conn)
    if (r?.kind !== "stream") continue
    s.conns.set(st.conn, { kind: "closing" })
    out.push({ _tag: "Close", conn: st.conn, abort })
  }
}

/**
 * End test `t` early: stop and close its streams, send `error` (SERVER_ERROR ...) on the control connection if
 * given, close it (RST when `abort`), log why. The server is then free.
 */
const endTest = (s: Server, t: Test, why: string, nowMs: number, out: Array<Action>, error?: Uint8Array, abort = false): void => {
  if (s.test !== t) return
  const wasRunning = t.phase === "Running"
  if (wasRunning) t.endMs = nowMs
  t.phase = "Over"
  s.test = undefined
  s.udpStreams.clear()
  s.stats.testsAborted++
  t.endReason = why
  log(out, `Test #${t.n} with ${who(t.peer)} ended: ${why}`, t)
  for (const st of t.streams) st.stopped = true
  if (wasRunning) out.push({ _tag: "StopStreams", test: t })
  closeStreams(s, t, true, out)
  if (s.conns.get(t.control)?.kind === "control") {
    s.conns.set(t.control, { kind: "closing" })
    if (error !== undefined) out.push({ _tag: "Write", conn: t.control, data: error })
    out.push({ _tag: "Close", conn: t.control, abort: abort && error === undefined })
  }
  out.push({ _tag: "TestOver", test: t, completed: false })
}

// ---------------------------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------------------------

const totalBytes = (t: Test): number => {
  let n = 0
  for (const st of t.streams) n += st.bytes
  return n
}

/** The next deadline (ms), or undefined when nothing waits on time. */
export const pollAt = (s: Server): number | undefined => {
  let at = Infinity
  for (const r of s.conns.values()) if (r.kind === "pending" && r.deadlineMs < at) at = r.deadlineMs
  const t = s.test
  if (t !== undefined) {
    at = Math.min(at, t.deadlineMs)
    if (t.phase === "Running" && !t.omitDone) at = Math.min(at, t.omitEndMs)
    if (t.phase === "Running") at = Math.min(at, t.stallCheckMs, t.ivNextMs)
  }
  return at === Infinity ? undefined : at
}

export const onTick = (s: Server, nowMs: number, out: Array<Action>): void => {
  for (const [conn, r] of s.conns) {
    if (r.kind === "pending" && nowMs >= r.deadlineMs) {
      s.pending--
      s.conns.set(conn, { kind: "closing" })
      logRefusal(out, "connections without a cookie closed", `${who(r.peer)} sent no cookie within ${COOKIE_TIMEOUT_MS / 1000} s (${r.got} bytes); closing`)
      out.push({ _tag: "Close", conn, abort: true })
    }
  }
  const t = s.test
  if (t === undefined) return
  if (t.phase === "Running" && !t.omitDone && nowMs >= t.omitEndMs) {
    t.omitDone = true
    for (const st of t.streams) {
      st.omitBytes = st.bytes
      st.omitRetransmits = st.retransmits
    }
  }
  if (t.phase === "Running" && nowMs >= t.ivNextMs) {
    intervalLines(t, nowMs, out)
    t.ivNextMs = Math.max(t.ivNextMs + s.intervalMs, nowMs + 1)
  }
  if (t.phase === "Running" && nowMs >= t.stallCheckMs) {
    // the stall deadline: bytes received, or taken by TCP / sent as datagrams, by any stream
    const total = totalBytes(t)
    if (total !== t.lastTotal) {
      t.lastTotal = total
      t.lastProgressMs = nowMs
    } else if (nowMs - t.lastProgressMs >= t.stallMs) {
      s.stats.stalled++
      return endTest(s, t, `no stream moved a byte for ${t.stallMs / 1000} s`, nowMs, out, undefined, true)
    }
    t.stallCheckMs = Math.min(nowMs + STALL_CHECK_MS, t.lastProgressMs + t.stallMs)
    if (t.stallCheckMs <= nowMs) t.stallCheckMs = nowMs + 1
  }
  if (nowMs < t.deadlineMs) return
  const p = t.params
  if (t.phase === "Running" && p !== undefined && p.timeS === 0) {
    // -n / -k: the test goes on while data moves (the stall deadline above ends it when nothing does)
    t.deadlineMs = nowMs + IDLE_TIMEOUT_MS
    return
  }
  const why =
    t.phase === "Running"
      ? `no TEST_END within T + omit + ${SAFETY_SLACK_MS / 1000} s`
      : `timed out ${phaseWords(t.phase)}${t.phase === "CreateStreams" ? ` (${t.streams.length} of ${t.expected})` : ""}`
  endTest(s, t, why, nowMs, out, undefined, true)
}

// ---------------------------------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------------------------------

/** Total bytes the test may send (`-n`, or `-k` blocks), Infinity in time mode. */
export const sendBudget = (t: Test): number => {
  const p = t.params
  if (p === undefined) return 0
  return p.bytes > 0 ? p.bytes : p.blocks > 0 ? p.blocks * p.len : Infinity
}

/**
 * How many bytes stream `st` should write now, at most `max`: 0 when stopped, when the test's budget is spent
 * (`senderDone` tells these apart from pacing), or when `-b` pacing allows nothing yet.
 */
export const sendLen = (t: Test, st: StreamState, max: number, nowMs: number): number => {
  if (st.stopped || t.phase !== "Running") return 0
  let n = Math.min(max, sendBudget(t) - t.sentTotal)
  const bw = t.params?.bandwidth ?? 0
  if (bw > 0) n = Math.min(n, Math.floor(((bw / 8) * Math.max(0, nowMs - t.startMs)) / 1000) - st.bytes)
  return Math.max(0, n)
}

/** True when the stream will not send again (stopped, or the budget is spent). */
export const senderDone = (t: Test, st: StreamState): boolean => st.stopped || t.phase !== "Running" || t.sentTotal >= sendBudget(t)

/** How long a paced sender sleeps before asking again (the client's pacing_timer, 1 ms by default). */
export const PACING_MS = 1

export const commitSent = (t: Test, st: StreamState, n: number, retransmits: number, cwnd = st.cwnd): void => {
  st.bytes += n
  t.sentTotal += n
  st.retransmits = retransmits
  st.cwnd = cwnd
  if (cwnd > (t.maxCwnd.get(st.id) ?? 0)) t.maxCwnd.set(st.id, cwnd)
}

/** UDP: datagrams stream `st` should send now (pacing to `bandwidth`, the `-n`/`-k` budget, at most U.MAX_BURST). */
export const udpDue = (t: Test, st: StreamState, nowMs: number): number => {
  if (st.stopped || t.phase !== "Running") return 0
  const p = t.params!
  let n = U.due(p.bandwidth, p.len, t.startMs, nowMs, st.packetsSent)
  const budget = sendBudget(t)
  if (budget !== Infinity) n = Math.min(n, Math.ceil((budget - t.sentTotal) / p.len))
  return Math.max(0, n)
}

/** UDP: milliseconds a sender may sleep before its next datagram is due. */
export const udpSleepMs = (t: Test, st: StreamState, nowMs: number): number => {
  const p = t.params!
  return Math.min(U.sleepMs(p.bandwidth, p.len, t.startMs, nowMs, st.packetsSent), 100)
}

/** UDP: one datagram of `len` bytes left. */
export const commitUdpSent = (t: Test, st: StreamState, len: number): void => {
  st.packetsSent++
  st.bytes += len
  t.sentTotal += len
}

/** The shell measured CPU use (percent of one core's wall time) over the test. */
export const setCpu = (t: Test, total: number, user: number, system: number): void => {
  t.cpu = [total, user, system]
}

// ---------------------------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------------------------

const streamSpan = (t: Test): { readonly from: number; readonly seconds: number } => {
  const from = t.omitDone ? t.omitEndMs : t.startMs
  return { from, seconds: Math.max(0, t.endMs - from) / 1000 }
}

const counted = (t: Test, st: StreamState): number => st.bytes - (t.omitDone ? st.omitBytes : 0)
const retransCounted = (t: Test, st: StreamState): number => st.retransmits - (t.omitDone ? st.omitRetransmits : 0)

export const serverResults = (t: Test): W.ResultsRepr => {
  const anySender = t.streams.some((st) => st.sender)
  const span = streamSpan(t)
  return {
    cpuTotal: t.cpu[0],
    cpuUser: t.cpu[1],
    cpuSystem: t.cpu[2],
    senderHasRetransmits: anySender ? (t.params?.protocol === "tcp" ? 1 : 0) : -1,
    ...(t.params?.getServerOutput === true ? { serverOutputText: t.lines.map((l) => l + "\n").join("") } : {}),
    streams: t.streams.map((st) => ({
      id: st.id,
      bytes: counted(t, st),
      retransmits: st.sender && st.udpKey === undefined ? retransCounted(t, st) : -1,
      jitter: st.udp?.jitterS ?? 0,
      errors: st.udp?.errors ?? 0,
      packets: st.udp?.packets ?? st.packetsSent,
      startTime: 0,
      endTime: span.seconds
    }))
  }
}

/** A last interval shorter than this is not reported (3.12 printed one of 10 ms, none of well under that). */
export const MIN_LAST_INTERVAL_MS = 5

/**
 * The interval lines from `t.ivStartMs` to `nowMs`, as `iperf3 -s` prints them every `-i` seconds: the column
 * header before the first group; a line per stream with what moved in the interval (a sending TCP stream with its
 * retransmits and congestion window, a receiving UDP stream with its jitter so far, losses and datagrams); a [SUM]
 * per direction with more than one stream, and then the separator between groups.
 */
const intervalLines = (t: Test, nowMs: number, out: Array<Action>): void => {
  const p = t.params
  if (p === undefined) return
  const bidir = p.bidirectional
  const udp = p.protocol === "udp"
  const anySender = t.streams.some((st) => st.sender)
  const anyReceiver = t.streams.some((st) => !st.sender)
  const startS = (t.ivStartMs - t.startMs) / 1000
  const endS = (nowMs - t.startMs) / 1000
  const role = (st: { readonly sender: boolean }) => (bidir ? { role: st.sender ? ("TX-S" as const) : ("RX-S" as const) } : {})
  const sums = [false, true].filter((sender) => t.streams.filter((st) => st.sender === sender).length > 1)
  if (t.ivGroups === 0) {
    log(
      out,
      udp
        ? bidir ? F.HEADER_UDP_BIDIR : anySender && !anyReceiver ? F.HEADER_UDP_SENDER : F.HEADER_UDP
        : anySender ? (bidir ? F.HEADER_RETR_CWND_BIDIR : F.HEADER_RETR_CWND) : bidir ? F.HEADER_BIDIR : F.HEADER,
      t
    )
  } else if (sums.length > 0) log(out, F.SEPARATOR, t)
  t.ivGroups++
  const total = { bytes: [0, 0], retr: [0, 0], packets: [0, 0], errors: [0, 0], jitter: [0, 0] }
  const rec: Array<IntervalStream> = []
  for (const st of t.streams) {
    const bytes = st.bytes - st.ivBytes
    const retr = st.retransmits - st.ivRetransmits
    const packets = (st.udp?.packets ?? st.packetsSent) - st.ivPackets
    const errors = (st.udp?.errors ?? 0) - st.ivErrors
    const k = st.sender ? 1 : 0
    total.bytes[k]! += bytes
    total.retr[k]! += retr
    total.packets[k]! += packets
    total.errors[k]! += errors
    total.jitter[k]! += st.udp?.jitterS ?? 0
    const line = !udp
      ? st.sender
        ? F.cwndInterval({ id: st.id, ...role(st), startS, endS, bytes, retransmits: retr, cwndBytes: st.cwnd })
        : F.summary({ id: st.id, ...role(st), startS, endS, bytes, side: "" })
      : st.sender
        ? F.udpSenderInterval(st.id, startS, endS, bytes, packets, bidir ? "TX-S" : undefined)
        : F.udpSummary({ id: st.id, ...role(st), startS, endS, bytes, jitterS: st.udp?.jitterS ?? 0, lost: errors, packets, side: "" })
    log(out, line, t)
    rec.push(
      udp
        ? st.sender
          ? { id: st.id, sender: true, bytes, packets }
          : { id: st.id, sender: false, bytes, jitterS: st.udp?.jitterS ?? 0, lost: errors, packets }
        : st.sender
          ? { id: st.id, sender: true, bytes, retransmits: retr, cwnd: st.cwnd }
          : { id: st.id, sender: false, bytes }
    )
    st.ivBytes = st.bytes
    st.ivRetransmits = st.retransmits
    st.ivPackets = st.udp?.packets ?? st.packetsSent
    st.ivErrors = st.udp?.errors ?? 0
  }
  for (const sender of sums) {
    const k = sender ? 1 : 0
    const n = t.streams.filter((st) => st.sender === sender).length
    const r = bidir ? { role: sender ? ("TX-S" as const) : ("RX-S" as const) } : {}
    log(
      out,
      !udp
        ? F.summary({ id: "SUM", ...r, startS, endS, bytes: total.bytes[k]!, ...(sender ? { retransmits: total.retr[k]! } : {}), side: "" })
        : sender
          ? F.udpSenderInterval("SUM", startS, endS, total.bytes[k]!, total.packets[k]!, bidir ? "TX-S" : undefined)
          : F.udpSummary({
            id: "SUM", ...r, startS, endS, bytes: total.bytes[k]!, jitterS: total.jitter[k]! / n, lost: total.errors[k]!, packets: total.packets[k]!, side: ""
          }),
      t
    )
  }
  if (t.intervals.length < MAX_INTERVAL_RECORDS) t.intervals.push({ startS, endS, streams: rec })
  else t.intervalsDropped++
  t.ivStartMs = nowMs
}

/** The per-stream summary lines (and [SUM] lines for more than one stream per direction). */
const summarize = (t: Test, out: Array<Action>): void => {
  const p = t.params!
  const span = streamSpan(t)
  const bidir = p.bidirectional
  const anySender = t.streams.some((st) => st.sender)
  if (p.protocol === "udp") return summarizeUdp(t, out)
  log(out, F.SEPARATOR, t)
  log(out, bidir ? (anySender ? F.HEADER_RETR_BIDIR : F.HEADER_BIDIR) : anySender ? F.HEADER_RETR : F.HEADER, t)
  const line = (id: number | "SUM", sender: boolean, bytes: number, retr: number | undefined): string =>
    F.summary({
      id,
      ...(bidir ? { role: sender ? ("TX-S" as const) : ("RX-S" as const) } : {}),
      startS: 0,
      endS: span.seconds,
      bytes,
      ...(retr !== undefined ? { retransmits: retr } : {}),
      side: sender ? "sender" : "receiver"
    })
  for (const st of t.streams) log(out, line(st.id, st.sender, counted(t, st), st.sender ? retransCounted(t, st) : undefined), t)
  for (const sender of [false, true]) {
    const ss = t.streams.filter((st) => st.sender === sender)
    if (ss.length < 2) continue
    let b = 0
    let r = 0
    for (const st of ss) {
      b += counted(t, st)
      r += retransCounted(t, st)
    }
    log(out, line("SUM", sender, b, sender ? r : undefined), t)
  }
}

const summarizeUdp = (t: Test, out: Array<Action>): void => {
  const p = t.params!
  const span = streamSpan(t)
  log(out, F.SEPARATOR, t)
  log(out, p.bidirectional ? F.HEADER_UDP_BIDIR : F.HEADER_UDP, t)
  const line = (id: number | "SUM", sender: boolean, bytes: number, u: { jitterS: number; errors: number; packets: number }): string =>
    F.udpSummary({
      id,
      ...(p.bidirectional ? { role: sender ? ("TX-S" as const) : ("RX-S" as const) } : {}),
      startS: 0,
      endS: span.seconds,
      bytes,
      jitterS: u.jitterS,
      lost: u.errors,
      packets: u.packets,
      side: sender ? "sender" : "receiver"
    })
  const stats = (st: StreamState) => st.udp ?? { jitterS: 0, errors: 0, packets: st.packetsSent }
  for (const st of t.streams) log(out, line(st.id, st.sender, counted(t, st), stats(st)), t)
  for (const sender of [false, true]) {
    const ss = t.streams.filter((st) => st.sender === sender)
    if (ss.length < 2) continue
    const sum = { jitterS: 0, errors: 0, packets: 0 }
    let b = 0
    for (const st of ss) {
      const u = stats(st)
      b += counted(t, st)
      sum.jitterS += u.jitterS / ss.length
      sum.errors += u.errors
      sum.packets += u.packets
    }
    log(out, line("SUM", sender, b, sum), t)
  }
}
