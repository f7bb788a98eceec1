/**
 * IPv6 fragment reassembly (RFC 8200 §4.5) and fragmentation of our own packets, over the bounded table
 * of `../fragments.ts` (limits, eviction, the overlap rule of RFC 5722 and exact duplicates are described
 * there). Same bounds as IPv4, but the 60 s timeout of RFC 8200 §4.5.
 *
 * - Fragments belong together when source, destination and identification agree (§4.5).
 * - The reassembled packet is the first fragment's unfragmentable part (fixed header and the extension
 *   headers before its fragment header), its fragment header's next header put where the fragment header
 *   was named, then the fragmentable parts in order; its payload length may not pass 65535 (§4.5).
 * - Atomic fragments (offset 0, M clear) never come here: the walk skips them (RFC 6946 §4), so they can
 *   neither complete nor disturb a datagram with the same identification.
 * - A datagram that times out after its first fragment arrived yields that fragment as received, for the
 *   ICMPv6 time exceeded (code 1) the source should get (§4.5); one that never got it yields nothing.
 * - The per-source limit counts a global source by its /64 (one host can pick any address in its /64, RFC
 *   4291 §2.5.1, so counting addresses would not bound it) and a link-local source by its address.
 *
 * Memory: fragment data within `maxBytes`; besides, each datagram keeps a copy of its first fragment's
 * headers, at most 48 + the walk's maxChainBytes bytes.
 */
import { setU16 } from "../bytes.js"
import type { DropReason } from "../drop.js"
import { FragmentTable, type ReassemblyConfig, type TimedOut } from "../fragments.js"
import { isLinkLocal, readIpv6, type Ipv6Address } from "./address.js"
import { emitFragmentHeader, FRAGMENT_HEADER_LEN, HEADER_LEN, NH_FRAGMENT, type FragmentChain, type Ipv6Repr } from "./wire.js"

export type { ReassemblyConfig } from "../fragments.js"

export const DEFAULT_CONFIG: ReassemblyConfig = { maxDatagrams: 64, maxPerSource: 16, maxBytes: 4 * 1024 * 1024, timeoutMs: 60_000 }

/** What a datagram keeps from its first fragment. */
interface First {
  /** The first fragment's bytes up to the end of its fragment header. */
  readonly headers: Uint8Array
  readonly nextHeader: number
  readonly namedAt: number
  /** Data bytes the first fragment carried. */
  readonly dataLen: number
}

/** A datagram given up after its first fragment arrived: where the time exceeded goes, and what it quotes. */
export interface ReassemblyTimeout {
  readonly src: Ipv6Address
  /** The first fragment as received (the ICMPv6 layer cuts it to its quote limit). */
  readonly firstFragment: Uint8Array
}

const sourceKey = (src: Ipv6Address): string => (isLinkLocal(src) ? src : src.slice(0, 4))

export class Reassembler {
  private readonly table: FragmentTable<string, First>
  private readonly timedOut: Array<TimedOut<string, First>> = []

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
  /** Incomplete datagrams counted against the source of `src` (its /64, or itself when link-local). */
  inProgressFrom(src: Ipv6Address): number {
    return this.table.inProgressFrom(sourceKey(src))
  }

  /**
   * Add the fragment `b` (a whole packet: parsed as `r`, walked to `f`). Returns the reassembled packet
   * (a new buffer: fixed header, unfragmentable extension headers, the rest; no fragment header) when
   * complete, undefined when more is needed, or a drop reason.
   */
  add(b: Uint8Array, r: Ipv6Repr, f: FragmentChain, nowMs: number): Uint8Array | undefined | DropReason {
    const data = b.subarray(f.dataAt, HEADER_LEN + r.payloadLen)
    const unfragmentable = f.headerAt - HEADER_LEN
    const key = r.src + r.dst + String.fromCharCode(f.ident >>> 16, f.ident & 0xffff)
    const first: First | undefined =
      f.fragmentOffset === 0 ? { headers: b.slice(0, f.dataAt), nextHeader: f.nextHeader, namedAt: f.namedAt, dataLen: data.length } : undefined
    const whole = this.table.add(key, sourceKey(r.src), f.fragmentOffset, f.more, data, nowMs, 65535 - unfragmentable, first)
    if (!(whole instanceof Uint8Array)) return whole
    const m = this.table.lastMeta!
    const h = m.headers.length - FRAGMENT_HEADER_LEN
    if (h - HEADER_LEN + whole.length > 65535) return "BadLength"
    const out = new Uint8Array(h + whole.length)
    out.set(m.headers.subarray(0, h))
    out[m.namedAt] = m.nextHeader
    setU16(out, 4, h - HEADER_LEN + whole.length)
    out.set(whole, h)
    return out
  }

  /** Discard datagrams past their deadline; returns those whose first fragment had arrived. */
  expire(nowMs: number): ReadonlyArray<ReassemblyTimeout> {
    const t = this.timedOut
    t.length = 0
    if (this.table.expire(nowMs, t) === 0) return []
    const out: Array<ReassemblyTimeout> = []
    for (const d of t) {
      if (d.meta === undefined) continue
      const q = new Uint8Array(d.meta.headers.length + d.meta.dataLen)
      q.set(d.meta.headers)
      q.set(d.data.subarray(0, d.meta.dataLen), d.meta.headers.length)
      out.push({ src: readIpv6(d.meta.headers, 8), firstFragment: q })
    }
    t.length = 0
    return out
  }

  nextDeadline(): number | undefined {
    return this.table.nextDeadline()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Fragmentation of our own packets (RFC 8200 §4.5, §5)

/**
 * [offset, length] pairs for `payloadLen` bytes of upper-layer data over the link MTU `mtu`: each fragment
 * is a fixed header, a fragment header and at most mtu - 48 bytes, all but the last a multiple of 8.
 */
export const fragmentPlan = (payloadLen: number, mtu: number): Array<readonly [number, number]> => {
  const per = Math.floor((mtu - HEADER_LEN - FRAGMENT_HEADER_LEN) / 8) * 8
  const out: Array<readonly [number, number]> = []
  for (let o = 0; o < payloadLen; o += per) out.push([o, Math.min(per, payloadLen - o)])
  if (out.length === 0) out.push([0, 0])
  return out
}

/**
 * Writes one fragment of `packet` (a fixed header followed directly by upper-layer data, as we send them)
 * at out[o..o+48+len): the fixed header with next header 44 and its payload length, a fragment header with
 * the packet's next header, offset, M and `ident` (RFC 7739: the caller picks it unpredictably), the data.
 */
export const writeFragment = (out: Uint8Array, o: number, packet: Uint8Array, offset: number, len: number, more: boolean, ident: number): void => {
  out.set(packet.subarray(0, HEADER_LEN), o)
  setU16(out, o + 4, FRAGMENT_HEADER_LEN + len)
  out[o + 6] = NH_FRAGMENT
  emitFragmentHeader(out, o + HEADER_LEN, packet[6]!, offset, more, ident)
  out.set(packet.subarray(HEADER_LEN + offset, HEADER_LEN + offset + len), o + HEADER_LEN + FRAGMENT_HEADER_LEN)
}
