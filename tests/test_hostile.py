"""Untrusted input: scope names and key values straight from a request.

Scope names reach nothing but a declared manager (anything else is a clear
``InvalidScope``, a ``ValueError``); key values are refused before any query, or,
where only the database can tell (a well-formed key with no row), the database's
error propagates and the instance is put back. Each test prints how many inputs
it tried.
"""

from __future__ import annotations

import datetime
import decimal
import fractions
import uuid
from collections import Counter
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, models
from django.test.utils import CaptureQueriesContext, isolate_apps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from belongsto_ext import BelongsToField, InvalidScope
from tests import factories
from tests.helpers import CONTROL, memory_state, row_state
from tests.models import Author, Book, City, SlugBook

HYPOTHESIS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class EvilStr(str):
    """A str subclass that claims to equal (and hash as) a manager's name."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash("objects")


HOSTILE_NAMES: list[Any] = [
    "delete",
    "update",
    "all",
    "create",
    "get_queryset",
    "bulk_create",
    "get_or_create",
    "raw",
    "none",
    "filter",
    "objects.delete",
    "objects.all",
    "all_objects.update",
    "_base_manager",
    "_default_manager",
    "__class__",
    "__dict__",
    "__init__",
    "__subclasses__",
    "__globals__",
    "_meta",
    "DoesNotExist",
    "pk",
    "id",
    "name",
    "books",
    "profile",
    "save",
    "refresh_from_db",
    "nuke",
    "trap",
    "",
    " ",
    "objects ",
    "Objects",
    "OBJECTS",
    "objects\x00",
    "ｏｂｊｅｃｔｓ",  # noqa: RUF001 (deliberate: fullwidth look-alike of a manager name)
    "objects;DROP TABLE tests_author",
    EvilStr("delete"),
    ["objects", "delete"],
    ("nuke",),
    [],
    (),
    ["objects", ["all_objects"]],
    [EvilStr("x")],
    {"objects"},
    {"objects": 1},
    frozenset({"objects"}),
    b"objects",
    0,
    1,
    1.5,
    object(),
    Author,
    Author.objects,
]
SCOPES = st.one_of(
    st.sampled_from(HOSTILE_NAMES),
    st.text(),
    st.text(alphabet="objects_.aliveAuthrdf", max_size=20),
    st.lists(
        st.sampled_from(["objects", "all_objects", "active_authors", "delete", "", "__class__"]),
        max_size=3,
    ),
    st.tuples(st.text(max_size=5)),
    st.integers(),
    st.binary(max_size=10),
    st.none(),
    st.booleans(),
)


def valid_scope(scope: Any, managers: set[str]) -> bool:
    """The documented rule: None, a bool, a manager's name, or a non-empty list/tuple of them."""
    if scope is None or isinstance(scope, bool):
        return True
    names = (scope,) if type(scope) is str else scope
    return (
        type(names) in (list, tuple)
        and len(names) > 0
        and all(type(n) is str and n in managers for n in names)
    )


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call of a writing or raw QuerySet method, or of Model.delete/save."""
    calls: list[str] = []
    targets = [
        (
            models.QuerySet,
            (
                "delete",
                "update",
                "_update",
                "_raw_delete",
                "create",
                "bulk_create",
                "bulk_update",
                "get_or_create",
                "update_or_create",
                "raw",
            ),
        ),
        (models.Model, ("delete", "save")),
    ]
    for owner, names in targets:
        for name in names:
            original = getattr(owner, name)

            def spy(
                *args: Any,
                __name: str = f"{owner.__name__}.{name}",
                __original: Any = original,
                **kwargs: Any,
            ) -> Any:
                calls.append(__name)
                return __original(*args, **kwargs)

            monkeypatch.setattr(owner, name, spy)
    return calls


@pytest.mark.django_db
@isolate_apps("tests")
def test_scope_names_never_reach_anything_but_a_declared_manager(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A model whose managers and attributes record every use: hostile scope names
    touch none of them, and only declared managers' names are accepted."""
    touched: list[str] = []

    class RecordingQuerySet(models.QuerySet):
        def delete(self) -> Any:
            touched.append("QuerySet.delete")

        def update(self, **kwargs: Any) -> Any:
            touched.append("QuerySet.update")

    class RecordingManager(models.Manager.from_queryset(RecordingQuerySet)):  # type: ignore[misc]
        def get_queryset(self) -> models.QuerySet:
            touched.append(f"{self.name}.get_queryset")
            return super().get_queryset()

        def create(self, **kwargs: Any) -> Any:
            touched.append(f"{self.name}.create")

        def all(self) -> models.QuerySet:
            touched.append(f"{self.name}.all")
            return super().all()

    class Trap:
        def __init__(self, name: str) -> None:
            self.name = name

        def __call__(self, *args: Any, **kwargs: Any) -> None:
            touched.append(self.name)

        def __get__(self, instance: Any, owner: Any) -> Any:
            touched.append(f"get {self.name}")
            return self

    class Target(models.Model):
        objects = RecordingManager()
        live = RecordingManager()
        nuke = Trap("nuke")
        trap = Trap("trap")
        delete = Trap("delete")  # type: ignore[assignment]
        save = Trap("save")  # type: ignore[assignment]

        class Meta:
            app_label = "tests"

    class Owner(models.Model):
        target = BelongsToField(Target, on_delete=models.CASCADE, null=True)

        class Meta:
            app_label = "tests"

    owner = Owner()  # key None: a valid scope answers None without a query
    managers = set(Target._meta.managers_map)
    assert managers == {"objects", "live"}
    tried = Counter()

    def check(scope: Any) -> None:
        with CaptureQueriesContext(connection) as ctx:
            if valid_scope(scope, managers):
                assert owner.get_target(scope=scope) is None
                tried["accepted"] += 1
            else:
                with pytest.raises(InvalidScope) as excinfo:
                    owner.get_target(scope=scope)
                assert isinstance(excinfo.value, ValueError)
                assert "tests.Target" in str(excinfo.value) and "'live', 'objects'" in str(
                    excinfo.value
                )
                tried["refused"] += 1
        assert ctx.captured_queries == []
        assert touched == [], f"scope {scope!r} reached {touched}"

    for scope in [*HOSTILE_NAMES, "live", "objects", ["live", "objects"]]:
        check(scope)
    HYPOTHESIS(given(scope=SCOPES)(check))()
    with capsys.disabled():
        print(
            f"\n[hostile] scope names on a trapped model: {sum(tried.values())} tried {dict(tried)}"
        )


