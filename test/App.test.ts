/**
 * The program's layer graph (src/App.ts): the start-up banner is printed only once the link is open, so a TAP
 * that cannot be opened shows its error and not an interface that never existed.
 *
 * "lo" is never a TAP: as root TUNSETIFF refuses the name (EINVAL), without root the open is refused (EPERM).
 * Either way nothing is created and no frame is sent.
 */
import { afterEach, expect, it, vi } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as net from "node:net"
import * as App from "../src/App.js"
import { decodeArgvEither, isConfig, type Config } from "../src/config/KernelArgs.js"

const configOf = (argv: ReadonlyArray<string>): Config => {
  const d = decodeArgvEither(argv, { hostname: "test" })
  if (Either.isLeft(d) || !isConfig(d.right)) throw new Error(`not a config: ${argv.join(" ")}`)
  return d.right
}

/** Everything written to stdout while `f` runs (and not passed on). */
const capturingStdout = <A, E>(f: Effect.Effect<A, E>): Effect.Effect<{ readonly result: Exit.Exit<A, E>; readonly out: string }> =>
  Effect.suspend(() => {
    let out = ""
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      out += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk)
      return true
    })
    return Effect.exit(f).pipe(
      Effect.ensuring(Effect.sync(() => spy.mockRestore())),
      Effect.map((result) => ({ result, out }))
    )
  })

afterEach(() => {
  vi.restoreAllMocks()
})

it("the banner names the interface and the static address", () => {
  const lines = App.bannerLines(configOf(["--tap", "tap7", "-i", "198.51.100.2/24", "-g", "198.51.100.1", "--mac", "02:00:00:00:00:02"]))
  expect(lines).toEqual([
    "Interface tap7: MAC 02:00:00:00:00:02, MTU 1500, offloads requested, busy poll 5000 us",
    "Initialize network interface 0: 198.51.100.2 netmask 255.255.255.0 gw 198.51.100.1",
    "IPv6: fe80::ff:fe00:2/64 (tentative until DAD)"
  ])
  expect(App.bannerLines(configOf(["--tap", "tap7", "--no-offload", "--busy-poll", "0", "--no-ipv6"]))).toEqual([
    expect.stringMatching(/^Interface tap7: MAC [0-9a-f:]{17}, MTU 1500, offloads off, busy poll off$/),
    "Initialize network interface 0: DHCP",
    "IPv6: off (--no-ipv6)"
  ])
  // RFC 5952 form whatever form was given
  expect(App.bannerLines(configOf(["--tap", "tap7", "--mac", "02:00:00:00:00:02", "--ip6", "2001:DB8:0:0:0:0:0:0002/64"]))[2]).toBe(
    "IPv6: fe80::ff:fe00:2/64, 2001:db8::2/64 (tentative until DAD)"
  )
})

it.effect("a TAP that cannot be opened: the layer fails with the open error and prints no banner", () =>
  Effect.gen(function* () {
    const cfg = configOf(["--tap", "lo", "-i", "198.51.100.2/24"])
    const { result, out } = yield* capturingStdout(Effect.scoped(Layer.build(App.layer(cfg))))
    expect(Exit.isFailure(result)).toBe(true)
    if (Exit.isFailure(result)) {
      const e = result.cause._tag === "Fail" ? result.cause.error : undefined
      expect(e).toMatchObject({ _tag: "NicError", reason: "Open" })
      expect(String((e as { message?: string }).message)).toContain('"lo"')
    }
    expect(out).toBe("")
  })
)

/** A TCP listener of our own on the host's loopback (port chosen by the kernel), closed with the scope. */
const takenPort = Effect.acquireRelease(
  Effect.async<net.Server>((resume) => {
    const s = net.createServer()
    s.listen({ host: "127.0.0.1", port: 0 }, () => resume(Effect.succeed(s)))
  }),
  (s) => Effect.async<void>((resume) => void s.close(() => resume(Effect.void)))
).pipe(Effect.map((s) => (s.address() as net.AddressInfo).port))

it.scoped("--metrics on a port that is taken: the layer fails with MetricsServerError before the TAP is opened (no banner)", () =>
  Effect.gen(function* () {
    const port = yield* takenPort
    const cfg = configOf(["--tap", "lo", "-i", "198.51.100.2/24", "--metrics", `127.0.0.1:${port}`])
    const { result, out } = yield* capturingStdout(Effect.scoped(Layer.build(App.layer(cfg))))
    expect(Exit.isFailure(result)).toBe(true)
    if (Exit.isFailure(result)) {
      const e = result.cause._tag === "Fail" ? result.cause.error : undefined
      expect(e).toMatchObject({ _tag: "MetricsServerError", code: "EADDRINUSE", port })
    }
    expect(out).toBe("")
  })
)

it.effect("--metrics on a free port and a TAP that cannot be opened: NicError, and the metrics port is released with the scope", () =>
  Effect.gen(function* () {
    const port = yield* Effect.scoped(takenPort) // a port that was just free
    const cfg = configOf(["--tap", "lo", "-i", "198.51.100.2/24", "--metrics", `127.0.0.1:${port}`])
    const { result } = yield* capturingStdout(Effect.scoped(Layer.build(App.layer(cfg))))
    expect(Exit.isFailure(result) && result.cause._tag === "Fail" ? result.cause.error : undefined).toMatchObject({ _tag: "NicError" })
    // bound before the TAP failed, closed since: the port can be taken again at once
    const again = yield* Effect.async<boolean>((resume) => {
      const s = net.createServer()
      s.once("error", () => resume(Effect.succeed(false)))
      s.listen({ host: "127.0.0.1", port, exclusive: true }, () => s.close(() => resume(Effect.succeed(true))))
    })
    expect(again).toBe(true)
  })
)
