"""System checks: each belongsto_ext check id on the configuration it catches,
and silence on configurations that are right or that Django itself reports."""

from __future__ import annotations

import functools
import inspect
from functools import cached_property
from typing import Any

import pytest
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
def test_e004_a_plain_attribute_but_not_a_property_or_descriptor() -> None:
    """A property, a cached_property or a partialmethod the model defines is its
    own method (it wins, as a method does); a plain value cannot be called."""

    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Essay(models.Model):
        writer = BelongsToField(Writer, on_delete=models.CASCADE, null=True)
        create_writer = "not a method"
        is_writer = functools.partialmethod(lambda self, other, strict: other)

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
            "create_writer() is unavailable: Essay.create_writer is not a method.",
            hint="Rename Essay.create_writer (str), or the field 'writer'.",
            obj=field,
            id="belongsto_ext.E004",
        ),
    )
    essay = Essay()
    assert (essay.set_writer, essay.aget_writer) == ("property", "cached")


@isolate_apps("tests")
def test_a_django_treebeard_adjacency_list_node_is_accepted() -> None:
    """treebeard's AL_Node defines get_parent (a partialmethod): the model's own
    method wins, and no check stops runserver or migrate."""
    from treebeard.al_tree import AL_Node

    class Category(AL_Node):
        parent = BelongsToField(
            "self", on_delete=models.CASCADE, null=True, related_name="children_set"
        )
        sib_order = models.PositiveIntegerField()
        name = models.CharField(max_length=30)

        class Meta:
            app_label = "tests"

    field = field_of(Category, "parent")
    assert [e for e in field.check() if e.id.startswith("belongsto_ext.")] == []
    # treebeard's partialmethod, not ours
    assert isinstance(inspect.getattr_static(Category, "get_parent"), functools.partialmethod)
    assert callable(Category().set_parent)  # the other methods are installed


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


# ------------------------------- E003: a method Django generates for another field


CHOICES = [("o", "Open"), ("c", "Closed")]


@isolate_apps("tests")
def test_e003_choices_display_method_in_both_declaration_orders() -> None:
    class Label(models.Model):
        class Meta:
            app_label = "tests"

    class RelationFirst(models.Model):
        state_display = BelongsToField(Label, on_delete=models.CASCADE, null=True, related_name="+")
        state = models.CharField(max_length=1, choices=CHOICES, default="o")

        class Meta:
            app_label = "tests"

    class ChoicesFirst(models.Model):
        state = models.CharField(max_length=1, choices=CHOICES, default="o")
        state_display = BelongsToField(Label, on_delete=models.CASCADE, null=True, related_name="+")

        class Meta:
            app_label = "tests"

    for model in (RelationFirst, ChoicesFirst):
        field = field_of(model, "state_display")
        assert field.check() == short(
            checks.Error(
                "get_state_display() is Django's method for field 'state' (its choices).",
                hint="Rename the field 'state_display' or 'state'.",
                obj=field,
                id="belongsto_ext.E003",
            )
        ), model.__name__
    # Declared first, Django's method is kept (the relation's is not installed);
    # the error tells the user either way.
    assert ChoicesFirst(state="o").get_state_display() == "Open"


@isolate_apps("tests")
def test_e003_next_and_previous_by_date_methods_in_both_orders() -> None:
    class Edition(models.Model):
        class Meta:
            app_label = "tests"

    class RelationFirst(models.Model):
        next_by_published = BelongsToField(Edition, on_delete=models.CASCADE, related_name="+")
        previous_by_published = BelongsToField(Edition, on_delete=models.CASCADE, related_name="+")
        published = models.DateField()

        class Meta:
            app_label = "tests"

    class DateFirst(models.Model):
        published = models.DateTimeField()
        next_by_published = BelongsToField(Edition, on_delete=models.CASCADE, related_name="+")
        previous_by_published = BelongsToField(Edition, on_delete=models.CASCADE, related_name="+")

        class Meta:
            app_label = "tests"

    for model in (RelationFirst, DateFirst):
        for direction in ("next", "previous"):
            field = field_of(model, f"{direction}_by_published")
            assert [(m.id, m.msg) for m in field.check()] == [
                (
                    "belongsto_ext.E003",
                    f"get_{direction}_by_published() is Django's method for field "
                    f"'published' (a date field).",
                )
            ], (model.__name__, direction)


