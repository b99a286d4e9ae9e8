"""Licensed users who do not use their licence: no sign-in for a number of days. Pure code.

A user is inactive when their account is enabled, they hold at least one paid licence, and the
last time Entra ID recorded them using the account (``SignIn.last``: the last successful sign-in
where Entra records it, else the latest interactive or non-interactive attempt) is ``days`` or
more before the tenant was read. A user Entra has no sign-in for counts from the day the account
was created, so a new account is not inactive; with neither date known the user is inactive.
Disabled accounts are left out: they are a billing problem of their own
(``disabled-users-licensed``). Free and self-service licences, and licences excluded from
billing, are not paid licences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.domain.model import DirectoryUser, TenantSnapshot


@dataclass(frozen=True)
class InactiveUser:
    user: DirectoryUser
    last: datetime | None
    """The last sign-in Entra recorded (None: none recorded)."""
    since: datetime | None
    """What inactivity is counted from: ``last``, else the account's creation (None: unknown)."""
    sku_ids: tuple[str, ...]
    """The paid licences the user holds."""

    def idle_days(self, now: datetime) -> int | None:
        return None if self.since is None else (now - self.since).days


def inactive_users(snapshot: TenantSnapshot, days: int, paid: Callable[[str], bool]) -> list[InactiveUser]:
    """The tenant's enabled users holding a paid licence (``paid(sku_id)``) with no sign-in for
    ``days`` days before ``snapshot.collected_at``; empty when sign-ins were not read."""
    sign_ins = snapshot.sign_ins
    if sign_ins is None or sign_ins.unavailable is not None:
        return []
    by_user = {s.user_id: s for s in sign_ins.users}
    cutoff = snapshot.collected_at - timedelta(days=days)
    found = []
    for user in snapshot.users:
        skus = tuple(s for s in user.sku_ids if paid(s))
        if not skus or not user.account_enabled:
            continue
        record = by_user.get(user.id)
        last = record.last if record else None
        since = last or (record.created if record else None)
        if since is not None and since > cutoff:
            continue
        found.append(InactiveUser(user, last, since, skus))
    return sorted(found, key=lambda u: u.user.user_principal_name.casefold())
