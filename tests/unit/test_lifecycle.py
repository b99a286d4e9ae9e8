"""The tenant lifecycle rules: which partner account reads a tenant, when a tenant is guarded,
and which GDAP relationships end soon (shared.domain.lifecycle)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from shared.config.partners import DEFAULT_REQUIRED_ROLES, DIRECTORY_READERS, GLOBAL_READER
from shared.config.schema import SafetyPolicy
from shared.domain.decreases import Approval, Verdict, decide
from shared.domain.lifecycle import GdapRelationship, PartnerListing, TenantAccess, ending_soon, tenant_access

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
TENANT = "1f0a5b2c-0001-4a1b-8c2d-000000000001"
LICENSE_ADMIN = "4d6ac14f-3453-41d0-bef9-a3e0c569773a"
ACCOUNTS = ["default", "eu"]


def relationship(status: str = "active", *, days: int = 365, roles: tuple[str, ...] = (GLOBAL_READER,),
                 name: str = "SeatSync-Fabrikam", auto_extend: str = "PT0S") -> GdapRelationship:
    return GdapRelationship(id=f"rel-{name}-{status}-{days}", display_name=name, status=status,
                            customer_tenant_id=TENANT, end=NOW + timedelta(days=days),
                            role_ids=roles, auto_extend=auto_extend)


def listing(account: str, *relationships: GdapRelationship, listed: bool = True,
            error: str | None = None) -> PartnerListing:
    customers = {TENANT: "Fabrikam"} if listed and error is None else {}
    return PartnerListing(account, customers, tuple(relationships), error)


def access(listings: list[PartnerListing], *, pinned: str | None = None, consent: bool = False,
           roles: tuple[str, ...] = DEFAULT_REQUIRED_ROLES) -> TenantAccess:
    return tenant_access(TENANT, access="consent" if consent else "gdap", pinned=pinned, accounts=ACCOUNTS,
                         listings={x.account: x for x in listings}, required_roles=roles, now=NOW)


def test_a_customer_of_two_partner_accounts_is_read_through_the_first_in_configuration_order() -> None:
    both = [listing("default", relationship()), listing("eu", relationship())]
    found = access(both)
    assert (found.partner, found.standing, found.guard) == ("default", "ok", None)
    assert access(list(reversed(both))).partner == "default", "configuration order decides, not listing order"


def test_the_next_account_is_used_when_the_first_relationship_has_ended_or_lacks_the_roles() -> None:
    ended = [listing("default", relationship("expired", days=-3), listed=False), listing("eu", relationship())]
    assert (access(ended).partner, access(ended).standing) == ("eu", "ok")
    weak = [listing("default", relationship(roles=(LICENSE_ADMIN,))), listing("eu", relationship())]
    assert access(weak).partner == "eu"
    past_end = [listing("default", relationship("active", days=-1)), listing("eu", relationship())]
    assert access(past_end).partner == "eu", "an active status past its end date is not in force"


def test_a_pinned_partner_account_is_the_only_one_considered() -> None:
    both = [listing("default", relationship()), listing("eu", relationship())]
    assert access(both, pinned="eu").partner == "eu"
    only_default = [listing("default", relationship()), listing("eu", listed=False)]
    pinned = access(only_default, pinned="eu")
    assert (pinned.partner, pinned.standing) == ("eu", "vanished")
    assert "partner account 'eu'" in (pinned.guard or "")


def test_a_tenant_no_account_lists_has_vanished_and_is_guarded() -> None:
    gone = access([listing("default", listed=False), listing("eu", listed=False)])
    assert (gone.partner, gone.standing) == ("default", "vanished")
    assert gone.guard == ("it is no longer among the GDAP customers of partner accounts 'default', 'eu': the "
                          "customer may have left, or the relationship was removed")


def test_an_ended_relationship_guards_the_tenant_and_names_the_date() -> None:
    found = access([listing("default", relationship("expired", days=-10), listed=False),
                    listing("eu", listed=False)])
    assert (found.partner, found.standing) == ("default", "ended")
    assert found.guard == ("its GDAP relationship 'SeatSync-Fabrikam' with partner account 'default' ended on "
                           "2026-11-15 (status expired)")


def test_a_relationship_without_the_needed_roles_guards_the_tenant() -> None:
    found = access([listing("default", relationship(roles=(LICENSE_ADMIN,))), listing("eu", listed=False)])
    assert (found.partner, found.standing) == ("default", "roles-missing")
    assert found.guard == ("its GDAP relationship with partner account 'default' grants none of the roles SeatSync "
                           "needs (Directory Readers, Global Reader or Global Administrator); it grants License "
                           "Administrator")
    nobody_else = listing("eu", listed=False)
    assert access([listing("default", relationship(roles=(DIRECTORY_READERS,))), nobody_else]).standing == "ok"
    only_readers = access([listing("default", relationship(roles=(GLOBAL_READER,))), nobody_else],
                          roles=(DIRECTORY_READERS,))
    assert only_readers.standing == "roles-missing", "the configured roles decide"


def test_an_unreadable_listing_guards_nothing() -> None:
    found = access([listing("default", error="403 Authorization_RequestDenied"), listing("eu", listed=False)])
    assert (found.partner, found.standing, found.guard) == ("default", "unknown", None)
    usable_elsewhere = access([listing("default", error="timeout"), listing("eu", relationship())])
    assert (usable_elsewhere.partner, usable_elsewhere.standing) == ("eu", "ok")


def test_a_consent_tenant_is_never_checked_against_gdap() -> None:
    found = access([listing("default", listed=False), listing("eu", listed=False)], consent=True)
    assert (found.partner, found.standing, found.guard) == ("default", "consent", None)
    assert access([], consent=True, pinned="eu").partner == "eu"


def test_a_relationship_ending_soon_is_reported_unless_it_extends_itself_or_another_lasts() -> None:
    soon = access([listing("default", relationship(days=12))])
    ending = ending_soon(soon, TENANT, listing("default"), NOW, 30)
    assert ending is not None and (ending.partner, ending.days_left) == ("default", 12)
    assert ending_soon(soon, TENANT, listing("default"), NOW, 10) is None
    extends = access([listing("default", relationship(days=12, auto_extend="P180D"))])
    assert ending_soon(extends, TENANT, listing("default"), NOW, 30) is None
    longer = access([listing("default", relationship(days=12), relationship(days=400, name="SeatSync-2"))])
    assert ending_soon(longer, TENANT, listing("default"), NOW, 30) is None, "the later relationship lasts"


GUARD = "it is no longer among the GDAP customers of partner account 'default'"


@pytest.mark.parametrize("policy", ["apply", "defer", "hold"])
def test_a_guarded_tenant_holds_every_decrease_until_a_person_approves_it(policy: str) -> None:
    def verdict(approval: Approval | None = None, guard: str | None = GUARD) -> tuple[Verdict, str]:
        found = decide(old=10, new=9, key="k", custom=False, policy=policy,  # type: ignore[arg-type]
                       safety=SafetyPolicy(), terms=None, approval=approval, deferral=None,
                       today=date(2026, 11, 25), guard=guard)
        return found.verdict, found.reason

    held, reason = verdict()
    assert held == Verdict.HOLD
    assert reason == f"held for approval: {GUARD}; nothing is lowered until a person approves"
    assert verdict(Approval("k", "approved", 10, 9, "ana"))[0] == Verdict.APPLY
    assert verdict(Approval("k", "rejected", 10, 9, "ana"))[0] == Verdict.REJECTED
    unguarded = {"apply": Verdict.APPLY, "defer": Verdict.HOLD, "hold": Verdict.HOLD}[policy]
    assert verdict(guard=None)[0] == unguarded, "without the guard the mapping's policy decides"
