/**
 * Not a reflector, end to end (design.md §7): echo requests crafted with a spoofed source (our subnet's
 * directed broadcast 198.51.100.255, and our own 198.51.100.2) reach our server over the real TAP and
 * get no answer, while the same request from 198.51.100.1 does; the -d dump counts the drops. The
 * frames are written with an AF_PACKET socket on the kernel side of the TAP, inside the test's own
 * namespace (Debian's /usr/bin/python3, standard library only). RFC 5737 addresses only.
 */
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { describeRoot } from "../support/netns.js"
import { CLIENT_IP, SERVER_IP, withServer } from "../support/server.js"

const OUR_MAC = "02:5e:11:22:33:12"

/**
 * argv: ifname, our server's MAC, then source addresses. Sends 3 echo requests (ident 0x4d50) per source,
 * then listens 1.5 s and prints as JSON every IPv4 frame the server sent: [ip dst, ICMP type or -1].
 */
const CRAFT = `
import json, socket, struct, sys, time
ifname, server_mac, sources = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), sys.argv[3:]
my_mac = bytes.fromhex(open("/sys/class/net/%s/address" % ifname).read().strip().replace(":", ""))
def csum(b):
    if len(b) % 2: b += b"\\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def echo(src, seq):
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x4d50, seq) + b"not-a-reflector!" * 2
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0x1000 + seq, 0, 64, 1, 0, socket.inet_aton(src), socket.inet_aton("${SERVER_IP}"))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return server_mac + my_mac + b"\\x08\\x00" + ip + icmp
rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
rx.bind((ifname, 0))
tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
tx.bind((ifname, 0))
seq = 0
for src in sources:
    for _ in range(3):
        seq += 1
        tx.send(echo(src, seq))
        time.sleep(0.02)
seen = []
end = time.time() + 1.5
rx.settimeout(0.1)
while time.time() < end:
    try:
        f = rx.recv(65535)
    except socket.timeout:
        continue
    if f[6:12] != server_mac or f[12:14] != b"\\x08\\x00":
        continue
    ihl = (f[14] & 15) * 4
    proto = f[23]
    seen.append([socket.inet_ntoa(f[30:34]), f[14 + ihl] if proto == 1 else -1])
print(json.dumps(seen))
`

const DUMP_IPV4 = /^ipv4: .*$/gm

describeRoot("e2e: spoofed martian sources over the TAP", () => {
  it.live("echo requests from 198.51.100.255 and from our own address get no reply and are counted; one from .1 is answered", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("mart", { args: ["--mac", OUR_MAC, "-d", "200,totals"] })
        const r = yield* s.client("/usr/bin/python3", ["-c", CRAFT, s.tap, OUR_MAC, "198.51.100.255", SERVER_IP, CLIENT_IP], 20)
        expect(r.stderr).toBe("")
        const seen = JSON.parse(r.stdout) as Array<[string, number]>
        // the control: the three requests from .1 were answered (echo reply, type 0)
        expect(seen.filter(([dst, type]) => dst === CLIENT_IP && type === 0)).toHaveLength(3)
        // nothing at all went to the broadcast address or to ourselves
        expect(seen.filter(([dst]) => dst !== CLIENT_IP)).toEqual([])
        // the kernel's own broadcast ping (from .1 to .255) is not answered either (RFC 1122 allows silence)
        const b = yield* s.client("ping", ["-b", "-c", "2", "-i", "0.2", "-W", "1", "198.51.100.255"], 10)
        expect(b.stdout).toMatch(/2 packets transmitted, 0 received/)
        // the dump counts the six spoofed requests
        yield* s.waitFor(/^ipv4: .*MartianSource 6/m, 5_000)
        const last = [...s.output().matchAll(DUMP_IPV4)].at(-1)?.[0] ?? ""
        expect(last).toMatch(/icmp errors out 0 /)
        expect(s.child.exitCode).toBeNull()
      })
    )
  )

  it.live("the TAP the server creates has a 16384-frame kernel queue toward us (txqueuelen raised from the kernel's 1000)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* withServer("qlen", { keepTxQueueLen: true })
        const r = yield* s.ns.ip(["link", "show", "dev", s.tap])
        expect(r.stdout).toMatch(/qlen 16384/)
      })
    )
  )
})
