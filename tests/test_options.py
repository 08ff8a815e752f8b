"""The field options of issue 13 that change what a call does, each checked by
its queries, the rows afterwards and the instance afterwards:

- ``create_method=``: ``create_<name>()`` through a manager method (``create_user()``
  by default for a user model, so passwords are hashed);
- ``validate_scope=``: ``full_clean()`` and ModelForms check the row in a scope;
- ``set_<name>(validate=True)``: the same check before anything changes;
- ``strict=True``: a read that would query raises ``FieldFetchBlocked``.

Change tracking and ``is_<name>()`` are in tests/test_tracking.py; the checks
(E006-E009) in tests/test_checks.py.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import django
import pytest
from django import forms
from django.contrib.auth.models import User
from django.core import exceptions
from django.core.exceptions import ValidationError
from django.db import connection, connections, models
from django.db.models.signals import post_save
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

import belongsto_ext
from belongsto_ext import ScopedPrefetch, prefetch
from tests import factories
from tests.helpers import (
    check_mode,
    data_statements,
    fresh,
    memory_state,
    row_state,
    run,
    worker_queries,
)
from tests.markers import BOTH_MODES, needs_fetch_modes
from tests.models import Account, Author, Book, CheckedBook, City, Country, StrictBook

pytestmark = pytest.mark.django_db


@pytest.fixture
def account() -> Account:
    return Account.objects.get(pk=Account.objects.create().pk)


# ------------------------------------------------------------ create_method


def test_create_owner_goes_through_create_user_and_hashes(
    account: Account, django_assert_num_queries: Any
) -> None:
    with CaptureQueriesContext(connection) as ctx:
        user = account.create_owner(username="carol", password="secret")
    assert data_statements(ctx) == ['INSERT INTO "auth_user"', 'UPDATE "tests_account"']
    stored = fresh(user)
    assert stored.password != "secret"
    assert stored.check_password("secret")
    assert (stored.username, stored.is_staff, stored.is_superuser) == ("carol", False, False)
    assert row_state(account)["owner_id"] == user.pk
    with django_assert_num_queries(0):
        assert account.owner is user
        assert account.get_owner() is user  # User's default manager selects every row


def test_create_admin_goes_through_create_superuser(account: Account) -> None:
    with CaptureQueriesContext(connection) as ctx:
        user = account.create_admin(username="root", email="root@example.com", password="pw")
    assert data_statements(ctx) == ['INSERT INTO "auth_user"', 'UPDATE "tests_account"']
    stored = fresh(user)
    assert (stored.is_staff, stored.is_superuser, stored.email) == (True, True, "root@example.com")
    assert stored.password != "pw" and stored.check_password("pw")
    assert row_state(account)["admin_id"] == user.pk
    assert account.admin is user


def test_create_method_create_stores_as_create_does(account: Account) -> None:
    with CaptureQueriesContext(connection) as ctx:
        user = account.create_plain(username="dora", password="secret")
    assert data_statements(ctx) == ['INSERT INTO "auth_user"', 'UPDATE "tests_account"']
    by_create = User.objects.create(username="erin", password="secret")
    assert fresh(user).password == fresh(by_create).password == "secret"
    assert not fresh(user).check_password("secret")
    assert row_state(account)["plain_id"] == user.pk


def test_create_method_refusal_of_the_manager_method_writes_nothing(account: Account) -> None:
    """create_superuser()'s own refusal reaches the caller; nothing is written."""
    users, row, memory = User.objects.count(), row_state(account), memory_state(account)
    with CaptureQueriesContext(connection) as ctx, pytest.raises(ValueError, match="is_staff"):
        account.create_admin(username="root", password="pw", is_staff=False)
    assert data_statements(ctx) == []
    assert User.objects.count() == users
    assert row_state(account) == row
    assert memory_state(account) == memory


@pytest.mark.parametrize("name", ["owner", "admin", "plain"])
def test_create_method_unknown_fields_are_refused_and_nothing_written(
    account: Account, name: str
) -> None:
    users, row, memory = User.objects.count(), row_state(account), memory_state(account)
    with CaptureQueriesContext(connection) as ctx, pytest.raises(TypeError, match="nope"):
        getattr(account, f"create_{name}")(username="x", password="p", nope=1)
    assert data_statements(ctx) == []
    assert User.objects.count() == users
    assert row_state(account) == row
    assert memory_state(account) == memory


