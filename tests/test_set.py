"""``set_<name>()``: instances, key values and None; what is saved; refusals and
failed saves leave the instance and the database as they were."""

from __future__ import annotations

import decimal
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, models
from django.db.models.signals import pre_save
from django.test import override_settings
from django.test.utils import CaptureQueriesContext, isolate_apps
from django.utils.connection import ConnectionDoesNotExist

from belongsto_ext import BelongsToField
from tests import factories
from tests.helpers import memory_state, row_state
from tests.models import (
    Author,
    Book,
    City,
    Profile,
    ProxyAuthor,
    SlugBook,
    Tagged,
)

pytestmark = pytest.mark.django_db


def statements(ctx: CaptureQueriesContext) -> list[str]:
    """The captured SQL, without the savepoint lines of an enclosing atomic block."""
    return [
        q["sql"]
        for q in ctx.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"))
    ]


def written_columns(sql: str) -> list[str]:
    """The columns an UPDATE statement writes (its SET clause)."""
    assert sql.startswith("UPDATE "), sql
    set_clause = sql.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    return re.findall(r'"(\w+)" = ', set_clause)


def assert_refused(exc: BaseException, label: str, value: Any) -> None:
    """The message names the model, the field and the offending value."""
    message = str(exc)
    assert label in message
    assert repr(value) in message


class DenyRelations:
    """A router whose allow_relation refuses every relation."""

    def allow_relation(self, obj1: models.Model, obj2: models.Model, **hints: Any) -> bool:
        return False


# ------------------------------------------------------------ instances


def test_set_saved_instance_saves_and_caches(
    book: Book, author: Author, django_assert_num_queries: Any
) -> None:
    with CaptureQueriesContext(connection) as ctx:
        assert book.set_author(author) is None
    assert [written_columns(sql) for sql in statements(ctx)] == [["author_id", "updated"]]
    assert book.author_id == author.pk
    assert row_state(book)["author_id"] == author.pk
    with django_assert_num_queries(0):
        assert book.get_author(scope=False) is author
        assert book.author is author
    # The default manager filters (soft delete): never answered from the unscoped cache.
    with django_assert_num_queries(1):
        assert book.get_author() == author


def test_set_proxy_instance_is_accepted(
    book: Book, author: Author, django_assert_num_queries: Any
) -> None:
    proxy = ProxyAuthor.objects.get(pk=author.pk)
    book.set_author(proxy)
    assert row_state(book)["author_id"] == author.pk
    with django_assert_num_queries(0):
        assert book.get_author(scope=False) is proxy


def test_set_publisher_instance_cached_for_unfiltered_default_manager(
    book: Book, django_assert_num_queries: Any
) -> None:
    other = factories.PublisherFactory()
    book.set_publisher(other)
    assert row_state(book)["publisher_id"] == other.pk
    with django_assert_num_queries(0):
        assert book.get_publisher() is other
        assert book.get_publisher(scope=False) is other


@pytest.mark.parametrize(
    "make_value", [factories.PublisherFactory, factories.BookFactory], ids=["Publisher", "Book"]
)
def test_set_instance_of_another_model_is_refused(
    linked_book: Book, make_value: Any, django_assert_num_queries: Any
) -> None:
    value = make_value()
    row, memory = row_state(linked_book), memory_state(linked_book)
    with django_assert_num_queries(0), pytest.raises(TypeError) as info:
        linked_book.set_author(value)
    assert_refused(info.value, "Book.author", value)
    assert "Author" in str(info.value).replace("Book.author", "")
    assert row_state(linked_book) == row
    assert memory_state(linked_book) == memory


def test_set_unsaved_instance_is_refused(linked_book: Book, django_assert_num_queries: Any) -> None:
    unsaved = Author(name="Not saved")
    count = Author.all_objects.count()
    row, memory = row_state(linked_book), memory_state(linked_book)
    with django_assert_num_queries(0), pytest.raises(ValueError, match="unsaved Author") as info:
        linked_book.set_author(unsaved)
    assert_refused(info.value, "Book.author", unsaved)
    assert unsaved.pk is None and Author.all_objects.count() == count
    assert row_state(linked_book) == row
    assert memory_state(linked_book) == memory


