"""get / set / create and their async twins, each written once for any field.

Every function takes the field first; ``fields.py`` binds them per field as
``get_<name>``, ``set_<name>``, ``create_<name>``, ``aget_<name>``, ... .

Scoped results are cached in Django's own per-instance cache
(``instance._state.fields_cache``) under ``field.scoped_cache_name``, as a
``ScopedCache`` ``{(scope key, using): (key value it was read for, object or None)}``.
Assigning the
foreign key in any way (``set_<name>``, ``book.author``, ``book.author_id``,
``refresh_from_db()``) drops that dict: see ``fields.KeyAttribute``.
"""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from collections.abc import Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import DEFAULT_DB_ALIAS, models, router, transaction

from . import scopes

if TYPE_CHECKING:
    from .fields import BelongsToField

try:  # Django 6.1+
    from django.db.models.fetch_modes import FETCH_ONE
except ImportError:  # Django 5.2, 6.0: no fetch modes
    FETCH_ONE = None

__all__ = [
    "acreate_related",
    "aget_related",
    "aprefetch",
    "aset_related",
    "create_related",
    "get_related",
    "prefetch",
    "set_related",
]

_MISS = object()

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


def _target(field: BelongsToField) -> type[models.Model]:
    """The related model (always resolved by the time a method runs)."""
    return field.related_model  # type: ignore[return-value]


def _label(field: BelongsToField, instance: models.Model) -> str:
    return f"{type(instance).__name__}.{field.name}"


