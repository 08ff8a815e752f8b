"""N+1-free scoped gets: ``prefetch()`` / ``aprefetch()`` and, on Django 6.1,
the owner's fetch mode (issue 4, "N+1-free scoped gets")."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.db import connection, connections, models
from django.test.utils import CaptureQueriesContext, isolate_apps

from belongsto_ext import InvalidScope, aprefetch, prefetch
from tests import factories
from tests.helpers import memory_state
from tests.markers import needs_fetch_modes
from tests.models import (
    Author,
    Book,
    City,
    Employee,
    LooseBook,
    Novel,
    Profile,
    ProxyAuthor,
    ProxyBook,
    SlugBook,
    Tagged,
)

pytestmark = pytest.mark.django_db

N = 10

# (scope factory, which authors the scope selects)
SCOPES: list[Any] = [
    pytest.param(lambda: None, lambda a: not a.deleted, id="None"),
    pytest.param(lambda: True, lambda a: not a.deleted, id="True"),
    pytest.param(lambda: False, lambda a: True, id="False"),
    pytest.param(lambda: "objects", lambda a: not a.deleted, id="objects"),
    pytest.param(lambda: "all_objects", lambda a: True, id="all_objects"),
    pytest.param(lambda: "active_authors", lambda a: a.active, id="active_authors"),
    pytest.param(
        lambda: ["active_authors", "verified_authors"], lambda a: a.active and a.verified, id="list"
    ),
    pytest.param(lambda: ("verified_authors",), lambda a: a.verified, id="tuple"),
    pytest.param(
        lambda: Author.all_objects.filter(verified=True, active=False),
        lambda a: a.verified and not a.active,
        id="queryset",
    ),
    pytest.param(
        lambda: ProxyAuthor.objects.filter(active=True),
        lambda a: a.active and not a.deleted,
        id="proxy-queryset",
    ),
]


def make_books(n: int = N, null_every: int = 0) -> list[Any]:
    """``n`` saved books by a mix of deleted / inactive / unverified authors (two
    books share each author); every ``null_every``-th book has no author."""
    authors = [
        factories.AuthorFactory(deleted=i % 4 == 1, active=i % 3 != 0, verified=i % 2 == 0)
        for i in range((n + 1) // 2)
    ]
    for i in range(n):
        null = null_every and i % null_every == 0
        factories.BookFactory(author=None if null else authors[i // 2])
    return authors


def load_books() -> list[Any]:
    return list(Book.objects.order_by("pk"))


def expected(books: list[Any], visible: Callable[[Any], bool]) -> list[int | None]:
    """The author pk each book's scoped get must return (by hand, from the rows)."""
    authors = {a.pk: a for a in Author.all_objects.all()}
    return [
        b.author_id if b.author_id is not None and visible(authors[b.author_id]) else None
        for b in books
    ]


def pks(objs: list[Any]) -> list[int | None]:
    return [None if obj is None else obj.pk for obj in objs]


# ---------------------------------------------------------------- prefetch


@pytest.mark.parametrize(("make", "visible"), SCOPES)
def test_one_query_for_n_owners_then_none(
    make: Any, visible: Any, django_assert_num_queries: Any
) -> None:
    make_books()
    scope = make()
    with django_assert_num_queries(2):  # the owners' own query + one for the scope
        books = load_books()
        prefetch(books, "author", scope=scope)
    with django_assert_num_queries(0):
        found = [book.get_author(scope=scope) for book in books]
    assert len(books) == N
    assert pks(found) == expected(books, visible)


@pytest.mark.parametrize(("make", "visible"), SCOPES)
def test_gets_without_prefetch_cost_one_query_each(
    make: Any, visible: Any, django_assert_num_queries: Any
) -> None:
    """The N+1 that prefetch() removes, with the same answers."""
    make_books()
    books = load_books()
    scope = make()
    with django_assert_num_queries(N):
        found = [book.get_author(scope=scope) for book in books]
    assert pks(found) == expected(books, visible)


def test_scope_selects_a_mix_of_found_and_hidden_authors() -> None:
    """The fixture data makes every scope above answer both ways."""
    make_books()
    books = load_books()
    for param in SCOPES:
        _, visible = param.values
        answers = expected(books, visible)
        assert any(a is None for a in answers) or all(visible(a) for a in Author.all_objects.all())
        assert any(a is not None for a in answers)


