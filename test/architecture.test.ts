/**
 * The structure the style guide asks for (style.md rule 1 and 4), checked from the imports themselves:
 * src/protocols is pure (no Effect, no Node module, no shell), and src/nic (the link contract, drivers and
 * middleware) does not depend on the protocol shells in src/layers.
 */
import { readdirSync, readFileSync, statSync } from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const ROOT = path.resolve(__dirname, "..")

const filesUnder = (dir: string): Array<string> =>
  readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name)
    return statSync(p).isDirectory() ? filesUnder(p) : p.endsWith(".ts") ? [p] : []
  })

/** Every module specifier a file imports or re-exports (static and dynamic). */
const importsOf = (file: string): Array<string> => {
  const src = readFileSync(file, "utf8")
  const specs: Array<string> = []
  for (const m of src.matchAll(/^\s*(?:import|export)\b[^"'`;]*?from\s*["']([^"']+)["']/gm)) specs.push(m[1]!)
  for (const m of src.matchAll(/^\s*import\s*["']([^"']+)["']/gm)) specs.push(m[1]!)
  for (const m of src.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) specs.push(m[1]!)
  return specs
}

/** The repository-relative path a relative specifier points at, or the bare specifier. */
const target = (file: string, spec: string): string =>
  spec.startsWith(".") ? path.relative(ROOT, path.resolve(path.dirname(file), spec)) : spec

const violations = (dir: string, bad: (t: string) => boolean): Array<string> =>
  filesUnder(path.join(ROOT, dir)).flatMap((f) =>
    importsOf(f)
      .map((s) => target(f, s))
      .filter(bad)
      .map((t) => `${path.relative(ROOT, f)} -> ${t}`)
  )

describe("architecture", () => {
  it("the reader finds imports (guards the checks below against a parser that sees nothing)", () => {
    const tcp = importsOf(path.join(ROOT, "src/layers/Tcp.ts"))
    expect(tcp).toContain("effect/Effect")
    expect(tcp.some((s) => s.endsWith("protocols/tcp/machine.js"))).toBe(true)
    expect(importsOf(path.join(ROOT, "src/main.ts"))).toContain("./cli.js")
  })

  it("src/protocols imports no Effect, no Node module and nothing outside src/protocols", () => {
    const bad = (t: string): boolean =>
      t === "effect" || t.startsWith("effect/") || t.startsWith("@effect/") || t.startsWith("node:") || (!t.startsWith("src/protocols/") && !t.startsWith("."))
    expect(violations("src/protocols", bad)).toEqual([])
  })

  it("src/nic does not import the shells in src/layers (the stack depends on the link contract, not the other way)", () => {
    expect(violations("src/nic", (t) => t.startsWith("src/layers/"))).toEqual([])
  })
})
