"""Builds the adapters the service layer needs, from the app settings, once per process.

Trigger functions call ``get_services()``; the local runner and tests install their own with
``set_services()`` (same adapters, pointed at Azurite and the emulators). Clients that count
API calls are created per activity invocation so each activity reports its own cost, while
tokens and connections that are expensive to obtain are shared for the life of the process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Generic, TypeVar

import requests
from azure.core.credentials import TokenCredential

from shared import allocator, telemetry
from shared.adapters.config_store import ConfigRepository
from shared.adapters.decision_store import DecisionRepository
from shared.adapters.margin_store import MarginRepository
from shared.adapters.run_store import RunRepository
from shared.adapters.secrets import SecretResolver
from shared.adapters.shared_limits import LimitsTable
from shared.adapters.shared_reads_store import SharedReadsRepository
from shared.adapters.snapshot_store import SnapshotRepository
from shared.adapters.source_store import SourceRepository
from shared.adapters.tables import StoreError, StoreRetry, TableStore
from shared.config.base import SecretRef
from shared.config.partners import DEFAULT_PARTNER, PartnerAccount
from shared.config.schema import (
    AutotaskConnection,
    ConnectWiseConnection,
    HaloConnection,
    PsaConnection,
    SeatSyncConfig,
)
from shared.config.sources import PartnerCenterSource, Pax8Source, SubscriptionSource
from shared.contracts import FanOut, StartedRun
from shared.errors import ConfigError, GraphAuthError, SeatSyncError
from shared.ports import CallCounter, GraphPort, PsaPort, SecretReader, SubscriptionSourcePort
from shared.services.lease import Heartbeat, LeaseRenewal, ProcessRef
from shared.settings import DEFAULT_AUTHORITY_HOST, GraphSettings, Settings

GraphFactory = Callable[[], GraphPort]
PartnerGraphFactory = Callable[[PartnerAccount], GraphPort]
PsaFactory = Callable[[PsaConnection], PsaPort]
SourceFactory = Callable[[SubscriptionSource], SubscriptionSourcePort]


C = TypeVar("C", bound=CallCounter)
K = TypeVar("K")


class ClientsByName(Generic[C, K]):
    """The clients of one activity invocation, created on first use from the configuration entry
    of that name (a PSA connection, a subscription source)."""

    def __init__(self, find: Callable[[str], K | None], factory: Callable[[K], C], what: str) -> None:
        self._find = find
        self._factory = factory
        self._what = what
        self._clients: dict[str, C] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> C:
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                entry = self._find(name)
                if entry is None:
                    raise ConfigError(f"no {self._what} named '{name}'")
                client = self._clients[name] = self._factory(entry)
            return client

    @property
    def calls(self) -> int:
        with self._lock:
            return sum(client.calls for client in self._clients.values())


class PsaClients(ClientsByName[PsaPort, PsaConnection]):
    """The PSA clients of one activity invocation, by connection name."""

    def __init__(self, config: SeatSyncConfig, factory: PsaFactory) -> None:
        super().__init__(config.connection, factory, "PSA connection")


class SourceClients(ClientsByName[SubscriptionSourcePort, SubscriptionSource]):
    """The subscription-source clients of one activity invocation, by source name."""

    def __init__(self, config: SeatSyncConfig, factory: SourceFactory) -> None:
        super().__init__(config.subscription_source, factory, "subscription source")


class Services:
    def __init__(self, settings: Settings, *, store: TableStore | None = None,
                 secrets: SecretReader | None = None, graph_factory: GraphFactory | None = None,
                 psa_factory: PsaFactory | None = None,
                 source_factory: SourceFactory | None = None,
                 partner_graph_factory: PartnerGraphFactory | None = None,
                 clock: Callable[[], datetime] | None = None,
                 retry_sleep: Callable[[float], None] = time.sleep) -> None:
        allocator.tune()  # the process's first services: before its activities' threads allocate
        self.settings = settings
        self.store = store or TableStore.from_settings(settings)
        self.secrets = secrets or SecretResolver(settings.environment, settings.key_vault_url)
        self._graph_factory = graph_factory
        self._partner_graph_factory = partner_graph_factory
        self._psa_factory = psa_factory
        self._source_factory = source_factory
        self.clock = clock or (lambda: datetime.now(UTC))
        self.retry_sleep = retry_sleep  # how clients wait before a retry (tests pass a recorder)
        self.lease_process: ProcessRef | None = None  # the process of a command-line run (it holds the lease)
        self._memo_lock = threading.Lock()
        self._started: StartedRun | None = None
        self._started_loading = threading.Lock()  # one read of a run's tenants to do at a time
        self._renewal: LeaseRenewal | None = None
        self._run_config: tuple[str, float, SeatSyncConfig] | None = None

    @property
    def fan_out(self) -> FanOut:
        """How a run is spread (``SEATSYNC_SYNC_CHUNK``, ``SEATSYNC_SYNC_PARALLEL_CHUNKS``,
        ``SEATSYNC_PUSH_ACTIVITY_SECONDS``)."""
        s = self.settings
        return FanOut(chunk_size=s.sync_chunk, parallel_chunks=s.sync_parallel_chunks,
                      activity_seconds=s.push_activity_seconds)

    def started(self, run_id: str) -> StartedRun | None:
        """What a run set out to do (None when it recorded nothing), read once per process: it
        never changes. Its record holds the number of tenants, the guarded ones and the GDAP
        comparison; the tenants themselves are in rows of their own, read where needed
        (``RunRepository.iter_started_tenants``). The activities that start together wait for the
        first one's read."""
        with self._memo_lock:
            if self._started is not None and self._started.run_id == run_id:
                return self._started
        with self._started_loading:
            with self._memo_lock:
                if self._started is not None and self._started.run_id == run_id:
                    return self._started
            started = self.runs.started(run_id)
            if started is not None:
                with self._memo_lock:
                    self._started = started
        return started

    def forget_run(self, run_id: str) -> None:
        """Let go of what the process keeps of run ``run_id`` (its tenants, its shared PSA reads)
        once the run is over: a process that serves a daily run holds no run's thousands of
        tenants until the next one. A later call for the run reads them again."""
        with self._memo_lock:
            if self._started is not None and self._started.run_id == run_id:
                self._started = None
        self.forget_shared_reads(run_id)

    def forget_shared_reads(self, run_id: str) -> None:
        """Let go of run ``run_id``'s shared PSA reads once its pushes are done. Touches no store:
        a process that never read them has none to forget (and its table is not made here, where
        storage may be what failed the run)."""
        reads: SharedReadsRepository | None = self.__dict__.get("shared_reads")
        if reads is not None:
            reads.forget(run_id)

    def run_tenants(self, run_id: str) -> StartedRun:
        """What a run set out to do; raises ``StoreError`` when it recorded nothing."""
        started = self.started(run_id)
        if started is None:
            raise StoreError(f"run {run_id} recorded no tenants to do")
        return started

    @property
    def run_lease(self) -> timedelta:
        """How long a run's lease lasts without renewal (``SEATSYNC_RUN_LEASE_MINUTES``)."""
        return timedelta(minutes=self.settings.run_lease_minutes)

    def heartbeat(self, run_id: str, *, writes: bool = False) -> Heartbeat:
        """Renews ``run_id``'s lease while an activity of the run works, sharing the renewals of
        the run's other activities in this process (``LeaseRenewal``); an activity that ``writes``
        to a PSA renews when it starts."""
        with self._memo_lock:
            if self._renewal is None or self._renewal.run_id != run_id:
                self._renewal = LeaseRenewal(self.runs, run_id, self.run_lease)
            renewal = self._renewal
        return Heartbeat(renewal, writes=writes, sleep=self.retry_sleep)

    @cached_property
    def config_repository(self) -> ConfigRepository:
        return ConfigRepository(self.store)

    @cached_property
    def snapshots(self) -> SnapshotRepository:
        return SnapshotRepository(self.store)

    @cached_property
    def runs(self) -> RunRepository:
        return RunRepository(self.store)

    @cached_property
    def decisions(self) -> DecisionRepository:
        return DecisionRepository(self.store)

    @cached_property
    def sources(self) -> SourceRepository:
        return SourceRepository(self.store)

    @cached_property
    def psa_limits(self) -> LimitsTable:
        """Where every instance counts each PSA's limits."""
        return LimitsTable(self.store)

    @cached_property
    def shared_reads(self) -> SharedReadsRepository:
        return SharedReadsRepository(self.store)

    @cached_property
    def margins(self) -> MarginRepository:
        return MarginRepository(self.store)

    def config(self) -> SeatSyncConfig:
        """The current configuration: its version is read each time, so that saved changes apply to the
        next step; the document is read and parsed again only when the version changed."""
        return self.config_repository.current()[0]

    def run_config(self, run_id: str) -> SeatSyncConfig:
        """The configuration for an activity of run ``run_id``: the version this process read for
        the same run less than ``SEATSYNC_CONFIG_RECHECK_SECONDS`` ago, else the current one
        (``activity_config``). Each activity of a run asked for the current version, one read of
        the ``config`` table each; a run's activities in one process now ask at most once per
        interval, and a run that starts later reads the current version again."""
        with self._memo_lock:
            memo = self._run_config
        now = time.monotonic()
        if memo is not None and memo[0] == run_id and now - memo[1] < self.settings.config_recheck_seconds:
            return memo[2]
        config = self.activity_config()
        with self._memo_lock:
            self._run_config = (run_id, now, config)
        return config

    def activity_config(self) -> SeatSyncConfig:
        """The configuration for an activity, its first storage read: retried while Table Storage
        is unavailable, as every later storage read of the activity is (``StoreRetry``), so that
        an outage of a few seconds does not fail the activity."""
        return StoreRetry().call("the configuration", self.config, self.retry_sleep)

    def graph(self, account: PartnerAccount | None = None) -> GraphPort:
        """A Graph client for one activity invocation (its own call counter, shared tokens), with
        the app settings' app, or with a further partner account's app."""
        if account is not None:
            if self._partner_graph_factory is None:
                self._partner_graph_factory = default_partner_graph_factory(self.settings, self.secrets,
                                                                            self.retry_sleep)
            return self._partner_graph_factory(account)
        if self._graph_factory is None:
            self._graph_factory = default_graph_factory(self.settings, self.retry_sleep)
        return self._graph_factory()

    def partner_client_id(self, config: SeatSyncConfig, name: str) -> str | None:
        """The app (client) id of a partner account (None when it cannot be read)."""
        if name == DEFAULT_PARTNER:
            return self.settings.graph.client_id if self.settings.graph else None
        account = config.partner_account(name)
        if account is None:
            return None
        if isinstance(account.client_id, str):
            return account.client_id
        try:
            return self.secrets.get(account.client_id.reference).strip().lower()
        except SeatSyncError:
            return None

    def consent_authority(self) -> str:
        """Where admin consent is granted: the app settings' Entra ID authority."""
        return self.settings.graph.authority_host if self.settings.graph else DEFAULT_AUTHORITY_HOST

    def partner_graph(self, config: SeatSyncConfig, name: str) -> GraphPort:
        """The Graph client of the partner account ``name`` of ``config`` (``default``: the app
        settings' account). An account the configuration no longer has, or whose secret cannot be
        read, gives a client that refuses every token with the reason, so the tenants read through
        it fail with that reason and the others sync."""
        if name == DEFAULT_PARTNER:
            return self.graph()
        account = config.partner_account(name)
        if account is None:
            return refusing_graph(self.settings, name, f"no partner account named '{name}' is configured "
                                                       "(partnerAccounts)", self.retry_sleep)
        try:
            return self.graph(account)
        except SeatSyncError as exc:
            return refusing_graph(self.settings, name, str(exc), self.retry_sleep, account.tenant_id)

    def source_clients(self, config: SeatSyncConfig) -> SourceClients:
        if self._source_factory is None:
            self._source_factory = default_source_factory(self.settings, self.secrets, self.retry_sleep)
        return SourceClients(config, self._source_factory)

    def psa_clients(self, config: SeatSyncConfig) -> PsaClients:
        if self._psa_factory is None:
            # the services' clock as it is at each call, not as it was when the first client was made
            self._psa_factory = default_psa_factory(self.settings, self.secrets, self.retry_sleep,
                                                    lambda: self.clock(), limits=self.psa_limits)
        return PsaClients(config, self._psa_factory)


