"""``GraphClient``: the Microsoft Graph adapter (``GraphPort``) over plain HTTPS.

Every read returns everything or raises. Lists follow ``@odata.nextLink`` until it is absent and
refuse anything that cannot be the whole truth: a repeated next link, a page without ``value``,
an item seen twice, a refused page token (``Directory_ExpiredPageToken``), endless empty pages
or more pages than any tenant can have all raise ``IncompleteReadError``, so that a partial read
never lowers what a customer is billed.

Requests go through ``RetryingHttp`` (429 + ``Retry-After``, 5xx and timeouts). Tokens are
app-only, one credential per tenant (``graph_tokens.TenantTokens``); a 401 is retried once with
a fresh token. 403 names the application permission the endpoint needs.

``collect_tenant`` reads a tenant's licences, users, subscriptions, groups, mailboxes and devices
with one JSON ``$batch`` for all first pages (sub-requests answered 429/5xx are resent after the
longest ``Retry-After``), then follows next links one by one. For a small tenant that is 2 HTTP
requests instead of 6 or more.
"""

from __future__ import annotations

import base64
import csv
import io
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests

from shared.adapters.graph_tokens import CredentialFactory, TenantCredentials, TenantTokens
from shared.adapters.http import RetryingHttp
from shared.domain.lifecycle import GdapRelationship
from shared.domain.model import (
    MAX_COUNT,
    CustomerTenant,
    DirectoryUser,
    GroupMember,
    Mailbox,
    ManagedDevice,
    SignIn,
    SignIns,
    SkuCount,
    Subscription,
    TenantReadout,
    count_problem,
)
from shared.errors import GraphAuthError, GraphError, IncompleteReadError
from shared.settings import GraphSettings, Settings

log = logging.getLogger(__name__)

USER_FIELDS = ("id", "userPrincipalName", "displayName", "accountEnabled", "userType",
               "assignedLicenses", "mail", "officeLocation", "department", "city", "state", "country",
               # contact sync: the fields a PSA contact takes, and the addresses it is matched by
               "givenName", "surname", "jobTitle", "mobilePhone", "businessPhones", "proxyAddresses")
MAX_BATCH = 20
SIGN_IN_PAGE = 120
NON_PREMIUM = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SAFE_QUERY = "$,()'=/"
REPORT_PRIVACY_SETTING = "Display concealed user, group, and site names in all reports"
_RECIPIENT_TYPES = {"user": "User", "usermailbox": "User", "shared": "Shared",
                    "sharedmailbox": "Shared", "room": "Room", "roommailbox": "Room",
                    "equipment": "Equipment", "equipmentmailbox": "Equipment"}
_CONCEALED = re.compile(r"^[0-9A-Fa-f]{32}$")


@dataclass(frozen=True)
class Endpoint:
    """One Graph resource the client reads, with the least-privileged application permission
    that allows it (named in 403 errors)."""

    path: str
    permission: str
    params: tuple[tuple[str, str], ...] = ()

    def query(self) -> str:
        return urlencode(self.params, safe=_SAFE_QUERY, quote_via=quote)


GDAP_CUSTOMERS = Endpoint("tenantRelationships/delegatedAdminCustomers",
                          "DelegatedAdminRelationship.Read.All", (("$top", "300"),))
GDAP_RELATIONSHIPS = Endpoint("tenantRelationships/delegatedAdminRelationships",
                              "DelegatedAdminRelationship.Read.All", (("$top", "300"),))
ORGANIZATION = Endpoint("organization", "Organization.Read.All",
                        (("$select", "id,displayName,verifiedDomains"),))
SUBSCRIBED_SKUS = Endpoint("subscribedSkus", "LicenseAssignment.Read.All")
SUBSCRIPTIONS = Endpoint("directory/subscriptions", "LicenseAssignment.Read.All")
USERS = Endpoint("users", "User.Read.All", (("$select", ",".join(USER_FIELDS)), ("$top", "999")))
SIGN_INS = Endpoint("users", "AuditLog.Read.All",
                    (("$select", "id,createdDateTime,signInActivity"), ("$top", str(SIGN_IN_PAGE))))
"""Read apart from ``USERS``: a tenant that cannot give sign-ins (no AuditLog.Read.All, no Entra ID
P1/P2) still gives its users. Graph serves at most 120 users a page when signInActivity is selected."""
MANAGED_DEVICES = Endpoint("deviceManagement/managedDevices",
                           "DeviceManagementManagedDevices.Read.All",
                           (("$select", "id,deviceName,operatingSystem,userPrincipalName"),))