@BOTH_MODES
@pytest.mark.parametrize("name", ["owner", "admin", "plain"])
def test_create_method_rolled_back_with_the_failing_owner_save(
    mode: str, name: str, account: Account, fail_saves: Callable[..., None]
) -> None:
    fail_saves(Account)  # in pre_save, after the new user was inserted
    check_mode(mode)
    account.owner = User.objects.create_user(username="before")
    users, row, memory = User.objects.count(), row_state(account), memory_state(account)
    with pytest.raises(RuntimeError, match="account save refused"):
        getattr(account, f"create_{name}")(username="orphan", password="pw")
    assert not User.objects.filter(username="orphan").exists()
    assert User.objects.count() == users
    assert row_state(account) == row
    assert memory_state(account) == memory
    assert account.owner.username == "before"


@pytest.mark.django_db(transaction=True)
def test_create_method_runs_inside_the_owner_transaction() -> None:
    account = Account.objects.create()
    atomic: list[tuple[str, bool]] = []

    def record(sender: type[models.Model], **kwargs: Any) -> None:
        atomic.append((sender.__name__, connection.in_atomic_block))

    post_save.connect(record, weak=False, dispatch_uid="test_options.atomic")
    try:
        account.create_owner(username="carol", password="secret")
    finally:
        post_save.disconnect(dispatch_uid="test_options.atomic")
    assert atomic == [("User", True), ("Account", True)]
    assert not connection.in_atomic_block


class WritesToOther:
    """Every model is read and written on the "other" database."""

    def db_for_read(self, model: type[models.Model], **hints: Any) -> str:
        return "other"

    def db_for_write(self, model: type[models.Model], **hints: Any) -> str:
        return "other"

    def allow_relation(self, obj1: models.Model, obj2: models.Model, **hints: Any) -> bool:
        return True


@pytest.mark.django_db(databases=["default", "other"])
@pytest.mark.parametrize("name", ["owner", "admin", "plain"])
def test_create_method_runs_on_the_database_the_router_picks(name: str) -> None:
    with override_settings(DATABASE_ROUTERS=[WritesToOther()]):
        account = Account.objects.create()
        assert account._state.db == "other"
        with (
            CaptureQueriesContext(connection) as on_default,
            CaptureQueriesContext(connections["other"]) as on_other,
        ):
            user = getattr(account, f"create_{name}")(username="olga", password="pw")
    assert data_statements(on_default) == []
    assert data_statements(on_other) == ['INSERT INTO "auth_user"', 'UPDATE "tests_account"']
    assert user._state.db == "other"
    assert User.objects.using("other").get(pk=user.pk).username == "olga"
    assert not User.objects.using("default").filter(username="olga").exists()
    assert Account.objects.using("other").get(pk=account.pk).__dict__[f"{name}_id"] == user.pk


@pytest.mark.django_db(transaction=True)
def test_acreate_twins_use_the_manager_methods() -> None:
    account = Account.objects.create()

    async def main() -> tuple[User, User, User]:
        async with worker_queries() as queries:
            owner = await account.acreate_owner(username="carol", password="secret")
            admin = await account.acreate_admin(username="root", password="pw")
            plain = await account.acreate_plain(username="dora", password="secret")
        writes = [sql.split(None, 1)[0] for sql in queries if sql.startswith(("INSERT", "UPDATE"))]
        assert writes == ["INSERT", "UPDATE"] * 3
        return owner, admin, plain

    owner, admin, plain = run(main)
    assert fresh(owner).check_password("secret") and fresh(owner).password != "secret"
    assert fresh(admin).is_superuser and fresh(admin).check_password("pw")
    assert fresh(plain).password == "secret"
    row = row_state(account)
    assert (row["owner_id"], row["admin_id"], row["plain_id"]) == (owner.pk, admin.pk, plain.pk)


