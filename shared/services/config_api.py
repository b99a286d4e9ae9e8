"""Reading and changing the configuration piece by piece: billing profiles, tenants (with their
companies, user filters and licence mappings), custom licences, exclusions, or the whole document.

Every change follows one path: read the current configuration and its version, apply the change
to the document, validate the WHOLE resulting document (so rules that span entries apply: a
mapping naming a missing profile, a line billed twice, ...), refuse user filters that overlap on
the tenant's latest snapshot, then save it as a new version with who made the change and why,
on condition that nobody saved in between (``ConflictError`` otherwise). Nothing is half-written:
a refused change leaves the stored configuration as it was.

Errors name the field as the caller sent it: ``billingProfiles[0].price.amount`` for a whole
document, ``price.amount`` for a single profile's PUT.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from shared.adapters.config_store import ConfigRepository, ConfigVersion
from shared.adapters.snapshot_store import SnapshotRepository
from shared.config.input_limits import read_document
from shared.config.schema import SeatSyncConfig, TenantConfig, dump_config, is_guid, parse_config
from shared.config.yaml_io import to_yaml
from shared.errors import ConfigError, ConflictError, RequestValidationError, SeatSyncError
from shared.services.onboarding import overlap_problems


class NotFoundError(SeatSyncError):
    """No such entry (answered with 404)."""

    def __init__(self, what: str, key: str) -> None:
        self.what = what
        self.key = key
        super().__init__(f"no {what} '{key}'")


class InUseError(SeatSyncError):
    """The entry is still used by others and cannot be deleted (answered with 409);
    ``used_by`` names each user of it."""

    def __init__(self, message: str, used_by: list[str]) -> None:
        self.used_by = used_by
        super().__init__(message)


# ------------------------------------------------------------------------ problems and fields

_SECTIONS = ("psaConnections", "billingProfiles", "customLicences", "excludedLicences", "safety", "notifications",
             "tenants", "version")
_DOCUMENT_SPLIT = re.compile(r"; (?=(?:" + "|".join(_SECTIONS) + r")\b)")
_IDENT = re.compile(r"[A-Za-z0-9_-]+")
_NAME_END = re.compile(r"\)(?=[.:\[]|$)")


def split_problems(problems: Iterable[str]) -> list[str]:
    """``parse_config`` reports the rules that span entries as one ``(document): a; b`` problem:
    give each its own line, named by its entry like the field problems."""
    out: list[str] = []
    for problem in problems:
        if problem.startswith("(document): "):
            out.extend(_DOCUMENT_SPLIT.split(problem.removeprefix("(document): ")))
        else:
            out.append(problem)
    return out


def locate(problem: str) -> tuple[str, str]:
    """``'tenants[0] (A: B).companies[0].psa: no PSA connection'`` -> ``('tenants[0] (A: B).companies[0].psa',
    'no PSA connection')``. A problem without a location gives ``('', problem)``."""
    if problem.startswith("(document): "):
        return "", problem.removeprefix("(document): ")
    pos = 0
    while pos < len(problem):
        if problem.startswith(": ", pos) and pos > 0:
            return problem[:pos], problem[pos + 2:]
        char = problem[pos]
        if char == "[":
            end = problem.find("]", pos)
            if end < 0 or not problem[pos + 1:end].isdigit():
                break
            pos = end + 1
            if problem.startswith(" (", pos):
                close = _NAME_END.search(problem, pos + 2)
                if close is None:
                    break
                pos = close.end()
        elif char == ".":
            pos += 1
        elif (match := _IDENT.match(problem, pos)) is not None:
            pos = match.end()
        else:
            break
    return "", problem


def rebase(problems: Iterable[str], prefixes: Iterable[str], replacement: str = "") -> list[str]:
    """Problems inside one entry named relative to it: with prefix ``billingProfiles[2]``,
    ``billingProfiles[2].price.amount: ...`` becomes ``price.amount: ...`` and a problem of the
    entry as a whole is named ``body``. Problems elsewhere keep their full location."""
    ordered = sorted(set(prefixes), key=len, reverse=True)
    out = []
    for problem in problems:
        for prefix in ordered:
            if problem.startswith(prefix + "."):
                out.append(replacement + problem[len(prefix) + 1:])
                break
            if problem.startswith(prefix + ": "):
                out.append((replacement.rstrip(".") or "body") + problem[len(prefix):])
                break
        else:
            out.append(problem)
    return out


def expected_version(if_match: str | None, query: str | None) -> str | None:
    """The version a caller edited, from ``If-Match`` (an ETag, quoted or not) or ``?version=``.
    ``*`` means whatever is current; ``none`` means there was no configuration yet."""
    value = if_match if if_match not in (None, "") else query
    if value is None or not value.strip():
        return None
    value = value.strip().removeprefix("W/").strip().strip('"')
    return value


def version_json(version: ConfigVersion | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {"versionId": version.version_id, "number": version.number, "savedAt": version.saved_at.isoformat(),
            "savedBy": version.saved_by, "comment": version.comment}


def load_document(text: bytes | str, *, yaml_text: bool) -> Any:
    """A request body as a document: JSON, or YAML (``Content-Type: application/yaml``), read
    strictly (size, UTF-8, nesting, duplicate keys: ``shared.config.input_limits``)."""
    if not text.strip():
        raise RequestValidationError("body", "the configuration document is required")
    return read_document(text, "body", yaml_text=yaml_text)


# ------------------------------------------------------------------------ entries


@dataclass(frozen=True)
class Section:
    """A list of named entries of the document."""

    key: str  # the document's field, e.g. billingProfiles
    id_field: str  # name or tenantId
    label: str  # for messages and history comments
    item: str  # the field naming one entry in answers, e.g. billingProfile

    def ident(self, value: str) -> str:
        if self.id_field == "tenantId":
            if not is_guid(value.strip()):
                raise RequestValidationError("tenantId", f"{value!r} is not a tenant id (a GUID)")
            return value.strip().lower()
        return value

    def matches(self, entry: Any, ident: str) -> bool:
        if not isinstance(entry, dict):
            return False
        value = entry.get(self.id_field)
        return isinstance(value, str) and (value.lower() if self.id_field == "tenantId" else value) == ident


PROFILES = Section("billingProfiles", "name", "billing profile", "billingProfile")
TENANTS = Section("tenants", "tenantId", "tenant", "tenant")
CUSTOM_LICENCES = Section("customLicences", "name", "custom licence", "customLicence")


@dataclass(frozen=True)
class Change:
    """The result of a change: the new version (the old one when nothing changed)."""

    version: ConfigVersion | None
    changed: bool
    created: bool = False
    entry: Any = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"changed": self.changed, "version": self.version.version_id if self.version else None,
                               "number": self.version.number if self.version else None}
        return out


@dataclass
class _Edit:
    """What an edit touched: the entry's location (to name fields relative to it), the tenants
    whose filters to check, the history comment."""

    comment: str
    prefixes: list[str] = field(default_factory=list)
    tenants: set[str] = field(default_factory=set)
    tenant_prefix: Callable[[int, TenantConfig], str] | None = None
    created: bool = False
    entry_index: int | None = None


class ConfigApi:
    """The configuration's read and change operations, over its versioned store."""

    def __init__(self, repository: ConfigRepository, snapshots: SnapshotRepository) -> None:
        self.repository = repository
        self.snapshots = snapshots

    # -- whole document ------------------------------------------------------------------
    def read(self) -> tuple[SeatSyncConfig, ConfigVersion | None]:
        return self.repository.current()

    def document(self) -> tuple[dict[str, Any], ConfigVersion | None]:
        config, version = self.read()
        return dump_config(config), version

    def export_yaml(self) -> tuple[str, ConfigVersion | None]:
        config, version = self.read()
        return to_yaml(config), version

    def put_document(self, document: Any, expected: str | None, actor: str, comment: str | None = None) -> Change:
        """Replace the whole document. ``expected`` is required: the version the caller edited
        (``*``: overwrite whatever is current)."""
        if expected is None:
            raise RequestValidationError(
                "If-Match", "give the version you edited: the If-Match header (the ETag of GET /api/config) or "
                            "?version=; '*' overwrites whatever is current")
        if not isinstance(document, dict):
            raise ConfigError("the document must be a mapping with 'psaConnections' and 'tenants'", "configuration")
        body = copy.deepcopy(document)

        def edit(current: dict[str, Any]) -> _Edit:
            current.clear()
            current.update(body)
            return _Edit(comment or "configuration document replaced")

        return self._change(expected, actor, edit, source="configuration", whole=True)

    def history(self) -> list[ConfigVersion]:
        """Every saved version, newest first."""
        return sorted(self.repository.history(), key=lambda v: v.number, reverse=True)

    def old_version(self, version_id: str) -> dict[str, Any]:
        try:
            return dump_config(self.repository.version(version_id))
        except KeyError:
            raise NotFoundError("configuration version", version_id) from None

    # -- entries -------------------------------------------------------------------------
    def list_entries(self, section: Section) -> tuple[list[dict[str, Any]], ConfigVersion | None]:
        document, version = self.document()
        return list(document.get(section.key) or []), version

    def get_entry(self, section: Section, ident: str) -> tuple[dict[str, Any], ConfigVersion | None]:
        key = section.ident(ident)
        entries, version = self.list_entries(section)
        for entry in entries:
            if section.matches(entry, key):
                return entry, version
        raise NotFoundError(section.label, key)

    def put_entry(self, section: Section, ident: str, body: Any, actor: str, *, expected: str | None = None,
                  comment: str | None = None) -> Change:
        """Create or replace one entry. The body's ``name``/``tenantId`` may be left out; when
        given it must be the URL's."""
        key = section.ident(ident)
        if not isinstance(body, dict):
            raise RequestValidationError("body", f"must be a JSON object (the {section.label})")
        entry = copy.deepcopy(body)
        given = entry.get(section.id_field)
        if given is None:
            entry[section.id_field] = key
        elif not isinstance(given, str) or section.ident(given) != key:
            raise RequestValidationError(
                section.id_field, f"the body names {given!r} but the URL {key!r}; to rename, create the new "
                                  f"{section.label} and delete the old one")

        def edit(document: dict[str, Any]) -> _Edit:
            entries = document.setdefault(section.key, [])
            index = next((i for i, e in enumerate(entries) if section.matches(e, key)), None)
            created = index is None
            if index is None:
                entries.append(entry)
                index = len(entries) - 1
            else:
                entries[index] = entry
            return _Edit(comment or f"{section.label} '{key}' {'created' if created else 'changed'}",
                         prefixes=_prefixes(section, index, entry), created=created, entry_index=index,
                         tenants={key} if section is TENANTS else set(),
                         tenant_prefix=(lambda i, t: "") if section is TENANTS else None)

        return self._change(expected, actor, edit, source=section.label, entry_section=section, entry_key=key)

    def delete_entry(self, section: Section, ident: str, actor: str, *, expected: str | None = None,
                     comment: str | None = None) -> Change:
        key = section.ident(ident)
        config, _ = self.read()
        used = users_of(config, section, key)
        if used:
            raise InUseError(f"{section.label} '{key}' is used by {len(used)} mapping(s); point them elsewhere "
                             "or delete them first", used)

        def edit(document: dict[str, Any]) -> _Edit:
            entries = document.get(section.key) or []
            index = next((i for i, e in enumerate(entries) if section.matches(e, key)), None)
            if index is None:
                raise NotFoundError(section.label, key)
            del entries[index]
            return _Edit(comment or f"{section.label} '{key}' deleted")

        return self._change(expected, actor, edit, source=section.label)

    def excluded_licences(self) -> tuple[list[str], ConfigVersion | None]:
        document, version = self.document()
        return list(document.get("excludedLicences") or []), version

    def put_excluded_licences(self, body: Any, actor: str, *, expected: str | None = None,
                              comment: str | None = None) -> Change:
        """Replace the licences excluded from billing everywhere (a list of SKU ids)."""
        values = body.get("excludedLicences") if isinstance(body, dict) else body
        if isinstance(body, dict) and set(body) - {"excludedLicences"}:
            raise RequestValidationError(sorted(set(body) - {"excludedLicences"})[0], "unknown field")
        if not isinstance(values, list):
            raise RequestValidationError("excludedLicences", "give a list of licence (SKU) ids")

        def edit(document: dict[str, Any]) -> _Edit:
            document["excludedLicences"] = list(values)
            return _Edit(comment or f"excluded licences set ({len(values)})")

        return self._change(expected, actor, edit, source="excluded licences")

    # -- mapping a licence, diff and rollback ----------------------------------------------
    def link_licence(self, tenant_id: str, company_index: int, sku_id: str, profile: str, agreement_id: str,
                     line_id: str | None, actor: str, *, expected: str | None = None) -> Change:
        """Bill an unlinked licence: add a mapping of the SKU to a billing profile and an
        agreement (and an existing line, or a new one the next run creates) to one company of
        the tenant. Validated like any change: a profile of another PSA, a line already billed
        or a licence already mapped is refused naming the field."""
        key = TENANTS.ident(tenant_id)
        if not is_guid(sku_id.strip()):
            raise RequestValidationError("skuId", f"{sku_id!r} is not a licence (SKU) id")
        entry: dict[str, Any] = {"skuId": sku_id.strip().lower(), "profile": profile, "agreementId": agreement_id}
        if line_id:
            entry["lineId"] = line_id

        def edit(document: dict[str, Any]) -> _Edit:
            tenants = document.get("tenants") or []
            index = next((i for i, t in enumerate(tenants) if TENANTS.matches(t, key)), None)
            if index is None:
                raise NotFoundError("tenant", key)
            companies = tenants[index].get("companies") or []
            if not 0 <= company_index < len(companies):
                raise RequestValidationError("company", f"the tenant has no company number {company_index + 1}")
            licences = companies[company_index].setdefault("licences", [])
            licences.append(entry)
            where = f"tenants[{index}]"
            name = tenants[index].get("name", "")
            return _Edit(f"licence {entry['skuId']} of '{name}' linked to profile '{profile}', agreement "
                         f"{agreement_id}" + (f" line {line_id}" if line_id else " (new line)"),
                         prefixes=[f"{where} ({name}).companies[{company_index}].licences[{len(licences) - 1}]",
                                   f"{where}.companies[{company_index}].licences[{len(licences) - 1}]"],
                         tenants={key}, tenant_prefix=_tenant_location)

        return self._change(expected, actor, edit, source="licence mapping")

    def rollback(self, version_id: str, actor: str, expected: str | None = None) -> Change:
        """Make an earlier version current again, as a new version (history is never rewritten)."""
        old = self.old_version(version_id)
        number = next((v.number for v in self.repository.history() if v.version_id == version_id), None)

        def edit(document: dict[str, Any]) -> _Edit:
            document.clear()
            document.update(old)
            return _Edit(f"rolled back to version {number} ({version_id})")

        return self._change(expected, actor, edit, source=f"configuration version {version_id}", whole=True)

    def diff(self, older: str, newer: str) -> str:
        """A unified diff of two versions' YAML (``current`` names the current one)."""
        def text(version_id: str) -> tuple[str, str]:
            if version_id == "current":
                config, version = self.read()
                return to_yaml(config), f"version {version.number if version else 0} (current)"
            return to_yaml(parse_config(self.old_version(version_id))), f"version {version_id}"

        (a, a_name), (b, b_name) = text(older), text(newer)
        return "".join(difflib.unified_diff(a.splitlines(keepends=True), b.splitlines(keepends=True),
                                            fromfile=a_name, tofile=b_name))

    # -- the one path of every change ----------------------------------------------------
    def _change(self, expected: str | None, actor: str, edit: Callable[[dict[str, Any]], _Edit], *, source: str,
                whole: bool = False, entry_section: Section | None = None, entry_key: str | None = None) -> Change:
        config, version = self.read()
        current_id = version.version_id if version else None
        if expected is not None and expected != "*":
            wanted = None if expected.lower() in ("none", "null") else expected
            if wanted != current_id:
                raise ConflictError(f"the configuration is at version {current_id or 'none'}, not {expected}: "
                                    "read it again and repeat the change")
        document = dump_config(config)
        done = edit(document)
        try:
            updated = parse_config(document, source=source)
        except ConfigError as exc:
            problems = split_problems(exc.problems)
            if done.prefixes:
                problems = rebase(problems, done.prefixes)
            raise ConfigError(problems, source) from None
        if whole:  # only the tenants whose entry changes are checked against their snapshot
            done.tenants = {t.tenant_id for t in updated.tenants if config.tenant(t.tenant_id) != t}
            done.tenant_prefix = _tenant_location
        overlaps = self._overlaps(updated, done)
        if overlaps:
            raise ConfigError(overlaps, source)
        entry = None
        if entry_section is not None and entry_key is not None:
            entry = next((e for e in dump_config(updated).get(entry_section.key) or []
                          if entry_section.matches(e, entry_key)), None)
        if updated == config and version is not None:
            return Change(version, changed=False, created=False, entry=entry)
        saved = self.repository.save(updated, actor, done.comment, expected=version)
        return Change(saved, changed=True, created=done.created, entry=entry)

    def _overlaps(self, config: SeatSyncConfig, done: _Edit) -> list[str]:
        return filter_overlaps(config, self.snapshots, done.tenants, done.tenant_prefix)


