/** Drop counters keyed by reason: plain numbers bumped on the hot path, read by the statistics dump. */
import type { DropReason } from "../protocols/drop.js"

export type DropCounts = Partial<Record<DropReason, number>>

export const countDrop = (c: DropCounts, r: DropReason): void => {
  c[r] = (c[r] ?? 0) + 1
}

export const totalDrops = (c: DropCounts): number => {
  let n = 0
  for (const v of Object.values(c)) n += v ?? 0
  return n
}
