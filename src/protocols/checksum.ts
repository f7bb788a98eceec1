/**
 * The Internet checksum (RFC 1071) with incremental update (RFC 1624).
 *
 * `sum` adds big-endian 16-bit words into a plain JS number without folding: a 64 KiB
 * packet adds at most 32768 words of 0xffff, far below 2^53, so one `fold` at the end is enough.
 */
export const sum = (b: Uint8Array, start: number, end: number, acc = 0): number => {
  let s = acc
  let i = start
  const even = end - ((end - start) & 1)
  for (; i < even; i += 2) s += (b[i]! << 8) | b[i + 1]!
  if (i < end) s += b[i]! << 8
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

/** RFC 1624 eqn. 3: new checksum field after one 16-bit word changed from `oldWord` to `newWord`. */
export const update16 = (checksum: number, oldWord: number, newWord: number): number =>
  ~fold((~checksum & 0xffff) + (~oldWord & 0xffff) + newWord) & 0xffff
