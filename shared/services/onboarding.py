"""Onboarding: match every GDAP customer tenant to its PSA company, then add the confirmed ones.

The matching (``suggest``) and the change it leads to (``apply_onboarding``) are pure; the
functions at the end read Graph and the PSAs and save the configuration.

Scoring (docs/onboarding.md explains it with examples). Each (tenant, company) pair gathers up
to three kinds of evidence, the strongest of each kind counting:

- name: the very same name (ignoring case and spacing): 0.95; the same name once case, accents,
  punctuation and legal suffixes (Ltd, Limited, Inc, LLC, GmbH, Corp, Corporation, Pty, PLC,
  "& Co", ...) are ignored: 0.90; the same apart from
  spaces, or the tenant's name equal to the company's identifier: 0.80; one name beginning with
  the other's words ('Litware' ~ 'Litware Inc - Sales'): 0.65; a similar name
  (``difflib`` ratio r >= 0.75 on the normalised names): 0.5 + 1.2 x (r - 0.75), so 0.50 to 0.80;
- website: the company's website host is one of the tenant's domains: 0.90; one is a subdomain
  of the other: 0.85;
- contacts: contacts of the company have email addresses at one of the tenant's domains: 0.75
  for one contact, 0.80 for two, 0.85 for three or more.

Free-mail domains (gmail.com, outlook.com, ...) never count, nor does a domain found on more than
three companies (typically the MSP's own). Evidence combines as 1 - (1 - name)(1 - website)(1 - contacts).
The suggestion's confidence is the best candidate's score, less the ambiguity penalty
max(0, 0.20 - margin) where margin is its lead over the runner-up. Levels: high >= 0.85,
medium >= 0.70, low below, none when no company shows any evidence.
"""

from __future__ import annotations

import difflib
import logging
import re
import threading
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import requests
from pydantic import ValidationError

from shared.adapters.config_store import ConfigRepository, ConfigVersion
from shared.adapters.snapshot_store import SnapshotRepository
from shared.config.partners import DEFAULT_PARTNER, AccessMode
from shared.config.schema import (
    CompanyLink,
    SeatSyncConfig,
    TenantConfig,
    UserFilter,
    dump_config,
    format_location,
    is_guid,
    parse_config,
)
from shared.domain.billing import overlapping_users
from shared.domain.model import CustomerTenant, PsaCompany, PsaContact, TenantSnapshot
from shared.errors import ConfigError, GraphError, HttpServiceError, RequestValidationError
from shared.ports import GraphPort, PsaPort
from shared.settings import DEFAULT_AUTHORITY_HOST

log = logging.getLogger(__name__)

Level = Literal["high", "medium", "low", "none"]

HIGH, MEDIUM = 0.85, 0.70
SAME_NAME, EXACT_NAME, COMPACT_NAME, PREFIX_NAME, FUZZY_CUTOFF = 0.95, 0.90, 0.80, 0.65, 0.75
WEBSITE_EXACT, WEBSITE_RELATED = 0.90, 0.85
CONTACTS = (0.75, 0.80, 0.85)  # one, two, three or more contacts at a tenant domain
AMBIGUITY_WINDOW = 0.20
SHARED_DOMAIN_LIMIT = 3  # a domain on more companies than this says nothing about any of them
ALTERNATIVES = 3

LEGAL_SUFFIXES = frozenset({
    "ltd", "limited", "inc", "incorporated", "llc", "llp", "lp", "plc", "corp", "corporation", "co", "company",
    "pty", "pte", "pvt", "private", "gmbh", "mbh", "ag", "kg", "kgaa", "ug", "se", "sa", "sas", "sarl", "srl", "spa",
    "sl", "bv", "nv", "ab", "as", "asa", "oy", "oyj", "aps", "kk", "sro", "lda", "ltda", "cc",
})
FREE_MAIL = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "passport.com",
    "yahoo.com", "ymail.com", "rocketmail.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me",
    "protonmail.com", "pm.me", "gmx.com", "gmx.net", "gmx.de", "web.de", "mail.com", "zoho.com", "yandex.com",
    "yandex.ru", "mail.ru", "qq.com", "163.com", "126.com", "btinternet.com", "comcast.net", "verizon.net",
    "att.net", "sbcglobal.net", "bigpond.com", "orange.fr", "free.fr", "t-online.de", "libero.it", "hey.com",
    "fastmail.com", "tutanota.com", "sky.com", "virginmedia.com", "shaw.ca", "rogers.com",
})
_FREE_MAIL_LABELS = frozenset({"gmail", "googlemail", "hotmail", "outlook", "live", "yahoo", "ymail", "aol", "gmx",
                               "icloud", "protonmail", "yandex"})
_NOT_REGISTRABLE = frozenset({"onmicrosoft.com", "mail.onmicrosoft.com", "sharepoint.com"})
"""Microsoft's shared domains: every tenant has one, so they say nothing about who a tenant is."""

_SPACE = re.compile(r"\s+")
_DROP = re.compile(r"[.'\u2019`]")
_PUNCT = re.compile(r"[^\w\s]|_")


# ------------------------------------------------------------------------ normalisation


def normalise_name(name: str) -> str:
    """Lower case, no accents or punctuation, no legal suffixes: ``'Fabrikam, Ltd.'`` -> ``'fabrikam'``."""
    text = unicodedata.normalize("NFKD", name.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("&", " and ").replace("+", " and ")
    text = _PUNCT.sub(" ", _DROP.sub("", text))
    tokens = _SPACE.sub(" ", text).strip().split(" ")
    tokens = [t for t in tokens if t]
    original = list(tokens)
    if tokens and tokens[0] == "the" and len(tokens) > 1:
        tokens = tokens[1:]
    while len(tokens) > 1 and tokens[-1] in LEGAL_SUFFIXES:
        removed = tokens.pop()
        if removed in ("co", "company") and len(tokens) > 1 and tokens[-1] == "and":
            tokens.pop()
    return " ".join(tokens or original)


def fuzzy_strength(ratio: float) -> float:
    """The weight of a similar name: 0.50 at the cut-off ratio 0.75, up to 0.80 for near-identical names."""
    return round(0.5 + 1.2 * (ratio - FUZZY_CUTOFF), 3)


def compact(name: str) -> str:
    return name.replace(" ", "")


def host_of(website: str | None) -> str | None:
    """The host of a company's website, without ``www.``: ``'https://www.fabrikam.com/x'`` -> ``'fabrikam.com'``."""
    if not website or not website.strip():
        return None
    text = website.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".").casefold().removeprefix("www.")
    return host if "." in host else None


