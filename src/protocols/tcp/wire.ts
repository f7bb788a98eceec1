/**
 * TCP header codec (RFC 9293 §3.1) with options: EOL, NOP, MSS (2), window scale (3, RFC 7323),
 * SACK-permitted (4) and SACK blocks (5) (RFC 2018), timestamps (8, RFC 7323). Unknown options are
 * skipped; every option length is checked against the bytes present.
 *
 * `parse(b, pseudoSum, verify)` takes exactly the TCP segment (header + payload, the IP layer trims
 * padding) and returns a `TcpRepr` or a `DropReason` string; it never throws.
 * `emit(r, b, pseudoSum, fill)` writes the header into `b[0, headerLen(r))`; the payload must already
 * sit at `b[headerLen(r), b.length)`. With `fill = false` the checksum field receives the folded
 * pseudo-header sum only (virtio-net NEEDS_CSUM: the NIC completes it from csumStart = TCP header).
 * `pseudoSum` is `Checksum.pseudoV4(src, dst, 6, b.length)`.
 */
import { setU16, setU32, u16, u32 } from "../bytes.js"
import * as Cs from "../checksum.js"
import type { DropReason as StackDrop } from "../drop.js"
import type { SeqNum } from "./seq.js"

export const HEADER_LEN = 20
export const MAX_HEADER_LEN = 60
export const PROTOCOL = 6
const F = { SRC_PORT: 0, DST_PORT: 2, SEQ: 4, ACK: 8, OFF_FLAGS: 12, WINDOW: 14, CHECKSUM: 16, URGENT: 18 } as const
/** Offset of the checksum field inside the TCP header (virtio-net csumOffset). */
export const CHECKSUM_OFFSET = F.CHECKSUM

export const FIN = 0x01
export const SYN = 0x02
export const RST = 0x04
export const PSH = 0x08
export const ACK = 0x10
export const URG = 0x20
export const ECE = 0x40
export const CWR = 0x80

const OPT_EOL = 0
const OPT_NOP = 1
const OPT_MSS = 2
const OPT_WS = 3
const OPT_SACK_PERM = 4
const OPT_SACK = 5
const OPT_TS = 8

/** Max SACK blocks that fit: 4 alone, 3 with timestamps. */
export const MAX_SACK_BLOCKS = 4

export interface TcpRepr {
  readonly srcPort: number
  readonly dstPort: number
  readonly seq: SeqNum
  readonly ack: SeqNum
  /** FIN|SYN|RST|PSH|ACK|URG|ECE|CWR bits. */
  readonly flags: number
  /** Raw 16-bit window field (not scaled). */
  readonly window: number
  readonly urgent: number
  /** MSS option value, 0 = absent. */
  readonly mss: number
  /** Window scale shift, -1 = absent. */
  readonly wscale: number
  readonly sackPermitted: boolean
  /** Timestamps option present. */
  readonly hasTs: boolean
  readonly tsVal: number
  readonly tsEcr: number
  /** SACK blocks as flat [left0, right0, left1, right1, ...] sequence numbers; at most 4 blocks. */
  readonly sack: ReadonlyArray<SeqNum>
  /** Header length on the wire (parse) — ignored by emit, which computes its own. */
  readonly headerLen: number
  readonly payloadLen: number
}

export const NO_SACK: ReadonlyArray<SeqNum> = Object.freeze([])

/** Why `parse` refused a segment: the stack's own drop reasons (drop.ts), counted as they are. */
export type DropReason = Extract<StackDrop, "Truncated" | "BadHeaderLength" | "BadOption" | "BadChecksum" | "BadPort">

export const Drop = Object.freeze({
  Truncated: "Truncated",
  /** A data offset under 5 words or past the segment. */
  BadHeaderLength: "BadHeaderLength",
  BadOption: "BadOption",
  BadChecksum: "BadChecksum",
  BadPort: "BadPort"
} as const satisfies Record<DropReason, DropReason>)

