"""The vendored socket.io-client is the version web/package.json pins, with its license."""

from __future__ import annotations

import json
import re

from tests.helpers.server import ROOT

WEB = ROOT / "web"


def test_vendored_client_matches_the_pin() -> None:
    pinned = json.loads((WEB / "package.json").read_text())["devDependencies"]["socket.io-client"]
    locked = json.loads((WEB / "package-lock.json").read_text())
    assert locked["packages"]["node_modules/socket.io-client"]["version"] == pinned
    bundle = (WEB / "static" / "vendor" / "socket.io.esm.min.js").read_text()
    match = re.search(r"Socket\.IO v(\S+)", bundle[:200])
    assert match and match.group(1) == pinned
    assert "export{" in bundle and "sourceMappingURL" not in bundle
    license_text = (WEB / "static" / "vendor" / "LICENSE.socket.io-client").read_text()
    assert "MIT" in license_text or "Permission is hereby granted" in license_text


def test_pages_load_only_local_scripts() -> None:
    for page in ("index", "call", "files", "chat"):
        html = (WEB / f"{page}.html").read_text()
        sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
        assert sources and all(s.startswith("/static/") for s in sources), (page, sources)
