"""``touch=`` and ``counter_cache=``: every write of an owner moves its targets'
counters and timestamps in one UPDATE, in the database and in memory.

The models (tests/models.py): ``Volume.shelf`` counts ``Shelf.volumes_count``
and touches ``Shelf.updated`` (its ``auto_now`` field); ``Label.shelf``, a
one-to-one, counts ``labels_count`` and touches the DateField ``checked_on``;
``Shelf.library`` touches ``Library.updated``, so a Volume's write touches its
Library too. Each test pins the statements a call sends (transaction control
left out), then checks the rows and the instances in memory.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import re
from collections.abc import Iterator
from typing import Any

import factory
import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, OperationalError, connection, connections, models, transaction
from django.test.utils import CaptureQueriesContext, isolate_apps

from belongsto_ext import BelongsToField, rebuild_counters
from belongsto_ext.counters import counted_relations
from tests.helpers import CONTROL, memory_state, run
from tests.models import Label, Library, Node, Shelf, Volume

pytestmark = pytest.mark.django_db

# Timestamps before any write a test makes, so that a touch shows.
OLD = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
OLD_DAY = datetime.date(2000, 1, 1)


class LibraryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Library

    name = factory.Sequence(lambda n: f"Library {n}")


class ShelfFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shelf

    name = factory.Sequence(lambda n: f"Shelf {n}")
    library = factory.SubFactory(LibraryFactory)


class VolumeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Volume

    title = factory.Sequence(lambda n: f"Volume {n}")


# ------------------------------------------------------------------ helpers


@contextlib.contextmanager
def statements(alias: str = "default") -> Iterator[list[tuple[str, str]]]:
    """``[(verb, table), ...]`` for the statements sent to ``alias`` in the block,
    transaction control left out; ``last_sql`` holds their SQL."""
    out: list[tuple[str, str]] = []
    with CaptureQueriesContext(connections[alias]) as ctx:
        yield out
    last_sql[:] = []
    for query in ctx.captured_queries:
        sql = query["sql"]
        verb = sql.split(None, 1)[0].upper()
        if verb in CONTROL:
            continue
        table = re.search(r'(?:INSERT INTO|UPDATE|DELETE FROM|FROM)\s+"?(\w+)"?', sql)
        out.append((verb, table[1] if table else ""))
        last_sql.append(sql)


last_sql: list[str] = []

# What one write of a counted, touched Volume sends after its own statement.
TOUCHES = [("UPDATE", "tests_shelf"), ("UPDATE", "tests_library")]


def aged(*objs: models.Model) -> None:
    """Set the rows' (and the instances') timestamps to OLD, bypassing auto_now."""
    for obj in objs:
        values: dict[str, Any] = {"updated": OLD}
        if isinstance(obj, Shelf):
            values["checked_on"] = OLD_DAY
        type(obj)._base_manager.filter(pk=obj.pk).update(**values)
        for name, value in values.items():
            setattr(obj, name, value)


def db(obj: models.Model) -> Any:
    """The row of ``obj`` as the database holds it now."""
    return type(obj)._base_manager.get(pk=obj.pk)


def counts(*shelves: Shelf) -> list[int]:
    return [db(shelf).volumes_count for shelf in shelves]


def touched(obj: models.Model) -> bool:
    return bool(db(obj).updated > OLD)


def library_and_shelves(n: int = 2) -> tuple[Library, list[Shelf]]:
    library = LibraryFactory()
    shelves = ShelfFactory.create_batch(n, library=library)
    aged(library, *shelves)
    return library, shelves


def loaded(volume: Volume) -> Volume:
    """``volume`` re-read with its shelf and the shelf's library cached."""
    return Volume.objects.select_related("shelf__library").get(pk=volume.pk)


def assert_memory_matches(shelf: Shelf) -> None:
    """The instance holds what its row holds, for every column the feature writes."""
    row = db(shelf)
    assert (shelf.volumes_count, shelf.labels_count) == (row.volumes_count, row.labels_count)
    assert (shelf.updated, shelf.checked_on) == (row.updated, row.checked_on)


