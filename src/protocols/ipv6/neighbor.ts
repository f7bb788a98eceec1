/**
 * The IPv6 neighbour cache (RFC 4861 §7.3) as a pure machine: time comes in as `nowMs`, randomness as a
 * function, and what must happen goes out as actions pushed onto the caller's array (send a neighbour
 * solicitation, send a packet that waited, drop one). The states are those of §7.3.2, the transitions
 * those of §7.2 and Appendix C:
 *
 * - INCOMPLETE: resolution under way, multicast solicitations every RetransTimer, at most
 *   MAX_MULTICAST_SOLICIT; then resolution has failed and the waiting packets are dropped as
 *   "AddressUnreachable" (the shell answers each with ICMPv6 destination unreachable, code 3, §7.3.3).
 * - REACHABLE for ReachableTime after a confirmation (a solicited advertisement, or an upper layer's
 *   `confirm`, §7.3.1), then STALE.
 * - STALE: usable; the first packet sent moves it to DELAY. DELAY: after DELAY_FIRST_PROBE_TIME without a
 *   confirmation, PROBE: unicast solicitations every RetransTimer, at most MAX_UNICAST_SOLICIT, then the
 *   entry is deleted.
 *
 * Bounds (design.md §7): at most `maxEntries` entries; a new one evicts the least recently used dynamic
 * entry, INCOMPLETE ones last (their waiting packets dropped as "TableFull"). Packets waiting for
 * resolution: at most `queuePerEntry` per entry and `queueTotal` in all; past either, the oldest waiting
 * packet (of that entry, or of all) is dropped as "QueueFull" (§7.2.2: "the new arrival SHOULD replace the
 * oldest entry"). Static entries (configuration) never change, expire or get evicted.
 */
import type { MacAddress } from "../address.js"
import type { DropReason } from "../drop.js"
import type { Ipv6Address } from "./address.js"

export type NeighborState = "Incomplete" | "Reachable" | "Stale" | "Delay" | "Probe"

export interface NeighborConfig {
  readonly maxEntries: number
  readonly queuePerEntry: number
  readonly queueTotal: number
  /** BaseReachableTime (REACHABLE_TIME, §10): ReachableTime is drawn from 0.5..1.5 times it (§6.3.2). */
  readonly baseReachableTimeMs: number
  /** RetransTimer (RETRANS_TIMER, §10). */
  readonly retransTimerMs: number
  readonly maxMulticastSolicit: number
  readonly maxUnicastSolicit: number
  readonly delayFirstProbeTimeMs: number
}

/** The protocol constants of RFC 4861 §10, and our bounds. */
export const DEFAULT_CONFIG: NeighborConfig = {
  maxEntries: 512,
  queuePerEntry: 16,
  queueTotal: 256,
  baseReachableTimeMs: 30_000,
  retransTimerMs: 1_000,
  maxMulticastSolicit: 3,
  maxUnicastSolicit: 3,
  delayFirstProbeTimeMs: 5_000
}

/** ReachableTime is re-drawn at least this often (§6.3.2: "at least every few hours"). */
const REDRAW_MS = 2 * 3600_000

export type NeighborAction<P> =
  /** Send a neighbour solicitation for `target`: to its solicited-node group when `unicast` is undefined, else to `target` at that MAC. */
  | { readonly _tag: "Solicit"; readonly target: Ipv6Address; readonly unicast: MacAddress | undefined }
  /** Send a packet that waited for resolution. */
  | { readonly _tag: "Send"; readonly packet: P; readonly mac: MacAddress }
  /** A packet dropped: its queue overflowed, resolution failed, or its entry was evicted. */
  | { readonly _tag: "Drop"; readonly packet: P; readonly reason: DropReason }
  /** A neighbour that was a router says it no longer is (§7.2.5): take it off the default router list. */
  | { readonly _tag: "RouterLost"; readonly ip: Ipv6Address }

interface Entry<P> {
  state: NeighborState
  mac: MacAddress | undefined
  isRouter: boolean
  readonly isStatic: boolean
  /** When the state's timer fires (Infinity: none). */
  timerMs: number
  /** Solicitations sent in INCOMPLETE or PROBE. */
  probes: number
  lastUsedMs: number
  readonly queue: Array<P>
  /** Arrival number of each queued packet (for "drop the oldest of all"). */
  readonly queueSeq: Array<number>
}

export interface Advertisement {
  readonly router: boolean
  readonly solicited: boolean
  readonly override: boolean
}

export class NeighborCache<P> {
  private readonly entries = new Map<Ipv6Address, Entry<P>>()
  private queued = 0
  private seq = 0
  private reachableMs: number
  private drawnAtMs = 0
  private baseReachableMs: number
  private retransMs: number
  /** Entries evicted to make room. */
  evictions = 0

  /** `random` returns a number in [0, 1), like Math.random (the shell passes a seeded one in tests). */
  constructor(
    readonly config: NeighborConfig = DEFAULT_CONFIG,
    private readonly random: () => number = Math.random
  ) {
    this.baseReachableMs = config.baseReachableTimeMs
    this.retransMs = config.retransTimerMs
    this.reachableMs = this.draw()
  }

