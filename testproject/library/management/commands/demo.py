"""``python manage.py demo``: a guided tour of belongsto_ext on the demo library.

Migrates, replaces the library's rows with a small sample, then runs
get/set/create with and without scopes, the counters and touches, and the
polymorphic ``Comment.target`` (a book or an author), printing each call, its
result and every SQL statement it issued. Each call is shown exactly as it runs: the
printed line is the code that is evaluated.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import belongsto_ext
from testproject.library.models import Author, Book, Comment, Loan, Publisher, Review

_ASSIGNMENT = re.compile(r"^(?P<name>\w+) = (?P<expr>.+)$")


class Command(BaseCommand):
    help = (
        "Migrate, create sample authors, publishers and books, then walk through "
        "get_/set_/create_<name>() with and without scopes, counters and touches, and the "
        "polymorphic Comment.target, showing the SQL of each call."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", verbosity=0, interactive=False)
        self.names: dict[str, Any] = {
            "Author": Author,
            "Book": Book,
            "Publisher": Publisher,
            "Review": Review,
            "Loan": Loan,
            "Comment": Comment,
            "belongsto_ext": belongsto_ext,
        }
        self.create_sample_data()
        self.tour_scopes()
        self.tour_set()
        self.tour_create_and_prefetch()
        self.tour_counters_and_tracking()
        self.tour_any()

    # ------------------------------------------------------------ output

    def heading(self, text: str) -> None:
        self.stdout.write("")
        self.stdout.write(self.style.MIGRATE_HEADING(f"== {text}"))

    def note(self, text: str) -> None:
        self.stdout.write(f"# {text}")

    def run(self, code: str) -> None:
        """Print ``code``, evaluate it, print its result (or error) and its SQL."""
        self.stdout.write(f">>> {code}")
        match = _ASSIGNMENT.match(code)
        expr = match["expr"] if match else code
        with CaptureQueriesContext(connection) as ctx:
            try:
                result = eval(expr, self.names)  # the fixed strings of this file only
            except (TypeError, ValueError) as exc:  # what the methods raise for bad input
                self.stdout.write(self.style.ERROR(f"!! {type(exc).__name__}: {exc}"))
            else:
                if match:
                    self.names[match["name"]] = result
                self.stdout.write(f"-> {result!r}")
        queries = [q["sql"] for q in ctx.captured_queries]
        count = f"{len(queries)} {'query' if len(queries) == 1 else 'queries'}"
        if len(queries) == 1:
            self.stdout.write(f"   {count}: {queries[0]}")
        else:
            self.stdout.write(f"   {count}{':' if queries else ''}")
            for sql in queries:
                self.stdout.write(f"     {sql}")

    # ------------------------------------------------------------ data

    def create_sample_data(self) -> None:
        """Replace every row of the library app with the sample (so reruns work)."""
        Comment.objects.all().delete()
        Review.objects.all().delete()
        Loan.objects.all().delete()
        Book.objects.all().delete()
        Author.all_objects.all().delete()
        Publisher.objects.all().delete()
        penguin = Publisher.objects.create(name="Penguin")
        gollancz = Publisher.objects.create(name="Gollancz")
        le_guin = Author.objects.create(name="Ursula K. Le Guin", bestseller=True)
        butler = Author.objects.create(name="Octavia E. Butler")
        gone = Author.objects.create(name="Retired Pseudonym", deleted_at=timezone.now())
        Book.objects.bulk_create(
            [
                Book(title="A Wizard of Earthsea", author=le_guin, publisher=penguin),
                Book(title="The Dispossessed", author=le_guin, publisher=gollancz),
                Book(title="Kindred", author=butler, publisher=penguin),
                Book(title="Parable of the Sower", author=butler, publisher=gollancz),
                Book(title="The Lost Manuscript", author=gone, publisher=penguin),
                Book(title="Anonymous Pamphlet", author=None, publisher=penguin),
            ]
        )
        earthsea = Book.objects.get(title="A Wizard of Earthsea")
        Comment.objects.bulk_create(
            [
                Comment(body="A classic.", target=earthsea),
                Comment(body="Read everything she wrote.", target=le_guin),
                Comment(body="Who wrote this?", target=gone),
            ]
        )
        self.heading("Sample data")
        self.note(
            f"{Author.all_objects.count()} authors ({Author.objects.count()} live, "
            f"{Author.bestselling.count()} bestselling, one soft-deleted: {gone.name!r}), "
            f"{Publisher.objects.count()} publishers, {Book.objects.count()} books."
        )
        self.note(
            "Author.objects hides soft-deleted authors; Author.all_objects is the base manager;"
        )
        self.note("Author.bestselling is a named scope: live authors with a bestseller.")
        self.note(
            f"{Comment.objects.count()} comments: on a book, on an author, on the soft-deleted author."
        )
        # Content types are cached for the process, as GenericForeignKey relies on:
        # creating the comments cached these two, so the tour's counts do not
        # depend on what ran before it.
        ContentType.objects.get_for_models(Book, Author)

    # ------------------------------------------------------------ tours

    def tour_scopes(self) -> None:
        self.heading("get_author(): the default scope, scope=False, and book.author")
        self.run('book = Book.objects.get(title="The Lost Manuscript")')
        self.note("The default scope (Author.objects) hides the soft-deleted author:")
        self.run("book.get_author()")
        self.note("scope=False removes the default scope (Author._base_manager):")
        self.run("book.get_author(scope=False)")
        self.note("book.author reads through the base manager too, and reuses that row:")
        self.run("book.author")
        self.run('pamphlet = Book.objects.get(title="Anonymous Pamphlet")')
        self.note("A null key needs no query:")
        self.run("pamphlet.get_author()")

        self.heading("Named scopes, lists of them, and ad-hoc QuerySets")
        self.run('book = Book.objects.get(title="A Wizard of Earthsea")')
        self.run('book.get_author(scope="bestselling")')
        self.note("Results are cached per scope: the same call again makes no query:")
        self.run('book.get_author(scope="bestselling")')
        self.note("A list of scopes selects the rows every one of them selects:")
        self.run('book.get_author(scope=["objects", "bestselling"])')
        self.note("A QuerySet of Author is used as given:")
        self.run('book.get_author(scope=Author.objects.filter(name__startswith="Ursula"))')
        self.run('kindred = Book.objects.get(title="Kindred")')
        self.run('kindred.get_author(scope="bestselling")')
        self.note("A scope that is not a manager's name is refused before any query:")
        self.run('book.get_author(scope="delete")')

    def tour_set(self) -> None:
        self.heading("set_author(): a key, an instance, bad input")
        self.run('butler = Author.objects.get(name="Octavia E. Butler")')
        self.note("A key: one UPDATE of the author column and the auto_now updated_at column:")
        self.run("book.set_author(butler.pk)")
        self.note("The new key drops the cached results: the next get reads again:")
        self.run("book.get_author()")
        self.run('le_guin = Author.objects.get(name="Ursula K. Le Guin")')
        self.note("An instance is cached: an unfiltered scope needs no query afterwards")
        self.run("book.set_author(le_guin)")
        self.run("book.get_author(scope=False)")
        self.note("... while the default scope still checks that the author is live:")
        self.run("book.get_author()")
        self.note(
            "Publisher's default manager does not filter, so get_publisher() reuses the instance:"
        )
        self.run('gollancz = Publisher.objects.get(name="Gollancz")')
        self.run("book.set_publisher(gollancz)")
        self.run("book.get_publisher()")
        self.note("Bad input is refused before the instance or the database changes:")
        for code in (
            'book.set_author("abc")',
            "book.set_author(gollancz)",
            "book.set_publisher(None)",
        ):
            self.run(code)
            self.unchanged()

    def unchanged(self) -> None:
        """Print whether ``book``'s keys in memory match its row in the database."""
        book: Book = self.names["book"]
        row = Book.objects.filter(pk=book.pk).values("author_id", "publisher_id").get()
        memory = {"author_id": book.author_id, "publisher_id": book.publisher_id}
        expected = {
            "author_id": self.names["le_guin"].pk,
            "publisher_id": self.names["gollancz"].pk,
        }
        if memory == row == expected:
            self.stdout.write(
                f"   nothing changed: author_id={row['author_id']}, "
                f"publisher_id={row['publisher_id']} in memory and in the database"
            )
        else:
            self.stdout.write(self.style.ERROR(f"   CHANGED: memory {memory}, database {row}"))

    def tour_create_and_prefetch(self) -> None:
        self.heading("create_author(): create the target and point at it, in one transaction")
        self.run('book = Book.objects.create(title="The Fifth Season", publisher=gollancz)')
        self.run('book.create_author(name="N. K. Jemisin", bestseller=True)')
        self.run("book.get_author(scope=False)")

        self.heading("prefetch(): one query for many books, per scope")
        self.run('books = list(Book.objects.order_by("title"))')
        self.run('belongsto_ext.prefetch(books, "author", scope="bestselling")')
        self.run('[(b.title, b.get_author(scope="bestselling")) for b in books]')

    def tour_counters_and_tracking(self) -> None:
        self.heading("counter_cache= and touch=: the target's counter and timestamp")
        self.note(
            "Review.book has counter_cache='reviews_count': the database's trigger counts "
            "the INSERT; the cached book is read back"
        )
        self.run('dune = Book.objects.get(title="Kindred")')
        self.run("review = Review.objects.create(book=dune, stars=5)")
        self.run("dune.reviews_count")
        self.note("Moving the review: the trigger takes 1 from the old book and adds 1 to the new")
        self.run('sower = Book.objects.get(title="Parable of the Sower")')
        self.run("review.set_book(sower)")
        self.run(
            'Book.objects.filter(pk__in=[dune.pk, sower.pk]).order_by("pk").values_list("reviews_count")'
        )
        self.note("Loan.book has touch=True: a loan's writes set the book's auto_now updated_at")
        self.run('loan = Loan.objects.create(book=sower, borrower="Lauren")')
        self.run("loan.delete()")

        self.heading("is_<name>() and change tracking: no queries")
        self.run("review.is_book(sower)")
        self.run("review.is_book(str(sower.pk))")
        self.run("review.set_book(dune, save=False)")
        self.run("review.has_book_changed()")
        self.run("review.get_previous_book_id() == sower.pk")
        self.run("review.save()")
        self.run("review.has_book_changed()")

    def tour_any(self) -> None:
        self.heading("BelongsToAnyField: Comment.target, a book or an author")
        self.note(
            'target = BelongsToAnyField("content_type", "object_id", '
            'models=["library.Book", "library.Author"], on_delete=models.CASCADE)'
        )
        self.note("get_target() uses the target's own default scope: the soft-deleted author")
        self.note("is hidden (content types are cached for the process: one query at most):")
        self.run('on_gone = Comment.objects.get(body="Who wrote this?")')
        self.run("on_gone.get_target()")
        self.note("A mapping chooses the scope per model:")
        self.run('on_gone.get_target(scope={"library.Author": False, Book: "objects"})')
        self.note("scope=False selects every row: the row just read answers it, no query:")
        self.run("on_gone.get_target(scope=False)")
        self.run('on_author = Comment.objects.get(body="Read everything she wrote.")')
        self.run('on_author.get_target(scope="bestselling")')
        self.note("A scope is resolved on the target's model: Book has no 'bestselling':")
        self.run('on_book = Comment.objects.get(body="A classic.")')
        self.run('on_book.get_target(scope="bestselling")')
        self.note("A model left out of a mapping uses its default scope:")
        self.run('on_book.get_target(scope={Author: "bestselling"})')

        self.heading("set_target(), create_target(), is_target()")
        self.note("An instance: one UPDATE of the two columns, and the instance is cached:")
        self.run('kindred = Book.objects.get(title="Kindred")')
        self.run("on_gone.set_target(kindred)")
        self.run("on_gone.get_target()")
        self.note("A model and a key, converted, and its row checked in the same transaction:")
        self.run("on_gone.set_target(Author, str(butler.pk))")
        self.run("on_gone.get_target()")
        self.note("Refused before the comment or the database changes:")
        for code in ("on_gone.set_target(gollancz)", 'on_gone.set_target(Author, "abc")'):
            self.run(code)
            self.comment_unchanged()
        self.note("create_target(): INSERT the target and UPDATE the comment, in one transaction")
        self.run(
            "left_hand = on_gone.create_target("
            'Book, title="The Left Hand of Darkness", publisher=gollancz)'
        )
        self.note("is_target() compares the two columns: no query:")
        self.run("on_gone.is_target(left_hand)")
        self.run("on_gone.is_target(butler)")

        self.heading("prefetch() over mixed targets: one query per target model")
        self.run('comments = list(Comment.objects.order_by("pk"))')
        self.run('belongsto_ext.prefetch(comments, "target")')
        self.run("[(c.body, c.get_target()) for c in comments]")

        self.heading("on_delete=CASCADE: deleting a target deletes its comments")
        self.note("Through Django's deletion Collector, as a ForeignKey's rows would be:")
        self.run("left_hand.delete()")
        self.run('Comment.objects.filter(body="Who wrote this?").exists()')

    def comment_unchanged(self) -> None:
        """Print whether ``on_gone``'s two columns in memory match its row and Butler."""
        comment: Comment = self.names["on_gone"]
        row = Comment.objects.filter(pk=comment.pk).values("content_type_id", "object_id").get()
        memory = {"content_type_id": comment.content_type_id, "object_id": comment.object_id}
        expected = {
            "content_type_id": ContentType.objects.get_for_model(Author).pk,
            "object_id": self.names["butler"].pk,
        }
        if memory == row == expected:
            self.stdout.write(
                f"   nothing changed: still the author {row['object_id']} "
                "in memory and in the database"
            )
        else:
            self.stdout.write(self.style.ERROR(f"   CHANGED: memory {memory}, database {row}"))
