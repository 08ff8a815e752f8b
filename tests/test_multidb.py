"""Multi-database routing (issue 3): which alias each query of get / set / create
and their async twins goes to, under ``testproject.routers.PrimaryReplicaRouter``.

Aliases (testproject/settings.py): ``default`` (primary), ``replica`` (a test
mirror of ``default``: its own connection to the same database) and ``other``
(a separate database). The router sends reads to ``replica`` and writes to
``default``, pins ``Country``, ``City`` and ``Tag`` to ``other``, and refuses
relations across databases.

The tests commit (``transaction=True``): the replica's connection could not see
rows that ``default`` wrote inside an uncommitted test transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import DatabaseError, connections, models
from django.db.models.signals import post_save
from django.test import override_settings

from testproject.routers import PrimaryReplicaRouter
from tests import factories, helpers
from tests.helpers import memory_state, row_state
from tests.models import Author, Book, City, Country, Publisher, Tag, Tagged

ALIASES = ("default", "replica", "other")

pytestmark = pytest.mark.django_db(transaction=True, databases=list(ALIASES))


@pytest.fixture(autouse=True)
def _router() -> Iterator[None]:
    with override_settings(DATABASE_ROUTERS=["testproject.routers.PrimaryReplicaRouter"]):
        yield


# ``{alias: [statement verb, ...]}`` for the queries sent inside a ``with sent()``
# block (transaction control left out), and what it holds when ``verbs`` went to
# ``alias`` alone: tests.helpers.sent and only, for this module's aliases.
sent = functools.partial(helpers.sent, ALIASES)
only = functools.partial(helpers.only, ALIASES)
NOTHING = {alias: [] for alias in ALIASES}


@pytest.fixture
def inserted() -> Iterator[list[tuple[str, str, set[str]]]]:
    """For each row inserted: (model, alias written, aliases inside an atomic block)."""
    seen: list[tuple[str, str, set[str]]] = []

    def record(sender: type[models.Model], created: bool, using: str, **kwargs: Any) -> None:
        if created:
            atomic = {alias for alias in ALIASES if connections[alias].in_atomic_block}
            seen.append((sender.__name__, using, atomic))

    post_save.connect(record, weak=False, dispatch_uid="test_multidb.inserted")
    yield seen
    post_save.disconnect(dispatch_uid="test_multidb.inserted")


def book_with_author(**author_fields: Any) -> tuple[Book, Author]:
    """A committed book and author on ``default``; the book as read back through the router."""
    author = factories.AuthorFactory(**author_fields)
    book = factories.BookFactory(author=author)
    return Book.objects.get(pk=book.pk), author


def city_in_country() -> tuple[City, Country]:
    """A city and its country on ``other``; the city as read back through the router."""
    country = Country.objects.create(code="FR", name="France")
    city = City.objects.create(name="Paris", country=country)
    return City.objects.get(pk=city.pk), country


class StickyRouter(PrimaryReplicaRouter):
    """Reads a relation where its owner was read from (read-your-writes)."""

    def db_for_read(self, model: type[models.Model], **hints: Any) -> str:
        instance = hints.get("instance")
        if instance is not None and instance._state.db:
            return instance._state.db
        return super().db_for_read(model, **hints)


# ------------------------------------------------------------------ setup


def test_aliases_replica_mirrors_default_other_is_separate() -> None:
    author = factories.AuthorFactory()
    assert Author.objects.using("replica").filter(pk=author.pk).exists()
    assert not Author.objects.using("other").filter(pk=author.pk).exists()


# -------------------------------------------------------------------- get


@pytest.mark.parametrize("scope", [None, False, "active_authors"])
def test_get_reads_from_the_replica(scope: Any) -> None:
    book, author = book_with_author()
    with sent() as queries:
        found = book.get_author(scope=scope)
    assert queries == only("replica", "SELECT")
    assert found == author
    assert found._state.db == "replica"


@pytest.mark.parametrize("owner_from", ["default", "replica"])
def test_get_routes_with_the_owner_as_hint(owner_from: str) -> None:
    book, author = book_with_author()
    book = Book.objects.using(owner_from).get(pk=book.pk)
    with override_settings(DATABASE_ROUTERS=[StickyRouter()]), sent() as queries:
        found = book.get_author()
    assert queries == only(owner_from, "SELECT")
    assert found == author
    assert found._state.db == owner_from


@pytest.mark.parametrize("alias", ["default", "replica"])
def test_get_using_forces_the_alias(alias: str) -> None:
    book, author = book_with_author()
    with sent() as queries:
        found = book.get_author(using=alias)
    assert queries == only(alias, "SELECT")
    assert found == author
    assert found._state.db == alias


def test_get_using_a_database_without_the_row_is_none() -> None:
    book, _ = book_with_author()
    with sent() as queries:
        assert book.get_author(using="other") is None
    assert queries == only("other", "SELECT")


def test_get_of_a_pinned_model_reads_its_database() -> None:
    city, country = city_in_country()
    assert city._state.db == "other"
    with sent() as queries:
        found = city.get_country()
    assert queries == only("other", "SELECT")
    assert found == country
    assert found._state.db == "other"


# -------------------------------------------------------------------- set


def test_set_saves_on_the_owners_write_database() -> None:
    book, _ = book_with_author()
    new = Author.objects.get(pk=factories.AuthorFactory().pk)
    assert (book._state.db, new._state.db) == ("replica", "replica")
    with sent() as queries:
        book.set_author(new)
    assert queries == only("default", "UPDATE")
    assert row_state(book)["author_id"] == new.pk


def test_set_key_value_saves_on_the_owners_write_database() -> None:
    book, _ = book_with_author()
    new = factories.AuthorFactory()
    with sent() as queries:
        book.set_author(new.pk)
    assert queries == only("default", "UPDATE")
    assert row_state(book)["author_id"] == new.pk


def test_set_on_a_pinned_model_saves_on_its_database() -> None:
    city, _ = city_in_country()
    spain = Country.objects.create(code="ES", name="Spain")
    with sent() as queries:
        city.set_country(spain)
    assert queries == only("other", "UPDATE")
    assert row_state(city)["country_id"] == "ES"


def test_set_using_in_save_kwargs_forces_the_alias() -> None:
    # A copy of the rows on ``other``, where the router would never send a Book.
    publisher = Publisher.objects.db_manager("other").create(name="Archive")
    first, second = (
        Author.all_objects.db_manager("other").create(name=n) for n in ("First", "Second")
    )
    book = Book.objects.db_manager("other").create(
        title="Archived", publisher_id=publisher.pk, author_id=first.pk
    )
    with sent() as queries:
        book.set_author(second, using="other")
    assert queries == only("other", "UPDATE")
    assert (
        Book.objects.using("other").values_list("author_id", flat=True).get(pk=book.pk) == second.pk
    )


@pytest.mark.parametrize("save", [True, False])
def test_set_of_a_relation_the_router_forbids_writes_nothing(save: bool) -> None:
    tagged = Tagged.objects.create()
    tag = Tag.objects.create(label="elsewhere")
    row, memory = row_state(tagged), memory_state(tagged)
    with sent() as queries, pytest.raises(ValueError, match="router prevents this relation"):
        tagged.set_tag(tag, save=save)
    assert queries == NOTHING
    assert row_state(tagged) == row
    assert memory_state(tagged) == memory


# ----------------------------------------------------------------- create


def test_create_writes_the_target_where_the_router_says(inserted: list[Any]) -> None:
    book, _ = book_with_author()
    inserted.clear()
    with sent() as queries:
        author = book.create_author(name="New")
    assert queries == only("default", "INSERT", "UPDATE")
    assert author._state.db == "default"
    assert inserted == [("Author", "default", {"default"})]
    assert row_state(book)["author_id"] == author.pk


def test_create_on_a_pinned_model_is_atomic_on_its_database(inserted: list[Any]) -> None:
    city, _ = city_in_country()
    inserted.clear()
    with sent() as queries:
        country = city.create_country(code="IT", name="Italy")
    assert queries == only("other", "INSERT", "UPDATE")
    assert country._state.db == "other"
    assert inserted == [("Country", "other", {"other"})]
    assert row_state(city)["country_id"] == "IT"


def test_create_without_a_router_writes_where_the_owner_lives(inserted: list[Any]) -> None:
    """No router: the target goes to the owner's database (what every db_for_write()
    answers then), atomically, and nothing reaches ``default``."""
    publisher = Publisher.objects.db_manager("other").create(name="Archive")
    book = Book.objects.db_manager("other").create(title="Archived", publisher_id=publisher.pk)
    inserted.clear()
    with override_settings(DATABASE_ROUTERS=[]), sent() as queries:
        author = book.create_author(name="New")
    assert queries == only("other", "INSERT", "UPDATE")
    assert author._state.db == "other"
    assert inserted == [("Author", "other", {"other"})]
    assert (
        Book.objects.using("other").values_list("author_id", flat=True).get(pk=book.pk) == author.pk
    )


def test_create_failure_rolls_back_on_the_targets_database() -> None:
    city, _ = city_in_country()
    City.objects.filter(pk=city.pk).delete()  # the owner's UPDATE will match no row
    memory = memory_state(city)
    with sent() as queries, pytest.raises(DatabaseError, match="did not affect any rows"):
        city.create_country(code="IT", name="Italy")
    assert queries == only("other", "INSERT", "UPDATE")
    assert not Country.objects.filter(code="IT").exists()
    assert memory_state(city) == memory
    assert not any(connections[alias].in_atomic_block for alias in ALIASES)


def test_create_save_false_is_atomic_on_the_targets_database_only(inserted: list[Any]) -> None:
    city, _ = city_in_country()
    inserted.clear()
    with sent() as queries:
        country = city.create_country(code="IT", name="Italy", save=False)
    assert queries == only("other", "INSERT")
    assert inserted == [("Country", "other", {"other"})]
    assert city.country_id == "IT" and city.get_country(scope=False) is country
    assert row_state(city)["country_id"] == "FR"


@pytest.mark.parametrize("save", [True, False])
def test_create_of_a_relation_the_router_forbids_raises_before_writing(save: bool) -> None:
    tagged = Tagged.objects.create()
    row, memory = row_state(tagged), memory_state(tagged)
    with sent() as queries, pytest.raises(ValueError, match="router prevents this relation"):
        tagged.create_tag(label="elsewhere", save=save)
    assert queries == NOTHING
    assert not Tag.objects.exists()
    assert row_state(tagged) == row
    assert memory_state(tagged) == memory


def test_acreate_of_a_relation_the_router_forbids_raises_before_writing() -> None:
    tagged = Tagged.objects.create()
    row, memory = row_state(tagged), memory_state(tagged)
    with sent() as queries, pytest.raises(ValueError, match="router prevents this relation"):
        async_to_sync(tagged.acreate_tag)(label="elsewhere")
    assert queries == NOTHING
    assert row_state(tagged) == row
    assert memory_state(tagged) == memory


# ------------------------------------------------------------------ async


def test_aget_reads_from_the_replica_or_the_forced_alias() -> None:
    book, author = book_with_author()

    async def main() -> tuple[Any, Any]:
        return await book.aget_author(), await book.aget_author(using="default")

    with sent() as queries:
        routed, forced = async_to_sync(main)()
    assert queries == {"default": ["SELECT"], "replica": ["SELECT"], "other": []}
    assert (routed, forced) == (author, author)
    assert (routed._state.db, forced._state.db) == ("replica", "default")


def test_aget_of_a_pinned_model_reads_its_database() -> None:
    city, country = city_in_country()
    with sent() as queries:
        found = async_to_sync(city.aget_country)()
    assert queries == only("other", "SELECT")
    assert found == country


def test_aset_saves_on_the_owners_write_database() -> None:
    book, _ = book_with_author()
    new = factories.AuthorFactory()
    with sent() as queries:
        async_to_sync(book.aset_author)(new)
    assert queries == only("default", "UPDATE")
    assert row_state(book)["author_id"] == new.pk


def test_aset_of_a_relation_the_router_forbids_writes_nothing() -> None:
    tagged = Tagged.objects.create()
    tag = Tag.objects.create(label="elsewhere")
    row, memory = row_state(tagged), memory_state(tagged)
    with sent() as queries, pytest.raises(ValueError, match="router prevents this relation"):
        async_to_sync(tagged.aset_tag)(tag)
    assert queries == NOTHING
    assert row_state(tagged) == row
    assert memory_state(tagged) == memory


def test_acreate_writes_the_target_where_the_router_says(inserted: list[Any]) -> None:
    book, _ = book_with_author()
    city, _ = city_in_country()
    inserted.clear()

    async def main() -> tuple[Author, Country]:
        return await book.acreate_author(name="New"), await city.acreate_country(
            code="IT", name="Italy"
        )

    with sent() as queries:
        author, country = async_to_sync(main)()
    assert queries == {
        "default": ["INSERT", "UPDATE"],
        "replica": [],
        "other": ["INSERT", "UPDATE"],
    }
    assert inserted == [("Author", "default", {"default"}), ("Country", "other", {"other"})]
    assert (author._state.db, country._state.db) == ("default", "other")


def test_acreate_failure_rolls_back_on_the_targets_database() -> None:
    city, _ = city_in_country()
    City.objects.filter(pk=city.pk).delete()
    memory = memory_state(city)
    with sent() as queries, pytest.raises(DatabaseError, match="did not affect any rows"):
        async_to_sync(city.acreate_country)(code="IT", name="Italy")
    assert queries == only("other", "INSERT", "UPDATE")
    assert not Country.objects.filter(code="IT").exists()
    assert memory_state(city) == memory