def test_set_instance_without_key_is_refused(
    linked_book: Book, django_assert_num_queries: Any
) -> None:
    keyless = factories.AuthorFactory()
    keyless.pk = None  # loaded from the database, then its key cleared
    row, memory = row_state(linked_book), memory_state(linked_book)
    with django_assert_num_queries(0), pytest.raises(ValueError, match="no key") as info:
        linked_book.set_author(keyless)
    assert_refused(info.value, "Book.author", keyless)
    assert row_state(linked_book) == row
    assert memory_state(linked_book) == memory


def test_set_instance_without_to_field_value_is_refused(django_assert_num_queries: Any) -> None:
    slugless = factories.AuthorFactory(slug=None)
    slug_book = SlugBook.objects.get(
        pk=factories.SlugBookFactory(author=factories.AuthorFactory()).pk
    )
    row, memory = row_state(slug_book), memory_state(slug_book)
    with django_assert_num_queries(0), pytest.raises(ValueError, match="slug is None") as info:
        slug_book.set_author(slugless)
    assert_refused(info.value, "SlugBook.author", slugless)
    assert row_state(slug_book) == row
    assert memory_state(slug_book) == memory


def test_set_instance_refused_by_router_allow_relation(
    linked_book: Book, django_assert_num_queries: Any
) -> None:
    other = factories.AuthorFactory()
    row, memory = row_state(linked_book), memory_state(linked_book)
    with (
        override_settings(DATABASE_ROUTERS=[DenyRelations()]),
        django_assert_num_queries(0),
        pytest.raises(ValueError, match="router prevents") as info,
    ):
        linked_book.set_author(other)
    assert repr(other) in str(info.value)
    assert row_state(linked_book) == row
    assert memory_state(linked_book) == memory


def test_router_refusal_message_names_model_and_field(linked_book: Book) -> None:
    other = factories.AuthorFactory()
    with override_settings(DATABASE_ROUTERS=[DenyRelations()]), pytest.raises(ValueError) as info:
        linked_book.set_author(other)
    assert_refused(info.value, "Book.author", other)


# ------------------------------------------------------------ key values


def _tag() -> Any:
    return factories.TagFactory()


@pytest.mark.parametrize(
    ("make_owner", "field", "make_key", "column"),
    [
        pytest.param(
            lambda: factories.BookFactory(),
            "author",
            lambda: factories.AuthorFactory().pk,
            "author_id",
            id="int-pk",
        ),
        pytest.param(
            lambda: factories.BookFactory(),
            "author",
            lambda: str(factories.AuthorFactory().pk),
            "author_id",
            id="str-pk",
        ),
        pytest.param(
            lambda: factories.BookFactory(),
            "publisher",
            lambda: decimal.Decimal(factories.PublisherFactory().pk),
            "publisher_id",
            id="decimal-pk",
        ),
        pytest.param(
            lambda: factories.SlugBookFactory(),
            "author",
            lambda: factories.AuthorFactory().slug,
            "author_slug",
            id="to_field-slug",
        ),
        pytest.param(
            lambda: Tagged.objects.create(),
            "tag",
            lambda: str(_tag().pk).upper(),
            "tag_id",
            id="uuid-str",
        ),
        pytest.param(
            lambda: Tagged.objects.create(), "tag", lambda: _tag().pk, "tag_id", id="uuid"
        ),
        pytest.param(
            lambda: City.objects.create(name="Lyon", country=factories.CountryFactory()),
            "country",
            lambda: factories.CountryFactory().code,
            "country_id",
            id="char-pk",
        ),
    ],
)
def test_set_key_value_writes_without_reading_target(
    make_owner: Any, field: str, make_key: Any, column: str, django_assert_num_queries: Any
) -> None:
    owner = make_owner()
    key = make_key()
    descriptor = type(owner)._meta.get_field(field)
    target = descriptor.related_model._base_manager.get(
        **{descriptor.target_field.name: descriptor.target_field.to_python(key)}
    )
    expected = getattr(target, descriptor.target_field.attname)
    with CaptureQueriesContext(connection) as ctx:
        getattr(owner, f"set_{field}")(key)
    # Only the UPDATE: the target is never read.
    (update,) = statements(ctx)
    assert written_columns(update)[0] == column
    value = getattr(owner, descriptor.attname)
    assert value == expected and type(value) is type(expected)
    assert row_state(owner)[descriptor.attname] == expected
    with django_assert_num_queries(1):
        assert getattr(owner, f"get_{field}")(scope=False) == target


