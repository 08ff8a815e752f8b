"""The triggers behind ``counter_cache=`` and ``touch=``: where they are installed,
how a missing or outdated one is reported and repaired, and the commands and
checks around them (``check_counters``, W004, E014)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import checks
from django.core.management import CommandError, call_command
from django.db import connection, connections, models
from django.test.utils import CaptureQueriesContext, isolate_apps

from belongsto_ext import BelongsToField, rebuild_counters
from belongsto_ext.counters import (
    _drop,
    install_triggers,
    installed,
    triggers_for,
)
from tests.models import Book, Card, Label, Library, Node, Shelf, Slip, Volume

pytestmark = pytest.mark.django_db

COUNTED_TABLES = [Volume, Label, Shelf, Node, Slip, Card]


def expected(model: type[models.Model]) -> set[str]:
    return {t.name for t in triggers_for(model, connection)}


@pytest.mark.parametrize("model", COUNTED_TABLES, ids=lambda m: m.__name__)
def test_migrate_installed_every_trigger_of_the_test_database(model: type[models.Model]) -> None:
    names = installed(connection, model._meta.db_table)
    assert names == expected(model)
    assert names  # each of these tables has some


def test_a_relation_without_the_options_needs_no_trigger() -> None:
    """Swapping a ForeignKey for a BelongsToField without counter_cache=/touch=."""
    assert triggers_for(Book, connection) == []
    assert installed(connection, Book._meta.db_table) == set()
    assert triggers_for(Library, connection) == []


def test_install_is_idempotent() -> None:
    with CaptureQueriesContext(connection) as sent:
        created = install_triggers(Volume, Shelf, Node)
    assert created == []
    assert not [q for q in sent.captured_queries if "CREATE" in q["sql"] or "DROP" in q["sql"]]
    assert installed(connection, "tests_volume") == expected(Volume)


def drop_one(model: type[models.Model]) -> str:
    name = sorted(installed(connection, model._meta.db_table))[0]
    with connection.cursor() as cursor:
        _drop(cursor, connection, name, model._meta.db_table)
    return name


def run_check(database: str = "default") -> list[checks.CheckMessage]:
    return [
        m
        for m in checks.run_checks(tags=[checks.Tags.database], databases=[database])
        if m.id == "belongsto_ext.W004"
    ]


def test_the_database_check_is_clean_on_the_test_database() -> None:
    assert run_check() == []


def test_a_trigger_dropped_by_hand_is_reported_and_reinstalled() -> None:
    name = drop_one(Volume)
    assert name not in installed(connection, "tests_volume")
    # The database's own triggers now miss the volume's writes.
    shelf = Shelf.objects.create(name="s")
    messages = run_check()
    assert len(messages) == 1
    (message,) = messages
    assert message.obj is Volume
    assert "'tests_volume'" in message.msg
    assert "1 missing" in message.msg
    assert "tests.Volume.shelf" in message.msg
    assert "manage.py migrate --database default" in message.hint  # type: ignore[operator]

    assert install_triggers(Volume) == [name]
    assert run_check() == []
    Volume.objects.create(title="v", shelf=shelf)
    shelf.refresh_from_db()
    assert shelf.volumes_count == 1


def test_check_command_with_database_reports_w004() -> None:
    drop_one(Shelf)  # a guard
    err = io.StringIO()
    call_command("check", "--database", "default", stderr=err, stdout=io.StringIO())
    assert "belongsto_ext.W004" in err.getvalue()
    assert "'tests_shelf'" in err.getvalue()
    install_triggers(Shelf)
    out = io.StringIO()
    call_command("check", "--database", "default", stdout=out)
    assert "no issues" in out.getvalue()


def test_an_outdated_trigger_is_reported_then_dropped() -> None:
    """A trigger of this app the options no longer ask for (an option changed or
    was removed) is reported as outdated, and install drops it."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION belongsto_old_trigger() RETURNS trigger LANGUAGE plpgsql "
                "AS $$ BEGIN RETURN NULL; END $$"
            )
            cursor.execute(
                "CREATE TRIGGER belongsto_old_trigger AFTER INSERT ON tests_volume "
                "FOR EACH STATEMENT EXECUTE FUNCTION belongsto_old_trigger()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER belongsto_old_trigger AFTER INSERT ON tests_volume "
                "BEGIN SELECT 1; END"
            )
    (message,) = run_check()
    assert "1 outdated" in message.msg
    install_triggers(Volume)
    assert "belongsto_old_trigger" not in installed(connection, "tests_volume")
    assert run_check() == []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_proc WHERE proname = 'belongsto_old_trigger'")
            assert cursor.fetchone() == (0,)


def test_migrate_reinstalls_a_dropped_trigger() -> None:
    name = drop_one(Volume)
    call_command("migrate", verbosity=0)
    assert name in installed(connection, "tests_volume")


@pytest.mark.django_db(transaction=True)
@isolate_apps("tests")
def test_tables_made_by_hand_get_their_triggers_from_install_triggers(made_by_hand: Any) -> None:
    class Team(models.Model):
        players_count = models.PositiveIntegerField(default=0)
        touched = models.DateTimeField(null=True)

        class Meta:
            app_label = "tests"
            db_table = "tests_hand_team"

    class Player(models.Model):
        team = BelongsToField(
            Team, on_delete=models.CASCADE, counter_cache="players_count", touch="touched"
        )

        class Meta:
            app_label = "tests"
            db_table = "tests_hand_player"

    made_by_hand(Team, Player)
    team = Team.objects.create()
    Player.objects.create(team=team)  # no trigger yet
    team.refresh_from_db()
    assert (team.players_count, team.touched) == (0, None)

    created = install_triggers(Team, Player)
    assert set(created) == expected(Team) | expected(Player)
    assert install_triggers(Team, Player) == []
    # Adopting a table that has rows: rebuild once, the triggers keep it from then on.
    assert rebuild_counters(Player, "team") == 1
    Player.objects.create(team=team)
    Player.objects.bulk_create([Player(team=team) for _ in range(3)])
    team.refresh_from_db()
    assert team.players_count == 5 == Player.objects.filter(team=team).count()
    assert team.touched is not None