MAILBOX_REPORT = Endpoint("reports/getMailboxUsageDetail(period='D7')", "Reports.Read.All")
SEND_MAIL_PERMISSION = "Mail.Send"


def group_members_endpoint(group_id: str) -> Endpoint:
    return Endpoint(f"groups/{quote(group_id, safe='')}/transitiveMembers", "GroupMember.Read.All",
                    (("$select", "id,displayName,accountEnabled"), ("$top", "999")))


class NoRedirectSession(requests.Session):
    """Report downloads are pre-authenticated links: the client follows the 302 itself, so the
    bearer token never travels to the download host and every request is counted."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        return super().request(*args, **kwargs)


class GraphClient:
    """Microsoft Graph for the partner tenant and every customer tenant; thread-safe."""

    def __init__(
        self,
        settings: GraphSettings,
        *,
        verify: bool | str = True,
        http: RetryingHttp | None = None,
        credential_factory: CredentialFactory | None = None,
        credentials: TenantTokens | None = None,
        max_pages: int = 2000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.endpoint = settings.endpoint.rstrip("/")
        self.http = http or RetryingHttp("Microsoft Graph", session=NoRedirectSession(), verify=verify, sleep=sleep)
        if credentials is not None and credential_factory is not None:
            raise ValueError("pass either credentials (shared tokens) or credential_factory, not both")
        # Shared between the clients of one process, so each activity's client has its own call
        # counter while tokens are fetched once per tenant.
        self.tokens = credentials or TenantTokens(settings, verify=verify,
                                                  credential_factory=credential_factory)
        self.max_pages = max_pages
        self._sleep = sleep
        origin = urlsplit(self.endpoint)
        self._origin = (origin.scheme.lower(), origin.netloc.lower())

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> GraphClient:
        return cls(settings.require_graph(), verify=settings.tls_verify, **kwargs)

    # ------------------------------------------------------------------ counters
    @property
    def calls(self) -> int:
        """Graph API requests sent (retries and report downloads included)."""
        return self.http.calls

    @property
    def token_requests(self) -> int:
        """Token requests sent to Entra ID (by the credentials this client created)."""
        return self.tokens.token_requests

    @property
    def throttled(self) -> int:
        """Graph answers that were 429 (each waited for and retried)."""
        return self.http.throttled

    def close(self) -> None:
        self.tokens.close()

    # ------------------------------------------------------------------ partner side
    def list_customer_tenants(self) -> list[CustomerTenant]:
        """Customers with an active GDAP relationship (``delegatedAdminCustomers``), read with
        the partner tenant's token."""
        partner = self.settings.partner_tenant_id
        out = []
        for item in self._items(partner, GDAP_CUSTOMERS):
            tid = item.get("tenantId") or item.get("id")
            if not isinstance(tid, str) or not tid:
                raise IncompleteReadError(partner, "a delegatedAdminCustomer has no tenantId")
            # one string per customer id, shared with its relationships' (list_gdap_relationships)
            out.append(CustomerTenant(tenant_id=sys.intern(tid.lower()),
                                      display_name=str(item.get("displayName") or tid)))
        return out

    def list_gdap_relationships(self) -> list[GdapRelationship]:
        """The partner's GDAP relationships (``delegatedAdminRelationships``), whatever their status."""
        partner = self.settings.partner_tenant_id
        out = []
        # thousands of relationships share a few statuses, extensions and sets of roles: one object each
        shared: dict[object, Any] = {}
        for item in self._items(partner, GDAP_RELATIONSHIPS):
            customer = item.get("customer")
            tid = customer.get("tenantId") if isinstance(customer, dict) else None
            if not isinstance(tid, str) or not tid or not isinstance(item.get("status"), str):
                raise IncompleteReadError(partner, f"a delegatedAdminRelationship lacks customer.tenantId or "
                                          f"status: {item.get('id')}")
            access = item.get("accessDetails")
            roles = (access.get("unifiedRoles") if isinstance(access, dict) else None) or []
            role_ids = tuple(str(r["roleDefinitionId"]).lower() for r in roles
                             if isinstance(r, dict) and r.get("roleDefinitionId"))
            out.append(GdapRelationship(
                id=str(item.get("id", "")),
                display_name=str(item.get("displayName") or ""),
                status=shared.setdefault(str(item["status"]), str(item["status"])),
                customer_tenant_id=sys.intern(tid.lower()),
                end=_timestamp(item.get("endDateTime")),
                role_ids=shared.setdefault(role_ids, role_ids),
                auto_extend=shared.setdefault(extend := str(item.get("autoExtendDuration") or ""), extend),
            ))
        return out

    def get_tenant_details(self, tenant_id: str) -> CustomerTenant:
        """The tenant's name and verified domains (``organization``), with its own token."""
        orgs = self._list(tenant_id, ORGANIZATION)
        if len(orgs) != 1:
            raise IncompleteReadError(tenant_id, f"organization returned {len(orgs)} objects, not 1")
        org = orgs[0]
        domains = [d for d in org.get("verifiedDomains") or [] if isinstance(d, dict) and d.get("name")]
        default = next((str(d["name"]) for d in domains if d.get("isDefault")), None)
        return CustomerTenant(tenant_id=tenant_id.lower(),
                              display_name=str(org.get("displayName") or tenant_id),
                              default_domain=default,
                              domains=tuple(str(d["name"]) for d in domains))

    # ------------------------------------------------------------------ GraphPort
    def list_subscribed_skus(self, tenant_id: str) -> list[SkuCount]:
        return _map_skus(tenant_id, self._items(tenant_id, SUBSCRIBED_SKUS))

    def list_users(self, tenant_id: str) -> list[DirectoryUser]:
        return _map_users(tenant_id, self._items(tenant_id, USERS))

    def list_subscriptions(self, tenant_id: str) -> list[Subscription]:
        return _map_subscriptions(tenant_id, self._items(tenant_id, SUBSCRIPTIONS))

    def list_group_members(self, tenant_id: str, group_id: str) -> list[GroupMember]:
        items = self._items(tenant_id, group_members_endpoint(group_id), what=f"group {group_id}")
        return _map_members(tenant_id, group_id, items)

    def list_mailboxes(self, tenant_id: str) -> list[Mailbox]:
        """Mailboxes and their recipient type from the mailbox usage report (Reports.Read.All).
        Raises ``GraphError`` when the tenant conceals user names in reports."""
        response = self._send(tenant_id, "GET", self._url(MAILBOX_REPORT), MAILBOX_REPORT.permission)
        return self._read_report(tenant_id, response)

    def list_managed_devices(self, tenant_id: str) -> list[ManagedDevice]:
        return _map_devices(tenant_id, self._items(tenant_id, MANAGED_DEVICES))

    # ------------------------------------------------------------------ a whole tenant, batched
    def collect_tenant(self, tenant_id: str, *, group_ids: Iterable[str] = (),
                       mailboxes: bool = False, managed_devices: bool = False,
                       sign_ins: bool = False) -> TenantReadout:
        """Read a tenant with one ``$batch`` for every first page (then next links one by one).
        Complete or raises, like the single methods; except the users' sign-ins (``sign_ins``),
        which a tenant may not give (``SignIns.unavailable`` says why) without failing the read."""
        groups = list(dict.fromkeys(group_ids))
        wanted: list[tuple[str, Endpoint]] = [("skus", SUBSCRIBED_SKUS), ("users", USERS),
                                              ("subscriptions", SUBSCRIPTIONS)]
        wanted += [(f"group:{gid}", group_members_endpoint(gid)) for gid in groups]
        if mailboxes:
            wanted.append(("mailboxes", MAILBOX_REPORT))
        if managed_devices:
            wanted.append(("devices", MANAGED_DEVICES))
        if sign_ins:
            wanted.append(("signins", SIGN_INS))
        answers = self._batch(tenant_id, wanted)
        endpoints = dict(wanted)

        def items(key: str, what: str = "") -> Iterator[dict[str, Any]]:
            status, _headers, body = answers[key]
            endpoint = endpoints[key]
            if status != 200:
                raise self._error(tenant_id, status, body, "GET", self._url(endpoint),
                                  endpoint.permission, what)
            return self._paged(tenant_id, self._url(endpoint), endpoint.permission, first=body)

        skus = _map_skus(tenant_id, items("skus"))
        users = _map_users(tenant_id, items("users"))
        subs = _map_subscriptions(tenant_id, items("subscriptions"))
        members = {gid: tuple(_map_members(tenant_id, gid, items(f"group:{gid}", f"group {gid}")))
                   for gid in groups}
        boxes = None
        if mailboxes:
            status, headers, body = answers["mailboxes"]
            if status in _REDIRECTS and headers.get("location"):
                boxes = tuple(self._download_report(tenant_id, headers["location"]))
            else:
                raise self._error(tenant_id, status, body, "GET", self._url(MAILBOX_REPORT),
                                  MAILBOX_REPORT.permission)
        devices = tuple(_map_devices(tenant_id, items("devices"))) if managed_devices else None
        activity = self._sign_ins(tenant_id, answers["signins"]) if sign_ins else None
        return TenantReadout(tenant_id.lower(), tuple(skus), tuple(users), tuple(subs), members,
                             boxes, devices, activity)

    def list_sign_ins(self, tenant_id: str) -> SignIns:
        """The users' last sign-ins (``signInActivity``), or why the tenant does not give them."""
        return self._sign_ins(tenant_id, None)

    def _sign_ins(self, tenant_id: str, first: tuple[int, dict[str, str], Any] | None) -> SignIns:
        """Sign-ins from a batched first page (or read now). A refusal (403: AuditLog.Read.All not
        granted, or no Entra ID P1/P2 in the tenant) or a failed read is ``unavailable``, not an
        error: sign-ins only feed an alert, never a bill."""
        url = self._url(SIGN_INS)
        try:
            if first is None:
                response = self._send(tenant_id, "GET", url, SIGN_INS.permission)
                status, body = response.status_code, _json_or_none(response)
            else:
                status, _headers, body = first
            if status != 200:
                code, _message = _graph_error_parts(body)
                if status == 403 and code == NON_PREMIUM:
                    return SignIns(unavailable=(
                        f"the tenant has no Microsoft Entra ID P1 or P2 licence, which sign-in activity needs "
                        f"({code})"))
                if status == 403:
                    return SignIns(unavailable=(
                        f"the SeatSync app lacks the application permission AuditLog.Read.All in this tenant "
                        f"({code}): add it to the app registration and grant admin consent again at "
                        f"{self.tokens.consent_url(tenant_id)}"))
                raise self._error(tenant_id, status, body, "GET", url, SIGN_INS.permission)
            items = self._pages(tenant_id, url, SIGN_INS.permission, first=body)
        except GraphAuthError:
            raise
        except GraphError as exc:
            return SignIns(unavailable=f"the sign-ins could not be read: {exc}")
        return SignIns(users=tuple(_map_sign_in(item) for item in items))

    def _batch(self, tenant_id: str, wanted: Sequence[tuple[str, Endpoint]]
               ) -> dict[str, tuple[int, dict[str, str], Any]]:
        """Send GETs as JSON batches of at most 20; resend sub-requests answered 429/5xx after
        the longest Retry-After, up to the retry policy's attempts."""
        policy = self.http.policy
        pending = [(key, endpoint) for key, endpoint in wanted]
        answers: dict[str, tuple[int, dict[str, str], Any]] = {}
        refreshed = False
        attempt = 0
        while pending:
            attempt += 1
            retry: list[tuple[str, Endpoint]] = []
            wait = 0.0
            throttled = 0
            unauthorized = False
            for start in range(0, len(pending), MAX_BATCH):
                chunk = pending[start:start + MAX_BATCH]
                requests_json = [{"id": str(i), "method": "GET", "url": "/" + _relative(endpoint)}
                                 for i, (_, endpoint) in enumerate(chunk)]
                url = f"{self.endpoint}/v1.0/$batch"
                response = self._send(tenant_id, "POST", url, "", json_body={"requests": requests_json},
                                      idempotent=True)
                if response.status_code != 200:
                    raise self._error(tenant_id, response.status_code, _json_or_none(response),
                                      "POST", url, "")
                body = _json_or_none(response)
                replies = body.get("responses") if isinstance(body, dict) else None
                if not isinstance(replies, list):
                    raise IncompleteReadError(tenant_id, "a $batch answer has no 'responses' list")
                by_id = {str(r.get("id")): r for r in replies if isinstance(r, dict)}
                for i, (key, endpoint) in enumerate(chunk):
                    reply = by_id.get(str(i))
                    if reply is None:
                        raise IncompleteReadError(tenant_id, f"the $batch answer lacks request {i}")
                    status = int(reply.get("status", 0))
                    headers = {str(k).lower(): str(v) for k, v in (reply.get("headers") or {}).items()}
                    if status in policy.retry_statuses and attempt < policy.max_attempts:
                        throttled += int(status == 429)
                        asked = _retry_after(headers.get("retry-after"))
                        wait = max(wait, asked if asked is not None else
                                   min(policy.backoff_max_seconds,
                                       policy.backoff_base_seconds * 2 ** (attempt - 1)))
                        retry.append((key, endpoint))
                        continue
                    if status == 401 and not refreshed:
                        unauthorized = True
                        retry.append((key, endpoint))
                        continue
                    answers[key] = (status, headers, reply.get("body"))
            if unauthorized:
                refreshed = True
                self.tokens.invalidate(tenant_id)
            if retry:
                self.http.note(throttled=throttled, retries=len(retry))
            if retry and wait:
                if wait > policy.max_retry_after_seconds:
                    raise GraphError(tenant_id, f"throttled: asked to wait {wait:.0f}s, more than "
                                     f"the {policy.max_retry_after_seconds:.0f}s cap")
                log.info("Microsoft Graph: %d batched request(s) throttled for tenant %s; retry in %.1fs",
                         len(retry), tenant_id, wait)
                self._sleep(wait)
            pending = retry
        return answers

    # ------------------------------------------------------------------ mail
    def send_mail(self, sender: str, subject: str, html: str, text: str, to: list[str], *,
                  tenant_id: str | None = None) -> None:
        """Send one message from ``sender``'s mailbox (application permission Mail.Send) with
        both an HTML and a plain-text body.

        Graph's JSON ``message`` holds a single body (Text or HTML), so the message is sent in
        MIME format instead: a base64 ``multipart/alternative`` (text, then HTML) posted with
        ``Content-Type: text/plain``, which ``sendMail`` accepts. ``tenant_id`` defaults to the
        partner tenant, where the sender's mailbox is."""
        recipients = [address.strip() for address in to if address and address.strip()]
        if not recipients or any("@" not in a for a in recipients):
            raise ValueError(f"send_mail needs at least one email address, got {to!r}")
        if "@" not in sender:
            raise ValueError(f"send_mail needs the sender's address or user principal name, got {sender!r}")
        if not subject.strip():
            raise ValueError("send_mail needs a subject")
        message = EmailMessage()
        message["From"] = sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1])
        message.set_content(text or "")
        message.add_alternative(html or "", subtype="html")
        payload = base64.b64encode(message.as_bytes())
        tenant = tenant_id or self.settings.partner_tenant_id
        url = f"{self.endpoint}/v1.0/users/{quote(sender, safe='@')}/sendMail"
        response = self._send(tenant, "POST", url, SEND_MAIL_PERMISSION, data=payload,
                              content_type="text/plain", idempotent=False)
        if response.status_code != 202:
            raise self._error(tenant, response.status_code, _json_or_none(response), "POST", url,
                              SEND_MAIL_PERMISSION, f"mailbox {sender}")

    # ------------------------------------------------------------------ HTTP plumbing
    def _url(self, endpoint: Endpoint) -> str:
        query = endpoint.query()
        return f"{self.endpoint}/v1.0/{endpoint.path}" + (f"?{query}" if query else "")

    def _send(self, tenant_id: str, method: str, url: str, permission: str, *,
              json_body: Any = None, data: bytes | None = None, content_type: str | None = None,
              idempotent: bool | None = None) -> requests.Response:
        """One Graph request with the tenant's token; a 401 is retried once with a fresh token."""
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.tokens.token(tenant_id)}",
                       "Accept": "application/json"}
            if content_type:
                headers["Content-Type"] = content_type
            try:
                response = self.http.request(method, url, headers=headers, json=json_body, data=data,
                                             idempotent=idempotent)
            except requests.RequestException as exc:
                raise GraphError(tenant_id, f"no answer after retries: {type(exc).__name__}: {exc}",
                                 None, method, url) from exc
            if response.status_code == 401 and attempt == 1:
                log.info("Microsoft Graph: 401 for tenant %s; retrying once with a fresh token",
                         tenant_id)
                response.close()
                self.tokens.invalidate(tenant_id)
                continue
            return response
        raise AssertionError("unreachable")

    def _list(self, tenant_id: str, endpoint: Endpoint, what: str = "") -> list[dict[str, Any]]:
        return self._pages(tenant_id, self._url(endpoint), endpoint.permission, what=what)

    def _items(self, tenant_id: str, endpoint: Endpoint, what: str = "") -> Iterator[dict[str, Any]]:
        return self._paged(tenant_id, self._url(endpoint), endpoint.permission, what=what)

    def _pages(self, tenant_id: str, url: str, permission: str, *, first: Any = None,
               what: str = "") -> list[dict[str, Any]]:
        """Every item of a collection, following next links, or ``IncompleteReadError``."""
        return list(self._paged(tenant_id, url, permission, first=first, what=what))

    def _paged(self, tenant_id: str, url: str, permission: str, *, first: Any = None,
               what: str = "") -> Iterator[dict[str, Any]]:
        """Every item of a collection, a page at a time, following next links; a page that cannot
        be read raises ``IncompleteReadError`` (or the request's error) when it is reached. A
        caller maps the items as they come and returns nothing unless every page was read, so a
        listing of thousands of GDAP customers (or a tenant's users) holds one page of JSON, not
        every page, beside what it keeps."""
        seen_links = {url}
        seen_ids: set[str] = set()
        pages = 0
        empty_run = 0
        current: str | None = url
        body = first
        while current is not None:
            pages += 1
            if pages > self.max_pages:
                raise IncompleteReadError(tenant_id, f"more than {self.max_pages} pages at {url}; "
                                          "the pager does not end")
            if body is None:
                response = self._send(tenant_id, "GET", current, permission)
                if response.status_code != 200:
                    payload = _json_or_none(response)
                    if pages > 1 and response.status_code == 400:
                        code, message = _graph_error_parts(payload)
                        raise IncompleteReadError(
                            tenant_id, f"the next page was refused ({code}: {message}); the list "
                            "cannot be read consistently", 400, "GET", current)
                    raise self._error(tenant_id, response.status_code, payload, "GET", current,
                                      permission, what)
                body = _json_or_none(response)
            if not isinstance(body, dict):
                raise IncompleteReadError(tenant_id, "a page is not a JSON object", None, "GET", current)
            value = body.get("value")
            if not isinstance(value, list):
                raise IncompleteReadError(tenant_id, "a page has no 'value' list", None, "GET", current)
            empty_run = empty_run + 1 if not value else 0
            if empty_run > 3:
                raise IncompleteReadError(tenant_id, "the pager keeps returning empty pages", None,
                                          "GET", current)
            for item in value:
                if not isinstance(item, dict):
                    raise IncompleteReadError(tenant_id, "a page holds a non-object item", None,
                                              "GET", current)
                oid = item.get("id")
                if isinstance(oid, str):
                    if oid in seen_ids:
                        raise IncompleteReadError(tenant_id, f"item {oid} appeared on two pages",
                                                  None, "GET", current)
                    seen_ids.add(oid)
                yield item
            link = body.get("@odata.nextLink")
            if link is None:
                break
            if not isinstance(link, str) or not link:
                raise IncompleteReadError(tenant_id, "an empty @odata.nextLink", None, "GET", current)
            if link in seen_links:
                raise IncompleteReadError(tenant_id, "the same @odata.nextLink came back twice; the "
                                          "pager loops", None, "GET", link)
            target = urlsplit(link)
            if (target.scheme.lower(), target.netloc.lower()) != self._origin:
                raise IncompleteReadError(tenant_id, f"a next link points outside {self.endpoint}; "
                                          "not following it with the tenant's token", None, "GET", link)
            seen_links.add(link)
            current = link
            body = None

    def _read_report(self, tenant_id: str, response: requests.Response) -> list[Mailbox]:
        url = self._url(MAILBOX_REPORT)
        if response.status_code in _REDIRECTS:
            location = response.headers.get("Location")
            response.close()
            if not location:
                raise GraphError(tenant_id, "the report answer has no download Location", 302, "GET", url)
            return self._download_report(tenant_id, location)
        if response.status_code != 200:
            raise self._error(tenant_id, response.status_code, _json_or_none(response), "GET", url,
                              MAILBOX_REPORT.permission)
        return _parse_mailbox_report(tenant_id, response.content)

    def _download_report(self, tenant_id: str, location: str) -> list[Mailbox]:
        try:
            response = self.http.request("GET", location, headers={"Accept": "text/csv"})
        except requests.RequestException as exc:
            raise GraphError(tenant_id, f"report download failed: {exc}", None, "GET", "report") from exc
        if response.status_code != 200:
            raise GraphError(tenant_id, "the mailbox usage report could not be downloaded "
                             "(the link may have expired)", response.status_code, "GET", "report download")
        return _parse_mailbox_report(tenant_id, response.content)

    def _error(self, tenant_id: str, status: int, payload: Any, method: str, url: str,
               permission: str, what: str = "") -> GraphError:
        code, message = _graph_error_parts(payload)
        if status == 401:
            return GraphAuthError(tenant_id, f"Graph refused the token ({code}: {message}) even "
                                  "after a fresh one was fetched", status=401)
        if status == 403:
            needed = (f"; the SeatSync app needs the application permission {permission} in this "
                      f"tenant: add it to the app registration and grant admin consent again at "
                      f"{self.tokens.consent_url(tenant_id)}") if permission else ""
            return GraphAuthError(tenant_id, f"access denied to {_path(url)} ({code}: {message})"
                                  f"{needed}", status=403)
        if status == 404 and what:
            return GraphError(tenant_id, f"{what} not found ({code}: {message})", 404, method, url)
        return GraphError(tenant_id, f"{code}: {message}", status, method, url)


