/**
 * The npm package as a user gets it: this checkout (without node_modules, dist/ or build/, as a clone has it) is
 * packed with `npm pack`, whose `prepare` builds dist/; the tarball is installed into an empty project, whose
 * `install` script builds the TAP addon; then the installed bin and library are used the way the README says,
 * and the examples in examples/ are compiled against the installed package's types and run.
 *
 * The dependencies come from npm's cache when they are there (`npm ci` put them there), else from the registry.
 * Nothing here touches a network interface: the only TAP attempt is on "lo", which is refused. `npx --yes=false`
 * runs the installed bin and never fetches a package (`--no`, its short form, would swallow the next word).
 */
import { execFile } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const ROOT = path.resolve(__dirname, "../..")
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** npm's own lifecycle variables would tell a nested npm it runs inside this package's `npm test`. */
const childEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("npm_lifecycle_") && !k.startsWith("npm_package_")))

const run = (cmd: string, args: ReadonlyArray<string>, cwd: string, timeoutS = 120): Promise<Run> =>
  new Promise((resolve) => {
    execFile(cmd, [...args], { cwd, env: childEnv(), timeout: timeoutS * 1000, killSignal: "SIGKILL", maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : null
      resolve({ code, stdout: String(stdout), stderr: String(stderr) })
    })
  })

const ok = (r: Run, what: string): Run => {
  if (r.code !== 0) throw new Error(`${what} exited with ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`)
  return r
}

/** What a clone has: everything but the ignored build output and installed modules. */
const LEFT_OUT = new Set(["node_modules", "dist", "build", "test-results", ".git"])

let tmp = ""
let app = ""
let tarball = ""
let packed: ReadonlyArray<string> = []

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), "miniperf-pack-"))
  const checkout = path.join(tmp, "checkout")
  cpSync(ROOT, checkout, {
    recursive: true,
    filter: (src) => {
      const rel = path.relative(ROOT, src)
      return !LEFT_OUT.has(rel.split(path.sep)[0]!) && !rel.endsWith(".pcap") && !rel.endsWith(".tgz")
    }
  })
  expect(existsSync(path.join(checkout, "dist"))).toBe(false)
  // the devDependencies `prepare` needs (TypeScript), as npm installs them in the clone of a git dependency
  symlinkSync(path.join(ROOT, "node_modules"), path.join(checkout, "node_modules"), "dir")

  const out = path.join(tmp, "out")
  mkdirSync(out)
  ok(await run("npm", ["pack", "--pack-destination", out, "--loglevel=error"], checkout, 240), "npm pack")
  const tgz = readdirSync(out).filter((f) => f.endsWith(".tgz"))
  expect(tgz).toEqual([`miniperf-${VERSION}.tgz`])
  tarball = path.join(out, tgz[0]!)
  packed = ok(await run("tar", ["-tzf", tarball], tmp), "tar").stdout.trim().split("\n").map((p) => p.replace(/^package\//, ""))

  app = path.join(tmp, "app")
  mkdirSync(app)
  writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true, type: "module" }))
  ok(
    await run("npm", ["install", tarball, "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], app, 300),
    "npm install <tarball>"
  )
}, 600_000)

afterAll(() => {
  if (tmp !== "") rmSync(tmp, { recursive: true, force: true })
})

describe("npm pack", () => {
  it("`prepare` built dist/ in a checkout that had none, and the tarball has what runs and nothing else", () => {
    for (const f of ["package.json", "README.md", "binding.gyp", "native/tap.c", "dist/main.js", "dist/cli.js", "dist/api/index.js", "dist/api/index.d.ts"]) {
      expect(packed).toContain(f)
    }
    const unexpected = packed.filter(
      (f) => !["package.json", "README.md", "binding.gyp", "native/tap.c"].includes(f) && !/^dist\/.+\.(js|d\.ts)$/.test(f)
    )
    expect(unexpected).toEqual([]) // no src/, test/, examples/, scripts/, source maps or build/
  })
})

