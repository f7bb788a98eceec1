/**
 * The pure TCP connection machine (RFC 9293), driven from outside (smoltcp style). Read first:
 * RFC 9293 §3.10 (event processing), RFC 6298 (RTO), RFC 5681/6582 (congestion, NewReno),
 * RFC 2018/6675 (SACK, SACK recovery), RFC 7323 (window scale, timestamps, PAWS), RFC 5961
 * (RST/SYN/ACK hardening), RFC 1122 §4.2.3.2 (delayed ACK), RFC 9438 (CUBIC).
 *
 * No Effect, no IO, no clock: every entry point takes `nowMs` and an `Output` sink.
 *
 * API (the shell in layers/Tcp.ts drives it):
 *   const tcb = connect(cfg, local, remote, iss, nowMs, out)   active open: SYN goes out now
 *   const tcb = acceptSyn(cfg, seg, local, remote, iss, nowMs, out)   passive open from LISTEN
 *       (the shell owns the listener and its bounded SYN backlog: for a segment to a listening
 *        port: RST -> ignore; ACK -> send rstFor(seg); SYN -> acceptSyn; the Tcb is SynReceived)
 *   input(tcb, seg, buf, off, nowMs, out)   a parsed segment; payload is buf[off, off+seg.payloadLen)
 *                                         (borrowed: never kept after the call; may exceed the MSS: GSO)
 *   poll(tcb, nowMs, out)                 run due timers, then send whatever can be sent
 *   pollAt(tcb) -> number | undefined     next deadline (ms); <= now means "poll now"
 *   send(tcb, data, start?, end?) -> n    copies what fits into the send ring; then poll
 *   recv(tcb, dst, off?, max?) -> n       buffer mode: read in-order bytes; then poll (window update)
 *   close(tcb)                            FIN after queued data (half-close, still receives); then poll
 *   abort(tcb, nowMs, out)                RST now, Closed
 *   takeEvents(tcb) -> bitmask of EV_*    events since the last call (cleared)
 *   copyPayload(tcb, seq, len, dst, off)  copy a segment's payload from the send ring into a frame
 *   resizeRings(tcb, send, recv) -> ok    other ring sizes while both rings are unused (the shell sizes a
 *                                         passive open as its handshake completes)
 *   rstFor(seg) -> TcpRepr | undefined    RST for a segment that matched no connection
 *
 * `Output.segment(tcb, repr)` is called once per outgoing segment, synchronously; the shell computes
 * `Wire.headerLen(repr)`, builds the frame and copies `repr.payloadLen` payload bytes with
 * `copyPayload(tcb, repr.seq, repr.payloadLen, frame, off)` before returning (the ring may change after).
 * With `cfg.tso` a data segment may carry up to `cfg.maxSegmentBytes` (a multiple of `tcb.sndMss`):
 * the shell marks it for TSO with gso_size = tcb.sndMss. Every other segment carries at most
 * `segmentPayloadMax(tcb)` bytes (less than sndMss while SACK blocks ride along), and TSO segments go
 * out only while that equals sndMss, so each wire segment fits the MTU.
 * `Output.deliver(tcb, buf, start, end)` (sink mode only) hands in-order payload over without a copy
 * (EV_READABLE is not raised in sink mode: the callback is the signal).
 *
 * Supported: all RFC 9293 states incl. simultaneous open/close and TIME-WAIT (2 * cfg.mslMs); MSS option
 * (peer's honoured, 536 default); window scaling, timestamps + PAWS (RFC 7323); SACK-permitted, SACK
 * blocks (RFC 2018) and SACK loss recovery (RFC 6675 pipe/NextSeg rule 1; recovery.ts); NewReno (RFC 5681/6582)
 * and CUBIC (RFC 9438, default) behind one interface; RTO per RFC 6298 (min/max configurable, Karn,
 * backoff kept until a valid sample); delayed ACK (every 2nd segment or ackDelayMs; at once for
 * out-of-order or gap-filling data); Nagle + sender SWS avoidance with an override via the persist
 * timer; zero-window persist probes with their own backoff; window update on read; keep-alive;
 * RFC 5961 challenge ACKs (rate-limited per connection); bounded everything (send/receive rings,
 * cfg.maxRanges out-of-order ranges and SACK scoreboard ranges).
 * Not supported: urgent data (URG is ignored, the bytes are normal data), ECN, TCP Fast Open (data on
 * a SYN is dropped and must be resent), RACK (a tail-loss probe, RFC 8985 §7, is in), D-SACK, receiver-side SWS avoidance beyond the
 * read-time window-update threshold, RFC 7323's 24-day PAWS idle rule, PMTU discovery.
 * ISS generation (RFC 6528) is the shell's job (it has a clock and randomness).
 */
import * as Cc from "./congestion.js"
import * as Cookie from "./cookie.js"
import { RecvBuf } from "./recvbuf.js"
import { RangeSet } from "./reassembly.js"
import * as Recovery from "./recovery.js"
import { RttEstimator } from "./rtt.js"
import * as Sack from "./sack.js"
import { SendBuf } from "./sendbuf.js"
import { seqAdd, seqDiff, seqGt, seqLe, seqLt, tsLt, type SeqNum, inWindow } from "./seq.js"
import * as Timer from "./timer.js"
import { NEVER, TimerKind } from "./timer.js"
import * as W from "./wire.js"

// ---------------------------------------------------------------------------------------------
// Types, configuration, events
// ---------------------------------------------------------------------------------------------

export type State =
  | "Closed"
  | "SynSent"
  | "SynReceived"
  | "Established"
  | "FinWait1"
  | "FinWait2"
  | "CloseWait"
  | "Closing"
  | "LastAck"
  | "TimeWait"

export type ErrorReason = "Refused" | "Reset" | "TimedOut" | "Aborted"

export interface Endpoint {
  /** An IPv4 address (a number) or an IPv6 one (protocols/ipv6/address.ts: 8 code units); the machine only carries it. */
  readonly addr: number | string
  readonly port: number
}

export interface Config {
  /** MSS we advertise and cap our segments at (IP MTU - 40). */
  readonly mss: number
  readonly sendBufBytes: number
  /** Receive ring size: the window in buffer mode, and the out-of-order bound in both modes. */
  readonly recvBufBytes: number
  /** "buffer": the app reads with recv(); "sink": in-order payload goes to Output.deliver, window stays open. */
  readonly recvMode: "buffer" | "sink"
  readonly windowScale: boolean
  readonly timestamps: boolean
  readonly sack: boolean
  readonly nagle: boolean
  readonly congestion: "cubic" | "newreno"
  readonly initialRtoMs: number
  readonly minRtoMs: number
  readonly maxRtoMs: number
  /** SYN retransmissions (active open) before TimedOut. */
  readonly synRetries: number
  /** SYN-ACK retransmissions (passive open) before the half-open entry is dropped (Linux tcp_synack_retries, 5). */
  readonly synAckRetries: number
  /** Data retransmissions (consecutive RTOs) before TimedOut. */
  readonly maxRetries: number
  /** Maximum segment lifetime; TIME-WAIT lasts 2 * mslMs. */
  readonly mslMs: number
  readonly ackDelayMs: number
  /**
   * FIN-WAIT-2 with no segment from the peer for this long ends the connection (Linux tcp_fin_timeout, 60 s).
   * Measured from the last segment received, so a peer still sending after our FIN (a half-close in use) is
   * never cut; 0 = wait forever.
   */
  readonly finWait2TimeoutMs: number
  /**
   * Once we have closed (FIN queued), zero-window probes the peer leaves unanswered by any window before we
   * give up with a reset (Linux tcp_orphan_retries, 8 when 0). 0 = probe forever.
   */
  readonly closedProbeLimit: number
  /** Keep-alive idle time; 0 = off. */
  readonly keepAliveIdleMs: number
  readonly keepAliveIntervalMs: number
  readonly keepAliveCount: number
  /** The NIC segments large sends (TSO). */
  readonly tso: boolean
  /** Largest TSO payload handed to the NIC. */
  readonly maxSegmentBytes: number
  /** Challenge ACKs per second per connection (RFC 5961 §7). */
  readonly challengeAckLimit: number
  /** Tail loss probe (RFC 8985 §7) before the RTO. */
  readonly tailLossProbe: boolean
  /** Bound on distinct out-of-order ranges (receiver) and SACK scoreboard ranges (sender). */
  readonly maxRanges: number
}

