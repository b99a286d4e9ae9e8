"""Licences that cost nobody anything: free offers and self-service sign-ups (Power Automate Free,
Power BI (free), Teams Exploratory, the ``_VIRAL`` trials). Microsoft shows thousands of
"purchased" seats of them that no one bought, so they are never unused money nor seats "bought
elsewhere". Pure code."""

from __future__ import annotations

from collections.abc import Iterable

from shared.domain.partner import PartnerSubscription

FREE_SKU_PART_NUMBERS = frozenset({
    "FLOW_FREE", "POWER_BI_STANDARD", "TEAMS_EXPLORATORY", "POWERAPPS_VIRAL", "WINDOWS_STORE",
    "STREAM", "CCIBOTS_PRIVPREV_VIRAL", "POWERAPPS_DEV", "RIGHTSMANAGEMENT_ADHOC", "MCOPSTNC",
    "FORMS_PRO", "PROJECT_MADEIRA_PREVIEW_IW_SKU", "MICROSOFT_BUSINESS_CENTER", "TEAMS_FREE",
    "DYN365_ENTERPRISE_VIRTUAL_AGENT_VIRAL", "POWER_PAGES_VTRIAL_FOR_MAKERS", "MEETING_ROOM_FREE",
    "PHONESYSTEM_VIRTUALUSER", "Microsoft_Teams_Rooms_Basic", "VIRTUAL_AGENT_USL",
})


def is_free_sku(part_number: str) -> bool:
    """A licence Microsoft gives away, known by its part number."""
    return (part_number in FREE_SKU_PART_NUMBERS or part_number.endswith("_VIRAL")
            or "_FREE" in part_number.upper())


def sold_free(subscriptions: Iterable[PartnerSubscription]) -> bool:
    """Whether the sources sell the licence only at no cost: every subscription a price of 0 and
    none a trial (a trial costs nothing for a while; the licence itself is not free)."""
    listed = list(subscriptions)
    return bool(listed) and all(s.unit_cost is not None and s.unit_cost == 0 and not s.trial for s in listed)