@pytest.mark.parametrize(("make", "visible"), SCOPES)
def test_null_keys_are_skipped(make: Any, visible: Any, django_assert_num_queries: Any) -> None:
    make_books(null_every=3)
    books = load_books()
    scope = make()
    with django_assert_num_queries(1):
        prefetch(books, "author", scope=scope)
    with django_assert_num_queries(0):
        found = [book.get_author(scope=scope) for book in books]
    assert pks(found) == expected(books, visible)
    assert sum(book.author_id is None for book in books) == 4


def test_all_null_keys_make_no_query(django_assert_num_queries: Any) -> None:
    for _ in range(N):
        factories.BookFactory()
    books = load_books()
    with django_assert_num_queries(0):
        prefetch(books, "author", scope="active_authors")
        assert [book.get_author(scope="active_authors") for book in books] == [None] * N


@pytest.mark.parametrize(("make", "visible"), SCOPES)
def test_all_cached_makes_no_query(make: Any, visible: Any, django_assert_num_queries: Any) -> None:
    make_books()
    books = load_books()
    scope = make()
    prefetch(books, "author", scope=scope)
    with django_assert_num_queries(0):
        prefetch(books, "author", scope=scope)


def test_owners_cached_by_get_are_skipped(django_assert_num_queries: Any) -> None:
    make_books()
    books = load_books()
    first = books[0].get_author(scope="active_authors")
    last = books[-1].get_author(scope="active_authors")
    with django_assert_num_queries(1):
        prefetch(books, "author", scope="active_authors")
    with CaptureQueriesContext(connection) as ctx:
        found = [book.get_author(scope="active_authors") for book in books]
    assert len(ctx) == 0
    # The cached answers were kept, not read again.
    assert found[0] is first
    assert found[-1] is last
    assert pks(found) == expected(books, lambda a: a.active)


def test_owners_cached_by_get_only_make_no_query(django_assert_num_queries: Any) -> None:
    make_books()
    books = load_books()
    for book in books:
        book.get_author(scope="verified_authors")
    with django_assert_num_queries(0):
        prefetch(books, "author", scope=["verified_authors"])


def test_unfiltered_scope_skips_owners_django_already_holds(django_assert_num_queries: Any) -> None:
    make_books()
    books = list(Book.objects.select_related("author").order_by("pk"))
    with django_assert_num_queries(0):
        prefetch(books, "author", scope=False)


def test_prefetched_object_is_shared_between_equivalent_scopes(
    django_assert_num_queries: Any,
) -> None:
    make_books()
    books = load_books()
    with django_assert_num_queries(1):
        prefetch(books, "author", scope=None)
    with django_assert_num_queries(0):
        for book in books:
            answer = book.get_author()
            assert book.get_author(scope=True) is answer
            assert book.get_author(scope="objects") is answer
            assert book.get_author(scope=["objects"]) is answer


def test_another_scope_is_not_prefetched(django_assert_num_queries: Any) -> None:
    make_books()
    books = load_books()
    prefetch(books, "author", scope="active_authors")
    with django_assert_num_queries(1):
        books[0].get_author(scope="verified_authors")


def test_changing_a_key_after_prefetch_reads_again(django_assert_num_queries: Any) -> None:
    make_books()
    books = load_books()
    prefetch(books, "author", scope="active_authors")
    newcomer = factories.AuthorFactory(active=True)
    books[1].author = newcomer
    books[2].author_id = newcomer.pk
    with django_assert_num_queries(2):
        assert books[1].get_author(scope="active_authors") == newcomer
        assert books[2].get_author(scope="active_authors") == newcomer
    with django_assert_num_queries(0):
        books[3].get_author(scope="active_authors")


def test_prefetch_after_changing_a_key_reloads_only_that_owner(
    django_assert_num_queries: Any,
) -> None:
    make_books()
    books = load_books()
    prefetch(books, "author", scope="active_authors")
    newcomer = factories.AuthorFactory(active=True)
    books[0].author_id = newcomer.pk
    with django_assert_num_queries(1):
        prefetch(books, "author", scope="active_authors")
    with django_assert_num_queries(0):
        assert books[0].get_author(scope="active_authors") == newcomer


def test_many_owners_still_one_query(django_assert_num_queries: Any) -> None:
    make_books(n=300)
    books = load_books()
    with django_assert_num_queries(1):
        prefetch(books, "author", scope=["objects", "active_authors"])
    with django_assert_num_queries(0):
        found = [book.get_author(scope=["objects", "active_authors"]) for book in books]
    assert pks(found) == expected(books, lambda a: a.active and not a.deleted)


def test_accepts_any_iterable(django_assert_num_queries: Any) -> None:
    make_books()
    books = load_books()
    with django_assert_num_queries(1):
        prefetch((book for book in books), "author", scope="active_authors")
    with django_assert_num_queries(0):
        [book.get_author(scope="active_authors") for book in books]


