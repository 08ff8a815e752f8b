"""Models the test suite exercises: one per option of ForeignKey / OneToOneField
that belongsto_ext must keep working."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models

from belongsto_ext import BelongsToField, BelongsToOneField


class LiveManager(models.Manager):
    """Default manager that hides soft-deleted rows."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(deleted=False)


class ActiveManager(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(active=True)


class VerifiedManager(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(verified=True)


class Author(models.Model):
    """Target with scopes: a soft-delete default manager and named managers."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50, unique=True, null=True, blank=True)
    deleted = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    verified = models.BooleanField(default=False)

    objects = LiveManager()
    # A manager, not a field (DJ012 counts only `objects` as one); it must stay after
    # `objects`, the first manager declared, which Django makes the default manager.
    all_objects = models.Manager()  # noqa: DJ012
    active_authors = ActiveManager()
    verified_authors = VerifiedManager()

    class Meta:
        ordering = ["id"]
        base_manager_name = "all_objects"

    def __str__(self) -> str:
        return self.name


class Publisher(models.Model):
    """Target whose default manager does not filter."""

    name = models.CharField(max_length=100, unique=True)

    def __str__(self) -> str:
        return self.name


class Book(models.Model):
    title = models.CharField(max_length=200)
    pages = models.IntegerField(default=0)
    author = BelongsToField(
        Author, on_delete=models.CASCADE, null=True, blank=True, related_name="books"
    )
    publisher = BelongsToField(Publisher, on_delete=models.PROTECT, related_name="books")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.title


class SlugBook(models.Model):
    """``to_field``, ``db_column`` and a lazy "app.Model" string."""

    title = models.CharField(max_length=200)
    author = BelongsToField(
        "tests.Author",
        to_field="slug",
        db_column="author_slug",
        on_delete=models.SET_NULL,
        null=True,
        related_name="slug_books",
    )


class Employee(models.Model):
    """A relation to ``"self"``."""

    name = models.CharField(max_length=100)
    manager = BelongsToField("self", on_delete=models.SET_NULL, null=True, related_name="reports")


class LooseBook(models.Model):
    """``db_constraint=False``: the key may dangle."""

    title = models.CharField(max_length=200)
    author = BelongsToField(
        Author, on_delete=models.DO_NOTHING, db_constraint=False, null=True, related_name="+"
    )


class Profile(models.Model):
    """The one-to-one field."""

    bio = models.TextField(blank=True)
    author = BelongsToOneField(Author, on_delete=models.CASCADE, null=True, related_name="profile")


class Owned(models.Model):
    """Abstract base: the field and a method the user wrote on purpose."""

    publisher = BelongsToField(Publisher, on_delete=models.CASCADE, null=True, related_name="+")
    author = BelongsToField(Author, on_delete=models.CASCADE, null=True, related_name="+")

    class Meta:
        abstract = True

    def get_author(self, *, scope: object = None) -> str:
        return "user-defined get_author"


class Magazine(Owned):
    title = models.CharField(max_length=200)


class Pamphlet(Owned):
    title = models.CharField(max_length=200)

    def set_publisher(self, value: object) -> str:
        return "user-defined set_publisher"


class Novel(Book):
    """Multi-table inheritance: the field lives on the parent table."""

    genre = models.CharField(max_length=50, default="")
    editor = BelongsToField(Author, on_delete=models.SET_NULL, null=True, related_name="edited")


class ProxyAuthor(Author):
    class Meta:
        proxy = True


class ProxyBook(Book):
    class Meta:
        proxy = True


class ProxyTargetBook(models.Model):
    """A field that points at a proxy model."""

    title = models.CharField(max_length=200)
    author = BelongsToField(ProxyAuthor, on_delete=models.CASCADE, null=True, related_name="+")


class Tag(models.Model):
    """A non-integer (UUID) primary key target."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    label = models.CharField(max_length=50)


class Tagged(models.Model):
    tag = BelongsToField(Tag, on_delete=models.CASCADE, null=True)


class Country(models.Model):
    """A CharField primary key target."""

    code = models.CharField(max_length=2, primary_key=True)
    name = models.CharField(max_length=100)


class City(models.Model):
    name = models.CharField(max_length=100)
    country = BelongsToField(Country, on_delete=models.CASCADE)


class Review(models.Model):
    """Points at a Book: ``ScopedPrefetch("book__author")`` goes through it."""

    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="reviews")
    stars = models.IntegerField(default=3)


# ------------------------------------------- touch, counter_cache and friends


class Node(models.Model):
    """A tree whose every write touches the node's ancestors, up to the root."""

    name = models.CharField(max_length=20)
    parent = BelongsToField(
        "self", on_delete=models.CASCADE, null=True, related_name="children", touch=True
    )
    updated_at = models.DateTimeField(auto_now=True)


class Library(models.Model):
    """The end of a touch chain: a Shelf's writes touch its Library."""

    name = models.CharField(max_length=100)
    updated = models.DateTimeField(auto_now=True)


class Shelf(models.Model):
    """Target of Volume's touch= and counter_cache=; touches its Library in turn."""

    name = models.CharField(max_length=100)
    volumes_count = models.IntegerField(default=0)
    labels_count = models.PositiveIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)
    checked_on = models.DateField(null=True)
    library = BelongsToField(Library, on_delete=models.CASCADE, null=True, touch=True)
    # Counted by two relations together: Slip.shelf and Card.shelf.
    slips_count = models.PositiveIntegerField(default=0)


