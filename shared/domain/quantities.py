"""Billable quantities of a tenant's licences. Pure code, no I/O."""

from __future__ import annotations

from shared.domain.model import TenantSnapshot


def billable_quantity(snapshot: TenantSnapshot, sku_id: str) -> int | None:
    """Seats to bill for one licence: the seats assigned to users.

    Microsoft's ``consumedUnits`` is the count of assignments it bills usage against; it is
    used rather than a count of the users read, so a user list that changes while it is paged
    cannot move the bill. ``None`` when the tenant no longer has the licence at all.
    """
    sku = snapshot.sku(sku_id)
    if sku is None:
        return None
    return sku.consumed


def assignment_mismatches(snapshot: TenantSnapshot) -> list[tuple[str, int, int]]:
    """Licences whose ``consumedUnits`` differs from the users holding them, as
    ``(sku_id, consumed, users)``: a sign of directory changes during the read, reported."""
    held: dict[str, int] = {}
    for user in snapshot.users:
        for sku_id in user.sku_ids:
            held[sku_id] = held.get(sku_id, 0) + 1
    return [(s.sku_id, s.consumed, held.get(s.sku_id, 0))
            for s in snapshot.skus if s.applies_to == "User" and s.consumed != held.get(s.sku_id, 0)]
