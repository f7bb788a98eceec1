/**
 * The ARP neighbour table as a pure machine (time comes in as nowMs).
 *
 * - Dynamic entries expire after `entryTtlMs`; static entries (from `-a`) never expire and are never
 *   overwritten by ARP traffic.
 * - Packets waiting for a resolution are queued per address, bounded per address and in total; past a
 *   limit the newest packet is dropped and counted by the caller.
 * - Requests for one address are rate limited (`requestIntervalMs`) and given up after `maxRequests`,
 *   when the queued packets are dropped (the caller may send ICMP host unreachable).
 * - The table itself is bounded (`maxEntries`): when full, the dynamic entry closest to expiry is evicted.
 */
import type { Ipv4Address, MacAddress } from "../address.js"

export interface ArpCacheConfig {
  readonly maxEntries: number
  readonly entryTtlMs: number
  readonly requestIntervalMs: number
  readonly maxRequests: number
  readonly pendingPerAddress: number
  readonly pendingTotal: number
}

export const DEFAULT_CONFIG: ArpCacheConfig = {
  maxEntries: 512,
  entryTtlMs: 60_000,
  requestIntervalMs: 1_000,
  maxRequests: 3,
  pendingPerAddress: 64,
  pendingTotal: 1024
}

interface Entry {
  mac: MacAddress
  expiresAtMs: number
  readonly isStatic: boolean
}

interface Pending<P> {
  readonly packets: Array<P>
  lastRequestMs: number
  requests: number
}

export type EnqueueResult = "Queued" | "QueueFull"

export class ArpCache<P> {
  private readonly entries = new Map<number, Entry>()
  private readonly pending = new Map<number, Pending<P>>()
  private pendingCount = 0

  constructor(readonly config: ArpCacheConfig = DEFAULT_CONFIG) {}

  get size(): number {
    return this.entries.size
  }

  get pendingPackets(): number {
    return this.pendingCount
  }

  lookup(ip: Ipv4Address, nowMs: number): MacAddress | undefined {
    const e = this.entries.get(ip)
    if (e === undefined) return undefined
    if (!e.isStatic && e.expiresAtMs <= nowMs) {
      this.entries.delete(ip)
      return undefined
    }
    return e.mac
  }

  addStatic(ip: Ipv4Address, mac: MacAddress): void {
    // keep the table bound: a new static entry displaces a dynamic one (statics alone may exceed it: they are config)
    if (!this.entries.has(ip) && this.entries.size >= this.config.maxEntries) this.evictOne(-Infinity)
    this.entries.set(ip, { mac, expiresAtMs: Infinity, isStatic: true })
  }

  isStatic(ip: Ipv4Address): boolean {
    return this.entries.get(ip)?.isStatic === true
  }

  /**
   * Learn or refresh a dynamic entry. Returns the packets that were waiting for this address (the caller
   * sends them), or an empty array. Static entries are left untouched.
   */
  learn(ip: Ipv4Address, mac: MacAddress, nowMs: number): ReadonlyArray<P> {
    const existing = this.entries.get(ip)
    if (existing !== undefined && existing.isStatic) return this.takePending(ip)
    if (existing !== undefined) {
      existing.mac = mac
      existing.expiresAtMs = nowMs + this.config.entryTtlMs
    } else {
      if (this.entries.size >= this.config.maxEntries) this.evictOne(nowMs)
      if (this.entries.size < this.config.maxEntries) {
        this.entries.set(ip, { mac, expiresAtMs: nowMs + this.config.entryTtlMs, isStatic: false })
      }
    }
    return this.takePending(ip)
  }

  /** Refresh only if present (RFC 826 "merge flag" rule for packets not addressed to us). */
  hasEntry(ip: Ipv4Address): boolean {
    return this.entries.has(ip)
  }

  enqueue(ip: Ipv4Address, packet: P, _nowMs: number): EnqueueResult {
    if (this.pendingCount >= this.config.pendingTotal) return "QueueFull"
    let p = this.pending.get(ip)
    if (p === undefined) {
      p = { packets: [], lastRequestMs: -Infinity, requests: 0 }
      this.pending.set(ip, p)
    }
    if (p.packets.length >= this.config.pendingPerAddress) return "QueueFull"
    p.packets.push(packet)
    this.pendingCount++
    return "Queued"
  }

  /** Whether a request for `ip` should go out now; records it when true. */
  shouldRequest(ip: Ipv4Address, nowMs: number): boolean {
    const p = this.pending.get(ip)
    if (p === undefined) return false
    if (p.requests >= this.config.maxRequests) return false
    if (nowMs - p.lastRequestMs < this.config.requestIntervalMs) return false
    p.lastRequestMs = nowMs
    p.requests++
    return true
  }

  /**
   * Periodic work: expire dynamic entries, and give up on addresses whose requests ran out.
   * Returns the addresses due for a repeated request and the packets given up on.
   */
  tick(nowMs: number): { readonly retry: ReadonlyArray<Ipv4Address>; readonly failed: ReadonlyArray<P> } {
    for (const [ip, e] of this.entries) if (!e.isStatic && e.expiresAtMs <= nowMs) this.entries.delete(ip)
    const retry: Array<Ipv4Address> = []
    const failed: Array<P> = []
    for (const [ip, p] of this.pending) {
      if (nowMs - p.lastRequestMs < this.config.requestIntervalMs) continue
      if (p.requests >= this.config.maxRequests) {
        for (const x of p.packets) failed.push(x)
        this.pendingCount -= p.packets.length
        this.pending.delete(ip)
      } else {
        retry.push(ip as Ipv4Address)
      }
    }
    return { retry, failed }
  }

  /** Earliest time `tick` has something to do, or undefined. */
  nextDeadline(): number | undefined {
    let t: number | undefined
    for (const p of this.pending.values()) {
      const d = p.lastRequestMs + this.config.requestIntervalMs
      if (t === undefined || d < t) t = d
    }
    return t
  }

  entriesSnapshot(): ReadonlyArray<{ readonly ip: Ipv4Address; readonly mac: MacAddress; readonly isStatic: boolean }> {
    return [...this.entries].map(([ip, e]) => ({ ip: ip as Ipv4Address, mac: e.mac, isStatic: e.isStatic }))
  }

  private takePending(ip: number): ReadonlyArray<P> {
    const p = this.pending.get(ip)
    if (p === undefined) return []
    this.pending.delete(ip)
    this.pendingCount -= p.packets.length
    return p.packets
  }

  private evictOne(nowMs: number): void {
    let victim: number | undefined
    let soonest = Infinity
    for (const [ip, e] of this.entries) {
      if (e.isStatic) continue
      if (e.expiresAtMs <= nowMs) {
        victim = ip
        break
      }
      if (e.expiresAtMs < soonest) {
        soonest = e.expiresAtMs
        victim = ip
      }
    }
    if (victim !== undefined) this.entries.delete(victim)
  }
}