def test_using_default(django_assert_num_queries: Any) -> None:
    make_books()
    books = load_books()
    with django_assert_num_queries(1):
        prefetch(books, "author", scope="active_authors", using="default")
    with django_assert_num_queries(0):
        found = [book.get_author(scope="active_authors", using="default") for book in books]
    assert pks(found) == expected(books, lambda a: a.active)


# -------------------------------------------------------- refused arguments


@pytest.mark.parametrize(
    "scope",
    ["delete", "_base_manager", "", "objects.delete", 1, 0, [], ["active_authors", 2], {"a": 1}],
    ids=repr,
)
@pytest.mark.parametrize("null_every", [0, 1])
def test_invalid_scope_refused(scope: Any, null_every: int, django_assert_num_queries: Any) -> None:
    make_books(null_every=null_every)
    books = load_books()
    before = [memory_state(book) for book in books]
    count = Author.all_objects.count()
    with django_assert_num_queries(0), pytest.raises(InvalidScope) as excinfo:
        prefetch(books, "author", scope=scope)
    assert "Author" in str(excinfo.value)
    assert "active_authors" in str(excinfo.value)
    assert [memory_state(book) for book in books] == before
    assert Author.all_objects.count() == count


def test_queryset_of_another_model_refused() -> None:
    make_books()
    books = load_books()
    before = [memory_state(book) for book in books]
    with pytest.raises(InvalidScope):
        prefetch(books, "author", scope=Book.objects.all())
    assert [memory_state(book) for book in books] == before


@pytest.mark.parametrize("name", ["title", "pages", "id"])
def test_field_that_is_not_a_belongsto_field_refused(
    name: str, django_assert_num_queries: Any
) -> None:
    make_books()
    books = load_books()
    before = [memory_state(book) for book in books]
    with django_assert_num_queries(0), pytest.raises(TypeError, match=name):
        prefetch(books, name)
    assert [memory_state(book) for book in books] == before


def test_reverse_relation_refused(django_assert_num_queries: Any) -> None:
    authors = make_books()
    with django_assert_num_queries(0), pytest.raises(TypeError, match="books"):
        prefetch(authors, "books")


@isolate_apps("tests")
def test_plain_foreign_key_refused() -> None:
    """No database access in this test: the refusal happens before any query."""

    class Plain(models.Model):
        author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="+")

    owner = Plain(author_id=1)
    with pytest.raises(TypeError, match="author"):
        prefetch([owner], "author")


