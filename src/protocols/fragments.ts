/**
 * Fragment reassembly, the part IPv4 (RFC 791 §3.2, RFC 815 hole tracking) and IPv6 (RFC 8200 §4.5) share:
 * pure and bounded. `ipv4/reassembly.ts` and `ipv6/reassembly.ts` put their keys, sources and header rules
 * around it.
 *
 * Limits: at most `maxDatagrams` datagrams in progress, at most `maxPerSource` of them from one source,
 * and `maxBytes` buffered in all; a datagram not complete within `timeoutMs` of its first fragment is
 * discarded. Fragment payloads are copied (received frames are borrowed).
 *
 * Full tables evict, they do not refuse (design.md §7): a new datagram that finds no slot evicts the
 * oldest incomplete one (its own source's oldest when that source is at `maxPerSource`, so one source
 * cannot push out everyone else's datagrams), and a datagram that needs buffer space evicts the oldest
 * others until it fits. So incomplete datagrams sent to fill the table hold it only until real traffic
 * arrives, instead of for `timeoutMs`. Only a datagram larger than `maxBytes` on its own is refused.
 *
 * Overlaps (RFC 5722 §4 for IPv6, which Linux applies to IPv4 too; RFC 791 let the last data win): a
 * fragment that shares any byte with data already received discards the whole datagram
 * ("FragmentOverlap"), since overlapping fragments are how one datagram is made to read differently
 * here and at a firewall or IDS. The one exception is a duplicate, which a network may produce (RFC 8200
 * §4.5 allows dropping exact duplicates and keeping the datagram): a fragment lying entirely inside data
 * already received *and* carrying the same bytes is ignored and the datagram kept. (Linux ignores any
 * fragment inside a received run without comparing the bytes; we compare, so a "duplicate" that changes
 * even one byte counts as an overlap. The comparison costs nothing on the normal path, where fragments
 * do not overlap.)
 */
import type { DropReason } from "./drop.js"

export interface ReassemblyConfig {
  readonly maxDatagrams: number
  /** Incomplete datagrams one source may hold at once. */
  readonly maxPerSource: number
  readonly maxBytes: number
  readonly timeoutMs: number
}

interface Datagram<S, M> {
  readonly src: S
  buf: Uint8Array
  /** Received [start, end) ranges, sorted and merged. */
  readonly ranges: Array<number>
  /** Total payload length once the last fragment (no "more fragments") arrived, else -1. */
  total: number
  readonly deadlineMs: number
  /** What the caller keeps about the datagram, from its first fragment (offset 0). */
  meta: M | undefined
}

/** A datagram discarded by `expire`: its source, what the caller kept, and the data received (bytes not received are 0). */
export interface TimedOut<S, M> {
  readonly src: S
  readonly meta: M | undefined
  readonly data: Uint8Array
}

/** Datagrams keyed by a string the caller builds from its header fields; `S` keys the per-source limit. */
export class FragmentTable<S, M> {
  /** In insertion order, which is age order (first fragment's arrival): the first entry is the oldest. */
  private readonly datagrams = new Map<string, Datagram<S, M>>()
  /** Incomplete datagrams per source (entries removed at zero). */
  private readonly perSource = new Map<S, number>()
  private bytes = 0
  timeouts = 0
  /** Incomplete datagrams discarded to make room for others. */
  evictions = 0
  /** Duplicate fragments ignored. */
  duplicates = 0
  /** The `meta` of the datagram the last `add` completed. */
  lastMeta: M | undefined = undefined

  constructor(readonly config: ReassemblyConfig) {}

  get inProgress(): number {
    return this.datagrams.size
  }

  get bufferedBytes(): number {
    return this.bytes
  }

  inProgressFrom(src: S): number {
    return this.perSource.get(src) ?? 0
  }