  get size(): number {
    return this.entries.size
  }
  /** Packets waiting for resolution, in all. */
  get queuedPackets(): number {
    return this.queued
  }
  /** The current ReachableTime. */
  get reachableTimeMs(): number {
    return this.reachableMs
  }
  get retransTimerMs(): number {
    return this.retransMs
  }

  /** A router's advertised BaseReachableTime (§6.3.4: when non-zero and different, re-draw ReachableTime). */
  setBaseReachableTime(ms: number, nowMs: number): void {
    if (ms === 0 || ms === this.baseReachableMs) return
    this.baseReachableMs = ms
    this.reachableMs = this.draw()
    this.drawnAtMs = nowMs
  }

  /** A router's advertised RetransTimer (§6.3.4: when non-zero). */
  setRetransTimer(ms: number): void {
    if (ms !== 0) this.retransMs = ms
  }

  lookup(ip: Ipv6Address): { readonly state: NeighborState; readonly mac: MacAddress | undefined; readonly isRouter: boolean; readonly isStatic: boolean } | undefined {
    const e = this.entries.get(ip)
    return e === undefined ? undefined : { state: e.state, mac: e.mac, isRouter: e.isRouter, isStatic: e.isStatic }
  }

  /** A configured neighbour: always reachable at `mac`. Packets waiting for it are sent. */
  addStatic(ip: Ipv6Address, mac: MacAddress, out: Array<NeighborAction<P>>): void {
    const old = this.entries.get(ip)
    if (old === undefined && !this.makeRoom(out)) return
    this.entries.set(ip, { state: "Reachable", mac, isRouter: old?.isRouter ?? false, isStatic: true, timerMs: Infinity, probes: 0, lastUsedMs: 0, queue: [], queueSeq: [] })
    if (old !== undefined) this.flush(old, mac, out)
  }

  /**
   * The link-layer address to send a packet to `ip` with, or undefined when the packet was queued until
   * resolution (§7.2.2; a new entry sends its first solicitation) or dropped (a Drop action says so).
   */
  resolve(ip: Ipv6Address, packet: P, nowMs: number, out: Array<NeighborAction<P>>): MacAddress | undefined {
    let e = this.entries.get(ip)
    if (e === undefined) {
      if (!this.makeRoom(out)) {
        out.push({ _tag: "Drop", packet, reason: "TableFull" })
        return undefined
      }
      e = { state: "Incomplete", mac: undefined, isRouter: false, isStatic: false, timerMs: nowMs + this.retransMs, probes: 1, lastUsedMs: nowMs, queue: [], queueSeq: [] }
      this.entries.set(ip, e)
      out.push({ _tag: "Solicit", target: ip, unicast: undefined })
    }
    e.lastUsedMs = nowMs
    if (e.state === "Incomplete") {
      this.enqueue(e, packet, out)
      return undefined
    }
    if (e.state === "Reachable" && !e.isStatic && e.timerMs <= nowMs) this.set(e, "Stale", Infinity)
    if (e.state === "Stale") this.set(e, "Delay", nowMs + this.config.delayFirstProbeTimeMs) // §7.3.3
    return e.mac
  }

  /** Forward progress confirmed by an upper layer (§7.3.1), e.g. TCP saw new data acknowledged. */
  confirm(ip: Ipv6Address, nowMs: number): void {
    const e = this.entries.get(ip)
    if (e === undefined || e.isStatic || e.state === "Incomplete") return
    this.set(e, "Reachable", nowMs + this.reachableMs)
  }

  /** A neighbour advertisement for `target` (§7.2.5). Advertisements never create entries. */
  onAdvertisement(target: Ipv6Address, tll: MacAddress | undefined, flags: Advertisement, nowMs: number, out: Array<NeighborAction<P>>): void {
    const e = this.entries.get(target)
    if (e === undefined || e.isStatic) return
    if (e.state === "Incomplete") {
      if (tll === undefined) return
      e.mac = tll
      e.isRouter = flags.router
      if (flags.solicited) this.set(e, "Reachable", nowMs + this.reachableMs)
      else this.set(e, "Stale", Infinity)
      this.flush(e, tll, out)
      return
    }
    const differs = tll !== undefined && tll !== e.mac
    if (!flags.override && differs) {
      if (e.state === "Reachable") this.set(e, "Stale", Infinity) // and nothing else (§7.2.5 a)
      return
    }
    if (differs) e.mac = tll
    if (flags.solicited) this.set(e, "Reachable", nowMs + this.reachableMs)
    else if (differs) this.set(e, "Stale", Infinity)
    if (e.isRouter && !flags.router) out.push({ _tag: "RouterLost", ip: target })
    e.isRouter = flags.router
  }

