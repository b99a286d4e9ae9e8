"""Names of the Durable functions, in one place.

Durable Functions addresses orchestrators and activities by name; the blueprints register
each function under the constant here and the orchestrator calls it by the same constant, and
a test checks that every name is registered exactly once.
"""

from __future__ import annotations

SYNC_INSTANCE_ID = "seatsync-sync"
"""The sync orchestration's fixed instance id: one run at a time."""

SYNC_ORCHESTRATOR = "sync_orchestrator"
SYNC_CHUNK = "sync_chunk"
START_RUN = "start_run"
COLLECT_TENANT = "collect_tenant"
RECONCILE_WRITES = "reconcile_writes"
PUSH_CHANGES = "push_changes"
FINISH_RUN = "finish_run"
NOTIFY_RUN = "notify_run"
LOAD_CHUNK = "load_chunk"
SHARE_PSA_READS = "share_psa_reads"

ACTIVITIES = (START_RUN, RECONCILE_WRITES, COLLECT_TENANT, PUSH_CHANGES, FINISH_RUN, NOTIFY_RUN, LOAD_CHUNK,
              SHARE_PSA_READS)
ORCHESTRATORS = (SYNC_ORCHESTRATOR, SYNC_CHUNK)
