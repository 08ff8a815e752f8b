"""What BelongsToAnyField gains from running on the shared pipeline: ``strict=``,
``scopes=``, Django 6.1's fetch modes, and the read-your-writes pin (routing; the
lagging-standby tests are in test_standby.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core import checks
from django.db import models
from django.test import override_settings
from django.test.utils import CaptureQueriesContext, isolate_apps

import belongsto_ext
from belongsto_ext import BelongsToAnyField, FieldFetchBlocked, InvalidScope, ScopedPrefetch
from tests.factories import AnyCommentFactory, AnyPhotoFactory, AnyPostFactory
from tests.helpers import fresh, memory_state, row_state
from tests.markers import needs_fetch_modes
from tests.models import AnyComment, AnyLike, AnyPhoto, AnyPost, AnyWatch

pytestmark = pytest.mark.django_db


def watching(target: Any) -> AnyWatch:
    """A watch of ``target`` as loaded from the database: nothing cached."""
    return fresh(AnyWatch.objects.create(target=target))


# ------------------------------------------------------------ strict=


def test_strict_refuses_a_read_that_would_query(django_assert_num_queries: Any) -> None:
    watch = watching(AnyPostFactory())
    ContentType.objects.get_for_model(AnyPost)  # the content type is not the read
    with django_assert_num_queries(0):
        with pytest.raises(FieldFetchBlocked, match=r"AnyWatch\.target blocked"):
            watch.get_target()
        with pytest.raises(FieldFetchBlocked, match=r"AnyWatch\.target blocked"):
            watch.target  # noqa: B018
    assert memory_state(watch) == memory_state(fresh(watch))


def test_strict_answers_what_prefetch_loaded(django_assert_num_queries: Any) -> None:
    post, photo = AnyPostFactory(), AnyPhotoFactory()
    watches = [watching(post), watching(photo)]
    with django_assert_num_queries(2):  # one query per target model
        belongsto_ext.prefetch(watches, "target")
    with django_assert_num_queries(0):
        assert [w.get_target() for w in watches] == [post, photo]
        # owner.target reads as Django does, through the base manager: what the
        # default scope loaded answers it only where that scope selects every row.
        assert watches[0].target == post
        with pytest.raises(FieldFetchBlocked):
            watches[1].target  # noqa: B018
    belongsto_ext.prefetch(watches, "target", scope=False)
    with django_assert_num_queries(0):
        assert watches[1].target == photo


def test_strict_answers_a_scoped_prefetch_and_refuses_another_scope(
    django_assert_num_queries: Any,
) -> None:
    post = AnyPostFactory(published=False)
    AnyWatch.objects.create(target=post)
    with django_assert_num_queries(2):  # the watches, the posts
        (watch,) = AnyWatch.objects.prefetch_related(
            ScopedPrefetch("target", scope="published_posts")
        )
    with django_assert_num_queries(0):
        assert watch.get_target(scope="published_posts") is None
        with pytest.raises(FieldFetchBlocked):
            watch.get_target(scope=False)


def test_strict_refuses_deferred_columns_before_loading_them(
    django_assert_num_queries: Any,
) -> None:
    pk = AnyWatch.objects.create(target=AnyPostFactory()).pk
    watch = AnyWatch.objects.only("pk").get(pk=pk)
    with django_assert_num_queries(0), pytest.raises(FieldFetchBlocked):
        watch.get_target()


def test_strict_on_a_null_target_is_none_without_a_query(django_assert_num_queries: Any) -> None:
    watch = fresh(AnyWatch.objects.create())
    with django_assert_num_queries(0):
        assert watch.get_target() is None
        assert watch.target is None


def test_strict_is_the_fields_alone() -> None:
    """Another BelongsToAnyField without strict= reads as before."""
    comment = fresh(AnyCommentFactory(target=AnyPostFactory()))
    assert comment.get_target() is not None


# ------------------------------------------------------------ scopes=


def test_scopes_refuses_a_manager_it_does_not_name_before_any_query(
    django_assert_num_queries: Any,
) -> None:
    like = fresh(AnyLike.objects.create(target=AnyPostFactory()))
    with (
        django_assert_num_queries(0),
        pytest.raises(InvalidScope, match=r"AnyLike\.target.*'published_posts' is not one of them"),
    ):
        like.get_target(scope="published_posts")
    assert like.get_target(scope="objects") == AnyPost.objects.get()


def test_scopes_decides_false_per_target_model() -> None:
    """False reads the base manager's rows: allowed where a named manager selects
    the same rows (AnyPost.objects), refused where none does (AnyPhoto)."""
    post_like = fresh(AnyLike.objects.create(target=AnyPostFactory()))
    photo_like = fresh(AnyLike.objects.create(target=AnyPhotoFactory()))
    assert post_like.get_target(scope=False) == AnyPost.objects.get()
    with pytest.raises(InvalidScope, match=r"False reads through AnyPhoto\._base_manager"):
        photo_like.get_target(scope=False)


def test_scopes_applies_to_a_mapping_and_to_prefetch() -> None:
    like = fresh(AnyLike.objects.create(target=AnyPostFactory()))
    with pytest.raises(InvalidScope):
        like.get_target(scope={AnyPost: "published_posts"})
    with pytest.raises(InvalidScope):
        belongsto_ext.prefetch([like], "target", scope="published_posts")
    assert like.get_target(scope={AnyPost: "objects"}) is not None


@isolate_apps("tests")
def test_e005_names_a_scope_that_is_not_a_manager_of_an_allowed_model() -> None:
    class Mention(models.Model):
        content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
        object_id = models.PositiveBigIntegerField()
        target = BelongsToAnyField(models=[AnyPost, AnyPhoto], scopes=["published_posts"])

        class Meta:
            app_label = "tests"

    errors = [e for e in Mention._meta.get_field("target").check() if e.id.endswith("E005")]
    assert [e.msg for e in errors] == [
        "scopes= names 'published_posts', which is not a manager of AnyPhoto."
    ]
    assert isinstance(errors[0], checks.Error)


# ------------------------------------------------------------ fetch modes (6.1)


@needs_fetch_modes
def test_fetch_peers_loads_every_peers_target_in_one_query_per_model(
    django_assert_num_queries: Any,
) -> None:
    targets = [AnyPostFactory(), AnyPhotoFactory(), AnyPostFactory(), AnyPhotoFactory()]
    for target in targets:
        AnyCommentFactory(target=target)
    for model in (AnyPost, AnyPhoto):
        ContentType.objects.get_for_model(model)
    comments = list(AnyComment.objects.fetch_mode(models.FETCH_PEERS).order_by("pk"))
    with django_assert_num_queries(2):  # the posts, the photos
        first = comments[0].get_target()
    with django_assert_num_queries(0):
        rest = [c.get_target() for c in comments[1:]]
    assert [first, *rest] == targets


@needs_fetch_modes
def test_fetch_raise_raises_naming_the_field(django_assert_num_queries: Any) -> None:
    AnyCommentFactory(target=AnyPostFactory())
    ContentType.objects.get_for_model(AnyPost)
    (comment,) = AnyComment.objects.fetch_mode(models.FETCH_RAISE)
    with django_assert_num_queries(0), pytest.raises(FieldFetchBlocked, match="target"):
        comment.get_target()


# ------------------------------------------------------------ the pin (routing)


@override_settings(DATABASE_ROUTERS=["testproject.routers.PrimaryReplicaRouter"])
@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
@pytest.mark.parametrize("how", ["set", "create"])
def test_a_written_key_is_read_where_writes_go(how: str) -> None:
    """After set_/create_, reads of that key go to the primary (the router sends
    other reads to the replica); a fresh instance of the row routes as usual."""
    from django.db import connections

    comment = fresh(AnyCommentFactory(target=AnyPostFactory()))
    if how == "set":
        comment.set_target(AnyPost, AnyPostFactory().pk)
    else:
        comment.create_target(AnyPost, title="new")
    with CaptureQueriesContext(connections["replica"]) as replica:
        found = comment.get_target(scope="published_posts")  # not read yet: a query
    assert found is not None and found._state.db == "default"
    assert [q for q in replica.captured_queries if "tests_anypost" in q["sql"]] == []
    again = AnyComment.objects.using("default").get(pk=comment.pk)
    assert again.get_target(scope="published_posts")._state.db == "replica"
    assert row_state(comment)["object_id"] == found.pk