@pytest.mark.django_db
def test_scope_names_on_a_real_row(recorded: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """With a key set, a refused scope makes no query and writes nothing; an accepted
    one reads one row at most."""
    author = factories.AuthorFactory()
    book = Book.objects.get(pk=factories.BookFactory(author=author).pk)
    managers = set(Author._meta.managers_map)
    before = (row_state(book), Author.all_objects.count(), Book.objects.count())
    recorded.clear()  # the factories' own saves
    tried = Counter()

    def check(scope: Any) -> None:
        memory = memory_state(book)
        with CaptureQueriesContext(connection) as ctx:
            if valid_scope(scope, managers):
                assert book.get_author(scope=scope) in (author, None)
                assert len(ctx.captured_queries) <= 1
                tried["accepted"] += 1
            else:
                with pytest.raises(InvalidScope, match=r"tests\.Author"):
                    book.get_author(scope=scope)
                assert ctx.captured_queries == []
                assert memory_state(book) == memory
                tried["refused"] += 1
        assert recorded == [], f"scope {scope!r} called {recorded}"

    for scope in [*HOSTILE_NAMES, *managers, sorted(managers)]:
        check(scope)
    HYPOTHESIS(given(scope=SCOPES)(check))()
    assert (row_state(book), Author.all_objects.count(), Book.objects.count()) == before
    with capsys.disabled():
        print(f"\n[hostile] scope names on tests.Author: {sum(tried.values())} tried {dict(tried)}")


# ------------------------------------------------------------------ key values


def hostile_keys(pk: int) -> list[Any]:
    """Hand-picked key values; ``pk`` is an existing author's key."""
    arabic = str(pk).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    return [
        "1; DROP TABLE tests_author",
        "1 OR 1=1",
        f"{pk} OR 1=1",
        f"{pk}; DELETE FROM tests_book",
        "1' OR '1'='1",
        "'; --",
        "1)--",
        "(SELECT 1)",
        "0x10",
        "1e3",
        "1.0",
        "١",  # noqa: RUF001 (deliberate: Arabic-Indic digit one)
        "１",  # noqa: RUF001 (deliberate: fullwidth digit one)
        "²",
        "1_000",
        "null",
        "NULL",
        "None",
        "",
        " ",
        "\x00",
        f"{pk}\x00",
        "-1",
        "0",
        f" {pk} ",
        f"+{pk}",
        f"0{pk}",
        arabic,
        str(pk),
        str(2**63),
        str(-(2**63) - 1),
        2**63,
        -(2**63) - 1,
        2**63 - 1,
        -(2**63),
        10**30,
        -1,
        0,
        float("nan"),
        float("inf"),
        float("-inf"),
        1.5,
        float(pk),
        -0.0,
        decimal.Decimal("NaN"),
        decimal.Decimal("sNaN"),
        decimal.Decimal("Infinity"),
        decimal.Decimal("1.5"),
        decimal.Decimal(pk),
        decimal.Decimal("1E+30"),
        True,
        False,
        b"1",
        bytearray(b"1"),
        memoryview(b"1"),
        [pk],
        (pk,),
        {pk},
        {"pk": pk},
        [[pk]],
        {"a": [1, {"b": 2}]},
        complex(pk, 0),
        fractions.Fraction(pk, 1),
        object(),
        uuid.uuid4(),
        datetime.date(2020, 1, 1),
        datetime.timedelta(days=1),
        Author,
        Author.objects,
    ]


KEYS = st.one_of(
    st.text(),
    st.from_regex(r"\A\s*[+-]?\d{1,25}\s*\Z"),
    st.text(alphabet=st.characters(categories=["Nd"]), min_size=1, max_size=4),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**65),
    st.floats(),
    st.decimals(),
    st.binary(max_size=8),
    st.booleans(),
    st.recursive(
        st.integers(0, 3) | st.text(max_size=3),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=2)
        ),
        max_leaves=5,
    ),
)

