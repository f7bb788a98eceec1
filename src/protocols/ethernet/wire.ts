/** Ethernet II framing (IEEE 802.3 with an EtherType). No 802.1Q tags: tagged frames parse with etherType 0x8100 and are dropped upstream. */
import { readMac, writeMac, type MacAddress } from "../address.js"
import { u16, setU16 } from "../bytes.js"
import type { DropReason } from "../drop.js"

export const HEADER_LEN = 14
const F = { DST: 0, SRC: 6, ETHERTYPE: 12 } as const

export const ETHERTYPE_IPV4 = 0x0800
export const ETHERTYPE_ARP = 0x0806
export const ETHERTYPE_IPV6 = 0x86dd
export const ETHERTYPE_VLAN = 0x8100

export interface EthernetRepr {
  readonly dst: MacAddress
  readonly src: MacAddress
  readonly etherType: number
}

export const checkLen = (b: Uint8Array): boolean => b.length >= HEADER_LEN

export const dst = (b: Uint8Array): MacAddress => readMac(b, F.DST)
export const src = (b: Uint8Array): MacAddress => readMac(b, F.SRC)
export const etherType = (b: Uint8Array): number => u16(b, F.ETHERTYPE)
export const payload = (b: Uint8Array): Uint8Array => b.subarray(HEADER_LEN)

export const parse = (b: Uint8Array): EthernetRepr | DropReason => {
  if (!checkLen(b)) return "Truncated"
  return { dst: dst(b), src: src(b), etherType: etherType(b) }
}

/** Writes the 14-byte header at the start of `b`; the payload already sits at b[14..]. */
export const emit = (r: EthernetRepr, b: Uint8Array): void => {
  writeMac(b, F.DST, r.dst)
  writeMac(b, F.SRC, r.src)
  setU16(b, F.ETHERTYPE, r.etherType)
}

export const emitFields = (b: Uint8Array, dstMac: number, srcMac: number, type: number): void => {
  writeMac(b, F.DST, dstMac)
  writeMac(b, F.SRC, srcMac)
  setU16(b, F.ETHERTYPE, type)
}
