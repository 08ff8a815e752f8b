"""The admin's delete confirmation page and its delete, for each on_delete kind of a
BelongsToAnyField (django.contrib.admin's NestedObjects, a deletion Collector)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.urls import path

from tests.helpers import row_state
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

site = admin.AdminSite(name="any")
site.register(AnyPost)
site.register(AnyPhoto)
site.register(AnyComment)
urlpatterns = [path("admin/", site.urls)]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


@pytest.fixture(autouse=True)
def content_types() -> None:
    ContentType.objects.get_for_models(AnyPost, AnyPhoto)


def confirmation(client: Any, post: AnyPost) -> str:
    response = client.get(f"/admin/tests/anypost/{post.pk}/delete/")
    assert response.status_code == 200
    return str(response.content.decode())


def listed(page: str) -> list[str]:
    """The objects the page lists, as "<model verbose name>: <str>"."""
    items = re.findall(r"<li>([^<:]+): (?:<a [^>]*>)?([^<]*)", page)
    return [f"{kind.strip()}: {name.strip()}" for kind, name in items]


def test_cascade_lists_the_owners_under_the_target_and_deletes_them(admin_client: Any) -> None:
    post, photo = AnyPost.objects.create(title="doomed"), AnyPhoto.objects.create(caption="kept")
    AnyComment.objects.create(body="first", target=post)
    AnyComment.objects.create(body="second", target=post)
    other = AnyComment.objects.create(body="on the photo", target=photo)
    page = confirmation(admin_client, post)
    items = listed(page)
    assert "Any comment: first" in items and "Any comment: second" in items
    assert "Any comment: on the photo" not in items
    # Nested under the post (NestedObjects follows the hidden link's join):
    nested = re.search(r"doomed</a>\s*<ul>(.*?)</ul>", page, re.S)
    assert nested is not None and "first" in nested.group(1) and "second" in nested.group(1)

    response = admin_client.post(f"/admin/tests/anypost/{post.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert list(AnyComment.objects.all()) == [other]
    assert not AnyPost.objects.filter(pk=post.pk).exists()


def test_protect_lists_the_owners_as_protected_and_deletes_nothing(admin_client: Any) -> None:
    post = AnyPost.objects.create(title="pinned")
    pin = AnyPin.objects.create(target=post)
    page = confirmation(admin_client, post)
    assert "would require deleting the following protected related objects" in page
    assert f"Any pin: AnyPin object ({pin.pk})" in listed(page)
    response = admin_client.post(f"/admin/tests/anypost/{post.pk}/delete/", {"post": "yes"})
    assert response.status_code == 200  # the page again, nothing deleted
    assert AnyPost.objects.filter(pk=post.pk).exists()
    assert AnyPin.objects.filter(pk=pin.pk).exists()


def test_restrict_lists_the_owners_as_protected(admin_client: Any) -> None:
    post = AnyPost.objects.create(title="flagged")
    flag = AnyFlag.objects.create(target=post)
    page = confirmation(admin_client, post)
    assert "would require deleting the following protected related objects" in page
    assert f"Any flag: AnyFlag object ({flag.pk})" in listed(page)
    admin_client.post(f"/admin/tests/anypost/{post.pk}/delete/", {"post": "yes"})
    assert AnyFlag.objects.filter(pk=flag.pk).exists()
    assert AnyPost.objects.filter(pk=post.pk).exists()


def test_set_null_and_do_nothing_keep_the_owners(admin_client: Any) -> None:
    post = AnyPost.objects.create(title="bookmarked")
    bookmark = AnyBookmark.objects.create(target=post)
    note = AnyNote.objects.create(target=post)
    page = confirmation(admin_client, post)
    assert not any(item.startswith(("Any bookmark", "Any note")) for item in listed(page))
    assert "protected" not in page
    admin_client.post(f"/admin/tests/anypost/{post.pk}/delete/", {"post": "yes"})
    assert not AnyPost.objects.filter(pk=post.pk).exists()
    assert row_state(bookmark)["content_type_id"] is None
    assert row_state(bookmark)["object_id"] is None
    assert row_state(note)["object_id"] == str(post.pk)


def test_the_changelist_bulk_delete_action_cascades(admin_client: Any) -> None:
    posts = [AnyPost.objects.create(title=f"p{i}") for i in range(2)]
    for post in posts:
        AnyComment.objects.create(body=f"on {post.title}", target=post)
    data = {"action": "delete_selected", "_selected_action": [p.pk for p in posts]}
    page = admin_client.post("/admin/tests/anypost/", data).content.decode()
    assert "on p0" in page and "on p1" in page  # the confirmation lists them
    admin_client.post("/admin/tests/anypost/", {**data, "post": "yes"})
    assert not AnyComment.objects.exists()


def test_the_add_form_refuses_a_model_that_models_does_not_allow(admin_client: Any) -> None:
    tag = AnyTag.objects.create(name="not allowed")
    data = {
        "body": "b",
        "content_type": ContentType.objects.get_for_model(AnyTag).pk,
        "object_id": tag.pk,
    }
    response = admin_client.post("/admin/tests/anycomment/add/", data)
    assert response.status_code == 200  # the form again, with the error
    page = response.content.decode()
    assert (
        "AnyComment.target cannot point at tests.AnyTag: it allows tests.AnyPost, "
        "tests.AnyPhoto only." in page
    )
    assert not AnyComment.objects.exists()
    post = AnyPost.objects.create(title="allowed")
    data.update(content_type=ContentType.objects.get_for_model(AnyPost).pk, object_id=post.pk)
    assert admin_client.post("/admin/tests/anycomment/add/", data).status_code == 302
    assert AnyComment.objects.get().target == post


def test_the_delete_page_reads_the_owners_in_one_query_however_many(admin_client: Any) -> None:
    """The owners come with their target cached: listing them nested asks nothing more."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for n in (1, 4):
        post = AnyPost.objects.create(title=f"{n} comments")
        for i in range(n):
            AnyComment.objects.create(body=f"c{i}", target=post)
        with CaptureQueriesContext(connection) as ctx:
            confirmation(admin_client, post)
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
