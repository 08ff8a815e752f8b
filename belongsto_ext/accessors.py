"""get / set / create / is and their async twins, each written once for both
field kinds.

Every function takes the field first; ``methods.py`` binds them per field as
``get_<name>``, ``set_<name>``, ... . What differs between a ``BelongsToField``
and a ``BelongsToAnyField`` (what the arguments mean, which columns a write
assigns) is asked of the field through the hooks ``relation.Relation`` and
:class:`Front` name; scopes are resolved by ``scopes``, answers kept by
``answers``, rows read by ``batch``, and a failed write is undone by ``tracking``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from django.db import connections, models, router, transaction

from . import _compat, answers, batch, scopes, tracking
from .answers import MISS
from .relation import Relation


class Front(Relation, Protocol):
    """The hooks set and create ask of a field (both kinds implement them)."""

    def prepare(self, instance: models.Model, args: tuple[Any, ...], validate: bool) -> Any:
        """Check ``set_<name>()``'s arguments, before anything changes: what to assign."""

    def point(self, instance: models.Model, prepared: Any) -> None:
        """Assign it (the router's ``allow_relation()`` asked)."""

    def lock_target(self, instance: models.Model, prepared: Any) -> None:
        """Inside the write's transaction, before the save: refuse a target row
        that does not exist where the database cannot (a polymorphic key)."""

    def creating(
        self, instance: models.Model, args: tuple[Any, ...]
    ) -> tuple[type[models.Model], Any]:
        """The model ``create_<name>()`` builds (checked), and its values argument."""

    def written_columns(self) -> tuple[str, ...]:
        """The owner's fields a write of the relation saves."""

    set_savepoint: bool  # set_<name>() inside the caller's transaction takes a savepoint


def label(field: Relation, instance: models.Model) -> str:
    return f"{type(instance).__name__}.{field.name}"


# ---------------------------------------------------------------- get


def get_related(
    field: Relation,
    instance: models.Model,
    /,
    *,
    scope: Any = None,
    using: str | None = None,
) -> Any:
    """Return the related object in ``scope``, or ``None``; at most one query."""
    # The key as it stands in the instance where it needs no loading or conversion
    # (a BelongsToField's usually does), else as the field reads it.
    ident = instance.__dict__.get(field.key_attname, MISS)
    if ident is MISS or type(ident) is str:
        ident = field.owner_key(instance, bool(field.strict))
    if ident is None:
        if scope is not None:
            field.scope_spec(scope)  # a bad scope is refused on a null key too
        return None
    spec = field.scope_spec(scope)
    obj, entry = cached(field, instance, ident, spec, using)
    if obj is MISS:
        obj = batch.fetch(field, instance, spec, using, entry, ident)
    return obj


def cached(
    field: Relation, instance: models.Model, ident: Any, spec: Any, using: str | None
) -> tuple[Any, answers.Entry]:
    """The answer the caches hold in scope ``spec`` for an owner whose key is
    ``ident`` (not None), Django's object where it answers; or :data:`MISS`, and
    the entry a read stores the answer under. No query."""
    if field.keyed_by_context:
        # A BelongsToField: one target model, and its answers stored under the
        # scope's own key when it is static (scopes.in_context()): a hit there
        # needs no decision.
        model, wanted, key = field.related_model, ident, spec  # type: ignore[attr-defined]
        entry = (field.scoped_cache_name, key, using)
        obj = answers.lookup(instance, entry, ident)
    else:
        entry = answers.name(field, spec, None, using)
        obj = answers.lookup(instance, entry, ident)
        if obj is not MISS:  # answered before the target model is known
            return obj, entry
        model, wanted = field.target_of(instance, ident)
        if model is None:
            return None, entry
        key = field.model_key(spec, model)
    if obj is MISS:
        context = scopes.in_context(model, key)
        if context is not key:
            entry = answers.name(field, spec, context, using)
            obj = answers.lookup(instance, entry, ident)
    if obj is MISS and using is None:
        obj = answers.django_answer(field, instance, model, key, wanted)
    return obj, entry


async def aget_related(
    field: Relation, instance: models.Model, /, *, scope: Any = None, using: str | None = None
) -> Any:
    """Async :func:`get_related`: answers from the caches without a thread hop."""
    if field.loaded(instance):  # else loading a deferred key queries
        ident = field.owner_key(instance)
        if ident is None:
            if scope is not None:
                field.scope_spec(scope)
            return None
        obj, _entry = cached(field, instance, ident, field.scope_spec(scope), using)
        if obj is not MISS:
            return obj
    return await _get_related_in_thread(field, instance, scope=scope, using=using)