def default_graph_factory(settings: Settings, sleep: Callable[[float], None] = time.sleep) -> GraphFactory:
    from shared.adapters.graph import GraphClient, NoRedirectSession, TenantCredentials
    from shared.adapters.http import RetryingHttp, pooled_session

    graph_settings = settings.require_graph()
    credentials = TenantCredentials(graph_settings, verify=settings.tls_verify)
    session = pooled_session(NoRedirectSession())

    def make() -> GraphPort:
        http = RetryingHttp("Microsoft Graph", session=session, verify=settings.tls_verify, sleep=sleep)
        return GraphClient(graph_settings, credentials=credentials, verify=settings.tls_verify, http=http)

    return make


def partner_settings(settings: Settings, account: PartnerAccount, secrets: SecretReader) -> GraphSettings:
    """The Graph settings of a partner account: its tenant and app, the app settings' cloud."""
    base = settings.require_graph()
    client_id = account.client_id if isinstance(account.client_id, str) else secrets.get(account.client_id.reference)
    return replace(base, client_id=client_id.strip().lower(), partner_tenant_id=account.tenant_id,
                   client_secret=secrets.get(account.client_secret.reference), client_certificate_path=None)


def default_partner_graph_factory(settings: Settings, secrets: SecretReader,
                                  sleep: Callable[[float], None] = time.sleep) -> PartnerGraphFactory:
    """Graph clients of further partner accounts: tokens per (account, tenant) shared for the life
    of the process; a changed account (another secret reference, say) gets new tokens."""
    from shared.adapters.graph import GraphClient, NoRedirectSession, TenantCredentials
    from shared.adapters.http import RetryingHttp, pooled_session

    lock = threading.Lock()
    shared: dict[PartnerAccount, tuple[GraphSettings, TenantCredentials]] = {}
    session = pooled_session(NoRedirectSession())

    def make(account: PartnerAccount) -> GraphPort:
        with lock:
            found = shared.get(account)
            if found is None:
                graph_settings = partner_settings(settings, account, secrets)
                tokens = TenantCredentials(graph_settings, verify=settings.tls_verify)
                found = shared[account] = (graph_settings, tokens)
        graph_settings, credentials = found
        http = RetryingHttp("Microsoft Graph", session=session, verify=settings.tls_verify, sleep=sleep)
        return GraphClient(graph_settings, credentials=credentials, verify=settings.tls_verify, http=http)

    return make


