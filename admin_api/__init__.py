"""Administration API: configuration, onboarding, approvals, audit trail, unlinked licences, run
history and the reconciliation.

The routes live in modules by subject and register on one blueprint."""

from admin_api import (  # noqa: F401  (importing registers the routes)
    billing_routes,
    catalogue_routes,
    config_routes,
    history_routes,
    reconcile_routes,
)
from admin_api.blueprint import bp

__all__ = ["bp"]