def domain_of(value: str) -> str:
    return value.strip().rstrip(".").casefold()


@cache
def _public_suffixes() -> Any:
    """The Public Suffix List as the ``publicsuffixlist`` package ships it (ICANN and private
    sections; never fetched at run time), loaded on first use."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def registrable(domain: str) -> bool:
    """Whether ``domain`` can belong to one organisation: not a public suffix (``co.uk``,
    ``gob.mx``, ``nhs.uk``, ``github.io``, by the Public Suffix List) nor Microsoft's shared
    ``onmicrosoft.com``."""
    domain = domain_of(domain)
    if "." not in domain or domain in _NOT_REGISTRABLE:
        return False
    return not _public_suffixes().is_public(domain)


def is_free_mail(domain: str) -> bool:
    domain = domain_of(domain)
    if domain in FREE_MAIL:
        return True
    labels = domain.split(".")
    if labels[0] not in _FREE_MAIL_LABELS:
        return False
    rest = ".".join(labels[1:])
    return len(labels) == 2 or (len(labels) == 3 and not registrable(rest))


def _parents(domain: str) -> Iterable[str]:
    """``a.b.fabrikam.com`` -> ``b.fabrikam.com``, ``fabrikam.com`` (registrable ones only)."""
    labels = domain.split(".")
    for i in range(1, len(labels) - 1):
        parent = ".".join(labels[i:])
        if registrable(parent):
            yield parent


# ------------------------------------------------------------------------ results


@dataclass(frozen=True)
class Candidate:
    """A PSA company that may be the tenant's, with its score (0..1) and why."""

    psa: str
    company_id: str
    name: str
    identifier: str
    score: float
    reasons: tuple[str, ...]
    status: str = ""
    billed_for: tuple[str, ...] = ()  # names of configured tenants that already bill to it

    @property
    def reason(self) -> str:
        notes = list(self.reasons)
        if self.billed_for:
            notes.append("already billed for " + ", ".join(self.billed_for))
        if self.status and self.status.casefold() != "active":
            notes.append(f"company status is {self.status}")
        return "; ".join(notes)

    def to_json(self) -> dict[str, Any]:
        return {"psa": self.psa, "companyId": self.company_id, "name": self.name, "identifier": self.identifier,
                "score": self.score, "reason": self.reason}


@dataclass(frozen=True)
class CompanyRef:
    psa: str
    company_id: str
    name: str | None = None


@dataclass(frozen=True)
class Suggestion:
    """One GDAP tenant: its best PSA company (or none), the confidence and the reason."""

    tenant_id: str
    tenant_name: str
    domains: tuple[str, ...]
    configured: bool
    best: Candidate | None
    confidence: float
    level: Level
    reason: str
    alternatives: tuple[Candidate, ...] = ()
    current: tuple[CompanyRef, ...] = ()
    domains_note: str | None = None  # why the tenant's domains could not be read

    def to_json(self) -> dict[str, Any]:
        return {
            "tenantId": self.tenant_id, "tenantName": self.tenant_name, "domains": list(self.domains),
            "domainsRead": self.domains_note is None,
            **({"domainsNote": self.domains_note} if self.domains_note else {}),
            "configured": self.configured,
            "currentCompanies": [{"psa": c.psa, "companyId": c.company_id, "name": c.name} for c in self.current],
            "suggestion": self.best.to_json() if self.best else None,
            "confidence": self.confidence, "level": self.level, "reason": self.reason,
            "alternatives": [c.to_json() for c in self.alternatives],
        }


def level_of(confidence: float) -> Level:
    if confidence >= HIGH:
        return "high"
    if confidence >= MEDIUM:
        return "medium"
    return "low" if confidence > 0 else "none"


# ------------------------------------------------------------------------ matching


@dataclass
class _Company:
    company: PsaCompany
    key: tuple[str, str]
    name: str  # normalised
    compact: str
    identifier: str  # compact, normalised
    host: str | None


@dataclass
class _Evidence:
    name: tuple[float, str] | None = None
    website: tuple[float, str] | None = None
    contacts: tuple[float, str] | None = None

    def offer(self, kind: Literal["name", "website", "contacts"], strength: float, reason: str) -> None:
        current = getattr(self, kind)
        if current is None or strength > current[0]:
            setattr(self, kind, (strength, reason))

    def score(self) -> tuple[float, tuple[str, ...]]:
        missing, reasons = 1.0, []
        for part in (self.name, self.website, self.contacts):
            if part is not None:
                missing *= 1.0 - part[0]
                reasons.append(part[1])
        return round(1.0 - missing, 3), tuple(reasons)


