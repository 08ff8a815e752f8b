"""BelongsToAnyField: the polymorphic belongs-to over GenericForeignKey's two columns.

Reads (scopes, mappings, the cache), writes (set/create and their refusals, which
change nothing), batch loading, on_delete through Model.delete() and
QuerySet.delete(), the system checks, and what GenericForeignKey users keep
(``comment.target``, GenericRelation, GenericPrefetch, no migration). The
admin's deletion page is in tests/test_any_admin.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from django import forms
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.contrib.contenttypes.prefetch import GenericPrefetch
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.db.models.deletion import ProtectedError, RestrictedError
from django.db.models.signals import post_save
from django.test import override_settings
from django.test.utils import isolate_apps

import belongsto_ext
from belongsto_ext import BelongsToAnyField, InvalidScope, ScopedPrefetch
from tests.factories import AnyCommentFactory, AnyPhotoFactory, AnyPostFactory
from tests.helpers import failing_saves, fresh, memory_state, row_state, run
from tests.models import (
    AnyBookmark,
    AnyComment,
    AnyFlag,
    AnyNote,
    AnyPhoto,
    AnyPin,
    AnyPost,
    AnyTag,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def content_types() -> None:
    """ContentType's manager caches content types for the process; the promises
    below are "once the content type is cached", as GenericForeignKey's are."""
    ContentType.objects.get_for_models(AnyPost, AnyPhoto, AnyTag, AnyComment)


def on(target: Any, **fields: Any) -> AnyComment:
    """A fresh comment pointing at ``target`` (nothing cached)."""
    return fresh(AnyCommentFactory(target=target, **fields))


# ================================================================== get


def test_get_reads_the_target_in_one_query_then_answers_from_the_cache(
    django_assert_num_queries: Any,
) -> None:
    post, photo = AnyPostFactory(), AnyPhotoFactory()
    on_post, on_photo = on(post), on(photo)
    with django_assert_num_queries(1):
        assert on_post.get_target() == post
    with django_assert_num_queries(1):
        assert on_photo.get_target() == photo
    with django_assert_num_queries(0):
        assert on_post.get_target() == post
        assert on_photo.get_target() == photo


def test_a_null_column_or_a_missing_row_is_none_never_an_error(
    django_assert_num_queries: Any,
) -> None:
    empty = fresh(AnyCommentFactory())
    with django_assert_num_queries(0):
        assert empty.get_target() is None
    dangling = fresh(AnyCommentFactory())
    AnyComment.objects.filter(pk=dangling.pk).update(
        content_type=ContentType.objects.get_for_model(AnyPost), object_id=10**9
    )
    dangling = fresh(dangling)
    with django_assert_num_queries(1):
        assert dangling.get_target() is None
    with django_assert_num_queries(0):
        assert dangling.get_target() is None  # the None is cached too


def test_scopes_resolve_on_the_targets_own_model(django_assert_num_queries: Any) -> None:
    draft = AnyPostFactory(published=False)
    hidden = AnyPhotoFactory(hidden=True)
    on_draft, on_hidden = on(draft), on(hidden)
    assert on_draft.get_target() == draft  # AnyPost's default manager does not filter
    assert on_draft.get_target(scope="published_posts") is None
    assert on_hidden.get_target() is None  # AnyPhoto's default scope hides it
    assert on_hidden.get_target(scope=False) == hidden
    assert on_hidden.get_target(scope="all_photos") == hidden
    assert on_draft.get_target(scope=AnyPost.objects.filter(title=draft.title)) == draft
    with django_assert_num_queries(0):  # each scope cached apart
        assert on_draft.get_target(scope="published_posts") is None
        assert on_hidden.get_target(scope=False) == hidden


def test_a_mapping_chooses_the_scope_per_model_and_defaults_the_rest() -> None:
    draft, hidden = AnyPostFactory(published=False), AnyPhotoFactory(hidden=True)
    on_draft, on_hidden = on(draft), on(hidden)
    by_model = {AnyPost: "published_posts", "tests.AnyPhoto": False}
    assert on_draft.get_target(scope=by_model) is None
    assert on_hidden.get_target(scope=by_model) == hidden
    only_posts = {"tests.AnyPost": "published_posts"}
    assert on_hidden.get_target(scope=only_posts) is None  # AnyPhoto: its default scope


