"""The channels of the configuration as ``Notifier``s: Teams webhooks and email.

A channel resolves its secret and its client only when it has something to send, so a missing
webhook secret or an unconfigured Graph app fails that channel's delivery (recorded with the
reason) and nothing else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from shared.adapters.teams import TeamsWebhookClient, TeamsWebhookError
from shared.config.notifications import AlertKind, EmailChannel, NotificationSettings, TeamsChannel
from shared.errors import GraphError, SeatSyncError
from shared.notifications.alerts import Alert
from shared.notifications.ports import Delivered, DeliveryError, MailSender, Notifier
from shared.notifications.render import AlertMessage, MessageContext, message_bytes, render_card, render_email
from shared.ports import SecretReader

log = logging.getLogger(__name__)

EMAIL_ATTEMPTS = 3
EMAIL_BACKOFF_SECONDS = 5.0


class TeamsNotifier:
    channel_type = "teams"

    def __init__(self, channel: TeamsChannel, secrets: SecretReader, client: TeamsWebhookClient, *,
                 max_items: int = 5) -> None:
        self.channel = channel
        self._secrets = secrets
        self._client = client
        self._max_items = max_items

    @property
    def channel_id(self) -> str:
        return f"teams:{self.channel.name}"

    def accepts(self, kind: AlertKind) -> bool:
        return not self.channel.kinds or kind in self.channel.kinds

    def send(self, alerts: Sequence[Alert] | AlertMessage, context: MessageContext) -> Delivered:
        message = render_card(alerts, context, max_items=self._max_items)
        try:
            url = self._secrets.get(self.channel.webhook.reference)
        except SeatSyncError as exc:
            raise DeliveryError(self.channel_id, f"the webhook URL cannot be read: {exc}", attempts=0) from None
        try:
            attempts = self._client.post(self.channel.name, url, message)
        except TeamsWebhookError as exc:
            raise DeliveryError(self.channel_id, str(exc), attempts=exc.attempts) from None
        return Delivered(attempts=attempts, size=message_bytes(message))


class EmailNotifier:
    channel_type = "email"

    def __init__(self, channel: EmailChannel, mail: Callable[[], object], *, max_items: int = 100,
                 attempts: int = EMAIL_ATTEMPTS, backoff_seconds: float = EMAIL_BACKOFF_SECONDS,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.channel = channel
        self._mail = mail
        self._max_items = max_items
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._sleep = sleep

    @property
    def channel_id(self) -> str:
        return "email"

    def accepts(self, kind: AlertKind) -> bool:
        return not self.channel.kinds or kind in self.channel.kinds

    def send(self, alerts: Sequence[Alert] | AlertMessage, context: MessageContext) -> Delivered:
        email = render_email(alerts, context, max_items=self._max_items,
                             subject_prefix=self.channel.subject_prefix)
        try:
            sender = self._mail()
        except SeatSyncError as exc:
            raise DeliveryError(self.channel_id, f"Microsoft Graph is not available: {exc}", attempts=0) from None
        if not isinstance(sender, MailSender):
            raise DeliveryError(self.channel_id, "the Graph client cannot send mail", attempts=0)
        attempt = 0
        while True:
            attempt += 1
            try:
                sender.send_mail(self.channel.sender, email.subject, email.html, email.text,
                                 list(self.channel.recipients))
            except GraphError as exc:
                transient = exc.status is None or exc.status == 429 or exc.status >= 500
                if not transient or attempt >= self._attempts:
                    raise DeliveryError(self.channel_id, str(exc), attempts=attempt) from None
                log.warning("email: sendMail failed (%s); retry %d", exc, attempt)
                self._sleep(self._backoff * attempt)
            except (SeatSyncError, ValueError) as exc:
                raise DeliveryError(self.channel_id, str(exc), attempts=attempt) from None
            else:
                size = len(email.html.encode("utf-8")) + len(email.text.encode("utf-8"))
                return Delivered(attempts=attempt, size=size)


def build_notifiers(settings: NotificationSettings, *, secrets: SecretReader, mail: Callable[[], object],
                    teams_client: TeamsWebhookClient,
                    sleep: Callable[[float], None] = time.sleep) -> list[Notifier]:
    """The enabled channels of ``settings``, Teams first."""
    notifiers: list[Notifier] = [
        TeamsNotifier(channel, secrets, teams_client, max_items=settings.card_items)
        for channel in settings.teams if channel.enabled
    ]
    if settings.email is not None and settings.email.enabled:
        notifiers.append(EmailNotifier(settings.email, mail, max_items=settings.email_items, sleep=sleep))
    return notifiers
