"""The ``graph:`` scenario section: strict validation and the in-memory directory it builds.

Every value is checked; an unknown key or a bad value raises ``EmulatorError`` naming its path
(``graph.tenants[2].skus[0].enabled``). Generated ids are uuid5 of the tenant and the object's
natural key, so a scenario always produces the same ids. ``consumedUnits`` is never configured:
it is the number of users holding the licence, as in Entra ID.

Loading is linear in the size of the scenario (dictionaries keyed by id and UPN), so a scenario
of 500 tenants with 50 users each and one tenant with 10,000 users loads in a fraction of a
second.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509

from emulators.base import EmulatorError
from emulators.scenario_reader import unknown_key

NAMESPACE = uuid.UUID("8a1d3c52-6f0e-4c55-9a7e-3f1f6c0b5e21")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
_UPN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PART_NUMBER = re.compile(r"^[A-Za-z0-9_+.\-]{1,100}$")

AUTH_MODES = {
    "ok": "tokens are issued",
    "not-consented": "AADSTS700016 (no service principal: admin consent never granted)",
    "app-missing": "AADSTS700016 (same answer as not-consented, kept as a separate name)",
    "consent-required": "AADSTS65001 (consent error as delegated flows report it)",
    "bad-secret": "AADSTS7000215 (invalid client secret)",
    "secret-expired": "AADSTS7000222 (client secret expired)",
    "disabled": "AADSTS7000112 (application disabled in the tenant)",
    "unknown-tenant": "AADSTS90002 (tenant not found, also on OpenID discovery)",
    "blocked-by-conditional-access": "AADSTS53003 (a Conditional Access policy blocks the app)",
    "no-permissions": "a token without application roles is issued; Graph answers 403",
}
GDAP_STATES = ("active", "expired", "none")
RELATIONSHIP_STATES = ("active", "expiring", "terminationRequested", "terminating", "expired", "terminated",
                       "approvalPending", "created")
RELATIONSHIP_IN_FORCE = ("active", "expiring", "terminationRequested", "terminating")
_DURATION = re.compile(r"^P(?:\d+D|T0S)$")
RECIPIENT_TYPES = ("User", "Shared", "Room", "Equipment")
CAPABILITY_STATES = ("Enabled", "Warning", "Suspended", "Deleted", "LockedOut")
SUBSCRIPTION_STATES = ("Enabled", "Warning", "Suspended", "Deleted", "LockedOut")
USER_TYPES = ("Member", "Guest")

# Application permissions a consented tenant grants the SeatSync app (the token's ``roles``).
DEFAULT_PERMISSIONS = (
    "User.Read.All",
    "AuditLog.Read.All",
    "GroupMember.Read.All",
    "Organization.Read.All",
    "LicenseAssignment.Read.All",
    "Reports.Read.All",
    "DeviceManagementManagedDevices.Read.All",
    "Device.Read.All",
)
PARTNER_PERMISSIONS = (
    "DelegatedAdminRelationship.Read.All",
    "User.Read.All",
    "Organization.Read.All",
    "Mail.Send",
)
KNOWN_PERMISSIONS = frozenset(DEFAULT_PERMISSIONS + PARTNER_PERMISSIONS + (
    "Directory.Read.All", "Group.Read.All", "DelegatedAdminRelationship.ReadWrite.All",
    "LicenseAssignment.ReadWrite.All", "Mail.ReadWrite", "User.ReadWrite.All",
))
GDAP_ROLE_IDS = (
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451",  # Global Reader
    "fe930be7-5e62-47db-91af-98c3a49a38b1",  # User Administrator
    "4d6ac14f-3453-41d0-bef9-a3e0c569773a",  # License Administrator
)
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def stable_id(*parts: str) -> str:
    """A deterministic GUID for an object of a scenario."""
    return str(uuid.uuid5(NAMESPACE, "/".join(p.lower() for p in parts)))


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- the directory


@dataclass
class Sku:
    sku_id: str
    part_number: str
    enabled: int
    suspended: int = 0
    warning: int = 0
    locked_out: int = 0
    capability_status: str = "Enabled"
    applies_to: str = "User"


@dataclass
class Subscription:
    id: str
    sku_id: str
    total: int
    status: str = "Enabled"
    is_trial: bool = False
    created: str = ""
    next_lifecycle: str | None = None
    commerce_id: str = ""


@dataclass
class User:
    id: str
    upn: str
    display_name: str
    account_enabled: bool = True
    user_type: str = "Member"
    sku_ids: list[str] = field(default_factory=list)
    mail: str | None = None
    office_location: str | None = None
    department: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    usage_location: str | None = None
    mailbox: str | None = None
    created: str = ""
    sign_in: dict[str, str | None] | None = None
    """``signInActivity`` (lastSignInDateTime, lastNonInteractiveSignInDateTime,
    lastSuccessfulSignInDateTime); None: Entra records no sign-in (Graph returns null)."""
    mobile_phone: str | None = None
    business_phones: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        """Every property the emulator models, as Graph names them."""
        return {
            "id": self.id,
            "userPrincipalName": self.upn,
            "displayName": self.display_name,
            "givenName": self.given_name,
            "surname": self.surname,
            "jobTitle": self.job_title,
            "mail": self.mail,
            "mobilePhone": self.mobile_phone,
            "businessPhones": list(self.business_phones),
            "officeLocation": self.office_location,
            "preferredLanguage": None,
            "accountEnabled": self.account_enabled,
            "userType": self.user_type,
            "assignedLicenses": [{"disabledPlans": [], "skuId": sku} for sku in self.sku_ids],
            "department": self.department,
            "city": self.city,
            "state": self.state,
            "country": self.country,
            "usageLocation": self.usage_location,
            "createdDateTime": self.created,
            "companyName": None,
            "employeeId": None,
            "streetAddress": None,
            "postalCode": None,
            "onPremisesSyncEnabled": None,
            "proxyAddresses": ([f"SMTP:{self.mail}"] if self.mail else []) + [f"smtp:{a}" for a in self.aliases],
        }

    def sign_in_json(self) -> dict[str, Any] | None:
        """``signInActivity``, returned only when selected (null for a user with no sign-in)."""
        if self.sign_in is None:
            return None
        return {**self.sign_in, **{f"{key[:-len('DateTime')]}RequestId": stable_id(self.id, key) if value else None
                                   for key, value in self.sign_in.items()}}


@dataclass
class Device:
    id: str
    device_id: str
    display_name: str
    operating_system: str = "Windows"
    os_version: str = ""
    account_enabled: bool = True
    managed: bool = False
    managed_id: str = ""
    user_upn: str | None = None

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "deviceId": self.device_id,
            "displayName": self.display_name,
            "operatingSystem": self.operating_system,
            "operatingSystemVersion": self.os_version,
            "accountEnabled": self.account_enabled,
            "isManaged": self.managed,
            "isCompliant": True if self.managed else None,
            "trustType": "AzureAd",
            "approximateLastSignInDateTime": None,
        }

    def managed_json(self) -> dict[str, Any]:
        return {
            "id": self.managed_id,
            "deviceName": self.display_name,
            "operatingSystem": self.operating_system,
            "osVersion": self.os_version,
            "userPrincipalName": self.user_upn or "",
            "azureADDeviceId": self.device_id,
            "complianceState": "compliant",
            "managementAgent": "mdm",
            "managedDeviceOwnerType": "company",
            "enrolledDateTime": iso(_EPOCH),
            "lastSyncDateTime": iso(_EPOCH + timedelta(days=30)),
        }


@dataclass
class Group:
    id: str
    display_name: str
    security_enabled: bool = True
    mail_enabled: bool = False
    user_ids: list[str] = field(default_factory=list)
    device_ids: list[str] = field(default_factory=list)
    group_ids: list[str] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "description": None,
            "securityEnabled": self.security_enabled,
            "mailEnabled": self.mail_enabled,
            "groupTypes": [],
            "mail": None,
        }


@dataclass
class Mailbox:
    upn: str
    display_name: str
    recipient_type: str
    is_deleted: bool = False
    deleted_date: str = ""


@dataclass
class Tenant:
    tenant_id: str
    display_name: str
    default_domain: str
    domains: list[str]
    auth: str = "ok"
    gdap: str = "active"
    gdap_end: str = ""
    gdap_roles: tuple[str, ...] = GDAP_ROLE_IDS
    gdap_auto_extend: str = "PT0S"
    relationships: list[Relationship] = field(default_factory=list)
    """Relationships with further partner tenants (``gdap`` is the one with the first partner)."""
    consented_apps: list[str] = field(default_factory=list)
    """Partner tenants whose app is consented here besides the first partner's and those with a
    relationship."""
    entra_premium: bool = True
    permissions: frozenset[str] = frozenset(DEFAULT_PERMISSIONS)
    concealed_report_names: bool = False
    throttle_units: int | None = None
    country: str = "GB"
    skus: dict[str, Sku] = field(default_factory=dict)
    subscriptions: list[Subscription] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    users_by_id: dict[str, User] = field(default_factory=dict)
    users_by_upn: dict[str, User] = field(default_factory=dict)
    devices: list[Device] = field(default_factory=list)
    devices_by_id: dict[str, Device] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    extra_mailboxes: list[Mailbox] = field(default_factory=list)
    consumed: dict[str, int] = field(default_factory=dict)

    # -- changes (used by the loader and the admin API) ---------------------------------
    def add_user(self, user: User) -> None:
        key = user.upn.lower()
        if key in self.users_by_upn:
            raise EmulatorError(f"user {user.upn} already exists in tenant {self.tenant_id}")
        if user.id in self.users_by_id:
            raise EmulatorError(f"user id {user.id} already exists in tenant {self.tenant_id}")
        self.users.append(user)
        self.users_by_id[user.id] = user
        self.users_by_upn[key] = user
        for sku in user.sku_ids:
            self.consumed[sku] = self.consumed.get(sku, 0) + 1

    def remove_user(self, key: str) -> User:
        user = self.find_user(key)
        if user is None:
            raise EmulatorError(f"no user {key} in tenant {self.tenant_id}")
        self.users.remove(user)
        del self.users_by_id[user.id]
        del self.users_by_upn[user.upn.lower()]
        for sku in user.sku_ids:
            self.consumed[sku] -= 1
        for group in self.groups.values():
            if user.id in group.user_ids:
                group.user_ids.remove(user.id)
        return user

    def set_licenses(self, user: User, sku_ids: list[str]) -> None:
        for sku in user.sku_ids:
            self.consumed[sku] -= 1
        user.sku_ids = list(sku_ids)
        for sku in user.sku_ids:
            self.consumed[sku] = self.consumed.get(sku, 0) + 1

    def find_user(self, key: str) -> User | None:
        return self.users_by_id.get(key.lower()) or self.users_by_upn.get(key.lower())

    def resolve_sku(self, ref: str) -> Sku | None:
        if ref.lower() in self.skus:
            return self.skus[ref.lower()]
        for sku in self.skus.values():
            if sku.part_number.lower() == ref.lower():
                return sku
        return None

    @property
    def all_domains(self) -> list[str]:
        names = [self.default_domain, *self.domains]
        initial = self.initial_domain
        if initial not in names:
            names.append(initial)
        return names

    @property
    def initial_domain(self) -> str:
        for name in [self.default_domain, *self.domains]:
            if name.lower().endswith(".onmicrosoft.com"):
                return name
        slug = re.sub(r"[^a-z0-9]", "", self.display_name.lower())[:27] or "tenant"
        return f"{slug}.onmicrosoft.com"

    def mailboxes(self) -> list[Mailbox]:
        boxes = [Mailbox(u.upn, u.display_name, u.mailbox) for u in self.users if u.mailbox]
        return boxes + self.extra_mailboxes

    def transitive(self, group: Group) -> tuple[list[str], list[str], list[str]]:
        """User, device and nested group ids reachable from ``group`` (cycles are safe)."""
        users: dict[str, None] = {}
        devices: dict[str, None] = {}
        nested: dict[str, None] = {}
        stack = [group]
        seen = {group.id}
        while stack:
            current = stack.pop()
            users.update(dict.fromkeys(current.user_ids))
            devices.update(dict.fromkeys(current.device_ids))
            for gid in current.group_ids:
                if gid in seen:
                    continue
                seen.add(gid)
                nested[gid] = None
                stack.append(self.groups[gid])
        return list(users), list(devices), list(nested)


@dataclass
class Relationship:
    """A GDAP relationship of a customer tenant with a partner tenant."""

    partner_tenant_id: str
    status: str
    end: str
    roles: tuple[str, ...] = GDAP_ROLE_IDS
    auto_extend: str = "PT0S"
    display_name: str = ""

    @property
    def in_force(self) -> bool:
        return self.status in RELATIONSHIP_IN_FORCE


@dataclass
class Partner:
    tenant: Tenant
    client_id: str
    client_secret: str | None
    certificate: x509.Certificate | None
    app_name: str


@dataclass
class Directory:
    partner: Partner
    tenants: dict[str, Tenant]
    order: list[str]
    token_lifetime: int
    domains: dict[str, str]
    others: list[Partner] = field(default_factory=list)
    """Further partner tenants, each with its own app."""

    @property
    def partners(self) -> list[Partner]:
        return [self.partner, *self.others]

    def partner_of_tenant(self, tenant: Tenant) -> Partner | None:
        return next((p for p in self.partners if p.tenant is tenant), None)

    def partner_by_client(self, client_id: str) -> Partner | None:
        return next((p for p in self.partners if p.client_id == client_id.lower()), None)

    def resolve(self, ref: str) -> Tenant | None:
        """A tenant by GUID or by any of its domains (Entra accepts both in the authority)."""
        key = ref.lower()
        tid = key if key in self.tenants or any(p.tenant.tenant_id == key for p in self.partners) \
            else self.domains.get(key)
        if tid is None:
            return None
        found = self.tenants.get(tid)
        if found is not None:
            return found
        return next((p.tenant for p in self.partners if p.tenant.tenant_id == tid), None)

    def all_tenants(self) -> Iterator[Tenant]:
        for partner in self.partners:
            yield partner.tenant
        for tid in self.order:
            yield self.tenants[tid]

    def relationships(self, tenant: Tenant) -> list[Relationship]:
        """Every GDAP relationship of a customer tenant, the first partner's (``gdap``) first."""
        first = [] if tenant.gdap == "none" else [Relationship(
            self.partner.tenant.tenant_id, tenant.gdap, tenant.gdap_end, tenant.gdap_roles, tenant.gdap_auto_extend,
            f"SeatSync-{tenant.display_name}"[:50])]
        return first + tenant.relationships

    def customers_of(self, partner: Tenant) -> list[Tenant]:
        """The customers a partner tenant has a relationship in force with (``delegatedAdminCustomers``)."""
        return [self.tenants[tid] for tid in self.order
                if any(r.partner_tenant_id == partner.tenant_id and r.in_force
                       for r in self.relationships(self.tenants[tid]))]

    def consents(self, tenant: Tenant, partner: Partner) -> bool:
        """Whether ``partner``'s app is consented in ``tenant``: its own tenant; every customer for
        the first partner's app (the tenant's ``auth`` says otherwise); for a further partner's app, a
        customer it has a relationship with or that lists it in ``consentedApps``."""
        if partner.tenant is tenant or partner is self.partner:
            return True
        if tenant.tenant_id not in self.tenants:
            return False  # another partner tenant
        return partner.tenant.tenant_id in tenant.consented_apps or any(
            r.partner_tenant_id == partner.tenant.tenant_id for r in tenant.relationships)


