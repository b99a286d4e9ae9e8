"""How a dashboard page answers: who is signed in and what their role allows, protection of
writes against cross-site request forgery, rendering of the Jinja2 templates, static files.

- Identity: only the platform's principal (admin_api.auth, ``key_checked=False``: these routes
  are anonymous for the Functions host, so a function key proves nothing here). Nobody signed
  in: 401 with a link to the Entra sign-in. A role too low: 403 naming the role needed.
- Cross-site request forgery: every write is a POST that must carry the token of the
  ``seatsync-csrf`` cookie (a random value set on the first page) in the ``X-CSRF-Token``
  header (htmx sends it) or a ``csrf`` form field, and must not come from another site
  (``Origin``/``Sec-Fetch-Site``). The cookie is SameSite=Strict, so another site can neither
  send nor read it.
- Pages send a Content-Security-Policy that allows only this site's scripts and styles.
- Long lists (tenants, held changes, a run's changes and tenants, unlinked licences) are shown a
  page at a time (``Paging``), so that a page of 500 or 5,000 tenants stays small.
"""

from __future__ import annotations

import hmac
import json
import mimetypes
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cache
from http.cookies import CookieError, SimpleCookie
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import azure.functions as func
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from admin_api.auth import Caller, Role, identify
from admin_api.http import RETRY_AFTER_SECONDS, log_unreachable
from shared.run_failures import STORE_UNREACHABLE, store_unreachable

BASE = "/api/dashboard"
PAGE_SIZE = 100
"""Rows of a long list shown on one page."""
T = TypeVar("T")
CSRF_COOKIE = "seatsync-csrf"
CSRF_HEADER = "X-CSRF-Token"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
NAV = (("", "Overview"), ("tenants", "Tenants"), ("mapping", "Mapping"), ("approvals", "Approvals"),
       ("runs", "Runs"), ("audit", "Audit"), ("onboarding", "Onboarding"), ("notifications", "Notifications"),
       ("configuration", "Configuration"))


@cache
def templates() -> Environment:
    environment = Environment(loader=PackageLoader("dashboard", "templates"), autoescape=select_autoescape(),
                              undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.globals.update(base=BASE, nav=NAV)
    environment.filters["money"] = money
    environment.filters["when"] = lambda value: (value or "")[:16].replace("T", " ")
    environment.filters["tojson_attr"] = lambda value: json.dumps(value, default=str)
    return environment


def money(value: Any, currency: str = "") -> str:
    if value is None or value == "":
        return ""
    amount = Decimal(str(value)).quantize(Decimal("0.01"))
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount):,.2f}" + (f" {currency}" if currency else "")


def cookies(req: func.HttpRequest) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(req.headers.get("Cookie") or "")
    except CookieError:
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


def caller_of(req: func.HttpRequest) -> Caller:
    return identify(req.headers, req.params, key_checked=False)


class Page:
    """What a handler gets: the request, the caller and the page's CSRF token."""

    def __init__(self, req: func.HttpRequest, caller: Caller, csrf: str, new_csrf: bool) -> None:
        self.req = req
        self.caller = caller
        self.csrf = csrf
        self.new_csrf = new_csrf

    @property
    def partial(self) -> bool:
        """An htmx request: answer the fragment, not the whole page."""
        return bool(self.req.headers.get("HX-Request") == "true")

    def render(self, template: str, http_status: int = 200, **context: Any) -> func.HttpResponse:
        body = templates().get_template(template).render(caller=self.caller, csrf=self.csrf, partial=self.partial,
                                                         Role=Role, **context)
        return self.finish(func.HttpResponse(body, status_code=http_status, mimetype="text/html", charset="utf-8"))

    def redirect(self, location: str) -> func.HttpResponse:
        if self.partial:  # htmx follows HX-Redirect with a full page load
            return self.finish(func.HttpResponse("", status_code=200, headers={"HX-Redirect": location}))
        return self.finish(func.HttpResponse("", status_code=303, headers={"Location": location}))

    def finish(self, response: func.HttpResponse) -> func.HttpResponse:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        if self.new_csrf:
            secure = "; Secure" if urlsplit(self.req.url).scheme == "https" else ""
            response.headers["Set-Cookie"] = f"{CSRF_COOKIE}={self.csrf}; Path=/; SameSite=Strict; HttpOnly{secure}"
        return response


def refusal(req: func.HttpRequest, caller: Caller, status: int, message: str) -> func.HttpResponse:
    page = Page(req, caller, cookies(req).get(CSRF_COOKIE) or "", new_csrf=False)
    path = urlsplit(req.url).path
    query = urlsplit(req.url).query
    sign_in = "/.auth/login/aad?post_login_redirect_uri=" + quote(path + (f"?{query}" if query else ""), safe="")
    return page.render("refused.html", http_status=status, message=message, sign_in=sign_in)


