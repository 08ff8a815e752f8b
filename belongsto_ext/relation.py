"""What the modules below ``fields`` read of a field: the Protocols both field
kinds implement (the shared code never imports the field classes), and the tests
that tell a BelongsTo field from another."""

from __future__ import annotations

from typing import Any, Protocol, TypeGuard

from django.db.models import Model


class Relation(Protocol):
    """What the modules below ``fields`` read of a BelongsTo field of either kind
    (``BelongsToField``/``BelongsToOneField``, or ``BelongsToAnyField``): its
    options, Django's per-instance cache, and the hooks that say what an owner
    points at. Both kinds implement it; nothing below ``fields`` imports them."""

    @property
    def name(self) -> str: ...
    @property
    def model(self) -> type[Model]: ...
    @property
    def cache_name(self) -> str: ...
    @property
    def scoped_cache_name(self) -> str: ...
    @property
    def scopes(self) -> tuple[str, ...] | None: ...
    @property
    def strict(self) -> bool | str:
        """True, False or "n_plus_one" (resolved with the project's default)."""

    @property
    def fetch(self) -> str | bool:
        """ "peers" or False (resolved with the project's default)."""

    @property
    def touch(self) -> bool | str: ...
    @property
    def counter_cache(self) -> str | None: ...
    @property
    def key_attname(self) -> str:
        """The instance attribute holding the key as :meth:`owner_key` returns it,
        when it is not a string; "" when there is none."""

    @property
    def keyed_by_context(self) -> bool:
        """Answers named by the scope in context (else by the ``scope=`` argument)."""

    def owner_key(self, instance: Model, strict: bool = False) -> Any:
        """What the owner's columns hold, None when null; answers are checked
        against it. A deferred column is loaded (refused with ``strict``)."""

    def target_of(self, instance: Model, key: Any) -> tuple[type[Model] | None, Any]:
        """The target model and the key as the target holds it, for ``key``
        (:meth:`owner_key`); ``(None, None)`` when it points at no model."""

    def pin_value(self, instance: Model) -> Any:
        """What the read-your-writes pin remembers of the key the instance holds."""

    def scope_spec(self, scope: Any) -> Any:
        """The validated ``scope=`` argument (InvalidScope otherwise)."""

    def model_key(self, spec: Any, model: type[Model]) -> Any:
        """The scope key (``scopes.cache_key()``) ``spec`` means for target ``model``."""

    def row_key(self, model: type[Model]) -> tuple[str, str]:
        """The lookup and the attribute of ``model`` the owner's key matches."""

    def loaded(self, instance: Model) -> bool:
        """Whether reading the key needs no query (no deferred column)."""

    def compared(self, instance: Model, other: Any) -> tuple[type[Model], Any]:
        """``other`` (not None) as a target model and key, for ``is_<name>()``;
        the key None for an unsaved instance."""

    def get_cached_value(self, instance: Model, default: Any = ...) -> Any: ...
    def set_cached_value(self, instance: Model, value: Any) -> None: ...
    def is_cached(self, instance: Model) -> bool: ...
    def delete_cached_value(self, instance: Model) -> None: ...


class KeyRelation(Relation, Protocol):
    """What is read of a ``BelongsToField`` / ``BelongsToOneField`` alone: Django's
    foreign key attributes, and where change tracking keeps the row's key."""

    @property
    def attname(self) -> str: ...
    @property
    def column(self) -> Any: ...
    @property
    def null(self) -> bool: ...
    @property
    def one_to_one(self) -> bool: ...
    @property
    def related_model(self) -> Any: ...
    @property
    def target_field(self) -> Any: ...
    @property
    def remote_field(self) -> Any: ...
    @property
    def held_attname(self) -> str:
        """Change tracking's entry in the instance's ``__dict__``."""

    @property
    def refresh_hooked(self) -> bool:
        """Whether this package's ``refresh_from_db()`` runs for the model."""

    @property
    def int_key(self) -> bool:
        """Whether an int key needs no conversion, only the column's range check."""

    @property
    def validate_scope(self) -> Any: ...
    @property
    def create_method(self) -> str | None: ...
    def get_limit_choices_to(self) -> Any: ...


def is_belongs_to(field: object) -> TypeGuard[Relation]:
    """Whether ``field`` is a BelongsTo field of either kind (their classes say so)."""
    return getattr(type(field), "belongs_to", False) is True


def is_key_relation(field: object) -> TypeGuard[KeyRelation]:
    """Whether ``field`` is a ``BelongsToField`` or ``BelongsToOneField`` (a key column)."""
    return is_belongs_to(field) and field.keyed_by_context
