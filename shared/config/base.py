"""What every part of the configuration document shares: the model conventions (camelCase,
unknown fields refused, immutable) and references to secrets, which the document never holds."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel

_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9-]{1,127}$")


# The sets of fields the input gave, one object per distinct set (see ``share_given_fields``).
_GIVEN_FIELDS: dict[frozenset[str], set[str]] = {}


def share_given_fields(model: BaseModel) -> None:
    """Let a frozen model share its set of given fields with every model given the same ones.
    pydantic keeps, in each instance, the set of fields its input gave (about 500 bytes once it
    has five); a configuration of 3,000 tenants holds some 15,000 of these models, mostly a handful
    of distinct sets, which was 2.2 of the 5 KB a tenant of the configuration held by every
    process. A frozen model never adds to the set (a copy made with changes gets a set of its
    own), so sharing it is safe; a model that can be changed must not call this."""
    given = model.__pydantic_fields_set__
    key = frozenset(given)
    shared = _GIVEN_FIELDS.get(key)
    if shared is None:
        shared = _GIVEN_FIELDS.setdefault(key, given)
    object.__setattr__(model, "__pydantic_fields_set__", shared)


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True,
        str_strip_whitespace=True, cache_strings="keys",
    )
    """``cache_strings="keys"``: pydantic's JSON parser keeps, by default, every short string it
    reads in a cache for the life of the process (up to 16,384 of them): each tenant's id, name,
    company ids and line ids, read by every process that reads the configuration, a run's tenants
    or their outcomes. That grew with the tenants up to about 1.5 MB, in small objects scattered
    among the pages of whatever was parsed beside them. Field names repeat, and are still cached."""

    def model_post_init(self, context: Any, /) -> None:
        """Models given the same fields share one set of them (``share_given_fields``)."""
        share_given_fields(self)


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
