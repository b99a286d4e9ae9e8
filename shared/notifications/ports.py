"""The notification port: a channel that delivers a message made of alerts.

The service sends through ``Notifier``s and never knows whether one is a Teams webhook or a
mailbox; ``shared.notifications.channels`` implements both over the real adapters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from shared.config.notifications import AlertKind
from shared.errors import SeatSyncError
from shared.notifications.alerts import Alert
from shared.notifications.render import AlertMessage, MessageContext


class DeliveryError(SeatSyncError):
    """A channel could not deliver a message after its retries; ``reason`` says why."""

    def __init__(self, channel: str, reason: str, attempts: int = 1) -> None:
        self.channel = channel
        self.reason = reason
        self.attempts = attempts
        super().__init__(f"{channel}: {reason}")


@dataclass(frozen=True)
class Delivered:
    attempts: int
    size: int
    """Bytes of the message as sent (the card envelope, or both email parts)."""


class Notifier(Protocol):
    @property
    def channel_id(self) -> str:
        """A stable name, e.g. ``teams:billing`` or ``email``: digests are kept per channel."""
        ...

    @property
    def channel_type(self) -> str: ...

    def accepts(self, kind: AlertKind) -> bool: ...

    def send(self, alerts: Sequence[Alert] | AlertMessage, context: MessageContext) -> Delivered:
        """Deliver one message; raise ``DeliveryError`` when it cannot be delivered."""
        ...


@runtime_checkable
class MailSender(Protocol):
    """What email needs of Microsoft Graph (``GraphClient.send_mail``)."""

    def send_mail(self, sender: str, subject: str, html: str, text: str, to: list[str], *,
                  tenant_id: str | None = None) -> None: ...