def split_tenants(config: SeatSyncConfig, tenant_ids: Collection[str] | None = None) -> list[TenantConfig]:
    """The tenants whose users two companies' filters could both match (two filtered companies)."""
    return [t for t in config.tenants if (tenant_ids is None or t.tenant_id in tenant_ids)
            and sum(1 for c in t.companies if c.user_filter and not c.user_filter.empty) >= 2]


def filter_overlaps(config: SeatSyncConfig, snapshots: SnapshotRepository, tenant_ids: Collection[str] | None = None,
                    prefix: Callable[[int, TenantConfig], str] | None = None) -> list[str]:
    """Users of the tenants' latest snapshots whose filters would bill them twice, one problem per
    group of companies, named ``tenants[i] (name).companies[j].userFilter`` (or relative to
    ``prefix``). Every path that stores configuration refuses them; a tenant never collected has
    no users to check (the sync refuses to bill overlapping users anyway)."""
    problems: list[str] = []
    prefix = prefix or _tenant_location
    split = {t.tenant_id for t in split_tenants(config, tenant_ids)}
    for index, tenant in enumerate(config.tenants):
        if tenant.tenant_id not in split:
            continue
        snapshot = snapshots.latest(tenant.tenant_id)
        if snapshot is not None:
            problems.extend(overlap_problems(tenant, snapshot, prefix=prefix(index, tenant)))
    return problems


