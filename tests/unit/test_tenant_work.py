"""What a run sets out to do with each tenant (``work_for``): every process of a run keeps it
for each of thousands of tenants, so it must stay small."""

from __future__ import annotations

from shared.config.schema import parse_config
from shared.services.runs import work_for
from tests.unit.test_compact_config import _document


def test_a_tenant_s_work_carries_its_access_and_shares_its_set_of_given_fields() -> None:
    config = parse_config(_document())
    works = [work_for(config, tenant, partner="default", standing="ok", guard=None) for tenant in config.tenants]
    guarded = work_for(config, config.tenants[0], partner=None, standing="vanished", guard="no GDAP relationship")
    assert [(w.partner, w.standing, w.guard) for w in works] == [("default", "ok", None)] * len(works)
    assert (guarded.partner, guarded.standing, guarded.guard) == (None, "vanished", "no GDAP relationship")
    assert {"partner", "standing", "guard"} <= works[0].model_fields_set
    # one set of given fields for all of them, not one each (a copy with changes keeps its own)
    assert len({id(w.__pydantic_fields_set__) for w in [*works, guarded]}) == 1
    plain = work_for(config, config.tenants[0])
    assert (plain.partner, plain.standing, plain.guard) == (None, None, None)
    assert plain.__pydantic_fields_set__ is works[0].__pydantic_fields_set__
