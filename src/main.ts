#!/usr/bin/env node
/**
 * The `miniperf` entry. It answers `--version` at once; otherwise it lowers V8's tier-up budget before any stack code is
 * loaded, then runs the program (cli.ts).
 *
 * Why: V8 compiles a function to optimized machine code only after it has run about 3 x 66 KB of its own bytecode
 * (--interrupt-budget=67584, --ticks-before-optimization=3). A bulk transfer gets there in milliseconds, but sparse
 * traffic does not: after 1000 pings 2 ms apart the whole per-frame path (TAP callback, Ethernet, IPv4, ICMP, TX) was
 * still in the interpreter and baseline tiers (node --trace-opt). With a budget of 2048 it is optimized within the first
 * few dozen frames. Measured on this project's machine, fresh server, 1000 pings at 2 ms: RTT median 33-93 us with the
 * default, 23-24 us with 2048 (8192: 26-31, 16384: 36-41); single-stream throughput unchanged in A/B runs.
 * Apps that embed the stack as a library can pass the same flag to node.
 */
import { setFlagsFromString } from "node:v8"
import { VERSION, earlyAnswer } from "./version.js"

// `--version`/`-v` is answered here, before the stack (and Effect) is loaded: that load costs about a second.
// Everything else, `--help` and a `-v` inside `--args` included, goes through cli.ts and its one decoder.
if (earlyAnswer(process.argv.slice(2)) === "Version") {
  process.stdout.write(`miniperf ${VERSION}\n`)
} else {
  setFlagsFromString("--interrupt-budget=2048")
  await import("./cli.js")
}