def is_related(field: Relation, instance: models.Model, other: Any) -> bool:
    """Whether the relation points at ``other`` (an instance, a key value or None),
    without a query (once a polymorphic field's content type is cached)."""
    ident = field.owner_key(instance)
    if other is None:
        return ident is None
    other_model, other_key = field.compared(instance, other)
    if ident is None or other_key is None:
        return False
    model, wanted = field.target_of(instance, ident)
    return model is other_model and wanted == other_key


# ---------------------------------------------------------------- set


def set_related(
    field: Front,
    instance: models.Model,
    /,
    *args: Any,
    save: bool = True,
    validate: bool = False,
    **save_kwargs: Any,
) -> None:
    """Point the relation at what ``args`` name and save only its columns.

    Bad input raises before anything changes. The save is one transaction (in
    the caller's, a savepoint for a ``BelongsToAnyField``, whose write also checks
    a key's row; none for a ``BelongsToField``, as Django's own saves): if it
    fails, nothing is written and the instance is put back as it was. After a save,
    reads of the new key go to the database writes go to (read your own writes).
    """
    prepared = field.prepare(instance, args, validate)
    states = tracking.snapshot(field, instance, args)
    using = None
    written = False
    try:
        field.point(instance, prepared)
        if save:
            using = save_kwargs.get("using") or router.db_for_write(
                type(instance), instance=instance
            )
            # A post_save receiver that raises (a history table, a search index)
            # rolls the UPDATE back, and the instance is put back below.
            with transaction.atomic(using=using, savepoint=field.set_savepoint):
                _save(field, instance, prepared, save_kwargs)
                written = True
            answers.pin(field, instance)
    except BaseException:
        if not (written and using is not None and _kept(using)):
            tracking.restore(states)
        raise


def _save(field: Front, instance: models.Model, prepared: Any, save_kwargs: dict[str, Any]) -> None:
    """Save the relation's columns (and ``auto_now`` ones; a new owner whole), in
    the caller's transaction, after the field's check of the target row."""
    if not (
        _compat.adding(instance)
        or (save_kwargs and ("update_fields" in save_kwargs or save_kwargs.get("force_insert")))
    ):
        save_kwargs["update_fields"] = update_fields(type(instance), *field.written_columns())
    field.lock_target(instance, prepared)
    instance.save(**save_kwargs)


@functools.cache
def update_fields(model: type[models.Model], *names: str) -> tuple[str, ...]:
    """What a write of a relation saves on ``model``: its columns ``names`` plus
    the ``auto_now`` ones."""
    auto_now = [
        f.name
        for f in model._meta.concrete_fields
        if getattr(f, "auto_now", False) and f.name not in names
    ]
    return (*names, *auto_now)


def _atomic(*aliases: str) -> ExitStack:
    """One transaction (``transaction.atomic()``) on each database of ``aliases``."""
    stack = ExitStack()
    for alias in dict.fromkeys(aliases):
        stack.enter_context(transaction.atomic(using=alias))
    return stack


def _kept(alias: str) -> bool:
    """After an error raised past the end of a write's block on ``alias``:
    whether the block's transaction committed and the error came after (a commit
    callback that raised). Then the database keeps the write, and the instance
    stays on the new state. Inside a caller's transaction nothing is kept yet."""
    connection = connections[alias]
    return not connection.in_atomic_block and _compat.committed(connection)


async def aset_related(
    field: Front,
    instance: models.Model,
    /,
    *args: Any,
    save: bool = True,
    validate: bool = False,
    **save_kwargs: Any,
) -> None:
    """Async :func:`set_related`; without ``save`` or ``validate`` nothing touches
    the database, and no thread is used."""
    if not (save or validate):
        set_related(field, instance, *args, save=False)
        return
    await _set_related_in_thread(
        field, instance, *args, save=save, validate=validate, **save_kwargs
    )


# ---------------------------------------------------------------- create


