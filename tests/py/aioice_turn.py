#!/usr/bin/env python3
"""aioice as a third-party TURN client against the server under test.

Usage:
    aioice_turn.py endpoint --server 127.0.0.1:PORT --username U --password P
    aioice_turn.py ice      --server 127.0.0.1:PORT --username U --password P

endpoint: aioice.turn.create_turn_endpoint (UDP, or TCP with --transport tcp) allocates a relay, sends
          datagrams through it to a local UDP echo server and waits for the
          echoes; the echo server must see the relayed address as the source.
ice:      two aioice.Connection objects (controlling / controlled) that use only
          relay candidates (TransportPolicy.RELAY, and the candidates handed to
          the other side are filtered to type "relay"), run ICE through the
          TURN server and exchange a message each way.

The last line printed is one JSON object; "ok" tells whether the case passed.
Every step is bounded with asyncio.wait_for, and the whole run with --timeout.
"""

import argparse
import ssl
import asyncio
import json
import sys
import traceback


def parse_addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


class EchoServer(asyncio.DatagramProtocol):
    """Echoes every datagram and remembers who sent it."""

    def __init__(self):
        self.transport = None
        self.sources = []

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.sources.append(addr)
        self.transport.sendto(data, addr)


class Receiver(asyncio.DatagramProtocol):
    def __init__(self):
        self.queue = asyncio.Queue()
        self.errors = []

    def datagram_received(self, data, addr):
        self.queue.put_nowait((data, addr))

    def error_received(self, exc):
        self.errors.append(repr(exc))


async def case_endpoint(args, result):
    from aioice.turn import create_turn_endpoint

    loop = asyncio.get_running_loop()
    echo_transport, echo = await loop.create_datagram_endpoint(
        EchoServer, local_addr=("127.0.0.1", 0)
    )
    echo_addr = echo_transport.get_extra_info("sockname")[:2]
    result["echo_addr"] = list(echo_addr)
    transport = None
    try:
        transport, receiver = await asyncio.wait_for(
            create_turn_endpoint(
                Receiver,
                server_addr=parse_addr(args.server),
                username=args.username,
                password=args.password,
                transport=args.transport,
                ssl=tls_context(args),
            ),
            timeout=args.step_timeout,
        )
        relayed = transport.get_extra_info("sockname")
        mapped = transport.get_extra_info("related_address")
        result["relayed_addr"] = list(relayed) if relayed else None
        result["mapped_addr"] = list(mapped) if mapped else None

        echoed = 0
        for i in range(args.count):
            payload = f"aioice-endpoint-{i}".encode()
            # The first send triggers the ChannelBind; later ones use ChannelData.
            transport.sendto(payload, echo_addr)
            data, addr = await asyncio.wait_for(
                receiver.queue.get(), timeout=args.step_timeout
            )
            if data != payload:
                raise AssertionError(f"echo mismatch: sent {payload!r} got {data!r}")
            if tuple(addr[:2]) != tuple(echo_addr):
                raise AssertionError(f"echo came from {addr}, expected {echo_addr}")
            echoed += 1
        result["echoed"] = echoed
        sources = sorted({tuple(s[:2]) for s in echo.sources})
        result["peer_saw_sources"] = [list(s) for s in sources]
        via_relay = relayed is not None and sources == [tuple(relayed[:2])]
        result["via_relay"] = via_relay
        if receiver.errors:
            result["errors"] = receiver.errors
        result["ok"] = echoed == args.count and via_relay and not receiver.errors
    finally:
        if transport is not None:
            transport.close()
            # Give the Refresh(lifetime=0) a moment to go out.
            await asyncio.sleep(0.2)
        echo_transport.close()


