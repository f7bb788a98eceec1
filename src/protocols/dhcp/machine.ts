/**
 * The DHCP client state machine (RFC 2131 §4.4, figure 5), pure: time comes in as `nowMs`, randomness as
 * a function, and everything it wants done comes out as `Action`s (messages to send, a lease to apply,
 * the address to drop). The shell (layers/Dhcp.ts) reads the clock, calls `poll` at `pollAt`, and feeds
 * received messages to `input`.
 *
 *   Init ──DISCOVER──► Selecting ──OFFER/REQUEST──► Requesting ──ACK──► Bound
 *    ▲                                                 │ NAK, no answer      │ T1
 *    │◄────────────────────────────────────────────────┘                    ▼
 *    │◄── lease expired / NAK ── Rebinding ◄── T2 ── Renewing (REQUEST unicast to the server)
 *                                (REQUEST broadcast)        └── ACK ──► Bound
 *
 * Deliberate choices:
 * - The first valid OFFER is taken (no collection window), as lwIP and smoltcp do.
 * - Retransmissions in Selecting/Requesting back off 4, 8, 16, 32, 64 s with ±1 s jitter (§4.1);
 *   after `requestAttempts` unanswered REQUESTs the client starts over.
 * - In Renewing/Rebinding the REQUEST is repeated after half the time left to T2 / expiry, with a
 *   minimum of `minRenewRetransMs` (10 s by default; RFC 2131 suggests 60 s, too long for short leases).
 * - Lease times are sanity-checked: T1 and T2 must satisfy 0 < T1 < T2 < lease, otherwise the defaults
 *   0.5 and 0.875 of the lease are used (smoltcp e77d02ba). A missing lease time means `defaultLeaseS`;
 *   leases shorter than `minLeaseS` are raised to it. An infinite lease never renews.
 * - No ARP probe of the offered address (RFC 2131 §4.4.1 SHOULD; RFC 5227): not implemented.
 */
import type { Ipv4Address, MacAddress } from "../address.js"
import * as W from "./wire.js"

export type State = "Init" | "Selecting" | "Requesting" | "Bound" | "Renewing" | "Rebinding"

export interface Config {
  readonly retransInitialMs: number
  readonly retransMaxMs: number
  /** Uniform jitter ± this many ms on Selecting/Requesting retransmissions. */
  readonly jitterMs: number
  /** REQUESTs sent in Requesting before starting over with a DISCOVER. */
  readonly requestAttempts: number
  /** Wait after a NAK (or an abandoned Requesting) before the next DISCOVER. */
  readonly restartDelayMs: number
  readonly minRenewRetransMs: number
  readonly defaultLeaseS: number
  readonly minLeaseS: number
}

export const DEFAULT_CONFIG: Config = {
  retransInitialMs: 4000,
  retransMaxMs: 64_000,
  jitterMs: 1000,
  requestAttempts: 4,
  restartDelayMs: 2000,
  minRenewRetransMs: 10_000,
  defaultLeaseS: 3600,
  minLeaseS: 10
}

export const PARAM_LIST: ReadonlyArray<number> = [
  W.OPT_SUBNET_MASK,
  W.OPT_ROUTER,
  W.OPT_LEASE_TIME,
  W.OPT_SERVER_ID,
  W.OPT_RENEWAL_TIME,
  W.OPT_REBINDING_TIME
]

export interface Lease {
  readonly address: Ipv4Address
  readonly prefix: number
  readonly gateway: Ipv4Address | undefined
  readonly serverId: Ipv4Address
  /** Seconds as granted (after sanity checks); `infinite` leases have no timers. */
  readonly leaseS: number
  readonly t1S: number
  readonly t2S: number
  readonly infinite: boolean
  readonly acquiredAtMs: number
}

export type Action =
  | { readonly _tag: "Send"; readonly msg: W.DhcpRepr; readonly dst: Ipv4Address }
  /** Apply the lease to the interface; `renewed` when the address, prefix and gateway did not change. */
  | { readonly _tag: "Bind"; readonly lease: Lease; readonly renewed: boolean }
  /** Stop using the address now. */
  | { readonly _tag: "Unbind"; readonly reason: "Expired" | "Nak"; readonly address: Ipv4Address }

export interface Counters {
  discoversOut: number
  requestsOut: number
  offersIn: number
  acksIn: number
  naksIn: number
  /** Replies not for us or not expected in the current state. */
  ignoredIn: number
  /** Options that were malformed and ignored (counted per message). */
  badOptionsIn: number
  binds: number
  renewals: number
  rebinds: number
  expiries: number
  restarts: number
}

