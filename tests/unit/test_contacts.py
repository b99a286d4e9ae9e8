"""Contact sync's pure core: which PSA contacts a tenant's licensed users become, how users are
matched to contacts, that a blank Microsoft field never overwrites what the PSA holds, which
contacts SeatSync deactivates (only those it manages), and how a contact write is read back."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.contacts import (
    CONTACT_FIELDS,
    ContactLink,
    ContactPlan,
    differences,
    new_contact_details,
    plan_contacts,
    user_details,
)
from shared.domain.model import ChangeKind, ContactDetails, DirectoryUser, PlannedChange, PsaContact
from shared.domain.problems import ProblemKind
from shared.domain.writes import check_contact
from tests.unit.builders import E3, SPB, TENANT, TODAY, config, licence, snapshot, user

COMPANY = ("cw", "19")


def sync_config(**extra: Any) -> Any:
    return config(companies=[{"psa": "cw", "companyId": "19", "syncContacts": True, "licences": [licence()]}],
                  **extra)


def contact(ident: str, *emails: str, company: str = "19", **fields: Any) -> PsaContact:
    return PsaContact(psa="cw", contact_id=ident, company_id=company, first_name=fields.pop("first_name", "Ann"),
                      last_name=fields.pop("last_name", "Lee"), emails=emails, **fields)


def ann(*skus: str, **fields: Any) -> DirectoryUser:
    base: dict[str, Any] = {"mail": "ann@fabrikam.example", "given_name": "Ann", "surname": "Lee",
                            "job_title": "Buyer", "business_phones": ("+44 20 7946 0001",)}
    base.update(fields)
    return user("ann", *skus, **base)


def plan(users: list[DirectoryUser], contacts: list[PsaContact], links: list[ContactLink] | None = None,
         cfg: Any = None, fields: frozenset[str] = CONTACT_FIELDS, company: tuple[str, str] = COMPANY,
         **kwargs: Any) -> ContactPlan:
    chosen = cfg if cfg is not None else sync_config()
    tenant = chosen.tenants[0]
    return plan_contacts(chosen, tenant, snapshot([(SPB, 10, 1)], users), {company: contacts}, links or [],
                         {"cw": fields}, TODAY, **kwargs)


def kinds(result: ContactPlan) -> list[tuple[ChangeKind, str | None]]:
    return [(c.kind, c.line_id) for c in result.changes]


# --------------------------------------------------------------------------- creating and matching


def test_a_licensed_user_without_a_contact_gets_one_with_its_fields() -> None:
    result = plan([ann(SPB)], [])
    (created,) = result.changes
    assert created.kind == ChangeKind.CREATE_CONTACT
    assert (created.psa, created.company_id, created.agreement_id, created.line_id) == ("cw", "19", "", None)
    assert created.sku_id == "contact:id-ann"
    assert created.contact == ContactDetails(first_name="Ann", last_name="Lee", email="ann@fabrikam.example",
                                             title="Buyer", phone="+44 20 7946 0001")
    assert "ann@fabrikam.example is licensed and has no contact" in created.reason


def test_a_new_contact_takes_the_display_name_and_the_principal_name_when_microsoft_has_no_better() -> None:
    bare = DirectoryUser(id="u1", user_principal_name="mary.ann.lee@fabrikam.example", display_name="Mary Ann Lee")
    assert new_contact_details(bare) == ContactDetails(first_name="Mary Ann", last_name="Lee",
                                                       email="mary.ann.lee@fabrikam.example")
    single = DirectoryUser(id="u2", user_principal_name="reception@fabrikam.example", display_name="Reception")
    assert new_contact_details(single) == ContactDetails(first_name="Reception",
                                                         email="reception@fabrikam.example")


def test_a_new_contact_carries_only_the_fields_the_psa_takes() -> None:
    result = plan([ann(SPB, mobile_phone="+44 7700 900001")], [], fields=frozenset({"first_name", "email"}))
    assert result.changes[0].contact == ContactDetails(first_name="Ann", email="ann@fabrikam.example")


@pytest.mark.parametrize(("who", "addresses"), [
    ("mail", ("ANN@Fabrikam.example",)),
    ("user principal name", ("ann@fabrikam.example",)),
    ("alias", ("ann.lee@fabrikam.example",)),
])
def test_users_are_matched_by_mail_then_principal_name_then_alias_ignoring_case(who: str,
                                                                               addresses: tuple[str, ...]) -> None:
    if who == "mail":
        person = ann(SPB)
    elif who == "user principal name":
        person = ann(SPB, mail="a.lee@elsewhere.example")
    else:
        person = ann(SPB, mail=None, proxy_addresses=("ann.lee@fabrikam.example",))
        person = DirectoryUser(**{**vars(person), "user_principal_name": "a1@fabrikam.example"})
    matched = contact("7", *addresses, title="Buyer", phone="+44 20 7946 0001")
    result = plan([person], [matched])
    assert all(c.kind != ChangeKind.CREATE_CONTACT for c in result.changes)
    assert [(link.user_id, link.contact_id) for link in result.links] == [(person.id, "7")]


def test_a_contact_whose_address_is_one_users_mail_is_not_taken_by_anothers_alias() -> None:
    owner = ann(SPB, mail="sales@fabrikam.example")
    other = user("bob", SPB, mail="bob@fabrikam.example", proxy_addresses=("sales@fabrikam.example",))
    result = plan([other, owner], [contact("7", "sales@fabrikam.example", title="Buyer", phone="+442079460001")])
    assert {(link.user_id, link.contact_id) for link in result.links} == {("id-ann", "7")}
    assert [c.sku_id for c in result.changes if c.kind == ChangeKind.CREATE_CONTACT] == ["contact:id-bob"]


def test_a_linked_contact_stays_its_users_whatever_its_address() -> None:
    link = ContactLink("cw", "19", "id-ann", "7", "ann@fabrikam.example", "Ann")
    result = plan([ann(SPB, mail="ann.lee@fabrikam.example")], [contact("7", "ann@fabrikam.example",
                                                                        title="Buyer", phone="+442079460001")],
                  [link])
    (update,) = result.changes
    assert (update.kind, update.line_id) == (ChangeKind.UPDATE_CONTACT, "7")
    assert update.contact == ContactDetails(email="ann.lee@fabrikam.example")
    assert result.links == ()  # already linked


# --------------------------------------------------------------------------- blank never overwrites


def test_only_differing_fields_are_written_and_a_blank_microsoft_field_never_overwrites() -> None:
    held = contact("7", "ann@fabrikam.example", first_name="Ann", last_name="Lee-Smith", title="Buyer",
                   phone="020 7946 0001", mobile="+44 7700 900999")
    person = ann(SPB, surname=None, job_title="Head buyer", business_phones=(), mobile_phone=None)
    (update,) = plan([person], [held]).changes
    assert update.kind == ChangeKind.UPDATE_CONTACT
    assert update.contact == ContactDetails(title="Head buyer")  # no blank surname, phone or mobile written
    assert "title 'Buyer' -> 'Head buyer'" in update.reason


def test_phones_compare_by_digits_and_addresses_ignoring_case() -> None:
    held = contact("7", "ANN@FABRIKAM.EXAMPLE", title="Buyer", phone="+44 (20) 7946-0001")
    assert differences(user_details(ann(SPB)), held, CONTACT_FIELDS) == ContactDetails()
    result = plan([ann(SPB)], [held])
    assert result.changes == () and result.unchanged == 1


def test_a_second_plan_after_the_writes_plans_nothing() -> None:
    person = ann(SPB, mobile_phone="+44 7700 900001")
    written = contact("7", "ann@fabrikam.example", title="Buyer", phone="+44 20 7946 0001", mobile="+447700900001")
    link = ContactLink("cw", "19", "id-ann", "7")
    assert plan([person], [written], [link]).changes == ()


# --------------------------------------------------------------------------- deactivating and reactivating


def test_a_user_that_loses_its_licence_has_its_managed_contact_deactivated_not_a_hand_made_one() -> None:
    held = contact("7", "ann@fabrikam.example", title="Buyer")
    managed = plan([ann()], [held], [ContactLink("cw", "19", "id-ann", "7")])
    assert kinds(managed) == [(ChangeKind.DEACTIVATE_CONTACT, "7")]
    assert managed.changes[0].contact is None
    assert "holds no licence any more" in managed.changes[0].reason
    by_hand = plan([ann()], [held])
    assert by_hand.changes == () and by_hand.links == ()


def test_a_guarded_tenant_has_no_contact_deactivated_but_new_users_still_get_one() -> None:
    gone = ContactLink("cw", "19", "id-gone", "8", "gone@fabrikam.example", "Gone")
    result = plan([ann(SPB)], [contact("8", "gone@fabrikam.example", first_name="Gone")], [gone],
                  guard="the tenant is no longer among the partner's GDAP customers")
    assert kinds(result) == [(ChangeKind.CREATE_CONTACT, None)]


def test_licences_excluded_from_billing_do_not_make_a_user_licensed() -> None:
    cfg = sync_config(excludedLicences_tenant=[E3])
    result = plan([ann(E3)], [contact("7", "ann@fabrikam.example")], [ContactLink("cw", "19", "id-ann", "7")],
                  cfg=cfg)
    assert kinds(result) == [(ChangeKind.DEACTIVATE_CONTACT, "7")]


def test_a_user_removed_from_the_tenant_has_its_contact_deactivated_once() -> None:
    link = ContactLink("cw", "19", "id-gone", "8", "gone@fabrikam.example", "Gone")
    result = plan([ann(SPB)], [contact("7", "ann@fabrikam.example", title="Buyer", phone="+442079460001"),
                               contact("8", "gone@fabrikam.example", first_name="Gone")], [link])
    assert kinds(result) == [(ChangeKind.DEACTIVATE_CONTACT, "8")]
    assert "gone@fabrikam.example is no longer in the tenant" in result.changes[0].reason
    already = plan([ann(SPB)], [contact("7", "ann@fabrikam.example", title="Buyer", phone="+442079460001"),
                                contact("8", "gone@fabrikam.example", inactive=True)], [link])
    assert already.changes == ()


def test_a_user_licensed_again_has_its_contact_reactivated_with_its_fields() -> None:
    held = contact("7", "ann@fabrikam.example", title="Temp", phone="+442079460001", inactive=True)
    (back,) = plan([ann(SPB)], [held], [ContactLink("cw", "19", "id-ann", "7")]).changes
    assert (back.kind, back.line_id) == (ChangeKind.REACTIVATE_CONTACT, "7")
    assert back.contact == ContactDetails(title="Buyer")
    assert "licensed again" in back.reason


def test_a_contact_whose_user_was_created_anew_follows_the_new_user() -> None:
    old_link = ContactLink("cw", "19", "id-old", "7", "ann@fabrikam.example")
    held = contact("7", "ann@fabrikam.example", title="Buyer", phone="+442079460001")
    result = plan([ann(SPB)], [held], [old_link])
    assert result.changes == ()
    assert [(link.user_id, link.contact_id) for link in result.links] == [("id-ann", "7")]
    assert result.forget == (old_link,)


def test_a_link_to_a_contact_gone_from_the_psa_is_forgotten_and_a_new_contact_made() -> None:
    link = ContactLink("cw", "19", "id-ann", "7")
    result = plan([ann(SPB)], [], [link])
    assert result.forget == (link,)
    assert kinds(result) == [(ChangeKind.CREATE_CONTACT, None)]


# --------------------------------------------------------------------------- ambiguity, filters, reads


def test_two_contacts_with_the_users_address_are_a_problem_unless_one_is_inactive() -> None:
    twins = [contact("7", "ann@fabrikam.example"), contact("8", "ann@fabrikam.example")]
    result = plan([ann(SPB)], twins)
    assert result.changes == ()
    (problem,) = result.problems
    assert problem.kind == ProblemKind.CONTACT_AMBIGUOUS
    assert problem.users == ("ann@fabrikam.example",)
    assert "contacts 7, 8" in problem.message
    one_active = [contact("7", "ann@fabrikam.example", inactive=True),
                  contact("8", "ann@fabrikam.example", title="Buyer", phone="+442079460001")]
    assert [(link.contact_id) for link in plan([ann(SPB)], one_active).links] == ["8"]


def test_a_contact_two_users_claim_is_a_problem_for_both() -> None:
    shared_box = contact("7", "office@fabrikam.example")
    users = [user("ann", SPB, mail="office@fabrikam.example"), user("bob", SPB, mail="office@fabrikam.example")]
    result = plan(users, [shared_box])
    assert result.changes == ()
    assert sorted(p.users[0] for p in result.problems) == ["ann@fabrikam.example", "bob@fabrikam.example"]


def test_split_tenants_keep_each_companys_users_and_the_catch_all_the_rest() -> None:
    cfg = config(companies=[
        {"psa": "cw", "companyId": "19", "syncContacts": True, "userFilter": {"department": ["Sales"]},
         "licences": [licence()]},
        {"psa": "cw", "companyId": "20", "syncContacts": True, "catchAll": True,
         "licences": [licence(lineId="501")]},
        {"psa": "cw", "companyId": "21", "userFilter": {"department": ["Legal"]}, "licences": [licence(lineId="502")]},
    ])
    users = [user("ann", SPB, department="Sales"), user("bob", SPB, department="Ops"),
             user("cy", SPB, department="Legal")]
    result = plan_contacts(cfg, cfg.tenants[0], snapshot([(SPB, 10, 3)], users),
                           {("cw", "19"): [], ("cw", "20"): [], ("cw", "21"): []}, [], {}, TODAY)
    assert sorted((c.company_id, c.sku_id) for c in result.changes) == [
        ("19", "contact:id-ann"), ("20", "contact:id-bob")]  # company 21 does not sync contacts


def test_contacts_that_could_not_be_read_are_a_problem_and_nothing_is_written() -> None:
    cfg = sync_config()
    result = plan_contacts(cfg, cfg.tenants[0], snapshot([(SPB, 10, 1)], [ann(SPB)]), {}, [], {}, TODAY,
                           unread={COMPANY: "HTTP 403"})
    assert result.changes == ()
    assert [(p.kind, p.company_id) for p in result.problems] == [(ProblemKind.CONTACTS_NOT_READ, "19")]
    assert "HTTP 403" in result.problems[0].message


def test_change_ids_are_the_same_for_the_same_write_on_the_same_day_only() -> None:
    first, again = plan([ann(SPB)], []), plan([ann(SPB)], [])
    assert first.changes[0].change_id == again.changes[0].change_id
    other = plan([ann(SPB, job_title="Chief buyer")], [])
    assert other.changes[0].change_id != first.changes[0].change_id


# --------------------------------------------------------------------------- read-back


def planned(kind: ChangeKind, contact_id: str | None, details: ContactDetails | None) -> PlannedChange:
    return PlannedChange(
        change_id="c1", kind=kind, tenant_id=TENANT, company_id="19", psa="cw", agreement_id="", line_id=contact_id,
        sku_id="contact:id-ann", old_quantity=None, new_quantity=0, reason="why", contact=details)


@pytest.mark.parametrize(("change", "contacts", "answered", "held", "detail"), [
    (planned(ChangeKind.CREATE_CONTACT, None, ContactDetails(first_name="Ann", email="ann@fabrikam.example")),
     [contact("9", "Ann@Fabrikam.example")], None, True, "contact 9 is active with the fields written"),
    (planned(ChangeKind.CREATE_CONTACT, None, ContactDetails(first_name="Ann", email="ann@fabrikam.example")),
     [contact("9", "ann@fabrikam.example", company="20")], None, False,
     "an active contact with the address ann@fabrikam.example is not among the contacts of company 19"),
    (planned(ChangeKind.CREATE_CONTACT, None, ContactDetails(first_name="Ann", title="Buyer")),
     [contact("9", "x@y.example", title="Clerk")], "9", False, "contact 9 differs: title 'Clerk' -> 'Buyer'"),
    (planned(ChangeKind.UPDATE_CONTACT, "7", ContactDetails(phone="+44 20 7946 0001")),
     [contact("7", phone="+44 20-7946-0001")], None, True, "contact 7 is active"),
    (planned(ChangeKind.DEACTIVATE_CONTACT, "7", None), [contact("7", inactive=True)], None, True,
     "contact 7 is inactive"),
    (planned(ChangeKind.DEACTIVATE_CONTACT, "7", None), [contact("7")], None, False, "contact 7 is still active"),
    (planned(ChangeKind.REACTIVATE_CONTACT, "7", ContactDetails()), [contact("7", inactive=True)], None, False,
     "contact 7 is inactive"),
    (planned(ChangeKind.REACTIVATE_CONTACT, "7", ContactDetails()), [], None, False,
     "contact 7 is not among the contacts of company 19"),
], ids=["create-by-address", "create-in-another-company", "create-differs", "update-held", "deactivated",
        "still-active", "still-inactive", "contact-gone"])
def test_a_contact_write_is_held_only_when_the_psa_shows_it(change: PlannedChange, contacts: list[PsaContact],
                                                            answered: str | None, held: bool, detail: str) -> None:
    check = check_contact(change, contacts, answered)
    assert check.held is held
    assert detail in check.detail
