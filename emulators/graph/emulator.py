"""The Microsoft Graph and Entra ID token endpoint emulator.

One HTTPS server plays both ``login.microsoftonline.com`` (OpenID discovery and the v2.0 token
endpoint) and ``graph.microsoft.com`` (``/v1.0/...``). Point ``GraphSettings.authority_host`` and
``GraphSettings.endpoint`` at it and the product's real client, with real azure-identity
credentials, runs against it unchanged. Shapes follow Microsoft's documentation; see
docs/emulators.md for the endpoints, the scenario section and the faults.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import hmac
import io
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from emulators.base import BadRequest, Emulator, EmulatorError, Request, Response
from emulators.graph.identity import (
    GRAPH_RESOURCE,
    TokenInfo,
    TokenRegistry,
    aadsts_response,
    decide_token,
    openid_configuration,
)
from emulators.graph.scenario import (
    AUTH_MODES,
    GDAP_STATES,
    RECIPIENT_TYPES,
    Directory,
    Group,
    Node,
    Relationship,
    Tenant,
    User,
    iso,
    load_directory,
    load_users,
    resolve_licenses,
    stable_id,
)
from emulators.graph.throttle import ResourceUnitBudget, request_cost

_IDENTITY_PATH = re.compile(r"^/([^/]+)/(?:v2\.0/\.well-known|\.well-known|discovery|oauth2)/", re.I)
_DOWNLOAD_PATH = re.compile(r"^/_download/reports/([^/]+)$")
_MAX_BATCH = 20
_DOWNLOAD_SECONDS = 300
_QUERY_SAFE = ",()'/:@*$"
_REPORT_PERIODS = ("D7", "D30", "D90", "D180")

USER_PROPERTIES = frozenset(User("", "", "").json()) | {"signInActivity"}
SIGN_IN_PAGE = 120
USER_DEFAULT_PROPERTIES = ("businessPhones", "displayName", "givenName", "jobTitle", "mail",
                           "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                           "userPrincipalName", "id")
DEVICE_PROPERTIES = frozenset({"id", "deviceId", "displayName", "operatingSystem",
                               "operatingSystemVersion", "accountEnabled", "isManaged",
                               "isCompliant", "trustType", "approximateLastSignInDateTime"})
GROUP_PROPERTIES = frozenset(Group("", "").json())
MANAGED_DEVICE_PROPERTIES = frozenset({"id", "deviceName", "operatingSystem", "osVersion",
                                       "userPrincipalName", "azureADDeviceId", "complianceState",
                                       "managementAgent", "managedDeviceOwnerType",
                                       "enrolledDateTime", "lastSyncDateTime"})
REPORT_COLUMNS = ("Report Refresh Date", "User Principal Name", "Display Name", "Is Deleted",
                  "Deleted Date", "Created Date", "Last Activity Date", "Item Count",
                  "Storage Used (Byte)", "Issue Warning Quota (Byte)", "Prohibit Send Quota (Byte)",
                  "Prohibit Send/Receive Quota (Byte)", "Deleted Item Count",
                  "Deleted Item Size (Byte)", "Deleted Item Quota (Byte)", "Has Archive",
                  "Recipient Type", "Report Period")

# Application permissions that allow each resource (any one of them is enough).
P_GDAP = ("DelegatedAdminRelationship.Read.All", "DelegatedAdminRelationship.ReadWrite.All")
P_ORG = ("Organization.Read.All", "Directory.Read.All")
P_LICENCES = ("LicenseAssignment.Read.All", "LicenseAssignment.ReadWrite.All",
              "Organization.Read.All", "Directory.Read.All")
P_USERS = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All")
P_GROUPS = ("GroupMember.Read.All", "Group.Read.All", "Directory.Read.All")
P_DEVICES = ("Device.Read.All", "Directory.Read.All")
P_REPORTS = ("Reports.Read.All",)
P_INTUNE = ("DeviceManagementManagedDevices.Read.All",)
P_MAIL = ("Mail.Send",)


def graph_error(status: int, code: str, message: str, request: Request | None = None,
                headers: dict[str, str] | None = None) -> Response:
    """An error in Microsoft Graph's shape (``error.code``, ``error.message``, ``innerError``)."""
    request_id = str(uuid.uuid4())
    client_request_id = (request.header("client-request-id") if request else None) or request_id
    body = {"error": {"code": code, "message": message, "innerError": {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id,
    }}}
    out = {"request-id": request_id, "client-request-id": client_request_id}
    out.update(headers or {})
    return Response(status, body, out)


@dataclass(frozen=True)
class GraphContext:
    tenant: Tenant
    token: TokenInfo


GraphHandler = Callable[[Request, "re.Match[str]", GraphContext], Response]
_Route = tuple[str, "re.Pattern[str]", Callable[[Request, "re.Match[str]"], Response]]


@dataclass
class _Download:
    tenant_id: str
    content: bytes
    expires_at: float


@dataclass
class _TenantStats:
    tokens_issued: int = 0
    graph_requests: int = 0
    throttled: int = 0
    token_errors: dict[str, int] | None = None
    tokens_by_app: dict[str, int] = field(default_factory=dict)

    def error(self, code: str) -> None:
        if self.token_errors is None:
            self.token_errors = {}
        self.token_errors[code] = self.token_errors.get(code, 0) + 1


