"""``counter_cache=`` and ``touch=`` under the libraries that write owner rows
behind the model's back: django-reversion's reverts and recoveries and
``loaddata`` are raw saves (``save_base(raw=True)``, no ``save()``), and
django-simple-history restores through an instance built from a historical
row. The triggers count and touch each, whatever wrote the row; a counter
column a raw save writes from old data is put back to the count; and the
historical table, whose ``shelf`` is a copy of the field without its options,
counts nothing.

The models (tests/models.py): ``Volume.shelf`` counts ``Shelf.volumes_count``
and touches ``Shelf.updated``; ``Shelf`` and ``Volume`` are registered with
django-reversion; ``Volume.history`` is django-simple-history's
(``tests.HistoricalVolume``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import reversion
from django.core import serializers
from django.core.management import call_command
from django.db import connection, models
from django.utils import timezone
from reversion.models import Version

from belongsto_ext.counters import installed
from tests.helpers import OLD
from tests.models import Library, Shelf, Volume

pytestmark = pytest.mark.django_db

HistoricalVolume: Any = Volume.history.model


# ------------------------------------------------------------------ helpers


def shelves(n: int) -> list[Shelf]:
    library = Library.objects.create(name="Library")
    return [Shelf.objects.create(name=f"Shelf {i}", library=library) for i in range(n)]


def aged(*shelves_: Shelf) -> None:
    """Shelves' timestamps back to OLD, so that a touch shows."""
    Shelf.objects.filter(pk__in=[s.pk for s in shelves_]).update(updated=OLD)


def counters(*shelves_: Shelf) -> list[int]:
    rows = dict(Shelf.objects.values_list("pk", "volumes_count"))
    return [rows[s.pk] for s in shelves_]


def counts(*shelves_: Shelf) -> list[int]:
    """COUNT(*) of each shelf's volumes."""
    rows = dict(
        Volume.objects.values("shelf").annotate(n=models.Count("pk")).values_list("shelf", "n")
    )
    return [rows.get(s.pk, 0) for s in shelves_]


def touched(shelf: Shelf) -> bool:
    return bool(Shelf.objects.get(pk=shelf.pk).updated > OLD)


# -------------------------------------------------------- django-reversion


def test_reversion_revert_moves_the_volume_back_and_counts_both_shelves() -> None:
    a, b = shelves(2)
    with reversion.create_revision():
        volume = Volume.objects.create(title="Reverted", shelf=a)
    with reversion.create_revision():
        volume.shelf = b
        volume.save()
    assert counters(a, b) == counts(a, b) == [0, 1]
    aged(a, b)

    versions = Version.objects.get_for_object(volume)
    assert [v.field_dict["shelf_id"] for v in versions] == [b.pk, a.pk]  # newest first
    versions[1].revision.revert()  # a raw save of the volume as it was on a

    assert Volume.objects.get(pk=volume.pk).shelf_id == a.pk
    assert counters(a, b) == counts(a, b) == [1, 0]
    assert touched(a) and touched(b)  # the row left b and came to a


def test_reversion_version_revert_counts_as_the_revision_does() -> None:
    a, b = shelves(2)
    with reversion.create_revision():
        volume = Volume.objects.create(title="Reverted", shelf=a)
    volume.set_shelf(b)  # outside any revision
    Volume.objects.create(title="Stays", shelf=b)
    aged(a, b)

    Version.objects.get_for_object(volume).get().revert()

    assert counters(a, b) == counts(a, b) == [1, 1]
    assert touched(a)


def test_reversion_recovering_a_deleted_volume_counts_it_again() -> None:
    a, b = shelves(2)
    with reversion.create_revision():
        volume = Volume.objects.create(title="Deleted", shelf=a)
    Volume.objects.create(title="Stays", shelf=a)
    pk = volume.pk
    volume.delete()
    assert counters(a) == counts(a) == [1]
    aged(a, b)

    deleted = Version.objects.get_deleted(Volume)
    assert [v.object_id for v in deleted] == [str(pk)]
    deleted[0].revision.revert()  # a raw INSERT under the old key

    assert Volume.objects.get(pk=pk).shelf_id == a.pk
    assert counters(a, b) == counts(a, b) == [2, 0]
    assert touched(a) and not touched(b)


def test_reversion_reverting_a_shelf_keeps_its_counter_the_count() -> None:
    """The shelf's version holds the counter it had then; the raw save writes it
    back, and the guard puts the count of today's volumes instead."""
    (a,) = shelves(1)
    Volume.objects.create(title="1", shelf=a)
    with reversion.create_revision():
        reversion.add_to_revision(Shelf.objects.get(pk=a.pk))
    version = Version.objects.get_for_object(a).get()
    assert version.field_dict["volumes_count"] == 1
    Volume.objects.bulk_create([Volume(title=str(i), shelf=a) for i in range(3)])
    assert counters(a) == [4]

    version.revision.revert()

    assert counters(a) == counts(a) == [4]


# --------------------------------------------------- django-simple-history


