import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import { sleepMillis } from "../../src/layers/Sleep.js"

describe("sleepMillis", () => {
  it.effect("a sleep past the 2^31-1 ms timer limit fires at its deadline, not before", () =>
    Effect.gen(function* () {
      const ms = 30 * 24 * 3600 * 1000 // 30 days: Effect.sleep would never fire
      const f = yield* Effect.fork(sleepMillis(ms))
      yield* TestClock.adjust(ms - 1)
      expect((yield* Fiber.poll(f))._tag).toBe("None")
      yield* TestClock.adjust(1)
      expect((yield* Fiber.poll(f))._tag).toBe("Some")
    })
  )
  it.effect("short sleeps are one plain sleep; zero and negative return at once", () =>
    Effect.gen(function* () {
      const f = yield* Effect.fork(sleepMillis(1500))
      yield* TestClock.adjust(1499)
      expect((yield* Fiber.poll(f))._tag).toBe("None")
      yield* TestClock.adjust(1)
      expect((yield* Fiber.poll(f))._tag).toBe("Some")
      yield* sleepMillis(0)
      yield* sleepMillis(-5)
    })
  )
})
