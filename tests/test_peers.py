"""The N+1 policy: fetch="peers" (a lazy read loads every peer's relation at once),
strict="n_plus_one" (a lazy read among peers is refused, alone it is not), the
violation handler, and the project-wide defaults in settings.BELONGSTO_EXT."""

from __future__ import annotations

import copy
import gc
import logging
import math
import pickle
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core import checks
from django.db import connection, models
from django.test import override_settings
from django.test.utils import isolate_apps
from django.urls import path

import belongsto_ext
from belongsto_ext import BelongsToField, FieldFetchBlocked, ScopedPrefetch, batch, policy
from tests.factories import AnyPhotoFactory, AnyPostFactory, AuthorFactory
from tests.models import AnyPeerNote, Author, Book, GuardedBook, PeerBook

pytestmark = pytest.mark.django_db


class PeerBookAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """A changelist column that reads book.author: no select_related() for it."""

    list_display = ("title", "author_name")
    list_select_related = False

    @admin.display(description="author")
    def author_name(self, book: PeerBook) -> str:
        return book.author.name if book.author else "-"


site = admin.AdminSite(name="peers")
site.register(PeerBook, PeerBookAdmin)
urlpatterns = [path("admin/", site.urls)]

VIOLATIONS: list[policy.Violation] = []


def record(violation: policy.Violation) -> None:
    """A violation handler (named by its dotted path in a test's settings)."""
    VIOLATIONS.append(violation)


def shelf(model: type[models.Model], count: int) -> list[Author]:
    """``count`` rows of ``model``, each with an author of its own."""
    authors = AuthorFactory.create_batch(count)
    model._default_manager.bulk_create(
        model(title=f"b{i}", author=a) for i, a in enumerate(authors)
    )
    return authors


def chunk(count: int) -> int:
    """How many keys one query of the default scope takes here."""
    queryset = Author._default_manager.all()
    key = Book._meta.get_field("author").scope_spec(None)
    return min(count, batch.batch_size(Author, key, queryset, connection.alias))


# ------------------------------------------------------------ fetch="peers"


@pytest.mark.parametrize("read", ["attribute", "get", "aget"])
def test_a_loop_over_1000_books_makes_one_query_per_chunk(
    read: str, django_assert_num_queries: Any
) -> None:
    authors = shelf(PeerBook, 1000)
    readers = {
        "attribute": lambda b: b.author,
        "get": lambda b: b.get_author(),
        "aget": lambda b: async_to_sync(b.aget_author)(),
    }
    reader = readers[read]
    with django_assert_num_queries(1 + math.ceil(1000 / chunk(1000))):
        found = [reader(book) for book in PeerBook.objects.order_by("pk")]
    assert found == authors


def books_by_authors(count: int) -> list[Author]:
    """``count`` Books (BelongsToField without fetch=), each with an author of its own."""
    from tests.factories import PublisherFactory

    publisher, authors = PublisherFactory(), AuthorFactory.create_batch(count)
    Book.objects.bulk_create(
        Book(title=f"b{i}", author=a, publisher=publisher) for i, a in enumerate(authors)
    )
    return authors


def test_without_fetch_peers_the_same_loop_makes_1001_queries(
    django_assert_num_queries: Any,
) -> None:
    authors = books_by_authors(1000)
    with django_assert_num_queries(1001):
        assert [b.author for b in Book.objects.order_by("pk")] == authors


def test_a_book_fetched_alone_reads_only_its_own_author(django_assert_num_queries: Any) -> None:
    shelf(PeerBook, 5)
    book = PeerBook.objects.order_by("pk").first()
    assert book is not None
    with django_assert_num_queries(1):
        assert book.author is not None
    alone = PeerBook.objects.get(pk=book.pk)
    with django_assert_num_queries(1):
        assert alone.get_author() is not None


def test_peers_already_loaded_are_not_read_again(django_assert_num_queries: Any) -> None:
    shelf(PeerBook, 30)
    books = list(PeerBook.objects.order_by("pk"))
    belongsto_ext.prefetch(books[:10], "author")
    with django_assert_num_queries(1):  # the 20 others, in one query
        books[0].get_author()
        books[15].get_author()
    with django_assert_num_queries(0):
        assert all(b.get_author() is not None for b in books)