export interface Client {
  state: State
  readonly mac: MacAddress
  readonly cfg: Config
  readonly random: () => number
  xid: number
  transactionStartMs: number
  /** Retransmissions done in this state. */
  attempt: number
  /** Next (re)transmission, or the restart in Init. */
  nextSendMs: number
  offer: { readonly address: Ipv4Address; readonly serverId: Ipv4Address } | undefined
  lease: Lease | undefined
  readonly counters: Counters
}

const BROADCAST = 0xffffffff as Ipv4Address
const ZERO = 0 as Ipv4Address

export const make = (mac: MacAddress, nowMs: number, random: () => number = Math.random, cfg: Partial<Config> = {}): Client => ({
  state: "Init",
  mac,
  cfg: { ...DEFAULT_CONFIG, ...cfg },
  random,
  xid: 0,
  transactionStartMs: nowMs,
  attempt: 0,
  nextSendMs: nowMs,
  offer: undefined,
  lease: undefined,
  counters: {
    discoversOut: 0,
    requestsOut: 0,
    offersIn: 0,
    acksIn: 0,
    naksIn: 0,
    ignoredIn: 0,
    badOptionsIn: 0,
    binds: 0,
    renewals: 0,
    rebinds: 0,
    expiries: 0,
    restarts: 0
  }
})

// ---------------------------------------------------------------------------------------------
// Lease arithmetic
// ---------------------------------------------------------------------------------------------

export const t1At = (l: Lease): number => (l.infinite ? Infinity : l.acquiredAtMs + l.t1S * 1000)
export const t2At = (l: Lease): number => (l.infinite ? Infinity : l.acquiredAtMs + l.t2S * 1000)
export const expiresAt = (l: Lease): number => (l.infinite ? Infinity : l.acquiredAtMs + l.leaseS * 1000)

/** Lease, T1 and T2 in seconds after the sanity checks (see the module comment). */
export const leaseTimes = (
  cfg: Config,
  leaseS: number | undefined,
  renewalS: number | undefined,
  rebindingS: number | undefined
): { readonly leaseS: number; readonly t1S: number; readonly t2S: number; readonly infinite: boolean } => {
  const raw = leaseS ?? cfg.defaultLeaseS
  if (raw === W.INFINITE) return { leaseS: raw, t1S: raw, t2S: raw, infinite: true }
  const l = Math.max(raw, cfg.minLeaseS)
  const t1d = Math.floor(l * 0.5)
  const t2d = Math.floor(l * 0.875)
  const t1 = renewalS !== undefined && renewalS > 0 && renewalS < l ? renewalS : t1d
  const t2 = rebindingS !== undefined && rebindingS > 0 && rebindingS < l ? rebindingS : t2d
  if (t1 < t2) return { leaseS: l, t1S: t1, t2S: t2, infinite: false }
  return { leaseS: l, t1S: t1d, t2S: t2d, infinite: false }
}

/** The classful mask (RFC 1122 §3.3.1.1 fallback) when a server sends none. */
export const naturalPrefix = (a: number): number => {
  const top = a >>> 24
  return top < 128 ? 8 : top < 192 ? 16 : 24
}

/** An address a host may use: not 0/8, loopback, multicast/reserved, nor the subnet's network/broadcast. */
export const isUsableAddress = (a: number, prefix: number): boolean => {
  const top = a >>> 24
  if (top === 0 || top === 127 || top >= 224) return false
  if (prefix <= 30) {
    const host = a & ~(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0)
    const hostMax = (~(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0)) >>> 0
    if (host >>> 0 === 0 || host >>> 0 === hostMax) return false
  }
  return true
}

const sameSubnet = (a: number, b: number, prefix: number): boolean => {
  const m = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
  return ((a & m) >>> 0) === ((b & m) >>> 0)
}

