/**
 * Runs our server (`node dist/main.js`, as a user would) inside a fresh network namespace on a TAP it
 * creates there; the kernel side of the TAP gets 198.51.100.1/24, the server 198.51.100.2/24 (RFC 5737).
 * Everything is a scoped resource: the server is stopped by PID and the namespace deleted when the scope
 * closes, also on failure. Client commands run inside the namespace with a SIGKILL timeout, because a stuck
 * iperf 2 client ignores SIGTERM (iperf-wire.md §A.3).
 */
import type { ChildProcess } from "node:child_process"
import { execFile } from "node:child_process"
import * as path from "node:path"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { NetnsError, uniqueIfName, withNetns, type Netns } from "./netns.js"

export const SERVER_IP = "198.51.100.2"
export const CLIENT_IP = "198.51.100.1"
export const MAIN = path.resolve(__dirname, "../../dist/main.js")

export interface RunResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  /** Wall-clock seconds the command took. */
  readonly elapsedS: number
}

/** Runs a command to completion whatever its exit status, with a SIGKILL after `timeoutS`. */
export const runAny = (cmd: string, args: ReadonlyArray<string>, timeoutS = 40): Effect.Effect<RunResult> =>
  Effect.async<RunResult>((resume) => {
    const t0 = performance.now()
    const child = execFile(cmd, [...args], { timeout: timeoutS * 1000, killSignal: "SIGKILL", maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : null
      resume(Effect.succeed({ code, stdout: String(stdout), stderr: String(stderr), elapsedS: (performance.now() - t0) / 1000 }))
    })
    return Effect.sync(() => {
      if (child.exitCode === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, "SIGKILL")
        } catch {
          /* gone */
        }
      }
    })
  })

export interface Server {
  readonly ns: Netns
  readonly tap: string
  readonly child: ChildProcess
  /** Everything the server printed so far (stdout and stderr). */
  readonly output: () => string
  /** Run a client command inside the namespace. */
  readonly client: (cmd: string, args: ReadonlyArray<string>, timeoutS?: number) => Effect.Effect<RunResult>
  /** Wait (bounded) until the server's output matches. */
  readonly waitFor: (re: RegExp, timeoutMs?: number) => Effect.Effect<void, NetnsError>
}

export interface ServerOptions {
  readonly args?: ReadonlyArray<string>
  /** Extra setup on the kernel side after the address is set (neighbour entries, ...). */
  readonly ready?: RegExp
  /** Start the server without `-i` (its DHCP client runs); default false. */
  readonly dhcp?: boolean
  /** Leave the TAP's txqueuelen as the server set it (by default the harness raises it to 10000). */
  readonly keepTxQueueLen?: boolean
  /** Runs once the kernel side of the TAP is up, before waiting for `ready` (start a DHCP server, tcpdump, ...). */
  readonly setup?: (ns: Netns, tap: string) => Effect.Effect<void, NetnsError, Scope.Scope>
}

const sleep = (ms: number) => Effect.sleep(Duration.millis(ms))

export const withServer = (prefix: string, opts: ServerOptions = {}): Effect.Effect<Server, NetnsError, Scope.Scope> =>
  Effect.gen(function* () {
    const ns = yield* withNetns(prefix)
    const tap = uniqueIfName("mp")
    const child = yield* ns.spawn("node", [MAIN, "--tap", tap, ...(opts.dhcp === true ? [] : ["-i", `${SERVER_IP}/24`]), ...(opts.args ?? [])])
    let out = ""
    child.stdout?.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr?.on("data", (d: Buffer) => (out += d.toString()))
    const waitFor = (re: RegExp, timeoutMs = 10_000): Effect.Effect<void, NetnsError> =>
      Effect.gen(function* () {
        const t0 = Date.now()
        while (!re.test(out)) {
          if (child.exitCode !== null) return yield* new NetnsError({ message: `server exited (${child.exitCode}) before ${re}: ${out}` })
          if (Date.now() - t0 > timeoutMs) return yield* new NetnsError({ message: `timed out waiting for ${re}; server said: ${out}` })
          yield* sleep(20)
        }
      })
    // the server creates the TAP in the namespace it runs in; configure the kernel side
    const t0 = Date.now()
    while ((yield* Effect.either(ns.ip(["link", "show", "dev", tap])))._tag === "Left") {
      if (child.exitCode !== null || Date.now() - t0 > 10_000) return yield* new NetnsError({ message: `server did not create ${tap}: ${out}` })
      yield* sleep(20)
    }
    if (opts.keepTxQueueLen !== true) yield* ns.ip(["link", "set", "dev", tap, "txqueuelen", "10000"])
    yield* ns.ip(["addr", "add", `${CLIENT_IP}/24`, "dev", tap])
    yield* ns.ip(["link", "set", "dev", tap, "up"])
    if (opts.setup !== undefined) yield* opts.setup(ns, tap)
    yield* waitFor(opts.ready ?? /Entering main event loop/)
    return {
      ns,
      tap,
      child,
      output: () => out,
      client: (cmd, args, timeoutS = 40) => runAny("ip", ["netns", "exec", ns.name, cmd, ...args], timeoutS),
      waitFor
    }
  })

/** Runs the server binary with arguments outside any namespace and collects its exit (for flag errors). */
export const runMain = (args: ReadonlyArray<string>): Effect.Effect<RunResult> => runAny("node", [MAIN, ...args], 20)

void execFile
