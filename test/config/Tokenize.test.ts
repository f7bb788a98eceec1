import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { MAX_WORDS, tokenize } from "../../src/config/Tokenize.js"

const words = (s: string): ReadonlyArray<string> => {
  const r = tokenize(s)
  if (r._tag === "Error") throw new Error(`unexpected tokenize error: ${r.message}`)
  return r.words
}

/** POSIX-sh single quoting of one word. */
const shQuote = (w: string): string => `'${w.replace(/'/g, `'\\''`)}'`

describe("tokenize", () => {
  it("splits on runs of blanks of any kind", () => {
    expect(words("-i 198.51.100.2/24   -g\t198.51.100.1\n-d 1000\r\n")).toEqual([
      "-i", "198.51.100.2/24", "-g", "198.51.100.1", "-d", "1000"
    ])
    expect(words("")).toEqual([])
    expect(words("  \t\n ")).toEqual([])
  })

  it("keeps single-quoted text literally", () => {
    expect(words(`--pcap '/tmp/a b.pcap' x`)).toEqual(["--pcap", "/tmp/a b.pcap", "x"])
    expect(words(`'a\\b "c"'`)).toEqual([`a\\b "c"`])
  })

  it("double quotes escape only \" \\ $ ` and newline", () => {
    expect(words(`"a \\"b\\" \\\\ \\$ \\\` \\x"`)).toEqual([`a "b" \\ $ \` \\x`])
    expect(words(`"line\\\nnext"`)).toEqual(["linenext"])
    expect(words(`"it's"`)).toEqual(["it's"])
  })

  it("a backslash outside quotes makes the next character literal; backslash-newline joins", () => {
    expect(words(`a\\ b c\\'d`)).toEqual(["a b", "c'd"])
    expect(words(`ab\\\ncd`)).toEqual(["abcd"])
  })

  it("joins adjacent quoted and unquoted pieces and keeps empty quoted words", () => {
    expect(words(`a'b c'd"e f"g`)).toEqual(["ab cde fg"])
    expect(words(`x '' "" y`)).toEqual(["x", "", "", "y"])
  })

  it("refuses an unterminated quote or a trailing backslash", () => {
    expect(tokenize(`-i '198.51.100.2/24`)).toEqual({ _tag: "Error", message: "unterminated ' quote" })
    expect(tokenize(`-i "198.51.100.2/24`)).toEqual({ _tag: "Error", message: 'unterminated " quote' })
    expect(tokenize(`"abc\\"`)).toEqual({ _tag: "Error", message: 'unterminated " quote' })
    expect(tokenize(`abc\\`)).toEqual({ _tag: "Error", message: "trailing backslash" })
  })

  it("is bounded in the number of words", () => {
    const ok = tokenize(Array.from({ length: MAX_WORDS }, () => "x").join(" "))
    expect(ok._tag === "Words" && ok.words.length).toBe(MAX_WORDS)
    expect(tokenize(Array.from({ length: MAX_WORDS + 1 }, () => "x").join(" "))._tag).toBe("Error")
  })

  it("property: never throws on any string", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), (s) => {
        const r = tokenize(s)
        expect(["Words", "Error"]).toContain(r._tag)
      }),
      { numRuns: 300 }
    )
  })

  it("property: single-quoting each word and joining round-trips any words", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: "binary", maxLength: 20 }), { maxLength: 12 }), (ws) => {
        expect(words(ws.map(shQuote).join(" "))).toEqual(ws)
      }),
      { numRuns: 300 }
    )
  })
})