class CompanyIndex:
    """The PSA companies, indexed once for matching many tenants."""

    def __init__(self, companies: Sequence[PsaCompany], contacts: Sequence[PsaContact]) -> None:
        self.companies: dict[tuple[str, str], _Company] = {}
        for company in companies:
            if company.deleted:
                continue
            name = normalise_name(company.name)
            key = (company.psa, company.company_id)
            self.companies[key] = _Company(company, key, name, compact(name),
                                           compact(normalise_name(company.identifier)) if company.identifier else "",
                                           host_of(company.website))
        self.by_name: dict[str, list[_Company]] = defaultdict(list)
        self.by_first_word: dict[str, list[_Company]] = defaultdict(list)
        self.by_compact: dict[str, list[_Company]] = defaultdict(list)
        self.by_host: dict[str, list[_Company]] = defaultdict(list)
        self.by_parent_host: dict[str, list[_Company]] = defaultdict(list)
        for entry in self.companies.values():
            if entry.name:
                self.by_name[entry.name].append(entry)
                self.by_first_word[entry.name.split(" ")[0]].append(entry)
                self.by_compact[entry.compact].append(entry)
            if entry.identifier and entry.identifier != entry.compact:
                self.by_compact[entry.identifier].append(entry)
            if entry.host and not is_free_mail(entry.host) and registrable(entry.host):
                self.by_host[entry.host].append(entry)
                for parent in _parents(entry.host):
                    self.by_parent_host[parent].append(entry)
        self.similar = _SimilarNames(self.by_name)
        # email domain -> company -> number of contacts at that domain
        mail: dict[str, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
        for contact in contacts:
            key = (contact.psa, contact.company_id)
            if key not in self.companies:
                continue
            for domain in {domain_of(e.rpartition("@")[2]) for e in contact.emails if "@" in e}:
                if domain and not is_free_mail(domain):
                    mail[domain][key] += 1
        self.by_mail_domain = {d: dict(c) for d, c in mail.items() if len(c) <= SHARED_DOMAIN_LIMIT}

    def evidence(self, tenant: CustomerTenant) -> dict[tuple[str, str], _Evidence]:
        found: dict[tuple[str, str], _Evidence] = defaultdict(_Evidence)
        name = normalise_name(tenant.display_name)
        self._names(tenant.display_name, name, found)
        for domain in _tenant_domains(tenant):
            self._domain(domain, found)
        return found

    def _names(self, raw: str, name: str, found: dict[tuple[str, str], _Evidence]) -> None:
        if not name:
            return
        for entry in self.by_name.get(name, ()):
            if _SPACE.sub(" ", raw.casefold().strip()) == _SPACE.sub(" ", entry.company.name.casefold().strip()):
                found[entry.key].offer("name", SAME_NAME, "same name")
            else:
                found[entry.key].offer("name", EXACT_NAME, f"same name once case, punctuation and legal suffixes "
                                                           f"are ignored ('{raw}' ~ '{entry.company.name}')")
        for entry in self.by_compact.get(compact(name), ()):
            if entry.key in found and found[entry.key].name is not None:
                continue
            if entry.compact == compact(name):
                reason = f"same name apart from spaces ('{raw}' ~ '{entry.company.name}')"
            else:
                reason = f"the tenant's name matches the company identifier '{entry.company.identifier}'"
            found[entry.key].offer("name", COMPACT_NAME, reason)
        words = name.split(" ")
        for entry in self.by_first_word.get(words[0], ()):
            theirs = entry.name.split(" ")
            shorter = min(words, theirs, key=len)
            if len(words) != len(theirs) and words[:len(shorter)] == theirs[:len(shorter)] \
                    and len("".join(shorter)) >= 4:
                whose = "the company's name begins with the tenant's" if shorter is words else \
                    "the tenant's name begins with the company's"
                found[entry.key].offer("name", PREFIX_NAME, f"{whose} ('{raw}' ~ '{entry.company.name}')")
        for other, ratio in self.similar.like(name):
            for entry in self.by_name[other]:
                found[entry.key].offer("name", fuzzy_strength(ratio),
                                       f"similar name ('{raw}' ~ '{entry.company.name}', {ratio:.0%} alike)")

    def _domain(self, domain: str, found: dict[tuple[str, str], _Evidence]) -> None:
        for entry in self.by_host.get(domain, ()):
            found[entry.key].offer("website", WEBSITE_EXACT, f"website {entry.host} is a domain of the tenant")
        for parent in _parents(domain):
            for entry in self.by_host.get(parent, ()):
                found[entry.key].offer("website", WEBSITE_RELATED,
                                       f"the tenant's domain {domain} is under the website {entry.host}")
        for entry in self.by_parent_host.get(domain, ()):
            found[entry.key].offer("website", WEBSITE_RELATED,
                                   f"website {entry.host} is under the tenant's domain {domain}")
        for key, count in self.by_mail_domain.get(domain, {}).items():
            strength = CONTACTS[min(count, len(CONTACTS)) - 1]
            who = "1 contact's email address is" if count == 1 else f"{count} contacts' email addresses are"
            found[key].offer("contacts", strength, f"{who} at {domain}")


class _SimilarNames:
    """Normalised names, searched for ones similar to a given name (``difflib`` ratio >= 0.75).

    Two shortcuts keep a thousand tenants against a thousand companies fast, and sharpen the
    matching: names whose numbers differ are never similar ('Customer 0001' is not 'Customer
    0002'), and only names sharing at least 30% of their three-letter sequences are compared."""

    GRAM_SHARE = 0.3

    def __init__(self, names: Iterable[str]) -> None:
        self.partitions: dict[str, tuple[list[str], list[int], dict[str, list[int]]]] = {}
        for name in sorted(names):
            listed, sizes, postings = self.partitions.setdefault(_digits(name), ([], [], {}))
            grams = _grams(name)
            for gram in grams:
                postings.setdefault(gram, []).append(len(listed))
            listed.append(name)
            sizes.append(len(grams))

    def like(self, name: str) -> list[tuple[str, float]]:
        partition = self.partitions.get(_digits(name))
        if partition is None:
            return []
        listed, sizes, postings = partition
        grams = _grams(name)
        shared: Counter[int] = Counter()
        for gram in grams:
            shared.update(postings.get(gram, ()))
        matcher = difflib.SequenceMatcher(autojunk=False)
        matcher.set_seq2(name)
        out = []
        for index, count in shared.items():
            other = listed[index]
            if other == name or 2 * count < self.GRAM_SHARE * (len(grams) + sizes[index]):
                continue
            matcher.set_seq1(other)
            if (matcher.real_quick_ratio() >= FUZZY_CUTOFF and matcher.quick_ratio() >= FUZZY_CUTOFF
                    and (ratio := matcher.ratio()) >= FUZZY_CUTOFF):
                out.append((other, ratio))
        return sorted(out)


def _digits(name: str) -> str:
    return " ".join(re.findall(r"\d+", name))


def _grams(name: str) -> set[str]:
    padded = f" {name} "
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


def _tenant_domains(tenant: CustomerTenant) -> list[str]:
    names = [tenant.default_domain] if tenant.default_domain else []
    names.extend(tenant.domains)
    seen: list[str] = []
    for name in names:
        domain = domain_of(name)
        if domain and domain not in seen and not is_free_mail(domain):
            seen.append(domain)
    return seen


def suggest(gdap_tenants: Sequence[CustomerTenant], configured_tenant_ids: Collection[str],
            psa_companies: Sequence[PsaCompany], psa_contacts: Sequence[PsaContact], *,
            config: SeatSyncConfig | None = None, domains_notes: Mapping[str, str] | None = None,
            index: CompanyIndex | None = None) -> list[Suggestion]:
    """The best PSA company of every GDAP tenant, unconfigured tenants first, then by name.

    ``config`` (optional) names the companies configured tenants bill to; ``domains_notes``
    says, per tenant id, why its domains could not be read (it is then matched by name only).
    """
    index = index or CompanyIndex(psa_companies, psa_contacts)
    configured = {t.lower() for t in configured_tenant_ids}
    notes = {k.lower(): v for k, v in (domains_notes or {}).items()}
    billed_for: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    current: dict[str, tuple[CompanyRef, ...]] = {}
    if config is not None:
        for configured_tenant in config.tenants:
            configured.add(configured_tenant.tenant_id)
            refs = []
            for link in configured_tenant.companies:
                billed_for[(link.psa, link.company_id)].append((configured_tenant.tenant_id, configured_tenant.name))
                known = index.companies.get((link.psa, link.company_id))
                refs.append(CompanyRef(link.psa, link.company_id, link.name or (known.company.name if known else None)))
            current[configured_tenant.tenant_id] = tuple(refs)
    out = []
    for tenant in gdap_tenants:
        tid = tenant.tenant_id.lower()
        candidates = []
        for key, evidence in index.evidence(tenant).items():
            score, reasons = evidence.score()
            entry = index.companies[key].company
            others = tuple(name for other, name in billed_for.get(key, ()) if other != tid)
            candidates.append(Candidate(entry.psa, entry.company_id, entry.name, entry.identifier, score, reasons,
                                        entry.status, others))
        candidates.sort(key=lambda c: (-c.score, c.name.casefold(), c.psa, c.company_id))
        out.append(_suggestion(tenant, tid in configured, candidates, current.get(tid, ()), notes.get(tid)))
    out.sort(key=lambda s: (s.configured, s.tenant_name.casefold(), s.tenant_id))
    return out


def _suggestion(tenant: CustomerTenant, configured: bool, candidates: list[Candidate],
                current: tuple[CompanyRef, ...], note: str | None) -> Suggestion:
    domains = tuple(_tenant_domains(tenant))
    if not candidates:
        reason = "no PSA company has a similar name or shares a domain with the tenant"
        if note:
            reason += f" (matched by name only: {note})"
        reason += _current_note(configured, current, None)
        return Suggestion(tenant.tenant_id.lower(), tenant.display_name, domains, configured, None, 0.0, "none",
                          reason, (), current, note)
    best, alternatives = candidates[0], tuple(candidates[1:1 + ALTERNATIVES])
    confidence = best.score
    reason = best.reason
    if alternatives:
        margin = best.score - alternatives[0].score
        penalty = max(0.0, AMBIGUITY_WINDOW - margin)
        if penalty:
            confidence = round(max(best.score - penalty, 0.01), 3)
            runner = alternatives[0]
            reason += (f"; but {runner.name} ({runner.psa} {runner.company_id}) matches almost as well "
                       f"({runner.score:.2f})")
    if note:
        reason += f"; matched by name only: {note}"
    reason += _current_note(configured, current, best)
    return Suggestion(tenant.tenant_id.lower(), tenant.display_name, domains, configured, best, confidence,
                      level_of(confidence), reason, alternatives, current, note)


def _current_note(configured: bool, current: tuple[CompanyRef, ...], best: Candidate | None) -> str:
    if not configured:
        return ""
    if not current:
        return "; already configured (no company yet)"
    listed = ", ".join(f"{c.psa} {c.company_id}" + (f" ({c.name})" if c.name else "") for c in current)
    if best is not None and all((c.psa, c.company_id) != (best.psa, best.company_id) for c in current):
        return f"; already configured, billing to {listed}: not the best match, check it"
    return f"; already configured, billing to {listed}"


# ------------------------------------------------------------------------ decisions


@dataclass(frozen=True)
class Decision:
    """A confirmed or overridden row: bill tenant ``tenant_id`` to PSA company ``company_id``."""

    tenant_id: str
    psa: str
    company_id: str
    name: str | None = None  # the tenant's name in SeatSync (default: its GDAP name)
    user_filter: UserFilter | None = None
    replace: bool = False
    row: int = 0  # where the row was in the request or review file, for errors
    catch_all: bool = False  # the tenant's company for the users no other row's filter matches
    access: AccessMode = "gdap"  # consent: a tenant outside GDAP whose admin consented the partner account's app
    partner: str | None = None  # the partner account the tenant is read through (default: chosen each run)


@dataclass(frozen=True)
class AcceptHighConfidence:
    """``{"accept": "all-high-confidence"}``: every unconfigured tenant whose suggestion is high."""


ROW_FIELDS = frozenset({"action", "tenantId", "name", "psa", "companyId", "userFilter", "catchAll", "replace",
                        "access", "partner"})
# written in the review file to help the admin decide; ignored when applying
INFO_FIELDS = frozenset({"tenantName", "companyName", "confidence", "level", "reason", "domains", "domainsNote",
                         "configured", "currentCompanies", "alternatives", "identifier", "score", "suggestion",
                         "consentLink"})


def parse_rows(document: Any, connections: Sequence[str]) -> list[Decision] | AcceptHighConfidence:
    """The rows of a POST body or review file: a list of rows, ``{"rows": [...]}`` or
    ``{"accept": "all-high-confidence"}``. Every problem is reported, each naming its row."""
    if isinstance(document, dict) and "accept" in document:
        if document.get("accept") != "all-high-confidence" or set(document) - {"accept", "comment"}:
            raise RequestValidationError("accept", "the only bulk choice is {\"accept\": \"all-high-confidence\"}")
        return AcceptHighConfidence()
    rows = document.get("rows") if isinstance(document, dict) else document
    if isinstance(document, dict) and set(document) - {"rows", "comment"}:
        unknown = sorted(set(document) - {"rows", "comment"})[0]
        raise RequestValidationError(unknown, "unknown field (expected 'rows', or 'accept')")
    if not isinstance(rows, list):
        raise RequestValidationError("rows", "give a list of rows like [{\"tenantId\": ..., \"psa\": ..., "
                                             "\"companyId\": ...}], or {\"accept\": \"all-high-confidence\"}")
    problems: list[str] = []
    decisions: list[Decision] = []
    for i, row in enumerate(rows):
        where = f"rows[{i}]"
        if not isinstance(row, dict):
            problems.append(f"{where}: must be an object with tenantId, psa and companyId")
            continue
        for key in sorted(set(row) - ROW_FIELDS - INFO_FIELDS):
            problems.append(f"{where}.{key}: unknown field (row fields: {', '.join(sorted(ROW_FIELDS))})")
        action = row.get("action", "accept")
        if action not in ("accept", "skip"):
            problems.append(f"{where}.action: must be 'accept' or 'skip', got {action!r}")
            continue
        if action == "skip":
            continue
        decision = _row(row, where, connections, problems)
        if decision is not None:
            decisions.append(Decision(**decision, row=i))
    if problems:
        raise ConfigError(problems, "onboarding rows")
    return decisions


def _row(row: dict[str, Any], where: str, connections: Sequence[str], problems: list[str]) -> dict[str, Any] | None:
    before = len(problems)
    tenant_id = row.get("tenantId")
    if not isinstance(tenant_id, str) or not is_guid(tenant_id.strip()):
        problems.append(f"{where}.tenantId: {tenant_id!r} is not a tenant id (a GUID)")
    psa = row.get("psa")
    if psa is None and len(connections) == 1:
        psa = connections[0]
    if not isinstance(psa, str) or not psa:
        problems.append(f"{where}.psa: name the PSA connection ({', '.join(connections) or 'none configured'})")
    company_id = row.get("companyId")
    if isinstance(company_id, int) and not isinstance(company_id, bool):
        company_id = str(company_id)
    if not isinstance(company_id, str) or not company_id.strip():
        problems.append(f"{where}.companyId: choose the PSA company (its id) or set action: skip")
    name = row.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 256):
        problems.append(f"{where}.name: must be a non-empty text of at most 256 characters")
    replace = row.get("replace", False)
    if not isinstance(replace, bool):
        problems.append(f"{where}.replace: must be true or false")
    catch_all = row.get("catchAll", False)
    if not isinstance(catch_all, bool):
        problems.append(f"{where}.catchAll: must be true or false")
    elif catch_all and row.get("userFilter"):
        problems.append(f"{where}.catchAll: a catch-all company bills the users no other row's filter matches: "
                        "give it no userFilter")
    access = row.get("access", "gdap")
    if access not in ("gdap", "consent"):
        problems.append(f"{where}.access: must be 'gdap' (a GDAP customer) or 'consent' (a tenant outside GDAP whose "
                        f"administrator granted the SeatSync app admin consent), got {access!r}")
    partner = row.get("partner")
    if partner is not None and (not isinstance(partner, str) or not partner.strip()):
        problems.append(f"{where}.partner: name a partner account (default, or one of partnerAccounts)")
    user_filter = None
    if row.get("userFilter") is not None:
        try:
            user_filter = UserFilter.model_validate(row["userFilter"])
        except ValidationError as exc:
            for error in exc.errors():
                loc = format_location(tuple(error["loc"]), row["userFilter"])
                message = ("unknown field (office, department, city, state or country)"
                           if error["type"] == "extra_forbidden" else error["msg"])
                problems.append(f"{where}.userFilter{'' if loc == '(document)' else '.' + loc}: {message}")
    if len(problems) > before:
        return None
    assert isinstance(tenant_id, str) and isinstance(psa, str) and isinstance(company_id, str)
    return {"tenant_id": tenant_id.strip().lower(), "psa": psa, "company_id": company_id.strip(),
            "name": name.strip() if isinstance(name, str) else None, "user_filter": user_filter,
            "replace": replace, "catch_all": catch_all, "access": access,
            "partner": partner.strip() if isinstance(partner, str) else None}


