"""``counter_cache=`` and ``touch=``: triggers the database runs on the owner's table.

Each relation with these options gets triggers on the owner's table that fire
on INSERT, UPDATE and DELETE and, in the same statement as the owner's write,
move the target rows' counters by the rows' old and new keys and set their
touched columns to the database's clock. Every way a row can be written is
counted once: ``save()`` of any instance, ``set_``/``create_``, bulk writes,
``QuerySet.update()``/``delete()``, every ``on_delete``, raw saves, raw SQL; a
rolled-back transaction counts nothing.

- PostgreSQL: statement-level triggers with transition tables (one UPDATE of
  the targets per statement, their rows locked in key order first).
- SQLite: row-level triggers.

The counter column belongs to the database: a write to it from anywhere but
these triggers (a stale instance's ``save()``, ``bulk_update()``, an admin
form) is replaced by the count of owner rows, by a guard trigger on the
target's table. :func:`rebuild_counters` recomputes a column after raw SQL
that bypassed the triggers; :func:`counter_drift` reports rows out of step.

The triggers are installed by ``migrate`` (a ``post_migrate`` receiver, for
every table the migrated apps' models have) and by :func:`install_triggers`
for tables made by hand; :func:`check_triggers`, a ``database`` system check,
reports a missing or outdated one. Their names carry a hash of their SQL, so
that a changed option is a new name and the old trigger is dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.apps import apps
from django.core import checks
from django.db import connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.db.models.signals import class_prepared, post_save

from . import _compat, tracking
from .relation import KeyRelation as Relation
from .relation import is_key_relation
from .triggers import (
    PREFIX,
    SUPPORTED_VENDORS,
    column_name,
    column_of,
    counted_relations,
    counter_table,
    relations,
    sharing,
    touched_fields,
    triggers_for,
)

__all__ = [
    "SUPPORTED_VENDORS",
    "check_triggers",
    "counted_relations",
    "counter_drift",
    "install_triggers",
    "rebuild_counters",
    "touched_fields",
]

# -------------------------------------------------------------- installation


def installed(connection: BaseDatabaseWrapper, table: str) -> set[str]:
    """The names of this app's triggers on ``table``."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE %s "
                "AND tgrelid = to_regclass(%s)",
                [PREFIX.replace("_", r"\_") + "%", connection.ops.quote_name(table)],
            )
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s "
                "AND name LIKE %s ESCAPE '\\'",
                [table, PREFIX.replace("_", r"\_") + "%"],
            )
        return {name for (name,) in cursor.fetchall()}


def _managed_models(using: str, models_: Iterable[type[models.Model]]) -> list[type[models.Model]]:
    return [
        m
        for m in models_
        if not m._meta.proxy and not m._meta.swapped and router.allow_migrate_model(using, m)
    ]


def install_triggers(
    *models_: type[models.Model], using: str = "default", verbosity: int = 0
) -> list[str]:
    """Create the triggers the tables of ``models_`` (default: every installed
    model whose table exists) must have on database ``using``, and drop this
    app's triggers on them that no longer fit the fields' options. Idempotent:
    a table whose triggers are right is left as it is.

    Call it after ``schema_editor.create_model()`` for a table ``migrate`` did
    not make; ``migrate`` itself calls it. Returns the names created.
    """
    connection = connections[using]
    if connection.vendor not in SUPPORTED_VENDORS:
        return []
    existing = set(connection.introspection.table_names())
    chosen = models_ or tuple(apps.get_models())
    created = []
    with transaction.atomic(using=using):
        for model in _managed_models(using, chosen):
            table = model._meta.db_table
            if table not in existing:
                continue
            wanted = {t.name: t for t in triggers_for(model, connection)}
            have = installed(connection, table)
            with connection.cursor() as cursor:
                for name in sorted(have - set(wanted)):
                    _drop(cursor, connection, name, table)
                for name, trigger in wanted.items():
                    if name not in have:
                        for statement in trigger.sql:
                            cursor.execute(statement)
                        created.append(name)
            if verbosity >= 2:
                print(f"  belongsto_ext: triggers of {table}: {', '.join(sorted(wanted))}")
    return created


def _drop(cursor: Any, connection: BaseDatabaseWrapper, name: str, table: str) -> None:
    q = connection.ops.quote_name
    if connection.vendor == "postgresql":
        cursor.execute(f"DROP TRIGGER IF EXISTS {q(name)} ON {q(table)}")
        cursor.execute(f"DROP FUNCTION IF EXISTS {q(name)}()")
    else:
        cursor.execute(f"DROP TRIGGER IF EXISTS {q(name)}")


def install_after_migrate(
    sender: Any, using: str = "default", verbosity: int = 1, **kwargs: Any
) -> None:
    """``post_migrate``: the triggers of the migrated app's tables."""
    models_ = tuple(sender.get_models())
    if models_:
        install_triggers(*models_, using=using, verbosity=verbosity)


