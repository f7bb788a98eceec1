/**
 * MLDv2 (RFC 3810) as a host needs it: the report announcing the groups we listen to (our solicited-node
 * groups, RFC 4861 §7.2.1, so that switches snooping MLD forward neighbour solicitations to us), and the
 * query, so a shell can answer one. A report goes to ff02::16 with hop limit 1 and a hop-by-hop router
 * alert (§5: `ipv6/wire.emitRouterAlertHbh`), from our link-local address or, before we have one, from ::
 * (§5.2.13). The all-nodes group ff02::1 is never reported (§6).
 */
import { u16, setU16 } from "../bytes.js"
import type { DropReason } from "../drop.js"
import { IPV6_ALL_NODES, multicastScope, readIpv6, writeIpv6, type Ipv6Address } from "../ipv6/address.js"
import * as Wire from "./wire.js"

export const HOP_LIMIT = 1
const RECORD_LEN = 20
const REPORT_HEADER_LEN = 8

// Multicast address record types (§5.2.12)
export const MODE_IS_INCLUDE = 1
export const MODE_IS_EXCLUDE = 2
export const CHANGE_TO_INCLUDE = 3
export const CHANGE_TO_EXCLUDE = 4

export interface McastRecord {
  readonly type: number
  readonly group: Ipv6Address
  /** Number of source addresses in the record (we send none: EXCLUDE {} is "listening to every source"). */
  readonly sources: number
}

/** Whether a group is reported at all: not ff02::1, not interface- or reserved-scope (§6). */
export const isReportable = (group: Ipv6Address): boolean => group !== IPV6_ALL_NODES && multicastScope(group) > 1

export const reportLength = (groups: number): number => REPORT_HEADER_LEN + RECORD_LEN * groups

/**
 * A report with one source-less record of `recordType` per group (CHANGE_TO_EXCLUDE when joining, §6.1;
 * MODE_IS_EXCLUDE when answering a query, §6.2), into exactly reportLength(groups.length) bytes, with its
 * checksum (`pseudo` = pseudoV6(src, ff02::16, 58, length)).
 */
export const emitReport = (b: Uint8Array, groups: ReadonlyArray<Ipv6Address>, recordType: number, pseudo: number): void => {
  b.fill(0, 0, reportLength(groups.length))
  b[0] = Wire.TYPE_MLDV2_REPORT
  setU16(b, 6, groups.length)
  groups.forEach((g, i) => {
    const o = REPORT_HEADER_LEN + RECORD_LEN * i
    b[o] = recordType
    writeIpv6(b, o + 4, g)
  })
  Wire.fillChecksum(b.subarray(0, reportLength(groups.length)), pseudo)
}

/** The records of a report (checksum already verified); records with sources or auxiliary data are walked over. */
export const parseReport = (b: Uint8Array): ReadonlyArray<McastRecord> | DropReason => {
  if (b[0] !== Wire.TYPE_MLDV2_REPORT) return "Unsupported"
  if (b.length < REPORT_HEADER_LEN) return "Truncated"
  const n = u16(b, 6)
  const out: Array<McastRecord> = []
  let o = REPORT_HEADER_LEN
  for (let i = 0; i < n; i++) {
    if (o + RECORD_LEN > b.length) return "Truncated"
    const sources = u16(b, o + 2)
    const len = RECORD_LEN + 16 * sources + 4 * b[o + 1]!
    if (o + len > b.length) return "Truncated"
    out.push({ type: b[o]!, group: readIpv6(b, o + 4), sources })
    o += len
  }
  return out
}

export interface Query {
  /** The multicast address asked about, or :: for a general query. */
  readonly group: Ipv6Address
  /** How long we may wait before answering (§5.1.3). */
  readonly maxResponseDelayMs: number
  /** An MLDv1 query (RFC 2710): 24 bytes, no source list. */
  readonly v1: boolean
}

/** Maximum Response Code to milliseconds: literal below 32768, else a floating-point form (§5.1.3). */
export const maxResponseDelayMs = (code: number): number =>
  code < 0x8000 ? code : ((code & 0x0fff) | 0x1000) * 2 ** (((code >>> 12) & 0x7) + 3)

/** A query (type 130, checksum already verified): 24 bytes is MLDv1, 28 or more MLDv2 (§8.1). */
export const parseQuery = (b: Uint8Array): Query | DropReason => {
  if (b[0] !== Wire.TYPE_MLD_QUERY) return "Unsupported"
  if (b.length < 24) return "Truncated"
  if (b.length > 24 && b.length < 28) return "Malformed"
  const v1 = b.length === 24
  return { group: readIpv6(b, 8), maxResponseDelayMs: v1 ? u16(b, 4) : maxResponseDelayMs(u16(b, 4)), v1 }
}
