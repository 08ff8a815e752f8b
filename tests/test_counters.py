"""``touch=`` and ``counter_cache=``, kept by the database's triggers: the rows
after a write, the instances in memory, rolled-back writes, the guarded counter
column, a column two relations count into, rebuilds and drift.

The models (tests/models.py): ``Volume.shelf`` counts ``Shelf.volumes_count``
and touches ``Shelf.updated`` (its ``auto_now`` field); ``Label.shelf``, a
one-to-one, counts ``labels_count`` and touches the DateField ``checked_on``;
``Slip.shelf`` (touching) and ``Card.shelf`` (not) both count into
``slips_count``; ``Shelf.library`` touches ``Library.updated``, so a Volume's
write touches its Library too; ``Node.parent`` touches every ancestor.

Each test looks at the database afterwards: every counter equals ``COUNT(*)``
of its owners (:func:`assert_exact`), a touched timestamp is at least the time
taken before the write, an untouched one is still :data:`OLD`. A promise on the
statements a call sends is pinned with :func:`statements`. Every write path
(bulk, raw SQL, ``on_delete``, deferred keys...) is in test_counters_paths.py.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django import forms
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection, models, transaction
from django.test.utils import isolate_apps
from django.urls import path

from belongsto_ext import BelongsToField, counter_drift, install_triggers, rebuild_counters
from belongsto_ext.counters import counted_relations
from tests.factories import ShelfFactory, VolumeFactory
from tests.helpers import (
    COUNTED,
    OLD,
    OLD_DAY,
    aged,
    assert_exact,
    counts,
    db,
    failing_statements,
    library_and_shelves,
    memory_state,
    run,
    since,
    stamps,
    statements,
    touched_since,
    without_triggers,
)
from tests.models import Card, Label, Library, Node, Shelf, Slip, Volume

pytestmark = pytest.mark.django_db

# ------------------------------------------------------------------ helpers


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """A statement still running after ``seconds`` fails (a trigger that never
    ends, say) instead of hanging the run: PostgreSQL's statement_timeout for
    the test's transaction, SQLite's progress handler."""
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {int(seconds * 1000)}")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = 0")
        return
    deadline = time.monotonic() + seconds
    raw = connection.connection
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        yield
    finally:
        raw.set_progress_handler(None, 0)


def loaded(volume: Volume) -> Volume:
    """``volume`` re-read with its shelf and the shelf's library cached."""
    return Volume.objects.select_related("shelf__library").get(pk=volume.pk)


def with_library(shelf: Shelf) -> Shelf:
    return Shelf.objects.select_related("library").get(pk=shelf.pk)


def assert_memory_matches(shelf: Shelf) -> None:
    """The instance holds what its row holds, for every column the feature writes."""
    row = db(shelf)
    names = ["volumes_count", "labels_count", "slips_count", "updated", "checked_on"]
    assert [getattr(shelf, n) for n in names] == [getattr(row, n) for n in names]


# ---------------------------------------------------------- in memory
#
# After a save through an instance that caches its target, the target (and the
# targets it caches through touch= relations) gets the row's new counter and
# timestamps: one SELECT per model. Nothing cached, nothing read.

READ_BACK = [("SELECT", "tests_shelf"), ("SELECT", "tests_library")]


@pytest.mark.parametrize("write", ["insert", "rename", "move"])
def test_a_save_reads_the_cached_shelf_and_library_back(write: str) -> None:
    library, (a, b) = library_and_shelves()
    if write == "insert":
        shelf = with_library(a)
        volume = Volume(title="New", shelf=shelf)
        verb = "INSERT"
    else:
        volume = loaded(VolumeFactory(shelf=a))
        aged(a, library)
        shelf = volume.shelf
        if write == "rename":
            volume.title = "Renamed"
        else:
            shelf = with_library(b)
            volume.shelf = shelf
        verb = "UPDATE"
    start = since()
    with statements() as sent:
        volume.save()
    assert sent == [(verb, "tests_volume"), *READ_BACK]
    assert_exact()
    assert counts(a, b) == ([0, 1] if write == "move" else [1, 0])
    assert touched_since(start, shelf, library) == [True, True]
    assert volume.shelf is shelf
    assert shelf.volumes_count == 1
    assert_memory_matches(shelf)
    assert shelf.library.updated == db(library).updated >= start


