"""Static types for the methods a BelongsToField adds, to declare on the model.

Python type checkers cannot see methods added at class creation, so declare
them, as Sequelize's TypeScript users write ``declare getAuthor:
BelongsToGetAssociationMixin<Author>``::

    from typing import TYPE_CHECKING

    from belongsto_ext import BelongsToField, GetAssociation, SetAssociation

    class Book(models.Model):
        author = BelongsToField(Author, on_delete=models.CASCADE, null=True)

        if TYPE_CHECKING:
            get_author: GetAssociation[Author]
            set_author: SetAssociation[Author]

Then ``book.get_author()`` is ``Author | None`` to mypy and pyright. The
docstrings below are the API reference (docs/reference.md renders them with
autodoc); ``<name>`` stands for the field's name and ``<Target>`` for its model.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from uuid import UUID

from django.db.models import Model, QuerySet

__all__ = [
    "AsyncCreateAssociation",
    "AsyncGetAssociation",
    "AsyncSetAssociation",
    "CreateAssociation",
    "GetAssociation",
    "HasChanged",
    "IsAssociation",
    "KeyValue",
    "PreviousKey",
    "Scope",
    "SetAssociation",
]

# Invariant: a getter takes a QuerySet of T (scope=) and returns a T.
T = TypeVar("T", bound=Model)
T_co = TypeVar("T_co", bound=Model, covariant=True)
T_contra = TypeVar("T_contra", bound=Model, contravariant=True)

#: What ``scope=`` accepts: ``Scope[Author]`` admits QuerySets of Author only.
Scope = bool | str | list[str] | tuple[str, ...] | QuerySet[T] | None

#: A key value ``set_<name>()`` converts with the target's key field.
KeyValue = int | str | float | Decimal | UUID | date | time | timedelta


class GetAssociation(Protocol[T]):
    """The type of ``get_<name>``."""

    def __call__(
        self,
        *,
        scope: Scope[T] = None,
        using: str | None = None,
    ) -> T | None:
        """Return the related <Target> in ``scope``, or None.

        Makes at most one query. The result is cached on the instance per scope
        and dropped when the key changes (``set_<name>()``, assigning ``<name>``
        or ``<name>_id``, ``refresh_from_db()``), so a repeated call makes none.
        With a scope that does not filter (False, or a default manager that
        does not filter), an object Django already holds for
        ``instance.<name>`` (select_related, assignment, ``set_<name>()``) is
        returned without a query; a filtering scope never reuses it. Reads go
        to the database the router picks for reading <Target>, as
        ``instance.<name>`` does.

        Args:
            scope: None or True: <Target>'s default manager (the default
                scope). False: its base manager (the default scope removed).
                The name of a manager declared on <Target> (a named scope), or
                a list or tuple of names (rows every one of them selects). A
                QuerySet of <Target>, used as given.
            using: Read from this database alias instead of the router's.

        Returns:
            The related <Target>, or None when the key is null (no query) or
            no row in ``scope`` has it (never ``DoesNotExist``).

        Raises:
            InvalidScope: ``scope`` is none of the above; the message names
                <Target>'s managers. A ``ValueError`` subclass.
        """


class SetAssociation(Protocol[T_contra]):
    """The type of ``set_<name>``."""

    def __call__(
        self,
        value: T_contra | KeyValue | None,
        *,
        save: bool = True,
        validate: bool = False,
        **save_kwargs: Any,
    ) -> None:
        """Point <name> at ``value`` and save only that column.

        A saved <Target> is cached, so a following ``get_<name>()`` with a scope
        that does not filter makes no query; the router's ``allow_relation`` is
        respected, as for ``instance.<name> = value``. A key value is converted
        by <Target>'s key field (``"5"`` -> ``5``) without reading <Target>. Bad
        input raises before the instance or the database changes. On a saved
        row, ``save()`` writes only the key column and the model's ``auto_now``
        columns (one UPDATE); an unsaved instance gets a full ``save()``. If
        the save fails, the instance gets its previous key and cached object
        back and the error propagates.

        Args:
            value: A saved <Target> (or an instance of a subclass or proxy), its
                primary key or ``to_field`` value, or None to clear a nullable
                field.
            save: False assigns without any query.
            validate: True first checks, with one SELECT, that the row exists in
                the field's ``validate_scope`` (else the default scope) and
                matches its ``limit_choices_to``, as ``full_clean()`` would.
            **save_kwargs: Passed to ``save()``; an explicit ``update_fields``
                replaces the default list.

        Raises:
            TypeError: ``value`` is of the wrong kind (another model, a bool, a
                container, an arbitrary object).
            ValueError: ``value`` cannot be used: an unsaved <Target>, a key that
                does not convert exactly (``"abc"``, ``1.5``), or None on a
                non-nullable field.
            ValidationError: With ``validate``, no such row in that scope (missing,
                soft-deleted, not an allowed choice); nothing changed.
            IntegrityError: The save failed (a key no <Target> row has); the
                instance is restored.
        """


class CreateAssociation(Protocol[T_co]):
    """The type of ``create_<name>``."""

    def __call__(
        self,
        values: Mapping[str, Any] | None = None,
        /,
        *,
        save: bool = True,
        **fields: Any,
    ) -> T_co:
        """Create a <Target> from ``values`` and ``fields``, set it, and return it.

        The <Target> is created through its default manager on the database the
        router picks for writing, then set as by ``set_<name>(new, save=save)``.
        Both happen in one ``transaction.atomic()`` (on each database involved):
        if saving the instance fails, the new <Target> is rolled back and the
        instance is restored.

        Args:
            values: A mapping of <Target> field names to values.
            save: False sets the new <Target> without saving the instance.
            **fields: More <Target> field values; they win over ``values``.

        Returns:
            The new, saved <Target>.

        Raises:
            TypeError: ``values`` is not a mapping, or a name is not a field of
                <Target>; nothing is created.
        """


class AsyncGetAssociation(Protocol[T]):
    """The type of ``aget_<name>``."""

    async def __call__(
        self,
        *,
        scope: Scope[T] = None,
        using: str | None = None,
    ) -> T | None:
        """Async ``get_<name>()``: same arguments, result and errors.

        A cached answer is returned without leaving the event loop; a query
        runs in a thread (``sync_to_async``), so async views never hit
        ``SynchronousOnlyOperation``.
        """


class AsyncSetAssociation(Protocol[T_contra]):
    """The type of ``aset_<name>``."""

    async def __call__(
        self,
        value: T_contra | KeyValue | None,
        *,
        save: bool = True,
        validate: bool = False,
        **save_kwargs: Any,
    ) -> None:
        """Async ``set_<name>()``: same arguments, result and errors.

        With ``save=False`` (and no ``validate``) nothing touches the database
        and no thread is used.
        """


class AsyncCreateAssociation(Protocol[T_co]):
    """The type of ``acreate_<name>``."""

    async def __call__(
        self,
        values: Mapping[str, Any] | None = None,
        /,
        *,
        save: bool = True,
        **fields: Any,
    ) -> T_co:
        """Async ``create_<name>()``: same arguments, result and errors.

        The create and the save run in one ``sync_to_async`` call, in one
        transaction, so the async twin is as atomic as the sync one.
        """


class IsAssociation(Protocol[T_contra]):
    """The type of ``is_<name>``."""

    def __call__(self, other: T_contra | KeyValue | None) -> bool:
        """Whether <name> points at ``other``, without a query.

        Args:
            other: A <Target> (an unsaved one gives False), a key value
                (converted as ``set_<name>()`` converts it, ``"5"`` -> 5), or
                None (whether the key is null).

        Returns:
            Whether the key is ``other``'s.

        Raises:
            TypeError: ``other`` is an instance of another model, or of no key type.
            ValueError: ``other`` is a key that does not convert exactly.
        """


class HasChanged(Protocol):
    """The type of ``has_<name>_changed``."""

    def __call__(self) -> bool:
        """Whether the key differs from the one the row holds in the database, as
        far as this instance knows: since it was loaded, saved or refreshed.

        ``instance.<name> = x``, ``instance.<name>_id = 5`` and
        ``set_<name>(x, save=False)`` all count; assigning the old key back
        undoes it. A deferred key counts as unchanged and is not loaded; once
        one is assigned, it counts as changed. An instance never saved has
        changed when its key is not None.

        Returns:
            Whether the key changed.
        """


class PreviousKey(Protocol):
    """The type of ``get_previous_<name>_id``."""

    def __call__(self) -> Any:
        """The key the row holds in the database, as far as this instance knows
        (loaded, saved or refreshed); None for an instance never saved.

        Returns:
            That key (a deferred key is loaded first; after assigning a
            deferred key, the row's is read, one query, and kept).
        """


# ------------------------------------------------------------ BelongsToAnyField
#
# For ``target = BelongsToAnyField(..., models=[Post, Photo])`` declare, e.g.,
# ``get_target: GetAnyAssociation[Post | Photo]``.

__all__ += [
    "AnyScope",
    "AsyncCreateAnyAssociation",
    "AsyncGetAnyAssociation",
    "AsyncSetAnyAssociation",
    "CreateAnyAssociation",
    "GetAnyAssociation",
    "IsAnyAssociation",
    "SetAnyAssociation",
]

_M = TypeVar("_M", bound=Model)

#: What a BelongsToAnyField's ``scope=`` accepts: a scope, resolved on the target's
#: own model, or ``{Post: "published", "media.Photo": False}`` (models or labels;
#: a model left out uses its default scope).
if TYPE_CHECKING:
    AnyScope = Scope[Any] | Mapping[type[Model] | str, Scope[Any]]
else:  # QuerySet is not subscriptable at run time: Scope takes no parameter there
    AnyScope = Scope | Mapping


class GetAnyAssociation(Protocol[T_co]):
    """The type of a BelongsToAnyField's ``get_<name>``."""

    def __call__(self, *, scope: AnyScope = None, using: str | None = None) -> T_co | None:
        """Return the target in ``scope``, or None.

        At most one query once the content type is cached (ContentType's manager
        caches it, as ``GenericForeignKey`` relies on), none for a null column,
        a content type of a model the relation does not allow, or an answer
        cached on the instance for that scope and those two column values.

        Args:
            scope: A scope as ``get_<name>()`` of a BelongsToField takes it,
                resolved on the target's own model (a manager name the target
                lacks raises InvalidScope), or a mapping from models (or
                ``"app.Model"`` labels) to scopes; a model left out of the
                mapping uses its default scope.
            using: Read from this database alias instead of the router's.

        Returns:
            The target, or None (never ``DoesNotExist``).

        Raises:
            InvalidScope: A scope the target's model refuses, or a mapping key
                that is not an allowed model.
        """


class SetAnyAssociation(Protocol[T_contra]):
    """The type of a BelongsToAnyField's ``set_<name>``."""

    def __call__(
        self, *args: T_contra | type[Model] | KeyValue | None, save: bool = True, **save_kwargs: Any
    ) -> None:
        """Point the relation at ``set_<name>(obj)``, ``set_<name>(Model, key)`` or
        ``set_<name>(None)``, and save only the two columns.

        ``obj`` is a saved instance of an allowed model; ``(Model, key)`` sets the
        key without reading the row (converted and checked by ``Model``'s primary
        key, ``"5"`` -> 5); None needs both columns nullable. On a saved owner one
        UPDATE writes the two columns and the ``auto_now`` ones; every refusal
        raises before anything changes, and a failed save restores the instance.

        Args:
            *args: ``obj``, ``None``, or ``Model, key``.
            save: False assigns without a query.
            **save_kwargs: Passed to ``save()``; ``update_fields`` replaces the default.

        Raises:
            TypeError: Not an allowed model, not an instance, a model instance
                given as a key.
            ValueError: An unsaved instance, a key that does not convert
                exactly, None on non-nullable columns, a router refusal.
        """


class CreateAnyAssociation(Protocol[T_co]):
    """The type of a BelongsToAnyField's ``create_<name>``."""

    def __call__(
        self,
        model: type[_M],
        values: Mapping[str, Any] | None = None,
        /,
        *,
        save: bool = True,
        **fields: Any,
    ) -> _M:
        """Create a ``model`` (an allowed one) from ``values`` and ``fields``, point at
        it and save the owner, in one transaction on each database involved.

        Args:
            model: The allowed model to create.
            values: A mapping of its field names to values.
            save: False points at the new row without saving the owner.
            **fields: More field values; they win over ``values``.

        Returns:
            The new, saved instance.

        Raises:
            TypeError: Not an allowed model, ``values`` not a mapping, an unknown
                field name; nothing is created.
        """


class AsyncGetAnyAssociation(Protocol[T_co]):
    """The type of a BelongsToAnyField's ``aget_<name>``."""

    async def __call__(self, *, scope: AnyScope = None, using: str | None = None) -> T_co | None:
        """Async ``get_<name>()``: a cached answer without a thread hop."""


class AsyncSetAnyAssociation(Protocol[T_contra]):
    """The type of a BelongsToAnyField's ``aset_<name>``."""

    async def __call__(
        self, *args: T_contra | type[Model] | KeyValue | None, save: bool = True, **save_kwargs: Any
    ) -> None:
        """Async ``set_<name>()``; with ``save=False`` no thread is used."""


class AsyncCreateAnyAssociation(Protocol[T_co]):
    """The type of a BelongsToAnyField's ``acreate_<name>``."""

    async def __call__(
        self,
        model: type[_M],
        values: Mapping[str, Any] | None = None,
        /,
        *,
        save: bool = True,
        **fields: Any,
    ) -> _M:
        """Async ``create_<name>()``, in one thread hop and one transaction."""


class IsAnyAssociation(Protocol[T_contra]):
    """The type of a BelongsToAnyField's ``is_<name>``."""

    def __call__(self, other: T_contra | None) -> bool:
        """Whether the relation points at ``other`` (None: whether it is null), with
        no query once the content type is cached.

        Args:
            other: An instance of an allowed model (an unsaved one gives False), or
                None (whether the relation is null).

        Raises:
            TypeError: ``other`` is not a model instance.
        """
