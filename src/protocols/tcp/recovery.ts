/**
 * Sender loss recovery, apart from the machine (gVisor's netstack splits it the same way into a SACK and
 * a Reno recovery beside the sender). One `Recovery` record per connection holds the episode; the two
 * ways through an episode differ only where the RFCs do:
 *   - NewReno (RFC 5681 §3.2, RFC 6582), the peer did not permit SACK: duplicate ACKs find a loss (three, or
 *     fewer with early retransmit, RFC 5827), cwnd is inflated by each further duplicate and deflated by
 *     each partial ACK, and each partial ACK retransmits the next hole (SND.UNA).
 *   - SACK (RFC 6675): the scoreboard finds losses (IsLost), `pipe` stands in for FlightSize, and the
 *     sender retransmits the holes `nextHole` names (NextSeg rule 1) before new data.
 * Both: limited transmit (RFC 3042), one episode until SND.UNA passes `recover` (RFC 6582 §3.2 step 2),
 * a retransmission of SND.UNA found lost by later SACKs sent again at once, and the reset after a
 * retransmission timeout (RFC 6675 §5.1).
 *
 * Pure and synchronous like the machine: nothing here sends a segment. The machine retransmits SND.UNA when
 * `rexmitUnaPending` is set and the holes `nextHole` returns, then reports back (`retransmittedUna`,
 * `holeRetransmitted`, `onRetransmit`). A tail-loss probe (RFC 8985 §7) is the retransmission timer's job
 * and stays in the machine.
 */
import type { CongestionControl } from "./congestion.js"
import { RangeSet } from "./reassembly.js"
import * as Sack from "./sack.js"
import { seqAdd, seqDiff, seqGe, seqLt, type SeqNum } from "./seq.js"
import * as W from "./wire.js"

export class Recovery {
  /** In a fast-recovery episode. */
  active = false
  dupAcks = 0
  /** RFC 6582 `recover`: SND.MAX when the last episode or timeout began; a new episode waits for SND.UNA to pass it. */
  recover: SeqNum
  /** RFC 6675 HighRxt: the end of the highest range retransmitted in this episode. */
  highRxt: SeqNum
  /** Extra bytes beyond cwnd allowed by limited transmit (RFC 3042). */
  limitedTransmit = 0
  /** SND.UNA is to be retransmitted at the next transmission. */
  rexmitUnaPending = false
  /** SND.UNA when it was last retransmitted, and SND.MAX at that moment (lost-retransmission check). */
  rxtUna = 0 as SeqNum
  rxtMark = 0 as SeqNum
  /** SND.MAX when the latest retransmission went out (a bound on any earlier one's mark). */
  rxtLastMark = 0 as SeqNum
  /** What the peer has SACKed: offsets from SND.UNA (the RFC 6675 scoreboard), at most `maxRanges` ranges. */
  readonly scoreboard: RangeSet
  /** Where `nextHole` puts the end of the hole it found. */
  readonly holeEnd: number[] = [0]

  constructor(iss: SeqNum, maxRanges: number) {
    this.recover = iss
    this.highRxt = iss
    this.scoreboard = new RangeSet(maxRanges)
  }
}

/** What recovery reads and changes of a connection (the machine's Tcb has these fields). */
export interface Sender {
  readonly rec: Recovery
  readonly sackOk: boolean
  readonly sndUna: SeqNum
  readonly sndNxt: SeqNum
  readonly sndMax: SeqNum
  readonly sndMss: number
  readonly cc: CongestionControl
  readonly rtt: { readonly srttMs: number }
  rttTiming: boolean
  readonly counters: { fastRetransmits: number; lostRetransmits: number; dupAcksIn: number }
}

const flightSize = (t: Sender): number => seqDiff(t.sndMax, t.sndUna)

/** Bytes the sender counts as in the network: RFC 6675 pipe in SACK recovery, else FlightSize less what was SACKed. */
export const inFlight = (t: Sender): number => {
  const r = t.rec
  if (r.active && t.sackOk) {
    return Sack.pipe(r.scoreboard, seqDiff(t.sndMax, t.sndUna), seqDiff(r.highRxt, t.sndUna), t.sndMss)
  }
  if (r.active) return flightSize(t)
  const o = seqDiff(t.sndNxt, t.sndUna)
  return o - (r.scoreboard.isEmpty ? 0 : r.scoreboard.bytesBelow(o))
}

