"""The shared PSA reads ask for what the tenants a run set out to do need, as configured."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pytest

from shared.adapters.shared_reads_store import ConnectionReads, RunReads
from shared.adapters.tables import StoreError
from shared.config.schema import parse_config
from shared.contracts import StartedRun, TenantWork
from shared.domain.model import Agreement
from shared.services.psa_reads import from_prepared, needed, run_tenants
from tests.unit.test_compact_config import T3, _document
from tests.unit.test_config_schema import T1, T2


def test_the_run_s_tenants_are_those_it_set_out_to_do_and_still_configured() -> None:
    config = parse_config(_document()).compacted()
    gone = "aaaaaaaa-0000-0000-0000-0000000000ff"
    started = StartedRun(run_id="r1", tenants=[TenantWork(tenant_id=T3, name="Northwind"),
                                               TenantWork(tenant_id=gone, name="Removed since"),
                                               TenantWork(tenant_id=T1.upper(), name="Contoso")])
    tenants = run_tenants(config, iter(started.tenants))
    assert iter(tenants) is tenants, "one at a time, not a list of every tenant"
    assert [t.tenant_id for t in tenants] == [T3, T1.lower()]
    assert T2 not in {t.tenant_id for t in run_tenants(config, started.tenants)}


def test_what_is_read_is_what_those_tenants_need() -> None:
    config = parse_config(_document()).compacted()
    only_third = StartedRun(run_id="r1", tenants=[TenantWork(tenant_id=T3, name="Northwind")])
    every = StartedRun(run_id="r1", tenants=[TenantWork(tenant_id=t.tenant_id, name=t.name) for t in config.tenants])
    assert needed(config, run_tenants(config, only_third.tenants)) == {"connectwise": ({"102"}, set())}
    assert needed(config, run_tenants(config, every.tenants)) == needed(config, config.tenants)


class _Rows:
    """A run's agreement rows as the store answers them (``SharedReadsRepository.agreements``)."""

    def __init__(self, rows: dict[str, Agreement | None], fail: bool = False) -> None:
        self.rows, self.fail = rows, fail
        self.asked: list[set[str]] = []

    def agreements(self, run_id: str, psa: str, ids: Iterable[str]) -> dict[str, Agreement | None]:
        self.asked.append(set(ids))
        if self.fail:
            raise StoreError("Table Storage is unreachable")
        return {i: self.rows[i] for i in self.asked[-1] if i in self.rows}


def _run(rows: _Rows, *, products: frozenset[str] = frozenset({"p1"}), error: str | None = None) -> RunReads:
    header = ConnectionReads("connectwise", frozenset(), products, products=(), error=error, in_rows=True)
    return RunReads("r1", {"connectwise": header}, rows)  # type: ignore[arg-type]


def test_a_push_plans_from_its_own_agreements_rows_and_reads_the_psa_only_where_they_fall_short(
        caplog: pytest.LogCaptureFixture) -> None:
    one, two = Agreement("connectwise", "100", "1", "One"), Agreement("connectwise", "101", "2", "Two")
    rows = _Rows({"100": one, "101": two, "102": None})
    found = from_prepared(_run(rows), "connectwise", {"100", "102"}, {"p1"})
    assert found is not None and found.agreements == (one,) and found.asked_agreements == {"100", "102"}
    assert rows.asked == [{"100", "102"}], "only the push's own agreements are read"
    assert from_prepared(_run(rows), "connectwise", {"100", "4242"}, set()) is None, "4242 was not asked by the run"
    assert from_prepared(_run(rows), "connectwise", {"100"}, {"p2"}) is None, "a product not asked by the run"
    assert from_prepared(_run(rows, error="unreachable"), "connectwise", {"100"}, set()) is None
    assert from_prepared(_run(rows), "autotask", {"100"}, set()) is None
    assert from_prepared(None, "connectwise", {"100"}, set()) is None
    with caplog.at_level(logging.WARNING):
        assert from_prepared(_run(_Rows({}, fail=True)), "connectwise", {"100"}, set()) is None
    assert "reads them from the PSA" in caplog.text and "unreachable" in caplog.text
