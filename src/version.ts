/**
 * The package version, and the rule that decides whether a command line only asks for help or the version.
 *
 * main.ts answers `--version`/`-v` from this module alone, before the stack (and Effect) is loaded: loading
 * them costs about a second, which a version query should not pay. This module therefore imports nothing but
 * `node:module`; the flag lexer (config/Flags.ts) applies the same rule, so both paths agree.
 */
import { createRequire } from "node:module"

/** From package.json, one directory above this file both in src/ and in dist/. */
export const VERSION: string = (createRequire(import.meta.url)("../package.json") as { readonly version: string }).version

export const HELP_WORDS: ReadonlyArray<string> = ["-h", "--help"]
export const VERSION_WORDS: ReadonlyArray<string> = ["-v", "--version"]

/**
 * "Help" when any word is `-h`/`--help`, else "Version" when any word is `-v`/`--version`, else undefined.
 * Words are compared whole: `--mtu=-v` or `-v2` is not a version request.
 */
export const earlyAnswer = (words: ReadonlyArray<string>): "Help" | "Version" | undefined => {
  if (words.some((w) => HELP_WORDS.includes(w))) return "Help"
  if (words.some((w) => VERSION_WORDS.includes(w))) return "Version"
  return undefined
}