class ScopedCache(dict):
    """``{(scope key, using): (key value, object or None)}`` for one instance and field.

    Pickles without the entries keyed by an ad-hoc QuerySet scope: pickling a
    QuerySet runs it.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        kept = ((k, v) for k, v in self.items() if k[0][0] != "queryset")
        return (ScopedCache, (), None, None, kept)


# ---------------------------------------------------------------- get


def get_related(
    field: BelongsToField,
    instance: models.Model,
    scope: scopes.Scope = None,
    using: str | None = None,
    *,
    fetch: bool = True,
) -> Any:
    """Return the related object in ``scope``, or ``None``; at most one query.

    With ``fetch=False`` never query: return ``_MISS`` when no cache answers.
    """
    # Written out, not split into helpers: on a cached answer each extra call
    # costs more than the lookup itself.
    value = instance.__dict__.get(field.attname, _MISS)
    if value is _MISS:  # deferred: reading it queries
        value = getattr(instance, field.attname)
    model: type[models.Model] = field.related_model  # type: ignore[assignment]
    if value is None:
        if scope is not None:
            scopes.cache_key(model, scope)  # still refuse a bad scope
        return None
    key = scopes.cache_key(model, scope)
    scoped = instance._state.fields_cache.get(field.scoped_cache_name)
    if scoped is not None:
        entry = scoped.get((key, using))
        if entry is not None and entry[0] == value:
            return entry[1]
    obj = _from_django_cache(field, instance, key, using)
    if obj is _MISS and fetch:
        return _fetch(field, instance, key, using)
    return obj


async def aget_related(
    field: BelongsToField,
    instance: models.Model,
    scope: scopes.Scope = None,
    using: str | None = None,
) -> models.Model | None:
    """Async :func:`get_related`: answers from the caches without a thread hop."""
    if field.attname not in instance.__dict__:  # deferred: reading it queries
        return await _get_related_in_thread(field, instance, scope, using)
    obj = get_related(field, instance, scope, using, fetch=False)
    if obj is _MISS:
        key = scopes.cache_key(_target(field), scope)
        obj = await _fetch_in_thread(field, instance, key, using)
    return obj


def _from_django_cache(
    field: BelongsToField, instance: models.Model, key: Hashable, using: str | None
) -> Any:
    """What ``book.author`` holds, if it answers scope ``key``; else ``_MISS``."""
    fields_cache = instance._state.fields_cache
    if field.cache_name in fields_cache and _reuses_django_cache(field, key, using):
        return fields_cache[field.cache_name]
    return _MISS


def _reuses_django_cache(field: BelongsToField, key: Hashable, using: str | None) -> bool:
    """Whether what ``book.author`` holds (select_related, assignment, ...) answers
    scope ``key``: only when the scope selects every row and no alias is forced.

    Builds the scope's QuerySet: call it only when Django does hold an object.
    """
    model = _target(field)
    return using is None and scopes.is_unfiltered(model, scopes.resolve(model, key))


def _fetch(field: BelongsToField, instance: models.Model, key: Hashable, using: str | None) -> Any:
    """Query for ``key`` (honouring the owner's fetch mode on Django 6.1+), cache, return."""
    mode = instance._state.fetch_mode if FETCH_ONE is not None else None  # type: ignore[attr-defined]
    if mode is None or mode is FETCH_ONE:
        _load(field, [instance], key, using, None)
    else:
        # FETCH_PEERS loads every peer in one query; FETCH_RAISE raises
        # FieldFetchBlocked naming the field.
        mode.fetch(_Fetcher(field, key, using), instance)
    return instance._state.fields_cache[field.scoped_cache_name][(key, using)][1]


class _Fetcher:
    """The fetcher protocol of Django 6.1's fetch modes, for one field and scope."""

    __slots__ = ("field", "key", "using")

    def __init__(self, field: BelongsToField, key: Hashable, using: str | None) -> None:
        self.field = field
        self.key = key
        self.using = using

    def fetch_one(self, instance: models.Model) -> None:
        mode = instance._state.fetch_mode  # type: ignore[attr-defined]
        _load(self.field, [instance], self.key, self.using, mode)

    def fetch_many(self, instances: list[models.Model]) -> None:
        missing = _missing(self.field, instances, self.key, self.using)
        if missing:
            mode = instances[0]._state.fetch_mode  # type: ignore[attr-defined]
            _load(self.field, missing, self.key, self.using, mode)


def _missing(
    field: BelongsToField, instances: Iterable[models.Model], key: Hashable, using: str | None
) -> list[models.Model]:
    """The instances with a key value that no cache answers for ``key``."""
    unfiltered: bool | None = None  # asked once, and only if Django holds an object
    entry_key = (key, using)
    attname = field.attname
    missing = []
    for instance in instances:
        value = instance.__dict__.get(attname, _MISS)
        if value is _MISS:  # deferred: reading it queries
            value = getattr(instance, attname)
        if value is None:
            continue
        fields_cache = instance._state.fields_cache
        if field.cache_name in fields_cache:
            if unfiltered is None:
                unfiltered = _reuses_django_cache(field, key, using)
            if unfiltered:
                continue
        entry = fields_cache.get(field.scoped_cache_name, {}).get(entry_key)
        if entry is None or entry[0] != value:
            missing.append(instance)
    return missing


def _load(
    field: BelongsToField,
    instances: list[models.Model],
    key: Hashable,
    using: str | None,
    mode: Any,
) -> None:
    """One query for the related rows of ``instances`` in scope ``key``; cache them."""
    model = _target(field)
    queryset = scopes.resolve(model, key)
    unfiltered = using is None and scopes.is_unfiltered(model, queryset)
    if using is not None:
        queryset = queryset.using(using)
    else:
        # Route as ``book.author`` does: the owner is the router's hint. A
        # QuerySet shares a non-empty hints dict with the one it was cloned
        # from (an ad-hoc scope's, a manager's): never write into that one.
        if queryset._hints:  # type: ignore[attr-defined]
            queryset._hints = dict(queryset._hints)  # type: ignore[attr-defined]
        queryset._add_hints(instance=instances[0])  # type: ignore[attr-defined]
    if mode is not None:
        queryset = queryset.fetch_mode(mode)  # type: ignore[attr-defined]
    target = field.target_field.attname
    values = [getattr(instance, field.attname) for instance in instances]
    if len(instances) == 1:
        lookups = values
        obj = next(iter(queryset.filter(**{target: values[0]})[:1]), None)
        found = {} if obj is None else {values[0]: obj}
    else:
        # A key assigned as a string ("5") finds the object read back as 5.
        lookups = [field.target_field.to_python(value) for value in values]
        wanted = set(lookups) - {None}
        found = {getattr(obj, target): obj for obj in queryset.filter(**{f"{target}__in": wanted})}
    entry_key = (key, using)
    one_to_one = not field.remote_field.multiple
    for instance, value, lookup in zip(instances, values, lookups, strict=True):
        obj = found.get(lookup)
        fields_cache = instance._state.fields_cache
        scoped = fields_cache.get(field.scoped_cache_name)
        if scoped is None:
            scoped = fields_cache[field.scoped_cache_name] = ScopedCache()
        scoped[entry_key] = (value, obj)
        if obj is not None:
            if unfiltered:
                fields_cache[field.cache_name] = obj
            if one_to_one:
                field.remote_field.set_cached_value(obj, instance)


def prefetch(
    instances: Iterable[models.Model],
    name: str,
    scope: scopes.Scope = None,
    using: str | None = None,
) -> None:
    """Load the ``name`` relation in ``scope`` for all ``instances`` in one query.

    Afterwards ``instance.get_<name>(scope=scope)`` answers from the cache.
    Instances whose result is already cached, or whose key is null, are skipped;
    when none is left no query is made.

    Args:
        instances: Instances of one model that has a BelongsTo field ``name``.
        name: The field's name, e.g. ``"author"``; a field of another kind
            raises TypeError.
        scope: Any scope ``get_<name>()`` accepts.
        using: Read from this database alias instead of the router's.

    Raises:
        TypeError: ``name`` is not a BelongsTo field, or an instance is of
            another model.
        InvalidScope: the scope is refused, as by ``get_<name>()``.
    """
    from .fields import BelongsToField, BelongsToOneField

    instances = list(instances)
    if not instances:
        return
    field = instances[0]._meta.get_field(name)
    if not isinstance(field, (BelongsToField, BelongsToOneField)):
        raise TypeError(
            f"prefetch(): {type(instances[0]).__name__}.{name} is a "
            f"{type(field).__name__}, not a BelongsToField or BelongsToOneField."
        )
    field = cast("BelongsToField", field)  # the one-to-one field has the same API
    for instance in instances:
        if not isinstance(instance, field.model):
            raise TypeError(
                f"prefetch(): {instance!r} is not a {field.model.__name__}; all instances "
                f"must have the {field.model.__name__}.{name} field."
            )
    key = scopes.cache_key(_target(field), scope)
    missing = _missing(field, instances, key, using)
    if missing:
        _load(field, missing, key, using, None)


async def aprefetch(
    instances: Iterable[models.Model],
    name: str,
    scope: scopes.Scope = None,
    using: str | None = None,
) -> None:
    """Async :func:`prefetch`."""
    await _prefetch_in_thread(list(instances), name, scope, using)


# ---------------------------------------------------------------- set


def _prepare(field: BelongsToField, instance: models.Model, value: Any) -> tuple[str, Any]:
    """Validate ``value``; return the attribute to assign and what to assign to it.

    Raises before anything changes: ``TypeError`` for a value of the wrong kind,
    ``ValueError`` for one of the right kind that cannot be used.
    """
    model: type[models.Model] = field.related_model  # type: ignore[assignment]
    if value is None:
        if not field.null:
            raise ValueError(
                f"{_label(field, instance)}: cannot set None, the field is not nullable "
                f"(null=False). Pass a saved {model.__name__} or its key."
            )
        return field.name, None
    if isinstance(value, models.Model):
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
        if getattr(value, field.target_attname) is None:
            raise ValueError(
                f"{_label(field, instance)}: cannot set {value!r}: its "
                f"{field.target_field.name} is None, so there is no key to point at."
            )
        return field.name, value
    return field.attname, _coerce(field, instance, value)


def _coerce(field: BelongsToField, instance: models.Model, value: Any) -> Any:
    """Convert a key value with the target field, refusing any inexact conversion."""
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
        if not isinstance(value, str) and coerced != value:
            raise ValueError(f"it converts to {coerced!r}, not exactly")
        bounds = field.int_key_range
        if bounds is None or not bounds[0] <= coerced <= bounds[1]:
            target.run_validators(coerced)
    except (ValidationError, TypeError, ValueError, ArithmeticError) as exc:
        reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        reason = reason.rstrip(".")
        raise ValueError(
            f"{_label(field, instance)}: {value!r} is not a valid {_target(field).__name__} "
            f"key: {reason}. {_expected(field)}"
        ) from exc
    return coerced


def integer_key_range(target: models.Field) -> tuple[float, float] | None:
    """``(lowest, highest)`` accepted key of an integer ``target`` whose only
    validators are fixed min/max checks (its column range), else None.

    An ``int`` inside that range needs neither conversion nor validator calls:
    ``BelongsToField.int_key_range`` caches this for ``set_<name>()``.
    """
    if not isinstance(target, models.IntegerField):
        return None
    low, high = -math.inf, math.inf
    for validator in target.validators:
        if type(validator) not in (MinValueValidator, MaxValueValidator):
            return None
        limit = cast("MinValueValidator", validator).limit_value
        if callable(limit):
            return None
        if type(validator) is MinValueValidator:
            low = max(low, limit)
        else:
            high = min(high, limit)
    return low, high


def _expected(field: BelongsToField) -> str:
    """What set_<name>() accepts, for its error messages: built only when one is raised."""
    model = _target(field)
    return (
        f"Pass a saved {model.__name__}, a value of {model.__name__}.{field.target_field.name} "
        f"({field.target_field.get_internal_type()}), or None."
    )


# What set/create may change in memory, per object: its attributes, database,
# adding flag and relation caches; _restore() puts them back if they fail.
_State = tuple[models.Model, dict[str, Any], str | None, bool, dict[str, Any]]


def _state_of(obj: models.Model) -> _State:
    state = obj._state
    return (obj, obj.__dict__.copy(), state.db, state.adding, state.fields_cache.copy())


def _snapshot(field: BelongsToField, instance: models.Model, value: Any) -> list[_State]:
    """The states of ``instance`` and of the objects setting ``value`` also writes to."""
    states = [_state_of(instance)]
    if not field.remote_field.multiple:
        # A one-to-one assignment also writes the reverse cache of the new and
        # the old related object.
        old = instance._state.fields_cache.get(field.cache_name)
        for obj in (value, None if old is value else old):
            if isinstance(obj, models.Model):
                states.append(_state_of(obj))
    return states


def _restore(states: list[_State]) -> None:
    for obj, attrs, db, adding, fields_cache in states:
        obj.__dict__.clear()
        obj.__dict__.update(attrs)
        obj._state.db = db
        obj._state.adding = adding
        obj._state.fields_cache = fields_cache


def set_related(
    field: BelongsToField,
    instance: models.Model,
    value: Any,
    /,
    save: bool = True,
    **save_kwargs: Any,
) -> None:
    """Point the foreign key at ``value`` (instance, key or None) and save it.

    Bad input raises before anything changes; a failed save puts the instance
    back as it was and re-raises.
    """
    # One function, not a chain of helpers: on an in-memory database every
    # extra call on this path shows in the time against hand-written code.
    if (
        type(value) is int
        and (bounds := field.int_key_range) is not None
        and bounds[0] <= value <= bounds[1]
    ):
        attr = field.attname  # the common case, a primary key: nothing to convert
    elif (
        isinstance(value, field.related_model)  # type: ignore[arg-type]
        and not value._state.adding
        and getattr(value, field.target_attname) is not None
    ):
        attr = field.name  # the other common case, a saved instance (_prepare()'s checks)
    else:
        attr, value = _prepare(field, instance, value)
    state = instance._state
    if field.remote_field.multiple:  # _snapshot(): only _state_of(instance), written out
        states = [
            (instance, instance.__dict__.copy(), state.db, state.adding, state.fields_cache.copy())
        ]
        old = None
    else:
        states = _snapshot(field, instance, value)
        old = state.fields_cache.get(field.cache_name)
    try:
        # ``book.author = obj`` checks the router's allow_relation and keeps
        # Django's caches right; ``book.author_id = key`` drops a stale object.
        try:
            setattr(instance, attr, value)
        except ValueError as exc:  # the only refusal left: the router's allow_relation
            raise ValueError(
                f"{_label(field, instance)}: cannot set {value!r}: the database router does "
                f"not allow this relation ({exc})"
            ) from exc
        if (
            old is not None
            and old is not value
            and field.remote_field.get_cached_value(old, default=None) is instance
        ):
            # One-to-one: the old target no longer points back here (Django only
            # does this when the new value is None).
            field.remote_field.set_cached_value(old, None)
        if save:
            if not (
                state.adding or "update_fields" in save_kwargs or save_kwargs.get("force_insert")
            ):
                save_kwargs["update_fields"] = field.update_fields_for(type(instance))
            instance.save(**save_kwargs)
    except BaseException:
        _restore(states)
        raise


async def aset_related(
    field: BelongsToField,
    instance: models.Model,
    value: Any,
    /,
    save: bool = True,
    **save_kwargs: Any,
) -> None:
    """Async :func:`set_related`; without ``save`` nothing touches the database."""
    if not save:
        set_related(field, instance, value, save=False)
        return
    await _set_related_in_thread(field, instance, value, save, **save_kwargs)


# ---------------------------------------------------------------- create


def create_related(
    field: BelongsToField,
    instance: models.Model,
    values: Mapping[str, Any] | None = None,
    /,
    save: bool = True,
    **fields: Any,
) -> models.Model:
    """Create the related object from ``values`` and ``fields``, then set it.

    Both writes happen in one transaction (on each database involved): if
    saving the owner fails, the new object is rolled back and the owner is put
    back as it was.
    """
    if values is None:
        data = fields
    elif isinstance(values, Mapping):
        data = {**values, **fields}
    else:
        raise TypeError(
            f"{_label(field, instance)}: create_{field.name}() values must be a mapping "
            f"of {_target(field).__name__} field names to values, not {values!r}."
        )
    model: type[models.Model] = field.related_model  # type: ignore[assignment]
    manager = model._default_manager
    if router.routers:
        target_db = router.db_for_write(model, instance=instance)
        owner_db = router.db_for_write(type(instance), instance=instance) if save else target_db
        if router.db_for_write(model) != target_db:  # where the manager alone would write
            manager = manager.db_manager(target_db)
    else:
        # What every db_for_write() above returns without routers: the owner's
        # database, else the default (where the manager alone would write).
        target_db = owner_db = instance._state.db or DEFAULT_DB_ALIAS
        if target_db != DEFAULT_DB_ALIAS:
            manager = manager.db_manager(target_db)
    states = _snapshot(field, instance, None)
    try:
        if router.routers:
            _check_relation(field, instance, model(**data), target_db)
        with transaction.atomic(using=target_db):
            if owner_db == target_db:
                obj = manager.create(**data)
                set_related(field, instance, obj, save)
            else:
                with transaction.atomic(using=owner_db):
                    obj = manager.create(**data)
                    set_related(field, instance, obj, save)
    except BaseException:
        _restore(states)
        raise
    return obj


def _check_relation(
    field: BelongsToField, instance: models.Model, probe: models.Model, target_db: str
) -> None:
    """Refuse, before the INSERT, a target on ``target_db`` the router won't relate.

    Sets the owner's database as ``book.author = obj`` would (the caller's
    snapshot puts it back on failure). Without routers every relation is allowed.
    """
    probe._state.db = target_db
    if instance._state.db is None:
        instance._state.db = router.db_for_write(type(instance), instance=probe)
    if not router.allow_relation(probe, instance):
        raise ValueError(
            f"{_label(field, instance)}: cannot create a {probe._meta.object_name} on "
            f"{target_db!r} for {instance!r} on {instance._state.db!r}: the current "
            f"database router prevents this relation."
        )


async def acreate_related(
    field: BelongsToField,
    instance: models.Model,
    values: Mapping[str, Any] | None = None,
    /,
    save: bool = True,
    **fields: Any,
) -> models.Model:
    """Async :func:`create_related`: one ``sync_to_async`` call keeps it atomic."""
    return await _create_related_in_thread(field, instance, values, save, **fields)


# The sync_to_async() wrappers the async twins call, each built once: building
# one costs microseconds that every call would otherwise pay.
_get_related_in_thread = sync_to_async(get_related)
_fetch_in_thread = sync_to_async(_fetch)
_prefetch_in_thread = sync_to_async(prefetch)
_set_related_in_thread = sync_to_async(set_related)
_create_related_in_thread = sync_to_async(create_related)
