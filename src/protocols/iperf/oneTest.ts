/**
 * What "one test" is for an iperf 2 server run with `--one-off` (a pure machine; the shell is ../../layers/iperf/).
 *
 * The first stream with a valid header (a TCP session or a UDP stream, in any mode) claims the test for its client
 * address. The test is that client's `-P N` streams: the header's thread count says N, and the next N - 1 streams
 * with a valid header from the same address join it (a stream of another client, or beyond N, does not). Each
 * joined stream is a *part*; so is each stream it makes us open (the `-r`/`-d` connect-back, the UDP stream we send
 * for `-u -r`/`-u -d`/`-u -R`). The test is over when every part has ended (each part ends after its final console
 * lines, the UDP server report included) and all N streams were seen.
 *
 * A client that announces more streams than it opens (an aborted client, a hostile header) must not keep the
 * server forever: once every part has ended with fewer than N streams seen the machine says `Short`, and the
 * shell calls `expire` after a grace (SHORT_GRACE_MS); the test is over unless a stream joined meanwhile. The
 * real client opens its N streams at once, long before the first one ends.
 */

/** How long the shell waits for the announced streams that did not come, once every part has ended. */
export const SHORT_GRACE_MS = 2_000

export interface OneTest {
  /** The client that claimed the test (an IPv4 address as a number, or an IPv6 one as its 8-code-unit string), once a stream did. */
  client: number | string | undefined
  /** Streams the client announced (its -P, at least 1). */
  expected: number
  /** Streams that joined. */
  seen: number
  /** Parts running. */
  open: number
  over: boolean
}

export const make = (): OneTest => ({ client: undefined, expected: 0, seen: 0, open: 0, over: false })

/** A stream with a valid header from `client`, announcing `threads` streams, starts: true when it joins the test. */
export const join = (t: OneTest, client: number | string, threads: number): boolean => {
  if (t.over) return false
  if (t.client === undefined) {
    t.client = client
    t.expected = Math.max(1, threads)
  } else if (t.client !== client || t.seen >= t.expected) {
    return false
  }
  t.seen++
  t.open++
  return true
}

/** A joined stream makes us open another (a connect-back, a stream we send): one more part. */
export const partStarts = (t: OneTest): void => {
  t.open++
}

export type AfterEnd = "Running" | "Over" | "Short"

/** A part ended (call once per part). */
export const partEnds = (t: OneTest): AfterEnd => {
  t.open--
  if (t.over || t.open > 0) return "Running"
  if (t.seen >= t.expected) {
    t.over = true
    return "Over"
  }
  return "Short"
}

/** The grace after `Short` ran out: true when the test is now over (nothing joined or ran meanwhile). */
export const expire = (t: OneTest): boolean => {
  if (t.over || t.open > 0 || t.client === undefined) return false
  t.over = true
  return true
}
