/** Loads the golden frames in test/fixtures/wire (captured by test/fixtures/wire/capture.sh). */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { fromHex } from "../../../src/protocols/bytes.js"

const dir = fileURLToPath(new URL("../../fixtures/wire/", import.meta.url))

/** The whole Ethernet frame of `test/fixtures/wire/<name>.hex`; comment lines start with '#'. */
export const frame = (name: string): Uint8Array => {
  const text = readFileSync(`${dir}${name}.hex`, "utf8")
  const hex = text
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .join(" ")
  return fromHex(hex)
}

/** A fresh copy (tests that mutate must not share the buffer). */
export const copy = (b: Uint8Array): Uint8Array => Uint8Array.from(b)

/** Every proper prefix b[0..n) for n in 0..b.length-1. */
export const truncations = (b: Uint8Array): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  for (let n = 0; n < b.length; n++) out.push(b.slice(0, n))
  return out
}
