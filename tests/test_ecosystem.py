"""belongsto_ext with the libraries users combine it with: django-safedelete,
django-model-utils, django-polymorphic, the admin and Django REST framework
(issue "ecosystem", sections 1-4).

1. A scope never answers with a row its own query would not return: the object
   Django holds for ``product.vendor`` answers only a scope certain to select
   every row (decided from the SQL the scope compiles to, so filters a Query
   class adds when compiled count).
2. QuerySet scopes from inheritance and polymorphic managers are accepted; the
   ones that cannot answer are refused before any query.
3. Inline QuerySet scopes hit the per-instance cache and never pile up.
4. The admin and DRF show what ``get_<name>()`` answers.
"""

from __future__ import annotations

import copy
import pickle
import re
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from django import forms
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.test.utils import CaptureQueriesContext
from rest_framework import generics, serializers
from rest_framework.test import APIRequestFactory

import belongsto_ext
from belongsto_ext import InvalidScope
from belongsto_ext.scopes import QuerySetKey
from tests.ecosystem.models import (
    Article,
    Dock,
    Gadget,
    Media,
    Photo,
    Place,
    Product,
    ProxyVendor,
    Shelf,
    SoftProduct,
    Toolbox,
    Vendor,
    Video,
    Warehouse,
)
from tests.factories import (
    ArticleFactory,
    GadgetFactory,
    MediaFactory,
    NoteFactory,
    PhotoFactory,
    PlaceFactory,
    ProductFactory,
    VendorFactory,
    VideoFactory,
    WarehouseFactory,
)
from tests.helpers import fresh, memory_state, row_state, run, worker_queries
from tests.markers import needs_fetch_modes

pytestmark = pytest.mark.django_db


# ------------------------------------------------------------------ helpers


@pytest.fixture(autouse=True)
def content_types() -> None:
    """Django caches ContentTypes per process: load them before any query is counted,
    so that django-polymorphic's own lookups do not depend on the order tests run in."""
    ContentType.objects.get_for_models(Media, Video, Photo, for_concrete_models=False)


def vendor(*, deleted: bool = False, **fields: Any) -> Any:
    """A saved vendor; ``deleted=True`` soft-deletes it (``Vendor.objects`` hides it)."""
    made = VendorFactory(**fields)
    if deleted:
        made.delete()
        assert not Vendor.objects.filter(pk=made.pk).exists()
    return made


def product_of(target: Any, **fields: Any) -> Any:
    """A fresh product pointing at ``target``, nothing cached."""
    return fresh(ProductFactory(vendor=target, **fields))


def queryset_entries(instance: models.Model, name: str) -> int:
    """How many QuerySet scopes ``instance`` holds answers for on field ``name``.

    The answers live in Django's per-instance cache, each under
    ``("<name>:scoped", scope key, using)``.
    """
    return sum(
        isinstance(k, tuple) and k[0] == f"{name}:scoped" and isinstance(k[1], QuerySetKey)
        for k in instance._state.fields_cache
    )


# ================================================================ section 1
# A scope never answers with a row its own query would not return.


class ProductForm(forms.ModelForm):
    # Any vendor may be picked, soft-deleted ones included.
    vendor = forms.ModelChoiceField(queryset=Vendor.all_objects.all())

    class Meta:
        model = Product
        fields = ("name", "vendor")


class ProductSerializer(serializers.ModelSerializer):
    vendor = serializers.PrimaryKeyRelatedField(queryset=Vendor.all_objects.all())

    class Meta:
        model = Product
        fields = ("id", "name", "vendor")


def fresh_state(target: Any) -> Any:
    return product_of(target)


def select_related_state(target: Any) -> Any:
    return fresh(product_of(target), Product.objects.select_related("vendor"))


def read_state(target: Any) -> Any:
    product = product_of(target)
    assert product.vendor == target  # Django reads through the base manager
    return product


def prefetch_related_state(target: Any) -> Any:
    return fresh(product_of(target), Product.objects.prefetch_related("vendor"))


def set_vendor_state(target: Any) -> Any:
    product = product_of(None)
    product.set_vendor(Vendor.all_objects.get(pk=target.pk))
    return product


def model_form_state(target: Any) -> Any:
    product = product_of(None)
    form = ProductForm(data={"name": "Formed", "vendor": str(target.pk)}, instance=product)
    assert form.is_valid(), form.errors
    return form.save()


def serializer_state(target: Any) -> Any:
    serializer = ProductSerializer(product_of(None), data={"name": "Posted", "vendor": target.pk})
    assert serializer.is_valid(), serializer.errors
    return serializer.save()