def test_bad_scopes_raise_invalid_scope_before_any_query(django_assert_num_queries: Any) -> None:
    on_post = on(AnyPostFactory())
    with django_assert_num_queries(0):
        with pytest.raises(InvalidScope, match=r"AnyComment\.target \(tests\.AnyPost\)"):
            on_post.get_target(scope="all_photos")  # a manager of AnyPhoto, not of AnyPost
        with pytest.raises(InvalidScope, match=r"'tests\.AnyTag'.*not allowed"):
            on_post.get_target(scope={"tests.AnyTag": False})
        with pytest.raises(InvalidScope, match=r"'nope\.Model' is not a model"):
            on_post.get_target(scope={"nope.Model": False})
        with pytest.raises(InvalidScope):
            on_post.get_target(scope={AnyPhoto: "published_posts"})  # checked on AnyPhoto
        with pytest.raises(InvalidScope):
            on_post.get_target(scope=AnyPhoto.objects.all())  # a QuerySet of another model


def test_changing_a_column_is_noticed_without_a_descriptor(django_assert_num_queries: Any) -> None:
    first, second = AnyPostFactory(), AnyPostFactory()
    comment = on(first)
    assert comment.get_target() == first
    comment.object_id = second.pk
    with django_assert_num_queries(1):
        assert comment.get_target() == second
    comment.content_type = ContentType.objects.get_for_model(AnyPhoto)
    with django_assert_num_queries(1):
        assert comment.get_target() is None  # no photo with that id


def test_a_content_type_the_relation_does_not_allow_reads_as_none(
    django_assert_num_queries: Any,
) -> None:
    tag = AnyTag.objects.create(name="t")
    comment = fresh(AnyCommentFactory())
    AnyComment.objects.filter(pk=comment.pk).update(
        content_type=ContentType.objects.get_for_model(AnyTag), object_id=tag.pk
    )
    comment = fresh(comment)
    with django_assert_num_queries(0):
        assert comment.get_target() is None


def test_an_object_django_holds_answers_a_scope_that_selects_every_row(
    django_assert_num_queries: Any,
) -> None:
    post, photo = AnyPostFactory(), AnyPhotoFactory()
    comment = on(post)
    comment.set_target(photo, save=False)
    with django_assert_num_queries(0):
        assert comment.get_target(scope=False) is photo
    with django_assert_num_queries(1):  # AnyPhoto's default scope filters: it asks
        assert comment.get_target() == photo


def test_the_generic_foreign_key_keeps_working() -> None:
    post = AnyPostFactory()
    comment = on(post)
    assert comment.target == post
    assert isinstance(AnyComment._meta.get_field("target"), GenericForeignKey)
    assert list(post.comments.all()) == [comment]  # GenericRelation
    comments = list(
        AnyComment.objects.prefetch_related(
            GenericPrefetch("target", [AnyPost.objects.all(), AnyPhoto.objects.all()])
        )
    )
    assert comments[0].target == post


@pytest.mark.django_db(databases=["default", "other"])
def test_content_types_are_the_generic_foreign_keys_on_each_database() -> None:
    """get_content_type() answers as GenericForeignKey's: the same content type,
    read from the same database, for a model, an id and an instance."""
    ours = AnyComment._meta.get_field("target")
    plain = GenericForeignKey("content_type", "object_id")
    post = AnyPostFactory()
    elsewhere = AnyPost(pk=post.pk)
    elsewhere._state.db = "other"

    def seen(ct: ContentType) -> tuple[Any, Any]:
        return ct.pk, ct._state.db

    for using in (None, "default", "other"):
        ct = plain.get_content_type(model=AnyPost, using=using)
        assert seen(ours.get_content_type(model=AnyPost, using=using)) == seen(ct)
        assert seen(ours.get_content_type(id=ct.pk, using=using)) == seen(
            plain.get_content_type(id=ct.pk, using=using)
        )
    for obj in (post, elsewhere):
        assert seen(ours.get_content_type(obj=obj)) == seen(plain.get_content_type(obj=obj))
    assert seen(ours.get_content_type(obj=elsewhere))[1] == "other"


def test_no_migration_is_needed_when_swapping() -> None:
    """The field and its hidden links are private fields: no column, no operation."""
    call_command("makemigrations", "library", "--check", "--dry-run", verbosity=0)
    state = [f.name for f in AnyComment._meta.local_fields]
    assert state == ["id", "body", "content_type", "object_id", "updated"]


def test_full_clean_does_not_query_the_hidden_links(django_assert_num_queries: Any) -> None:
    comment = on(AnyPostFactory())
    with django_assert_num_queries(0):
        comment.full_clean(exclude=["content_type"])


