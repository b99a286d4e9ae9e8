"""The ``partnerAccounts`` and ``gdap`` sections of the configuration document: the MSP's partner
tenants beyond the one the app settings name, and what a GDAP relationship must grant.

The app settings' Graph app (``GRAPH_CLIENT_ID``, ``GRAPH_PARTNER_TENANT_ID``,
``GRAPH_CLIENT_SECRET``) is always the first partner account, named ``default``; each entry of
``partnerAccounts`` adds a partner tenant with its own multi-tenant app, after it, in order. A
tenant is read through the first account, in that order, whose GDAP relationship with it is usable
(shared.domain.lifecycle). Secrets are references, as everywhere in the document.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from shared.config.base import Model, SecretRef

GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
DIRECTORY_READERS = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
ROLE_NAMES: dict[str, str] = {
    DIRECTORY_READERS: "Directory Readers",
    GLOBAL_READER: "Global Reader",
    GLOBAL_ADMINISTRATOR: "Global Administrator",
    "4d6ac14f-3453-41d0-bef9-a3e0c569773a": "License Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
}
"""Entra role template ids (the same in every tenant) SeatSync names in messages."""
DEFAULT_REQUIRED_ROLES = (DIRECTORY_READERS, GLOBAL_READER, GLOBAL_ADMINISTRATOR)
"""A relationship counts when it grants at least one of these: the least is Directory Readers
(read the directory: users, licences); Global Reader and Global Administrator include it."""
DEFAULT_PARTNER = "default"
AccessMode = Literal["gdap", "consent"]
"""How SeatSync reaches a tenant: ``gdap`` (a customer of a partner account, checked against its GDAP
relationships every run) or ``consent`` (added by tenant id; a Global Administrator of the customer
granted the partner account's app admin consent; never checked against GDAP)."""
"""The name of the partner account the app settings describe."""


class PartnerAccount(Model):
    """A further partner tenant and its multi-tenant app (application permissions as the default
    app's: docs/permissions.md), consented in the customers it reads."""

    name: str = Field(description="lower-case letters, digits and dashes; named in reports and by tenants")
    tenant_id: str = Field(pattern=GUID_PATTERN, description="the partner tenant")
    client_id: SecretRef | Annotated[str, Field(pattern=GUID_PATTERN)] = Field(
        description="the app registration's application (client) id, or where it is kept")
    client_secret: SecretRef

    @field_validator("tenant_id")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("client_id")
    @classmethod
    def _lower_client(cls, value: SecretRef | str) -> SecretRef | str:
        return value.lower() if isinstance(value, str) else value


class GdapRules(Model):
    """What makes a GDAP relationship usable for SeatSync."""

    required_roles: tuple[Annotated[str, Field(pattern=GUID_PATTERN)], ...] = Field(
        default=DEFAULT_REQUIRED_ROLES, min_length=1,
        description="role template ids; a relationship counts when it grants at least one of them")

    @field_validator("required_roles")
    @classmethod
    def _lower_roles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v.lower() for v in value))