HELD_STATES = [
    pytest.param(fresh_state, id="fresh"),
    pytest.param(select_related_state, id="select_related"),
    pytest.param(read_state, id="read-product.vendor"),
    pytest.param(prefetch_related_state, id="prefetch_related"),
    pytest.param(set_vendor_state, id="set_vendor"),
    pytest.param(model_form_state, id="ModelForm"),
    pytest.param(serializer_state, id="DRF-serializer"),
]


@pytest.mark.parametrize("make", HELD_STATES)
def test_default_scope_hides_a_soft_deleted_vendor_django_holds(
    make: Callable[[Any], Any], django_assert_num_queries: Any
) -> None:
    gone = vendor(deleted=True)
    product = make(gone)
    assert product.vendor_id == gone.pk
    with django_assert_num_queries(1):
        assert product.get_vendor() is None
    with django_assert_num_queries(0):  # the "no row" answer is cached
        assert product.get_vendor() is None


@pytest.mark.parametrize("make", HELD_STATES)
def test_default_scope_returns_a_live_vendor_in_one_query(
    make: Callable[[Any], Any], django_assert_num_queries: Any
) -> None:
    live = vendor()
    product = make(live)
    with django_assert_num_queries(1):
        found = product.get_vendor()
    assert found == live
    assert found.name == live.name


ASYNC_STATES = [
    pytest.param(fresh_state, id="fresh"),
    pytest.param(select_related_state, id="select_related"),
    pytest.param(read_state, id="read-product.vendor"),
    pytest.param(prefetch_related_state, id="prefetch_related"),
    pytest.param(set_vendor_state, id="set_vendor"),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("make", ASYNC_STATES)
def test_aget_hides_a_soft_deleted_vendor_django_holds(make: Callable[[Any], Any]) -> None:
    gone, live = vendor(deleted=True), vendor()
    hidden, shown = make(gone), make(live)

    async def main() -> None:
        async with worker_queries() as queries:
            assert await hidden.aget_vendor() is None
            assert await shown.aget_vendor() == live
        assert len(queries) == 2
        async with worker_queries() as again:  # cached: no thread, no query
            assert await hidden.aget_vendor() is None
            assert await shown.aget_vendor() == live
        assert again == []

    run(main)


@pytest.mark.parametrize("scope", [False, "all_objects"])
def test_a_scope_without_condition_answers_from_select_related(
    scope: Any, django_assert_num_queries: Any
) -> None:
    gone = vendor(deleted=True)
    product = select_related_state(gone)
    with django_assert_num_queries(0):
        found = product.get_vendor(scope=scope)
    assert found is product.vendor
    assert found.pk == gone.pk


@pytest.mark.parametrize(
    "make", [fresh_state, select_related_state], ids=["fresh", "select_related"]
)
@pytest.mark.parametrize("deleted", [False, True], ids=["live", "soft-deleted"])
def test_deleted_objects_scope_selects_only_soft_deleted_vendors(
    make: Callable[[Any], Any], deleted: bool, django_assert_num_queries: Any
) -> None:
    target = vendor(deleted=deleted)
    product = make(target)
    with django_assert_num_queries(1):
        found = product.get_vendor(scope="deleted_objects")
    assert found == (target if deleted else None)


@pytest.mark.parametrize(
    "make", [fresh_state, select_related_state], ids=["fresh", "select_related"]
)
@pytest.mark.parametrize(
    ("scope", "fields", "found"),
    [
        pytest.param(["all_objects", "deleted_objects"], {}, False, id="all+deleted-live"),
        pytest.param(
            ["all_objects", "deleted_objects"], {"deleted": True}, True, id="all+deleted-deleted"
        ),
        pytest.param(
            ["all_objects", "verified"], {"deleted": True}, False, id="all+verified-deleted"
        ),
        pytest.param("verified", {"deleted": True}, False, id="verified-deleted"),
        pytest.param(["all_objects", "verified"], {}, True, id="all+verified-live"),
        pytest.param(
            ["all_objects", "verified"], {"is_verified": False}, False, id="all+verified-unverified"
        ),
        pytest.param(("verified", "all_objects"), {}, True, id="verified+all-live"),
    ],
)
def test_list_scope_is_the_rows_every_manager_selects_alone(
    make: Callable[[Any], Any],
    scope: Any,
    fields: dict[str, Any],
    found: bool,
    django_assert_num_queries: Any,
) -> None:
    target = vendor(**fields)
    product = make(target)
    with django_assert_num_queries(1):
        result = product.get_vendor(scope=scope)
    assert result == (target if found else None)


def test_prefetch_does_not_skip_select_related_products(django_assert_num_queries: Any) -> None:
    live, gone = vendor(), vendor(deleted=True)
    ProductFactory(vendor=live, name="a")
    ProductFactory(vendor=gone, name="b")
    ProductFactory(vendor=live, name="c")
    products = list(Product.objects.select_related("vendor").order_by("name"))
    with django_assert_num_queries(1):
        belongsto_ext.prefetch(products, "vendor")
    with django_assert_num_queries(0):
        assert [p.get_vendor() for p in products] == [live, None, live]


@needs_fetch_modes
def test_fetch_peers_loads_every_peers_vendor_in_one_query(django_assert_num_queries: Any) -> None:
    live, gone, other = vendor(), vendor(deleted=True), vendor()
    for target in (live, gone, other, live):
        ProductFactory(vendor=target)
    products = list(
        Product.objects.select_related("vendor").fetch_mode(models.FETCH_PEERS).order_by("pk")
    )
    with django_assert_num_queries(1):
        assert products[0].get_vendor() == live
    with django_assert_num_queries(0):
        assert [p.get_vendor() for p in products] == [live, None, other, live]


@needs_fetch_modes
def test_fetch_raise_blocks_a_filtering_scope_but_not_scope_false(
    django_assert_num_queries: Any,
) -> None:
    from django.core.exceptions import FieldFetchBlocked

    gone = vendor(deleted=True)
    product = fresh(
        product_of(gone), Product.objects.select_related("vendor").fetch_mode(models.FETCH_RAISE)
    )
    with django_assert_num_queries(0), pytest.raises(FieldFetchBlocked, match=r"Product\.vendor"):
        product.get_vendor()
    with django_assert_num_queries(0):
        assert product.get_vendor(scope=False) == gone


# A filter added only when the Query is compiled, without any third-party
# library (tests.ecosystem.models.LateFilterQuery): Gadget.objects hides hidden rows.


def read_gadget(box: Any) -> Any:
    assert box.gadget is not None  # Django reads through the base manager
    return box


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda box: fresh(box), id="fresh"),
        pytest.param(
            lambda box: fresh(box, Toolbox.objects.select_related("gadget")), id="select_related"
        ),
        pytest.param(lambda box: read_gadget(fresh(box)), id="read-box.gadget"),
    ],
)
@pytest.mark.parametrize("hidden", [False, True], ids=["shown", "hidden"])
def test_a_late_filter_is_never_bypassed(
    make: Callable[[Any], Any], hidden: bool, django_assert_num_queries: Any
) -> None:
    gadget = GadgetFactory(hidden=hidden)
    box = make(Toolbox.objects.create(gadget=gadget))
    with django_assert_num_queries(1):
        assert box.get_gadget() == (None if hidden else gadget)
    with django_assert_num_queries(1):
        assert box.get_gadget(scope=["all_objects", "objects"]) == (None if hidden else gadget)
    with django_assert_num_queries(1):
        assert box.get_gadget(scope=Gadget.objects.all()) == (None if hidden else gadget)