# ================================================================== set


def test_set_an_instance_saves_only_the_two_columns_and_auto_now(
    django_assert_num_queries: Any,
) -> None:
    post, photo = AnyPostFactory(), AnyPhotoFactory()
    comment = on(post)
    comment.body = "unsaved edit"
    with django_assert_num_queries(3) as ctx:  # SAVEPOINT, UPDATE, RELEASE
        comment.set_target(photo)
    sql = ctx.captured_queries[1]["sql"]
    assert sql.startswith("UPDATE") and '"body"' not in sql and '"updated"' in sql
    row = row_state(comment)
    assert row["object_id"] == photo.pk
    assert row["content_type_id"] == ContentType.objects.get_for_model(AnyPhoto).pk
    assert row["body"] != "unsaved edit"
    with django_assert_num_queries(0):
        assert comment.get_target(scope=False) is photo


def test_set_a_model_and_a_key_converts_it_and_checks_the_row_in_the_same_transaction(
    django_assert_num_queries: Any,
) -> None:
    post = AnyPostFactory()
    comment = on(AnyPhotoFactory())
    with django_assert_num_queries(4) as ctx:  # SAVEPOINT, SELECT of the post, UPDATE, RELEASE
        comment.set_target(AnyPost, str(post.pk))
    verbs = [q["sql"].split()[0] for q in ctx.captured_queries]
    assert verbs == ["SAVEPOINT", "SELECT", "UPDATE", "RELEASE"]
    if connection.vendor == "postgresql":  # nobody deletes the post before the UPDATE commits
        assert ctx.captured_queries[1]["sql"].endswith("FOR NO KEY UPDATE")
    assert comment.object_id == post.pk
    assert comment.get_target() == post


def test_set_none_clears_both_columns() -> None:
    comment = on(AnyPostFactory())
    comment.set_target(None)
    assert row_state(comment)["content_type_id"] is None
    assert row_state(comment)["object_id"] is None
    assert comment.get_target() is None


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (lambda: (AnyTag.objects.create(name="t"),), TypeError, "cannot point at a AnyTag"),
        (lambda: (AnyPost(title="unsaved"),), ValueError, "unsaved AnyPost"),
        (lambda: (AnyPost, "abc"), ValueError, "'abc' is not a valid AnyPost key"),
        (lambda: (AnyPost, 1.5), ValueError, "not exactly"),
        (lambda: (AnyPost, True), TypeError, "cannot set True"),
        (lambda: (AnyTag, 1), TypeError, "cannot point at a AnyTag"),
        (lambda: (AnyPost, None), TypeError, "takes a key"),
        (lambda: ("tests.AnyPost", 1), TypeError, "not a model class"),
        (lambda: (5,), TypeError, "cannot set 5"),
        (lambda: (), TypeError, "0 arguments"),
    ],
)
def test_set_refusals_change_nothing(
    args: Any, error: type[Exception], message: str, django_assert_num_queries: Any
) -> None:
    comment = on(AnyPostFactory())
    comment.get_target()
    values = args()
    before, row = memory_state(comment), row_state(comment)
    with django_assert_num_queries(0), pytest.raises(error, match=message):
        comment.set_target(*values)
    assert memory_state(comment) == before
    assert row_state(comment) == row


def test_set_none_on_non_nullable_columns_is_refused() -> None:
    pin = AnyPin.objects.create(target=AnyPostFactory())
    before = memory_state(pin)
    with pytest.raises(ValueError, match="not both nullable"):
        pin.set_target(None)
    assert memory_state(pin) == before


def test_a_failed_save_restores_the_instance() -> None:
    comment = on(AnyPostFactory())
    comment.get_target()
    before, row = memory_state(comment), row_state(comment)
    photo = AnyPhotoFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        comment.set_target(photo, force_insert=True)  # the row exists: the INSERT fails
    assert memory_state(comment) == before
    assert row_state(comment) == row


def test_set_without_save_makes_no_query(django_assert_num_queries: Any) -> None:
    comment, photo = on(AnyPostFactory()), AnyPhotoFactory()
    with django_assert_num_queries(0):
        comment.set_target(photo, save=False)
    assert comment.target is photo


# =============================================================== create


def test_create_makes_the_target_points_at_it_and_saves_in_one_transaction(
    django_assert_num_queries: Any,
) -> None:
    comment = on(AnyPostFactory())
    with django_assert_num_queries(4):  # SAVEPOINT, INSERT, UPDATE, RELEASE
        photo = comment.create_target(AnyPhoto, {"caption": "new"}, hidden=True)
    assert photo.pk and photo.hidden and photo.caption == "new"
    assert fresh(comment).target == photo