@pytest.mark.parametrize("value", ["instance", "created"])
def test_set_and_create_read_the_new_shelf_back(value: str) -> None:
    library, (a, b) = library_and_shelves()
    volume = loaded(VolumeFactory(shelf=a))
    aged(a, library)
    shelf = with_library(b)
    start = since()
    with statements() as sent:
        if value == "instance":
            volume.set_shelf(shelf)
        else:
            shelf = volume.create_shelf(name="Made", library=library)
    made = [("INSERT", "tests_shelf"), ("SELECT", "tests_library")]  # its library touched
    if connection.features.has_select_for_update:
        # Where rows are locked, the volume's first: a concurrent move locks it
        # before the shelves' chain (tests/test_counters_postgres.py).
        made.insert(0, ("SELECT", "tests_volume"))
    assert sent == [*(made if value == "created" else []), ("UPDATE", "tests_volume"), *READ_BACK]
    assert_exact()
    assert counts(a, shelf) == [0, 1]
    assert touched_since(start, a, shelf, library) == [True, True, True]
    assert volume.shelf is shelf and shelf.volumes_count == 1
    assert_memory_matches(shelf)
    assert shelf.library.updated == db(library).updated


def test_a_cached_shelf_without_its_library_is_read_alone() -> None:
    _, (a,) = library_and_shelves(1)
    shelf = Shelf.objects.get(pk=a.pk)  # its library not cached
    volume = Volume(title="New", shelf=shelf)
    with statements() as sent:
        volume.save()
    assert sent == [("INSERT", "tests_volume"), ("SELECT", "tests_shelf")]
    assert shelf.volumes_count == 1
    assert_memory_matches(shelf)


@pytest.mark.parametrize(
    "how", ["save by key", "set key", "set none", "create by key", "unsaved set none"]
)
def test_nothing_cached_nothing_read(how: str) -> None:
    """The write alone: the target was never loaded, or the key assignment let it go."""
    library, (a, b) = library_and_shelves()
    volume = Volume.objects.get(pk=VolumeFactory(shelf=a).pk)
    aged(a, library)
    start = since()
    with statements() as sent:
        if how == "save by key":
            volume.shelf_id = b.pk
            volume.save()
        elif how == "set key":
            volume.set_shelf(b.pk)
        elif how == "set none":
            volume.set_shelf(None)
        elif how == "create by key":
            Volume.objects.create(title="New", shelf_id=b.pk)
        else:
            Volume(title="Loose").set_shelf(None)
    verb = "INSERT" if how in ("create by key", "unsaved set none") else "UPDATE"
    assert sent == [(verb, "tests_volume")]
    assert_exact()
    expected = {
        "save by key": [0, 1],
        "set key": [0, 1],
        "set none": [0, 0],
        "create by key": [1, 1],
        "unsaved set none": [1, 0],
    }
    assert counts(a, b) == expected[how]
    assert touched_since(start, a)[0] is (how in ("save by key", "set key", "set none"))


def test_a_label_reads_back_its_date_and_count() -> None:
    library, (a,) = library_and_shelves(1)
    shelf = with_library(a)
    label = Label(text="L", shelf=shelf)
    start = since()
    with statements() as sent:
        label.save()
    assert sent == [("INSERT", "tests_label"), *READ_BACK]
    assert (shelf.labels_count, shelf.checked_on) == (1, datetime.date.today())
    assert shelf.updated == OLD  # touch= names checked_on: not the auto_now field
    assert_memory_matches(shelf)
    assert shelf.library.updated == db(library).updated >= start
    assert_exact()


def test_the_cached_ancestors_of_a_node_are_read_back_in_one_select() -> None:
    root, a, b, leaf = tree(4)
    leaf = Node.objects.select_related("parent__parent__parent").get(pk=leaf.pk)
    start = since()
    with statements() as sent:
        leaf.save()
    assert sent == [("UPDATE", "tests_node"), ("SELECT", "tests_node")]
    cached = [leaf.parent.parent.parent, leaf.parent.parent, leaf.parent]
    assert [n.updated_at for n in cached] == stamps(root, a, b)
    assert all(n.updated_at >= start for n in cached)


