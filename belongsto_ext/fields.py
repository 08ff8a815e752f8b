"""BelongsToField and BelongsToOneField: a ForeignKey / OneToOneField that adds
``get_<name>``, ``set_<name>``, ``create_<name>``, their async twins, ``is_<name>``,
``has_<name>_changed`` and ``get_previous_<name>_id`` to its model.

The field holds the options and answers the hooks the shared code below it asks
of a relation (``relation.Relation``, ``accessors.Front``): what an owner points at,
what a scope means, what ``set_<name>()``'s argument means.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.db import connections, models, router
from django.utils.functional import cached_property

from . import _compat, answers, counters, descriptors, keys, methods, policy, scopes, tracking
from .types import Scope

__all__ = ["BelongsToField", "BelongsToOneField"]

# Generic as django-stubs declares ForeignKey and OneToOneField: _ST is what
# ``book.author = ...`` accepts, _GT what ``book.author`` returns. django-stubs' mypy
# plugin fills them in from the target and ``null=``, as for the plain fields; pyright
# reads them from an annotation (``author: BelongsToField[Author | None, Author | None]``).
# At run time subscripting returns the class itself, as Django's ForeignKey does.
_ST = TypeVar("_ST", contravariant=True)
_GT = TypeVar("_GT", covariant=True)

if TYPE_CHECKING:

    class _Field(models.ForeignKey[_ST, _GT]):
        # Resolved by the time a BelongsTo field reads it (django-stubs 5.2 adds
        # Literal["self"], its value before that).
        related_model: type[models.Model]

else:

    class _Field:
        """The mixin's base for type checkers; at run time ``_Field[...]`` is ``object``."""

        def __class_getitem__(cls, params: object) -> type:
            return object


