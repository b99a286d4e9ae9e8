"""Posts messages to Microsoft Teams channels through Workflows webhooks.

A Workflows webhook ("Post to a channel when a webhook request is received") is a URL whose
query string carries the flow's signature (``sig=``): whoever has the URL can post. The URL is
therefore a secret: it is never logged or put into an error message. ``RetryingHttp`` logs the
URL it retries, so the query string is passed as parameters and only the path is logged.

A post answered 429 or 5xx is retried (honouring ``Retry-After``). Webhook posts are sent as
retryable although they are POSTs: a card posted twice is better than an alert lost.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import requests

from shared.adapters.http import RetryingHttp, RetryPolicy
from shared.errors import SeatSyncError

WEBHOOK_POLICY = RetryPolicy(max_attempts=4, backoff_base_seconds=2.0, backoff_max_seconds=30.0,
                             max_retry_after_seconds=120.0, connect_timeout_seconds=10.0,
                             read_timeout_seconds=30.0)
_SIGNATURE = re.compile(r"(sig|code|token)=[^&\s'\"]+", re.IGNORECASE)


class TeamsWebhookError(SeatSyncError):
    """A webhook refused a post or did not answer; names the channel, never the URL."""

    def __init__(self, channel: str, message: str, status: int | None = None, attempts: int = 1) -> None:
        self.channel = channel
        self.status = status
        self.attempts = attempts
        super().__init__(f"Teams webhook '{channel}': {message}")


def redact(text: str) -> str:
    """``text`` with webhook signatures replaced by ``***``."""
    return _SIGNATURE.sub(lambda m: f"{m.group(1)}=***", text)


def _snippet(response: requests.Response, width: int = 300) -> str:
    try:
        body = response.text
    except Exception:  # an unreadable body says nothing more than the status
        return ""
    body = " ".join(redact(body).split())
    return body if len(body) <= width else body[: width - 1] + "…"


class TeamsWebhookClient:
    """Posts Workflows messages; thread-safe (one ``RetryingHttp``)."""

    def __init__(self, http: RetryingHttp | None = None, *, verify: bool | str = True) -> None:
        self.http = http or RetryingHttp("Teams webhook", policy=WEBHOOK_POLICY, verify=verify)

    @property
    def calls(self) -> int:
        return self.http.calls

    def post(self, channel: str, url: str, message: dict[str, Any]) -> int:
        """POST ``message`` as JSON to the webhook ``url``; returns the attempts it took.

        Raises ``TeamsWebhookError`` for a URL that is not https, a non-2xx answer after
        retries (with the status and the start of the body) or no answer at all."""
        parts = urlsplit(url.strip())
        if parts.scheme != "https" or not parts.netloc:
            raise TeamsWebhookError(channel, "the webhook URL must be an https:// URL (the HTTP POST URL "
                                             "of the Workflows trigger)")
        base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        body = json.dumps(message, ensure_ascii=False).encode("utf-8")
        before = self.http.calls
        try:
            response = self.http.request(
                "POST", base, params=params or None, data=body, idempotent=True,
                headers={"Content-Type": "application/json; charset=utf-8"})
        except requests.RequestException as exc:
            raise TeamsWebhookError(channel, f"no answer after retries: {type(exc).__name__}: {redact(str(exc))}",
                                    attempts=self.http.calls - before) from None
        attempts = self.http.calls - before
        with response:
            if 200 <= response.status_code < 300:
                return attempts
            snippet = _snippet(response)
            raise TeamsWebhookError(
                channel, f"HTTP {response.status_code}" + (f": {snippet}" if snippet else ""),
                status=response.status_code, attempts=attempts)
