"""The shared PSA reads ask for what the tenants a run set out to do need, as configured."""

from __future__ import annotations

from shared.config.schema import parse_config
from shared.contracts import StartedRun, TenantWork
from shared.services.psa_reads import needed, run_tenants
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
