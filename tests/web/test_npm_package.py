"""web/ as the npm package rtc-signaling-peer: its files, its exports, and types that check.

TypeScript comes from npm into web/types-check/node_modules on first use
(as tests/interop does for socket.io-client); ``tsc --noEmit`` then checks
a small consumer that imports the package by name, through its ``exports``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
TYPES_CHECK = WEB / "types-check"


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("node and npm are needed to check the npm package")
    return npm


def test_the_package_exports_the_module_and_its_types() -> None:
    package = json.loads((WEB / "package.json").read_text("utf-8"))
    assert package["name"] == "rtc-signaling-peer" and "private" not in package
    assert package["type"] == "module"
    main = package["exports"]["."]
    assert (WEB / main["default"]).is_file() and (WEB / main["types"]).is_file()
    assert main["default"] == "./static/rtc-peer.js"  # the very file the server serves


def test_npm_pack_ships_the_module_its_libs_and_types_only() -> None:
    npm = _npm()
    out = subprocess.run(
        [npm, "pack", "--dry-run", "--json", "--ignore-scripts"],
        cwd=WEB, check=True, capture_output=True, text=True, timeout=120,
    )
    files = {entry["path"] for entry in json.loads(out.stdout)[0]["files"]}
    assert {"static/rtc-peer.js", "static/rtc-peer.d.ts", "static/lib/session.js",
            "static/vendor/socket.io.esm.min.js", "package.json"} <= files
    assert not any(f.startswith(("test/", "types-check/", "scripts/", "static/demos/")) for f in files)


def test_types_check_a_consumer_with_tsc() -> None:
    npm = _npm()
    if not (TYPES_CHECK / "node_modules" / "typescript").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=TYPES_CHECK, check=True, timeout=300
        )
    tsc = TYPES_CHECK / "node_modules" / "typescript" / "bin" / "tsc"
    result = subprocess.run(
        ["node", str(tsc), "--noEmit", "-p", "tsconfig.json"],
        check=False, cwd=TYPES_CHECK, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
