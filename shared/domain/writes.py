"""Does the PSA hold a write? Pure code, used twice: to read back every write before it is
recorded as applied, and to settle a write intent that an earlier attempt left open (its answer
was lost, storage refused the bookkeeping, or the process died).

What the PSA must show, by kind of change:

- a new line (``create-line``, ``prorate``, ``credit``, ``period-record``): a line on the
  agreement carrying the change's tag (or, when the PSA answered, the line id it gave) with the
  change's quantity;
- ``set-quantity``: the line bills the new quantity (Autotask and HaloPSA report the units a
  scheduled change brings, so a change dated later is seen too); a change the current period is
  charged for to its end (``end_date``: Autotask's units from today, a Halo pro-rata entry) is
  held when the line charges the new quantity this period, whatever a change dated the next
  period (written after it, or not yet) makes it bill from then;
- ``set-details``: the line has the new invoice description and unit price (those the change
  sets);
- a contact change (``check_contact``): a new contact is an active contact of the company with
  the id the PSA answered, or else with the change's address, holding the fields written; an
  updated or reactivated contact holds the fields written (and is active); a deactivated one is
  inactive.

A line or contact that exists but differs is a mismatch, named field by field, never "held".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from shared.domain.contacts import describe, differences
from shared.domain.model import BilledLine, ChangeKind, ContactDetails, PlannedChange, PsaContact

CREATING = frozenset({ChangeKind.CREATE_LINE, ChangeKind.PRORATE, ChangeKind.CREDIT, ChangeKind.PERIOD_RECORD})
"""Changes that create a line (a prorate or credit line, a period's record, a licence's line)."""


@dataclass(frozen=True)
class WriteCheck:
    """``held``: the PSA holds the write. ``line``: the line it was looked for on (None when no
    line was found). ``detail``: what was found, in words, for the report and the audit."""

    held: bool
    line: BilledLine | None
    detail: str
    contact: PsaContact | None = None

    @property
    def found_id(self) -> str | None:
        """The id of the line or contact the write was looked for on (None when none was found)."""
        if self.line is not None:
            return self.line.line_id
        return self.contact.contact_id if self.contact is not None else None


def _quantity(line: BilledLine) -> str:
    return _shown(line.quantity)


def _shown(value: Decimal) -> str:
    return str(int(value)) if value == value.to_integral_value() else str(value)


def check_write(change: PlannedChange, lines: Iterable[BilledLine], line_id: str | None = None) -> WriteCheck:
    """Whether ``lines`` (the agreement's lines, read from the PSA) hold ``change``.

    ``line_id`` is the line the PSA said it wrote, when it answered; a created line is
    otherwise recognised by its tag."""
    on_agreement = [line for line in lines if line.agreement_id == change.agreement_id and line.psa == change.psa]
    wanted = line_id or (None if change.kind in CREATING else change.line_id)
    if wanted is not None:
        line = next((candidate for candidate in on_agreement if candidate.line_id == wanted), None)
    elif change.tag:
        line = next((candidate for candidate in on_agreement if candidate.tag == change.tag), None)
    else:
        line = None
    if line is None:
        where = f"line {wanted}" if wanted else (f"a line tagged {change.tag}" if change.tag else "the line")
        return WriteCheck(False, None, f"{where} is not on agreement {change.agreement_id}")
    if change.kind == ChangeKind.SET_DETAILS:
        differences = []
        if change.description is not None and line.invoice_description != change.description:
            differences.append("the invoice description differs")
        if change.unit_price is not None and line.unit_price != change.unit_price:
            differences.append(f"the unit price is {line.unit_price}, not {change.unit_price}")
        if differences:
            return WriteCheck(False, line, f"line {line.line_id}: {'; '.join(differences)}")
        return WriteCheck(True, line, f"line {line.line_id} has the new details")
    if change.kind == ChangeKind.SET_QUANTITY and change.end_date is not None:
        charged = line.period_quantity if line.period_quantity is not None else line.quantity
        if charged != change.new_quantity:
            return WriteCheck(False, line, f"line {line.line_id} charges {_shown(charged)} to {change.end_date}, "
                                           f"not {change.new_quantity}")
        return WriteCheck(True, line, f"line {line.line_id} charges {change.new_quantity} to {change.end_date}")
    if line.quantity != change.new_quantity:
        return WriteCheck(False, line, f"line {line.line_id} bills {_quantity(line)}, not {change.new_quantity}")
    if change.kind in CREATING and change.tag and line.tag not in (None, change.tag):
        return WriteCheck(False, line, f"line {line.line_id} carries another tag ({line.tag})")
    return WriteCheck(True, line, f"line {line.line_id} bills {change.new_quantity}")


def check_contact(change: PlannedChange, contacts: Iterable[PsaContact], contact_id: str | None = None) -> WriteCheck:
    """Whether ``contacts`` (the company's contacts, read from the PSA) hold the contact ``change``.

    ``contact_id`` is the contact the PSA said it wrote, when it answered; a new contact is
    otherwise recognised by its address."""
    details = change.contact or ContactDetails()
    own = [c for c in contacts if c.company_id == change.company_id and c.psa == change.psa]
    wanted = contact_id or change.line_id
    if wanted is not None:
        found = next((c for c in own if c.contact_id == wanted), None)
        where = f"contact {wanted}"
    else:
        address = (details.email or "").casefold()
        found = next((c for c in own if not c.inactive and address
                      and any(e.casefold() == address for e in c.emails)), None)
        where = f"an active contact with the address {details.email}"
    if found is None:
        return WriteCheck(False, None, f"{where} is not among the contacts of company {change.company_id}")
    if change.kind == ChangeKind.DEACTIVATE_CONTACT:
        if found.inactive:
            return WriteCheck(True, None, f"contact {found.contact_id} is inactive", found)
        return WriteCheck(False, None, f"contact {found.contact_id} is still active", found)
    if found.inactive:
        return WriteCheck(False, None, f"contact {found.contact_id} is inactive", found)
    missing = differences(details, found, frozenset(details.given()))
    if missing.given():
        return WriteCheck(False, None, f"contact {found.contact_id} differs: {describe(missing, found)}", found)
    done = "is active with the fields written" if details.given() else "is active"
    return WriteCheck(True, None, f"contact {found.contact_id} {done}", found)