# ---------------------------------------------------------------------------- mapping


def _count(tenant_id: str, what: str, field: str, value: Any, *, absent: int | None = None) -> int:
    """A count Graph gave for one tenant (``absent`` when the field is missing or null). An
    impossible value (negative, fractional, 2^31 or more, NaN, a boolean or text) fails the
    tenant's read with a message naming the record, the field and the value: its billing is left
    as it was, and the other tenants sync."""
    if value is None and absent is not None:
        return absent
    problem = count_problem(value)
    if problem is not None:
        raise IncompleteReadError(tenant_id, f"{field} {problem} ({what}); a licence count is a whole number from 0 "
                                  f"to {MAX_COUNT}, so nothing is billed from this read of the tenant")
    return int(value)


def _map_skus(tenant_id: str, items: Iterable[dict[str, Any]]) -> list[SkuCount]:
    out = []
    for item in items:
        prepaid = item.get("prepaidUnits")
        sku_id, part = item.get("skuId"), item.get("skuPartNumber")
        if not isinstance(sku_id, str) or not isinstance(part, str) or not isinstance(prepaid, dict) \
                or "enabled" not in prepaid or "consumedUnits" not in item:
            raise IncompleteReadError(tenant_id, f"a subscribedSku lacks skuId, skuPartNumber, "
                                      f"prepaidUnits.enabled or consumedUnits: {item.get('id')}")
        what = f"subscribedSku {part} {sku_id}"
        out.append(SkuCount(
            sku_id=sku_id.lower(), sku_part_number=part,
            purchased=_count(tenant_id, what, "prepaidUnits.enabled", prepaid["enabled"]),
            consumed=_count(tenant_id, what, "consumedUnits", item["consumedUnits"]),
            suspended=_count(tenant_id, what, "prepaidUnits.suspended", prepaid.get("suspended"), absent=0),
            warning=_count(tenant_id, what, "prepaidUnits.warning", prepaid.get("warning"), absent=0),
            locked_out=_count(tenant_id, what, "prepaidUnits.lockedOut", prepaid.get("lockedOut"), absent=0),
            capability_status=str(item.get("capabilityStatus") or "Enabled"),
            applies_to=str(item.get("appliesTo") or "User"),
        ))
    return out