def test_a_delete_updates_nothing_in_memory() -> None:
    """Documented: a delete receiver would keep QuerySet.delete() from being one
    statement; the cached shelf keeps the count it had, the row has the new one."""
    _, (a,) = library_and_shelves(1)
    volume = loaded(VolumeFactory(shelf=a))
    shelf = volume.shelf
    with statements() as sent:
        volume.delete()
    assert sent == [("DELETE", "tests_volume")]
    assert counts(a) == [0] and shelf.volumes_count == 1
    assert_exact()


# ------------------------------------------------------------------- touch


@pytest.mark.parametrize("write", ["insert", "rename", "queryset rename", "delete"])
def test_a_volume_write_touches_its_shelf_and_library(write: str) -> None:
    library, (a, b) = library_and_shelves()
    other_library, (c,) = library_and_shelves(1)
    volume = VolumeFactory(shelf=a) if write != "insert" else None
    aged(a, b, c, library, other_library)
    start = since()
    if volume is None:
        Volume.objects.create(title="New", shelf_id=a.pk)
    elif write == "rename":
        volume.title = "Renamed"
        volume.save()
    elif write == "queryset rename":
        assert Volume.objects.filter(pk=volume.pk).update(title="Renamed") == 1
    else:
        volume.delete()
    assert touched_since(start, a, library, b, c, other_library) == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert counts(a) == [0 if write == "delete" else 1]
    assert_exact()


def test_a_move_touches_both_shelves_and_both_libraries() -> None:
    old_library, (a,) = library_and_shelves(1)
    new_library, (b,) = library_and_shelves(1)
    volume = VolumeFactory(shelf=a)
    aged(a, b, old_library, new_library)
    start = since()
    volume.set_shelf(b)
    assert touched_since(start, a, b, old_library, new_library) == [True] * 4
    assert_exact()


def test_a_label_touches_checked_on_only() -> None:
    """Label.shelf touches the DateField checked_on, on every write of the label
    (a QuerySet.update of its text too), and counts 0 or 1."""
    library, (a, b) = library_and_shelves()
    label = Label.objects.create(text="A", shelf=a)
    aged(a, b, library)
    Label.objects.filter(pk=label.pk).update(text="B")
    row = db(a)
    assert (row.checked_on, row.updated) == (datetime.date.today(), OLD)
    assert db(b).checked_on == OLD_DAY
    label.set_shelf(b)
    assert counts(a, b, column="labels_count") == [0, 1]
    assert db(b).checked_on == datetime.date.today()
    label.delete()
    assert counts(a, b, column="labels_count") == [0, 0]
    assert_exact()


def test_a_card_counts_without_touching() -> None:
    """Card.shelf has counter_cache= and no touch=: the shelf's updated stays."""
    _, (a, b) = library_and_shelves()
    card = Card.objects.create(shelf=a)
    aged(a, b)
    card.set_shelf(b)
    Card.objects.update(note="renamed")
    assert counts(a, b, column="slips_count") == [0, 1]
    assert stamps(a, b) == [OLD, OLD]
    assert_exact()


def tree(depth: int) -> list[Node]:
    """A chain of ``depth`` nodes, the root first, each the parent of the next;
    every timestamp OLD."""
    nodes: list[Node] = []
    for i in range(depth):
        nodes.append(Node.objects.create(name=f"n{i}", parent=nodes[-1] if nodes else None))
    aged(*nodes)
    return nodes


def test_self_referential_touch_reaches_the_root_in_one_statement() -> None:
    """Saving a leaf touches every ancestor (Rails does too), in the leaf's own
    UPDATE; the leaf's siblings and children are left."""
    root, a, b, leaf = tree(4)
    sibling = Node.objects.create(name="sibling", parent=b)
    child = Node.objects.create(name="child", parent=leaf)
    aged(root, a, b, leaf, sibling, child)
    leaf = Node.objects.get(pk=leaf.pk)
    start = since()
    with statements() as sent:
        leaf.save()
    assert sent == [("UPDATE", "tests_node")]
    assert touched_since(start, root, a, b, leaf, sibling, child) == [
        *[True] * 3,
        True,  # the leaf's own auto_now
        False,
        False,
    ]