def test_set_str_key_is_coerced(book: Book, author: Author) -> None:
    with CaptureQueriesContext(connection) as ctx:
        book.set_author(str(author.pk))
    assert book.author_id == author.pk and type(book.author_id) is int
    (update,) = statements(ctx)
    assert written_columns(update) == ["author_id", "updated"]


INF = float("inf")
NAN = float("nan")


@pytest.mark.parametrize(
    ("value", "error"),
    [
        pytest.param("abc", ValueError, id="abc"),
        pytest.param("", ValueError, id="empty-str"),
        pytest.param(1.5, ValueError, id="1.5"),
        pytest.param(decimal.Decimal("2.5"), ValueError, id="decimal-2.5"),
        pytest.param([1], TypeError, id="list"),
        pytest.param((1,), TypeError, id="tuple"),
        pytest.param({"a": 1}, TypeError, id="dict"),
        pytest.param(object(), TypeError, id="object"),
        pytest.param(b"1", TypeError, id="bytes"),
        pytest.param(True, TypeError, id="True"),
        pytest.param(False, TypeError, id="False"),
        pytest.param(NAN, ValueError, id="nan"),
        pytest.param(INF, ValueError, id="inf"),
        pytest.param(-INF, ValueError, id="-inf"),
        pytest.param(2**70, ValueError, id="2**70"),
        pytest.param(str(2**70), ValueError, id="str-2**70"),
        pytest.param("5.0", ValueError, id="str-5.0"),
        pytest.param(-(2**70), ValueError, id="-2**70"),
        pytest.param(uuid.uuid4(), ValueError, id="uuid-for-int"),
    ],
)
def test_set_bad_key_is_refused(
    linked_book: Book, value: Any, error: type[Exception], django_assert_num_queries: Any
) -> None:
    row, memory = row_state(linked_book), memory_state(linked_book)
    with django_assert_num_queries(0), pytest.raises(error) as info:
        linked_book.set_author(value)
    assert_refused(info.value, "Book.author", value)
    assert "Author" in str(info.value).replace("Book.author", "")
    assert row_state(linked_book) == row
    assert memory_state(linked_book) == memory


def test_out_of_range_key_is_refused_by_validators(linked_book: Book) -> None:
    with pytest.raises(ValueError, match="less than or equal to"):
        linked_book.set_author(2**70)


@pytest.mark.parametrize(
    ("make_owner", "field", "value", "label"),
    [
        pytest.param(
            lambda: Tagged.objects.create(tag=_tag()), "tag", "not-a-uuid", "Tagged.tag", id="uuid"
        ),
        pytest.param(
            lambda: Tagged.objects.create(tag=_tag()),
            "tag",
            "12345678-1234-1234-1234-12345678901",
            "Tagged.tag",
            id="uuid-short",
        ),
        pytest.param(
            lambda: Tagged.objects.create(tag=_tag()), "tag", 5, "Tagged.tag", id="int-for-uuid"
        ),
        pytest.param(
            lambda: City.objects.create(name="Lyon", country=factories.CountryFactory()),
            "country",
            "FRA",
            "City.country",
            id="char-too-long",
        ),
        pytest.param(
            lambda: City.objects.create(name="Lyon", country=factories.CountryFactory()),
            "country",
            5,
            "City.country",
            id="int-for-char",
        ),
        pytest.param(
            lambda: factories.SlugBookFactory(author=factories.AuthorFactory()),
            "author",
            "not a slug!",
            "SlugBook.author",
            id="bad-slug",
        ),
    ],
)
def test_set_bad_key_on_other_targets_is_refused(
    make_owner: Any, field: str, value: Any, label: str, django_assert_num_queries: Any
) -> None:
    owner = type(make_owner()).objects.get()  # fresh, nothing cached
    row, memory = row_state(owner), memory_state(owner)
    with django_assert_num_queries(0), pytest.raises(ValueError) as info:
        getattr(owner, f"set_{field}")(value)
    assert_refused(info.value, label, value)
    assert row_state(owner) == row
    assert memory_state(owner) == memory