class BelongsToMixin(_Field[_ST, _GT]):
    """What BelongsToField and BelongsToOneField add to Django's fields."""

    descriptor_class = descriptors.KeyAttribute
    belongs_to = True  # relation.is_belongs_to()
    keyed_by_context = True  # answers are named by the scope in its context
    set_savepoint = False  # in the caller's transaction, as Django's own save()
    # instance.<name>, and with strict=True (BelongsToField's and BelongsToOneField's own).
    plain_accessor_class: type[Any]
    strict_accessor_class: type[Any]
    # What deconstruct() reports: migrations see the plain Django field.
    django_path: str

    def __class_getitem__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls  # as ForeignKey's: the parameters are for type checkers

    def __init__(
        self,
        *args: Any,
        scopes: Iterable[str] | None = None,
        touch: bool | str = False,
        counter_cache: str | None = None,
        create_method: str | None = None,
        validate_scope: Scope[Any] = None,
        strict: bool | str | None = None,
        fetch: str | bool | None = None,
        **kwargs: Any,
    ) -> None:
        # The options this app adds (none changes a column; see deconstruct()).
        # scopes: only these manager names are accepted as scope strings.
        self.scopes: tuple[str, ...] | None = (
            None if scopes is None else (scopes,) if isinstance(scopes, str) else tuple(scopes)
        )
        self.touch = touch  # set the target's auto_now (or this) column on each write
        self.counter_cache = counter_cache  # the target's column counting its owners
        self.create_method = create_method  # create_<name>() calls this manager method
        self.validate_scope = validate_scope  # validate() checks the row in this scope
        # strict= (True, "n_plus_one", False) and fetch= ("peers", False); None
        # takes the project's default (policy.py), which sets .strict and .fetch.
        self.strict_option, self.fetch_option = strict, fetch
        self.strict: bool | str = False
        self.fetch: str | bool = False
        super().__init__(*args, **kwargs)

    @property
    def forward_related_accessor_class(self) -> type[Any]:  # type: ignore[override, unused-ignore]
        """What ``contribute_to_class()`` installs as ``<name>``: chosen by ``strict=``."""
        return self.strict_accessor_class if self.strict else self.plain_accessor_class

    @forward_related_accessor_class.setter
    def forward_related_accessor_class(self, value: type[Any]) -> None:
        raise AttributeError("<name>'s descriptor is chosen by strict=; set that instead.")

    @cached_property
    def target_field(self) -> models.Field[Any, Any]:
        """The field of the target the key holds a value of (usually its primary key).

        Django's property looks it up on each access; it never changes once the
        target is resolved, and ``set_<name>()`` reads it on every call.
        """
        return self.foreign_related_fields[0]

    @cached_property
    def scoped_cache_name(self) -> str:
        """Where the scoped answers and the pin live in the instance's ``fields_cache``."""
        return f"{self.cache_name}:scoped"

    # ------------------------------------------------ the hooks (relation.Relation)

    def owner_key(self, instance: models.Model, strict: bool = False) -> Any:
        """The key the instance holds, as the target holds it ("5" -> 5); a
        deferred key is loaded (refused with ``strict``)."""
        value = instance.__dict__.get(self.attname, answers.MISS)
        if value is answers.MISS:  # a deferred key: reading it queries
            if strict:
                policy.lazy_load(self, instance)
            value = getattr(instance, self.attname)
        if type(value) is str:
            value = self.target_field.to_python(value)
        return value

    def target_of(self, instance: models.Model, key: Any) -> tuple[Any, Any]:
        return self.related_model, key

    def pin_value(self, instance: models.Model) -> Any:
        return instance.__dict__.get(self.attname)

    def loaded(self, instance: models.Model) -> bool:
        return self.attname in instance.__dict__

    def scope_spec(self, scope: Any) -> Any:
        # A mapping is a BelongsToAnyField's scope: cache_key() refuses it.
        return scopes.cache_key(self.related_model, scope, self)

    def model_key(self, spec: Any, model: type[models.Model]) -> Any:
        return spec

    @cached_property
    def int_key(self) -> bool:
        """Whether the key is an integer column that takes an int as it is (an
        ``IntegerField`` or auto field whose ``to_python()`` is Django's): such a
        key is only checked against the column's range (``keys.prepare()``)."""
        target = self.target_field
        return (
            isinstance(target, models.IntegerField)
            and type(target).to_python is models.IntegerField.to_python
        )

    @cached_property
    def _row_key(self) -> tuple[str, str]:
        target = self.target_field
        return ("pk" if target.primary_key else target.attname), target.attname

    def row_key(self, model: type[models.Model]) -> tuple[str, str]:
        return self._row_key

    def prepare(self, instance: models.Model, args: tuple[Any, ...], validate: bool) -> Any:
        return keys.prepare(self, instance, args, validate)

    def point(self, instance: models.Model, prepared: Any) -> None:
        """``book.author = obj`` or ``book.author_id = key``: Django's descriptors
        check the router's allow_relation() and keep Django's caches right."""
        attr, value = prepared
        old = self.get_cached_value(instance, default=None) if self.one_to_one else None
        try:
            setattr(instance, attr, value)
        except ValueError as exc:  # the only refusal left: the router's
            raise ValueError(
                f"{type(instance).__name__}.{self.name}: cannot set {value!r}: the database "
                f"router does not allow this relation ({exc})"
            ) from exc
        if (
            old is not None
            and old is not value
            and self.remote_field.get_cached_value(old, default=None) is instance
        ):
            # One-to-one: the old target no longer points back here (Django
            # only does this when the new value is None).
            self.remote_field.set_cached_value(old, None)

    def lock_target(self, instance: models.Model, prepared: Any) -> None:
        pass  # the foreign key's constraint refuses a missing row

    def creating(self, instance: models.Model, args: tuple[Any, ...]) -> tuple[Any, Any]:
        if len(args) > 1:
            raise TypeError(
                f"{type(instance).__name__}.{self.name}: create_{self.name}() takes one "
                f"mapping of values ({len(args)} given)."
            )
        return self.related_model, (args[0] if args else None)

    def compared(self, instance: models.Model, other: Any) -> tuple[Any, Any]:
        return keys.compared(self, instance, other)

    def written_columns(self) -> tuple[str, ...]:
        return (self.name,)

    # ------------------------------------------------ the model

    def contribute_to_class(
        self, cls: type[models.Model], name: str, *args: Any, **kwargs: Any
    ) -> None:
        # Where change tracking keeps the key the row holds (tracking.py): a name
        # no attribute can have. Set before Django installs the key attribute.
        self.held_attname = f"{name}_id@db"  # ForeignKey's attname is <name>_id
        # Whether this package's refresh_from_db() runs for the model (it tells
        # change tracking about a refresh; else the key attribute asks the stack).
        self.refresh_hooked = "refresh_from_db" not in cls.__dict__
        policy.register(self, cls)  # before <name> is installed: strict= chooses it
        super().contribute_to_class(cls, name, *args, **kwargs)
        self.key_attname = self.attname  # the key as owner_key() returns it (unless a str)
        methods.install(cls, self, methods.METHODS)
        if self.refresh_hooked:
            cls.refresh_from_db = descriptors.refresh_from_db  # type: ignore[method-assign]
        if self.touch or self.counter_cache:
            counters.connect(self, cls)

    def contribute_to_related_class(self, cls: type[models.Model], related: Any) -> None:
        super().contribute_to_related_class(cls, related)  # type: ignore[misc, unused-ignore]
        if self.counter_cache:
            # The database keeps the column (counters.py): forms and the admin
            # leave it out, as a field without a form field. Not editable=False,
            # which migrations would see.
            column = _field_or_none(cls, self.counter_cache)
            if isinstance(column, models.IntegerField):
                column.formfield = _no_formfield  # type: ignore[method-assign, assignment, unused-ignore]

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        """The key is being written: the row will hold it (change tracking)."""
        tracking.saving(self, model_instance)
        return super().pre_save(model_instance, add)

    def validate(self, value: Any, model_instance: models.Model | None) -> None:
        """Django's check that the row exists, in ``validate_scope`` when given
        (with ``limit_choices_to``) rather than through the base manager."""
        if self.validate_scope is None or self.remote_field.parent_link:
            super().validate(value, model_instance)
            return
        models.Field.validate(self, value, model_instance)  # choices, null, blank
        if value is not None:
            keys.check_in_scope(self, model_instance, value, self.validate_scope)

    # ------------------------------------------------------------ checks

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        return [
            *super().check(**kwargs),
            *methods.check_method_names(self, methods.METHODS),
            *self._check_primary_key(),
            *self._check_scopes(),
            *self._check_options(),
        ]

    def _check_primary_key(self) -> list[checks.CheckMessage]:
        """set_/create_ move the key: impossible for a primary key or a parent link."""
        if not (self.primary_key or self.remote_field.parent_link):
            return []
        what = "a primary key" if self.primary_key else "a parent link"
        return [
            checks.Warning(
                f"set_{self.name}() and create_{self.name}() cannot change {what}.",
                hint=f"Only call get_{self.name}() on this field, or use a plain key field.",
                obj=self,
                id="belongsto_ext.W001",
            )
        ]

    def _check_scopes(self) -> list[checks.CheckMessage]:
        """Every name in ``scopes=`` must be a manager of the target (once resolved)."""
        target = self.remote_field.model
        if self.scopes is None or isinstance(target, str):
            return []
        managers = _compat.managers_map(target)
        return [
            checks.Error(
                f"scopes= names {name!r}, which is not a manager of {target.__name__}.",
                hint=f"{target.__name__}'s managers: {', '.join(sorted(managers))}.",
                obj=self,
                id="belongsto_ext.E005",
            )
            for name in self.scopes
            if not isinstance(name, str) or name not in managers
        ]

    def _check_options(self) -> list[checks.CheckMessage]:
        """counter_cache, touch, create_method and validate_scope must fit the
        target (once resolved)."""
        target = self.remote_field.model
        if isinstance(target, str):
            return []
        errors: list[checks.CheckMessage] = []

        def error(msg: str, hint: str, id: str) -> None:
            errors.append(checks.Error(msg, hint=hint, obj=self, id=f"belongsto_ext.{id}"))

        if self.counter_cache is not None:
            column = _field_or_none(target, self.counter_cache)
            if not isinstance(column, models.IntegerField):
                error(
                    f"counter_cache={self.counter_cache!r} is not an integer field of "
                    f"{target.__name__}.",
                    f"Add {self.counter_cache} = models.PositiveIntegerField(default=0) to "
                    f"{target.__name__}.",
                    "E006",
                )
        if isinstance(self.touch, str):
            if not isinstance(_field_or_none(target, self.touch), models.DateField):
                error(
                    f"touch={self.touch!r} is not a date or date-time field of {target.__name__}.",
                    "Name a DateTimeField or DateField of the target, or use touch=True.",
                    "E007",
                )
        elif self.touch and not counters.touched_fields(self):
            error(
                f"touch=True, but {target.__name__} has no auto_now date or date-time field.",
                f"Add an auto_now=True DateTimeField to {target.__name__}, or name a field.",
                "E007",
            )
        if self.counter_cache is not None or self.touch:
            for alias in connections:
                vendor = connections[alias].vendor
                if vendor not in counters.SUPPORTED_VENDORS and router.allow_migrate_model(
                    alias, self.model
                ):
                    option = "counter_cache=" if self.counter_cache is not None else "touch="
                    error(
                        f"{option} is not supported on database {alias!r} ({vendor}): the "
                        f"database keeps it with triggers, written for "
                        f"{' and '.join(counters.SUPPORTED_VENDORS)}.",
                        f"Remove {option} or route {self.model.__name__} to a "
                        f"PostgreSQL or SQLite database.",
                        "E014",
                    )
        if self.create_method is not None and not callable(
            getattr(target._default_manager, self.create_method, None)
        ):
            error(
                f"create_method={self.create_method!r} is not a method of "
                f"{target.__name__}'s default manager.",
                f"Name a method of {target.__name__}._default_manager, e.g. create_user.",
                "E008",
            )
        if self.validate_scope is not None:
            try:
                scopes.cache_key(target, self.validate_scope, self)
            except scopes.InvalidScope as exc:
                scope = self.validate_scope
                # repr() of a QuerySet runs it: no query in a system check.
                shown = (
                    f"<QuerySet of {scope.model._meta.label}>"
                    if isinstance(scope, models.QuerySet)
                    else repr(scope)
                )
                error(
                    f"validate_scope={shown} is not a scope of {target.__name__}.",
                    str(exc).partition(". ")[2],
                    "E009",
                )
        return errors

    def deconstruct(self) -> tuple[str, str, Sequence[Any], dict[str, Any]]:
        # The options this app adds change no column: migrations never see them.
        name, _path, args, kwargs = super().deconstruct()
        return name, self.django_path, args, kwargs


