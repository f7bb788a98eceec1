/**
 * miniperf (loaded by main.ts): argv -> Config (one Schema decoder) -> NIC layer (TAP + optional fault injector and pcap)
 * -> the stack -> run until SIGINT/SIGTERM, which closes every scope (connections, fibers, the TAP). The start-up banner
 * is App's: it prints once the link is open.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Config from "./config/KernelArgs.js"
import * as App from "./App.js"
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
  const program = Layer.launch(App.layer(cfg)).pipe(
    Effect.onInterrupt(() => Effect.sync(() => process.stdout.write("System is going down to halt now\n"))),
    Effect.catchAll((e) =>
      Effect.sync(() => {
        process.stderr.write(`miniperf: ${e.message}\n`)
        process.exitCode = 1
      })
    )
  )
  NodeRuntime.runMain(program, { disableErrorReporting: false })
}

main()
