"""Turn a ``scope=`` argument into a QuerySet of the target model, or refuse it.

A scope is one of:

- ``None`` or ``True``: the default scope, ``T._default_manager``;
- ``False``: the default scope removed, ``T._base_manager``;
- a string: the name of a manager declared on ``T`` (``T._meta.managers_map``);
- a list or tuple of such names: the rows every named manager selects;
- a ``QuerySet`` of ``T``: used as given.

A scope string is only ever looked up in ``T._meta.managers_map``: scope names
may come from request parameters, so nothing else on the model is reachable.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from django.db import models
from django.db.models.query import ModelIterable

__all__ = ["InvalidScope", "cache_key", "is_unfiltered", "queryset_for", "resolve"]

Scope = Any  # None | bool | str | list[str] | tuple[str, ...] | QuerySet

_BASE = ("base",)


class InvalidScope(ValueError):
    """A ``scope=`` value that is not None, a bool, a manager name, a list of them, or a QuerySet."""

    def __init__(self, model: type[models.Model], scope: object, reason: str = "") -> None:
        self.model = model
        self.scope = scope
        names = ", ".join(repr(name) for name in sorted(model._meta.managers_map))
        super().__init__(
            f"Invalid scope {_describe(scope)} for {model._meta.label}"
            f"{': ' + reason if reason else ''}. "
            f"A scope is None, True, False, the name of a manager of "
            f"{model.__name__} ({names}), a list of those names, or a QuerySet of "
            f"{model.__name__}."
        )


def _describe(scope: object) -> str:
    """``repr()`` of a scope, except that a QuerySet is named, not run."""
    if isinstance(scope, models.QuerySet):
        label = scope.model._meta.label if scope.model is not None else None
        return f"<QuerySet of {label}>"
    return repr(scope)


def _names(model: type[models.Model], scope: Scope) -> tuple[str, ...]:
    """Validate a name or a list of names against the model's declared managers."""
    names = (scope,) if isinstance(scope, str) else scope
    if not names:
        raise InvalidScope(model, scope, "an empty list selects no manager")
    managers = model._meta.managers_map
    for name in names:
        if type(name) is not str or name not in managers:
            raise InvalidScope(model, scope, f"{name!r} is not a manager of {model.__name__}")
    return tuple(names)


def cache_key(model: type[models.Model], scope: Scope) -> Hashable:
    """Return the key a scope's results are cached under, validating the scope.

    Equal keys mean the same rows: ``None``, ``True`` and the default manager's
    name share one key, as do ``"active"`` and ``["active"]``.
    """
    if scope is None or scope is True:
        return ("managers", (model._default_manager.name,))
    if scope is False:
        return _BASE
    if type(scope) is str and scope in model._meta.managers_map:  # the common named scope
        return ("managers", (scope,))
    if isinstance(scope, (str, list, tuple)):
        return ("managers", _names(model, scope))
    if isinstance(scope, models.QuerySet):
        _check_queryset(model, scope)
        # A QuerySet has identity equality and never changes in place: keying on
        # the object itself keeps it alive, so the key can't be reused by another.
        return ("queryset", scope)
    raise InvalidScope(model, scope)


def _check_queryset(model: type[models.Model], queryset: models.QuerySet) -> None:
    if (
        queryset.model is None
        or queryset.model._meta.concrete_model is not model._meta.concrete_model
    ):
        raise InvalidScope(
            model, queryset, f"a QuerySet of {queryset.model.__name__ if queryset.model else None}"
        )
    if queryset.query.is_sliced:
        raise InvalidScope(model, queryset, "a sliced QuerySet cannot be filtered")
    if queryset._iterable_class is not ModelIterable:
        raise InvalidScope(
            model, queryset, "values() and values_list() QuerySets return no instances"
        )


def queryset_for(model: type[models.Model], scope: Scope) -> models.QuerySet:
    """Return a fresh QuerySet of ``model`` for ``scope``, or raise :class:`InvalidScope`."""
    return resolve(model, cache_key(model, scope))


def resolve(model: type[models.Model], key: Any) -> models.QuerySet:
    """Return a fresh QuerySet of ``model`` for a key made by :func:`cache_key`."""
    kind = key[0]
    if kind == "base":
        return model._base_manager.all()
    if kind == "queryset":
        return key[1].all()
    managers = model._meta.managers_map
    first, *rest = key[1]
    queryset = managers[first].all()
    for name in rest:
        queryset &= managers[name].all()
    return queryset


def is_unfiltered(model: type[models.Model], queryset: models.QuerySet) -> bool:
    """Whether ``queryset`` selects every row of ``model`` as plain instances.

    Only then may an object Django already caches for the forward relation
    (which reads through the base manager) stand in for a query.
    """
    query = queryset.query
    return (
        queryset.model is model
        and queryset._iterable_class is ModelIterable
        and not query.where
        and not query.annotations
        and not query.extra
        and not query.extra_tables
        and not query.distinct
        and not query.combinator
        and not query.is_sliced
    )
