/**
 * Neighbor Discovery messages (RFC 4861 §4) over Ethernet: router solicitation and advertisement,
 * neighbour solicitation and advertisement, with the options a host uses (§4.6): source/target link-layer
 * address, prefix information, MTU. Unknown options are skipped (§4.6); redirects (§4.5) are not parsed.
 *
 * `parse` takes a message whose ICMPv6 checksum already verified (`wire.parse`) and applies the validity
 * checks of §6.1.1 (RS), §6.1.2 (RA), §7.1.1 (NS) and §7.1.2 (NA): hop limit 255 (so it came from the
 * link), code 0, the fixed part present, every option of non-zero length inside the message, and the
 * per-type rules on addresses and flags. A link-layer address option must be Ethernet's 6 bytes (RFC 2464
 * §6: option length 1); an MTU option 8 bytes, a prefix option 32: anything else drops the message.
 */
import { readMac, writeMac, type MacAddress } from "../address.js"
import { u16, u32, setU16, setU32 } from "../bytes.js"
import type { DropReason } from "../drop.js"
import { isLinkLocal, isMulticast, isSolicitedNode, isUnspecified, readIpv6, writeIpv6, type Ipv6Address } from "../ipv6/address.js"
import * as Wire from "./wire.js"

export const HOP_LIMIT = 255
/** Prefix options kept from one advertisement; more are ignored. */
export const MAX_PREFIXES = 16

const OPT_SOURCE_LL = 1
const OPT_TARGET_LL = 2
const OPT_PREFIX = 3
const OPT_MTU = 5
const LL_OPT_LEN = 8
const PREFIX_OPT_LEN = 32
const MTU_OPT_LEN = 8

/** Lifetimes of 0xffffffff seconds are infinite (§4.6.2). */
export const INFINITE_LIFETIME = 0xffffffff

export interface PrefixInfo {
  readonly prefix: Ipv6Address
  readonly prefixLen: number
  /** L: the prefix is on-link. */
  readonly onLink: boolean
  /** A: usable for stateless address autoconfiguration (RFC 4862 §5.5.3). */
  readonly autonomous: boolean
  readonly validLifetimeS: number
  readonly preferredLifetimeS: number
}

export type NdRepr =
  | { readonly _tag: "RouterSolicitation"; readonly sourceLinkAddr: MacAddress | undefined }
  | {
      readonly _tag: "RouterAdvertisement"
      /** 0: unspecified by this router. */
      readonly curHopLimit: number
      /** M: addresses from DHCPv6; O: other configuration from DHCPv6. */
      readonly managed: boolean
      readonly other: boolean
      /** 0: not a default router. */
      readonly routerLifetimeS: number
      /** 0: unspecified. */
      readonly reachableTimeMs: number
      readonly retransTimerMs: number
      readonly sourceLinkAddr: MacAddress | undefined
      readonly mtu: number | undefined
      readonly prefixes: ReadonlyArray<PrefixInfo>
    }
  | { readonly _tag: "NeighborSolicitation"; readonly target: Ipv6Address; readonly sourceLinkAddr: MacAddress | undefined }
  | {
      readonly _tag: "NeighborAdvertisement"
      readonly router: boolean
      readonly solicited: boolean
      readonly override: boolean
      readonly target: Ipv6Address
      readonly targetLinkAddr: MacAddress | undefined
    }

/** The IPv6 header fields ND validation needs. */
export interface NdContext {
  readonly src: Ipv6Address
  readonly dst: Ipv6Address
  readonly hopLimit: number
}

const FIXED: Record<number, number> = {
  [Wire.TYPE_ROUTER_SOLICITATION]: 8,
  [Wire.TYPE_ROUTER_ADVERTISEMENT]: 16,
  [Wire.TYPE_NEIGHBOR_SOLICITATION]: 24,
  [Wire.TYPE_NEIGHBOR_ADVERTISEMENT]: 24
}

export const isNd = (type: number): boolean => FIXED[type] !== undefined

