/**
 * IPv6 (RFC 8200) beside IPv4, with Neighbor Discovery in the place ARP has for IPv4 (RFC 4861), duplicate
 * address detection for our addresses (RFC 4862 §5.4) and the MLDv2 reports that announce our
 * solicited-node groups (RFC 3810). The pure parts are in `protocols/ipv6` and `protocols/icmpv6`; this is
 * their shell:
 *
 * - input: Ethernet type 0x86dd to our MAC or to the 33:33 MAC of a group we joined; the fixed header, a
 *   source no packet may carry, the destination (an assigned address of ours or a joined group), the
 *   extension header walk (drops counted by reason, parameter problems sent rate limited), reassembly;
 *   then the upper layer registered for the next header. ICMPv6 messages of ND and MLD are handled here,
 *   the other ICMPv6 types go to the handler registered for 58 (`Icmpv6.ts`).
 * - output: source selection, on-link or via a learnt default router, the neighbour cache (packets wait
 *   in it for resolution), fragmentation over the MTU.
 * - one timer fiber ticks the reassembler, the neighbour cache and DAD at their next deadline.
 *
 * Addresses: the link-local address from the MAC (modified EUI-64), always, and the static `--ip6` ones.
 * Each is tentative until DAD passes; a packet to a tentative address is dropped as not for us.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import { isMulticastMac, writeMac, type MacAddress } from "../protocols/address.js"
import * as Cs from "../protocols/checksum.js"
import type { DropReason } from "../protocols/drop.js"
import * as Eth from "../protocols/ethernet/wire.js"
import * as Icmp6 from "../protocols/icmpv6/wire.js"
import * as Mld from "../protocols/icmpv6/mld.js"
import * as Nd from "../protocols/icmpv6/nd.js"
import {
  IPV6_ALL_MLDV2_ROUTERS,
  IPV6_ALL_NODES,
  IPV6_ALL_ROUTERS,
  IPV6_UNSPECIFIED,
  commonPrefixLen,
  formatIpv6,
  inPrefix,
  isInvalidSource,
  isLinkLocal,
  isMulticast,
  isUnspecified,
  interfaceIdFromMac,
  linkLocalFromMac,
  multicastMac,
  multicastScope,
  readIpv6,
  solicitedNode,
  type Ipv6Address
} from "../protocols/ipv6/address.js"
import { Dad, DEFAULT_CONFIG as DAD_DEFAULTS, type DadAction, type DadConfig } from "../protocols/ipv6/dad.js"
import { Slaac, DEFAULT_CONFIG as SLAAC_DEFAULTS, type SlaacAction, type SlaacConfig } from "../protocols/ipv6/slaac.js"
import { NeighborCache, DEFAULT_CONFIG as NEIGHBOR_DEFAULTS, type NeighborAction, type NeighborConfig } from "../protocols/ipv6/neighbor.js"
import { Reassembler, fragmentPlan, writeFragment, DEFAULT_CONFIG as REASSEMBLY_DEFAULTS, type ReassemblyConfig } from "../protocols/ipv6/reassembly.js"
import * as Ip6 from "../protocols/ipv6/wire.js"
import { PLAIN, VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM, type Frame, type VnetMeta } from "../nic/Frame.js"
import { countDrop, type DropCounts } from "./Counters.js"
import { TokenBucket } from "../protocols/tokenBucket.js"
import { Ethernet } from "./Ethernet.js"

/** Offset of the IPv6 header in an outgoing frame, and of the upper-layer data. */
export const IP6_OFFSET = Eth.HEADER_LEN
export const L4_OFFSET6 = Eth.HEADER_LEN + Ip6.HEADER_LEN

/**
 * A received packet handed to an upper layer. `payload` is the upper-layer message (after the extension
 * headers); `packet` the whole IPv6 packet as received or reassembled, for an ICMPv6 error to quote.
 * `linkMulticast`: it came in a link-layer multicast frame (RFC 4443 §2.4 e).
 */
export interface Ipv6Input {
  readonly ip: Ip6.Ipv6Repr
  readonly payload: Uint8Array
  readonly packet: Uint8Array
  readonly linkMulticast: boolean
  readonly nowMs: number
  /**
   * The NIC verified the upper-layer checksum, or the local sender left it partial (virtio DATA_VALID /
   * NEEDS_CSUM): the transport must not verify it. Always false for a reassembled packet.
   */
  readonly checksumTrusted: boolean
}

export type Ipv6Handler = (input: Ipv6Input) => void

export type AddressState = "Tentative" | "Assigned" | "Duplicate"

export interface Ipv6AddressInfo {
  readonly address: Ipv6Address
  readonly prefixLen: number
  readonly state: AddressState
}

export interface Ipv6Stats {
  packetsIn: number
  packetsOut: number
  delivered: number
  fragmentsIn: number
  reassembled: number
  reassemblyTimeouts: number
  reassemblyEvictions: number
  fragmentDuplicates: number
  fragmentsOut: number
  fragmentedOut: number
  noRoute: number
  /** Multicast frames or packets for groups we did not join. */
  notOurGroup: number
  icmpErrorsOut: number
  icmpErrorsRateLimited: number
  /** Errors RFC 4443 §2.4 e forbids (about an error, to a multicast destination, from an unspecified source). */
  icmpErrorsSuppressed: number
  readonly drops: DropCounts
}