def test_a_manager_without_condition_answers_from_select_related(
    django_assert_num_queries: Any,
) -> None:
    gadget = GadgetFactory(hidden=True)
    box = fresh(Toolbox.objects.create(gadget=gadget), Toolbox.objects.select_related("gadget"))
    with django_assert_num_queries(0):
        assert box.get_gadget(scope="all_objects") is box.gadget
        assert box.get_gadget(scope=False) is box.gadget


# ================================================================ section 2
# QuerySet scopes from inheritance and polymorphic managers.


def shelf_with(**targets: Any) -> Any:
    return fresh(Shelf.objects.create(**targets))


@pytest.mark.parametrize(
    ("scope", "kind"),
    [
        pytest.param(lambda: Place.objects.select_subclasses(), Warehouse, id="select_subclasses"),
        pytest.param(lambda: "with_subclasses", Warehouse, id="with_subclasses"),
        pytest.param(lambda: Place.objects.filter(name="North"), Place, id="filter"),
        pytest.param(lambda: Warehouse.objects.all(), Warehouse, id="child-queryset"),
        pytest.param(lambda: None, Place, id="default"),
    ],
)
def test_inheritance_scopes_return_what_their_queryset_returns(
    scope: Callable[[], Any], kind: type, django_assert_num_queries: Any
) -> None:
    warehouse = WarehouseFactory(name="North")
    shelf = shelf_with(place=warehouse)
    with django_assert_num_queries(1):
        found = shelf.get_place(scope=scope())
    assert type(found) is kind
    assert found.pk == warehouse.pk
    assert found.name == "North"


def test_inheritance_filter_scope_that_excludes_the_place(django_assert_num_queries: Any) -> None:
    shelf = shelf_with(place=WarehouseFactory(name="North"))
    with django_assert_num_queries(1):
        assert shelf.get_place(scope=Place.objects.select_subclasses().filter(name="South")) is None


def test_child_queryset_is_none_for_a_plain_parent(django_assert_num_queries: Any) -> None:
    shelf = shelf_with(place=PlaceFactory())
    with django_assert_num_queries(1):
        assert shelf.get_place(scope=Warehouse.objects.all()) is None


