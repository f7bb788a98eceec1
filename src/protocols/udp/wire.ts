/** UDP (RFC 768). A computed checksum of 0 is sent as 0xffff; a received 0 over IPv4 means "no checksum". */
import { u16, setU16 } from "../bytes.js"
import * as Cs from "../checksum.js"
import type { DropReason } from "../drop.js"

export const HEADER_LEN = 8
const F = { SRC_PORT: 0, DST_PORT: 2, LENGTH: 4, CHECKSUM: 6 } as const

export interface UdpRepr {
  readonly srcPort: number
  readonly dstPort: number
  readonly payloadLen: number
}

export const length = (b: Uint8Array): number => u16(b, F.LENGTH)
export const checkLen = (b: Uint8Array): boolean => b.length >= HEADER_LEN && length(b) >= HEADER_LEN && length(b) <= b.length

/**
 * `pseudo` is the unfolded pseudo-header sum (checksum.pseudoV4 with the UDP length).
 * `verify` false when the NIC vouched for the checksum (DATA_VALID) or it is still partial (NEEDS_CSUM from a local sender).
 */
export const parse = (b: Uint8Array, pseudo: number, verify: boolean): UdpRepr | DropReason => {
  if (b.length < HEADER_LEN) return "Truncated"
  const len = length(b)
  if (len < HEADER_LEN) return "BadLength"
  if (len > b.length) return "Truncated"
  if (verify && u16(b, F.CHECKSUM) !== 0 && !Cs.verifies(Cs.sum(b, 0, len, pseudo))) return "BadChecksum"
  return { srcPort: u16(b, F.SRC_PORT), dstPort: u16(b, F.DST_PORT), payloadLen: len - HEADER_LEN }
}

/**
 * `parse` for UDP over IPv6 (`pseudo` from checksum.pseudoV6): the checksum is mandatory there, so a received
 * 0 is dropped instead of meaning "none" (RFC 8200 §8.1). As in `parse`, `verify` false skips every check of it.
 */
export const parseV6 = (b: Uint8Array, pseudo: number, verify: boolean): UdpRepr | DropReason =>
  verify && b.length >= HEADER_LEN && u16(b, F.CHECKSUM) === 0 ? "BadChecksum" : parse(b, pseudo, verify)

export const payload = (b: Uint8Array): Uint8Array => b.subarray(HEADER_LEN, length(b))

/** Header into b[0..8]; the payload already sits at b[8..8+payloadLen]. `pseudo` must use length 8+payloadLen. */
export const emit = (r: UdpRepr, b: Uint8Array, pseudo: number, fillChecksum: boolean): void => {
  const len = HEADER_LEN + r.payloadLen
  setU16(b, F.SRC_PORT, r.srcPort)
  setU16(b, F.DST_PORT, r.dstPort)
  setU16(b, F.LENGTH, len)
  setU16(b, F.CHECKSUM, 0)
  if (fillChecksum) {
    const c = Cs.finish(Cs.sum(b, 0, len, pseudo))
    setU16(b, F.CHECKSUM, c === 0 ? 0xffff : c)
  }
}
