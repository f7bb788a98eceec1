/**
 * The iperf3 server machine with plain numbers for time: every phase transition, TEST_END, a client that
 * vanishes or sends garbage, a second client while busy, and the deadlines.
 */
import { describe, expect, it } from "vitest"
import * as S from "../../../src/protocols/iperf3/session.js"
import * as W from "../../../src/protocols/iperf3/wire.js"

const enc = new TextEncoder()
const COOKIE = "ms3e2nj2ifntfchkeuw3dkcqrcvhe4txh7gp"
const OTHER = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
const cookie = (s = COOKIE): Uint8Array => Uint8Array.from([...enc.encode(s), 0])
const peer = (port: number): S.PeerInfo => ({ local: "198.51.100.2", localPort: 5201, remote: "198.51.100.1", remotePort: port })
const params = (o: Record<string, unknown> = {}): Uint8Array =>
  W.encodeJson({ tcp: true, omit: 0, time: 2, num: 0, blockcount: 0, parallel: 1, len: 131072, pacing_timer: 1000, client_version: "3.12", ...o })

/** A machine with helpers that return the actions of each call. */
const harness = (opts: S.ServerOptions = {}) => {
  const s = S.makeServer(opts)
  const out: Array<S.Action> = []
  const take = (): Array<S.Action> => out.splice(0, out.length)
  return {
    s,
    accept: (conn: number, now = 0) => (S.onAccept(s, conn, peer(40000 + conn), now, out), take()),
    bytes: (conn: number, b: Uint8Array, now = 0) => (S.onBytes(s, conn, b, 0, b.length, now, out), take()),
    closed: (conn: number, reset: boolean, now = 0) => (S.onPeerClosed(s, conn, reset, now, out), take()),
    tick: (now: number) => (S.onTick(s, now, out), take()),
    connect: (key: number, now = 0) => {
      const ok = S.onUdpConnect(s, key, peer(key % 65536), now, out)
      return { ok, actions: take() }
    }
  }
}

const writes = (as: ReadonlyArray<S.Action>, conn?: number): Array<Array<number>> =>
  as.filter((a): a is Extract<S.Action, { _tag: "Write" }> => a._tag === "Write" && (conn === undefined || a.conn === conn)).map((a) => [...a.data])
const closes = (as: ReadonlyArray<S.Action>) =>
  as.filter((a): a is Extract<S.Action, { _tag: "Close" }> => a._tag === "Close").map((a) => ({ conn: a.conn, abort: a.abort }))
const tags = (as: ReadonlyArray<S.Action>) => as.map((a) => a._tag)
const logs = (as: ReadonlyArray<S.Action>) => as.flatMap((a) => (a._tag === "Log" ? [a.line] : []))
const jsonOf = (data: ReadonlyArray<number>): Record<string, unknown> => {
  const r = W.makeReader()
  W.feed(r, Uint8Array.from(data))
  const j = W.takeJson(r)
  if (j === W.NEED_MORE || "_drop" in j) throw new Error("not a JSON frame")
  return j.json as Record<string, unknown>
}
const clientResults = (ids: ReadonlyArray<number>, bytes = 1000) =>
  W.encodeJson({
    cpu_util_total: 1, cpu_util_user: 0.5, cpu_util_system: 0.5, sender_has_retransmits: 1,
    streams: ids.map((id) => ({ id, bytes, retransmits: 0, jitter: 0, errors: 0, packets: 0, start_time: 0, end_time: 2 }))
  })

/** Control connection 1 through CREATE_STREAMS with `o` as parameters. */
const toCreateStreams = (h: ReturnType<typeof harness>, o: Record<string, unknown> = {}, now = 0) => {
  expect(h.accept(1, now)).toEqual([])
  const a = h.bytes(1, cookie(), now)
  expect(writes(a, 1)).toEqual([[W.PARAM_EXCHANGE]])
  expect(logs(a)).toEqual(["Accepted connection from 198.51.100.1, port 40001"])
  const b = h.bytes(1, params(o), now)
  expect(writes(b, 1)).toEqual([[W.CREATE_STREAMS]])
  expect(h.s.test?.phase).toBe("CreateStreams")
}

/** Streams on connections 10, 11, ... with the right cookie; returns the actions of the last one. */
const addStreams = (h: ReturnType<typeof harness>, n: number, now = 0) => {
  let last: Array<S.Action> = []
  for (let i = 0; i < n; i++) {
    expect(h.accept(10 + i, now)).toEqual([])
    last = h.bytes(10 + i, cookie(), now)
  }
  return last
}

