"""The migration promise: swapping a ForeignKey / OneToOneField for a
BelongsToField / BelongsToOneField (or back) needs no migration and no schema change."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps as global_apps
from django.core.management import call_command
from django.db import connection, migrations, models
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.graph import MigrationGraph
from django.db.migrations.questioner import MigrationQuestioner
from django.db.migrations.state import ModelState, ProjectState
from django.db.migrations.writer import MigrationWriter
from django.utils.module_loading import import_string

import belongsto_ext
from belongsto_ext import BelongsToField, BelongsToOneField
from tests.models import Author

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "testproject" / "library" / "migrations"

# (plain Django field, ours, constructor args, constructor kwargs)
FieldCase = tuple[type[models.Field], type[models.Field], tuple[Any, ...], dict[str, Any]]
CASES: dict[str, FieldCase] = {
    "fk": (
        models.ForeignKey,
        BelongsToField,
        ("shop.Author",),
        {"on_delete": models.CASCADE, "null": True},
    ),
    "fk_related_name": (
        models.ForeignKey,
        BelongsToField,
        ("shop.Author",),
        {"on_delete": models.PROTECT, "related_name": "books", "related_query_name": "book"},
    ),
    "fk_to_field_db_column": (
        models.ForeignKey,
        BelongsToField,
        ("shop.Author",),
        {
            "on_delete": models.SET_NULL,
            "null": True,
            "to_field": "slug",
            "db_column": "author_slug",
        },
    ),
    "fk_no_constraint": (
        models.ForeignKey,
        BelongsToField,
        ("shop.Author",),
        {"on_delete": models.DO_NOTHING, "db_constraint": False, "related_name": "+"},
    ),
    "fk_self": (
        models.ForeignKey,
        BelongsToField,
        ("self",),
        {"on_delete": models.CASCADE, "null": True},
    ),
    "o2o": (
        models.OneToOneField,
        BelongsToOneField,
        ("shop.Author",),
        {"on_delete": models.CASCADE, "related_name": "profile"},
    ),
    "o2o_to_field": (
        models.OneToOneField,
        BelongsToOneField,
        ("shop.Author",),
        {"on_delete": models.CASCADE, "null": True, "to_field": "slug", "db_index": True},
    ),
}


def _state(field: Callable[[], models.Field]) -> ProjectState:
    state = ProjectState()
    state.add_model(
        ModelState(
            "shop",
            "Author",
            [("id", models.AutoField(primary_key=True)), ("slug", models.SlugField(unique=True))],
        )
    )
    state.add_model(
        ModelState(
            "shop", "Book", [("id", models.AutoField(primary_key=True)), ("author", field())]
        )
    )
    return state


def _changes(before: ProjectState, after: ProjectState) -> dict[str, Any]:
    """What ``makemigrations shop`` would write (a questioner that allows an initial migration)."""
    autodetector = MigrationAutodetector(
        before, after, MigrationQuestioner(specified_apps={"shop"})
    )
    return autodetector.changes(graph=MigrationGraph())


# ------------------------------------------------------------ deconstruct


@pytest.mark.parametrize("case", CASES)
def test_deconstructs_as_the_plain_django_field(case: str) -> None:
    django_cls, ours, args, kwargs = CASES[case]
    mine = ours(*args, **kwargs).deconstruct()
    assert mine == django_cls(*args, **kwargs).deconstruct()
    assert mine[1] == f"django.db.models.{django_cls.__name__}"
    assert import_string(mine[1]) is django_cls


def test_bound_fields_of_every_model_deconstruct_as_django_fields() -> None:
    fields = [
        field
        for model in global_apps.get_models()
        for field in model._meta.local_fields
        if isinstance(field, (BelongsToField, BelongsToOneField))
    ]
    assert len(fields) >= 10
    for field in fields:
        name, path, args, kwargs = field.deconstruct()
        assert path in {"django.db.models.ForeignKey", "django.db.models.OneToOneField"}
        assert path.endswith("OneToOneField") == isinstance(field, BelongsToOneField)
        plain = import_string(path)(*args, **kwargs)
        plain.set_attributes_from_name(name)
        assert plain.deconstruct() == (name, path, args, kwargs)


# ------------------------------------------------------------ autodetector


@pytest.mark.parametrize("case", CASES)
def test_autodetector_sees_no_change_after_the_swap_or_back(case: str) -> None:
    django_cls, ours, args, kwargs = CASES[case]
    plain = _state(lambda: django_cls(*args, **kwargs))
    swapped = _state(lambda: ours(*args, **kwargs))
    assert _changes(plain, swapped) == {}
    assert _changes(swapped, plain) == {}


def test_autodetector_still_sees_real_changes() -> None:
    """The no-change results above are not an autodetector that sees nothing."""
    plain = _state(lambda: models.ForeignKey("shop.Author", on_delete=models.CASCADE, null=True))
    changed = _state(lambda: BelongsToField("shop.Author", on_delete=models.CASCADE, null=False))
    one = _state(lambda: BelongsToOneField("shop.Author", on_delete=models.CASCADE, null=True))
    operations = [op for m in _changes(plain, changed)["shop"] for op in m.operations]
    assert [type(op) for op in operations] == [migrations.AlterField]
    assert _changes(plain, one) != {}


@pytest.mark.django_db
def test_makemigrations_check_is_clean() -> None:
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    call_command("makemigrations", "library", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_generated_migrations_never_import_belongsto_ext() -> None:
    files = sorted(MIGRATIONS_DIR.glob("*.py"))
    assert any(f.name.startswith("0001") for f in files)
    for file in files:
        assert "belongsto_ext" not in file.read_text(), file
    assert "models.ForeignKey(" in (MIGRATIONS_DIR / "0001_initial.py").read_text()


def test_migration_writer_serializes_the_plain_field() -> None:
    for field in (
        BelongsToField(Author, on_delete=models.CASCADE, null=True, related_name="books"),
        BelongsToOneField("tests.Author", on_delete=models.CASCADE, to_field="slug"),
    ):
        text, imports = MigrationWriter.serialize(field)
        assert "belongsto_ext" not in text + "".join(imports)
        assert text.startswith(("models.ForeignKey(", "models.OneToOneField("))
        assert imports >= {"from django.db import models"}


def test_written_migration_file_builds_plain_django_fields() -> None:
    operations = [
        migrations.CreateModel(
            "Shelf",
            [
                ("id", models.AutoField(primary_key=True)),
                ("author", BelongsToField("tests.Author", on_delete=models.SET_NULL, null=True)),
                ("owner", BelongsToOneField("self", on_delete=models.CASCADE, null=True)),
            ],
        ),
        migrations.AddField(
            "shelf", "lead", BelongsToField("tests.Author", on_delete=models.CASCADE)
        ),
    ]
    migration = type("Migration", (migrations.Migration,), {"operations": operations})(
        "0002_shelf", "tests"
    )
    text = MigrationWriter(migration).as_string()
    assert "belongsto_ext" not in text
    namespace: dict[str, Any] = {}
    exec(compile(text, "0002_shelf.py", "exec"), namespace)
    loaded = namespace["Migration"].operations
    assert type(loaded[0].fields[1][1]) is models.ForeignKey
    assert type(loaded[0].fields[2][1]) is models.OneToOneField
    assert type(loaded[1].field) is models.ForeignKey


@pytest.mark.django_db(transaction=True)  # SQLite's schema editor refuses to run inside atomic()
@pytest.mark.parametrize("direction", ["to_ours", "to_django"])
def test_alter_field_emits_no_sql(direction: str) -> None:
    current = ProjectState.from_apps(global_apps)
    kwargs = {"on_delete": models.CASCADE, "null": True, "blank": True, "related_name": "books"}
    plain = models.ForeignKey("tests.Author", **kwargs)
    ours = BelongsToField("tests.Author", **kwargs)
    before = current.clone()
    migrations.AlterField(
        "book", "author", plain if direction == "to_ours" else ours
    ).state_forwards("tests", before)
    after = before.clone()
    operation = migrations.AlterField("book", "author", ours if direction == "to_ours" else plain)
    operation.state_forwards("tests", after)
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        operation.database_forwards("tests", editor, before, after)
    assert editor.collected_sql == []

    # A real change does emit SQL.
    renamed = current.clone()
    rename = migrations.AlterField(
        "book", "author", BelongsToField("tests.Author", db_column="writer", **kwargs)
    )
    rename.state_forwards("tests", renamed)
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        rename.database_forwards("tests", editor, current, renamed)
    assert editor.collected_sql != []


# ------------------------------------------------------------ historical models


@pytest.mark.django_db
def test_executor_historical_models_need_no_custom_managers() -> None:
    state = MigrationExecutor(connection).loader.project_state()
    author_model = state.apps.get_model("library", "Author")
    book_model = state.apps.get_model("library", "Book")
    assert type(author_model._default_manager) is models.Manager
    assert not hasattr(author_model, "bestselling")
    assert type(book_model._meta.get_field("author")) is models.ForeignKey
    # What a data migration (RunPython) does with them.
    author = author_model.objects.create(name="Historic")
    publisher = state.apps.get_model("library", "Publisher").objects.create(name="Old press")
    book = book_model.objects.create(title="Then", author=author, publisher=publisher)
    assert book_model.objects.get(pk=book.pk).author == author


@pytest.mark.django_db
def test_historical_models_rendered_with_our_fields_work_without_custom_managers() -> None:
    state = ProjectState.from_apps(global_apps)
    for name in ("Book", "SlugBook", "Employee", "Profile", "Magazine", "Novel", "ProxyTargetBook"):
        state.apps.get_model("tests", name)  # renders: lazy strings, "self", inheritance, proxies
    author_model = state.apps.get_model("tests", "Author")
    book_model = state.apps.get_model("tests", "Book")
    publisher_model = state.apps.get_model("tests", "Publisher")
    assert isinstance(book_model._meta.get_field("author"), BelongsToField)
    assert "active_authors" not in author_model._meta.managers_map
    assert type(author_model._default_manager) is models.Manager

    hidden = author_model.objects.create(name="Soft-deleted", deleted=True)
    book = book_model.objects.create(title="T", publisher=publisher_model.objects.create(name="P"))
    book.set_author(hidden)
    fresh = book_model.objects.get(pk=book.pk)
    # The historical default manager is a plain Manager: no soft-delete filter.
    assert fresh.get_author() == hidden
    made = fresh.create_author(name="Made in a migration")
    assert book_model.objects.get(pk=book.pk).author_id == made.pk
    with pytest.raises(belongsto_ext.InvalidScope, match="active_authors"):
        fresh.get_author(scope="active_authors")