def decisions_from(suggestions: Iterable[Suggestion]) -> list[Decision]:
    """The rows ``accept: all-high-confidence`` confirms: unconfigured tenants with a high suggestion."""
    return [Decision(s.tenant_id, s.best.psa, s.best.company_id, row=i)
            for i, s in enumerate(suggestions) if s.level == "high" and s.best is not None and not s.configured]


def apply_onboarding(config: SeatSyncConfig, decisions: Sequence[Decision], gdap_tenants: Sequence[CustomerTenant],
                     psa_companies: Sequence[PsaCompany], *,
                     unreadable: Mapping[str, str] | None = None,
                     consent_tenants: Sequence[CustomerTenant] = (),
                     consent_refused: Mapping[str, str] | None = None,
                     consent_url: Callable[[Decision], str] | None = None) -> SeatSyncConfig:
    """The configuration with the decided tenants added (or, with ``replace``, their companies
    replaced). Refuses the whole batch, naming every bad row: a GDAP row for a tenant that is not
    a GDAP customer (with the admin-consent link that would let it be added with ``access:
    consent``), a consent row for a tenant the app cannot read (``consent_tenants`` are those it
    can), an unknown partner account, PSA connection or company, a tenant already configured, a
    tenant given twice the same company, several companies without a user filter each, a
    replacement that would drop a company's licence mappings."""
    tenants = {t.tenant_id.lower(): t for t in gdap_tenants}
    consented = {t.tenant_id.lower(): t for t in consent_tenants}
    refused = consent_refused or {}
    partners = set(config.partner_names())

    def consent_of(decision: Decision) -> str:
        return consent_url(decision) if consent_url else consent_link(DEFAULT_AUTHORITY_HOST, decision.tenant_id, None)

    companies = {(c.psa, c.company_id): c for c in psa_companies if not c.deleted}
    connections = {c.name for c in config.psa_connections}
    unreadable = unreadable or {}
    problems: list[str] = []
    grouped: dict[str, list[Decision]] = {}
    for decision in decisions:
        where = f"rows[{decision.row}]"
        if decision.partner is not None and decision.partner not in partners:
            problems.append(f"{where}.partner: no partner account named '{decision.partner}' (known: "
                            f"{', '.join(sorted(partners))})")
        if decision.access == "consent":
            if decision.tenant_id not in consented:
                why = refused.get(decision.tenant_id)
                problems.append(f"{where}.tenantId: the SeatSync app of partner account "
                                f"'{decision.partner or DEFAULT_PARTNER}' cannot read tenant {decision.tenant_id}"
                                + (f" ({_code_of(why)})" if why else "") + ": a Global Administrator of the customer "
                                f"grants it admin consent at {consent_of(decision)}, then apply again")
        elif decision.tenant_id not in tenants:
            problems.append(f"{where}.tenantId: {decision.tenant_id} is not a customer with GDAP access "
                            "(not in delegatedAdminCustomers); to add a tenant outside GDAP, a Global Administrator "
                            f"of the customer grants the SeatSync app admin consent at {consent_of(decision)}, and the "
                            "row says access: consent")
        if decision.psa not in connections:
            problems.append(f"{where}.psa: no PSA connection named '{decision.psa}'")
        elif decision.psa in unreadable:
            problems.append(f"{where}.companyId: cannot check company {decision.company_id}: PSA connection "
                            f"'{decision.psa}' could not be read ({unreadable[decision.psa]})")
        elif (decision.psa, decision.company_id) not in companies:
            problems.append(f"{where}.companyId: no company {decision.company_id} in PSA connection "
                            f"'{decision.psa}'")
        existing = config.tenant(decision.tenant_id)
        if existing is not None and not decision.replace:
            problems.append(f"{where}.tenantId: {existing.name} ({decision.tenant_id}) is already configured; "
                            "set replace: true to replace its companies")
        grouped.setdefault(decision.tenant_id, []).append(decision)
    for tenant_id, rows in grouped.items():
        seen: dict[tuple[str, str], int] = {}
        for decision in rows:
            key = (decision.psa, decision.company_id)
            if key in seen:
                problems.append(f"rows[{decision.row}].companyId: company {decision.company_id} is already given "
                                f"for this tenant by rows[{seen[key]}]")
            seen.setdefault(key, decision.row)
        if len(rows) > 1:
            for decision in rows:
                if (decision.user_filter is None or decision.user_filter.empty) and not decision.catch_all:
                    problems.append(f"rows[{decision.row}].userFilter: the tenant is split between "
                                    f"{len(rows)} companies, so each needs a user filter (or is its one "
                                    "catch-all company: catchAll: true)")
        catch_alls = [d for d in rows if d.catch_all]
        for decision in catch_alls[1:]:
            problems.append(f"rows[{decision.row}].catchAll: rows[{catch_alls[0].row}] is already the tenant's "
                            "catch-all company")
        if catch_alls and len(rows) == 1:
            problems.append(f"rows[{catch_alls[0].row}].catchAll: a catch-all bills the users no other company's "
                            "filter matches: give the tenant's other companies (rows) with their user filters")
        names = {d.name for d in rows if d.name}
        if len(names) > 1:
            problems.append(f"rows[{rows[1].row}].name: the tenant is given several names: "
                            f"{', '.join(sorted(names))}")
        if {d.replace for d in rows} == {True, False}:
            problems.append(f"rows[{rows[0].row}].replace: give the same 'replace' on every row of a tenant")
        if len({(d.access, d.partner) for d in rows}) > 1:
            problems.append(f"rows[{rows[0].row}].access: give the same 'access' and 'partner' on every row of a "
                            "tenant")
        existing = config.tenant(tenant_id)
        if existing is not None and all(d.replace for d in rows):
            kept = {(d.psa, d.company_id) for d in rows}
            for c, company in enumerate(existing.companies):
                if company.licences and (company.psa, company.company_id) not in kept:
                    problems.append(
                        f"rows[{rows[0].row}].replace: {existing.name} bills {len(company.licences)} licence(s) "
                        f"through companies[{c}] ({company.psa} {company.company_id}), which the rows drop; move "
                        "or delete those mappings first")
    if problems:
        raise ConfigError(problems, "onboarding rows")

    document = dump_config(config)
    document.setdefault("tenants", [])
    for tenant_id, rows in grouped.items():
        existing = config.tenant(tenant_id)
        links = []
        for decision in rows:
            psa_company = companies[(decision.psa, decision.company_id)]
            kept_link = None
            if existing is not None:
                kept_link = next((c for c in existing.companies
                                  if (c.psa, c.company_id) == (decision.psa, decision.company_id)), None)
            link = kept_link or CompanyLink(psa=decision.psa, company_id=decision.company_id, name=psa_company.name)
            if decision.user_filter is not None:
                link = link.model_copy(update={"user_filter": decision.user_filter})
            if decision.catch_all:
                link = link.model_copy(update={"catch_all": True, "user_filter": None})
            links.append(link)
        name = next((d.name for d in rows if d.name), None)
        access, partner = rows[0].access, rows[0].partner
        if existing is not None:
            replaced = existing.model_copy(update={"companies": tuple(links), "name": name or existing.name,
                                                   "access": access, "partner": partner or existing.partner})
            position = config.tenants.index(existing)
            document["tenants"][position] = _tenant_document(replaced)
        else:
            known = consented.get(tenant_id) if access == "consent" else tenants.get(tenant_id)
            new = TenantConfig(tenant_id=tenant_id, name=(name or (known.display_name if known else tenant_id))[:256],
                               companies=tuple(links), access=access, partner=partner)
            document["tenants"].append(_tenant_document(new))
    return parse_config(document, source="configuration with the onboarded tenants")