def test_empty_list_makes_no_query(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        assert prefetch([], "author", scope="active_authors") is None
        assert prefetch(iter(()), "author") is None


def test_mixed_owner_models_refused(django_assert_num_queries: Any) -> None:
    author = factories.AuthorFactory()
    book = Book.objects.get(pk=factories.BookFactory(author=author).pk)
    loose = LooseBook.objects.get(pk=factories.LooseBookFactory(author=author).pk)
    with django_assert_num_queries(0), pytest.raises(TypeError):
        prefetch([book, loose], "author")


# ----------------------------------------------------------- field options


def test_to_field(django_assert_num_queries: Any) -> None:
    authors = [factories.AuthorFactory(active=i % 2 == 0) for i in range(N)]
    for author in authors:
        factories.SlugBookFactory(author=author)
    slug_books = list(SlugBook.objects.order_by("pk"))
    with django_assert_num_queries(1):
        prefetch(slug_books, "author", scope="active_authors")
    with django_assert_num_queries(0):
        found = [b.get_author(scope="active_authors") for b in slug_books]
    assert pks(found) == [a.pk if a.active else None for a in authors]


def test_self_relation(django_assert_num_queries: Any) -> None:
    boss = factories.EmployeeFactory()
    for _ in range(N):
        factories.EmployeeFactory(manager=boss)
    staff = list(Employee.objects.order_by("pk"))
    with django_assert_num_queries(1):
        prefetch(staff, "manager")
    with django_assert_num_queries(0):
        assert [e.get_manager() for e in staff] == [None] + [boss] * N


def test_uuid_and_char_primary_keys(django_assert_num_queries: Any) -> None:
    tags = [factories.TagFactory() for _ in range(3)]
    for tag in tags * 2:
        Tagged.objects.create(tag=tag)
    countries = [factories.CountryFactory() for _ in range(3)]
    for country in countries * 2:
        City.objects.create(name="c", country=country)
    tagged = list(Tagged.objects.order_by("pk"))
    cities = list(City.objects.order_by("pk"))
    with django_assert_num_queries(2):
        prefetch(tagged, "tag")
        prefetch(cities, "country")
    with django_assert_num_queries(0):
        assert [t.get_tag() for t in tagged] == tags * 2
        assert [c.get_country() for c in cities] == countries * 2


def test_dangling_keys_are_none(django_assert_num_queries: Any) -> None:
    author = factories.AuthorFactory()
    factories.LooseBookFactory(author=author)
    factories.LooseBookFactory(author_id=999999)
    loose = list(LooseBook.objects.order_by("pk"))
    with django_assert_num_queries(1):
        prefetch(loose, "author")
    with django_assert_num_queries(0):
        assert [b.get_author() for b in loose] == [author, None]


def test_one_to_one_sets_the_reverse_cache(django_assert_num_queries: Any) -> None:
    for _ in range(N):
        factories.ProfileFactory(author=factories.AuthorFactory())
    profiles = list(Profile.objects.order_by("pk"))
    with django_assert_num_queries(1):
        prefetch(profiles, "author", scope="active_authors")
    with django_assert_num_queries(0):
        for profile in profiles:
            assert profile.get_author(scope="active_authors").profile is profile


def test_multi_table_child_and_proxy_owner(django_assert_num_queries: Any) -> None:
    author = factories.AuthorFactory()
    editor = factories.AuthorFactory(verified=True)
    for _ in range(3):
        factories.NovelFactory(author=author, editor=editor)
    novels = list(Novel.objects.order_by("pk"))
    proxies = list(ProxyBook.objects.order_by("pk"))
    with django_assert_num_queries(3):
        prefetch(novels, "author")
        prefetch(novels, "editor", scope="verified_authors")
        prefetch(proxies, "author", scope="active_authors")
    with django_assert_num_queries(0):
        assert [n.get_author() for n in novels] == [author] * 3
        assert [n.get_editor(scope="verified_authors") for n in novels] == [editor] * 3
        assert [p.get_author(scope="active_authors") for p in proxies] == [author] * 3


# -------------------------------------------------------------------- async


def run_counting(make_coroutine: Callable[[], Any]) -> tuple[Any, int]:
    """Run a coroutine in a new event loop; return its result and the number of
    queries Django ran for it (its sync work runs on asgiref's one worker thread)."""

    async def main() -> tuple[Any, int]:
        # CaptureQueriesContext reads the calling thread's connection: use it
        # on the worker thread only.
        ctx = CaptureQueriesContext(connection)
        await sync_to_async(ctx.__enter__)()
        try:
            result = await make_coroutine()
        finally:
            await sync_to_async(ctx.__exit__)(None, None, None)
            count = await sync_to_async(len)(ctx)
            await sync_to_async(connections.close_all)()
        return result, count

    return asyncio.run(main())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("make", "visible"), SCOPES)
def test_aprefetch_in_an_event_loop(make: Any, visible: Any) -> None:
    make_books(null_every=4)
    books = load_books()
    scope = make()

    async def work() -> list[Any]:
        await aprefetch(books, "author", scope=scope)
        # The sync getter would raise SynchronousOnlyOperation here if it queried.
        sync = [book.get_author(scope=scope) for book in books]
        assert [await book.aget_author(scope=scope) for book in books] == sync
        return sync

    found, queries = run_counting(work)
    assert queries == 1
    assert pks(found) == expected(books, visible)


@pytest.mark.django_db(transaction=True)
def test_get_without_aprefetch_would_query_in_the_loop() -> None:
    """The control for the test above: a get that needs a query is refused in a loop."""
    make_books()
    books = load_books()

    async def work() -> None:
        await aprefetch(books, "author", scope="active_authors")
        with pytest.raises(SynchronousOnlyOperation):
            books[0].get_author(scope="verified_authors")

    run_counting(work)


@pytest.mark.django_db(transaction=True)
def test_aprefetch_refuses_and_skips_like_prefetch() -> None:
    make_books()
    books = load_books()

    async def work() -> None:
        with pytest.raises(InvalidScope):
            await aprefetch(books, "author", scope="delete")
        with pytest.raises(TypeError):
            await aprefetch(books, "title")
        await aprefetch([], "author")

    _, queries = run_counting(work)
    assert queries == 0
    assert Author.all_objects.count() == (N + 1) // 2

    prefetch(books, "author")
    _, queries = run_counting(lambda: aprefetch(books, "author"))
    assert queries == 0


# -------------------------------------------------------- Django 6.1 fetch modes