def test_a_relation_already_loaded_issues_no_query(django_assert_num_queries: Any) -> None:
    shelf(PeerBook, 20)
    with django_assert_num_queries(2):
        books = list(PeerBook.objects.prefetch_related("author"))
    with django_assert_num_queries(0):
        assert all(b.author is not None for b in books)
    with django_assert_num_queries(2):
        books = list(PeerBook.objects.prefetch_related(ScopedPrefetch("author")))
    with django_assert_num_queries(0):
        assert all(b.get_author() is not None for b in books)
    with django_assert_num_queries(1):
        books = list(PeerBook.objects.select_related("author"))
    with django_assert_num_queries(0):
        assert all(b.author is not None and b.get_author(scope=False) for b in books)


def test_peers_are_held_weakly_and_a_copy_has_none(django_assert_num_queries: Any) -> None:
    shelf(PeerBook, 10)
    books = list(PeerBook.objects.order_by("pk"))
    kept = books[3]
    clone, unpickled = copy.copy(books[4]), pickle.loads(pickle.dumps(books[5]))
    del books
    gc.collect()
    with django_assert_num_queries(1):  # the others are gone: nothing to read for them
        assert kept.author is not None
    for alone in (clone, unpickled, PeerBook(title="new", author=kept.author)):
        alone._state.fields_cache.clear()
        with django_assert_num_queries(1 if alone.author_id else 0):
            alone.get_author(scope=False)


