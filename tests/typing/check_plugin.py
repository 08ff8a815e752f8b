"""What django-stubs' mypy plugin infers for unannotated fields: a BelongsTo field
types exactly as the Django field it replaces. Checked by mypy only
(pyrightconfig.json leaves it out): pyright has no plugin, and types an unannotated
ForeignKey, and so a BelongsToField, as Unknown.
"""

from __future__ import annotations

from typing_extensions import assert_type

from testproject.library.models import Author, Publisher

from .models import Book


def foreign_key(book: Book, author: Author, publisher: Publisher) -> None:
    assert_type(book.author, Author | None)
    assert_type(book.author_fk, Author | None)
    assert_type(book.author_id, int | None)
    assert_type(book.author_fk_id, int | None)
    assert_type(book.publisher, Publisher)
    assert_type(book.publisher_fk, Publisher)
    assert_type(book.publisher_id, int)
    assert_type(book.publisher_fk_id, int)
    assert_type(book.editor, Author)
    assert_type(book.editor_fk, Author)
    assert_type(book.editor_id, int)
    assert_type(book.editor_fk_id, int)

    book.author = None
    book.author = author
    book.publisher = publisher
    book.publisher = None  # type: ignore[assignment]
    book.publisher_fk = None  # type: ignore[assignment]
    book.publisher = author  # type: ignore[assignment]
    book.editor = publisher  # type: ignore[assignment]


def one_to_one(book: Book, author: Author) -> None:
    assert_type(book.translator, Author | None)
    assert_type(book.translator_o2o, Author | None)
    assert_type(book.translator_id, int | None)
    assert_type(book.translator_o2o_id, int | None)
    assert_type(book.imprint, Publisher)
    assert_type(book.imprint_o2o, Publisher)
    assert_type(book.imprint_id, int)
    assert_type(book.imprint_o2o_id, int)

    book.translator = None
    book.imprint = None  # type: ignore[assignment]
    book.imprint_o2o = None  # type: ignore[assignment]
    book.imprint = author  # type: ignore[assignment]
