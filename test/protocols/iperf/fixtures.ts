/** Golden bytes captured from the real iperf 2.1.8 client/server (see test/fixtures/iperf/README.md). */
import { readFileSync } from "node:fs"
import { fromHex } from "../../../src/protocols/bytes.js"

const dir = new URL("../../fixtures/iperf/", import.meta.url)

export const fixtureText = (name: string): string => readFileSync(new URL(name, dir), "utf8")
export const fixtureHex = (name: string): Uint8Array => fromHex(fixtureText(name))

export const TCP_MODES = [
  "plain",
  "amount",
  "tradeoff",
  "dual",
  "reverse",
  "fullduplex",
  "peerdetect",
  "parallel",
  "plain_t2"
] as const
export type TcpFixture = (typeof TCP_MODES)[number]
export const tcpHeader = (m: TcpFixture): Uint8Array => fixtureHex(`tcp-header-${m}.hex`)
