"""Every way an owner row is written, counted by the database's triggers: saves
of fresh, stale, copied and constructed instances, ``set_``/``create_``, the
manager's and the queryset's writes, bulk writes, raw SQL, ``loaddata``, each
``on_delete`` (the database-level ones of Django 6.1 too) and deferred keys.

After each, every counter equals ``COUNT(*)`` of its owners (assert_exact), the
expected shelves hold the expected numbers, and touched rows show it. The
helpers (shared with test_counters.py) are in tests/helpers.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core import serializers
from django.core.management import call_command
from django.db import connection, models
from django.db.models import Case, Value, When
from django.test.utils import isolate_apps

from belongsto_ext import BelongsToField, install_triggers
from belongsto_ext.counters import _drop, installed
from tests.factories import VolumeFactory
from tests.helpers import (
    OLD,
    aged,
    assert_exact,
    counts,
    db,
    library_and_shelves,
    run,
    since,
    stamps,
    statements,
    touched_since,
    without_triggers,
)
from tests.models import Card, Label, Shelf, Slip, Volume

pytestmark = pytest.mark.django_db

# The owner models whose copies the tests move around: the name of a text field
# to give, and the counter column of Shelf.
OWNERS: dict[type[models.Model], tuple[str, str]] = {
    Volume: ("title", "volumes_count"),
    Label: ("text", "labels_count"),  # one-to-one, PositiveIntegerField counter
    Slip: ("note", "slips_count"),  # PositiveIntegerField counter, shared with Card
    Card: ("note", "slips_count"),
}


def owner_on(model: type[models.Model], shelf: Shelf | None, text: str = "x") -> Any:
    return model._default_manager.create(shelf=shelf, **{OWNERS[model][0]: text})


# ------------------------------------------------------------------- saves


def test_save_of_a_fresh_instance_counts_and_touches() -> None:
    library, (a, b) = library_and_shelves()
    start = since()
    Volume(title="New", shelf_id=a.pk).save()
    Volume(title="Loose").save()
    assert counts(a, b) == [1, 0]
    assert touched_since(start, a, library, b) == [True, True, False]
    assert_exact()


@pytest.mark.parametrize("model", list(OWNERS), ids=lambda m: m.__name__)
def test_save_of_a_stale_instance_counts_the_rows_move(model: type[models.Model]) -> None:
    """Another copy moved the row to b; the stale one still says a and writes it
    back with its save(): b loses it, a gets it back."""
    _, (a, b) = library_and_shelves()
    column = OWNERS[model][1]
    stale = owner_on(model, a)
    model._default_manager.get(pk=stale.pk).set_shelf(b)
    assert counts(a, b, column=column) == [0, 1]
    setattr(stale, OWNERS[model][0], "Stale")
    stale.save()
    assert counts(a, b, column=column) == [1, 0]
    assert_exact()


@pytest.mark.parametrize("model", list(OWNERS), ids=lambda m: m.__name__)
@pytest.mark.parametrize("second", ["elsewhere", "same shelf", "none"])
def test_two_copies_each_moved_with_set_count_the_old_shelf_down_once(
    model: type[models.Model], second: str
) -> None:
    """The second copy still says a: its move starts from the row's key (b), so
    a is counted down once and never goes below zero (PositiveIntegerField
    counters raise no IntegrityError)."""
    _, (a, b, c) = library_and_shelves(3)
    column = OWNERS[model][1]
    row = owner_on(model, a)
    one = model._default_manager.get(pk=row.pk)
    two = model._default_manager.get(pk=row.pk)
    one.set_shelf(b)
    two.set_shelf({"elsewhere": c, "same shelf": b, "none": None}[second])
    expected = {"elsewhere": [0, 0, 1], "same shelf": [0, 1, 0], "none": [0, 0, 0]}[second]
    assert counts(a, b, c, column=column) == expected
    assert_exact()


def test_a_constructed_instance_with_an_existing_pk_moves_the_row() -> None:
    """``Volume(pk=..., ...).save()`` updates the row: its old shelf -1, the new +1."""
    _, (a, b) = library_and_shelves()
    volume = VolumeFactory(shelf=a)
    start = since()
    with statements() as sent:
        Volume(pk=volume.pk, title="Constructed", shelf_id=b.pk).save()
    assert sent == [("UPDATE", "tests_volume")]
    assert counts(a, b) == [0, 1]
    assert touched_since(start, a, b) == [True, True]
    assert_exact()


def test_save_with_the_same_key_as_a_string_moves_nothing() -> None:
    """``shelf_id = "5"`` on a row holding 5: touched, not counted again."""
    _, (a,) = library_and_shelves(1)
    volume = Volume.objects.get(pk=VolumeFactory(shelf=a).pk)
    aged(a)
    start = since()
    volume.shelf_id = str(a.pk)  # type: ignore[assignment]
    volume.save()
    assert counts(a) == [1] and touched_since(start, a) == [True]
    assert_exact()


def test_save_with_update_fields_leaving_the_key_out_keeps_the_rows_shelf() -> None:
    """The key changed in memory only: the row, and so the counters, keep the
    old one (which the write touches); saving the key then moves it."""
    _, (a, b) = library_and_shelves()
    volume = VolumeFactory(shelf=a)
    aged(a, b)
    start = since()
    volume.shelf_id = b.pk
    volume.save(update_fields=["title"])
    assert counts(a, b) == [1, 0]
    assert touched_since(start, a, b) == [True, False]
    volume.save()
    assert counts(a, b) == [0, 1]
    assert_exact()


def test_the_owners_triggers_count_by_themselves() -> None:
    """Shelf's guard puts COUNT(*) in place of a counter written from outside the
    counting triggers (on SQLite it checks their writes too); with Shelf's
    triggers dropped, the owners' triggers alone still count every move right."""
    _, (a, b, c) = library_and_shelves(3)
    with without_triggers(Shelf):
        volumes = [Volume.objects.create(title=str(i), shelf=a) for i in range(3)]
        Volume.objects.bulk_create([Volume(title="b", shelf=b), Volume(title="none")])
        assert counts(a, b, c) == [3, 1, 0]
        volumes[0].shelf = b
        volumes[0].save()
        volumes[1].set_shelf(None)
        assert counts(a, b, c) == [1, 2, 0]
        Volume.objects.update(shelf=Case(When(shelf=a, then=Value(b.pk)), default=Value(a.pk)))
        assert counts(a, b, c) == [4, 1, 0]  # the volume with no shelf came to a too
        volumes[2].shelf = c
        volumes[0].shelf = c
        Volume.objects.bulk_update([volumes[0], volumes[2]], ["shelf"])
        Volume.objects.filter(pk=volumes[1].pk).delete()
        assert counts(a, b, c) == [2, 0, 2]
        label = Label.objects.create(text="L", shelf=a)
        label.set_shelf(b)
        Slip.objects.bulk_create([Slip(shelf=a), Slip(shelf=c)])
        Card.objects.create(shelf=c).set_shelf(a)
        Slip.objects.filter(shelf=c).update(shelf=b)
        assert counts(a, b, c, column="labels_count") == [0, 1, 0]
        assert counts(a, b, c, column="slips_count") == [2, 1, 0]
        assert_exact()


