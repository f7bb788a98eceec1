/**
 * Test support for end-to-end tests: private network namespaces as scoped resources, a TAP whose
 * kernel side lives in such a namespace, and the root policy (style.md §2.12).
 *
 * - `withNetns(prefix)` creates `mpx-<prefix>-<pid>-<n>`, brings lo up, turns IPv6 off (so the kernel
 *   sends no router solicitations or MLD reports), and deletes the namespace when the scope closes,
 *   also on failure or interruption. Processes started with `ns.spawn` are killed by PID first.
 * - `withTapInNetns(ns, opts)` opens a TAP through Tap.make in *our* namespace (TUNSETIFF resolves
 *   names in the opener's namespace), then moves its kernel side into `ns`, sets it up with an
 *   RFC 5737 address (default 198.51.100.1/24) and optional permanent neighbour entries.
 * - `rootPolicy()`: "run" as root; "skip" when not root and CI is unset (one clear line is printed);
 *   "fail" when CI is set and we are not root. `describeRoot` applies it to a describe block.
 */
import { execFile, spawn as spawnChild, type ChildProcess } from "node:child_process"
import { describe, it } from "@effect/vitest"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { NicError, NicShape } from "../../src/nic/Nic.js"
import type { MacAddress } from "../../src/protocols/address.js"
import * as Tap from "../../src/nic/Tap.js"

export class NetnsError extends Data.TaggedError("NetnsError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

export interface ExecResult {
  readonly stdout: string
  readonly stderr: string
}

/** Runs a host command (no shell), failing with its stderr on a non-zero exit. Bounded by a timeout. */
export const run = (cmd: string, args: ReadonlyArray<string>, timeoutMs = 20_000): Effect.Effect<ExecResult, NetnsError> =>
  Effect.async<ExecResult, NetnsError>((resume) => {
    const child = execFile(cmd, [...args], { timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err) {
        resume(
          Effect.fail(
            new NetnsError({ message: `${cmd} ${args.join(" ")} failed: ${String(stderr).trim() || err.message}`, cause: err })
          )
        )
      } else resume(Effect.succeed({ stdout: String(stdout), stderr: String(stderr) }))
    })
    return Effect.sync(() => {
      if (child.exitCode === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, "SIGKILL")
        } catch {
          /* already gone */
        }
      }
    })
  })

export const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0

export type RootPolicy = "run" | "skip" | "fail"

export const rootPolicy = (): RootPolicy => (isRoot() ? "run" : process.env["CI"] ? "fail" : "skip")

/**
 * describe() for tests that need root: runs them as root, skips them with one line when not root
 * outside CI, and fails loudly when not root under CI.
 */
export const describeRoot = (name: string, body: () => void): void => {
  const policy = rootPolicy()
  if (policy === "run") {
    describe(name, body)
  } else if (policy === "skip") {
    console.warn(`[skip] ${name}: needs root (network namespaces, TAP devices); not root and CI unset`)
    describe.skip(name, body)
  } else {
    describe(name, () => {
      it("requires root under CI", () => {
        throw new Error(`${name}: CI is set but the tests are not running as root; e2e tests must run in CI`)
      })
    })
  }
}

let counter = 0

/** A unique interface name of at most 15 bytes: <prefix up to 4><pid base36><counter base36>. */
export const uniqueIfName = (prefix: string): string => {
  counter++
  const name = `${prefix.slice(0, 4)}${process.pid.toString(36)}${counter.toString(36)}`
  return name.slice(-15)
}

export interface Netns {
  readonly name: string
  /** `ip netns exec <ns> cmd args...` */
  readonly exec: (cmd: string, args: ReadonlyArray<string>, timeoutMs?: number) => Effect.Effect<ExecResult, NetnsError>
  /** `ip -n <ns> args...` */
  readonly ip: (args: ReadonlyArray<string>) => Effect.Effect<ExecResult, NetnsError>
  /** Starts a long-running process inside the namespace; it is killed (by PID) when the scope closes. */
  readonly spawn: (cmd: string, args: ReadonlyArray<string>) => Effect.Effect<ChildProcess, NetnsError, Scope.Scope>
  /** Interface counters read inside the namespace. */
  readonly linkStats: (ifname: string) => Effect.Effect<LinkStats, NetnsError>
}

export interface LinkStats {
  readonly rxPackets: number
  readonly rxBytes: number
  readonly rxDropped: number
  readonly txPackets: number
  readonly txBytes: number
  readonly txDropped: number
}

const killAndWait = (child: ChildProcess): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
      resume(Effect.void)
      return
    }
    const pid = child.pid
    const timer = setTimeout(() => {
      try {
        process.kill(pid, "SIGKILL")
      } catch {
        /* gone */
      }
    }, 2000)
    child.once("exit", () => {
      clearTimeout(timer)
      resume(Effect.void)
    })
    try {
      process.kill(pid, "SIGTERM")
    } catch {
      clearTimeout(timer)
      resume(Effect.void)
    }
  })