@pytest.mark.django_db(transaction=True)
def test_acreate_rolls_back_with_the_failing_owner_save(
    account: Account, fail_saves: Callable[..., None]
) -> None:
    fail_saves(Account)  # in pre_save, after the new user was inserted
    memory = memory_state(account)

    async def main() -> None:
        with pytest.raises(RuntimeError, match="account save refused"):
            await account.acreate_owner(username="orphan", password="pw")

    run(main)
    assert not User.objects.filter(username="orphan").exists()
    assert memory_state(account) == memory


def test_create_user_target_hashes_the_password_in_a_project_of_its_own() -> None:
    """tests/standalone/create_user_hashes.py: a BelongsToField to AUTH_USER_MODEL
    without create_method= in a fresh process and project."""
    script = Path(__file__).parent / "standalone" / "create_user_hashes.py"
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------ validate_scope


def assert_names(exc: ValidationError, label: str, value: Any) -> None:
    """The message names the model, the field and the value."""
    message = " ".join(exc.messages)
    assert label in message, message
    assert repr(value) in message, message


# (name, author fields, accepted by CheckedBook.author, accepted by CheckedBook.active)
AUTHORS = [
    pytest.param({"verified": True}, True, True, id="verified-active"),
    pytest.param({"verified": True, "deleted": True}, False, True, id="soft-deleted"),
    pytest.param({"verified": False}, False, True, id="unverified"),
    pytest.param({"verified": True, "active": False}, True, False, id="inactive"),
]


@pytest.mark.parametrize(("fields", "by_author", "by_active"), AUTHORS)
@pytest.mark.parametrize("name", ["author", "active"])
def test_full_clean_checks_the_key_in_the_scope(
    fields: dict[str, Any],
    by_author: bool,
    by_active: bool,
    name: str,
    django_assert_num_queries: Any,
) -> None:
    """author: the default scope (soft delete) with limit_choices_to (verified);
    active: the "active_authors" manager, soft-deleted rows included."""
    author = factories.AuthorFactory(**fields)
    accepted = by_author if name == "author" else by_active
    checked = CheckedBook(**{name: author})
    with django_assert_num_queries(1):
        if accepted:
            checked.full_clean()
        else:
            with pytest.raises(ValidationError) as info:
                checked.full_clean()
    if not accepted:
        assert list(info.value.message_dict) == [name]
        assert_names(info.value, f"CheckedBook.{name}", author.pk)


@pytest.mark.parametrize("name", ["author", "active"])
def test_full_clean_refuses_a_missing_key(name: str, django_assert_num_queries: Any) -> None:
    checked = CheckedBook(**{f"{name}_id": 987654})
    with django_assert_num_queries(1), pytest.raises(ValidationError) as info:
        checked.full_clean()
    assert list(info.value.message_dict) == [name]
    assert_names(info.value, f"CheckedBook.{name}", 987654)