def _tenant_location(index: int, tenant: TenantConfig) -> str:
    return f"tenants[{index}] ({tenant.name})."


def _prefixes(section: Section, index: int, entry: dict[str, Any]) -> list[str]:
    base = f"{section.key}[{index}]"
    prefixes = [base]
    if section is TENANTS:
        name = entry.get("name")
        if isinstance(name, str):
            prefixes.extend({f"{base} ({name})", f"{base} ({name.strip()})"})
    return prefixes


def users_of(config: SeatSyncConfig, section: Section, key: str) -> list[str]:
    """The mappings that use a billing profile or a shared custom licence (nothing uses a tenant)."""
    used: list[str] = []
    if section is TENANTS:
        return used
    for t, tenant in enumerate(config.tenants):
        own = {c.name for c in tenant.custom_licences}
        for c, company in enumerate(tenant.companies):
            for k, licence in enumerate(company.licences):
                where = f"tenants[{t}] ({tenant.name}).companies[{c}].licences[{k}]"
                uses_profile = section is PROFILES and licence.profile == key
                uses_custom = section is CUSTOM_LICENCES and licence.custom == key and key not in own
                if uses_profile or uses_custom:
                    used.append(f"{where} ({licence.source})")
    return used


def tenant_summary(tenant: TenantConfig) -> dict[str, Any]:
    """A tenant in a listing: its companies with their filters and how many licences each bills."""
    return {
        "tenantId": tenant.tenant_id, "name": tenant.name, "enabled": tenant.enabled,
        **({"access": tenant.access} if tenant.access != "gdap" else {}),
        **({"partner": tenant.partner} if tenant.partner else {}),
        "companies": [{"psa": c.psa, "companyId": c.company_id, "name": c.name,
                       **({"userFilter": c.user_filter.model_dump(by_alias=True, exclude_defaults=True)}
                          if c.user_filter and not c.user_filter.empty else {}),
                       "licences": len(c.licences)} for c in tenant.companies],
    }
