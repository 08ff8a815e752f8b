"""``python manage.py demo`` against the test database: the lines a reader relies on."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import pytest
from django.core.management import call_command

from testproject.library.models import Author, Book, Comment, Publisher

pytestmark = pytest.mark.django_db


@dataclass
class Call:
    """One ``>>>`` block of the demo's output."""

    code: str
    outcome: str = ""  # "-> result" or "!! Error: message"
    count: int = -1
    sql: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)  # lines printed after the SQL


def run_demo() -> tuple[str, list[Call]]:
    out = io.StringIO()
    call_command("demo", stdout=out, no_color=True)
    text = out.getvalue()
    calls: list[Call] = []
    for line in text.splitlines():
        if line.startswith(">>> "):
            calls.append(Call(line[4:]))
        elif not calls or line.startswith(("#", "==")) or not line:
            continue
        elif line.startswith(("-> ", "!! ")):
            calls[-1].outcome = line
        elif calls[-1].count < 0 and line.startswith("   ") and ("quer" in line):
            head, _, sql = line.strip().partition(": ")
            calls[-1].count = int(head.split()[0])
            if sql:
                calls[-1].sql.append(sql)
        elif line.startswith("     "):
            calls[-1].sql.append(line.strip())
        else:
            calls[-1].after.append(line.strip())
    return text, calls


def find(calls: list[Call], code: str) -> list[Call]:
    found = [c for c in calls if c.code == code]
    assert found, f"no {code!r} in the demo"
    return found


@pytest.fixture
def demo() -> tuple[str, list[Call]]:
    return run_demo()


def test_every_call_reports_its_query_count_and_sql(demo: tuple[str, list[Call]]) -> None:
    _, calls = demo
    assert len(calls) > 20
    for call in calls:
        assert call.outcome, call
        assert call.count == len(call.sql), call


def test_default_scope_hides_the_soft_deleted_author_and_scope_false_shows_it(
    demo: tuple[str, list[Call]],
) -> None:
    _, calls = demo
    hidden = find(calls, "book.get_author()")[0]
    assert (hidden.outcome, hidden.count) == ("-> None", 1)
    assert '"deleted_at" IS NULL' in hidden.sql[0]
    shown = find(calls, "book.get_author(scope=False)")[0]
    assert (shown.outcome, shown.count) == ("-> <Author: Retired Pseudonym>", 1)
    reused = find(calls, "book.author")[0]
    assert (reused.outcome, reused.count) == ("-> <Author: Retired Pseudonym>", 0)
    null = find(calls, "pamphlet.get_author()")[0]
    assert (null.outcome, null.count) == ("-> None", 0)


def test_named_scope_is_cached_so_the_repeat_makes_no_query(demo: tuple[str, list[Call]]) -> None:
    _, calls = demo
    first, repeat = find(calls, 'book.get_author(scope="bestselling")')
    assert (first.outcome, first.count) == ("-> <Author: Ursula K. Le Guin>", 1)
    assert (repeat.outcome, repeat.count) == ("-> <Author: Ursula K. Le Guin>", 0)
    miss = find(calls, 'kindred.get_author(scope="bestselling")')[0]
    assert (miss.outcome, miss.count) == ("-> None", 1)


def test_list_and_queryset_scopes_each_make_one_query(demo: tuple[str, list[Call]]) -> None:
    _, calls = demo
    for code in (
        'book.get_author(scope=["objects", "bestselling"])',
        'book.get_author(scope=Author.objects.filter(name__startswith="Ursula"))',
    ):
        call = find(calls, code)[0]
        assert (call.outcome, call.count) == ("-> <Author: Ursula K. Le Guin>", 1)


def test_invalid_scope_is_refused_with_the_available_names(demo: tuple[str, list[Call]]) -> None:
    _, calls = demo
    call = find(calls, 'book.get_author(scope="delete")')[0]
    assert call.outcome.startswith(
        "!! InvalidScope: Invalid scope 'delete' for Book.author (library.Author)"
    )
    assert "('all_objects', 'bestselling', 'objects')" in call.outcome
    assert call.count == 0