/** Creates a fresh namespace for the current scope and deletes it afterwards. */
export const withNetns = (prefix: string): Effect.Effect<Netns, NetnsError, Scope.Scope> =>
  Effect.gen(function* () {
    counter++
    const name = `mpx-${prefix}-${process.pid}-${counter}`
    yield* Effect.acquireRelease(run("ip", ["netns", "add", name]), () =>
      run("ip", ["netns", "del", name]).pipe(
        Effect.catchAll((e) => Effect.sync(() => console.warn(`netns cleanup: ${e.message}`)))
      )
    )
    const exec = (cmd: string, args: ReadonlyArray<string>, timeoutMs?: number) =>
      run("ip", ["netns", "exec", name, cmd, ...args], timeoutMs)
    const ip = (args: ReadonlyArray<string>) => run("ip", ["-n", name, ...args])
    yield* ip(["link", "set", "lo", "up"])
    yield* exec("sysctl", ["-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
    const spawn = (cmd: string, args: ReadonlyArray<string>) =>
      Effect.acquireRelease(
        Effect.try({
          try: () => spawnChild("ip", ["netns", "exec", name, cmd, ...args], { stdio: ["ignore", "pipe", "pipe"] }),
          catch: (e) => new NetnsError({ message: `cannot spawn ${cmd} in ${name}`, cause: e })
        }),
        killAndWait
      )
    const linkStats = (ifname: string) =>
      ip(["-j", "-s", "link", "show", "dev", ifname]).pipe(
        Effect.flatMap((r) =>
          Effect.try({
            try: () => {
              const j = JSON.parse(r.stdout) as Array<{
                stats64: {
                  rx: { packets: number; bytes: number; dropped: number }
                  tx: { packets: number; bytes: number; dropped: number }
                }
              }>
              const s = j[0]!.stats64
              return {
                rxPackets: s.rx.packets,
                rxBytes: s.rx.bytes,
                rxDropped: s.rx.dropped,
                txPackets: s.tx.packets,
                txBytes: s.tx.bytes,
                txDropped: s.tx.dropped
              }
            },
            catch: (e) => new NetnsError({ message: `cannot parse link stats of ${ifname}`, cause: e })
          })
        )
      )
    return { name, exec, ip, spawn, linkStats }
  })

export interface TapInNetnsOptions {
  /** Interface name; default a unique one. */
  readonly name?: string
  /** Our (userspace) MAC. */
  readonly mac: MacAddress
  readonly mtu?: number
  readonly offload?: boolean
  readonly vnetHdr?: boolean
  /** Tap.make's adaptive busy polling (microseconds; default off). */
  readonly busyPollUs?: number
  /** Address of the kernel side, default 198.51.100.1/24 (RFC 5737). */
  readonly cidr?: string
  /** Kernel-side txqueuelen (default 10000: the default 1000 drops bursts). */
  readonly txQueueLen?: number
  /** Permanent neighbour entries on the kernel side: [ip, mac] pairs. */
  readonly neighbors?: ReadonlyArray<readonly [string, string]>
}

/**
 * Opens a TAP (in our namespace), moves its kernel side into `ns` and configures it. The TAP is
 * closed before the namespace is deleted (scope order), and disappears with the fd.
 */
export const withTapInNetns = (
  ns: Netns,
  opts: TapInNetnsOptions
): Effect.Effect<NicShape, NicError | NetnsError, Scope.Scope> =>
  Effect.gen(function* () {
    const name = opts.name ?? uniqueIfName("mt")
    const nic = yield* Tap.make({
      name,
      mac: opts.mac,
      ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}),
      ...(opts.offload !== undefined ? { offload: opts.offload } : {}),
      ...(opts.vnetHdr !== undefined ? { vnetHdr: opts.vnetHdr } : {}),
      ...(opts.busyPollUs !== undefined ? { busyPollUs: opts.busyPollUs } : {})
    })
    yield* run("ip", ["link", "set", "dev", nic.name, "netns", ns.name])
    yield* ns.ip(["link", "set", "dev", nic.name, "txqueuelen", String(opts.txQueueLen ?? 10_000)])
    if (opts.mtu !== undefined) yield* ns.ip(["link", "set", "dev", nic.name, "mtu", String(opts.mtu)])
    yield* ns.ip(["addr", "add", opts.cidr ?? "198.51.100.1/24", "dev", nic.name])
    yield* ns.ip(["link", "set", "dev", nic.name, "up"])
    for (const [ip, mac] of opts.neighbors ?? []) {
      yield* ns.ip(["neigh", "replace", ip, "lladdr", mac, "dev", nic.name, "nud", "permanent"])
    }
    return nic
  })

/** The brief's name for describeRoot: run as root, skip with one line outside CI, fail under CI. */
export const skipUnlessRoot = describeRoot
