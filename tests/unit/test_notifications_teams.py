"""The Teams webhook adapter keeps the webhook's signature out of errors and logs."""

from __future__ import annotations

import logging
import socket

import pytest

from shared.adapters.http import RetryingHttp, RetryPolicy
from shared.adapters.teams import TeamsWebhookClient, TeamsWebhookError, redact

MESSAGE = {"type": "message", "attachments": []}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_redact_hides_signatures() -> None:
    text = ("HTTPSConnectionPool(host='x', port=443): Max retries exceeded with url: /workflows/abc/triggers/manual/"
            "paths/invoke?api-version=1&sp=%2Ftriggers&sv=1.0&sig=AbC-123_xyz (Caused by ...)")
    assert redact(text).endswith("sv=1.0&sig=*** (Caused by ...)")
    assert redact("code=secret&x=1") == "code=***&x=1"


def test_a_webhook_that_never_answers_is_an_error_without_its_signature(caplog: pytest.LogCaptureFixture) -> None:
    waits: list[float] = []
    http = RetryingHttp("Teams webhook", policy=RetryPolicy(max_attempts=3, connect_timeout_seconds=2),
                        sleep=waits.append)
    client = TeamsWebhookClient(http)
    url = f"https://127.0.0.1:{closed_port()}/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=T0pS3cret"
    with caplog.at_level(logging.DEBUG), pytest.raises(TeamsWebhookError) as caught:
        client.post("billing", url, MESSAGE)
    error = caught.value
    assert str(error).startswith("Teams webhook 'billing': no answer after retries: ConnectionError")
    assert error.attempts == 3 and len(waits) == 2
    assert "T0pS3cret" not in str(error)
    assert "T0pS3cret" not in caplog.text, "the retry log names the path only"


def test_only_https_webhooks_are_posted_to() -> None:
    http = RetryingHttp("Teams webhook", sleep=lambda _: None)
    with pytest.raises(TeamsWebhookError, match="must be an https:// URL"):
        TeamsWebhookClient(http).post("billing", "http://example.com/workflows/x?sig=abc", MESSAGE)
    assert http.calls == 0