@isolate_apps("tests")
def test_generated_names_of_a_nullable_date_or_a_user_method_are_not_clashes() -> None:
    """Django adds no get_next_by_<f> for a nullable date; a method the user wrote wins."""

    class Edition(models.Model):
        class Meta:
            app_label = "tests"

    class Issue(models.Model):
        published = models.DateField(null=True)
        next_by_published = BelongsToField(Edition, on_delete=models.CASCADE, related_name="+")
        state = models.CharField(max_length=1, choices=CHOICES, default="o")
        state_display = BelongsToField(
            Edition, on_delete=models.CASCADE, null=True, related_name="+"
        )

        class Meta:
            app_label = "tests"

        def get_state_display(self) -> str:
            return "mine"

    assert field_of(Issue, "next_by_published").check() == []
    assert field_of(Issue, "state_display").check() == []
    assert Issue(state="o").get_state_display() == "mine"


# ------------------------------------------------------- E005: scopes= option


@isolate_apps("tests")
def test_e005_scopes_must_name_managers_of_the_target() -> None:
    class LiveManager(models.Manager):
        pass

    class Writer(models.Model):
        objects = models.Manager()
        live = LiveManager()

        class Meta:
            app_label = "tests"

    class Essay(models.Model):
        writer = BelongsToField(
            Writer, on_delete=models.CASCADE, null=True, scopes=("live", "delete", "objects")
        )
        editor = BelongsToField(
            Writer, on_delete=models.CASCADE, null=True, related_name="+", scopes="live"
        )

        class Meta:
            app_label = "tests"

    field = field_of(Essay, "writer")
    assert field.check() == short(
        checks.Error(
            "scopes= names 'delete', which is not a manager of Writer.",
            hint="Writer's managers: live, objects.",
            obj=field,
            id="belongsto_ext.E005",
        )
    )
    # A single name is a tuple of one.
    assert field_of(Essay, "editor").scopes == ("live",)
    assert field_of(Essay, "editor").check() == []


@isolate_apps("tests")
def test_scopes_option_is_not_part_of_the_migration() -> None:
    """Like the other options this app adds, scopes= changes no column."""

    class Writer(models.Model):
        class Meta:
            app_label = "tests"

    class Essay(models.Model):
        writer = BelongsToField(Writer, on_delete=models.CASCADE, null=True, scopes=("objects",))
        plain = models.ForeignKey(Writer, on_delete=models.CASCADE, null=True, related_name="+")

        class Meta:
            app_label = "tests"

    ours = field_of(Essay, "writer").deconstruct()
    theirs = field_of(Essay, "plain").deconstruct()
    assert ours[1] == theirs[1] == "django.db.models.ForeignKey"
    assert ours[3] == {k: v for k, v in theirs[3].items() if k != "related_name"}


# --------------------------------------- W002: admin formfield_overrides by exact class


def test_w002_a_foreign_key_override_the_admin_would_not_apply(rf: Any) -> None:
    """The admin looks formfield_overrides up by the field's exact class: an entry
    for ForeignKey never reaches a BelongsToField. The check says so, on the
    ModelAdmin and on its inlines; the entry it suggests does reach the field."""
    from django import forms
    from django.contrib import admin
    from django.contrib.auth.models import User

    from belongsto_ext.apps import check_admin_formfield_overrides
    from tests.models import Book, Profile, Publisher

    wide = {"widget": forms.TextInput(attrs={"size": 40})}

    class BookInline(admin.TabularInline):
        model = Book
        formfield_overrides = {models.ForeignKey: wide}

    class PublisherAdmin(admin.ModelAdmin):
        inlines = [BookInline]

    class BookAdmin(admin.ModelAdmin):
        formfield_overrides = {models.ForeignKey: wide}

    class ProfileAdmin(admin.ModelAdmin):
        formfield_overrides = {models.OneToOneField: wide, models.ForeignKey: wide}

    class FixedBookAdmin(admin.ModelAdmin):
        formfield_overrides = {models.ForeignKey: wide, BelongsToField: wide}

    site = admin.AdminSite(name="w002")
    site.register(Publisher, PublisherAdmin)
    site.register(Book, BookAdmin)
    site.register(Profile, ProfileAdmin)
    found = [m for m in check_admin_formfield_overrides() if m.id == "belongsto_ext.W002"]
    assert sorted((m.obj.__name__, m.msg) for m in found) == [
        (
            "BookAdmin",
            "formfield_overrides[ForeignKey] is not applied to Book.author, Book.publisher.",
        ),
        (
            "BookInline",
            "formfield_overrides[ForeignKey] is not applied to Book.author, Book.publisher.",
        ),
        ("ProfileAdmin", "formfield_overrides[OneToOneField] is not applied to Profile.author."),
    ]
    assert all(m.hint and "BelongsTo" in m.hint for m in found)
    request = rf.get("/")
    request.user = User(is_superuser=True, is_staff=True)

    # Without the suggested entry the widget is the admin's default select...
    def widget(admin_class: type[admin.ModelAdmin]) -> Any:
        field = admin_class(Book, site).get_form(request).base_fields["author"]
        return field.widget.widget  # inside the admin's RelatedFieldWidgetWrapper

    assert not isinstance(widget(BookAdmin), forms.TextInput)

    site.unregister(Book)
    site.register(Book, FixedBookAdmin)
    assert not [m for m in check_admin_formfield_overrides() if m.obj in (FixedBookAdmin,)]
    # ...with it, the override reaches the field.
    assert isinstance(widget(FixedBookAdmin), forms.TextInput)
    assert widget(FixedBookAdmin).attrs["size"] == 40