def _tenant_document(tenant: TenantConfig) -> dict[str, Any]:
    document: dict[str, Any] = tenant.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return document


# ------------------------------------------------------------------------ service


class OnboardingServices(Protocol):
    @property
    def config_repository(self) -> ConfigRepository: ...

    @property
    def snapshots(self) -> SnapshotRepository: ...

    def graph(self) -> GraphPort: ...

    def partner_graph(self, config: SeatSyncConfig, name: str) -> GraphPort: ...

    def partner_client_id(self, config: SeatSyncConfig, name: str) -> str | None: ...

    def consent_authority(self) -> str: ...

    def psa_clients(self, config: SeatSyncConfig) -> Callable[[str], PsaPort]: ...


@dataclass
class OnboardingInputs:
    """What onboarding reads: GDAP tenants (with their domains when readable) and PSA companies."""

    tenants: list[CustomerTenant]
    companies: list[PsaCompany]
    contacts: list[PsaContact] = field(default_factory=list)
    domains_notes: dict[str, str] = field(default_factory=dict)  # tenant id -> why its domains are unknown
    unreadable: dict[str, str] = field(default_factory=dict)  # PSA connection -> why it could not be read


def read_inputs(services: OnboardingServices, config: SeatSyncConfig, *, contacts: bool = True,
                domains: bool = True, only_unconfigured: bool = False, workers: int = 8) -> OnboardingInputs:
    """GDAP customers from the partner tenant, each one's verified domains (read with its own
    token: a tenant that has not consented is kept, matched by name only), and the companies
    and contacts of every configured PSA connection (one that fails is reported, not fatal,
    unless every one fails)."""
    if not config.psa_connections:
        raise ConfigError("configure a PSA connection first (psaConnections): onboarding matches tenants "
                          "to its companies", "onboarding")
    tenants = gdap_customers(services, config)
    if only_unconfigured:
        tenants = [t for t in tenants if config.tenant(t.tenant_id) is None]
    inputs = OnboardingInputs(tenants=tenants, companies=[])
    if domains:
        inputs.tenants, inputs.domains_notes = _with_domains(services, tenants, workers)
    psa_for = services.psa_clients(config)
    for connection in config.psa_connections:
        try:
            client = psa_for(connection.name)
            inputs.companies.extend(client.list_companies())
            if contacts:
                inputs.contacts.extend(client.list_contacts())
        except (HttpServiceError, requests.RequestException, ConfigError) as exc:
            log.warning("onboarding: PSA connection %s could not be read: %s", connection.name, exc)
            inputs.unreadable[connection.name] = str(exc)
    if len(inputs.unreadable) == len(config.psa_connections):
        raise ConfigError([f"psaConnections ({name}): could not be read: {why}"
                           for name, why in inputs.unreadable.items()], "onboarding")
    return inputs