def test_polymorphic_queryset_scope_returns_the_real_class(django_assert_num_queries: Any) -> None:
    video = VideoFactory(title="clip")
    shelf = shelf_with(media=video)
    # The base row, then the Video row (django-polymorphic's documented cost).
    with django_assert_num_queries(2):
        found = shelf.get_media(scope=Media.objects.filter(title="clip"))
    assert type(found) is Video
    assert (found.pk, found.seconds) == (video.pk, 30)
    with django_assert_num_queries(1):
        assert shelf.get_media(scope=Media.objects.filter(title="other")) is None


@pytest.mark.parametrize(
    ("make", "found"),
    [
        pytest.param(VideoFactory, True, id="a-video"),
        pytest.param(PhotoFactory, False, id="a-photo"),
    ],
)
def test_polymorphic_child_queryset_is_the_target_if_it_is_one(
    make: Callable[[], Any], found: bool, django_assert_num_queries: Any
) -> None:
    media = make()
    shelf = shelf_with(media=media)
    with django_assert_num_queries(1):
        result = shelf.get_media(scope=Video.objects.all())
    if found:
        assert type(result) is Video
        assert result.pk == media.pk
    else:
        assert result is None


@pytest.mark.parametrize(
    ("make", "kind", "queries"),
    [
        pytest.param(VideoFactory, Video, 2, id="video-base-then-subclass-row"),
        pytest.param(MediaFactory, Media, 1, id="plain-media"),
    ],
)
@pytest.mark.parametrize(
    "load",
    [
        pytest.param(lambda shelf: fresh(shelf), id="fresh"),
        pytest.param(
            lambda shelf: fresh(shelf, Shelf.objects.select_related("media")), id="select_related"
        ),
    ],
)
def test_polymorphic_default_scope_costs_a_query_per_table(
    make: Callable[[], Any],
    kind: type,
    queries: int,
    load: Callable[[Any], Any],
    django_assert_num_queries: Any,
) -> None:
    media = make()
    shelf = load(Shelf.objects.create(media=media))
    with django_assert_num_queries(queries):
        found = shelf.get_media()
    assert type(found) is kind
    assert found.pk == media.pk


def test_deferred_key_is_loaded_first(django_assert_num_queries: Any) -> None:
    place = PlaceFactory()
    shelf = fresh(Shelf.objects.create(place=place), Shelf.objects.only("id"))
    with django_assert_num_queries(2):  # the key, then the place
        assert shelf.get_place() == place
    with django_assert_num_queries(0):
        assert shelf.get_place() == place


def test_deferred_null_key_costs_only_loading_it(django_assert_num_queries: Any) -> None:
    shelf = fresh(Shelf.objects.create(), Shelf.objects.only("id"))
    with django_assert_num_queries(1):
        assert shelf.get_place() is None


def test_null_key_costs_nothing(django_assert_num_queries: Any) -> None:
    product = product_of(None)
    with django_assert_num_queries(0):
        assert product.get_vendor() is None
        assert product.get_vendor(scope="deleted_objects") is None


@pytest.mark.parametrize(
    ("make", "unscoped_queries"),
    [
        pytest.param(fresh, 1, id="fresh"),
        # The base manager (all_objects) has no condition: the joined article answers.
        pytest.param(
            lambda shelf: fresh(shelf, Shelf.objects.select_related("article")),
            0,
            id="select_related",
        ),
    ],
)
def test_query_manager_default_scope_hides_unpublished_articles(
    make: Callable[[Any], Any], unscoped_queries: int, django_assert_num_queries: Any
) -> None:
    draft = ArticleFactory(published=False)
    shelf = make(Shelf.objects.create(article=draft))
    with django_assert_num_queries(1):
        assert shelf.get_article() is None
    with django_assert_num_queries(unscoped_queries):
        assert shelf.get_article(scope=False) == draft


def test_query_manager_default_scope_returns_published_articles(
    django_assert_num_queries: Any,
) -> None:
    article = ArticleFactory(published=True)
    shelf = shelf_with(article=article)
    with django_assert_num_queries(1):
        assert shelf.get_article() == article


def test_soft_deletable_note_is_hidden_by_the_default_scope(
    django_assert_num_queries: Any,
) -> None:
    note = NoteFactory()
    note.delete()  # model-utils' soft delete: is_removed=True
    shelf = shelf_with(note=note)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default scope (available_objects) does not warn
        with django_assert_num_queries(1):
            assert shelf.get_note() is None
    with django_assert_num_queries(1):
        assert shelf.get_note(scope="all_objects") == note
    with (
        pytest.warns(DeprecationWarning, match="available_objects"),
        django_assert_num_queries(1),
    ):
        assert shelf.get_note(scope="objects") is None