def test_changing_key_drops_objects_cached_for_old_key(
    linked_book: Book, author: Author, django_assert_num_queries: Any
) -> None:
    other = factories.AuthorFactory()
    with django_assert_num_queries(0):
        assert linked_book.get_author(scope=False) is linked_book.author
        assert linked_book.get_author(scope="active_authors") == author
    linked_book.set_author(other.pk)
    with django_assert_num_queries(1):
        assert linked_book.get_author(scope=False) == other
    with django_assert_num_queries(1):
        assert linked_book.get_author(scope="active_authors") == other
    with django_assert_num_queries(0):
        assert linked_book.author == other


# ------------------------------------------------------------ None


def test_set_none_clears_nullable_key(linked_book: Book, django_assert_num_queries: Any) -> None:
    with CaptureQueriesContext(connection) as ctx:
        linked_book.set_author(None)
    assert [written_columns(sql) for sql in statements(ctx)] == [["author_id", "updated"]]
    assert row_state(linked_book)["author_id"] is None
    with django_assert_num_queries(0):
        assert linked_book.author_id is None
        assert linked_book.author is None
        assert linked_book.get_author() is None
        assert linked_book.get_author(scope="active_authors") is None


def test_set_none_on_non_nullable_key_is_refused(
    book: Book, django_assert_num_queries: Any
) -> None:
    assert book.publisher is not None
    row, memory = row_state(book), memory_state(book)
    with django_assert_num_queries(0), pytest.raises(ValueError, match="not nullable") as info:
        book.set_publisher(None)
    assert_refused(info.value, "Book.publisher", None)
    assert row_state(book) == row
    assert memory_state(book) == memory


# ------------------------------------------------------------ what is saved


def test_save_writes_only_key_and_auto_now_columns(linked_book: Book) -> None:
    other = factories.AuthorFactory()
    before = row_state(linked_book)
    with CaptureQueriesContext(connection) as ctx:
        linked_book.set_author(other)
    (update,) = statements(ctx)
    assert written_columns(update) == ["author_id", "updated"]
    after = row_state(linked_book)
    assert after["author_id"] == other.pk
    assert after["updated"] > before["updated"]
    assert {k: v for k, v in after.items() if k not in {"author_id", "updated"}} == {
        k: v for k, v in before.items() if k not in {"author_id", "updated"}
    }


def test_unsaved_edits_are_neither_written_nor_clobbered(book: Book, author: Author) -> None:
    stale = Book.objects.get(pk=book.pk)
    fresh = Book.objects.get(pk=book.pk)
    fresh.title = "Saved by someone else"
    fresh.pages = 321
    fresh.save()
    stale.title = "Unsaved edit"
    stale.set_author(author)
    row = row_state(book)
    assert row["title"] == "Saved by someone else"
    assert row["pages"] == 321
    assert row["author_id"] == author.pk
    # The unsaved edit is still there, waiting for the user's own save().
    assert stale.title == "Unsaved edit"
    assert stale.pages == 0


@pytest.fixture
def saves() -> Iterator[list[dict[str, Any]]]:
    """The keyword arguments of every Book pre_save signal."""
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    pre_save.connect(receiver, sender=Book, weak=False)
    yield seen
    pre_save.disconnect(receiver, sender=Book)


def test_save_on_deferred_instance_writes_only_key_and_auto_now(book: Book, author: Author) -> None:
    deferred = Book.objects.only("title").get(pk=book.pk)
    with CaptureQueriesContext(connection) as ctx:
        deferred.set_author(author)
    assert [written_columns(sql) for sql in statements(ctx)] == [["author_id", "updated"]]
    assert row_state(book)["author_id"] == author.pk


def test_save_kwargs_go_to_save(book: Book, author: Author, saves: list[dict[str, Any]]) -> None:
    book.set_author(author, using="default")
    (kwargs,) = saves
    assert kwargs["using"] == "default"
    assert kwargs["update_fields"] == frozenset({"author", "updated"})
    assert row_state(book)["author_id"] == author.pk


def test_save_kwargs_reach_save_and_its_error_restores(
    linked_book: Book, django_assert_num_queries: Any
) -> None:
    other = factories.AuthorFactory()
    row, memory = row_state(linked_book), memory_state(linked_book)
    with django_assert_num_queries(0), pytest.raises(ConnectionDoesNotExist):
        linked_book.set_author(other, using="no-such-database")
    assert row_state(linked_book) == row
    assert memory_state(linked_book) == memory