def test_self_referential_touch_of_a_move_reaches_both_roots() -> None:
    old_chain, new_chain = tree(3), tree(3)
    node = Node.objects.create(name="moving", parent=old_chain[-1])
    aged(*old_chain, *new_chain, node)
    start = since()
    node.set_parent(new_chain[-1])
    assert touched_since(start, *old_chain, *new_chain) == [True] * 6


@pytest.mark.parametrize("how", ["instance", "queryset"])
def test_deleting_a_subtree_touches_the_ancestors_left(how: str) -> None:
    """CASCADE through Node.parent: the subtree's rows go in one DELETE; the
    climb from them reaches the ancestors that stay, and nothing else."""
    root, a, b, leaf = tree(4)
    other = Node.objects.create(name="other", parent=root)
    aged(root, a, b, leaf, other)
    start = since()
    with time_limit(10):
        if how == "instance":
            b.delete()
        else:
            Node.objects.filter(pk=b.pk).delete()
    assert list(Node.objects.order_by("pk").values_list("name", flat=True)) == ["n0", "n1", "other"]
    assert touched_since(start, root, a, other) == [True, True, False]


@pytest.mark.parametrize("length", [1, 2, 3])
def test_self_referential_touch_ends_on_a_cycle(length: int) -> None:
    """A node its own ancestor: the climb stops where it began (no endless
    recursion on either database); every node of the cycle is touched."""
    cycle = tree(length)
    with time_limit(10):  # this UPDATE climbs the new cycle already
        Node.objects.filter(pk=cycle[0].pk).update(parent=cycle[-1])  # root -> ... -> root
    outside = Node.objects.create(name="outside")
    c = Node.objects.get(pk=Node.objects.create(name="c", parent=cycle[-1]).pk)
    aged(*cycle, outside, c)
    start = since()
    with time_limit(10), statements() as sent:
        c.save()
    assert sent == [("UPDATE", "tests_node")]
    assert touched_since(start, *cycle, c, outside) == [True] * (length + 1) + [False]


# ------------------------------------------------------------- transactions


def shelf_rows(*shelves: Shelf) -> list[dict[str, Any]]:
    return [Shelf.objects.values().get(pk=s.pk) for s in shelves]


def test_a_rolled_back_transaction_counts_and_touches_nothing() -> None:
    library, (a, b) = library_and_shelves()
    volume = loaded(VolumeFactory(shelf=a))
    aged(a, b, library)
    before = shelf_rows(a, b)
    with pytest.raises(RuntimeError), transaction.atomic():  # noqa: PT012 (the raise rolls the block back)
        volume.shelf = b
        volume.save()
        Volume.objects.create(title="Gone", shelf=b)
        Label.objects.create(text="Gone", shelf=a)
        Slip.objects.create(shelf=b)
        volume.set_shelf(a)
        Volume.objects.filter(shelf=a).delete()
        raise RuntimeError("caller gives up")
    assert shelf_rows(a, b) == before
    assert stamps(library) == [OLD]
    assert_exact()


@pytest.mark.parametrize(
    ("owner", "how"), [("new", "save"), ("existing", "save"), ("existing", "set")]
)
def test_a_write_retried_after_a_rollback_counts_once(owner: str, how: str) -> None:
    """The rolled-back write left the instance as it was after it (Django does
    not put it back): the retry writes the same key again and counts once. (A
    new owner's retry is a save(): after the rollback Django takes it for a
    saved row, and set_'s UPDATE of the key alone would find none.)"""
    _, (a, b) = library_and_shelves()
    volume = Volume(title="New") if owner == "new" else VolumeFactory(shelf=a)

    def write() -> None:
        if how == "set":
            volume.set_shelf(b)
        else:
            volume.shelf = b
            volume.save()

    with pytest.raises(RuntimeError), transaction.atomic():  # noqa: PT012
        write()
        raise RuntimeError("rolled back")
    assert counts(a, b) == [0 if owner == "new" else 1, 0]
    write()
    write()  # once more: the same key, no move
    assert counts(a, b) == [0, 1]
    assert Volume.objects.get().shelf_id == b.pk
    assert_exact()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("value", ["instance", "key", "created"])