def _map_users(tenant_id: str, items: Iterable[dict[str, Any]]) -> list[DirectoryUser]:
    out = []
    for item in items:
        uid, upn = item.get("id"), item.get("userPrincipalName")
        licences = item.get("assignedLicenses")
        if not isinstance(uid, str) or not isinstance(upn, str) or not isinstance(licences, list) \
                or not isinstance(item.get("accountEnabled"), bool):
            raise IncompleteReadError(tenant_id, f"a user lacks id, userPrincipalName, accountEnabled "
                                      f"or assignedLicenses: {uid or upn}")
        out.append(DirectoryUser(
            id=uid, user_principal_name=upn, display_name=str(item.get("displayName") or upn),
            account_enabled=item["accountEnabled"], user_type=str(item.get("userType") or "Member"),
            sku_ids=tuple(str(lic["skuId"]).lower() for lic in licences
                          if isinstance(lic, dict) and lic.get("skuId")),
            mail=_text(item.get("mail")), office=_text(item.get("officeLocation")),
            department=_text(item.get("department")), city=_text(item.get("city")),
            state=_text(item.get("state")), country=_text(item.get("country")),
            given_name=_text(item.get("givenName")), surname=_text(item.get("surname")),
            job_title=_text(item.get("jobTitle")), mobile_phone=_text(item.get("mobilePhone")),
            business_phones=_texts(item.get("businessPhones")),
            proxy_addresses=_smtp_addresses(item.get("proxyAddresses")),
        ))
    return out


