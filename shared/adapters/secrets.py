"""Secret references: ``setting:NAME`` (an app setting, which in Azure is usually a Key Vault
reference the platform resolves) or ``keyvault:NAME`` (read by the app with its managed
identity, cached for the life of the process)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from shared.errors import SecretError


class SecretResolver:
    def __init__(self, environment: Mapping[str, str], key_vault_url: str | None = None,
                 key_vault_client: Any = None) -> None:
        self._environment = environment
        self._key_vault_url = key_vault_url
        self._client = key_vault_client
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, reference: str) -> str:
        kind, _, name = reference.partition(":")
        if kind == "setting":
            value = self._environment.get(name)
            if not value:
                raise SecretError(f"app setting {name} is not set (it should hold a secret the "
                                  "configuration refers to)")
            if value.startswith("@Microsoft.KeyVault("):
                raise SecretError(f"app setting {name} is an unresolved Key Vault reference: grant the "
                                  "app's identity 'Key Vault Secrets User' and check the secret exists")
            return value
        if kind == "keyvault":
            with self._lock:
                if name in self._cache:
                    return self._cache[name]
            value = self._key_vault().get_secret(name).value
            if not value:
                raise SecretError(f"Key Vault secret {name} is empty")
            with self._lock:
                self._cache[name] = value
            return str(value)
        raise SecretError(f"'{reference}' is not a secret reference (setting:NAME or keyvault:NAME)")

    def _key_vault(self) -> Any:
        if self._client is None:
            if not self._key_vault_url:
                raise SecretError("a keyVault secret is referenced but SEATSYNC_KEY_VAULT_URL is not set")
            from azure.identity import DefaultAzureCredential
            from azure.keyvault.secrets import SecretClient

            self._client = SecretClient(self._key_vault_url, DefaultAzureCredential())
        return self._client