def test_explicit_update_fields_replaces_default_list(book: Book, author: Author) -> None:
    book.title = "Retitled"
    with CaptureQueriesContext(connection) as ctx:
        book.set_author(author, update_fields=["author", "title"])
    (update,) = statements(ctx)
    assert sorted(written_columns(update)) == ["author_id", "title"]
    row = row_state(book)
    assert (row["author_id"], row["title"]) == (author.pk, "Retitled")


def test_explicit_update_fields_without_the_key_leaves_key_unsaved(
    book: Book, author: Author
) -> None:
    book.title = "Retitled"
    with CaptureQueriesContext(connection) as ctx:
        book.set_author(author, update_fields=["title"])
    (update,) = statements(ctx)
    assert written_columns(update) == ["title"]
    assert row_state(book)["author_id"] is None
    assert book.author_id == author.pk


def test_save_on_unsaved_owner_inserts(
    publisher: Any, author: Author, django_assert_num_queries: Any
) -> None:
    book = Book(title="New", publisher=publisher)
    with CaptureQueriesContext(connection) as ctx:
        book.set_author(author)
    (insert,) = statements(ctx)
    assert insert.startswith('INSERT INTO "tests_book"')
    assert book.pk is not None and not book._state.adding
    row = row_state(book)
    assert (row["title"], row["author_id"], row["publisher_id"]) == ("New", author.pk, publisher.pk)
    with django_assert_num_queries(0):
        assert book.get_author(scope=False) is author


@pytest.mark.parametrize("value", ["instance", "key", "none"])
def test_save_false_makes_no_query(
    linked_book: Book, value: str, django_assert_num_queries: Any
) -> None:
    other = factories.AuthorFactory()
    new = {"instance": other, "key": str(other.pk), "none": None}[value]
    row = row_state(linked_book)
    with django_assert_num_queries(0):
        linked_book.set_author(new, save=False)
    assert linked_book.author_id == (None if value == "none" else other.pk)
    assert row_state(linked_book) == row
    if value == "instance":
        with django_assert_num_queries(0):
            assert linked_book.get_author(scope=False) is other


def test_save_false_on_unsaved_owner(
    publisher: Any, author: Author, django_assert_num_queries: Any
) -> None:
    book = Book(title="New", publisher=publisher)
    count = Book.objects.count()
    with django_assert_num_queries(0):
        book.set_author(author, save=False)
    assert book._state.adding and book.pk is None
    assert book.author is author
    assert Book.objects.count() == count


# ------------------------------------------------------------ failed saves