def test_full_clean_null_key_makes_no_query(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        CheckedBook().full_clean()


class CheckedBookForm(forms.ModelForm):
    class Meta:
        model = CheckedBook
        fields = ["author", "active"]


class AnyAuthorForm(CheckedBookForm):
    """Choice fields that accept every Author row: only the model's validation refuses."""

    author = forms.ModelChoiceField(queryset=Author.all_objects.all(), required=False)
    active = forms.ModelChoiceField(queryset=Author.all_objects.all(), required=False)


@pytest.mark.parametrize("form_class", [CheckedBookForm, AnyAuthorForm])
@pytest.mark.parametrize(("fields", "by_author", "by_active"), AUTHORS)
@pytest.mark.parametrize("name", ["author", "active"])
def test_model_form_refuses_what_the_scope_hides(
    form_class: type[forms.ModelForm],
    fields: dict[str, Any],
    by_author: bool,
    by_active: bool,
    name: str,
) -> None:
    author = factories.AuthorFactory(**fields)
    # Django's own choice field reads the default manager with limit_choices_to.
    choice = form_class is AnyAuthorForm or not (
        author.deleted or (name == "author" and not author.verified)
    )
    accepted = choice and (by_author if name == "author" else by_active)
    form = form_class(data={name: author.pk})
    if accepted:
        assert form.is_valid(), form.errors
        checked = form.save()
        assert row_state(checked)[f"{name}_id"] == author.pk
        return
    assert not form.is_valid()
    assert list(form.errors) == [name]
    if choice:
        # Django's choice field let it through: the field's validate() refused it.
        assert_names(form.errors.as_data()[name][0], f"CheckedBook.{name}", author.pk)
    assert not CheckedBook.objects.exists()


def test_without_the_option_validation_is_djangos(django_assert_num_queries: Any) -> None:
    """Book.author has no validate_scope: Django's base-manager check, with its
    message, even for a soft-deleted author the default manager hides."""
    field = Book._meta.get_field("author")
    deleted = factories.AuthorFactory(deleted=True)
    book = factories.BookFactory.build(author=deleted, publisher=factories.PublisherFactory())
    with CaptureQueriesContext(connection) as ctx:
        book.full_clean(exclude=["publisher"])
    [query] = [q["sql"] for q in ctx.captured_queries]
    assert '"tests_author"' in query
    assert "deleted" not in query  # the base manager (all_objects), not the default one
    book.author_id = 987654
    with django_assert_num_queries(1), pytest.raises(ValidationError) as ours:
        book.full_clean(exclude=["publisher"])
    with pytest.raises(ValidationError) as djangos:
        models.ForeignKey.validate(field, 987654, book)  # type: ignore[arg-type]
    assert ours.value.message_dict == {"author": djangos.value.messages}
    assert [e.code for e in ours.value.error_dict["author"]] == [djangos.value.code]


def test_validation_message_keeps_a_percent_sign_in_the_key() -> None:
    """The value is a message parameter: a key with "%" renders as it is."""
    city = City(name="Nowhere", country=Country.objects.create(code="A%", name="A"))
    with pytest.raises(ValidationError) as info:
        city.set_country("B%", validate=True, save=False)
    assert_names(info.value, "City.country", "B%")
    assert info.value.params == {"value": "B%"}


# ------------------------------------------------------- set(validate=True)


def invalid_authors() -> list[Any]:
    return [
        pytest.param(lambda: 987654, id="missing-key"),
        pytest.param(lambda: factories.AuthorFactory(deleted=True).pk, id="soft-deleted-key"),
        pytest.param(lambda: factories.AuthorFactory(deleted=True), id="soft-deleted-instance"),
    ]


@pytest.mark.parametrize("save", [True, False])
@pytest.mark.parametrize("make", invalid_authors())
def test_set_validate_refuses_before_anything_changes(
    linked_book: Book, make: Any, save: bool
) -> None:
    value = make()
    key = value.pk if isinstance(value, Author) else value
    row, memory = row_state(linked_book), memory_state(linked_book)
    with CaptureQueriesContext(connection) as ctx, pytest.raises(ValidationError) as info:
        linked_book.set_author(value, validate=True, save=save)
    assert data_statements(ctx) == ["SELECT"]
    assert_names(info.value, "Book.author", key)
    assert row_state(linked_book) == row
    assert memory_state(linked_book) == memory  # key, Django's and the scoped caches


def test_set_without_validate_takes_a_soft_deleted_key(linked_book: Book) -> None:
    """Control: the check is what validate=True adds."""
    deleted = factories.AuthorFactory(deleted=True)
    with CaptureQueriesContext(connection) as ctx:
        linked_book.set_author(deleted.pk)
    assert data_statements(ctx) == ['UPDATE "tests_book"']
    assert row_state(linked_book)["author_id"] == deleted.pk


@pytest.mark.parametrize("as_key", [False, True], ids=["instance", "key"])
def test_set_validate_accepts_a_valid_value_and_saves(
    linked_book: Book, as_key: bool, django_assert_num_queries: Any
) -> None:
    new = factories.AuthorFactory()
    with CaptureQueriesContext(connection) as ctx:
        linked_book.set_author(new.pk if as_key else new, validate=True)
    assert data_statements(ctx) == ["SELECT", 'UPDATE "tests_book"']
    assert row_state(linked_book)["author_id"] == new.pk
    assert linked_book.author_id == new.pk
    if not as_key:
        with django_assert_num_queries(0):
            assert linked_book.author is new


def test_set_validate_with_save_false_only_checks(linked_book: Book) -> None:
    new = factories.AuthorFactory()
    row = row_state(linked_book)
    with CaptureQueriesContext(connection) as ctx:
        linked_book.set_author(str(new.pk), validate=True, save=False)
    assert data_statements(ctx) == ["SELECT"]
    assert row_state(linked_book) == row
    assert linked_book.author_id == new.pk


@pytest.mark.parametrize("save", [True, False])
def test_set_validate_none_makes_no_select(linked_book: Book, save: bool) -> None:
    old = linked_book.author_id
    with CaptureQueriesContext(connection) as ctx:
        linked_book.set_author(None, validate=True, save=save)
    assert data_statements(ctx) == (['UPDATE "tests_book"'] if save else [])
    assert linked_book.author_id is None
    assert row_state(linked_book)["author_id"] == (None if save else old)


def test_set_validate_bad_input_is_refused_before_the_select(
    linked_book: Book, django_assert_num_queries: Any
) -> None:
    publisher = factories.PublisherFactory()
    memory = memory_state(linked_book)
    with django_assert_num_queries(0), pytest.raises(ValueError, match=r"Book\.author"):
        linked_book.set_author("not a key", validate=True)
    with django_assert_num_queries(0), pytest.raises(TypeError, match=r"Book\.author"):
        linked_book.set_author(publisher, validate=True)
    assert memory_state(linked_book) == memory


# (author fields, accepted by CheckedBook.author's scope, by CheckedBook.active's)
@pytest.mark.parametrize(("fields", "by_author", "by_active"), AUTHORS)
@pytest.mark.parametrize("name", ["author", "active"])
def test_set_validate_checks_the_validate_scope(
    fields: dict[str, Any], by_author: bool, by_active: bool, name: str
) -> None:
    """limit_choices_to (CheckedBook.author: verified) and a named scope
    (CheckedBook.active: "active_authors", soft-deleted rows included)."""
    checked = CheckedBook.objects.create()
    author = factories.AuthorFactory(**fields)
    accepted = by_author if name == "author" else by_active
    row, memory = row_state(checked), memory_state(checked)
    setter = getattr(checked, f"set_{name}")
    with CaptureQueriesContext(connection) as ctx:
        if accepted:
            setter(author, validate=True)
        else:
            with pytest.raises(ValidationError) as info:
                setter(author, validate=True)
    if accepted:
        assert data_statements(ctx) == ["SELECT", 'UPDATE "tests_checkedbook"']
        assert row_state(checked)[f"{name}_id"] == author.pk
    else:
        assert data_statements(ctx) == ["SELECT"]
        assert_names(info.value, f"CheckedBook.{name}", author.pk)
        assert row_state(checked) == row
        assert memory_state(checked) == memory


@pytest.mark.django_db(transaction=True)
def test_aset_validate() -> None:
    book = Book.objects.get(pk=factories.BookFactory(author=factories.AuthorFactory()).pk)
    deleted, new = factories.AuthorFactory(deleted=True), factories.AuthorFactory()
    row = row_state(book)

    async def refused() -> list[str]:
        async with worker_queries() as queries:
            with pytest.raises(ValidationError) as info:
                await book.aset_author(deleted.pk, validate=True)
        assert_names(info.value, "Book.author", deleted.pk)
        return queries

    assert [q.split(None, 1)[0] for q in run(refused)] == ["SELECT"]
    assert row_state(book) == row

    async def unsaved() -> list[str]:
        async with worker_queries() as queries:
            await book.aset_author(new.pk, validate=True, save=False)
        return queries

    assert [q.split(None, 1)[0] for q in run(unsaved)] == ["SELECT"]
    assert (book.author_id, row_state(book)) == (new.pk, row)

    async def accepted() -> list[str]:
        async with worker_queries() as queries:
            await book.aset_author(new, validate=True)
        return queries

    # The check, then the write in a transaction of its own.
    assert [q.split(None, 1)[0] for q in run(accepted)] == ["SELECT", "BEGIN", "UPDATE", "COMMIT"]
    assert row_state(book)["author_id"] == new.pk


# ------------------------------------------------------------ strict=True


def assert_blocked(exc: BaseException, name: str) -> None:
    assert isinstance(exc, belongsto_ext.FieldFetchBlocked)
    assert isinstance(exc, exceptions.FieldError)
    if django.VERSION >= (6, 1):
        assert belongsto_ext.FieldFetchBlocked is exceptions.FieldFetchBlocked  # type: ignore[attr-defined]
    message = str(exc)
    assert f"StrictBook.{name}" in message
    for remedy in ("prefetch()", "ScopedPrefetch", "select_related()"):
        assert remedy in message


@pytest.fixture
def strict_book() -> StrictBook:
    author = factories.AuthorFactory()
    row = StrictBook.objects.create(author=author, profile_owner=author)
    return StrictBook.objects.get(pk=row.pk)


def strict_books(name: str) -> list[Author]:
    """Three strict books pointing through ``name`` at three authors, then one
    with a null key; the authors."""
    authors = factories.AuthorFactory.create_batch(3)
    for author in authors:
        StrictBook.objects.create(**{name: author})
    StrictBook.objects.create()
    return authors


STRICT_FIELDS = pytest.mark.parametrize("name", ["author", "profile_owner"])
READS = pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda book, name: getattr(book, f"get_{name}")(), id="get"),
        pytest.param(lambda book, name: getattr(book, f"get_{name}")(scope=False), id="get-base"),
        pytest.param(
            lambda book, name: getattr(book, f"get_{name}")(scope="active_authors"), id="get-named"
        ),
        pytest.param(lambda book, name: getattr(book, name), id="attribute"),
    ],
)


