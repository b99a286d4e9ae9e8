"""The kinds of billing problem (shared.domain.problems explains problems).

They are defined here, with the configuration, because the configuration names them: an alert
exclusion can be narrowed to some kinds of problem (``notifications.exclusions[].problems``).
The values are stable: they are stored with runs, shown in reports and written in configurations.
"""

from __future__ import annotations

from enum import StrEnum


class ProblemKind(StrEnum):
    """What went wrong. The values are stable: they are stored with runs and used in exclusions."""

    AGREEMENT_MISSING = "agreement-missing"
    AGREEMENT_INACTIVE = "agreement-inactive"
    AGREEMENT_ENDED = "agreement-ended"
    AGREEMENT_OF_ANOTHER_COMPANY = "agreement-of-another-company"
    AGREEMENT_TYPE_NOT_ALLOWED = "agreement-type-not-allowed"
    LINE_MISSING = "line-missing"
    LINE_CANCELLED = "line-cancelled"
    LINE_REMOVED = "line-removed"
    LINE_SHARED = "line-shared"
    LINE_ON_ANOTHER_AGREEMENT = "line-on-another-agreement"
    SEVERAL_CANDIDATE_LINES = "several-candidate-lines"
    FRACTIONAL_QUANTITY = "fractional-quantity"
    PRODUCT_DIFFERS = "product-differs"
    NO_LINE_NO_PROFILE = "no-line-no-profile"
    PRODUCT_WITHOUT_PRICE = "product-without-price"
    PSA_NOT_READ = "psa-not-read"
    COUNT_UNAVAILABLE = "count-unavailable"
    SUBSCRIPTION_NOT_FOUND = "subscription-not-found"
    USERS_OVERLAP = "users-overlap"
    USERS_UNMATCHED = "users-unmatched"
    SUBSCRIPTION_NOT_ACTIVE = "subscription-not-active"
    DISABLED_USERS_LICENSED = "disabled-users-licensed"
    PRICE_DIFFERS = "price-differs"
    IMPOSSIBLE_VALUE = "impossible-value"
    PERIOD_INVOICE_MISSING = "period-invoice-missing"
    SEATS_BOUGHT_ELSEWHERE = "seats-bought-elsewhere"
    COST_UNKNOWN = "cost-unknown"
    CONTACT_AMBIGUOUS = "contact-ambiguous"
    CONTACTS_NOT_READ = "contacts-not-read"
    UNCLASSIFIED = "unclassified"
