"""The browser Peer's API, driven inside a page: refusals, data, resume."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.server import RunningServer, running_server
from tests.web.pages import blank_page

IMPORT = "const { Peer } = await import('/static/rtc-peer.js');"


async def run(page: Any, body: str) -> Any:
    """Run ``body`` as an async function in the page, with ``Peer`` imported."""
    return await page.evaluate("async () => {" + IMPORT + body + "}")


async def test_refused_requests_reject_with_the_contract_code(browser: Any) -> None:
    async with running_server("--max-peers-per-room", "1") as server:
        context, page, errors = await blank_page(browser, server.url)
        codes = await run(
            page,
            """
            const first = new Peer(location.origin, 'full-room');
            await first.connect();
            const codes = [];
            for (const room of ['full-room', 'bad room!']) {
              const peer = new Peer(location.origin, room);
              try { await peer.connect(); codes.push('connected'); }
              catch (err) { codes.push(err instanceof Error ? err.code : 'not an Error'); }
            }
            try { await first.emit('x', 1, { to: 'nobody' }); codes.push('sent'); }
            catch (err) { codes.push(err.code); }
            await first.close();
            return codes;
            """
        )
        assert codes == ["room-full", "invalid-payload", "unknown-peer"]
        await context.close()
        assert errors == []


async def test_json_and_binary_arrive_exact_and_in_order(server: RunningServer, browser: Any) -> None:
    context, page, errors = await blank_page(browser, server.url)
    result = await run(
        page,
        """
        const a = new Peer(location.origin, 'data-room', { meta: { name: 'a' } });
        const b = new Peer(location.origin, 'data-room', { meta: { name: 'b' } });
        const got = [];
        const upgraded = new Promise((resolve) => b.on('upgrade', resolve));
        b.on('m', (from, data) => got.push([from, data]));
        await a.connect();
        const aSeesB = new Promise((resolve) => a.on('peer-joined', resolve));
        await b.connect();
        await aSeesB;  // a can address b only once it knows b
        const bytes = new Uint8Array(256).map((_, i) => i);
        const big = { text: 'é'.repeat(50000), list: [1, 2.5, null, true, 'x'] };
        // Some go before the data channel opens (relay), some after (webrtc).
        for (let i = 0; i < 20; i++) await a.emit('m', { i }, { to: b.id });
        await a.emit('m', bytes);
        await a.emit('m', big);
        await upgraded;
        for (let i = 20; i < 40; i++) await a.emit('m', { i });
        await a.emit('m', bytes.buffer);
        const deadline = Date.now() + 20000;
        while (got.length < 43 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        const summary = {
          count: got.length,
          from: got.every(([from]) => from === a.id),
          order: got.filter(([, d]) => d && typeof d.i === 'number').map(([, d]) => d.i),
          binary: got.filter(([, d]) => d instanceof Uint8Array).map(([, d]) => Array.from(d).join(',')),
          big: JSON.stringify(got.find(([, d]) => d && d.text)?.[1]) === JSON.stringify(big),
          transport: [a.transport(b.id), b.transport(a.id)],
          peers: [...a.peers.keys()].length === 1 && a.peers.get(b.id).meta.name === 'b',
        };
        await a.close(); await b.close();
        return summary;
        """
    )
    expected_bytes = ",".join(str(i) for i in range(256))
    assert result["count"] == 43
    assert result["from"] is True
    assert result["order"] == list(range(40))
    assert result["binary"] == [expected_bytes, expected_bytes]
    assert result["big"] is True
    assert result["transport"] == ["webrtc", "webrtc"]
    assert result["peers"] is True
    await context.close()
    assert errors == []


LOSE_CONNECTION = """
async (peer) => {
  const engine = peer._client.socket.io.engine;
  const deadline = Date.now() + 10000;
  while (engine.transport.name !== 'websocket' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  // Not a goodbye: an abnormal close code, as when the network drops.
  engine.transport.ws.close(4000);
}
"""


async def test_resume_after_a_lost_connection_keeps_id_and_messages(browser: Any) -> None:
    async with running_server("--resume-grace", "3") as server:
        context, page, errors = await blank_page(browser, server.url)
        result = await run(
            page,
            f"const lose = {LOSE_CONNECTION};"
            + """
            const a = new Peer(location.origin, 'resume-room', { webrtc: false });
            const b = new Peer(location.origin, 'resume-room', { webrtc: false });
            const got = [], left = [], states = [];
            a.on('m', (from, data) => got.push(data));
            b.on('peer-left', (id, reason) => left.push([id, reason]));
            a.on('signaling', (s) => states.push(s));
            await a.connect(); await b.connect();
            const id = a.id;
            const resumed = new Promise((resolve) => a.on('signaling', (s) => s === 'resumed' && resolve()));
            await lose(a);
            for (let i = 0; i < 10; i++) await b.emit('m', i);
            await resumed;
            const deadline = Date.now() + 10000;
            while (got.length < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
            const out = { same: a.id === id, got, left, states: [...states] };
            await a.close(); await b.close();
            return out;
            """
        )
        assert result["same"] is True
        assert result["got"] == list(range(10))
        assert result["left"] == []
        assert result["states"] == ["connected", "reconnecting", "resumed"]
        await context.close()
        assert errors == []


async def test_expired_resume_joins_afresh_with_a_new_id(browser: Any) -> None:
    async with running_server("--resume-grace", "2") as server:
        context, page, errors = await blank_page(browser, server.url)
        result = await run(
            page,
            f"const lose = {LOSE_CONNECTION};"
            + """
            const a = new Peer(location.origin, 'fresh-room', { webrtc: false });
            const b = new Peer(location.origin, 'fresh-room', { webrtc: false });
            const joined = [], left = [], got = [];
            b.on('peer-joined', (id) => joined.push(id));
            b.on('peer-left', (id, reason) => left.push([id, reason]));
            b.on('m', (from, data) => got.push([from, data]));
            await a.connect(); await b.connect();
            const oldId = a.id;
            const rejoined = new Promise((resolve) => a.on('signaling', (s) => s === 'rejoined' && resolve()));
            a._client.resumeToken = 'not-a-valid-token';
            await lose(a);
            await rejoined;
            await a.emit('m', 'after');
            const deadline = Date.now() + 10000;
            while ((left.length < 1 || got.length < 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
            const out = { oldId, newId: a.id, joined, left, got, knows: a.peers.has(b.id) };
            await a.close(); await b.close();
            return out;
            """
        )
        assert result["newId"] != result["oldId"]
        assert result["joined"] == [result["oldId"], result["newId"]]  # at connect, then anew
        assert result["left"] == [[result["oldId"], "disconnected"]]
        assert result["got"] == [[result["newId"], "after"]]
        assert result["knows"] is True
        await context.close()
        assert errors == []


async def test_lost_data_channel_downgrades_without_loss_then_upgrades_again(
    server: RunningServer, browser: Any
) -> None:
    context, page, errors = await blank_page(browser, server.url)
    result = await run(
        page,
        """
        const a = new Peer(location.origin, 'switch-room');
        const b = new Peer(location.origin, 'switch-room');
        const got = [], events = [];
        b.on('m', (from, data) => got.push(data));
        for (const p of [a, b]) for (const e of ['upgrade', 'downgrade']) p.on(e, () => events.push([p === a ? 'a' : 'b', e]));
        const until = async (test) => {
          const deadline = Date.now() + 20000;
          while (!test() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
          return test();
        };
        await a.connect(); await b.connect();
        await until(() => a.transport(b.id) === 'webrtc' && b.transport(a.id) === 'webrtc');
        for (let i = 0; i < 100; i++) await a.emit('m', i);
        a._negotiators.get(b.id).channel.close();    // the channel is lost mid-stream
        for (let i = 100; i < 200; i++) await a.emit('m', i);
        const relayed = await until(() => a.transport(b.id) === 'relay' || got.length === 200);
        await until(() => got.length === 200);
        const back = await until(() => a.transport(b.id) === 'webrtc' && b.transport(a.id) === 'webrtc');
        for (let i = 200; i < 250; i++) await a.emit('m', i);
        await until(() => got.length === 250);
        const out = { got: [...got], events: [...events], back, relayed };
        await a.close(); await b.close();
        return out;
        """,
    )
    assert result["got"] == list(range(250))
    assert result["back"] is True
    assert ["a", "downgrade"] in result["events"]
    assert result["events"].count(["a", "upgrade"]) == 2
    await context.close()
    assert errors == []


async def test_token_auth_and_turn_ice_servers(browser: Any) -> None:
    import time

    import jwt

    secret = "browser-test-secret-of-at-least-32-bytes"
    good = jwt.encode({"exp": int(time.time()) + 600, "rooms": ["auth-room"]}, secret, algorithm="HS256")
    expired = jwt.encode({"exp": int(time.time()) - 10}, secret, algorithm="HS256")
    flags = ("--auth-secret", secret, "--turn-url", "turn:127.0.0.1:3478", "--turn-secret", "t")
    async with running_server(*flags) as server:
        context, page, errors = await blank_page(browser, server.url)
        result = await run(
            page,
            f"const good = {good!r}, expired = {expired!r};"
            + """
            const codes = [];
            for (const [room, token] of [['auth-room', null], ['auth-room', expired], ['other-room', good]]) {
              const peer = new Peer(location.origin, room, { token, reconnect: false });
              try { await peer.connect(); codes.push('connected'); await peer.close(); }
              catch (err) { codes.push(err.code); }
            }
            const peer = new Peer(location.origin, 'auth-room', { token: good });
            await peer.connect();
            const ice = peer._serverIce;
            await peer.close();
            return { codes, ice };
            """,
        )
        assert result["codes"] == ["unauthorized", "unauthorized", "unauthorized"]
        [entry] = result["ice"]
        assert entry["urls"] == ["turn:127.0.0.1:3478"]
        expiry, peer_id = entry["username"].split(":", 1)
        assert int(expiry) > time.time() and peer_id and entry["credential"]
        await context.close()
        assert errors == []


async def test_offering_browser_starts_a_new_connection_when_python_loses_the_channel(
    server: RunningServer, browser: Any, tmp_path: Path
) -> None:
    """`renegotiate` without kinds: a new RTCPeerConnection, not a re-offer on the old one.

    The browser is the offerer (lower peerId); the Python peer, the answerer,
    closes the data channel, so it drops its connection and sends
    `{type: "renegotiate"}` while the browser's RTCPeerConnection is still up.
    """
    from peer import Peer as PythonPeer

    context, page, errors = await blank_page(browser, server.url)
    python = None
    for _ in range(40):  # peerIds are random: draw both until the browser's is the lower one
        browser_id = await run(
            page,
            """
            if (window.rtcPeer) await window.rtcPeer.close();
            const peer = new Peer(location.origin, 'reoffer-room');
            window.got = []; window.events = [];
            peer.on('m', (from, data) => window.got.push(data));
            for (const e of ['upgrade', 'downgrade']) peer.on(e, () => window.events.push(e));
            await peer.connect();
            window.rtcPeer = peer;
            return peer.id;
            """,
        )
        candidate = PythonPeer(server.url, "reoffer-room", download_dir=tmp_path)
        await candidate.connect()
        if browser_id < candidate.id:
            python = candidate
            break
        await candidate.close()
    assert python is not None, "the Python peer never drew a peerId above the browser's"
    upgrades: asyncio.Queue[str] = asyncio.Queue()
    python.on("upgrade", lambda sender, _d: upgrades.put_nowait(sender))
    python.on("downgrade", lambda sender, _d: upgrades.put_nowait("down"))
    on_webrtc = "([id]) => window.rtcPeer.transport(id) === 'webrtc'"
    try:
        await page.wait_for_function(on_webrtc, arg=[python.id], timeout=30_000)
        while python.transport(browser_id) != "webrtc":
            await asyncio.wait_for(upgrades.get(), 30)
        await page.evaluate("([id]) => { window.firstPc = window.rtcPeer._negotiators.get(id).pc; }",
                            [python.id])

        link = python._links[browser_id]
        assert link.webrtc is not None
        link.webrtc.channel.close()  # the Python side loses the channel; the browser's pc lives on
        for number in range(20):
            await python.emit("m", number, to=browser_id)
        await page.wait_for_function("() => window.events.includes('downgrade')", timeout=30_000)
        await page.wait_for_function(
            """([id]) => window.rtcPeer.transport(id) === 'webrtc'
                 && window.rtcPeer._negotiators.get(id).pc !== window.firstPc""",
            arg=[python.id],
            timeout=30_000,
        )
        while python.transport(browser_id) != "webrtc":
            await asyncio.wait_for(upgrades.get(), 30)
        for number in range(20, 30):
            await python.emit("m", number, to=browser_id)
        await page.wait_for_function("() => window.got.length === 30", timeout=30_000)
        assert await page.evaluate("() => window.got") == list(range(30))
        assert await page.evaluate("() => window.events") == ["upgrade", "downgrade", "upgrade"]
    finally:
        await python.close()
        await context.close()
    assert errors == []


async def test_requests_between_two_browser_peers(server: RunningServer, browser: Any) -> None:
    context, page, errors = await blank_page(browser, server.url)
    result = await run(
        page,
        """
        const { RequestError } = await import('/static/rtc-peer.js');
        const a = new Peer(location.origin, 'req-room', { webrtc: false });
        const b = new Peer(location.origin, 'req-room', { webrtc: false });
        const order = [];
        let release;
        const gate = new Promise((resolve) => { release = resolve; });
        b.handle('add', (from, xs) => xs.reduce((s, x) => s + x, 0));
        b.handle('echo', async (from, data) => data);
        b.handle('broken', () => { throw new Error('missing'); });
        b.handle('slow', async () => { order.push('slow started'); await gate; return 'slow done'; });
        b.handle('fast', (from, n) => { order.push(`fast ${n}`); return n; });
        b.on('chat', (from, n) => order.push(`chat ${n}`));
        await a.connect();
        const joined = new Promise((resolve) => a.on('peer-joined', resolve));
        await b.connect();
        await joined;
        const out = {};
        out.add = await a.request(b.id, 'add', [1, 2, 3]);
        const bytes = await a.request(b.id, 'echo', new Uint8Array([0, 255, 7]));
        out.bytes = Array.from(bytes);
        out.codes = [];
        for (const event of ['nobody', 'broken']) {
          try { await a.request(b.id, event, 1); out.codes.push('answered'); }
          catch (err) { out.codes.push([err instanceof RequestError, err.code]); }
        }
        try { await a.request(b.id, 'slow', 1, { timeout: 0.3 }); out.codes.push('answered'); }
        catch (err) { out.codes.push([err instanceof RequestError, err.code]); }
        out.openAfterTimeout = a._links.get(b.id).requests.size;
        // Ordered with emits, and no head-of-line blocking on the slow handler.
        await a.emit('chat', 1, { to: b.id });
        const slow = a.request(b.id, 'slow', 2);
        await a.emit('chat', 2, { to: b.id });
        out.fast = await a.request(b.id, 'fast', 3);
        out.order = [...order];
        release();
        out.slow = await slow;
        out.reserved = [];
        for (const name of ['file', 'peer-joined', 'peer-updated', 'signaling']) {
          try { await a.emit(name, {}); out.reserved.push('sent'); } catch (err) { out.reserved.push(err.name); }
        }
        try { b.handle('upgrade', () => 1); out.reserved.push('set'); } catch (err) { out.reserved.push(err.name); }
        await a.close();
        await b.close();
        return out;
        """,
    )
    assert result["add"] == 6
    assert result["bytes"] == [0, 255, 7]
    assert result["codes"] == [[True, "no-handler"], [True, "handler-error"], [True, "timeout"]]
    assert result["openAfterTimeout"] == 0
    assert result["fast"] == 3
    assert result["order"] == ["slow started", "chat 1", "slow started", "chat 2", "fast 3"]
    assert result["slow"] == "slow done"
    assert result["reserved"] == ["ReservedEventError"] * 5
    await context.close()
    assert errors == []


@pytest.mark.parametrize("webrtc", [True, False], ids=["webrtc", "relay"])
async def test_requests_between_browser_and_python(
    server: RunningServer, browser: Any, webrtc: bool
) -> None:
    from peer import Peer, RequestError

    room = f"req-interop-{webrtc}"
    context, page, errors = await blank_page(browser, server.url)
    browser_id = await page.evaluate(
        """async (room) => {
          const { Peer } = await import('/static/rtc-peer.js');
          const peer = new Peer(location.origin, room);
          peer.handle('double', async (from, n) => n * 2);
          peer.handle('bytes', (from, b) => b.slice().reverse());
          await peer.connect();
          window.rtcPeer = peer;
          return peer.id;
        }""",
        room,
    )
    python = Peer(server.url, room, webrtc=webrtc)
    python.handle("upper", lambda _sender, text: text.upper())
    await python.connect()
    try:
        assert await python.request(browser_id, "double", 21) == 42
        assert await python.request(browser_id, "bytes", b"\x01\x02\x03") == b"\x03\x02\x01"
        with pytest.raises(RequestError) as missing:
            await python.request(browser_id, "nothing", None)
        assert missing.value.code == "no-handler"
        answer = await page.evaluate(
            """async (to) => {
              const out = [await window.rtcPeer.request(to, 'upper', 'é abc')];
              try { await window.rtcPeer.request(to, 'nothing', 1); } catch (err) { out.push(err.code); }
              return out;
            }""",
            python.id,
        )
        assert answer == ["É ABC", "no-handler"]
    finally:
        await python.close()
        await page.evaluate("() => window.rtcPeer.close()")
        await context.close()
    assert errors == []


async def test_update_meta_between_browser_and_python(server: RunningServer, browser: Any) -> None:
    from peer import Peer

    context, page, errors = await blank_page(browser, server.url)
    browser_id = await page.evaluate(
        """async () => {
          const { Peer } = await import('/static/rtc-peer.js');
          const peer = new Peer(location.origin, 'presence-web', { meta: { name: 'web' }, webrtc: false });
          window.updates = [];
          peer.on('peer-updated', (id, info) => window.updates.push([id, info.meta, peer.peers.get(id).meta]));
          await peer.connect();
          window.rtcPeer = peer;
          return peer.id;
        }"""
    )
    python = Peer(server.url, "presence-web", meta={"name": "py"}, webrtc=False)
    updates: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    python.on("peer-updated", lambda peer_id, info: updates.put_nowait((peer_id, info.meta)))
    await python.connect()
    try:
        await python.update_meta({"name": "py", "hand": True})
        await page.wait_for_function("() => window.updates.length === 1")
        assert await page.evaluate("() => window.updates") == [
            [python.id, {"name": "py", "hand": True}, {"name": "py", "hand": True}]
        ]
        code = await page.evaluate(
            """async () => {
              await window.rtcPeer.updateMeta({ name: 'web', muted: true });
              try { await window.rtcPeer.updateMeta({ pad: 'x'.repeat(2000) }); return 'sent'; }
              catch (err) { return err.code; }
            }"""
        )
        assert code == "payload-too-large"
        assert await asyncio.wait_for(updates.get(), 10) == (browser_id, {"name": "web", "muted": True})
        assert python.peers[browser_id].meta == {"name": "web", "muted": True}
    finally:
        await python.close()
        await page.evaluate("() => window.rtcPeer.close()")
        await context.close()
    assert errors == []


async def test_path_in_the_browser_and_in_python(server: RunningServer, browser: Any) -> None:
    from peer import Peer

    context, page, errors = await blank_page(browser, server.url)
    browser_id = await page.evaluate(
        """async () => {
          const { Peer } = await import('/static/rtc-peer.js');
          const peer = new Peer(location.origin, 'path-web');
          await peer.connect();
          window.rtcPeer = peer;
          return peer.id;
        }"""
    )
    python = Peer(server.url, "path-web")
    upgraded = asyncio.Event()
    python.on("upgrade", lambda *_: upgraded.set())
    await python.connect()
    try:
        before = await page.evaluate("(id) => window.rtcPeer.path(id)", python.id)
        if before["transport"] == "relay":
            assert before == {"transport": "relay", "candidate": None, "rttMs": None}
        await asyncio.wait_for(upgraded.wait(), 30)
        await page.wait_for_function("(id) => window.rtcPeer.transport(id) === 'webrtc'", arg=python.id)
        await python.emit("x", 1, to=browser_id)
        path = await page.evaluate(
            """async (id) => {
              for (let i = 0; i < 100; i++) {
                const p = await window.rtcPeer.path(id);
                if (p.rttMs !== null) return p;
                await new Promise((r) => setTimeout(r, 100));
              }
              return window.rtcPeer.path(id);
            }""",
            python.id,
        )
        assert path["transport"] == "webrtc" and path["candidate"] == "host"
        assert isinstance(path["rttMs"], (int, float)) and 0 <= path["rttMs"] < 5000
        assert python.path(browser_id)["candidate"] == "host"
    finally:
        await python.close()
        await page.evaluate("() => window.rtcPeer.close()")
        await context.close()
    assert errors == []


async def test_the_files_demo_shows_the_path(server: RunningServer, browser: Any, artifacts: Path) -> None:
    context = await browser.new_context()
    first, second = await context.new_page(), await context.new_page()
    errors: list[str] = []
    for page in (first, second):
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    await first.goto(f"{server.url}/files.html?room=path-demo&name=one")
    await second.goto(f"{server.url}/files.html?room=path-demo&name=two")
    badge = first.locator("[data-transport='webrtc'][data-candidate='host']")
    await badge.first.wait_for(timeout=30_000)
    assert (await badge.first.text_content() or "").startswith("webrtc · host")
    await first.screenshot(path=str(artifacts / "files-path.png"))
    await context.close()
    assert errors == []


@pytest.mark.parametrize("webrtc", [True, False], ids=["webrtc", "relay"])
async def test_secret_rooms_between_browser_and_python(
    server: RunningServer, browser: Any, webrtc: bool
) -> None:
    """Same secret: they talk (the DTLS handshake too, over sealed SDP); a browser
    without it and one with another secret see nothing and get nothing in."""
    from peer import Peer

    room = f"blind-web-{webrtc}"
    secret = "correct horse battery staple"
    context, page, errors = await blank_page(browser, server.url)
    browser_id = await page.evaluate(
        """async ([room, secret, webrtc]) => {
          const { Peer } = await import('/static/rtc-peer.js');
          const make = async (options) => {
            const peer = new Peer(location.origin, room, { webrtc, ...options });
            peer.got = [];
            peer.on('m', (from, data) => peer.got.push(data));
            peer.handle('twice', (from, n) => 2 * n);
            await peer.connect();
            return peer;
          };
          window.member = await make({ secret });
          window.outsider = await make({});
          window.wrong = await make({ secret: 'not it' });
          return window.member.id;
        }""",
        [room, secret, webrtc],
    )
    python = Peer(server.url, room, secret=secret, webrtc=webrtc)
    got: list[tuple[str, Any]] = []
    python.on("m", lambda sender, data: got.append((sender, data)))
    python.handle("upper", lambda _s, text: text.upper())
    await python.connect()
    try:
        expected = "webrtc" if webrtc else "relay"
        await page.wait_for_function(
            "([id, t]) => window.member.transport(id) === t", arg=[python.id, expected], timeout=30_000
        )
        await python.emit("m", {"secret": "plans"})
        await page.wait_for_function("() => window.member.got.length === 1")
        assert await python.request(browser_id, "twice", 21) == 42
        answer = await page.evaluate(
            """async (to) => {
              await window.member.emit('m', new Uint8Array([1, 2, 3]), { to });
              await window.outsider.emit('m', 'from outside');
              await window.wrong.emit('m', 'wrong key');
              return await window.member.request(to, 'upper', 'ok');
            }""",
            python.id,
        )
        assert answer == "OK"
        await asyncio.wait_for(_until(lambda: len(got) >= 1 and python.undecryptable >= 2), 20)
        assert got == [(browser_id, b"\x01\x02\x03")]
        seen = await page.evaluate(
            "() => [window.member.got, window.outsider.got, window.wrong.got, window.wrong.undecryptable]"
        )
        assert seen[0] == [{"secret": "plans"}] and seen[1] == [] and seen[2] == []
        assert seen[3] >= 1
        await page.wait_for_function("() => window.member.undecryptable >= 2")  # outsider's and wrong's
    finally:
        await python.close()
        await page.evaluate("() => Promise.all([window.member.close(), window.outsider.close(), window.wrong.close()])")
        await context.close()
    assert errors == []


async def _until(check: Any) -> None:
    while not check():
        await asyncio.sleep(0.02)


async def test_lossy_datagrams_between_browser_and_python(server: RunningServer, browser: Any) -> None:
    from peer import Peer

    context, page, errors = await blank_page(browser, server.url)
    await page.evaluate(
        """async () => {
          const { Peer } = await import('/static/rtc-peer.js');
          const peer = new Peer(location.origin, 'lossy-web');
          window.pos = [];
          peer.on('pos', (from, data) => window.pos.push(data instanceof Uint8Array ? Array.from(data) : data));
          await peer.connect();
          window.rtcPeer = peer;
        }"""
    )
    python = Peer(server.url, "lossy-web")
    got: list[Any] = []
    upgraded = asyncio.Event()
    python.on("pos", lambda _s, data: got.append(data))
    python.on("upgrade", lambda *_: upgraded.set())
    await python.connect()
    try:
        await asyncio.wait_for(upgraded.wait(), 30)
        await page.wait_for_function("(id) => window.rtcPeer.transport(id) === 'webrtc'", arg=python.id)
        async with asyncio.timeout(20):  # until one arrives: the lossy channel may still be opening
            while not got:
                await page.evaluate(
                    "(to) => window.rtcPeer.emit('pos', { x: 1 }, { to, reliable: false })", python.id
                )
                await python.emit("pos", b"\x07\x08", reliable=False)
                await asyncio.sleep(0.05)
        assert got[0] == {"x": 1}
        await page.wait_for_function("() => window.pos.length > 0")
        assert (await page.evaluate("() => window.pos[0]")) == [7, 8]
        too_big = await page.evaluate(
            """(to) => window.rtcPeer.emit('pos', new Uint8Array(70000), { to, reliable: false })
                 .then(() => 'sent', (err) => err.name)""",
            python.id,
        )
        assert too_big == "MessageTooLarge"
    finally:
        await python.close()
        await page.evaluate("() => window.rtcPeer.close()")
        await context.close()
    assert errors == []


async def test_a_browser_peer_raises_nothing_a_remote_forges_under_library_names(
    server: RunningServer, browser: Any
) -> None:
    from peer.constants import RESERVED_EVENTS
    from tests.helpers.clients import RecordingClient
    from tests.peer.test_peer_wire import WireRemote

    context, page, errors = await blank_page(browser, server.url)
    browser_id = await page.evaluate(
        """async (names) => {
          const { Peer } = await import('/static/rtc-peer.js');
          const peer = new Peer(location.origin, 'forged-web', { webrtc: false });
          window.raised = [];
          for (const name of [...names, 'hello']) peer.on(name, (...args) => window.raised.push([name, ...args.map(String)]));
          await peer.connect();
          window.rtcPeer = peer;
          return peer.id;
        }""",
        sorted(RESERVED_EVENTS),
    )
    client = await RecordingClient().connect(server.url)
    remote = WireRemote(client, "forged-web")
    ack = await client.join("forged-web", webrtc=False)
    remote.peer_id, remote.to = ack["peerId"], browser_id
    try:
        await page.wait_for_function("(id) => window.rtcPeer.peers.has(id)", arg=remote.peer_id)
        forged = {"name": "../../evil", "sha256": "0" * 64}
        for name in sorted(RESERVED_EVENTS):
            await client.request("relay", {"room": "forged-web", "event": name, "data": forged, "to": browser_id})
            await remote.send_message(name, forged)
        await remote.send_message("hello", 1)
        await page.wait_for_function("() => window.raised.some(([name]) => name === 'hello')")
        raised = await page.evaluate("() => window.raised")
        genuine = [["signaling", "connected"], ["peer-joined", remote.peer_id, "[object Object]"]]
        assert [r for r in raised if r not in genuine] == [["hello", remote.peer_id, "1"]]
    finally:
        await client.disconnect()
        await page.evaluate("() => window.rtcPeer.close()")
        await context.close()
    assert errors == []


async def test_a_browser_request_sent_on_the_relay_is_answered_once_after_the_upgrade(
    server: RunningServer, browser: Any
) -> None:
    from peer import Peer

    python = Peer(server.url, "req-switch-web")
    upgraded = asyncio.Event()
    calls: list[Any] = []

    async def after_upgrade(sender: str, data: Any) -> str:
        calls.append(data)
        await asyncio.wait_for(upgraded.wait(), 30)
        return f"answered on {python.transport(sender)}"

    python.on("upgrade", lambda *_: upgraded.set())
    python.handle("later", after_upgrade)
    await python.connect()
    context, page, errors = await blank_page(browser, server.url)
    try:
        result = await page.evaluate(
            """async (to) => {
              const { Peer } = await import('/static/rtc-peer.js');
              const peer = new Peer(location.origin, 'req-switch-web');
              window.rtcPeer = peer;
              await peer.connect();
              const before = peer.transport(to);
              const answer = await peer.request(to, 'later', 1, { timeout: 30 });
              return [before, answer, peer.transport(to), peer._links.get(to).requests.size];
            }""",
            python.id,
        )
        assert result == ["relay", "answered on webrtc", "webrtc", 0]
        assert calls == [1]
    finally:
        await python.close()
        await page.evaluate("() => window.rtcPeer?.close()")
        await context.close()
    assert errors == []
