import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // One file at a time: the e2e tests judge the real iperf client by elapsed time (iperf-wire.md §E) and run
    // 100 MB transfers; on 2 cores a second file running beside them would make those timings flaky.
    fileParallelism: false,
    maxWorkers: 1,
    minWorkers: 1,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ["default", ["json", { outputFile: "test-results/vitest.json" }]]
  }
})
