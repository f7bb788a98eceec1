/**
 * SACK (RFC 2018) receiver block generation and the RFC 6675 sender scoreboard helpers.
 * The scoreboard is a RangeSet of offsets from SND.UNA (never sequence numbers).
 */
import type { RangeSet } from "./reassembly.js"
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, type SeqNum } from "./seq.js"

/**
 * Receiver: SACK blocks for the out-of-order ranges `ooo` (offsets from rcvNxt). The first block
 * is the one holding the most recently received segment (RFC 2018 §4), the rest follow in order.
 */
export const receiverBlocks = (ooo: RangeSet, rcvNxt: SeqNum, lastOff: number, maxBlocks: number): SeqNum[] => {
  const out: SeqNum[] = []
  const first = ooo.indexOf(lastOff)
  if (first >= 0) out.push(seqAdd(rcvNxt, ooo.start(first)), seqAdd(rcvNxt, ooo.end(first)))
  for (let i = 0; i < ooo.count && out.length < 2 * maxBlocks; i++) {
    if (i === first) continue
    out.push(seqAdd(rcvNxt, ooo.start(i)), seqAdd(rcvNxt, ooo.end(i)))
  }
  return out
}

/** Sender: merge received SACK blocks into the scoreboard. Returns true if new bytes were SACKed. */
export const updateScoreboard = (sb: RangeSet, blocks: ReadonlyArray<SeqNum>, una: SeqNum, sndMax: SeqNum): boolean => {
  const before = sb.total()
  for (let k = 0; k + 1 < blocks.length; k += 2) {
    const l = blocks[k]!
    const r = blocks[k + 1]!
    if (!seqGt(r, l) || seqLe(r, una) || seqGt(r, sndMax)) continue // D-SACK, stale or bogus
    const lo = seqGe(l, una) ? l : una
    sb.add(seqDiff(lo, una), seqDiff(r, una))
  }
  return sb.total() > before
}

/** RFC 6675 IsLost for any byte of the hole starting at offset `holeStart`. */
export const isLost = (sb: RangeSet, holeStart: number, mss: number): boolean => {
  let bytes = 0
  let ranges = 0
  for (let i = sb.count - 1; i >= 0; i--) {
    if (sb.end(i) <= holeStart) break
    bytes += sb.end(i) - Math.max(sb.start(i), holeStart)
    ranges++
  }
  return ranges >= 3 || bytes > 2 * mss
}

/**
 * RFC 6675 §4 SetPipe over offsets: outstanding = [0, outstanding); highRxt an offset.
 * Bytes not SACKed and not lost count once; bytes retransmitted (below highRxt) count once more.
 */
export const pipe = (sb: RangeSet, outstanding: number, highRxt: number, mss: number): number => {
  let p = 0
  let prev = 0
  for (let i = 0; i <= sb.count; i++) {
    const hs = prev
    const he = i < sb.count ? sb.start(i) : outstanding
    if (he > hs) {
      const lost = i < sb.count && isLost(sb, hs, mss)
      if (!lost) p += he - hs
      if (highRxt > hs) p += Math.min(highRxt, he) - hs
    }
    if (i < sb.count) prev = sb.end(i)
  }
  return p
}

/** RFC 6675 NextSeg rule 1: first lost, un-retransmitted offset >= from, or -1. `holeEnd` set via out[0]. */
export const nextLostHole = (sb: RangeSet, from: number, mss: number, holeEndOut: number[]): number => {
  let prev = 0
  for (let i = 0; i < sb.count; i++) {
    const hs = prev
    const he = sb.start(i)
    prev = sb.end(i)
    if (he <= from || he <= hs) continue
    if (!isLost(sb, hs, mss)) continue
    holeEndOut[0] = he
    return Math.max(hs, from)
  }
  return -1
}
