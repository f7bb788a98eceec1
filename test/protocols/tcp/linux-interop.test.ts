/**
 * Interop with the Linux TCP stack (e2e, needs root, python3 and iperf 2): the pure machine talks to
 * the kernel through a TUN device in a private network namespace. A tiny python relay (fixtures/
 * tun-relay.py) moves IPv4 packets between the TUN and this process; IPv4 headers are built here.
 * Addresses: 198.51.100.1 (Linux, in the namespace) and 198.51.100.2 (us). Real time is used here,
 * as in every e2e test; the namespace is removed even when the test fails.
 */
import { describe, expect, it } from "vitest"
import { execFileSync, spawn, type ChildProcess } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import * as Cs from "../../../src/protocols/checksum.js"
import * as Tcp from "../../../src/protocols/tcp/machine.js"
import * as W from "../../../src/protocols/tcp/wire.js"

const RELAY = fileURLToPath(new URL("./fixtures/tun-relay.py", import.meta.url))
const has = (cmd: string) => {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}
const canRun = process.getuid?.() === 0 && existsSync("/dev/net/tun") && has("python3") && has("iperf")
if (!canRun && process.env["CI"] === undefined) console.log("linux-interop: skipped (needs root, /dev/net/tun, python3, iperf)")
const ME = 0xc6336402
const LINUX = 0xc6336401
let nsCounter = 0

interface Link {
  ns: string
  relay: ChildProcess
  send: (tcb: Tcp.Tcb | undefined, r: W.TcpRepr) => void
  onSegment: (fn: (src: number, r: W.TcpRepr, seg: Uint8Array) => void) => void
  exec: (...args: string[]) => ChildProcess
}

const withLink = async (fn: (l: Link) => Promise<void>) => {
  const ns = `mpx-tcpi-${process.pid}-${nsCounter++}`
  execFileSync("ip", ["netns", "add", ns])
  let relay: ChildProcess | undefined
  const children: ChildProcess[] = []
  try {
    relay = spawn("ip", ["netns", "exec", ns, "python3", RELAY, "mpxtun0"], { stdio: ["pipe", "pipe", "pipe"] })
    await new Promise((res) => relay!.stderr!.once("data", res))
    const sh = (...a: string[]) => execFileSync("ip", ["netns", "exec", ns, ...a])
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "addr", "add", "198.51.100.1/24", "dev", "mpxtun0")
    sh("ip", "link", "set", "mpxtun0", "up")
    let ipId = 1
    const r0 = relay
    const send = (tcb: Tcp.Tcb | undefined, r: W.TcpRepr) => {
      const hl = W.headerLen(r)
      const tl = 20 + hl + r.payloadLen
      const f = Buffer.alloc(2 + tl)
      f.writeUInt16BE(tl, 0)
      const b = new Uint8Array(f.buffer, f.byteOffset + 2, tl)
      b[0] = 0x45
      b[2] = tl >> 8
      b[3] = tl & 255
      b[4] = (ipId >> 8) & 255
      b[5] = ipId++ & 255
      b[6] = 0x40
      b[8] = 64
      b[9] = 6
      for (let i = 0; i < 4; i++) {
        b[12 + i] = (ME >>> (24 - 8 * i)) & 255
        b[16 + i] = (LINUX >>> (24 - 8 * i)) & 255
      }
      const c = Cs.finish(Cs.sum(b, 0, 20, 0))
      b[10] = c >> 8
      b[11] = c & 255
      const seg = b.subarray(20)
      if (r.payloadLen > 0 && tcb !== undefined) Tcp.copyPayload(tcb, r.seq, r.payloadLen, seg, hl)
      W.emit(r, seg, Cs.pseudoV4(ME, LINUX, 6, seg.length), true)
      r0.stdin!.write(f)
    }
    let handler: (src: number, r: W.TcpRepr, seg: Uint8Array) => void = () => {}
    let rx = Buffer.alloc(0)
    r0.stdout!.on("data", (d: Buffer) => {
      rx = Buffer.concat([rx, d])
      while (rx.length >= 2) {
        const n = rx.readUInt16BE(0)
        if (rx.length < 2 + n) break
        const p = new Uint8Array(rx.subarray(2, 2 + n))
        rx = rx.subarray(2 + n)
        if (p[0]! >> 4 !== 4 || p[9] !== 6) continue
        const ihl = (p[0]! & 15) * 4
        const tl = (p[2]! << 8) | p[3]!
        const src = ((p[12]! << 24) | (p[13]! << 16) | (p[14]! << 8) | p[15]!) >>> 0
        const seg = p.subarray(ihl, tl)
        const r = W.parse(seg, Cs.pseudoV4(src, ME, 6, seg.length), true)
        if (typeof r === "string") throw new Error(`Linux sent a segment we cannot parse: ${r}`)
        handler(src, r, seg)
      }
    })
    const exec = (...args: string[]) => {
      const c = spawn("ip", ["netns", "exec", ns, ...args], { stdio: ["ignore", "pipe", "pipe"] })
      children.push(c)
      return c
    }
    await fn({ ns, relay: r0, send, onSegment: (f) => (handler = f), exec })
  } finally {
    for (const c of children) c.kill()
    relay?.kill()
    execFileSync("ip", ["netns", "del", ns])
  }
}