OWNERS = {
    # owner model, field name, target key attribute
    "Book.author (bigint pk)": (Book, "author"),
    "SlugBook.author (to_field slug)": (SlugBook, "author"),
    "City.country (char(2) pk)": (City, "country"),
}


def make_owner(label: str) -> tuple[models.Model, Any]:
    """A saved owner pointing at a row, and that row's key (which some inputs spell)."""
    model, name = OWNERS[label]
    if model is City:
        country = factories.CountryFactory()
        owner = City.objects.create(name="c", country=country)
        return City.objects.get(pk=owner.pk), country.pk
    author = factories.AuthorFactory()
    if model is Book:
        owner = factories.BookFactory(author=author)
    else:
        owner = factories.SlugBookFactory(author=author)
    key = getattr(author, model._meta.get_field(name).target_field.attname)
    return model.objects.get(pk=owner.pk), key


def writes(ctx: CaptureQueriesContext) -> int:
    """The statements in ``ctx`` other than transaction control (a statement the
    database refused may be logged without its SQL: it counts)."""
    return sum((q["sql"] or "?").split(None, 1)[0] not in CONTROL for q in ctx.captured_queries)


def try_key(owner: models.Model, name: str, value: Any, original: Any, tried: Counter[str]) -> None:
    """Set ``value``: refused before any query, refused by the database with the
    instance restored, or written as an exact conversion that names a real row."""
    field = type(owner)._meta.get_field(name)
    memory, row = memory_state(owner), row_state(owner)
    with CaptureQueriesContext(connection) as ctx:
        try:
            getattr(owner, f"set_{name}")(value)
            error = None
        except Exception as exc:
            error = exc
    if error is None:
        stored = getattr(owner, field.attname)
        assert row_state(owner)[field.attname] == stored
        assert field.related_model._base_manager.filter(
            **{field.target_field.attname: stored}
        ).exists()
        assert stored == field.target_field.to_python(value)  # the value itself, never SQL
        if isinstance(value, str) and isinstance(stored, int):
            assert int(value) == stored
        assert writes(ctx) == 1  # in set_'s own transaction (BEGIN ... COMMIT)
        tried["accepted (a real row)"] += 1
        getattr(owner, f"set_{name}")(original)
        return
    assert memory_state(owner) == memory, f"{value!r}: instance changed"
    assert row_state(owner) == row, f"{value!r}: row changed"
    if isinstance(error, (TypeError, ValueError, ValidationError)) and not isinstance(
        error, DatabaseError
    ):
        assert ctx.captured_queries == [], f"{value!r} was refused only after a query"
        assert f"{type(owner).__name__}.{name}" in str(error)
        tried["refused before any query"] += 1
    else:
        assert isinstance(error, (DatabaseError, OverflowError)), f"{value!r}: {error!r}"
        assert writes(ctx) <= 1
        tried[f"refused by the database ({type(error).__name__})"] += 1


@pytest.mark.django_db(transaction=True)  # foreign keys are checked when each statement commits
@pytest.mark.parametrize("label", list(OWNERS))
def test_hostile_key_values(label: str, capsys: pytest.CaptureFixture[str]) -> None:
    owner, original = make_owner(label)
    _, name = OWNERS[label]
    counts = (
        Book.objects.count(),
        Author.all_objects.count(),
        City.objects.count(),
        SlugBook.objects.count(),
    )
    tried: Counter[str] = Counter()
    for value in [
        *hostile_keys(original if isinstance(original, int) else 1),
        original,
        f"{original}'--",
    ]:
        try_key(owner, name, value, original, tried)

    @HYPOTHESIS
    @given(value=KEYS)
    def check(value: Any) -> None:
        try_key(owner, name, value, original, tried)

    check()
    assert (
        Book.objects.count(),
        Author.all_objects.count(),
        City.objects.count(),
        SlugBook.objects.count(),
    ) == counts
    assert (
        getattr(owner, f"{name}_id")
        == original
        == row_state(owner)[type(owner)._meta.get_field(name).attname]
    )
    with capsys.disabled():
        print(f"\n[hostile] keys for {label}: {sum(tried.values())} tried {dict(tried)}")
