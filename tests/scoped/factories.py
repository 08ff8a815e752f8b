"""factory-boy factories for the models of tests.scoped."""

from __future__ import annotations

import datetime

import factory

from tests.scoped import models


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Site

    name = factory.Sequence(lambda n: f"Site {n}")


class TeamFactory(factory.django.DjangoModelFactory):
    """Created through ``all_objects``: ``objects`` needs an active django-scopes scope."""

    class Meta:
        model = models.Team

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"Team {n}")

    @classmethod
    def _create(cls, model_class: type, *args: object, **kwargs: object) -> models.Team:
        return models.Team.all_objects.create(**kwargs)


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Project

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"Project {n}")


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Event

    site = factory.SubFactory(SiteFactory)
    at = datetime.datetime(2024, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Ticket


class WriterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Writer

    name = factory.Sequence(lambda n: f"Writer {n}")


class EssayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Essay

    title = factory.Sequence(lambda n: f"Essay {n}")


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Member

    name = factory.Sequence(lambda n: f"Member {n}")


class GuestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Guest

    name = factory.Sequence(lambda n: f"Guest {n}")


class BadgeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Badge
