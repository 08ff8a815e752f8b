"""A Hypothesis state machine drives random sequences of owner writes, in every
way Django has, against a plain-Python model of the owner rows; the counting
and touching triggers must keep up with each.

The owners: ``Volume`` (counts ``Shelf.volumes_count``, touches the shelf),
``Slip`` (counts ``Shelf.slips_count``, touches) and ``Card`` (counts into the
same ``slips_count``, does not touch); ``Shelf.library`` touches the library.
The writes: ``objects.create()``, ``bulk_create()`` (also an upsert, moving
existing rows), ``set_shelf()`` on a fresh and on a held (stale, maybe
deleted) instance, ``create_shelf()``, ``save()`` of a held instance and of
one constructed with an existing or a deleted key, ``delete()`` of a held
instance, ``QuerySet.update()`` and ``delete()`` of a random set of rows,
deleting a shelf (CASCADE, SET_DEFAULT and SET()), writes of the counter
columns themselves (a stale shelf's ``save()``, ``bulk_update()``,
``QuerySet.update()``), and writes rolled back, whole or to a savepoint.

After every step: the owner rows are the model's; each shelf's
``volumes_count`` and ``slips_count`` equal the number of its owners (slips and
cards together); each shelf a touching owner was written to has ``updated`` no
earlier than the time taken just before the last such write (to the
millisecond on SQLite, whose clock the trigger reads has no more), and so has
its library. The CI run is bounded and derandomized;
``BELONGSTO_HYPOTHESIS_EXAMPLES`` (and ``BELONGSTO_HYPOTHESIS_STEPS``) ask for a
longer, randomized run.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import os
from collections import Counter
from typing import Any

import pytest
from django.db import DatabaseError, connection, models, transaction
from django.db.models import F
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.models import Card, Library, Shelf, Slip, Volume, lost_and_found

LONG_RUN = "BELONGSTO_HYPOTHESIS_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("BELONGSTO_HYPOTHESIS_EXAMPLES", "20"))
STEPS = int(os.environ.get("BELONGSTO_HYPOTHESIS_STEPS", "25"))

OWNERS: tuple[type[models.Model], ...] = (Volume, Slip, Card)
TOUCHING = (Volume, Slip)  # Card counts, and touches nothing
TEXT = {Volume: "title", Slip: "note", Card: "note"}

STATS: Counter[str] = Counter()

owners = st.sampled_from(OWNERS)
index = st.integers(min_value=0, max_value=50)  # picks from a list, modulo its length


class Rollback(Exception):
    """Raised inside ``atomic()`` to roll its writes back."""


def now() -> datetime.datetime:
    """The time before a write, as precise as the clock the triggers read: SQLite's
    ``strftime('%f', 'now')`` has milliseconds."""
    stamp = datetime.datetime.now(datetime.timezone.utc)
    if connection.vendor == "sqlite":
        stamp = stamp.replace(microsecond=stamp.microsecond // 1000 * 1000)
    return stamp


class CounterMachine(RuleBasedStateMachine):
    """Owner rows of three models on shelves, against a model of which row is on
    which shelf and when each shelf and library was last written through."""

    def __init__(self) -> None:
        super().__init__()
        STATS["examples"] += 1
        for model in (*OWNERS, Shelf, Library):
            model._base_manager.all().delete()
        Volume.history.model.objects.all().delete()
        self.names = itertools.count()
        self.libraries = [Library.objects.create(name=f"L{i}").pk for i in range(2)]
        # Shelf pk -> its library's pk (None: in none).
        self.shelves: dict[int, int | None] = {}
        for i in range(3):
            library = self.libraries[i % 2]
            self.shelves[Shelf.objects.create(name=f"S{i}", library_id=library).pk] = library
        self.lost_and_found = lost_and_found()  # where deleted shelves' slips and cards go
        self.shelves[self.lost_and_found] = None
        # Per owner model: pk -> the shelf pk its row holds (None: none).
        self.rows: dict[type[models.Model], dict[int, int | None]] = {m: {} for m in OWNERS}
        self.used: dict[type[models.Model], set[int]] = {m: set() for m in OWNERS}  # every pk
        self.held: list[models.Model] = []  # owner instances kept: stale, maybe deleted
        self.held_shelves: dict[int, Shelf] = {}  # shelf instances kept: stale
        # Shelf and library pk -> the time before the last write that touched it.
        self.shelf_touched: dict[int, datetime.datetime] = {}
        self.library_touched: dict[int, datetime.datetime] = {}

    # ----------------------------------------------------------- the model

    def shelf(self, data: st.DataObject, none: bool = True) -> int | None:
        choices = [*([None] if none else []), *sorted(self.shelves)]
        return data.draw(st.sampled_from(choices), label="shelf")

    def row(self, data: st.DataObject, model: type[models.Model]) -> int:
        return data.draw(st.sampled_from(sorted(self.rows[model])), label="row")

    def text(self) -> str:
        return f"t{next(self.names)}"

    def touch(self, model: type[models.Model], at: datetime.datetime, *keys: int | None) -> None:
        if model not in TOUCHING:
            return
        for key in keys:
            if key is not None:
                self.shelf_touched[key] = at
                library = self.shelves[key]
                if library is not None:
                    self.library_touched[library] = at

    def inserted(self, model: type[models.Model], pk: int, key: int | None, at: Any) -> None:
        assert pk is not None and pk not in self.rows[model]
        self.rows[model][pk] = key
        self.used[model].add(pk)
        self.touch(model, at, key)

    def updated(self, model: type[models.Model], pk: int, key: int | None, at: Any) -> None:
        old = self.rows[model][pk]
        self.rows[model][pk] = key
        self.touch(model, at, old, key)  # any UPDATE of a row touches its old and new target

    def deleted(self, model: type[models.Model], pk: int, at: Any) -> None:
        self.touch(model, at, self.rows[model].pop(pk))

    def saved(
        self, model: type[models.Model], before: int | None, after: int, key: int | None, at: Any
    ) -> None:
        """``save()`` of an instance whose pk was ``before``: an UPDATE if its row is
        there, else an INSERT (under the same key, or a new one)."""
        if before is not None and before in self.rows[model]:
            assert after == before
            self.updated(model, before, key, at)
        else:
            self.inserted(model, after, key, at)

    # ------------------------------------------------------------- create

    @rule(model=owners, data=st.data())
    def create(self, model: type[models.Model], data: st.DataObject) -> None:
        key = self.shelf(data)
        at = now()
        obj = model.objects.create(shelf_id=key, **{TEXT[model]: self.text()})
        self.inserted(model, obj.pk, key, at)
        self.held.append(obj)
        STATS["create"] += 1

    @rule(model=owners, data=st.data(), n=st.integers(1, 3), upsert=st.booleans())
    def bulk_create(
        self, model: type[models.Model], data: st.DataObject, n: int, upsert: bool
    ) -> None:
        """``bulk_create()`` of new rows, or with ``update_conflicts`` (an
        INSERT ... ON CONFLICT DO UPDATE) of new rows and of existing ones, moved."""
        keys = [self.shelf(data) for _ in range(n)]
        existing = sorted(self.rows[model])
        pks = [
            data.draw(st.sampled_from(existing), label="pk") if upsert and existing else None
            for _ in keys
        ]
        pks = [pk if pk not in pks[:i] else None for i, pk in enumerate(pks)]  # once each
        objs = [
            model(pk=pk, shelf_id=key, **{TEXT[model]: self.text()})
            for pk, key in zip(pks, keys, strict=True)
        ]
        at = now()
        if upsert:
            objs = model.objects.bulk_create(
                objs, update_conflicts=True, unique_fields=["id"], update_fields=["shelf"]
            )
        else:
            objs = model.objects.bulk_create(objs)
        for obj, pk, key in zip(objs, pks, keys, strict=True):
            self.saved(model, pk, obj.pk, key, at)
        STATS["bulk_create" + (" upsert" if upsert else "")] += 1

    @rule(model=owners, data=st.data(), in_library=st.booleans())
    def create_shelf(
        self, model: type[models.Model], data: st.DataObject, in_library: bool
    ) -> None:
        """``create_shelf()`` of a fresh instance, or of a new unsaved one."""
        pk = self.row(data, model) if self.rows[model] and data.draw(st.booleans()) else None
        obj = model._base_manager.get(pk=pk) if pk is not None else model(**{TEXT[model]: "new"})
        library = self.libraries[0] if in_library else None
        at = now()
        shelf = obj.create_shelf(name=self.text(), library_id=library)
        self.shelves[shelf.pk] = library
        self.saved(model, pk, obj.pk, shelf.pk, at)
        if pk is None:
            self.held.append(obj)
        STATS["create_shelf"] += 1

    # ---------------------------------------------------------------- set

    @precondition(lambda self: any(self.rows.values()))
    @rule(data=st.data())
    def set_fresh(self, data: st.DataObject) -> None:
        model = data.draw(st.sampled_from([m for m in OWNERS if self.rows[m]]), label="model")
        pk = self.row(data, model)
        key = self.shelf(data)
        obj = model._base_manager.get(pk=pk)
        at = now()
        obj.set_shelf(key)
        self.updated(model, pk, key, at)
        STATS["set fresh"] += 1

    @precondition(lambda self: self.held)
    @rule(i=index, data=st.data())
    def set_held(self, i: int, data: st.DataObject) -> None:
        """``set_shelf()`` of an instance read earlier: its row may have moved
        (the counters move from where the row is) or gone (nothing is written)."""
        obj = self.held[i % len(self.held)]
        model = type(obj)
        key = self.shelf(data)
        at = now()
        if obj.pk in self.rows[model]:
            obj.set_shelf(key)
            self.updated(model, obj.pk, key, at)
            STATS["set held"] += 1
        else:
            with pytest.raises((DatabaseError, ValueError)):  # no row: no update_fields save
                obj.set_shelf(key)
            STATS["set held, gone"] += 1

    # --------------------------------------------------------------- save

    @precondition(lambda self: self.held)
    @rule(i=index, data=st.data())
    def save_held(self, i: int, data: st.DataObject) -> None:
        """A full ``save()`` of an instance read earlier: an UPDATE of its row, or
        an INSERT under its key if the row was deleted (a new key after its own
        ``delete()``)."""
        obj = self.held[i % len(self.held)]
        model = type(obj)
        key = self.shelf(data)
        before = obj.pk
        obj.shelf_id = key
        setattr(obj, TEXT[model], self.text())
        at = now()
        obj.save()
        self.saved(model, before, obj.pk, key, at)
        STATS["save held"] += 1

    @precondition(lambda self: any(self.used.values()))
    @rule(data=st.data())
    def save_constructed(self, data: st.DataObject) -> None:
        """``Volume(pk=existing, ...).save()``: an UPDATE of that row (or an INSERT,
        for the key of a deleted one)."""
        model = data.draw(st.sampled_from([m for m in OWNERS if self.used[m]]), label="model")
        pk = data.draw(st.sampled_from(sorted(self.used[model])), label="pk")
        key = self.shelf(data)
        at = now()
        model(pk=pk, shelf_id=key, **{TEXT[model]: self.text()}).save()
        self.saved(model, pk, pk, key, at)
        STATS["save constructed" + ("" if pk in self.rows[model] else ", deleted")] += 1

    # ------------------------------------------------------------- delete

    @precondition(lambda self: any(obj.pk is not None for obj in self.held))
    @rule(i=index)
    def delete_held(self, i: int) -> None:
        """``delete()`` of an instance read earlier (its row maybe gone already)."""
        objs = [obj for obj in self.held if obj.pk is not None]
        obj = objs[i % len(objs)]
        model, pk = type(obj), obj.pk
        at = now()
        obj.delete()
        if pk in self.rows[model]:
            self.deleted(model, pk, at)
        STATS["delete held"] += 1

    # ----------------------------------------------------------- querysets

    @precondition(lambda self: any(self.rows.values()))
    @rule(data=st.data(), move=st.booleans())
    def queryset_update(self, data: st.DataObject, move: bool) -> None:
        """``QuerySet.update()`` of a random set of rows: their key, or another
        column (which touches their targets without counting)."""
        model = data.draw(st.sampled_from([m for m in OWNERS if self.rows[m]]), label="model")
        pks = data.draw(st.sets(st.sampled_from(sorted(self.rows[model]))), label="pks")
        key = self.shelf(data)
        values = {"shelf_id": key} if move else {TEXT[model]: self.text()}
        at = now()
        assert model._base_manager.filter(pk__in=pks).update(**values) == len(pks)
        for pk in pks:
            self.updated(model, pk, key if move else self.rows[model][pk], at)
        STATS["queryset update"] += 1

    @precondition(lambda self: any(self.rows.values()))
    @rule(data=st.data())
    def queryset_delete(self, data: st.DataObject) -> None:
        model = data.draw(st.sampled_from([m for m in OWNERS if self.rows[m]]), label="model")
        pks = data.draw(st.sets(st.sampled_from(sorted(self.rows[model]))), label="pks")
        at = now()
        model._base_manager.filter(pk__in=pks).delete()
        for pk in pks:
            self.deleted(model, pk, at)
        STATS["queryset delete"] += 1

    # ------------------------------------------------------------- shelves

    @precondition(lambda self: len(self.shelves) > 2)
    @rule(data=st.data())
    def delete_shelf(self, data: st.DataObject) -> None:
        """Its volumes are deleted (CASCADE), its slips and cards go to the
        lost-and-found shelf (SET_DEFAULT, SET())."""
        pk = data.draw(
            st.sampled_from(sorted(set(self.shelves) - {self.lost_and_found})), label="shelf"
        )
        at = now()
        Shelf.objects.get(pk=pk).delete()
        for model in OWNERS:
            for row, key in list(self.rows[model].items()):
                if key == pk:
                    if model is Volume:
                        self.deleted(model, row, at)
                    else:
                        self.updated(model, row, self.lost_and_found, at)
        del self.shelves[pk]
        self.shelf_touched.pop(pk, None)
        self.held_shelves.pop(pk, None)
        STATS["delete shelf"] += 1

    @rule(data=st.data(), how=st.sampled_from(["stale save", "bulk_update", "update"]))
    def write_counters(self, data: st.DataObject, how: str) -> None:
        """Writes of the counter columns themselves, with wrong values: the guard
        keeps the counts."""
        pk = self.shelf(data, none=False)
        assert pk is not None
        if how == "stale save":
            # Read at its first use here, then kept: its counters go stale.
            if pk not in self.held_shelves:
                self.held_shelves[pk] = Shelf.objects.get(pk=pk)
            shelf = self.held_shelves[pk]
            shelf.checked_on = datetime.date(2000, 1, 1 + next(self.names) % 28)
            shelf.save()  # writes its stale counters and every other column
        elif how == "bulk_update":
            shelf = Shelf.objects.get(pk=pk)
            shelf.volumes_count += 3
            shelf.slips_count += 5
            Shelf.objects.bulk_update([shelf], ["volumes_count", "slips_count"])
        else:
            Shelf.objects.filter(pk=pk).update(
                volumes_count=F("volumes_count") + 2, slips_count=F("slips_count") + 1
            )
        STATS[f"counters {how}"] += 1

    # ------------------------------------------------------------ rollback

    @rule(
        data=st.data(),
        what=st.sampled_from(["create", "set", "save", "delete", "update", "delete shelf"]),
        savepoint=st.booleans(),
    )
    def rollback(self, data: st.DataObject, what: str, savepoint: bool) -> None:
        """A write inside ``atomic()`` rolled back by an exception: the whole
        transaction, or a savepoint inside one whose own write (a create) commits."""
        model = data.draw(owners, label="model")
        pk = self.row(data, model) if self.rows[model] else None
        key = self.shelf(data)
        if pk is None and what != "delete shelf":
            what = "create"
        doomed = sorted(set(self.shelves) - {self.lost_and_found})
        outer = transaction.atomic() if savepoint else contextlib.nullcontext()
        kept: list[tuple[Any, int | None, datetime.datetime]] = []
        with outer:
            if savepoint:
                at = now()
                kept.append((model.objects.create(shelf_id=key, **{TEXT[model]: "kept"}), key, at))
            with contextlib.suppress(Rollback), transaction.atomic():
                manager = model._base_manager
                if what == "create":
                    model.objects.create(shelf_id=key, **{TEXT[model]: "rolled back"})
                elif what == "set":
                    manager.get(pk=pk).set_shelf(key)
                elif what == "save":
                    model(pk=pk, shelf_id=key, **{TEXT[model]: "rolled back"}).save()
                elif what == "delete":
                    manager.get(pk=pk).delete()
                elif what == "update":
                    manager.filter(pk=pk).update(shelf_id=key)
                elif doomed:
                    Shelf.objects.get(pk=doomed[0]).delete()
                raise Rollback
        for obj, kept_key, at in kept:
            self.inserted(type(obj), obj.pk, kept_key, at)
        STATS[f"rollback {'savepoint' if savepoint else 'whole'}"] += 1

    # ----------------------------------------------------------- invariant

    @invariant()
    def counters_are_counts(self) -> None:
        for model in OWNERS:
            assert dict(model._base_manager.values_list("pk", "shelf_id")) == self.rows[model]
        volumes = Counter(self.rows[Volume].values())
        slips = Counter(self.rows[Slip].values()) + Counter(self.rows[Card].values())
        shelves = {
            pk: (volumes_count, slips_count, updated)
            for pk, volumes_count, slips_count, updated in Shelf.objects.values_list(
                "pk", "volumes_count", "slips_count", "updated"
            )
        }
        assert sorted(shelves) == sorted(self.shelves)
        assert {pk: row[:2] for pk, row in shelves.items()} == {
            pk: (volumes[pk], slips[pk]) for pk in self.shelves
        }
        stale = {
            pk: (shelves[pk][2], at)
            for pk, at in self.shelf_touched.items()
            if not shelves[pk][2] >= at
        }
        assert stale == {}, "shelves touched before their last write: (updated, write)"
        libraries = dict(Library.objects.values_list("pk", "updated"))
        stale = {
            pk: (libraries[pk], at)
            for pk, at in self.library_touched.items()
            if not libraries[pk] >= at
        }
        assert stale == {}, "libraries touched before their shelves' last write"
        STATS["steps checked"] += 1


@pytest.mark.django_db(transaction=True)
def test_counters_state_machine(capsys: pytest.CaptureFixture[str]) -> None:
    """Random write sequences keep every counter equal to its count and every
    touched timestamp after the last write."""
    STATS.clear()
    run_state_machine_as_test(
        CounterMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=not LONG_RUN,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
    calls = sum(n for name, n in STATS.items() if name not in ("examples", "steps checked"))
    with capsys.disabled():
        print(
            f"\n[counters state machine] {STATS['examples']} examples, {calls} steps run, "
            f"{STATS['steps checked']} invariant checks ({connection.vendor})"
        )
        print(
            "  "
            + ", ".join(
                f"{name} {n}"
                for name, n in sorted(STATS.items())
                if name not in ("examples", "steps checked")
            )
        )
    assert calls > 0