def gdap_customers(services: OnboardingServices, config: SeatSyncConfig) -> list[CustomerTenant]:
    """The GDAP customers of every partner account, the first account listing a tenant first (the
    app settings' account must be readable; a further account that cannot be is logged and left
    out)."""
    found: dict[str, CustomerTenant] = {}
    for name in config.partner_names():
        try:
            customers = services.partner_graph(config, name).list_customer_tenants()
        except (GraphError, requests.RequestException):
            if name == DEFAULT_PARTNER:
                raise
            log.warning("onboarding: the GDAP customers of partner account %s could not be listed", name,
                        exc_info=True)
            continue
        for customer in customers:
            found.setdefault(customer.tenant_id.lower(), customer)
    return list(found.values())


def consent_link(authority_host: str, tenant_id: str, client_id: str | None) -> str:
    """Microsoft's documented admin-consent URL for a multi-tenant app in one tenant."""
    return f"{authority_host.rstrip('/')}/{tenant_id}/adminconsent?client_id={client_id or '<GRAPH_CLIENT_ID>'}"


def consent_tenants(services: OnboardingServices, config: SeatSyncConfig, decisions: Sequence[Decision]
                    ) -> tuple[list[CustomerTenant], dict[str, str]]:
    """The consent rows' tenants the app of their partner account can read (their names), and for
    the others why not (the AADSTS code and what to do)."""
    readable: list[CustomerTenant] = []
    refused: dict[str, str] = {}
    for decision in decisions:
        if decision.access != "consent" or decision.tenant_id in refused or \
                any(t.tenant_id == decision.tenant_id for t in readable):
            continue
        graph = services.partner_graph(config, decision.partner or DEFAULT_PARTNER)
        reader = getattr(graph, "get_tenant_details", None)
        if reader is None:
            refused[decision.tenant_id] = "the Graph client cannot read tenant details"
            continue
        try:
            readable.append(reader(decision.tenant_id))
        except GraphError as exc:
            refused[decision.tenant_id] = str(exc)
        except requests.RequestException as exc:
            refused[decision.tenant_id] = f"{type(exc).__name__}: {exc}"
    return readable, refused