/** Parse and validate one ND message `b` (the whole ICMPv6 message, checksum already verified). */
export const parse = (b: Uint8Array, ip: NdContext): NdRepr | DropReason => {
  const fixed = FIXED[b[0]!]
  if (fixed === undefined) return "Unsupported"
  if (ip.hopLimit !== HOP_LIMIT) return "BadHopLimit"
  if (b[1] !== 0) return "NdInvalid"
  if (b.length < fixed) return "Truncated"
  let sll: MacAddress | undefined
  let tll: MacAddress | undefined
  let mtu: number | undefined
  const prefixes: Array<PrefixInfo> = []
  for (let i = fixed; i < b.length; ) {
    if (i + 2 > b.length) return "BadOption"
    const len = b[i + 1]! * 8
    if (len === 0 || i + len > b.length) return "BadOption"
    switch (b[i]) {
      case OPT_SOURCE_LL:
      case OPT_TARGET_LL: {
        if (len !== LL_OPT_LEN) return "BadOption"
        const m = readMac(b, i + 2)
        if (b[i] === OPT_SOURCE_LL) sll ??= m
        else tll ??= m
        break
      }
      case OPT_MTU:
        if (len !== MTU_OPT_LEN) return "BadOption"
        mtu ??= u32(b, i + 4)
        break
      case OPT_PREFIX: {
        if (len !== PREFIX_OPT_LEN || b[i + 2]! > 128) return "BadOption"
        if (prefixes.length < MAX_PREFIXES) {
          prefixes.push({
            prefixLen: b[i + 2]!,
            onLink: (b[i + 3]! & 0x80) !== 0,
            autonomous: (b[i + 3]! & 0x40) !== 0,
            validLifetimeS: u32(b, i + 4),
            preferredLifetimeS: u32(b, i + 8),
            prefix: readIpv6(b, i + 16)
          })
        }
        break
      }
    }
    i += len
  }
  switch (b[0]) {
    case Wire.TYPE_ROUTER_SOLICITATION:
      if (isUnspecified(ip.src) && sll !== undefined) return "NdInvalid" // §6.1.1
      return { _tag: "RouterSolicitation", sourceLinkAddr: sll }
    case Wire.TYPE_ROUTER_ADVERTISEMENT:
      if (!isLinkLocal(ip.src)) return "NdInvalid" // §6.1.2
      return {
        _tag: "RouterAdvertisement",
        curHopLimit: b[4]!,
        managed: (b[5]! & 0x80) !== 0,
        other: (b[5]! & 0x40) !== 0,
        routerLifetimeS: u16(b, 6),
        reachableTimeMs: u32(b, 8),
        retransTimerMs: u32(b, 12),
        sourceLinkAddr: sll,
        mtu,
        prefixes
      }
    case Wire.TYPE_NEIGHBOR_SOLICITATION: {
      const target = readIpv6(b, 8)
      if (isMulticast(target)) return "NdInvalid" // §7.1.1
      if (isUnspecified(ip.src) && (!isSolicitedNode(ip.dst) || sll !== undefined)) return "NdInvalid"
      return { _tag: "NeighborSolicitation", target, sourceLinkAddr: sll }
    }
    default: {
      const target = readIpv6(b, 8)
      const solicited = (b[4]! & 0x40) !== 0
      if (isMulticast(target)) return "NdInvalid" // §7.1.2
      if (isMulticast(ip.dst) && solicited) return "NdInvalid"
      return { _tag: "NeighborAdvertisement", router: (b[4]! & 0x80) !== 0, solicited, override: (b[4]! & 0x20) !== 0, target, targetLinkAddr: tll }
    }
  }
}

/** Bytes `emit` writes for `r`. */
export const length = (r: NdRepr): number => {
  switch (r._tag) {
    case "RouterSolicitation":
      return 8 + (r.sourceLinkAddr !== undefined ? LL_OPT_LEN : 0)
    case "RouterAdvertisement":
      return 16 + (r.sourceLinkAddr !== undefined ? LL_OPT_LEN : 0) + (r.mtu !== undefined ? MTU_OPT_LEN : 0) + PREFIX_OPT_LEN * r.prefixes.length
    case "NeighborSolicitation":
      return 24 + (r.sourceLinkAddr !== undefined ? LL_OPT_LEN : 0)
    case "NeighborAdvertisement":
      return 24 + (r.targetLinkAddr !== undefined ? LL_OPT_LEN : 0)
  }
}

const llOption = (b: Uint8Array, i: number, type: number, m: MacAddress): number => {
  b[i] = type
  b[i + 1] = 1
  writeMac(b, i + 2, m)
  return i + LL_OPT_LEN
}

/**
 * Writes the whole message (exactly `length(r)` bytes) with its checksum. `pseudo` is pseudoV6(src, dst,
 * 58, length(r)); the IPv6 header around it must say hop limit 255.
 */
export const emit = (r: NdRepr, b: Uint8Array, pseudo: number): void => {
  b.fill(0, 0, length(r))
  switch (r._tag) {
    case "RouterSolicitation":
      b[0] = Wire.TYPE_ROUTER_SOLICITATION
      if (r.sourceLinkAddr !== undefined) llOption(b, 8, OPT_SOURCE_LL, r.sourceLinkAddr)
      break
    case "RouterAdvertisement": {
      b[0] = Wire.TYPE_ROUTER_ADVERTISEMENT
      b[4] = r.curHopLimit
      b[5] = (r.managed ? 0x80 : 0) | (r.other ? 0x40 : 0)
      setU16(b, 6, r.routerLifetimeS)
      setU32(b, 8, r.reachableTimeMs)
      setU32(b, 12, r.retransTimerMs)
      // options in the order dnsmasq sends them: prefixes, MTU, source link-layer address
      let i = 16
      for (const p of r.prefixes) {
        b[i] = OPT_PREFIX
        b[i + 1] = 4
        b[i + 2] = p.prefixLen
        b[i + 3] = (p.onLink ? 0x80 : 0) | (p.autonomous ? 0x40 : 0)
        setU32(b, i + 4, p.validLifetimeS)
        setU32(b, i + 8, p.preferredLifetimeS)
        writeIpv6(b, i + 16, p.prefix)
        i += PREFIX_OPT_LEN
      }
      if (r.mtu !== undefined) {
        b[i] = OPT_MTU
        b[i + 1] = 1
        setU32(b, i + 4, r.mtu)
        i += MTU_OPT_LEN
      }
      if (r.sourceLinkAddr !== undefined) llOption(b, i, OPT_SOURCE_LL, r.sourceLinkAddr)
      break
    }
    case "NeighborSolicitation":
      b[0] = Wire.TYPE_NEIGHBOR_SOLICITATION
      writeIpv6(b, 8, r.target)
      if (r.sourceLinkAddr !== undefined) llOption(b, 24, OPT_SOURCE_LL, r.sourceLinkAddr)
      break
    case "NeighborAdvertisement":
      b[0] = Wire.TYPE_NEIGHBOR_ADVERTISEMENT
      b[4] = (r.router ? 0x80 : 0) | (r.solicited ? 0x40 : 0) | (r.override ? 0x20 : 0)
      writeIpv6(b, 8, r.target)
      if (r.targetLinkAddr !== undefined) llOption(b, 24, OPT_TARGET_LL, r.targetLinkAddr)
      break
  }
  Wire.fillChecksum(b.subarray(0, length(r)), pseudo)
}