# ------------------------------------------------------------------- insert


def test_insert_with_a_key_counts_and_touches_in_one_update() -> None:
    library, (shelf,) = library_and_shelves(1)
    shelf = Shelf.objects.select_related("library").get(pk=shelf.pk)
    volume = Volume(title="New", shelf=shelf)
    with statements() as sent:
        volume.save()
    assert sent == [("INSERT", "tests_volume"), *TOUCHES]
    assert "volumes_count" in last_sql[1] and "updated" in last_sql[1]  # one UPDATE for both
    assert counts(shelf) == [1]
    assert touched(shelf) and touched(library)
    # The cached target and the library it caches hold the rows' new values.
    assert volume.shelf is shelf and shelf.volumes_count == 1
    assert_memory_matches(shelf)
    assert shelf.library.updated == db(library).updated


def test_insert_with_a_null_key_sends_nothing_more(django_assert_num_queries: Any) -> None:
    _, (shelf,) = library_and_shelves(1)
    with django_assert_num_queries(1):
        Volume.objects.create(title="Loose")
    with django_assert_num_queries(1):
        Volume(title="Loose", shelf=None).save()
    assert counts(shelf) == [0] and not touched(shelf)


# ------------------------------------------------------------------- delete


def test_delete_counts_down_and_touches() -> None:
    library, (shelf,) = library_and_shelves(1)
    volume = loaded(VolumeFactory(shelf=shelf))
    aged(library, shelf)
    cached = volume.shelf
    with statements() as sent:
        volume.delete()
    assert sent == [("DELETE", "tests_volume"), *TOUCHES]
    assert counts(shelf) == [0]
    assert touched(shelf) and touched(library)
    assert cached.volumes_count == 0
    assert_memory_matches(cached)


def test_queryset_delete_counts_down_each_row() -> None:
    """Django's collector sends post_delete for every row it deletes."""
    _, (a, b) = library_and_shelves()
    VolumeFactory.create_batch(3, shelf=a)
    VolumeFactory(shelf=b)
    assert counts(a, b) == [3, 1]
    Volume.objects.filter(shelf=a).delete()
    assert counts(a, b) == [0, 1]


def test_deleting_a_library_cascades_through_shelves_and_volumes() -> None:
    """The owner deleted through its own target's cascade: nothing fails, nothing left."""
    library, (a, b) = library_and_shelves()
    VolumeFactory.create_batch(2, shelf=a)
    other = ShelfFactory()
    kept = VolumeFactory(shelf=other)
    library.delete()
    assert not Shelf.objects.filter(pk__in=[a.pk, b.pk]).exists()
    assert list(Volume.objects.all()) == [kept]
    assert counts(other) == [1]


def test_deleting_a_deferred_key_counts_down_through_the_row() -> None:
    """The key was never loaded: the UPDATE finds it with a subquery, before the DELETE."""
    library, (shelf,) = library_and_shelves(1)
    volume = VolumeFactory(shelf=shelf)
    aged(library, shelf)
    deferred = Volume.objects.only("title").get(pk=volume.pk)
    with statements() as sent:
        deferred.delete()
    assert sent == [*TOUCHES, ("DELETE", "tests_volume")]
    assert counts(shelf) == [0] and touched(shelf) and touched(library)


# --------------------------------------------------------------------- save


def test_save_moving_the_key_counts_both_targets_in_one_update() -> None:
    library, (a, b) = library_and_shelves()
    volume = loaded(VolumeFactory(shelf=a))
    aged(library, a, b)
    b = Shelf.objects.select_related("library").get(pk=b.pk)
    volume.shelf = b
    with statements() as sent:
        volume.save()
    assert sent == [("UPDATE", "tests_volume"), *TOUCHES]
    shelf_update = last_sql[1]
    assert "volumes_count" in shelf_update and "updated" in shelf_update
    assert counts(a, b) == [0, 1]
    assert touched(a) and touched(b) and touched(library)
    assert b.volumes_count == 1  # the cached target got the delta
    assert_memory_matches(b)
    assert b.library.updated == db(library).updated