  /**
   * A link-layer address learnt from a solicitation or advertisement's source option (NS §7.2.3, RS
   * §6.2.6, RA §6.3.4 with `router`): creates a STALE entry, or makes an entry STALE when the address
   * changed; an INCOMPLETE entry sends its waiting packets.
   */
  learn(ip: Ipv6Address, mac: MacAddress, nowMs: number, out: Array<NeighborAction<P>>, router = false): void {
    let e = this.entries.get(ip)
    if (e?.isStatic === true) return
    if (e === undefined) {
      if (!this.makeRoom(out)) return
      e = { state: "Stale", mac, isRouter: router, isStatic: false, timerMs: Infinity, probes: 0, lastUsedMs: nowMs, queue: [], queueSeq: [] }
      this.entries.set(ip, e)
      return
    }
    if (router) e.isRouter = true
    if (e.state === "Incomplete") {
      e.mac = mac
      this.set(e, "Stale", Infinity)
      this.flush(e, mac, out)
    } else if (mac !== e.mac) {
      e.mac = mac
      this.set(e, "Stale", Infinity)
    }
  }

  /** Fire every timer due at `nowMs`. */
  tick(nowMs: number, out: Array<NeighborAction<P>>): void {
    if (nowMs - this.drawnAtMs >= REDRAW_MS) {
      this.reachableMs = this.draw()
      this.drawnAtMs = nowMs
    }
    for (const [ip, e] of this.entries) {
      if (e.timerMs > nowMs) continue
      switch (e.state) {
        case "Incomplete":
          if (e.probes < this.config.maxMulticastSolicit) {
            e.probes++
            e.timerMs = nowMs + this.retransMs
            out.push({ _tag: "Solicit", target: ip, unicast: undefined })
          } else {
            this.remove(ip, e, "AddressUnreachable", out)
          }
          break
        case "Reachable":
          this.set(e, "Stale", Infinity)
          break
        case "Delay":
          this.set(e, "Probe", nowMs + this.retransMs)
          e.probes = 1
          out.push({ _tag: "Solicit", target: ip, unicast: e.mac })
          break
        case "Probe":
          if (e.probes < this.config.maxUnicastSolicit) {
            e.probes++
            e.timerMs = nowMs + this.retransMs
            out.push({ _tag: "Solicit", target: ip, unicast: e.mac })
          } else {
            this.remove(ip, e, "AddressUnreachable", out)
          }
          break
        case "Stale":
          break
      }
    }
  }

  /** The earliest timer, or undefined when none runs. */
  nextDeadline(): number | undefined {
    let t = Infinity
    for (const e of this.entries.values()) if (e.timerMs < t) t = e.timerMs
    return t === Infinity ? undefined : t
  }

  private draw(): number {
    return Math.floor(this.baseReachableMs * (0.5 + this.random()))
  }

  private set(e: Entry<P>, state: NeighborState, timerMs: number): void {
    e.state = state
    e.timerMs = timerMs
    e.probes = 0
  }

  private enqueue(e: Entry<P>, packet: P, out: Array<NeighborAction<P>>): void {
    if (e.queue.length >= this.config.queuePerEntry) this.dropHead(e, out)
    else if (this.queued >= this.config.queueTotal) this.dropOldest(out)
    e.queue.push(packet)
    e.queueSeq.push(this.seq++)
    this.queued++
  }

  private dropHead(e: Entry<P>, out: Array<NeighborAction<P>>): void {
    e.queueSeq.shift()
    this.queued--
    out.push({ _tag: "Drop", packet: e.queue.shift()!, reason: "QueueFull" })
  }

  private dropOldest(out: Array<NeighborAction<P>>): void {
    let oldest: Entry<P> | undefined
    for (const e of this.entries.values()) if (e.queue.length > 0 && (oldest === undefined || e.queueSeq[0]! < oldest.queueSeq[0]!)) oldest = e
    if (oldest !== undefined) this.dropHead(oldest, out)
  }

  private flush(e: Entry<P>, mac: MacAddress, out: Array<NeighborAction<P>>): void {
    for (const packet of e.queue) out.push({ _tag: "Send", packet, mac })
    this.queued -= e.queue.length
    e.queue.length = 0
    e.queueSeq.length = 0
  }

  private remove(ip: Ipv6Address, e: Entry<P>, reason: DropReason, out: Array<NeighborAction<P>>): void {
    for (const packet of e.queue) out.push({ _tag: "Drop", packet, reason })
    this.queued -= e.queue.length
    this.entries.delete(ip)
  }

  /** Make room for one more entry: evict the least recently used dynamic one, INCOMPLETE last; false when every entry is static. */
  private makeRoom(out: Array<NeighborAction<P>>): boolean {
    if (this.entries.size < this.config.maxEntries) return true
    let victim: Ipv6Address | undefined
    let v: Entry<P> | undefined
    for (const [ip, e] of this.entries) {
      if (e.isStatic) continue
      const better =
        v === undefined ||
        (v.state === "Incomplete" && e.state !== "Incomplete") ||
        ((v.state === "Incomplete") === (e.state === "Incomplete") && e.lastUsedMs < v.lastUsedMs)
      if (better) {
        victim = ip
        v = e
      }
    }
    if (victim === undefined || v === undefined) return false
    this.remove(victim, v, "TableFull", out)
    this.evictions++
    return true
  }
}