def create_related(
    field: Front,
    instance: models.Model,
    /,
    *args: Any,
    save: bool = True,
    **fields: Any,
) -> models.Model:
    """Create the related object from the values given, point at it and save.

    The object is built and saved as ``Target.objects.create()`` does (or by the
    target manager's ``create_user()`` / ``create_method=``), on the database
    the router picks for writing, with the router's ``allow_relation()`` asked
    before the INSERT. Both writes happen in one transaction on each database
    involved: if saving the owner fails, the new object is rolled back and the
    owner is put back as it was.
    """
    model, values = field.creating(instance, args)
    data = _values(field, instance, model, values, fields)
    target_db = router.db_for_write(model, instance=instance)
    owner_db = router.db_for_write(type(instance), instance=instance) if save else target_db
    method = create_method(field, model)
    # The new row's own writes (touch=) may update objects it was given, in memory.
    states = tracking.snapshot(field, instance)
    states += [tracking.state_of(v) for v in data.values() if isinstance(v, models.Model)]
    written = False
    try:
        if method is None:
            obj = model(**data)  # an unknown field name raises TypeError here
            _check_relation(field, instance, obj, target_db)
        with _atomic(target_db, owner_db):
            if save and _chained(field, model, owner_db) and not _compat.adding(instance):
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
            prepared = field.prepare(instance, (obj,), False)
            field.point(instance, prepared)
            if save:
                _save(field, instance, prepared, {})
            written = True
        answers.pin(field, instance)  # the new row is read where it was written
    except BaseException:
        if not (written and _kept(owner_db)):
            tracking.restore(states)
        raise
    return obj


def _chained(field: Relation, model: type[models.Model], using: str) -> bool:
    """Whether writing the owner's key locks a chain of rows (the target's own
    relations touch or count), on a database that locks rows."""
    if not (field.touch or field.counter_cache):
        return False
    if not connections[using].features.has_select_for_update:
        return False
    return any(
        getattr(f, "touch", False) or getattr(f, "counter_cache", None) for f in model._meta.fields
    )


def create_method(field: Relation, model: type[models.Model]) -> str | None:
    """The target's default manager method ``create_<name>()`` calls, None for
    ``Model(...).save()`` as ``create()`` does: ``create_method=``, else
    ``create_user`` when the manager has one (a user model's password is
    hashed), and ``create_method="create"`` asks for ``create()`` itself."""
    name = getattr(field, "create_method", None)
    if name is None and callable(getattr(model._default_manager, "create_user", None)):
        name = "create_user"
    return None if name == "create" else name


def _values(
    field: Relation,
    instance: models.Model,
    model: type[models.Model],
    values: Any,
    fields: dict[str, Any],
) -> dict[str, Any]:
    """The field values of the object ``create_<name>()`` makes, checked first."""
    if values is None:
        data = dict(fields)
    elif isinstance(values, Mapping):
        data = {**values, **fields}
    else:
        raise TypeError(
            f"{label(field, instance)}: create_{field.name}() values must be a mapping "
            f"of {model.__name__} field names to values, not {values!r}."
        )
    meta = model._meta
    for name in data:
        try:
            related = meta.get_field(name)
        except Exception:
            continue  # the model's own __init__ refuses it, or takes it as a property
        if related.one_to_one and not related.concrete:
            # As QuerySet.create(): a reverse one-to-one is not a field of the row.
            raise ValueError(
                f"{label(field, instance)}: create_{field.name}() got {name!r}, the "
                f"reverse side of a one-to-one relation, which is not a field of "
                f"{meta.object_name}."
            )
    return data


def _check_relation(
    field: Relation, instance: models.Model, obj: models.Model, target_db: str
) -> None:
    """Refuse, before the INSERT, a new target on ``target_db`` the router won't relate.

    Sets the owner's database as ``book.author = obj`` would (the caller's
    snapshot puts it back on failure).
    """
    _compat.set_db(obj, target_db)
    if _compat.db(instance) is None:
        _compat.set_db(instance, router.db_for_write(type(instance), instance=obj))
    if not router.allow_relation(obj, instance):
        raise ValueError(
            f"{label(field, instance)}: cannot create a {obj._meta.object_name} on "
            f"{target_db!r} for {instance!r} on {_compat.db(instance)!r}: the current "
            f"database router prevents this relation."
        )


async def acreate_related(
    field: Front,
    instance: models.Model,
    /,
    *args: Any,
    save: bool = True,
    **fields: Any,
) -> models.Model:
    """Async :func:`create_related`: one ``sync_to_async`` call keeps it atomic."""
    return await _create_related_in_thread(field, instance, *args, save=save, **fields)


# The sync_to_async() wrappers the async twins call, each built once.
_get_related_in_thread = sync_to_async(get_related)
_set_related_in_thread = sync_to_async(set_related)
_create_related_in_thread = sync_to_async(create_related)
