"""Turn a ``scope=`` argument into a QuerySet of the target model, or refuse it.

A scope is one of:

- ``None`` or ``True``: the default scope, ``T._default_manager``;
- ``False``: the default scope removed, ``T._base_manager``;
- a string: the name of a manager declared on ``T`` (``T._meta.managers_map``);
- a list or tuple of such names: the rows every named manager selects;
- a ``QuerySet`` of ``T`` (or of a multi-table child of ``T``): used as given.

A scope string is only ever looked up in ``T._meta.managers_map``: nothing
else on the model is reachable through it. A field may narrow that further to
the names it declares in ``scopes=``, which then decides ``False`` too.

:func:`cache_key` validates a scope and names its rows; :func:`in_context`
names the rows the scope selects here and now (a manager may filter by a
contextvar, a thread-local, the current request); :func:`resolve` turns a key
back into a fresh QuerySet; :func:`selects_every_row` says whether a key's
QuerySet, compiled for a database, is certain to select every row of ``T`` as
plain instances (only then may an object Django already holds stand in for a
query).

An answer about a manager's rows is reused across calls only for a manager
proven *static* (:func:`is_static`): its QuerySet is Django's own, built the
same way in every context. Any other manager's scope is named, each call, by
the SQL its QuerySet compiles to in that call's context.
"""

from __future__ import annotations

import pickle
import weakref
from collections.abc import Collection, Hashable, Mapping
from typing import Any, NamedTuple

from django.db import models
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    ValuesIterable,
    ValuesListIterable,
)

from . import _compat
from .static import is_static
from .types import Scope