def test_soft_deletable_note_that_is_kept(django_assert_num_queries: Any) -> None:
    note = NoteFactory()
    shelf = shelf_with(note=note)
    with django_assert_num_queries(1):
        assert shelf.get_note() == note


def owner_of(field: str) -> tuple[Any, Any]:
    """A fresh owner whose ``field`` points at a new target, and the target."""
    if field == "vendor":
        target = vendor()
        return product_of(target), target
    if field == "warehouse":
        target = WarehouseFactory()
        return fresh(Dock.objects.create(warehouse=target)), target
    target = {"place": WarehouseFactory, "media": VideoFactory}[field]()
    return shelf_with(**{field: target}), target


VALUES = "values() and values_list() QuerySets return dicts or tuples, not instances"

REFUSED = [
    pytest.param("vendor", lambda: Vendor.objects.values(), VALUES, id="vendor-values"),
    pytest.param(
        "vendor", lambda: Vendor.all_objects.values_list("name"), VALUES, id="vendor-values_list"
    ),
    pytest.param(
        "vendor", lambda: Vendor.objects.values_list("pk", flat=True), VALUES, id="vendor-flat"
    ),
    pytest.param(
        "vendor",
        lambda: Vendor.objects.values_list("pk", "name", named=True),
        VALUES,
        id="vendor-named",
    ),
    pytest.param(
        "place", lambda: Place.objects.select_subclasses().values(), VALUES, id="place-values"
    ),
    pytest.param(
        "place", lambda: Place.objects.values_list("pk", flat=True), VALUES, id="place-flat"
    ),
    pytest.param("media", lambda: Media.objects.values(), VALUES, id="media-values"),
    pytest.param(
        "media", lambda: Media.objects.values_list("title"), VALUES, id="media-values_list"
    ),
    pytest.param(
        "media",
        lambda: Media.objects.values_list("pk", "title", named=True),
        VALUES,
        id="media-named",
    ),
    pytest.param(
        "vendor",
        lambda: Vendor.objects.filter(name="a").union(Vendor.objects.filter(name="b")),
        "union() QuerySet cannot be filtered",
        id="vendor-union",
    ),
    pytest.param(
        "vendor",
        lambda: Vendor.objects.all().intersection(Vendor.all_objects.all()),
        "intersection() QuerySet cannot be filtered",
        id="vendor-intersection",
    ),
    pytest.param(
        "vendor",
        lambda: Vendor.all_objects.all().difference(Vendor.deleted_objects.all()),
        "difference() QuerySet cannot be filtered",
        id="vendor-difference",
    ),
    pytest.param(
        "place",
        lambda: Place.objects.select_subclasses().union(Place.objects.all()),
        "union() QuerySet cannot be filtered",
        id="place-union",
    ),
    pytest.param(
        "media",
        lambda: Media.objects.filter(title="a").union(Media.objects.filter(title="b")),
        "union() QuerySet cannot be filtered",
        id="media-union",
    ),
    pytest.param(
        "vendor", lambda: Product.objects.all(), "a QuerySet of Product", id="owner-model"
    ),
    pytest.param(
        "place", lambda: Article.objects.all(), "a QuerySet of Article", id="unrelated-model"
    ),
    pytest.param(
        "media", lambda: Place.objects.all(), "a QuerySet of Place", id="unrelated-hierarchy"
    ),
    pytest.param(
        "warehouse", lambda: Place.objects.all(), "a QuerySet of Place", id="parent-of-child"
    ),
    pytest.param(
        "warehouse",
        lambda: Place.objects.select_subclasses(),
        "a QuerySet of Place",
        id="parent-of-child-subclasses",
    ),
    pytest.param("vendor", lambda: Vendor.objects.all()[:3], "sliced", id="vendor-sliced"),
    pytest.param(
        "place", lambda: Place.objects.select_subclasses()[:1], "sliced", id="place-sliced"
    ),
    pytest.param("media", lambda: Media.objects.all()[1:], "sliced", id="media-sliced"),
]


@pytest.mark.parametrize(("field", "make", "reason"), REFUSED)
def test_unusable_queryset_scope_is_refused_before_any_query(
    field: str, make: Callable[[], Any], reason: str, django_assert_num_queries: Any
) -> None:
    owner, target = owner_of(field)
    queryset = make()
    before = memory_state(owner), row_state(owner), row_state(target)
    with django_assert_num_queries(0), pytest.raises(InvalidScope) as excinfo:
        getattr(owner, f"get_{field}")(scope=queryset)
    message = str(excinfo.value)
    assert reason in message
    relation = owner._meta.get_field(field)
    assert f"for {type(owner).__name__}.{field} ({relation.related_model._meta.label}):" in message
    assert (memory_state(owner), row_state(owner), row_state(target)) == before
    with django_assert_num_queries(0), pytest.raises(InvalidScope):  # refused again, not cached
        belongsto_ext.prefetch([owner], field, scope=queryset)


