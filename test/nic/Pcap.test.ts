/**
 * Pcap middleware: the file has a valid classic libpcap header, one record per rx and tx frame with
 * TestClock timestamps, GSO-sized frames written whole, and tshark (when installed) reads it.
 */
import { execFileSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { Nic } from "../../src/nic/Nic.js"
import { plainFrame, type Frame } from "../../src/nic/Frame.js"
import * as Pcap from "../../src/nic/Pcap.js"
import { makeChannel } from "../support/channelNic.js"

/** A broadcast ARP-typed Ethernet frame of `len` bytes. */
const ethFrame = (len: number, tag: number): Frame => {
  const b = new Uint8Array(len)
  b.fill(0xff, 0, 6)
  b.set([0x02, 0, 0, 0, 0, tag], 6)
  b[12] = 0x88 // local experimental EtherType 0x88b5
  b[13] = 0xb5
  for (let i = 14; i < len; i++) b[i] = (i * 7 + tag) & 0xff
  return plainFrame(b)
}

const hasTshark = (): boolean => {
  try {
    execFileSync("tshark", ["--version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

describe("Pcap", () => {
  it.effect("globalHeader is the classic little-endian libpcap header", () =>
    Effect.sync(() => {
      const h = Pcap.globalHeader()
      expect([...h]).toEqual([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x04, 0x00, 1, 0, 0, 0])
    }))

  it.effect("encode writes one record per frame with the given timestamp", () =>
    Effect.sync(() => {
      const rec = Pcap.encode([ethFrame(60, 1), ethFrame(100, 2)], 3_250_000_000n)
      expect(rec.length).toBe(16 + 60 + 16 + 100)
      const v = new DataView(rec.buffer)
      expect(v.getUint32(0, true)).toBe(3)
      expect(v.getUint32(4, true)).toBe(250_000)
      expect(v.getUint32(8, true)).toBe(60)
      expect(v.getUint32(12, true)).toBe(60)
      expect(v.getUint32(76 + 8, true)).toBe(100)
    }))

  it.scoped("the layer captures rx and tx to a file that parses (and tshark reads)", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(path.join(tmpdir(), "mpx-pcap-"))),
        (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
      )
      const file = path.join(dir, "cap.pcap")
      const fake = yield* makeChannel()
      const layer = Pcap.layer(file).pipe(Layer.provide(Layer.succeed(Nic, fake.nic)))
      const scope = yield* Scope.make()
      const nic = yield* Layer.buildWithScope(layer, scope).pipe(Effect.map((ctx) => Context.get(ctx, Nic)))
      yield* TestClock.adjust("1500 millis")
      yield* nic.tx([ethFrame(60, 1), ethFrame(1514, 2)])
      yield* fake.inject([ethFrame(64, 3), ethFrame(20000, 4)]) // a GSO-sized super-frame
      yield* nic.rx.pipe(Stream.take(1), Stream.runDrain)
      yield* Scope.close(scope, Exit.void)
      expect(fake.sent.length).toBe(2)

      const bytes = new Uint8Array(readFileSync(file))
      const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      expect(v.getUint32(0, true)).toBe(0xa1b2c3d4)
      expect(v.getUint32(20, true)).toBe(1) // LINKTYPE_ETHERNET
      const lens: Array<number> = []
      let o = 24
      while (o < bytes.length) {
        expect(v.getUint32(o, true)).toBe(1) // seconds: TestClock at 1.5 s
        expect(v.getUint32(o + 4, true)).toBe(500_000)
        const incl = v.getUint32(o + 8, true)
        expect(v.getUint32(o + 12, true)).toBe(incl)
        lens.push(incl)
        o += 16 + incl
      }
      expect(o).toBe(bytes.length)
      expect(lens).toEqual([60, 1514, 64, 20000])

      if (hasTshark()) {
        const out = execFileSync("tshark", ["-r", file, "-T", "fields", "-e", "frame.len"], {
          encoding: "utf8",
          stdio: ["ignore", "pipe", "ignore"]
        })
        expect(out.trim().split("\n").map(Number)).toEqual([60, 1514, 64, 20000])
      } else {
        console.warn("[pcap] tshark not installed: checked the file by hand only")
      }
      expect(existsSync(file)).toBe(true)
    }))
})