class GraphEmulator(Emulator):
    """Microsoft Graph (``/v1.0``) and the Entra ID token endpoint, from a ``graph:`` section."""

    service = "graph"

    def __init__(self, scenario_section: Any) -> None:
        self.tokens = TokenRegistry()
        self.budget = ResourceUnitBudget()
        self._graph_routes: list[_Route] = []
        self._downloads: dict[str, _Download] = {}
        self._page_key = secrets.token_bytes(16)
        self._current = threading.local()
        self.directory: Directory
        self.stats: dict[str, _TenantStats] = {}
        self.sent_mail: list[dict[str, Any]] = []
        super().__init__(scenario_section)

    # ------------------------------------------------------------------ Emulator contract
    def load(self, section: Any) -> None:
        self.directory = load_directory(section)
        self.stats = {t.tenant_id: _TenantStats() for t in self.directory.all_tenants()}
        self.sent_mail = []
        self.budget.clear()
        with self.lock:
            self._downloads.clear()

    def state(self) -> dict[str, Any]:
        d = self.directory
        tenants = []
        for tenant in d.all_tenants():
            stats = self.stats.get(tenant.tenant_id, _TenantStats())
            tenants.append({
                "tenantId": tenant.tenant_id,
                "displayName": tenant.display_name,
                "defaultDomain": tenant.default_domain,
                "partner": d.partner_of_tenant(tenant) is not None,
                "auth": tenant.auth,
                "gdap": tenant.gdap,
                "users": len(tenant.users),
                "licensedUsers": sum(1 for u in tenant.users if u.sku_ids),
                "skus": [{"skuId": s.sku_id, "skuPartNumber": s.part_number, "enabled": s.enabled,
                          "consumed": tenant.consumed.get(s.sku_id, 0)} for s in tenant.skus.values()],
                "subscriptions": len(tenant.subscriptions),
                "groups": len(tenant.groups),
                "devices": len(tenant.devices),
                "mailboxes": len(tenant.mailboxes()),
                "concealedReportNames": tenant.concealed_report_names,
                "tokensIssued": stats.tokens_issued,
                "tokensByApp": dict(stats.tokens_by_app),
                "tokenErrors": dict(stats.token_errors or {}),
                "graphRequests": stats.graph_requests,
                "throttled": stats.throttled,
            })
        return {
            "partner": {"tenantId": d.partner.tenant.tenant_id, "clientId": d.partner.client_id,
                        "displayName": d.partner.tenant.display_name},
            "partners": [{"tenantId": p.tenant.tenant_id, "clientId": p.client_id,
                          "displayName": p.tenant.display_name} for p in d.others],
            "tenants": tenants,
            "tokensIssued": {t["tenantId"]: t["tokensIssued"] for t in tenants if t["tokensIssued"]},
            "sentMail": list(self.sent_mail),
        }

    def tenant_of(self, request: Request) -> str | None:
        path = request.path
        if path.startswith("/v1.0/") or path.lower().startswith("/v1.0/"):
            info = self._token_info(request)
            return info.tenant_id if info else None
        match = _IDENTITY_PATH.match(path)
        if match:
            ref = unquote(match.group(1))
            tenant = self.directory.resolve(ref)
            return tenant.tenant_id if tenant else ref.lower()
        match = _DOWNLOAD_PATH.match(path)
        if match:
            with self.lock:
                download = self._downloads.get(match.group(1))
            return download.tenant_id if download else None
        return None

    def dispatch(self, request: Request) -> tuple[Response, float]:
        self._current.request = request
        try:
            return super().dispatch(request)
        finally:
            self._current.request = None

    def error_response(self, status: int, message: str, code: str = "Error") -> Response:
        request: Request | None = getattr(self._current, "request", None)
        if request is not None and _IDENTITY_PATH.match(request.path):
            body: dict[str, Any] = {"error": "temporarily_unavailable" if status in (429, 503) else "server_error",
                    "error_description": f"{message}", "error_codes": [],
                    "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
                    "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())}
            return Response(status, body)
        if status == 429:
            message = "Too many requests. Please retry after the time in the Retry-After header."
        return graph_error(status, code, message, request)

    def auth_failure(self, request: Request) -> Response:
        if _IDENTITY_PATH.match(request.path):
            partner = self.directory.partner
            if request.tenant:
                self._stats(request.tenant).error("AADSTS7000215")
            return aadsts_response(7000215, app_id=partner.client_id, app_name=partner.app_name)
        return graph_error(401, "InvalidAuthenticationToken",
                           "Access token has expired or is not yet valid.", request,
                           {"WWW-Authenticate": _www_authenticate()})

    # ------------------------------------------------------------------ routes
    def register_routes(self) -> None:
        tenant_seg = r"/(?P<tenant>[^/]+)"
        self.route("GET", tenant_seg + r"/v2\.0/\.well-known/openid-configuration", self._openid)
        self.route("GET", tenant_seg + r"/\.well-known/openid-configuration", self._openid)
        self.route("GET", tenant_seg + r"/discovery/v2\.0/keys", self._keys)
        self.route("POST", tenant_seg + r"/oauth2/v2\.0/token", self._token)
        self.route("GET", r"/_download/reports/(?P<token>[^/]+)", self._download)

        g = self._graph
        self._g("GET", r"/tenantRelationships/delegatedAdminCustomers",
                g(self._gdap_customers, P_GDAP))
        self._g("GET", r"/tenantRelationships/delegatedAdminCustomers/(?P<id>[^/]+)",
                g(self._gdap_customer, P_GDAP))
        self._g("GET", r"/tenantRelationships/delegatedAdminRelationships",
                g(self._gdap_relationships, P_GDAP))
        self._g("GET", r"/organization", g(self._organization, P_ORG, "organization"))
        self._g("GET", r"/subscribedSkus", g(self._subscribed_skus, P_LICENCES, "subscribedSkus"))
        self._g("GET", r"/subscribedSkus/(?P<id>[^/]+)", g(self._subscribed_sku, P_LICENCES,
                                                            "subscribedSkus"))
        self._g("GET", r"/directory/subscriptions",
                g(self._subscriptions, P_LICENCES, "directory/subscriptions"))
        self._g("GET", r"/users", g(self._users, P_USERS, "users"))
        self._g("GET", r"/users/\$count", g(self._users_count, P_USERS, "count"))
        self._g("GET", r"/users/(?P<key>[^/]+)", g(self._user, P_USERS, "user"))
        self._g("POST", r"/users/(?P<key>[^/]+)/sendMail", g(self._send_mail, P_MAIL))
        self._g("GET", r"/groups", g(self._groups, P_GROUPS, "groups"))
        self._g("GET", r"/groups/(?P<id>[^/]+)", g(self._group, P_GROUPS, "group"))
        self._g("GET", r"/groups/(?P<id>[^/]+)/(?P<rel>transitiveMembers|members)"
                       r"(?:/microsoft\.graph\.(?P<cast>user|device|group))?",
                g(self._group_members, P_GROUPS, "members"))
        self._g("GET", r"/devices", g(self._devices, P_DEVICES, "devices"))
        self._g("GET", r"/reports/getMailboxUsageDetail\(period=(?:'|%27)(?P<period>[^'%]*)(?:'|%27)\)",
                g(self._mailbox_report, P_REPORTS))
        self._g("GET", r"/deviceManagement/managedDevices", g(self._managed_devices, P_INTUNE))
        self.route("POST", r"/v1\.0/\$batch", self._batch)

    def _g(self, method: str, pattern: str, handler: Callable[[Request, re.Match[str]], Response]) -> None:
        self.route(method, r"/v1\.0" + pattern, handler)
        self._graph_routes.append((method, re.compile(f"^/v1\\.0{pattern}$", re.IGNORECASE), handler))

    def _graph(self, handler: GraphHandler, permissions: Sequence[str],
               budget: str | None = None) -> Callable[[Request, re.Match[str]], Response]:
        """Authenticate, authorise and budget a Graph request, then run ``handler``."""

        def run(request: Request, match: re.Match[str]) -> Response:
            token = _bearer(request)
            if token is None:
                return graph_error(401, "InvalidAuthenticationToken", "Access token is empty.",
                                   request, {"WWW-Authenticate": _www_authenticate()})
            info = self.tokens.lookup(token)
            if info is None:
                return graph_error(401, "InvalidAuthenticationToken",
                                   "IDX14100: JWT is not well formed, or was not issued by this "
                                   "service.", request, {"WWW-Authenticate": _www_authenticate()})
            if info.expires_at <= time.time():
                return graph_error(401, "InvalidAuthenticationToken",
                                   "Lifetime validation failed, the token is expired.", request,
                                   {"WWW-Authenticate": _www_authenticate()})
            with self.lock:
                tenant = self.directory.resolve(info.tenant_id)
                if tenant is None:
                    return graph_error(401, "InvalidAuthenticationToken",
                                       "Access token validation failure: unknown tenant.", request)
                stats = self._stats(tenant.tenant_id)
                stats.graph_requests += 1
                if not any(p in info.roles for p in permissions):
                    return graph_error(403, "Authorization_RequestDenied",
                                       "Insufficient privileges to complete the operation.", request)
                if budget is not None and tenant.throttle_units:
                    top = _int_or_none(request.arg("$top"))
                    cost = request_cost(budget, request.arg("$select") is not None, top)
                    wait = self.budget.charge(tenant.tenant_id, tenant.throttle_units, cost)
                    if wait is not None:
                        stats.throttled += 1
                        return graph_error(
                            429, "TooManyRequests",
                            "Too many requests. Please retry after the time in the Retry-After "
                            "header.", request, {"Retry-After": str(wait)})
                return handler(request, match, GraphContext(tenant, info))

        return run

    def _stats(self, tenant_id: str) -> _TenantStats:
        stats = self.stats.get(tenant_id)
        if stats is None:
            stats = self.stats[tenant_id] = _TenantStats()
        return stats

    def _token_info(self, request: Request) -> TokenInfo | None:
        token = _bearer(request)
        return self.tokens.lookup(token) if token else None

    # ------------------------------------------------------------------ identity
    def _base(self, request: Request) -> str:
        host = request.header("host")
        return f"https://{host}" if host else self.base_url

    def _openid(self, request: Request, match: re.Match[str]) -> Response:
        ref = unquote(match.group("tenant"))
        tenant = self.directory.resolve(ref)
        if tenant is None or tenant.auth == "unknown-tenant":
            self._stats(tenant.tenant_id if tenant else ref.lower()).error("AADSTS90002")
            return aadsts_response(90002, tenant=ref)
        return Response(200, openid_configuration(self._base(request), tenant.tenant_id))

    def _keys(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, {"keys": []})

    def _token(self, request: Request, match: re.Match[str]) -> Response:
        ref = unquote(match.group("tenant"))
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        base = self._base(request)
        resources = {GRAPH_RESOURCE, base.lower(), self.base_url.lower()}
        with self.lock:
            tenant = self.directory.resolve(ref)
            endpoint = f"{base}/{tenant.tenant_id if tenant else ref}/oauth2/v2.0/token"
            decision = decide_token(self.directory, ref, form, endpoint, resources)
            stats_key = tenant.tenant_id if tenant else ref.lower()
            if decision.error is not None:
                codes = decision.error.body.get("error_codes") if isinstance(decision.error.body, dict) else None
                self._stats(stats_key).error(f"AADSTS{codes[0]}" if codes else "error")
                return decision.error
            assert decision.tenant is not None
            lifetime = self.directory.token_lifetime
            token, _ = self.tokens.issue(decision.tenant, decision.client_id, decision.roles, lifetime, base)
            stats = self._stats(decision.tenant.tenant_id)
            stats.tokens_issued += 1
            stats.tokens_by_app[decision.client_id] = stats.tokens_by_app.get(decision.client_id, 0) + 1
        return Response(200, {"token_type": "Bearer", "expires_in": lifetime,
                              "ext_expires_in": lifetime, "access_token": token},
                        {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    # ------------------------------------------------------------------ GDAP
    def _gdap_customers(self, request: Request, match: re.Match[str], ctx: GraphContext) -> Response:
        customers = self._customers(ctx)
        return self._page(request, ctx, "delegatedAdminCustomers", customers, default_top=100,
                          max_top=300, context="tenantRelationships/delegatedAdminCustomers",
                          render=_gdap_customer_json)

    def _gdap_customer(self, request: Request, match: re.Match[str], ctx: GraphContext) -> Response:
        wanted = match.group("id").lower()
        for tenant in self._customers(ctx):
            if tenant.tenant_id == wanted:
                return Response(200, _gdap_customer_json(tenant))
        return graph_error(404, "NotFound", f"Customer '{wanted}' was not found.", request)

    def _customers(self, ctx: GraphContext) -> list[Tenant]:
        """The customers of the partner tenant the token is for (none for a customer's token)."""
        d = self.directory
        if d.partner_of_tenant(ctx.tenant) is None:
            return []
        return d.customers_of(ctx.tenant)

    def _gdap_relationships(self, request: Request, match: re.Match[str], ctx: GraphContext) -> Response:
        d = self.directory
        mine: list[tuple[Tenant, Relationship]] = []
        if d.partner_of_tenant(ctx.tenant) is not None:
            for tid in d.order:
                tenant = d.tenants[tid]
                mine += [(tenant, r) for r in d.relationships(tenant)
                         if r.partner_tenant_id == ctx.tenant.tenant_id]

        def render(pair: tuple[Tenant, Relationship]) -> dict[str, Any]:
            tenant, relationship = pair
            seed = f"{tenant.tenant_id}/{relationship.partner_tenant_id}/{relationship.display_name}"
            rid = f"{stable_id(seed, 'gdap')}-{stable_id(seed, 'gdap2')}"
            end = datetime.fromisoformat(relationship.end.replace("Z", "+00:00"))
            start = end - timedelta(days=730)
            return {
                "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
                "@odata.etag": f'W/"{_etag(rid)}"',
                "id": rid,
                "displayName": relationship.display_name,
                "duration": "P730D",
                "status": relationship.status,
                "autoExtendDuration": relationship.auto_extend,
                "createdDateTime": iso(start - timedelta(days=1)),
                "lastModifiedDateTime": iso(start),
                "activatedDateTime": iso(start),
                "endDateTime": relationship.end,
                "customer": {"tenantId": tenant.tenant_id, "displayName": tenant.display_name},
                "accessDetails": {"unifiedRoles": [{"roleDefinitionId": r} for r in relationship.roles]},
            }

        return self._page(request, ctx, "delegatedAdminRelationships", mine, default_top=300,
                          max_top=300, context="tenantRelationships/delegatedAdminRelationships",
                          render=render)

    # ------------------------------------------------------------------ organisation, licences
    def _organization(self, request: Request, match: re.Match[str], ctx: GraphContext) -> Response:
        t = ctx.tenant
        domains = [{
            "capabilities": "Email, OfficeCommunicationsOnline",
            "isDefault": name == t.default_domain,
            "isInitial": name == t.initial_domain,
            "name": name,
            "type": "Managed",
        } for name in t.all_domains]
        org = {
            "id": t.tenant_id, "deletedDateTime": None, "businessPhones": [], "city": None,
            "country": None, "countryLetterCode": t.country, "createdDateTime": iso(_created()),
            "displayName": t.display_name, "marketingNotificationEmails": [],
            "onPremisesSyncEnabled": None, "postalCode": None, "preferredLanguage": "en",
            "privacyProfile": None, "state": None, "street": None,
            "technicalNotificationMails": [], "tenantType": "AAD", "verifiedDomains": domains,
            "assignedPlans": [], "provisionedPlans": [],
        }
        return Response(200, {"@odata.context": f"{self._base(request)}/v1.0/$metadata#organization",
                              "value": [_project(org, request)]})

    def _sku_json(self, tenant: Tenant, sku_id: str) -> dict[str, Any]:
        sku = tenant.skus[sku_id]
        return {
            "accountName": tenant.display_name,
            "accountId": tenant.tenant_id,
            "appliesTo": sku.applies_to,
            "capabilityStatus": sku.capability_status,
            "consumedUnits": tenant.consumed.get(sku_id, 0),
            "id": f"{tenant.tenant_id}_{sku_id}",
            "skuId": sku_id,
            "skuPartNumber": sku.part_number,
            "subscriptionIds": [s.commerce_id for s in tenant.subscriptions if s.sku_id == sku_id],
            "prepaidUnits": {"enabled": sku.enabled, "suspended": sku.suspended,
                             "warning": sku.warning, "lockedOut": sku.locked_out},
            "servicePlans": [],
        }

    def _subscribed_skus(self, request: Request, match: re.Match[str], ctx: GraphContext) -> Response:
        t = ctx.tenant
        items = [self._sku_json(t, sid) for sid in t.skus]
        return Response(200, {"@odata.context": f"{self._base(request)}/v1.0/$metadata#subscribedSkus",
                              "value": [_project(i, request) for i in items]})

    def _subscribed_sku(self, request: Request, match: re.Match[str], ctx: GraphContext) -> Response:
        key = match.group("id").lower()
        sku_id = key.split("_", 1)[1] if "_" in key else key
        if sku_id not in ctx.tenant.skus:
            return graph_error(404, "Request_ResourceNotFound",
                               f"Resource '{key}' does not exist or one of its queried "
                               "reference-property objects are not present.", request)
        return Response(200, _project(self._sku_json(ctx.tenant, sku_id), request))

    def _subscriptions(self, request: Request, match: re.Match[str], ctx: GraphContext) -> Response:
        t = ctx.tenant
        partner = self.directory.partner.tenant.tenant_id  # the partner that sold the subscriptions

        def render(sub: Any) -> dict[str, Any]:
            return {
                "id": sub.id, "commerceSubscriptionId": sub.commerce_id,
                "createdDateTime": sub.created, "isTrial": sub.is_trial,
                "nextLifecycleDateTime": sub.next_lifecycle, "ownerId": partner,
                "ownerTenantId": partner, "ownerType": "Company", "serviceStatus": [],
                "skuId": sub.sku_id, "skuPartNumber": t.skus[sub.sku_id].part_number,
                "status": sub.status, "totalLicenses": sub.total,
            }

        return self._page(request, ctx, "subscriptions", t.subscriptions, default_top=100,
                          max_top=999, context="directory/subscriptions", render=render)

    # ------------------------------------------------------------------ users
    def _users(self, request: Request, match: re.Match[str], ctx: GraphContext) -> Response:
        _reject_unsupported(request, ("$filter", "$search", "$orderby", "$expand"))
        select = _select(request, USER_PROPERTIES, "microsoft.graph.user")
        users = ctx.tenant.users
        refused = self._sign_in_refusal(request, ctx, select)
        if refused is not None:
            return refused
        sign_ins = select is not None and "signInActivity" in select

        def render(user: User) -> dict[str, Any]:
            full = user.json()
            if select is None:
                return {k: full[k] for k in USER_DEFAULT_PROPERTIES}
            picked = {k: full[k] for k in select if k in full}
            if sign_ins:
                picked["signInActivity"] = user.sign_in_json()
            return picked

        return self._page(request, ctx, "users", users, default_top=100, max_top=999,
                          context="users", render=render, countable=True,
                          page_cap=SIGN_IN_PAGE if sign_ins else None)

    def _sign_in_refusal(self, request: Request, ctx: GraphContext, select: list[str] | None) -> Response | None:
        """``signInActivity`` needs AuditLog.Read.All in the token and Microsoft Entra ID P1 or P2
        in the tenant; Graph answers 403 otherwise (two different error codes)."""
        if select is None or "signInActivity" not in select:
            return None
        if "AuditLog.Read.All" not in ctx.token.roles:
            return graph_error(403, "Authorization_RequestDenied",
                               "Insufficient privileges to complete the operation.", request)
        if not ctx.tenant.entra_premium:
            return graph_error(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                               "Neither tenant is B2C or tenant doesn't have premium license", request)
        return None

    def _users_count(self, request: Request, match: re.Match[str], ctx: GraphContext) -> Response:
        if (request.header("consistencylevel") or "").lower() != "eventual":
            return graph_error(400, "Request_BadRequest",
                               "$count is not currently supported without the ConsistencyLevel: "
                               "eventual header.", request)
        return Response(200, str(len(ctx.tenant.users)), content_type="text/plain")

    def _user(self, request: Request, match: re.Match[str], ctx: GraphContext) -> Response:
        key = unquote(match.group("key"))
        user = ctx.tenant.find_user(key)
        if user is None:
            return graph_error(404, "Request_ResourceNotFound",
                               f"Resource '{key}' does not exist or one of its queried "
                               "reference-property objects are not present.", request)
        select = _select(request, USER_PROPERTIES, "microsoft.graph.user")
        refused = self._sign_in_refusal(request, ctx, select)
        if refused is not None:
            return refused
        full = user.json()
        body = ({k: full[k] for k in USER_DEFAULT_PROPERTIES} if select is None
                else {k: full[k] for k in select if k in full})
        if select is not None and "signInActivity" in select:
            body["signInActivity"] = user.sign_in_json()
        body["@odata.context"] = f"{self._base(request)}/v1.0/$metadata#users/$entity"
        return Response(200, body)

    # ------------------------------------------------------------------ groups, devices
    def _groups(self, request: Request, match: re.Match[str], ctx: GraphContext) -> Response:
        _reject_unsupported(request, ("$filter", "$search", "$orderby", "$expand"))
        select = _select(request, GROUP_PROPERTIES, "microsoft.graph.group")
        groups = list(ctx.tenant.groups.values())
        return self._page(request, ctx, "groups", groups, default_top=100, max_top=999,
                          context="groups", render=lambda g: _pick(g.json(), select))

    def _group(self, request: Request, match: re.Match[str], ctx: GraphContext) -> Response:
        group = ctx.tenant.groups.get(match.group("id").lower())
        if group is None:
            return _group_missing(request, match.group("id"))
        select = _select(request, GROUP_PROPERTIES, "microsoft.graph.group")
        return Response(200, _pick(group.json(), select))

    def _group_members(self, request: Request, match: re.Match[str], ctx: GraphContext) -> Response:
        _reject_unsupported(request, ("$filter", "$search", "$orderby", "$expand"))
        tenant = ctx.tenant
        group = tenant.groups.get(match.group("id").lower())
        if group is None:
            return _group_missing(request, match.group("id"))
        cast = match.group("cast")
        if match.group("rel").lower() == "transitivemembers":
            user_ids, device_ids, group_ids = tenant.transitive(group)
        else:
            user_ids, device_ids, group_ids = group.user_ids, group.device_ids, group.group_ids
        allowed = {"user": USER_PROPERTIES, "device": DEVICE_PROPERTIES,
                   "group": GROUP_PROPERTIES}.get(cast or "", USER_PROPERTIES | DEVICE_PROPERTIES
                                                  | GROUP_PROPERTIES)
        select = _select(request, allowed, f"microsoft.graph.{cast or 'directoryObject'}")
        members: list[tuple[str, str]] = []
        if cast in (None, "user"):
            members += [("user", i) for i in user_ids]
        if cast in (None, "device"):
            members += [("device", i) for i in device_ids]
        if cast in (None, "group"):
            members += [("group", i) for i in group_ids]

        def render(member: tuple[str, str]) -> dict[str, Any]:
            kind, oid = member
            if kind == "user":
                full = tenant.users_by_id[oid].json()
                default: Sequence[str] = USER_DEFAULT_PROPERTIES
            elif kind == "device":
                full = tenant.devices_by_id[oid].json()
                default = tuple(DEVICE_PROPERTIES)
            else:
                full = tenant.groups[oid].json()
                default = tuple(GROUP_PROPERTIES)
            keys = select if select is not None else default
            item = {k: full[k] for k in keys if k in full}
            if cast is None:
                return {"@odata.type": f"#microsoft.graph.{kind}", **item}
            return item

        context = f"{'directoryObjects' if cast is None else cast + 's'}"
        return self._page(request, ctx, f"members:{group.id}:{cast}", members, default_top=100,
                          max_top=999, context=context, render=render)

    def _devices(self, request: Request, match: re.Match[str], ctx: GraphContext) -> Response:
        _reject_unsupported(request, ("$filter", "$search", "$orderby", "$expand"))
        select = _select(request, DEVICE_PROPERTIES, "microsoft.graph.device")
        return self._page(request, ctx, "devices", ctx.tenant.devices, default_top=100,
                          max_top=999, context="devices", render=lambda d: _pick(d.json(), select))

    def _managed_devices(self, request: Request, match: re.Match[str], ctx: GraphContext) -> Response:
        select = _select(request, MANAGED_DEVICE_PROPERTIES, "microsoft.graph.managedDevice")
        devices = [d for d in ctx.tenant.devices if d.managed]
        return self._page(request, ctx, "managedDevices", devices, default_top=1000, max_top=1000,
                          context="deviceManagement/managedDevices",
                          render=lambda d: _pick(d.managed_json(), select))

    # ------------------------------------------------------------------ reports
    def _mailbox_report(self, request: Request, match: re.Match[str], ctx: GraphContext) -> Response:
        period = match.group("period")
        if period not in _REPORT_PERIODS:
            return graph_error(400, "BadRequest",
                               f"Invalid value '{period}' for the period parameter; use one of "
                               f"{', '.join(_REPORT_PERIODS)}.", request)
        fmt = request.arg("$format")
        if fmt is not None and fmt.lower() != "text/csv":
            return graph_error(400, "BadRequest", f"The $format '{fmt}' is not supported in v1.0.",
                               request)
        content = _mailbox_csv(ctx.tenant, int(period[1:]))
        token = secrets.token_urlsafe(24)
        now = time.time()
        with self.lock:
            for key in [k for k, v in self._downloads.items() if v.expires_at < now]:
                del self._downloads[key]
            self._downloads[token] = _Download(ctx.tenant.tenant_id, content, now + _DOWNLOAD_SECONDS)
        location = f"{self._base(request)}/_download/reports/{token}"
        return Response(302, "", {"Location": location}, content_type="text/plain")

    def _download(self, request: Request, match: re.Match[str]) -> Response:
        with self.lock:
            download = self._downloads.get(match.group("token"))
        if download is None or download.expires_at < time.time():
            return Response(404, "The report download link is unknown or has expired.",
                            content_type="text/plain")
        return Response(200, download.content, content_type="application/octet-stream")

    # ------------------------------------------------------------------ mail
    def _send_mail(self, request: Request, match: re.Match[str], ctx: GraphContext) -> Response:
        key = unquote(match.group("key"))
        sender = ctx.tenant.find_user(key)
        if sender is None:
            return graph_error(404, "ErrorInvalidUser", f"The requested user '{key}' is invalid.",
                               request)
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type == "text/plain":
            record = _mime_mail(request)
        elif content_type == "application/json":
            record = _json_mail(request)
        else:
            return graph_error(415, "UnsupportedMediaType",
                               "Use Content-Type application/json (JSON) or text/plain (MIME).",
                               request)
        if isinstance(record, Response):
            return record
        record.update({"tenantId": ctx.tenant.tenant_id, "sender": sender.upn,
                       "at": datetime.now(UTC).isoformat()})
        record["from"] = record["from"] or sender.mail or sender.upn
        self.sent_mail.append(record)
        return Response(202, None)

    # ------------------------------------------------------------------ $batch
    def _batch(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
            return graph_error(400, "BadRequest", "Invalid batch payload format.", request)
        items = body["requests"]
        if not items:
            return graph_error(400, "BadRequest", "Invalid batch payload format: no requests.",
                               request)
        if len(items) > _MAX_BATCH:
            return graph_error(400, "BadRequest",
                               f"Number of requests inside batch exceeds the limit of {_MAX_BATCH}.",
                               request)
        ids: set[str] = set()
        for item in items:
            if not isinstance(item, dict):
                return graph_error(400, "BadRequest", "Invalid batch payload format.", request)
            rid, method, url = item.get("id"), item.get("method"), item.get("url")
            if not isinstance(rid, str) or not rid or rid in ids:
                return graph_error(400, "BadRequest",
                                   f"Each request needs a unique string id; got {rid!r}.", request)
            ids.add(rid)
            if not isinstance(method, str) or not isinstance(url, str) or not url:
                return graph_error(400, "BadRequest",
                                   f"Request {rid} needs a method and a url.", request)
            if re.match(r"^[a-z]+://", url, re.I):
                return graph_error(400, "BadRequest",
                                   f"Request {rid}: the url must be relative, e.g. /users.", request)
            if "$batch" in url:
                return graph_error(400, "BadRequest", "Nested batch requests are not supported.",
                                   request)
        responses = [self._sub_request(request, item) for item in items]
        return Response(200, {"responses": responses})

    def _sub_request(self, outer: Request, item: dict[str, Any]) -> dict[str, Any]:
        split = urlsplit(item["url"])
        path = "/v1.0/" + split.path.lstrip("/")
        headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        for name in ("authorization", "host", "client-request-id"):
            if name in outer.headers and name not in headers:
                headers[name] = outer.headers[name]
        body = item.get("body")
        raw = b""
        if body is not None:
            raw = body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8")
        sub = Request(method=str(item["method"]).upper(), path=path,
                      query=parse_qs(split.query, keep_blank_values=True), headers=headers, body=raw)
        sub.tenant = self.tenant_of(sub)
        fault = self.faults.take(sub, ["throttle", "error"])
        if fault is not None and fault.kind == "throttle":
            response = graph_error(429, "TooManyRequests", "Too many requests. Please retry after "
                                   "the time in the Retry-After header.", sub,
                                   {"Retry-After": _seconds(fault.retry_after)})
        elif fault is not None:
            response = graph_error(fault.status, "ServiceUnavailable" if fault.status == 503
                                   else "InternalServerError", "Injected service error", sub)
        else:
            response = self.corrupt(sub, self._route_graph(sub))
        out: dict[str, Any] = {"id": item["id"], "status": response.status}
        out_headers = dict(response.headers)
        if response.body is not None and response.body != "":
            out_headers.setdefault("Content-Type", response.content_type)
            out["body"] = (response.body if not isinstance(response.body, bytes)
                           else base64.b64encode(response.body).decode("ascii"))
        out["headers"] = out_headers
        return out

    def _route_graph(self, request: Request) -> Response:
        allowed = False
        for method, pattern, handler in self._graph_routes:
            found = pattern.match(request.path)
            if not found:
                continue
            if method != request.method:
                allowed = True
                continue
            try:
                return handler(request, found)
            except BadRequest as exc:
                return graph_error(exc.status, exc.code, str(exc), request)
        if allowed:
            return graph_error(405, "MethodNotAllowed", f"{request.method} is not allowed here.",
                               request)
        return graph_error(400, "BadRequest",
                           f"Resource not found for the segment '{request.path.rsplit('/', 1)[-1]}'.",
                           request)

    # ------------------------------------------------------------------ paging
    def _page(self, request: Request, ctx: GraphContext, resource: str, items: Sequence[Any], *,
              default_top: int, max_top: int, context: str, render: Callable[[Any], dict[str, Any]],
              countable: bool = False, page_cap: int | None = None) -> Response:
        """One page of ``items``; ``page_cap``: the most a page holds whatever ``$top`` asks (Graph
        serves users with signInActivity 120 at a time)."""
        top = default_top
        raw_top = request.arg("$top")
        if raw_top is not None:
            parsed = _int_or_none(raw_top)
            if parsed is None or parsed < 1 or parsed > max_top:
                return graph_error(400, "Request_BadRequest",
                                   f"Invalid page size specified: '{raw_top}'. Must be between 1 "
                                   f"and {max_top} inclusive.", request)
            top = parsed
        if page_cap is not None:
            top = min(top, page_cap)
        scope = f"{ctx.tenant.tenant_id}:{resource}"
        offset = 0
        skiptoken = request.arg("$skiptoken")
        if skiptoken is not None:
            decoded = self._decode_skiptoken(skiptoken, scope)
            if decoded is None:
                return graph_error(400, "Request_BadRequest",
                                   "The specified page token value is not valid for this request.",
                                   request)
            offset, expired = decoded
            if expired:
                return graph_error(400, "Directory_ExpiredPageToken",
                                   "The specified page token value has expired and can no longer "
                                   "be included in your request.", request)
        count_wanted = (request.arg("$count") or "").lower() == "true"
        if count_wanted and not countable:
            return graph_error(400, "Request_BadRequest", "$count is not supported on this resource.",
                               request)
        if count_wanted and (request.header("consistencylevel") or "").lower() != "eventual":
            return graph_error(400, "Request_BadRequest",
                               "$count is not currently supported without the ConsistencyLevel: "
                               "eventual header.", request)
        chunk = items[offset: offset + top]
        body: dict[str, Any] = {"@odata.context": f"{self._base(request)}/v1.0/$metadata#{context}"}
        if count_wanted:
            body["@odata.count"] = len(items)
        if offset + top < len(items):
            broken = self.broken_page(request)
            token = self._encode_skiptoken(scope, offset + top, expired=broken)
            body["@odata.nextLink"] = _next_link(self._base(request), request, token)
        body["value"] = [render(item) for item in chunk]
        return Response(200, body)

    def _encode_skiptoken(self, scope: str, offset: int, expired: bool) -> str:
        payload = f"{scope}|{offset}|{'x' if expired else 'v'}"
        sig = hmac.new(self._page_key, payload.encode(), hashlib.sha256).hexdigest()[:16]
        return base64.urlsafe_b64encode(f"{payload}|{sig}".encode()).decode().rstrip("=")

    def _decode_skiptoken(self, token: str, scope: str) -> tuple[int, bool] | None:
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            payload, sig = text.rsplit("|", 1)
            token_scope, offset, flag = payload.rsplit("|", 2)
        except (ValueError, UnicodeDecodeError, binascii.Error):
            return None
        expected = hmac.new(self._page_key, payload.encode(), hashlib.sha256).hexdigest()[:16]
        if not hmac.compare_digest(sig, expected) or token_scope != scope or not offset.isdigit():
            return None
        return int(offset), flag == "x"

    # ------------------------------------------------------------------ admin API (/_admin/graph)
    def _admin(self, request: Request) -> Response:
        if not request.path.startswith("/_admin/graph/"):
            return super()._admin(request)
        parts = [unquote(p) for p in request.path[len("/_admin/graph/"):].split("/") if p]
        try:
            with self.lock:
                if parts == ["mail"] and request.method == "GET":
                    return Response(200, {"sentMail": list(self.sent_mail)})
                if parts == ["tokens", "revoke"] and request.method == "POST":
                    body = request.json() or {}
                    return Response(200, {"revoked": self.revoke_tokens(body.get("tenantId"))})
                if len(parts) == 2 and parts[0] == "tenants" and request.method == "PATCH":
                    self.update_tenant(parts[1], request.json())
                    return Response(204)
                if len(parts) == 3 and parts[0] == "tenants" and parts[2] == "users" \
                        and request.method == "POST":
                    return Response(201, {"id": self.add_user(parts[1], request.json())})
                if len(parts) == 4 and parts[0] == "tenants" and parts[2] == "users":
                    if request.method == "DELETE":
                        self.remove_user(parts[1], parts[3])
                        return Response(204)
                    if request.method == "PATCH":
                        self.update_user(parts[1], parts[3], request.json())
                        return Response(204)
        except (EmulatorError, BadRequest) as exc:
            return Response(400, {"error": str(exc)})
        return Response(404, {"error": f"no admin resource {request.method} {request.path}"})

    def _tenant(self, tenant_id: str) -> Tenant:
        tenant = self.directory.resolve(tenant_id)
        if tenant is None:
            raise EmulatorError(f"no tenant {tenant_id}")
        return tenant

    def add_user(self, tenant_id: str, raw: Any) -> str:
        """Add a user (scenario format) to a tenant; returns its id."""
        with self.lock:
            tenant = self._tenant(tenant_id)
            before = len(tenant.users)
            load_users(Node({"users": [raw]}, f"tenants[{tenant.tenant_id}]", {"users"}), tenant)
            return tenant.users[before].id

    def remove_user(self, tenant_id: str, key: str) -> None:
        with self.lock:
            self._tenant(tenant_id).remove_user(key)

    def update_user(self, tenant_id: str, key: str, raw: Any) -> None:
        """Change a user's licences, ``accountEnabled``, ``mailbox`` or profile fields."""
        with self.lock:
            tenant = self._tenant(tenant_id)
            user = tenant.find_user(key)
            if user is None:
                raise EmulatorError(f"no user {key} in tenant {tenant.tenant_id}")
            node = Node(raw, f"users[{key}]", {"licenses", "accountEnabled", "mailbox", "department",
                                                "officeLocation", "city", "state", "country",
                                                "displayName", "userType"})
            if node.has("licenses"):
                tenant.set_licenses(user, resolve_licenses(tenant, node.items("licenses")))
            user.account_enabled = node.flag("accountEnabled", user.account_enabled)
            if "mailbox" in node.raw:
                user.mailbox = node.text("mailbox", None, choices=RECIPIENT_TYPES)
            user.user_type = node.text("userType", user.user_type, choices=("Member", "Guest"))
            user.display_name = node.text("displayName", user.display_name)
            for key_name, attr in (("department", "department"), ("officeLocation", "office_location"),
                                   ("city", "city"), ("state", "state"), ("country", "country")):
                if key_name in node.raw:
                    setattr(user, attr, node.text(key_name, None))

    def update_tenant(self, tenant_id: str, raw: Any) -> None:
        """Change a tenant's ``auth``, ``gdap``, ``concealedReportNames``, ``throttle`` or SKU
        counts (``skus: [{skuPartNumber|skuId, enabled, suspended, warning, lockedOut}]``)."""
        with self.lock:
            tenant = self._tenant(tenant_id)
            node = Node(raw, f"tenants[{tenant.tenant_id}]",
                        {"auth", "gdap", "concealedReportNames", "throttle", "skus", "displayName"})
            tenant.auth = node.text("auth", tenant.auth, choices=tuple(AUTH_MODES))
            gdap = node.raw.get("gdap")
            if isinstance(gdap, bool):
                tenant.gdap = "active" if gdap else "none"
            elif gdap is not None:
                tenant.gdap = node.text("gdap", choices=GDAP_STATES)
            tenant.concealed_report_names = node.flag("concealedReportNames",
                                                      tenant.concealed_report_names)
            tenant.display_name = node.text("displayName", tenant.display_name)
            if node.has("throttle"):
                tnode = Node(node.raw["throttle"], node.at("throttle"), {"unitsPer10s"})
                tenant.throttle_units = tnode.number("unitsPer10s", None, minimum=1)
            for item, path in node.items("skus"):
                sn = Node(item, path, {"skuId", "skuPartNumber", "enabled", "suspended", "warning",
                                       "lockedOut", "capabilityStatus"})
                ref = sn.text("skuId", None) or sn.text("skuPartNumber")
                sku = tenant.resolve_sku(ref)
                if sku is None:
                    raise EmulatorError(f"{path}: no SKU {ref!r} in tenant {tenant.tenant_id}")
                sku.enabled = sn.number("enabled", sku.enabled)
                sku.suspended = sn.number("suspended", sku.suspended)
                sku.warning = sn.number("warning", sku.warning)
                sku.locked_out = sn.number("lockedOut", sku.locked_out)
                sku.capability_status = sn.text("capabilityStatus", sku.capability_status)
                subs = [s for s in tenant.subscriptions if s.sku_id == sku.sku_id and s.status == "Enabled"]
                if len(subs) == 1:
                    subs[0].total = sku.enabled

    def revoke_tokens(self, tenant_id: str | None = None) -> int:
        """Forget issued tokens (of one tenant or all): Graph answers 401 to them."""
        return self.tokens.revoke(tenant_id.lower() if tenant_id else None)


# ---------------------------------------------------------------------------- helpers


def _bearer(request: Request) -> str | None:
    value = request.header("authorization")
    if not value or not value.lower().startswith("bearer "):
        return None
    token = value[7:].strip()
    return token or None


def _www_authenticate() -> str:
    return ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
            'authorize", client_id="00000003-0000-0000-c000-000000000000"')


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _etag(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:20]


def _created() -> datetime:
    return datetime(2020, 1, 1, tzinfo=UTC)


def _gdap_customer_json(tenant: Tenant) -> dict[str, Any]:
    return {"@odata.etag": f'W/"{_etag(tenant.tenant_id + tenant.display_name)}"',
            "id": tenant.tenant_id, "tenantId": tenant.tenant_id,
            "displayName": tenant.display_name}


def _group_missing(request: Request, gid: str) -> Response:
    return graph_error(404, "Request_ResourceNotFound",
                       f"Resource '{gid}' does not exist or one of its queried reference-property "
                       "objects are not present.", request)


def _reject_unsupported(request: Request, options: Sequence[str]) -> None:
    for option in options:
        if request.arg(option) is not None:
            raise BadRequest(f"The emulator does not support {option} on this resource.",
                             code="Request_UnsupportedQuery")


def _select(request: Request, allowed: frozenset[str], type_name: str) -> list[str] | None:
    raw = request.arg("$select")
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if not names:
        raise BadRequest("$select must name at least one property.", code="Request_BadRequest")
    for name in names:
        if name not in allowed:
            raise BadRequest(f"Could not find a property named '{name}' on type '{type_name}'.",
                             code="Request_BadRequest")
    return names


def _pick(full: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if select is None:
        return full
    return {k: full[k] for k in select if k in full}


def _project(item: dict[str, Any], request: Request) -> dict[str, Any]:
    raw = request.arg("$select")
    if raw is None:
        return item
    names = [n.strip() for n in raw.split(",") if n.strip()]
    for name in names:
        if name not in item:
            raise BadRequest(f"Could not find a property named '{name}' on this type.",
                             code="Request_BadRequest")
    return {k: item[k] for k in names}


def _next_link(base: str, request: Request, token: str) -> str:
    parts = []
    for key, values in request.query.items():
        if key.lower() == "$skiptoken":
            continue
        for value in values:
            parts.append(f"{key}={quote(value, safe=_QUERY_SAFE)}")
    parts.append(f"$skiptoken={token}")
    return f"{base}{request.path}?{'&'.join(parts)}"


def _concealed(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest().upper()


def _mailbox_csv(tenant: Tenant, days: int) -> bytes:
    refresh = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(REPORT_COLUMNS)
    conceal = tenant.concealed_report_names
    for box in tenant.mailboxes():
        upn = _concealed(box.upn.lower()) if conceal else box.upn
        name = _concealed(box.display_name) if conceal else box.display_name
        used = 1_048_576 * (len(box.upn) % 50 + 1)
        writer.writerow([
            refresh, upn, name, "True" if box.is_deleted else "False", box.deleted_date,
            "2022-05-01", "" if box.is_deleted else refresh, 100 + len(box.upn), used,
            105_226_698_752, 106_300_440_576, 107_374_182_400, 3, 4096, 32_212_254_720, "False",
            box.recipient_type, days,
        ])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _mime_mail(request: Request) -> dict[str, Any] | Response:
    try:
        raw = base64.b64decode(b"".join(request.body.split()), validate=True)
    except (binascii.Error, ValueError):
        return graph_error(400, "ErrorMimeContentInvalidBase64String",
                           "Invalid base64 string for MIME content.", request)
    message = BytesParser(policy=policy.default).parsebytes(raw)
    if not isinstance(message, EmailMessage) or not message["To"]:
        return graph_error(400, "ErrorMimeContentInvalid",
                           "The MIME content has no To header.", request)
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    if text_part is None and html_part is None:
        return graph_error(400, "ErrorMimeContentInvalid", "The MIME content has no body.", request)
    to = [addr for _, addr in getaddresses([str(message["To"])]) if addr]
    return {
        "format": "mime",
        "from": str(message["From"] or ""),
        "to": to,
        "subject": str(message["Subject"] or ""),
        "contentType": message.get_content_type(),
        "text": text_part.get_content() if isinstance(text_part, EmailMessage) else None,
        "html": html_part.get_content() if isinstance(html_part, EmailMessage) else None,
    }


def _json_mail(request: Request) -> dict[str, Any] | Response:
    body = request.json()
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict):
        return graph_error(400, "ErrorInvalidRequest", "The request body must contain 'message'.",
                           request)
    recipients = message.get("toRecipients") or []
    to = []
    for recipient in recipients if isinstance(recipients, list) else []:
        address = (recipient.get("emailAddress") or {}).get("address") if isinstance(recipient, dict) else None
        if not isinstance(address, str) or "@" not in address:
            return graph_error(400, "ErrorInvalidRecipients",
                               "At least one recipient is not valid.", request)
        to.append(address)
    if not to:
        return graph_error(400, "ErrorInvalidRecipients",
                           "At least one recipient is not valid., A message can't be sent because it "
                           "contains no recipients.", request)
    content = message.get("body") or {}
    content_type = str(content.get("contentType", "Text")) if isinstance(content, dict) else "Text"
    text = content.get("content") if isinstance(content, dict) else None
    return {
        "format": "json",
        "from": "",
        "to": to,
        "subject": str(message.get("subject") or ""),
        "contentType": content_type,
        "text": text if content_type.lower() == "text" else None,
        "html": text if content_type.lower() == "html" else None,
        "saveToSentItems": body.get("saveToSentItems", True) if isinstance(body, dict) else True,
    }