async def case_ice(args, result):
    import aioice
    from aioice import Connection

    policy = getattr(aioice, "TransportPolicy", None)
    common = dict(
        turn_server=parse_addr(args.server),
        turn_username=args.username,
        turn_password=args.password,
        turn_transport=args.transport,
        use_ipv6=False,
    )
    if policy is not None:
        common["transport_policy"] = policy.RELAY
    a = Connection(ice_controlling=True, **common)
    b = Connection(ice_controlling=False, **common)
    try:
        await asyncio.wait_for(
            asyncio.gather(a.gather_candidates(), b.gather_candidates()),
            timeout=args.step_timeout,
        )
        relay_a = [c for c in a.local_candidates if c.type == "relay"]
        relay_b = [c for c in b.local_candidates if c.type == "relay"]
        result["local_candidate_types"] = {
            "a": sorted({c.type for c in a.local_candidates}),
            "b": sorted({c.type for c in b.local_candidates}),
        }
        result["relay_candidates"] = {
            "a": [f"{c.host}:{c.port}" for c in relay_a],
            "b": [f"{c.host}:{c.port}" for c in relay_b],
        }
        if not relay_a or not relay_b:
            raise AssertionError("no relay candidate gathered (TURN allocation failed?)")

        # Exchange only relay candidates, so every check has to cross the relay.
        for c in relay_b:
            await a.add_remote_candidate(c)
        await a.add_remote_candidate(None)
        for c in relay_a:
            await b.add_remote_candidate(c)
        await b.add_remote_candidate(None)
        a.remote_username, a.remote_password = b.local_username, b.local_password
        b.remote_username, b.remote_password = a.local_username, a.local_password

        await asyncio.wait_for(
            asyncio.gather(a.connect(), b.connect()), timeout=args.step_timeout
        )

        # Which pair got nominated (private attribute; informational + checked
        # when present).
        selected = {}
        for name, conn in (("a", a), ("b", b)):
            pair = getattr(conn, "_nominated", {}).get(1)
            if pair is not None:
                selected[name] = {
                    "local_type": pair.local_candidate.type,
                    "remote": list(pair.remote_addr),
                }
        result["selected"] = selected

        await asyncio.wait_for(a.send(b"ping from controlling"), args.step_timeout)
        got_b = await asyncio.wait_for(b.recv(), args.step_timeout)
        await asyncio.wait_for(b.send(b"pong from controlled"), args.step_timeout)
        got_a = await asyncio.wait_for(a.recv(), args.step_timeout)
        result["b_received"] = got_b.decode(errors="replace")
        result["a_received"] = got_a.decode(errors="replace")

        relay_only = all(
            t == ["relay"] for t in result["local_candidate_types"].values()
        ) and all(s["local_type"] == "relay" for s in selected.values())
        result["relay_only"] = relay_only
        result["ok"] = (
            got_b == b"ping from controlling"
            and got_a == b"pong from controlled"
            and relay_only
        )
    finally:
        for conn in (a, b):
            try:
                await asyncio.wait_for(conn.close(), timeout=5)
            except Exception:  # noqa: BLE001 - closing is best effort
                pass


def tls_context(args):
    """TLS client context for --tls (the test server's certificate is
    self-signed, so it is not verified); None for plain TCP/UDP."""
    if not args.tls:
        return None
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["stun.turn"])
    return ctx


async def main_async(args):
    result = {"case": args.case, "ok": False}
    try:
        import aioice

        result["aioice_version"] = getattr(aioice, "__version__", "?")
        fn = case_endpoint if args.case == "endpoint" else case_ice
        await asyncio.wait_for(fn(args, result), timeout=args.timeout)
    except BaseException as exc:  # noqa: BLE001 - reported in the JSON line
        result["ok"] = False
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case", choices=["endpoint", "ice"])
    p.add_argument("--server", required=True, help="host:port of the TURN server")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--transport", choices=["udp", "tcp"], default="udp",
                   help="client-to-server transport (the relay is UDP either way)")
    p.add_argument("--tls", action="store_true",
                   help="TLS over TCP to the server (turns:), certificate not verified")
    p.add_argument("--count", type=int, default=5)
    p.add_argument("--step-timeout", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=45.0)
    args = p.parse_args()
    result = asyncio.run(main_async(args))
    print(json.dumps(result, sort_keys=True), flush=True)
    sys.exit(0 if result.get("ok") else 1)


if __name__ == "__main__":
    main()
