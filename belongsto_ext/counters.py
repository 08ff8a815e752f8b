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
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.apps import apps
from django.apps.registry import Apps
from django.conf import settings
from django.core import checks
from django.db import connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.db.models.signals import class_prepared, post_save

if TYPE_CHECKING:
    from .fields import BelongsToMixin

__all__ = [
    "SUPPORTED_VENDORS",
    "check_triggers",
    "counter_drift",
    "install_triggers",
    "rebuild_counters",
]

# The database backends whose triggers this module writes.
SUPPORTED_VENDORS = ("postgresql", "sqlite")
PREFIX = "belongsto_"


# ------------------------------------------------------------------ relations


@dataclass(frozen=True)
class _Update:
    """One table of a target model that a relation's write updates."""

    table: str
    key: str  # the column matched against the owner's key
    counters: tuple[str, ...]
    stamps: tuple[tuple[str, bool], ...]  # (column, is a date-time column)


@dataclass(frozen=True)
class _Relation:
    """A relation with ``counter_cache=`` or ``touch=``, as its triggers see it."""

    owner_table: str
    owner_key: str  # the owner's key column
    owner_pk: str
    updates: tuple[_Update, ...]
    touch: bool
    self_referential: bool  # touch climbs the owner table's own ancestors


def _column(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """``model``'s concrete field ``name`` (the checks made sure it is one)."""
    return cast("models.Field[Any, Any]", model._meta.get_field(name))


def _name(field: Any) -> str:
    """``field``'s column name (newer django-stubs type ``Field.column`` as optional:
    it is set once the field is on a model, as every field here is)."""
    name: str | None = field.column
    assert name is not None
    return name


def _home(column: models.Field[Any, Any]) -> type[models.Model]:
    """The concrete model whose table holds ``column`` (a multi-table parent's
    column lives in the parent's table)."""
    return cast("type[models.Model]", column.model._meta.concrete_model)


def _relation(field: BelongsToMixin) -> _Relation:
    target: type[models.Model] = field.related_model
    own_table = target._meta.db_table
    columns: dict[str, tuple[str, list[str], list[tuple[str, bool]]]] = {}

    def table_of(column: models.Field[Any, Any]) -> tuple[str, list[str], list[tuple[str, bool]]]:
        home = _home(column)
        table = home._meta.db_table
        # A multi-table parent's column: its row has the target's primary key.
        key = _name(field.target_field if table == own_table else home._meta.pk)
        return columns.setdefault(table, (key, [], []))

    if field.counter_cache:
        column = _column(target, field.counter_cache)
        table_of(column)[1].append(_name(column))
    for name in touched_fields(field):
        column = _column(target, name)
        table_of(column)[2].append((_name(column), isinstance(column, models.DateTimeField)))
    owner = field.model
    return _Relation(
        owner_table=owner._meta.db_table,
        owner_key=field.column,
        owner_pk=_name(owner._meta.pk),
        updates=tuple(
            _Update(table, key, tuple(counters), tuple(stamps))
            for table, (key, counters, stamps) in columns.items()
        ),
        touch=bool(field.touch),
        self_referential=target._meta.concrete_model is owner._meta.concrete_model,
    )


def touched_fields(field: BelongsToMixin) -> list[str]:
    """The target's columns ``touch=`` sets: the named one, or its ``auto_now`` ones."""
    if not field.touch:
        return []
    if isinstance(field.touch, str):
        return [field.touch]
    target: type[models.Model] = field.related_model
    return [
        f.name
        for f in target._meta.concrete_fields
        if isinstance(f, models.DateField) and getattr(f, "auto_now", False)
    ]


def counted_relations(
    registry: Apps = apps,
) -> Iterator[tuple[type[models.Model], BelongsToMixin]]:
    """Every (model, field) with ``counter_cache`` among the installed models, in
    the app registry's order. A field a multi-table parent declares comes once,
    with the parent."""
    for model, field in _relations(registry):
        if field.counter_cache:
            yield model, field


def _relations(registry: Apps = apps) -> Iterator[tuple[type[models.Model], BelongsToMixin]]:
    """Every (model, field) with ``counter_cache`` or ``touch`` in ``registry``
    (the project's; a model built in another, as ``isolate_apps`` does, brings its own)."""
    from .fields import BelongsToMixin

    for model in registry.get_models():
        for field in model._meta.local_fields:
            if isinstance(field, BelongsToMixin) and (field.counter_cache or field.touch):
                yield model, field


def _sharing(target: type[models.Model], column: str) -> list[BelongsToMixin]:
    """The relations that count into ``target``'s ``column`` (its field name)."""
    concrete = target._meta.concrete_model
    return [
        field
        for _model, field in counted_relations(target._meta.apps)
        if field.related_model._meta.concrete_model is concrete and field.counter_cache == column
    ]


# ------------------------------------------------------------------ the SQL


@dataclass(frozen=True)
class Trigger:
    """One trigger (on PostgreSQL, with its function of the same name)."""

    name: str
    table: str
    sql: tuple[str, ...]  # the statements that create it


def _now(connection: BaseDatabaseWrapper, datetime: bool) -> str:
    """What ``auto_now`` would store now, computed by the database."""
    # A date is the day in TIME_ZONE, as date.today() (Django sets the process's
    # zone to TIME_ZONE, which SQLite's 'localtime' uses); a date-time is in
    # UTC with USE_TZ, else local, as Django stores it.
    if connection.vendor == "postgresql":
        if datetime:
            return "clock_timestamp()"  # the session's zone is Django's
        zone = (settings.TIME_ZONE or "UTC").replace("'", "''")
        return f"(clock_timestamp() AT TIME ZONE '{zone}')::date"
    if datetime:
        local = "" if settings.USE_TZ else ", 'localtime'"
        return f"strftime('%Y-%m-%d %H:%M:%f', 'now'{local})"
    return "date('now', 'localtime')"


def _named(table: str, what: str, sql: Sequence[str]) -> str:
    digest = hashlib.sha1("\n".join((table, what, *sql)).encode()).hexdigest()[:12]
    return f"{PREFIX}{what}_{digest}"


def _sets(connection: BaseDatabaseWrapper, update: _Update, delta: str | None) -> list[str]:
    q = connection.ops.quote_name
    sets = []
    if delta is not None:
        sets += [f"{q(c)} = {q(c)} + {delta}" for c in update.counters]
    sets += [f"{q(c)} = {_now(connection, dt)}" for c, dt in update.stamps]
    return sets


def triggers_for(model: type[models.Model], connection: BaseDatabaseWrapper) -> list[Trigger]:
    """The triggers ``model``'s table must have on ``connection``: those of the
    relations it owns and the guards of the counter columns it holds."""
    if connection.vendor not in SUPPORTED_VENDORS or model._meta.proxy:
        return []
    table = model._meta.db_table
    found: list[Trigger] = []
    for owner, field in _relations(model._meta.apps):
        if owner._meta.db_table == table:
            relation = _relation(field)
            if connection.vendor == "postgresql":
                found += _postgresql_owner(connection, relation)
            else:
                found += _sqlite_owner(connection, relation)
    found += _guards(model, connection)
    return found


# SQLite: row-level triggers. A trigger does not fire itself again (recursive
# triggers are off by default), so a self-referential touch climbs the
# ancestors with a recursive query. SQLite has no trigger depth: while a
# counting trigger updates counters, a row in COUNTING tells the guards the
# write is the triggers' own (else each counted write would count the target's
# owners again).

COUNTING = "belongsto_ext_counting"


def _sqlite_owner(connection: BaseDatabaseWrapper, r: _Relation) -> list[Trigger]:
    q = connection.ops.quote_name
    k = q(r.owner_key)
    found = []
    for event, keys, delta, when in (
        ("insert", ["NEW"], "1", f"NEW.{k} IS NOT NULL"),
        ("delete", ["OLD"], "-1", f"OLD.{k} IS NOT NULL"),
        ("update", ["OLD", "NEW"], None, None),
    ):
        body = []
        for u in r.updates:
            key = q(u.key)
            d = (
                f"(CASE WHEN OLD.{k} IS NEW.{k} THEN 0 WHEN {key} = NEW.{k} THEN 1 ELSE -1 END)"
                if event == "update"
                else delta
            )
            stamps = u.stamps if not r.self_referential else ()
            sets = _sets(connection, _Update(u.table, u.key, u.counters, stamps), d)
            if sets:
                match = (
                    f"{key} = {keys[0]}.{k}"
                    if len(keys) == 1
                    else f"{key} IN ({', '.join(f'{row}.{k}' for row in keys)})"
                )
                body.append(f"UPDATE {q(u.table)} SET {', '.join(sets)} WHERE {match};")
            if r.self_referential and u.stamps:
                start = " UNION ".join(f"SELECT {row}.{k}" for row in keys)
                sets = _sets(connection, _Update(u.table, u.key, (), u.stamps), None)
                body.append(
                    f"UPDATE {q(u.table)} SET {', '.join(sets)} WHERE {key} IN ("
                    f"WITH RECURSIVE up(id) AS ({start} UNION SELECT p.{k} FROM "
                    f"{q(r.owner_table)} p JOIN up ON p.{q(r.owner_pk)} = up.id "
                    f"WHERE p.{k} IS NOT NULL) SELECT id FROM up);"
                )
        if not body:
            continue
        if any(u.counters for u in r.updates):
            flag = q(COUNTING)
            body = [
                f"INSERT INTO {flag} ({q('id')}) VALUES (NULL);",
                *body,
                f"DELETE FROM {flag} WHERE id = (SELECT max(id) FROM {flag});",
            ]
        if event == "update" and not r.touch:
            # Counters alone: only a moved key counts.
            timing, when = f"AFTER UPDATE OF {k}", f"OLD.{k} IS NOT NEW.{k}"
        else:
            timing = f"AFTER {event.upper()}"
        condition = f" WHEN {when}" if when else ""
        text = " ".join(body)
        name = _named(r.owner_table, event, [timing, condition, text])
        found.append(
            Trigger(
                name,
                r.owner_table,
                (
                    _create_counting_table(connection),
                    f"CREATE TRIGGER {q(name)} {timing} ON {q(r.owner_table)} FOR EACH ROW"
                    f"{condition} BEGIN {text} END",
                ),
            )
        )
    return found


# PostgreSQL: statement-level triggers over the transition tables. Each function
# sums the statement's moves per target key, locks those target rows in key
# order (FOR NO KEY UPDATE, which does not wait on the foreign key checks' KEY
# SHARE locks), then updates each row once. A touch's own UPDATE fires the
# target's triggers (a chain); a transaction-local setting stops a relation's
# trigger from running again inside its own UPDATE (a cycle, or a
# self-referential touch, which climbs the ancestors in one recursive query).


def _postgresql_owner(connection: BaseDatabaseWrapper, r: _Relation) -> list[Trigger]:
    q = connection.ops.quote_name
    k = q(r.owner_key)
    found = []
    for event, sources in (
        ("insert", [("new_rows", 1)]),
        ("delete", [("old_rows", -1)]),
        ("update", [("new_rows", 1), ("old_rows", -1)]),
    ):
        moves = " UNION ALL ".join(
            f"SELECT {k} AS key, {n} AS n FROM {rows} WHERE {k} IS NOT NULL" for rows, n in sources
        )
        having = "" if r.touch else " HAVING sum(n) <> 0"
        deltas = f"SELECT key, sum(n) AS n FROM ({moves}) m GROUP BY key{having}"
        body = []
        for u in r.updates:
            key = q(u.key)
            stamps = u.stamps if not r.self_referential else ()
            sets = _sets(connection, _Update(u.table, u.key, u.counters, stamps), "d.n")
            if sets:
                body.append(
                    f"PERFORM 1 FROM {q(u.table)} WHERE {key} IN (SELECT key FROM ({deltas}) d) "
                    f"ORDER BY {key} FOR NO KEY UPDATE;"
                )
                body.append(
                    f"UPDATE {q(u.table)} t SET {', '.join(sets)} FROM ({deltas}) d "
                    f"WHERE t.{key} = d.key;"
                )
            if r.self_referential and u.stamps:
                sets = _sets(connection, _Update(u.table, u.key, (), u.stamps), None)
                body.append(
                    f"UPDATE {q(u.table)} SET {', '.join(sets)} WHERE {key} IN ("
                    f"WITH RECURSIVE up(id) AS (SELECT key FROM ({deltas}) d UNION "
                    f"SELECT p.{k} FROM {q(r.owner_table)} p JOIN up ON p.{q(r.owner_pk)} = up.id "
                    f"WHERE p.{k} IS NOT NULL) SELECT id FROM up);"
                )
        if not body:
            continue
        referencing = " ".join(
            f"{'NEW' if rows == 'new_rows' else 'OLD'} TABLE AS {rows}" for rows, _ in sources
        )
        text = " ".join(body)
        name = _named(r.owner_table, event, [referencing, text])
        if r.touch:
            # One flag per relation: its insert trigger's UPDATE of ancestors
            # (self-referential) must not run its update trigger either.
            flag = f"belongsto_ext.{_named(r.owner_table, 'running', [r.owner_key])}"
            text = (
                f"IF current_setting('{flag}', true) = 'on' THEN RETURN NULL; END IF; "
                f"PERFORM set_config('{flag}', 'on', true); {text} "
                f"PERFORM set_config('{flag}', '', true);"
            )
        found.append(
            Trigger(
                name,
                r.owner_table,
                (
                    f"CREATE OR REPLACE FUNCTION {q(name)}() RETURNS trigger LANGUAGE plpgsql "
                    f"AS $$ BEGIN {text} RETURN NULL; END $$",
                    f"CREATE TRIGGER {q(name)} AFTER {event.upper()} ON {q(r.owner_table)} "
                    f"REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {q(name)}()",
                ),
            )
        )
    return found


def _guards(model: type[models.Model], connection: BaseDatabaseWrapper) -> list[Trigger]:
    """Triggers on ``model``'s table keeping each counter column it holds equal
    to the count of owner rows, whoever else writes it: a new row starts at its
    count (zero, unless its owners came first, as ``loaddata`` may load them),
    and a write that changes the column outside the counting triggers sets it
    to the count instead."""
    q = connection.ops.quote_name
    table = model._meta.db_table
    found = []
    for column in model._meta.local_concrete_fields:
        relations = [
            field for field in _sharing(model, column.name) if _counter_table(field) == table
        ]
        if not relations:
            continue
        c = q(_name(column))

        def count(row: str, relations: list[BelongsToMixin] = relations) -> str:
            return " + ".join(
                f"(SELECT count(*) FROM {q(f.model._meta.db_table)} "
                f"WHERE {q(f.column)} = {row}.{q(_counter_key(f))})"
                for f in relations
            )

        if connection.vendor == "postgresql":
            # Depth 1: a statement of its own, not the counting triggers' UPDATE.
            text = (
                f"IF TG_OP = 'INSERT' OR (pg_trigger_depth() = 1 AND NEW.{c} IS DISTINCT "
                f"FROM OLD.{c}) THEN NEW.{c} := {count('NEW')}; END IF; RETURN NEW;"
            )
            name = _named(table, "guard", [c, text])
            found.append(
                Trigger(
                    name,
                    table,
                    (
                        f"CREATE OR REPLACE FUNCTION {q(name)}() RETURNS trigger LANGUAGE "
                        f"plpgsql AS $$ BEGIN {text} END $$",
                        f"CREATE TRIGGER {q(name)} BEFORE INSERT OR UPDATE OF {c} ON {q(table)} "
                        f"FOR EACH ROW EXECUTE FUNCTION {q(name)}()",
                    ),
                )
            )
            continue
        pk = q(_name(model._meta.pk))
        for timing, ours in (
            ("AFTER INSERT", ""),
            # Not the counting triggers' own UPDATE (see COUNTING).
            (f"AFTER UPDATE OF {c}", f"NOT EXISTS (SELECT 1 FROM {q(COUNTING)}) AND "),
        ):
            text = (
                f"FOR EACH ROW WHEN {ours}NEW.{c} IS NOT {count('NEW')} BEGIN UPDATE "
                f"{q(table)} SET {c} = {count('NEW')} WHERE {pk} = NEW.{pk}; END"
            )
            name = _named(table, "guard", [timing, text])
            found.append(
                Trigger(
                    name,
                    table,
                    (
                        _create_counting_table(connection),
                        f"CREATE TRIGGER {q(name)} {timing} ON {q(table)} {text}",
                    ),
                )
            )
    return found


def _create_counting_table(connection: BaseDatabaseWrapper) -> str:
    q = connection.ops.quote_name
    return f"CREATE TABLE IF NOT EXISTS {q(COUNTING)} ({q('id')} integer PRIMARY KEY)"


def _counter_table(field: BelongsToMixin) -> str:
    return _home(_column(field.related_model, cast(str, field.counter_cache)))._meta.db_table


def _counter_key(field: BelongsToMixin) -> str:
    """The column of the counter's table the owner's key matches."""
    target: type[models.Model] = field.related_model
    if _counter_table(field) == target._meta.db_table:
        return _name(field.target_field)
    return _name(_home(_column(target, cast(str, field.counter_cache)))._meta.pk)


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
            relations = [
                f"{owner._meta.label}.{field.name}"
                for owner, field in _relations(model._meta.apps)
                if owner._meta.db_table == table or _counter_table_or_none(field) == table
            ]
            messages.append(
                checks.Warning(
                    f"Table {table!r} on database {using!r} has {' and '.join(what)} "
                    f"belongsto_ext trigger(s) for {', '.join(relations) or 'no relation'}: "
                    f"counter_cache=/touch= are not kept there.",
                    hint=f"Run 'python manage.py migrate --database {using}' (it installs "
                    f"them), or call belongsto_ext.install_triggers() for a table made by hand.",
                    obj=model,
                    id="belongsto_ext.W004",
                )
            )
    return messages


def _counter_table_or_none(field: BelongsToMixin) -> str | None:
    return _counter_table(field) if field.counter_cache else None


# ------------------------------------------------------------- in memory

# The fields with touch= or counter_cache=, per model that declares them: after a
# save through the instance, the target it caches gets the values written.
_FIELDS: dict[type[models.Model], list[BelongsToMixin]] = {}


def connect(field: BelongsToMixin, model: type[models.Model]) -> None:
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


def _touching(model: type[models.Model]) -> list[BelongsToMixin]:
    from .fields import BelongsToMixin

    return [f for f in model._meta.fields if isinstance(f, BelongsToMixin) and f.touch]


def refresh_cached(field: BelongsToMixin, instance: models.Model, using: str) -> None:
    """Give the target instance ``instance`` caches (and the targets it caches
    through relations with ``touch=``) the counter and timestamps the
    database's triggers just wrote: one SELECT per model, none if nothing is
    cached."""
    pending: dict[type[models.Model], tuple[list[str], dict[Any, list[models.Model]]]] = {}
    todo = [(field, instance)]
    seen: set[int] = set()
    while todo:
        f, owner = todo.pop()
        obj = f.get_cached_value(owner, default=None)
        if obj is None or id(obj) in seen or obj._state.adding:
            continue
        if getattr(obj, f.target_field.attname) != owner.__dict__.get(f.attname):
            continue  # a cache the write did not reach (the save left the key out)
        seen.add(id(obj))
        names = ([f.counter_cache] if f.counter_cache else []) + touched_fields(f)
        model = type(obj)
        fields, objs = pending.setdefault(model, ([], {}))
        fields.extend(n for n in names if n not in fields)
        objs.setdefault(obj.pk, []).append(obj)
        todo += [(g, obj) for g in _touching(model)]
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
    fields = [meta.pk, *(_column(model, name) for name in names)]
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
    selected = ", ".join(q(_name(f)) for f in fields)
    sql = f"SELECT {selected} FROM {q(table)} WHERE {q(_name(meta.pk))} IN ("
    return sql, columns


# ------------------------------------------------------------- rebuild, drift


def _count_expression(target: type[models.Model], column: str) -> Any:
    """The number of owner rows pointing at each target row, over every relation
    counting into ``column``."""
    total: Any = None
    for field in _sharing(target, column):
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
    from .fields import BelongsToMixin

    field = model._meta.get_field(name)
    if not isinstance(field, BelongsToMixin) or not field.counter_cache:
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