def test_a_failing_owner_write_in_set_or_create_leaves_rows_and_memory(value: str) -> None:
    library, (a, b) = library_and_shelves()
    volume = loaded(VolumeFactory(shelf=a))
    aged(a, b, library)
    b = with_library(b)
    tables = [list(m._base_manager.order_by("pk").values()) for m in (Library, Shelf, Volume)]
    objs = [volume, volume.shelf, volume.shelf.library, b, b.library]
    memory = [memory_state(obj) for obj in objs]
    call: Any = (
        (lambda: volume.create_shelf(name="Made", library=b.library))
        if value == "created"
        else (lambda: volume.set_shelf(b if value == "instance" else b.pk))
    )
    fails = failing_statements(
        r'(UPDATE|INSERT INTO) "tests_volume"', "injected failure of the tests_volume write"
    )
    with connection.execute_wrapper(fails), pytest.raises(OperationalError):
        call()
    assert [list(m._base_manager.order_by("pk").values()) for m in (Library, Shelf, Volume)] == (
        tables
    )
    assert [memory_state(obj) for obj in objs] == memory
    assert volume.shelf is objs[1]
    assert_exact()


# ------------------------------------------------------ the guarded counter
#
# A write to a counter column from outside the counting triggers is replaced by
# COUNT(*) of the owner rows: the column belongs to the database.


def shelf_with_three_of_each() -> Shelf:
    shelf = ShelfFactory()
    for _ in range(3):
        VolumeFactory(shelf=shelf)
        Slip.objects.create(shelf=shelf)
    Label.objects.create(text="L", shelf=shelf)
    Card.objects.create(shelf=shelf)
    return shelf


EXPECTED = {"volumes_count": 3, "labels_count": 1, "slips_count": 4}


@pytest.mark.parametrize("column", list(COUNTED))
def test_a_stale_shelf_save_keeps_the_count(column: str) -> None:
    stale = ShelfFactory()
    shelf = Shelf.objects.get(pk=stale.pk)
    assert getattr(stale, column) == 0
    for _ in range(3):
        VolumeFactory(shelf=shelf)
        Slip.objects.create(shelf=shelf)
    Label.objects.create(text="L", shelf=shelf)
    Card.objects.create(shelf=shelf)
    stale.name = "Renamed"
    stale.save()  # writes its 0 back
    assert getattr(db(stale), column) == EXPECTED[column]
    assert db(stale).name == "Renamed"
    assert_exact()


@pytest.mark.parametrize("column", list(COUNTED))
@pytest.mark.parametrize("how", ["bulk_update", "queryset update", "update_fields", "F()"])
def test_a_direct_write_of_the_counter_is_replaced_by_the_count(column: str, how: str) -> None:
    shelf = shelf_with_three_of_each()
    if how == "bulk_update":
        setattr(shelf, column, 1000)
        Shelf.objects.bulk_update([shelf], [column])
    elif how == "queryset update":
        Shelf.objects.filter(pk=shelf.pk).update(**{column: 1000})
    elif how == "update_fields":
        setattr(shelf, column, 0)
        shelf.save(update_fields=[column])
    else:
        Shelf.objects.filter(pk=shelf.pk).update(**{column: models.F(column) + 7})
    assert getattr(db(shelf), column) == EXPECTED[column]
    assert_exact()


@pytest.mark.parametrize("column", list(COUNTED))
def test_a_new_shelf_starts_at_zero_whatever_it_is_given(column: str) -> None:
    shelf = Shelf.objects.create(name="New", **{column: 5})
    assert getattr(db(shelf), column) == 0
    many = Shelf.objects.bulk_create([Shelf(name=str(i), **{column: 9}) for i in range(3)])
    assert [getattr(db(s), column) for s in many] == [0, 0, 0]
    assert_exact()


def test_the_counters_are_left_out_of_a_model_form() -> None:
    class ShelfForm(forms.ModelForm):
        class Meta:
            model = Shelf
            fields = "__all__"  # noqa: DJ007 (what the counters must stay out of)

    shelf = shelf_with_three_of_each()
    data = {"name": "Posted", "checked_on": "2020-02-02", "library": str(shelf.library_id)}
    form = ShelfForm({**data, "volumes_count": "1000"}, instance=shelf)
    assert set(form.fields) == {"name", "checked_on", "library"}
    assert form.is_valid(), form.errors
    form.save()
    row = db(shelf)
    assert (row.name, row.volumes_count, row.labels_count, row.slips_count) == ("Posted", 3, 1, 4)
    assert_exact()