__all__ = [
    "ContextKey",
    "InvalidScope",
    "QuerySetKey",
    "cache_key",
    "in_context",
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
        false = "False, " if allowed is None or allows_base(model, allowed) else ""
        super().__init__(
            f"Invalid scope {_describe(scope)} for {where}"
            f"{': ' + reason if reason else ''}. "
            f"A scope is None, True, {false}{which} ({names}), a list of those names, "
            f"or a QuerySet of {model.__name__}."
        )


def _describe(scope: object) -> str:
    """``repr()`` of a scope, except that a QuerySet is named, not run."""
    if isinstance(scope, models.QuerySet):
        label = scope.model._meta.label if scope.model is not None else None
        return f"<QuerySet of {label}>"
    return repr(scope)


class _CompiledKey:
    """A scope named by the SQL its QuerySet compiles to (a :class:`QuerySetKey`
    or a :class:`ContextKey`); it keeps the QuerySet, to run it."""

    __slots__ = ("_hash", "_identity", "alias", "queryset", "sql")

    def __init__(self, queryset: models.QuerySet, scope: Hashable = None) -> None:
        self.queryset = queryset
        self.alias = queryset.db
        self.sql = _compat.compiled_sql(queryset, self.alias)
        identity: tuple[Any, ...] = (
            scope,
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
        return type(other) is type(self) and self._identity == other._identity  # type: ignore[attr-defined, unused-ignore]

    def __hash__(self) -> int:
        return self._hash


class QuerySetKey(_CompiledKey):
    """The cache key of a QuerySet scope.

    Two QuerySets are the same scope when they would run the same SQL with the
    same parameters and build the same kind of objects, so an inline
    ``scope=Author.objects.filter(...)`` written again on each call finds the
    answer the first call cached.
    """

    __slots__ = ()

    def __init__(self, queryset: models.QuerySet) -> None:
        super().__init__(queryset)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickling the QuerySet would run it: a pickled key (in a pickled
        # instance's cache) unpickles as a key that matches nothing.
        return (object, ())


class ContextKey(_CompiledKey):
    """The key of a manager scope in one context (:func:`in_context`): the scope's
    key and the SQL its QuerySet compiled to there. It equals the key the scope
    makes in any context where it compiles to the same SQL, and no other."""

    __slots__ = ()

    @property
    def scope(self) -> Hashable:
        """The key of the manager scope (:func:`cache_key`)."""
        return self._identity[0]

    def __reduce__(self) -> tuple[Any, ...]:
        # Unpickled without its QuerySet (pickling one runs it), as a key that
        # still equals the one the scope makes where it compiles to this SQL.
        try:
            pickle.dumps(self._identity)
        except Exception:  # a parameter that does not pickle: match nothing
            return (object, ())
        return (_unpickled_context_key, (self._identity,))


def _unpickled_context_key(identity: tuple[Any, ...]) -> ContextKey:
    key = ContextKey.__new__(ContextKey)
    key.queryset = None  # type: ignore[assignment]  # never run: only compared
    key.alias = None  # type: ignore[assignment]
    key.sql = identity[-1]
    key._identity = identity
    key._hash = hash(identity)
    return key


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
        if allowed is not None and not allows_base(model, allowed):
            reason = (
                f"False reads through {model.__name__}._base_manager, which scopes= does not name"
            )
            raise InvalidScope(model, scope, reason, field)
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


def allows_base(model: type[models.Model], allowed: Collection[str]) -> bool:
    """Whether a field's ``scopes=`` list lets ``scope=False`` through: it names
    the base manager (``Meta.base_manager_name``), or a plain ``models.Manager()``
    while the base manager is one too (the same rows)."""
    base = model._base_manager
    managers = _compat.managers_map(model)
    for name in allowed:
        manager = managers.get(name) if type(name) is str else None
        if manager is base or (type(manager) is models.Manager and type(base) is models.Manager):
            return True
    return False


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
    if isinstance(key, _CompiledKey):
        return key.queryset.all()
    if key == BASE:
        return model._base_manager.all()
    managers = _compat.managers_map(model)
    first, *rest = key[1]
    queryset = managers[first].all()
    for name in rest:
        queryset = queryset.filter(pk__in=managers[name].all().values("pk"))
    return queryset


def in_context(model: type[models.Model], key: Hashable) -> Hashable:
    """The key of scope ``key`` (made by :func:`cache_key`) in the current context.

    A scope whose managers are all static (:func:`is_static`) is its own key.
    Any other is named by the QuerySet it builds now, a :class:`ContextKey`,
    which compares by the SQL it compiles to: an answer cached under it is
    found again only where the scope compiles to the same SQL (the same tenant,
    the same request), and a read runs that very QuerySet.
    """
    if type(key) is not tuple or _static_scope(model, key):  # tuple: a manager scope
        return key
    return ContextKey(resolve(model, key), key)


def _managers(model: type[models.Model], key: Hashable) -> list[models.Manager]:
    """The managers of a manager scope's key."""
    if key == BASE:
        return [model._base_manager]
    managers = _compat.managers_map(model)
    return [managers[name] for name in key[1]]  # type: ignore[index]


# {weak reference to a model: {key: bool}}: whether every manager of a manager
# scope is static. A WeakKeyDictionary, looked up without its Python-level
# method: every get_<name>() asks.
_STATIC: dict[weakref.ref[type[models.Model]], dict[Hashable, bool]] = {}


def _static_scope(model: type[models.Model], key: Hashable) -> bool:
    decided = _STATIC.get(weakref.ref(model))
    found = None if decided is None else decided.get(key)
    if found is None:
        if decided is None:
            decided = _STATIC[weakref.ref(model, _STATIC.pop)] = {}
        found = decided[key] = all(is_static(manager) for manager in _managers(model, key))
    return found


# {model: {(key, alias): bool}}: a static manager's answer is decided once per database.
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
    compared with the SQL of an unfiltered QuerySet of ``model``: once per
    database for a static manager scope (:func:`is_static`), else on each call.
    Anything not proven is False.
    """
    if isinstance(key, _CompiledKey):
        sql = key.sql if key.alias == alias else _compat.compiled_sql(key.queryset, alias)
        return _plain(model, key.queryset) and sql is not None and sql == _pristine(model, alias)
    if not _static_scope(model, key):
        return all(_every_row(model, manager.all(), alias) for manager in _managers(model, key))
    decided = _EVERY_ROW.setdefault(model, {})
    entry = (key, alias)
    if entry not in decided:
        decided[entry] = all(
            _every_row(model, manager.all(), alias) for manager in _managers(model, key)
        )
    return decided[entry]


# {model: {(key, alias): parameters}}: how many parameters a static manager scope's query carries.
_PARAMETERS: weakref.WeakKeyDictionary[type[models.Model], dict[tuple[Hashable, str], int]] = (
    weakref.WeakKeyDictionary()
)


def parameter_count(
    model: type[models.Model], key: Hashable, queryset: models.QuerySet, alias: str
) -> int:
    """How many parameters ``queryset``, scope ``key``'s QuerySet, carries on ``alias``
    before a key filter is added; decided once per database for a static manager
    scope, else on each call."""
    if isinstance(key, _CompiledKey):
        sql = key.sql if key.alias == alias else _compat.compiled_sql(queryset, alias)
        return 0 if sql is None else len(sql[1])
    if not _static_scope(model, key):
        sql = _compat.compiled_sql(queryset, alias)
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


# ------------------------------------------------------------ the polymorphic field


class InvalidAnyScope(InvalidScope):
    """A scope mapping whose key is not a model the relation allows."""

    def __init__(self, field: Any, scope: object, reason: str) -> None:
        self.model = None  # type: ignore[assignment]
        self.scope = scope
        allowed = field.labels()
        ValueError.__init__(
            self,
            f"Invalid scope {scope!r} for {field.model.__name__}.{field.name}: {reason}. A "
            f"scope mapping's keys are models (or 'app.Model' labels) the relation may point at"
            f"{' (' + ', '.join(allowed) + ')' if field.allowed is not None else ''}.",
        )


class PerModel(NamedTuple):
    """A ``BelongsToAnyField``'s validated ``scope=``: the scope of each target
    model (one for all, or a mapping ``{model: scope}``) and the name its answers
    are cached under."""

    scope: Any  # as given, or {model: scope} for a mapping
    name: Hashable

    def of(self, model: type[models.Model]) -> Any:
        if isinstance(self.scope, dict):
            return self.scope.get(model)
        return self.scope


def per_model(field: Any, scope: Any) -> PerModel:
    """Validate what can be validated without knowing the target: a mapping's
    keys (models the field allows) and each mapped scope against its model; a
    scope for all models is checked against each target when it is read."""
    if not isinstance(scope, Mapping):
        return PerModel(scope, _argument_name(scope))
    resolved: dict[type[models.Model], Any] = {}
    for key, value in scope.items():
        model = field.resolve_model(key)
        if model is None or not field.allows(model):
            what = "not a model" if model is None else f"{model._meta.label}, not allowed"
            raise InvalidAnyScope(field, scope, f"{key!r} is {what}")
        cache_key(model, value, field)  # InvalidScope for a bad scope of that model
        resolved[model] = value
    return PerModel(resolved, _argument_name(resolved))


def _argument_name(scope: Any) -> Hashable:
    """A hashable name for a ``scope=`` argument of any target model."""
    if scope is None or scope is True:
        return "default"
    if scope is False:
        return BASE
    if isinstance(scope, models.QuerySet):
        return QuerySetKey(scope)
    if isinstance(scope, (list, tuple)):
        return ("managers", tuple(scope))
    if isinstance(scope, Mapping):
        return (
            "per model",
            tuple(sorted((m._meta.label, _argument_name(s)) for m, s in scope.items())),
        )
    if type(scope) is str:
        return ("managers", (scope,))
    return ("bad", id(scope))