def test_w002_is_registered_with_the_admin_checks() -> None:
    assert any(
        check.__name__ == "check_admin_formfield_overrides"
        for check in checks.registry.registry.get_checks(include_deployment_checks=False)
        if "admin" in getattr(check, "tags", ())
    )


# ------------------------------ E006-E009: counter_cache, touch, create_method, validate_scope


@isolate_apps("tests")
def test_e006_counter_cache_must_be_an_integer_field_of_the_target() -> None:
    class Shelf(models.Model):
        name = models.CharField(max_length=10)
        count = models.PositiveIntegerField(default=0)

        class Meta:
            app_label = "tests"

    class Volume(models.Model):
        text = BelongsToField(Shelf, on_delete=models.CASCADE, counter_cache="name")
        missing = BelongsToField(
            Shelf, on_delete=models.CASCADE, related_name="+", counter_cache="volumes_count"
        )
        right = BelongsToField(
            Shelf, on_delete=models.CASCADE, related_name="+", counter_cache="count"
        )

        class Meta:
            app_label = "tests"

    text, missing = field_of(Volume, "text"), field_of(Volume, "missing")
    assert text.check() == short(
        checks.Error(
            "counter_cache='name' is not an integer field of Shelf.",
            hint="Add name = models.PositiveIntegerField(default=0) to Shelf.",
            obj=text,
            id="belongsto_ext.E006",
        )
    )
    assert missing.check() == short(
        checks.Error(
            "counter_cache='volumes_count' is not an integer field of Shelf.",
            hint="Add volumes_count = models.PositiveIntegerField(default=0) to Shelf.",
            obj=missing,
            id="belongsto_ext.E006",
        )
    )
    assert field_of(Volume, "right").check() == []


@isolate_apps("tests")
def test_e007_touch_must_name_a_date_field_of_the_target() -> None:
    class Shelf(models.Model):
        name = models.CharField(max_length=10)
        checked_on = models.DateField(null=True)
        seen_at = models.DateTimeField(null=True)

        class Meta:
            app_label = "tests"

    class Volume(models.Model):
        text = BelongsToField(Shelf, on_delete=models.CASCADE, touch="name")
        missing = BelongsToField(Shelf, on_delete=models.CASCADE, related_name="+", touch="nope")
        date = BelongsToField(Shelf, on_delete=models.CASCADE, related_name="+", touch="checked_on")
        moment = BelongsToField(Shelf, on_delete=models.CASCADE, related_name="+", touch="seen_at")

        class Meta:
            app_label = "tests"

    hint = "Name a DateTimeField or DateField of the target, or use touch=True."
    for name, touch in [("text", "name"), ("missing", "nope")]:
        field = field_of(Volume, name)
        assert field.check() == short(
            checks.Error(
                f"touch={touch!r} is not a date or date-time field of Shelf.",
                hint=hint,
                obj=field,
                id="belongsto_ext.E007",
            )
        )
    assert field_of(Volume, "date").check() == []
    assert field_of(Volume, "moment").check() == []


@isolate_apps("tests")
def test_e007_touch_true_needs_an_auto_now_field() -> None:
    class Plain(models.Model):
        created = models.DateTimeField(auto_now_add=True)  # not auto_now: not touched

        class Meta:
            app_label = "tests"

    class Stamped(models.Model):
        updated = models.DateTimeField(auto_now=True)

        class Meta:
            app_label = "tests"

    class Volume(models.Model):
        plain = BelongsToField(Plain, on_delete=models.CASCADE, touch=True)
        stamped = BelongsToField(Stamped, on_delete=models.CASCADE, touch=True)

        class Meta:
            app_label = "tests"

    field = field_of(Volume, "plain")
    assert field.check() == short(
        checks.Error(
            "touch=True, but Plain has no auto_now date or date-time field.",
            hint="Add an auto_now=True DateTimeField to Plain, or name a field.",
            obj=field,
            id="belongsto_ext.E007",
        )
    )
    assert field_of(Volume, "stamped").check() == []