def test_save_leaving_the_key_touches_without_counting() -> None:
    library, (shelf,) = library_and_shelves(1)
    volume = loaded(VolumeFactory(shelf=shelf))
    aged(library, shelf)
    cached = volume.shelf
    volume.title = "Renamed"
    with statements() as sent:
        volume.save()
    assert sent == [("UPDATE", "tests_volume"), *TOUCHES]
    assert "volumes_count" not in last_sql[1]
    assert counts(shelf) == [1] and touched(shelf) and touched(library)
    assert cached.volumes_count == 1
    assert_memory_matches(cached)


def test_save_with_the_same_key_as_a_string_counts_nothing() -> None:
    """``shelf_id = "5"`` on a row holding 5 moves nothing."""
    _, (shelf,) = library_and_shelves(1)
    volume = Volume.objects.get(pk=VolumeFactory(shelf=shelf).pk)
    volume.shelf_id = str(shelf.pk)  # type: ignore[assignment]
    volume.save()
    assert counts(shelf) == [1] and touched(shelf)


def test_save_with_update_fields_leaving_the_key_out_touches_the_rows_target() -> None:
    """The key changed in memory only: the row, and so the counters, keep the old one."""
    library, (a, b) = library_and_shelves()
    volume = loaded(VolumeFactory(shelf=a))
    aged(library, a, b)
    volume.shelf = b
    with statements() as sent:
        volume.save(update_fields=["title"])
    assert sent == [("UPDATE", "tests_volume"), *TOUCHES]
    assert counts(a, b) == [1, 0]
    assert touched(a) and not touched(b)
    assert (b.volumes_count, b.updated) == (0, OLD)  # b is not the row's target
    # The key is still known as changed: saving it now moves it.
    volume.save()
    assert counts(a, b) == [0, 1]
    assert b.volumes_count == 1


def test_save_of_a_deferred_key_touches_through_the_row() -> None:
    library, (shelf,) = library_and_shelves(1)
    volume = VolumeFactory(shelf=shelf)
    aged(library, shelf)
    deferred = Volume.objects.only("title").get(pk=volume.pk)
    deferred.title = "Renamed"
    with statements() as sent:
        deferred.save()
    assert sent == [("UPDATE", "tests_volume"), *TOUCHES]
    assert counts(shelf) == [1] and touched(shelf) and touched(library)
    assert "shelf_id" not in Volume.objects.only("title").get(pk=volume.pk).__dict__


def test_loaddata_raw_saves_count_nothing() -> None:
    _, (shelf,) = library_and_shelves(1)
    volume = Volume(title="Fixture", shelf=shelf)
    volume.save_base(raw=True)
    assert counts(shelf) == [0] and not touched(shelf)


# ------------------------------------------------------------- set / create


@pytest.mark.parametrize("how", ["instance", "key"])
def test_set_moves_the_counters_in_one_update(how: str) -> None:
    library, (a, b) = library_and_shelves()
    volume = loaded(VolumeFactory(shelf=a))
    aged(library, a, b)
    with statements() as sent:
        volume.set_shelf(b if how == "instance" else b.pk)
    assert sent == [("UPDATE", "tests_volume"), *TOUCHES]
    assert counts(a, b) == [0, 1]
    assert touched(a) and touched(b) and touched(library)
    if how == "instance":
        assert volume.shelf is b and b.volumes_count == 1
        assert_memory_matches(b)


def test_set_none_counts_the_old_target_down() -> None:
    library, (a,) = library_and_shelves(1)
    volume = loaded(VolumeFactory(shelf=a))
    aged(library, a)
    with statements() as sent:
        volume.set_shelf(None)
    assert sent == [("UPDATE", "tests_volume"), *TOUCHES]
    assert counts(a) == [0] and touched(a) and touched(library)


def test_set_to_the_same_target_touches_without_counting() -> None:
    library, (a,) = library_and_shelves(1)
    volume = loaded(VolumeFactory(shelf=a))
    aged(library, a)
    with statements() as sent:
        volume.set_shelf(a.pk)
    assert sent == [("UPDATE", "tests_volume"), *TOUCHES]
    assert "volumes_count" not in last_sql[1]
    assert counts(a) == [1] and touched(a)


