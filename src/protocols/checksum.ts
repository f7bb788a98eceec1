/**
 * The Internet checksum (RFC 1071) with incremental update (RFC 1624).
 *
 * `sum` adds big-endian 16-bit words into a plain JS number without folding: a 64 KiB
 * packet adds at most 32768 words of 0xffff, far below 2^53, so one `fold` at the end is enough.
 */
import type { Ipv6Address } from "./ipv6/address.js"

export const sum = (b: Uint8Array, start: number, end: number, acc = 0): number => {
  const n = end - start
  if (n >= 64 && ((b.byteOffset + start) & 1) === 0) return acc + sumWide(b, start, end)
  let s = acc
  let i = start
  const even = end - (n & 1)
  for (; i < even; i += 2) s += (b[i]! << 8) | b[i + 1]!
  if (i < end) s += b[i]! << 8
  return s
}

// Wide path: add the region as native (little-endian) 16-bit words through a Uint16Array over the frame's
// ArrayBuffer, then swap the folded result back to network order (RFC 1071 §2(B): the sum is independent of
// byte order up to a final swap). One cached view per buffer: frames from the TAP ring share one buffer.
let wideBuf: ArrayBufferLike | undefined
let wide: Uint16Array<ArrayBufferLike> = new Uint16Array(0)
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

const sumWide = (b: Uint8Array, start: number, end: number): number => {
  if (!littleEndian) {
    let s = 0
    for (let i = start; i + 1 < end; i += 2) s += (b[i]! << 8) | b[i + 1]!
    if (((end - start) & 1) !== 0) s += b[end - 1]! << 8
    return s
  }
  const buf = b.buffer
  if (buf !== wideBuf || wide.length !== buf.byteLength >>> 1) {
    wideBuf = buf
    wide = new Uint16Array(buf, 0, buf.byteLength >>> 1)
  }
  const n = end - start
  let w = (b.byteOffset + start) >>> 1
  const last = w + (n >>> 1)
  let s0 = 0
  let s1 = 0
  const last4 = last - 3
  for (; w < last4; w += 4) {
    s0 += wide[w]! + wide[w + 1]!
    s1 += wide[w + 2]! + wide[w + 3]!
  }
  for (; w < last; w++) s0 += wide[w]!
  let s = s0 + s1
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000)
  s = ((s & 0xff) << 8) | (s >>> 8)
  if ((n & 1) !== 0) s += b[end - 1]! << 8
  return s
}

/** Fold an accumulated sum to 16 bits (ones' complement addition of the carries). */
export const fold = (acc: number): number => {
  let s = acc
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000)
  return s
}

/** The value to store in a checksum field. */
export const finish = (acc: number): number => ~fold(acc) & 0xffff

/** True when a received region (checksum field included) sums to 0xffff. */
export const verifies = (acc: number): boolean => fold(acc) === 0xffff

/** Unfolded IPv4 pseudo-header sum for TCP/UDP (RFC 793 §3.1, RFC 768). Addresses are u32 numbers. */
export const pseudoV4 = (src: number, dst: number, protocol: number, length: number): number =>
  (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length

/**
 * Unfolded IPv6 pseudo-header sum (RFC 8200 §8.1) for TCP, UDP and ICMPv6 (RFC 4443 §2.3): both addresses,
 * the upper-layer length as 32 bits and the next header value (the final upper-layer protocol, not an
 * extension header's). Like `pseudoV4`, the result feeds `sum`, so one checksum path serves both families.
 */
export const pseudoV6 = (src: Ipv6Address, dst: Ipv6Address, nextHeader: number, length: number): number => {
  let s = nextHeader + (length >>> 16) + (length & 0xffff)
  for (let i = 0; i < 8; i++) s += src.charCodeAt(i) + dst.charCodeAt(i)
  return s
}

/** RFC 1624 eqn. 3: new checksum field after one 16-bit word changed from `oldWord` to `newWord`. */
export const update16 = (checksum: number, oldWord: number, newWord: number): number =>
  ~fold((~checksum & 0xffff) + (~oldWord & 0xffff) + newWord) & 0xffff
