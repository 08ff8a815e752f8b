"""Static typing test, checked by mypy (mypy.ini) and pyright (pyrightconfig.json).

Each ``assert_type`` pins what both checkers infer: for annotated fields (as pyright
users declare them; ``check_plugin.py`` covers unannotated ones, with mypy) and for
the methods a field adds, declared with the Protocols of ``belongsto_ext.types``.
Each line marked ``# type: ignore[code]`` must be rejected: by mypy
(``warn_unused_ignores``) and by pyright (``reportUnnecessaryTypeIgnoreComment``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from uuid import UUID

from django.db import models
from typing_extensions import assert_type

import belongsto_ext
from belongsto_ext import BelongsToField, BelongsToOneField
from testproject.library.models import Author, Book, Comment, Publisher

from .models import Review

T = TypeVar("T")


def result(coroutine: Coroutine[Any, Any, T]) -> T:
    """What ``coroutine`` returns, awaited: pins a coroutine's result type in a form
    both checkers accept (pyright names an ``async def``'s coroutine
    ``types.CoroutineType``, mypy ``collections.abc.Coroutine``)."""
    raise NotImplementedError


def fields(review: Review, author: Author, publisher: Publisher) -> None:
    assert_type(review.author, Author | None)
    assert_type(review.author_fk, Author | None)
    assert_type(review.publisher, Publisher)
    assert_type(review.publisher_fk, Publisher)
    assert_type(review.translator, Author | None)
    assert_type(review.translator_o2o, Author | None)
    review.author = None
    review.author = author
    review.publisher = publisher

    review.publisher = None  # type: ignore[assignment]
    review.publisher = author  # type: ignore[assignment]
    review.translator = publisher  # type: ignore[assignment]
    BelongsToField(Author, on_delete=models.CASCADE, scopes=1)  # type: ignore[arg-type]
    BelongsToOneField(Author, on_delete=models.CASCADE, scopes=[1])  # type: ignore[list-item]


def sync(review: Review, author: Author, publisher: Publisher) -> None:
    assert_type(review.get_author(), Author | None)
    assert_type(review.get_author(scope=False), Author | None)
    assert_type(review.get_author(scope="bestselling", using="default"), Author | None)
    assert_type(review.get_author(scope=["bestselling", "objects"]), Author | None)
    assert_type(review.get_author(scope=Author.all_objects.filter(name="x")), Author | None)
    assert_type(review.set_author(author), None)
    assert_type(review.set_author(5, save=False), None)
    assert_type(review.set_author("5", update_fields=["author"]), None)
    assert_type(review.set_author(UUID(int=1)), None)
    assert_type(review.set_author(None), None)
    assert_type(review.create_author(), Author)
    assert_type(review.create_author({"name": "Ann"}, save=False, bestseller=True), Author)
    assert_type(review.set_author(author, validate=True), None)
    assert_type(review.is_author(author), bool)
    assert_type(review.is_author("5"), bool)
    assert_type(review.is_author(None), bool)
    assert_type(review.has_author_changed(), bool)
    assert_type(review.get_previous_author_id(), Any)

    # Too many positional arguments, checked as assignments: their error code is the same
    # in every mypy release (such a call is [misc] in mypy 1, [call-arg] in mypy 2).
    positional_scope: Callable[[str], Author | None] = review.get_author  # type: ignore[assignment]
    positional_save: Callable[[Author, bool], None] = review.set_author  # type: ignore[assignment]
    two_mappings: Callable[[dict[str, Any], dict[str, Any]], Author] = review.create_author  # type: ignore[assignment]
    review.get_author(scope=1)  # type: ignore[arg-type]
    review.get_author(scope=Publisher.objects.all())  # type: ignore[arg-type]
    review.get_author(scop=True)  # type: ignore[call-arg]
    review.set_author(publisher)  # type: ignore[arg-type]
    review.set_author(b"5")  # type: ignore[arg-type]
    review.set_author(author, save="yes")  # type: ignore[arg-type]
    review.create_author(["name"])  # type: ignore[arg-type]
    wrong: Publisher = review.create_author()  # type: ignore[assignment]
    maybe: Author = review.get_author()  # type: ignore[assignment]
    review.is_author(publisher)  # type: ignore[arg-type]
    review.set_author(author, validate="yes")  # type: ignore[arg-type]
    review.has_author_changed(author)  # type: ignore[call-arg]


async def asynchronous(review: Review, author: Author) -> None:
    # Never run.
    assert_type(result(review.aget_author()), Author | None)
    assert_type(result(review.aset_author(author)), None)
    assert_type(result(review.acreate_author()), Author)
    assert_type(await review.aget_author(), Author | None)
    assert_type(await review.aget_author(scope="bestselling", using="default"), Author | None)
    assert_type(await review.aset_author(author), None)
    assert_type(await review.aset_author(7, save=False), None)
    assert_type(await review.acreate_author(), Author)
    assert_type(await review.acreate_author({"name": "Ann"}, save=False), Author)

    await review.aget_author(scope=1)  # type: ignore[arg-type]
    await review.aset_author(object())  # type: ignore[arg-type]
    unawaited: Author = review.acreate_author()  # type: ignore[assignment]


def polymorphic(comment: Comment, book: Book, author: Author, publisher: Publisher) -> None:
    """BelongsToAnyField's methods, declared with the *AnyAssociation Protocols."""
    assert_type(comment.get_target(), Book | Author | None)
    assert_type(comment.get_target(scope=False, using="default"), Book | Author | None)
    assert_type(
        comment.get_target(scope={Book: "objects", "library.Author": False}), Book | Author | None
    )
    assert_type(comment.set_target(book), None)
    assert_type(comment.set_target(Author, 5), None)
    assert_type(comment.set_target(None, save=False), None)
    assert_type(comment.create_target(Book, title="t"), Book)
    assert_type(comment.is_target(author), bool)
    assert_type(comment.is_target(None), bool)
    assert_type(belongsto_ext.prefetch([comment], "target", scope={Book: "objects"}), None)
    belongsto_ext.ScopedPrefetch("target", scope={"library.Author": False})

    comment.get_target(scope=1)  # type: ignore[arg-type]
    comment.set_target(publisher)  # type: ignore[arg-type]
    comment.is_target(publisher)  # type: ignore[arg-type]
    wrong: Author = comment.create_target(Book)  # type: ignore[assignment]
