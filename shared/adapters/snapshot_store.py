"""Tenant snapshots and licence-count history in Table Storage.

Table ``<prefix>snapshots``, partition = tenant id, all of a tenant's snapshot of a run written in
one entity group transaction (when its document fits in one, as all but the largest tenants' do):
- ``<runId>~doc~NNNNN``: the snapshot document (SKUs, users, subscriptions, ...), compressed
  parts, so a tenant with 10,000 users fits despite the 64 KiB property limit;
- ``<runId>``: the header (counts, collected time, document reference), written after the
  parts: a snapshot without its header was never completed and is never read;
- ``latest``: which run holds the tenant's newest complete snapshot;
- ``counts~<skuId>~<runId>``: purchased, assigned, the assigned users' names and the licence's
  state (its worst state when some seats are not active, "" when all are) per licence per run.
  Rows are only ever added: a new day never overwrites an older one, which makes these the
  history of every tenant's licence counts. Versions before them kept these rows in the table
  ``<prefix>licencecounts`` (partition = tenant id, row = ``<skuId>~<runId>``), which is still
  read with them, so no history is lost.

Table ``<prefix>latestlicences``, partition ``tenants``, row = tenant id: the licences of the
tenant's newest snapshot that a mapping could bill (``billable_skus``), so that every tenant's
unlinked licences are listed from one partition instead of every tenant's snapshot. The push of a
batch of tenants writes their rows together, once it has read their snapshots.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from azure.data.tables import UpdateMode

from shared.adapters.source_store import facts_from_json, facts_to_json
from shared.adapters.tables import (
    DocumentRef,
    TableStore,
    read_document,
    row_range,
    submit_batches,
    write_committed_document,
)
from shared.domain.billing import billable_skus
from shared.domain.model import (
    DirectoryUser,
    GroupMember,
    Mailbox,
    ManagedDevice,
    SignIn,
    SignIns,
    SkuCount,
    Subscription,
    TenantSnapshot,
)
from shared.domain.subscriptions import licence_state

_NAMES_LIMIT = 30_000  # characters of user names kept on a history row (64 KiB property)
_COUNTS = "counts~"  # row key prefix of the history rows in a tenant's snapshot partition


_LATEST_PK = "tenants"
_LICENCES_LIMIT = 60_000  # characters of the latest licences kept on one row (64 KiB property)


@dataclass(frozen=True)
class LatestLicences:
    """The billable licences of a tenant's newest snapshot (``shared.domain.billing.billable_skus``)."""

    tenant_id: str
    run_id: str
    collected_at: datetime
    skus: tuple[SkuCount, ...]

    @classmethod
    def of(cls, snapshot: TenantSnapshot) -> LatestLicences:
        return cls(snapshot.tenant_id, snapshot.run_id, snapshot.collected_at, tuple(billable_skus(snapshot)))


@dataclass(frozen=True)
class LicenceCount:
    tenant_id: str
    sku_id: str
    sku_part_number: str
    run_id: str
    collected_at: datetime
    purchased: int
    assigned: int
    users: tuple[str, ...]
    users_truncated: bool = False
    state: str | None = None
    """The licence's worst state that run ("" all seats active; None: not recorded then)."""


def snapshot_to_document(snapshot: TenantSnapshot) -> dict[str, Any]:
    return {
        "tenantId": snapshot.tenant_id,
        "runId": snapshot.run_id,
        "collectedAt": snapshot.collected_at.isoformat(),
        # flat dataclasses: their field dicts serialise as they are (asdict's deep copy is slow
        # for tenants of thousands of users)
        "skus": [dict(vars(s)) for s in snapshot.skus],
        "users": [dict(vars(u)) for u in snapshot.users],
        "subscriptions": [
            {**asdict(s), "created": _iso(s.created), "next_lifecycle": _iso(s.next_lifecycle)}
            for s in snapshot.subscriptions
        ],
        "groups": {gid: [asdict(m) for m in members] for gid, members in snapshot.groups.items()},
        "mailboxes": None if snapshot.mailboxes is None else [asdict(m) for m in snapshot.mailboxes],
        "managedDevices": (None if snapshot.managed_devices is None
                           else [asdict(d) for d in snapshot.managed_devices]),
        "partner": None if snapshot.partner is None else facts_to_json(snapshot.partner),
        "signIns": _sign_ins_to_json(snapshot.sign_ins),
    }


