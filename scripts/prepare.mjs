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
  const packing = process.env.npm_command === "pack" || process.env.npm_command === "publish"
  if (packing && !existsSync("dist/main.js")) {
    console.error("prepare: dist/ is missing and TypeScript (a devDependency) is not installed: a tarball would not run")
    process.exit(1)
  }
  // `npm ci --omit=dev` in a checkout: nothing to build with. Say so, but do not fail the install over it.
  console.warn(
    existsSync("dist/main.js")
      ? "prepare: TypeScript is not installed (devDependencies omitted); keeping the dist/ that is there"
      : "prepare: TypeScript is not installed (devDependencies omitted), so dist/ was not built: run `npm run build` with them"
  )
  process.exit(0)
}
rmSync("dist", { recursive: true, force: true })
const r = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { stdio: "inherit" })
process.exit(r.status ?? 1)
