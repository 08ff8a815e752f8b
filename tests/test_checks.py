"""System checks: each belongsto_ext check id on the configuration it catches,
and silence on configurations that are right or that Django itself reports."""

from __future__ import annotations

from functools import cached_property

from django.contrib.contenttypes.fields import GenericForeignKey
from django.core import checks
from django.core.management import call_command
from django.db import models
from django.test.utils import isolate_apps

from belongsto_ext import BelongsToField, BelongsToOneField


def short(*expected: checks.CheckMessage) -> list[checks.CheckMessage]:
    """The expected messages, once checked to read well in `manage.py check` output."""
    for message in expected:
        assert len(message.msg) < 80, message.msg
        assert message.hint
        assert "\n" not in message.hint
    return list(expected)


def field_of(model: type[models.Model], name: str) -> models.Field:
    return model._meta.get_field(name)  # type: ignore[return-value]


# ------------------------------------------------- E001: a model field's name


@isolate_apps("tests")
def test_e001_field_declared_before_takes_the_name() -> None:
    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Essay(models.Model):
        get_writer = models.CharField(max_length=10)
        writer = BelongsToField(Writer, on_delete=models.CASCADE, null=True)

        class Meta:
            app_label = "tests"

    field = field_of(Essay, "writer")
    assert field.check() == short(
        checks.Error(
            "get_writer() is unavailable: field 'get_writer' uses that name.",
            hint="Rename the field 'get_writer' or 'writer'.",
            obj=field,
            id="belongsto_ext.E001",
        )
    )


@isolate_apps("tests")
def test_e001_field_declared_after_replaces_the_method() -> None:
    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Essay(models.Model):
        writer = BelongsToField(Writer, on_delete=models.CASCADE, null=True)
        acreate_writer = models.IntegerField(default=0)

        class Meta:
            app_label = "tests"

    field = field_of(Essay, "writer")
    assert field.check() == short(
        checks.Error(
            "acreate_writer() is unavailable: field 'acreate_writer' uses that name.",
            hint="Rename the field 'acreate_writer' or 'writer'.",
            obj=field,
            id="belongsto_ext.E001",
        )
    )


@isolate_apps("tests")
def test_e001_attname_of_a_foreign_key() -> None:
    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Essay(models.Model):
        get_w = models.ForeignKey(Writer, on_delete=models.CASCADE, related_name="+")
        w_id = BelongsToField(Writer, on_delete=models.CASCADE, null=True, related_name="+")

        class Meta:
            app_label = "tests"

    field = field_of(Essay, "w_id")
    assert field.check() == short(
        checks.Error(
            "get_w_id() is unavailable: field 'get_w' uses that name.",
            hint="Rename the field 'get_w' or 'w_id'.",
            obj=field,
            id="belongsto_ext.E001",
        )
    )


@isolate_apps("tests", "django.contrib.contenttypes")
def test_e001_generic_foreign_key_takes_the_name() -> None:
    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Essay(models.Model):
        writer = BelongsToField(Writer, on_delete=models.CASCADE, null=True)
        content_type = models.ForeignKey(
            "contenttypes.ContentType", on_delete=models.CASCADE, related_name="+"
        )
        object_id = models.PositiveIntegerField()
        aget_writer = GenericForeignKey("content_type", "object_id")

        class Meta:
            app_label = "tests"

    field = field_of(Essay, "writer")
    assert field.check() == short(
        checks.Error(
            "aget_writer() is unavailable: field 'aget_writer' uses that name.",
            hint="Rename the field 'aget_writer' or 'writer'.",
            obj=field,
            id="belongsto_ext.E001",
        )
    )


# ---------------------------------- E002: another relation's reverse accessor