def test_set_author_writes_only_the_key_and_auto_now_columns(demo: tuple[str, list[Call]]) -> None:
    _, calls = demo
    for code in ("book.set_author(butler.pk)", "book.set_author(le_guin)"):
        call = find(calls, code)[0]
        assert (call.outcome, call.count) == ("-> None", 1)
        assert call.sql[0].startswith('UPDATE "library_book" SET "author_id" = ')
        assert '"updated_at" = ' in call.sql[0] and '"title"' not in call.sql[0]
    after_key = find(calls, "book.get_author()")[1]
    assert (after_key.outcome, after_key.count) == ("-> <Author: Octavia E. Butler>", 1)
    unfiltered = find(calls, "book.get_author(scope=False)")[1]
    assert (unfiltered.outcome, unfiltered.count) == ("-> <Author: Ursula K. Le Guin>", 0)
    publisher = find(calls, "book.get_publisher()")[0]
    assert (publisher.outcome, publisher.count) == ("-> <Publisher: Gollancz>", 0)


def test_bad_input_is_refused_and_nothing_changes(demo: tuple[str, list[Call]]) -> None:
    text, calls = demo
    refused = {
        'book.set_author("abc")': "!! ValueError: Book.author: 'abc' is not a valid Author key",
        "book.set_author(gollancz)": "!! TypeError: Book.author: cannot set <Publisher: Gollancz>",
        "book.set_publisher(None)": "!! ValueError: Book.publisher: cannot set None",
    }
    for code, error in refused.items():
        call = find(calls, code)[0]
        assert call.outcome.startswith(error), call
        assert call.count == 0
        assert len(call.after) == 1 and call.after[0].startswith("nothing changed: "), call
    assert "CHANGED" not in text
    assert sorted(c.code for c in calls if c.outcome.startswith("!! ")) == sorted(
        [*refused, 'book.get_author(scope="delete")', *ANY_REFUSED]
    )


def test_create_author_inserts_and_points_at_it_atomically(demo: tuple[str, list[Call]]) -> None:
    _, calls = demo
    call = find(calls, 'book.create_author(name="N. K. Jemisin", bestseller=True)')[0]
    assert call.outcome == "-> <Author: N. K. Jemisin>"
    writes = [sql for sql in call.sql if sql.startswith(("INSERT", "UPDATE"))]
    assert [sql.split('"')[1] for sql in writes] == ["library_author", "library_book"]
    # The rest is transaction control: BEGIN/COMMIT, or a savepoint inside a test's transaction.
    assert all(
        sql.split()[0] in {"BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"}
        for sql in call.sql
        if sql not in writes
    )
    book = Book.objects.get(title="The Fifth Season")
    assert book.author is not None and book.author.name == "N. K. Jemisin"


def test_prefetch_loads_several_books_in_one_query(demo: tuple[str, list[Call]]) -> None:
    _, calls = demo
    load = find(calls, 'belongsto_ext.prefetch(books, "author", scope="bestselling")')[0]
    assert load.count == 1 and " IN (" in load.sql[0]
    read = find(calls, '[(b.title, b.get_author(scope="bestselling")) for b in books]')[0]
    assert read.count == 0
    assert "('A Wizard of Earthsea', <Author: Ursula K. Le Guin>)" in read.outcome
    assert "('Kindred', None)" in read.outcome


ANY_REFUSED = {
    'on_book.get_target(scope="bestselling")': (
        "!! InvalidScope: Invalid scope 'bestselling' for Comment.target (library.Book)"
    ),
    "on_gone.set_target(gollancz)": "!! TypeError: Comment.target: cannot point at a Publisher",
    'on_gone.set_target(Author, "abc")': (
        "!! ValueError: Comment.target: 'abc' is not a valid Author key"
    ),
}


def test_get_target_resolves_the_scope_on_the_targets_model(
    demo: tuple[str, list[Call]],
) -> None:
    _, calls = demo
    expected = {
        "on_gone.get_target()": ("-> None", 1),
        'on_gone.get_target(scope={"library.Author": False, Book: "objects"})': (
            "-> <Author: Retired Pseudonym>",
            1,
        ),
        "on_gone.get_target(scope=False)": ("-> <Author: Retired Pseudonym>", 0),
        'on_author.get_target(scope="bestselling")': ("-> <Author: Ursula K. Le Guin>", 1),
        'on_book.get_target(scope={Author: "bestselling"})': (
            "-> <Book: A Wizard of Earthsea>",
            1,
        ),
    }
    assert {code: (c.outcome, c.count) for code in expected for c in find(calls, code)[:1]} == (
        expected
    )
    assert '"deleted_at" IS NULL' in find(calls, "on_gone.get_target()")[0].sql[0]


