"""``python -m signaling doctor URL [--turn]``: why won't it connect?

Checks a running server from where the doctor runs, in the order a client
meets the pieces: HTTP and ``/healthz``, Socket.IO over polling, over
websocket, the upgrade from one to the other, a join and a relay between two
of its own connections, the ``iceServers`` handed out, a STUN binding and,
with ``--turn``, a TURN allocation with the credentials the server minted.
One line per check: ``ok``, ``FAIL`` with the reason and the fix, or
``skip`` with the reason. Exit status 0 only when nothing failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aioice import stun
from aioice.turn import create_turn_endpoint

from .doctor_client import ClientError, SocketIOClient

OK, FAIL, SKIP = "ok", "FAIL", "skip"
DEFAULT_TIMEOUT = 10.0

FIX_HTTP = ("check the URL, that the server runs (it prints `listening on ...`), "
            "and that no firewall or proxy blocks the port")
FIX_POLLING = ("the proxy must pass /socket.io/ to the server; with several nodes it needs sticky "
               "sessions (nginx: `hash $remote_addr consistent;` in the upstream), see docs/deployment.md")
FIX_WEBSOCKET = ("the proxy must pass the websocket upgrade: nginx needs `proxy_http_version 1.1;`, "
                 "`proxy_set_header Upgrade $http_upgrade;` and `proxy_set_header Connection $connection_upgrade;` "
                 "(docs/deployment.md); some corporate proxies block websockets: clients then stay on polling")
FIX_STUN = ("make sure UDP to the STUN server's port is allowed outbound and the --stun URL is right; "
            "without STUN, peers behind NAT cannot find each other's public address")
FIX_TURN = ("coturn must run with `use-auth-secret` and `static-auth-secret` equal to the server's "
            "--turn-secret, its realm set, and both machines' clocks right (credentials carry an expiry)")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<5} {self.name:<10} {self.detail}"
        return f"{text}. Fix: {self.fix}" if self.status == FAIL and self.fix else text


def parse_ice_url(url: str) -> tuple[str, str, int, str]:
    """``stun:host[:port]`` / ``turn(s):host[:port][?transport=udp|tcp]`` -> (scheme, host, port, transport)."""
    scheme, _, rest = url.partition(":")
    rest, _, query = rest.partition("?")
    transport = "tcp" if scheme in ("turns", "stuns") else "udp"
    for item in query.split("&"):
        key, _, value = item.partition("=")
        if key == "transport" and value in ("udp", "tcp"):
            transport = value
    if rest.startswith("["):  # [v6]:port
        host, _, port_text = rest[1:].partition("]")
        port_text = port_text.lstrip(":")
    else:
        host, _, port_text = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
    default = 5349 if scheme in ("turns", "stuns") else 3478
    return scheme, host, int(port_text) if port_text.isdigit() else default, transport


@dataclass
class Doctor:
    url: str
    turn: bool = False
    token: str | None = None
    insecure: bool = False
    timeout: float = DEFAULT_TIMEOUT
    results: list[Check] = field(default_factory=list)
    _clients: list[SocketIOClient] = field(default_factory=list)

    def _add(self, name: str, status: str, detail: str, fix: str = "") -> Check:
        check = Check(name, status, detail, fix)
        self.results.append(check)
        return check

    async def run(self, out: Callable[[str], None] = print) -> list[Check]:
        try:
            http_ok = await self._step(out, self.check_http)
            polling = await self._client_step(out, "polling", ["polling"], http_ok, FIX_POLLING)
            websocket = await self._client_step(out, "websocket", ["websocket"], http_ok, FIX_WEBSOCKET)
            upgraded = await self._client_step(out, "upgrade", ["polling", "websocket"], http_ok, FIX_WEBSOCKET)
            pair = [c for c in (polling, websocket, upgraded) if c is not None][:2]
            ice = await self._step(out, lambda: self.check_relay(pair))
            servers = ice if isinstance(ice, list) else None
            await self._step(out, lambda: self.check_stun(servers))
            await self._step(out, lambda: self.check_turn(servers))
        finally:
            for client in self._clients:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.disconnect(), 5)
        return self.results

    async def _step(self, out: Callable[[str], None], step: Callable[[], Awaitable[Any]]) -> Any:
        before = len(self.results)
        try:
            value = await step()
        finally:
            for check in self.results[before:]:
                out(check.line())
        return value

    # -- HTTP --------------------------------------------------------------
    def _ssl(self) -> ssl.SSLContext | bool:
        return not self.insecure

    async def check_http(self) -> bool:
        target = self.url.rstrip("/") + "/healthz"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as http, \
                    http.get(target, ssl=self._ssl()) as response:
                text = (await response.text())[:200]
                status = response.status
        except aiohttp.ClientConnectorCertificateError as exc:
            self._add("http", FAIL, f"GET {target}: the TLS certificate is not trusted ({exc.certificate_error})",
                      "install a certificate for this name, or pass --insecure to test anyway")
            return False
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._add("http", FAIL, f"GET {target}: {exc or type(exc).__name__}", FIX_HTTP)
            return False
        if status == 200:
            self._add("http", OK, f"GET {target}: 200 {text.strip()}")
            return True
        if status == 503:
            self._add("http", FAIL, f"GET {target}: 503 {text.strip()}",
                      "the server cannot reach its Redis: check --redis-url and that Redis runs")
        else:
            self._add("http", FAIL, f"GET {target}: HTTP {status}",
                      "the URL must point at the signaling server (or a proxy passing / to it)")
        return False

    # -- Socket.IO -----------------------------------------------------------
    async def _client_step(
        self, out: Callable[[str], None], name: str, transports: list[str], http_ok: bool, fix: str
    ) -> SocketIOClient | None:
        async def step() -> SocketIOClient | None:
            if not http_ok:
                self._add(name, SKIP, "HTTP does not work, so Socket.IO cannot")
                return None
            return await self.check_socketio(name, transports, fix)

        result: SocketIOClient | None = await self._step(out, step)
        return result

    async def check_socketio(self, name: str, transports: list[str], fix: str) -> SocketIOClient | None:
        client = SocketIOClient(self.url, verify_ssl=not self.insecure)
        auth = {"token": self.token} if self.token else None
        try:
            await asyncio.wait_for(client.connect(transports, auth, self.timeout), self.timeout + 1)
        except (ClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 2)
            why = str(exc) or type(exc).__name__
            if "unauthorized" in why:
                self._add(name, FAIL, f"connect refused: {why}", "pass --token with a JWT the server accepts")
            else:
                self._add(name, FAIL, f"no Socket.IO connection over {'+'.join(transports)}: {why}", fix)
            return None
        self._clients.append(client)
        current = client.transport
        if name == "upgrade" and current != "websocket":
            self._add(name, FAIL, "connected over polling, but the upgrade to websocket did not happen", fix)
            return client
        self._add(name, OK, f"connected over {current} (sid {client.sid[:8]}...)")
        return client

    async def check_relay(self, pair: list[SocketIOClient]) -> list[dict[str, Any]] | None:
        if len(pair) < 2:
            self._add("relay", SKIP, "needs two working Socket.IO connections")
            return None
        room = "doctor-" + secrets.token_hex(6)
        sender, receiver = pair
        got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        nonce = secrets.token_hex(8)

        def on_relay(message: Any) -> None:
            if isinstance(message, dict) and message.get("data") == {"nonce": nonce} and not got.done():
                got.set_result(message)

        receiver.on("relay", on_relay)
        try:
            first = await sender.call("join", {"room": room}, timeout=self.timeout)
            second = await receiver.call("join", {"room": room}, timeout=self.timeout)
            for ack in (first, second):
                if not isinstance(ack, dict) or not ack.get("ok"):
                    self._add("join", FAIL, f"join {room} answered {ack}",
                              "see the error's message; with --auth-secret pass --token")
                    return None
            self._add("join", OK, f"joined {room} on two connections")
            reply = await sender.call(
                "relay", {"room": room, "to": second["peerId"], "event": "doctor", "data": {"nonce": nonce}},
                timeout=self.timeout)
            await asyncio.wait_for(got, self.timeout)
        except (TimeoutError, ClientError, aiohttp.ClientError, OSError) as exc:
            self._add("relay", FAIL, f"a relay between two own connections did not arrive ({exc or 'timeout'})",
                      "with several nodes, they must share one --redis-url; check the server's log")
            return None
        finally:
            for client in pair:
                with contextlib.suppress(Exception):
                    await client.emit("leave", {"room": room})
        self._add("relay", OK, f"relay arrived (ack {reply})")
        servers = first.get("iceServers")
        if not isinstance(servers, list):
            self._add("ice", FAIL, f"iceServers is {servers!r}, not a list", "report this as a server bug")
            return None
        urls = [u for s in servers if isinstance(s, dict) for u in _urls(s)]
        self._add("ice", OK, f"{len(servers)} server entries: {', '.join(urls)}" if urls
                  else "iceServers is empty: host candidates only (fine on one LAN, not across NATs)")
        return servers

    # -- STUN / TURN ---------------------------------------------------------
    async def check_stun(self, servers: list[dict[str, Any]] | None) -> None:
        if servers is None:
            self._add("stun", SKIP, "no iceServers to test (the join did not work)")
            return
        urls = [u for s in servers for u in _urls(s) if u.startswith("stun:")]
        if not urls:
            self._add("stun", SKIP, "no STUN server configured (--stun)")
            return
        for url in urls:
            _, host, port, _ = parse_ice_url(url)
            try:
                mapped = await asyncio.wait_for(stun_binding(host, port), self.timeout)
            except (TimeoutError, OSError, ValueError) as exc:
                self._add("stun", FAIL, f"{url}: no binding answer ({str(exc) or 'timeout'})", FIX_STUN)
                continue
            self._add("stun", OK, f"{url}: this machine is seen as {mapped[0]}:{mapped[1]}")

    async def check_turn(self, servers: list[dict[str, Any]] | None) -> None:
        if not self.turn:
            self._add("turn", SKIP, "pass --turn to test a TURN allocation")
            return
        turn = [s for s in servers or [] if any(u.startswith(("turn:", "turns:")) for u in _urls(s))]
        if not turn:
            self._add("turn", FAIL, "no TURN server in iceServers",
                      "start the server with --turn-url and --turn-secret (coturn, use-auth-secret)")
            return
        entry = turn[0]
        for url in [u for u in _urls(entry) if u.startswith(("turn:", "turns:"))]:
            scheme, host, port, transport = parse_ice_url(url)
            context: ssl.SSLContext | None = None
            if scheme == "turns":
                context = ssl.create_default_context()
                if self.insecure:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
            try:
                relayed = await asyncio.wait_for(
                    turn_allocation(host, port, str(entry.get("username")), str(entry.get("credential")),
                                    transport, context),
                    self.timeout)
            except (TimeoutError, OSError, ConnectionError, stun.TransactionError) as exc:
                why = getattr(exc, "response", None)
                detail = _stun_error(why) if why is not None else (str(exc) or type(exc).__name__)
                self._add("turn", FAIL, f"{url}: allocation failed ({detail})", FIX_TURN)
                continue
            self._add("turn", OK, f"{url}: relayed address {relayed[0]}:{relayed[1]}")


def _urls(server: dict[str, Any]) -> list[str]:
    urls = server.get("urls")
    if isinstance(urls, str):
        return [urls]
    return [u for u in urls if isinstance(u, str)] if isinstance(urls, list) else []


def _stun_error(message: Any) -> str:
    error = message.attributes.get("ERROR-CODE") if hasattr(message, "attributes") else None
    return f"{error[0]} {error[1]}" if error else "error response"


class _StunClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[stun.Message] = asyncio.get_running_loop().create_future()
        self.transaction_id = b""

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = stun.parse_message(data)
        except ValueError:
            return
        if message.transaction_id == self.transaction_id and not self.answer.done():
            self.answer.set_result(message)


async def stun_binding(host: str, port: int, retries: int = 4) -> tuple[str, int]:
    """One STUN Binding request over UDP; the XOR-MAPPED-ADDRESS of the answer."""
    loop = asyncio.get_running_loop()
    info = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    address = info[0][4]
    transport, client = await loop.create_datagram_endpoint(
        _StunClient, remote_addr=(str(address[0]), int(address[1])))
    try:
        request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        client.transaction_id = request.transaction_id
        wait = 0.5
        for _ in range(retries):
            transport.sendto(bytes(request))
            with contextlib.suppress(TimeoutError):
                answer = await asyncio.wait_for(asyncio.shield(client.answer), wait)
                break
            wait *= 2
        else:
            raise TimeoutError(f"no answer from {host}:{port} after {retries} tries")
        mapped = answer.attributes.get("XOR-MAPPED-ADDRESS") or answer.attributes.get("MAPPED-ADDRESS")
        if answer.message_class != stun.Class.RESPONSE or not mapped:
            raise ValueError(f"answer without a mapped address: {_stun_error(answer)}")
        return str(mapped[0]), int(mapped[1])
    finally:
        transport.close()


async def turn_allocation(
    host: str, port: int, username: str, password: str, transport: str, context: ssl.SSLContext | None
) -> tuple[str, int]:
    """Allocate a relayed address on a TURN server, then release it."""
    turn_transport, _ = await create_turn_endpoint(
        asyncio.DatagramProtocol, server_addr=(host, port), username=username, password=password,
        ssl=context, transport=transport, lifetime=60,
    )
    try:
        relayed = turn_transport.get_extra_info("sockname")
        return str(relayed[0]), int(relayed[1])
    finally:
        turn_transport.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m signaling doctor",
        description="Check a signaling server from here: HTTP, Socket.IO transports, a relay, STUN, TURN.",
    )
    parser.add_argument("url", help="the server's URL, as clients use it (http(s)://host[:port])")
    parser.add_argument("--turn", action="store_true", help="also allocate on the TURN server handed out")
    parser.add_argument("--token", help="a JWT for servers started with --auth-secret")
    parser.add_argument("--insecure", action="store_true", help="accept a TLS certificate that is not trusted")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per check (default 10)")
    return parser


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    if urlsplit(args.url).scheme not in ("http", "https"):
        print(f"doctor: expected an http:// or https:// URL, got {args.url!r}", file=sys.stderr)
        return 2
    doctor = Doctor(args.url, turn=args.turn, token=args.token, insecure=args.insecure, timeout=args.timeout)
    results = asyncio.run(doctor.run(lambda line: print(line, flush=True)))
    failed = sum(1 for check in results if check.status == FAIL)
    print(f"{failed} check(s) failed" if failed else "all checks passed", flush=True)
    return 1 if failed else 0