@STRICT_FIELDS
@READS
def test_strict_read_that_would_query_raises(
    strict_book: StrictBook, name: str, read: Any, django_assert_num_queries: Any
) -> None:
    memory = memory_state(strict_book)
    with django_assert_num_queries(0), pytest.raises(belongsto_ext.FieldFetchBlocked) as info:
        read(strict_book, name)
    assert_blocked(info.value, name)
    assert memory_state(strict_book) == memory


@STRICT_FIELDS
@READS
def test_strict_deferred_key_raises_without_loading_it(
    strict_book: StrictBook, name: str, read: Any, django_assert_num_queries: Any
) -> None:
    """Reading the relation would first load the deferred key: one query, refused."""
    book = StrictBook.objects.only("pk").get(pk=strict_book.pk)
    memory = memory_state(book)
    with django_assert_num_queries(0), pytest.raises(belongsto_ext.FieldFetchBlocked) as info:
        read(book, name)
    assert_blocked(info.value, name)
    assert memory_state(book) == memory
    assert f"{name}_id" not in book.__dict__


@STRICT_FIELDS
def test_strict_deferred_key_with_the_object_cached_answers(
    strict_book: StrictBook, name: str, django_assert_num_queries: Any
) -> None:
    book = StrictBook.objects.only("pk").get(pk=strict_book.pk)
    author = Author.all_objects.get(pk=strict_book.__dict__[f"{name}_id"])
    book._meta.get_field(name).set_cached_value(book, author)
    with django_assert_num_queries(0):
        assert getattr(book, name) is author