# ================================================================ section 3
# Inline QuerySet scopes hit the cache and never pile up.


def test_an_inline_queryset_scope_repeated_is_one_query_and_one_entry(
    django_assert_num_queries: Any,
) -> None:
    live = vendor(name="Lumber Ltd")
    product = product_of(live)
    with django_assert_num_queries(1):
        for _ in range(1000):
            assert product.get_vendor(scope=Vendor.all_objects.filter(name__startswith="L")) == live
    assert queryset_entries(product, "vendor") == 1


def test_a_thousand_different_queryset_scopes_keep_at_most_eight(
    django_assert_num_queries: Any,
) -> None:
    target = vendor(name="x7")
    product = product_of(target)
    for i in range(1000):
        with django_assert_num_queries(1):  # each new scope is queried once
            found = product.get_vendor(scope=Vendor.all_objects.filter(name=f"x{i}"))
        assert found == (target if i == 7 else None)
        assert queryset_entries(product, "vendor") <= 8
    assert queryset_entries(product, "vendor") == 8


def test_the_least_recently_used_queryset_scope_is_dropped(django_assert_num_queries: Any) -> None:
    product = product_of(vendor(name="kept"))

    def scope(i: int) -> models.QuerySet:
        return Vendor.all_objects.filter(name=f"s{i}")

    with django_assert_num_queries(8):
        for i in range(8):
            assert product.get_vendor(scope=scope(i)) is None
    with django_assert_num_queries(0):  # all eight kept; s0 is now the most recently used
        assert product.get_vendor(scope=scope(0)) is None
    with django_assert_num_queries(1):  # a ninth drops the least recently used: s1
        assert product.get_vendor(scope=scope(8)) is None
    assert queryset_entries(product, "vendor") == 8
    with django_assert_num_queries(0):
        assert product.get_vendor(scope=scope(0)) is None
        for i in range(2, 9):
            assert product.get_vendor(scope=scope(i)) is None
    with django_assert_num_queries(1):
        assert product.get_vendor(scope=scope(1)) is None


def test_named_scopes_are_not_dropped_by_queryset_scopes(django_assert_num_queries: Any) -> None:
    live = vendor()
    product = product_of(live)
    with django_assert_num_queries(2):
        assert product.get_vendor() == live
        assert product.get_vendor(scope="verified") == live
    with django_assert_num_queries(20):
        for i in range(20):
            product.get_vendor(scope=Vendor.all_objects.filter(name=f"n{i}"))
    with django_assert_num_queries(0):
        assert product.get_vendor() == live
        assert product.get_vendor(scope="verified") == live


def test_querysets_differing_only_in_ordering_share_an_entry(
    django_assert_num_queries: Any,
) -> None:
    live = vendor(name="Ordered")
    product = product_of(live)
    with django_assert_num_queries(1):
        assert product.get_vendor(scope=Vendor.all_objects.filter(name="Ordered")) == live
        assert (
            product.get_vendor(scope=Vendor.all_objects.filter(name="Ordered").order_by("-pk"))
            == live
        )
        assert (
            product.get_vendor(scope=Vendor.all_objects.order_by("name").filter(name="Ordered"))
            == live
        )
    assert queryset_entries(product, "vendor") == 1


def test_querysets_with_different_parameters_do_not_share(django_assert_num_queries: Any) -> None:
    live = vendor(name="Param")
    product = product_of(live)
    with django_assert_num_queries(2):
        assert product.get_vendor(scope=Vendor.all_objects.filter(name="Param")) == live
        assert product.get_vendor(scope=Vendor.all_objects.filter(name="Other")) is None
    with django_assert_num_queries(0):
        assert product.get_vendor(scope=Vendor.all_objects.filter(name="Param")) == live
        assert product.get_vendor(scope=Vendor.all_objects.filter(name="Other")) is None
    assert queryset_entries(product, "vendor") == 2


def test_a_proxy_queryset_with_the_same_sql_is_another_scope(
    django_assert_num_queries: Any,
) -> None:
    live = vendor(name="Proxied")
    product = product_of(live)
    with django_assert_num_queries(1):
        plain = product.get_vendor(scope=Vendor.all_objects.filter(name="Proxied"))
    with django_assert_num_queries(1):
        proxied = product.get_vendor(scope=ProxyVendor.all_objects.filter(name="Proxied"))
    assert type(plain) is Vendor
    assert type(proxied) is ProxyVendor
    assert proxied.pk == live.pk
    with django_assert_num_queries(0):
        assert type(product.get_vendor(scope=Vendor.all_objects.filter(name="Proxied"))) is Vendor
        assert (
            type(product.get_vendor(scope=ProxyVendor.all_objects.filter(name="Proxied")))
            is ProxyVendor
        )
    assert queryset_entries(product, "vendor") == 2