export const defaultConfig: Config = Object.freeze({
  mss: 1460,
  sendBufBytes: 256 * 1024,
  recvBufBytes: 256 * 1024,
  recvMode: "buffer",
  windowScale: true,
  timestamps: true,
  sack: true,
  nagle: true,
  congestion: "cubic",
  initialRtoMs: 1000,
  minRtoMs: 200,
  maxRtoMs: 60_000,
  synRetries: 6,
  synAckRetries: 5,
  finWait2TimeoutMs: 60_000,
  closedProbeLimit: 8,
  maxRetries: 15,
  mslMs: 30_000,
  ackDelayMs: 40,
  keepAliveIdleMs: 0,
  keepAliveIntervalMs: 75_000,
  keepAliveCount: 9,
  tso: false,
  maxSegmentBytes: 64_000,
  challengeAckLimit: 10,
  tailLossProbe: true,
  maxRanges: 32
})

export const makeConfig = (p: Partial<Config> = {}): Config => ({ ...defaultConfig, ...p })

export const EV_CONNECTED = 1
export const EV_READABLE = 2
export const EV_WRITABLE = 4
/** The peer sent FIN: no more data will arrive (readable end). */
export const EV_PEER_FIN = 8
/** The connection reached Closed (after TIME-WAIT, LastAck, abort, reset or timeout). */
export const EV_CLOSED = 16
export const EV_RESET = 32
export const EV_TIMED_OUT = 64

export interface Output {
  segment(tcb: Tcb, repr: W.TcpRepr): void
  deliver(tcb: Tcb, buf: Uint8Array, start: number, end: number): void
}

export class Counters {
  segsIn = 0
  segsOut = 0
  /** In-order payload bytes accepted. */
  bytesIn = 0
  /** New payload bytes sent (not retransmissions). */
  bytesOut = 0
  retransSegs = 0
  retransBytes = 0
  rtoExpiries = 0
  fastRetransmits = 0
  /** Retransmissions found lost by SACK (data sent after them was SACKed) and sent again. */
  lostRetransmits = 0
  tailLossProbes = 0
  dupAcksIn = 0
  oooSegs = 0
  oooDropped = 0
  outOfWindow = 0
  pawsDrops = 0
  challengeAcks = 0
  probes = 0
  keepAlives = 0
}

// ---------------------------------------------------------------------------------------------
// The TCB
// ---------------------------------------------------------------------------------------------


/** The window scale we offer: enough to advertise the whole receive ring. */
const ourWscaleFor = (cfg: Config): number => {
  let ws = 0
  while (ws < 14 && cfg.recvBufBytes >>> ws > 65535) ws++
  return ws
}

/** Our timestamp clock's offset for a connection: derived from its ISS, so a SYN cookie can recreate it. */
const tsOffsetFor = (iss: number): number => ((iss >>> 0) * 2654435761) >>> 0

export class Tcb {
  state: State = "Closed"
  error: ErrorReason | undefined = undefined
  events = 0
  readonly counters = new Counters()
  passive = false
  nagle: boolean

  // send sequence space
  readonly iss: SeqNum
  sndUna: SeqNum
  sndNxt: SeqNum
  /** Highest sequence number sent + 1 (SND.NXT may rewind after an RTO). */
  sndMax: SeqNum
  sndWnd = 0
  sndWl1 = 0 as SeqNum
  sndWl2 = 0 as SeqNum
  maxSndWnd = 0
  sndWscale = 0
  /** Payload bytes per segment (peer MSS, our MSS, minus timestamp option). */
  sndMss = 536
  /** Sequence number of sendbuf byte 0. */
  bufSeq: SeqNum
  readonly sendbuf: SendBuf
  closeRequested = false

  // receive sequence space
  irs = 0 as SeqNum
  rcvNxt = 0 as SeqNum
  rcvWscale = 0
  readonly ourWscale: number
  rcvAdvEdge = 0 as SeqNum
  readonly recvbuf: RecvBuf
  readonly ooo: RangeSet
  /** Offset (from rcvNxt) of the most recent out-of-order segment, for SACK block order. */
  lastOooOff = -1
  peerFinPending = false
  peerFinSeq = 0 as SeqNum
  finReceived = false

  // options
  wsOk = false
  sackOk = false
  tsOk = false
  tsRecent = 0
  tsOffset: number
  lastAckSent = 0 as SeqNum

  // timers
  readonly rtt: RttEstimator
  timerKind: TimerKind = TimerKind.Idle
  timerAt = NEVER
  ackDelayAt = NEVER
  retries = 0
  persistMs = 0
  /** Zero-window probes sent since we closed (see Config.closedProbeLimit). */
  closedProbes = 0
  kaProbes = 0
  lastRecvAt: number
  rttTiming = false
  rttSeq = 0 as SeqNum
  rttAt = 0
  synSentAt = 0

  // ack / output flags
  ackNow = false
  sendPending = false
  synAckPending = false
  /** Persist fired with a non-zero but SWS-blocked window: send what fits (RFC 9293 override timeout). */
  forceSend = false
  bytesSinceAck = 0
  /**
   * Set by the shell while it feeds a receive burst: pure ACKs wait (ackNow stays set) until the shell
   * clears it and polls at the end of the burst, so a burst of segments costs one ACK, not one per two.
   * Only `input` honours it: `poll` clears it (a poll is never inside a burst), so a missed burst end
   * cannot leave an ACK pending forever.
   */
  holdAck = false
  segsSinceAck = 0
  lastNowMs: number

  // congestion & loss recovery (recovery.ts)
  cc: Cc.CongestionControl
  readonly rec: Recovery.Recovery
  /** The Retransmit deadline is a tail-loss probe; a probe was already sent for this flight. */
  tlpPending = false
  tlpUsed = false

  // RFC 5961 challenge ACK limit
  chWindowStart = 0
  chCount = 0

  constructor(
    /** Replaced only by `resizeRings` (with the new ring sizes), before either ring is allocated. */
    readonly cfg: Config,
    readonly local: Endpoint,
    readonly remote: Endpoint,
    iss: number,
    nowMs: number
  ) {
    this.iss = (iss >>> 0) as SeqNum
    this.sndUna = this.iss
    this.sndNxt = this.iss
    this.sndMax = this.iss
    this.bufSeq = seqAdd(this.iss, 1)
    this.sendbuf = new SendBuf(cfg.sendBufBytes)
    this.recvbuf = new RecvBuf(cfg.recvBufBytes)
    this.ooo = new RangeSet(cfg.maxRanges)
    this.rec = new Recovery.Recovery(this.iss, cfg.maxRanges)
    this.rtt = new RttEstimator(cfg.initialRtoMs, cfg.minRtoMs, cfg.maxRtoMs)
    this.nagle = cfg.nagle
    this.ourWscale = ourWscaleFor(cfg)
    this.tsOffset = tsOffsetFor(this.iss)
    this.lastRecvAt = nowMs
    this.lastNowMs = nowMs
    this.cc = Cc.make(cfg.congestion, cfg.mss)
  }
}

// ---------------------------------------------------------------------------------------------
// Predicates and small helpers
// ---------------------------------------------------------------------------------------------

export const state = (t: Tcb): State => t.state
export const isOpen = (t: Tcb): boolean => t.state !== "Closed" && t.state !== "TimeWait"
/** The app may still queue data. */
export const maySend = (t: Tcb): boolean =>
  !t.closeRequested &&
  (t.state === "Established" || t.state === "CloseWait" || t.state === "SynSent" || t.state === "SynReceived")
