"""Turn a ``scope=`` argument into a QuerySet of the target model, or refuse it.

A scope is one of:

- ``None`` or ``True``: the default scope, ``T._default_manager``;
- ``False``: the default scope removed, ``T._base_manager``;
- a string: the name of a manager declared on ``T`` (``T._meta.managers_map``);
- a list or tuple of such names: the rows every named manager selects;
- a ``QuerySet`` of ``T`` (or of a multi-table child of ``T``): used as given.

A scope string is only ever looked up in ``T._meta.managers_map``: nothing
else on the model is reachable through it. A field may narrow that further to
the names it declares in ``scopes=``.

:func:`cache_key` validates a scope and names its rows; :func:`resolve` turns
that key back into a fresh QuerySet; :func:`selects_every_row` says whether a
key's QuerySet, compiled for a database, is certain to select every row of
``T`` as plain instances (only then may an object Django already holds stand in
for a query).
"""

from __future__ import annotations

import weakref
from collections.abc import Collection, Hashable
from typing import Any

from django.db import models
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    ValuesIterable,
    ValuesListIterable,
)

from . import _compat
from .types import Scope

__all__ = [
    "InvalidScope",
    "QuerySetKey",
    "cache_key",
    "parameter_count",
    "resolve",
    "selects_every_row",
]

BASE = ("base",)


class InvalidScope(ValueError):
    """A ``scope=`` value that is not None, a bool, a manager name, a list of them, or a QuerySet."""

    def __init__(
        self,
        model: type[models.Model],
        scope: object,
        reason: str = "",
        field: Any = None,
    ) -> None:
        self.model = model
        self.scope = scope
        allowed = None if field is None else field.scopes
        where = model._meta.label
        if field is not None:
            where = f"{field.model.__name__}.{field.name} ({where})"
        names = ", ".join(repr(name) for name in sorted(allowed or _compat.managers_map(model)))
        if allowed is None:
            which = f"the name of a manager of {model.__name__}"
        else:
            which = f"the name of a scope {field.model.__name__}.{field.name} allows"
        super().__init__(
            f"Invalid scope {_describe(scope)} for {where}"
            f"{': ' + reason if reason else ''}. "
            f"A scope is None, True, False, {which} ({names}), a list of those names, "
            f"or a QuerySet of {model.__name__}."
        )


def _describe(scope: object) -> str:
    """``repr()`` of a scope, except that a QuerySet is named, not run."""
    if isinstance(scope, models.QuerySet):
        label = scope.model._meta.label if scope.model is not None else None
        return f"<QuerySet of {label}>"
    return repr(scope)