def _missing_author_pk() -> int:
    return (Author.all_objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000


# Both backends create foreign keys DEFERRABLE INITIALLY DEFERRED: inside the
# test's own transaction the check would wait for a commit that never comes.
# Outside one (transaction=True) every statement commits, so the error surfaces
# at the UPDATE, on SQLite (PRAGMA foreign_keys=ON) and PostgreSQL alike.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["key", "str-key", "deleted-instance"])
def test_failed_save_restores_key_and_cached_object(
    kind: str, django_assert_num_queries: Any
) -> None:
    author = factories.AuthorFactory()
    book = Book.objects.get(pk=factories.BookFactory(author=author).pk)
    cached = book.author
    assert book.get_author(scope="active_authors") == author
    if kind == "deleted-instance":
        value: Any = factories.AuthorFactory()
        Author.all_objects.filter(pk=value.pk).delete()
    else:
        value = _missing_author_pk()
        value = str(value) if kind == "str-key" else value
    row, memory = row_state(book), memory_state(book)
    with pytest.raises(IntegrityError):
        book.set_author(value)
    assert book.author_id == author.pk
    assert book._state.fields_cache["author"] is cached
    assert memory_state(book) == memory
    assert row_state(book) == row
    with django_assert_num_queries(0):
        assert book.get_author(scope=False) is cached
        assert book.get_author(scope="active_authors") == author


@pytest.mark.django_db(transaction=True)
def test_failed_save_on_to_field_restores() -> None:
    author = factories.AuthorFactory()
    slug_book = SlugBook.objects.get(pk=factories.SlugBookFactory(author=author).pk)
    assert slug_book.author == author
    row, memory = row_state(slug_book), memory_state(slug_book)
    with pytest.raises(IntegrityError):
        slug_book.set_author("no-such-slug")
    assert slug_book.author_id == author.slug
    assert row_state(slug_book) == row
    assert memory_state(slug_book) == memory


# Django marks the enclosing atomic block for rollback on this error: run outside one.
@pytest.mark.django_db(transaction=True)
def test_save_of_deleted_row_fails_and_restores() -> None:
    author, other = factories.AuthorFactory(), factories.AuthorFactory()
    linked_book = Book.objects.get(pk=factories.BookFactory(author=author).pk)
    assert linked_book.author == author
    memory = memory_state(linked_book)
    Book.objects.filter(pk=linked_book.pk).delete()
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        linked_book.set_author(other)
    assert memory_state(linked_book) == memory
    assert not Book.objects.filter(pk=linked_book.pk).exists()


# ------------------------------------------------------------ one-to-one


@pytest.fixture
def profile(author: Author) -> Profile:
    profile = factories.ProfileFactory(author=author)
    assert author.profile is profile  # the reverse cache, filled by the assignment
    return profile


def test_one_to_one_set_moves_reverse_cache(
    profile: Profile, django_assert_num_queries: Any
) -> None:
    other = factories.AuthorFactory()
    profile.set_author(other)
    assert row_state(profile)["author_id"] == other.pk
    with django_assert_num_queries(0):
        assert other.profile is profile
        assert profile.get_author(scope=False) is other


def test_one_to_one_set_drops_old_reverse_cache(author: Author, profile: Profile) -> None:
    profile.set_author(factories.AuthorFactory())
    # The database says the old author has no profile any more.
    with pytest.raises(Profile.DoesNotExist):
        author.profile  # noqa: B018


def test_one_to_one_set_none_clears_old_reverse_cache(
    author: Author, profile: Profile, django_assert_num_queries: Any
) -> None:
    profile.set_author(None)
    with django_assert_num_queries(0), pytest.raises(Profile.DoesNotExist):
        author.profile  # noqa: B018


def test_one_to_one_refused_value_leaves_reverse_caches(
    author: Author, profile: Profile, django_assert_num_queries: Any
) -> None:
    before = memory_state(profile), memory_state(author)
    row = row_state(profile)
    with django_assert_num_queries(0), pytest.raises(TypeError):
        profile.set_author(factories.PublisherFactory.build())
    assert (memory_state(profile), memory_state(author)) == before
    assert row_state(profile) == row


# A unique violation would abort PostgreSQL's test transaction: run outside one.
@pytest.mark.django_db(transaction=True)
def test_one_to_one_failed_set_restores_both_reverse_caches() -> None:
    author, taken = factories.AuthorFactory(), factories.AuthorFactory()
    profile = factories.ProfileFactory(author=author)
    other_profile = factories.ProfileFactory(author=taken)
    assert author.profile is profile and taken.profile is other_profile
    memories = [memory_state(obj) for obj in (profile, author, taken)]
    rows = [row_state(profile), row_state(other_profile)]
    with pytest.raises(IntegrityError):
        profile.set_author(taken)  # the unique author_id is already used
    assert [memory_state(obj) for obj in (profile, author, taken)] == memories
    assert [row_state(profile), row_state(other_profile)] == rows
    assert author.profile is profile
    assert taken.profile is other_profile
    assert profile.author is author


# ------------------------------------------------------- target validators


def _even(value: int) -> None:
    if value % 2:
        raise ValidationError("%(value)s is odd.", params={"value": value})


@isolate_apps("tests")
def test_key_is_checked_against_every_validator_of_the_target_field() -> None:
    """Beyond the column range, a target field's own validators refuse a key too."""

    class Ticket(models.Model):
        number = models.IntegerField(unique=True, validators=[_even])

        class Meta:
            app_label = "tests"

    class Seat(models.Model):
        ticket = BelongsToField(Ticket, to_field="number", on_delete=models.CASCADE, null=True)

        class Meta:
            app_label = "tests"

    seat = Seat()
    with pytest.raises(ValueError, match=r"Seat\.ticket: 3 is not a valid Ticket key: 3 is odd"):
        seat.set_ticket(3, save=False)
    assert seat.ticket_id is None
    seat.set_ticket(4, save=False)
    assert seat.ticket_id == 4
    with pytest.raises(ValueError, match="less than or equal to"):
        seat.set_ticket(2**70, save=False)
    assert seat.ticket_id == 4
