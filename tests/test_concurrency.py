"""Concurrent writers on PostgreSQL: ``set_author`` on stale instances never loses
another thread's edit of another column, and a ``create_`` that loses a race on a
unique constraint leaves nothing behind.

Each thread has its own connection (Django opens one per thread) and closes it
when done; counts are bounded and every thread must finish within TIME_LIMIT.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import IntegrityError

from tests import factories
from tests.helpers import memory_state, row_state, run_threads
from tests.markers import needs_concurrent_writers
from tests.models import Author, Book, Publisher

pytestmark = [pytest.mark.django_db(transaction=True), needs_concurrent_writers]

SETTERS = 4
EDITORS = 4
BOOKS = 4
ROUNDS = 40
RACERS = 8
RACES = 5
TIME_LIMIT = 60.0  # seconds for all threads of one run together


def test_set_author_on_stale_instances_loses_no_other_edit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Setters write only the key column; editors' update_fields saves all survive.

    Editor ``e`` alone writes the title of book ``e`` and the pages of book ``e + 1``,
    so each of those columns must end at its owner's last write; every final key is
    one a setter wrote.
    """
    publisher = factories.PublisherFactory()
    authors = factories.AuthorFactory.create_batch(8)
    books = [
        factories.BookFactory(publisher=publisher, author=authors[0], pages=0) for _ in range(BOOKS)
    ]
    pks = [b.pk for b in books]
    written: dict[int, set[int]] = {pk: set() for pk in pks}
    last_set: dict[tuple[int, int], int] = {}  # (setter, book pk) -> key it last wrote
    setter_books: dict[int, list[Book]] = {}
    lock = threading.Lock()

    def setter(s: int) -> None:
        stale = [Book.objects.get(pk=pk) for pk in pks]  # read once, never refreshed
        setter_books[s] = stale
        for r in range(ROUNDS):
            book = stale[(s + r) % BOOKS]
            book.title = f"stale edit by setter {s}"  # unsaved: must never be written
            book.pages = -1
            if r % 4 == 3:
                target = book.create_author(name=f"setter {s} round {r}").pk
            elif r % 2:
                target = authors[(s + r) % len(authors)].pk
                book.set_author(target)
            else:
                book.set_author(authors[(s * 3 + r) % len(authors)])
                target = book.author_id
            with lock:
                written[book.pk].add(target)
                last_set[(s, book.pk)] = target

    def editor(e: int) -> None:
        titled = Book.objects.get(pk=pks[e])
        paged = Book.objects.get(pk=pks[(e + 1) % BOOKS])
        for r in range(ROUNDS):
            titled.title = f"editor {e} round {r}"
            titled.save(update_fields=["title"])
            paged.pages = r + 1
            paged.save(update_fields=["pages"])

    errors = run_threads(
        TIME_LIMIT,
        [lambda s=s: setter(s) for s in range(SETTERS)]
        + [lambda e=e: editor(e) for e in range(EDITORS)],
    )
    assert errors == []

    rows = {b.pk: b for b in Book.objects.filter(pk__in=pks)}
    for e in range(EDITORS):
        assert rows[pks[e]].title == f"editor {e} round {ROUNDS - 1}"  # no title edit lost
        assert rows[pks[(e + 1) % BOOKS]].pages == ROUNDS  # no pages edit lost
    existing = set(Author.all_objects.values_list("pk", flat=True))
    for pk, row in rows.items():
        assert row.author_id in written[pk]
        assert row.author_id in existing
    for s, stale in setter_books.items():
        for book in stale:
            if (s, book.pk) in last_set:
                assert (
                    book.author_id == last_set[(s, book.pk)]
                )  # each instance agrees with its write
    created = Author.all_objects.filter(name__startswith="setter ").count()
    assert created == SETTERS * (ROUNDS // 4)  # every create_author committed exactly once
    operations = SETTERS * ROUNDS + EDITORS * ROUNDS * 2
    with capsys.disabled():
        print(
            f"\n[concurrency] {SETTERS + EDITORS} threads: {SETTERS * ROUNDS} set_/create_author calls "
            f"and {EDITORS * ROUNDS * 2} update_fields edits ({operations} writes); "
            f"{2 * EDITORS} owned columns and {BOOKS} keys checked, 0 lost"
        )


@pytest.mark.parametrize(
    ("field", "unique"),
    [
        ("publisher", {"name": "Contested {race}"}),
        ("author", {"name": "x", "slug": "contested-{race}"}),
    ],
)
def test_create_losing_a_unique_race_leaves_nothing_behind(
    field: str, unique: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """RACERS threads create the same unique target at once: one wins, every loser
    gets IntegrityError, and its rows and instance are as they were."""
    model = Publisher if field == "publisher" else Author
    publisher = factories.PublisherFactory()
    checked = 0
    for race in range(RACES):
        # Even racers own a saved book, odd ones an unsaved one (its save would insert).
        owners = [
            factories.BookFactory(publisher=publisher)
            if i % 2 == 0
            else Book(title=f"unsaved {i}", publisher=publisher)
            for i in range(RACERS)
        ]
        rows_before = [row_state(b) if b.pk else None for b in owners]
        memory_before = [memory_state(b) for b in owners]
        targets_before = model._base_manager.count()
        books_before = Book.objects.count()
        values = {k: v.format(race=race) for k, v in unique.items()}
        results: dict[int, Any] = {}

        # B023 below: racer only runs inside run_threads(), which joins every thread
        # (and fails on a hung one) before the loop rebinds owners/values/results.
        def racer(i: int) -> None:
            try:
                results[i] = getattr(owners[i], f"create_{field}")(**values)  # noqa: B023
            except IntegrityError as exc:
                results[i] = exc  # noqa: B023

        assert run_threads(TIME_LIMIT, [lambda i=i: racer(i) for i in range(RACERS)]) == []

        winners = [i for i, r in results.items() if isinstance(r, model)]
        losers = [i for i, r in results.items() if isinstance(r, IntegrityError)]
        assert len(winners) == 1 and len(losers) == RACERS - 1, results
        (w,) = winners
        assert model._base_manager.count() == targets_before + 1  # no orphan target
        assert Book.objects.count() == books_before + (1 if rows_before[w] is None else 0)
        assert row_state(owners[w])[f"{field}_id"] == results[w].pk
        for i in losers:
            assert memory_state(owners[i]) == memory_before[i]
            if rows_before[i] is not None:
                assert row_state(owners[i]) == rows_before[i]
            else:
                assert owners[i].pk is None and owners[i]._state.adding
            checked += 1
    with capsys.disabled():
        print(
            f"\n[concurrency] create_{field}: {RACES} races x {RACERS} threads, {checked} losers checked clean"
        )
