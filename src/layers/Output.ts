/**
 * Where console lines go: one service every printing layer takes its `print` from (the iperf 2 and iperf3 servers,
 * the `-d` dump, DHCP, the banner). The default is stdout; `--logfile FILE` provides `layerLogfile`; an embedding app
 * provides its own `Output` (or passes `print` to a layer, which still wins).
 *
 * `print` is synchronous on purpose: the servers print from inside receive bursts, where no fiber runs. A log file is
 * written with one `write(2)` per line on an `O_APPEND` descriptor (line-buffered: a line is in the file when
 * `print` returns, and concurrent appenders never interleave inside a line). SIGHUP reopens the file by name, so
 * `logrotate` can rename it and signal us (no `copytruncate` needed).
 */
import * as fs from "node:fs"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"

export interface OutputShape {
  /** Print one line (without its newline). */
  readonly print: (line: string) => void
}

export class Output extends Context.Tag("@miniperf/Output")<Output, OutputShape>() {}

export const stdout: OutputShape = {
  print: (line) => {
    process.stdout.write(line + "\n")
  }
}

/** Console lines on stdout (what the layers do when no Output is provided). */
export const layerStdout: Layer.Layer<Output> = Layer.succeed(Output, stdout)

/** The log file could not be opened (at start; a failed reopen on SIGHUP keeps the old file and says so on stderr). */
export class LogfileError extends Data.TaggedError("LogfileError")<{
  readonly path: string
  readonly message: string
}> {}

const openAppend = (path: string): number => fs.openSync(path, "a", 0o644)

const reason = (e: unknown): string => {
  const err = e as { code?: unknown; message?: unknown }
  return typeof err.code === "string" ? `${err.code}: ${String(err.message)}` : String(e)
}

export interface LogfileOptions {
  /** Reopen on this signal (default SIGHUP); `null`: never. */
  readonly reopenOn?: NodeJS.Signals | null
}

/**
 * Console lines appended to `path`, one write per line; the file is reopened on SIGHUP and closed with the scope.
 * Fails with LogfileError when the file cannot be opened for appending.
 */
export const layerLogfile = (path: string, opts: LogfileOptions = {}): Layer.Layer<Output, LogfileError> =>
  Layer.scoped(
    Output,
    Effect.gen(function* () {
      const file = yield* Effect.acquireRelease(
        Effect.try({
          try: () => ({ fd: openAppend(path) }),
          catch: (e) => new LogfileError({ path, message: reason(e) })
        }),
        (f) => Effect.sync(() => fs.closeSync(f.fd))
      )
      const reopen = (): void => {
        let fd: number
        try {
          fd = openAppend(path)
        } catch (e) {
          process.stderr.write(`miniperf: --logfile '${path}': cannot reopen (${reason(e)}); still writing to the old file\n`)
          return
        }
        const old = file.fd
        file.fd = fd
        fs.closeSync(old)
      }
      const signal = opts.reopenOn === undefined ? "SIGHUP" : opts.reopenOn
      if (signal !== null) {
        yield* Effect.acquireRelease(
          Effect.sync(() => process.on(signal, reopen)),
          () => Effect.sync(() => process.off(signal, reopen))
        )
      }
      return Output.of({
        print: (line) => {
          const b = Buffer.from(line + "\n")
          // a regular file takes the whole line in one write; loop only for the odd short write (a full disk fails)
          for (let off = 0; off < b.length;) off += fs.writeSync(file.fd, b, off)
        }
      })
    })
  )

/**
 * The `print` a layer uses: the one it was given, else the Output service's, else stdout. A layer that calls this
 * keeps its requirements unchanged (Output is optional).
 */
export const printer = (given?: (line: string) => void): Effect.Effect<(line: string) => void> =>
  given !== undefined
    ? Effect.succeed(given)
    : Effect.map(Effect.serviceOption(Output), (o) => Option.getOrElse(o, () => stdout).print)