def refusing_graph(settings: Settings, name: str, reason: str, sleep: Callable[[float], None] = time.sleep,
                   tenant_id: str | None = None) -> GraphPort:
    """A Graph client of a partner account that cannot be used: every token is refused with
    ``reason`` (no request leaves the process)."""
    from shared.adapters.graph import GraphClient
    from shared.adapters.http import RetryingHttp

    base = settings.require_graph()

    def refuse(tenant: str) -> TokenCredential:
        raise GraphAuthError(tenant, f"partner account '{name}' cannot be used: {reason}", code=None)

    graph_settings = replace(base, partner_tenant_id=tenant_id or base.partner_tenant_id, client_secret=None,
                             client_certificate_path=None)
    return GraphClient(graph_settings, verify=settings.tls_verify, credential_factory=refuse,
                       http=RetryingHttp("Microsoft Graph", verify=settings.tls_verify, sleep=sleep))


def default_psa_factory(settings: Settings, secrets: SecretReader,
                        sleep: Callable[[float], None] = time.sleep,
                        clock: Callable[[], datetime] | None = None,
                        read_timeout: float | None = None, limits: LimitsTable | None = None) -> PsaFactory:
    """Clients by the connection's configured type (validated with the configuration).
    ``read_timeout``: seconds to wait for a PSA's answer (default: each client's policy);
    ``limits``: where every instance of the Function App counts each PSA's limits (Autotask's
    hourly share and requests in flight, HaloPSA's request window; without it, each process)."""
    from dataclasses import replace

    from shared.adapters.http import RetryingHttp, RetryPolicy, pooled_session

    sessions: dict[str, requests.Session] = {}
    lock = threading.Lock()

    def session_for(name: str) -> requests.Session:
        with lock:
            return sessions.setdefault(name, pooled_session())

    now = clock or (lambda: datetime.now(UTC))

    def today() -> date:
        return now().date()

    def value(field: SecretRef | str) -> str:
        return field if isinstance(field, str) else secrets.get(field.reference)

    def policy(base: RetryPolicy | None = None) -> RetryPolicy:
        chosen = base or RetryPolicy()
        return chosen if read_timeout is None else replace(chosen, read_timeout_seconds=read_timeout)

    def make(connection: PsaConnection) -> PsaPort:
        if isinstance(connection, ConnectWiseConnection):
            from shared.adapters.connectwise import ConnectWiseClient

            return ConnectWiseClient(
                name=connection.name, base_url=connection.url, company_id=connection.company_id,
                public_key=value(connection.public_key), private_key=value(connection.private_key),
                client_id=value(connection.client_id), verify=settings.tls_verify,
                invoiced_when_unknown=connection.invoiced_when_unknown,
                http=RetryingHttp(f"ConnectWise {connection.name}", policy=policy(),
                                  session=session_for(connection.name), verify=settings.tls_verify, sleep=sleep),
            )
        if isinstance(connection, AutotaskConnection):
            from shared.adapters.autotask import AutotaskClient

            return AutotaskClient(
                name=connection.name, username=value(connection.username), secret=value(connection.secret),
                integration_code=value(connection.integration_code), zone_url=connection.zone_url,
                discovery_url=connection.discovery_url, hourly_request_share=connection.hourly_request_share,
                max_concurrent_requests=connection.max_concurrent_requests, verify=settings.tls_verify,
                http=RetryingHttp(f"Autotask {connection.name}", policy=policy(),
                                  session=session_for(connection.name), verify=settings.tls_verify, sleep=sleep),
                today=today, limits_table=limits,
            )
        if isinstance(connection, HaloConnection):
            from shared.adapters.halopsa import RETRY_POLICY as HALO_RETRY_POLICY
            from shared.adapters.halopsa import HaloClient

            return HaloClient(
                name=connection.name, base_url=connection.url, tenant=connection.tenant,
                client_id=value(connection.client_id), client_secret=value(connection.client_secret),
                lines=connection.lines, requests_per_5_minutes=connection.requests_per_5_minutes,
                verify=settings.tls_verify,
                http=RetryingHttp(f"HaloPSA {connection.name}", policy=policy(HALO_RETRY_POLICY),
                                  session=session_for(connection.name), verify=settings.tls_verify, sleep=sleep),
                today=today, limits_table=limits,
            )
        raise ConfigError(f"PSA connection '{connection.name}' has an unsupported type")

    return make