export interface NdStats {
  solicitationsIn: number
  solicitationsOut: number
  advertisementsIn: number
  advertisementsOut: number
  routerAdvertisementsIn: number
  routerSolicitationsIn: number
  routerSolicitationsOut: number
  /** Prefix options that formed no SLAAC address, by reason (RFC 4862 §5.5.3). */
  readonly slaacIgnored: Record<string, number>
  dadProbesOut: number
  dadDuplicates: number
  /** An advertisement for an address of ours that already passed DAD: someone else uses it. */
  addressConflicts: number
  mldReportsOut: number
  mldQueriesIn: number
  /** Packets dropped while waiting for resolution (queue full, unreachable, evicted). */
  pendingDrops: number
  readonly drops: DropCounts
}

export interface Ipv6SendOptions {
  readonly hopLimit?: number
  readonly trafficClass?: number
  /** virtio-net metadata (partial checksum, TCPV6 GSO): a GSO super-frame is never fragmented. */
  readonly meta?: VnetMeta
}

/**
 * An ICMPv6 error about a packet we sent (RFC 4443 §2.4 d): the quoted packet names our port and the
 * remote endpoint (the first two 16-bit words of the quoted UDP or TCP header).
 */
export interface Icmpv6ErrorInfo {
  readonly type: number
  readonly code: number
  readonly reporter: Ipv6Address
  readonly remote: Ipv6Address
  readonly localPort: number
  readonly remotePort: number
  readonly nowMs: number
}

export type Icmpv6ErrorHandler = (e: Icmpv6ErrorInfo) => void

export interface Ipv6Shape {
  readonly enabled: boolean
  readonly register: (nextHeader: number, handler: Ipv6Handler) => void
  /** Receive ICMPv6 errors about packets of `nextHeader` we sent (the quote's next header must be it). */
  readonly registerErrorHandler: (nextHeader: number, handler: Icmpv6ErrorHandler) => void
  /** Called by the ICMPv6 layer with a received error's quoted packet (as much of it as came). */
  readonly deliverIcmpError: (type: number, code: number, reporter: Ipv6Address, quoted: Uint8Array, nowMs: number) => void
  readonly linkLocal: Ipv6Address
  readonly addresses: () => ReadonlyArray<Ipv6AddressInfo>
  /** An assigned address of ours (tentative and duplicate ones are not). */
  readonly isOurs: (a: Ipv6Address) => boolean
  /** The source for a packet to `dst` (RFC 6724 in short: same scope, then the longest common prefix), or undefined. */
  readonly selectSource: (dst: Ipv6Address) => Ipv6Address | undefined
  readonly mtu: number
  /** An outgoing frame (from the TX pool, not zeroed) with `l4Len` bytes of upper-layer data at L4_OFFSET6: write them all. */
  readonly alloc: (l4Len: number) => Uint8Array
  /**
   * Fill the IPv6 and Ethernet headers of a frame from `alloc` and send it (through the neighbour cache,
   * fragmented over the MTU). The upper-layer checksum must already be complete (over src and dst). False
   * when there is no route (counted).
   */
  readonly send: (frame: Uint8Array, src: Ipv6Address, dst: Ipv6Address, nextHeader: number, l4Len: number, opts?: Ipv6SendOptions) => boolean
  /** An ICMPv6 error (RFC 4443) about a received packet, when §2.4 e allows it and the rate limit has a token. */
  readonly sendIcmpError: (type: number, code: number, rest: number, invoking: Uint8Array, linkMulticast: boolean) => void
  readonly neighbor: (a: Ipv6Address) => { readonly state: string; readonly mac: MacAddress | undefined } | undefined
  readonly neighborCount: () => number
  readonly stats: Ipv6Stats
  readonly ndStats: NdStats
}

export class Ipv6 extends Context.Tag("@miniperf/Ipv6")<Ipv6, Ipv6Shape>() {}

export interface Ipv6Options {
  /** false: no IPv6 at all (`--no-ipv6`): type 0x86dd stays unknown to the Ethernet layer, nothing is sent. */
  readonly enabled?: boolean
  /** Static addresses (`--ip6`), besides the link-local one. */
  readonly addresses?: ReadonlyArray<{ readonly address: Ipv6Address; readonly prefixLen: number }>
  readonly reassembly?: Partial<ReassemblyConfig>
  readonly neighbor?: Partial<NeighborConfig>
  readonly dad?: Partial<DadConfig>
  readonly defaultHopLimit?: number
  readonly icmpErrorBurst?: number
  readonly icmpErrorRate?: number
  /**
   * Stateless address autoconfiguration (RFC 4862): router solicitations at start, an address for each
   * autonomous /64 prefix that router advertisements carry. Default off (the program turns it on when no
   * `--ip6` is given).
   */
  readonly slaac?: boolean
  readonly slaacConfig?: Partial<SlaacConfig>
  /** A static default router (`--gw6`), used besides the routers advertisements announce, never expiring. */
  readonly gateway?: Ipv6Address
  /** Randomness for DAD delays and ReachableTime (tests pass a seeded one); default Math.random. */
  readonly random?: () => number
  /** Where address events go ("... assigned", "... duplicate"); default nowhere. */
  readonly print?: (line: string) => void
}

const MAX_ROUTERS = 8
const MAX_PREFIXES = 16

