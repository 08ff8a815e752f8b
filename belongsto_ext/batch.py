"""Batch loading: one read per database, target model and chunk of keys, that
fills the scoped answers of many owners; ``prefetch()``, ``aprefetch()`` and
``ScopedPrefetch`` (for ``prefetch_related()``) on top of it, and Django 6.1's
fetch modes. The same code serves both field kinds: a field says what an owner
points at (``owner_key()``, ``target_of()``) and what a scope means for a
target model (``model_key()``)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections, models
from django.db.models import Prefetch
from django.db.models.constants import LOOKUP_SEP

from . import _compat, answers, policy, scopes
from .answers import MISS
from .relation import Relation, is_belongs_to
from .types import AnyScope

__all__ = ["ScopedPrefetch", "aprefetch", "prefetch"]

_LookupT = TypeVar("_LookupT", bound=str)
_QuerySetT = TypeVar("_QuerySetT")
_ToAttrT = TypeVar("_ToAttrT", bound=str)

if TYPE_CHECKING:
    _PrefetchBase = Prefetch[Any, Any, Any]
else:
    _PrefetchBase = Prefetch


def load(
    field: Relation,
    instances: Iterable[models.Model],
    spec: Any,
    using: str | None,
    mode: Any = None,
) -> dict[int, tuple[answers.Entry, answers.Held]]:
    """Read the targets in scope ``spec`` (``field.scope_spec()``) of the owners
    no cache answers for, and cache them: one query per target model, database
    read from and batch of keys the database takes.

    Returns, by ``id()`` of each owner whose key is not null, its answer's entry
    and what is stored there, cached before or read now. Every scope is
    resolved (and refused, with InvalidScope) before any query.
    """
    result: dict[int, tuple[answers.Entry, answers.Held]] = {}
    # Per target model: its scope key, the key in this context, the entry, and the
    # context kept beside an answer (a BelongsToAnyField's; see answers.py).
    contexts: dict[type[models.Model], tuple[Hashable, Hashable, answers.Entry, Hashable]] = {}
    every_row: dict[tuple[type[models.Model], str], bool] = {}
    pending: list[tuple[models.Model, type[models.Model], Any, Any]] = []
    by_argument = answers.name(field, spec, None, using)  # a BelongsToAnyField's entry
    # A BelongsToField has one target model: its key is the target's key.
    target = getattr(field, "related_model", None) if field.keyed_by_context else None
    attname: str = getattr(field, "attname", "")
    for instance in instances:
        # A BelongsToField's key as it stands in the instance, unless owner_key()
        # must load or convert it: the loop's one call per owner is saved.
        ident = instance.__dict__.get(attname, MISS) if target is not None else MISS
        if ident is MISS or type(ident) is str:
            ident = field.owner_key(instance)
        if ident is None:
            continue
        if target is not None:
            model, wanted = target, ident
        else:
            obj = answers.lookup(instance, by_argument, ident)
            if obj is not MISS:  # answered before the target model is known
                result[id(instance)] = (by_argument, _compat.fields_cache(instance)[by_argument])
                continue
            model, wanted = field.target_of(instance, ident)
        if model is None:
            continue
        if model not in contexts:
            key = field.model_key(spec, model)
            context = scopes.in_context(model, key)
            kept = None if field.keyed_by_context else context
            contexts[model] = (key, context, answers.name(field, spec, context, using), kept)
        key, context, entry, kept = contexts[model]
        obj = answers.lookup(instance, entry, ident)
        if obj is MISS and using is None and field.cache_name in _compat.fields_cache(instance):
            obj = answers.django_answer(field, instance, model, key, wanted, every_row)
        if obj is MISS:
            pending.append((instance, model, wanted, ident))
            continue
        pair = (ident, obj, kept)
        answers.store(instance, entry, pair)
        result[id(instance)] = (entry, pair)
    if not pending:
        return result
    one_to_one = getattr(field, "one_to_one", False)
    for model, key, alias, group, found in _read(field, pending, contexts, using, mode):
        _key, _context, entry, kept = contexts[model]
        fills = using is None and scopes.selects_every_row(model, key, alias)
        for instance, wanted, ident in group:
            obj = found.get(wanted)
            pair = (ident, obj, kept)
            answers.store(instance, entry, pair)
            result[id(instance)] = (entry, pair)
            if obj is not None:
                if fills:
                    field.set_cached_value(instance, obj)  # instance.<name> reuses it
                if one_to_one:
                    field.remote_field.set_cached_value(obj, instance)  # type: ignore[attr-defined]
    return result


def _read(
    field: Relation,
    pending: list[tuple[models.Model, type[models.Model], Any, Any]],
    contexts: dict[type[models.Model], tuple[Hashable, Hashable, answers.Entry, Hashable]],
    using: str | None,
    mode: Any,
) -> list[
    tuple[type[models.Model], Hashable, str, list[tuple[models.Model, Any, Any]], dict[Any, Any]]
]:
    """The rows for ``pending`` owners, per target model and database read from:
    ``[(model, scope key, alias, [(owner, target key, owner key)], {target key: row})]``.

    The key an owner just wrote is read where writes go; the others where the
    router reads, asked once per model with the first of them as hint. On each
    database the distinct keys go in batches no larger than it takes.
    """
    groups: dict[tuple[type[models.Model], str], list[tuple[models.Model, Any, Any]]] = {}
    routed: dict[type[models.Model], str] = {}
    for instance, model, wanted, ident in pending:
        key = contexts[model][0]
        if using is None and answers.pinned(field, instance):
            alias = answers.read_alias(field, instance, model, key, None)
        else:
            if model not in routed:
                routed[model] = answers.read_alias(field, instance, model, key, using)
            alias = routed[model]
        groups.setdefault((model, alias), []).append((instance, wanted, ident))
    result = []
    for (model, alias), group in groups.items():
        key = contexts[model][0]
        queryset = scopes.resolve(model, key).using(alias)
        if mode is not None:
            queryset = queryset.fetch_mode(mode)  # type: ignore[attr-defined, unused-ignore]  # 6.1
        lookup, attname = field.row_key(model)
        keys = list(dict.fromkeys(wanted for _instance, wanted, _ident in group))
        found: dict[Any, models.Model] = {}
        if len(keys) == 1:
            obj = next(iter(queryset.filter(**{lookup: keys[0]})[:1]), None)
            if obj is not None:
                found[keys[0]] = obj
        else:
            size = batch_size(model, key, queryset, alias)
            for start in range(0, len(keys), size):
                batch = keys[start : start + size]
                found.update(
                    (getattr(obj, attname), obj)
                    for obj in queryset.filter(**{f"{lookup}__in": batch})
                )
        result.append((model, key, alias, group, found))
    return result


def batch_size(
    model: type[models.Model], key: Hashable, queryset: models.QuerySet, alias: str
) -> int:
    """How many keys one ``IN`` query of scope ``key`` may carry on ``alias``:
    the database's parameter limit less the scope's own parameters, and its
    longest ``IN`` list."""
    connection = connections[alias]
    limits = [_compat.max_query_params(connection), connection.ops.max_in_list_size()]
    if limits[0] is not None:
        limits[0] -= scopes.parameter_count(model, key, queryset, alias)
    sizes = [limit for limit in limits if limit is not None]
    return max(1, min(sizes)) if sizes else 2**62


# ------------------------------------------------------------ one owner


def fetch(
    field: Relation,
    instance: models.Model,
    spec: Any,
    using: str | None,
    entry: answers.Entry,
    ident: Any,
) -> Any:
    """Query for ``instance``'s answer in scope ``spec`` (honouring the owner's
    fetch mode on Django 6.1+), cache it and return it."""
    mode = _compat.fetch_mode(instance)
    if mode is None or mode is _compat.FETCH_ONE:
        group = policy.batched(field, instance)
        if len(group) < 2:
            policy.lazy_load(field, instance)
            group = [instance]
        load(field, group, spec, using)  # fetch="peers": every peer's, in one query
    else:
        if field.strict is True:
            policy.lazy_load(field, instance)
        # FETCH_PEERS loads every peer in one query; FETCH_RAISE raises
        # FieldFetchBlocked naming the field.
        mode.fetch(_Fetcher(field, spec, using), instance)
    return answers.lookup(instance, entry, ident)


def read_peers(field: Relation, instance: models.Model) -> bool:
    """``instance.<name>`` (Django's attribute) is about to query. With
    ``fetch="peers"`` and peers, load every peer's target in one query, through
    the base manager as Django reads it, and say whether Django's cache now
    answers; else the policy decides about a lazy load (it may raise), and False.
    A key the instance just wrote is read alone, where writes go."""
    group = policy.batched(field, instance)
    if len(group) > 1 and not answers.pinned(field, instance):
        load(field, group, field.scope_spec(False), None)
        return field.is_cached(instance)
    policy.lazy_load(field, instance)
    return False


class _Fetcher:
    """The fetcher protocol of Django 6.1's fetch modes, for one field and scope."""

    __slots__ = ("field", "spec", "using")

    def __init__(self, field: Relation, spec: Any, using: str | None) -> None:
        self.field = field
        self.spec = spec
        self.using = using

    def fetch_one(self, instance: models.Model) -> None:
        load(self.field, [instance], self.spec, self.using, _compat.fetch_mode(instance))

    def fetch_many(self, instances: list[models.Model]) -> None:
        load(self.field, instances, self.spec, self.using, _compat.fetch_mode(instances[0]))


# ------------------------------------------------------------ prefetch


def prefetch(
    instances: Iterable[models.Model],
    name: str,
    scope: AnyScope = None,
    using: str | None = None,
) -> None:
    """Load the ``name`` relation in ``scope`` for all ``instances`` in one query
    (for a ``BelongsToAnyField``, one query per target model).

    Afterwards ``instance.get_<name>(scope=scope)`` answers from the cache.
    Instances whose result is already cached, or whose key is null, are skipped;
    when none is left no query is made.

    Args:
        instances: Instances of one model that has a ``BelongsToField``,
            ``BelongsToOneField`` or ``BelongsToAnyField`` named ``name``.
        name: The field's name, e.g. ``"author"``; a field of another kind
            raises TypeError.
        scope: Any scope ``get_<name>()`` accepts (for a ``BelongsToAnyField``,
            a mapping ``{model: scope}`` too).
        using: Read from this database alias instead of the router's.

    Raises:
        TypeError: ``name`` is not one of those fields, or an instance is of
            another model.
        InvalidScope: the scope is refused, as by ``get_<name>()``.
    """
    instances = list(instances)
    if instances:
        field = _field(instances, name)
        load(field, instances, field.scope_spec(scope), using)


async def aprefetch(
    instances: Iterable[models.Model],
    name: str,
    scope: AnyScope = None,
    using: str | None = None,
) -> None:
    """Async :func:`prefetch`."""
    await _prefetch_in_thread(list(instances), name, scope, using)


def _field(instances: list[models.Model], name: str) -> Relation:
    """The BelongsTo field ``name`` shared by every instance, or TypeError."""
    model = type(instances[0])
    field: Any = model._meta.get_field(name)
    if not is_belongs_to(field):
        raise TypeError(
            f"prefetch(): {model.__name__}.{name} is a {type(field).__name__}, not a "
            f"BelongsToField, BelongsToOneField or BelongsToAnyField."
        )
    for instance in instances:
        if not isinstance(instance, field.model):
            raise TypeError(
                f"prefetch(): {instance!r} is not a {field.model.__name__}; all instances "
                f"must have the {field.model.__name__}.{name} field."
            )
    return field


class ScopedLoad:
    """What a ``ScopedPrefetch`` hands Django's prefetch machinery for its last
    level, in place of a QuerySet: the relation's descriptor recognises it and
    loads through :func:`prefetch_querysets`."""

    __slots__ = ("lookup", "scope", "using")

    def __init__(self, lookup: str, scope: AnyScope, using: str | None) -> None:
        self.lookup = lookup
        self.scope = scope
        self.using = using

    def __getattr__(self, name: str) -> Any:
        # A plain ForeignKey's descriptor would treat this as a QuerySet.
        raise TypeError(
            f"ScopedPrefetch({self.lookup!r}) reached a relation that is not a "
            f"BelongsToField, BelongsToOneField or BelongsToAnyField."
        )


def prefetch_querysets(
    field: Relation, instances: list[models.Model], scoped: ScopedLoad
) -> tuple[list[Any], Any, Any, bool, answers.Entry, bool]:
    """``get_prefetch_querysets()`` for a ``ScopedPrefetch``: the answers of the
    scope (refused with InvalidScope before any query), and how Django's
    ``prefetch_one_level()`` matches them to ``instances`` and stores them: into
    the scope's cache entry, as :func:`load` does."""
    spec = field.scope_spec(scoped.scope)
    held = load(field, instances, spec, scoped.using)
    pairs = {id(pair): pair for _entry, pair in held.values()}
    entry = next(iter(held.values()))[0] if held else answers.name(field, spec, spec, None)
    return (
        list(pairs.values()),
        id,
        lambda instance: id(held[id(instance)][1]) if id(instance) in held else None,
        True,
        entry,
        False,
    )


# Generic in Prefetch's three parameters, as django-stubs declares Prefetch: its
# mypy plugin specializes them for every Prefetch subclass it sees constructed.
class ScopedPrefetch(_PrefetchBase, Generic[_LookupT, _QuerySetT, _ToAttrT]):
    """A ``prefetch_related()`` lookup that loads a BelongsTo relation in a scope
    (a ``BelongsToField``, ``BelongsToOneField`` or ``BelongsToAnyField``).

    ``Book.objects.prefetch_related(ScopedPrefetch("author", scope="bestselling"))``
    fills the cache ``book.get_author(scope="bestselling")`` answers from, so
    that call costs no query on any of the books. The lookup may go through
    relations (``"book__author"`` on reviews); only its last part must be a
    BelongsTo field. It works wherever a ``Prefetch`` does
    (``prefetch_related_objects()``, ``aprefetch_related_objects()``, async
    iteration, pagination), next to ordinary lookups and to other
    ``ScopedPrefetch`` objects for other scopes or fields.

    Args:
        lookup: The relation, e.g. ``"author"`` or ``"book__author"``.
        scope: Any scope ``get_<name>()`` accepts; refused with ``InvalidScope``
            before the prefetch's query (with ``QuerySet.prefetch_related()``,
            after the main query, as Django runs prefetches).
        using: Read from this database alias instead of the router's.
    """

    def __init__(self, lookup: str, scope: AnyScope = None, using: str | None = None) -> None:
        name = lookup.rsplit(LOOKUP_SEP, 1)[-1]
        # Django tells prefetch lookups apart by where they store: each scope
        # stores apart, so each gets a name of its own.
        which = f"qs{id(scope)}" if isinstance(scope, models.QuerySet) else repr(scope)
        super().__init__(lookup, to_attr=f"{name}[{which}@{using}]".replace(LOOKUP_SEP, "_"))
        self.scope = scope
        self.using = using
        self._load = ScopedLoad(lookup, scope, using)

    def get_current_querysets(self, level: int) -> list[Any] | None:
        if self.get_current_prefetch_to(level) == self.prefetch_to:
            return [self._load]  # the relation's descriptor loads the scope
        return None

    def get_current_to_attr(self, level: int) -> tuple[str, Any]:
        # Not an attribute: Django stores each row into the cache entry the
        # descriptor names, as it does for a plain prefetch of the relation.
        to_attr, _as_attr = super().get_current_to_attr(level)
        return to_attr, False


_prefetch_in_thread = sync_to_async(prefetch)