def _with_domains(services: OnboardingServices, tenants: list[CustomerTenant], workers: int
                  ) -> tuple[list[CustomerTenant], dict[str, str]]:
    local = threading.local()

    def details(tenant: CustomerTenant) -> tuple[CustomerTenant, str | None]:
        if tenant.domains:
            return tenant, None
        client = getattr(local, "graph", None)
        if client is None:
            client = local.graph = services.graph()
        reader = getattr(client, "get_tenant_details", None)
        if reader is None:
            return tenant, "the Graph client cannot read tenant details"
        try:
            found: CustomerTenant = reader(tenant.tenant_id)
        except GraphError as exc:
            return tenant, _short_error(exc)
        except requests.RequestException as exc:
            return tenant, f"{type(exc).__name__}: {exc}"
        return CustomerTenant(tenant.tenant_id, tenant.display_name, found.default_domain, found.domains), None

    if not tenants:
        return [], {}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(tenants)))) as pool:
        results = list(pool.map(details, tenants))
    notes = {t.tenant_id.lower(): note for t, note in results if note}
    return [t for t, _ in results], notes


def _code_of(error: str) -> str:
    found = re.search(r"AADSTS\d+", error)
    return found.group(0) if found else (error if len(error) <= 120 else error[:117] + "...")


_CONSENT_URL = re.compile(r"https://\S+/adminconsent\?client_id=[0-9A-Za-z-]+")


def _short_error(exc: GraphError) -> str:
    code = getattr(exc, "code", None)
    text = str(exc)
    if code and code in text:
        link = _CONSENT_URL.search(text)
        consent = f"; a Global Administrator of the customer grants admin consent at {link.group(0)}" if link else ""
        return f"{code}: the app cannot sign in to the tenant (not consented, or GDAP access missing){consent}"
    return text if len(text) <= 200 else text[:197] + "..."


def onboarding_suggestions(services: OnboardingServices, *, only_unconfigured: bool = False
                           ) -> tuple[list[Suggestion], OnboardingInputs]:
    config, _ = services.config_repository.current()
    inputs = read_inputs(services, config, only_unconfigured=only_unconfigured)
    result = suggest(inputs.tenants, [t.tenant_id for t in config.tenants], inputs.companies, inputs.contacts,
                     config=config, domains_notes=inputs.domains_notes)
    return result, inputs


@dataclass(frozen=True)
class ApplyResult:
    version: ConfigVersion | None
    added: tuple[TenantConfig, ...]
    replaced: tuple[TenantConfig, ...]
    changed: bool

    def to_json(self) -> dict[str, Any]:
        def brief(tenant: TenantConfig) -> dict[str, Any]:
            return {"tenantId": tenant.tenant_id, "name": tenant.name,
                    "companies": [{"psa": c.psa, "companyId": c.company_id, "name": c.name}
                                  for c in tenant.companies]}

        return {"changed": self.changed,
                "version": self.version.version_id if self.version else None,
                "number": self.version.number if self.version else None,
                "added": [brief(t) for t in self.added], "replaced": [brief(t) for t in self.replaced]}


def apply_rows(services: OnboardingServices, request: Sequence[Decision] | AcceptHighConfidence, actor: str,
               comment: str | None = None) -> ApplyResult:
    """Apply confirmed rows (or every high-confidence suggestion) as one new configuration version."""
    config, version = services.config_repository.current()
    if isinstance(request, AcceptHighConfidence):
        inputs = read_inputs(services, config, only_unconfigured=True)
        found = suggest(inputs.tenants, [t.tenant_id for t in config.tenants], inputs.companies, inputs.contacts,
                        config=config, domains_notes=inputs.domains_notes)
        decisions = decisions_from(found)
        what = "high-confidence suggestions accepted"
    else:
        decisions = list(request)
        if not decisions:
            raise RequestValidationError("rows", "no row to apply (every row is skipped)")
        inputs = read_inputs(services, config, contacts=False, domains=False)
        what = "confirmed rows applied"
    if not decisions:
        return ApplyResult(version, (), (), changed=False)
    readable, refused = consent_tenants(services, config, decisions)

    def url(decision: Decision) -> str:
        return consent_link(services.consent_authority(), decision.tenant_id,
                            services.partner_client_id(config, decision.partner or DEFAULT_PARTNER))

    updated = apply_onboarding(config, decisions, inputs.tenants, inputs.companies, unreadable=inputs.unreadable,
                               consent_tenants=readable, consent_refused=refused, consent_url=url)
    decided = {d.tenant_id for d in decisions}
    _check_overlaps(services, updated, decided, decisions)
    added = tuple(t for t in updated.tenants if t.tenant_id in decided and config.tenant(t.tenant_id) is None)
    replaced = tuple(t for t in updated.tenants if t.tenant_id in decided and config.tenant(t.tenant_id) is not None)
    if updated == config:
        return ApplyResult(version, (), (), changed=False)
    parts = [f"{len(added)} tenant(s) added"] + ([f"{len(replaced)} replaced"] if replaced else [])
    saved = services.config_repository.save(updated, actor, comment or f"onboarding: {', '.join(parts)} ({what})",
                                            expected=version)
    return ApplyResult(saved, added, replaced, changed=True)


