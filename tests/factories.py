"""factory-boy factories for the test models."""

from __future__ import annotations

import factory

from tests import models


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
