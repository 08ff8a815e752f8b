"""Scopes whose rows depend on the context, and the answers Django holds.

1. A manager may filter by the current tenant (django-scopes' ``scope()``, a
   contextvar, a thread-local, module state, its own attributes, the current
   time zone): nothing learnt about its rows in one context answers in another.
   Neither "this scope selects every row" (so Django's ``select_related()``
   object may answer), nor an answer cached on the instance, nor the room a
   batch leaves for the scope's parameters.
2. A None Django holds (a join django-permanent filters, a filtered
   ``Prefetch``) answers no scope: a scope that may see more rows asks the
   database.
3. ``scopes=`` decides ``scope=False`` too: refused, before any query, unless
   the list names the base manager.
"""

from __future__ import annotations

import datetime
import json
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.db.models import F, Prefetch, Q, prefetch_related_objects
from django.test.utils import CaptureQueriesContext, isolate_apps
from django.utils import timezone
from django_scopes import ScopeError, scope, scopes_disabled

import belongsto_ext
from belongsto_ext import InvalidScope, ScopedPrefetch, scopes
from tests.factories import (
    BadgeFactory,
    EssayFactory,
    EventFactory,
    GuestFactory,
    MemberFactory,
    ProjectFactory,
    SiteFactory,
    TeamFactory,
    TicketFactory,
    WriterFactory,
)
from tests.helpers import fresh, lower_limit, memory_state, run, worker_queries
from tests.markers import needs_permanent, needs_setlimit, on_sqlite
from tests.scoped.models import (
    CURRENT_SITE,
    MODULE_STATE,
    PERMANENT_PATCHES,
    THREAD,
    Badge,
    Essay,
    Event,
    Member,
    Mention,
    Site,
    Ticket,
    Writer,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def permanent(monkeypatch: pytest.MonkeyPatch) -> None:
    """django-permanent's patches of Django, as importing the library applies them
    in a project (tests/scoped/models.py takes them back for the rest of the suite)."""
    for owner, name, patched in PERMANENT_PATCHES:
        monkeypatch.setattr(owner, name, patched)


# ================================================================ django-scopes


def test_a_team_read_unscoped_first_is_not_returned_in_another_sites_scope(
    django_assert_num_queries: Any,
) -> None:
    """An unscoped read first (a cron job, a management command), then a request
    of site s1 reads a ticket whose team belongs to s2, loaded with select_related()."""
    s1, team = SiteFactory(), TeamFactory()
    ticket = TicketFactory(team=team)
    with scopes_disabled():
        held = Ticket.objects.select_related("team").get(pk=ticket.pk)
        with django_assert_num_queries(0):  # every team is in scope: Django's object answers
            assert held.get_team() is held.team
    with scope(site=s1):
        joined = Ticket.objects.select_related("team").get(pk=ticket.pk)
        with django_assert_num_queries(1):
            assert joined.get_team() is None
    with scope(site=team.site):
        joined = Ticket.objects.select_related("team").get(pk=ticket.pk)
        with django_assert_num_queries(1):
            assert joined.get_team() == team


def test_an_answer_is_cached_for_the_scope_it_was_read_in(
    django_assert_num_queries: Any,
) -> None:
    s1, team = SiteFactory(), TeamFactory()
    ticket = fresh(TicketFactory(team=team))
    with scope(site=s1), django_assert_num_queries(1):
        assert ticket.get_team() is None
    with scopes_disabled(), django_assert_num_queries(1):
        assert ticket.get_team() == team
    with scope(site=team.site), django_assert_num_queries(1):
        assert ticket.get_team() == team
    with django_assert_num_queries(0):  # each answer again, in its own scope
        with scope(site=s1):
            assert ticket.get_team() is None
        with scopes_disabled():
            assert ticket.get_team() == team
        with scope(site=team.site):
            assert ticket.get_team() == team


def test_outside_any_scope_django_scopes_still_refuses_a_cached_answer() -> None:
    ticket = fresh(TicketFactory(team=TeamFactory()))
    with scopes_disabled():
        assert ticket.get_team() is not None
    with pytest.raises(ScopeError):
        ticket.get_team()


def test_prefetch_in_a_scope_answers_in_that_scope_only(django_assert_num_queries: Any) -> None:
    mine, theirs = SiteFactory(), SiteFactory()
    tickets = [fresh(TicketFactory(team=TeamFactory(site=s))) for s in (mine, theirs, mine)]
    with scope(site=mine):
        with django_assert_num_queries(1):
            belongsto_ext.prefetch(tickets, "team")
        with django_assert_num_queries(0):
            assert [t.get_team() is not None for t in tickets] == [True, False, True]
    with scope(site=theirs), django_assert_num_queries(3):
        assert [t.get_team() is not None for t in tickets] == [False, True, False]


def test_scoped_prefetch_in_a_scope_answers_in_that_scope_only(
    django_assert_num_queries: Any,
) -> None:
    mine, theirs = SiteFactory(), SiteFactory()
    for site in (mine, theirs):
        TicketFactory(team=TeamFactory(site=site))
    with scope(site=mine):
        with django_assert_num_queries(2):
            tickets = list(Ticket.objects.order_by("pk").prefetch_related(ScopedPrefetch("team")))
        with django_assert_num_queries(0):
            assert [t.get_team() is not None for t in tickets] == [True, False]
    with scopes_disabled(), django_assert_num_queries(2):
        assert [t.get_team() is not None for t in tickets] == [True, True]


def test_an_instance_keeps_the_answers_of_the_last_eight_scopes_a_manager_was_read_in(
    django_assert_num_queries: Any,
) -> None:
    sites = SiteFactory.create_batch(9)
    team = TeamFactory(site=sites[0])
    ticket = fresh(TicketFactory(team=team))
    with django_assert_num_queries(9):
        for site in sites:
            with scope(site=site):
                ticket.get_team()
    with scope(site=sites[-1]), django_assert_num_queries(0):
        assert ticket.get_team() is None
    with scope(site=sites[0]), django_assert_num_queries(1):  # the oldest was dropped
        assert ticket.get_team() == team


@on_sqlite
@needs_setlimit
def test_batches_leave_room_for_the_parameters_of_the_scope_in_force() -> None:
    """After an unscoped batch (no parameter of the scope's own), a scope over
    twelve sites carries twelve: each batch of keys makes room for them."""
    sites = SiteFactory.create_batch(12)
    teams = [TeamFactory(site=sites[i % 12]) for i in range(30)]
    tickets = [TicketFactory(team=team) for team in teams]
    with scopes_disabled():
        belongsto_ext.prefetch([fresh(t) for t in tickets], "team")
    owners = [fresh(t) for t in tickets]
    restore = lower_limit(20)
    try:
        with scope(site=[s.pk for s in sites]), CaptureQueriesContext(connection) as queries:
            belongsto_ext.prefetch(owners, "team")
            assert [t.get_team() for t in owners] == teams
    finally:
        restore()
    # 30 keys, 8 a statement beside the scope's 12 parameters.
    assert len(queries) == 4


@pytest.mark.django_db(transaction=True)
def test_aget_in_a_scope_does_not_return_an_answer_read_unscoped() -> None:
    s1, team = SiteFactory(), TeamFactory()
    ticket = fresh(TicketFactory(team=team))
    with scopes_disabled():
        assert ticket.get_team() == team

    async def main() -> None:
        async with worker_queries() as captured:
            with scope(site=s1):
                assert await ticket.aget_team() is None
        assert len(captured) == 1

    run(main)


# ======================================= managers that read some other context


@contextmanager
def current_site(site: Any) -> Iterator[None]:
    """A contextvar, as a tenant middleware sets it."""
    token = CURRENT_SITE.set(None if site is None else site.pk)
    try:
        yield
    finally:
        CURRENT_SITE.reset(token)


@contextmanager
def thread_site(site: Any) -> Iterator[None]:
    """A thread-local, as older middlewares keep the request."""
    THREAD.site = None if site is None else site.pk
    try:
        yield
    finally:
        del THREAD.site


@contextmanager
def module_site(site: Any) -> Iterator[None]:
    """Module-level state (a feature flag, a setting)."""
    MODULE_STATE["site"] = None if site is None else site.pk
    try:
        yield
    finally:
        MODULE_STATE["site"] = None


@contextmanager
def attribute_site(site: Any) -> Iterator[None]:
    """The manager's own attribute, set by code at any time."""
    manager = Event.of_attribute
    manager.site = None if site is None else site.pk
    try:
        yield
    finally:
        del manager.site


@pytest.mark.parametrize(
    ("name", "scope_", "switch", "factory"),
    [
        pytest.param("project", None, current_site, ProjectFactory, id="contextvar"),
        pytest.param("project", "on_thread", thread_site, ProjectFactory, id="thread-local"),
        pytest.param("event", "of_module", module_site, EventFactory, id="module-state"),
        pytest.param("event", "of_attribute", attribute_site, EventFactory, id="attribute"),
    ],
)
def test_a_scope_that_reads_the_context_is_decided_in_each_context(
    name: str,
    scope_: Any,
    switch: Callable[[Any], Any],
    factory: Any,
    django_assert_num_queries: Any,
) -> None:
    mine, theirs = SiteFactory(), SiteFactory()
    target = factory(site=theirs)
    owner = fresh(TicketFactory(**{name: target}), Ticket.objects.select_related(name))
    get = getattr(owner, f"get_{name}")
    with switch(None), django_assert_num_queries(0):  # no site: every row, Django's object
        assert get(scope=scope_) is getattr(owner, name)
    with switch(mine), django_assert_num_queries(1):
        assert get(scope=scope_) is None
    with switch(theirs), django_assert_num_queries(1):
        assert get(scope=scope_) == target
    with switch(mine), django_assert_num_queries(0):
        assert get(scope=scope_) is None


def test_a_polymorphic_relation_decides_every_row_in_each_context(
    django_assert_num_queries: Any,
) -> None:
    """BelongsToAnyField: with no site set, the object Django holds answers (every
    project is in scope); with a site set, a project of another site is not."""
    mine, theirs = SiteFactory(), SiteFactory()
    project = ProjectFactory(site=theirs)
    unscoped, scoped = (Mention.objects.create(target=project) for _ in range(2))
    with django_assert_num_queries(0):
        assert unscoped.get_target() is project
    with current_site(mine), django_assert_num_queries(1):
        assert scoped.get_target() is None


def test_a_polymorphic_relations_cached_answer_is_for_its_context_only(
    django_assert_num_queries: Any,
) -> None:
    """BelongsToAnyField's own answer cache: an answer read under one site (or
    none) is not returned under another; each context's answer comes back in it."""
    mine, theirs = SiteFactory(), SiteFactory()
    project = ProjectFactory(site=theirs)
    mention = Mention.objects.get(pk=Mention.objects.create(target=project).pk)
    ContentType.objects.get_for_model(type(project))  # cached for the process: not counted below
    with current_site(theirs), django_assert_num_queries(1):
        assert mention.get_target() == project
    with current_site(mine), django_assert_num_queries(1):
        assert mention.get_target() is None
    with current_site(theirs), django_assert_num_queries(1):
        assert mention.get_target() == project
    with current_site(mine), django_assert_num_queries(1):
        assert mention.get_target() is None
    with current_site(mine), django_assert_num_queries(0):  # the same context: cached
        assert mention.get_target() is None


def test_a_pickled_instance_keeps_the_answer_of_each_scope_for_that_scope(
    django_assert_num_queries: Any,
) -> None:
    s1, team = SiteFactory(), TeamFactory()
    ticket = fresh(TicketFactory(team=team))
    with scope(site=s1):
        assert ticket.get_team() is None
    restored = pickle.loads(pickle.dumps(ticket))
    with scope(site=s1), django_assert_num_queries(0):
        assert restored.get_team() is None
    with scope(site=team.site), django_assert_num_queries(1):
        assert restored.get_team() == team


def test_a_scope_compiled_in_another_time_zone_is_read_again(
    django_assert_num_queries: Any,
) -> None:
    """``Event.on_day`` holds literals only, but ``__date`` is taken in the time
    zone active when the query is compiled."""
    event = EventFactory(at=datetime.datetime(2024, 1, 1, 23, 30, tzinfo=datetime.timezone.utc))
    ticket = fresh(TicketFactory(event=event))
    with timezone.override("UTC"), django_assert_num_queries(1):
        assert ticket.get_event(scope="on_day") == event
    with timezone.override("Asia/Tokyo"), django_assert_num_queries(1):
        assert ticket.get_event(scope="on_day") is None  # 2 January there
    with timezone.override("UTC"), django_assert_num_queries(0):
        assert ticket.get_event(scope="on_day") == event


def test_a_static_scope_keeps_its_answer_across_contexts(django_assert_num_queries: Any) -> None:
    """A manager that reads nothing but its own literals answers from the cache
    whatever the context."""
    member = MemberFactory()
    badge = fresh(BadgeFactory(member=member))
    with django_assert_num_queries(1):
        assert badge.get_member() == member
    with (
        current_site(SiteFactory()),
        timezone.override("Asia/Tokyo"),
        django_assert_num_queries(0),
    ):
        assert badge.get_member() == member


# What counts as static: the rule docs/reading.md's "Scopes that depend on the
# context" states. A
# manager proven static is decided once; any other on each call.


class LiveQuerySet(models.QuerySet):
    def live(self) -> models.QuerySet:
        return self.filter(removed=False)


class FilteringQuerySet(models.QuerySet):
    def filter(self, *args: Any, **kwargs: Any) -> Any:
        return super().filter(*args, **kwargs)


class Literals(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(removed=False, name__in=["a", "b"])


class QAndF(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        return (
            super()
            .get_queryset()
            .filter(Q(name="a") | ~models.Q(removed=True), site_id=F("id"))
            .exclude(name="")
            .order_by("-pk")
            .select_related("site")
        )


class OnTopOfLiterals(Literals):
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().exclude(name="c")


class OwnMethod(models.Manager.from_queryset(LiveQuerySet)):  # type: ignore[misc]
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().live()


class OverriddenFilter(models.Manager.from_queryset(FilteringQuerySet)):  # type: ignore[misc]
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(removed=False)


class OwnAll(models.Manager):
    def all(self) -> models.QuerySet:
        return super().all()


class Now(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(at__lte=timezone.now())


class OnDay(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(at__date="2024-01-01")


class Branches(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        queryset = super().get_queryset()
        return queryset.filter(removed=False) if queryset.ordered else queryset


class ExplicitSuper(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        return super(ExplicitSuper, self).get_queryset().filter(removed=False)  # noqa: UP008


@pytest.mark.parametrize(
    ("manager", "static"),
    [
        pytest.param(models.Manager, True, id="django"),
        pytest.param(Literals, True, id="literals"),
        pytest.param(QAndF, True, id="Q-and-F"),
        pytest.param(OnTopOfLiterals, True, id="subclass-of-static"),
        pytest.param(
            models.Manager.from_queryset(LiveQuerySet), True, id="queryset-methods-unused"
        ),
        pytest.param(OwnMethod, False, id="queryset-method-called"),
        pytest.param(OverriddenFilter, False, id="queryset-overrides"),
        pytest.param(OwnAll, False, id="manager-all"),
        pytest.param(Now, False, id="a-global"),
        pytest.param(OnDay, False, id="current-time-zone"),
        pytest.param(Branches, False, id="branches"),
        pytest.param(ExplicitSuper, False, id="explicit-super"),
    ],
)
@isolate_apps("tests.scoped")
def test_what_counts_as_a_static_manager(manager: type[models.Manager], static: bool) -> None:
    class Row(models.Model):
        site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
        name = models.CharField(max_length=50)
        removed = models.BooleanField(default=False)
        at = models.DateTimeField()

        objects = manager()

    assert scopes.is_static(Row.objects) is static


# ================================================== a None Django holds (item 2)


def select_related(essay: Essay) -> Essay:
    return Essay.objects.select_related("writer").get(pk=essay.pk)


def prefetch_related(essay: Essay) -> Essay:
    return Essay.objects.prefetch_related("writer").get(pk=essay.pk)


@needs_permanent
@pytest.mark.parametrize("load", [select_related, prefetch_related])
def test_a_removed_writer_django_holds_as_none_is_read_in_a_scope_that_sees_it(
    permanent: None, load: Callable[[Essay], Essay], django_assert_num_queries: Any
) -> None:
    writer = WriterFactory()
    essay = EssayFactory(writer=writer)
    writer.delete()  # django-permanent: the row stays, with ``removed`` set
    assert Writer.all_objects.get(pk=writer.pk).removed is not None
    essay = load(essay)
    assert essay.writer is None  # the library left the removed writer out
    with django_assert_num_queries(1):
        assert essay.get_writer(scope="all_objects") == writer
    with django_assert_num_queries(1):
        assert essay.get_writer(scope="deleted_objects") == writer
    with django_assert_num_queries(1):
        assert essay.get_writer() is None
    with django_assert_num_queries(0):
        assert essay.get_writer(scope="all_objects") == writer


@needs_permanent
@pytest.mark.parametrize("load", [select_related, prefetch_related])
def test_a_live_writer_django_holds_answers_all_objects(
    permanent: None, load: Callable[[Essay], Essay], django_assert_num_queries: Any
) -> None:
    essay = load(EssayFactory(writer=WriterFactory()))
    with django_assert_num_queries(0):
        assert essay.get_writer(scope="all_objects") is essay.writer


@pytest.mark.parametrize("scope_", ["all_objects", False])
def test_a_none_from_a_filtered_prefetch_is_not_the_answer_of_a_wider_scope(
    scope_: Any, django_assert_num_queries: Any
) -> None:
    member = MemberFactory(removed=True)
    pk = BadgeFactory(any_member=member).pk
    live_only = Prefetch("any_member", queryset=Member.objects.all())
    badge = Badge.objects.prefetch_related(live_only).get(pk=pk)
    assert badge.any_member is None
    with django_assert_num_queries(1):
        assert badge.get_any_member(scope=scope_) == member
    badge = Badge.objects.prefetch_related(live_only).get(pk=pk)
    with django_assert_num_queries(1):
        belongsto_ext.prefetch([badge], "any_member", scope=scope_)
    with django_assert_num_queries(0):
        assert badge.get_any_member(scope=scope_) == member


# ======================================================== scopes= and False (item 5)


def get(owner: Any, name: str, scope_: Any) -> Any:
    return getattr(owner, f"get_{name}")(scope=scope_)


def aget(owner: Any, name: str, scope_: Any) -> Any:
    async def main() -> Any:
        return await getattr(owner, f"aget_{name}")(scope=scope_)

    return run(main)


def prefetch(owner: Any, name: str, scope_: Any) -> None:
    belongsto_ext.prefetch([owner], name, scope=scope_)


def scoped_prefetch(owner: Any, name: str, scope_: Any) -> None:
    prefetch_related_objects([owner], ScopedPrefetch(name, scope=scope_))


@pytest.mark.parametrize("call", [get, aget, prefetch, scoped_prefetch])
@pytest.mark.parametrize(
    ("name", "factory", "label"),
    [
        pytest.param("member", MemberFactory, "Member", id="base-manager-named"),
        pytest.param("guest", GuestFactory, "Guest", id="base-manager-plain"),
    ],
)
def test_false_is_refused_where_scopes_does_not_name_the_base_manager(
    call: Callable[[Any, str, Any], Any],
    name: str,
    factory: Any,
    label: str,
    django_assert_num_queries: Any,
) -> None:
    badge = fresh(BadgeFactory(**{name: factory(removed=True)}))
    before = memory_state(badge)
    from_request = json.loads('{"scope": false}')["scope"]
    with django_assert_num_queries(0), pytest.raises(InvalidScope) as excinfo:
        call(badge, name, from_request)
    message = str(excinfo.value)
    assert message.startswith(
        f"Invalid scope False for Badge.{name} (scoped.{label}): False reads through "
        f"{label}._base_manager, which scopes= does not name. "
    )
    assert message.endswith(
        f"A scope is None, True, the name of a scope Badge.{name} allows ('objects'), "
        f"a list of those names, or a QuerySet of {label}."
    )
    after = memory_state(badge)
    after["attrs"].pop("_prefetched_objects_cache", None)  # Django's, before it asks the field
    assert after == before


@pytest.mark.parametrize(
    ("name", "factory"),
    [
        # all_objects is Member's Meta.base_manager_name.
        pytest.param("any_member", MemberFactory, id="names-the-base-manager"),
        # Guest's base manager is Django's plain Manager, as all_objects is: the same rows.
        pytest.param("any_guest", GuestFactory, id="names-a-plain-manager"),
    ],
)
def test_false_is_allowed_where_scopes_names_the_base_manager(
    name: str, factory: Any, django_assert_num_queries: Any
) -> None:
    removed = factory(removed=True)
    badge = fresh(BadgeFactory(**{name: removed}))
    with django_assert_num_queries(1):
        assert get(badge, name, False) == removed


def test_false_on_a_null_key_is_refused_too() -> None:
    badge = fresh(BadgeFactory())
    with pytest.raises(InvalidScope, match=r"Invalid scope False for Badge\.member"):
        badge.get_member(scope=False)


@needs_permanent
def test_false_through_a_base_manager_that_hides_removed_rows(
    permanent: None, django_assert_num_queries: Any
) -> None:
    """Writer's base manager is ``objects`` (django-permanent's Meta): scopes=("objects",)
    names it, so False is accepted, and still hides the removed writer."""
    writer = WriterFactory()
    essay = fresh(EssayFactory(listed_writer=writer))
    writer.delete()
    with django_assert_num_queries(1):
        assert essay.get_listed_writer(scope=False) is None
    with django_assert_num_queries(0), pytest.raises(InvalidScope):
        essay.get_listed_writer(scope="all_objects")