export const isDrop = (r: TcpRepr | DropReason): r is DropReason => typeof r === "string"

export const dataOffset = (b: Uint8Array): number => (b[F.OFF_FLAGS]! >>> 4) * 4

export const checkLen = (b: Uint8Array): boolean =>
  b.length >= HEADER_LEN && dataOffset(b) >= HEADER_LEN && dataOffset(b) <= b.length

/** Payload view (no copy). Only after checkLen. */
export const payload = (b: Uint8Array): Uint8Array => b.subarray(dataOffset(b))

export const parse = (b: Uint8Array, pseudoSum: number, verify: boolean): TcpRepr | DropReason => {
  if (b.length < HEADER_LEN) return Drop.Truncated
  const hl = dataOffset(b)
  if (hl < HEADER_LEN) return Drop.BadHeaderLength
  if (hl > b.length) return Drop.Truncated
  if (verify && !Cs.verifies(Cs.sum(b, 0, b.length, pseudoSum))) return Drop.BadChecksum
  const srcPort = u16(b, F.SRC_PORT)
  const dstPort = u16(b, F.DST_PORT)
  if (srcPort === 0 || dstPort === 0) return Drop.BadPort
  let mss = 0
  let wscale = -1
  let sackPermitted = false
  let hasTs = false
  let tsVal = 0
  let tsEcr = 0
  let sack: SeqNum[] | undefined
  let i = HEADER_LEN
  while (i < hl) {
    const kind = b[i]!
    if (kind === OPT_EOL) break
    if (kind === OPT_NOP) {
      i++
      continue
    }
    if (i + 1 >= hl) return Drop.BadOption
    const len = b[i + 1]!
    if (len < 2 || i + len > hl) return Drop.BadOption
    switch (kind) {
      case OPT_MSS:
        if (len !== 4) return Drop.BadOption
        mss = u16(b, i + 2)
        break
      case OPT_WS:
        if (len !== 3) return Drop.BadOption
        wscale = Math.min(b[i + 2]!, 14) // RFC 7323 §2.3: values above 14 are treated as 14
        break
      case OPT_SACK_PERM:
        if (len !== 2) return Drop.BadOption
        sackPermitted = true
        break
      case OPT_SACK: {
        if (len < 10 || (len - 2) % 8 !== 0) return Drop.BadOption
        const n = (len - 2) / 8
        sack = []
        for (let k = 0; k < n && k < MAX_SACK_BLOCKS; k++) {
          sack.push(u32(b, i + 2 + 8 * k) as SeqNum, u32(b, i + 6 + 8 * k) as SeqNum)
        }
        break
      }
      case OPT_TS:
        if (len !== 10) return Drop.BadOption
        hasTs = true
        tsVal = u32(b, i + 2)
        tsEcr = u32(b, i + 6)
        break
      default:
        break // unknown option: skipped (its length was checked)
    }
    i += len
  }
  const offFlags = u16(b, F.OFF_FLAGS)
  return {
    srcPort,
    dstPort,
    seq: u32(b, F.SEQ) as SeqNum,
    ack: u32(b, F.ACK) as SeqNum,
    flags: offFlags & 0xff,
    window: u16(b, F.WINDOW),
    urgent: u16(b, F.URGENT),
    mss,
    wscale,
    sackPermitted,
    hasTs,
    tsVal,
    tsEcr,
    sack: sack ?? NO_SACK,
    headerLen: hl,
    payloadLen: b.length - hl
  }
}

/** Number of SACK blocks emit will actually write (what fits in 40 option bytes). */
export const sackBlocksEmitted = (r: TcpRepr): number => {
  const n = Math.min(r.sack.length >>> 1, MAX_SACK_BLOCKS)
  if (n === 0) return 0
  let used = 0
  if (r.mss !== 0) used += 4
  if (r.sackPermitted || r.hasTs) used += r.hasTs ? 12 : 4
  if (r.wscale >= 0) used += 4
  return Math.max(0, Math.min(n, Math.floor((40 - used - 4) / 8)))
}