def test_a_copy_has_its_own_answers(django_assert_num_queries: Any) -> None:
    live = vendor(name="Copied")
    original = product_of(live)

    def scope(name: str) -> models.QuerySet:
        return Vendor.all_objects.filter(name=name)

    with django_assert_num_queries(1):
        assert original.get_vendor(scope=scope("Copied")) == live
    duplicate = copy.copy(original)
    with django_assert_num_queries(0):  # answers read before the copy are shared
        assert duplicate.get_vendor(scope=scope("Copied")) == live
    # An answer cached on one after the copy is not on the other.
    with django_assert_num_queries(1):
        assert duplicate.get_vendor(scope=scope("Copy only")) is None
    with django_assert_num_queries(1):
        assert original.get_vendor(scope=scope("Copy only")) is None
    with django_assert_num_queries(1):
        assert original.get_vendor(scope=scope("Original only")) is None
    with django_assert_num_queries(1):
        assert duplicate.get_vendor(scope=scope("Original only")) is None


def test_a_copy_pointed_elsewhere_keeps_the_original_answers(
    django_assert_num_queries: Any,
) -> None:
    first, second = vendor(name="First"), vendor(name="Second")
    original = product_of(first)
    every = Vendor.all_objects.all
    with django_assert_num_queries(1):
        assert original.get_vendor(scope=every()) == first
    duplicate = copy.copy(original)
    duplicate.vendor_id = second.pk
    with django_assert_num_queries(1):
        assert duplicate.get_vendor(scope=every()) == second
    with django_assert_num_queries(0):
        assert original.get_vendor(scope=every()) == first
        assert duplicate.get_vendor(scope=every()) == second
    original.vendor_id = second.pk
    with django_assert_num_queries(1):
        assert original.get_vendor(scope=every()) == second
    with django_assert_num_queries(0):
        assert duplicate.get_vendor(scope=every()) == second


def test_pickling_with_queryset_answers_runs_no_query(django_assert_num_queries: Any) -> None:
    live = vendor(name="Pickled")
    product = product_of(live)
    with django_assert_num_queries(2):
        assert product.get_vendor() == live
        assert product.get_vendor(scope=Vendor.all_objects.filter(name="Pickled")) == live
    with django_assert_num_queries(0):
        restored = pickle.loads(pickle.dumps(product))
    with django_assert_num_queries(0):
        assert restored.get_vendor() == live
    with CaptureQueriesContext(connection) as queries:
        assert restored.get_vendor(scope=Vendor.all_objects.filter(name="Pickled")) == live
        assert restored.get_vendor(scope=Vendor.all_objects.filter(name="Other")) is None
    assert len(queries) <= 2
    with django_assert_num_queries(0):  # the original is untouched
        assert product.get_vendor(scope=Vendor.all_objects.filter(name="Pickled")) == live


# ================================================================ section 4
# The admin and Django REST framework show what get_<name>() answers.


def test_admin_changelist_shows_the_default_scope(
    admin_client: Any, django_assert_num_queries: Any
) -> None:
    live, gone = vendor(name="Live Ltd"), vendor(name="Defunct Ltd", deleted=True)
    ProductFactory(name="kept", vendor=live)
    ProductFactory(name="orphan", vendor=gone)
    ProductFactory(name="loose", vendor=None)
    # 2 (the session, the user) + 2 (the changelist counts the filtered and the
    # full result) + 1 (the page of products, JOINed with their vendor:
    # list_select_related) + 2 (get_vendor() for the two rows with a vendor: the
    # default scope filters when compiled, so the joined vendor cannot answer;
    # the null key costs nothing) = 7.
    with django_assert_num_queries(7):
        response = admin_client.get("/admin/ecosystem/product/")
    assert response.status_code == 200
    rows = dict(
        re.findall(
            r'<th class="field-name">.*?>([^<]+)</a></th><td class="field-vendor_in_scope">([^<]*)</td>',
            response.content.decode(),
        )
    )
    assert rows == {"kept": "Live Ltd", "orphan": "-", "loose": "-"}


def test_admin_change_page_offers_only_live_vendors(admin_client: Any) -> None:
    live, gone = vendor(name="Live Ltd"), vendor(name="Defunct Ltd", deleted=True)
    product = ProductFactory(name="kept", vendor=live)
    response = admin_client.get(f"/admin/ecosystem/product/{product.pk}/change/")
    assert response.status_code == 200
    select = re.search(r'<select name="vendor".*?</select>', response.content.decode(), re.S)
    assert select is not None
    options = re.findall(r'<option value="(\d*)"[^>]*>([^<]*)</option>', select.group(0))
    assert (str(live.pk), "Live Ltd") in options
    assert "Defunct Ltd" not in {label for _value, label in options}
    assert str(gone.pk) not in {value for value, _label in options}


