import { Data } from "effect"

/**
 * Why a command line was refused (style.md §2.5, §2.9). One error, one `reason`:
 * - `InvalidValue`: the flag's value is malformed or out of range, or conflicts with another flag
 *   (gateway outside the subnet, `-a` without `-i`, a duplicate ARP address, …);
 * - `MissingValue`: a flag that needs a value came last, or was followed by another flag;
 * - `UnexpectedValue`: a switch such as `--no-offload=yes` was given a value;
 * - `UnknownFlag`: not one of ours (`value` holds the word as typed);
 * - `StrayArgument`: a word that is not a flag and not a flag's value (MinIperf takes no positional arguments);
 * - `Repeated`: a single-valued flag was given twice;
 * - `Quoting`: the `--args` string could not be split (unterminated quote, …).
 */
export type ConfigErrorReason =
  | "InvalidValue"
  | "MissingValue"
  | "UnexpectedValue"
  | "UnknownFlag"
  | "StrayArgument"
  | "Repeated"
  | "Quoting"

export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly reason: ConfigErrorReason
  /** The flag as the user should type it, e.g. `-i` or `--mtu`. */
  readonly flag: string
  /** The offending word or value as given, when there is one. */
  readonly value: string | undefined
  /** What was expected or what is wrong, without the flag or value (those are in the other fields). */
  readonly message: string
  /** A correct usage, e.g. `-i 198.51.100.2/24`. */
  readonly example: string
}> {}

const MAX_SHOWN = 80

/** Quote a user-supplied value for a one-line message: control characters escaped, long values cut. */
export const showValue = (v: string): string => {
  let out = ""
  for (const ch of v) {
    const code = ch.codePointAt(0)!
    if (code < 0x20 || code === 0x7f || (code >= 0x80 && code < 0xa0) || code === 0x2028 || code === 0x2029) {
      out += code === 0x0a ? "\\n" : code === 0x09 ? "\\t" : code === 0x0d ? "\\r" : `\\u{${code.toString(16)}}`
    } else if (ch === "'" || ch === "\\") {
      out += "\\" + ch
    } else {
      out += ch
    }
    if (out.length > MAX_SHOWN) return `'${out.slice(0, MAX_SHOWN)}…'`
  }
  return `'${out}'`
}

/**
 * One line for the operator, naming the flag, the bad value and a correct example, e.g.
 * `miniperf: invalid value '198.51.100.300/24' for -i: expected IPv4/prefix, e.g. -i 198.51.100.2/24`.
 */
export const formatConfigError = (e: ConfigError): string => {
  const v = e.value === undefined ? "" : showValue(e.value)
  switch (e.reason) {
    case "InvalidValue":
      return `miniperf: invalid value ${v} for ${e.flag}: ${e.message}, e.g. ${e.example}`
    case "MissingValue":
      return `miniperf: ${e.flag} needs a value: ${e.message}, e.g. ${e.example}`
    case "UnexpectedValue":
      return `miniperf: ${e.flag} takes no value (got ${v}), e.g. ${e.example}`
    case "UnknownFlag":
      return `miniperf: unknown option ${v} (${e.message}), e.g. ${e.example}`
    case "StrayArgument":
      return `miniperf: unexpected argument ${v}: ${e.message}, e.g. ${e.example}`
    case "Repeated":
      return `miniperf: ${e.flag} given more than once (again as ${v}): ${e.message}, e.g. ${e.example}`
    case "Quoting":
      return `miniperf: cannot split ${e.flag} string ${v}: ${e.message}, e.g. ${e.example}`
  }
}