def _texts(value: Any) -> tuple[str, ...]:
    """A list of strings (Graph's ``businessPhones``), blanks and anything else left out."""
    if not isinstance(value, list):
        return ()
    return tuple(item.strip() for item in value if isinstance(item, str) and item.strip())


def _smtp_addresses(value: Any) -> tuple[str, ...]:
    """The SMTP addresses of ``proxyAddresses`` (``SMTP:`` primary, ``smtp:`` aliases), without
    their prefix; other address types (``SIP:``, ``X500:``) are not email addresses."""
    return tuple(item.split(":", 1)[1] for item in _texts(value) if item.lower().startswith("smtp:"))


def _map_subscriptions(tenant_id: str, items: Iterable[dict[str, Any]]) -> list[Subscription]:
    out = []
    for item in items:
        sid, sku_id = item.get("id"), item.get("skuId")
        if not isinstance(sid, str) or not isinstance(sku_id, str) or "totalLicenses" not in item:
            raise IncompleteReadError(tenant_id, f"a companySubscription lacks id, skuId or "
                                      f"totalLicenses: {sid}")
        total = _count(tenant_id, f"companySubscription {sid} {item.get('skuPartNumber') or sku_id}",
                       "totalLicenses", item["totalLicenses"])
        out.append(Subscription(
            id=sid, sku_id=sku_id.lower(), sku_part_number=str(item.get("skuPartNumber") or ""),
            total_licenses=total, status=str(item.get("status") or ""),
            is_trial=bool(item.get("isTrial")), created=_timestamp(item.get("createdDateTime")),
            next_lifecycle=_timestamp(item.get("nextLifecycleDateTime")),
            commerce_subscription_id=_text(item.get("commerceSubscriptionId")),
        ))
    return out


