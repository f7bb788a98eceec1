/**
 * Big-endian field access over one contiguous Uint8Array (style.md §2.3).
 * Callers check lengths first (`checkLen`); these accessors never check.
 */
export const u16 = (b: Uint8Array, o: number): number => ((b[o]! << 8) | b[o + 1]!) >>> 0

export const u32 = (b: Uint8Array, o: number): number =>
  ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0

/** Signed 32-bit big-endian read. */
export const i32 = (b: Uint8Array, o: number): number => (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!

export const setU16 = (b: Uint8Array, o: number, v: number): void => {
  b[o] = (v >>> 8) & 0xff
  b[o + 1] = v & 0xff
}

export const setU32 = (b: Uint8Array, o: number, v: number): void => {
  b[o] = (v >>> 24) & 0xff
  b[o + 1] = (v >>> 16) & 0xff
  b[o + 2] = (v >>> 8) & 0xff
  b[o + 3] = v & 0xff
}

/** Little-endian 16-bit read/write (the virtio-net header is in host order, x86 = little endian). */
export const u16le = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8)) >>> 0
export const setU16le = (b: Uint8Array, o: number, v: number): void => {
  b[o] = v & 0xff
  b[o + 1] = (v >>> 8) & 0xff
}

export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex")

export const fromHex = (s: string): Uint8Array => {
  const clean = s.replace(/[^0-9a-fA-F]/g, "")
  const out = new Uint8Array(clean.length >>> 1)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16)
  return out
}