def test_set_without_save_then_save() -> None:
    library, (a, b) = library_and_shelves()
    volume = loaded(VolumeFactory(shelf=a))
    aged(library, a, b)
    with statements() as sent:
        volume.set_shelf(b, save=False)
    assert sent == []
    assert counts(a, b) == [1, 0] and not touched(b)
    with statements() as sent:
        volume.save()
    assert sent == [("UPDATE", "tests_volume"), *TOUCHES]
    assert counts(a, b) == [0, 1] and b.volumes_count == 1


def test_set_on_an_unsaved_owner_counts_its_insert() -> None:
    _, (a,) = library_and_shelves(1)
    volume = Volume(title="New")
    with statements() as sent:
        volume.set_shelf(a)
    assert sent == [("INSERT", "tests_volume"), *TOUCHES]
    assert counts(a) == [1] and a.volumes_count == 1


def test_create_counts_the_new_target() -> None:
    library, (a,) = library_and_shelves(1)
    volume = loaded(VolumeFactory(shelf=a))
    aged(library, a)
    with statements() as sent:
        created = volume.create_shelf(name="Made", library=library)
    # The new shelf's own insert touches its library, then the volume's write.
    assert sent == [
        ("INSERT", "tests_shelf"),
        ("UPDATE", "tests_library"),
        ("UPDATE", "tests_volume"),
        *TOUCHES,
    ]
    assert counts(a, created) == [0, 1]
    assert created.volumes_count == 1 and volume.shelf is created
    assert_memory_matches(created)
    assert touched(a) and touched(library)


# ----------------------------------------------------------- touch targets


def test_touch_names_a_date_field_on_a_one_to_one() -> None:
    """Label.shelf touches checked_on (a DateField) only, and counts 0 or 1."""
    library, (a, b) = library_and_shelves()
    a = Shelf.objects.select_related("library").get(pk=a.pk)
    label = Label(text="A", shelf=a)
    with statements() as sent:
        label.save()
    assert sent == [("INSERT", "tests_label"), *TOUCHES]
    row = db(a)
    assert row.labels_count == 1 and row.checked_on == datetime.date.today()
    assert row.updated == OLD  # not its auto_now field: touch= names the column
    assert touched(library)
    assert (a.labels_count, a.checked_on) == (1, row.checked_on)
    assert a.library.updated == db(library).updated

    label.set_shelf(b)
    assert [db(a).labels_count, db(b).labels_count] == [0, 1]
    assert db(b).checked_on == datetime.date.today()
    label.delete()
    assert db(b).labels_count == 0


def test_touch_chain_reaches_the_library_of_both_shelves() -> None:
    old_library, (a,) = library_and_shelves(1)
    new_library, (b,) = library_and_shelves(1)
    volume = loaded(VolumeFactory(shelf=a))
    aged(old_library, new_library, a, b)
    volume.set_shelf(b)
    assert touched(old_library) and touched(new_library)


def tree(depth: int) -> list[Node]:
    """A chain of ``depth`` nodes, the root first, each the parent of the next;
    their timestamps set to OLD."""
    nodes: list[Node] = []
    for i in range(depth):
        nodes.append(Node.objects.create(name=f"n{i}", parent=nodes[-1] if nodes else None))
    Node.objects.update(updated_at=OLD)
    return nodes


def stamps(nodes: list[Node]) -> list[bool]:
    """Which nodes' rows were touched since :func:`tree`."""
    rows = Node.objects.in_bulk([n.pk for n in nodes])
    return [rows[n.pk].updated_at > OLD for n in nodes]