/** Bytes can still arrive or are buffered. */
export const canRecv = (t: Tcb): boolean => t.recvbuf.len > 0 || (!t.finReceived && isOpen(t))
export const recvAvailable = (t: Tcb): number => t.recvbuf.len
export const sendFree = (t: Tcb): number => (maySend(t) ? t.sendbuf.free : 0)
export const takeEvents = (t: Tcb): number => {
  const e = t.events
  t.events = 0
  return e
}

const tsClock = (t: Tcb, now: number): number => (Math.floor(now) + t.tsOffset) >>> 0

/** Space for in-order + out-of-order bytes past RCV.NXT. */
const recvFree = (t: Tcb): number => (t.cfg.recvMode === "sink" ? t.recvbuf.capacity : t.recvbuf.free)

/** RCV.WND for acceptability: never less than what we advertised. */
const recvWindow = (t: Tcb): number => Math.max(recvFree(t), seqDiff(t.rcvAdvEdge, t.rcvNxt))

const advertiseWindow = (t: Tcb, syn: boolean): number => {
  const s = syn ? 0 : t.rcvWscale
  let w = Math.min(recvFree(t) >>> s, 65535)
  const edgeNow = seqDiff(t.rcvAdvEdge, t.rcvNxt)
  if (!syn && w * (1 << s) < edgeNow) w = Math.min(Math.ceil(edgeNow / (1 << s)), 65535) // never shrink
  const e = seqAdd(t.rcvNxt, w * (1 << s))
  if (seqGt(e, t.rcvAdvEdge) || syn) t.rcvAdvEdge = e
  return w
}

const flightSize = (t: Tcb): number => seqDiff(t.sndMax, t.sndUna)

/**
 * Payload bytes that fit in one wire segment right now. sndMss allows for the timestamp option only;
 * while we have out-of-order data every segment also carries SACK blocks (up to 28 more option bytes
 * with timestamps, 36 without), and a full-MSS segment would then exceed the MTU (the IP layer drops
 * it: DF) — RFC 6691 §2, Linux tcp_current_mss. TSO super-segments are cut at tcb.sndMss by the
 * shell, so they go out only while no SACK option is due.
 */
export const segmentPayloadMax = (t: Tcb): number => {
  if (!t.sackOk || t.ooo.isEmpty) return t.sndMss
  const blocks = Math.min(t.ooo.count, t.tsOk ? 3 : 4)
  return Math.max(8, t.sndMss - (4 + 8 * blocks))
}

const hasUnsent = (t: Tcb): boolean => {
  const off = seqDiff(t.sndNxt, t.bufSeq)
  return off < t.sendbuf.len || (t.closeRequested && off === t.sendbuf.len)
}

const finSeq = (t: Tcb): SeqNum => seqAdd(t.bufSeq, t.sendbuf.len)
const finSent = (t: Tcb): boolean => t.closeRequested && seqGt(t.sndMax, finSeq(t))
const finAcked = (t: Tcb): boolean => t.closeRequested && seqGt(t.sndUna, finSeq(t))

const toClosed = (t: Tcb, error: ErrorReason | undefined, ev: number): void => {
  t.state = "Closed"
  t.error = error
  t.events |= EV_CLOSED | ev
  Timer.disarm(t)
  t.ackDelayAt = NEVER
  t.ackNow = false
}

const enterTimeWait = (t: Tcb, now: number): void => {
  t.state = "TimeWait"
  Timer.arm(t, TimerKind.Close, now + 2 * t.cfg.mslMs)
}

// ---------------------------------------------------------------------------------------------
// Segment construction
// ---------------------------------------------------------------------------------------------

const repr = (t: Tcb, now: number, seqNum: SeqNum, flags: number, len: number): W.TcpRepr => {
  const syn = (flags & W.SYN) !== 0
  const wantSack = t.sackOk && !t.ooo.isEmpty && (flags & W.ACK) !== 0
  const r: W.TcpRepr = {
    srcPort: t.local.port,
    dstPort: t.remote.port,
    seq: seqNum,
    ack: (flags & W.ACK) !== 0 ? t.rcvNxt : (0 as SeqNum),
    flags,
    window: (flags & W.RST) !== 0 ? 0 : advertiseWindow(t, syn),
    urgent: 0,
    mss: 0,
    wscale: -1,
    sackPermitted: false,
    hasTs: t.tsOk && (flags & W.RST) === 0,
    tsVal: t.tsOk ? tsClock(t, now) : 0,
    tsEcr: t.tsOk ? t.tsRecent : 0,
    sack: wantSack ? Sack.receiverBlocks(t.ooo, t.rcvNxt, t.lastOooOff, t.tsOk ? 3 : 4) : W.NO_SACK,
    headerLen: 0,
    payloadLen: len
  }
  return r
}

const emitSeg = (t: Tcb, r: W.TcpRepr, out: Output): void => {
  ;(r as { headerLen: number }).headerLen = W.headerLen(r)
  if ((r.flags & W.ACK) !== 0) {
    t.lastAckSent = t.rcvNxt
    t.ackNow = false
    t.ackDelayAt = NEVER
    t.bytesSinceAck = 0
    t.segsSinceAck = 0
  }
  t.counters.segsOut++
  out.segment(t, r)
}

const sendSyn = (t: Tcb, now: number, out: Output, withAck: boolean): void => {
  const c = t.cfg
  const r = repr(t, now, t.iss, withAck ? W.SYN | W.ACK : W.SYN, 0) as {
    -readonly [K in keyof W.TcpRepr]: W.TcpRepr[K]
  }
  r.mss = c.mss
  if (withAck) {
    // SYN-ACK: only options the peer offered
    r.wscale = t.wsOk ? t.ourWscale : -1
    r.sackPermitted = t.sackOk
    r.hasTs = t.tsOk
    r.tsVal = t.tsOk ? tsClock(t, now) : 0
    r.tsEcr = t.tsOk ? t.tsRecent : 0
  } else {
    r.wscale = c.windowScale ? t.ourWscale : -1
    r.sackPermitted = c.sack
    r.hasTs = c.timestamps
    r.tsVal = c.timestamps ? tsClock(t, now) : 0
    r.tsEcr = 0
    r.ack = 0 as SeqNum
  }
  r.window = Math.min(recvFree(t), 65535)
  t.rcvAdvEdge = seqAdd(t.rcvNxt, r.window)
  t.synSentAt = now
  if (seqGt(seqAdd(t.iss, 1), t.sndMax)) t.sndMax = seqAdd(t.iss, 1)
  t.sndNxt = seqAdd(t.iss, 1)
  emitSeg(t, r, out)
}

const sendAck = (t: Tcb, now: number, out: Output): void => {
  emitSeg(t, repr(t, now, t.sndMax, W.ACK, 0), out) // SND.MAX: SND.NXT may be rewound after an RTO
}

/** Window / keep-alive probe: SEG.SEQ = SND.UNA - 1, no data; elicits an ACK with the window. */
const sendProbe = (t: Tcb, now: number, out: Output): void => {
  emitSeg(t, repr(t, now, seqAdd(t.sndUna, -1), W.ACK, 0), out)
}

const sendRst = (t: Tcb, seqNum: SeqNum, out: Output): void => {
  const r = W.make({ srcPort: t.local.port, dstPort: t.remote.port, seq: seqNum, flags: W.RST })
  ;(r as { headerLen: number }).headerLen = W.HEADER_LEN
  t.counters.segsOut++
  out.segment(t, r)
}

const challengeAck = (t: Tcb, now: number): void => {
  if (now - t.chWindowStart >= 1000) {
    t.chWindowStart = now
    t.chCount = 0
  }
  if (t.chCount < t.cfg.challengeAckLimit) {
    t.chCount++
    t.counters.challengeAcks++
    t.ackNow = true
  }
}

/** RST for a segment that matched no connection (RFC 9293 §3.10.7.1). */
export const rstFor = (seg: W.TcpRepr): W.TcpRepr | undefined => {
  if ((seg.flags & W.RST) !== 0) return undefined
  if ((seg.flags & W.ACK) !== 0) {
    return W.make({ srcPort: seg.dstPort, dstPort: seg.srcPort, seq: seg.ack, flags: W.RST, headerLen: W.HEADER_LEN })
  }
  const len = seg.payloadLen + ((seg.flags & W.SYN) !== 0 ? 1 : 0) + ((seg.flags & W.FIN) !== 0 ? 1 : 0)
  return W.make({
    srcPort: seg.dstPort,
    dstPort: seg.srcPort,
    seq: 0 as SeqNum,
    ack: seqAdd(seg.seq, len),
    flags: W.RST | W.ACK,
    headerLen: W.HEADER_LEN
  })
}