@pytest.mark.django_db(transaction=True)
@STRICT_FIELDS
@pytest.mark.parametrize("deferred", [False, True], ids=["loaded-key", "deferred-key"])
def test_strict_aget_raises_without_a_query(name: str, deferred: bool) -> None:
    """Also for a deferred key: reading it would query first."""
    author = factories.AuthorFactory()
    rows = StrictBook.objects.only("pk") if deferred else StrictBook.objects.all()
    book = rows.get(pk=StrictBook.objects.create(**{name: author}).pk)

    async def main() -> list[str]:
        async with worker_queries() as queries:
            with pytest.raises(belongsto_ext.FieldFetchBlocked) as info:
                await getattr(book, f"aget_{name}")()
        assert_blocked(info.value, name)
        return queries

    assert run(main) == []
    assert (f"{name}_id" in book.__dict__) is not deferred  # a deferred key stays unloaded


@STRICT_FIELDS
def test_strict_null_key_returns_none(name: str, django_assert_num_queries: Any) -> None:
    book = StrictBook.objects.get(pk=StrictBook.objects.create().pk)
    with django_assert_num_queries(0):
        assert getattr(book, f"get_{name}")() is None
        assert getattr(book, f"get_{name}")(scope="active_authors") is None
        assert getattr(book, name) is None