def test_self_referential_touch_reaches_the_root() -> None:
    """Saving a leaf touches every ancestor (Rails does too), one UPDATE a level,
    each level's keys read first; the leaf's siblings and children are left."""
    root, a, b, leaf = tree(4)
    sibling = Node.objects.create(name="sibling", parent=b)
    child = Node.objects.create(name="child", parent=leaf)
    Node.objects.filter(pk__in=[sibling.pk, child.pk]).update(updated_at=OLD)
    leaf = Node.objects.get(pk=leaf.pk)
    with statements() as sent:
        leaf.save()
    assert stamps([root, a, b, leaf, sibling, child]) == [True, True, True, True, False, False]
    assert sent == [
        ("UPDATE", "tests_node"),  # the leaf
        ("UPDATE", "tests_node"),  # its parent b
        *[("SELECT", "tests_node"), ("UPDATE", "tests_node")] * 2,  # a, then the root
        ("SELECT", "tests_node"),  # the root's parent: none, the end
    ]


def test_self_referential_touch_of_a_move_reaches_both_roots() -> None:
    old_chain, new_chain = tree(3), tree(3)
    node = Node.objects.create(name="moving", parent=old_chain[-1])
    Node.objects.update(updated_at=OLD)
    node.set_parent(new_chain[-1])
    assert stamps([*old_chain, *new_chain]) == [True] * 6


def test_self_referential_touch_ends_on_a_cycle() -> None:
    a, b = tree(2)
    Node.objects.filter(pk=a.pk).update(parent=b)  # a -> b -> a
    c = Node.objects.create(name="c", parent=b)
    Node.objects.update(updated_at=OLD)
    with statements() as sent:
        c.save()
    assert stamps([a, b, c]) == [True] * 3
    assert sent == [
        ("UPDATE", "tests_node"),  # c
        ("UPDATE", "tests_node"),  # its parent b
        *[("SELECT", "tests_node"), ("UPDATE", "tests_node")] * 2,  # a, then b as a's parent
        ("SELECT", "tests_node"),  # b's parent a: touched already, the end
    ]


def test_self_referential_touch_reaches_the_ancestors_in_memory() -> None:
    root, a, b, leaf = tree(4)
    leaf = Node.objects.select_related("parent__parent__parent").get(pk=leaf.pk)
    leaf.save()
    cached = [leaf.parent.parent.parent, leaf.parent.parent, leaf.parent]
    assert [n.updated_at for n in cached] == [db(n).updated_at for n in (root, a, b)]
    assert all(n.updated_at > OLD for n in cached)


# ------------------------------------------------------------ transactions


def test_a_rolled_back_transaction_leaves_no_touch_and_no_count() -> None:
    library, (a, b) = library_and_shelves()
    volume = loaded(VolumeFactory(shelf=a))
    aged(library, a, b)
    before = [Shelf.objects.values().get(pk=s.pk) for s in (a, b)]
    with pytest.raises(RuntimeError), transaction.atomic():  # noqa: PT012 (the raise rolls the block back)
        volume.shelf = b
        volume.save()
        Volume.objects.create(title="Gone", shelf=b)
        volume.set_shelf(a)
        raise RuntimeError("caller gives up")
    assert [Shelf.objects.values().get(pk=s.pk) for s in (a, b)] == before
    assert not touched(library)


def _failing(table: str) -> Any:
    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.startswith(f'UPDATE "{table}"'):
            raise OperationalError(f"injected failure of the {table} UPDATE")
        return execute(sql, params, many, context)

    return wrapper


@pytest.mark.parametrize("table", ["tests_shelf", "tests_library"])
def test_a_failing_touch_in_set_restores_everything(table: str) -> None:
    library, (a, b) = library_and_shelves()
    volume = loaded(VolumeFactory(shelf=a))
    aged(library, a, b)
    b = Shelf.objects.select_related("library").get(pk=b.pk)
    rows = [Shelf.objects.values().get(pk=s.pk) for s in (a, b)]
    memory = [memory_state(obj) for obj in (volume, volume.shelf, b, b.library)]
    with connection.execute_wrapper(_failing(table)), pytest.raises(OperationalError):
        volume.set_shelf(b)
    assert Volume.objects.get(pk=volume.pk).shelf_id == a.pk
    assert [Shelf.objects.values().get(pk=s.pk) for s in (a, b)] == rows
    assert not touched(library)
    assert [memory_state(obj) for obj in (volume, volume.shelf, b, b.library)] == memory