# --------------------------------------------------------------------------- validation

_MISSING: Any = object()


class Node:
    """A mapping of the scenario with its path, read strictly."""

    def __init__(self, raw: Any, path: str, allowed: set[str] | frozenset[str]) -> None:
        if not isinstance(raw, dict):
            raise EmulatorError(f"{path} must be a mapping, got {_kind(raw)}")
        for key in raw:
            if key not in allowed:
                raise unknown_key(path, key, allowed)
        self.raw = raw
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def has(self, key: str) -> bool:
        return key in self.raw and self.raw[key] is not None

    def text(self, key: str, default: Any = _MISSING, *, choices: tuple[str, ...] | None = None,
            pattern: re.Pattern[str] | None = None, what: str = "") -> Any:
        if not self.has(key):
            if default is _MISSING:
                raise EmulatorError(f"{self.at(key)}: required")
            return default
        value = self.raw[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise EmulatorError(f"{self.at(key)} must be a string, got {_kind(value)}")
        text = str(value)
        if not text.strip():
            raise EmulatorError(f"{self.at(key)} must not be empty")
        if choices is not None and text not in choices:
            raise EmulatorError(f"{self.at(key)} must be one of {', '.join(choices)}, got {text!r}")
        if pattern is not None and not pattern.match(text):
            raise EmulatorError(f"{self.at(key)} must be {what or 'valid'}, got {text!r}")
        return text

    def guid(self, key: str, default: Any = _MISSING) -> Any:
        value = self.text(key, default, pattern=_GUID, what="a GUID")
        return value.lower() if isinstance(value, str) else value

    def number(self, key: str, default: Any = _MISSING, minimum: int = 0) -> Any:
        if not self.has(key):
            if default is _MISSING:
                raise EmulatorError(f"{self.at(key)}: required")
            return default
        value = self.raw[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise EmulatorError(f"{self.at(key)} must be an integer, got {_kind(value)} {value!r}")
        if value < minimum:
            raise EmulatorError(f"{self.at(key)} must be >= {minimum}, got {value}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        if not self.has(key):
            return default
        value = self.raw[key]
        if not isinstance(value, bool):
            raise EmulatorError(f"{self.at(key)} must be true or false, got {value!r}")
        return value

    def items(self, key: str) -> list[tuple[Any, str]]:
        if not self.has(key):
            return []
        value = self.raw[key]
        if not isinstance(value, list):
            raise EmulatorError(f"{self.at(key)} must be a list, got {_kind(value)}")
        return [(item, f"{self.at(key)}[{i}]") for i, item in enumerate(value)]

    def strings(self, key: str, pattern: re.Pattern[str] | None = None, what: str = "") -> list[str]:
        out = []
        for item, path in self.items(key):
            if isinstance(item, bool) or not isinstance(item, str) or not item.strip():
                raise EmulatorError(f"{path} must be a non-empty string, got {item!r}")
            if pattern is not None and not pattern.match(item):
                raise EmulatorError(f"{path} must be {what or 'valid'}, got {item!r}")
            out.append(item)
        return out

    def timestamp(self, key: str, default: str | None) -> str | None:
        if not self.has(key):
            return default
        value = self.raw[key]
        if isinstance(value, datetime):
            parsed = value if value.tzinfo else value.replace(tzinfo=UTC)
            return iso(parsed)
        if hasattr(value, "isoformat") and not isinstance(value, str):  # a YAML date
            return f"{value.isoformat()}T00:00:00Z"
        text = self.text(key)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise EmulatorError(f"{self.at(key)} must be an ISO-8601 date-time, got {text!r}") from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return iso(parsed)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "nothing"}.get(type(value), type(value).__name__)


_TENANT_KEYS = frozenset({
    "tenantId", "displayName", "defaultDomain", "domains", "auth", "gdap", "gdapEndDateTime", "gdapRoles",
    "gdapAutoExtendDuration", "relationships", "consentedApps", "entraPremium",
    "permissions", "missingPermissions", "concealedReportNames", "throttle", "country", "skus",
    "subscriptions", "users", "generatedUsers", "groups", "devices", "generatedDevices", "mailboxes",
})
_PARTNER_KEYS = _TENANT_KEYS - {"gdap", "gdapEndDateTime", "gdapRoles", "gdapAutoExtendDuration", "relationships",
                                 "consentedApps", "auth"} | {"clientId", "clientSecret", "clientCertificate", "appName"}
_SECTION_KEYS = frozenset({"partner", "partners", "tenants", "tokenLifetimeSeconds", "faults"})
_RELATIONSHIP_KEYS = frozenset({"partner", "status", "endDateTime", "roles", "autoExtendDuration", "displayName"})
_SKU_KEYS = frozenset({"skuId", "skuPartNumber", "enabled", "suspended", "warning", "lockedOut",
                       "capabilityStatus", "appliesTo"})
_SUB_KEYS = frozenset({"id", "skuId", "skuPartNumber", "totalLicenses", "status", "isTrial",
                       "createdDateTime", "nextLifecycleDateTime", "commerceSubscriptionId"})
_USER_KEYS = frozenset({"id", "userPrincipalName", "displayName", "accountEnabled", "userType",
                        "licenses", "department", "officeLocation", "city", "state", "country",
                        "mail", "givenName", "surname", "jobTitle", "usageLocation", "mailbox",
                        "lastSignInDaysAgo", "signInActivity", "createdDateTime", "mobilePhone",
                        "businessPhones", "aliases"})
_GEN_USER_KEYS = frozenset({"count", "prefix", "licenses", "department", "officeLocation", "city",
                            "state", "country", "accountEnabled", "userType", "mailbox",
                            "jobTitle", "usageLocation", "lastSignInDaysAgo"})
_SIGN_IN_KEYS = frozenset({"lastSignInDateTime", "lastNonInteractiveSignInDateTime", "lastSuccessfulSignInDateTime"})
_GROUP_KEYS = frozenset({"id", "displayName", "securityEnabled", "mailEnabled", "users", "devices",
                         "groups"})
_DEVICE_KEYS = frozenset({"id", "deviceId", "displayName", "operatingSystem", "osVersion",
                          "accountEnabled", "managed", "userPrincipalName"})
_GEN_DEVICE_KEYS = frozenset({"count", "prefix", "operatingSystem", "osVersion", "managed",
                              "accountEnabled"})
_MAILBOX_KEYS = frozenset({"userPrincipalName", "displayName", "recipientType", "isDeleted",
                           "deletedDate"})


def load_directory(section: Any, path: str = "graph") -> Directory:
    """Validate the ``graph:`` section and build the directory it describes."""
    root = Node(section, path, _SECTION_KEYS)
    lifetime = root.number("tokenLifetimeSeconds", 3599, minimum=1)
    partner = _load_partner(Node(root.raw.get("partner"), root.at("partner"), _PARTNER_KEYS))
    tenants: dict[str, Tenant] = {}
    order: list[str] = []
    domains: dict[str, str] = {}
    _claim_domains(partner.tenant, domains, root.at("partner"))
    others: list[Partner] = []
    for raw, ppath in root.items("partners"):
        other = _load_partner(Node(raw, ppath, _PARTNER_KEYS))
        for known in (partner, *others):
            if other.tenant.tenant_id == known.tenant.tenant_id:
                raise EmulatorError(f"{ppath}.tenantId: duplicate partner tenant {other.tenant.tenant_id}")
            if other.client_id == known.client_id:
                raise EmulatorError(f"{ppath}.clientId: the app {other.client_id} belongs to another partner tenant")
        _claim_domains(other.tenant, domains, ppath)
        others.append(other)
    partner_ids = {p.tenant.tenant_id for p in (partner, *others)}
    for raw, tpath in root.items("tenants"):
        tenant = _load_tenant(Node(raw, tpath, _TENANT_KEYS), partner=False, partner_ids=partner_ids)
        if tenant.tenant_id in tenants or tenant.tenant_id in partner_ids:
            raise EmulatorError(f"{tpath}.tenantId: duplicate tenant {tenant.tenant_id}")
        _claim_domains(tenant, domains, tpath)
        tenants[tenant.tenant_id] = tenant
        order.append(tenant.tenant_id)
    return Directory(partner, tenants, order, lifetime, domains, others)


def _claim_domains(tenant: Tenant, domains: dict[str, str], path: str) -> None:
    for name in tenant.all_domains:
        key = name.lower()
        owner = domains.get(key)
        if owner is not None and owner != tenant.tenant_id:
            raise EmulatorError(f"{path}: domain {name} is already verified by tenant {owner}")
        domains[key] = tenant.tenant_id


def _load_partner(node: Node) -> Partner:
    tenant = _load_tenant(node, partner=True)
    client_id = node.guid("clientId")
    secret = node.text("clientSecret", None)
    certificate = None
    if node.has("clientCertificate"):
        certificate = _load_certificate(node.text("clientCertificate"), node.at("clientCertificate"))
    if secret is None and certificate is None:
        raise EmulatorError(f"{node.path}: set clientSecret or clientCertificate (or both)")
    return Partner(tenant, client_id, secret, certificate, node.text("appName", "SeatSync"))


def _load_certificate(value: str, path: str) -> x509.Certificate:
    text = value
    if "-----BEGIN" not in value:
        try:
            text = Path(value).read_text(encoding="utf-8")
        except OSError as exc:
            raise EmulatorError(f"{path}: cannot read certificate file {value}: {exc}") from exc
    try:
        return x509.load_pem_x509_certificate(text.encode("utf-8"))
    except ValueError as exc:
        raise EmulatorError(f"{path}: not a PEM certificate: {exc}") from exc


def _load_tenant(node: Node, partner: bool, partner_ids: set[str] | None = None) -> Tenant:
    tid = node.guid("tenantId")
    name = node.text("displayName")
    slug = re.sub(r"[^a-z0-9]", "", name.lower())[:27] or "tenant"
    default_domain = node.text("defaultDomain", f"{slug}.onmicrosoft.com", pattern=_DOMAIN,
                              what="a domain name").lower()
    domains = [d.lower() for d in node.strings("domains", _DOMAIN, "a domain name")]
    tenant = Tenant(
        tenant_id=tid,
        display_name=name,
        default_domain=default_domain,
        domains=[d for d in dict.fromkeys(domains) if d != default_domain],
        country=node.text("country", "GB"),
        concealed_report_names=node.flag("concealedReportNames", False),
    )
    if not partner:
        tenant.auth = node.text("auth", "ok", choices=tuple(AUTH_MODES))
        gdap = node.raw.get("gdap", True)
        if isinstance(gdap, bool):
            tenant.gdap = "active" if gdap else "none"
        else:
            tenant.gdap = node.text("gdap", choices=GDAP_STATES)
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        end_default = iso(today + timedelta(days=365) if tenant.gdap == "active"
                          else today - timedelta(days=30))
        tenant.gdap_end = node.timestamp("gdapEndDateTime", end_default) or end_default
        if node.has("gdapRoles"):
            tenant.gdap_roles = tuple(r.lower() for r in node.strings("gdapRoles", _GUID, "a role template id"))
        tenant.gdap_auto_extend = node.text("gdapAutoExtendDuration", "PT0S", pattern=_DURATION,
                                            what="an ISO 8601 duration in days, or PT0S")
        tenant.entra_premium = node.flag("entraPremium", True)
        known = partner_ids or set()
        for raw, rpath in node.items("relationships"):
            rn = Node(raw, rpath, _RELATIONSHIP_KEYS)
            other = rn.guid("partner")
            if other not in known:
                raise EmulatorError(f"{rpath}.partner: no partner tenant {other} (graph.partner or graph.partners)")
            status = rn.text("status", "active", choices=RELATIONSHIP_STATES)
            default_end = iso(today + timedelta(days=365) if status in RELATIONSHIP_IN_FORCE
                              else today - timedelta(days=30))
            tenant.relationships.append(Relationship(
                partner_tenant_id=other, status=status,
                end=rn.timestamp("endDateTime", default_end) or default_end,
                roles=(tuple(r.lower() for r in rn.strings("roles", _GUID, "a role template id"))
                       if rn.has("roles") else GDAP_ROLE_IDS),
                auto_extend=rn.text("autoExtendDuration", "PT0S", pattern=_DURATION,
                                    what="an ISO 8601 duration in days, or PT0S"),
                display_name=rn.text("displayName", f"SeatSync-{tenant.display_name}"[:50]),
            ))
        for ref, cpath in node.items("consentedApps"):
            if not isinstance(ref, str) or ref.lower() not in known:
                raise EmulatorError(f"{cpath}: no partner tenant {ref!r} (graph.partner or graph.partners)")
            tenant.consented_apps.append(ref.lower())
    granted = set(PARTNER_PERMISSIONS if partner else DEFAULT_PERMISSIONS)
    if node.has("permissions"):
        granted = set(node.strings("permissions"))
    for perm in sorted(granted | set(node.strings("missingPermissions"))):
        if perm not in KNOWN_PERMISSIONS:
            raise EmulatorError(
                f"{node.path}: unknown permission {perm!r} (known: {', '.join(sorted(KNOWN_PERMISSIONS))})"
            )
    tenant.permissions = frozenset(granted - set(node.strings("missingPermissions")))
    if node.has("throttle"):
        tnode = Node(node.raw["throttle"], node.at("throttle"), {"unitsPer10s"})
        units = tnode.raw.get("unitsPer10s")
        if units == "auto":
            tenant.throttle_units = -1  # decided from the user count once users are loaded
        else:
            tenant.throttle_units = tnode.number("unitsPer10s", minimum=1)

    explicit_enabled = _load_skus(node, tenant)
    load_users(node, tenant)
    _load_subscriptions(node, tenant, explicit_enabled)
    _load_devices(node, tenant)
    _load_groups(node, tenant)
    _load_mailboxes(node, tenant)
    if tenant.throttle_units == -1:
        count = len(tenant.users)
        tenant.throttle_units = 3500 if count < 50 else 5000 if count <= 500 else 8000
    return tenant


def _load_skus(node: Node, tenant: Tenant) -> dict[str, tuple[int, str]]:
    """Load the SKUs; returns the explicitly configured ``enabled`` counts with their paths."""
    explicit_enabled: dict[str, tuple[int, str]] = {}
    for raw, path in node.items("skus"):
        sn = Node(raw, path, _SKU_KEYS)
        part = sn.text("skuPartNumber", pattern=_PART_NUMBER, what="a SKU part number")
        sku_id = sn.guid("skuId", stable_id("sku", part))
        if sku_id in tenant.skus:
            raise EmulatorError(f"{path}.skuId: duplicate SKU {sku_id} in this tenant")
        if any(s.part_number.lower() == part.lower() for s in tenant.skus.values()):
            raise EmulatorError(f"{path}.skuPartNumber: duplicate SKU {part} in this tenant")
        sku = Sku(
            sku_id=sku_id,
            part_number=part,
            enabled=sn.number("enabled", 0),
            suspended=sn.number("suspended", 0),
            warning=sn.number("warning", 0),
            locked_out=sn.number("lockedOut", 0),
            capability_status=sn.text("capabilityStatus", "Enabled", choices=CAPABILITY_STATES),
            applies_to=sn.text("appliesTo", "User", choices=("User", "Company")),
        )
        if sn.has("enabled"):
            explicit_enabled[sku_id] = (sku.enabled, sn.at("enabled"))
        tenant.skus[sku_id] = sku
        tenant.consumed[sku_id] = 0
    return explicit_enabled


def resolve_licenses(tenant: Tenant, refs: list[tuple[Any, str]]) -> list[str]:
    out: list[str] = []
    for ref, path in refs:
        if isinstance(ref, bool) or not isinstance(ref, str) or not ref.strip():
            raise EmulatorError(f"{path} must be a SKU part number or skuId, got {ref!r}")
        sku = tenant.resolve_sku(ref)
        if sku is None:
            raise EmulatorError(f"{path}: no SKU {ref!r} in this tenant's skus")
        if sku.sku_id in out:
            raise EmulatorError(f"{path}: licence {ref} assigned twice")
        out.append(sku.sku_id)
    return out


def load_users(node: Node, tenant: Tenant) -> None:
    created = iso(_EPOCH)
    for raw, path in node.items("users"):
        un = Node(raw, path, _USER_KEYS)
        upn = un.text("userPrincipalName", pattern=_UPN, what="a user principal name (name@domain)")
        if upn.lower() in tenant.users_by_upn:
            raise EmulatorError(f"{path}.userPrincipalName: duplicate user {upn}")
        uid = un.guid("id", None) or stable_id(tenant.tenant_id, upn)
        if uid in tenant.users_by_id:
            raise EmulatorError(f"{path}.id: duplicate user id {uid}")
        local = upn.split("@", 1)[0]
        display = un.text("displayName", local.replace(".", " ").title())
        user = User(
            id=uid,
            upn=upn,
            display_name=display,
            account_enabled=un.flag("accountEnabled", True),
            user_type=un.text("userType", "Member", choices=USER_TYPES),
            sku_ids=resolve_licenses(tenant, un.items("licenses")),
            mail=un.text("mail", upn),
            office_location=un.text("officeLocation", None),
            department=un.text("department", None),
            city=un.text("city", None),
            state=un.text("state", None),
            country=un.text("country", None),
            given_name=un.text("givenName", None),
            surname=un.text("surname", None),
            job_title=un.text("jobTitle", None),
            usage_location=un.text("usageLocation", tenant.country),
            mailbox=un.text("mailbox", None, choices=RECIPIENT_TYPES),
            created=un.timestamp("createdDateTime", created) or created,
            sign_in=_sign_in(un),
            mobile_phone=un.text("mobilePhone", None),
            business_phones=un.strings("businessPhones"),
            aliases=un.strings("aliases"),
        )
        tenant.add_user(user)
    counter = 0
    for raw, path in node.items("generatedUsers"):
        gn = Node(raw, path, _GEN_USER_KEYS)
        count = gn.number("count", minimum=0)
        prefix = gn.text("prefix", "user", pattern=re.compile(r"^[A-Za-z0-9._-]+$"),
                        what="letters, digits, '.', '_' or '-'")
        sku_ids = resolve_licenses(tenant, gn.items("licenses"))
        enabled = gn.flag("accountEnabled", True)
        user_type = gn.text("userType", "Member", choices=USER_TYPES)
        department = gn.text("department", None)
        office = gn.text("officeLocation", None)
        city = gn.text("city", None)
        state = gn.text("state", None)
        country = gn.text("country", None)
        job = gn.text("jobTitle", None)
        usage = gn.text("usageLocation", tenant.country)
        mailbox = gn.text("mailbox", None, choices=RECIPIENT_TYPES)
        sign_in = _sign_in(gn)
        domain = tenant.default_domain
        tid = tenant.tenant_id
        by_upn = tenant.users_by_upn
        for _ in range(count):
            counter += 1
            upn = f"{prefix}{counter:05d}@{domain}"
            while upn.lower() in by_upn:
                counter += 1
                upn = f"{prefix}{counter:05d}@{domain}"
            tenant.add_user(User(
                id=str(uuid.uuid5(NAMESPACE, f"{tid}/{upn.lower()}")),
                upn=upn,
                display_name=f"{prefix.title()} {counter:05d}",
                account_enabled=enabled,
                user_type=user_type,
                sku_ids=list(sku_ids),
                mail=upn,
                office_location=office,
                department=department,
                city=city,
                state=state,
                country=country,
                job_title=job,
                usage_location=usage,
                mailbox=mailbox,
                created=created,
                sign_in=sign_in,
            ))


def _sign_in(node: Node) -> dict[str, str | None] | None:
    """A user's ``signInActivity``: explicit timestamps, or every one of them ``lastSignInDaysAgo``
    days before now (``never``: no sign-in recorded); by default the user signed in a day ago."""
    if node.has("signInActivity"):
        sn = Node(node.raw["signInActivity"], node.at("signInActivity"), _SIGN_IN_KEYS)
        return {key: sn.timestamp(key, None) for key in sorted(_SIGN_IN_KEYS)}
    days: Any = node.raw.get("lastSignInDaysAgo", 1)
    if days == "never":
        return None
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise EmulatorError(f"{node.at('lastSignInDaysAgo')} must be a whole number of days (0 or more) or "
                            f"'never', got {days!r}")
    when = iso(datetime.now(UTC) - timedelta(days=days))
    return dict.fromkeys(sorted(_SIGN_IN_KEYS), when)


def _load_subscriptions(node: Node, tenant: Tenant, explicit: dict[str, tuple[int, str]]) -> None:
    by_sku: dict[str, list[Subscription]] = {}
    for raw, path in node.items("subscriptions"):
        sn = Node(raw, path, _SUB_KEYS)
        ref = sn.guid("skuId") if sn.has("skuId") else sn.text("skuPartNumber")
        sku = tenant.resolve_sku(ref)
        if sku is None:
            raise EmulatorError(f"{path}: no SKU {ref!r} in this tenant's skus")
        index = len(by_sku.get(sku.sku_id, []))
        sub = Subscription(
            id=sn.guid("id", None) or stable_id(tenant.tenant_id, "subscription", sku.sku_id, str(index)),
            sku_id=sku.sku_id,
            total=sn.number("totalLicenses"),
            status=sn.text("status", "Enabled", choices=SUBSCRIPTION_STATES),
            is_trial=sn.flag("isTrial", False),
            created=sn.timestamp("createdDateTime", iso(_EPOCH)) or iso(_EPOCH),
            next_lifecycle=sn.timestamp("nextLifecycleDateTime", None),
            commerce_id=sn.guid("commerceSubscriptionId", None)
            or stable_id(tenant.tenant_id, "commerce", sku.sku_id, str(index)),
        )
        by_sku.setdefault(sku.sku_id, []).append(sub)
        tenant.subscriptions.append(sub)
    for sku in tenant.skus.values():
        subs = by_sku.get(sku.sku_id)
        if not subs:
            tenant.subscriptions.append(Subscription(
                id=stable_id(tenant.tenant_id, "subscription", sku.sku_id, "0"),
                sku_id=sku.sku_id,
                total=sku.enabled,
                created=iso(_EPOCH),
                next_lifecycle=iso(_EPOCH + timedelta(days=365)),
                commerce_id=stable_id(tenant.tenant_id, "commerce", sku.sku_id, "0"),
            ))
            continue
        enabled = sum(s.total for s in subs if s.status == "Enabled")
        if sku.sku_id in explicit and explicit[sku.sku_id][0] != enabled:
            raise EmulatorError(
                f"{explicit[sku.sku_id][1]}: {explicit[sku.sku_id][0]} differs from the "
                f"{enabled} licences of this SKU's Enabled subscriptions (omit it to derive it)"
            )
        sku.enabled = enabled
        sku.warning = sum(s.total for s in subs if s.status == "Warning")
        sku.suspended = sum(s.total for s in subs if s.status == "Suspended")
        sku.locked_out = sum(s.total for s in subs if s.status == "LockedOut")


def _load_devices(node: Node, tenant: Tenant) -> None:
    def add(device: Device, path: str) -> None:
        if device.id in tenant.devices_by_id:
            raise EmulatorError(f"{path}: duplicate device id {device.id}")
        tenant.devices.append(device)
        tenant.devices_by_id[device.id] = device

    names: set[str] = set()
    for raw, path in node.items("devices"):
        dn = Node(raw, path, _DEVICE_KEYS)
        name = dn.text("displayName")
        if name.lower() in names:
            raise EmulatorError(f"{path}.displayName: duplicate device {name}")
        names.add(name.lower())
        owner = dn.text("userPrincipalName", None)
        if owner is not None and owner.lower() not in tenant.users_by_upn:
            raise EmulatorError(f"{path}.userPrincipalName: no user {owner} in this tenant")
        add(Device(
            id=dn.guid("id", None) or stable_id(tenant.tenant_id, "device", name),
            device_id=dn.guid("deviceId", None) or stable_id(tenant.tenant_id, "deviceId", name),
            display_name=name,
            operating_system=dn.text("operatingSystem", "Windows"),
            os_version=dn.text("osVersion", "10.0.22631.0"),
            account_enabled=dn.flag("accountEnabled", True),
            managed=dn.flag("managed", False),
            managed_id=stable_id(tenant.tenant_id, "managedDevice", name),
            user_upn=owner,
        ), path)
    counter = 0
    for raw, path in node.items("generatedDevices"):
        gn = Node(raw, path, _GEN_DEVICE_KEYS)
        count = gn.number("count")
        prefix = gn.text("prefix", "DESKTOP-", pattern=re.compile(r"^[A-Za-z0-9._-]+$"),
                        what="letters, digits, '.', '_' or '-'")
        osname = gn.text("operatingSystem", "Windows")
        version = gn.text("osVersion", "10.0.22631.0")
        managed = gn.flag("managed", True)
        enabled = gn.flag("accountEnabled", True)
        for _ in range(count):
            counter += 1
            name = f"{prefix}{counter:05d}"
            while name.lower() in names:
                counter += 1
                name = f"{prefix}{counter:05d}"
            names.add(name.lower())
            add(Device(
                id=stable_id(tenant.tenant_id, "device", name),
                device_id=stable_id(tenant.tenant_id, "deviceId", name),
                display_name=name, operating_system=osname, os_version=version,
                account_enabled=enabled, managed=managed,
                managed_id=stable_id(tenant.tenant_id, "managedDevice", name),
            ), path)


def _load_groups(node: Node, tenant: Tenant) -> None:
    pending: list[tuple[Group, list[tuple[Any, str]]]] = []
    by_name: dict[str, str] = {}
    device_by_name = {d.display_name.lower(): d.id for d in tenant.devices}
    for raw, path in node.items("groups"):
        gn = Node(raw, path, _GROUP_KEYS)
        name = gn.text("displayName")
        if name.lower() in by_name:
            raise EmulatorError(f"{path}.displayName: duplicate group {name}")
        group = Group(
            id=gn.guid("id", None) or stable_id(tenant.tenant_id, "group", name),
            display_name=name,
            security_enabled=gn.flag("securityEnabled", True),
            mail_enabled=gn.flag("mailEnabled", False),
        )
        if group.id in tenant.groups:
            raise EmulatorError(f"{path}.id: duplicate group id {group.id}")
        for ref, rpath in gn.items("users"):
            user = tenant.find_user(str(ref)) if isinstance(ref, str) else None
            if user is None:
                raise EmulatorError(f"{rpath}: no user {ref!r} (UPN or id) in this tenant")
            group.user_ids.append(user.id)
        for ref, rpath in gn.items("devices"):
            did = device_by_name.get(str(ref).lower()) if isinstance(ref, str) else None
            if did is None and isinstance(ref, str) and ref.lower() in tenant.devices_by_id:
                did = ref.lower()
            if did is None:
                raise EmulatorError(f"{rpath}: no device {ref!r} (display name or id) in this tenant")
            group.device_ids.append(did)
        tenant.groups[group.id] = group
        by_name[name.lower()] = group.id
        pending.append((group, gn.items("groups")))
    for group, refs in pending:
        for ref, rpath in refs:
            if not isinstance(ref, str):
                raise EmulatorError(f"{rpath} must be a group display name or id, got {ref!r}")
            gid = by_name.get(ref.lower()) or (ref.lower() if ref.lower() in tenant.groups else None)
            if gid is None:
                raise EmulatorError(f"{rpath}: no group {ref!r} (display name or id) in this tenant")
            if gid == group.id:
                raise EmulatorError(f"{rpath}: a group cannot be a member of itself")
            group.group_ids.append(gid)


def _load_mailboxes(node: Node, tenant: Tenant) -> None:
    seen = {u.upn.lower() for u in tenant.users if u.mailbox}
    for raw, path in node.items("mailboxes"):
        mn = Node(raw, path, _MAILBOX_KEYS)
        upn = mn.text("userPrincipalName", pattern=_UPN, what="a user principal name")
        deleted = mn.flag("isDeleted", False)
        if upn.lower() in seen and not deleted:
            raise EmulatorError(f"{path}.userPrincipalName: {upn} already has a mailbox")
        seen.add(upn.lower())
        tenant.extra_mailboxes.append(Mailbox(
            upn=upn,
            display_name=mn.text("displayName", upn.split("@", 1)[0]),
            recipient_type=mn.text("recipientType", "Shared", choices=RECIPIENT_TYPES),
            is_deleted=deleted,
            deleted_date=(mn.timestamp("deletedDate", iso(_EPOCH)) or "")[:10] if deleted else "",
        ))
