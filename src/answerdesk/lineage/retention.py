"""Retention: which lineage records are past their tenant's retention period. Pure, over a key listing.

The day comes from the key (``<prefix>/<tenant>/<YYYY-MM-DD>/…``), not from file times, so a copied or
restored store keeps its ages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from answerdesk.config import LineageSettings
from answerdesk.lineage.records import PREFIXES, SHARED_TENANT


@dataclass(frozen=True, slots=True)
class Expired:
    key: str
    tenant: str | None
    day: dt.date
    retention_days: int


def retention_days(settings: LineageSettings, tenant: str | None) -> int | None:
    return settings.tenant_retention_days.get(tenant or SHARED_TENANT, settings.retention_days)


def expired(keys: Iterable[str], settings: LineageSettings, *, today: dt.date) -> list[Expired]:
    """The keys whose day is more than their tenant's retention days before ``today`` (UTC). Keys that are
    not lineage records are never selected."""
    out = []
    for key in keys:
        parts = key.split("/")
        if len(parts) != 4 or parts[0] not in PREFIXES:
            continue
        try:
            day = dt.date.fromisoformat(parts[2])
        except ValueError:
            continue
        tenant = None if parts[1] == SHARED_TENANT else parts[1]
        days = retention_days(settings, tenant)
        if days is not None and (today - day).days > days:
            out.append(Expired(key, tenant, day, days))
    return out