# ------------------------------------------------------------- set, create


@pytest.mark.parametrize("value", ["instance", "key", "none", "same"])
@pytest.mark.parametrize("owner", ["existing", "unsaved"])
def test_set_counts_and_touches(value: str, owner: str) -> None:
    library, (a, b) = library_and_shelves()
    volume = VolumeFactory(shelf=a) if owner == "existing" else Volume(title="New", shelf=a)
    aged(a, b, library)
    start = since()
    target = {"instance": b, "key": b.pk, "none": None, "same": a}[value]
    volume.set_shelf(target)
    before = 1 if owner == "existing" else 0
    expected = {"instance": [0, 1], "key": [0, 1], "none": [0, 0], "same": [1, 0]}[value]
    assert counts(a, b) == expected
    # a is touched when the row left it, or stayed on it, or an existing row left it.
    touched = [value == "same" or before == 1, value in ("instance", "key")]
    assert touched_since(start, a, b) == touched
    assert touched_since(start, library) == [any(touched)]
    assert_exact()


def test_set_without_save_counts_at_the_save() -> None:
    _, (a, b) = library_and_shelves()
    volume = VolumeFactory(shelf=a)
    with statements() as sent:
        volume.set_shelf(b, save=False)
    assert sent == []
    assert counts(a, b) == [1, 0]
    volume.save()
    assert counts(a, b) == [0, 1]
    assert_exact()