def _map_sign_in(item: dict[str, Any]) -> SignIn:
    """A user's last use of the account: the last successful sign-in where Entra records it
    (``lastSuccessfulSignInDateTime``, since December 2023, not backfilled), else the latest
    attempt, interactive or not (``lastSignInDateTime`` counts failed attempts too, so a user may
    look more active than they are, never less)."""
    activity = item.get("signInActivity")
    last = None
    if isinstance(activity, dict):
        last = _timestamp(activity.get("lastSuccessfulSignInDateTime"))
        if last is None:
            attempts = [t for t in (_timestamp(activity.get("lastSignInDateTime")),
                                    _timestamp(activity.get("lastNonInteractiveSignInDateTime"))) if t]
            last = max(attempts) if attempts else None
    return SignIn(user_id=str(item.get("id")), last=last, created=_timestamp(item.get("createdDateTime")))


def _map_members(tenant_id: str, group_id: str, items: Iterable[dict[str, Any]]) -> list[GroupMember]:
    out = []
    for item in items:
        kind = str(item.get("@odata.type") or "").removeprefix("#microsoft.graph.")
        oid = item.get("id")
        if not kind or not isinstance(oid, str):
            raise IncompleteReadError(tenant_id, f"a member of group {group_id} has no @odata.type or id")
        if kind not in ("user", "device"):
            continue  # nested groups are listed as members too; their members are listed already
        enabled = item.get("accountEnabled")
        out.append(GroupMember(id=oid, kind=kind, display_name=str(item.get("displayName") or ""),
                               account_enabled=enabled if isinstance(enabled, bool) else True))
    return out


