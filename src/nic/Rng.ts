/**
 * A small seeded PRNG for link simulation and fault injection: xoshiro128** (Blackman & Vigna),
 * seeded through splitmix32. Plain synchronous calls, so deciding the fate of a frame costs no
 * Effect; the same seed always gives the same sequence. Not for cryptography.
 */
export interface Rng {
  /** Uniform u32. */
  readonly nextU32: () => number
  /** Uniform float in [0, 1). */
  readonly next: () => number
  /** Uniform integer in [0, n). */
  readonly int: (n: number) => number
  /** True with probability p (p <= 0 never draws: a disabled fault does not shift the sequence). */
  readonly chance: (p: number) => boolean
}

export const make = (seed: number): Rng => {
  // splitmix32 expands the seed into four non-zero state words
  let x = seed >>> 0
  const split = (): number => {
    x = (x + 0x9e3779b9) >>> 0
    let z = x
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
  let s0 = split()
  let s1 = split()
  let s2 = split()
  let s3 = split()
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1
  const rotl = (v: number, k: number): number => ((v << k) | (v >>> (32 - k))) >>> 0
  const nextU32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0
    const t = (s1 << 9) >>> 0
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = rotl(s3 >>> 0, 11)
    s0 >>>= 0
    s1 >>>= 0
    s2 >>>= 0
    return result
  }
  const next = (): number => nextU32() / 0x100000000
  return {
    nextU32,
    next,
    int: (n) => Math.floor(next() * n),
    chance: (p) => p > 0 && (p >= 1 || next() < p)
  }
}
