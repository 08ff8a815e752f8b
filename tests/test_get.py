"""``get_<name>()``: null keys, filtered and dangling rows, the per-scope cache,
reuse of what Django already holds, every field option, and routing (issue 2, **get**)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections, models
from django.test import override_settings

from tests import factories
from tests.helpers import RecordingRouter, book_by, fresh
from tests.models import (
    Author,
    Book,
    City,
    Employee,
    Novel,
    Profile,
    ProxyAuthor,
    ProxyBook,
    ProxyTargetBook,
    Publisher,
    Tagged,
)

pytestmark = pytest.mark.django_db


EVERY_SCOPE_KIND = [
    pytest.param(lambda: None, id="None"),
    pytest.param(lambda: True, id="True"),
    pytest.param(lambda: False, id="False"),
    pytest.param(lambda: "active_authors", id="name"),
    pytest.param(lambda: ["active_authors", "verified_authors"], id="list"),
    pytest.param(lambda: ("objects",), id="tuple"),
    pytest.param(lambda: Author.all_objects.filter(active=True), id="queryset"),
]


# ------------------------------------------------------------ null / missing


@pytest.mark.parametrize("make", EVERY_SCOPE_KIND)
def test_null_key_is_none_without_a_query(
    make: Any, book: Any, django_assert_num_queries: Any
) -> None:
    book = fresh(book)
    scope = make()
    with django_assert_num_queries(0):
        assert book.get_author(scope=scope) is None
        assert book.get_author(scope=scope) is None


def test_null_key_after_clearing_is_none_without_a_query(django_assert_num_queries: Any) -> None:
    book, _ = book_by()
    book.author = None
    with django_assert_num_queries(0):
        assert book.get_author() is None
        assert book.get_author(scope="active_authors") is None


@pytest.mark.parametrize(
    ("scope", "fields"),
    [
        (None, {"deleted": True}),
        ("active_authors", {"active": False}),
        (["active_authors", "verified_authors"], {"verified": False}),
    ],
)
def test_row_filtered_out_by_the_scope_is_none_in_one_query(
    scope: Any, fields: dict[str, Any], django_assert_num_queries: Any
) -> None:
    book, _ = book_by(**fields)
    with django_assert_num_queries(1):
        assert book.get_author(scope=scope) is None
    with django_assert_num_queries(0):  # the "no row" answer is cached too
        assert book.get_author(scope=scope) is None


@pytest.mark.parametrize("make", EVERY_SCOPE_KIND)
def test_dangling_key_is_none_never_does_not_exist(
    make: Any, django_assert_num_queries: Any
) -> None:
    loose = fresh(factories.LooseBookFactory(author_id=987654))
    scope = make()
    with django_assert_num_queries(1):
        assert loose.get_author(scope=scope) is None
    with django_assert_num_queries(0):
        assert loose.get_author(scope=scope) is None
    # Plain Django access raises for the same row.
    with pytest.raises(Author.DoesNotExist):
        _ = fresh(loose).author


def test_dangling_key_after_the_target_is_deleted(django_assert_num_queries: Any) -> None:
    author = factories.AuthorFactory()
    loose = fresh(factories.LooseBookFactory(author=author))
    Author.all_objects.filter(pk=author.pk).delete()
    with django_assert_num_queries(2):
        assert loose.get_author() is None
        assert loose.get_author(scope=False) is None


@pytest.mark.parametrize("make", EVERY_SCOPE_KIND)
def test_found_in_at_most_one_query(make: Any, django_assert_num_queries: Any) -> None:
    book, author = book_by(active=True, verified=True)
    with django_assert_num_queries(1):
        found = book.get_author(scope=make())
    assert found == author
    assert found.name == author.name


# ----------------------------------------------------------- per-scope cache


@pytest.mark.parametrize("make", EVERY_SCOPE_KIND)
def test_repeated_scope_makes_no_query(make: Any, django_assert_num_queries: Any) -> None:
    book, author = book_by(active=True, verified=True)
    scope = make()
    with django_assert_num_queries(1):
        first = book.get_author(scope=scope)
    with django_assert_num_queries(0):
        assert book.get_author(scope=scope) is first
        assert book.get_author(scope=scope) is first
    assert first == author


def test_each_scope_is_cached_separately(django_assert_num_queries: Any) -> None:
    book, author = book_by(active=False)
    with django_assert_num_queries(1):
        assert book.get_author() == author
    with django_assert_num_queries(1):
        assert book.get_author(scope="active_authors") is None
    with django_assert_num_queries(1):
        assert book.get_author(scope="verified_authors") is None
    with django_assert_num_queries(1):
        assert book.get_author(scope=["active_authors", "verified_authors"]) is None
    with django_assert_num_queries(0):
        assert book.get_author() == author
        assert book.get_author(scope="active_authors") is None
        assert book.get_author(scope="verified_authors") is None


def test_different_scope_after_false_queries(django_assert_num_queries: Any) -> None:
    """What scope=False read is not the answer for a filtering scope."""
    book, author = book_by(deleted=True)
    with django_assert_num_queries(1):
        assert book.get_author(scope=False) == author
    with django_assert_num_queries(1):
        assert book.get_author() is None


@pytest.mark.parametrize(
    "scopes",
    [
        pytest.param([None, True, "objects", ["objects"], ("objects",)], id="default"),
        pytest.param([True, None, "objects"], id="true-first"),
        pytest.param(["objects", None, True], id="name-first"),
        pytest.param(["active_authors", ["active_authors"], ("active_authors",)], id="named"),
        pytest.param([["active_authors"], "active_authors"], id="list-first"),
    ],
)
def test_equivalent_scopes_share_one_cache_entry(
    scopes: list[Any], django_assert_num_queries: Any
) -> None:
    book, author = book_by()
    first, *rest = scopes
    with django_assert_num_queries(1):
        found = book.get_author(scope=first)
    with django_assert_num_queries(0):
        for scope in rest:
            assert book.get_author(scope=scope) is found
    assert found == author


def test_same_queryset_object_is_cached(django_assert_num_queries: Any) -> None:
    book, author = book_by()
    scope = Author.all_objects.filter(name=author.name)
    with django_assert_num_queries(1):
        assert book.get_author(scope=scope) == author
    with django_assert_num_queries(0):
        assert book.get_author(scope=scope) == author


CHANGES = [
    pytest.param(lambda book, new: book.set_author(new), id="set_author-instance"),
    pytest.param(lambda book, new: book.set_author(new.pk), id="set_author-key"),
    pytest.param(lambda book, new: book.set_author(new, save=False), id="set_author-unsaved"),
    pytest.param(lambda book, new: setattr(book, "author", new), id="assign-author"),
    pytest.param(lambda book, new: setattr(book, "author_id", new.pk), id="assign-author_id"),
]


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("scope", [None, "active_authors", ["objects", "active_authors"]])
def test_changing_the_key_reads_again(
    change: Any, scope: Any, django_assert_num_queries: Any
) -> None:
    book, old = book_by()
    new = factories.AuthorFactory()
    with django_assert_num_queries(1):
        assert book.get_author(scope=scope) == old
    change(book, new)
    with django_assert_num_queries(1):
        assert book.get_author(scope=scope) == new
    with django_assert_num_queries(0):
        assert book.get_author(scope=scope) == new


@pytest.mark.parametrize("change", CHANGES)
def test_changing_the_key_to_a_hidden_row_reads_again(
    change: Any, django_assert_num_queries: Any
) -> None:
    """Even a cached object for the new key is not trusted by a filtering scope."""
    book, old = book_by()
    hidden = factories.AuthorFactory(deleted=True)
    assert book.get_author() == old
    change(book, hidden)
    with django_assert_num_queries(1):
        assert book.get_author() is None


def test_clearing_the_key_drops_the_cached_answer(django_assert_num_queries: Any) -> None:
    book, old = book_by()
    assert book.get_author() == old
    book.set_author(None)
    with django_assert_num_queries(0):
        assert book.get_author() is None


def test_refresh_from_db_reads_again(django_assert_num_queries: Any) -> None:
    book, author = book_by()
    with django_assert_num_queries(1):
        assert book.get_author() == author
    Author.all_objects.filter(pk=author.pk).update(deleted=True)
    with django_assert_num_queries(0):  # cached: the instance has not been told
        assert book.get_author() == author
    book.refresh_from_db()
    with django_assert_num_queries(1):
        assert book.get_author() is None


def test_refresh_from_db_picks_up_a_key_changed_elsewhere(django_assert_num_queries: Any) -> None:
    book, old = book_by()
    new = factories.AuthorFactory()
    assert book.get_author(scope="active_authors") == old
    Book.objects.filter(pk=book.pk).update(author=new)
    book.refresh_from_db()
    with django_assert_num_queries(1):
        assert book.get_author(scope="active_authors") == new


# ------------------------------------------- reusing what Django already holds


def held_by(how: str, name: str, obj: Any) -> Any:
    """A book whose ``name`` relation Django already holds (``obj``), obtained ``how``."""
    book = factories.BookFactory(**{name: obj})
    if how == "select_related":
        return Book.objects.select_related(name).get(pk=book.pk)
    if how == "prefetch_related":
        return Book.objects.prefetch_related(name).get(pk=book.pk)
    book = fresh(book)
    if how == "assignment":
        setattr(book, name, obj)
    elif how == "set":
        getattr(book, f"set_{name}")(obj)
    elif how == "set-save-false":
        getattr(book, f"set_{name}")(obj, save=False)
    return book


HOLDING = ["select_related", "prefetch_related", "assignment", "set", "set-save-false"]


@pytest.mark.parametrize("how", HOLDING)
@pytest.mark.parametrize("scope", [False, "all_objects", ["all_objects"]])
def test_unfiltered_scope_reuses_the_held_object(
    how: str, scope: Any, django_assert_num_queries: Any
) -> None:
    author = factories.AuthorFactory(deleted=True, active=False)
    book = held_by(how, "author", author)
    held = book.author
    with django_assert_num_queries(0):
        assert book.get_author(scope=scope) is held
    assert held == author


@pytest.mark.parametrize("scope", [False, "all_objects"])
def test_unfiltered_scope_reuses_create_author(scope: Any, django_assert_num_queries: Any) -> None:
    book = fresh(factories.BookFactory())
    created = book.create_author(name="New")
    with django_assert_num_queries(0):
        assert book.get_author(scope=scope) is created


@pytest.mark.parametrize("how", HOLDING)
@pytest.mark.parametrize("scope", [None, True, "objects", False])
def test_unfiltered_default_manager_reuses_the_held_object(
    how: str, scope: Any, django_assert_num_queries: Any
) -> None:
    publisher = factories.PublisherFactory()
    other = factories.PublisherFactory()
    book = held_by(how, "publisher", other if how.startswith("set") else publisher)
    held = book.publisher
    with django_assert_num_queries(0):
        assert book.get_publisher(scope=scope) is held


def test_unfiltered_default_manager_reuses_create_publisher(django_assert_num_queries: Any) -> None:
    book = fresh(factories.BookFactory())
    created = book.create_publisher(name="Fresh press")
    with django_assert_num_queries(0):
        assert book.get_publisher() is created


@pytest.mark.parametrize("how", HOLDING)
@pytest.mark.parametrize(
    ("scope", "fields"),
    [
        (None, {"deleted": True}),
        (True, {"deleted": True}),
        ("objects", {"deleted": True}),
        ("active_authors", {"active": False}),
        ("verified_authors", {"verified": False}),
        (["all_objects", "active_authors"], {"active": False}),
        (Author.all_objects.filter(active=True), {"active": False}),
    ],
    ids=["None", "True", "objects", "active", "verified", "list", "queryset"],
)
def test_filtering_scope_never_answers_from_the_held_object(
    how: str, scope: Any, fields: dict[str, Any], django_assert_num_queries: Any
) -> None:
    author = factories.AuthorFactory(**fields)
    book = held_by(how, "author", author)
    assert book.author == author  # Django holds it...
    with django_assert_num_queries(1):
        assert book.get_author(scope=scope) is None  # ...but the scope hides it


@pytest.mark.parametrize("how", HOLDING)
@pytest.mark.parametrize("scope", [None, "active_authors"])
def test_filtering_scope_queries_even_when_the_held_object_is_visible(
    how: str, scope: Any, django_assert_num_queries: Any
) -> None:
    author = factories.AuthorFactory()
    book = held_by(how, "author", author)
    with django_assert_num_queries(1):
        assert book.get_author(scope=scope) == author


@pytest.mark.parametrize(
    ("scope", "fields"),
    [(None, {"deleted": True}), ("active_authors", {"active": False})],
)
def test_filtering_scope_never_answers_from_create_author(
    scope: Any, fields: dict[str, Any], django_assert_num_queries: Any
) -> None:
    book = fresh(factories.BookFactory())
    created = book.create_author(name="Hidden", **fields)
    assert book.author is created
    with django_assert_num_queries(1):
        assert book.get_author(scope=scope) is None


# ------------------------------------------------------------- field options


def test_to_field(django_assert_num_queries: Any) -> None:
    author = factories.AuthorFactory(slug="le-guin", active=False)
    slug_book = fresh(factories.SlugBookFactory(author=author))
    assert slug_book.author_id == "le-guin"
    with django_assert_num_queries(1):
        assert slug_book.get_author() == author
    with django_assert_num_queries(1):
        assert slug_book.get_author(scope="active_authors") is None
    with django_assert_num_queries(0):
        assert slug_book.get_author() == author


def test_to_field_hides_a_soft_deleted_target(django_assert_num_queries: Any) -> None:
    author = factories.AuthorFactory(deleted=True)
    slug_book = fresh(factories.SlugBookFactory(author=author))
    with django_assert_num_queries(2):
        assert slug_book.get_author() is None
        assert slug_book.get_author(scope=False) == author


def test_self_relation(django_assert_num_queries: Any) -> None:
    boss = factories.EmployeeFactory()
    worker = fresh(factories.EmployeeFactory(manager=boss))
    boss = fresh(boss)
    with django_assert_num_queries(1):
        assert worker.get_manager() == boss
    with django_assert_num_queries(0):
        assert worker.get_manager() == boss
        assert boss.get_manager() is None
        assert boss.get_manager(scope=False) is None
    assert isinstance(worker.get_manager(), Employee)


def test_uuid_primary_key(django_assert_num_queries: Any) -> None:
    tag = factories.TagFactory()
    tagged = fresh(Tagged.objects.create(tag=tag))
    assert isinstance(tagged.tag_id, uuid.UUID)
    with django_assert_num_queries(1):
        assert tagged.get_tag() == tag
    with django_assert_num_queries(0):
        assert tagged.get_tag(scope="objects") == tag
    with django_assert_num_queries(1):
        assert tagged.get_tag(scope=type(tag).objects.exclude(pk=tag.pk)) is None


def test_char_primary_key(django_assert_num_queries: Any) -> None:
    country = factories.CountryFactory(code="NZ")
    city = fresh(City.objects.create(name="Wellington", country=country))
    with django_assert_num_queries(1):
        assert city.get_country() == country
    with django_assert_num_queries(1):
        assert city.get_country(scope=type(country).objects.filter(code="AU")) is None


@pytest.mark.parametrize("scope", [None, False, "active_authors"])
def test_one_to_one_get_sets_the_reverse_cache(scope: Any, django_assert_num_queries: Any) -> None:
    author = factories.AuthorFactory()
    profile = fresh(factories.ProfileFactory(author=author, bio="Writer"))
    with django_assert_num_queries(1):
        found = profile.get_author(scope=scope)
    assert found == author
    with django_assert_num_queries(0):
        assert found.profile is profile


def test_one_to_one_filtered_out(django_assert_num_queries: Any) -> None:
    author = factories.AuthorFactory(deleted=True)
    profile = fresh(factories.ProfileFactory(author=author))
    with django_assert_num_queries(1):
        assert profile.get_author() is None
    assert isinstance(profile, Profile)


def test_multi_table_child_reads_the_parents_field(django_assert_num_queries: Any) -> None:
    author = factories.AuthorFactory()
    hidden = factories.AuthorFactory(deleted=True)
    novel = Novel.objects.get(pk=factories.NovelFactory(author=author, editor=hidden).pk)
    with django_assert_num_queries(1):
        assert novel.get_author() == author
    with django_assert_num_queries(1):
        assert novel.get_editor() is None
    with django_assert_num_queries(1):
        assert novel.get_editor(scope=False) == hidden
    with django_assert_num_queries(0):
        assert novel.get_author() == author
        assert novel.get_editor() is None


def test_multi_table_parent_row_of_a_child(django_assert_num_queries: Any) -> None:
    author = factories.AuthorFactory(active=False)
    novel = factories.NovelFactory(author=author)
    book = Book.objects.get(pk=novel.pk)
    with django_assert_num_queries(2):
        assert book.get_author() == author
        assert book.get_author(scope="active_authors") is None


def test_proxy_owner(django_assert_num_queries: Any) -> None:
    author = factories.AuthorFactory(verified=False)
    proxy_book = ProxyBook.objects.get(pk=factories.BookFactory(author=author).pk)
    with django_assert_num_queries(2):
        assert proxy_book.get_author() == author
        assert proxy_book.get_author(scope="verified_authors") is None


def test_proxy_target(django_assert_num_queries: Any) -> None:
    author = factories.AuthorFactory(active=False)
    hidden = factories.AuthorFactory(deleted=True)
    book = fresh(ProxyTargetBook.objects.create(title="T", author_id=author.pk))
    hidden_book = fresh(ProxyTargetBook.objects.create(title="H", author_id=hidden.pk))
    with django_assert_num_queries(1):
        found = book.get_author()
    assert isinstance(found, ProxyAuthor)
    assert found.pk == author.pk
    with django_assert_num_queries(3):
        assert book.get_author(scope="active_authors") is None
        assert hidden_book.get_author() is None
        assert hidden_book.get_author(scope=False).pk == hidden.pk


def test_deferred_key_is_loaded_then_used(django_assert_num_queries: Any) -> None:
    book, author = book_by()
    deferred = Book.objects.only("title").get(pk=book.pk)
    with django_assert_num_queries(2):  # the deferred author_id, then the author
        assert deferred.get_author() == author
    with django_assert_num_queries(0):
        assert deferred.get_author() == author


def test_deferred_key_with_a_filtering_scope(django_assert_num_queries: Any) -> None:
    book, _ = book_by(active=False)
    deferred = Book.objects.only("title").get(pk=book.pk)
    with django_assert_num_queries(2):
        assert deferred.get_author(scope="active_authors") is None


def test_deferred_null_key(book: Any, django_assert_num_queries: Any) -> None:
    deferred = Book.objects.only("title").get(pk=book.pk)
    with django_assert_num_queries(1):  # only the deferred author_id
        assert deferred.get_author(scope="active_authors") is None


def test_using_default(django_assert_num_queries: Any) -> None:
    book, author = book_by(active=False)
    with django_assert_num_queries(1):
        found = book.get_author(using="default")
    assert found == author
    assert found._state.db == "default"
    with django_assert_num_queries(0):
        assert book.get_author(using="default") == author
    with django_assert_num_queries(1):
        assert book.get_author(scope="active_authors", using="default") is None


def test_publisher_is_never_null_and_found(publisher: Any, django_assert_num_queries: Any) -> None:
    book = fresh(factories.BookFactory(publisher=publisher))
    with django_assert_num_queries(1):
        assert book.get_publisher() == publisher
    with django_assert_num_queries(1):
        assert book.get_publisher(scope=Publisher.objects.exclude(pk=publisher.pk)) is None


# ----------------------------------------------------------------- routing


@pytest.mark.parametrize("scope", [None, False, "active_authors", ["active_authors"]])
def test_read_is_routed_with_the_owner_as_hint(scope: Any) -> None:
    book, author = book_by()
    router = RecordingRouter()
    with override_settings(DATABASE_ROUTERS=[router]):
        assert book.get_author(scope=scope) == author
        ours = [(model, hints) for model, hints in router.reads if model is Author]
        router.reads.clear()
        assert fresh(book).author == author
        django = [(model, hints) for model, hints in router.reads if issubclass(model, Author)]
    assert ours
    assert all(hints["instance"] is book for _, hints in ours)
    # The same target model and hint as plain ``book.author``.
    assert {model for model, _ in ours} == {model for model, _ in django} == {Author}
    assert all(type(hints["instance"]) is Book for _, hints in django)


def test_read_is_routed_for_a_proxy_owner() -> None:
    author = factories.AuthorFactory()
    proxy_book = ProxyBook.objects.get(pk=factories.BookFactory(author=author).pk)
    router = RecordingRouter()
    with override_settings(DATABASE_ROUTERS=[router]):
        assert proxy_book.get_author() == author
    assert [hints["instance"] for model, hints in router.reads if model is Author] == [proxy_book]


def test_routed_read_uses_the_routers_database() -> None:
    class DefaultRouter(RecordingRouter):
        def db_for_read(self, model: type[models.Model], **hints: Any) -> str | None:
            super().db_for_read(model, **hints)
            return "default"

    book, _ = book_by()
    router = DefaultRouter()
    with override_settings(DATABASE_ROUTERS=[router]):
        found = book.get_author(scope="active_authors")
    assert found._state.db == "default"
    assert any(model is Author and hints.get("instance") is book for model, hints in router.reads)


# ------------------------------------------------------------------- async


@pytest.mark.django_db(transaction=True)
def test_aget_in_an_event_loop() -> None:
    book, author = book_by(active=False)
    loose = fresh(factories.LooseBookFactory(author_id=424242))

    async def main() -> list[Any]:
        try:
            return [
                await book.aget_author(),
                await book.aget_author(scope="active_authors"),
                # Cached now: the sync getter works inside the loop, since it makes no query.
                book.get_author(scope="active_authors"),
                await loose.aget_author(),
            ]
        finally:
            await sync_to_async(connections.close_all)()

    assert asyncio.run(main()) == [author, None, None, None]