# The admin of tests/ (tests/ecosystem/admin.py) has no Shelf: this module's own site.
site = admin.AdminSite(name="counters")
site.register(Shelf)
urlpatterns = [path("admin/", site.urls)]


@pytest.mark.urls(__name__)
def test_the_admin_change_form_has_no_counter_and_cannot_set_one(admin_client: Any) -> None:
    shelf = shelf_with_three_of_each()
    url = f"/admin/tests/shelf/{shelf.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'name="name"' in page
    assert not re.search(r'name="(volumes|labels|slips)_count"', page)
    response = admin_client.post(
        url,
        {
            "name": "Posted",
            "checked_on": "2020-02-02",
            "library": str(shelf.library_id),
            "volumes_count": "1000",
            "labels_count": "1000",
            "slips_count": "1000",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    row = db(shelf)
    assert (row.name, row.volumes_count, row.labels_count, row.slips_count) == ("Posted", 3, 1, 4)
    assert_exact()


# ------------------------------------------------------ one column, two relations


def test_slips_and_cards_count_into_one_column() -> None:
    _, (a, b) = library_and_shelves()
    slips = [Slip.objects.create(shelf=a) for _ in range(2)]
    cards = [Card.objects.create(shelf=a) for _ in range(3)]
    assert counts(a, b, column="slips_count") == [5, 0]
    slips[0].set_shelf(b)
    cards[0].set_shelf(b)
    Card.objects.filter(pk=cards[1].pk).update(shelf=b)
    assert counts(a, b, column="slips_count") == [2, 3]
    Slip.objects.all().delete()
    assert counts(a, b, column="slips_count") == [1, 2]
    assert_exact()


@pytest.mark.parametrize("model", [Slip, Card], ids=lambda m: m.__name__)
def test_rebuilding_either_relation_of_a_shared_column_gives_the_sum(
    model: type[models.Model], django_assert_num_queries: Any
) -> None:
    _, (a, b) = library_and_shelves()
    with without_triggers(Shelf, Slip, Card):
        Slip.objects.bulk_create([Slip(shelf=a), Slip(shelf=a), Slip(shelf=b)])
        Card.objects.bulk_create([Card(shelf=a), Card(shelf=b), Card(shelf=b)])
        Shelf.objects.filter(pk=b.pk).update(slips_count=9)
        assert counts(a, b, column="slips_count") == [0, 9]
        assert sorted(counter_drift(model, "shelf")) == [(a.pk, 0, 3), (b.pk, 9, 3)]
        total = Shelf.objects.count()
        with django_assert_num_queries(1):
            assert rebuild_counters(model, "shelf") == total
        assert counts(a, b, column="slips_count") == [3, 3]
        assert list(counter_drift(Slip, "shelf")) == list(counter_drift(Card, "shelf")) == []
    assert_exact()


# ----------------------------------------------------------- rebuild and drift


def test_rebuild_counters_mends_raw_writes_that_bypassed_the_triggers(
    django_assert_num_queries: Any,
) -> None:
    _, (a, b, empty) = library_and_shelves(3)
    with without_triggers(Shelf, Volume):
        volumes = Volume.objects.bulk_create([Volume(title=str(i), shelf=a) for i in range(3)])
        Volume.objects.filter(pk=volumes[0].pk).update(shelf=b)
        Shelf.objects.filter(pk=empty.pk).update(volumes_count=7)
        assert counts(a, b, empty) == [0, 0, 7]
    with django_assert_num_queries(1):
        updated = rebuild_counters(Volume, "shelf")
    assert updated == Shelf.objects.count()
    assert counts(a, b, empty) == [2, 1, 0]
    assert stamps(a, b, empty) == [OLD] * 3  # a rebuild counts, it does not touch
    assert_exact()


def test_counter_drift_reports_the_rows_out_of_step_in_batches(
    django_assert_num_queries: Any,
) -> None:
    _, shelves = library_and_shelves(5)
    for shelf in shelves[:3]:
        VolumeFactory(shelf=shelf)
    assert list(counter_drift(Volume, "shelf")) == []
    with without_triggers(Shelf, Volume):
        Shelf.objects.filter(pk__in=[shelves[0].pk, shelves[4].pk]).update(volumes_count=5)
        Volume.objects.filter(shelf=shelves[2]).delete()
        expected = [(shelves[0].pk, 5, 1), (shelves[2].pk, 1, 0), (shelves[4].pk, 5, 0)]
        # One SELECT per batch (2 rows, 2 rows, 1 row): a short batch is the last.
        with django_assert_num_queries(3):
            assert list(counter_drift(Volume, "shelf", batch_size=2)) == expected
        with django_assert_num_queries(1):
            assert list(counter_drift(Volume, "shelf")) == expected
    rebuild_counters(Volume, "shelf")
    assert list(counter_drift(Volume, "shelf", batch_size=1)) == []
    assert_exact()


@pytest.mark.parametrize("function", [rebuild_counters, counter_drift])
def test_rebuild_and_drift_refuse_a_relation_without_a_counter(function: Any) -> None:
    with pytest.raises(TypeError, match=r"Shelf\.library is not a BelongsTo field with counter"):
        list(function(Shelf, "library") or [])


def _drift() -> tuple[Shelf, Shelf]:
    """Two shelves with owners of every kind; the caller sets their counters off
    with Shelf's triggers (the guard) dropped."""
    _, (a, b) = library_and_shelves()
    VolumeFactory.create_batch(2, shelf=a)
    Label.objects.create(text="L", shelf=b)
    Slip.objects.create(shelf=b)
    Card.objects.create(shelf=b)
    return a, b


def test_command_rebuilds_every_counted_relation(django_assert_num_queries: Any) -> None:
    a, b = _drift()
    out = io.StringIO()
    relations = [f"{m._meta.label}.{f.name}" for m, f in counted_relations()]
    assert {"tests.Volume.shelf", "tests.Label.shelf", "tests.Slip.shelf", "tests.Card.shelf"} <= (
        set(relations)
    )
    with without_triggers(Shelf):
        Shelf.objects.update(volumes_count=9, labels_count=9, slips_count=9)
        with django_assert_num_queries(len(relations)):  # one UPDATE per relation
            call_command("rebuild_counters", stdout=out)
    assert [(s.volumes_count, s.labels_count, s.slips_count) for s in (db(a), db(b))] == [
        (2, 0, 0),
        (0, 1, 2),
    ]
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == [f"Rebuilt {r}" for r in relations]
    assert "Rebuilt tests.Volume.shelf: 2 tests.Shelf row(s) updated (volumes_count)." in lines
    assert "Rebuilt tests.Label.shelf: 2 tests.Shelf row(s) updated (labels_count)." in lines
    assert "Rebuilt tests.Card.shelf: 2 tests.Shelf row(s) updated (slips_count)." in lines
    assert_exact()


@isolate_apps("tests")
def test_command_skips_models_outside_the_app_registry() -> None:
    """A model built in isolation (no table) is no relation of the project."""

    class Stray(models.Model):
        shelf = BelongsToField(
            Shelf, models.CASCADE, related_name="+", counter_cache="volumes_count"
        )

        class Meta:
            app_label = "tests"

    assert Stray not in [model for model, _ in counted_relations()]
    call_command("rebuild_counters", verbosity=0)  # no "no such table"


def test_command_rebuilds_the_named_relations_only() -> None:
    a, b = _drift()
    out = io.StringIO()
    with without_triggers(Shelf):
        Shelf.objects.update(volumes_count=9, labels_count=9, slips_count=9)
        call_command("rebuild_counters", "tests.Label.shelf", stdout=out, verbosity=0)
    assert out.getvalue() == ""
    assert [(s.volumes_count, s.labels_count, s.slips_count) for s in (db(a), db(b))] == [
        (9, 0, 9),
        (9, 1, 9),
    ]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("tests.Volume", "expected app_label.Model.field"),
        ("tests.Volume.shelf.extra", "expected app_label.Model.field"),
        ("nope.Volume.shelf", "No installed app with label 'nope'"),
        ("tests.Nope.shelf", "App 'tests' doesn't have a 'Nope' model"),
        ("tests.Volume.nope", "Volume has no field named 'nope'"),
        ("tests.Volume.title", "is not a BelongsToField or BelongsToOneField with counter_cache"),
        ("tests.Shelf.library", "is not a BelongsToField or BelongsToOneField with counter_cache"),
    ],
)
def test_command_refuses_a_bad_argument_before_writing(
    argument: str, message: str, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0), pytest.raises(CommandError) as excinfo:
        call_command("rebuild_counters", "tests.Volume.shelf", argument)
    assert repr(argument) in str(excinfo.value) and message in str(excinfo.value)