def same_site(req: func.HttpRequest) -> bool:
    fetch_site = (req.headers.get("Sec-Fetch-Site") or "").lower()
    if fetch_site and fetch_site not in ("same-origin", "none"):
        return False
    origin = req.headers.get("Origin")
    if origin and origin != "null":
        return bool(urlsplit(origin).netloc.lower() == urlsplit(req.url).netloc.lower())
    return bool(origin != "null")


def csrf_ok(req: func.HttpRequest, token: str | None) -> bool:
    if not token or not same_site(req):
        return False
    sent = req.headers.get(CSRF_HEADER) or form(req).get("csrf", [""])[0]
    return bool(sent) and hmac.compare_digest(sent.encode(), token.encode())


def form(req: func.HttpRequest) -> dict[str, list[str]]:
    """The url-encoded form of a POST (repeated fields as lists)."""
    content_type = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    try:
        text = req.get_body().decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return parse_qs(text, keep_blank_values=True, max_num_fields=2000)


Handler = Callable[[Page], func.HttpResponse]
AsyncHandler = Callable[[Page], Awaitable[func.HttpResponse]]


def admit(req: func.HttpRequest, needed: Role) -> Page | func.HttpResponse:
    """The page of a signed-in caller with at least ``needed`` (a POST also needs the CSRF
    token), or the refusal to answer."""
    caller = caller_of(req)
    if not caller.signed_in or caller.kind == "function-key":
        return refusal(req, caller, 401, "Sign in to use SeatSync.")
    if not caller.may(needed):
        held = caller.role.label if caller.role else "no SeatSync role"
        return refusal(req, caller, 403, f"This needs the {needed.label} role; you have {held}.")
    token = cookies(req).get(CSRF_COOKIE)
    if req.method != "GET" and not csrf_ok(req, token):
        return refusal(req, caller, 403, "The form was not sent from this site's page (CSRF check failed): "
                                         "reload the page and try again.")
    return Page(req, caller, token or secrets.token_urlsafe(24), new_csrf=not token)


def guard(req: func.HttpRequest, needed: Role, handler: Handler) -> func.HttpResponse:
    admitted = admit(req, needed)
    if isinstance(admitted, func.HttpResponse):
        return admitted
    try:
        return handler(admitted)
    except Exception as exc:
        if store_unreachable(exc):
            return unavailable_page(admitted, exc)
        raise


async def guard_async(req: func.HttpRequest, needed: Role, handler: AsyncHandler) -> func.HttpResponse:
    admitted = admit(req, needed)
    if isinstance(admitted, func.HttpResponse):
        return admitted
    try:
        return await handler(admitted)
    except Exception as exc:
        if store_unreachable(exc):
            return unavailable_page(admitted, exc)
        raise


def unavailable_page(page: Page, exc: BaseException) -> func.HttpResponse:
    """503 when Table Storage does not answer: the page says so in one line (and how to fix it),
    the log gets one line; no traceback reaches the browser."""
    log_unreachable(page.req, exc)
    response = page.render("message.html", http_status=503, title="Storage unavailable", active="-",
                           message=STORE_UNREACHABLE)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@dataclass(frozen=True)
class Paging:
    """One page of a long list (tenants, held changes, a run's changes): which rows it shows and
    the links to the pages before and after it, keeping the page's other query parameters."""

    number: int
    size: int
    total: int
    path: str
    query: tuple[tuple[str, str], ...]
    param: str

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first(self) -> int:
        return (self.number - 1) * self.size

    @property
    def last(self) -> int:
        return min(self.total, self.first + self.size)

    def rows(self, items: Sequence[T]) -> list[T]:
        return list(items[self.first:self.last])

    def href(self, number: int) -> str:
        return f"{self.path}?{urlencode([*self.query, (self.param, str(number))])}"


def paging(req: func.HttpRequest, total: int, size: int = PAGE_SIZE, param: str = "page") -> Paging:
    """The page of ``total`` rows the request asks for (``?page=N``, from 1; out of range: the
    nearest page)."""
    try:
        asked = int((req.params.get(param) or "1")[:9])
    except ValueError:
        asked = 1
    query = tuple((k, v[:200]) for k, v in sorted(req.params.items()) if k != param)
    page = Paging(1, size, total, urlsplit(req.url).path, query, param)
    return replace(page, number=min(max(1, asked), page.pages))


def static_file(name: str) -> func.HttpResponse:
    """A file of dashboard/static (package data, one flat folder), cached for a day; nothing else."""
    if not name or name.startswith(".") or "/" in name or "\\" in name:
        return func.HttpResponse("not found", status_code=404, mimetype="text/plain")
    node = resources.files("dashboard").joinpath("static", name)
    if not node.is_file():
        return func.HttpResponse("not found", status_code=404, mimetype="text/plain")
    mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return func.HttpResponse(node.read_bytes(), status_code=200, mimetype=mimetype,
                             headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})