def lost_and_found() -> int:
    """The shelf that Slip's SET_DEFAULT and Card's SET() move owners onto."""
    return Shelf.objects.get_or_create(name="Lost and found")[0].pk


class Volume(models.Model):
    """Counts itself on its Shelf and touches it (``updated``, the auto_now field)."""

    title = models.CharField(max_length=100)
    shelf = BelongsToField(
        Shelf,
        on_delete=models.CASCADE,
        null=True,
        related_name="volumes",
        touch=True,
        counter_cache="volumes_count",
    )


class Slip(models.Model):
    """Counts into ``Shelf.slips_count`` with Card; deleting its shelf moves it to
    the lost-and-found shelf (SET_DEFAULT, through ``QuerySet.update()``)."""

    note = models.CharField(max_length=100, default="")
    shelf = BelongsToField(
        Shelf,
        on_delete=models.SET_DEFAULT,
        default=lost_and_found,
        null=True,
        related_name="slips",
        touch=True,
        counter_cache="slips_count",
    )


class Card(models.Model):
    """Counts into ``Shelf.slips_count`` with Slip; deleting its shelf moves it
    to the lost-and-found shelf (SET())."""

    note = models.CharField(max_length=100, default="")
    shelf = BelongsToField(
        Shelf,
        on_delete=models.SET(lost_and_found),
        null=True,
        related_name="cards",
        counter_cache="slips_count",
    )


class Label(models.Model):
    """A one-to-one that counts and touches a named date field."""

    text = models.CharField(max_length=100)
    shelf = BelongsToOneField(
        Shelf,
        on_delete=models.CASCADE,
        null=True,
        related_name="label",
        touch="checked_on",
        counter_cache="labels_count",
    )


class Account(models.Model):
    """create_owner() goes through UserManager.create_user() (the default for a
    manager that has it); create_admin() through create_superuser()."""

    owner = BelongsToField(
        "auth.User", on_delete=models.SET_NULL, null=True, related_name="accounts"
    )
    admin = BelongsToField(
        "auth.User",
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        create_method="create_superuser",
    )
    plain = BelongsToField(
        "auth.User", on_delete=models.SET_NULL, null=True, related_name="+", create_method="create"
    )


class CheckedBook(models.Model):
    """validate_scope: the default scope with limit_choices_to, and a named one."""

    author = BelongsToField(
        Author,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        limit_choices_to={"verified": True},
        validate_scope=True,
    )
    active = BelongsToField(
        Author,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        validate_scope="active_authors",
    )


class StrictBook(models.Model):
    """strict=True: reads that would query raise FieldFetchBlocked."""

    author = BelongsToField(
        Author, on_delete=models.CASCADE, null=True, related_name="+", strict=True
    )
    profile_owner = BelongsToOneField(
        Author, on_delete=models.CASCADE, null=True, related_name="+", strict=True
    )


# ---- BelongsToAnyField
# Targets (AnyPost, AnyPhoto), a model no relation allows (AnyTag), and one owner
# per on_delete kind. The owners' two columns are the ones GenericForeignKey uses.

from django.contrib.contenttypes.fields import GenericRelation  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402

from belongsto_ext import BelongsToAnyField  # noqa: E402