def _check_overlaps(services: OnboardingServices, config: SeatSyncConfig, tenant_ids: Collection[str],
                    decisions: Sequence[Decision]) -> None:
    """Users matching the filters of two companies of a tenant would be billed twice: refuse,
    naming them. Users come from the tenant's latest snapshot, else from Graph; a tenant that
    cannot be read is not checked here (the sync refuses to bill overlapping users anyway)."""
    problems: list[str] = []
    for tenant in config.tenants:
        if tenant.tenant_id not in tenant_ids:
            continue
        if sum(1 for c in tenant.companies if c.user_filter and not c.user_filter.empty) < 2:
            continue
        snapshot = services.snapshots.latest(tenant.tenant_id)
        if snapshot is None:
            try:
                users = services.graph().list_users(tenant.tenant_id)
            except (GraphError, requests.RequestException) as exc:
                log.info("onboarding: users of %s not read to check filters: %s", tenant.tenant_id, exc)
                continue
            snapshot = TenantSnapshot(tenant.tenant_id, "onboarding", datetime.now(UTC), (), tuple(users))
        rows = {(d.psa, d.company_id): d.row for d in decisions if d.tenant_id == tenant.tenant_id}

        def row_of(company: CompanyLink, rows: dict[tuple[str, str], int] = rows) -> str:
            return f"rows[{rows.get((company.psa, company.company_id), 0)}]"

        problems.extend(overlap_problems(
            tenant, snapshot, field_of=lambda i, c: f"{row_of(c)}.userFilter",
            company_label=lambda i, c: f"{row_of(c)} ({c.psa} {c.company_id})"))
    if problems:
        raise ConfigError(problems, "onboarding rows")


def overlap_problems(tenant: TenantConfig, snapshot: TenantSnapshot, *, prefix: str = "",
                     field_of: Callable[[int, CompanyLink], str] | None = None,
                     company_label: Callable[[int, CompanyLink], str] | None = None, limit: int = 20) -> list[str]:
    """One problem per group of companies whose filters the same users match, naming the users.
    By default each problem names ``{prefix}companies[i].userFilter`` of the group's last company."""

    def default_field(i: int, company: CompanyLink) -> str:
        return f"{prefix}companies[{i}].userFilter"

    def default_label(i: int, company: CompanyLink) -> str:
        return f"companies[{i}] ({company.psa} {company.company_id}" + (f", {company.name})" if company.name else ")")

    field_of = field_of or default_field
    label = company_label or default_label
    groups: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for user, indexes in overlapping_users(tenant, snapshot):
        groups[tuple(indexes)].append(user.user_principal_name)
    problems = []
    for group, users in groups.items():
        users.sort(key=str.casefold)
        shown = ", ".join(users[:limit]) + (f" and {len(users) - limit} more" if len(users) > limit else "")
        companies = " and ".join(label(i, tenant.companies[i]) for i in group)
        last = group[-1]
        problems.append(f"{field_of(last, tenant.companies[last])}: {len(users)} user(s) match the filters of "
                        f"{companies} and would be billed twice: {shown}")
    return problems


# ------------------------------------------------------------------------ review file


def review_document(suggestions: Sequence[Suggestion], connections: Sequence[str]) -> dict[str, Any]:
    """The editable review file: one row per tenant, ``action: accept`` on high-confidence rows."""
    rows = []
    for s in suggestions:
        best = s.best
        row: dict[str, Any] = {
            "action": "accept" if s.level == "high" and not s.configured else "skip",
            "tenantId": s.tenant_id, "name": s.tenant_name,
            "psa": best.psa if best else (connections[0] if len(connections) == 1 else None),
            "companyId": best.company_id if best else None,
            "companyName": best.name if best else None,
            "confidence": s.confidence, "level": s.level, "reason": s.reason, "domains": list(s.domains),
        }
        if s.configured:
            row["configured"] = True
            row["currentCompanies"] = [{"psa": c.psa, "companyId": c.company_id, "name": c.name} for c in s.current]
        if s.alternatives:
            row["alternatives"] = [{"psa": c.psa, "companyId": c.company_id, "name": c.name, "score": c.score,
                                    "reason": c.reason} for c in s.alternatives]
        rows.append(row)
    return {"rows": rows}


REVIEW_HEADER = """\
# SeatSync onboarding review. For each row:
#   action: accept   bill the tenant to psa/companyId (change companyId to override the suggestion;
#                    'alternatives' lists other candidates)
#   action: skip     leave the tenant out for now
# Optional: name (the tenant's name in SeatSync), userFilter (to split one tenant between several
# companies: repeat the row once per company, each with a userFilter, or catchAll: true on the one
# row that bills the users no other row's filter matches), replace: true (replace the
# companies of a tenant that is already configured).
# Other fields (companyName, confidence, level, reason, domains, alternatives, ...) are for reading
# only and ignored. Apply with: seatsync onboard --apply FILE
"""


def level_counts(suggestions: Sequence[Suggestion]) -> dict[str, int]:
    """How many suggestions of each level (for summaries)."""
    counts: dict[str, int] = {"high": 0, "medium": 0, "low": 0, "none": 0, "configured": 0}
    for s in suggestions:
        counts["configured" if s.configured else s.level] += 1
    return counts


__all__ = [
    "AcceptHighConfidence", "ApplyResult", "Candidate", "CompanyIndex", "Decision", "OnboardingInputs",
    "Suggestion", "apply_onboarding", "apply_rows", "compact", "decisions_from", "host_of", "is_free_mail",
    "level_counts", "level_of", "normalise_name", "onboarding_suggestions", "overlap_problems", "parse_rows",
    "read_inputs", "review_document", "suggest",
]
