"""A BelongsTo field is a ForeignKey / OneToOneField to the code that inspects
fields: ``get_internal_type()`` and the libraries that read it."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import models
from django.test.utils import isolate_apps
from django_lifecycle import AFTER_UPDATE, LifecycleModelMixin, hook

from belongsto_ext import BelongsToField, BelongsToOneField
from tests.models import Label, Volume


def test_internal_type_is_djangos() -> None:
    assert Volume._meta.get_field("shelf").get_internal_type() == "ForeignKey"
    assert Label._meta.get_field("shelf").get_internal_type() == "OneToOneField"
    plain = models.ForeignKey("tests.Shelf", on_delete=models.CASCADE)
    assert BelongsToField("tests.Shelf", on_delete=models.CASCADE).get_internal_type() == (
        plain.get_internal_type()
    )
    assert BelongsToOneField("tests.Shelf", on_delete=models.CASCADE).get_internal_type() == (
        models.OneToOneField("tests.Shelf", on_delete=models.CASCADE).get_internal_type()
    )


@pytest.mark.django_db(transaction=True)
@isolate_apps("tests")
def test_django_lifecycle_hooks_fire_on_the_relation(made_by_hand: Any) -> None:
    """django-lifecycle watches a relation through its ``<name>_id`` attribute only
    when get_internal_type() says ForeignKey: with the class name its hooks on
    the relation never fired."""
    fired: list[tuple[str, Any, Any]] = []

    class Project(models.Model):
        class Meta:
            app_label = "tests"
            db_table = "tests_lifecycle_project"

    class Task(LifecycleModelMixin, models.Model):
        project = BelongsToField(Project, on_delete=models.CASCADE, related_name="+")

        class Meta:
            app_label = "tests"
            db_table = "tests_lifecycle_task"

        @hook(AFTER_UPDATE, when="project", has_changed=True)
        def moved(self) -> None:
            fired.append(("moved", self.initial_value("project"), self.project_id))

    made_by_hand(Project, Task)
    a, b = Project.objects.create(), Project.objects.create()
    task = Task.objects.create(project=a)
    task = Task.objects.get(pk=task.pk)
    task.set_project(b)
    assert fired == [("moved", a.pk, b.pk)]
    task.project = a
    task.save()
    assert fired[1:] == [("moved", b.pk, a.pk)]