class PublishedManager(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(published=True)


class VisibleManager(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(hidden=False)


class AnyPost(models.Model):
    """A target whose default manager does not filter; ``published_posts`` is a scope."""

    title = models.CharField(max_length=100)
    published = models.BooleanField(default=True)
    # GenericRelation keeps working beside the field's own machinery.
    comments = GenericRelation("AnyComment")

    objects = models.Manager()
    published_posts = PublishedManager()

    def __str__(self) -> str:
        return self.title


class AnyPhoto(models.Model):
    """A target whose default scope hides rows; ``all_photos`` is its base manager."""

    caption = models.CharField(max_length=100)
    hidden = models.BooleanField(default=False)

    objects = VisibleManager()
    all_photos = models.Manager()  # noqa: DJ012

    class Meta:
        base_manager_name = "all_photos"

    def __str__(self) -> str:
        return self.caption


class AnyTag(models.Model):
    """A model none of the relations allows."""

    name = models.CharField(max_length=100)


class AnyComment(models.Model):
    """CASCADE: deleting a post or a photo deletes its comments."""

    body = models.CharField(max_length=100, default="")
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, null=True, blank=True)
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    target = BelongsToAnyField(
        "content_type", "object_id", models=[AnyPost, "tests.AnyPhoto"], on_delete=models.CASCADE
    )
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.body


class AnyBookmark(models.Model):
    """SET_NULL: both columns are nulled."""

    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    target = BelongsToAnyField(models=[AnyPost, AnyPhoto], on_delete=models.SET_NULL)


class AnyPin(models.Model):
    """PROTECT: a pinned post cannot be deleted."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.BigIntegerField()
    target = BelongsToAnyField(models=[AnyPost, AnyPhoto], on_delete=models.PROTECT)


class AnyFlag(models.Model):
    """RESTRICT: a flagged post can only go when its flags go too (through ``post``)."""

    post = models.ForeignKey(AnyPost, on_delete=models.CASCADE, null=True, related_name="+")
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    target = BelongsToAnyField(models=[AnyPost, AnyPhoto], on_delete=models.RESTRICT)


class AnyNote(models.Model):
    """DO_NOTHING and no models=: GenericForeignKey's behaviour, over a text column."""

    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, null=True, related_name="+"
    )
    object_id = models.CharField(max_length=40, null=True)  # noqa: DJ001  (as GFK users write it)
    target = BelongsToAnyField()


class OwnRefreshBook(models.Model):
    """A model that defines refresh_from_db() itself: this package does not wrap
    it, and its key attribute tells a refresh from an assignment by the stack."""

    author = BelongsToField(Author, on_delete=models.SET_NULL, null=True, related_name="+")
    refreshes = 0

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        self.refreshes += 1
        super().refresh_from_db(*args, **kwargs)


class PeerBook(models.Model):
    """fetch="peers": reading one book's author lazily loads every peer's."""

    title = models.CharField(max_length=100, default="")
    author = BelongsToField(
        Author, on_delete=models.SET_NULL, null=True, related_name="+", fetch="peers"
    )


class GuardedBook(models.Model):
    """strict="n_plus_one": a lazy load among peers is refused, alone it is not."""

    title = models.CharField(max_length=100, default="")
    author = BelongsToField(
        Author, on_delete=models.SET_NULL, null=True, related_name="+", strict="n_plus_one"
    )


class AnyPeerNote(models.Model):
    """fetch="peers" on the polymorphic field."""

    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, null=True, related_name="+"
    )
    object_id = models.PositiveBigIntegerField(null=True)
    target = BelongsToAnyField(models=[AnyPost, AnyPhoto], fetch="peers")


class AnyWatch(models.Model):
    """strict=True: a read that would query raises FieldFetchBlocked."""

    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, null=True, related_name="+"
    )
    object_id = models.PositiveBigIntegerField(null=True)
    target = BelongsToAnyField(models=[AnyPost, AnyPhoto], strict=True)


class AnyLike(models.Model):
    """scopes=: only these manager names are scope strings (and False, where the
    name is the base manager's rows)."""

    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, null=True, related_name="+"
    )
    object_id = models.PositiveBigIntegerField(null=True)
    target = BelongsToAnyField(models=[AnyPost, AnyPhoto], scopes=["objects"])


# ---------------------------------------- restores by django-reversion and simple-history

import reversion  # noqa: E402
from simple_history import register as register_history  # noqa: E402

reversion.register(Shelf)
reversion.register(Volume)
register_history(Volume, app="tests")  # tests.HistoricalVolume, Volume.history