@pytest.mark.parametrize("save", [True, False])
def test_create_counts_the_new_shelf(save: bool) -> None:
    library, (a,) = library_and_shelves(1)
    volume = VolumeFactory(shelf=a)
    created = volume.create_shelf(name="Made", library=library, save=save)
    assert counts(a, created) == ([0, 1] if save else [1, 0])
    assert_exact()


@pytest.mark.django_db(transaction=True)
def test_async_set_and_create_count() -> None:
    library, (a, b) = library_and_shelves()
    volume = VolumeFactory(shelf=a)
    fresh = Volume(title="New")

    async def main() -> tuple[Shelf, Shelf]:
        await volume.aset_shelf(b.pk)
        await fresh.aset_shelf(a)
        made = await volume.acreate_shelf(name="Async", library=library)
        unsaved = await fresh.acreate_shelf(name="Not saved", save=False)
        return made, unsaved

    made, unsaved = run(main)
    assert counts(a, b, made, unsaved) == [1, 0, 1, 0]
    assert_exact()


# ------------------------------------------------------ manager and queryset


def test_manager_create_get_or_create_and_update_or_create() -> None:
    _, (a, b) = library_and_shelves()
    volume = Volume.objects.create(title="Created", shelf=a)
    Volume.objects.get_or_create(title="Got", defaults={"shelf": b})
    Volume.objects.get_or_create(title="Got", defaults={"shelf": a})  # found: no write
    assert counts(a, b) == [1, 1]
    Volume.objects.update_or_create(pk=volume.pk, defaults={"shelf": b})  # the update branch
    assert counts(a, b) == [0, 2]
    Volume.objects.update_or_create(title="Made", defaults={"shelf": a})  # the create branch
    assert counts(a, b) == [1, 2]
    Volume.objects.update_or_create(title="Made", defaults={"title": "Renamed"})  # no move
    assert counts(a, b) == [1, 2]
    assert_exact()


def test_bulk_create_counts_every_row_in_one_statement() -> None:
    library, (a, b) = library_and_shelves()
    start = since()
    with statements() as sent:
        Volume.objects.bulk_create(
            [Volume(title=str(i), shelf=a if i < 5 else b) for i in range(7)]
            + [Volume(title="loose")]
        )
    assert sent == [("INSERT", "tests_volume")]
    assert counts(a, b) == [5, 2]
    assert touched_since(start, a, b, library) == [True, True, True]
    Label.objects.bulk_create([Label(text="a", shelf=a), Label(text="b", shelf=b)])
    Slip.objects.bulk_create([Slip(shelf=a), Slip(shelf=a)])
    Card.objects.bulk_create([Card(shelf=a), Card(shelf=b)])
    assert counts(a, b, column="slips_count") == [3, 1]
    assert counts(a, b, column="labels_count") == [1, 1]
    assert_exact()


def test_bulk_update_moves_and_swaps_in_one_statement() -> None:
    library, (a, b, c) = library_and_shelves(3)
    volumes = [VolumeFactory(shelf=a) for _ in range(3)] + [VolumeFactory(shelf=b)]
    aged(a, b, c, library)
    # A swap (a -> b and b -> a) and a rename: the counts stay, every row's shelf is touched.
    volumes[0].shelf = b
    volumes[3].shelf = a
    volumes[1].title = "Renamed"
    start = since()
    with statements() as sent:
        Volume.objects.bulk_update(volumes[:2] + volumes[3:], ["shelf", "title"])
    assert sent == [("UPDATE", "tests_volume")]
    assert counts(a, b, c) == [3, 1, 0]
    assert touched_since(start, a, b, c) == [True, True, False]
    for volume in volumes:
        volume.shelf = c
    Volume.objects.bulk_update(volumes, ["shelf"])
    assert counts(a, b, c) == [0, 0, 4]
    assert_exact()