@pytest.mark.django_db(transaction=True)
def test_changing_an_option_replaces_the_triggers(made_by_hand: Any) -> None:
    """The same table declared with other options: install drops the old
    triggers and creates the new ones; removing the options drops them all."""

    def declare(**options: Any) -> tuple[type[models.Model], type[models.Model]]:
        with isolate_apps("tests"):

            class Crate(models.Model):
                items_count = models.IntegerField(default=0)
                stamped = models.DateTimeField(null=True)

                class Meta:
                    app_label = "tests"
                    db_table = "tests_hand_crate"

            class Item(models.Model):
                crate = BelongsToField(Crate, on_delete=models.CASCADE, **options)

                class Meta:
                    app_label = "tests"
                    db_table = "tests_hand_item"

        return Crate, Item

    Crate, Item = declare(counter_cache="items_count")
    made_by_hand(Crate, Item)
    install_triggers(Crate, Item)
    counting = installed(connection, "tests_hand_item")
    assert counting == expected(Item) and counting

    Crate2, Item2 = declare(counter_cache="items_count", touch="stamped")
    install_triggers(Crate2, Item2)
    touching = installed(connection, "tests_hand_item")
    assert touching == expected(Item2)
    assert touching != counting

    Crate3, Item3 = declare()
    install_triggers(Crate3, Item3)
    assert installed(connection, "tests_hand_item") == set()
    assert installed(connection, "tests_hand_crate") == set()


# ------------------------------------------------------ E014: other backends


@pytest.fixture
def dummy_database() -> Iterator[str]:
    """A second database on Django's dummy backend (vendor "unknown")."""
    connections.settings["legacy"] = {
        **connections.settings["default"],
        "ENGINE": "django.db.backends.dummy",
    }
    try:
        yield "legacy"
    finally:
        del connections.settings["legacy"]
        if hasattr(connections._connections, "legacy"):
            del connections["legacy"]


def test_e013_counter_cache_on_a_backend_without_triggers(dummy_database: str) -> None:
    errors = [e for e in Volume._meta.get_field("shelf").check() if e.id == "belongsto_ext.E014"]
    assert len(errors) == 1
    assert "database 'legacy' (unknown)" in errors[0].msg
    assert "counter_cache=" in errors[0].msg
    touch_only = Node._meta.get_field("parent").check()
    assert [e.msg for e in touch_only if e.id == "belongsto_ext.E014"] == [
        "touch= is not supported on database 'legacy' (unknown): the database keeps it "
        "with triggers, written for postgresql and sqlite."
    ]
    assert not [e for e in Book._meta.get_field("author").check() if e.id == "belongsto_ext.E014"]


def test_no_e013_on_the_supported_backends() -> None:
    assert not [e for e in Volume._meta.get_field("shelf").check() if e.id == "belongsto_ext.E014"]


# ------------------------------------------------------------ check_counters


def test_check_counters_passes_when_every_counter_is_right() -> None:
    shelf = Shelf.objects.create(name="s")
    Volume.objects.bulk_create([Volume(title=str(i), shelf=shelf) for i in range(3)])
    out = io.StringIO()
    call_command("check_counters", "tests.Volume.shelf", stdout=out)
    assert out.getvalue() == "tests.Volume.shelf: every volumes_count is right.\n"


def test_check_counters_reports_drift_after_raw_sql_without_triggers() -> None:
    shelves = [Shelf.objects.create(name=str(i)) for i in range(5)]
    Volume.objects.bulk_create([Volume(title="v", shelf=shelves[1]) for _ in range(2)])
    for model in (Volume, Shelf):
        for name in installed(connection, model._meta.db_table):
            with connection.cursor() as cursor:
                _drop(cursor, connection, name, model._meta.db_table)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE tests_shelf SET volumes_count = 7 WHERE id IN (%s, %s)",
                [shelves[1].pk, shelves[3].pk],
            )
        out = io.StringIO()
        with pytest.raises(CommandError) as raised:
            call_command("check_counters", "tests.Volume.shelf", "--batch-size", "2", stdout=out)
        assert raised.value.returncode == 1
        assert "2 counter(s) out of step" in str(raised.value)
        assert out.getvalue().splitlines() == [
            f"tests.Volume.shelf: tests.Shelf pk={shelves[1].pk} has volumes_count=7, "
            f"but 2 owner row(s).",
            f"tests.Volume.shelf: tests.Shelf pk={shelves[3].pk} has volumes_count=7, "
            f"but 0 owner row(s).",
        ]
        call_command("rebuild_counters", "tests.Volume.shelf", stdout=io.StringIO())
        call_command("check_counters", "tests.Volume.shelf", stdout=io.StringIO())
    finally:
        install_triggers(Volume, Shelf)


def test_check_counters_refuses_a_bad_batch_size() -> None:
    with pytest.raises(CommandError, match="--batch-size must be at least 1, not 0"):
        call_command("check_counters", "--batch-size", "0")
