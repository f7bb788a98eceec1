/** ARP for IPv4 over Ethernet (RFC 826): hardware type 1, protocol 0x0800, lengths 6 and 4. */
import { readIpv4, readMac, writeIpv4, writeMac, type Ipv4Address, type MacAddress } from "../address.js"
import { u16, setU16 } from "../bytes.js"
import type { DropReason } from "../drop.js"

export const PACKET_LEN = 28
const F = { HTYPE: 0, PTYPE: 2, HLEN: 4, PLEN: 5, OPER: 6, SHA: 8, SPA: 14, THA: 18, TPA: 24 } as const

export const OP_REQUEST = 1
export const OP_REPLY = 2

export interface ArpRepr {
  readonly op: number
  readonly senderMac: MacAddress
  readonly senderIp: Ipv4Address
  readonly targetMac: MacAddress
  readonly targetIp: Ipv4Address
}

export const checkLen = (b: Uint8Array): boolean => b.length >= PACKET_LEN

export const parse = (b: Uint8Array): ArpRepr | DropReason => {
  if (!checkLen(b)) return "Truncated"
  if (u16(b, F.HTYPE) !== 1 || u16(b, F.PTYPE) !== 0x0800 || b[F.HLEN] !== 6 || b[F.PLEN] !== 4) return "Unsupported"
  const op = u16(b, F.OPER)
  if (op !== OP_REQUEST && op !== OP_REPLY) return "Unsupported"
  return {
    op,
    senderMac: readMac(b, F.SHA),
    senderIp: readIpv4(b, F.SPA),
    targetMac: readMac(b, F.THA),
    targetIp: readIpv4(b, F.TPA)
  }
}

export const emit = (r: ArpRepr, b: Uint8Array): void => {
  setU16(b, F.HTYPE, 1)
  setU16(b, F.PTYPE, 0x0800)
  b[F.HLEN] = 6
  b[F.PLEN] = 4
  setU16(b, F.OPER, r.op)
  writeMac(b, F.SHA, r.senderMac)
  writeIpv4(b, F.SPA, r.senderIp)
  writeMac(b, F.THA, r.targetMac)
  writeIpv4(b, F.TPA, r.targetIp)
}