/** Options length (multiple of 4) that `emit` writes. */
export const optionsLen = (r: TcpRepr): number => {
  let n = 0
  if (r.mss !== 0) n += 4
  // sackOK + TS share one 12-byte group (Linux layout); otherwise each alone padded with 2 NOPs
  if (r.hasTs) n += 12
  else if (r.sackPermitted) n += 4
  if (r.wscale >= 0) n += 4
  const s = sackBlocksEmitted(r)
  if (s > 0) n += 4 + 8 * s
  return n
}

export const headerLen = (r: TcpRepr): number => HEADER_LEN + optionsLen(r)

/**
 * Write the header of `r` at b[0..headerLen(r)); b.length is the whole segment (header + payload
 * already in place). Option layout follows Linux: MSS, [SACK_PERM, TS | NOP NOP TS | NOP NOP SACK_PERM],
 * NOP WS, NOP NOP SACK.
 */
export const emit = (r: TcpRepr, b: Uint8Array, pseudoSum: number, fill: boolean): void => {
  const hl = headerLen(r)
  setU16(b, F.SRC_PORT, r.srcPort)
  setU16(b, F.DST_PORT, r.dstPort)
  setU32(b, F.SEQ, r.seq)
  setU32(b, F.ACK, r.ack)
  setU16(b, F.OFF_FLAGS, ((hl >>> 2) << 12) | (r.flags & 0xff))
  setU16(b, F.WINDOW, r.window)
  setU16(b, F.CHECKSUM, 0)
  setU16(b, F.URGENT, r.urgent)
  let i = HEADER_LEN
  if (r.mss !== 0) {
    b[i] = OPT_MSS
    b[i + 1] = 4
    setU16(b, i + 2, r.mss)
    i += 4
  }
  if (r.hasTs) {
    if (r.sackPermitted) {
      b[i] = OPT_SACK_PERM
      b[i + 1] = 2
    } else {
      b[i] = OPT_NOP
      b[i + 1] = OPT_NOP
    }
    b[i + 2] = OPT_TS
    b[i + 3] = 10
    setU32(b, i + 4, r.tsVal)
    setU32(b, i + 8, r.tsEcr)
    i += 12
  } else if (r.sackPermitted) {
    b[i] = OPT_NOP
    b[i + 1] = OPT_NOP
    b[i + 2] = OPT_SACK_PERM
    b[i + 3] = 2
    i += 4
  }
  if (r.wscale >= 0) {
    b[i] = OPT_NOP
    b[i + 1] = OPT_WS
    b[i + 2] = 3
    b[i + 3] = r.wscale
    i += 4
  }
  const s = sackBlocksEmitted(r)
  if (s > 0) {
    b[i] = OPT_NOP
    b[i + 1] = OPT_NOP
    b[i + 2] = OPT_SACK
    b[i + 3] = 2 + 8 * s
    i += 4
    for (let k = 0; k < s; k++) {
      setU32(b, i, r.sack[2 * k]!)
      setU32(b, i + 4, r.sack[2 * k + 1]!)
      i += 8
    }
  }
  if (i !== hl) throw new Error("tcp emit: header length mismatch") // broken invariant, not peer input
  if (fill) setU16(b, F.CHECKSUM, Cs.finish(Cs.sum(b, 0, b.length, pseudoSum)))
  else setU16(b, F.CHECKSUM, Cs.fold(pseudoSum))
}

/** A repr with defaults; handy for tests and for the machine. */
export const make = (p: Partial<TcpRepr> & Pick<TcpRepr, "srcPort" | "dstPort">): TcpRepr => ({
  seq: 0 as SeqNum,
  ack: 0 as SeqNum,
  flags: 0,
  window: 0,
  urgent: 0,
  mss: 0,
  wscale: -1,
  sackPermitted: false,
  hasTs: false,
  tsVal: 0,
  tsEcr: 0,
  sack: NO_SACK,
  headerLen: 0,
  payloadLen: 0,
  ...p
})