/** Drive one Tcb with real time: poll when due, after every input. */
const driver = (t0: number) => {
  const now = () => Date.now() - t0
  let timer: NodeJS.Timeout | undefined
  const kick = (tcb: Tcp.Tcb, out: Tcp.Output, app: () => void) => {
    app()
    Tcp.poll(tcb, now(), out)
    clearTimeout(timer)
    const at = Tcp.pollAt(tcb)
    if (at !== undefined) timer = setTimeout(() => kick(tcb, out, app), Math.max(0, at - now()))
  }
  return { now, kick, stop: () => clearTimeout(timer) }
}

const output = (l: Link, onData: (n: number) => void): Tcp.Output => ({
  segment: (tcb, r) => l.send(tcb, r),
  deliver: (_t, _b, s, e) => onData(e - s)
})

const collect = (c: ChildProcess) => {
  let s = ""
  c.stdout!.on("data", (d) => (s += d))
  c.stderr!.on("data", (d) => (s += d))
  return () => s
}

describe.runIf(canRun)("interop with the Linux TCP stack over TUN", () => {
  it("Linux iperf client -> our sink server: handshake with WS/TS/SACK, data, passive close", async () => {
    await withLink(async (l) => {
      const d = driver(Date.now())
      let recvd = 0
      let tcb: Tcp.Tcb | undefined
      const cfg = Tcp.makeConfig({ recvMode: "sink", recvBufBytes: 1 << 20 })
      const out = output(l, (n) => (recvd += n))
      const app = () => {
        if (tcb === undefined) return
        const ev = Tcp.takeEvents(tcb)
        if ((ev & Tcp.EV_PEER_FIN) !== 0) Tcp.close(tcb)
      }
      l.onSegment((src, r, seg) => {
        if (tcb === undefined) {
          if ((r.flags & (W.SYN | W.ACK | W.RST)) === W.SYN) {
            tcb = Tcp.acceptSyn(cfg, r, { addr: ME, port: r.dstPort }, { addr: src, port: r.srcPort }, 0x12345678, d.now(), out)
          } else {
            const x = Tcp.rstFor(r)
            if (x !== undefined) l.send(undefined, x)
          }
        } else Tcp.input(tcb, r, seg, r.headerLen, d.now(), out)
        if (tcb !== undefined) d.kick(tcb, out, app)
      })
      const client = l.exec("iperf", "-c", "198.51.100.2", "-t", "1")
      const text = collect(client)
      await new Promise((res) => client.on("exit", res))
      for (let i = 0; i < 50 && tcb?.state !== "Closed"; i++) await new Promise((res) => setTimeout(res, 50))
      d.stop()
      expect(text()).toMatch(/connected with 198\.51\.100\.2 port 5001/)
      expect(tcb!.wsOk && tcb!.tsOk && tcb!.sackOk).toBe(true)
      expect(tcb!.sndMss).toBe(1448)
      expect(tcb!.state).toBe("Closed")
      expect(tcb!.error).toBeUndefined()
      expect(recvd).toBeGreaterThan(1_000_000)
      expect(tcb!.counters.bytesIn).toBe(recvd)
    })
  }, 30_000)

  it("our client -> Linux iperf -s: 8 MB, active close to TIME-WAIT", async () => {
    await withLink(async (l) => {
      const d = driver(Date.now())
      const server = l.exec("iperf", "-s", "-p", "5001")
      const text = collect(server)
      await new Promise((res) => setTimeout(res, 400))
      const TOTAL = 8 * 1024 * 1024
      let sent = 0
      const chunk = new Uint8Array(65536).map((_, i) => i & 255)
      const out = output(l, () => {})
      const tcb = Tcp.connect(Tcp.makeConfig({ sendBufBytes: 1 << 20 }), { addr: ME, port: 40001 }, { addr: LINUX, port: 5001 }, 777, d.now(), out)
      const app = () => {
        Tcp.takeEvents(tcb)
        if (tcb.state !== "Established") return
        while (sent < TOTAL) {
          const k = Tcp.send(tcb, chunk, 0, Math.min(65536, TOTAL - sent))
          if (k === 0) break
          sent += k
        }
        if (sent === TOTAL) Tcp.close(tcb)
      }
      l.onSegment((_src, r, seg) => {
        Tcp.input(tcb, r, seg, r.headerLen, d.now(), out)
        d.kick(tcb, out, app)
      })
      for (let i = 0; i < 200 && tcb.state !== "TimeWait"; i++) await new Promise((res) => setTimeout(res, 50))
      for (let i = 0; i < 40 && !/8\.00 MBytes/.test(text()); i++) await new Promise((res) => setTimeout(res, 50))
      d.stop()
      expect(tcb.state).toBe("TimeWait")
      expect(tcb.counters.bytesOut).toBe(TOTAL)
      expect(text()).toMatch(/8\.00 MBytes/)
    })
  }, 30_000)
})