// ---------------------------------------------------------------------------------------------
// Opening: CLOSED -> SYN-SENT (active), LISTEN -> SYN-RECEIVED (passive)
// ---------------------------------------------------------------------------------------------

export const connect = (cfg: Config, local: Endpoint, remote: Endpoint, iss: number, now: number, out: Output): Tcb => {
  const t = new Tcb(cfg, local, remote, iss, now)
  t.state = "SynSent"
  sendSyn(t, now, out, false)
  Timer.arm(t, TimerKind.Retransmit, now + t.rtt.rtoMs)
  return t
}

const negotiate = (t: Tcb, seg: W.TcpRepr): void => {
  const c = t.cfg
  t.wsOk = c.windowScale && seg.wscale >= 0
  t.sndWscale = t.wsOk ? seg.wscale : 0
  t.rcvWscale = t.wsOk ? t.ourWscale : 0
  t.sackOk = c.sack && seg.sackPermitted
  t.tsOk = c.timestamps && seg.hasTs
  if (t.tsOk) t.tsRecent = seg.tsVal
  const peerMss = seg.mss !== 0 ? seg.mss : 536
  t.sndMss = Math.max(64, Math.min(peerMss, c.mss) - (t.tsOk ? 12 : 0))
  t.cc = Cc.make(c.congestion, t.sndMss)
  t.sndWnd = seg.window // windows in SYN segments are never scaled
  t.maxSndWnd = t.sndWnd
  t.sndWl1 = seg.seq
  t.sndWl2 = seg.ack
}

/**
 * Passive open: `seg` is a SYN (no ACK, no RST) that arrived for a listening port. Returns a
 * SynReceived Tcb; the SYN-ACK has been emitted. Data carried on the SYN is ignored (the peer resends it).
 */
export const acceptSyn = (
  cfg: Config,
  seg: W.TcpRepr,
  local: Endpoint,
  remote: Endpoint,
  iss: number,
  now: number,
  out: Output
): Tcb => {
  const t = new Tcb(cfg, local, remote, iss, now)
  t.passive = true
  t.state = "SynReceived"
  t.irs = seg.seq
  t.rcvNxt = seqAdd(seg.seq, 1)
  t.lastAckSent = t.rcvNxt
  negotiate(t, seg)
  t.counters.segsIn++
  sendSyn(t, now, out, true)
  Timer.arm(t, TimerKind.Retransmit, now + t.rtt.rtoMs)
  return t
}

/**
 * The SYN-ACK for a SYN answered with a cookie (`iss` from cookie.ts), built without a Tcb: nothing is
 * kept. Window scale and SACK are offered only when the peer sent timestamps, whose echo brings them back
 * (cookie.ts); the window is the unscaled initial one, as in any SYN-ACK.
 */
export const cookieSynAck = (cfg: Config, seg: W.TcpRepr, iss: number, now: number): W.TcpRepr => {
  const ts = cfg.timestamps && seg.hasTs
  const ws = ts && cfg.windowScale && seg.wscale >= 0
  const sack = ts && cfg.sack && seg.sackPermitted
  const r = W.make({
    srcPort: seg.dstPort,
    dstPort: seg.srcPort,
    seq: (iss >>> 0) as SeqNum,
    ack: seqAdd(seg.seq, 1),
    flags: W.SYN | W.ACK,
    window: Math.min(cfg.recvBufBytes, 65535),
    mss: cfg.mss,
    wscale: ws ? ourWscaleFor(cfg) : -1,
    sackPermitted: sack,
    hasTs: ts,
    // the peer's window scale (ours follows from cfg) and SACK, for the ACK's TSecr to bring back
    tsVal: ts ? Cookie.tsValWithOptions((Math.floor(now) + tsOffsetFor(iss)) >>> 0, Cookie.encodeTsOptions(ws ? Math.min(seg.wscale, 14) : -1, sack)) : 0,
    tsEcr: ts ? seg.tsVal : 0
  })
  ;(r as { headerLen: number }).headerLen = W.headerLen(r)
  return r
}

/**
 * Passive open from a valid SYN cookie: `seg` is the peer's ACK of our cookie SYN-ACK (SEG.ACK - 1 is
 * the cookie, already checked by the shell, which also decoded `mss`). `synAckCfg` is the configuration
 * the SYN-ACK was built from, `cfg` the connection's own (smaller rings under memory pressure). The connection starts Established,
 * with the options the cookie's timestamp carried. The shell then feeds `seg` itself to `input` (once the
 * connection is in its table), so data or a FIN on that ACK is processed as usual.
 */
export const acceptCookie = (
  cfg: Config,
  synAckCfg: Config,
  seg: W.TcpRepr,
  local: Endpoint,
  remote: Endpoint,
  mss: number,
  now: number
): Tcb => {
  const iss = seqAdd(seg.ack, -1)
  const t = new Tcb(cfg, local, remote, iss, now)
  // the window scale the SYN-ACK offered came from `synAckCfg` (the listener's); `cfg` may have smaller
  // rings (memory pressure), but the peer scales our windows by what we announced
  ;(t as { ourWscale: number }).ourWscale = ourWscaleFor(synAckCfg)
  t.passive = true
  t.irs = seqAdd(seg.seq, -1)
  t.rcvNxt = seg.seq
  t.lastAckSent = t.rcvNxt
  const ts = cfg.timestamps && seg.hasTs
  const o = ts ? Cookie.decodeTsOptions(seg.tsEcr) : { wscale: -1, sack: false }
  // the SYN as the cookie remembers it
  negotiate(
    t,
    W.make({ srcPort: remote.port, dstPort: local.port, seq: t.irs, mss, wscale: o.wscale, sackPermitted: o.sack, hasTs: ts, tsVal: seg.tsVal, window: seg.window })
  )
  t.sndUna = seg.ack
  t.sndNxt = seg.ack
  t.sndMax = seg.ack
  t.sndWnd = seg.window * (1 << t.sndWscale)
  t.maxSndWnd = t.sndWnd
  t.sndWl1 = seg.seq
  t.sndWl2 = seg.ack
  t.rcvAdvEdge = seqAdd(t.rcvNxt, Math.min(cfg.recvBufBytes, 65535))
  t.state = "Established"
  t.events |= EV_CONNECTED | EV_WRITABLE
  t.lastNowMs = now
  return t
}

const established = (t: Tcb, now: number): void => {
  t.state = "Established"
  t.events |= EV_CONNECTED | EV_WRITABLE
  if (t.retries === 0 && !t.tsOk) t.rtt.sample(now - t.synSentAt) // Karn: only if the SYN was not resent
  t.retries = 0
  if (t.closeRequested) t.state = "FinWait1"
}

// ---------------------------------------------------------------------------------------------
// Segment arrives
// ---------------------------------------------------------------------------------------------

export const input = (t: Tcb, seg: W.TcpRepr, buf: Uint8Array, off: number, now: number, out: Output): void => {
  t.lastNowMs = now
  if (t.state === "Closed") return
  t.counters.segsIn++
  t.lastRecvAt = now
  t.kaProbes = 0
  if (t.state === "SynSent") inputSynSent(t, seg, now, out)
  else inputSynchronized(t, seg, buf, off, now, out)
  if (closed(t)) return
  transmit(t, now, out)
  updateTimer(t, now)
}

// --- SYN-SENT --------------------------------------------------------------------------------

