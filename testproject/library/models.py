"""The demo library: authors, publishers and books.

``Author`` shows the scopes: its default manager hides soft-deleted authors,
``Author.all_objects`` sees every row, ``Author.bestselling`` is a named scope.
``Comment`` is the polymorphic belongs-to: a comment on a book or on an author.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.contenttypes.models import ContentType
from django.db import models

from belongsto_ext import BelongsToAnyField, BelongsToField

if TYPE_CHECKING:
    from belongsto_ext import (
        AsyncCreateAssociation,
        AsyncGetAssociation,
        AsyncSetAssociation,
        CreateAnyAssociation,
        CreateAssociation,
        GetAnyAssociation,
        GetAssociation,
        HasChanged,
        IsAnyAssociation,
        IsAssociation,
        PreviousKey,
        SetAnyAssociation,
        SetAssociation,
    )


class LiveAuthorManager(models.Manager):
    """Default scope: hide soft-deleted authors."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(deleted_at__isnull=True)


class BestsellingManager(models.Manager):
    """Named scope ``"bestselling"``: live authors with a bestseller."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(deleted_at__isnull=True, bestseller=True)


class Author(models.Model):
    name = models.CharField(max_length=100)
    bestseller = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = LiveAuthorManager()
    # ruff (DJ012) takes models.Manager() for a field; moving it above `objects` would
    # make it the default manager.
    all_objects = models.Manager()  # noqa: DJ012
    bestselling = BestsellingManager()

    class Meta:
        base_manager_name = "all_objects"

    def __str__(self) -> str:
        return self.name


class Publisher(models.Model):
    name = models.CharField(max_length=100, unique=True)

    def __str__(self) -> str:
        return self.name


class Book(models.Model):
    title = models.CharField(max_length=200)
    author = BelongsToField(Author, on_delete=models.SET_NULL, null=True, related_name="books")
    publisher = BelongsToField(Publisher, on_delete=models.PROTECT, related_name="books")
    updated_at = models.DateTimeField(auto_now=True)
    reviews_count = models.PositiveIntegerField(default=0)

    if TYPE_CHECKING:
        get_author: GetAssociation[Author]
        set_author: SetAssociation[Author]
        create_author: CreateAssociation[Author]
        aget_author: AsyncGetAssociation[Author]
        aset_author: AsyncSetAssociation[Author]
        acreate_author: AsyncCreateAssociation[Author]

    def __str__(self) -> str:
        return self.title


class Review(models.Model):
    """Keeps ``Book.reviews_count``: +1 on insert, -1 on delete, moved by a key change."""

    stars = models.PositiveSmallIntegerField(default=3)
    book = BelongsToField(
        Book, on_delete=models.CASCADE, related_name="reviews", counter_cache="reviews_count"
    )

    if TYPE_CHECKING:
        set_book: SetAssociation[Book]
        is_book: IsAssociation[Book]
        has_book_changed: HasChanged
        get_previous_book_id: PreviousKey

    def __str__(self) -> str:
        return f"{self.stars} stars"


class Loan(models.Model):
    """Each write sets the borrowed book's ``updated_at`` (its auto_now field) to now."""

    borrower = models.CharField(max_length=100)
    book = BelongsToField(Book, on_delete=models.CASCADE, related_name="loans", touch=True)

    if TYPE_CHECKING:
        set_book: SetAssociation[Book]

    def __str__(self) -> str:
        return f"loan to {self.borrower}"


class Comment(models.Model):
    """A comment on a book or on an author; deleting either deletes its comments."""

    body = models.CharField(max_length=200)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    target = BelongsToAnyField(
        "content_type",
        "object_id",
        models=["library.Book", "library.Author"],
        on_delete=models.CASCADE,
    )

    if TYPE_CHECKING:
        get_target: GetAnyAssociation[Book | Author]
        set_target: SetAnyAssociation[Book | Author]
        create_target: CreateAnyAssociation[Book | Author]
        is_target: IsAnyAssociation[Book | Author]

    def __str__(self) -> str:
        return self.body
