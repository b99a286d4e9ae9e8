"""Long lists on the dashboard are shown a page at a time, with links that keep the page's other
query parameters (a search, a status filter)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import azure.functions as func

from dashboard.web import paging


def request(query: str) -> func.HttpRequest:
    params = {k: v[0] for k, v in parse_qs(query).items()}
    return func.HttpRequest("GET", f"http://127.0.0.1:7071/api/dashboard/tenants?{query}", params=params, body=b"")


def test_the_page_asked_for_its_rows_and_the_links_around_it() -> None:
    shown = paging(request("q=contoso&page=2"), total=250, size=100)
    assert (shown.number, shown.pages, shown.first, shown.last) == (2, 3, 100, 200)
    assert shown.rows(list(range(250))) == list(range(100, 200))
    before, after = urlsplit(shown.href(1)), urlsplit(shown.href(3))
    assert before.path == after.path == "/api/dashboard/tenants"
    assert parse_qs(before.query) == {"q": ["contoso"], "page": ["1"]}
    assert parse_qs(after.query) == {"q": ["contoso"], "page": ["3"]}


def test_a_page_out_of_range_or_unreadable_is_the_nearest_page() -> None:
    assert paging(request("page=9"), total=250, size=100).number == 3
    assert paging(request("page=0"), total=250, size=100).number == 1
    assert paging(request("page=two"), total=250, size=100).number == 1
    empty = paging(request(""), total=0, size=100)
    assert (empty.number, empty.pages, empty.rows([])) == (1, 1, [])


def test_two_lists_on_one_page_page_apart() -> None:
    shown = paging(request("changes=2&tenants=3"), total=500, size=100, param="tenants")
    assert shown.number == 3
    assert parse_qs(urlsplit(shown.href(4)).query) == {"changes": ["2"], "tenants": ["4"]}