/** Room beyond cwnd that limited transmit allows (none during an episode). */
export const extraRoom = (t: Sender): number => (t.rec.active ? 0 : t.rec.limitedTransmit)

/** An ACK's SACK blocks into the scoreboard (before SND.UNA moves). True when they SACK bytes not SACKed before. */
export const onSack = (t: Sender, seg: W.TcpRepr): boolean =>
  t.sackOk && seg.sack.length > 0 && Sack.updateScoreboard(t.rec.scoreboard, seg.sack, t.sndUna, t.sndMax)

/** Fast retransmit and loss recovery (RFC 6582 §3.2 step 2, RFC 6675 §5), unless an episode is still open. */
const enter = (t: Sender, now: number): void => {
  const r = t.rec
  // RFC 6582 §3.2 step 2: only when the ACK covers everything sent before the last recovery / RTO
  if (!seqGe(t.sndUna, r.recover)) return
  r.limitedTransmit = 0
  r.active = true
  r.recover = t.sndMax
  t.cc.onEnterRecovery(now, flightSize(t), t.sndMss)
  if (!t.sackOk) t.cc.cwnd = t.cc.ssthresh + 3 * t.sndMss // RFC 6582 §3.2 step 3
  r.highRxt = t.sndUna
  r.rexmitUnaPending = true
  t.rttTiming = false
  t.counters.fastRetransmits++
}

/**
 * SND.UNA has just advanced by `acked` bytes (`ccAcked` of them data). Ends the episode once SND.UNA passes
 * `recover`; a partial ACK without SACK retransmits the next hole; outside an episode the ACK grows cwnd
 * (when `cwndLimited`) and the scoreboard may show a loss by itself.
 */
export const onAckAdvance = (
  t: Sender,
  acked: number,
  ccAcked: number,
  cwndLimited: boolean,
  sackedNew: boolean,
  now: number
): void => {
  const r = t.rec
  if (seqLt(r.highRxt, t.sndUna)) r.highRxt = t.sndUna
  r.scoreboard.shift(acked)
  if (r.active) {
    if (seqGe(t.sndUna, r.recover)) {
      r.active = false
      r.dupAcks = 0
      t.cc.onExitRecovery(now, t.sndMss)
    } else if (!t.sackOk) {
      // RFC 6582 §3.2 step 5: partial ACK: retransmit the next hole, deflate
      r.rexmitUnaPending = true
      t.cc.cwnd = Math.max(t.cc.cwnd - acked + t.sndMss, t.sndMss)
    }
  } else {
    r.dupAcks = 0
    r.limitedTransmit = 0
    if (ccAcked > 0 && cwndLimited) t.cc.onAck(ccAcked, now, t.rtt.srttMs, t.sndMss)
    // RFC 6675 §5: loss is found by the scoreboard, not only by duplicate ACKs: an ACK that moves
    // SND.UNA may still SACK enough above the next hole (the usual case when ACKs ride on data)
    if (sackedNew && !r.scoreboard.isEmpty && Sack.isLost(r.scoreboard, 0, t.sndMss)) enter(t, now)
  }
  // a partial ACK ends in a hole that was already retransmitted: it was sent no later than the
  // latest retransmission, so that one's SND.MAX is a safe mark for the lost-retransmission check
  if (r.active && seqLt(t.sndUna, r.highRxt) && r.rxtUna !== t.sndUna) {
    r.rxtUna = t.sndUna
    r.rxtMark = r.rxtLastMark
  }
}

/**
 * The retransmission of SND.UNA was lost if data sent after it has been SACKed (Linux-style check, RFC 8985
 * in spirit): it goes again now instead of waiting for the RTO.
 */
export const checkLostRetransmit = (t: Sender, sackedNew: boolean): void => {
  const r = t.rec
  if (
    sackedNew && r.active && r.rxtUna === t.sndUna && t.sndUna !== t.sndMax &&
    r.scoreboard.highest() > seqDiff(r.rxtMark, t.sndUna) && !r.rexmitUnaPending
  ) {
    r.rexmitUnaPending = true
    t.counters.lostRetransmits++
  }
}

