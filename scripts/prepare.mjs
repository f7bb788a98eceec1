// npm's `prepare` step. npm runs it on `npm install` / `npm ci` in a clone, on `npm pack` / `npm publish`, and in
// the clone it makes for `npm install <git url>` (after installing the devDependencies there). It builds dist/ from
// a clean slate, so a tarball never carries the output of sources that were deleted since the last build.
// The TAP addon is not built here: the `install` script (node-gyp) does that wherever the package is installed.
import { spawnSync } from "node:child_process"
import { existsSync, rmSync } from "node:fs"
import { createRequire } from "node:module"

let tsc
try {
  tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
} catch {
  tsc = undefined
}
if (tsc === undefined) {
  // `npm ci --omit=dev` in a checkout that already has a build: nothing to build with, nothing missing
  if (existsSync("dist/main.js")) {
    console.log("prepare: TypeScript is not installed (devDependencies omitted); keeping the dist/ that is there")
    process.exit(0)
  }
  console.error("prepare: dist/ is missing and TypeScript (a devDependency) is not installed; install with devDependencies")
  process.exit(1)
}
rmSync("dist", { recursive: true, force: true })
const r = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { stdio: "inherit" })
process.exit(r.status ?? 1)
