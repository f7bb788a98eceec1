/**
 * Output (src/layers/Output.ts): console lines through one service; --logfile appends one write per line and
 * reopens the file by name on SIGHUP (a renamed file gets nothing more); the layers' `print` defaults to it.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, beforeEach, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Output from "../../src/layers/Output.js"

let dir = ""
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "miniperf-output-"))
})
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true })
})

it.effect("each line is in the file when print returns; appended to what was there", () =>
  Effect.gen(function* () {
    const f = path.join(dir, "a.log")
    fs.writeFileSync(f, "before\n")
    yield* Effect.scoped(
      Effect.gen(function* () {
        const out = yield* Output.Output
        out.print("one")
        expect(fs.readFileSync(f, "utf8")).toBe("before\none\n")
        out.print("two")
        expect(fs.readFileSync(f, "utf8")).toBe("before\none\ntwo\n")
      }).pipe(Effect.provide(Output.layerLogfile(f, { reopenOn: null })))
    )
  })
)

it.effect("SIGHUP reopens by name: after a rename, new lines go to a new file; the listener goes with the scope", () =>
  Effect.gen(function* () {
    const f = path.join(dir, "b.log")
    const before = process.listenerCount("SIGHUP")
    yield* Effect.scoped(
      Effect.gen(function* () {
        const out = yield* Output.Output
        expect(process.listenerCount("SIGHUP")).toBe(before + 1)
        out.print("old")
        fs.renameSync(f, f + ".1")
        out.print("still old") // not reopened yet: the descriptor follows the renamed file
        process.emit("SIGHUP", "SIGHUP")
        out.print("new")
        expect(fs.readFileSync(f + ".1", "utf8")).toBe("old\nstill old\n")
        expect(fs.readFileSync(f, "utf8")).toBe("new\n")
      }).pipe(Effect.provide(Output.layerLogfile(f)))
    )
    expect(process.listenerCount("SIGHUP")).toBe(before)
  })
)

it.effect("a file that cannot be opened fails the layer with LogfileError naming the path", () =>
  Effect.gen(function* () {
    const f = path.join(dir, "missing-dir", "c.log")
    const r = yield* Effect.exit(Effect.scoped(Layer.build(Output.layerLogfile(f))))
    expect(Exit.isFailure(r)).toBe(true)
    if (Exit.isFailure(r) && r.cause._tag === "Fail") {
      expect(r.cause.error).toMatchObject({ _tag: "LogfileError", path: f })
      expect(r.cause.error.message).toMatch(/^ENOENT/)
    }
  })
)

it.effect("printer: a given print wins, else the provided Output, else stdout", () =>
  Effect.gen(function* () {
    const seen: Array<string> = []
    const mine = (l: string) => void seen.push(`mine:${l}`)
    const viaService = Layer.succeed(Output.Output, { print: (l) => void seen.push(`service:${l}`) })
    ;(yield* Output.printer(mine))("a")
    ;(yield* Effect.provide(Output.printer(), viaService))("b")
    ;(yield* Effect.provide(Output.printer(mine), viaService))("c")
    expect(seen).toEqual(["mine:a", "service:b", "mine:c"])
    expect(yield* Output.printer()).toBe(Output.stdout.print)
  })
)
