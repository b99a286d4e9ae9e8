"""The Teams Workflows webhook receiver over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from emulators.base import RunningEmulator
from emulators.tls import ensure_tls_files
from emulators.webhook import TeamsWebhookEmulator


def card_message(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": None,
            "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard", "version": "1.5",
                        "body": [{"type": "TextBlock", "text": text, "wrap": True}]},
        }],
    }


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TeamsWebhookEmulator, str, str]]:
    tls = ensure_tls_files(tmp_path_factory.mktemp("tls"))
    emulator = TeamsWebhookEmulator({"workflows": ["alerts", {"id": "signed", "sig": "s3cr3t"}]})
    with RunningEmulator(emulator, tls) as running:
        yield emulator, running.url, str(tls.ca_certificate)


@pytest.fixture(autouse=True)
def clean(receiver: tuple[TeamsWebhookEmulator, str, str]) -> None:
    receiver[0].reset()


def test_an_adaptive_card_message_is_accepted_with_202_and_recorded(
        receiver: tuple[TeamsWebhookEmulator, str, str]) -> None:
    emulator, url, ca = receiver
    answer = requests.post(f"{url}/workflows/alerts", json=card_message("3 licences unbilled"),
                           verify=ca, timeout=10)
    assert answer.status_code == 202
    posts = emulator.posts_for("alerts")
    assert len(posts) == 1
    assert posts[0]["cards"][0]["body"][0]["text"] == "3 licences unbilled"
    state = requests.get(f"{url}/_admin/state", verify=ca, timeout=10).json()
    assert state["count"] == 1
    assert state["posts"][0]["workflowId"] == "alerts"


def test_the_full_workflows_trigger_path_with_its_signature_is_served(
        receiver: tuple[TeamsWebhookEmulator, str, str]) -> None:
    emulator, url, ca = receiver
    path = "/powerautomate/automations/direct/workflows/signed/triggers/manual/paths/invoke"
    good = requests.post(f"{url}{path}?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=s3cr3t",
                         json=card_message("hi"), verify=ca, timeout=10)
    assert good.status_code == 202
    bad = requests.post(f"{url}{path}?api-version=1&sig=wrong", json=card_message("hi"), verify=ca,
                        timeout=10)
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "DirectApiInvalidAuthorizationSignature"
    assert len(emulator.posts_for("signed")) == 1


def test_a_malformed_message_is_refused_with_a_reason_and_not_recorded(
        receiver: tuple[TeamsWebhookEmulator, str, str]) -> None:
    emulator, url, ca = receiver
    legacy = {"@type": "MessageCard", "text": "connector card"}
    answer = requests.post(f"{url}/workflows/alerts", json=legacy, verify=ca, timeout=10)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "TriggerInputSchemaMismatch"
    assert "'type' must be 'message'" in error["message"]
    not_json = requests.post(f"{url}/workflows/alerts", data=b"{oops", verify=ca, timeout=10,
                             headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400
    assert emulator.state()["count"] == 0


def test_unknown_workflows_and_oversized_messages_are_refused(
        receiver: tuple[TeamsWebhookEmulator, str, str]) -> None:
    emulator, url, ca = receiver
    assert requests.post(f"{url}/workflows/nobody", json=card_message("x"), verify=ca,
                         timeout=10).status_code == 404
    huge = requests.post(f"{url}/workflows/alerts", json=card_message("x" * 40_000), verify=ca,
                         timeout=10)
    assert huge.status_code == 413
    assert emulator.state()["count"] == 0


def test_faults_apply_to_the_receiver(receiver: tuple[TeamsWebhookEmulator, str, str]) -> None:
    emulator, url, ca = receiver
    emulator.faults.add({"kind": "throttle", "path": "/workflows/alerts", "times": 1, "retryAfter": 2})
    first = requests.post(f"{url}/workflows/alerts", json=card_message("x"), verify=ca, timeout=10)
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "2"
    second = requests.post(f"{url}/workflows/alerts", json=card_message("x"), verify=ca, timeout=10)
    assert second.status_code == 202
    assert emulator.state()["count"] == 1
