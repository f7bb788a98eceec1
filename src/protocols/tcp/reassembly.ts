/**
 * A bounded set of disjoint, merged byte ranges [start, end) over offsets (never sequence numbers:
 * smoltcp 25d4f7c5). Used for out-of-order data (offsets from RCV.NXT) and for the sender's SACK
 * scoreboard (offsets from SND.UNA). Stored as a flat sorted number array; at most `maxRanges`.
 */
export class RangeSet {
  /** [s0, e0, s1, e1, ...], sorted, disjoint, non-adjacent. */
  readonly r: number[] = []
  constructor(readonly maxRanges: number) {}

  get count(): number {
    return this.r.length >>> 1
  }
  get isEmpty(): boolean {
    return this.r.length === 0
  }
  start(i: number): number {
    return this.r[2 * i]!
  }
  end(i: number): number {
    return this.r[2 * i + 1]!
  }
  clear(): void {
    this.r.length = 0
  }

  /** Add [s, e), merging. Returns false (and changes nothing) if the bound would be exceeded. */
  add(s: number, e: number): boolean {
    if (e <= s) return true
    const r = this.r
    const n = r.length >>> 1
    // first range whose end >= s
    let i = 0
    while (i < n && r[2 * i + 1]! < s) i++
    // ranges i..j-1 overlap or touch [s, e)
    let j = i
    let ns = s
    let ne = e
    while (j < n && r[2 * j]! <= e) {
      if (r[2 * j]! < ns) ns = r[2 * j]!
      if (r[2 * j + 1]! > ne) ne = r[2 * j + 1]!
      j++
    }
    const removed = j - i
    if (removed === 0) {
      if (n >= this.maxRanges) return false
      r.splice(2 * i, 0, ns, ne)
    } else {
      r[2 * i] = ns
      r[2 * i + 1] = ne
      if (removed > 1) r.splice(2 * i + 2, 2 * (removed - 1))
    }
    return true
  }

  /** Subtract n from all offsets, dropping what falls below 0. */
  shift(n: number): void {
    if (n === 0) return
    const r = this.r
    let w = 0
    for (let k = 0; k < r.length; k += 2) {
      const s = r[k]! - n
      const e = r[k + 1]! - n
      if (e <= 0) continue
      r[w++] = s < 0 ? 0 : s
      r[w++] = e
    }
    r.length = w
  }

  /** Length of the range starting exactly at 0, or 0. */
  prefixLen(): number {
    return this.r.length > 0 && this.r[0] === 0 ? this.r[1]! : 0
  }

  /** Total bytes in ranges. */
  total(): number {
    let t = 0
    for (let k = 0; k < this.r.length; k += 2) t += this.r[k + 1]! - this.r[k]!
    return t
  }

  /** Bytes in ranges below offset x. */
  bytesBelow(x: number): number {
    let t = 0
    for (let k = 0; k < this.r.length; k += 2) {
      const s = this.r[k]!
      if (s >= x) break
      t += Math.min(this.r[k + 1]!, x) - s
    }
    return t
  }

  /** If x lies inside a range, that range's end; else x. */
  skip(x: number): number {
    for (let k = 0; k < this.r.length; k += 2) {
      if (this.r[k]! > x) break
      if (x < this.r[k + 1]!) return this.r[k + 1]!
    }
    return x
  }

  /** Start of the first range above x (or Infinity). */
  nextStartAfter(x: number): number {
    for (let k = 0; k < this.r.length; k += 2) if (this.r[k]! > x) return this.r[k]!
    return Number.POSITIVE_INFINITY
  }

  highest(): number {
    return this.r.length === 0 ? 0 : this.r[this.r.length - 1]!
  }

  /** Index of the range containing x, or -1. */
  indexOf(x: number): number {
    for (let k = 0; k < this.r.length; k += 2) if (this.r[k]! <= x && x < this.r[k + 1]!) return k >>> 1
    return -1
  }
}