describe("installed from the tarball", () => {
  it("the install script built the TAP addon", () => {
    expect(existsSync(path.join(app, "node_modules/miniperf/build/Release/tap.node"))).toBe(true)
  })

  it("npx miniperf --version and -v print the version", async () => {
    for (const flag of ["--version", "-v"]) {
      const r = ok(await run("npx", ["--yes=false", "miniperf", flag], app), `npx miniperf ${flag}`)
      expect(r.stdout).toBe(`miniperf ${VERSION}\n`)
    }
  })

  it("npx miniperf --help prints the usage", async () => {
    const r = ok(await run("npx", ["--yes=false", "miniperf", "--help"], app), "npx miniperf --help")
    expect(r.stdout).toMatch(/^Usage: miniperf \[options\]/)
    expect(r.stdout).toContain("-v, --version")
  })

  it("a TAP that cannot be opened: exit 1 with the reason, and no start-up banner", async () => {
    const r = await run("npx", ["--yes=false", "miniperf", "--tap", "lo", "-i", "198.51.100.2/24"], app, 60)
    expect(r.code).toBe(1)
    expect(r.stdout).toBe("")
    expect(r.stderr).toContain('cannot open TAP "lo"')
  })

  it('import "miniperf" gives every layer an app needs; deep imports are closed', async () => {
    const names = ["Dhcp", "FaultInjector", "Interface", "Iperf", "Iperf3", "Nic", "Pcap", "SimLink", "Socket", "Stack", "Stats", "Tap", "Tcp", "Udp"]
    const r = ok(
      await run("node", ["--input-type=module", "-e", `import * as m from "miniperf"; console.log(JSON.stringify(Object.keys(m)))`], app),
      'import "miniperf"'
    )
    const keys = JSON.parse(r.stdout) as Array<string>
    expect(keys).toEqual(expect.arrayContaining(names))
    const probe = `import * as m from "miniperf"; console.log(typeof m.Stack.layer, typeof m.Tcp.layer, typeof m.Iperf.layer, typeof m.SimLink.make, m.VERSION)`
    expect(ok(await run("node", ["--input-type=module", "-e", probe], app), "probe").stdout).toBe(`function function function function ${VERSION}\n`)
    const deep = await run("node", ["--input-type=module", "-e", `import "miniperf/dist/layers/Tcp.js"`], app)
    expect(deep.code).not.toBe(0)
    expect(deep.stderr).toContain("ERR_PACKAGE_PATH_NOT_EXPORTED")
  })

  it("the examples compile against the installed package's types and run", async () => {
    const ex = path.join(app, "examples")
    cpSync(path.join(ROOT, "examples"), ex, { recursive: true, filter: (s) => !s.endsWith(".md") })
    writeFileSync(
      path.join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, exactOptionalPropertyTypes: true,
          skipLibCheck: true, outDir: "out", rootDir: "examples",
          // @types/node is a devDependency of ours, not installed in the app
          typeRoots: [path.join(ROOT, "node_modules/@types")], types: ["node"]
        },
        include: ["examples"]
      })
    )
    ok(await run(process.execPath, [path.join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], app, 180), "tsc on examples/")

    const echo = ok(await run("node", ["out/echo.js"], app, 60), "examples/echo.ts")
    expect(echo.stdout).toBe("echoed: hello through a userspace TCP\n")

    const http = ok(await run("node", ["out/http-echo.js"], app, 60), "examples/http-echo.ts")
    const [head, body] = http.stdout.split("\r\n\r\n")
    expect(head!.split("\r\n")[0]).toBe("HTTP/1.1 200 OK")
    expect(head).toMatch(/^content-length: 16$/m)
    expect(body).toBe("POST /echo hello\n")
  }, 300_000)

  // last: it takes Effect away from the installed package
  it("--version and -v answer before the stack loads: they work even with Effect missing, --help does not", async () => {
    const effect = path.join(app, "node_modules/effect")
    renameSync(effect, `${effect}.hidden`)
    try {
      for (const flag of ["--version", "-v"]) {
        expect(ok(await run("npx", ["--yes=false", "miniperf", flag], app), `npx miniperf ${flag}`).stdout).toBe(`miniperf ${VERSION}\n`)
      }
      const help = await run("npx", ["--yes=false", "miniperf", "--help"], app)
      expect(help.code).not.toBe(0)
      expect(help.stderr).toContain("ERR_MODULE_NOT_FOUND")
    } finally {
      renameSync(`${effect}.hidden`, effect)
    }
  })
})
