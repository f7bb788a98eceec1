/**
 * TCP sequence numbers (RFC 9293 §3.4): a branded u32 with modular comparison.
 * Never compare sequence numbers with `<`; use these helpers (style.md §2.8, gVisor `seqnum`).
 * Offsets (byte counts relative to a sequence number) are plain numbers and stay separate.
 */
declare const SeqBrand: unique symbol
export type SeqNum = number & { readonly [SeqBrand]: "SeqNum" }

export const seq = (n: number): SeqNum => (n >>> 0) as SeqNum
/** a + n (mod 2^32). n may be negative. */
export const seqAdd = (a: SeqNum, n: number): SeqNum => ((a + n) >>> 0) as SeqNum
/** Signed distance a - b in [-2^31, 2^31). */
export const seqDiff = (a: SeqNum, b: SeqNum): number => (a - b) | 0
export const seqLt = (a: SeqNum, b: SeqNum): boolean => ((a - b) | 0) < 0
export const seqLe = (a: SeqNum, b: SeqNum): boolean => ((a - b) | 0) <= 0
export const seqGt = (a: SeqNum, b: SeqNum): boolean => ((a - b) | 0) > 0
export const seqGe = (a: SeqNum, b: SeqNum): boolean => ((a - b) | 0) >= 0
export const seqMax = (a: SeqNum, b: SeqNum): SeqNum => (((a - b) | 0) >= 0 ? a : b)
export const seqMin = (a: SeqNum, b: SeqNum): SeqNum => (((a - b) | 0) <= 0 ? a : b)
/** start <= s < start + len (mod 2^32); len in [0, 2^31). */
export const inWindow = (s: SeqNum, start: SeqNum, len: number): boolean => ((s - start) >>> 0) < len
/** Unsigned 32-bit "a < b" for timestamps (RFC 7323 §5.2 uses the same modular rule). */
export const tsLt = (a: number, b: number): boolean => ((a - b) | 0) < 0