def test_iterator_groups_its_rows_by_chunk(
    monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    """iterator() builds rows one at a time (as Django 6.1's FETCH_PEERS sees them
    too), and a loop drops each row before the next: every read is of one row,
    never more queries than without peers. A group holds at most GROUP_SIZE rows
    (iterator()'s default chunk), so memory stays flat over a long iteration."""
    from belongsto_ext import peers

    monkeypatch.setattr(peers, "GROUP_SIZE", 5)
    shelf(PeerBook, 12)
    sizes = []
    with django_assert_num_queries(13):
        for book in PeerBook.objects.order_by("pk").iterator(chunk_size=5):
            assert book.author is not None
            sizes.append(len(peers.of(book)))
    assert sizes == [0] * 12  # the rows read before are gone: each is alone
    books = list(PeerBook.objects.order_by("pk"))  # a list: groups of 5, 5 and 2
    assert [len(peers.of(b)) for b in books] == [5] * 10 + [2] * 2


def test_the_polymorphic_field_loads_its_peers_one_query_per_model(
    django_assert_num_queries: Any,
) -> None:
    targets = [AnyPostFactory(), AnyPhotoFactory(), AnyPostFactory(), AnyPhotoFactory()]
    for target in targets:
        AnyPeerNote.objects.create(target=target)
    ContentType.objects.get_for_models(*{type(t) for t in targets})
    with django_assert_num_queries(3):  # the notes, the posts, the photos
        found = [n.get_target() for n in AnyPeerNote.objects.order_by("pk")]
    assert found == targets


# ------------------------------------------------------------ DRF and the admin


@pytest.mark.parametrize("rows", [10, 100, 1000])
def test_a_drf_list_serializer_stays_at_two_queries(
    rows: int, django_assert_num_queries: Any
) -> None:
    from rest_framework import serializers

    class PeerBookSerializer(serializers.ModelSerializer):
        author_name = serializers.CharField(source="author.name")

        class Meta:
            model = PeerBook
            fields = ["title", "author_name"]

    authors = shelf(PeerBook, rows)
    with django_assert_num_queries(1 + math.ceil(rows / chunk(rows))):
        data = PeerBookSerializer(PeerBook.objects.order_by("pk"), many=True).data
    assert [row["author_name"] for row in data] == [a.name for a in authors]


@pytest.mark.urls("tests.test_peers")
@pytest.mark.parametrize("rows", [10, 100, 1000])
def test_an_admin_changelist_stays_at_a_constant_number_of_queries(
    rows: int, admin_client: Any, django_assert_num_queries: Any
) -> None:
    shelf(PeerBook, rows)
    # The session, the user, the count, the rows, and the authors (per chunk).
    with django_assert_num_queries(5 + math.ceil(min(rows, 100) / chunk(min(rows, 100)))):
        response = admin_client.get("/admin/tests/peerbook/")
    assert response.status_code == 200
    assert response.content.count(b'class="field-author_name"') == min(rows, 100)


# ------------------------------------------------------------ strict="n_plus_one"


def test_n_plus_one_refuses_a_lazy_read_in_a_loop_and_not_alone(
    django_assert_num_queries: Any,
) -> None:
    shelf(GuardedBook, 3)
    books = list(GuardedBook.objects.order_by("pk"))
    with django_assert_num_queries(0):
        with pytest.raises(FieldFetchBlocked, match=r"GuardedBook\.author blocked.*2 others"):
            books[0].author  # noqa: B018
        with pytest.raises(FieldFetchBlocked, match="an N\\+1"):
            books[1].get_author()
    alone = GuardedBook.objects.get(pk=books[0].pk)
    with django_assert_num_queries(1):
        assert alone.author is not None
    with django_assert_num_queries(1):
        belongsto_ext.prefetch(books, "author")
    with django_assert_num_queries(0):
        assert all(b.get_author() is not None for b in books)


# ------------------------------------------------------------ the handler


def test_log_reports_the_violation_and_lets_the_read_happen(
    caplog: pytest.LogCaptureFixture, django_assert_num_queries: Any
) -> None:
    shelf(GuardedBook, 2)
    books = list(GuardedBook.objects.order_by("pk"))
    with (
        override_settings(BELONGSTO_EXT={"on_violation": "log"}),
        caplog.at_level(logging.WARNING, logger="belongsto_ext"),
        django_assert_num_queries(1),
    ):
        assert books[0].author is not None
    (record_,) = caplog.records
    assert record_.levelno == logging.WARNING
    assert record_.model is GuardedBook and record_.field == "author"  # type: ignore[attr-defined]
    assert record_.instance is books[0]  # type: ignore[attr-defined]
    assert "GuardedBook.author lazy" in record_.getMessage()


def test_a_handler_receives_the_violation() -> None:
    shelf(GuardedBook, 3)
    books = list(GuardedBook.objects.order_by("pk"))
    VIOLATIONS.clear()
    with override_settings(BELONGSTO_EXT={"on_violation": f"{__name__}.record"}):
        assert books[2].get_author() is not None
    (violation,) = VIOLATIONS
    assert (violation.model, violation.field, violation.instance) == (
        GuardedBook,
        "author",
        books[2],
    )
    assert (violation.peers, violation.reason) == (3, "n_plus_one")
    assert isinstance(violation.error(), FieldFetchBlocked)


# ------------------------------------------------------------ project defaults


@isolate_apps("tests")
def test_the_project_defaults_apply_unless_a_field_opts_out() -> None:
    with override_settings(BELONGSTO_EXT={"fetch": "peers", "strict": "n_plus_one"}):

        class Loan(models.Model):
            author = BelongsToField(Author, on_delete=models.CASCADE, related_name="+")
            editor = BelongsToField(
                Author, on_delete=models.CASCADE, related_name="+", fetch=False, strict=False
            )

        author, editor = Loan._meta.get_field("author"), Loan._meta.get_field("editor")
        assert (author.fetch, author.strict) == ("peers", "n_plus_one")
        assert (editor.fetch, editor.strict) == (False, False)
    assert (author.fetch, author.strict) == (False, False)  # the setting is gone


def test_a_changed_setting_applies_to_models_already_loaded(
    django_assert_num_queries: Any,
) -> None:
    authors = books_by_authors(4)
    with override_settings(BELONGSTO_EXT={"fetch": "peers"}), django_assert_num_queries(2):
        assert [b.author for b in Book.objects.order_by("pk")] == authors
    with django_assert_num_queries(5):  # and gone with the setting
        assert [b.author for b in Book.objects.order_by("pk")] == authors


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"fetch": "all"}, "BELONGSTO_EXT['fetch'] is 'all'."),
        ({"strict": "yes"}, "BELONGSTO_EXT['strict'] is 'yes'."),
        ({"stict": True}, "BELONGSTO_EXT has an unknown key 'stict'."),
        ({"on_violation": "nowhere.handler"}, "BELONGSTO_EXT['on_violation'] is 'nowhere.handler'"),
        ({"on_violation": 3}, "BELONGSTO_EXT['on_violation'] is 3."),
        ([("fetch", "peers")], "BELONGSTO_EXT is a list, not a dict."),
    ],
)
def test_e015_reports_an_unknown_setting(value: Any, message: str) -> None:
    with override_settings(BELONGSTO_EXT=value):
        errors = [e for e in checks.run_checks() if e.id == "belongsto_ext.E015"]
    assert len(errors) == 1
    assert errors[0].msg.startswith(message)


def test_e015_accepts_the_settings_documented() -> None:
    with override_settings(
        BELONGSTO_EXT={"fetch": "peers", "strict": True, "on_violation": f"{__name__}.record"}
    ):
        assert [e for e in checks.run_checks() if e.id == "belongsto_ext.E015"] == []