interface Router {
  readonly address: Ipv6Address
  expiresMs: number
  /** `--gw6`: kept whatever advertisements say. */
  readonly static?: boolean
}
interface OnLinkPrefix {
  readonly prefix: Ipv6Address
  readonly prefixLen: number
  expiresMs: number
}

const ND_TYPES = new Set([
  Icmp6.TYPE_ROUTER_SOLICITATION,
  Icmp6.TYPE_ROUTER_ADVERTISEMENT,
  Icmp6.TYPE_NEIGHBOR_SOLICITATION,
  Icmp6.TYPE_NEIGHBOR_ADVERTISEMENT,
  Icmp6.TYPE_REDIRECT,
  Icmp6.TYPE_MLD_QUERY,
  Icmp6.TYPE_MLDV2_REPORT,
  131, // MLDv1 report
  132 // MLDv1 done
])

export const make = (opts: Ipv6Options = {}) =>
  Effect.gen(function* () {
    const eth = yield* Ethernet
    const enabled = opts.enabled ?? true
    const mtu = Math.max(Ip6.MIN_MTU, eth.caps.ipMtu)
    const random = opts.random ?? Math.random
    const print = opts.print ?? (() => {})
    const hopDefault = opts.defaultHopLimit ?? 64
    const reasm = new Reassembler({ ...REASSEMBLY_DEFAULTS, ...opts.reassembly })
    const nc = new NeighborCache<Frame>({ ...NEIGHBOR_DEFAULTS, ...opts.neighbor }, random)
    const dad = new Dad({ ...DAD_DEFAULTS, ...opts.dad }, random)
    const handlers: Array<Ipv6Handler | undefined> = new Array(256).fill(undefined)
    const errorHandlers: Array<Icmpv6ErrorHandler | undefined> = new Array(256).fill(undefined)
    const stats: Ipv6Stats = {
      packetsIn: 0,
      packetsOut: 0,
      delivered: 0,
      fragmentsIn: 0,
      reassembled: 0,
      reassemblyTimeouts: 0,
      reassemblyEvictions: 0,
      fragmentDuplicates: 0,
      fragmentsOut: 0,
      fragmentedOut: 0,
      noRoute: 0,
      notOurGroup: 0,
      icmpErrorsOut: 0,
      icmpErrorsRateLimited: 0,
      icmpErrorsSuppressed: 0,
      drops: {}
    }
    const ndStats: NdStats = {
      solicitationsIn: 0,
      solicitationsOut: 0,
      advertisementsIn: 0,
      advertisementsOut: 0,
      routerAdvertisementsIn: 0,
      routerSolicitationsIn: 0,
      routerSolicitationsOut: 0,
      slaacIgnored: {},
      dadProbesOut: 0,
      dadDuplicates: 0,
      addressConflicts: 0,
      mldReportsOut: 0,
      mldQueriesIn: 0,
      pendingDrops: 0,
      drops: {}
    }

    const linkLocal = linkLocalFromMac(eth.mac)
    /** `auto`: formed by SLAAC; its prefix is not on-link because of it (RFC 5942: only the L flag says so). */
    const configured: Array<{ readonly address: Ipv6Address; readonly prefixLen: number; readonly auto?: boolean }> = [
      { address: linkLocal, prefixLen: 64 }
    ]
    for (const a of opts.addresses ?? []) if (a.address !== linkLocal) configured.push(a)
    /** Groups we listen to: all-nodes and the solicited-node group of each address (joined while tentative already). */
    const groups = new Set<Ipv6Address>([IPV6_ALL_NODES])
    const groupMacs = new Set<MacAddress>([multicastMac(IPV6_ALL_NODES)])
    const join = (g: Ipv6Address): void => {
      groups.add(g)
      groupMacs.add(multicastMac(g))
    }
    /** Leave a solicited-node group no remaining address needs (its MAC too, when no other group maps to it). */
    const leave = (g: Ipv6Address): void => {
      if (g === IPV6_ALL_NODES || configured.some((c) => solicitedNode(c.address) === g)) return
      groups.delete(g)
      const m = multicastMac(g)
      if (![...groups].some((x) => multicastMac(x) === m)) groupMacs.delete(m)
    }
    const routers: Array<Router> = []
    if (opts.gateway !== undefined) routers.push({ address: opts.gateway, expiresMs: Infinity, static: true })
    let slaac: Slaac | undefined
    const prefixes: Array<OnLinkPrefix> = []

    const isOurs = (a: Ipv6Address): boolean => dad.isAssigned(a)
    const addresses = (): ReadonlyArray<Ipv6AddressInfo> =>
      configured.map((c) => ({ address: c.address, prefixLen: c.prefixLen, state: dad.state(c.address) ?? "Tentative" }))

    const selectSource = (dst: Ipv6Address): Ipv6Address | undefined => {
      const wantLinkLocal = isLinkLocal(dst) || (isMulticast(dst) && multicastScope(dst) <= 2)
      let best: Ipv6Address | undefined
      let bestLen = -1
      const nowMs = slaac === undefined ? 0 : eth.nowMs()
      for (const c of configured) {
        if (!dad.isAssigned(c.address)) continue
        if (isLinkLocal(c.address) !== wantLinkLocal) continue
        // RFC 6724 rule 3: a deprecated address only when nothing else fits (it ranks below every preferred one)
        const l = commonPrefixLen(c.address, dst) - (c.auto === true && slaac!.isDeprecated(c.address, nowMs) ? 129 : 0)
        if (l > bestLen) {
          best = c.address
          bestLen = l
        }
      }
      if (best !== undefined) return best
      return dad.isAssigned(linkLocal) ? linkLocal : undefined
    }

    /** Next hop for a unicast destination: itself when on-link, a default router otherwise, undefined when none. */
    const nextHop = (dst: Ipv6Address, nowMs: number): Ipv6Address | undefined => {
      if (isLinkLocal(dst)) return dst
      for (const c of configured) if (c.address !== linkLocal && c.auto !== true && inPrefix(dst, c.address, c.prefixLen)) return dst
      for (const p of prefixes) if (p.expiresMs > nowMs && inPrefix(dst, p.prefix, p.prefixLen)) return dst
      for (const r of routers) if (r.expiresMs > nowMs) return r.address
      return undefined
    }

    // ---------------------------------------------------------------------------------------------------------
    // Output

    const alloc = (l4Len: number): Uint8Array => eth.allocTx(L4_OFFSET6 + l4Len)
    let wakeTimer: () => void = () => {}
    const ncOut: Array<NeighborAction<Frame>> = []

    const runNeighborActions = (): void => {
      if (ncOut.length === 0) return
      for (const a of ncOut) {
        switch (a._tag) {
          case "Send":
            writeMac(a.packet.data, 0, a.mac)
            eth.send(a.packet)
            break
          case "Drop":
            ndStats.pendingDrops++
            countDrop(ndStats.drops, a.reason)
            break
          case "Solicit":
            sendNs(a.target, a.unicast)
            break
          case "RouterLost": {
            const i = routers.findIndex((r) => r.address === a.ip)
            if (i >= 0) routers.splice(i, 1)
            break
          }
        }
      }
      ncOut.length = 0
      wakeTimer()
    }

    /** A frame whose IPv6 header is written: to the group's MAC, or through the neighbour cache to `hop`. */
    const output = (frame: Frame, dst: Ipv6Address, hop: Ipv6Address): void => {
      stats.packetsOut++
      if (isMulticast(dst)) {
        writeMac(frame.data, 0, multicastMac(dst))
        eth.send(frame)
        return
      }
      const m = nc.resolve(hop, frame, eth.nowMs(), ncOut)
      if (m !== undefined) {
        writeMac(frame.data, 0, m)
        eth.send(frame)
      }
      runNeighborActions()
    }

    let ident = (random() * 0x100000000) >>> 0

    const send = (frame: Uint8Array, src: Ipv6Address, dst: Ipv6Address, nextHeader: number, l4Len: number, o?: Ipv6SendOptions): boolean => {
      if (!enabled) return false
      const hop = isMulticast(dst) ? dst : nextHop(dst, eth.nowMs())
      if (hop === undefined) {
        stats.noRoute++
        return false
      }
      Ip6.emitFields(frame.subarray(IP6_OFFSET), src, dst, nextHeader, l4Len, o?.hopLimit ?? hopDefault, o?.trafficClass ?? 0, 0)
      Eth.emitFields(frame, 0, eth.mac, Eth.ETHERTYPE_IPV6)
      const meta = o?.meta ?? PLAIN
      if (Ip6.HEADER_LEN + l4Len <= mtu || meta.gsoType !== 0) {
        output({ data: frame.subarray(0, L4_OFFSET6 + l4Len), meta }, dst, hop)
        return true
      }
      // RFC 8200 §4.5: an unpredictable identification per packet (RFC 7739), fragments of at most the MTU.
      ident = (ident + 1 + ((random() * 0x10000) >>> 0)) >>> 0
      const plan = fragmentPlan(l4Len, mtu)
      const packet = frame.subarray(IP6_OFFSET, L4_OFFSET6 + l4Len)
      stats.fragmentedOut++
      for (let i = 0; i < plan.length; i++) {
        const [off, len] = plan[i]!
        const f = eth.allocTx(L4_OFFSET6 + Ip6.FRAGMENT_HEADER_LEN + len)
        Eth.emitFields(f, 0, eth.mac, Eth.ETHERTYPE_IPV6)
        writeFragment(f, IP6_OFFSET, packet, off, len, i < plan.length - 1, ident)
        stats.fragmentsOut++
        output({ data: f, meta: PLAIN }, dst, hop)
      }
      return true
    }

    /** An ICMPv6 message of `len` bytes written by `fill` (checksum included) from `src` to `dst`. */
    const sendIcmp = (src: Ipv6Address, dst: Ipv6Address, len: number, hopLimit: number, fill: (b: Uint8Array, pseudo: number) => void): boolean => {
      const f = alloc(len)
      fill(f.subarray(L4_OFFSET6, L4_OFFSET6 + len), Cs.pseudoV6(src, dst, Ip6.NH_ICMPV6, len))
      return send(f, src, dst, Ip6.NH_ICMPV6, len, { hopLimit })
    }

    /** An ND message written whole here (its source may be ::, which `sendIcmp` would not choose), hop limit 255. */
    const sendNd = (r: Nd.NdRepr, src: Ipv6Address, dst: Ipv6Address, linkDst: MacAddress): void => {
      const len = Nd.length(r)
      const f = alloc(len)
      Nd.emit(r, f.subarray(L4_OFFSET6, L4_OFFSET6 + len), Cs.pseudoV6(src, dst, Ip6.NH_ICMPV6, len))
      Ip6.emitFields(f.subarray(IP6_OFFSET), src, dst, Ip6.NH_ICMPV6, len, Nd.HOP_LIMIT)
      Eth.emitFields(f, linkDst, eth.mac, Eth.ETHERTYPE_IPV6)
      stats.packetsOut++
      eth.send({ data: f.subarray(0, L4_OFFSET6 + len), meta: PLAIN })
    }

    /** Address resolution (to the target's solicited-node group) or a unicast probe (RFC 4861 §7.2.2, §7.3.3). */
    const sendNs = (target: Ipv6Address, unicast: MacAddress | undefined): void => {
      const src = selectSource(target)
      if (src === undefined) return
      const dst = unicast === undefined ? solicitedNode(target) : target
      sendNd({ _tag: "NeighborSolicitation", target, sourceLinkAddr: eth.mac }, src, dst, unicast ?? multicastMac(dst))
      ndStats.solicitationsOut++
    }

    const sendDadProbe = (target: Ipv6Address): void => {
      const dst = solicitedNode(target)
      sendNd({ _tag: "NeighborSolicitation", target, sourceLinkAddr: undefined }, IPV6_UNSPECIFIED, dst, multicastMac(dst))
      ndStats.dadProbesOut++
    }

    const sendNa = (target: Ipv6Address, dst: Ipv6Address, solicited: boolean): void => {
      const r: Nd.NdRepr = { _tag: "NeighborAdvertisement", router: false, solicited, override: true, target, targetLinkAddr: eth.mac }
      if (sendIcmp(target, dst, Nd.length(r), Nd.HOP_LIMIT, (b, pseudo) => Nd.emit(r, b, pseudo))) ndStats.advertisementsOut++
    }

    /**
     * A router solicitation to all routers (RFC 4861 §6.3.7): from our link-local address with our MAC, or from ::
     * without it while that address is still tentative (§4.1).
     */
    const sendRs = (): void => {
      const fromLinkLocal = dad.isAssigned(linkLocal)
      const r: Nd.NdRepr = { _tag: "RouterSolicitation", sourceLinkAddr: fromLinkLocal ? eth.mac : undefined }
      sendNd(r, fromLinkLocal ? linkLocal : IPV6_UNSPECIFIED, IPV6_ALL_ROUTERS, multicastMac(IPV6_ALL_ROUTERS))
      ndStats.routerSolicitationsOut++
    }

    /** An MLDv2 report (RFC 3810 §5.2): hop limit 1, a router alert, to ff02::16, from our link-local address or ::. */
    const sendReport = (gs: ReadonlyArray<Ipv6Address>, recordType: number): void => {
      const rep = gs.filter(Mld.isReportable)
      if (rep.length === 0) return
      const src = dad.isAssigned(linkLocal) ? linkLocal : IPV6_UNSPECIFIED
      const dst = IPV6_ALL_MLDV2_ROUTERS
      const mlen = Mld.reportLength(rep.length)
      const len = Ip6.ROUTER_ALERT_HBH_LEN + mlen
      const f = alloc(len)
      Ip6.emitRouterAlertHbh(f, L4_OFFSET6, Ip6.NH_ICMPV6)
      const at = L4_OFFSET6 + Ip6.ROUTER_ALERT_HBH_LEN
      Mld.emitReport(f.subarray(at, at + mlen), rep, recordType, Cs.pseudoV6(src, dst, Ip6.NH_ICMPV6, mlen))
      Ip6.emitFields(f.subarray(IP6_OFFSET), src, dst, Ip6.NH_HOP_BY_HOP, len, Mld.HOP_LIMIT)
      Eth.emitFields(f, multicastMac(dst), eth.mac, Eth.ETHERTYPE_IPV6)
      stats.packetsOut++
      ndStats.mldReportsOut++
      eth.send({ data: f.subarray(0, L4_OFFSET6 + len), meta: PLAIN })
    }

    // ICMPv6 errors: RFC 4443 §2.4 e, then a token bucket (§2.4 f).
    const burst = opts.icmpErrorBurst ?? 50
    const rate = opts.icmpErrorRate ?? 1000
    const icmpErrors = new TokenBucket(rate, burst, eth.nowMs())
    const sendIcmpError = (type: number, code: number, rest: number, invoking: Uint8Array, linkMulticast: boolean): void => {
      const ip = Ip6.parseQuoted(invoking)
      if (typeof ip === "string") return
      const errorOrRedirect =
        ip.nextHeader === Ip6.NH_ICMPV6 && invoking.length > Ip6.HEADER_LEN && (Icmp6.isError(invoking[Ip6.HEADER_LEN]!) || invoking[Ip6.HEADER_LEN] === Icmp6.TYPE_REDIRECT)
      const evenIfMulticast = type === Icmp6.TYPE_PACKET_TOO_BIG || (type === Icmp6.TYPE_PARAM_PROBLEM && code === Icmp6.CODE_UNRECOGNIZED_OPTION)
      if (!Icmp6.errorAllowed({ src: ip.src, dst: ip.dst, linkMulticast, errorOrRedirect }, evenIfMulticast)) {
        stats.icmpErrorsSuppressed++
        return
      }
      if (icmpErrors.refill(eth.nowMs()) < 1) {
        stats.icmpErrorsRateLimited++
        return
      }
      const src = isOurs(ip.dst) ? ip.dst : selectSource(ip.src)
      if (src === undefined) return
      icmpErrors.spend()
      const len = Icmp6.errorLength(invoking.length)
      if (sendIcmp(src, ip.src, len, hopDefault, (b, pseudo) => Icmp6.emitError(b, type, code, rest, invoking, pseudo))) stats.icmpErrorsOut++
    }

    // ---------------------------------------------------------------------------------------------------------
    // DAD

    const dadOut: Array<DadAction> = []
    const runDadActions = (): void => {
      for (const a of dadOut) {
        switch (a._tag) {
          case "Report":
            sendReport([solicitedNode(a.address)], Mld.CHANGE_TO_EXCLUDE)
            break
          case "Probe":
            sendDadProbe(a.address)
            break
          case "Assigned":
            print(`IPv6 address ${formatIpv6(a.address)}/${configured.find((c) => c.address === a.address)?.prefixLen ?? 64} assigned`)
            break
          case "Announce":
            sendNa(a.address, IPV6_ALL_NODES, false)
            break
          case "Duplicate":
            ndStats.dadDuplicates++
            if (slaac?.has(a.address) === true) {
              slaac.duplicate(a.address)
              removeAddress(a.address)
            }
            print(
              `IPv6 address ${formatIpv6(a.address)} is a duplicate (another node on the link uses it); not used` +
                (a.address === linkLocal ? " (link-local: IPv6 needs manual attention on this interface, RFC 4862 §5.4.5)" : "")
            )
            break
        }
      }
      dadOut.length = 0
    }

    // ---------------------------------------------------------------------------------------------------------
    // SLAAC (RFC 4862 §5.5) and router solicitations

    /** An address leaves: DAD forgets it, its solicited-node group is left when no other address needs it. */
    function removeAddress(a: Ipv6Address): void {
      const i = configured.findIndex((c) => c.address === a)
      if (i < 0) return
      configured.splice(i, 1)
      dad.remove(a)
      leave(solicitedNode(a))
    }

    const slaacOut: Array<SlaacAction> = []
    const runSlaacActions = (nowMs: number): void => {
      if (slaac === undefined) return
      Object.assign(ndStats.slaacIgnored, Object.fromEntries(Object.entries(slaac.ignored).filter(([, n]) => n > 0)))
      if (slaacOut.length === 0) return
      for (const a of slaacOut) {
        switch (a._tag) {
          case "Solicit":
            sendRs()
            break
          case "Add":
            configured.push({ address: a.address, prefixLen: a.prefixLen, auto: true })
            join(solicitedNode(a.address))
            dad.add(a.address, nowMs, dadOut, true)
            print(`IPv6 address ${formatIpv6(a.address)}/${a.prefixLen} from a router advertisement (SLAAC), tentative until DAD`)
            break
          case "Remove":
            removeAddress(a.address)
            print(`IPv6 address ${formatIpv6(a.address)}/64 removed: its valid lifetime ended`)
            break
        }
      }
      slaacOut.length = 0
      runDadActions()
    }

    // ---------------------------------------------------------------------------------------------------------
    // Input: ND and MLD

    let mldReportAtMs = Infinity

    const ndInput = (ip: Ip6.Ipv6Repr, msg: Uint8Array, ethSrc: MacAddress, nowMs: number): void => {
      const type = msg[0]!
      if (type === Icmp6.TYPE_MLD_QUERY) {
        ndStats.mldQueriesIn++
        const q = Mld.parseQuery(msg)
        if (typeof q === "string") {
          countDrop(ndStats.drops, q)
          return
        }
        if (q.v1) return // we speak MLDv2 only (RFC 3810 §8 compatibility not implemented)
        const at = nowMs + Math.floor(random() * q.maxResponseDelayMs)
        if (at < mldReportAtMs) mldReportAtMs = at
        wakeTimer()
        return
      }
      if (!Nd.isNd(type)) return // MLD reports of others, redirects: nothing for a host without routes to fix
      const r = Nd.parse(msg, ip)
      if (typeof r === "string") {
        countDrop(ndStats.drops, r)
        return
      }
      switch (r._tag) {
        case "NeighborSolicitation": {
          ndStats.solicitationsIn++
          if (ethSrc === eth.mac) return // our own probe looped back
          const fromUnspecified = isUnspecified(ip.src)
          if (dad.onSolicitation(r.target, fromUnspecified, dadOut)) {
            runDadActions()
            return
          }
          if (!isOurs(r.target)) {
            countDrop(ndStats.drops, "NotForUs")
            return
          }
          if (fromUnspecified) {
            // someone's DAD for an address we hold: defend it (RFC 4861 §7.2.4, to all-nodes, S clear)
            sendNa(r.target, IPV6_ALL_NODES, false)
            return
          }
          if (r.sourceLinkAddr !== undefined) nc.learn(ip.src, r.sourceLinkAddr, nowMs, ncOut)
          runNeighborActions()
          sendNa(r.target, ip.src, true)
          return
        }
        case "NeighborAdvertisement": {
          ndStats.advertisementsIn++
          if (ethSrc === eth.mac) return
          const st = dad.state(r.target)
          if (dad.onAdvertisement(r.target, dadOut)) {
            if (st === "Assigned") ndStats.addressConflicts++
            runDadActions()
            return
          }
          nc.onAdvertisement(r.target, r.targetLinkAddr, r, nowMs, ncOut)
          runNeighborActions()
          return
        }
        case "RouterAdvertisement": {
          ndStats.routerAdvertisementsIn++
          if (r.sourceLinkAddr !== undefined) nc.learn(ip.src, r.sourceLinkAddr, nowMs, ncOut, true)
          if (r.reachableTimeMs !== 0) nc.setBaseReachableTime(r.reachableTimeMs, nowMs)
          if (r.retransTimerMs !== 0) nc.setRetransTimer(r.retransTimerMs)
          const ri = routers.findIndex((x) => x.address === ip.src)
          if (ri >= 0 && routers[ri]!.static === true) {
            // --gw6: the administrator's router stays whatever it advertises
          } else if (r.routerLifetimeS === 0) {
            if (ri >= 0) routers.splice(ri, 1)
          } else if (ri >= 0) routers[ri]!.expiresMs = nowMs + r.routerLifetimeS * 1000
          else if (routers.length < MAX_ROUTERS) routers.push({ address: ip.src, expiresMs: nowMs + r.routerLifetimeS * 1000 })
          for (const p of r.prefixes) {
            if (!p.onLink || isLinkLocal(p.prefix)) continue // RFC 4861 §6.3.4: the link-local prefix is ignored
            const exp = p.validLifetimeS === Nd.INFINITE_LIFETIME ? Infinity : nowMs + p.validLifetimeS * 1000
            const pi = prefixes.findIndex((x) => x.prefixLen === p.prefixLen && inPrefix(x.prefix, p.prefix, p.prefixLen))
            if (pi >= 0) prefixes[pi]!.expiresMs = exp
            else if (p.validLifetimeS !== 0 && prefixes.length < MAX_PREFIXES) prefixes.push({ prefix: p.prefix, prefixLen: p.prefixLen, expiresMs: exp })
          }
          runNeighborActions()
          if (slaac !== undefined) {
            slaac.onAdvertisement(r.prefixes, nowMs, slaacOut)
            runSlaacActions(nowMs)
            wakeTimer() // DAD for a new address, the end of the solicitations (never from the timer fiber itself)
          }
          return
        }
        case "RouterSolicitation":
          ndStats.routerSolicitationsIn++ // hosts ignore them (RFC 4861 §6.2.6)
          return
      }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Input

    const deliver = (
      ip: Ip6.Ipv6Repr,
      packet: Uint8Array,
      proto: number,
      offset: number,
      namedAt: number,
      linkMulticast: boolean,
      ethSrc: MacAddress,
      nowMs: number,
      checksumTrusted: boolean
    ): void => {
      const payload = packet.subarray(offset, Ip6.HEADER_LEN + ip.payloadLen)
      if (proto === Ip6.NH_ICMPV6 && payload.length > 0 && ND_TYPES.has(payload[0]!)) {
        const r = Icmp6.parse(payload, Cs.pseudoV6(ip.src, ip.dst, Ip6.NH_ICMPV6, payload.length))
        if (typeof r === "string") {
          countDrop(ndStats.drops, r)
          return
        }
        stats.delivered++
        ndInput(ip, payload, ethSrc, nowMs)
        return
      }
      const h = handlers[proto]
      if (h === undefined) {
        countDrop(stats.drops, "UnknownNextHeader")
        sendIcmpError(Icmp6.TYPE_PARAM_PROBLEM, Icmp6.CODE_UNRECOGNIZED_NEXT_HEADER, namedAt, packet.subarray(0, Ip6.HEADER_LEN + ip.payloadLen), linkMulticast)
        return
      }
      stats.delivered++
      h({ ip, payload, packet, linkMulticast, nowMs, checksumTrusted })
    }

    const deliverIcmpError = (type: number, code: number, reporter: Ipv6Address, quoted: Uint8Array, nowMs: number): void => {
      // One of ours: version 6, our address as its source, the transport header's ports right after the
      // fixed header (a quote with extension headers before them is not from us: we send none but fragments,
      // and only the first fragment would carry the ports).
      if (quoted.length < Ip6.HEADER_LEN + 4 || quoted[0]! >> 4 !== 6) return
      const src = readIpv6(quoted, 8)
      if (!isOurs(src)) return
      const handler = errorHandlers[quoted[6]!]
      if (handler === undefined) return
      const o = Ip6.HEADER_LEN
      handler({
        type,
        code,
        reporter,
        remote: readIpv6(quoted, 24),
        localPort: (quoted[o]! << 8) | quoted[o + 1]!,
        remotePort: (quoted[o + 2]! << 8) | quoted[o + 3]!,
        nowMs
      })
    }

    const input = (frame: Frame, nowMs: number): void => {
      const ethDst = Eth.dst(frame.data)
      const linkMulticast = isMulticastMac(ethDst)
      if (linkMulticast && !groupMacs.has(ethDst)) {
        stats.notOurGroup++
        return
      }
      const b = Eth.payload(frame.data)
      stats.packetsIn++
      const ip = Ip6.parse(b)
      if (typeof ip === "string") {
        countDrop(stats.drops, ip)
        return
      }
      if (isInvalidSource(ip.src)) {
        countDrop(stats.drops, "MartianSource")
        return
      }
      if (isMulticast(ip.dst)) {
        if (!groups.has(ip.dst)) {
          stats.notOurGroup++
          return
        }
      } else if (!isOurs(ip.dst)) {
        countDrop(stats.drops, "NotForUs")
        return
      }
      const c = Ip6.walk(b, ip)
      switch (c._tag) {
        case "Drop":
          countDrop(stats.drops, c.reason)
          if (c.problem !== undefined) {
            sendIcmpError(Icmp6.TYPE_PARAM_PROBLEM, c.problem.code, c.problem.pointer, b.subarray(0, Ip6.HEADER_LEN + ip.payloadLen), linkMulticast && !c.problem.evenIfMulticast)
          }
          return
        case "Upper":
          deliver(ip, b, c.proto, c.offset, c.namedAt, linkMulticast, Eth.src(frame.data), nowMs, (frame.meta.flags & (VNET_F_DATA_VALID | VNET_F_NEEDS_CSUM)) !== 0)
          return
        case "Fragment": {
          stats.fragmentsIn++
          const whole = reasm.add(b, ip, c, nowMs)
          stats.reassemblyEvictions = reasm.evictions
          stats.fragmentDuplicates = reasm.duplicates
          if (whole === undefined) return
          if (typeof whole === "string") {
            countDrop(stats.drops, whole as DropReason)
            return
          }
          stats.reassembled++
          const ip2 = Ip6.parse(whole)
          if (typeof ip2 === "string") {
            countDrop(stats.drops, ip2)
            return
          }
          const c2 = Ip6.walk(whole, ip2)
          if (c2._tag !== "Upper") {
            countDrop(stats.drops, c2._tag === "Drop" ? c2.reason : "Malformed")
            return
          }
          deliver(ip2, whole, c2.proto, c2.offset, c2.namedAt, linkMulticast, Eth.src(frame.data), nowMs, false)
          return
        }
      }
    }

    // ---------------------------------------------------------------------------------------------------------
    // The timer fiber: reassembly, neighbour cache, DAD and the MLD query answer, each at its next deadline.

    const tick = (now: number): void => {
      for (const t of reasm.expire(now)) {
        sendIcmpError(Icmp6.TYPE_TIME_EXCEEDED, Icmp6.CODE_REASSEMBLY_TIME_EXCEEDED, 0, t.firstFragment, false)
      }
      stats.reassemblyTimeouts = reasm.timeouts
      nc.tick(now, ncOut)
      runNeighborActions()
      dad.tick(now, dadOut)
      runDadActions()
      if (slaac !== undefined) {
        slaac.tick(now, slaacOut)
        runSlaacActions(now)
      }
      if (mldReportAtMs <= now) {
        mldReportAtMs = Infinity
        sendReport(
          configured.filter((c) => dad.state(c.address) !== "Duplicate").map((c) => solicitedNode(c.address)),
          Mld.MODE_IS_EXCLUDE
        )
      }
    }

    const nextDeadline = (): number => {
      let t = mldReportAtMs
      const r = reasm.nextDeadline()
      if (r !== undefined && r < t) t = r
      const n = nc.nextDeadline()
      if (n !== undefined && n < t) t = n
      const d = dad.nextDeadline()
      if (d !== undefined && d < t) t = d
      if (slaac !== undefined) t = Math.min(t, slaac.nextDeadline())
      return t
    }

    if (enabled) {
      eth.register(Eth.ETHERTYPE_IPV6, input)
      const wake = yield* Queue.sliding<void>(1)
      let sleepingUntil = Infinity
      wakeTimer = () => {
        if (nextDeadline() < sleepingUntil) wake.unsafeOffer(undefined)
      }
      const now0 = yield* Clock.currentTimeMillis
      if (opts.slaac === true) slaac = new Slaac({ ...SLAAC_DEFAULTS, ...opts.slaacConfig }, interfaceIdFromMac(eth.mac), now0, random)
      for (const c of configured) {
        join(solicitedNode(c.address))
        dad.add(c.address, now0, dadOut, true)
      }
      runDadActions()
      yield* eth.flush
      yield* Effect.gen(function* () {
        while (true) {
          const now = yield* Clock.currentTimeMillis
          const due = nextDeadline()
          // at most a minute asleep: ReachableTime is re-drawn every few hours by tick, routers and prefixes expire lazily
          const waitMs = Math.max(0, Math.min(60_000, due - now))
          sleepingUntil = now + waitMs
          yield* Effect.raceFirst(Queue.take(wake), Effect.sleep(Duration.millis(waitMs)))
          sleepingUntil = Infinity
          const t = yield* Clock.currentTimeMillis
          tick(t)
          yield* eth.flush
        }
      }).pipe(Effect.forkScoped)
    }

    return Ipv6.of({
      enabled,
      register: (nh, h) => void (handlers[nh] = h),
      registerErrorHandler: (nh, h) => void (errorHandlers[nh] = h),
      deliverIcmpError,
      linkLocal,
      addresses,
      isOurs,
      selectSource,
      mtu,
      alloc,
      send,
      sendIcmpError,
      neighbor: (a) => {
        const e = nc.lookup(a)
        return e === undefined ? undefined : { state: e.state, mac: e.mac }
      },
      neighborCount: () => nc.size,
      stats,
      ndStats
    })
  })

export const layer = (opts: Ipv6Options = {}): Layer.Layer<Ipv6, never, Ethernet> => Layer.scoped(Ipv6, make(opts))