def test_queryset_update_moving_keys_counts_them_all() -> None:
    _, (a, b, c) = library_and_shelves(3)
    VolumeFactory.create_batch(3, shelf=a)
    VolumeFactory(shelf=b)
    with statements() as sent:
        assert Volume.objects.filter(shelf=a).update(shelf=c) == 3
    assert sent == [("UPDATE", "tests_volume")]
    assert counts(a, b, c) == [0, 1, 3]
    Volume.objects.update(shelf=Case(When(shelf=b, then=Value(c.pk)), default=Value(b.pk)))
    assert counts(a, b, c) == [0, 3, 1]
    Volume.objects.filter(shelf=b).update(shelf=None)
    assert counts(a, b, c) == [0, 0, 1]
    Slip.objects.bulk_create([Slip(shelf=a), Slip(shelf=b)])
    Card.objects.create(shelf=a)
    Slip.objects.update(shelf=c)
    Card.objects.update(shelf=b)
    assert counts(a, b, c, column="slips_count") == [0, 1, 2]
    assert_exact()


def test_queryset_update_of_another_column_touches_without_counting() -> None:
    library, (a, b) = library_and_shelves()
    VolumeFactory.create_batch(2, shelf=a)
    aged(a, b, library)
    start = since()
    assert Volume.objects.filter(shelf=a).update(title="Renamed") == 2
    assert counts(a, b) == [2, 0]
    assert touched_since(start, a, b, library) == [True, False, True]
    assert_exact()


def test_queryset_delete_counts_every_row_down() -> None:
    _, (a, b) = library_and_shelves()
    VolumeFactory.create_batch(3, shelf=a)
    VolumeFactory(shelf=b)
    Slip.objects.create(shelf=a)
    Card.objects.create(shelf=a)
    Label.objects.create(text="L", shelf=a)
    aged(a, b)
    start = since()
    Volume.objects.filter(shelf=a).delete()
    assert counts(a, b) == [0, 1]
    assert touched_since(start, a, b) == [True, False]
    Slip.objects.all().delete()
    Label.objects.all().delete()
    assert counts(a, column="slips_count") == [1]
    assert counts(a, column="labels_count") == [0]
    assert_exact()


@pytest.mark.parametrize("model", list(OWNERS), ids=lambda m: m.__name__)
def test_delete_of_a_stale_instance_counts_the_rows_shelf_down_once(
    model: type[models.Model],
) -> None:
    """The row was moved to b by another copy: deleting the stale copy (still on
    a in memory) counts b down, and a, left already, stays at zero."""
    _, (a, b) = library_and_shelves()
    column = OWNERS[model][1]
    stale = owner_on(model, a)
    model._default_manager.get(pk=stale.pk).set_shelf(b)
    stale.delete()
    assert counts(a, b, column=column) == [0, 0]
    assert_exact()


def test_delete_of_an_instance_whose_row_is_gone_counts_nothing() -> None:
    _, (a,) = library_and_shelves(1)
    volume = VolumeFactory(shelf=a)
    Volume.objects.get(pk=volume.pk).delete()
    volume.delete()  # deletes no row
    assert counts(a) == [0]
    assert_exact()


# ------------------------------------------------------------------ raw SQL


def test_raw_sql_writes_are_counted() -> None:
    library, (a, b) = library_and_shelves()
    aged(a, b, library)
    q = connection.ops.quote_name
    table, key = q(Volume._meta.db_table), q("shelf_id")
    start = since()
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({q('title')}, {key}) VALUES (%s, %s)",
            [("raw 1", a.pk), ("raw 2", a.pk), ("raw 3", a.pk)],
        )
        assert counts(a, b) == [3, 0]
        cursor.execute(f"UPDATE {table} SET {key} = %s WHERE {q('title')} = %s", [b.pk, "raw 1"])
        assert counts(a, b) == [2, 1]
        cursor.execute(f"DELETE FROM {table} WHERE {key} = %s", [a.pk])
    assert counts(a, b) == [0, 1]
    assert touched_since(start, a, b, library) == [True, True, True]
    assert_exact()


