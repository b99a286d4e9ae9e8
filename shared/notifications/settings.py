"""The ``notifications`` section of the configuration document."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class NotificationSettings(BaseModel):
    """Where alerts and run summaries go (no channel: they are only logged)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True)
