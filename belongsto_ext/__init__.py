"""Sequelize-style BelongsTo association methods for Django foreign keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._compat import FieldFetchBlocked
from .batch import ScopedPrefetch, aprefetch, prefetch
from .counters import counter_drift, install_triggers, rebuild_counters
from .fields import BelongsToField, BelongsToOneField
from .scopes import InvalidScope
from .types import (
    AnyScope,
    AsyncCreateAnyAssociation,
    AsyncCreateAssociation,
    AsyncGetAnyAssociation,
    AsyncGetAssociation,
    AsyncSetAnyAssociation,
    AsyncSetAssociation,
    CreateAnyAssociation,
    CreateAssociation,
    GetAnyAssociation,
    GetAssociation,
    HasChanged,
    IsAnyAssociation,
    IsAssociation,
    KeyValue,
    PreviousKey,
    Scope,
    SetAnyAssociation,
    SetAssociation,
)

if TYPE_CHECKING:
    from .contenttypes.fields import BelongsToAnyField

__all__ = [
    "AnyScope",
    "AsyncCreateAnyAssociation",
    "AsyncCreateAssociation",
    "AsyncGetAnyAssociation",
    "AsyncGetAssociation",
    "AsyncSetAnyAssociation",
    "AsyncSetAssociation",
    "BelongsToAnyField",
    "BelongsToField",
    "BelongsToOneField",
    "CreateAnyAssociation",
    "CreateAssociation",
    "FieldFetchBlocked",
    "GetAnyAssociation",
    "GetAssociation",
    "HasChanged",
    "InvalidScope",
    "IsAnyAssociation",
    "IsAssociation",
    "KeyValue",
    "PreviousKey",
    "Scope",
    "ScopedPrefetch",
    "SetAnyAssociation",
    "SetAssociation",
    "aprefetch",
    "counter_drift",
    "install_triggers",
    "prefetch",
    "rebuild_counters",
]


def __getattr__(name: str) -> object:
    # BelongsToAnyField is built on contenttypes' GenericForeignKey, whose module
    # imports a model: it loads on first use (from a models.py), once the app
    # registry can import models, not when INSTALLED_APPS imports this package.
    if name == "BelongsToAnyField":
        from .contenttypes.fields import BelongsToAnyField

        return BelongsToAnyField
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
