"""The relay's own Redis connection (``redis_line``), against a real redis-server."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from signaling.backends.redis_line import RedisLine
from signaling.tls import self_signed
from tests.backends.conftest import NEEDS_REDIS
from tests.helpers.ports import free_port
from tests.helpers.redis_server import REDIS_SERVER, RedisServer

pytestmark = [pytest.mark.redis, NEEDS_REDIS]

COUNT = "return redis.call('INCR', ARGV[1])"
COUNT_SHA = hashlib.sha1(COUNT.encode()).hexdigest()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()  # its own: a test here flushes scripts and stops it
    server.start()
    yield server
    server.close()


def line_for(url: str, timeout: float = 3.0) -> RedisLine:
    pool = aioredis.ConnectionPool.from_url(url)
    return RedisLine(pool.connection_class, pool.connection_kwargs, timeout=timeout)


@pytest.fixture
async def line(own_redis: RedisServer) -> AsyncIterator[RedisLine]:
    made = line_for(own_redis.url)
    yield made
    made.close()


async def test_concurrent_calls_are_answered_in_the_order_they_were_sent(line: RedisLine) -> None:
    replies = await asyncio.wait_for(asyncio.gather(*(line.call("INCR", "n") for _ in range(300))), 10)
    assert replies == list(range(1, 301))


async def test_an_error_reply_is_raised_and_the_connection_goes_on(line: RedisLine) -> None:
    await line.call("SET", "s", "text")
    with pytest.raises(ResponseError, match="not an integer"):
        await line.call("INCR", "s")
    assert await line.call("GET", "s") == b"text"


async def test_a_script_forgotten_by_redis_is_loaded_and_runs_once(line: RedisLine) -> None:
    assert await line.evalsha(COUNT_SHA, COUNT, ["runs"]) == 1
    await line.call("SCRIPT", "FLUSH")
    assert await line.evalsha(COUNT_SHA, COUNT, ["runs"]) == 2  # NOSCRIPT: did not run, sent again
    assert await line.call("GET", "runs") == b"2"


async def written_where_redis_py_reads(url: str, value: str) -> None:
    """A line to ``url`` sets a key that redis-py, connected to the same ``url``, reads back."""
    line = line_for(url)
    other = aioredis.Redis.from_url(url)
    try:
        await line.call("SET", "where", value)
        assert await other.get("where") == value.encode()
    finally:
        line.close()
        await other.aclose()


async def test_the_urls_database_is_used(own_redis: RedisServer) -> None:
    await written_where_redis_py_reads(own_redis.url.rsplit("/", 1)[0] + "/3", "db3")


async def test_an_overdue_reply_ends_the_connection_and_the_next_call_opens_another(line: RedisLine) -> None:
    assert await line.call("PING") == b"PONG"  # connected: the next call is written at once
    blocked = asyncio.ensure_future(line.call("BLPOP", "never", 0))
    await asyncio.sleep(0)  # let it write its command
    line.check(asyncio.get_running_loop().time() + line.timeout + 1)
    with pytest.raises(RedisConnectionError, match="did not answer"):
        await asyncio.wait_for(blocked, 5)
    assert await asyncio.wait_for(line.call("PING"), 5) == b"PONG"


async def test_redis_gone_fails_the_call_instead_of_hanging(own_redis: RedisServer, line: RedisLine) -> None:
    assert await line.call("PING") == b"PONG"
    own_redis.stop()
    with pytest.raises(RedisConnectionError):
        await asyncio.wait_for(line.call("PING"), 5)
    with pytest.raises(RedisConnectionError):  # and connecting again fails, too
        await asyncio.wait_for(line.call("PING"), 5)


async def test_a_subscriber_hears_each_message_and_the_end_of_its_connection(
    own_redis: RedisServer, line: RedisLine
) -> None:
    heard = asyncio.Queue[None]()
    await line.subscribe(b"wake", lambda: heard.put_nowait(None))
    assert line.subscribed
    publisher = line_for(own_redis.url)
    try:
        assert await publisher.call("PUBLISH", "wake", "") == 1
        await asyncio.wait_for(heard.get(), 5)
        own_redis.stop()
        await asyncio.wait_for(heard.get(), 5)
        assert not line.subscribed
    finally:
        publisher.close()


@pytest.fixture
def unix_redis(tmp_path: Path) -> Iterator[Path]:
    """A redis-server on a Unix socket only, with a password."""
    sock = tmp_path / "redis.sock"
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", "0", "--unixsocket", str(sock), "--requirepass", "s3cret",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield sock
    finally:
        process.terminate()
        process.wait(10)


async def test_a_unix_socket_with_a_password_and_a_database(unix_redis: Path) -> None:
    await written_where_redis_py_reads(f"unix://{unix_redis}?db=2&password=s3cret", "db2")
    wrong = line_for(f"unix://{unix_redis}?password=wrong")
    with pytest.raises(RedisConnectionError, match="refused the connection"):
        await asyncio.wait_for(wrong.call("PING"), 5)
    wrong.close()


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """A redis-server on TLS only, with a self-signed certificate: (port, certificate file)."""
    port = free_port()
    with self_signed("127.0.0.1") as pair:
        process = subprocess.Popen(
            [REDIS_SERVER, "--port", "0", "--tls-port", str(port), "--tls-cert-file", pair.cert,
             "--tls-key-file", pair.key, "--tls-ca-cert-file", pair.cert, "--tls-auth-clients", "no",
             "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            yield port, pair.cert
        finally:
            process.terminate()
            process.wait(10)


async def test_tls_checks_the_servers_certificate(tls_redis: tuple[int, str]) -> None:
    """``rediss://``: the line speaks TLS with redis-py's settings from the URL."""
    port, cert = tls_redis
    line = line_for(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}")
    untrusting = line_for(f"rediss://127.0.0.1:{port}/0")  # the system's CAs only
    try:
        deadline = time.monotonic() + 10
        while True:  # until it listens
            try:
                assert await asyncio.wait_for(line.call("PING"), 5) == b"PONG"
                break
            except RedisConnectionError:
                assert time.monotonic() < deadline, "the TLS redis-server did not start"
                await asyncio.sleep(0.05)
        with pytest.raises(RedisConnectionError, match="certificate"):
            await asyncio.wait_for(untrusting.call("PING"), 5)
    finally:
        line.close()
        untrusting.close()