const inputSynSent = (t: Tcb, seg: W.TcpRepr, now: number, out: Output): void => {
  const f = seg.flags
  if ((f & W.ACK) !== 0 && (seqLe(seg.ack, t.iss) || seqGt(seg.ack, t.sndMax))) {
    if ((f & W.RST) === 0) sendRst(t, seg.ack, out)
    return
  }
  if ((f & W.RST) !== 0) {
    if ((f & W.ACK) !== 0) toClosed(t, "Refused", EV_RESET)
    return
  }
  if ((f & W.SYN) === 0) return
  t.irs = seg.seq
  t.rcvNxt = seqAdd(seg.seq, 1)
  negotiate(t, seg)
  if ((f & W.ACK) !== 0) {
    t.sndUna = seg.ack
    if (t.tsOk && seg.tsEcr !== 0 && t.retries === 0) sampleTs(t, seg, now)
    established(t, now)
    Timer.disarm(t)
    t.ackNow = true
  } else {
    // simultaneous open (RFC 9293 §3.5, figure 7)
    t.state = "SynReceived"
    t.synAckPending = true
  }
}

const sampleTs = (t: Tcb, seg: W.TcpRepr, now: number): void => {
  const r = (tsClock(t, now) - seg.tsEcr) | 0
  if (r >= 0 && r < 3_600_000) t.rtt.sample(r)
}

// --- SYN-RECEIVED, ESTABLISHED, FIN-WAIT-1/2, CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT ---------

const inputSynchronized = (t: Tcb, seg: W.TcpRepr, buf: Uint8Array, off: number, now: number, out: Output): void => {
  const f = seg.flags
  const segLen = seg.payloadLen + ((f & W.SYN) !== 0 ? 1 : 0) + ((f & W.FIN) !== 0 ? 1 : 0)

  // PAWS (RFC 7323 §5.3)
  if (t.tsOk && seg.hasTs && (f & W.RST) === 0 && tsLt(seg.tsVal, t.tsRecent)) {
    t.counters.pawsDrops++
    t.ackNow = true
    return
  }

  // 1. sequence number acceptability (RFC 9293 §3.10.7.4)
  const wnd = recvWindow(t)
  let ok: boolean
  if (segLen === 0) ok = wnd === 0 ? seg.seq === t.rcvNxt : inWindow(seg.seq, t.rcvNxt, wnd) || seg.seq === t.rcvNxt
  else
    ok =
      wnd > 0 &&
      (inWindow(seg.seq, t.rcvNxt, wnd) || inWindow(seqAdd(seg.seq, segLen - 1), t.rcvNxt, wnd) ||
        (seqLt(seg.seq, t.rcvNxt) && seqGt(seqAdd(seg.seq, segLen), t.rcvNxt)))
  if (!ok) {
    if (t.state === "SynReceived" && (f & W.SYN) !== 0 && (f & W.ACK) === 0 && seg.seq === t.irs) {
      t.synAckPending = true // the peer did not get our SYN-ACK
      return
    }
    if (t.state === "TimeWait" && (f & W.FIN) !== 0 && (f & W.RST) === 0) {
      Timer.rearm(t, now + 2 * t.cfg.mslMs) // retransmitted FIN: ACK it and restart 2MSL
    }
    if ((f & W.RST) === 0) {
      t.counters.outOfWindow++
      t.ackNow = true
    }
    return
  }

  // 2. RST (RFC 5961 §3.2)
  if ((f & W.RST) !== 0) {
    if (seg.seq === t.rcvNxt) {
      if (t.state === "TimeWait" || t.state === "LastAck" || t.state === "Closing") toClosed(t, undefined, 0)
      else toClosed(t, t.state === "SynReceived" && !t.passive ? "Refused" : "Reset", EV_RESET)
    } else challengeAck(t, now)
    return
  }

  // 3. SYN in a synchronized state (RFC 5961 §4.2)
  if ((f & W.SYN) !== 0) {
    challengeAck(t, now)
    return
  }

  // 4. ACK off: drop
  if ((f & W.ACK) === 0) return

  // 5. ACK
  if (t.state === "SynReceived") {
    if (seqGt(seg.ack, t.sndUna) && seqLe(seg.ack, t.sndMax)) {
      if (t.tsOk && seg.tsEcr !== 0 && t.retries === 0) sampleTs(t, seg, now)
      established(t, now)
      t.sndWnd = seg.window * (1 << t.sndWscale)
      t.maxSndWnd = Math.max(t.maxSndWnd, t.sndWnd)
      t.sndWl1 = seg.seq
      t.sndWl2 = seg.ack
    } else {
      sendRst(t, seg.ack, out)
      return
    }
  }
  // RFC 5961 §5.2: SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT
  if (seqGt(seg.ack, t.sndMax) || seqLt(seg.ack, seqAdd(t.sndUna, -Math.max(t.maxSndWnd, 1)))) {
    challengeAck(t, now)
    return
  }

  // timestamps: remember the peer's clock (RFC 7323 §4.3), only now that the segment has passed every
  // acceptability check: a SYN or an unacceptable ACK that fits the window must not move TS.Recent, or
  // one forged segment with a far-future TSval would make PAWS drop all later in-order data.
  if (t.tsOk && seg.hasTs && seqLe(seg.seq, t.lastAckSent)) t.tsRecent = seg.tsVal
  processAck(t, seg, now)
  if (closed(t)) return

  // 7. segment text
  let finOk = true
  if (seg.payloadLen > 0) {
    if (t.state === "Established" || t.state === "FinWait1" || t.state === "FinWait2") {
      finOk = processData(t, seg, buf, off, now, out)
    } else t.ackNow = true
  }

  // 8. FIN
  if ((f & W.FIN) !== 0 && finOk) {
    if (t.state === "TimeWait") {
      t.ackNow = true
      Timer.rearm(t, now + 2 * t.cfg.mslMs)
    } else if (!t.finReceived) {
      t.peerFinPending = true
      t.peerFinSeq = seqAdd(seg.seq, seg.payloadLen)
      t.ackNow = true
    }
  }
  if (t.peerFinPending && t.rcvNxt === t.peerFinSeq) processFin(t, now)
}

const processAck = (t: Tcb, seg: W.TcpRepr, now: number): void => {
  const ack = seg.ack
  const acked = seqDiff(ack, t.sndUna)
  const oldWnd = t.sndWnd
  // RFC 7661 (simplified): grow cwnd only while the sender actually uses it
  const cwndLimited = flightSize(t) * 2 >= t.cc.cwnd
  // window update (RFC 9293 SND.WL1/SND.WL2)
  if (seqLt(t.sndWl1, seg.seq) || (t.sndWl1 === seg.seq && seqLe(t.sndWl2, ack))) {
    t.sndWnd = seg.window * (1 << t.sndWscale)
    t.sndWl1 = seg.seq
    t.sndWl2 = ack
    if (t.sndWnd > t.maxSndWnd) t.maxSndWnd = t.sndWnd
    if (t.sndWnd > 0 && oldWnd === 0) {
      t.persistMs = 0
      t.closedProbes = 0
    }
  }
  // a peer that answers with a closed window is alive: RTOs then act as window probes, never time out
  if (t.sndWnd === 0) t.retries = 0
  const sackedNew = Recovery.onSack(t, seg)

  if (acked > 0) {
    const ccAcked = seqLe(t.sndUna, t.iss) ? acked - 1 : acked // the SYN is not data
    // RTT (RFC 6298 + Karn; RFC 7323 §4 with timestamps)
    if (t.tsOk && seg.hasTs && seg.tsEcr !== 0) sampleTs(t, seg, now)
    else if (t.rttTiming && seqGt(ack, t.rttSeq)) {
      t.rtt.sample(now - t.rttAt)
      t.rttTiming = false
    }
    const bufAcked = Math.max(0, Math.min(seqDiff(ack, t.bufSeq), t.sendbuf.len))
    if (bufAcked > 0) {
      t.sendbuf.consume(bufAcked)
      t.bufSeq = seqAdd(t.bufSeq, bufAcked)
      t.events |= EV_WRITABLE
    }
    t.sndUna = ack
    if (seqLt(t.sndNxt, ack)) t.sndNxt = ack
    t.retries = 0
    t.tlpUsed = false
    Recovery.onAckAdvance(t, acked, ccAcked, cwndLimited, sackedNew, now)
    // RFC 6298 §5.2/§5.3: stop when all is acked, else restart
    if (t.sndUna === t.sndMax) {
      if (t.timerKind === TimerKind.Retransmit) {
        Timer.disarm(t)
      }
    } else armRto(t, now)
    if (finAcked(t)) {
      if (t.state === "FinWait1") t.state = "FinWait2"
      else if (t.state === "Closing") enterTimeWait(t, now)
      else if (t.state === "LastAck") {
        toClosed(t, undefined, 0)
        return
      }
    }
  }
  Recovery.checkLostRetransmit(t, sackedNew)
  if (acked === 0) Recovery.onAckSameUna(t, seg, sackedNew, t.sndWnd === oldWnd, hasUnsent(t), now)
}

