"""Static typing test, checked by mypy (see mypy.ini), never run or collected by pytest.

Each ``assert_type`` pins what a checker infers for a declared method; each line
marked ``# type: ignore[code]`` must be rejected (``warn_unused_ignores`` fails
the run if it is accepted).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.db import models
from typing_extensions import assert_type

from belongsto_ext import (
    AsyncCreateAssociation,
    AsyncGetAssociation,
    AsyncSetAssociation,
    BelongsToField,
    CreateAssociation,
    GetAssociation,
    SetAssociation,
)
from testproject.library.models import Author, Publisher


class Review(models.Model):
    """Declares the methods as a user does."""

    author = BelongsToField(Author, on_delete=models.CASCADE, null=True)

    if TYPE_CHECKING:
        get_author: GetAssociation[Author]
        set_author: SetAssociation[Author]
        create_author: CreateAssociation[Author]
        aget_author: AsyncGetAssociation[Author]
        aset_author: AsyncSetAssociation[Author]
        acreate_author: AsyncCreateAssociation[Author]

    class Meta:
        app_label = "library"


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

    review.get_author("bestselling")  # type: ignore[misc]
    review.get_author(scope=1)  # type: ignore[arg-type]
    review.get_author(scope=Publisher.objects.all())  # type: ignore[arg-type]
    review.get_author(scop=True)  # type: ignore[call-arg]
    review.set_author(publisher)  # type: ignore[arg-type]
    review.set_author(b"5")  # type: ignore[arg-type]
    review.set_author(author, True)  # type: ignore[misc]
    review.set_author(author, save="yes")  # type: ignore[arg-type]
    review.create_author(["name"])  # type: ignore[arg-type]
    review.create_author({"name": "Ann"}, {"bestseller": True})  # type: ignore[arg-type,misc]
    wrong: Publisher = review.create_author()  # type: ignore[assignment]
    maybe: Author = review.get_author()  # type: ignore[assignment]


async def asynchronous(review: Review, author: Author) -> None:
    # Never run: "_ =" only tells mypy the coroutines are used.
    _ = assert_type(review.aget_author(), Coroutine[Any, Any, Author | None])
    _ = assert_type(review.aset_author(author), Coroutine[Any, Any, None])
    _ = assert_type(review.acreate_author(), Coroutine[Any, Any, Author])
    assert_type(await review.aget_author(), Author | None)
    assert_type(await review.aget_author(scope="bestselling", using="default"), Author | None)
    assert_type(await review.aset_author(author), None)
    assert_type(await review.aset_author(7, save=False), None)
    assert_type(await review.acreate_author(), Author)
    assert_type(await review.acreate_author({"name": "Ann"}, save=False), Author)

    await review.aget_author(scope=1)  # type: ignore[arg-type]
    await review.aset_author(object())  # type: ignore[arg-type]
    unawaited: Author = review.acreate_author()  # type: ignore[assignment]
