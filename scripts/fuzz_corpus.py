#!/usr/bin/env python3
"""Regenerate the seed corpus under fuzz/corpus/ (the files are committed;
this is how they were made).

  scripts/fuzz_corpus.py synth     hand-built request sequences for core_datagrams
  scripts/fuzz_corpus.py capture   record turnutils_uclient talking to our server
                                   through a loopback UDP proxy

The core_datagrams step format is described in
fuzz/fuzz_targets/core_datagrams.rs: flags u8, delay u8, length u16, bytes.
Signed steps (flag 8) carry a 24-byte placeholder NONCE and a zero
MESSAGE-INTEGRITY; the target fills in the nonce the server issued and
computes the HMAC with alice's key, so the seeds stay valid whatever the clock.
"""

import hashlib
import os
import socket
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
COOKIE = 0x2112A442

ALLOCATE, REFRESH, SEND, CREATE_PERMISSION, CHANNEL_BIND, BINDING = 3, 4, 6, 8, 9, 1
REQUEST, INDICATION = 0x000, 0x010

# Step flags (see the target).
PEER, SIGN, TCP, TIMERS = 4, 8, 16, 32


def msg_type(method, cls):
    m = method
    return (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | cls


def attr(typ, value):
    pad = (4 - len(value) % 4) % 4
    return struct.pack("!HH", typ, len(value)) + value + b"\0" * pad


def xor_addr(ip, port, tid):
    fam, raw = (1, socket.inet_pton(socket.AF_INET, ip)) if ":" not in ip else (2, socket.inet_pton(socket.AF_INET6, ip))
    xport = port ^ (COOKIE >> 16)
    key = struct.pack("!I", COOKIE) + tid
    xip = bytes(b ^ key[i] for i, b in enumerate(raw))
    return struct.pack("!BBH", 0, fam, xport) + xip


def message(method, cls, tid, attrs, signed=False, fingerprint=False):
    body = b"".join(attrs)
    if signed:
        body += attr(0x0006, b"alice") + attr(0x0014, b"example.org") + attr(0x0015, b"0" * 24)
        body += attr(0x0008, b"\0" * 20)
    if fingerprint:
        body += attr(0x8028, b"\0" * 4)  # the target fixes it up on signed steps
    return struct.pack("!HHI", msg_type(method, cls), len(body), COOKIE) + tid + body


def step(flags, delay, data):
    return struct.pack("!BBH", flags, delay, len(data)) + data


def tid(n):
    return bytes([n]) + b"fuzz-seed-t"


def channel_data(ch, payload):
    return struct.pack("!HH", ch, len(payload)) + payload


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def synth():
    peer = ("198.51.100.20", 5000)
    lifetime = attr(0x000D, struct.pack("!I", 600))
    udp = attr(0x0019, bytes([17, 0, 0, 0]))
    full = [
        step(0, 0, message(ALLOCATE, REQUEST, tid(1), [udp])),  # 401 + nonce
        step(SIGN, 1, message(ALLOCATE, REQUEST, tid(2), [udp, lifetime], signed=True)),
        step(SIGN, 1, message(CREATE_PERMISSION, REQUEST, tid(3), [attr(0x0012, xor_addr(*peer, tid(3)))], signed=True)),
        step(SIGN, 1, message(CHANNEL_BIND, REQUEST, tid(4),
                              [attr(0x000C, struct.pack("!HH", 0x4001, 0)), attr(0x0012, xor_addr(*peer, tid(4)))],
                              signed=True)),
        step(0, 1, message(SEND, INDICATION, tid(5), [attr(0x0012, xor_addr(*peer, tid(5))), attr(0x0013, b"hello peer")])),
        step(0, 1, channel_data(0x4001, b"channel data to the peer")),
        step(PEER, 1, b"answer from the peer"),
        step(PEER, 1, b"\x00\x01\x00\x00!\x12\xa4Bpeer-binding"),  # a STUN-looking peer datagram
        step(SIGN | TIMERS, 200, message(REFRESH, REQUEST, tid(6), [lifetime], signed=True, fingerprint=True)),
        step(TIMERS, 250, b""),  # permission expires
        step(PEER, 1, b"too late"),
        step(SIGN, 1, message(REFRESH, REQUEST, tid(7), [attr(0x000D, struct.pack("!I", 0))], signed=True)),
    ]
    write("core_datagrams", "seed-udp-full-sequence", b"".join(full))

    # Two clients, IPv6 peer, EVEN-PORT with reservation, a TCP client.
    v6peer = ("2001:db8::20", 5000)
    two = [
        step(1, 0, message(ALLOCATE, REQUEST, tid(1), [udp])),
        step(1 | SIGN, 1, message(ALLOCATE, REQUEST, tid(2), [udp, attr(0x0018, b"\x80"),
                                                              attr(0x0017, bytes([2, 0, 0, 0]))], signed=True)),
        step(1 | SIGN, 1, message(CREATE_PERMISSION, REQUEST, tid(3), [attr(0x0012, xor_addr(*v6peer, tid(3)))],
                                  signed=True)),
        step(2 | PEER, 1, b"v6 peer says hi"),
        step(2 | TCP, 0, message(ALLOCATE, REQUEST, tid(4), [udp])),
        step(2 | TCP | SIGN, 1, message(ALLOCATE, REQUEST, tid(5), [udp, attr(0x001A, b"")], signed=True, fingerprint=True)),
        step(3, 0, message(BINDING, REQUEST, tid(6), [])),
        step(3, 0, message(ALLOCATE, REQUEST, tid(7), [udp])),
        step(3 | SIGN, 0, message(ALLOCATE, REQUEST, tid(8), [udp, attr(0x8000, bytes([2, 0, 0, 0]))], signed=True)),
    ]
    write("core_datagrams", "seed-two-clients-v6-tcp", b"".join(two))


def capture(out_prefix="uclient"):
    """Run our server, turnutils_peer and turnutils_uclient on loopback with a
    recording UDP proxy between uclient and the server."""
    server_bin = os.environ.get("TURNSERVER_BIN", os.path.join(ROOT, "target", "release", "turnserver"))
    sport, pport, peer_port = 34781, 34782, 34783
    procs = []
    try:
        procs.append(subprocess.Popen([
            server_bin, "-n", "--lt-cred-mech", "--user=alice:secret", "--realm=example.org",
            "--allow-loopback-peers", "--listening-ip=127.0.0.1", f"--listening-port={sport}",
            "--relay-ip=127.0.0.1", "--min-port=40000", "--max-port=40100", "--no-tcp", "--no-tls", "--no-dtls",
            "--no-cli", "--log-file=stdout"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(["turnutils_peer", "-L", "127.0.0.1", "-p", str(peer_port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)
        for name, extra in [("channel", ["-m", "1"]), ("send-indication", ["-m", "1", "-s"]),
                            ("dont-fragment-padded", ["-m", "1", "-g", "-D"])]:
            record(name, out_prefix, sport, pport, peer_port, extra)
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


def record(name, out_prefix, sport, pport, peer_port, extra):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    lsock.bind(("127.0.0.1", pport))
    lsock.setblocking(False)
    upstream = {}  # client addr -> socket towards the server
    log = []  # (direction, client addr, bytes)
    uc = subprocess.Popen(["turnutils_uclient", "-u", "alice", "-w", "secret", "-e", "127.0.0.1",
                           "-r", str(peer_port), "-n", "5", "-l", "60", *extra, "-p", str(pport), "127.0.0.1"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import select
    deadline = time.time() + 30
    while time.time() < deadline:
        socks = [lsock] + list(upstream.values())
        r, _, _ = select.select(socks, [], [], 0.2)
        for s in r:
            if s is lsock:
                data, src = lsock.recvfrom(65535)
                if src not in upstream:
                    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    u.bind(("127.0.0.1", 0))
                    u.setblocking(False)
                    upstream[src] = u
                upstream[src].sendto(data, ("127.0.0.1", sport))
                log.append(("c2s", src, data))
            else:
                data, _ = s.recvfrom(65535)
                src = next(k for k, v in upstream.items() if v is s)
                lsock.sendto(data, src)
                log.append(("s2c", src, data))
        if uc.poll() is not None and not r:
            break
    if uc.poll() is None:
        uc.terminate()
        uc.wait(timeout=5)
    lsock.close()
    for u in upstream.values():
        u.close()

    clients = []
    steps = []
    seen = set()
    for direction, src, data in log:
        digest = hashlib.sha1(data).hexdigest()[:16]
        if digest not in seen and len(seen) < 40:
            seen.add(digest)
            write("stun_decode", f"{out_prefix}-{name}-{direction}-{digest}", data)
        if direction != "c2s":
            continue
        if src not in clients:
            clients.append(src)
        who = clients.index(src) % 4
        signed = data[:1] in (b"\x00", b"\x01") and b"\x00\x08\x00\x14" in data
        steps.append(step(who | (SIGN if signed else 0), 1, data))
    # One file per 48 steps so the target's 64-step limit keeps them whole.
    for i in range(0, len(steps), 48):
        write("core_datagrams", f"{out_prefix}-{name}-{i // 48}", b"".join(steps[i:i + 48]))
    print(f"{name}: {len(log)} datagrams, {len(clients)} client sockets, {len(steps)} steps", file=sys.stderr)


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "synth"
    {"synth": synth, "capture": capture}[cmd]()