describe("iperf3 session: a whole TCP test", () => {
  it("cookie -> 9, parameters -> 10, stream -> 1 and 2, data counted, TEST_END -> 13, results -> results and 14, IPERF_DONE -> close", () => {
    const h = harness()
    toCreateStreams(h)
    const start = addStreams(h, 1, 100)
    expect(writes(start, 1)).toEqual([[W.TEST_START], [W.TEST_RUNNING]])
    expect(tags(start)).toContain("StartStreams")
    expect(logs(start)).toEqual(["[  1] local 198.51.100.2 port 5201 connected to 198.51.100.1 port 40010"])
    const t = h.s.test!
    expect(t.phase).toBe("Running")
    expect(S.pollAt(h.s)).toBe(100 + S.STALL_CHECK_MS) // the first look at progress comes before T + 40 s
    h.bytes(10, new Uint8Array(5000), 500)
    h.bytes(10, new Uint8Array(3000), 1500)
    expect(t.streams[0]!.bytes).toBe(8000)
    const end = h.bytes(1, Uint8Array.of(W.TEST_END), 2100)
    expect(tags(end)).toEqual(["StopStreams", "Close", "Write"])
    expect(closes(end)).toEqual([{ conn: 10, abort: false }])
    expect(writes(end, 1)).toEqual([[W.EXCHANGE_RESULTS]])
    expect(t.phase).toBe("ExchangeResults")
    // bytes after TEST_END are not counted
    h.bytes(10, new Uint8Array(100), 2101)
    expect(t.streams[0]!.bytes).toBe(8000)
    S.setCpu(t, 12.5, 10, 2.5)
    const res = h.bytes(1, clientResults([1]), 2110)
    const w = writes(res, 1)
    expect(w.length).toBe(2)
    expect(jsonOf(w[0]!)).toEqual({
      cpu_util_total: 12.5, cpu_util_user: 10, cpu_util_system: 2.5, sender_has_retransmits: -1,
      streams: [{ id: 1, bytes: 8000, retransmits: -1, jitter: 0, errors: 0, packets: 0, start_time: 0, end_time: 2 }]
    })
    expect(w[1]).toEqual([W.DISPLAY_RESULTS])
    expect(logs(res).at(-1)).toBe("[  1]   0.00-2.00   sec  7.81 KBytes  32.0 Kbits/sec                  receiver")
    expect(t.phase).toBe("DisplayResults")
    const done = h.bytes(1, Uint8Array.of(W.IPERF_DONE), 2120)
    expect(closes(done)).toEqual([{ conn: 1, abort: false }])
    expect(done.at(-1)).toMatchObject({ _tag: "TestOver", completed: true })
    expect(h.s.test).toBeUndefined()
    expect(h.s.stats).toMatchObject({ tests: 1, testsCompleted: 1, testsAborted: 0 })
    // the next client is served
    S.onGone(h.s, 1)
    S.onGone(h.s, 10)
    expect(h.accept(2, 3000)).toEqual([])
    expect(writes(h.bytes(2, cookie(OTHER), 3000))).toEqual([[W.PARAM_EXCHANGE]])
    expect(h.s.test?.n).toBe(2)
  })

  it("a cookie in 1-byte segments, and cookie + parameters in one segment, are both read", () => {
    const h = harness()
    h.accept(1)
    const c = cookie()
    for (let i = 0; i < c.length - 1; i++) expect(h.bytes(1, c.subarray(i, i + 1))).toEqual([])
    expect(writes(h.bytes(1, c.subarray(36)))).toEqual([[W.PARAM_EXCHANGE]])
    const h2 = harness()
    h2.accept(1)
    const both = Uint8Array.from([...cookie(), ...params()])
    expect(writes(h2.bytes(1, both))).toEqual([[W.PARAM_EXCHANGE], [W.CREATE_STREAMS]])
  })

  it("parameters split across segments wait for the last byte", () => {
    const h = harness()
    h.accept(1)
    h.bytes(1, cookie())
    const p = params()
    for (let i = 0; i < p.length - 1; i++) expect(writes(h.bytes(1, p.subarray(i, i + 1)))).toEqual([])
    expect(writes(h.bytes(1, p.subarray(p.length - 1)))).toEqual([[W.CREATE_STREAMS]])
  })

  it("-P 4: stream ids 1, 3, 4, 5, and 1 and 2 only after the fourth", () => {
    const h = harness()
    toCreateStreams(h, { parallel: 4 })
    for (let i = 0; i < 3; i++) {
      h.accept(10 + i)
      expect(writes(h.bytes(10 + i, cookie()), 1)).toEqual([])
    }
    h.accept(13)
    expect(writes(h.bytes(13, cookie()), 1)).toEqual([[W.TEST_START], [W.TEST_RUNNING]])
    expect(h.s.test!.streams.map((x) => x.id)).toEqual([1, 3, 4, 5])
    expect(h.s.test!.streams.every((x) => !x.sender)).toBe(true)
  })

  it("--bidir -P 2: the first two streams receive, the next two send", () => {
    const h = harness()
    toCreateStreams(h, { parallel: 2, bidirectional: true })
    addStreams(h, 4)
    expect(h.s.test!.streams.map((x) => [x.id, x.sender])).toEqual([[1, false], [3, false], [4, true], [5, true]])
  })

  it("-R: every stream sends; results report retransmits and sender_has_retransmits 1; data from the client is not counted", () => {
    const h = harness()
    toCreateStreams(h, { reverse: true })
    addStreams(h, 1, 0)
    const t = h.s.test!
    const st = t.streams[0]!
    expect(st.sender).toBe(true)
    h.bytes(10, new Uint8Array(10))
    expect(st.bytes).toBe(0)
    expect(S.sendLen(t, st, 65536, 10)).toBe(65536)
    S.commitSent(t, st, 65536, 3)
    h.bytes(1, Uint8Array.of(W.TEST_END), 2000)
    expect(S.sendLen(t, st, 65536, 2000)).toBe(0)
    expect(S.senderDone(t, st)).toBe(true)
    const res = h.bytes(1, clientResults([1]), 2001)
    const j = jsonOf(writes(res, 1)[0]!)
    expect(j["sender_has_retransmits"]).toBe(1)
    expect(j["streams"]).toEqual([{ id: 1, bytes: 65536, retransmits: 3, jitter: 0, errors: 0, packets: 0, start_time: 0, end_time: 2 }])
    expect(logs(res).at(-1)).toMatch(/^\[  1\]   0\.00-2\.00   sec  64\.0 KBytes   262 Kbits\/sec    3             sender$/)
  })

  it("-n: the test's sending budget is shared by its streams and never overshot", () => {
    const h = harness()
    toCreateStreams(h, { reverse: true, time: 0, num: 100_000, parallel: 2 })
    addStreams(h, 2)
    const t = h.s.test!
    const [a, b] = t.streams as [S.StreamState, S.StreamState]
    S.commitSent(t, a, S.sendLen(t, a, 65536, 1), 0)
    expect(S.sendLen(t, b, 65536, 1)).toBe(100_000 - 65536)
    S.commitSent(t, b, 100_000 - 65536, 0)
    expect(S.sendLen(t, a, 65536, 1)).toBe(0)
    expect(S.senderDone(t, a)).toBe(true)
    expect(t.sentTotal).toBe(100_000)
  })

  it("-b: a paced sender may send bandwidth x elapsed time, per stream", () => {
    const h = harness()
    toCreateStreams(h, { reverse: true, bandwidth: 8_000_000 }) // 1 MB/s = 1000 bytes per ms
    addStreams(h, 1, 1000)
    const t = h.s.test!
    const st = t.streams[0]!
    expect(S.sendLen(t, st, 65536, 1000)).toBe(0)
    expect(S.senderDone(t, st)).toBe(false)
    expect(S.sendLen(t, st, 65536, 1010)).toBe(10_000)
    S.commitSent(t, st, 10_000, 0)
    expect(S.sendLen(t, st, 65536, 1010)).toBe(0)
    expect(S.sendLen(t, st, 65536, 1200)).toBe(65536)
  })

  it("--omit: bytes of the omit period are left out, and the interval starts after it", () => {
    const h = harness()
    toCreateStreams(h, { omit: 1 })
    addStreams(h, 1, 0)
    expect(S.pollAt(h.s)).toBe(1000)
    h.bytes(10, new Uint8Array(700), 500)
    h.tick(1000)
    expect(h.s.test!.omitDone).toBe(true)
    h.bytes(10, new Uint8Array(300), 1500)
    h.bytes(1, Uint8Array.of(W.TEST_END), 3000)
    const j = jsonOf(writes(h.bytes(1, clientResults([1]), 3001), 1)[0]!)
    expect(j["streams"]).toMatchObject([{ bytes: 300, end_time: 2 }])
  })

  it("--get-server-output: our lines for this test go back as server_output_text", () => {
    const h = harness()
    toCreateStreams(h, { get_server_output: 1 })
    addStreams(h, 1)
    h.bytes(1, Uint8Array.of(W.TEST_END), 2000)
    const j = jsonOf(writes(h.bytes(1, clientResults([1]), 2001), 1)[0]!)
    // 3.12's order: accepted, the stream, then the summary block (no interval lines: this machine has none set)
    expect(j["server_output_text"]).toMatch(
      /^Accepted connection from 198\.51\.100\.1, port 40001\n\[  1\] local [^\n]*\n- - -[- ]*\n\[ ID\] Interval[^\n]*\n\[  1\] [^\n]*receiver\n$/
    )
  })
})