/**
 * An ACK that did not move SND.UNA. It is a duplicate ACK with SACK (RFC 6675 §2) when it SACKs bytes not
 * SACKed before, data or not (in a two-way transfer most ACKs ride on data), and only then (an ACK repeated
 * for a dropped old or out-of-window segment carries nothing new); without SACK as RFC 5681 §2 says (no
 * data, no FIN, the window unchanged). `unsent`: the sender has data or a FIN not yet sent.
 */
export const onAckSameUna = (
  t: Sender,
  seg: W.TcpRepr,
  sackedNew: boolean,
  windowUnchanged: boolean,
  unsent: boolean,
  now: number
): void => {
  const dup = t.sndMax !== t.sndUna &&
    (seg.flags & W.SYN) === 0 &&
    (t.sackOk ? sackedNew : seg.payloadLen === 0 && (seg.flags & W.FIN) === 0 && windowUnchanged)
  if (!dup) return
  const r = t.rec
  r.dupAcks++
  t.counters.dupAcksIn++
  if (r.active) {
    if (!t.sackOk) t.cc.cwnd += t.sndMss // RFC 6582 §3.2 step 4: inflate
    return
  }
  // RFC 5827 early retransmit: with fewer than 4 segments out and nothing new to send, lower DupThresh
  const segsOut = Math.ceil(flightSize(t) / t.sndMss)
  const dupThresh = segsOut < 4 && !unsent ? Math.max(1, segsOut - 1) : 3
  const lost = r.dupAcks >= dupThresh || (t.sackOk && Sack.isLost(r.scoreboard, 0, t.sndMss) && !r.scoreboard.isEmpty)
  if (!lost) {
    // RFC 3042 limited transmit: the first two duplicate ACKs each let one new segment out
    if (r.dupAcks <= 2) r.limitedTransmit = r.dupAcks * t.sndMss
    return
  }
  enter(t, now)
}

/**
 * In SACK recovery, the next lost hole to retransmit (RFC 6675 NextSeg rule 1): its offset from SND.UNA, its
 * end in `rec.holeEnd[0]`; -1 when there is none (or no SACK episode).
 */
export const nextHole = (t: Sender, mss: number): number => {
  const r = t.rec
  if (!r.active || !t.sackOk) return -1
  return Sack.nextLostHole(r.scoreboard, seqDiff(r.highRxt, t.sndUna), mss, r.holeEnd)
}

/** `n` bytes of the hole at `s` went out again. */
export const holeRetransmitted = (t: Sender, s: SeqNum, n: number): void => {
  t.rec.highRxt = seqAdd(s, n)
}

/** A retransmission of `n` bytes at SND.UNA (for `rexmitUnaPending`) went out. */
export const retransmittedUna = (t: Sender, n: number): void => {
  const r = t.rec
  if (seqLt(r.highRxt, seqAdd(t.sndUna, n))) r.highRxt = seqAdd(t.sndUna, n)
  r.rxtUna = t.sndUna
  r.rxtMark = t.sndMax
}

/** Any retransmission at `s` is about to go out (SND.MAX not yet moved by it): the lost-retransmission marks. */
export const onRetransmit = (t: Sender, s: SeqNum): void => {
  const r = t.rec
  if (s === t.sndUna) {
    r.rxtUna = s
    r.rxtMark = t.sndMax
  }
  r.rxtLastMark = t.sndMax
}

/**
 * The retransmission timer expired (with data outstanding): cwnd collapses (RFC 5681 §3.1 eq. 4), the episode
 * ends, `recover` = SND.MAX (RFC 6582 §3.2 step 1), and the scoreboard is expunged: the timeout may mean the
 * receiver reneged on what it SACKed (RFC 6675 §5.1, after RFC 2018), so retransmission goes back over
 * everything from SND.UNA, and SACK blocks that arrive during the recovery that follows fill it again. Call
 * before the machine rewinds SND.NXT (cwnd is cut from what was in flight).
 */
export const onRto = (t: Sender, now: number): void => {
  const r = t.rec
  t.cc.onRto(now, inFlight(t), t.sndMss)
  r.active = false
  r.dupAcks = 0
  r.limitedTransmit = 0
  r.recover = t.sndMax
  r.highRxt = t.sndUna
  r.scoreboard.clear()
}
