"""The typing tests' models: each BelongsTo field beside the Django field it replaces.

``Book`` declares its fields as most projects do, unannotated: django-stubs' mypy
plugin types them (``check_plugin.py``). ``Review`` annotates them, as pyright needs
(it has no plugin), and declares the methods the fields add (``check_types.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

from belongsto_ext import BelongsToField, BelongsToOneField
from testproject.library.models import Author, Publisher

if TYPE_CHECKING:
    from belongsto_ext import (
        AsyncCreateAssociation,
        AsyncGetAssociation,
        AsyncSetAssociation,
        CreateAssociation,
        GetAssociation,
        HasChanged,
        IsAssociation,
        PreviousKey,
        SetAssociation,
    )


class Book(models.Model):
    # Like ForeignKey: nullable, not nullable, and a lazy "app_label.Model" target.
    author = BelongsToField(
        Author, on_delete=models.SET_NULL, null=True, related_name="+", scopes=["bestselling"]
    )
    author_fk = models.ForeignKey(Author, on_delete=models.SET_NULL, null=True, related_name="+")
    publisher = BelongsToField(Publisher, on_delete=models.PROTECT, related_name="+")
    publisher_fk = models.ForeignKey(Publisher, on_delete=models.PROTECT, related_name="+")
    editor = BelongsToField("library.Author", on_delete=models.PROTECT, related_name="+")
    editor_fk = models.ForeignKey("library.Author", on_delete=models.PROTECT, related_name="+")
    # Like OneToOneField.
    translator = BelongsToOneField(
        Author, on_delete=models.SET_NULL, null=True, related_name="+", scopes="bestselling"
    )
    translator_o2o = models.OneToOneField(
        Author, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    imprint = BelongsToOneField(Publisher, on_delete=models.PROTECT, related_name="+")
    imprint_o2o = models.OneToOneField(Publisher, on_delete=models.PROTECT, related_name="+")


class Review(models.Model):
    author: BelongsToField[Author | None, Author | None] = BelongsToField(
        Author, on_delete=models.SET_NULL, null=True, related_name="+", scopes=["bestselling"]
    )
    author_fk: models.ForeignKey[Author | None, Author | None] = models.ForeignKey(
        Author, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    publisher: BelongsToField[Publisher, Publisher] = BelongsToField(
        Publisher, on_delete=models.PROTECT, related_name="+"
    )
    publisher_fk: models.ForeignKey[Publisher, Publisher] = models.ForeignKey(
        Publisher, on_delete=models.PROTECT, related_name="+"
    )
    translator: BelongsToOneField[Author | None, Author | None] = BelongsToOneField(
        Author, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    translator_o2o: models.OneToOneField[Author | None, Author | None] = models.OneToOneField(
        Author, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    if TYPE_CHECKING:
        get_author: GetAssociation[Author]
        set_author: SetAssociation[Author]
        create_author: CreateAssociation[Author]
        aget_author: AsyncGetAssociation[Author]
        aset_author: AsyncSetAssociation[Author]
        acreate_author: AsyncCreateAssociation[Author]
        is_author: IsAssociation[Author]
        has_author_changed: HasChanged
        get_previous_author_id: PreviousKey