def test_simple_history_restoring_an_older_shelf_moves_the_counts() -> None:
    a, b = shelves(2)
    volume = Volume.objects.create(title="History", shelf=a)
    volume.set_shelf(b)
    Volume.objects.create(title="Stays", shelf=b)
    assert counters(a, b) == counts(a, b) == [0, 2]
    aged(a, b)

    old = volume.history.earliest()
    assert (old.history_type, old.shelf_id) == ("+", a.pk)
    old.instance.save()  # an UPDATE of the row back onto a

    assert Volume.objects.get(pk=volume.pk).shelf_id == a.pk
    assert counters(a, b) == counts(a, b) == [1, 1]
    assert touched(a) and touched(b)
    # Three history rows on a (created, restored) and b: none of them counted.
    assert volume.history.count() == 3


def test_simple_history_restoring_a_deleted_volume_counts_it_again() -> None:
    (a,) = shelves(1)
    volume = Volume.objects.create(title="History", shelf=a)
    pk = volume.pk
    volume.delete()
    assert counters(a) == [0]
    aged(a)

    last = HistoricalVolume.objects.filter(id=pk).latest()
    assert last.history_type == "-"
    last.instance.save()  # an INSERT under the old key

    assert counters(a) == counts(a) == [1]
    assert touched(a)


def test_simple_history_table_counts_nothing() -> None:
    """The historical model's ``shelf`` is a copy of the field without
    ``counter_cache``/``touch``: no trigger on its table, and its rows (one per
    write, all pointing at shelves) count nothing."""
    field = HistoricalVolume._meta.get_field("shelf")
    assert (field.counter_cache, field.touch, field.db_constraint) == (None, False, False)
    assert installed(connection, HistoricalVolume._meta.db_table) == set()
    assert installed(connection, Volume._meta.db_table) != set()

    (a,) = shelves(1)
    volume = Volume.objects.create(title="History", shelf=a)
    for i in range(3):
        volume.title = str(i)
        volume.save()
    aged(a)
    HistoricalVolume.objects.create(
        id=volume.pk, title="by hand", shelf_id=a.pk, history_date=timezone.now(), history_type="~"
    )

    assert HistoricalVolume.objects.filter(shelf=a).count() == 5
    assert counters(a) == counts(a) == [1]
    assert not touched(a)


# ------------------------------------------------------------------ loaddata


def write_fixture(tmp_path: Path, objects: list[dict[str, Any]]) -> str:
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(objects))
    return str(path)


def test_loaddata_counts_its_volumes_whichever_comes_first(tmp_path: Path) -> None:
    """A fixture's volumes count on their shelves: on a shelf that is already
    there, on one the fixture loads after its volumes, and on one it loads
    before them with a wrong counter (the guard puts the count on its INSERT)."""
    a, b = shelves(2)
    moved = Volume.objects.create(title="Moved by the fixture", shelf=a)
    aged(a, b)
    later, before = 9001, 9002  # shelves the fixture adds
    shelf_fields = {
        "volumes_count": 99,  # wrong, as in a fixture written by hand
        "labels_count": 0,
        "slips_count": 0,
        "updated": "2001-01-01T00:00:00Z",
        "checked_on": None,
        "library": None,
    }

    def volume(pk: int, shelf: int) -> dict[str, Any]:
        return {"model": "tests.volume", "pk": pk, "fields": {"title": str(pk), "shelf": shelf}}

    path = write_fixture(
        tmp_path,
        [
            {"model": "tests.shelf", "pk": before, "fields": {"name": "Before", **shelf_fields}},
            volume(8001, before),
            volume(8002, later),  # its shelf comes further down
            volume(8003, later),
            volume(8004, a.pk),
            volume(8005, before),
            {"model": "tests.shelf", "pk": later, "fields": {"name": "Later", **shelf_fields}},
            volume(moved.pk, b.pk),  # an UPDATE: from a to b
        ],
    )
    call_command("loaddata", path, verbosity=0)

    added = list(Shelf.objects.filter(pk__in=[later, before]).order_by("pk"))
    assert counters(a, b, *added) == counts(a, b, *added) == [1, 1, 2, 2]
    assert touched(a) and touched(b)


def test_dumpdata_then_loaddata_restores_the_counts(tmp_path: Path) -> None:
    """A dump holds each shelf's counter; loading it into an empty table (shelves
    first, then their volumes) gives the counts, not twice them."""
    a, b, empty = shelves(3)
    Volume.objects.bulk_create([Volume(title=str(i), shelf=[a, b][i % 2]) for i in range(5)])
    Volume.objects.create(title="Loose")
    assert counters(a, b, empty) == [3, 2, 0]
    dumped = serializers.serialize(
        "json", [*Library.objects.all(), *Shelf.objects.all(), *Volume.objects.all()]
    )
    path = write_fixture(tmp_path, json.loads(dumped))
    Volume.objects.all().delete()
    Shelf.objects.all().delete()
    Library.objects.all().delete()

    call_command("loaddata", path, verbosity=0)

    assert counters(a, b, empty) == counts(a, b, empty) == [3, 2, 0]
