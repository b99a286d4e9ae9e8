"""The configuration document: which tenant bills to which PSA company, and how.

It is one document (imported from and exported to YAML by the CLI, edited through the config
API) validated as a whole: a file with one bad entry is rejected entirely and nothing is
stored. Field names are camelCase in YAML/JSON. Secrets are never part of it: a PSA
connection names the app setting or Key Vault secret that holds each credential.

See docs/configuration.md for every field with an example.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from shared.errors import ConfigError

GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_GUID = re.compile(GUID_PATTERN)
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9-]{1,127}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

Guid = Annotated[str, Field(pattern=GUID_PATTERN)]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


def is_guid(value: str) -> bool:
    return bool(_GUID.match(value))


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True,
        str_strip_whitespace=True,
    )


class SecretRef(Model):
    """Where a secret lives: an app setting (in Azure usually a Key Vault reference) or a
    Key Vault secret read by the app itself."""

    setting: str | None = None
    key_vault: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.setting is None) == (self.key_vault is None):
            raise ValueError("give exactly one of 'setting' (an app setting name) or 'keyVault' "
                             "(a Key Vault secret name)")
        if self.setting is not None and not _SETTING_NAME.match(self.setting):
            raise ValueError(f"'{self.setting}' is not an app setting name")
        if self.key_vault is not None and not _SECRET_NAME.match(self.key_vault):
            raise ValueError(f"'{self.key_vault}' is not a Key Vault secret name (letters, digits, dashes)")
        return self

    @property
    def reference(self) -> str:
        return f"setting:{self.setting}" if self.setting else f"keyvault:{self.key_vault}"


class ConnectWiseConnection(Model):
    """A ConnectWise PSA (Manage) API connection."""

    name: str
    type: Literal["connectwise"]
    url: str = Field(description="API base URL, e.g. https://api-na.myconnectwise.net/v4_6_release/apis/3.0")
    company_id: str = Field(min_length=1, max_length=64)
    public_key: SecretRef
    private_key: SecretRef
    client_id: SecretRef | Guid

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://") or "/apis/3.0" not in value:
            raise ValueError("must be the https:// API base URL ending in /apis/3.0 "
                             "(e.g. https://api-na.myconnectwise.net/v4_6_release/apis/3.0)")
        return value.rstrip("/")


PsaConnection = Annotated[ConnectWiseConnection, Field(discriminator="type")]


class LicenceLink(Model):
    """One licence (SKU) of a tenant billed through one PSA line."""

    sku_id: Guid
    agreement_id: Identifier
    line_id: Identifier | None = Field(
        default=None, description="the PSA line (ConnectWise addition id) that bills this licence")
    note: str | None = None

    @field_validator("sku_id")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class CompanyLink(Model):
    """A PSA company a tenant bills to."""

    psa: str
    company_id: Identifier
    name: str | None = None
    licences: tuple[LicenceLink, ...] = ()


class TenantConfig(Model):
    tenant_id: Guid
    name: str = Field(min_length=1, max_length=256)
    enabled: bool = True
    companies: tuple[CompanyLink, ...] = ()

    @field_validator("tenant_id")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class SeatSyncConfig(Model):
    """The whole configuration document."""

    version: Literal[1] = 1
    psa_connections: tuple[PsaConnection, ...] = ()
    tenants: tuple[TenantConfig, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> SeatSyncConfig:
        problems = consistency_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # lookups ---------------------------------------------------------------------------
    def tenant(self, tenant_id: str) -> TenantConfig | None:
        wanted = tenant_id.lower()
        for tenant in self.tenants:
            if tenant.tenant_id == wanted:
                return tenant
        return None

    def connection(self, name: str) -> PsaConnection | None:
        for connection in self.psa_connections:
            if connection.name == name:
                return connection
        return None


def consistency_problems(config: SeatSyncConfig) -> list[str]:
    """Rules that span entries. Each problem names the entry, like field errors do."""
    problems: list[str] = []
    names: set[str] = set()
    for i, connection in enumerate(config.psa_connections):
        where = f"psaConnections[{i}].name"
        if not _NAME.match(connection.name):
            problems.append(f"{where}: '{connection.name}' must be lower-case letters, digits and dashes")
        if connection.name in names:
            problems.append(f"{where}: '{connection.name}' is used by two connections")
        names.add(connection.name)

    seen_tenants: dict[str, int] = {}
    lines: dict[tuple[str, str], str] = {}
    for t, tenant in enumerate(config.tenants):
        where = f"tenants[{t}] ({tenant.name})"
        if tenant.tenant_id in seen_tenants:
            problems.append(f"{where}.tenantId: {tenant.tenant_id} is also tenants[{seen_tenants[tenant.tenant_id]}]")
        seen_tenants.setdefault(tenant.tenant_id, t)
        for c, company in enumerate(tenant.companies):
            cwhere = f"{where}.companies[{c}]"
            if company.psa not in names:
                problems.append(f"{cwhere}.psa: no PSA connection named '{company.psa}'")
            skus: set[str] = set()
            for k, licence in enumerate(company.licences):
                lwhere = f"{cwhere}.licences[{k}]"
                if licence.sku_id in skus:
                    problems.append(f"{lwhere}.skuId: {licence.sku_id} is mapped twice in this company")
                skus.add(licence.sku_id)
                if licence.line_id is not None:
                    key = (company.psa, licence.line_id)
                    if key in lines:
                        problems.append(f"{lwhere}.lineId: line {licence.line_id} is already billed by "
                                        f"{lines[key]}; one PSA line can bill one licence only")
                    else:
                        lines[key] = lwhere
    return problems


def format_location(location: tuple[int | str, ...], document: Any) -> str:
    """``('tenants', 3, 'companies', 0, 'skuId')`` -> ``tenants[3] (Fabrikam).companies[0].skuId``."""
    text = ""
    node: Any = document
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
            node = node[part] if isinstance(node, list | tuple) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name"), str) and "tenantId" in node:
                text += f" ({node['name']})"
        else:
            if str(part).startswith(("function-", "tagged-union")):
                continue
            text += ("." if text else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return text or "(document)"


def parse_config(document: Any, source: str = "configuration") -> SeatSyncConfig:
    """Validate a whole document; raise ``ConfigError`` listing every problem by location."""
    if not isinstance(document, dict):
        raise ConfigError("the document must be a mapping with 'psaConnections' and 'tenants'", source)
    try:
        return SeatSyncConfig.model_validate(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = format_location(tuple(error["loc"]), document)
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown field (check the spelling; fields are camelCase)"
            problems.append(f"{where}: {message}")
        raise ConfigError(problems, source) from None


def dump_config(config: SeatSyncConfig) -> dict[str, Any]:
    """The document form of a configuration (camelCase, defaults left out)."""
    return config.model_dump(mode="json", by_alias=True, exclude_defaults=True)
