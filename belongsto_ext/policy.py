"""The N+1 policy: project-wide defaults for ``strict=`` and ``fetch=``, and what
happens to a lazy load the policy refuses.

``settings.BELONGSTO_EXT`` (all keys optional)::

    BELONGSTO_EXT = {
        "fetch": "peers",           # default of fetch=: load every peer's relation at once
        "strict": "n_plus_one",     # default of strict=: True, False or "n_plus_one"
        "on_violation": "log",      # "raise" (the default), "log", or a callable / its dotted path
    }

A field's own option wins; ``False`` opts it out of a project default. A lazy
load is a read of one instance's relation that queries: ``strict=True`` refuses
every one, ``strict="n_plus_one"`` those on an instance loaded among peers (the
N+1), unless ``fetch="peers"`` loads the peers at once. A refused load goes to
the handler: ``"raise"`` raises ``FieldFetchBlocked``; ``"log"`` logs a warning
on the ``belongsto_ext`` logger and lets the load happen; a callable receives a
:class:`Violation` and decides (return to let the load happen, or raise).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.signals import setting_changed
from django.db import models
from django.utils.module_loading import import_string

from . import _compat, peers
from .relation import Relation

__all__ = ["SETTING", "Violation", "check_settings", "lazy_load", "register"]

SETTING = "BELONGSTO_EXT"
FETCH = ("peers",)  # fetch= values besides None (the default) and False
STRICT = (True, False, "n_plus_one")
KEYS = ("fetch", "strict", "on_violation")

logger = logging.getLogger("belongsto_ext")


@dataclass(frozen=True)
class Violation:
    """A lazy load the policy refuses: what the handler receives."""

    model: type[models.Model]  # the owner's model
    field: str  # the relation's name
    instance: models.Model
    peers: int  # how many instances were loaded with it (0: alone)
    reason: str  # "strict" or "n_plus_one"

    @property
    def message(self) -> str:
        label = f"{self.model.__qualname__}.{self.field}"
        if self.reason == "strict":
            why, more = "the relation is strict=True", ""
        else:
            why = f"the instance was loaded with {self.peers - 1} others (an N+1)"
            more = ", or fetch='peers' (every peer's in one query)"
        return (
            f"Fetching of {label} blocked: {why}. Load it first, in the scope you read it in: "
            f"belongsto_ext.prefetch() or ScopedPrefetch (any scope), or select_related() "
            f"(scope=False and unfiltered scopes){more}."
        )

    def error(self) -> Exception:
        return _compat.FieldFetchBlocked(self.message)


_DEFAULTS: list[dict[str, Any]] = []  # the setting, read once (until it changes)


def _defaults() -> dict[str, Any]:
    if not _DEFAULTS:
        value = getattr(settings, SETTING, None)
        _DEFAULTS.append(value if isinstance(value, dict) else {})
    return _DEFAULTS[0]


def resolve(field: Any, model: type[models.Model] | None = None) -> None:
    """Set ``field.strict`` and ``field.fetch`` from its options and the project's
    defaults, and have its model (``model``, or the field's) record peers where
    they are needed."""
    defaults = _defaults()
    strict = field.strict_option
    if strict is None:
        strict = defaults.get("strict", False)
    fetch = field.fetch_option
    if fetch is None:
        fetch = defaults.get("fetch", False)
    field.strict = strict if strict in STRICT else False
    field.fetch = fetch if fetch in FETCH else False
    model = model or getattr(field, "model", None)
    needs_peers = field.fetch or field.strict == "n_plus_one"
    if needs_peers and model is not None and not model._meta.abstract:
        peers.track(model)


_FIELDS: weakref.WeakSet[Any] = weakref.WeakSet()


def register(field: Any, model: type[models.Model]) -> None:
    """Resolve ``field`` of ``model`` now and whenever the setting changes (tests)."""
    _FIELDS.add(field)
    resolve(field, model)


def _changed(setting: str, **kwargs: Any) -> None:
    if setting == SETTING:
        _DEFAULTS.clear()
        for field in list(_FIELDS):
            resolve(field)


setting_changed.connect(_changed, dispatch_uid="belongsto_ext.policy")


def lazy_load(field: Relation, instance: models.Model, among: int | None = None) -> None:
    """``instance``'s relation is about to be read alone (a query), ``among``
    instances loaded with it (0 or 1: alone; None: look). Refused under
    ``strict=True``, and under ``strict="n_plus_one"`` among others: the handler
    decides (the default raises ``FieldFetchBlocked``)."""
    strict = field.strict
    if strict is True:
        _handler()(Violation(type(instance), field.name, instance, among or 0, "strict"))
    elif strict == "n_plus_one":
        if among is None:
            among = len(peers.of(instance))
        if among > 1:
            _handler()(Violation(type(instance), field.name, instance, among, "n_plus_one"))


def batched(field: Relation, instance: models.Model) -> list[models.Model]:
    """The instances to read ``instance``'s relation for in one query when it
    is read lazily: its peers with ``fetch="peers"``, else none (read alone)."""
    return peers.of(instance) if field.fetch else []


def _raise(violation: Violation) -> None:
    raise violation.error()


def _log(violation: Violation) -> None:
    logger.warning(
        "%s (instance %r)",
        violation.message.replace("blocked", "lazy", 1),
        violation.instance,
        extra={"model": violation.model, "field": violation.field, "instance": violation.instance},
    )


def _handler() -> Callable[[Violation], Any]:
    choice = _defaults().get("on_violation", "raise")
    if choice == "raise":
        return _raise
    if choice == "log":
        return _log
    if isinstance(choice, str):
        handler: Callable[[Violation], Any] = import_string(choice)
        return handler
    return choice


# ------------------------------------------------------------ the check


def check_settings(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """E015: ``settings.BELONGSTO_EXT`` holds an unknown key or value."""
    value = getattr(settings, SETTING, None)
    if value is None:
        return []
    if not isinstance(value, dict):
        return [_error(f"{SETTING} is a {type(value).__name__}, not a dict.", "")]
    errors: list[checks.CheckMessage] = [
        _error(f"{SETTING} has an unknown key {key!r}.", f"Its keys: {', '.join(KEYS)}.")
        for key in value
        if key not in KEYS
    ]
    if "fetch" in value and value["fetch"] not in (*FETCH, False, None):
        errors.append(_error(f"{SETTING}['fetch'] is {value['fetch']!r}.", "Use 'peers' or False."))
    if "strict" in value and value["strict"] not in STRICT:
        errors.append(
            _error(
                f"{SETTING}['strict'] is {value['strict']!r}.", "Use True, False or 'n_plus_one'."
            )
        )
    choice = value.get("on_violation", "raise")
    if isinstance(choice, str) and choice not in ("raise", "log"):
        try:
            import_string(choice)
        except ImportError as exc:
            errors.append(
                _error(
                    f"{SETTING}['on_violation'] is {choice!r}, which cannot be imported ({exc}).",
                    "Use 'raise', 'log', a callable, or the dotted path of one.",
                )
            )
    elif not isinstance(choice, str) and not callable(choice):
        errors.append(
            _error(
                f"{SETTING}['on_violation'] is {choice!r}.",
                "Use 'raise', 'log', a callable, or the dotted path of one.",
            )
        )
    return errors


def _error(msg: str, hint: str) -> checks.Error:
    return checks.Error(msg, hint=hint or None, id="belongsto_ext.E015")
