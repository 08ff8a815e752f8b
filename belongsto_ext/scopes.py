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

import builtins
import dis
import inspect
import pickle
import weakref
from collections.abc import Collection, Hashable, Iterator
from typing import Any

from django.db import models
from django.db.models.functions.datetime import TimezoneMixin
from django.db.models.manager import BaseManager
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    ValuesIterable,
    ValuesListIterable,
)

from . import _compat
from .types import Scope

__all__ = [
    "ContextKey",
    "InvalidScope",
    "QuerySetKey",
    "cache_key",
    "in_context",
    "is_static",
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
    static = None if decided is None else decided.get(key)
    if static is None:
        if decided is None:
            decided = _STATIC[weakref.ref(model, _STATIC.pop)] = {}
        static = decided[key] = all(is_static(manager) for manager in _managers(model, key))
    return static


# QuerySet methods a static get_queryset() may chain: they filter, order or load.
_PURE_METHODS = frozenset(
    {"all", "filter", "exclude", "order_by", "select_related", "only", "defer", "distinct"}
)
# What a class statement may put in any class's __dict__ (varies by Python version).
_CLASS_BOILERPLATE = frozenset(
    {"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__annotations__"}
    | {"__annotate__", "__firstlineno__", "__static_attributes__", "__orig_bases__"}
    | {"__parameters__", "__classcell__"}
)
_QUERYSET_OWN = frozenset(vars(models.QuerySet)) - _CLASS_BOILERPLATE
# Instructions of no consequence here, and those that only call or combine values.
_SKIPPED_OPS = frozenset(
    {"RESUME", "COPY_FREE_VARS", "MAKE_CELL", "PRECALL", "PUSH_NULL", "NOP", "CACHE"}
    | {"EXTENDED_ARG", "KW_NAMES"}
)
_CALL_OPS = frozenset({"CALL", "CALL_KW", "CALL_FUNCTION", "CALL_FUNCTION_KW", "CALL_METHOD"})
_BUILD_OPS = frozenset(
    {"BUILD_TUPLE", "BUILD_LIST", "BUILD_SET", "BUILD_MAP", "BUILD_CONST_KEY_MAP"}
    | {"LIST_EXTEND", "SET_UPDATE", "DICT_UPDATE", "DICT_MERGE", "LIST_TO_TUPLE"}
    | {"UNARY_INVERT", "BINARY_OR", "BINARY_AND"}
)
_LITERALS = (type(None), bool, int, float, complex, str, bytes)


def is_static(manager: Any) -> bool:
    """Whether ``manager.all()`` builds the same query in every context, so that
    what it selects may be decided once.

    Proven from the code, never assumed: the manager's ``all()`` and its QuerySet
    class are Django's own (a QuerySet subclass may add methods, not override
    any), and every ``get_queryset()`` above Django's is ``super().get_queryset()``
    followed by ``filter()``, ``exclude()``, ``order_by()`` ... with literals,
    ``Q()`` and ``F()`` as arguments; nor may the query read the current time
    zone (``__date``, ``__year`` ...). A manager that reads a contextvar, a
    thread-local, the request, a setting or an attribute is not static.
    """
    kind = type(manager)
    if (
        not isinstance(manager, BaseManager)
        or getattr(kind, "all", None) is not BaseManager.all
        or not _django_queryset(getattr(manager, "_queryset_class", None))
    ):
        return False
    mro = kind.__mro__
    for owner in mro[: mro.index(BaseManager)]:
        method = vars(owner).get("get_queryset")
        if method is not None and not _super_then_filters(method, owner):
            return False
    return not any(
        isinstance(node, TimezoneMixin) for node in _expressions(manager.all().query.where)
    )


def _django_queryset(queryset_class: Any) -> bool:
    """Whether ``queryset_class`` builds and chains QuerySets as Django's own:
    ``QuerySet``, or a subclass that overrides nothing of it."""
    if not (isinstance(queryset_class, type) and issubclass(queryset_class, models.QuerySet)):
        return False
    mro = queryset_class.__mro__
    return not any(_QUERYSET_OWN & vars(kind).keys() for kind in mro[: mro.index(models.QuerySet)])


def _super_then_filters(method: Any, owner: type) -> bool:
    """Whether ``method``, the ``get_queryset()`` of ``owner``, is
    ``return super().get_queryset()`` followed by calls of :data:`_PURE_METHODS`
    with literals, ``Q()`` and ``F()`` as arguments; read from its bytecode."""
    if not inspect.isfunction(method):
        return False
    code = method.__code__
    if (
        code.co_argcount != 1
        or code.co_nlocals != 1
        or code.co_kwonlyargcount
        or code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)
        or code.co_freevars != ("__class__",)
        or method.__closure__ is None
        or method.__closure__[0].cell_contents is not owner
        or method.__globals__.get("super", builtins.super) is not builtins.super
    ):
        return False
    ops = [_op(i) for i in dis.get_instructions(method) if i.opname not in _SKIPPED_OPS]
    # super().get_queryset(): Python 3.12+ loads the method with LOAD_SUPER_ATTR.
    call = ("CALL", 0)
    super_of_self = [("LOAD_DEREF", "__class__"), ("LOAD_FAST", code.co_varnames[0])]
    for head in (
        [("LOAD_GLOBAL", "super"), *super_of_self, ("LOAD_SUPER_ATTR", "get_queryset"), call],
        [("LOAD_GLOBAL", "super"), call, ("LOAD_ATTR", "get_queryset"), call],
    ):
        if ops[: len(head)] == head:
            body = ops[len(head) :]
            break
    else:
        return False
    if not body or body[-1] != ("RETURN_VALUE", None):
        return False
    names = method.__globals__
    after_module = False  # the previous op loaded django.db.models
    for opname, arg in body[:-1]:
        value = None
        if opname == "LOAD_ATTR":
            ok = arg in (("Q", "F") if after_module else _PURE_METHODS)
        elif opname == "LOAD_GLOBAL":
            value = names.get(arg, getattr(builtins, arg, None))
            ok = value is models.Q or value is models.F or value is models
        elif opname == "LOAD_CONST":
            ok = _literal(arg)
        elif opname == "BINARY_OP":
            ok = arg in ("|", "&")
        else:
            ok = opname == "CALL" or opname in _BUILD_OPS
        if not ok:
            return False
        after_module = value is models
    return True


def _op(instruction: dis.Instruction) -> tuple[str, Any]:
    """An instruction as (name, argument), alike on Python 3.10 to 3.13."""
    name, arg = instruction.opname, instruction.argval
    if name in _CALL_OPS:
        return "CALL", arg
    if name == "LOAD_METHOD":
        return "LOAD_ATTR", arg
    if name == "BINARY_OP":
        return name, instruction.argrepr
    return name, arg


def _literal(value: Any) -> bool:
    if isinstance(value, (tuple, frozenset)):
        return all(_literal(item) for item in value)
    return isinstance(value, _LITERALS)


def _expressions(node: Any) -> Iterator[Any]:
    """``node`` (a WhereNode) and every node and expression under it."""
    stack = [node]
    while stack:
        node = stack.pop()
        yield node
        children = getattr(node, "children", None)
        if isinstance(children, list):
            stack.extend(children)
        elif hasattr(node, "get_source_expressions"):
            stack.extend(e for e in node.get_source_expressions() if e is not None)


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