def _map_devices(tenant_id: str, items: Iterable[dict[str, Any]]) -> list[ManagedDevice]:
    out = []
    for item in items:
        did = item.get("id")
        if not isinstance(did, str):
            raise IncompleteReadError(tenant_id, "a managedDevice has no id")
        out.append(ManagedDevice(id=did, device_name=str(item.get("deviceName") or ""),
                                 operating_system=str(item.get("operatingSystem") or ""),
                                 user_principal_name=_text(item.get("userPrincipalName"))))
    return out


def _parse_mailbox_report(tenant_id: str, content: bytes) -> list[Mailbox]:
    text = content.decode("utf-8-sig", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    columns = set(reader.fieldnames or [])
    missing = {"User Principal Name", "Display Name", "Is Deleted", "Recipient Type"} - columns
    if missing:
        raise GraphError(tenant_id, f"the mailbox usage report lacks the column(s) "
                         f"{', '.join(sorted(missing))}; cannot tell user from shared mailboxes")
    out = []
    for row in reader:
        upn = (row.get("User Principal Name") or "").strip()
        if not upn:
            continue
        if "@" not in upn:
            kind = "hashed" if _CONCEALED.match(upn) else "without an @"
            raise GraphError(
                tenant_id,
                f"the mailbox usage report conceals user names (a {kind} value instead of a user "
                f"principal name), so mailboxes cannot be matched to users. In the tenant's "
                f"Microsoft 365 admin center, Settings > Org settings > Reports, turn off "
                f"'{REPORT_PRIVACY_SETTING}' (it can take a few minutes to apply)")
        recipient = (row.get("Recipient Type") or "").strip()
        out.append(Mailbox(
            user_principal_name=upn,
            display_name=(row.get("Display Name") or "").strip(),
            recipient_type=_RECIPIENT_TYPES.get(recipient.lower(), recipient),
            is_deleted=(row.get("Is Deleted") or "").strip().lower() in ("true", "yes"),
        ))
    return out


# ---------------------------------------------------------------------------- small helpers


def _relative(endpoint: Endpoint) -> str:
    query = endpoint.query()
    return endpoint.path + (f"?{query}" if query else "")


def _path(url: str) -> str:
    return urlsplit(url).path


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):  # not JSON, or nested deeper than any real answer
        return None


def _graph_error_parts(payload: Any) -> tuple[str, str]:
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or "Error"), str(error.get("message") or "")
    return "Error", "no error details"


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = _FRACTION.sub(r"\1", value.replace("Z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


__all__ = ["Endpoint", "GraphClient", "TenantCredentials", "TenantReadout",
           "TenantTokens"]
