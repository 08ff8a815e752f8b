"""get / set / create and their async twins, each written once for any field.

Every function takes the field first; ``fields.py`` binds them per field as
``get_<name>``, ``set_<name>``, ``create_<name>``, ``aget_<name>``, ... .
Scopes are resolved by ``scopes``; answers are kept by ``cache``. :func:`load`
also serves batch loading.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import uuid
from collections.abc import Hashable, Iterable, Mapping
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, cast

from asgiref.sync import sync_to_async
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connections, models, router, transaction

from . import _compat, cache, scopes
from .cache import MISS
from .types import AnyScope, Scope

if TYPE_CHECKING:
    from .fields import BelongsToMixin as Field

# Python types a key value may arrive as; anything else (bytes, containers,
# arbitrary objects) is refused unless it is already the target field's own type.
_KEY_TYPES = (
    str,
    int,
    float,
    decimal.Decimal,
    uuid.UUID,
    datetime.date,
    datetime.time,
    datetime.timedelta,
)


def _target(field: Field) -> type[models.Model]:
    """The related model (always resolved by the time a method runs)."""
    return field.related_model


def _label(field: Field, instance: models.Model) -> str:
    return f"{type(instance).__name__}.{field.name}"


# ---------------------------------------------------------------- get


def get_related(
    field: Field,
    instance: models.Model,
    /,
    *,
    scope: Scope[Any] = None,
    using: str | None = None,
    fetch: bool = True,
) -> Any:
    """Return the related object in ``scope``, or ``None``; at most one query.

    With ``fetch=False``, never query: return :data:`MISS` when no cache answers.
    """
    value = instance.__dict__.get(field.attname, MISS)
    if value is MISS:  # a deferred key: reading it queries
        if field.strict:
            raise fetch_blocked(field, instance)
        value = getattr(instance, field.attname)
    model: type[models.Model] = field.related_model
    if value is None:
        if scope is not None:
            scopes.cache_key(model, scope, field)  # still refuse a bad scope
        return None
    key = scopes.cache_key(model, scope, field)
    # Answers are stored under the scope's own key only when it is static
    # (scopes.in_context()): a hit there needs no decision. Else the scope is
    # named as it is in this context.
    obj = cache.lookup(field, instance, key, using)
    if obj is MISS and (here := scopes.in_context(model, key)) is not key:
        key = here
        obj = cache.lookup(field, instance, key, using)
    if obj is MISS and using is None:
        obj = _django_answer(field, instance, key, value)
    if obj is MISS and fetch:
        obj = _fetch(field, instance, key, value, using)
    return obj


async def aget_related(
    field: Field, instance: models.Model, /, *, scope: Scope[Any] = None, using: str | None = None
) -> models.Model | None:
    """Async :func:`get_related`: answers from the caches without a thread hop."""
    obj = MISS
    if field.attname in instance.__dict__:  # else loading the deferred key queries
        obj = get_related(field, instance, scope=scope, using=using, fetch=False)
    if obj is MISS:
        obj = await _get_related_in_thread(field, instance, scope=scope, using=using)
    return obj


def _django_answer(field: Field, instance: models.Model, key: Hashable, value: Any) -> Any:
    """The object Django holds for ``instance.<name>`` (select_related,
    prefetch_related, assignment ...) when it answers scope ``key``, else MISS:
    only when that scope is certain to select every row, on the database it
    would read.

    A None Django holds for a key that is not null never answers: the query
    that loaded it (a join another library filters, a base manager that
    filters, a ``Prefetch`` QuerySet) is not known, and a scope may see rows
    it did not.
    """
    obj = _compat.fields_cache(instance).get(field.cache_name)
    if obj is None or not scopes.selects_every_row(
        _target(field), key, _read_alias(field, instance, key, value, None)
    ):
        return MISS
    return obj


def _read_alias(
    field: Field, instance: models.Model, key: Hashable, value: Any, using: str | None
) -> str:
    """Where reading scope ``key`` for ``instance`` goes: ``using``; else a QuerySet
    scope's own ``using()``; else, for the key this instance last wrote, where
    writes of the target go; else where the router reads the target, with the
    owner as hint, as ``book.author`` does."""
    if using is not None:
        return using
    if isinstance(key, scopes.QuerySetKey) and _compat.explicit_alias(key.queryset):
        return key.alias
    model = _target(field)
    if cache.pinned(field, instance, value):
        return router.db_for_write(model, instance=instance)
    return router.db_for_read(model, instance=instance)


def pinned_alias(field: Field, instance: models.Model) -> str | None:
    """The database ``instance.<name>`` reads from for the key this instance just
    wrote (the one writes go to), or None to route as usual."""
    value = instance.__dict__.get(field.attname)
    if value is None or not cache.pinned(field, instance, value):
        return None
    return router.db_for_write(_target(field), instance=instance)


def _fetch(
    field: Field, instance: models.Model, key: Hashable, value: Any, using: str | None
) -> Any:
    """Query for scope ``key`` (honouring the owner's fetch mode on Django 6.1+),
    cache the answer and return it."""
    if field.strict:
        raise fetch_blocked(field, instance)
    mode = _compat.fetch_mode(instance)
    if mode is None or mode is _compat.FETCH_ONE:
        load(field, [instance], key, using)
    else:
        # FETCH_PEERS loads every peer in one query; FETCH_RAISE raises
        # FieldFetchBlocked naming the field.
        mode.fetch(_Fetcher(field, key, using), instance)
    return cache.lookup(field, instance, key, using)


class _Fetcher:
    """The fetcher protocol of Django 6.1's fetch modes, for one field and scope."""

    __slots__ = ("field", "key", "using")

    def __init__(self, field: Field, key: Hashable, using: str | None) -> None:
        self.field = field
        self.key = key
        self.using = using

    def fetch_one(self, instance: models.Model) -> None:
        load(self.field, [instance], self.key, self.using, _compat.fetch_mode(instance))

    def fetch_many(self, instances: list[models.Model]) -> None:
        load(self.field, instances, self.key, self.using, _compat.fetch_mode(instances[0]))


def fetch_blocked(field: Field, instance: models.Model) -> Exception:
    """The error a ``strict=True`` relation raises instead of querying."""
    name = f"{type(instance).__qualname__}.{field.name}"
    return _compat.FieldFetchBlocked(
        f"Fetching of {name} blocked: the relation is strict=True. Load it first, in the "
        f"scope you read it in: belongsto_ext.prefetch() or ScopedPrefetch (any scope), "
        f"or select_related() (scope=False and unfiltered scopes)."
    )


# ------------------------------------------------------------- loading


def load(
    field: Field,
    instances: Iterable[models.Model],
    key: Hashable,
    using: str | None,
    mode: Any = None,
) -> None:
    """Read the related rows in scope ``key`` of the instances no cache answers
    for, and cache them: one query per database read from and per batch of
    keys the database takes.

    Instances with a null key, or whose answer a cache holds, are skipped.
    ``key`` is a scope's key (:func:`scopes.cache_key`), named here as the
    scope is in the current context.
    """
    model = _target(field)
    key = scopes.in_context(model, key)
    name = cache.entry(field, key, using)
    django_answers: bool | None = None  # decided once, and only if Django holds an object
    pending = []
    for instance in instances:
        value = getattr(instance, field.attname)
        if value is None or cache.lookup_entry(instance, name) is not MISS:
            continue
        # A None Django holds answers no scope (see _django_answer()).
        if using is None and _compat.fields_cache(instance).get(field.cache_name) is not None:
            if django_answers is None:
                alias = _read_alias(field, instance, key, value, None)
                django_answers = scopes.selects_every_row(model, key, alias)
            if django_answers:
                continue
        pending.append((instance, value))
    if not pending:
        return
    every_row: bool | None = None
    one_to_one = not field.remote_field.multiple
    for alias, group, found in _read(field, pending, key, using, mode):
        if every_row is None:
            every_row = using is None and scopes.selects_every_row(model, key, alias)
        for instance, _value, wanted in group:
            obj = found.get(wanted)
            cache.store_entry(instance, name, obj)
            if obj is not None:
                if every_row:
                    field.set_cached_value(instance, obj)
                if one_to_one:
                    field.remote_field.set_cached_value(obj, instance)


_Pending = list[tuple[models.Model, Any, Any]]  # (instance, key value, value looked up)


def _read(
    field: Field,
    pending: list[tuple[models.Model, Any]],
    key: Hashable,
    using: str | None,
    mode: Any,
) -> list[tuple[str, _Pending, dict[Any, models.Model]]]:
    """The rows of scope ``key`` for ``pending``, per database read from:
    ``[(alias, [(instance, key value, value looked up)], {value: row})]``.

    The key an instance just wrote is read where writes go; the others where
    the router reads, asked once with the first of them as hint. On each
    database the distinct keys go in batches no larger than it takes.
    """
    target = field.target_field
    groups: dict[str, _Pending] = {}
    routed: str | None = None
    for instance, value in pending:
        # As in set_<name>(), only a str key may convert to another type ("5" -> 5).
        wanted = target.to_python(value) if isinstance(value, str) else value
        if using is None and cache.pinned(field, instance, value):
            alias = _read_alias(field, instance, key, value, None)
        else:
            if routed is None:
                routed = _read_alias(field, instance, key, value, using)
            alias = routed
        groups.setdefault(alias, []).append((instance, value, wanted))
    model = _target(field)
    lookup = "pk" if target.primary_key else target.attname
    result = []
    for alias, group in groups.items():
        queryset = scopes.resolve(model, key).using(alias)
        if mode is not None:
            queryset = queryset.fetch_mode(mode)  # type: ignore[attr-defined, unused-ignore]  # 6.1
        keys = list(dict.fromkeys(wanted for _instance, _value, wanted in group))
        found: dict[Any, models.Model] = {}
        if len(keys) == 1:
            obj = next(iter(queryset.filter(**{lookup: keys[0]})[:1]), None)
            if obj is not None:
                found[keys[0]] = obj
        else:
            size = _batch_size(model, key, queryset, alias)
            for start in range(0, len(keys), size):
                batch = keys[start : start + size]
                found.update(
                    (getattr(obj, target.attname), obj)
                    for obj in queryset.filter(**{f"{lookup}__in": batch})
                )
        result.append((alias, group, found))
    return result


def _batch_size(
    model: type[models.Model], key: Hashable, queryset: models.QuerySet, alias: str
) -> int:
    """How many keys one ``IN`` query of scope ``key`` may carry on ``alias``:
    the database's parameter limit less the scope's own parameters, and its
    longest ``IN`` list."""
    connection = connections[alias]
    limits = [_compat.max_query_params(connection), connection.ops.max_in_list_size()]
    if limits[0] is not None:
        limits[0] -= scopes.parameter_count(model, key, queryset, alias)
    sizes = [limit for limit in limits if limit is not None]
    return max(1, min(sizes)) if sizes else 2**62


class ScopedLoad:
    """What a ``ScopedPrefetch`` hands Django's prefetch machinery for its last
    level, in place of a QuerySet: the relation's forward descriptor
    (``fields.py``) recognises it and loads through :func:`prefetch_querysets`."""

    __slots__ = ("lookup", "scope", "using")

    def __init__(self, lookup: str, scope: AnyScope, using: str | None) -> None:
        self.lookup = lookup
        self.scope = scope
        self.using = using

    def __getattr__(self, name: str) -> Any:
        # A plain ForeignKey's descriptor would treat this as a QuerySet.
        raise TypeError(
            f"ScopedPrefetch({self.lookup!r}) reached a relation that is not a "
            f"BelongsToField or BelongsToOneField."
        )


def prefetch_querysets(
    field: Field, instances: list[models.Model], load: ScopedLoad
) -> tuple[list[models.Model], Any, Any, bool, cache.Entry, bool]:
    """``get_prefetch_querysets()`` for a ``ScopedPrefetch``: the rows of the scope,
    and how Django's ``prefetch_one_level()`` matches them to ``instances`` and
    stores them: into this scope's cache entry, one shared object per row."""
    model = _target(field)
    # InvalidScope before any query (a mapping is a BelongsToAnyField's scope: refused too).
    key = scopes.in_context(model, scopes.cache_key(model, cast("Scope[Any]", load.scope), field))
    pending = [(i, v) for i in instances if (v := getattr(i, field.attname)) is not None]
    read = _read(field, pending, key, load.using, None) if pending else []
    attname = field.target_field.attname
    where = {
        id(instance): (alias, wanted) for alias, group, _ in read for instance, _, wanted in group
    }
    rows = [obj for _alias, _group, found in read for obj in found.values()]
    every_row = (
        load.using is None and bool(read) and scopes.selects_every_row(model, key, read[0][0])
    )
    one_to_one = not field.remote_field.multiple
    if every_row or one_to_one:
        for _alias, group, found in read:
            for instance, _value, wanted in group:
                obj = found.get(wanted)
                if obj is not None:
                    if every_row:
                        field.set_cached_value(instance, obj)
                    if one_to_one:
                        field.remote_field.set_cached_value(obj, instance)
    return (
        rows,
        lambda obj: (obj._state.db, getattr(obj, attname)),
        lambda instance: where.get(id(instance)),
        True,
        cache.entry(field, key, load.using),
        False,
    )


# ---------------------------------------------------------------- set


def _prepare(field: Field, instance: models.Model, value: Any) -> tuple[str, Any]:
    """Validate ``value``; return the attribute to assign and what to assign to it.

    Raises before anything changes: ``TypeError`` for a value of the wrong kind,
    ``ValueError`` for one of the right kind that cannot be used.
    """
    if value is None:
        if not field.null:
            raise ValueError(
                f"{_label(field, instance)}: cannot set None, the field is not nullable "
                f"(null=False). Pass a saved {_target(field).__name__} or its key."
            )
        return field.name, None
    if not isinstance(value, models.Model):
        return field.attname, _coerce(field, instance, value)
    model = _target(field)
    if not isinstance(value, model._meta.concrete_model):  # type: ignore[arg-type]
        raise TypeError(
            f"{_label(field, instance)}: cannot set {value!r}, a "
            f"{type(value).__name__}. Pass a saved {model.__name__}, its key, or None."
        )
    if value._state.adding:
        raise ValueError(
            f"{_label(field, instance)}: cannot set the unsaved {model.__name__} "
            f"{value!r}. Save it first, or use create_{field.name}()."
        )
    if getattr(value, field.target_field.attname) is None:
        raise ValueError(
            f"{_label(field, instance)}: cannot set {value!r}: its "
            f"{field.target_field.name} is None, so there is no key to point at."
        )
    return field.name, value


def _coerce(field: Field, instance: models.Model, value: Any) -> Any:
    """Convert a key value with the target field, refusing any inexact conversion,
    and check it with the target field's validators."""
    target = field.target_field
    if isinstance(value, bool) or not isinstance(value, _KEY_TYPES):
        try:
            native = type(target.to_python(value)) is type(value)
        except Exception:
            native = False
        if isinstance(value, bool) or not native:
            raise TypeError(f"{_label(field, instance)}: cannot set {value!r}. {_expected(field)}")
    try:
        coerced = target.to_python(value)
        if coerced is None:
            raise ValueError("it converts to None")
        # Only str inputs may change type (e.g. "5" -> 5); 1.5 -> 1 is lossy.
        if coerced != value and not isinstance(value, str):
            raise ValueError(f"it converts to {coerced!r}, not exactly")
        _run_validators(target, coerced)
    except (ValidationError, TypeError, ValueError, ArithmeticError) as exc:
        reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        reason = reason.rstrip(".")
        raise ValueError(
            f"{_label(field, instance)}: {value!r} is not a valid {_target(field).__name__} "
            f"key: {reason}. {_expected(field)}"
        ) from exc
    return coerced


def _run_validators(target: models.Field[Any, Any], value: Any) -> None:
    """``target.run_validators(value)``, raising the first error.

    An integer column's range comes as a ``MinValueValidator`` and a
    ``MaxValueValidator`` with fixed limits: those are compared here, as calling
    them would compare, and only called to raise their own error.
    """
    for validator in target.validators:
        kind, limit = type(validator), getattr(validator, "limit_value", None)
        if callable(limit) or not (
            (kind is MinValueValidator and value >= limit)
            or (kind is MaxValueValidator and value <= limit)
        ):
            validator(value)


def _expected(field: Field) -> str:
    """What set_<name>() accepts, for its error messages."""
    model = _target(field)
    return (
        f"Pass a saved {model.__name__}, a value of {model.__name__}.{field.target_field.name} "
        f"({field.target_field.get_internal_type()}), or None."
    )


def is_related(field: Field, instance: models.Model, other: Any) -> bool:
    """Whether the key points at ``other`` (an instance, a key value or None),
    without a query. A key value is converted as ``set_<name>()`` converts it,
    with the same errors; an instance of another model raises TypeError; an
    unsaved target gives False."""
    value = getattr(instance, field.attname)
    if other is None:
        return value is None
    if isinstance(other, models.Model):
        model = _target(field)
        if not isinstance(other, model._meta.concrete_model):  # type: ignore[arg-type]
            raise TypeError(
                f"{_label(field, instance)}: cannot compare with {other!r}, a "
                f"{type(other).__name__}. Pass a {model.__name__}, its key, or None."
            )
        key = getattr(other, field.target_field.attname)
        return not other._state.adding and key is not None and key == _as_key(field, value)
    return _coerce(field, instance, other) == _as_key(field, value)


def _as_key(field: Field, value: Any) -> Any:
    """The key the instance holds, as the target field's value ("5" -> 5)."""
    return field.target_field.to_python(value) if isinstance(value, str) else value


def has_changed(field: Field, instance: models.Model) -> bool:
    """Whether the key differs from the one the row holds as far as the
    instance knows; a deferred key is unchanged and is not loaded, and one
    assigned since is changed."""
    if field.attname not in instance.__dict__:
        return False
    before, now = cache.in_database(field, instance), instance.__dict__[field.attname]
    if before is cache.UNKNOWN:
        return True
    # ``book.author_id = "5"`` on a row holding 5 moves nothing: compare as saved.
    return before != now and _saved_as(field, before) != _saved_as(field, now)


def previous_key(field: Field, instance: models.Model) -> Any:
    """The key the row holds as far as the instance knows (None if never saved).
    A deferred key assigned since is read from the row (one query), and kept."""
    key = cache.in_database(field, instance)
    if key is cache.UNKNOWN:
        rows = type(instance)._base_manager.db_manager(instance._state.db)
        key = rows.filter(pk=instance.pk).values_list(field.attname, flat=True).first()
        cache.known(field, instance, key)
    return key


def _saved_as(field: Field, value: Any) -> Any:
    """The key value as the row would hold it ("5" -> 5); a value that does not
    convert is compared as it is."""
    try:
        return _as_key(field, value)
    except ValidationError:
        return value


def check_in_scope(
    field: Field, instance: models.Model | None, key: Any, scope: Scope[Any]
) -> None:
    """Raise ``ValidationError`` naming the field and the value unless the row
    with ``key`` exists in ``scope`` (None: the default scope) and matches the
    field's ``limit_choices_to``: one query."""
    model = _target(field)
    scope_key = scopes.cache_key(model, True if scope is None else scope, field)
    queryset = scopes.resolve(model, scope_key)
    if instance is not None:
        queryset = queryset.using(router.db_for_read(model, instance=instance))
    target = field.target_field
    queryset = queryset.filter(**{target.attname: key}).complex_filter(field.get_limit_choices_to())
    if not queryset.exists():
        owner = f"{field.model.__name__}.{field.name}"
        raise ValidationError(
            # The value goes in as a parameter: a key holding "%" must not break
            # the message's formatting.
            f"{owner}: no {model.__name__} with {target.name} %(value)r in the scope it "
            f"is checked in (missing, hidden by the scope, or not an allowed choice).",
            code="invalid",
            params={"value": key},
        )


# What set/create may change in memory, per object: its attributes, database,
# adding flag and relation caches; _restore() puts them back if they fail.
_State = tuple[models.Model, dict[str, Any], str | None, bool, dict[str, Any]]


def _state_of(obj: models.Model) -> _State:
    state = obj._state
    return (obj, obj.__dict__.copy(), state.db, state.adding, _compat.fields_cache(obj).copy())


def _snapshot(field: Field, instance: models.Model, value: Any) -> list[_State]:
    """The states of ``instance`` and of the objects setting ``value`` also writes to."""
    states = [_state_of(instance)]
    if not field.remote_field.multiple or field.touch or field.counter_cache:
        # A one-to-one assignment also writes the reverse cache of the new and
        # the old related object; touch= and counter_cache= write their columns,
        # and a touch those of the targets they cache in turn (read back after
        # the write: counters.refresh_cached()).
        old = field.get_cached_value(instance, default=None)
        objs = [
            obj for obj in (value, None if old is value else old) if isinstance(obj, models.Model)
        ]
        if field.touch:
            objs = _with_touched_targets(objs)
        states += [_state_of(obj) for obj in objs]
    return states


def _with_touched_targets(objs: list[models.Model]) -> list[models.Model]:
    """``objs`` and the objects they cache through relations with ``touch=``, in
    turn (a chain, or a tree's ancestors), each once."""
    found = {id(obj): obj for obj in objs}
    todo = list(objs)
    while todo:
        obj = todo.pop()
        for f in type(obj)._meta.fields:
            if getattr(f, "touch", False) and f.is_relation:
                target = f.get_cached_value(obj, default=None)  # type: ignore[attr-defined]
                if target is not None and id(target) not in found:
                    found[id(target)] = target
                    todo.append(target)
    return list(found.values())


def _restore(states: list[_State]) -> None:
    for obj, attrs, db, adding, fields_cache in states:
        obj.__dict__.clear()
        obj.__dict__.update(attrs)
        obj._state.db = db
        obj._state.adding = adding
        _compat.set_fields_cache(obj, fields_cache)


def set_related(
    field: Field,
    instance: models.Model,
    value: Any,
    /,
    *,
    save: bool = True,
    validate: bool = False,
    **save_kwargs: Any,
) -> None:
    """Point the foreign key at ``value`` (instance, key or None) and save it.

    Bad input raises before anything changes (with ``validate``, also a row
    the field's validation would refuse). The save is one transaction (the
    caller's, if one is open): if it fails, nothing is written and the
    instance is put back as it was. After a save, reads of the new key go to
    the database writes go to (read-your-own-writes).
    """
    attr, value = _prepare(field, instance, value)
    if validate and value is not None:
        key = getattr(value, field.target_field.attname) if attr == field.name else value
        check_in_scope(field, instance, key, field.validate_scope)
    states = _snapshot(field, instance, value)
    one_to_one = not field.remote_field.multiple
    old = field.get_cached_value(instance, default=None) if one_to_one else None
    try:
        # ``book.author = obj`` or ``book.author_id = key``: Django's descriptors
        # check the router's allow_relation() and keep Django's caches right.
        try:
            setattr(instance, attr, value)
        except ValueError as exc:  # the only refusal left: the router's
            raise ValueError(
                f"{_label(field, instance)}: cannot set {value!r}: the database router "
                f"does not allow this relation ({exc})"
            ) from exc
        if (
            old is not None
            and old is not value
            and field.remote_field.get_cached_value(old, default=None) is instance
        ):
            # One-to-one: the old target no longer points back here (Django
            # only does this when the new value is None).
            field.remote_field.set_cached_value(old, None)
        if save:
            if not (
                instance._state.adding
                or (
                    save_kwargs
                    and ("update_fields" in save_kwargs or save_kwargs.get("force_insert"))
                )
            ):
                save_kwargs["update_fields"] = _update_fields(type(instance), field.name)
            using = save_kwargs.get("using") or router.db_for_write(
                type(instance), instance=instance
            )
            # One transaction: a post_save receiver that raises (a history
            # table, a search index) rolls the UPDATE back, and the instance is
            # put back below. Inside the caller's transaction, no savepoint: a
            # failure rolls that transaction back, as Django's own saves do.
            with transaction.atomic(using=using, savepoint=False):
                instance.save(**save_kwargs)
            cache.pin(field, instance)
    except BaseException:
        _restore(states)
        raise


@functools.cache
def _update_fields(model: type[models.Model], *names: str) -> tuple[str, ...]:
    """What ``set_<name>()`` saves on ``model``: the relation's columns ``names``
    plus the ``auto_now`` ones."""
    auto_now = [
        f.name
        for f in model._meta.concrete_fields
        if getattr(f, "auto_now", False) and f.name not in names
    ]
    return (*names, *auto_now)


async def aset_related(
    field: Field,
    instance: models.Model,
    value: Any,
    /,
    *,
    save: bool = True,
    validate: bool = False,
    **save_kwargs: Any,
) -> None:
    """Async :func:`set_related`; without ``save`` or ``validate`` nothing touches
    the database."""
    if not (save or validate):
        set_related(field, instance, value, save=False)
        return
    await _set_related_in_thread(
        field, instance, value, save=save, validate=validate, **save_kwargs
    )


# ---------------------------------------------------------------- create


def create_related(
    field: Field,
    instance: models.Model,
    values: Mapping[str, Any] | None = None,
    /,
    *,
    save: bool = True,
    **fields: Any,
) -> models.Model:
    """Create the related object from ``values`` and ``fields``, then set it.

    The object is built and saved as ``Target.objects.create()`` does, on the
    database the router picks for writing, with the router's
    ``allow_relation()`` asked before the INSERT. Both writes happen in one
    transaction (on each database involved): if saving the owner fails, the
    new object is rolled back and the owner is put back as it was.
    """
    data = _values(field, instance, values, fields)
    model = _target(field)
    target_db = router.db_for_write(model, instance=instance)
    owner_db = router.db_for_write(type(instance), instance=instance) if save else target_db
    method = create_method(field)
    states = _snapshot(field, instance, None)
    # The new row's own writes (touch=) may update objects it was given, in memory.
    states += [_state_of(value) for value in data.values() if isinstance(value, models.Model)]
    try:
        if method is None:
            obj = model(**data)  # an unknown field name raises TypeError here
            _check_relation(field, instance, obj, target_db)
        with (
            transaction.atomic(using=target_db),
            transaction.atomic(using=owner_db) if owner_db != target_db else nullcontext(),
        ):
            if save and _chained(field, owner_db) and not instance._state.adding:
                # The new row's own triggers lock what it touches or counts: take
                # the owner's row first, in the order a concurrent move of the
                # owner takes them (its row, then the targets' chain), or the
                # two would deadlock.
                type(instance)._base_manager.using(owner_db).filter(
                    pk=instance.pk
                ).select_for_update(no_key=True).values_list("pk").first()
            if method is None:
                obj.save(force_insert=True, using=target_db)
            else:
                # The manager's own factory (create_user()...): the router's
                # allow_relation() is asked when the object is set, and a
                # refusal rolls its INSERT back.
                obj = getattr(model._default_manager.db_manager(target_db), method)(**data)
            set_related(field, instance, obj, save=save)
        cache.pin(field, instance)  # the new row is read where it was written
    except BaseException:
        _restore(states)
        raise
    return obj


def _chained(field: Field, using: str) -> bool:
    """Whether writing the owner's key locks a chain of rows (the target's own
    relations touch or count), on a database that locks rows."""
    if not (field.touch or field.counter_cache):
        return False
    if not connections[using].features.has_select_for_update:
        return False
    return any(
        getattr(f, "touch", False) or getattr(f, "counter_cache", None)
        for f in _target(field)._meta.fields
    )


def create_method(field: Field) -> str | None:
    """The target's default manager method ``create_<name>()`` calls, None for
    ``Model(...).save()`` as ``create()`` does: ``create_method=``, else
    ``create_user`` when the manager has one (a user model's password is
    hashed), and ``create_method="create"`` asks for ``create()`` itself."""
    name = field.create_method
    if name is None and callable(getattr(_target(field)._default_manager, "create_user", None)):
        name = "create_user"
    return None if name == "create" else name


def _values(
    field: Field, instance: models.Model, values: Any, fields: dict[str, Any]
) -> dict[str, Any]:
    """The field values of the object ``create_<name>()`` makes, checked first."""
    if values is None:
        data = fields
    elif isinstance(values, Mapping):
        data = {**values, **fields}
    else:
        raise TypeError(
            f"{_label(field, instance)}: create_{field.name}() values must be a mapping "
            f"of {_target(field).__name__} field names to values, not {values!r}."
        )
    meta = _target(field)._meta
    for name in data:
        try:
            related = meta.get_field(name)
        except FieldDoesNotExist:
            continue  # the model's own __init__ refuses it, or takes it as a property
        if related.one_to_one and not related.concrete:
            # As QuerySet.create(): a reverse one-to-one is not a field of the row.
            raise ValueError(
                f"{_label(field, instance)}: create_{field.name}() got {name!r}, the "
                f"reverse side of a one-to-one relation, which is not a field of "
                f"{meta.object_name}."
            )
    return data


def _check_relation(
    field: Field, instance: models.Model, obj: models.Model, target_db: str
) -> None:
    """Refuse, before the INSERT, a new target on ``target_db`` the router won't relate.

    Sets the owner's database as ``book.author = obj`` would (the caller's
    snapshot puts it back on failure).
    """
    obj._state.db = target_db
    if instance._state.db is None:
        instance._state.db = router.db_for_write(type(instance), instance=obj)
    if not router.allow_relation(obj, instance):
        raise ValueError(
            f"{_label(field, instance)}: cannot create a {obj._meta.object_name} on "
            f"{target_db!r} for {instance!r} on {instance._state.db!r}: the current "
            f"database router prevents this relation."
        )


async def acreate_related(
    field: Field,
    instance: models.Model,
    values: Mapping[str, Any] | None = None,
    /,
    *,
    save: bool = True,
    **fields: Any,
) -> models.Model:
    """Async :func:`create_related`: one ``sync_to_async`` call keeps it atomic."""
    return await _create_related_in_thread(field, instance, values, save=save, **fields)


# The sync_to_async() wrappers the async twins call, each built once.
_get_related_in_thread = sync_to_async(get_related)
_set_related_in_thread = sync_to_async(set_related)
_create_related_in_thread = sync_to_async(create_related)