class QuerySetKey:
    """The cache key of a QuerySet scope.

    Two QuerySets are the same scope when they would run the same SQL with the
    same parameters and build the same kind of objects, so an inline
    ``scope=Author.objects.filter(...)`` written again on each call finds the
    answer the first call cached. The key keeps the QuerySet it was made from,
    to run it.
    """

    __slots__ = ("_hash", "_identity", "alias", "queryset", "sql")

    def __init__(self, queryset: models.QuerySet) -> None:
        self.queryset = queryset
        self.alias = queryset.db
        self.sql = _compat.compiled_sql(queryset, self.alias)
        identity: tuple[Any, ...] = (
            type(queryset),
            queryset.model,
            _compat.iterable_class(queryset),
            _compat.explicit_alias(queryset),
            self.sql,
        )
        try:
            self._hash = hash(identity)
        except TypeError:  # an unhashable parameter: fall back to this very QuerySet
            identity = (*identity[:-1], id(queryset))
            self._hash = hash(identity)
        self._identity = identity

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QuerySetKey) and self._identity == other._identity

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickling the QuerySet would run it: a pickled key (in a pickled
        # instance's cache) unpickles as a key that matches nothing.
        return (object, ())

    def __hash__(self) -> int:
        return self._hash


def cache_key(model: type[models.Model], scope: Scope[Any], field: Any = None) -> Hashable:
    """Return the key a scope's results are cached under, validating the scope.

    Equal keys mean the same rows: ``None``, ``True`` and the default manager's
    name share one key, as do ``"active"`` and ``["active"]``. ``field``, the
    relation the scope is asked for, names it in errors, and its ``scopes``
    option narrows the manager names a scope string may use.
    """
    allowed: Collection[str] | None = None if field is None else field.scopes
    if scope is None or scope is True:
        return ("managers", (model._default_manager.name,))
    if scope is False:
        return BASE
    if isinstance(scope, str):
        if (
            type(scope) is str
            and scope in _compat.managers_map(model)
            and (allowed is None or scope in allowed)
        ):
            return ("managers", (scope,))
        names: tuple[Any, ...] = (scope,)  # refused below, with the reason
    elif isinstance(scope, (list, tuple)):
        names = tuple(scope)
        if not names:
            raise InvalidScope(model, scope, "an empty list selects no manager", field)
    elif isinstance(scope, models.QuerySet):
        _check_queryset(model, scope, field)
        return QuerySetKey(scope)
    else:
        raise InvalidScope(model, scope, field=field)
    managers = _compat.managers_map(model)
    for name in names:
        if type(name) is not str or name not in managers:
            reason = f"{name!r} is not a manager of {model.__name__}"
            raise InvalidScope(model, scope, reason, field)
        if allowed is not None and name not in allowed:
            raise InvalidScope(model, scope, f"{name!r} is not one of them", field)
    return ("managers", names)


def _check_queryset(model: type[models.Model], queryset: models.QuerySet, field: Any) -> None:
    """Refuse, before any query, a QuerySet that cannot answer for the target."""
    of = queryset.model
    if of is None or not issubclass(of._meta.concrete_model, model._meta.concrete_model):  # type: ignore[arg-type]
        raise InvalidScope(model, queryset, f"a QuerySet of {of.__name__ if of else None}", field)
    if _compat.is_sliced(queryset):
        raise InvalidScope(model, queryset, "a sliced QuerySet cannot be filtered", field)
    combinator = _compat.is_combined(queryset)
    if combinator:
        article = "an" if combinator[0] in "aeiou" else "a"
        reason = f"{article} {combinator}() QuerySet cannot be filtered"
        raise InvalidScope(model, queryset, reason, field)
    if not _compat.yields_instances(queryset):
        iterable = _compat.iterable_class(queryset)
        if issubclass(iterable, (ValuesIterable, ValuesListIterable, FlatValuesListIterable)):
            reason = "values() and values_list() QuerySets return dicts or tuples, not instances"
        else:
            reason = f"its iterable {iterable.__qualname__} does not return model instances"
        raise InvalidScope(model, queryset, reason, field)


def resolve(model: type[models.Model], key: Any) -> models.QuerySet:
    """Return a fresh QuerySet of ``model`` for a key made by :func:`cache_key`.

    A list of names is the rows every named manager selects used alone: each
    name after the first is applied as ``pk IN (its own query)``, so filters
    its Query or QuerySet class adds late (when compiled) are kept, which
    combining QuerySets with ``&`` would drop.
    """
    if isinstance(key, QuerySetKey):
        return key.queryset.all()
    if key == BASE:
        return model._base_manager.all()
    managers = _compat.managers_map(model)
    first, *rest = key[1]
    queryset = managers[first].all()
    for name in rest:
        queryset = queryset.filter(pk__in=managers[name].all().values("pk"))
    return queryset


# {model: {(key, alias): bool}}: a manager's answer is decided once per database.
_EVERY_ROW: weakref.WeakKeyDictionary[type[models.Model], dict[tuple[Hashable, str], bool]] = (
    weakref.WeakKeyDictionary()
)
# {model: {alias: SQL}}: what a plain QuerySet of the model compiles to.
_PRISTINE: weakref.WeakKeyDictionary[
    type[models.Model], dict[str, tuple[str, tuple[Any, ...]] | None]
] = weakref.WeakKeyDictionary()


def selects_every_row(model: type[models.Model], key: Hashable, alias: str) -> bool:
    """Whether the scope ``key`` is certain to select every row of ``model`` as
    plain ``model`` instances when it runs on ``alias``.

    Decided from the SQL the scope's QuerySet compiles to on that database,
    compared with the SQL of an unfiltered QuerySet of ``model``; decided once
    per manager and database. Anything not proven is False.
    """
    if isinstance(key, QuerySetKey):
        sql = key.sql if key.alias == alias else _compat.compiled_sql(key.queryset, alias)
        return _plain(model, key.queryset) and sql is not None and sql == _pristine(model, alias)
    decided = _EVERY_ROW.setdefault(model, {})
    entry = (key, alias)
    if entry not in decided:
        if key == BASE:
            managers = [model._base_manager]
        else:
            managers = [_compat.managers_map(model)[name] for name in key[1]]  # type: ignore[index]
        decided[entry] = all(_every_row(model, manager.all(), alias) for manager in managers)
    return decided[entry]


# {model: {(key, alias): parameters}}: how many parameters a manager scope's query carries.
_PARAMETERS: weakref.WeakKeyDictionary[type[models.Model], dict[tuple[Hashable, str], int]] = (
    weakref.WeakKeyDictionary()
)


def parameter_count(
    model: type[models.Model], key: Hashable, queryset: models.QuerySet, alias: str
) -> int:
    """How many parameters ``queryset``, scope ``key``'s QuerySet, carries on ``alias``
    before a key filter is added; decided once per manager and database."""
    if isinstance(key, QuerySetKey):
        sql = key.sql if key.alias == alias else _compat.compiled_sql(queryset, alias)
        return 0 if sql is None else len(sql[1])
    counted = _PARAMETERS.setdefault(model, {})
    if (key, alias) not in counted:
        sql = _compat.compiled_sql(queryset, alias)
        counted[(key, alias)] = 0 if sql is None else len(sql[1])
    return counted[(key, alias)]


def _plain(model: type[models.Model], queryset: models.QuerySet) -> bool:
    return queryset.model is model and _compat.iterable_class(queryset) is ModelIterable


def _every_row(model: type[models.Model], queryset: models.QuerySet, alias: str) -> bool:
    sql = _compat.compiled_sql(queryset, alias)
    return _plain(model, queryset) and sql is not None and sql == _pristine(model, alias)


def _pristine(model: type[models.Model], alias: str) -> tuple[str, tuple[Any, ...]] | None:
    """The SQL of a plain QuerySet of ``model`` on ``alias``: every row, no condition."""
    compiled = _PRISTINE.setdefault(model, {})
    if alias not in compiled:
        compiled[alias] = _compat.compiled_sql(models.QuerySet(model), alias)
    return compiled[alias]