def check_triggers(
    app_configs: Sequence[Any] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[checks.CheckMessage]:
    """W004 (a ``database`` check): a table lacks a trigger its relations need,
    or holds one that no longer fits their options."""
    messages: list[checks.CheckMessage] = []
    chosen = (
        [m for config in app_configs for m in config.get_models()]
        if app_configs is not None
        else apps.get_models()
    )
    for using in databases or ():
        connection = connections[using]
        if connection.vendor not in SUPPORTED_VENDORS:
            continue
        existing = set(connection.introspection.table_names())
        for model in _managed_models(using, chosen):
            table = model._meta.db_table
            if table not in existing:
                continue  # migrate creates it, then its triggers
            wanted = {t.name for t in triggers_for(model, connection)}
            have = installed(connection, table)
            if wanted == have:
                continue
            what = []
            if wanted - have:
                what.append(f"{len(wanted - have)} missing")
            if have - wanted:
                what.append(f"{len(have - wanted)} outdated")
            named = [
                f"{owner._meta.label}.{field.name}"
                for owner, field in relations(model._meta.apps)
                if owner._meta.db_table == table or _counter_table_or_none(field) == table
            ]
            messages.append(
                checks.Warning(
                    f"Table {table!r} on database {using!r} has {' and '.join(what)} "
                    f"belongsto_ext trigger(s) for {', '.join(named) or 'no relation'}: "
                    f"counter_cache=/touch= are not kept there.",
                    hint=f"Run 'python manage.py migrate --database {using}' (it installs "
                    f"them), or call belongsto_ext.install_triggers() for a table made by hand.",
                    obj=model,
                    id="belongsto_ext.W004",
                )
            )
    return messages


def _counter_table_or_none(field: Relation) -> str | None:
    return counter_table(field) if field.counter_cache else None


# ------------------------------------------------------------- in memory

# The fields with touch= or counter_cache=, per model that declares them: after a
# save through the instance, the target it caches gets the values written.
_FIELDS: dict[type[models.Model], list[Relation]] = {}


def _written(field: Relation, owner: models.Model, obj: models.Model) -> bool:
    """Whether the owner's write reached ``obj``: a saved row, the one the key holds
    (a save that left the key out wrote nothing to its cached target)."""
    return not _compat.adding(obj) and getattr(obj, field.target_field.attname) == (
        owner.__dict__.get(field.attname)
    )


def connect(field: Relation, model: type[models.Model]) -> None:
    """Have saves of ``model`` (and of its proxies and children, which send
    signals with themselves as sender) refresh the targets they cache."""
    if model._meta.abstract:
        return
    if not _FIELDS:
        class_prepared.connect(_prepared, weak=False, dispatch_uid="belongsto_ext.counters")
    _FIELDS.setdefault(model, []).append(field)
    _connect(model)


def _prepared(sender: type[models.Model], **kwargs: Any) -> None:
    if sender not in _FIELDS and any(issubclass(sender, model) for model in _FIELDS):
        _connect(sender)


def _connect(model: type[models.Model]) -> None:
    uid = f"belongsto_ext.counters:{model._meta.label}:{id(model)}"
    post_save.connect(_on_save, sender=model, weak=False, dispatch_uid=uid)


def _on_save(
    sender: type[models.Model], instance: models.Model, raw: bool, using: str, **kw: Any
) -> None:
    for model, fields in _FIELDS.items():
        if issubclass(sender, model):
            for field in fields:
                if field.is_cached(instance):
                    refresh_cached(field, instance, using)


def refresh_cached(field: Relation, instance: models.Model, using: str) -> None:
    """Give the target instance ``instance`` caches (and the targets it caches
    through relations with ``touch=``) the counter and timestamps the
    database's triggers just wrote: one SELECT per model, none if nothing is
    cached."""
    pending: dict[type[models.Model], tuple[list[str], dict[Any, list[models.Model]]]] = {}
    for f, obj in tracking.cached_chain([(field, instance)], _written):
        names = ([f.counter_cache] if f.counter_cache else []) + touched_fields(f)
        fields, objs = pending.setdefault(type(obj), ([], {}))
        fields.extend(n for n in names if n not in fields)
        objs.setdefault(obj.pk, []).append(obj)
    connection = connections[using]
    for model, (fields, objs) in pending.items():
        for pk, values in _read_back(connection, model, tuple(fields), list(objs)):
            for obj in objs.get(pk, []):
                for name, value in zip(fields, values, strict=True):
                    setattr(obj, name, value)


def _read_back(
    connection: BaseDatabaseWrapper,
    model: type[models.Model],
    names: tuple[str, ...],
    pks: list[Any],
) -> Iterator[tuple[Any, list[Any]]]:
    """``(pk, [value of each of names])`` for the rows ``pks`` of ``model``: one
    SELECT, its SQL built once per model and columns (building a QuerySet cost
    more than the read itself), values converted as the ORM converts them."""
    sql, columns = _read_back_sql(connection.alias, model, names)
    if sql is None:  # columns in a multi-table parent's table: the ORM joins them
        rows = model._base_manager.using(connection.alias).filter(pk__in=pks)
        for row in rows.values_list("pk", *names):
            yield row[0], list(row[1:])
        return
    with connection.cursor() as cursor:
        cursor.execute(f"{sql}{', '.join(['%s'] * len(pks))})", pks)
        fetched = cursor.fetchall()
    for row in fetched:
        values = []
        for value, (column, converters) in zip(row, columns, strict=True):
            for convert in converters:
                value = convert(value, column, connection)
            values.append(value)
        yield values[0], values[1:]


@functools.cache
def _read_back_sql(
    alias: str, model: type[models.Model], names: tuple[str, ...]
) -> tuple[str | None, list[tuple[Any, list[Any]]]]:
    """The read-back SELECT up to its keys' placeholders and the closing
    parenthesis, and per column the expression and converters the ORM would apply."""
    connection = connections[alias]
    q = connection.ops.quote_name
    meta = model._meta
    fields = [meta.pk, *(column_of(model, name) for name in names)]
    if any(f not in meta.local_concrete_fields for f in fields):
        return None, []
    table = meta.db_table
    columns = []
    for field in fields:
        column = field.get_col(table)
        converters = [
            *connection.ops.get_db_converters(column),
            *column.get_db_converters(connection),
        ]
        columns.append((column, converters))
    selected = ", ".join(q(column_name(f)) for f in fields)
    sql = f"SELECT {selected} FROM {q(table)} WHERE {q(column_name(meta.pk))} IN ("
    return sql, columns


# ------------------------------------------------------------- rebuild, drift


def _count_expression(target: type[models.Model], column: str) -> Any:
    """The number of owner rows pointing at each target row, over every relation
    counting into ``column``."""
    total: Any = None
    for field in sharing(target, column):
        owners = (
            field.model._base_manager.filter(
                **{field.attname: OuterRef(field.target_field.attname)}
            )
            .order_by()
            .values(field.attname)
            .annotate(count=models.Count("pk"))
            .values("count")
        )
        term = Coalesce(Subquery(owners), Value(0))
        total = term if total is None else total + term
    return total


def _counted_field(
    model: type[models.Model], name: str, caller: str
) -> tuple[type[models.Model], str]:
    """The target model and counter column of ``model``'s relation ``name``, or
    TypeError naming ``caller`` if it has no ``counter_cache``."""
    field = model._meta.get_field(name)
    if not is_key_relation(field) or not field.counter_cache:
        raise TypeError(
            f"{caller}(): {model.__name__}.{name} is not a BelongsTo field with counter_cache."
        )
    return field.related_model, field.counter_cache


def rebuild_counters(model: type[models.Model], name: str, using: str | None = None) -> int:
    """Set every counter of the ``name`` relation of ``model`` to the number of
    owner rows (zero for targets with none; the sum over every relation that
    counts into the same column): one UPDATE.

    Returns the number of target rows updated. For adopting a table that
    already has rows, or after raw SQL that bypassed the triggers.

    Raises:
        TypeError: ``name`` is not a BelongsTo field with ``counter_cache``.
    """
    target, column = _counted_field(model, name, "rebuild_counters")
    db = using or router.db_for_write(target)
    return target._base_manager.using(db).update(**{column: _count_expression(target, column)})


def counter_drift(
    model: type[models.Model], name: str, using: str | None = None, batch_size: int = 2000
) -> Iterator[tuple[Any, int, int]]:
    """Yield ``(target pk, counter, count of owner rows)`` for each target row of
    the ``name`` relation of ``model`` whose counter differs from the count:
    read in primary-key batches of ``batch_size`` rows, so that it runs on
    large tables.

    Raises:
        TypeError: ``name`` is not a BelongsTo field with ``counter_cache``.
    """
    target, column = _counted_field(model, name, "counter_drift")
    db = using or router.db_for_read(target)
    rows = (
        target._base_manager.using(db)
        .order_by("pk")
        .annotate(_belongsto_count=_count_expression(target, column))
        .values_list("pk", column, "_belongsto_count")
    )
    last = None
    while True:
        batch = list((rows if last is None else rows.filter(pk__gt=last))[:batch_size])
        if not batch:
            return
        for pk, counter, count in batch:
            if counter != count:
                yield pk, counter, count
        if len(batch) < batch_size:
            return
        last = batch[-1][0]
