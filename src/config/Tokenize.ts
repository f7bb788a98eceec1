/**
 * Shell-like splitting of a kernel-style argument string into words (style.md §2.9), so that
 * `--args '-i 198.51.100.2/24 -g 198.51.100.1'` and the same flags as argv words decode identically.
 *
 * What it does, POSIX-sh style but without any expansion:
 * - blanks (space, tab, CR, LF, FF, VT) separate words; runs of blanks count once;
 * - `'…'` is literal up to the next `'`;
 * - `"…"` is literal except that a backslash escapes `"`, `\`, `$`, `` ` `` and a newline (removed);
 *   before any other character the backslash stays;
 * - outside quotes a backslash makes the next character literal; backslash-newline is removed;
 * - quoted and unquoted pieces next to each other join into one word (`a'b c'd` is `ab cd`), and `''` is an empty word.
 * No globbing, no `$VAR`, no comments. An unterminated quote or a trailing backslash is an error, never a guess.
 *
 * Bounded: more than MAX_WORDS words is an error (a runaway string must not become a huge argv).
 */

export const MAX_WORDS = 4096

export type TokenizeResult =
  | { readonly _tag: "Words"; readonly words: ReadonlyArray<string> }
  | { readonly _tag: "Error"; readonly message: string }

const isBlank = (c: string): boolean => c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v"

export const tokenize = (s: string): TokenizeResult => {
  const words: Array<string> = []
  let cur = ""
  let inWord = false
  let i = 0
  const n = s.length
  while (i < n) {
    const c = s[i]!
    if (isBlank(c)) {
      if (inWord) {
        if (words.length >= MAX_WORDS) return { _tag: "Error", message: `more than ${MAX_WORDS} words` }
        words.push(cur)
        cur = ""
        inWord = false
      }
      i++
      continue
    }
    if (c === "'") {
      const end = s.indexOf("'", i + 1)
      if (end < 0) return { _tag: "Error", message: "unterminated ' quote" }
      cur += s.slice(i + 1, end)
      inWord = true
      i = end + 1
      continue
    }
    if (c === '"') {
      i++
      let closed = false
      while (i < n) {
        const d = s[i]!
        if (d === '"') {
          closed = true
          i++
          break
        }
        if (d === "\\" && i + 1 < n) {
          const e = s[i + 1]!
          if (e === '"' || e === "\\" || e === "$" || e === "`") {
            cur += e
            i += 2
            continue
          }
          if (e === "\n") {
            i += 2
            continue
          }
        }
        cur += d
        i++
      }
      if (!closed) return { _tag: "Error", message: 'unterminated " quote' }
      inWord = true
      continue
    }
    if (c === "\\") {
      if (i + 1 >= n) return { _tag: "Error", message: "trailing backslash" }
      const e = s[i + 1]!
      if (e !== "\n") {
        cur += e
        inWord = true
      }
      i += 2
      continue
    }
    cur += c
    inWord = true
    i++
  }
  if (inWord) {
    if (words.length >= MAX_WORDS) return { _tag: "Error", message: `more than ${MAX_WORDS} words` }
    words.push(cur)
  }
  return { _tag: "Words", words }
}
