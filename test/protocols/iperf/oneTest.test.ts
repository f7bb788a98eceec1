/** What "one test" is for iperf 2 with --one-off (src/protocols/iperf/oneTest.ts). */
import { describe, expect, it } from "vitest"
import * as OneTest from "../../../src/protocols/iperf/oneTest.js"

const A = 0xc6336401 // 198.51.100.1
const B = 0xc6336407 // 198.51.100.7

describe("oneTest", () => {
  it("one stream: over when it ends", () => {
    const t = OneTest.make()
    expect(OneTest.join(t, A, 1)).toBe(true)
    expect(OneTest.partEnds(t)).toBe("Over")
    expect(t.over).toBe(true)
    expect(OneTest.join(t, A, 1)).toBe(false) // nothing joins a test that is over
  })

  it("a header with 0 threads (an old client) is one stream", () => {
    const t = OneTest.make()
    expect(OneTest.join(t, A, 0)).toBe(true)
    expect(OneTest.partEnds(t)).toBe("Over")
  })

  it("-P 3: the client's three streams, not another client's, not a fourth", () => {
    const t = OneTest.make()
    expect(OneTest.join(t, A, 3)).toBe(true)
    expect(OneTest.join(t, B, 1)).toBe(false)
    expect(OneTest.join(t, A, 3)).toBe(true)
    expect(OneTest.partEnds(t)).toBe("Running")
    expect(OneTest.join(t, A, 3)).toBe(true)
    expect(OneTest.join(t, A, 3)).toBe(false)
    expect(OneTest.partEnds(t)).toBe("Running")
    expect(OneTest.partEnds(t)).toBe("Over")
  })

  it("connect-backs and sent streams are parts: -r ends after our stream back ends", () => {
    const t = OneTest.make()
    OneTest.join(t, A, 1)
    OneTest.partStarts(t) // the connect-back, taken before the session's own part ends
    expect(OneTest.partEnds(t)).toBe("Running")
    expect(OneTest.partEnds(t)).toBe("Over")
  })

  it("fewer streams than announced: Short, then over after the grace unless one joined meanwhile", () => {
    const t = OneTest.make()
    OneTest.join(t, A, 2)
    expect(OneTest.partEnds(t)).toBe("Short")
    expect(OneTest.join(t, A, 2)).toBe(true) // the late one
    expect(OneTest.expire(t)).toBe(false) // it runs: the old grace timer ends nothing
    expect(OneTest.partEnds(t)).toBe("Over")

    const u = OneTest.make()
    OneTest.join(u, A, 64)
    expect(OneTest.partEnds(u)).toBe("Short")
    expect(OneTest.expire(u)).toBe(true)
    expect(u.over).toBe(true)
    expect(OneTest.expire(u)).toBe(false) // once
  })

  it("expire before any test does nothing", () => {
    const t = OneTest.make()
    expect(OneTest.expire(t)).toBe(false)
    expect(t.over).toBe(false)
  })
})