@pytest.mark.django_db(databases=["default", "other"])
def test_command_database_option() -> None:
    shelf = Shelf.objects.using("other").create(name="Elsewhere")
    Volume.objects.using("other").create(title="V", shelf=shelf)
    assert Shelf.objects.using("other").get().volumes_count == 1  # other has its triggers
    here = ShelfFactory()
    with without_triggers(Shelf, using="other"), without_triggers(Shelf):
        Shelf.objects.using("other").update(volumes_count=5)
        Shelf.objects.filter(pk=here.pk).update(volumes_count=5)
        call_command("rebuild_counters", "tests.Volume.shelf", database="other", verbosity=0)
        assert Shelf.objects.using("other").get().volumes_count == 1
        assert counts(here) == [5]  # default's rows are left alone


# -------------------------------------------------------------- inheritance


@isolate_apps("tests")
def test_a_proxy_of_the_owner_counts_too() -> None:
    class VolumeProxy(Volume):
        class Meta:
            proxy = True
            app_label = "tests"

    _, (a, b) = library_and_shelves()
    a = with_library(a)
    proxy = VolumeProxy(title="P", shelf=a)
    with statements() as sent:
        proxy.save()
    assert sent == [("INSERT", "tests_volume"), *READ_BACK]  # the proxy reads back too
    assert counts(a) == [1] and a.volumes_count == 1
    proxy.set_shelf(b)
    assert counts(a, b) == [0, 1]
    proxy.delete()
    assert counts(a, b) == [0, 0]
    assert_exact()