# ------------------------------------------------------------- raw saves


def test_deserialized_objects_save_raw_and_are_counted() -> None:
    """``DeserializedObject.save()`` is ``save_base(raw=True)``, as loaddata does."""
    _, (a, b) = library_and_shelves()
    moved = VolumeFactory(shelf=a)
    data = json.dumps(
        [
            {"model": "tests.volume", "pk": moved.pk, "fields": {"title": "M", "shelf": b.pk}},
            {"model": "tests.volume", "pk": 9001, "fields": {"title": "New", "shelf": a.pk}},
            {"model": "tests.label", "pk": 9002, "fields": {"text": "L", "shelf": b.pk}},
            {"model": "tests.slip", "pk": 9003, "fields": {"note": "S", "shelf": b.pk}},
        ]
    )
    aged(a, b)
    start = since()
    for obj in serializers.deserialize("json", data):
        obj.save()
    assert counts(a, b) == [1, 1]
    assert counts(a, b, column="labels_count") == [0, 1]
    assert counts(a, b, column="slips_count") == [0, 1]
    assert touched_since(start, a, b) == [True, True]
    assert_exact()


def test_loaddata_counts_owners_loaded_before_their_shelf(tmp_path: Path) -> None:
    """The volumes come first in the fixture, pointing at a shelf not loaded yet
    (its foreign keys are checked at the end); the shelf's row, with a counter
    the fixture says is 99, starts at the count of its owners."""
    fixture = tmp_path / "shelves.json"
    shelf = {"name": "Loaded", "volumes_count": 99, "slips_count": 7, "updated": OLD.isoformat()}
    fixture.write_text(
        json.dumps(
            [
                {"model": "tests.volume", "pk": 9101, "fields": {"title": "1", "shelf": 9100}},
                {"model": "tests.volume", "pk": 9102, "fields": {"title": "2", "shelf": 9100}},
                {"model": "tests.card", "pk": 9103, "fields": {"note": "C", "shelf": 9100}},
                {"model": "tests.shelf", "pk": 9100, "fields": shelf},
            ]
        )
    )
    call_command("loaddata", str(fixture), verbosity=0)
    loaded = Shelf.objects.get(pk=9100)
    assert (loaded.volumes_count, loaded.labels_count, loaded.slips_count) == (2, 0, 1)
    assert_exact()


# ---------------------------------------------------------------- on_delete


def test_cascade_from_the_library_through_shelves_and_volumes() -> None:
    library, (a, b) = library_and_shelves()
    VolumeFactory.create_batch(2, shelf=a)
    Label.objects.create(text="L", shelf=b)
    _, (kept,) = library_and_shelves(1)
    survivor = VolumeFactory(shelf=kept)
    library.delete()
    assert not Shelf.objects.filter(pk__in=[a.pk, b.pk]).exists()
    assert list(Volume.objects.all()) == [survivor]
    assert counts(kept) == [1]
    assert_exact()


def test_cascade_from_a_shelf_deletes_its_volumes_and_label() -> None:
    library, (a, b) = library_and_shelves()
    VolumeFactory.create_batch(2, shelf=a)
    VolumeFactory(shelf=b)
    Label.objects.create(text="L", shelf=a)
    aged(b, library)
    a.delete()
    assert Volume.objects.count() == 1 and not Label.objects.exists()
    assert counts(b) == [1] and stamps(b) == [OLD]
    assert_exact()