def test_create_refusals_create_nothing() -> None:
    comment = on(AnyPostFactory())
    before = (AnyPhoto.all_photos.count(), AnyTag.objects.count(), row_state(comment))
    with pytest.raises(TypeError, match="cannot point at a AnyTag"):
        comment.create_target(AnyTag, name="t")
    with pytest.raises(TypeError):
        comment.create_target(AnyPhoto, colour="red")
    with pytest.raises(TypeError, match="must be a mapping"):
        comment.create_target(AnyPhoto, ["caption"])  # type: ignore[arg-type]
    assert (AnyPhoto.all_photos.count(), AnyTag.objects.count(), row_state(comment)) == before


def test_create_rolls_back_the_new_target_when_the_owner_save_fails() -> None:
    pin = AnyPin.objects.create(target=AnyPostFactory())
    photos = AnyPhoto.all_photos.count()
    before = memory_state(pin)
    AnyPin.objects.filter(pk=pin.pk).delete()  # saving pin's two columns now fails
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        pin.create_target(AnyPhoto, caption="x")
    assert AnyPhoto.all_photos.count() == photos
    assert memory_state(pin) == before


# ================================================================== is


def test_is_compares_without_a_query(django_assert_num_queries: Any) -> None:
    post, other = AnyPostFactory(), AnyPostFactory()
    same_key = AnyPhoto.all_photos.create(id=post.pk, caption="same key")
    comment, empty = on(post), fresh(AnyCommentFactory())
    with django_assert_num_queries(0):
        assert comment.is_target(post)
        assert not comment.is_target(other)
        assert not comment.is_target(same_key)
        assert not comment.is_target(AnyPost(title="unsaved"))
        assert not comment.is_target(None)
        assert empty.is_target(None)
        with pytest.raises(TypeError):
            comment.is_target(post.pk)


# ================================================================ async


@pytest.mark.django_db(transaction=True)
def test_async_twins() -> None:
    post, photo = AnyPostFactory(), AnyPhotoFactory()
    comment = on(post)

    async def main() -> Any:
        got = await comment.aget_target()
        await comment.aset_target(photo, save=False)
        created = await comment.acreate_target(AnyPost, title="async")
        return got, created

    got, created = run(main)
    assert got == post
    assert fresh(comment).target == created


# ============================================================ prefetch


def test_prefetch_makes_one_query_per_target_model(django_assert_num_queries: Any) -> None:
    posts = [AnyPostFactory(published=i % 2 == 0) for i in range(3)]
    photos = [AnyPhotoFactory() for _ in range(2)]
    for target in [*posts, *photos]:
        AnyCommentFactory(target=target)
    AnyCommentFactory()  # no target
    comments = list(AnyComment.objects.order_by("pk"))
    with django_assert_num_queries(2):
        belongsto_ext.prefetch(comments, "target", scope={AnyPost: "published_posts"})
    with django_assert_num_queries(0):
        got = [c.get_target(scope={AnyPost: "published_posts"}) for c in comments]
    assert got == [posts[0], None, posts[2], *photos, None]
    with django_assert_num_queries(0):  # everything cached: no query
        belongsto_ext.prefetch(comments, "target", scope={AnyPost: "published_posts"})
    for comment in comments[:3]:
        comment.get_target()  # the posts cached in the default scope
    with django_assert_num_queries(1):  # only the photos are read
        belongsto_ext.prefetch(comments, "target")


def test_a_cached_answer_needs_no_content_type(django_assert_num_queries: Any) -> None:
    """Once read, the answers hold even after ContentType's cache is cleared; a
    text object_id ('5' for the key 5) is answered from the cache too."""
    post, photo = AnyPostFactory(), AnyPhotoFactory()
    comments = [fresh(AnyCommentFactory(target=post)), fresh(AnyCommentFactory(target=photo))]
    note = fresh(AnyNote.objects.create(target=post))
    belongsto_ext.prefetch(comments, "target")
    assert note.get_target() == post
    with django_assert_num_queries(0):
        assert note.get_target() == post
    ContentType.objects.clear_cache()
    with django_assert_num_queries(0):
        assert [c.get_target() for c in comments] == [post, photo]