@pytest.mark.django_db(transaction=True)
@isolate_apps("tests")
def test_a_multi_table_child_of_the_owner_counts_once() -> None:
    """The relation lives on the parent's table: its triggers count the child's
    rows once, whatever the child's own table does."""

    class Hardcover(Volume):
        binding = models.CharField(max_length=20, default="cloth")

        class Meta:
            app_label = "tests"

    with connection.schema_editor() as editor:
        editor.create_model(Hardcover)
    try:
        assert install_triggers(Hardcover) == []  # nothing of its own
        _, (a, b) = library_and_shelves()
        a = with_library(a)
        first = Hardcover(title="H", shelf=a)
        first.save()
        assert a.volumes_count == 1  # read back through the child's post_save
        second = Hardcover.objects.create(title="H2", shelf=a)
        assert counts(a) == [2]
        first.set_shelf(b)
        assert counts(a, b) == [1, 1]
        first.delete()
        assert counts(a, b) == [1, 0]
        second.delete(keep_parents=True)  # the Volume row stays, and is counted
        assert counts(a) == [1]
        Hardcover.objects.create(title="H3", shelf=b)
        Hardcover.objects.all().delete()
        assert counts(a, b) == [1, 0]
        assert_exact()
    finally:
        # The child's rows first: Volume's collector knows no model of this registry.
        Hardcover.objects.all().delete()
        Volume.objects.all().delete()
        with connection.schema_editor() as editor:
            editor.delete_model(Hardcover)


# -------------------------------------------------------------------- async


@pytest.mark.django_db(transaction=True)
def test_async_set_and_create_count_touch_and_read_back() -> None:
    library, (a, b) = library_and_shelves()
    volume = loaded(VolumeFactory(shelf=a))
    aged(a, b, library)
    b = with_library(b)
    start = since()

    async def main() -> Shelf:
        await volume.aset_shelf(b)
        return await volume.acreate_shelf(name="Async", library=library)

    created = run(main)
    assert counts(a, b, created) == [0, 0, 1]
    assert touched_since(start, a, b, library) == [True, True, True]
    assert b.volumes_count == 1  # read back when it was set, before it was left
    assert created.volumes_count == 1 and volume.shelf is created
    assert_memory_matches(created)
    assert_exact()
