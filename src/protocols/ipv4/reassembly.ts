/**
 * IPv4 fragment reassembly (RFC 791 §3.2): datagrams keyed by source, destination, protocol and
 * identification, over the shared bounded table of `../fragments.ts` (limits, eviction, overlaps and
 * duplicates are described there). Reassembled datagrams never exceed 65535 bytes, IP header included.
 */
import type { DropReason } from "../drop.js"
import { FragmentTable, type ReassemblyConfig } from "../fragments.js"

export type { ReassemblyConfig } from "../fragments.js"

export const DEFAULT_CONFIG: ReassemblyConfig = { maxDatagrams: 64, maxPerSource: 16, maxBytes: 4 * 1024 * 1024, timeoutMs: 30_000 }

const MAX_PAYLOAD = 65535 - 20

export class Reassembler {
  private readonly table: FragmentTable<number, undefined>

  constructor(readonly config: ReassemblyConfig = DEFAULT_CONFIG) {
    this.table = new FragmentTable(config)
  }

  get inProgress(): number {
    return this.table.inProgress
  }

  get bufferedBytes(): number {
    return this.table.bufferedBytes
  }

  get timeouts(): number {
    return this.table.timeouts
  }

  /** Incomplete datagrams discarded to make room for others. */
  get evictions(): number {
    return this.table.evictions
  }

  /** Duplicate fragments ignored. */
  get duplicates(): number {
    return this.table.duplicates
  }

  /** Incomplete datagrams from `src`. */
  inProgressFrom(src: number): number {
    return this.table.inProgressFrom(src)
  }

  /**
   * Add one fragment. Returns the whole payload when the datagram is complete, undefined when more is
   * needed (or the fragment was a duplicate), or a drop reason (the fragment, and for everything but a
   * bad length the datagram, is discarded).
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
    return this.table.add(`${src}:${dst}:${protocol}:${ident}`, src, offset, moreFragments, data, nowMs, MAX_PAYLOAD, undefined)
  }

  /** Discard datagrams past their deadline; returns how many were discarded. */
  expire(nowMs: number): number {
    return this.table.expire(nowMs)
  }

  nextDeadline(): number | undefined {
    return this.table.nextDeadline()
  }
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
