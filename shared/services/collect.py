"""Collect one tenant: read its licences and users from Graph (with the app of the partner account
the run chose for it), add what the subscription sources said about it in this run (when any is
configured), store the snapshot.

A tenant whose token or any read fails produces no snapshot, so nothing downstream can plan
from a partial picture: its billing stays exactly as it was, and the outcome says why. That
includes a subscription source that could not be read for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import requests
from azure.core.exceptions import AzureError

from shared.adapters.run_store import RunRepository
from shared.adapters.snapshot_store import SnapshotRepository
from shared.adapters.tables import StoreError
from shared.contracts import CollectRequest, TenantOutcome, TenantStatus
from shared.domain.model import Subscription, TenantSnapshot
from shared.domain.partner import PartnerFacts
from shared.domain.quantities import assignment_mismatches
from shared.errors import GraphAuthError, GraphError, SourceError
from shared.ports import GraphPort

log = logging.getLogger(__name__)

PartnerLookup = Callable[[str, tuple[Subscription, ...]], PartnerFacts | None]
"""The tenant's partner facts from the run's subscription sources (``SourceError`` when they
cannot be known)."""


def collect_tenant(graph: GraphPort, snapshots: SnapshotRepository, runs: RunRepository,
                   request: CollectRequest, now: datetime, partner: PartnerLookup | None = None) -> TenantOutcome:
    """Read one tenant and store its snapshot; the outcome is recorded for the run report.

    Errors of the tenant's own reads (auth, Graph, network, unexpected data) make a failed
    outcome; errors of the store propagate so the activity is retried.
    """
    calls_before = graph.calls

    def outcome_of(status: TenantStatus, **details: Any) -> TenantOutcome:
        return TenantOutcome(tenant_id=request.tenant_id, name=request.name, status=status,
                             graph_calls=graph.calls - calls_before, partner=request.partner, **details)

    try:
        readout = graph.collect_tenant(request.tenant_id, group_ids=request.group_ids,
                                       mailboxes=request.mailboxes, managed_devices=request.managed_devices,
                                       sign_ins=request.sign_ins)
        facts = partner(request.tenant_id, readout.subscriptions) if partner is not None else None
        snapshot = TenantSnapshot(
            tenant_id=request.tenant_id, run_id=request.run_id, collected_at=now, skus=readout.skus,
            users=readout.users, subscriptions=readout.subscriptions, groups=dict(readout.groups),
            mailboxes=readout.mailboxes, managed_devices=readout.managed_devices, partner=facts,
            sign_ins=readout.sign_ins,
        )
        skus, users = snapshot.skus, snapshot.users
    except (StoreError, AzureError):
        raise  # the store itself failed: the activity is retried
    except SourceError as exc:
        outcome = outcome_of("failed", error=str(exc))
    except GraphAuthError as exc:
        outcome = outcome_of("auth-failed", error=str(exc), error_code=exc.code)
    except (GraphError, requests.RequestException) as exc:
        outcome = outcome_of("failed", error=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # unexpected data from one tenant must not stop the others
        log.exception("collecting tenant %s failed", request.tenant_id)
        outcome = outcome_of("failed", error=f"unexpected {type(exc).__name__}: {exc}")
    else:
        snapshots.save(snapshot)
        warnings = [
            f"licence {sku_id}: Microsoft counts {consumed} assigned, {held} users hold it "
            "(the directory changed during the read?)"
            for sku_id, consumed, held in assignment_mismatches(snapshot)
        ]
        unavailable = snapshot.sign_ins.unavailable if snapshot.sign_ins is not None else None
        outcome = outcome_of("ok", sku_count=len(skus), user_count=len(users), warnings=warnings,
                             sign_ins_unavailable=unavailable)
    if outcome.status != "ok":
        log.warning("tenant %s (%s) not collected: %s", request.name, request.tenant_id, outcome.error)
    runs.record_tenant(request.run_id, outcome)
    return outcome