const processData = (t: Tcb, seg: W.TcpRepr, buf: Uint8Array, off: number, now: number, out: Output): boolean => {
  let s = seg.seq
  let start = off
  let n = seg.payloadLen
  const d = seqDiff(t.rcvNxt, s)
  if (d > 0) {
    if (d >= n) {
      t.ackNow = true // entirely old: duplicate
      return true
    }
    start += d
    n -= d
    s = t.rcvNxt
  }
  const o = seqDiff(s, t.rcvNxt)
  const free = recvFree(t)
  if (o >= free) {
    t.ackNow = true
    return false
  }
  let whole = true
  if (o + n > free) {
    n = free - o
    whole = false
  }
  const rb = t.recvbuf
  if (o === 0) {
    const hadOoo = !t.ooo.isEmpty
    if (t.cfg.recvMode === "sink") {
      if (!hadOoo) {
        out.deliver(t, buf, start, start + n)
        rb.skipHead(n)
        t.rcvNxt = seqAdd(t.rcvNxt, n)
      } else {
        rb.put(0, buf, start, start + n)
        t.ooo.shift(n)
        const more = t.ooo.prefixLen()
        t.ooo.shift(more)
        deliverRing(t, n + more, out)
        t.rcvNxt = seqAdd(t.rcvNxt, n + more)
        n += more
      }
    } else {
      rb.put(0, buf, start, start + n)
      rb.commit(n)
      t.ooo.shift(n)
      const more = t.ooo.prefixLen()
      t.ooo.shift(more)
      rb.commit(more)
      t.rcvNxt = seqAdd(t.rcvNxt, n + more)
      n += more
      t.events |= EV_READABLE
    }
    t.counters.bytesIn += n
    if (hadOoo) {
      t.ackNow = true // filling a gap: ACK at once (RFC 5681 §4.2)
      t.lastOooOff = t.lastOooOff - n
    } else {
      // RFC 1122 4.2.3.2 / RFC 5681 4.2: ACK at least every second segment (a GSO super-segment counts as many)
      t.bytesSinceAck += n
      t.segsSinceAck++
      if (t.segsSinceAck >= 2 || t.bytesSinceAck >= 2 * t.sndMss) t.ackNow = true
      else if (t.ackDelayAt === NEVER) t.ackDelayAt = now + t.cfg.ackDelayMs
    }
  } else {
    if (!t.ooo.add(o, o + n)) {
      t.counters.oooDropped++
      t.ackNow = true
      return false
    }
    rb.put(o, buf, start, start + n)
    t.lastOooOff = o
    t.counters.oooSegs++
    t.ackNow = true // out of order: duplicate ACK at once
  }
  return whole
}

/** Sink mode: hand n contiguous bytes at the ring head to the app and free them. */
const deliverRing = (t: Tcb, n: number, out: Output): void => {
  const rb = t.recvbuf
  const first = Math.min(n, rb.capacity - rb.head)
  out.deliver(t, rb.buf, rb.head, rb.head + first)
  if (first < n) out.deliver(t, rb.buf, 0, n - first)
  rb.skipHead(n)
}

const processFin = (t: Tcb, now: number): void => {
  t.peerFinPending = false
  t.finReceived = true
  t.rcvNxt = seqAdd(t.rcvNxt, 1)
  t.ackNow = true
  t.events |= EV_PEER_FIN | EV_READABLE
  switch (t.state) {
    case "SynReceived":
    case "Established":
      t.state = "CloseWait"
      break
    case "FinWait1":
      if (finAcked(t)) enterTimeWait(t, now)
      else t.state = "Closing"
      break
    case "FinWait2":
      enterTimeWait(t, now)
      break
    default:
      break
  }
}

// ---------------------------------------------------------------------------------------------
// Output: data, retransmissions, FIN, ACKs
// ---------------------------------------------------------------------------------------------

const canSendData = (s: State): boolean =>
  s === "Established" || s === "CloseWait" || s === "FinWait1" || s === "Closing" || s === "LastAck"

const sendData = (t: Tcb, now: number, out: Output, s: SeqNum, len: number, fin: boolean): void => {
  const rexmit = seqLt(s, t.sndMax)
  let flags = W.ACK
  if (fin) flags |= W.FIN
  if (len > 0 && seqDiff(seqAdd(s, len), t.bufSeq) === t.sendbuf.len) flags |= W.PSH
  const r = repr(t, now, s, flags, len)
  const end = seqAdd(s, len + (fin ? 1 : 0))
  if (rexmit) {
    Recovery.onRetransmit(t, s)
    t.counters.retransSegs++
    t.counters.retransBytes += len
    if (t.rttTiming && seqLe(s, t.rttSeq)) t.rttTiming = false // Karn
  } else {
    t.counters.bytesOut += len
    if (!t.rttTiming && !t.tsOk && len > 0) {
      t.rttTiming = true
      t.rttSeq = s
      t.rttAt = now
    }
  }
  if (seqGt(end, t.sndMax)) t.sndMax = end
  // (re)arm; a pending tail-loss probe is re-armed on every new transmission (RFC 8985 §7.2)
  if (t.timerKind !== TimerKind.Retransmit || (t.tlpPending && !rexmit)) armRto(t, now)
  emitSeg(t, r, out)
}

/** Retransmit one segment (at most one MSS) at s. */
const retransmitAt = (t: Tcb, now: number, out: Output, s: SeqNum, maxLen: number): number => {
  const off = seqDiff(s, t.bufSeq)
  const avail = t.sendbuf.len - off
  const len = Math.max(0, Math.min(maxLen, segmentPayloadMax(t), avail))
  const fin = t.closeRequested && len === avail && seqLt(seqAdd(s, len), t.sndMax)
  if (len === 0 && !fin) return 0
  sendData(t, now, out, s, len, fin)
  return len
}

const transmit = (t: Tcb, now: number, out: Output): void => {
  t.sendPending = false
  if (t.synAckPending) {
    t.synAckPending = false
    if (t.state === "SynReceived") sendSyn(t, now, out, true)
  }
  if (canSendData(t.state)) {
    if (t.rec.rexmitUnaPending) {
      t.rec.rexmitUnaPending = false
      Recovery.retransmittedUna(t, retransmitAt(t, now, out, t.sndUna, t.sndMss))
    }
    sendLoop(t, now, out)
  }
  if (t.ackNow && !t.holdAck && t.state !== "Closed" && t.state !== "SynSent") sendAck(t, now, out)
}

const sendLoop = (t: Tcb, now: number, out: Output): void => {
  sendLoopInner(t, now, out)
  t.forceSend = false
}

