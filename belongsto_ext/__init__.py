"""Sequelize-style BelongsTo association methods for Django foreign keys."""

from __future__ import annotations

from .accessors import aprefetch, prefetch
from .fields import BelongsToField, BelongsToOneField
from .scopes import InvalidScope
from .types import (
    AsyncCreateAssociation,
    AsyncGetAssociation,
    AsyncSetAssociation,
    CreateAssociation,
    GetAssociation,
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
    "SetAssociation",
    "aprefetch",
    "prefetch",
]