def test_prefetch_batches_within_the_parameter_limit(
    monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    from belongsto_ext import batch

    monkeypatch.setattr(batch, "batch_size", lambda *args: 2)
    for _ in range(5):
        AnyCommentFactory(target=AnyPostFactory())
    comments = list(AnyComment.objects.all())
    with django_assert_num_queries(3):
        belongsto_ext.prefetch(comments, "target")
    assert all(c.get_target() is not None for c in comments)


def test_scoped_prefetch_fills_the_cache(django_assert_num_queries: Any) -> None:
    post, hidden = AnyPostFactory(published=False), AnyPhotoFactory(hidden=True)
    AnyCommentFactory(target=post)
    AnyCommentFactory(target=hidden)
    with django_assert_num_queries(3):  # the comments, the posts, the photos
        comments = list(
            AnyComment.objects.order_by("pk").prefetch_related(
                ScopedPrefetch("target", scope={AnyPhoto: False})
            )
        )
    with django_assert_num_queries(0):
        assert [c.get_target(scope={AnyPhoto: False}) for c in comments] == [post, hidden]


@pytest.mark.django_db(transaction=True)
def test_async_prefetch() -> None:
    AnyCommentFactory(target=AnyPostFactory())
    comments = list(AnyComment.objects.all())
    run(lambda: belongsto_ext.aprefetch(comments, "target"))
    assert comments[0].get_target(scope=None) is not None


# =========================================================== on_delete


def delete(obj: models.Model, how: str) -> None:
    """``obj.delete()`` or ``QuerySet.delete()`` of it."""
    if how == "model":
        obj.delete()
    else:
        type(obj)._default_manager.filter(pk=obj.pk).delete()


def test_cascade_deletes_the_owners_of_the_deleted_target_only(
    django_assert_num_queries: Any,
) -> None:
    post, photo = AnyPostFactory(), AnyPhotoFactory()
    gone, kept = AnyCommentFactory(target=post), AnyCommentFactory(target=photo)
    post.delete()
    assert not AnyComment.objects.filter(pk=gone.pk).exists()
    assert AnyComment.objects.filter(pk=kept.pk).exists()


def test_cascade_matches_the_content_type_not_only_the_key() -> None:
    post = AnyPostFactory()
    photo = AnyPhoto.all_photos.create(id=post.pk, caption="same id")
    on_photo = AnyCommentFactory(target=photo)
    post.delete()
    assert AnyComment.objects.filter(pk=on_photo.pk).exists()


def test_queryset_delete_cascades_too() -> None:
    posts = [AnyPostFactory(), AnyPostFactory()]
    for post in posts:
        AnyCommentFactory(target=post)
    kept = AnyCommentFactory(target=AnyPhotoFactory())
    AnyPost.objects.all().delete()
    assert list(AnyComment.objects.all()) == [kept]


@pytest.mark.parametrize("how", ["model", "queryset"])
def test_set_null_nulls_both_columns(how: str) -> None:
    post = AnyPostFactory()
    bookmark = AnyBookmark.objects.create(target=post)
    other = AnyBookmark.objects.create(target=AnyPhotoFactory())
    delete(post, how)
    assert row_state(bookmark) == {"id": bookmark.pk, "content_type_id": None, "object_id": None}
    assert row_state(other)["object_id"] is not None


@pytest.mark.parametrize("how", ["model", "queryset"])
def test_protect_refuses_and_changes_nothing(how: str) -> None:
    post = AnyPostFactory()
    pin = AnyPin.objects.create(target=post)
    comment = AnyCommentFactory(target=post)
    with pytest.raises(ProtectedError) as excinfo:
        delete(post, how)
    assert set(excinfo.value.protected_objects) == {pin}
    assert "'AnyPin_target.target[tests.anypost]'" in str(excinfo.value)
    assert AnyPost.objects.filter(pk=post.pk).exists()
    assert AnyPin.objects.filter(pk=pin.pk).exists()
    assert AnyComment.objects.filter(pk=comment.pk).exists()
    assert post.pk is not None


@pytest.mark.parametrize("how", ["model", "queryset"])
def test_restrict_refuses_unless_the_owner_goes_too(how: str) -> None:
    flagged, other = AnyPostFactory(), AnyPostFactory()
    flag = AnyFlag.objects.create(target=flagged, post=other)  # goes only with `other`
    with pytest.raises(RestrictedError) as excinfo:
        delete(flagged, how)
    assert set(excinfo.value.restricted_objects) == {flag}
    assert AnyFlag.objects.filter(pk=flag.pk).exists()
    assert AnyPost.objects.filter(pk=flagged.pk).exists()
    own = AnyFlag.objects.create(target=other, post=other)  # cascades with its post
    AnyFlag.objects.filter(pk=flag.pk).delete()
    delete(other, how)
    assert not AnyFlag.objects.filter(pk=own.pk).exists()


def test_do_nothing_leaves_the_owner_pointing_at_nothing() -> None:
    post = AnyPostFactory()
    note = AnyNote.objects.create(target=post)
    assert row_state(note)["object_id"] == str(post.pk)  # a text column
    post.delete()
    note = fresh(note)
    assert note.object_id is not None
    assert note.get_target() is None


def test_a_text_object_id_reads_and_sets_integer_keys(django_assert_num_queries: Any) -> None:
    post = AnyPostFactory()
    note = AnyNote.objects.create(target=post)
    note = fresh(note)
    with django_assert_num_queries(1):
        assert note.get_target() == post
    tag = AnyTag.objects.create(name="anything")  # models=None: any model
    note.set_target(tag)
    assert fresh(note).get_target() == tag


# =============================================================== checks


def ids(field: Any) -> list[str]:
    return [message.id for message in field.check()]


def test_the_test_models_pass_their_checks() -> None:
    for model in (AnyComment, AnyBookmark, AnyPin, AnyFlag, AnyNote):
        assert model._meta.get_field("target").check() == []


@isolate_apps("tests")
def test_e010_models_must_name_concrete_installed_models() -> None:
    class Owner(models.Model):
        content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
        object_id = models.PositiveBigIntegerField()
        target = BelongsToAnyField(models=["tests.Nope"])

        class Meta:
            app_label = "tests"

    field = Owner._meta.get_field("target")
    messages = field.check()
    assert [m.id for m in messages] == ["belongsto_ext.E010"]
    assert "'tests.Nope', not an installed model" in messages[0].msg


@isolate_apps("tests")
def test_e011_on_delete_needs_models_and_a_supported_kind() -> None:
    class Owner(models.Model):
        content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
        object_id = models.PositiveBigIntegerField()
        anything = BelongsToAnyField(on_delete=models.CASCADE)

        class Meta:
            app_label = "tests"

    assert ids(Owner._meta.get_field("anything")) == ["belongsto_ext.E011"]


@isolate_apps("tests")
def test_e011_unsupported_on_delete() -> None:
    class Owner(models.Model):
        content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
        object_id = models.PositiveBigIntegerField()
        target = BelongsToAnyField(models=[AnyPost], on_delete=models.SET_DEFAULT)

        class Meta:
            app_label = "tests"

    assert ids(Owner._meta.get_field("target")) == ["belongsto_ext.E011"]


@isolate_apps("tests")
def test_e012_set_null_needs_both_columns_nullable() -> None:
    class Owner(models.Model):
        content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
        object_id = models.PositiveBigIntegerField(null=True)
        target = BelongsToAnyField(models=[AnyPost], on_delete=models.SET_NULL)

        class Meta:
            app_label = "tests"

    assert ids(Owner._meta.get_field("target")) == ["belongsto_ext.E012"]


@isolate_apps("tests")
def test_e013_the_object_id_must_hold_every_primary_key() -> None:
    class UuidTarget(models.Model):
        id = models.UUIDField(primary_key=True)

        class Meta:
            app_label = "tests"

    class Owner(models.Model):
        content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
        object_id = models.PositiveIntegerField()
        small = models.CharField(max_length=10)
        target = BelongsToAnyField(models=[UuidTarget, AnyPost])

        class Meta:
            app_label = "tests"

    messages = Owner._meta.get_field("target").check()
    assert [m.id for m in messages] == ["belongsto_ext.E013", "belongsto_ext.W003"]
    assert "UuidTarget (UUIDField)" in messages[0].msg
    assert "AnyPost (BigAutoField)" in messages[1].msg


@isolate_apps("tests")
def test_e001_a_field_named_like_a_method() -> None:
    class Owner(models.Model):
        content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
        object_id = models.PositiveBigIntegerField()
        get_target = models.CharField(max_length=10)
        target = BelongsToAnyField()

        class Meta:
            app_label = "tests"

    assert ids(Owner._meta.get_field("target")) == ["belongsto_ext.E001"]


@isolate_apps("tests")
def test_a_method_the_model_defines_wins() -> None:
    class Owner(models.Model):
        content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
        object_id = models.PositiveBigIntegerField()
        target = BelongsToAnyField()

        class Meta:
            app_label = "tests"

        def get_target(self) -> str:
            return "mine"

    assert Owner().get_target() == "mine"
    assert Owner.set_target.alters_data is True
    assert ids(Owner._meta.get_field("target")) == []


def test_contenttypes_own_checks_still_run() -> None:
    with isolate_apps("tests"):

        class Owner(models.Model):
            object_id = models.PositiveBigIntegerField()
            target = BelongsToAnyField("nope", "object_id")

            class Meta:
                app_label = "tests"

        assert ids(Owner._meta.get_field("target")) == ["contenttypes.E002"]


def test_writers_are_marked_alters_data() -> None:
    for name in ("set_target", "create_target", "aset_target", "acreate_target"):
        assert getattr(AnyComment, name).alters_data is True
    for name in ("get_target", "aget_target", "is_target"):
        assert not getattr(getattr(AnyComment, name), "alters_data", False)


# ====================================================== models= enforced


def disallowed(comment: AnyComment) -> AnyTag:
    """Point ``comment`` at an AnyTag by its columns, as a form or an API would."""
    tag = AnyTag.objects.create(name="not allowed")
    comment.content_type = ContentType.objects.get_for_model(AnyTag)
    comment.object_id = tag.pk
    return tag


ALLOWED = (
    "AnyComment.target cannot point at tests.AnyTag: it allows tests.AnyPost, tests.AnyPhoto only."
)


def test_full_clean_refuses_a_content_type_models_does_not_allow() -> None:
    comment = AnyComment(body="b")
    disallowed(comment)
    with pytest.raises(ValidationError) as excinfo:
        comment.full_clean()
    assert excinfo.value.message_dict == {"content_type": [ALLOWED]}
    comment.target = AnyPostFactory()
    comment.full_clean()  # an allowed model passes
    AnyNote(target=AnyTag.objects.create(name="t")).full_clean()  # no models=: anything


def test_a_model_form_refuses_it_and_saves_nothing() -> None:
    class CommentForm(forms.ModelForm):  # type: ignore[type-arg]
        class Meta:
            model = AnyComment
            fields = ["body", "content_type", "object_id"]

    tag = AnyTag.objects.create(name="t")
    data = {"body": "b", "content_type": ContentType.objects.get_for_model(AnyTag).pk}
    form = CommentForm(data={**data, "object_id": tag.pk})
    assert not form.is_valid()
    assert form.errors == {"content_type": [ALLOWED]}
    assert not AnyComment.objects.exists()


def test_set_a_model_and_a_key_with_no_row_is_refused_and_changes_nothing() -> None:
    comment = on(AnyPostFactory())
    comment.get_target()
    missing = AnyPhoto.all_photos.order_by("-pk").values_list("pk", flat=True).first() or 0
    before, row = memory_state(comment), row_state(comment)
    with pytest.raises(
        ValueError, match=rf"AnyComment\.target: there is no AnyPhoto with id {missing + 1}"
    ):
        comment.set_target(AnyPhoto, missing + 1)
    assert memory_state(comment) == before
    assert row_state(comment) == row


def test_the_row_a_key_names_may_be_out_of_the_default_scope() -> None:
    hidden = AnyPhotoFactory(hidden=True)  # AnyPhoto's default manager hides it; the row exists
    comment = on(AnyPostFactory())
    comment.set_target(AnyPhoto, hidden.pk)
    assert row_state(comment)["object_id"] == hidden.pk


# ===================================================== unsaved owners


@pytest.fixture
def router() -> Any:
    """The test project's router: relations within one database only; the owner
    of an unsaved instance is the database the router picks for writing it."""
    with override_settings(DATABASE_ROUTERS=["testproject.routers.PrimaryReplicaRouter"]):
        yield


@pytest.mark.django_db(transaction=True, databases=["default", "replica", "other"])
@pytest.mark.parametrize("save", [True, False])
def test_set_on_an_unsaved_owner_works_as_the_descriptor_does(router: Any, save: bool) -> None:
    post = AnyPostFactory()
    comment = AnyComment(body="new")
    comment.set_target(post, save=save)
    assert comment._state.db == "default"
    assert comment.target == post
    assert AnyComment.objects.filter(pk=comment.pk).exists() is save
    django_way = AnyComment(body="assigned")
    django_way.target = post  # Django's GenericForeignKey descriptor
    assert django_way._state.db == comment._state.db


@pytest.mark.django_db(transaction=True, databases=["default", "replica", "other"])
@pytest.mark.parametrize("save", [True, False])
def test_create_on_an_unsaved_owner_works_too(router: Any, save: bool) -> None:
    comment = AnyComment(body="new")
    photo = comment.create_target(AnyPhoto, caption="made", save=save)
    assert AnyPhoto.all_photos.filter(pk=photo.pk).exists()
    assert comment.target == photo
    assert AnyComment.objects.filter(body="new").exists() is save


# ======================================= one transaction: kept or put back


class Refused(Exception):
    pass


WRITES = {
    "an instance": lambda c, photo: c.set_target(photo),
    "a model and a key": lambda c, photo: c.set_target(AnyPhoto, photo.pk),
    "None": lambda c, photo: c.set_target(None),
    "create": lambda c, photo: c.create_target(AnyPhoto, caption="rolled back"),
    "async set": lambda c, photo: run(lambda: c.aset_target(photo)),
    "async create": lambda c, photo: run(lambda: c.acreate_target(AnyPhoto, caption="rb")),
}


def fails_and_changes_nothing(write: str) -> None:
    comment = on(AnyPostFactory())
    comment.get_target()
    photo = AnyPhotoFactory()
    photos = AnyPhoto.all_photos.count()
    before, row = memory_state(comment), row_state(comment)
    with failing_saves(AnyComment, after_write=True, error=Refused), pytest.raises(Refused):
        WRITES[write](comment, photo)
    assert row_state(comment) == row
    assert memory_state(comment) == before
    assert AnyPhoto.all_photos.count() == photos


@pytest.mark.parametrize("write", ["an instance", "a model and a key", "None", "create"])
def test_a_receiver_failing_after_the_update_inside_a_transaction_changes_nothing(
    write: str,
) -> None:
    fails_and_changes_nothing(write)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("write", list(WRITES))
def test_a_receiver_failing_after_the_update_in_autocommit_changes_nothing(write: str) -> None:
    fails_and_changes_nothing(write)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("write", ["an instance", "a model and a key", "create"])
def test_an_on_commit_callback_failing_after_the_commit_leaves_the_instance_on_the_new_state(
    write: str,
) -> None:
    comment = on(AnyPostFactory())
    photo = AnyPhotoFactory()

    def schedule(**kwargs: Any) -> None:
        def callback() -> None:
            raise Refused("after the commit")

        transaction.on_commit(callback)

    post_save.connect(schedule, sender=AnyComment, weak=False, dispatch_uid="test_any.schedule")
    try:
        with pytest.raises(Refused):
            WRITES[write](comment, photo)
    finally:
        post_save.disconnect(sender=AnyComment, dispatch_uid="test_any.schedule")
    row = row_state(comment)
    assert row["content_type_id"] == ContentType.objects.get_for_model(AnyPhoto).pk
    assert (comment.content_type_id, comment.object_id) == (
        row["content_type_id"],
        row["object_id"],
    )


def test_a_failed_create_puts_back_every_object_it_was_given() -> None:
    from tests.anyeco.models import Badge, Holder, Note

    holder = Holder.objects.create(name="h")
    note = Note.objects.create(body="n", target=AnyPostFactory())
    before, row, given = memory_state(note), row_state(note), memory_state(holder)
    with failing_saves(Note, after_write=True, error=Refused), pytest.raises(Refused):
        note.create_target(Badge, label="b", holder=holder)
    assert memory_state(holder) == given  # Badge(holder=holder) had cached itself there
    assert memory_state(note) == before
    assert row_state(note) == row
    assert not Badge.objects.exists()


@pytest.mark.django_db(transaction=True)
@isolate_apps("tests")
def test_an_owner_keyed_by_its_parent_link_cascades_with_its_parent(made_by_hand: Any) -> None:
    """The link model copies the owner's key column as the key it holds (the parent's)."""

    class Target(models.Model):
        class Meta:
            app_label = "tests"

    class Base(models.Model):
        class Meta:
            app_label = "tests"

    class Owner(Base):
        content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
        object_id = models.PositiveBigIntegerField()
        target = BelongsToAnyField(models=[Target], on_delete=models.CASCADE)

        class Meta:
            app_label = "tests"

    made_by_hand(Target, Base, Owner)
    gone, kept = Target.objects.create(), Target.objects.create()
    Owner.objects.create(target=gone)
    other = Owner.objects.create(target=kept)
    gone.delete()
    assert list(Owner.objects.all()) == [other]
    assert list(Base.objects.values_list("pk", flat=True)) == [other.pk]