@pytest.mark.parametrize("owners", ["slips and cards", "cards only"])
@pytest.mark.parametrize("lost_and_found", ["exists", "made by the delete"])
@pytest.mark.parametrize("how", ["instance", "queryset"])
def test_set_default_and_set_move_owners_to_the_lost_and_found_shelf(
    owners: str, lost_and_found: str, how: str
) -> None:
    """Slip (SET_DEFAULT) and Card (SET(lost_and_found)) count into slips_count:
    deleting their shelf moves them, and the lost-and-found shelf counts them
    all; Slip touches it, Card (no touch=) does not."""
    _, (doomed, other) = library_and_shelves()
    if lost_and_found == "exists":
        found = Shelf.objects.create(name="Lost and found")
        Slip.objects.create(shelf=found)
        aged(found)
    slips = 2 if owners == "slips and cards" else 0
    for _ in range(slips):
        Slip.objects.create(shelf=doomed)
    Card.objects.bulk_create([Card(shelf=doomed), Card(shelf=doomed), Card(shelf=other)])
    start = since()
    if how == "instance":
        doomed.delete()
    else:
        Shelf.objects.filter(pk=doomed.pk).delete()
    found = Shelf.objects.get(name="Lost and found")
    before = 1 if lost_and_found == "exists" else 0
    assert counts(found, other, column="slips_count") == [before + slips + 2, 1]
    assert Slip.objects.filter(shelf=found).count() == before + slips
    assert Card.objects.filter(shelf=found).count() == 2
    if lost_and_found == "exists":
        assert touched_since(start, found) == [bool(slips)]
    assert_exact()


# A target and an owner made by hand (isolate_apps), one owner model per on_delete
# kind: Django's SET_NULL and CASCADE (the collector's UPDATE / DELETE), and on
# Django 6.1 the database's own ON DELETE actions, which no Python code sees.
ON_DELETE = ["SET_NULL", "CASCADE", "DB_CASCADE", "DB_SET_NULL", "DB_SET_DEFAULT"]
LOST = 4242  # the primary key DB_SET_DEFAULT's column default points at


@pytest.fixture
def racks(request: pytest.FixtureRequest) -> Iterator[tuple[type[models.Model], ...]]:
    kind = request.param
    if not hasattr(models, kind):
        pytest.skip(f"models.{kind} is new in Django 6.1")
    with isolate_apps("tests"):

        class Rack(models.Model):
            name = models.CharField(max_length=20)
            boxes_count = models.PositiveIntegerField(default=0)
            updated = models.DateTimeField(auto_now=True)

            class Meta:
                app_label = "tests"
                db_table = "tests_counted_rack"

        extra: dict[str, Any] = {"db_default": LOST} if kind == "DB_SET_DEFAULT" else {}

        class Box(models.Model):
            rack = BelongsToField(
                Rack,
                on_delete=getattr(models, kind),
                null=True,
                related_name="boxes",
                touch=True,
                counter_cache="boxes_count",
                **extra,
            )

            class Meta:
                app_label = "tests"
                db_table = "tests_counted_box"

        with connection.schema_editor() as editor:
            editor.create_model(Rack)
            editor.create_model(Box)
        try:
            assert install_triggers(Rack, Box)  # migrate made neither table
            yield Rack, Box
        finally:
            with connection.cursor() as cursor:
                for table in (Box._meta.db_table, Rack._meta.db_table):
                    for name in installed(connection, table):
                        _drop(cursor, connection, name, table)
            with connection.schema_editor() as editor:
                editor.delete_model(Box)
                editor.delete_model(Rack)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("racks", ON_DELETE, indirect=True)