def test_a_failing_ancestor_touch_in_set_restores_everything() -> None:
    """The last UPDATE of the chain fails: no row and no cached ancestor keeps a
    touch, and the node keeps its parent."""
    root, _, b = tree(3)
    node = Node.objects.create(name="moving", parent=root)
    Node.objects.update(updated_at=OLD)
    node = Node.objects.select_related("parent").get(pk=node.pk)
    b = Node.objects.select_related("parent__parent").get(pk=b.pk)
    rows = list(Node.objects.order_by("pk").values())
    cached = [node, node.parent, b, b.parent, b.parent.parent]
    memory = [memory_state(obj) for obj in cached]
    updates = 0

    def fail_the_last_update(execute: Any, sql: str, params: Any, many: bool, ctx: Any) -> Any:
        nonlocal updates
        if sql.startswith("UPDATE"):
            updates += 1
            if updates == 4:  # the node; root and b; a; the root again, as b's ancestor
                raise OperationalError("injected failure of the last touch")
        return execute(sql, params, many, ctx)

    with connection.execute_wrapper(fail_the_last_update), pytest.raises(OperationalError):
        node.set_parent(b)
    assert list(Node.objects.order_by("pk").values()) == rows
    assert [memory_state(obj) for obj in cached] == memory


@pytest.mark.django_db(transaction=True)
def test_a_plain_save_whose_onward_touch_fails_changes_no_target() -> None:
    """Outside a transaction the owner's UPDATE commits by itself; its touches
    and counters go together in one transaction after it: all or nothing, in
    the rows and in memory. rebuild_counters() then repairs the counters."""
    library, (a, b) = library_and_shelves()
    volume = loaded(VolumeFactory(shelf=a))
    aged(library, a, b)
    b = Shelf.objects.select_related("library").get(pk=b.pk)
    rows = [Shelf.objects.values().get(pk=s.pk) for s in (a, b)]
    memory = [memory_state(obj) for obj in (b, b.library)]
    volume.shelf = b
    with connection.execute_wrapper(_failing("tests_library")), pytest.raises(OperationalError):
        volume.save()
    assert Volume.objects.get(pk=volume.pk).shelf_id == b.pk  # committed on its own
    assert [Shelf.objects.values().get(pk=s.pk) for s in (a, b)] == rows
    assert not touched(library)
    assert [memory_state(obj) for obj in (b, b.library)] == memory
    rebuild_counters(Volume, "shelf")
    assert counts(a, b) == [0, 1]


@pytest.mark.django_db(transaction=True)
def test_set_failing_at_its_commit_puts_the_target_back_in_memory() -> None:
    """The new shelf's row is gone: the deferred foreign key check fails at the
    COMMIT, after the counter UPDATE gave the shelf instance its +1."""
    library, (a, b) = library_and_shelves()
    volume = loaded(VolumeFactory(shelf=a))
    Shelf.objects.filter(pk=b.pk).delete()  # touches the library: aged after
    aged(library, a, b)
    row = Shelf.objects.values().get(pk=a.pk)
    memory = [memory_state(obj) for obj in (volume, volume.shelf, b)]
    with pytest.raises(IntegrityError):
        volume.set_shelf(b)
    assert Shelf.objects.values().get(pk=a.pk) == row
    assert not touched(library)
    assert [memory_state(obj) for obj in (volume, volume.shelf, b)] == memory


# --------------------------------------------------------- bulk and rebuild


