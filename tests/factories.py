"""factory-boy factories for the models of every test app: tests (tests/models.py,
BelongsToAnyField's targets and owners included), tests.ecosystem and tests.scoped.
A model's factory is named after it; BelongsToAnyField's test models are the Any*
ones."""

from __future__ import annotations

import datetime
from typing import Any

import factory

from tests import models
from tests.ecosystem import models as ecosystem
from tests.scoped import models as scoped


class PublisherFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Publisher
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Publisher {n}")


class AuthorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Author

    name = factory.Sequence(lambda n: f"Author {n}")
    slug = factory.Sequence(lambda n: f"author-{n}")


class BookFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Book

    title = factory.Sequence(lambda n: f"Book {n}")
    publisher = factory.SubFactory(PublisherFactory)
    author = None


class SlugBookFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SlugBook

    title = factory.Sequence(lambda n: f"Slug book {n}")


class EmployeeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Employee

    name = factory.Sequence(lambda n: f"Employee {n}")


class LooseBookFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.LooseBook

    title = factory.Sequence(lambda n: f"Loose book {n}")


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Profile


class NovelFactory(BookFactory):
    class Meta:
        model = models.Novel


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Tag

    label = factory.Sequence(lambda n: f"tag-{n}")


class CountryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Country

    code = factory.Sequence(lambda n: f"{chr(65 + n // 26 % 26)}{chr(65 + n % 26)}")
    name = factory.Sequence(lambda n: f"Country {n}")


# ---------------------------------------------- counter_cache= and touch=


class LibraryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Library

    name = factory.Sequence(lambda n: f"Library {n}")


class ShelfFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Shelf

    name = factory.Sequence(lambda n: f"Shelf {n}")
    library = factory.SubFactory(LibraryFactory)


class VolumeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Volume

    title = factory.Sequence(lambda n: f"Volume {n}")


# ------------------------------------------------------- BelongsToAnyField


class AnyPostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.AnyPost

    title = factory.Sequence(lambda n: f"Post {n}")


class AnyPhotoFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.AnyPhoto

    caption = factory.Sequence(lambda n: f"Photo {n}")


class AnyCommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.AnyComment

    body = factory.Sequence(lambda n: f"Comment {n}")


# -------------------------------------------- tests.ecosystem (third-party libraries)


class VendorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ecosystem.Vendor

    name = factory.Sequence(lambda n: f"Vendor {n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ecosystem.Product

    name = factory.Sequence(lambda n: f"Product {n}")
    vendor = None


class PlaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ecosystem.Place

    name = factory.Sequence(lambda n: f"Place {n}")


class WarehouseFactory(PlaceFactory):
    class Meta:
        model = ecosystem.Warehouse

    capacity = 10


class MediaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ecosystem.Media

    title = factory.Sequence(lambda n: f"Media {n}")


class VideoFactory(MediaFactory):
    class Meta:
        model = ecosystem.Video

    seconds = 30


class PhotoFactory(MediaFactory):
    class Meta:
        model = ecosystem.Photo

    width = 640


class ArticleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ecosystem.Article

    title = factory.Sequence(lambda n: f"Article {n}")


class NoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ecosystem.Note

    text = factory.Sequence(lambda n: f"Note {n}")

    @classmethod
    def _get_manager(cls, model_class: type[ecosystem.Note]) -> Any:
        # factory-boy creates through ``objects``, deprecated on SoftDeletableModel.
        return model_class.available_objects


class GadgetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ecosystem.Gadget

    name = factory.Sequence(lambda n: f"Gadget {n}")


# ------------------------------------------- tests.scoped (scopes under context)


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = scoped.Site

    name = factory.Sequence(lambda n: f"Site {n}")


class TeamFactory(factory.django.DjangoModelFactory):
    """Created through ``all_objects``: ``objects`` needs an active django-scopes scope."""

    class Meta:
        model = scoped.Team

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"Team {n}")

    @classmethod
    def _create(cls, model_class: type, *args: object, **kwargs: object) -> scoped.Team:
        return scoped.Team.all_objects.create(**kwargs)


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = scoped.Project

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"Project {n}")


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = scoped.Event

    site = factory.SubFactory(SiteFactory)
    at = datetime.datetime(2024, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = scoped.Ticket


class WriterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = scoped.Writer

    name = factory.Sequence(lambda n: f"Writer {n}")


class EssayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = scoped.Essay

    title = factory.Sequence(lambda n: f"Essay {n}")


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = scoped.Member

    name = factory.Sequence(lambda n: f"Member {n}")


class GuestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = scoped.Guest

    name = factory.Sequence(lambda n: f"Guest {n}")


class BadgeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = scoped.Badge
