/**
 * The README's library example is examples/echo.ts, word for word: that file is type-checked by `npm run typecheck`
 * and compiled against the packed package and run by pack.test.ts, so the README shows a program that works.
 */
import { readFileSync } from "node:fs"
import * as path from "node:path"
import { expect, it } from "vitest"

const ROOT = path.resolve(__dirname, "../..")
const read = (f: string): string => readFileSync(path.join(ROOT, f), "utf8")

/** The bodies of the README's fenced blocks of one language. */
const blocks = (markdown: string, lang: string): Array<string> =>
  [...markdown.matchAll(new RegExp("^```" + lang + "\\n([\\s\\S]*?)^```$", "gm"))].map((m) => m[1]!)

it("the README's \"Use as a library\" example is examples/echo.ts", () => {
  const readme = read("README.md")
  const section = readme.slice(readme.indexOf("## Use as a library"), readme.indexOf("\n## ", readme.indexOf("## Use as a library") + 1))
  expect(blocks(section, "ts")).toEqual([read("examples/echo.ts")])
  expect(section).toContain("npx miniperf --version")
})

it("examples/echo.ts is about 30 lines and imports the package by its name", () => {
  const echo = read("examples/echo.ts")
  expect(echo.split("\n").length).toBeLessThanOrEqual(35)
  expect(echo).toContain('from "miniperf"')
})