def snapshot_from_document(document: dict[str, Any]) -> TenantSnapshot:
    return TenantSnapshot(
        tenant_id=document["tenantId"],
        run_id=document["runId"],
        collected_at=datetime.fromisoformat(document["collectedAt"]),
        skus=tuple(SkuCount(**s) for s in document["skus"]),
        users=tuple(DirectoryUser(**{**u, "sku_ids": tuple(u["sku_ids"]),
                                      "business_phones": tuple(u.get("business_phones") or ()),
                                      "proxy_addresses": tuple(u.get("proxy_addresses") or ())})
                    for u in document["users"]),
        subscriptions=tuple(
            Subscription(**{**s, "created": _dt(s.get("created")),
                            "next_lifecycle": _dt(s.get("next_lifecycle"))})
            for s in document.get("subscriptions", [])
        ),
        groups={gid: tuple(GroupMember(**m) for m in members)
                for gid, members in document.get("groups", {}).items()},
        mailboxes=(None if document.get("mailboxes") is None
                   else tuple(Mailbox(**m) for m in document["mailboxes"])),
        managed_devices=(None if document.get("managedDevices") is None
                         else tuple(ManagedDevice(**d) for d in document["managedDevices"])),
        partner=None if document.get("partner") is None else facts_from_json(document["partner"]),
        sign_ins=_sign_ins_from_json(document.get("signIns")),
    )


def _sign_ins_to_json(sign_ins: SignIns | None) -> dict[str, Any] | None:
    """Compact: one ``[user id, last sign-in, created]`` triple a user (tenants of 10,000 users)."""
    if sign_ins is None:
        return None
    return {"unavailable": sign_ins.unavailable,
            "users": [[s.user_id, _iso(s.last), _iso(s.created)] for s in sign_ins.users]}


def _sign_ins_from_json(data: Any) -> SignIns | None:
    if not isinstance(data, dict):
        return None  # snapshots stored before sign-ins were read, or with the alert off
    return SignIns(users=tuple(SignIn(str(uid), _dt(last), _dt(created)) for uid, last, created in data["users"]),
                   unavailable=data.get("unavailable"))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _latest_row(latest: LatestLicences) -> dict[str, Any]:
    licences = json.dumps([[s.sku_id, s.sku_part_number, s.purchased, s.consumed] for s in latest.skus])
    # too many to keep on a row (never seen): no licences, so the tenant's snapshot is read instead
    return {"PartitionKey": _LATEST_PK, "RowKey": latest.tenant_id, "RunId": latest.run_id,
            "CollectedAt": latest.collected_at.isoformat(),
            "Licences": licences if len(licences) <= _LICENCES_LIMIT else ""}