const sendLoopInner = (t: Tcb, now: number, out: Output): void => {
  const mss = segmentPayloadMax(t)
  const tsoMax =
    t.cfg.tso && mss === t.sndMss ? Math.max(mss, Math.floor(Math.min(t.cfg.maxSegmentBytes, 65535 - 120) / mss) * mss) : mss
  for (let guard = 0; guard < 4096; guard++) {
    const cwnd = Math.floor(t.cc.cwnd)
    // RFC 6675 NextSeg rule 1: lost holes first
    if (t.rec.active && t.sackOk) {
      if (cwnd - Recovery.inFlight(t) < mss) return
      const h = Recovery.nextHole(t, mss)
      if (h >= 0) {
        const s = seqAdd(t.sndUna, h)
        const n = retransmitAt(t, now, out, s, t.rec.holeEnd[0]! - h)
        if (n === 0) return
        Recovery.holeRetransmitted(t, s, n)
        continue
      }
    }
    // skip data the peer already SACKed (go-back-N after an RTO)
    const sb = t.rec.scoreboard
    if (seqLt(t.sndNxt, t.sndMax) && !sb.isEmpty) {
      const o = seqDiff(t.sndNxt, t.sndUna)
      const k = sb.skip(o)
      if (k !== o) {
        t.sndNxt = seqMin(seqAdd(t.sndUna, k), t.sndMax)
        continue
      }
    }
    const off = seqDiff(t.sndNxt, t.bufSeq)
    const avail = t.sendbuf.len - off
    if (avail < 0) return // FIN already sent
    const flight = Recovery.inFlight(t)
    const cwndRoom = cwnd + Recovery.extraRoom(t) - flight
    const wndRoom = seqDiff(seqAdd(t.sndUna, t.sndWnd), t.sndNxt)
    const rexmit = seqLt(t.sndNxt, t.sndMax)
    let len = Math.min(avail, rexmit ? mss : tsoMax, wndRoom, cwndRoom)
    if (rexmit && !sb.isEmpty) {
      const next = sb.nextStartAfter(seqDiff(t.sndNxt, t.sndUna))
      len = Math.min(len, next - seqDiff(t.sndNxt, t.sndUna))
    }
    if (len < 0) len = 0
    if (len > mss && len < avail) len -= len % mss // TSO: whole segments only, unless it is the tail of the data
    const fin = t.closeRequested && len === avail && (cwndRoom > 0 || flight === 0)
    if (len === 0 && !fin) return
    if (len < mss && !fin && !rexmit && !t.forceSend) {
      // Nagle (RFC 896) and sender-side SWS avoidance (RFC 9293 §3.8.6.2.1)
      const allQueued = len === avail
      const idle = t.sndNxt === t.sndUna
      const halfWnd = t.maxSndWnd > 0 && len >= t.maxSndWnd >>> 1
      if (!((allQueued && (!t.nagle || idle)) || halfWnd)) return
    }
    const s = t.sndNxt
    t.forceSend = false
    sendData(t, now, out, s, len, fin)
    t.sndNxt = seqAdd(s, len + (fin ? 1 : 0))
    if (fin) return
  }
}

const closed = (t: Tcb): boolean => t.state === "Closed"
const seqMin = (a: SeqNum, b: SeqNum): SeqNum => (seqLe(a, b) ? a : b)

// ---------------------------------------------------------------------------------------------
// Timers
// ---------------------------------------------------------------------------------------------

/**
 * Arm the retransmission timer. With cfg.tailLossProbe, and once per flight, a probe timeout
 * PTO = 2 * SRTT (+ the peer's ACK delay when one segment is out) comes first (RFC 8985 §7 TLP):
 * a lost tail then gets repaired by SACK/fast recovery instead of waiting for the RTO.
 */
const armRto = (t: Tcb, now: number): void => {
  Timer.arm(t, TimerKind.Retransmit, now + t.rtt.rtoMs)
  t.tlpPending = false
  if (t.cfg.tailLossProbe && !t.tlpUsed && !t.rec.active && t.rtt.hasSample && canSendData(t.state)) {
    const pto = Math.max(10, Math.ceil(2 * t.rtt.srttMs + (flightSize(t) <= t.sndMss ? t.cfg.ackDelayMs : 0)))
    if (pto < t.rtt.rtoMs) {
      Timer.rearm(t, now + pto)
      t.tlpPending = true
    }
  }
}

/** TLP fired: one new segment if the window allows, else the last segment again. No backoff, no cwnd change. */
const sendTailLossProbe = (t: Tcb, now: number, out: Output): void => {
  t.tlpPending = false
  t.tlpUsed = true
  t.counters.tailLossProbes++
  const off = seqDiff(t.sndNxt, t.bufSeq)
  const avail = t.sendbuf.len - off
  const wndRoom = seqDiff(seqAdd(t.sndUna, t.sndWnd), t.sndNxt)
  if (t.sndNxt === t.sndMax && avail > 0 && wndRoom > 0) {
    const len = Math.min(segmentPayloadMax(t), avail, wndRoom)
    const fin = t.closeRequested && len === avail
    const s0 = t.sndNxt
    sendData(t, now, out, s0, len, fin)
    t.sndNxt = seqAdd(s0, len + (fin ? 1 : 0))
  } else {
    const lastOff = Math.max(seqDiff(t.sndUna, t.bufSeq), Math.min(t.sendbuf.len, seqDiff(t.sndMax, t.bufSeq)) - t.sndMss)
    retransmitAt(t, now, out, seqAdd(t.bufSeq, Math.max(0, lastOff)), t.sndMss)
  }
  Timer.rearm(t, now + t.rtt.rtoMs)
}

const updateTimer = (t: Tcb, now: number): void => {
  if (t.state === "TimeWait" || t.state === "Closed") return
  if (t.sndMax !== t.sndUna) {
    if (t.timerKind !== TimerKind.Retransmit) armRto(t, now)
    return
  }
  if (hasUnsent(t) && canSendData(t.state)) {
    // nothing in flight but unsent data: zero window, or a window too small to pass SWS avoidance
    if (t.timerKind !== TimerKind.Persist) {
      if (t.persistMs === 0) t.persistMs = t.rtt.rtoMs
      Timer.arm(t, TimerKind.Persist, now + t.persistMs)
    }
    return
  }
  if (t.state === "FinWait2" && t.cfg.finWait2TimeoutMs > 0) {
    Timer.arm(t, TimerKind.Close, t.lastRecvAt + t.cfg.finWait2TimeoutMs)
    return
  }
  if (t.cfg.keepAliveIdleMs > 0 && (t.state === "Established" || t.state === "CloseWait")) {
    Timer.arm(
      t,
      TimerKind.KeepAlive,
      t.kaProbes === 0 ? t.lastRecvAt + t.cfg.keepAliveIdleMs : Math.max(t.timerAt, t.lastRecvAt + t.cfg.keepAliveIdleMs)
    )
    return
  }
  Timer.disarm(t)
}

