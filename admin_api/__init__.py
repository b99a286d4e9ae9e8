"""Administration API: configuration, onboarding, approvals, audit trail and unlinked licences.

The routes live in modules by subject and register on one blueprint."""

from admin_api import billing_routes, config_routes, history_routes  # noqa: F401  (importing registers the routes)
from admin_api.blueprint import bp

__all__ = ["bp"]