def _no_formfield(**kwargs: Any) -> None:
    """A counter column's form field: none (ModelForm and the admin skip it)."""


def _field_or_none(model: type[models.Model], name: str) -> Any:
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        return None


class BelongsToField(BelongsToMixin[_ST, _GT], models.ForeignKey[_ST, _GT]):
    """A ``ForeignKey`` whose model gains ``get_<name>``, ``set_<name>``,
    ``create_<name>`` and ``aget_<name>``, ``aset_<name>``, ``acreate_<name>``."""

    django_path = "django.db.models.ForeignKey"
    plain_accessor_class = descriptors.ForwardDescriptor
    strict_accessor_class = descriptors.StrictForwardDescriptor

    def get_internal_type(self) -> str:
        # Django's default is the class name; code that compares it (MySQL's
        # schema editor, django-lifecycle) must see a ForeignKey.
        return "ForeignKey"


class BelongsToOneField(BelongsToMixin[_ST, _GT], models.OneToOneField[_ST, _GT]):
    """A ``OneToOneField`` with the same methods as :class:`BelongsToField`."""

    django_path = "django.db.models.OneToOneField"
    plain_accessor_class = descriptors.ForwardOneToOneDescriptorPinned
    strict_accessor_class = descriptors.StrictForwardOneToOneDescriptor

    def get_internal_type(self) -> str:
        return "OneToOneField"
