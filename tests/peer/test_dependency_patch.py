"""peer.dependency_patch and the fast path's guards: a fix made for another version does nothing."""

from __future__ import annotations

import logging

import aiortc
import pytest
from aiortc.rtcsctptransport import InboundStream, RTCSctpTransport

from peer import fast_path, sctp_delayed_sack, sctp_reassembly
from peer.dependency_patch import applicable


def test_applicable_only_for_the_version_and_attributes_it_was_made_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "peer.fast_path"):
        assert applicable("fix", "1.16.0", "1.16.0", [(RTCSctpTransport, "_send_sack")])
        assert not caplog.records
        assert not applicable("fix", "1.17.0", "1.16.0", [(RTCSctpTransport, "_send_sack")])
        assert not applicable("fix", "1.16.0", "1.16.0", [(RTCSctpTransport, "_no_such_thing")])
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "made for 1.16.0, found 1.17.0" in messages[0]
    assert "_no_such_thing missing" in messages[1]


@pytest.mark.parametrize("fix", [sctp_delayed_sack, sctp_reassembly])
def test_a_fix_on_another_aiortc_version_patches_nothing_and_says_so_once(
    fix: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fix, "_installed", False)
    monkeypatch.setattr(aiortc, "__version__", "99.0.0")
    before = (RTCSctpTransport._send_sack, InboundStream.pop_messages)
    with caplog.at_level(logging.WARNING, "peer.fast_path"):
        assert fix.install() is False  # type: ignore[attr-defined]
    assert (RTCSctpTransport._send_sack, InboundStream.pop_messages) == before
    assert len(caplog.records) == 1 and "99.0.0" in caplog.records[0].getMessage()


def test_all_fixes_apply_to_the_pinned_versions_and_can_be_switched_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert all(fast_path.install().values())
    monkeypatch.setenv("RTC_PEER_FAST_PATH", "0")
    assert fast_path.install() == {}
