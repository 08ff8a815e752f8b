"""``create_<name>()``: builds the target from ``values`` and ``**fields``, sets it,
and rolls both back together when the owner's save fails."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.db.models.signals import post_init, post_save, pre_init, pre_save
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from tests import factories
from tests.helpers import (
    RecordingRouter,
    check_mode,
    data_statements,
    failing_saves,
    memory_state,
    row_state,
)
from tests.markers import BOTH_MODES
from tests.models import Author, Book, Profile, Publisher

pytestmark = pytest.mark.django_db

_SAVEPOINT = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def kinds(ctx: CaptureQueriesContext) -> list[str]:
    """Each captured statement as its leading keywords, e.g. ``INSERT INTO "tests_author"``."""
    out = []
    for q in ctx.captured_queries:
        sql = q["sql"]
        if sql.startswith(_SAVEPOINT):
            out.append(next(p for p in _SAVEPOINT if sql.startswith(p)))
        else:
            out.append(re.match(r'(\w+(?: INTO)? "\w+"|\w+)', sql).group(1))
    return out


# ------------------------------------------------------------ success


def test_values_and_fields_combine_fields_win(
    linked_book: Book, django_assert_num_queries: Any
) -> None:
    new = linked_book.create_author(
        {"name": "From values", "slug": "from-values"}, name="From fields", verified=True
    )
    assert isinstance(new, Author)
    assert not new._state.adding and new._state.db == "default"
    assert (new.name, new.slug, new.verified) == ("From fields", "from-values", True)
    stored = Author.all_objects.get(pk=new.pk)
    assert (stored.name, stored.slug, stored.verified) == ("From fields", "from-values", True)
    assert row_state(linked_book)["author_id"] == new.pk
    with django_assert_num_queries(0):
        assert linked_book.author_id == new.pk
        assert linked_book.get_author(scope=False) is new
        assert linked_book.author is new


def test_create_drops_results_cached_for_old_key(
    linked_book: Book, django_assert_num_queries: Any
) -> None:
    new = linked_book.create_author(name="Replacement")
    with django_assert_num_queries(1):
        assert linked_book.get_author(scope="active_authors") == new


def test_created_target_outside_default_scope(book: Book, django_assert_num_queries: Any) -> None:
    """The held object answers the unfiltered scope only; the soft-delete default scope reads."""
    new = book.create_author(name="Born deleted", deleted=True)
    with django_assert_num_queries(0):
        assert book.get_author(scope=False) is new
    with django_assert_num_queries(1):
        assert book.get_author() is None


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        pytest.param(({"name": "Only values"},), {}, id="values"),
        pytest.param((), {"name": "Only values"}, id="fields"),
        pytest.param((None,), {"name": "Only values"}, id="None-and-fields"),
    ],
)
def test_values_or_fields_alone(book: Book, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    new = book.create_author(*args, **kwargs)
    assert Author.all_objects.get(pk=new.pk).name == "Only values"
    assert row_state(book)["author_id"] == new.pk


def test_created_on_router_write_db_with_the_owner_as_hint(book: Book) -> None:
    router = RecordingRouter()
    with override_settings(DATABASE_ROUTERS=[router]):
        new = book.create_author(name="Routed")
    assert new._state.db == "default" and not new._state.adding
    # the owner is the router's hint
    assert (Author, book) in [(model, hints.get("instance")) for model, hints in router.writes]
    assert Author.all_objects.get(pk=new.pk).name == "Routed"
    assert row_state(book)["author_id"] == new.pk


@pytest.fixture
def signals_sent() -> Iterator[list[str]]:
    """The model signals sent for Author, in order."""
    sent: list[str] = []

    def recorder(name: str) -> Any:
        return lambda sender, **kwargs: sent.append(name)

    receivers = {
        signal: recorder(name)
        for name, signal in [
            ("pre_init", pre_init),
            ("post_init", post_init),
            ("pre_save", pre_save),
            ("post_save", post_save),
        ]
    }
    for signal, receiver in receivers.items():
        signal.connect(receiver, sender=Author, weak=False)
    yield sent
    for signal, receiver in receivers.items():
        signal.disconnect(receiver, sender=Author)


@pytest.mark.parametrize("routers", [[], [RecordingRouter()]], ids=["no-router", "router"])
def test_signals_fire_as_often_as_in_the_hand_written_code(
    book: Book, routers: list[Any], signals_sent: list[str]
) -> None:
    with override_settings(DATABASE_ROUTERS=routers):
        with transaction.atomic():
            author = Author.objects.create(name="By hand")
            book.author = author
            book.save(update_fields=["author", "updated"])
        by_hand = list(signals_sent)
        signals_sent.clear()
        book.create_author(name="Ours")
    assert by_hand == ["pre_init", "post_init", "pre_save", "post_save"]
    assert signals_sent == by_hand


def test_query_counts_existing_owner(book: Book) -> None:
    with CaptureQueriesContext(connection) as ctx:
        new = book.create_author(name="Counted")
    assert kinds(ctx) == [
        "SAVEPOINT",
        'INSERT INTO "tests_author"',
        'UPDATE "tests_book"',
        "RELEASE SAVEPOINT",
    ]
    update = ctx.captured_queries[2]["sql"]
    set_clause = update.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    assert re.findall(r'"(\w+)" = ', set_clause) == ["author_id", "updated"]
    assert row_state(book)["author_id"] == new.pk


@pytest.mark.django_db(transaction=True)
def test_query_counts_outside_a_transaction() -> None:
    book = factories.BookFactory()
    with CaptureQueriesContext(connection) as ctx:
        book.create_author(name="Counted")
    assert data_statements(ctx) == ['INSERT INTO "tests_author"', 'UPDATE "tests_book"']


def test_save_false_creates_target_only(linked_book: Book, django_assert_num_queries: Any) -> None:
    row = row_state(linked_book)
    count = Author.all_objects.count()
    with CaptureQueriesContext(connection) as ctx:
        new = linked_book.create_author(name="Unsaved link", save=False)
    assert data_statements(ctx) == ['INSERT INTO "tests_author"']
    assert Author.all_objects.count() == count + 1
    assert Author.all_objects.get(pk=new.pk).name == "Unsaved link"
    assert row_state(linked_book) == row
    with django_assert_num_queries(0):
        assert linked_book.author_id == new.pk
        assert linked_book.get_author(scope=False) is new


def test_save_false_on_unsaved_owner(publisher: Publisher) -> None:
    book = Book(title="Draft", publisher=publisher)
    books = Book.objects.count()
    new = book.create_author(name="Author of a draft", save=False)
    assert book._state.adding and book.pk is None
    assert book.author is new
    assert Author.all_objects.filter(pk=new.pk).exists()
    assert Book.objects.count() == books


@pytest.mark.django_db(transaction=True)
def test_unsaved_owner_inserts_both_in_one_transaction() -> None:
    publisher = factories.PublisherFactory()
    book = Book(title="Draft", publisher=publisher)
    in_atomic: list[tuple[type[models.Model], bool]] = []

    def receiver(sender: type[models.Model], **kwargs: Any) -> None:
        in_atomic.append((sender, transaction.get_connection().in_atomic_block))

    pre_save.connect(receiver, weak=False)
    try:
        with CaptureQueriesContext(connection) as ctx:
            new = book.create_author(name="Both at once")
    finally:
        pre_save.disconnect(receiver)
    assert in_atomic == [(Author, True), (Book, True)]
    assert data_statements(ctx) == ['INSERT INTO "tests_author"', 'INSERT INTO "tests_book"']
    assert not transaction.get_connection().in_atomic_block
    row = row_state(book)
    assert (row["title"], row["author_id"]) == ("Draft", new.pk)


def test_one_to_one_create_caches_reverse(django_assert_num_queries: Any) -> None:
    old = factories.AuthorFactory()
    profile = factories.ProfileFactory(author=old)
    new = profile.create_author(name="New profile owner")
    assert row_state(profile)["author_id"] == new.pk
    with django_assert_num_queries(0):
        assert new.profile is profile
        assert profile.get_author(scope=False) is new


# ------------------------------------------------------------ refused input


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        pytest.param((), {"nope": 1}, "nope", id="unknown-field"),
        pytest.param(({"nope": 1},), {"name": "x"}, "nope", id="unknown-in-values"),
        pytest.param(({"name": "x"},), {"books": []}, "books", id="reverse-relation"),
    ],
)
def test_unknown_field_raises_type_error_and_creates_nothing(
    linked_book: Book, args: tuple[Any, ...], kwargs: dict[str, Any], name: str
) -> None:
    count = Author.all_objects.count()
    row, memory = row_state(linked_book), memory_state(linked_book)
    with CaptureQueriesContext(connection) as ctx, pytest.raises(TypeError) as info:
        linked_book.create_author(*args, **kwargs)
    assert name in str(info.value)
    assert data_statements(ctx) == []
    assert Author.all_objects.count() == count
    assert row_state(linked_book) == row
    assert memory_state(linked_book) == memory


@pytest.mark.parametrize(
    "values",
    [[("name", "x")], "name", 1, {"name"}],
    ids=["list-of-pairs", "str", "int", "set"],
)
def test_values_not_a_mapping_is_refused(
    linked_book: Book, values: Any, django_assert_num_queries: Any
) -> None:
    count = Author.all_objects.count()
    row, memory = row_state(linked_book), memory_state(linked_book)
    with django_assert_num_queries(0), pytest.raises(TypeError) as info:
        linked_book.create_author(values)
    assert "Book.author" in str(info.value)
    assert repr(values) in str(info.value)
    assert Author.all_objects.count() == count
    assert row_state(linked_book) == row
    assert memory_state(linked_book) == memory


# ------------------------------------------------------------ rollback


@BOTH_MODES
def test_owner_save_failure_rolls_back_new_target(
    mode: str, linked_book: Book, fail_saves: Callable[..., None]
) -> None:
    fail_saves(Book)  # in pre_save, after the new Author was inserted
    check_mode(mode)
    count = Author.all_objects.count()
    cached = linked_book.author
    row, memory = row_state(linked_book), memory_state(linked_book)
    with pytest.raises(RuntimeError, match="book save refused"):
        linked_book.create_author(name="Rolled back")
    assert Author.all_objects.count() == count
    assert not Author.all_objects.filter(name="Rolled back").exists()
    assert row_state(linked_book) == row
    assert memory_state(linked_book) == memory
    assert linked_book._state.fields_cache["author"] is cached


@BOTH_MODES
def test_unsaved_owner_save_failure_rolls_back_new_target(
    mode: str, publisher: Publisher, fail_saves: Callable[..., None]
) -> None:
    fail_saves(Book)  # in pre_save, after the new Author was inserted
    check_mode(mode)
    book = Book(title="Draft", publisher=publisher)
    count = Author.all_objects.count()
    memory = memory_state(book)
    with pytest.raises(RuntimeError):
        book.create_author(name="Rolled back")
    assert Author.all_objects.count() == count
    assert memory_state(book) == memory
    assert book._state.adding and book.pk is None


@pytest.mark.django_db(transaction=True)
def test_deleted_owner_row_rolls_back_new_target(linked_book: Book) -> None:
    count = Author.all_objects.count()
    memory = memory_state(linked_book)
    Book.objects.filter(pk=linked_book.pk).delete()
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        linked_book.create_author(name="Rolled back")
    assert Author.all_objects.count() == count
    assert memory_state(linked_book) == memory


@pytest.mark.django_db(transaction=True)
def test_owner_constraint_failure_at_commit_rolls_back_new_target() -> None:
    """A deferred foreign key check on the owner fails at COMMIT, on both backends."""
    missing = (Publisher.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000
    book = Book(title="Dangling publisher", publisher_id=missing)
    count, books = Author.all_objects.count(), Book.objects.count()
    memory = memory_state(book)
    with pytest.raises(IntegrityError):
        book.create_author(name="Rolled back")
    assert Author.all_objects.count() == count
    assert Book.objects.count() == books
    assert memory_state(book) == memory
    assert book.pk is None and book._state.adding


@BOTH_MODES
def test_target_constraint_failure_changes_nothing(mode: str, linked_book: Book) -> None:
    check_mode(mode)
    taken = factories.AuthorFactory()
    count = Author.all_objects.count()
    row, memory = row_state(linked_book), memory_state(linked_book)
    with pytest.raises(IntegrityError):
        linked_book.create_author(name="Duplicate slug", slug=taken.slug)
    assert Author.all_objects.count() == count
    assert row_state(linked_book) == row
    assert memory_state(linked_book) == memory


@BOTH_MODES
def test_one_to_one_failed_create_restores_reverse_caches(
    mode: str, django_assert_num_queries: Any
) -> None:
    check_mode(mode)
    author = factories.AuthorFactory()
    profile = factories.ProfileFactory(author=author)
    assert author.profile is profile
    with failing_saves(Profile):
        memories = memory_state(profile), memory_state(author)
        count = Author.all_objects.count()
        with pytest.raises(RuntimeError):
            profile.create_author(name="Rolled back")
    assert (memory_state(profile), memory_state(author)) == memories
    assert Author.all_objects.count() == count
    with django_assert_num_queries(0):
        assert author.profile is profile
        assert profile.author is author
