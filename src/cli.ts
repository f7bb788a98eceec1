/**
 * miniperf (loaded by main.ts): argv -> Config (one Schema decoder) -> where console lines go (stdout, or
 * `--logfile`) -> NIC layer (TAP + optional fault injector and pcap) -> the stack -> run until SIGINT/SIGTERM, or with
 * `--one-off` until the first test ends (exit 0); either way every scope closes (connections, fibers, the TAP, the
 * log file last, after the final line). The start-up banner is App's: it prints once the link is open.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Config from "./config/KernelArgs.js"
import { exampleFor } from "./config/Flags.js"
import * as App from "./App.js"
import * as Output from "./layers/Output.js"
import { VERSION } from "./version.js"

const main = (): void => {
  const decoded = Config.decodeArgvEither(process.argv.slice(2))
  if (Either.isLeft(decoded)) {
    process.stderr.write(Config.formatConfigError(decoded.left) + "\n")
    process.exit(2)
  }
  const d = decoded.right
  if (!Config.isConfig(d)) {
    if (d._tag === "Help") process.stdout.write(d.text + "\n")
    else process.stdout.write(`miniperf ${VERSION}\n`)
    process.exit(0)
  }
  const cfg = d
  const output = cfg.logfile === undefined ? Output.layerStdout : Output.layerLogfile(cfg.logfile)
  const program = Effect.gen(function* () {
    const out = yield* Output.Output
    yield* App.run(cfg).pipe(Effect.onInterrupt(() => Effect.sync(() => out.print("System is going down to halt now"))))
  }).pipe(
    Effect.provide(output),
    Effect.catchAll((e) =>
      Effect.sync(() => {
        if (e._tag === "LogfileError") {
          // a log file that cannot be opened is a bad command line: one line naming the flag, before the TAP opens
          const err = new Config.ConfigError({
            reason: "InvalidValue", flag: "--logfile", value: e.path, message: `cannot open it for appending (${e.message})`,
            example: exampleFor("--logfile")
          })
          process.stderr.write(Config.formatConfigError(err) + "\n")
          process.exitCode = 2
          return
        }
        if (e._tag === "MetricsServerError") {
          // the address was valid but cannot be listened on (in use, not configured on this host): the flag's fault, exit 2
          const err = new Config.ConfigError({
            reason: "InvalidValue", flag: "--metrics", value: Config.formatMetricsAddress(e), message: `cannot listen on it (${e.code ?? e.message})`,
            example: exampleFor("--metrics")
          })
          process.stderr.write(Config.formatConfigError(err) + "\n")
          process.exitCode = 2
          return
        }
        process.stderr.write(`miniperf: ${e.message}\n`)
        process.exitCode = 1
      })
    )
  )
  NodeRuntime.runMain(program, { disableErrorReporting: false })
}

main()