  /**
   * Add the fragment `data` at `offset` of the datagram `key`. `maxEnd` bounds the datagram's payload
   * (65515 for IPv4, 65535 less the unfragmentable part for IPv6). `meta` is kept from the fragment at
   * offset 0 (the first one to arrive, if it repeats). Returns the whole payload when the datagram is
   * complete (and sets `lastMeta`), undefined when more is needed (or the fragment was a duplicate), or a
   * drop reason (the fragment, and for everything but a bad length the datagram, is discarded).
   */
  add(key: string, src: S, offset: number, more: boolean, data: Uint8Array, nowMs: number, maxEnd: number, meta: M | undefined): Uint8Array | undefined | DropReason {
    this.expire(nowMs)
    const end = offset + data.length
    if (end > maxEnd) return "BadLength"
    if (more && (data.length === 0 || (data.length & 7) !== 0)) return "BadLength"
    let d = this.datagrams.get(key)
    if (d === undefined) {
      if (this.inProgressFrom(src) >= this.config.maxPerSource) this.evictOldest(src, undefined)
      else if (this.datagrams.size >= this.config.maxDatagrams) this.evictOldest(undefined, undefined)
      if (this.datagrams.size >= this.config.maxDatagrams || this.inProgressFrom(src) >= this.config.maxPerSource) return "ReassemblyLimit"
      d = { src, buf: new Uint8Array(0), ranges: [], total: -1, deadlineMs: nowMs + this.config.timeoutMs, meta: undefined }
      this.datagrams.set(key, d)
      this.perSource.set(src, this.inProgressFrom(src) + 1)
    }
    if (!more) {
      if (d.total !== -1 && d.total !== end) return this.discard(key, d, "Malformed")
      // data already received past this end contradicts it (RFC 791 leaves it open; Linux discards too)
      if (d.ranges.length > 0 && d.ranges[d.ranges.length - 1]! > end) return this.discard(key, d, "Malformed")
      d.total = end
    }
    if (d.total !== -1 && end > d.total) return this.discard(key, d, "Malformed")
    const seen = overlap(d, offset, end, data)
    if (seen === "Overlap") return this.discard(key, d, "FragmentOverlap")
    if (seen === "Duplicate") {
      this.duplicates++
    } else {
      if (end > d.buf.length) {
        const need = (d.total !== -1 ? d.total : end) - d.buf.length
        while (this.bytes + need > this.config.maxBytes && this.evictOldest(undefined, key)) {
          // evicted one; check again
        }
        if (this.bytes + need > this.config.maxBytes) return this.discard(key, d, "ReassemblyLimit")
        // Doubling amortises copies, but never past what maxBytes still allows this datagram: a datagram
        // that fits the budget must not be refused because of the growth policy.
        const budget = this.config.maxBytes - this.bytes + d.buf.length
        const want = d.total !== -1 ? d.total : Math.max(end, Math.min(maxEnd, d.buf.length * 2, budget))
        const nb = new Uint8Array(want)
        nb.set(d.buf)
        this.bytes += want - d.buf.length
        d.buf = nb
      }
      d.buf.set(data, offset)
      addRange(d.ranges, offset, end)
      if (offset === 0 && d.meta === undefined) d.meta = meta
    }
    if (d.total !== -1 && d.ranges.length === 2 && d.ranges[0] === 0 && d.ranges[1] === d.total) {
      this.remove(key, d)
      this.lastMeta = d.meta
      return d.buf.length === d.total ? d.buf : d.buf.subarray(0, d.total)
    }
    return undefined
  }

  /** Discard datagrams past their deadline; returns how many were discarded, and pushes them onto `out` when given. */
  expire(nowMs: number, out?: Array<TimedOut<S, M>>): number {
    let n = 0
    // (a full scan, not up to the first one not due: a clock stepped back must not keep datagrams)
    for (const [k, d] of this.datagrams) {
      if (d.deadlineMs <= nowMs) {
        this.remove(k, d)
        out?.push({ src: d.src, meta: d.meta, data: d.buf })
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

  /** Evict the oldest datagram (from `src` when given), never `keep`; false when there is none. */
  private evictOldest(src: S | undefined, keep: string | undefined): boolean {
    for (const [k, d] of this.datagrams) {
      if (k === keep || (src !== undefined && d.src !== src)) continue
      this.remove(k, d)
      this.evictions++
      return true
    }
    return false
  }

  private remove(key: string, d: Datagram<S, M>): void {
    this.datagrams.delete(key)
    this.bytes -= d.buf.length
    const n = this.inProgressFrom(d.src) - 1
    if (n > 0) this.perSource.set(d.src, n)
    else this.perSource.delete(d.src)
  }

  private discard(key: string, d: Datagram<S, M>, why: DropReason): DropReason {
    this.remove(key, d)
    return why
  }
}

/**
 * How [s, e) meets the data already received: "Duplicate" when it lies inside one received range and
 * repeats its bytes, "Overlap" when it shares any byte otherwise, undefined when it shares none.
 */
const overlap = <S, M>(d: Datagram<S, M>, s: number, e: number, data: Uint8Array): "Duplicate" | "Overlap" | undefined => {
  if (e === s) return undefined
  const r = d.ranges
  for (let i = 0; i < r.length; i += 2) {
    const rs = r[i]!
    const re = r[i + 1]!
    if (re <= s) continue
    if (rs >= e) return undefined
    if (rs > s || e > re) return "Overlap"
    for (let k = 0; k < data.length; k++) if (d.buf[s + k] !== data[k]) return "Overlap"
    return "Duplicate"
  }
  return undefined
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