def fetch_mode(name: str) -> Any:
    from django.db.models import fetch_modes

    return getattr(fetch_modes, name)


@needs_fetch_modes
@pytest.mark.parametrize(("make", "visible"), SCOPES)
@pytest.mark.parametrize("row", [0, 4, N - 1])
def test_fetch_peers_loads_the_scope_for_all_peers(
    make: Any, visible: Any, row: int, django_assert_num_queries: Any
) -> None:
    make_books()
    scope = make()
    books = list(Book.objects.fetch_mode(fetch_mode("FETCH_PEERS")).order_by("pk"))
    with django_assert_num_queries(1):
        first = books[row].get_author(scope=scope)
    with django_assert_num_queries(0):
        found = [book.get_author(scope=scope) for book in books]
    assert found[row] is first
    assert pks(found) == expected(books, visible)


@needs_fetch_modes
def test_fetch_peers_skips_null_and_cached_peers(django_assert_num_queries: Any) -> None:
    make_books(null_every=3)
    books = list(Book.objects.fetch_mode(fetch_mode("FETCH_PEERS")).order_by("pk"))
    with django_assert_num_queries(0):
        assert books[0].get_author(scope="active_authors") is None  # null key
    with django_assert_num_queries(1):
        cached = books[1].get_author(scope="active_authors")
    with django_assert_num_queries(0):
        found = [book.get_author(scope="active_authors") for book in books]
    assert found[1] is cached
    assert pks(found) == expected(books, lambda a: a.active)


@needs_fetch_modes
def test_fetch_peers_each_scope_one_query(django_assert_num_queries: Any) -> None:
    make_books()
    books = list(Book.objects.fetch_mode(fetch_mode("FETCH_PEERS")).order_by("pk"))
    with django_assert_num_queries(3):
        books[0].get_author()
        books[1].get_author(scope="active_authors")
        books[2].get_author(scope=["active_authors", "verified_authors"])
    with django_assert_num_queries(0):
        for book in books:
            book.get_author()
            book.get_author(scope="active_authors")
            book.get_author(scope=["verified_authors", "active_authors"][::-1])


@needs_fetch_modes
@pytest.mark.django_db(transaction=True)
def test_fetch_peers_in_an_event_loop() -> None:
    make_books()
    books = list(Book.objects.fetch_mode(fetch_mode("FETCH_PEERS")).order_by("pk"))

    async def work() -> list[Any]:
        await books[5].aget_author(scope="active_authors")
        # The sync getter would raise SynchronousOnlyOperation here if it queried.
        return [book.get_author(scope="active_authors") for book in books]

    found, queries = run_counting(work)
    assert queries == 1
    assert pks(found) == expected(books, lambda a: a.active)


@needs_fetch_modes
@pytest.mark.parametrize(("make", "visible"), SCOPES)
def test_fetch_raise_blocks_a_get_that_would_query(
    make: Any, visible: Any, django_assert_num_queries: Any
) -> None:
    from django.core.exceptions import FieldFetchBlocked

    make_books()
    scope = make()
    book = Book.objects.fetch_mode(fetch_mode("FETCH_RAISE")).order_by("pk")[2]
    before = memory_state(book)
    with django_assert_num_queries(0), pytest.raises(FieldFetchBlocked, match=r"Book\.author"):
        book.get_author(scope=scope)
    assert memory_state(book) == before


@needs_fetch_modes
def test_fetch_raise_allows_null_and_cached_gets(django_assert_num_queries: Any) -> None:
    from django.core.exceptions import FieldFetchBlocked

    make_books(null_every=2)
    raising = Book.objects.fetch_mode(fetch_mode("FETCH_RAISE")).order_by("pk")
    books = list(raising)
    held = list(raising.select_related("author"))
    with django_assert_num_queries(0):
        assert books[0].get_author(scope="active_authors") is None  # null key
        assert held[1].get_author(scope=False) is held[1].author  # Django holds it
    with pytest.raises(FieldFetchBlocked):
        held[1].get_author(scope="active_authors")  # a filtering scope still needs a query
    with django_assert_num_queries(1):
        prefetch(books, "author", scope="active_authors")
    with django_assert_num_queries(0):
        found = [book.get_author(scope="active_authors") for book in books]
    assert pks(found) == expected(books, lambda a: a.active)


@needs_fetch_modes
def test_fetch_raise_still_refuses_an_invalid_scope() -> None:
    make_books()
    book = Book.objects.fetch_mode(fetch_mode("FETCH_RAISE")).order_by("pk")[0]
    with pytest.raises(InvalidScope):
        book.get_author(scope="delete")
