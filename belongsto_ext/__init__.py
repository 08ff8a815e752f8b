"""Sequelize-style BelongsTo association methods for Django foreign keys."""

from __future__ import annotations

from ._compat import FieldFetchBlocked
from .batch import ScopedPrefetch, aprefetch, prefetch
from .counters import rebuild_counters
from .fields import BelongsToField, BelongsToOneField
from .scopes import InvalidScope
from .types import (
    AsyncCreateAssociation,
    AsyncGetAssociation,
    AsyncSetAssociation,
    CreateAssociation,
    GetAssociation,
    HasChanged,
    IsAssociation,
    KeyValue,
    PreviousKey,
    Scope,
    SetAssociation,
)

__all__ = [
    "AsyncCreateAssociation",
    "AsyncGetAssociation",
    "AsyncSetAssociation",
    "BelongsToField",
    "BelongsToOneField",
    "CreateAssociation",
    "FieldFetchBlocked",
    "GetAssociation",
    "HasChanged",
    "InvalidScope",
    "IsAssociation",
    "KeyValue",
    "PreviousKey",
    "Scope",
    "ScopedPrefetch",
    "SetAssociation",
    "aprefetch",
    "prefetch",
    "rebuild_counters",
]