class ProductListSerializer(serializers.ModelSerializer):
    vendor = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = ("name", "vendor")

    def get_vendor(self, obj: Product) -> str | None:
        found = obj.get_vendor()  # type: ignore[attr-defined]
        return None if found is None else found.name


class ProductList(generics.ListAPIView):
    queryset = Product.objects.select_related("vendor").order_by("name")
    serializer_class = ProductListSerializer


def test_drf_list_view_shows_null_for_a_soft_deleted_vendor(
    django_assert_num_queries: Any,
) -> None:
    live, gone = vendor(name="Live Ltd"), vendor(name="Defunct Ltd", deleted=True)
    ProductFactory(name="kept", vendor=live)
    ProductFactory(name="orphan", vendor=gone)
    request = APIRequestFactory().get("/products/")
    # 1 (the products, JOINed with their vendor) + 1 get_vendor() per product.
    with django_assert_num_queries(3):
        response = ProductList.as_view()(request)
    assert response.status_code == 200
    assert response.data == [
        {"name": "kept", "vendor": "Live Ltd"},
        {"name": "orphan", "vendor": None},
    ]


# ================================================= a field's own scopes=(...)


def allowed_names(message: str) -> list[str]:
    """The parenthesised lists of quoted scope names an InvalidScope message offers."""
    return re.findall(r"\(('\w+'(?:, '\w+')*)\)", message)


@pytest.mark.parametrize(
    "scope", ["all_objects", ["objects", "all_objects"], ("deleted_objects",), "unknown"]
)
def test_listed_vendor_refuses_scopes_it_does_not_declare(
    scope: Any, django_assert_num_queries: Any
) -> None:
    live = vendor()
    product = fresh(ProductFactory(listed_vendor=live))
    before = memory_state(product)
    with django_assert_num_queries(0), pytest.raises(InvalidScope) as excinfo:
        product.get_listed_vendor(scope=scope)
    message = str(excinfo.value)
    assert allowed_names(message) == ["'objects', 'verified'"]
    assert f"Invalid scope {scope!r} for Product.listed_vendor (ecosystem.Vendor)" in message
    assert memory_state(product) == before


@pytest.mark.parametrize(
    ("scope", "deleted", "found"),
    [
        pytest.param("verified", False, True, id="verified"),
        pytest.param("verified", True, False, id="verified-deleted"),
        pytest.param(None, True, False, id="None"),
        pytest.param(True, False, True, id="True"),
        pytest.param(("objects", "verified"), False, True, id="list-of-declared"),
        pytest.param(lambda: Vendor.all_objects.all(), True, True, id="queryset"),
    ],
)
def test_listed_vendor_accepts_its_declared_scopes(
    scope: Any, deleted: bool, found: bool, django_assert_num_queries: Any
) -> None:
    target = vendor(deleted=deleted)
    product = fresh(ProductFactory(listed_vendor=target))
    scope = scope() if callable(scope) else scope
    with django_assert_num_queries(1):
        assert product.get_listed_vendor(scope=scope) == (target if found else None)


def test_listed_vendor_refuses_false_its_allow_list_does_not_name(
    django_assert_num_queries: Any,
) -> None:
    """scopes=("objects", "verified") does not name the base manager: scope=False (a
    JSON false from a request) would lift the soft-delete scope, and is refused."""
    product = fresh(ProductFactory(listed_vendor=vendor(deleted=True)))
    with django_assert_num_queries(0), pytest.raises(InvalidScope, match="listed_vendor"):
        product.get_listed_vendor(scope=False)


# ----------------------------------------------- a soft-deleted safedelete owner


def test_set_on_a_soft_deleted_owner_with_keep_deleted_keeps_row_and_instance_alike(
    django_assert_num_queries: Any,
) -> None:
    """django-safedelete's save() undeletes the owner unless keep_deleted=True;
    set_<name>() passes its save kwargs on, so the owner stays deleted in the
    database and in memory, and one UPDATE writes only the key."""
    old, new = vendor(name="Old"), vendor(name="New")
    owner = SoftProduct.objects.create(vendor=old)
    owner.delete()  # soft delete: the row stays, with ``deleted`` set
    owner = SoftProduct.all_objects.get(pk=owner.pk)
    assert owner.deleted is not None
    with CaptureQueriesContext(connection) as ctx:
        owner.set_vendor(new, keep_deleted=True)
    writes = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(writes) == 1 and "vendor_id" in writes[0] and "deleted" not in writes[0]
    assert row_state(owner)["vendor_id"] == new.pk
    assert row_state(owner)["deleted"] is not None  # still soft-deleted in the database
    assert owner.deleted is not None  # and in memory
    assert not SoftProduct.objects.filter(pk=owner.pk).exists()