@isolate_apps("tests")
def test_e002_reverse_accessor_installed_after_the_field() -> None:
    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Essay(models.Model):
        writer = BelongsToField(Writer, on_delete=models.CASCADE, null=True)

        class Meta:
            app_label = "tests"

    class Review(models.Model):
        essay = models.ForeignKey(Essay, on_delete=models.CASCADE, related_name="set_writer")

        class Meta:
            app_label = "tests"

    field = field_of(Essay, "writer")
    assert field.check() == short(
        checks.Error(
            "set_writer() is unavailable: it is the reverse accessor of tests.Review.essay.",
            hint="Give tests.Review.essay another related_name.",
            obj=field,
            id="belongsto_ext.E002",
        )
    )


@isolate_apps("tests")
def test_e002_lazy_reverse_relation_and_one_to_one() -> None:
    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Essay(models.Model):
        writer = BelongsToOneField(Writer, on_delete=models.CASCADE, null=True)

        class Meta:
            app_label = "tests"

    # Declared with a lazy string: the accessor is installed once both exist.
    class Summary(models.Model):
        essay = models.OneToOneField(
            "tests.Essay", on_delete=models.CASCADE, related_name="get_writer"
        )

        class Meta:
            app_label = "tests"

    field = field_of(Essay, "writer")
    assert field.check() == short(
        checks.Error(
            "get_writer() is unavailable: it is the reverse accessor of tests.Summary.essay.",
            hint="Give tests.Summary.essay another related_name.",
            obj=field,
            id="belongsto_ext.E002",
        )
    )


# ----------------------------------------------- E003: Django's Model API


@isolate_apps("tests")
def test_e003_name_of_a_django_model_method() -> None:
    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Essay(models.Model):
        deferred_fields = BelongsToField(Writer, on_delete=models.CASCADE, null=True)

        class Meta:
            app_label = "tests"

    field = field_of(Essay, "deferred_fields")
    assert field.check() == short(
        checks.Error(
            "get_deferred_fields() is Django's Model method, not this field's.",
            hint="Rename the field 'deferred_fields'.",
            obj=field,
            id="belongsto_ext.E003",
        )
    )
    # Django's method is untouched, the other methods are installed.
    assert Essay().get_deferred_fields() == set()
    assert Essay.set_deferred_fields.alters_data is True


# ------------------------------------------ E004: a non-method attribute


@isolate_apps("tests")
def test_e004_property_class_attribute_and_cached_property() -> None:
    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Essay(models.Model):
        writer = BelongsToField(Writer, on_delete=models.CASCADE, null=True)
        create_writer = "not a method"

        class Meta:
            app_label = "tests"

        @property
        def set_writer(self) -> str:
            return "property"

        @cached_property
        def aget_writer(self) -> str:
            return "cached"

    field = field_of(Essay, "writer")
    assert field.check() == short(
        checks.Error(
            "set_writer() is unavailable: Essay.set_writer is not a method.",
            hint="Rename Essay.set_writer (property), or the field 'writer'.",
            obj=field,
            id="belongsto_ext.E004",
        ),
        checks.Error(
            "create_writer() is unavailable: Essay.create_writer is not a method.",
            hint="Rename Essay.create_writer (str), or the field 'writer'.",
            obj=field,
            id="belongsto_ext.E004",
        ),
        checks.Error(
            "aget_writer() is unavailable: Essay.aget_writer is not a method.",
            hint="Rename Essay.aget_writer (cached_property), or the field 'writer'.",
            obj=field,
            id="belongsto_ext.E004",
        ),
    )


@isolate_apps("tests")
def test_e004_attribute_on_an_abstract_base() -> None:
    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Base(models.Model):
        writer = BelongsToField(Writer, on_delete=models.CASCADE, null=True, related_name="+")
        get_writer = 0

        class Meta:
            abstract = True

    class Essay(Base):
        class Meta:
            app_label = "tests"

    field = field_of(Essay, "writer")
    assert field.check() == short(
        checks.Error(
            "get_writer() is unavailable: Essay.get_writer is not a method.",
            hint="Rename Essay.get_writer (int), or the field 'writer'.",
            obj=field,
            id="belongsto_ext.E004",
        )
    )


# -------------------------------- W001: a primary key or a parent link