const onTimer = (t: Tcb, now: number, out: Output): void => {
  switch (t.timerKind) {
    case TimerKind.Retransmit: {
      if (t.tlpPending) {
        if (t.state === "SynSent" || t.state === "SynReceived") t.tlpPending = false
        else {
          sendTailLossProbe(t, now, out)
          return
        }
      }
      // after close, a peer that keeps its window shut while our data waits is probed by this timer too:
      // the same bound as the persist timer's (Config.closedProbeLimit)
      if (t.closeRequested && t.sndWnd === 0 && t.cfg.closedProbeLimit > 0 && ++t.closedProbes > t.cfg.closedProbeLimit) {
        sendRst(t, t.sndMax, out)
        toClosed(t, "TimedOut", EV_TIMED_OUT)
        return
      }
      t.retries++
      const limit = t.state === "SynSent" ? t.cfg.synRetries : t.state === "SynReceived" ? t.cfg.synAckRetries : t.cfg.maxRetries
      if (t.retries > limit) {
        toClosed(t, "TimedOut", EV_TIMED_OUT)
        return
      }
      t.rtt.backoff() // RFC 6298 §5.5, kept until the next valid sample
      t.counters.rtoExpiries++
      t.rttTiming = false
      Timer.rearm(t, now + t.rtt.rtoMs)
      if (t.state === "SynSent") {
        t.counters.retransSegs++
        sendSyn(t, now, out, false)
      } else if (t.state === "SynReceived") {
        t.counters.retransSegs++
        sendSyn(t, now, out, true)
      } else {
        // cwnd collapses, the episode ends, the scoreboard is expunged; go back to SND.UNA
        Recovery.onRto(t, now)
        t.sndNxt = t.sndUna
        // retransmit the first segment even if the peer window is zero (it elicits an ACK)
        const n = retransmitAt(t, now, out, t.sndUna, t.sndMss)
        t.sndNxt = seqAdd(t.sndUna, n)
        if (n === 0 && t.closeRequested && finSent(t)) t.sndNxt = seqAdd(t.sndUna, 1)
        else if (n === 0) sendProbe(t, now, out)
        if (t.closeRequested && seqDiff(t.sndNxt, t.bufSeq) === t.sendbuf.len && seqGt(t.sndMax, t.sndNxt))
          t.sndNxt = seqAdd(t.sndNxt, 1) // FIN went with it
      }
      return
    }
    case TimerKind.Persist: {
      if (t.sndWnd > 0) t.forceSend = true
      else {
        // We have closed and the peer still keeps its window shut: bounded probing, then a reset (Linux's
        // orphan retries), so a peer that never reads cannot pin the connection and its buffer forever.
        if (t.closeRequested && t.cfg.closedProbeLimit > 0 && ++t.closedProbes > t.cfg.closedProbeLimit) {
          sendRst(t, t.sndMax, out)
          toClosed(t, "TimedOut", EV_TIMED_OUT)
          return
        }
        t.counters.probes++
        sendProbe(t, now, out)
      }
      t.persistMs = Math.min(t.persistMs * 2, t.cfg.maxRtoMs)
      Timer.rearm(t, now + t.persistMs)
      return
    }
    case TimerKind.KeepAlive: {
      if (t.kaProbes >= t.cfg.keepAliveCount) {
        toClosed(t, "TimedOut", EV_TIMED_OUT)
        return
      }
      t.kaProbes++
      t.counters.keepAlives++
      sendProbe(t, now, out)
      Timer.rearm(t, now + t.cfg.keepAliveIntervalMs)
      return
    }
    case TimerKind.Close:
      if (t.state === "FinWait2") {
        // FIN-WAIT-2 timeout: the peer acknowledged our FIN and then went quiet (Linux sends a reset too)
        sendRst(t, t.sndMax, out)
        toClosed(t, "TimedOut", EV_TIMED_OUT)
        return
      }
      toClosed(t, undefined, 0)
      return
    default:
      return
  }
}

export const poll = (t: Tcb, now: number, out: Output): void => {
  t.lastNowMs = now
  // a poll is never part of a receive burst: an ACK held by a burst whose end was missed goes out now
  t.holdAck = false
  if (t.state === "Closed") return
  if (Timer.due(t, now)) onTimer(t, now, out)
  if (closed(t)) return
  if (now >= t.ackDelayAt) t.ackNow = true
  transmit(t, now, out)
  updateTimer(t, now)
}

/** Next time poll must run (ms), or undefined when only input can make progress. */
export const pollAt = (t: Tcb): number | undefined => {
  if (t.state === "Closed") return undefined
  if (t.ackNow || t.sendPending || t.synAckPending || t.rec.rexmitUnaPending) return t.lastNowMs
  const d = Math.min(Timer.deadline(t), t.ackDelayAt)
  return d === NEVER ? undefined : d
}

// ---------------------------------------------------------------------------------------------
// Application side
// ---------------------------------------------------------------------------------------------

/** Queue data[start, end); returns the count accepted (0 when full or closed). Call poll after. */
export const send = (t: Tcb, data: Uint8Array, start = 0, end = data.length): number => {
  if (!maySend(t)) return 0
  const n = t.sendbuf.write(data, start, end)
  if (n > 0) t.sendPending = true
  return n
}

/** Buffer mode: read up to `max` in-order bytes into dst. Call poll after (window update). */
export const recv = (t: Tcb, dst: Uint8Array, dstOffset = 0, max = dst.length - dstOffset): number => {
  const advBefore = seqDiff(t.rcvAdvEdge, t.rcvNxt)
  const n = t.recvbuf.read(dst, dstOffset, max)
  if (n > 0 && t.state !== "Closed" && !t.finReceived) {
    const freeNow = recvFree(t) & ~((1 << t.rcvWscale) - 1)
    const grow = freeNow - Math.max(0, advBefore)
    if (grow >= Math.min(t.recvbuf.capacity >>> 1, 2 * t.cfg.mss) || (advBefore < t.sndMss && freeNow >= t.sndMss)) {
      t.ackNow = true // window update (RFC 9293 §3.8.6.2.2)
    }
  }
  return n
}

/** Half-close: FIN after all queued data. Call poll after. */
export const close = (t: Tcb): void => {
  switch (t.state) {
    case "SynSent":
      toClosed(t, undefined, 0)
      return
    case "SynReceived":
      t.closeRequested = true
      return
    case "Established":
      t.closeRequested = true
      t.state = "FinWait1"
      t.sendPending = true
      return
    case "CloseWait":
      t.closeRequested = true
      t.state = "LastAck"
      t.sendPending = true
      return
    default:
      return
  }
}

/** Reset the connection (RST to the peer when synchronized), Closed at once. */
export const abort = (t: Tcb, now: number, out: Output): void => {
  t.lastNowMs = now
  switch (t.state) {
    case "SynReceived":
    case "Established":
    case "FinWait1":
    case "FinWait2":
    case "CloseWait":
      sendRst(t, t.sndMax, out)
      break
    default:
      break
  }
  if (t.state !== "Closed") toClosed(t, "Aborted", 0)
}

/**
 * Give the rings' memory back once nothing needs them (TIME-WAIT, Closed): the send ring when everything
 * was acknowledged, the receive ring when the application has read everything.
 */
export const releaseBuffers = (t: Tcb): void => {
  if (t.state !== "TimeWait" && t.state !== "Closed") return
  if (t.sendbuf.len === 0) t.sendbuf.release()
  if (t.recvbuf.len === 0 && t.ooo.isEmpty) t.recvbuf.release()
}

/**
 * Other ring sizes for a connection whose rings hold nothing and are not allocated yet (the shell sizes a
 * passive open when its handshake completes, against the memory committed at that moment). The receive
 * ring never becomes smaller than the window already advertised (RCV.ADV edge - RCV.NXT: in SYN-RECEIVED
 * the SYN-ACK's, unscaled, at most 65535 bytes), so the peer may still send everything it was offered. The
 * window scale we offered stays as it was: a smaller ring is advertised in coarser units, never more than
 * it holds. The Tcb's cfg is replaced by a copy with the new sizes (a cfg is shared, by a listener's
 * connections, so it is never changed in place). Returns false, changing nothing, once a ring is in use.
 */
export const resizeRings = (t: Tcb, sendBytes: number, recvBytes: number): boolean => {
  if (t.sendbuf.allocated || t.sendbuf.len !== 0 || t.recvbuf.allocated || t.recvbuf.len !== 0 || !t.ooo.isEmpty) return false
  const recv = Math.max(recvBytes, seqDiff(t.rcvAdvEdge, t.rcvNxt))
  if (sendBytes === t.sendbuf.capacity && recv === t.recvbuf.capacity) return true
  t.sendbuf.resize(sendBytes)
  t.recvbuf.resize(recv)
  ;(t as { cfg: Config }).cfg = { ...t.cfg, sendBufBytes: sendBytes, recvBufBytes: recv }
  return true
}

/** Copy the payload of an emitted segment from the send ring into a frame. */
export const copyPayload = (t: Tcb, s: SeqNum, len: number, dst: Uint8Array, dstOffset: number): void => {
  t.sendbuf.copyOut(seqDiff(s, t.bufSeq), len, dst, dstOffset)
}

/** Whether a SYN arriving for a TIME-WAIT connection may start a new incarnation (RFC 6191-like). */
export const timeWaitAcceptsSyn = (t: Tcb, seg: W.TcpRepr): boolean =>
  t.state === "TimeWait" &&
  (seg.flags & (W.SYN | W.ACK | W.RST)) === W.SYN &&
  (seqGt(seg.seq, t.rcvNxt) || (t.tsOk && seg.hasTs && tsLt(t.tsRecent, seg.tsVal)))

/** Nagle on/off (TCP_NODELAY is `setNagle(t, false)`). Call poll after. */
export const setNagle = (t: Tcb, on: boolean): void => {
  t.nagle = on
  t.sendPending = true
}