def test_set_target_writes_the_two_columns_and_refuses_before_any_change(
    demo: tuple[str, list[Call]],
) -> None:
    _, calls = demo
    # One transaction: the UPDATE, and for a model and a key the check that its row exists.
    for code, verbs in (
        ("on_gone.set_target(kindred)", ["BEGIN", "UPDATE", "COMMIT"]),
        ("on_gone.set_target(Author, str(butler.pk))", ["BEGIN", "SELECT", "UPDATE", "COMMIT"]),
    ):
        call = find(calls, code)[0]
        assert (call.outcome, call.count) == ("-> None", len(verbs))
        # BEGIN/COMMIT, or SAVEPOINT/RELEASE inside the test's transaction.
        opened = {"SAVEPOINT": "BEGIN", "RELEASE": "COMMIT"}
        assert [opened.get(v, v) for sql in call.sql for v in [sql.split(None, 1)[0]]] == verbs
        update = call.sql[verbs.index("UPDATE")]
        assert update.startswith('UPDATE "library_comment" SET "content_type_id" = ')
        assert '"object_id" = ' in update and '"body"' not in update
    cached, by_key = find(calls, "on_gone.get_target()")[1:3]
    assert (cached.outcome, cached.count) == ("-> <Book: Kindred>", 0)
    assert (by_key.outcome, by_key.count) == ("-> <Author: Octavia E. Butler>", 1)
    for code, error in ANY_REFUSED.items():
        call = find(calls, code)[0]
        assert call.outcome.startswith(error), call
        assert call.count == 0
        if code.startswith("on_gone.set_target"):
            assert len(call.after) == 1 and call.after[0].startswith("nothing changed: "), call


def test_create_target_then_is_target_then_a_cascading_delete(
    demo: tuple[str, list[Call]],
) -> None:
    _, calls = demo
    create = find(
        calls,
        'left_hand = on_gone.create_target(Book, title="The Left Hand of Darkness", publisher=gollancz)',
    )[0]
    assert create.outcome == "-> <Book: The Left Hand of Darkness>"
    writes = [sql for sql in create.sql if sql.startswith(("INSERT", "UPDATE"))]
    assert [sql.split('"')[1] for sql in writes] == ["library_book", "library_comment"]
    assert len(create.sql) == 4  # and BEGIN/COMMIT, or a savepoint inside a test's transaction
    assert [(c.outcome, c.count) for c in find(calls, "on_gone.is_target(left_hand)")] == [
        ("-> True", 0)
    ]
    assert [(c.outcome, c.count) for c in find(calls, "on_gone.is_target(butler)")] == [
        ("-> False", 0)
    ]
    delete = find(calls, "left_hand.delete()")[0]
    assert delete.outcome == "-> (2, {'library.Comment': 1, 'library.Book': 1})"
    assert any(sql.startswith('DELETE FROM "library_comment"') for sql in delete.sql)
    gone = find(calls, 'Comment.objects.filter(body="Who wrote this?").exists()')[0]
    assert gone.outcome == "-> False"


def test_prefetch_over_mixed_targets_makes_one_query_per_model(
    demo: tuple[str, list[Call]],
) -> None:
    _, calls = demo
    load = find(calls, 'belongsto_ext.prefetch(comments, "target")')[0]
    assert load.count == 2
    assert sorted(sql.split('"')[1] for sql in load.sql) == ["library_author", "library_book"]
    read = find(calls, "[(c.body, c.get_target()) for c in comments]")[0]
    assert read.count == 0
    assert "('Read everything she wrote.', <Author: Ursula K. Le Guin>)" in read.outcome
    assert "('A classic.', <Book: A Wizard of Earthsea>)" in read.outcome


def test_running_twice_gives_the_same_tour_and_the_same_rows() -> None:
    _, first = run_demo()
    counts = (
        Author.all_objects.count(),
        Author.objects.count(),
        Publisher.objects.count(),
        Book.objects.count(),
        Comment.objects.count(),
    )
    _, second = run_demo()
    assert [(c.code, c.outcome, c.count) for c in second] == [
        (c.code, c.outcome, c.count) for c in first
    ]
    assert (
        (
            Author.all_objects.count(),
            Author.objects.count(),
            Publisher.objects.count(),
            Book.objects.count(),
            Comment.objects.count(),
        )
        == counts
        == (4, 3, 2, 7, 2)
    )