@pytest.mark.parametrize("how", ["instance", "queryset"])
def test_each_on_delete_keeps_the_counts(racks: tuple[Any, Any], how: str) -> None:
    Rack, Box = racks
    kind = Box._meta.get_field("rack").remote_field.on_delete
    name = next(n for n in ON_DELETE if getattr(models, n, None) is kind)
    lost = Rack.objects.create(pk=LOST, name="lost")
    doomed, kept = Rack.objects.create(name="doomed"), Rack.objects.create(name="kept")
    Box.objects.bulk_create([Box(rack=doomed), Box(rack=doomed), Box(rack=kept), Box(rack=lost)])
    assert [db(r).boxes_count for r in (lost, doomed, kept)] == [1, 2, 1]
    Rack.objects.update(updated=OLD)  # Rack has no relation of its own: no trigger fires
    start = since()
    if how == "instance":
        doomed.delete()
    else:
        Rack.objects.filter(pk=doomed.pk).delete()
    left = {r.pk: r for r in Rack.objects.all()}
    real = dict(
        Box.objects.exclude(rack=None)
        .order_by()
        .values("rack")
        .annotate(n=models.Count("pk"))
        .values_list("rack", "n")
    )
    assert {pk: r.boxes_count for pk, r in left.items()} == {pk: real.get(pk, 0) for pk in left}
    expected_lost = {"DB_SET_DEFAULT": 3}.get(name, 1)
    assert (left[lost.pk].boxes_count, left[kept.pk].boxes_count) == (expected_lost, 1)
    assert Box.objects.filter(rack=None).count() == (2 if name.endswith("SET_NULL") else 0)
    assert Box.objects.count() == (2 if name.endswith("CASCADE") else 4)
    assert (left[lost.pk].updated >= start) is (name == "DB_SET_DEFAULT")
    assert left[kept.pk].updated == OLD


# ------------------------------------------------------------- deferred keys
#
# django-simple-history's record reads a deferred key back from the row (a SELECT
# of tests_volume): the statements below are pinned without it.


def writes(sent: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``sent`` without django-simple-history's read of the volume's key."""
    assert set(sent) <= {
        ("SELECT", "tests_volume"),
        ("UPDATE", "tests_volume"),
        ("DELETE", "tests_volume"),
    }
    return [s for s in sent if s[0] != "SELECT"]


def test_a_deferred_key_save_touches_without_counting() -> None:
    library, (a,) = library_and_shelves(1)
    volume = VolumeFactory(shelf=a)
    aged(a, library)
    deferred = Volume.objects.only("title").get(pk=volume.pk)
    deferred.title = "Renamed"
    start = since()
    with statements() as sent:
        deferred.save()
    assert writes(sent) == [("UPDATE", "tests_volume")]
    assert counts(a) == [1] and touched_since(start, a, library) == [True, True]
    assert "shelf_id" not in Volume.objects.only("title").get(pk=volume.pk).__dict__
    assert_exact()


def test_a_deferred_key_saved_after_another_copy_moved_the_row() -> None:
    """The deferred copy never loaded the key: its save leaves the row's (b)."""
    _, (a, b) = library_and_shelves()
    volume = VolumeFactory(shelf=a)
    deferred = Volume.objects.only("title").get(pk=volume.pk)
    volume.set_shelf(b)
    deferred.title = "Renamed"
    deferred.save()
    assert counts(a, b) == [0, 1]
    assert_exact()


def test_a_deferred_key_assigned_then_saved_moves_the_counters() -> None:
    _, (a, b) = library_and_shelves()
    volume = VolumeFactory(shelf=a)
    deferred = Volume.objects.only("title").get(pk=volume.pk)
    deferred.shelf_id = b.pk
    with statements() as sent:
        deferred.save()
    assert writes(sent) == [("UPDATE", "tests_volume")]
    assert counts(a, b) == [0, 1]
    assert_exact()


@pytest.mark.parametrize("assigned", [False, True])
def test_a_deferred_key_delete_counts_the_rows_shelf_down(assigned: bool) -> None:
    """Whatever the instance was told, the row's key (b) is counted down."""
    _, (a, b) = library_and_shelves()
    volume = VolumeFactory(shelf=b)
    deferred = Volume.objects.only("title").get(pk=volume.pk)
    if assigned:
        deferred.shelf_id = a.pk
    with statements() as sent:
        deferred.delete()
    assert writes(sent) == [("DELETE", "tests_volume")]
    assert counts(a, b) == [0, 0]
    assert_exact()


def test_set_on_a_deferred_key_counts_the_rows_shelf_down() -> None:
    _, (a, b, c) = library_and_shelves(3)
    volume = VolumeFactory(shelf=a)
    deferred = Volume.objects.only("title").get(pk=volume.pk)
    Volume.objects.filter(pk=volume.pk).update(shelf=b)  # moved behind its back
    deferred.set_shelf(c)
    assert counts(a, b, c) == [0, 0, 1]
    assert_exact()