@pytest.mark.django_db(transaction=True)
def test_strict_anull_key_returns_none() -> None:
    book = StrictBook.objects.get(pk=StrictBook.objects.create().pk)

    async def main() -> list[str]:
        async with worker_queries() as queries:
            assert await book.aget_author() is None
            assert await book.aget_profile_owner() is None
        return queries

    assert run(main) == []


@STRICT_FIELDS
def test_strict_select_related_answers(
    strict_book: StrictBook, name: str, django_assert_num_queries: Any
) -> None:
    book = StrictBook.objects.select_related(name).get(pk=strict_book.pk)
    with django_assert_num_queries(0):
        author = getattr(book, name)
        assert author.pk == strict_book.__dict__[f"{name}_id"]
        assert getattr(book, f"get_{name}")(scope=False) is author
        # The default manager filters (soft delete): select_related() does not
        # answer for it, and strict refuses to query.
        with pytest.raises(belongsto_ext.FieldFetchBlocked):
            getattr(book, f"get_{name}")()


@STRICT_FIELDS
def test_strict_prefetch_answers(name: str, django_assert_num_queries: Any) -> None:
    authors = strict_books(name)
    books = list(StrictBook.objects.order_by("pk"))
    with django_assert_num_queries(1):
        prefetch(books, name)
    with django_assert_num_queries(0):
        assert [getattr(b, f"get_{name}")() for b in books] == [*authors, None]


@STRICT_FIELDS
def test_strict_scoped_prefetch_answers(name: str, django_assert_num_queries: Any) -> None:
    authors = strict_books(name)
    Author.all_objects.filter(pk=authors[0].pk).update(active=False)
    with django_assert_num_queries(2):
        books = list(
            StrictBook.objects.order_by("pk").prefetch_related(
                ScopedPrefetch(name, scope="active_authors")
            )
        )
    with django_assert_num_queries(0):
        found = [getattr(b, f"get_{name}")(scope="active_authors") for b in books]
    assert found == [None, *authors[1:], None]


@STRICT_FIELDS
def test_strict_prefetch_related_answers_the_attribute(
    strict_book: StrictBook, name: str, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(2):
        book = StrictBook.objects.prefetch_related(name).get(pk=strict_book.pk)
    with django_assert_num_queries(0):
        assert getattr(book, name).pk == strict_book.__dict__[f"{name}_id"]


@STRICT_FIELDS
def test_strict_after_set_answers_what_it_holds(
    strict_book: StrictBook, name: str, django_assert_num_queries: Any
) -> None:
    new = factories.AuthorFactory()
    getattr(strict_book, f"set_{name}")(new)
    assert row_state(strict_book)[f"{name}_id"] == new.pk
    with django_assert_num_queries(0):
        assert getattr(strict_book, name) is new
        assert getattr(strict_book, f"get_{name}")(scope=False) is new
    # A key alone holds no object: reading it would query.
    getattr(strict_book, f"set_{name}")(factories.AuthorFactory().pk)
    with django_assert_num_queries(0), pytest.raises(belongsto_ext.FieldFetchBlocked):
        getattr(strict_book, name)


@needs_fetch_modes
@STRICT_FIELDS
@READS
def test_strict_under_fetch_peers_raises(
    name: str, read: Any, django_assert_num_queries: Any
) -> None:
    authors = strict_books(name)
    books = list(StrictBook.objects.order_by("pk").fetch_mode(models.FETCH_PEERS))  # type: ignore[attr-defined]
    with django_assert_num_queries(0), pytest.raises(belongsto_ext.FieldFetchBlocked) as info:
        read(books[1], name)
    assert_blocked(info.value, name)
    with django_assert_num_queries(1):
        prefetch(books, name, scope=False)
    with django_assert_num_queries(0):
        assert [getattr(b, f"get_{name}")(scope=False) for b in books] == [*authors, None]


def test_not_strict_reads_query_as_before(django_assert_num_queries: Any) -> None:
    """Control: a plain field reads with one query."""
    book = Book.objects.get(pk=factories.BookFactory(author=factories.AuthorFactory()).pk)
    with django_assert_num_queries(1):
        assert book.get_author() is not None
