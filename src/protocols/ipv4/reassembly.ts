/**
 * IPv4 fragment reassembly (RFC 791 §3.2, RFC 815 hole tracking), pure and bounded.
 *
 * Limits: at most `maxDatagrams` datagrams in progress and `maxBytes` buffered in all; a datagram not
 * complete within `timeoutMs` of its first fragment is discarded. Reassembled datagrams never exceed
 * 65535 bytes (IP header included). Fragment payloads are copied (received frames are borrowed).
 */
import type { DropReason } from "../drop.js"

export interface ReassemblyConfig {
  readonly maxDatagrams: number
  readonly maxBytes: number
  readonly timeoutMs: number
}

export const DEFAULT_CONFIG: ReassemblyConfig = { maxDatagrams: 64, maxBytes: 4 * 1024 * 1024, timeoutMs: 30_000 }

const MAX_PAYLOAD = 65535 - 20

interface Datagram {
  buf: Uint8Array
  /** Received [start, end) ranges, sorted and merged. */
  readonly ranges: Array<number>
  /** Total payload length once the last fragment (MF=0) arrived, else -1. */
  total: number
  readonly deadlineMs: number
}

export class Reassembler {
  private readonly datagrams = new Map<string, Datagram>()
  private bytes = 0
  timeouts = 0

  constructor(readonly config: ReassemblyConfig = DEFAULT_CONFIG) {}

  get inProgress(): number {
    return this.datagrams.size
  }

  get bufferedBytes(): number {
    return this.bytes
  }

  /**
   * Add one fragment. Returns the whole payload when the datagram is complete, undefined when more is
   * needed, or a drop reason (the fragment, and on a limit breach the datagram, is discarded).
   */
  add(
    src: number,
    dst: number,
    protocol: number,
    ident: number,
    offset: number,
    moreFragments: boolean,
    data: Uint8Array,
    nowMs: number
  ): Uint8Array | undefined | DropReason {
    this.expire(nowMs)
    const end = offset + data.length
    if (end > MAX_PAYLOAD) return "BadLength"
    if (moreFragments && (data.length === 0 || (data.length & 7) !== 0)) return "BadLength"
    const key = `${src}:${dst}:${protocol}:${ident}`
    let d = this.datagrams.get(key)
    if (d === undefined) {
      if (this.datagrams.size >= this.config.maxDatagrams) return "ReassemblyLimit"
      d = { buf: new Uint8Array(0), ranges: [], total: -1, deadlineMs: nowMs + this.config.timeoutMs }
      this.datagrams.set(key, d)
    }
    if (!moreFragments) {
      if (d.total !== -1 && d.total !== end) return this.discard(key, d, "Malformed")
      // data already received past this end contradicts it (RFC 791 leaves it open; Linux discards too)
      if (d.ranges.length > 0 && d.ranges[d.ranges.length - 1]! > end) return this.discard(key, d, "Malformed")
      d.total = end
    }
    if (d.total !== -1 && end > d.total) return this.discard(key, d, "Malformed")
    if (end > d.buf.length) {
      // Doubling amortises copies, but never past what maxBytes still allows this datagram: a datagram
      // that fits the budget must not be refused because of the growth policy.
      const budget = this.config.maxBytes - this.bytes + d.buf.length
      const want = d.total !== -1 ? d.total : Math.max(end, Math.min(MAX_PAYLOAD, d.buf.length * 2, budget))
      const grow = want - d.buf.length
      if (this.bytes + grow > this.config.maxBytes) return this.discard(key, d, "ReassemblyLimit")
      const nb = new Uint8Array(want)
      nb.set(d.buf)
      this.bytes += grow
      d.buf = nb
    }
    d.buf.set(data, offset)
    addRange(d.ranges, offset, end)
    if (d.total !== -1 && d.ranges.length === 2 && d.ranges[0] === 0 && d.ranges[1] === d.total) {
      this.datagrams.delete(key)
      this.bytes -= d.buf.length
      return d.buf.length === d.total ? d.buf : d.buf.subarray(0, d.total)
    }
    return undefined
  }

  /** Discard datagrams past their deadline; returns how many were discarded. */
  expire(nowMs: number): number {
    let n = 0
    for (const [k, d] of this.datagrams) {
      if (d.deadlineMs <= nowMs) {
        this.datagrams.delete(k)
        this.bytes -= d.buf.length
        n++
      }
    }
    this.timeouts += n
    return n
  }

  nextDeadline(): number | undefined {
    let t: number | undefined
    for (const d of this.datagrams.values()) if (t === undefined || d.deadlineMs < t) t = d.deadlineMs
    return t
  }

  private discard(key: string, d: Datagram, why: DropReason): DropReason {
    this.datagrams.delete(key)
    this.bytes -= d.buf.length
    return why
  }
}

/** Insert [s, e) into a sorted list of disjoint ranges [s0, e0, s1, e1, ...], merging touching ones. */
const addRange = (r: Array<number>, s: number, e: number): void => {
  let i = 0
  while (i < r.length && r[i + 1]! < s) i += 2
  let ns = s
  let ne = e
  let j = i
  while (j < r.length && r[j]! <= ne) {
    ns = Math.min(ns, r[j]!)
    ne = Math.max(ne, r[j + 1]!)
    j += 2
  }
  r.splice(i, j - i, ns, ne)
}

/**
 * Fragment plan for an outgoing payload of `payloadLen` bytes over an IP MTU `mtu` with a 20-byte header:
 * returns [offset, length] pairs; every length but the last is a multiple of 8.
 */
export const fragmentPlan = (payloadLen: number, mtu: number): Array<readonly [number, number]> => {
  const per = Math.floor((mtu - 20) / 8) * 8
  const out: Array<readonly [number, number]> = []
  for (let o = 0; o < payloadLen; o += per) out.push([o, Math.min(per, payloadLen - o)])
  if (out.length === 0) out.push([0, 0])
  return out
}
