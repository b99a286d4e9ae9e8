"""Billing problems: what a run meets that it cannot decide by itself. Pure code, no I/O.

A problem is never guessed at and never only logged: the plan records it, the run report lists
it with what to do, the run's status says a person is needed (``attention``), and it becomes a
``billing-problem`` alert (docs/notifications.md). Each problem has a ``kind`` (what went wrong,
for digests, exclusions and counting), names where it is (tenant, licence, company, agreement,
line, the users involved) and says what a person should do (``action``).

``blocks`` tells whether the affected mapping was left alone (nothing written for it this run)
or still synced (the problem is about money billed beside it: users nobody bills, a price that
differs from the profile's, ...).

To add a kind: a member of ``ProblemKind`` (shared.config.problem_kinds: alert exclusions in the
configuration name kinds) and its default action in ``DEFAULT_ACTIONS``
(a test checks that every kind has one), then docs/billing-rules.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from shared.config.problem_kinds import ProblemKind

__all__ = ["DEFAULT_ACTIONS", "Problem", "ProblemKind", "count_by_kind", "problem_from_json", "problem_to_json"]


DEFAULT_ACTIONS: dict[ProblemKind, str] = {
    ProblemKind.AGREEMENT_MISSING: "Correct the mapping's agreementId, or create the agreement in the PSA.",
    ProblemKind.AGREEMENT_INACTIVE: "Map the licence to the customer's current agreement, or reactivate the "
                                    "agreement in the PSA if the customer is still billed.",
    ProblemKind.AGREEMENT_ENDED: "Map the licence to the agreement that replaced it, or extend the agreement's "
                                 "end date in the PSA.",
    ProblemKind.AGREEMENT_OF_ANOTHER_COMPANY: "Correct the mapping's agreementId or companyId: the agreement "
                                              "bills another customer.",
    ProblemKind.AGREEMENT_TYPE_NOT_ALLOWED: "Use an agreement of an allowed type, or add the type to the billing "
                                            "profile's agreementTypes.",
    ProblemKind.LINE_MISSING: "Correct the mapping's lineId, or remove it so SeatSync finds or creates the line.",
    ProblemKind.LINE_CANCELLED: "Point the mapping at the line that bills the licence now (lineId), or remove "
                                "lineId so SeatSync creates a new line from the profile.",
    ProblemKind.LINE_REMOVED: "If the customer should be billed again, approve the line's recreation (seatsync "
                              "approvals list shows its id) or set the mapping's lineId to the line that bills the "
                              "licence now; if not, reject the recreation or remove the licence from the mapping.",
    ProblemKind.LINE_SHARED: "Give each licence its own line: set each mapping's lineId to a different line of the "
                             "agreement (add the line in the PSA first where there is none).",
    ProblemKind.LINE_ON_ANOTHER_AGREEMENT: "Correct the mapping's agreementId or lineId so both name the same "
                                           "agreement.",
    ProblemKind.SEVERAL_CANDIDATE_LINES: "Set the mapping's lineId to the line that bills this licence.",
    ProblemKind.FRACTIONAL_QUANTITY: "Set the line to whole seats in the PSA.",
    ProblemKind.PRODUCT_DIFFERS: "Point the mapping at a line of the profile's product, or correct the profile's "
                                 "productId.",
    ProblemKind.NO_LINE_NO_PROFILE: "Give the mapping a billing profile (so SeatSync can create the line) or the "
                                    "lineId of an existing line.",
    ProblemKind.PRODUCT_WITHOUT_PRICE: "Give the product a price in the PSA, or give the profile a custom price.",
    ProblemKind.PSA_NOT_READ: "Check the PSA connection named by the mapping.",
    ProblemKind.COUNT_UNAVAILABLE: "Check the custom licence's definition and the app's permissions for what it "
                                   "counts.",
    ProblemKind.SUBSCRIPTION_NOT_FOUND: "Correct the mapping's subscriptionIds (seatsync report lists the "
                                        "tenant's subscriptions).",
    ProblemKind.USERS_OVERLAP: "Change the companies' user filters so each user matches one company only; "
                               "until then nothing is written for the filtered licences of those companies.",
    ProblemKind.USERS_UNMATCHED: "Give the tenant a catch-all company (catchAll: true), widen a company's user "
                                 "filter, or fill in the users' Office/Department/City/State/Country in Entra.",
    ProblemKind.SUBSCRIPTION_NOT_ACTIVE: "Renew or reactivate the subscription, or remove the seats from the "
                                         "users and the PSA line; SeatSync never raises a bill for these seats.",
    ProblemKind.DISABLED_USERS_LICENSED: "Remove the licence from disabled accounts that no longer need it, or "
                                         "confirm the customer keeps paying for them.",
    ProblemKind.PRICE_DIFFERS: "Keep the line's price (set the profile's price to match, or exclude this alert), "
                               "or let SeatSync set it: price.manageAdoptedLines: true on the profile.",
    ProblemKind.IMPOSSIBLE_VALUE: "Correct the value the message names in the PSA (a quantity or price no "
                                  "customer can have); nothing is written for this licence until then.",
    ProblemKind.PERIOD_INVOICE_MISSING: "Check in the PSA that the invoice of the current period exists (it may "
                                        "have been deleted) and that SeatSync's API access may read invoices; if "
                                        "the period was not invoiced, correct the recurring invoice's next "
                                        "creation date. Nothing is written for this licence until then.",
    ProblemKind.SEATS_BOUGHT_ELSEWHERE: "Say whose the seats bought elsewhere are: map the tenant's subscriptions "
                                        "(subscriptionIds) or set billSeatsBoughtElsewhere on the mapping that "
                                        "bills them.",
    ProblemKind.COST_UNKNOWN: "Check the subscription source's cost (seatsync reconcile), split the licence by "
                              "subscription when its subscriptions cost differently, or price the profile another "
                              "way.",
    ProblemKind.CONTACT_AMBIGUOUS: "Make the user's address belong to one contact of the company in the PSA (merge "
                                   "or correct the duplicates); until then SeatSync writes no contact for the user.",
    ProblemKind.CONTACTS_NOT_READ: "Check that the PSA connection's API user may read (and write) the company's "
                                   "contacts; nothing is written to its contacts until they can be read.",
    ProblemKind.UNCLASSIFIED: "Read the message and fix what it names.",
}


@dataclass(frozen=True)
class Problem:
    """Something the plan cannot fix by itself: reported with what to do, never guessed at.

    ``source`` is the mapping's licence as the configuration names it (``sku:<id>``,
    ``sku:<id>/sub:<ids>``, ``custom:<name>``); ``sku_id`` the Microsoft licence when there is
    one (alert exclusions match it); ``label`` its display name. ``users`` are user principal
    names; ``facts`` further (label, value) pairs for people (a state, since when, seats, cost).
    """

    kind: ProblemKind
    tenant_id: str
    message: str
    action: str = ""
    source: str | None = None
    sku_id: str | None = None
    label: str = ""
    psa: str | None = None
    company_id: str | None = None
    agreement_id: str | None = None
    line_id: str | None = None
    users: tuple[str, ...] = ()
    facts: tuple[tuple[str, str], ...] = ()
    blocks: bool = True

    def __post_init__(self) -> None:
        if not self.action:
            object.__setattr__(self, "action", DEFAULT_ACTIONS[self.kind])
        if self.sku_id is None and self.source and self.source.startswith("sku:"):
            object.__setattr__(self, "sku_id", self.source.removeprefix("sku:").split("/")[0].lower())

    @property
    def key(self) -> str:
        """What the problem is about, stable from run to run while it stands (digests use it)."""
        return "|".join([self.kind.value, self.tenant_id.lower(), self.source or "-", self.psa or "-",
                         self.company_id or "-", self.agreement_id or "-", self.line_id or "-"])

    @property
    def text(self) -> str:
        """One line: the licence, what is wrong."""
        return f"{self.label}: {self.message}" if self.label else self.message

    def with_facts(self, *facts: tuple[str, str]) -> Problem:
        return replace(self, facts=self.facts + tuple(facts))


def count_by_kind(problems: list[Problem] | tuple[Problem, ...]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for problem in problems:
        counts[problem.kind.value] = counts.get(problem.kind.value, 0) + 1
    return dict(sorted(counts.items()))


# --------------------------------------------------------------------------- stored form


def problem_to_json(problem: Problem) -> dict[str, Any]:
    """The stored (and reported) form: camelCase, JSON types only."""
    return {
        "kind": problem.kind.value, "tenantId": problem.tenant_id, "message": problem.message,
        "action": problem.action, "source": problem.source, "skuId": problem.sku_id, "licence": problem.label,
        "psa": problem.psa, "companyId": problem.company_id, "agreementId": problem.agreement_id,
        "lineId": problem.line_id, "users": list(problem.users),
        "facts": [{"label": label, "value": value} for label, value in problem.facts],
        "blocks": problem.blocks,
    }


def problem_from_json(data: Mapping[str, Any], tenant_id: str) -> Problem:
    """Read a stored problem. Rows recorded before problems had kinds (a message, a licence
    source in ``skuId``) are read as ``unclassified``."""
    try:
        kind = ProblemKind(str(data.get("kind")))
    except ValueError:
        kind = ProblemKind.UNCLASSIFIED
    source = data.get("source")
    sku = data.get("skuId")
    if "kind" not in data and isinstance(sku, str) and ":" in sku:  # the earlier form kept the source there
        source, sku = sku, None
    facts = tuple((str(f.get("label", "")), str(f.get("value", ""))) for f in data.get("facts") or ()
                  if isinstance(f, Mapping))
    return Problem(
        kind=kind, tenant_id=str(data.get("tenantId") or tenant_id), message=str(data.get("message") or ""),
        action=str(data.get("action") or ""), source=source if isinstance(source, str) else None,
        sku_id=sku if isinstance(sku, str) else None, label=str(data.get("licence") or ""),
        psa=_text(data.get("psa")), company_id=_text(data.get("companyId")),
        agreement_id=_text(data.get("agreementId")), line_id=_text(data.get("lineId")),
        users=tuple(str(u) for u in data.get("users") or ()), facts=facts, blocks=bool(data.get("blocks", True)),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
