"""Sequelize-style BelongsTo association methods for Django foreign keys."""

from __future__ import annotations

from .accessors import aprefetch, prefetch
from .fields import BelongsToField, BelongsToOneField
from .scopes import InvalidScope

__all__ = [
    "BelongsToField",
    "BelongsToOneField",
    "InvalidScope",
    "aprefetch",
    "prefetch",
]