def default_source_factory(settings: Settings, secrets: SecretReader,
                           sleep: Callable[[float], None] = time.sleep) -> SourceFactory:
    """Subscription-source clients by the source's type; tokens and connections shared per
    source for the life of the process."""
    from shared.adapters.http import RetryingHttp, pooled_session
    from shared.adapters.partner_center import PartnerCenterClient, PartnerCenterCredential
    from shared.adapters.pax8 import Pax8Client, Pax8Token

    lock = threading.Lock()
    shared: dict[SubscriptionSource, tuple[requests.Session, object]] = {}

    def value(field: SecretRef | str) -> str:
        return field if isinstance(field, str) else secrets.get(field.reference)

    def make(source: SubscriptionSource) -> SubscriptionSourcePort:
        with lock:
            found = shared.get(source)  # a changed source (URL, secret reference) gets a new credential
            if found is None:
                session = pooled_session()
                if isinstance(source, PartnerCenterSource):
                    token: object = PartnerCenterCredential(
                        source.name, source.partner_tenant_id, value(source.client_id), value(source.client_secret),
                        source.authority_host, verify=settings.tls_verify)
                else:
                    token = Pax8Token(source.name, source.token_url, value(source.client_id),
                                      value(source.client_secret), source.audience,
                                      RetryingHttp(f"Pax8 {source.name} tokens", session=session,
                                                   verify=settings.tls_verify, sleep=sleep))
                found = shared[source] = (session, token)
        session, token = found
        if isinstance(source, PartnerCenterSource) and isinstance(token, PartnerCenterCredential):
            return PartnerCenterClient(
                source.name, source.url, token, billing_currency=source.billing_currency, read_costs=source.read_costs,
                http=RetryingHttp(f"Partner Center {source.name}", session=session, verify=settings.tls_verify,
                                  sleep=sleep))
        if isinstance(source, Pax8Source) and isinstance(token, Pax8Token):
            return Pax8Client(source.name, source.url, token,
                              http=RetryingHttp(f"Pax8 {source.name}", session=session, verify=settings.tls_verify,
                                                sleep=sleep))
        raise ConfigError(f"subscription source '{source.name}' has an unsupported type")

    return make


_services: Services | None = None
_lock = threading.Lock()


def get_services() -> Services:
    global _services
    with _lock:
        if _services is None:
            settings = Settings.from_environment()
            telemetry.configure(settings.environment)  # Application Insights, when configured
            _services = Services(settings)
        return _services


def set_services(services: Services | None) -> None:
    global _services
    with _lock:
        _services = services