class SnapshotRepository:
    def __init__(self, store: TableStore) -> None:
        self._snapshots = store.table("snapshots")
        self._earlier_counts = store.table("licencecounts")
        self._latest = store.table("latestlicences")

    def save(self, snapshot: TenantSnapshot) -> None:
        """Store a complete snapshot and its history rows in one transaction when the document fits
        in one: the history rows, the document with its header (which commits it) and the
        ``latest`` pointer. Otherwise the document's parts first, then the history rows, the header
        and the pointer."""
        tenant, run = snapshot.tenant_id, snapshot.run_id
        rows = []
        for sku in snapshot.skus:
            names = sorted(u.user_principal_name for u in snapshot.users_holding(sku.sku_id))
            text = json.dumps(names)
            truncated = len(text) > _NAMES_LIMIT
            if truncated:
                while names and len(json.dumps(names)) > _NAMES_LIMIT:
                    names = names[: len(names) * 9 // 10]
                text = json.dumps(names)
            rows.append({
                "PartitionKey": tenant, "RowKey": f"{_COUNTS}{sku.sku_id}~{run}",
                "SkuId": sku.sku_id, "SkuPartNumber": sku.sku_part_number, "RunId": run,
                "CollectedAt": snapshot.collected_at.isoformat(), "Purchased": sku.purchased,
                "Assigned": sku.consumed, "Users": text, "UsersTruncated": truncated,
                "State": state.state if (state := licence_state(sku, snapshot.subscriptions)) else "",
            })
        write_committed_document(
            self._snapshots, tenant, f"{run}~doc", snapshot_to_document(snapshot),
            {"PartitionKey": tenant, "RowKey": run, "CollectedAt": snapshot.collected_at.isoformat(),
             "SkuCount": len(snapshot.skus), "UserCount": len(snapshot.users)},
            before=rows,
            also=[{"PartitionKey": tenant, "RowKey": "latest", "RunId": run,
                   "CollectedAt": snapshot.collected_at.isoformat()}])

    def record_latest_licences(self, licences: Sequence[LatestLicences]) -> None:
        """Keep each tenant's billable licences of its newest snapshot (``LatestLicences.of``) for
        ``latest_licences``: one partition, so a push's tenants are kept in one transaction."""
        submit_batches(self._latest, [("upsert", _latest_row(latest), {"mode": UpdateMode.REPLACE})
                                      for latest in licences])

    def latest_licences(self) -> dict[str, LatestLicences]:
        """Every tenant's latest billable licences, by tenant id, in one partition read (tenants
        whose row is missing or too large to keep are not in it: read their snapshot)."""
        found = {}
        for row in row_range(self._latest, _LATEST_PK, "", "~"):
            if not row.get("Licences"):
                continue
            found[str(row["RowKey"])] = LatestLicences(
                tenant_id=str(row["RowKey"]), run_id=str(row["RunId"]),
                collected_at=datetime.fromisoformat(str(row["CollectedAt"])),
                skus=tuple(SkuCount(str(sku_id), str(part), int(purchased), int(consumed))
                           for sku_id, part, purchased, consumed in json.loads(str(row["Licences"]))))
        return found

    def get(self, tenant_id: str, run_id: str) -> TenantSnapshot | None:
        """The tenant's snapshot of the run (None when it was not completed): its header and its
        document in one read."""
        found = {str(e["RowKey"]): e for e in row_range(self._snapshots, tenant_id, run_id, f"{run_id}~~")}
        header = found.get(run_id)
        if header is None:
            return None
        return snapshot_from_document(read_document(self._snapshots, DocumentRef.from_entity(header), found))

    def latest(self, tenant_id: str) -> TenantSnapshot | None:
        pointer = next(iter(row_range(self._snapshots, tenant_id, "latest", "latest~")), None)
        if pointer is None:
            return None
        return self.get(tenant_id, str(pointer["RunId"]))

    def licence_history(self, tenant_id: str, sku_id: str | None = None) -> Iterator[LicenceCount]:
        """The tenant's history rows (of one licence), by licence and then run: those kept with the
        snapshots and those of the ``licencecounts`` table, where versions before it kept them."""
        low, high = (f"{sku_id}~", f"{sku_id}~~") if sku_id else ("", "~")
        rows = list(row_range(self._snapshots, tenant_id, f"{_COUNTS}{low}", f"{_COUNTS}{high}"))
        rows += row_range(self._earlier_counts, tenant_id, low, high)
        for row in sorted(rows, key=lambda r: (str(r["SkuId"]), str(r["RunId"]))):
            yield LicenceCount(
                tenant_id=tenant_id, sku_id=str(row["SkuId"]),
                sku_part_number=str(row.get("SkuPartNumber", "")), run_id=str(row["RunId"]),
                collected_at=datetime.fromisoformat(str(row["CollectedAt"])),
                purchased=int(row["Purchased"]), assigned=int(row["Assigned"]),
                users=tuple(json.loads(str(row.get("Users") or "[]"))),
                users_truncated=bool(row.get("UsersTruncated", False)),
                state=None if row.get("State") is None else str(row["State"]),
            )