@isolate_apps("tests")
def test_w001_primary_key() -> None:
    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Bio(models.Model):
        writer = BelongsToOneField(Writer, on_delete=models.CASCADE, primary_key=True)

        class Meta:
            app_label = "tests"

    field = field_of(Bio, "writer")
    assert field.check() == short(
        checks.Warning(
            "set_writer() and create_writer() cannot change a primary key.",
            hint="Only call get_writer() on this field, or use a plain key field.",
            obj=field,
            id="belongsto_ext.W001",
        )
    )


@isolate_apps("tests")
def test_w001_parent_link() -> None:
    class Place(models.Model):
        class Meta:
            app_label = "tests"

    class Shop(Place):
        code = models.CharField(max_length=5, primary_key=True)
        place = BelongsToOneField(Place, on_delete=models.CASCADE, parent_link=True)

        class Meta:
            app_label = "tests"

    field = field_of(Shop, "place")
    assert field.check() == short(
        checks.Warning(
            "set_place() and create_place() cannot change a parent link.",
            hint="Only call get_place() on this field, or use a plain key field.",
            obj=field,
            id="belongsto_ext.W001",
        )
    )


# ------------------------------------------------------ no false alarms


def test_project_models_pass_every_check() -> None:
    """The test and demo apps (abstract bases with user methods, to_field, "self",
    lazy strings, MTI, proxies, one-to-one) raise nothing; `manage.py check` is clean."""
    assert checks.run_checks(include_deployment_checks=False) == []
    call_command("check", fail_level="DEBUG")


@isolate_apps("tests")
def test_user_methods_and_opt_outs_are_not_clashes() -> None:
    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Base(models.Model):
        class Meta:
            app_label = "tests"

        def get_writer(self) -> str:
            return "base's"

    class Essay(Base):
        writer = BelongsToField(Writer, on_delete=models.CASCADE, null=True, related_name="+")
        aget_writer = None  # an opt-out

        class Meta:
            app_label = "tests"

        def set_writer(self, value: object) -> None:
            pass

        @staticmethod
        def create_writer() -> str:
            return "static"

        @classmethod
        def aset_writer(cls) -> str:
            return "class"

    class Review(models.Model):
        essay = models.ForeignKey(Essay, on_delete=models.CASCADE, related_name="reviews")

        class Meta:
            app_label = "tests"

    assert field_of(Essay, "writer").check() == []
    assert Essay.aget_writer is None
    assert Essay().get_writer() == "base's"
    assert Essay.acreate_writer.alters_data is True


@isolate_apps("tests")
def test_self_lazy_to_field_and_abstract_copies_pass() -> None:
    class Writer(models.Model):
        slug = models.SlugField(unique=True)

        class Meta:
            app_label = "tests"

    class Base(models.Model):
        writer = BelongsToField("tests.Writer", on_delete=models.CASCADE, to_field="slug")

        class Meta:
            abstract = True

    class Essay(Base):
        parent = BelongsToField("self", on_delete=models.CASCADE, null=True)

        class Meta:
            app_label = "tests"

    class Note(Base):
        class Meta:
            app_label = "tests"

    for model, name in [(Essay, "writer"), (Essay, "parent"), (Note, "writer")]:
        assert field_of(model, name).check() == []


@isolate_apps("tests")
def test_unresolved_lazy_target_reports_only_djangos_error() -> None:
    class Essay(models.Model):
        writer = BelongsToField("tests.Missing", on_delete=models.CASCADE)

        class Meta:
            app_label = "tests"

    field = field_of(Essay, "writer")
    assert isinstance(field.remote_field.model, str)
    assert [(m.id, m.level) for m in field.check()] == [("fields.E300", checks.ERROR)]


@isolate_apps("tests")
def test_abstract_target_reports_only_djangos_error() -> None:
    class Writer(models.Model):
        class Meta:
            abstract = True
            app_label = "tests"

    class Essay(models.Model):
        writer = BelongsToField(Writer, on_delete=models.CASCADE)

        class Meta:
            app_label = "tests"

    assert [m.id for m in field_of(Essay, "writer").check()] == ["fields.E300"]
