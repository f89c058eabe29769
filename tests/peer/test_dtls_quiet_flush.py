"""peer.dtls_quiet_flush: pyOpenSSL is asked for output only when there is some."""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL

from tests.peer.fast_path_support import checked_transfer, loopback_pair


async def test_the_receiver_reads_its_bio_only_to_send_and_data_arrives_intact() -> None:
    async with loopback_pair() as pair:
        dtls: Any = pair.answerer.sctp.transport
        ssl = dtls._ssl
        calls = {"read": 0, "empty": 0}
        bio_read = ssl.bio_read

        def counting_bio_read(size: int) -> bytes:
            calls["read"] += 1
            try:
                return bio_read(size)
            except SSL.WantReadError:
                calls["empty"] += 1
                raise

        ssl.bio_read = counting_bio_read
        received_before = dtls._RTCDtlsTransport__rx_packets
        await checked_transfer(pair, 100)
        received = dtls._RTCDtlsTransport__rx_packets - received_before
        assert received > 5000
        assert calls["empty"] == 0  # never an exception for an empty BIO
        assert calls["read"] < received  # one per datagram sent (SACKs), not per datagram received