const leaseFrom = (c: Client, m: W.DhcpRepr, serverId: Ipv4Address, nowMs: number): Lease | undefined => {
  const address = m.yiaddr
  const prefix = m.prefix ?? naturalPrefix(address)
  if (!isUsableAddress(address, prefix)) return undefined
  const gw = m.router !== undefined && m.router !== address && sameSubnet(m.router, address, prefix) ? m.router : undefined
  const t = leaseTimes(c.cfg, m.leaseS, m.renewalS, m.rebindingS)
  return { address, prefix, gateway: gw, serverId, ...t, acquiredAtMs: nowMs }
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

const clientId = (mac: MacAddress): Uint8Array => {
  const b = new Uint8Array(7)
  b[0] = W.HTYPE_ETHERNET
  let m = mac as number
  for (let i = 6; i >= 1; i--) {
    b[i] = m % 256
    m = Math.floor(m / 256)
  }
  return b
}

const message = (
  c: Client,
  type: number,
  nowMs: number,
  extra: { ciaddr?: Ipv4Address; requestedIp?: Ipv4Address; serverId?: Ipv4Address }
): W.DhcpRepr => ({
  op: W.OP_REQUEST,
  xid: c.xid,
  secs: Math.min(0xffff, Math.max(0, Math.floor((nowMs - c.transactionStartMs) / 1000))),
  flags: 0,
  ciaddr: extra.ciaddr ?? ZERO,
  yiaddr: ZERO,
  siaddr: ZERO,
  giaddr: ZERO,
  chaddr: c.mac,
  messageType: type,
  ...(extra.requestedIp !== undefined ? { requestedIp: extra.requestedIp } : {}),
  ...(extra.serverId !== undefined ? { serverId: extra.serverId } : {}),
  paramList: PARAM_LIST,
  clientId: clientId(c.mac)
})

const newTransaction = (c: Client, nowMs: number): void => {
  c.xid = Math.floor(c.random() * 0x100000000) >>> 0
  c.transactionStartMs = nowMs
  c.attempt = 0
}

/** Delay before retransmission number `attempt` (0 = after the first send). */
export const backoffMs = (c: Client, attempt: number): number => {
  const base = Math.min(c.cfg.retransMaxMs, c.cfg.retransInitialMs * 2 ** Math.min(attempt, 16))
  const jitter = Math.round((c.random() * 2 - 1) * c.cfg.jitterMs)
  return Math.max(1000, base + jitter)
}

const sendDiscover = (c: Client, nowMs: number, out: Array<Action>): void => {
  c.counters.discoversOut++
  out.push({ _tag: "Send", msg: message(c, W.DHCPDISCOVER, nowMs, {}), dst: BROADCAST })
  c.nextSendMs = nowMs + backoffMs(c, c.attempt)
}

const sendSelectingRequest = (c: Client, nowMs: number, out: Array<Action>): void => {
  const o = c.offer!
  c.counters.requestsOut++
  out.push({ _tag: "Send", msg: message(c, W.DHCPREQUEST, nowMs, { requestedIp: o.address, serverId: o.serverId }), dst: BROADCAST })
  c.nextSendMs = nowMs + backoffMs(c, c.attempt)
}

const sendRenewRequest = (c: Client, nowMs: number, out: Array<Action>, until: number): void => {
  const l = c.lease!
  c.counters.requestsOut++
  const dst = c.state === "Renewing" ? l.serverId : BROADCAST
  out.push({ _tag: "Send", msg: message(c, W.DHCPREQUEST, nowMs, { ciaddr: l.address }), dst })
  c.nextSendMs = nowMs + Math.max(c.cfg.minRenewRetransMs, Math.floor((until - nowMs) / 2))
}

const restart = (c: Client, atMs: number): void => {
  c.state = "Init"
  c.offer = undefined
  c.lease = undefined
  c.attempt = 0
  c.nextSendMs = atMs
  c.counters.restarts++
}

// ---------------------------------------------------------------------------------------------
// Timers
// ---------------------------------------------------------------------------------------------

/** The next time `poll` has something to do. */
export const pollAt = (c: Client): number => {
  switch (c.state) {
    case "Init":
    case "Selecting":
    case "Requesting":
      return c.nextSendMs
    case "Bound":
      return t1At(c.lease!)
    case "Renewing":
      return Math.min(c.nextSendMs, t2At(c.lease!))
    case "Rebinding":
      return Math.min(c.nextSendMs, expiresAt(c.lease!))
  }
}

/** Does whatever is due at `nowMs` (several transitions if the clock jumped). */
export const poll = (c: Client, nowMs: number, out: Array<Action>): void => {
  for (let guard = 0; guard < 8; guard++) {
    if (!step(c, nowMs, out)) return
  }
}

const step = (c: Client, nowMs: number, out: Array<Action>): boolean => {
  switch (c.state) {
    case "Init":
      if (nowMs < c.nextSendMs) return false
      newTransaction(c, nowMs)
      c.state = "Selecting"
      sendDiscover(c, nowMs, out)
      return false
    case "Selecting":
      if (nowMs < c.nextSendMs) return false
      c.attempt++
      sendDiscover(c, nowMs, out)
      return false
    case "Requesting":
      if (nowMs < c.nextSendMs) return false
      c.attempt++
      if (c.attempt >= c.cfg.requestAttempts) {
        restart(c, nowMs)
        return true
      }
      sendSelectingRequest(c, nowMs, out)
      return false
    case "Bound": {
      const l = c.lease!
      if (nowMs < t1At(l)) return false
      c.state = "Renewing"
      c.counters.renewals++
      newTransaction(c, nowMs)
      if (nowMs >= t2At(l)) return true
      sendRenewRequest(c, nowMs, out, t2At(l))
      return false
    }
    case "Renewing": {
      const l = c.lease!
      if (nowMs >= t2At(l)) {
        c.state = "Rebinding"
        c.counters.rebinds++
        newTransaction(c, nowMs)
        if (nowMs >= expiresAt(l)) return true
        sendRenewRequest(c, nowMs, out, expiresAt(l))
        return false
      }
      if (nowMs < c.nextSendMs) return false
      sendRenewRequest(c, nowMs, out, t2At(l))
      return false
    }
    case "Rebinding": {
      const l = c.lease!
      if (nowMs >= expiresAt(l)) {
        c.counters.expiries++
        out.push({ _tag: "Unbind", reason: "Expired", address: l.address })
        restart(c, nowMs)
        return true
      }
      if (nowMs < c.nextSendMs) return false
      sendRenewRequest(c, nowMs, out, expiresAt(l))
      return false
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------------

const bind = (c: Client, lease: Lease, out: Array<Action>): void => {
  const prev = c.lease
  const renewed =
    prev !== undefined && prev.address === lease.address && prev.prefix === lease.prefix && prev.gateway === lease.gateway
  c.lease = lease
  c.offer = undefined
  c.state = "Bound"
  c.attempt = 0
  c.counters.binds++
  out.push({ _tag: "Bind", lease, renewed })
}

/** A received DHCP message (already parsed). Returns false when it was ignored. */
export const input = (c: Client, m: W.DhcpRepr, nowMs: number, out: Array<Action>): boolean => {
  if (m.ignoredOptions !== undefined) c.counters.badOptionsIn++
  if (m.op !== W.OP_REPLY || m.xid !== c.xid || m.chaddr !== c.mac || c.state === "Init" || c.state === "Bound") {
    c.counters.ignoredIn++
    return false
  }
  switch (m.messageType) {
    case W.DHCPOFFER: {
      if (c.state !== "Selecting" || m.serverId === undefined || !isUsableAddress(m.yiaddr, m.prefix ?? naturalPrefix(m.yiaddr))) break
      c.counters.offersIn++
      c.offer = { address: m.yiaddr, serverId: m.serverId }
      c.state = "Requesting"
      c.attempt = 0
      sendSelectingRequest(c, nowMs, out)
      return true
    }
    case W.DHCPACK: {
      if (c.state === "Selecting") break
      let serverId: Ipv4Address
      if (c.state === "Requesting") {
        const o = c.offer!
        if ((m.serverId !== undefined && m.serverId !== o.serverId) || m.yiaddr !== o.address) break
        serverId = o.serverId
      } else {
        const l = c.lease!
        serverId = m.serverId ?? l.serverId
      }
      const lease = leaseFrom(c, m, serverId, nowMs)
      if (lease === undefined) break
      c.counters.acksIn++
      bind(c, lease, out)
      return true
    }
    case W.DHCPNAK: {
      if (c.state === "Selecting") break
      const expected = c.state === "Requesting" ? c.offer!.serverId : c.state === "Renewing" ? c.lease!.serverId : undefined
      if (expected !== undefined && m.serverId !== undefined && m.serverId !== expected) break
      c.counters.naksIn++
      if (c.lease !== undefined) out.push({ _tag: "Unbind", reason: "Nak", address: c.lease.address })
      restart(c, nowMs + c.cfg.restartDelayMs)
      return true
    }
    default:
      break
  }
  c.counters.ignoredIn++
  return false
}

/** A DHCPRELEASE for the current lease (to send at shutdown), or undefined when not bound. */
export const release = (c: Client, nowMs: number): Action | undefined => {
  const l = c.lease
  if (l === undefined || (c.state !== "Bound" && c.state !== "Renewing" && c.state !== "Rebinding")) return undefined
  newTransaction(c, nowMs)
  return { _tag: "Send", msg: message(c, W.DHCPRELEASE, nowMs, { ciaddr: l.address, serverId: l.serverId }), dst: l.serverId }
}
