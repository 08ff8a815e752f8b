"""Sequelize-style BelongsTo association methods for Django foreign keys."""

from __future__ import annotations

from .batch import ScopedPrefetch, aprefetch, prefetch
from .fields import BelongsToField, BelongsToOneField
from .scopes import InvalidScope
from .types import (
    AsyncCreateAssociation,
    AsyncGetAssociation,
    AsyncSetAssociation,
    CreateAssociation,
    GetAssociation,
    KeyValue,
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
    "GetAssociation",
    "InvalidScope",
    "KeyValue",
    "Scope",
    "ScopedPrefetch",
    "SetAssociation",
    "aprefetch",
    "prefetch",
]