def test_queryset_update_and_bulk_writes_count_and_touch_nothing(
    django_assert_num_queries: Any,
) -> None:
    """Documented: they send no model signal. rebuild_counters() is the remedy."""
    _, (a, b, empty) = library_and_shelves(3)
    with django_assert_num_queries(1):
        volumes = Volume.objects.bulk_create([Volume(title=str(i), shelf=a) for i in range(3)])
    assert counts(a) == [0] and not touched(a)
    with django_assert_num_queries(1):
        Volume.objects.filter(pk=volumes[0].pk).update(shelf=b)
    volumes[1].shelf = b
    with django_assert_num_queries(1):
        Volume.objects.bulk_update([volumes[1]], ["shelf"])
    assert counts(a, b) == [0, 0] and not touched(a) and not touched(b)
    Shelf.objects.filter(pk=empty.pk).update(volumes_count=7)  # drifted

    with django_assert_num_queries(1):
        updated = rebuild_counters(Volume, "shelf")
    assert updated == Shelf.objects.count()
    assert counts(a, b, empty) == [1, 2, 0]
    assert not touched(a)  # a rebuild counts, it does not touch


def test_rebuild_counters_refuses_a_relation_without_a_counter() -> None:
    with pytest.raises(TypeError, match=r"Shelf\.library is not a BelongsTo field with counter"):
        rebuild_counters(Shelf, "library")


def _drift() -> tuple[Shelf, Shelf]:
    _, (a, b) = library_and_shelves()
    VolumeFactory.create_batch(2, shelf=a)
    Label.objects.create(text="L", shelf=b)
    Shelf.objects.update(volumes_count=9, labels_count=9)
    return a, b


def test_command_rebuilds_every_counted_relation(django_assert_num_queries: Any) -> None:
    a, b = _drift()
    out = io.StringIO()
    relations = [f"{m._meta.label}.{f.name}" for m, f in counted_relations()]
    assert {"tests.Volume.shelf", "tests.Label.shelf"} <= set(relations)
    with django_assert_num_queries(len(relations)):  # one UPDATE per relation
        call_command("rebuild_counters", stdout=out)
    assert [(s.volumes_count, s.labels_count) for s in (db(a), db(b))] == [(2, 0), (0, 1)]
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == [f"Rebuilt {r}" for r in relations]
    assert "Rebuilt tests.Volume.shelf: 2 tests.Shelf row(s) updated (volumes_count)." in lines
    assert "Rebuilt tests.Label.shelf: 2 tests.Shelf row(s) updated (labels_count)." in lines


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
    call_command("rebuild_counters", "tests.Label.shelf", stdout=out, verbosity=0)
    assert out.getvalue() == ""
    assert [(s.volumes_count, s.labels_count) for s in (db(a), db(b))] == [(9, 0), (9, 1)]


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
    assert Shelf.objects.using("other").get().volumes_count == 1
    Shelf.objects.using("other").update(volumes_count=5)
    here = ShelfFactory()
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
    proxy = VolumeProxy.objects.create(title="P", shelf=a)
    assert counts(a) == [1]
    proxy.set_shelf(b)
    assert counts(a, b) == [0, 1]
    proxy.delete()
    assert counts(a, b) == [0, 0]


@pytest.mark.django_db(transaction=True)
@isolate_apps("tests")
def test_a_multi_table_child_of_the_owner_counts_once() -> None:
    """Deleting a child also deletes its parent's row, with signals for both:
    the counter moves once."""

    class Hardcover(Volume):
        binding = models.CharField(max_length=20, default="cloth")

        class Meta:
            app_label = "tests"

    with connection.schema_editor() as editor:
        editor.create_model(Hardcover)
    try:
        _, (a, b) = library_and_shelves()
        first = Hardcover.objects.create(title="H", shelf=a)
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
    finally:
        Volume.objects.all().delete()
        with connection.schema_editor() as editor:
            editor.delete_model(Hardcover)


# -------------------------------------------------------------------- async


@pytest.mark.django_db(transaction=True)
def test_async_set_and_create_count_and_touch() -> None:
    library, (a, b) = library_and_shelves()
    volume = loaded(VolumeFactory(shelf=a))
    aged(library, a, b)

    async def main() -> Shelf:
        await volume.aset_shelf(b)
        return await volume.acreate_shelf(name="Async", library=library)

    created = run(main)
    assert counts(a, b, created) == [0, 0, 1]
    assert touched(a) and touched(b) and touched(library)
    assert created.volumes_count == 1
    assert_memory_matches(created)
