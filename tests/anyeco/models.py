"""Owners of a BelongsToAnyField with ``on_delete=CASCADE`` and their twins over a
plain ``GenericForeignKey``, both with django-simple-history; a target whose
one-to-one writes to the object it is given (``create_<name>()`` puts it back)."""

from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from simple_history.models import HistoricalRecords

from belongsto_ext import BelongsToAnyField
from tests.models import AnyPhoto, AnyPost


class Holder(models.Model):
    name = models.CharField(max_length=100)


class Badge(models.Model):
    """A target: ``Badge(holder=holder)`` caches the badge on ``holder`` (the reverse
    side of the one-to-one)."""

    label = models.CharField(max_length=100)
    holder = models.OneToOneField(
        Holder, on_delete=models.CASCADE, null=True, blank=True, related_name="badge"
    )


class Note(models.Model):
    """BelongsToAnyField with on_delete=CASCADE: hidden links for each target model."""

    body = models.CharField(max_length=100, default="")
    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    target = BelongsToAnyField(models=[AnyPost, AnyPhoto, Badge], on_delete=models.CASCADE)
    history = HistoricalRecords()

    def __str__(self) -> str:
        return self.body


class PlainNote(models.Model):
    """Note's twin over Django's GenericForeignKey: what every library already handles."""

    body = models.CharField(max_length=100, default="")
    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    target = GenericForeignKey()
    history = HistoricalRecords()

    def __str__(self) -> str:
        return self.body
