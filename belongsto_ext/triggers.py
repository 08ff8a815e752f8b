"""The SQL of ``counter_cache=`` and ``touch=``: the triggers the database runs.

Each relation with these options gets triggers on the owner's table that fire
on INSERT, UPDATE and DELETE and, in the same statement as the owner's write,
move the target rows' counters by the rows' old and new keys and set their
touched columns to the database's clock.

- PostgreSQL: statement-level triggers with transition tables (one UPDATE of
  the targets per statement, their rows locked in key order first).
- SQLite: row-level triggers.

A guard trigger on the target's table replaces any other write of a counter
column with the count of owner rows. Trigger names carry a hash of their SQL.
``counters.py`` installs and checks them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.apps import apps
from django.apps.registry import Apps
from django.conf import settings
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from .relation import KeyRelation as Relation
from .relation import is_key_relation

PREFIX = "belongsto_"
# The database backends whose triggers this module writes.
SUPPORTED_VENDORS = ("postgresql", "sqlite")

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


def column_of(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """``model``'s concrete field ``name`` (the checks made sure it is one)."""
    return cast("models.Field[Any, Any]", model._meta.get_field(name))


def column_name(field: Any) -> str:
    """``field``'s column name (newer django-stubs type ``Field.column`` as optional:
    it is set once the field is on a model, as every field here is)."""
    name: str | None = field.column
    assert name is not None
    return name


def _home(column: models.Field[Any, Any]) -> type[models.Model]:
    """The concrete model whose table holds ``column`` (a multi-table parent's
    column lives in the parent's table)."""
    return cast("type[models.Model]", column.model._meta.concrete_model)


def _relation(field: Relation) -> _Relation:
    target: type[models.Model] = field.related_model
    own_table = target._meta.db_table
    columns: dict[str, tuple[str, list[str], list[tuple[str, bool]]]] = {}

    def table_of(column: models.Field[Any, Any]) -> tuple[str, list[str], list[tuple[str, bool]]]:
        home = _home(column)
        table = home._meta.db_table
        # A multi-table parent's column: its row has the target's primary key.
        key = column_name(field.target_field if table == own_table else home._meta.pk)
        return columns.setdefault(table, (key, [], []))

    if field.counter_cache:
        column = column_of(target, field.counter_cache)
        table_of(column)[1].append(column_name(column))
    for name in touched_fields(field):
        column = column_of(target, name)
        table_of(column)[2].append((column_name(column), isinstance(column, models.DateTimeField)))
    owner = field.model
    return _Relation(
        owner_table=owner._meta.db_table,
        owner_key=field.column,
        owner_pk=column_name(owner._meta.pk),
        updates=tuple(
            _Update(table, key, tuple(counters), tuple(stamps))
            for table, (key, counters, stamps) in columns.items()
        ),
        touch=bool(field.touch),
        self_referential=target._meta.concrete_model is owner._meta.concrete_model,
    )


def touched_fields(field: Relation) -> list[str]:
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
) -> Iterator[tuple[type[models.Model], Relation]]:
    """Every (model, field) with ``counter_cache`` among the installed models, in
    the app registry's order. A field a multi-table parent declares comes once,
    with the parent."""
    for model, field in relations(registry):
        if field.counter_cache:
            yield model, field


def relations(registry: Apps = apps) -> Iterator[tuple[type[models.Model], Relation]]:
    """Every (model, field) with ``counter_cache`` or ``touch`` in ``registry``
    (the project's; a model built in another, as ``isolate_apps`` does, brings its own)."""
    for model in registry.get_models():
        for field in model._meta.local_fields:
            if is_key_relation(field) and (field.counter_cache or field.touch):
                yield model, field


def sharing(target: type[models.Model], column: str) -> list[Relation]:
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
    for owner, field in relations(model._meta.apps):
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
            field for field in sharing(model, column.name) if counter_table(field) == table
        ]
        if not relations:
            continue
        c = q(column_name(column))

        def count(row: str, relations: list[Relation] = relations) -> str:
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
        pk = q(column_name(model._meta.pk))
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


def counter_table(field: Relation) -> str:
    return _home(column_of(field.related_model, cast(str, field.counter_cache)))._meta.db_table


def _counter_key(field: Relation) -> str:
    """The column of the counter's table the owner's key matches."""
    target: type[models.Model] = field.related_model
    if counter_table(field) == target._meta.db_table:
        return column_name(field.target_field)
    return column_name(_home(column_of(target, cast(str, field.counter_cache)))._meta.pk)