describe("iperf3 session: other clients, bad cookies, garbage", () => {
  it("a second client while a test runs gets ACCESS_DENIED at once (no read), then a close", () => {
    const h = harness()
    toCreateStreams(h)
    addStreams(h, 1)
    const a = h.accept(50)
    expect(writes(a, 50)).toEqual([[0xff]])
    expect(closes(a)).toEqual([{ conn: 50, abort: false }])
    expect(logs(a)[0]).toMatch(/busy running test #1/)
    // what it sends afterwards is ignored; the test goes on
    expect(h.bytes(50, cookie(OTHER))).toEqual([])
    expect(h.s.test?.phase).toBe("Running")
    expect(h.s.stats.denied).toBe(1)
  })

  it("while parameters are awaited a new connection is denied too", () => {
    const h = harness()
    h.accept(1)
    h.bytes(1, cookie())
    expect(writes(h.accept(2), 2)).toEqual([[0xff]])
  })

  it("during CREATE_STREAMS: another cookie, an invalid cookie and a stream too many get 0xff", () => {
    const h = harness()
    toCreateStreams(h, { parallel: 2 })
    h.accept(20)
    expect(writes(h.bytes(20, cookie(OTHER)), 20)).toEqual([[0xff]])
    h.accept(21)
    const bad = h.bytes(21, enc.encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n0123456789"))
    expect(writes(bad, 21)).toEqual([[0xff]])
    expect(h.s.stats.badCookies).toBe(1)
    // a connection accepted during CREATE_STREAMS whose cookie comes after the last stream
    h.accept(22)
    addStreams(h, 2)
    expect(h.s.test?.phase).toBe("Running")
    expect(writes(h.bytes(22, cookie()), 22)).toEqual([[0xff]])
    expect(h.s.test!.streams.length).toBe(2)
  })

  it("with no test, garbage instead of a cookie is refused and logged; the server stays free", () => {
    const h = harness()
    h.accept(1)
    const a = h.bytes(1, enc.encode("GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"))
    expect(writes(a, 1)).toEqual([[0xff]])
    expect(closes(a)).toEqual([{ conn: 1, abort: false }])
    expect(a.some((x) => x._tag === "Close" && x.graceMs === S.DENY_GRACE_MS)).toBe(true) // reset if not closed within 1 s
    expect(logs(a)[0]).toMatch(/^Refused 198\.51\.100\.1:40001: not an iperf3 cookie \("GET \/ HTTP\/1\.1\\x0d\\x0a\.\.\."\)$/)
    expect(h.s.test).toBeUndefined()
    h.accept(2)
    expect(writes(h.bytes(2, cookie()))).toEqual([[W.PARAM_EXCHANGE]])
  })

  it.each([
    ["bad JSON", Uint8Array.from([0, 0, 0, 5, ...enc.encode("{bad}")]), W.IE_RECVPARAMS, /bad parameters: BadJson/],
    ["an oversize length", Uint8Array.of(0x7f, 0, 0, 0), W.IE_RECVPARAMS, /bad parameters: JsonTooLong/],
    ["-P 129", params({ parallel: 129 }), W.IE_NUMSTREAMS, /"parallel" 129 is above 128/],
    ["UDP (not served)", params({ tcp: undefined, udp: true, len: 1448 }), W.IE_PROTOCOL, /UDP tests are not supported/],
    ["no protocol", params({ tcp: undefined }), W.IE_PROTOCOL, /no protocol/],
    ["a JSON array", W.encodeJson([1, 2, 3]), W.IE_RECVPARAMS, /not a JSON object/]
  ])("parameters with %s: SERVER_ERROR with the error number, close, logged, server free", (_, bytes, ierrno, why) => {
    const h = harness()
    h.accept(1)
    h.bytes(1, cookie())
    const a = h.bytes(1, bytes)
    expect(writes(a, 1)).toEqual([[...W.serverError(ierrno)]])
    expect(closes(a)).toEqual([{ conn: 1, abort: false }])
    expect(logs(a).join("\n")).toMatch(why)
    expect(a.at(-1)).toMatchObject({ _tag: "TestOver", completed: false })
    expect(h.s.test).toBeUndefined()
    expect(h.s.stats.testsAborted).toBe(1)
  })

  it("an unknown state byte while running ends the test: streams and control reset, logged", () => {
    const h = harness()
    toCreateStreams(h, { parallel: 2 })
    addStreams(h, 2)
    const a = h.bytes(1, Uint8Array.of(0x42))
    expect(tags(a)).toEqual(["Log", "StopStreams", "Close", "Close", "Close", "TestOver"])
    expect(closes(a)).toEqual([{ conn: 10, abort: true }, { conn: 11, abort: true }, { conn: 1, abort: true }])
    expect(logs(a)[0]).toMatch(/unexpected state byte 66 from the client \(test running\)/)
    expect(h.s.test).toBeUndefined()
  })

  it("CLIENT_TERMINATE ends the test", () => {
    const h = harness()
    toCreateStreams(h)
    addStreams(h, 1)
    const a = h.bytes(1, Uint8Array.of(W.CLIENT_TERMINATE))
    expect(logs(a)[0]).toMatch(/the client terminated the test/)
    expect(h.s.test).toBeUndefined()
  })

  it("TEST_START from the client while running is ignored (as 3.12)", () => {
    const h = harness()
    toCreateStreams(h)
    addStreams(h, 1)
    expect(h.bytes(1, Uint8Array.of(W.TEST_START))).toEqual([])
    expect(h.s.test?.phase).toBe("Running")
  })

  it("bad results from the client end the test after EXCHANGE_RESULTS", () => {
    const h = harness()
    toCreateStreams(h)
    addStreams(h, 1)
    h.bytes(1, Uint8Array.of(W.TEST_END))
    const a = h.bytes(1, clientResults([7]))
    expect(logs(a)[0]).toMatch(/bad results from the client: stream result with unknown id 7/)
    expect(h.s.test).toBeUndefined()
  })

  it("more than one frame of unread control bytes is an overflow", () => {
    const h = harness()
    h.accept(1)
    h.bytes(1, cookie())
    // a length that fits, then more than the reader can hold before the message is complete
    const a = h.bytes(1, Uint8Array.from([0, 1, 0, 0, ...new Uint8Array(W.MAX_JSON_LEN + 1)]))
    expect(logs(a)[0]).toMatch(/unread control bytes/)
    expect(h.s.test).toBeUndefined()
  })

  it("connections still owing a cookie are bounded: a newcomer evicts the one that waited longest, counted", () => {
    const h = harness()
    for (let i = 0; i < S.MAX_PENDING; i++) expect(h.accept(100 + i, i)).toEqual([])
    const a = h.accept(999, 50)
    expect(writes(a, 999)).toEqual([]) // the newcomer is admitted
    expect(closes(a)).toEqual([{ conn: 100, abort: true }]) // the oldest silent one is reset
    expect(logs(a)[0]).toMatch(/reset: 16 connections were waiting for their cookie/)
    expect(h.s.stats.pendingEvicted).toBe(1)
    expect(h.s.pending).toBe(S.MAX_PENDING)
    // the newcomer can still become the control connection
    h.bytes(999, cookie(), 60)
    expect(h.s.test?.control).toBe(999)
  })
})

describe("iperf3 session: a client that vanishes, and the deadlines", () => {
  it.each([
    ["closes", false],
    ["resets", true]
  ])("the control connection %s while running: streams stopped and reset, logged, server free", (_, reset) => {
    const h = harness()
    toCreateStreams(h)
    addStreams(h, 1)
    const a = h.closed(1, reset, 900)
    expect(tags(a)).toContain("StopStreams")
    expect(closes(a)).toEqual([{ conn: 10, abort: true }, { conn: 1, abort: reset }])
    expect(logs(a)[0]).toBe(`Test #1 with 198.51.100.1:40001 ended: the client ${reset ? "reset" : "closed"} the control connection (test running)`)
    expect(h.s.test).toBeUndefined()
    h.accept(2)
    expect(writes(h.bytes(2, cookie()))).toEqual([[W.PARAM_EXCHANGE]])
  })

  it("the control connection closing in each phase ends that test only", () => {
    for (const phase of ["ParamExchange", "CreateStreams", "ExchangeResults", "DisplayResults"] as const) {
      const h = harness()
      h.accept(1)
      h.bytes(1, cookie())
      if (phase !== "ParamExchange") h.bytes(1, params())
      if (phase === "ExchangeResults" || phase === "DisplayResults") {
        addStreams(h, 1)
        h.bytes(1, Uint8Array.of(W.TEST_END))
      }
      if (phase === "DisplayResults") h.bytes(1, clientResults([1]))
      expect(h.s.test?.phase).toBe(phase)
      const a = h.closed(1, false)
      expect(a.at(-1)).toMatchObject({ _tag: "TestOver", completed: false })
      expect(h.s.test).toBeUndefined()
    }
  })

  it("a stream reset by the client is logged and closed; the test goes on until TEST_END", () => {
    const h = harness()
    toCreateStreams(h)
    addStreams(h, 1)
    const a = h.closed(10, true)
    expect(logs(a)).toEqual(["[  1] stream reset by the client"])
    expect(closes(a)).toEqual([{ conn: 10, abort: true }])
    expect(h.s.test?.phase).toBe("Running")
    expect(closes(h.bytes(1, Uint8Array.of(W.TEST_END)))).toEqual([])
  })

  it("a connection that closes before its cookie is closed; one that sends nothing is closed at the cookie deadline", () => {
    const h = harness()
    h.accept(1, 0)
    h.bytes(1, cookie().subarray(0, 10))
    expect(closes(h.closed(1, false))).toEqual([{ conn: 1, abort: false }])
    h.accept(2, 1000)
    expect(S.pollAt(h.s)).toBe(1000 + S.COOKIE_TIMEOUT_MS)
    expect(h.tick(1000 + S.COOKIE_TIMEOUT_MS - 1)).toEqual([])
    const a = h.tick(1000 + S.COOKIE_TIMEOUT_MS)
    expect(closes(a)).toEqual([{ conn: 2, abort: true }])
    expect(logs(a)[0]).toMatch(/sent no cookie within 10 s \(0 bytes\)/)
    expect(h.s.pending).toBe(0)
    expect(S.pollAt(h.s)).toBeUndefined()
  })

  it.each([
    ["ParamExchange", /timed out waiting for parameters/],
    ["CreateStreams", /timed out waiting for streams \(0 of 1\)/]
  ])("setup timeout in %s", (phase, why) => {
    const h = harness()
    h.accept(1, 0)
    h.bytes(1, cookie(), 0)
    if (phase === "CreateStreams") h.bytes(1, params(), 0)
    expect(S.pollAt(h.s)).toBe(S.SETUP_TIMEOUT_MS)
    expect(h.tick(S.SETUP_TIMEOUT_MS - 1)).toEqual([])
    const a = h.tick(S.SETUP_TIMEOUT_MS)
    expect(logs(a)[0]).toMatch(why)
    expect(h.s.test).toBeUndefined()
  })

  it("the safety timer: T + omit + 40 s after TEST_START", () => {
    const h = harness({ stallMs: 1e9 }) // data keeps no test alive past its safety timer; the stall rule is tested below
    toCreateStreams(h, { time: 5, omit: 2 })
    addStreams(h, 1, 1000)
    const at = 1000 + 7000 + S.SAFETY_SLACK_MS
    h.tick(3000) // the omit snapshot
    for (let k = 4000; k < at; k += 1000) h.tick(k) // progress looks
    expect(S.pollAt(h.s)).toBe(at)
    expect(h.tick(at - 1)).toEqual([])
    const a = h.tick(at)
    expect(logs(a)[0]).toMatch(/no TEST_END within T \+ omit \+ 40 s/)
    expect(h.s.test).toBeUndefined()
  })

  it("stall deadline (-n and -t alike): the test goes on while data moves, and ends stallMs after the last byte, counted", () => {
    for (const mode of [{ time: 0, num: 1e12 }, { time: 3600 }]) {
      const h = harness({ stallMs: 5_000 })
      toCreateStreams(h, mode)
      addStreams(h, 1, 0)
      for (let ms = 500; ms <= 20_000; ms += 500) {
        h.bytes(10, new Uint8Array(10), ms)
        expect(h.tick(ms)).toEqual([])
      }
      expect(h.s.test?.phase).toBe("Running")
      // silence from 20 s: looked at every second, ended at 25 s
      for (let ms = 21_000; ms < 25_000; ms += 1000) expect(logs(h.tick(ms))).toEqual([])
      expect(S.pollAt(h.s)).toBe(25_000)
      const a = h.tick(25_000)
      expect(logs(a)[0]).toMatch(/no stream moved a byte for 5 s/)
      expect(closes(a).every((c) => c.abort)).toBe(true)
      expect(h.s.test).toBeUndefined()
      expect(h.s.stats.stalled).toBe(1)
    }
  })

  it("stall deadline of a rate-limited test (-b 80k, 128 KiB blocks: one every 13.1 s): two block gaps, not stallMs", () => {
    const h = harness({ stallMs: 10_000 })
    toCreateStreams(h, { time: 60, bandwidth: 80_000, len: 131_072 })
    addStreams(h, 1, 0)
    const gap = (131_072 * 8 * 1000) / 80_000 // 13 107 ms
    for (let k = 0; k < 4; k++) {
      const at = Math.round(k * gap)
      h.bytes(10, new Uint8Array(1000), at) // the burst (its tail arrives within ms)
      for (let ms = at + 1000; ms < Math.round((k + 1) * gap); ms += 1000) expect(logs(h.tick(ms))).toEqual([])
    }
    expect(h.s.test?.phase).toBe("Running")
    expect(h.s.stats.stalled).toBe(0)
    // a test that really stops moving still ends, two gaps after its last byte
    const last = Math.round(3 * gap)
    for (let ms = last + 1000; ms < last + 2 * gap; ms += 1000) expect(logs(h.tick(ms))).toEqual([])
    const a = h.tick(Math.ceil(last + 2 * gap) + 1000)
    expect(logs(a)[0]).toMatch(/no stream moved a byte for 26\.215 s/)
    expect(h.s.stats.stalled).toBe(1)
  })

  it("a connection closed or reset before its cookie, or silent past the cookie timeout, logs a line the shell aggregates (a kind)", () => {
    const h = harness()
    h.accept(1, 0)
    h.accept(2, 0)
    h.accept(3, 0)
    const kinds = (as: ReadonlyArray<S.Action>) => as.flatMap((a) => (a._tag === "Log" ? [a.kind] : []))
    expect(kinds(h.closed(1, false, 10))).toEqual(["connections closed before a cookie"])
    expect(kinds(h.closed(2, true, 10))).toEqual(["connections closed before a cookie"])
    expect(kinds(h.tick(S.COOKIE_TIMEOUT_MS))).toEqual(["connections without a cookie closed"])
  })

  it("results and IPERF_DONE are awaited at most RESULTS_TIMEOUT_MS", () => {
    const h = harness()
    toCreateStreams(h)
    addStreams(h, 1)
    h.bytes(1, Uint8Array.of(W.TEST_END), 2000)
    expect(logs(h.tick(2000 + S.RESULTS_TIMEOUT_MS))[0]).toMatch(/timed out waiting for results/)
    const h2 = harness()
    toCreateStreams(h2)
    addStreams(h2, 1)
    h2.bytes(1, Uint8Array.of(W.TEST_END), 2000)
    h2.bytes(1, clientResults([1]), 2010)
    expect(logs(h2.tick(2010 + S.RESULTS_TIMEOUT_MS))[0]).toMatch(/timed out waiting for IPERF_DONE/)
  })
})

describe("iperf3 session: UDP streams (row 17)", () => {
  const udpHarness = () => harness({ udp: true })
  const KEY = (port: number) => 0xc6336401 * 65536 + port // 198.51.100.1:port
  const dgram = (seq: number, sentUs: number, len = 100): Uint8Array => {
    const b = new Uint8Array(len)
    const v = new DataView(b.buffer)
    v.setUint32(0, Math.floor(sentUs / 1e6))
    v.setUint32(4, sentUs % 1e6)
    v.setUint32(8, seq)
    return b
  }

  it("connects from new peers become streams 1, 3 with a 6789 reply each; 1 and 2 follow the last", () => {
    const h = udpHarness()
    toCreateStreams(h, { tcp: undefined, udp: true, len: 1448, parallel: 2, bandwidth: 1048576 })
    const a = h.connect(KEY(5000))
    expect(a.ok).toBe(true)
    expect(a.actions.filter((x) => x._tag === "UdpReply")).toEqual([{ _tag: "UdpReply", key: KEY(5000) }])
    expect(writes(a.actions, 1)).toEqual([])
    // a repeated connect is answered again and adds nothing
    expect(h.connect(KEY(5000)).actions.map((x) => x._tag)).toEqual(["UdpReply"])
    const b = h.connect(KEY(5001))
    expect(writes(b.actions, 1)).toEqual([[W.TEST_START], [W.TEST_RUNNING]])
    expect(h.s.test!.streams.map((x) => [x.id, x.udpKey])).toEqual([[1, KEY(5000)], [3, KEY(5001)]])
    // a third peer is not a stream
    expect(h.connect(KEY(5002)).ok).toBe(false)
  })

  it("a TCP stream for a UDP test is denied, and UDP connects for a TCP test are ignored", () => {
    const h = udpHarness()
    toCreateStreams(h, { tcp: undefined, udp: true, len: 1448 })
    h.accept(10)
    expect(writes(h.bytes(10, cookie()), 10)).toEqual([[0xff]])
    const h2 = udpHarness()
    toCreateStreams(h2 as unknown as ReturnType<typeof harness>)
    expect(h2.connect(KEY(5000)).ok).toBe(false)
  })

  it("received datagrams: bytes, highest sequence, losses, jitter in seconds go into the results", () => {
    const h = udpHarness()
    toCreateStreams(h, { tcp: undefined, udp: true, len: 100 })
    h.connect(KEY(5000), 0)
    // before TEST_RUNNING nothing counts; unknown peers are not ours
    expect(S.onUdp(h.s, KEY(6000), dgram(1, 0), 0)).toBe(false)
    const t = h.s.test!
    for (const [seq, sent, arrive] of [[1, 0, 1000], [2, 1000, 2000], [4, 3000, 4100], [3, 2000, 4200]] as const) {
      expect(S.onUdp(h.s, KEY(5000), dgram(seq, sent), arrive)).toBe(true)
    }
    const st = t.streams[0]!
    expect(st.bytes).toBe(400)
    expect(st.udp).toMatchObject({ packets: 4, errors: 0, outOfOrder: 1 })
    h.bytes(1, Uint8Array.of(W.TEST_END), 2000)
    const j = jsonOf(writes(h.bytes(1, clientResults([1]), 2001), 1)[0]!)
    expect(j["sender_has_retransmits"]).toBe(-1)
    const r = (j["streams"] as Array<Record<string, number>>)[0]!
    expect(r).toMatchObject({ id: 1, bytes: 400, retransmits: -1, errors: 0, packets: 4 })
    expect(r["jitter"]!).toBeGreaterThan(0)
    expect(r["jitter"]!).toBeLessThan(0.001) // seconds, not milliseconds
    // after the test the peer is forgotten
    h.bytes(1, Uint8Array.of(W.IPERF_DONE), 2002)
    expect(S.onUdp(h.s, KEY(5000), dgram(5, 0), 0)).toBe(false)
  })

  it("-u -R: the sender is paced to bandwidth; its results carry packets sent and sender_has_retransmits 0", () => {
    const h = udpHarness()
    toCreateStreams(h, { tcp: undefined, udp: true, len: 1000, reverse: true, bandwidth: 800_000 })
    h.connect(KEY(5000), 1000) // 100 datagrams per second
    const t = h.s.test!
    const st = t.streams[0]!
    expect(st.sender).toBe(true)
    expect(S.udpDue(t, st, 1000)).toBe(1)
    S.commitUdpSent(t, st, 1000)
    expect(S.udpDue(t, st, 1005)).toBe(0)
    expect(S.udpSleepMs(t, st, 1005)).toBe(5)
    expect(S.udpDue(t, st, 1010)).toBe(1)
    expect(S.udpDue(t, st, 3000)).toBe(64) // bounded burst after a stall
    S.commitUdpSent(t, st, 1000)
    h.bytes(1, Uint8Array.of(W.TEST_END), 3000)
    expect(S.udpDue(t, st, 3000)).toBe(0)
    const j = jsonOf(writes(h.bytes(1, clientResults([1]), 3001), 1)[0]!)
    expect(j["sender_has_retransmits"]).toBe(0)
    expect(j["streams"]).toEqual([{ id: 1, bytes: 2000, retransmits: -1, jitter: 0, errors: 0, packets: 2, start_time: 0, end_time: 2 }])
  })

  it("a UDP connect from an address other than the control connection's client starts no stream and gets no reply", () => {
    const h = udpHarness()
    toCreateStreams(h, { tcp: undefined, udp: true, len: 1000, reverse: true, bandwidth: 1e6 })
    const out: Array<S.Action> = []
    const foreign: S.PeerInfo = { local: "198.51.100.2", localPort: 5201, remote: "203.0.113.9", remotePort: 5000 }
    expect(S.onUdpConnect(h.s, 0xcb007109 * 65536 + 5000, foreign, 0, out)).toBe(true)
    expect(out.filter((a) => a._tag === "UdpReply")).toEqual([])
    expect(h.s.test!.streams).toHaveLength(0)
    expect(h.s.stats.udpWrongPeer).toBe(1)
    // the real client's connect still works
    const c = h.connect(KEY(5001), 1)
    expect(c.ok).toBe(true)
    expect(c.actions.filter((a) => a._tag === "UdpReply")).toHaveLength(1)
    expect(h.s.test!.streams).toHaveLength(1)
  })

  it("-u -b over the server's ceiling is clamped and logged", () => {
    const h = udpHarness()
    toCreateStreams(h, { tcp: undefined, udp: true, len: 1000, bandwidth: 40e9 })
    expect(h.s.test!.params!.bandwidth).toBe(W.MAX_UDP_RATE_BPS)
    expect(h.s.test!.lines.some((l) => /adjusted bandwidth 40000000000 bit\/s -> 1000000000 bit\/s/.test(l))).toBe(true)
  })

  it("-u -n: the datagram budget is never overshot by more than the last datagram", () => {
    const h = udpHarness()
    toCreateStreams(h, { tcp: undefined, udp: true, len: 1000, reverse: true, bandwidth: 0, time: 0, num: 2500 })
    h.connect(KEY(5000), 0)
    const t = h.s.test!
    const st = t.streams[0]!
    expect(t.params!.bandwidth).toBe(W.MAX_UDP_RATE_BPS) // "unlimited" (-b 0) is paced at the server's ceiling
    expect(S.udpDue(t, st, 1)).toBe(3) // 125 due by 1 ms at 1 Gbit/s, the budget allows 3
    for (let i = 0; i < 3; i++) S.commitUdpSent(t, st, 1000)
    expect(S.udpDue(t, st, 2)).toBe(0)
    expect(S.senderDone(t, st)).toBe(true)
  })
})

describe("iperf3 session: interval lines (iperf3 -s -i)", () => {
  it("-P 2 with 1 s intervals: header once, a line per stream and [SUM] per tick, separators between groups, the last partial before the summary", () => {
    const h = harness({ intervalMs: 1000 })
    toCreateStreams(h, { parallel: 2, time: 2 })
    addStreams(h, 2, 0)
    expect(S.pollAt(h.s)).toBe(1000)
    h.bytes(10, new Uint8Array(1000))
    h.bytes(11, new Uint8Array(3000))
    expect(logs(h.tick(1000))).toEqual([
      "[ ID] Interval           Transfer     Bitrate",
      "[  1]   0.00-1.00   sec  1000 Bytes  8.00 Kbits/sec                  ",
      "[  3]   0.00-1.00   sec  2.93 KBytes  24.0 Kbits/sec                  ",
      "[SUM]   0.00-1.00   sec  3.91 KBytes  32.0 Kbits/sec                  "
    ])
    expect(S.pollAt(h.s)).toBe(1000 + 1000)
    h.bytes(10, new Uint8Array(500))
    expect(logs(h.tick(2000))).toEqual([
      "- - - - - - - - - - - - - - - - - - - - - - - - -",
      "[  1]   1.00-2.00   sec   500 Bytes  4.00 Kbits/sec                  ",
      "[  3]   1.00-2.00   sec  0.000 Bytes  0.000 bits/sec                  ",
      "[SUM]   1.00-2.00   sec   500 Bytes  4.00 Kbits/sec                  "
    ])
    // TEST_END 250 ms later: the last partial interval, then (with the results) the summary
    const end = logs(h.bytes(1, Uint8Array.of(W.TEST_END), 2250))
    expect(end).toEqual([
      "- - - - - - - - - - - - - - - - - - - - - - - - -",
      "[  1]   2.00-2.25   sec  0.000 Bytes  0.000 bits/sec                  ",
      "[  3]   2.00-2.25   sec  0.000 Bytes  0.000 bits/sec                  ",
      "[SUM]   2.00-2.25   sec  0.000 Bytes  0.000 bits/sec                  "
    ])
  })

  it("-R: a sending stream's interval line has its retransmits and congestion window; a TEST_END within 5 ms of a tick adds no partial", () => {
    const h = harness({ intervalMs: 1000 })
    toCreateStreams(h, { reverse: true })
    addStreams(h, 1, 0)
    const t = h.s.test!
    S.commitSent(t, t.streams[0]!, 131072, 2, 857_088)
    expect(logs(h.tick(1000))).toEqual([
      "[ ID] Interval           Transfer     Bitrate         Retr  Cwnd",
      "[  1]   0.00-1.00   sec   128 KBytes  1.05 Mbits/sec    2    837 KBytes       "
    ])
    S.commitSent(t, t.streams[0]!, 131072, 2, 857_088)
    expect(logs(h.tick(2000))).toEqual(["[  1]   1.00-2.00   sec   128 KBytes  1.05 Mbits/sec    0    837 KBytes       "])
    expect(logs(h.bytes(1, Uint8Array.of(W.TEST_END), 2004))).toEqual([])
  })

  it("no interval option: no interval lines and no interval deadline", () => {
    const h = harness()
    toCreateStreams(h)
    addStreams(h, 1, 0)
    expect(h.s.test!.ivNextMs).toBe(Infinity)
    h.bytes(10, new Uint8Array(1000))
    expect(logs(h.tick(1000))).toEqual([])
    expect(logs(h.bytes(1, Uint8Array.of(W.TEST_END), 2000))).toEqual([])
  })
})
