"""Targets whose default scope depends on the context: django-scopes' tenant
scope, and managers that read a contextvar or a thread-local (no library); a
django-permanent soft-delete model; and targets of relations that declare
``scopes=``."""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models.deletion import Collector
from django.db.models.fields.related import ForeignObject
from django.db.models.fields.related_descriptors import ForwardManyToOneDescriptor
from django_scopes import ScopedManager

from belongsto_ext import BelongsToAnyField, BelongsToField

# django-permanent patches Django when it is imported, for every model of the
# process: Collector.delete (soft deletes), ForeignObject.get_extra_restriction
# (joins to a PermanentModel skip removed rows) and
# ForwardManyToOneDescriptor.get_queryset. The rest of the suite runs on Django
# as it is: Django's own are put back below, and the tests of django-permanent
# apply the library's for their duration (PERMANENT_PATCHES).
_PATCHED = (
    (Collector, "delete"),
    (ForeignObject, "get_extra_restriction"),
    (ForwardManyToOneDescriptor, "get_queryset"),
)
_DJANGO = [vars(owner)[name] for owner, name in _PATCHED]
PERMANENT_PATCHES: list[tuple[type, str, Any]] = []

try:
    from django_permanent.models import PermanentModel
except ImportError:  # django-permanent 2.0 requires Django<6.0: see pyproject.toml

    class PermanentModel(models.Model):  # type: ignore[no-redef]
        """What django-permanent's base gives a model, to the migration: the
        same column and options (its tests skip without the library)."""

        removed = models.DateTimeField(default=None, null=True, blank=True, editable=False)

        objects = models.Manager()
        deleted_objects = models.Manager()
        all_objects = models.Manager()

        class Meta:
            abstract = True
            default_manager_name = "objects"
            base_manager_name = "objects"

else:
    PERMANENT_PATCHES = [(owner, name, vars(owner)[name]) for owner, name in _PATCHED]
    for (owner, name), original in zip(_PATCHED, _DJANGO, strict=True):
        setattr(owner, name, original)


class Site(models.Model):
    name = models.CharField(max_length=50)


# ----------------------------------------------------------------- django-scopes


class Team(models.Model):
    """``objects`` selects the teams of the active ``scope(site=...)``, every team
    under ``scopes_disabled()``, and raises ``ScopeError`` outside both."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=50)

    objects = ScopedManager(site="site")
    all_objects = models.Manager()  # noqa: DJ012 (a manager, not a field)


# ------------------------------------------------- a contextvar, a thread-local

#: The current site's pk, as a middleware would set it per request.
CURRENT_SITE: ContextVar[int | None] = ContextVar("current_site", default=None)
#: The same, kept by a thread-local (``.site``), as older middlewares keep the request.
THREAD = threading.local()


class CurrentSiteManager(models.Manager):
    """The rows of the site in :data:`CURRENT_SITE`; every row when none is set."""

    def get_queryset(self) -> models.QuerySet:
        site = CURRENT_SITE.get()
        queryset = super().get_queryset()
        return queryset if site is None else queryset.filter(site_id=site)


class ThreadSiteManager(models.Manager):
    """The rows of the site in ``THREAD.site``; every row when none is set."""

    def get_queryset(self) -> models.QuerySet:
        site = getattr(THREAD, "site", None)
        queryset = super().get_queryset()
        return queryset if site is None else queryset.filter(site_id=site)


class Project(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=50)

    objects = CurrentSiteManager()
    on_thread = ThreadSiteManager()
    all_objects = models.Manager()  # noqa: DJ012 (a manager, not a field)


class Mention(models.Model):
    """A polymorphic owner of projects: the same scopes through BelongsToAnyField."""

    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    target = BelongsToAnyField(models=[Project])


# ------------------------------------------ other things a query may depend on

#: Read by ModuleSiteManager: module-level state a project may change (a feature
#: flag, a setting overridden in tests).
MODULE_STATE: dict[str, int | None] = {"site": None}


class OnDayManager(models.Manager):
    """The events of 1 January 2024 in the current time zone: literals only, but
    ``__date`` converts to the time zone active when the query is compiled."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(at__date="2024-01-01")


class ModuleSiteManager(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        site = MODULE_STATE["site"]
        queryset = super().get_queryset()
        return queryset if site is None else queryset.filter(site_id=site)


class AttributeSiteManager(models.Manager):
    """Filters by its own ``site`` attribute, which code may set at any time."""

    site: int | None = None

    def get_queryset(self) -> models.QuerySet:
        queryset = super().get_queryset()
        return queryset if self.site is None else queryset.filter(site_id=self.site)


class Event(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField()

    objects = models.Manager()
    on_day = OnDayManager()
    of_module = ModuleSiteManager()
    of_attribute = AttributeSiteManager()


class Ticket(models.Model):
    team = BelongsToField(Team, on_delete=models.CASCADE, null=True, related_name="tickets")
    project = BelongsToField(Project, on_delete=models.CASCADE, null=True, related_name="tickets")
    event = BelongsToField(Event, on_delete=models.CASCADE, null=True, related_name="tickets")


# ------------------------------------------------------------- django-permanent


class Writer(PermanentModel):
    """``objects`` (the default and the base manager) hides removed writers,
    ``all_objects`` and ``deleted_objects`` come from the library."""

    name = models.CharField(max_length=50)


class Essay(models.Model):
    title = models.CharField(max_length=50)
    # DO_NOTHING: a soft delete of the writer keeps the key.
    writer = BelongsToField(Writer, on_delete=models.DO_NOTHING, null=True, related_name="+")
    # objects is Writer's base manager: scope=False is allowed, and hides removed writers.
    listed_writer = BelongsToField(
        Writer, on_delete=models.DO_NOTHING, null=True, related_name="+", scopes=("objects",)
    )


# ---------------------------------------------------- scopes= and the base manager


class LiveManager(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(removed=False)


class Member(models.Model):
    """A soft-delete default scope; the base manager is ``all_objects``."""

    name = models.CharField(max_length=50)
    removed = models.BooleanField(default=False)

    objects = LiveManager()
    all_objects = models.Manager()  # noqa: DJ012 (a manager, not a field)

    class Meta:
        base_manager_name = "all_objects"


class Guest(models.Model):
    """A soft-delete default scope; the base manager is Django's plain one."""

    name = models.CharField(max_length=50)
    removed = models.BooleanField(default=False)

    objects = LiveManager()
    all_objects = models.Manager()  # noqa: DJ012 (a manager, not a field)


class Badge(models.Model):
    """Relations whose scope values may come from a request (``scopes=``)."""

    member = BelongsToField(
        Member, on_delete=models.CASCADE, null=True, related_name="+", scopes=("objects",)
    )
    any_member = BelongsToField(
        Member,
        on_delete=models.CASCADE,
        null=True,
        related_name="+",
        scopes=("objects", "all_objects"),
    )
    guest = BelongsToField(
        Guest, on_delete=models.CASCADE, null=True, related_name="+", scopes=("objects",)
    )
    any_guest = BelongsToField(
        Guest,
        on_delete=models.CASCADE,
        null=True,
        related_name="+",
        scopes=("objects", "all_objects"),
    )