@isolate_apps("tests")
def test_e008_create_method_must_be_a_method_of_the_default_manager() -> None:
    class WriterManager(models.Manager):
        label = "not callable"

        def create_writer(self, **fields: Any) -> Any:
            return self.create(**fields)

    class Writer(models.Model):
        objects = WriterManager()

        class Meta:
            app_label = "tests"

    class Essay(models.Model):
        missing = BelongsToField(Writer, on_delete=models.CASCADE, create_method="create_user")
        attribute = BelongsToField(
            Writer, on_delete=models.CASCADE, related_name="+", create_method="label"
        )
        right = BelongsToField(
            Writer, on_delete=models.CASCADE, related_name="+", create_method="create_writer"
        )
        create = BelongsToField(
            Writer, on_delete=models.CASCADE, related_name="+", create_method="create"
        )

        class Meta:
            app_label = "tests"

    for name, method in [("missing", "create_user"), ("attribute", "label")]:
        field = field_of(Essay, name)
        assert field.check() == short(
            checks.Error(
                f"create_method={method!r} is not a method of Writer's default manager.",
                hint="Name a method of Writer._default_manager, e.g. create_user.",
                obj=field,
                id="belongsto_ext.E008",
            )
        )
    assert field_of(Essay, "right").check() == []
    assert field_of(Essay, "create").check() == []


@isolate_apps("tests")
def test_e009_validate_scope_must_be_a_scope_of_the_target() -> None:
    class Writer(models.Model):
        objects = models.Manager()
        live = models.Manager()

        class Meta:
            app_label = "tests"

    class Other(models.Model):
        class Meta:
            app_label = "tests"

    class Essay(models.Model):
        missing = BelongsToField(Writer, on_delete=models.CASCADE, validate_scope="nope")
        number = BelongsToField(
            Writer, on_delete=models.CASCADE, related_name="+", validate_scope=3
        )
        narrowed = BelongsToField(
            Writer,
            on_delete=models.CASCADE,
            related_name="+",
            scopes=["live"],
            validate_scope="objects",
        )
        queryset = BelongsToField(
            Writer, on_delete=models.CASCADE, related_name="+", validate_scope=Other.objects.all()
        )

        class Meta:
            app_label = "tests"

    # No database access here: describing the QuerySet must not run it.
    for name, shown in [
        ("missing", "'nope'"),
        ("number", "3"),
        ("narrowed", "'objects'"),
        ("queryset", "<QuerySet of tests.Other>"),
    ]:
        field = field_of(Essay, name)
        [error] = field.check()
        assert error.id == "belongsto_ext.E009"
        assert error.obj is field
        assert error.msg == f"validate_scope={shown} is not a scope of Writer."
        assert error.hint and error.hint.startswith("A scope is None, True, False"), error.hint
        short(error)


@isolate_apps("tests")
@pytest.mark.parametrize(
    "scope",
    [True, False, "live", ["objects", "live"]],
    ids=["True", "False", "name", "names"],
)
def test_e009_every_kind_of_scope_passes(scope: Any) -> None:
    class Writer(models.Model):
        objects = models.Manager()
        live = models.Manager()

        class Meta:
            app_label = "tests"

    class Essay(models.Model):
        writer = BelongsToField(Writer, on_delete=models.CASCADE, validate_scope=scope)
        by_queryset = BelongsToField(
            Writer,
            on_delete=models.CASCADE,
            related_name="+",
            validate_scope=Writer.objects.filter(pk__gt=0),
        )

        class Meta:
            app_label = "tests"

    assert field_of(Essay, "writer").check() == []
    assert field_of(Essay, "by_queryset").check() == []


@isolate_apps("tests")
def test_options_of_an_unresolved_target_are_left_to_djangos_error() -> None:
    class Essay(models.Model):
        writer = BelongsToField(
            "tests.Nowhere",
            on_delete=models.CASCADE,
            counter_cache="count",
            touch="seen",
            create_method="nope",
            validate_scope="nope",
        )

        class Meta:
            app_label = "tests"

    assert [e.id for e in field_of(Essay, "writer").check()] == ["fields.E300"]


@isolate_apps("tests")
def test_options_that_fit_give_no_error() -> None:
    class Writer(models.Model):
        count = models.IntegerField(default=0)
        updated = models.DateTimeField(auto_now=True)

        class Meta:
            app_label = "tests"

    class Essay(models.Model):
        writer = BelongsToField(
            Writer,
            on_delete=models.CASCADE,
            counter_cache="count",
            touch=True,
            create_method="create",
            validate_scope=True,
            strict=True,
        )

        class Meta:
            app_label = "tests"

    assert field_of(Essay, "writer").check() == []


def test_create_method_of_the_user_manager_passes() -> None:
    """tests.Account: create_user() by default, create_superuser and create named."""
    from tests.models import Account

    for name in ("owner", "admin", "plain"):
        assert field_of(Account, name).check() == []
