"""What docs/deployment.md shows besides the nginx config (that one runs in
test_deployment.py): the alert rules use series a node serves, the systemd unit
passes systemd-analyze."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.cluster.conftest import NEEDS_REDIS
from tests.helpers.redis_server import RedisServer
from tests.helpers.server import running_server
from tests.ops.deploy import DOC

BEGIN, END = "<!-- tested-alert-rules:begin -->", "<!-- tested-alert-rules:end -->"


def alert_rules() -> dict[str, object]:
    text = DOC.read_text()
    block = text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()
    assert block.startswith("```yaml\n") and block.endswith("```")
    rules = yaml.safe_load(block[len("```yaml\n"):-3])
    assert isinstance(rules, dict)
    return rules


def test_alert_rules_cover_what_the_issue_asks() -> None:
    rules = [r for group in alert_rules()["groups"] for r in group["rules"]]  # type: ignore[index, union-attr]
    names = {r["alert"] for r in rules}
    assert {"SignalingRedisUnreachable", "SignalingEventLoopLag", "SignalingRefusedConnections"} <= names
    for rule in rules:
        assert set(rule) >= {"alert", "expr", "for", "labels", "annotations"}, rule


@NEEDS_REDIS
@pytest.mark.redis
async def test_alert_rules_use_series_a_node_serves(redis_server: RedisServer) -> None:
    wanted = set()
    for group in alert_rules()["groups"]:  # type: ignore[index]
        for rule in group["rules"]:
            wanted.update(re.findall(r"\bsignaling_[a-z_]+", rule["expr"]))
    flags = ("--redis-url", redis_server.url, "--webhook-url", "http://127.0.0.1:9/x", "--webhook-secret", "s")
    async with running_server(*flags, "--auth-secret", "x" * 32) as server, aiohttp.ClientSession() as http:
        # one refusal, so the refused-connections family has a sample
        async with http.get(f"{server.url}/socket.io/?EIO=4&transport=polling",
                            headers={"Origin": "https://elsewhere.example"}) as response:
            assert response.status == 400
        async with http.get(f"{server.url}/metrics") as response:
            text = await response.text()
    served = set(re.findall(r"^(signaling_[a-z_]+)", text, re.MULTILINE))
    assert wanted and wanted <= served, wanted - served


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
async def test_systemd_unit_verifies(tmp_path: Path) -> None:
    text = DOC.read_text()
    unit = re.search(r"```ini\n(# /etc/systemd/system/signaling@\.service\n.*?)```", text, re.DOTALL)
    assert unit is not None, "docs/deployment.md lost its systemd unit"
    body = unit.group(1)
    assert "ExecStart=/opt/signaling/venv/bin/signaling-server --host 127.0.0.1 --port %i" in body
    # the paths of this machine instead of the doc's
    body = body.replace("/opt/signaling/venv/bin/signaling-server", shutil.which("true") or "/bin/true")
    body = body.replace("EnvironmentFile=/etc/signaling/env", f"EnvironmentFile=-{tmp_path / 'env'}")
    path = tmp_path / "signaling@8081.service"
    path.write_text(body)
    process = await asyncio.create_subprocess_exec(
        "systemd-analyze", "verify", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0 and not err.strip(), err.decode()
