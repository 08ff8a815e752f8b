"""Targets built on the libraries users combine belongsto_ext with: a
django-safedelete model, django-model-utils' inheritance and query managers,
a django-polymorphic hierarchy; and the owners pointing at them."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import sql
from model_utils.managers import InheritanceManager, QueryManager
from model_utils.models import SoftDeletableModel
from polymorphic.models import PolymorphicModel
from safedelete.managers import SafeDeleteManager
from safedelete.models import SOFT_DELETE, SafeDeleteModel

from belongsto_ext import BelongsToField

# ------------------------------------------------------------ django-safedelete


class VerifiedManager(SafeDeleteManager):
    """A named scope on top of safedelete's: live and verified vendors."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(is_verified=True)


class Vendor(SafeDeleteModel):
    """``objects`` (live), ``all_objects``, ``deleted_objects`` from the library, and
    ``verified``. The filters are added when the query is compiled."""

    _safedelete_policy = SOFT_DELETE

    name = models.CharField(max_length=50)
    is_verified = models.BooleanField(default=True)

    verified = VerifiedManager()

    class Meta:
        # Without it, the manager declared here would become the default manager.
        default_manager_name = "objects"

    def __str__(self) -> str:
        return self.name


class ProxyVendor(Vendor):
    """Same table and SQL as Vendor: a QuerySet of it is another scope (proxy instances)."""

    class Meta:
        proxy = True


class Product(models.Model):
    name = models.CharField(max_length=50)
    vendor = BelongsToField(Vendor, on_delete=models.CASCADE, null=True, related_name="products")
    # Scope names may come from a request here: only these two are accepted.
    listed_vendor = BelongsToField(
        Vendor,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        scopes=("objects", "verified"),
    )

    def __str__(self) -> str:
        return self.name


class SoftProduct(SafeDeleteModel):
    """A soft-deletable owner: saving it undeletes it unless ``keep_deleted=True``."""

    _safedelete_policy = SOFT_DELETE

    vendor = BelongsToField(Vendor, on_delete=models.CASCADE, null=True, related_name="+")


# ----------------------------------------------------------- django-model-utils


class SubclassesManager(InheritanceManager):
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().select_subclasses()


class Place(models.Model):
    name = models.CharField(max_length=50)

    objects = InheritanceManager()
    with_subclasses = SubclassesManager()


class Warehouse(Place):
    capacity = models.IntegerField(default=0)


class Article(models.Model):
    """A default scope from ``QueryManager``: only published articles."""

    title = models.CharField(max_length=50)
    published = models.BooleanField(default=False)

    objects = QueryManager(published=True)
    all_objects = models.Manager()  # noqa: DJ012 (a manager, not a field)

    class Meta:
        base_manager_name = "all_objects"


class Note(SoftDeletableModel):
    """model-utils' soft delete: ``available_objects`` hides removed rows; its
    ``objects`` does too, and warns that it is deprecated."""

    text = models.CharField(max_length=50)

    class Meta:
        default_manager_name = "available_objects"


# ----------------------------------------------------------- django-polymorphic


class Media(PolymorphicModel):
    title = models.CharField(max_length=50)


class Video(Media):
    seconds = models.IntegerField(default=0)


class Photo(Media):
    width = models.IntegerField(default=0)


# ------------------------------------------- a filter added when compiled, no library


class LateFilterQuery(sql.Query):
    """Adds ``hidden=False`` only in ``get_compiler()``, as django-safedelete's Query
    does: the uncompiled ``where`` is empty."""

    late_filter_applied = False

    def get_compiler(self, *args: Any, **kwargs: Any) -> Any:
        if not self.late_filter_applied:
            self.add_q(models.Q(hidden=False))
            self.late_filter_applied = True
        return super().get_compiler(*args, **kwargs)


class LateFilterQuerySet(models.QuerySet):
    def __init__(self, model: Any = None, query: Any = None, **kwargs: Any) -> None:
        super().__init__(model, query if query is not None else LateFilterQuery(model), **kwargs)


class Gadget(models.Model):
    """``objects`` (the default) hides ``hidden`` rows, but only once compiled."""

    name = models.CharField(max_length=50)
    hidden = models.BooleanField(default=False)

    objects = models.Manager.from_queryset(LateFilterQuerySet)()
    all_objects = models.Manager()  # noqa: DJ012 (a manager, not a field)


# -------------------------------------------------------------------- owners


class Shelf(models.Model):
    place = BelongsToField(Place, on_delete=models.CASCADE, null=True, related_name="+")
    media = BelongsToField(Media, on_delete=models.CASCADE, null=True, related_name="+")
    article = BelongsToField(Article, on_delete=models.CASCADE, null=True, related_name="+")
    note = BelongsToField(Note, on_delete=models.CASCADE, null=True, related_name="+")


class Dock(models.Model):
    """Points at a multi-table child: a QuerySet of its parent is not a scope of it."""

    warehouse = BelongsToField(Warehouse, on_delete=models.CASCADE, null=True, related_name="+")


class Toolbox(models.Model):
    gadget = BelongsToField(Gadget, on_delete=models.CASCADE, null=True, related_name="+")
