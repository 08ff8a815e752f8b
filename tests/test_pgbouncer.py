"""The suite behind PgBouncer in transaction-pooling mode: the ``postgres-pgbouncer``
leg of ``.ci/run`` (``BELONGSTO_PGBOUNCER=1``, ``.ci/postgres pgbouncer``).

These tests check that the leg is what it says: every alias reaches its server
through a PgBouncer in transaction mode, the standby through one of its own, with
the settings testproject/test_settings.py applies there; that one Django
connection's transactions really do land on different server connections; that
what the project sends survives that (iterator(), server-side binding); and that
no test before test_pgbouncer.py left session state (a SET outside a transaction)
on the pooled server connections for other clients' transactions to run with.
Skipped unless ``BELONGSTO_PGBOUNCER`` is set.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import DatabaseError, connection, connections

from tests import factories
from tests.markers import behind_pgbouncer
from tests.models import Author

pytestmark = behind_pgbouncer


def psycopg_connect(alias: str, dbname: str) -> Any:
    """A psycopg connection in autocommit, to ``dbname`` on the host and port of ``alias``."""
    import psycopg

    settings = connections[alias].settings_dict
    return psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        user=settings["USER"],
        dbname=dbname,
        autocommit=True,
    )


def pgbouncer_config(alias: str) -> dict[str, str]:
    """``SHOW CONFIG`` of the PgBouncer at ``alias``'s host and port (its console, the
    database ``pgbouncer``, fails on a PostgreSQL server)."""
    with psycopg_connect(alias, "pgbouncer") as console:
        rows = console.execute("SHOW CONFIG").fetchall()
    return {str(row[0]): str(row[1]) for row in rows}


@pytest.fixture
def hold_a_server() -> Iterator[Any]:
    """Another client of default's PgBouncer, to take a server connection with
    ``hold()``: it opens a transaction and keeps it, so that server connection
    (PgBouncer hands out the one released last) is busy until the test ends."""
    other = psycopg_connect("default", str(connections["default"].settings_dict["NAME"]))

    def hold() -> int:
        other.execute("BEGIN")
        return int(other.execute("SELECT pg_backend_pid()").fetchone()[0])

    yield hold
    other.execute("ROLLBACK")
    other.close()


def backend_pid(alias: str = "default") -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(databases="__all__")
def test_every_alias_goes_through_pgbouncer_in_transaction_mode() -> None:
    assert set(connections) >= {"default", "replica", "other", "bound"}
    modes = {alias: pgbouncer_config(alias)["pool_mode"] for alias in connections}
    assert modes == dict.fromkeys(connections, "transaction")
    if "standby" in connections:  # (BELONGSTO_REQUIRE_STANDBY makes test_standby.py insist)
        # Through its own PgBouncer, not the primary's, to a server in recovery.
        assert connections["standby"].settings_dict["PORT"] != connection.settings_dict["PORT"]
        with connections["standby"].cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery()")
            assert cursor.fetchone()[0] is True
    # What Django's docs ask for behind a transaction pooler.
    assert {alias: connections[alias].settings_dict["DISABLE_SERVER_SIDE_CURSORS"] for alias in connections} == dict.fromkeys(connections, True)  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_one_connections_transactions_run_on_other_server_connections(
    hold_a_server: Any,
) -> None:
    """Transaction pooling at work: once another client holds the server connection
    default's last statement ran on, default's next one runs on another."""
    first = backend_pid()
    assert hold_a_server() == first
    assert backend_pid() != first


@pytest.mark.django_db(transaction=True)
def test_iterator_outside_a_transaction_with_the_server_connection_changing(
    hold_a_server: Any,
) -> None:
    """iterator() in autocommit reads every row though the server connection changes
    between chunks: with server-side cursors on, the later FETCHes would go to a
    server connection without the cursor."""
    authors = factories.AuthorFactory.create_batch(5)
    seen = []
    for author in Author.all_objects.order_by("pk").iterator(chunk_size=2):
        if not seen:
            hold_a_server()
        seen.append(author.pk)
    assert seen == [author.pk for author in authors]


@pytest.mark.django_db(transaction=True)
def test_a_with_hold_cursor_does_not_survive_transaction_pooling() -> None:
    """Why DISABLE_SERVER_SIDE_CURSORS: a cursor declared WITH HOLD outside a
    transaction (what iterator() would do) is gone from the next server connection."""
    factories.AuthorFactory.create_batch(2)
    other = psycopg_connect("default", str(connection.settings_dict["NAME"]))
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DECLARE held CURSOR WITH HOLD FOR SELECT id FROM {Author._meta.db_table}")  # fmt: skip
            other.execute("BEGIN")  # takes the server connection that has the cursor
            with pytest.raises(DatabaseError, match='cursor "held" does not exist'):
                cursor.execute("FETCH 1 FROM held")
        # The cursor is there, on the server connection the other client holds;
        # closed, lest it stay there for the rest of the run.
        assert other.execute("SELECT name FROM pg_cursors").fetchall() == [("held",)]
        other.execute("CLOSE held")
        other.execute("COMMIT")
    finally:
        other.close()


@pytest.mark.django_db(transaction=True, databases=["default", "bound"])
def test_server_side_binding_with_the_server_connection_changing(hold_a_server: Any) -> None:
    """``bound`` (server-side binding) works behind transaction pooling: psycopg sends
    each statement unnamed, parsed, bound and run in one round trip, with no
    prepared statement (Django's prepare_threshold None) for another server to miss."""
    from psycopg import ServerCursor

    bound = connections["bound"]
    bound.ensure_connection()
    assert bound.connection.cursor_factory.__name__ == "ServerBindingCursor"
    assert bound.connection.prepare_threshold is None
    assert not issubclass(bound.connection.cursor_factory, ServerCursor)
    author = factories.AuthorFactory()
    results = []
    for round_ in range(3):
        with bound.cursor() as cursor:
            cursor.execute(
                f"SELECT id, pg_backend_pid() FROM {Author._meta.db_table} WHERE id = %s",
                [author.pk],
            )
            results.append(cursor.fetchone())
        if round_ == 0:
            hold_a_server()  # default's pool, which bound's statements share
    assert [pk for pk, _ in results] == [author.pk] * 3
    assert results[1][1] != results[0][1]  # the same statement on another server connection


#: What PgBouncer itself SETs on a server connection for each client it lends it to
#: (it tracks these parameters per client), Django's SET TIME ZONE included.
TRACKED = {"client_encoding", "datestyle", "timezone", "standard_conforming_strings"}
TRACKED |= {"application_name", "intervalstyle"}


def idle_server_connections(alias: str, dbname: str) -> int:
    """How many server connections to ``dbname`` the PgBouncer at ``alias``'s host and
    port has idle (``SHOW POOLS``: ``sv_idle``, ``sv_used``, ``sv_tested``)."""
    with psycopg_connect(alias, "pgbouncer") as console:
        cursor = console.execute("SHOW POOLS")
        columns = [column.name for column in cursor.description]
        pools = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    states = ("sv_idle", "sv_used", "sv_tested")
    return sum(
        pool.get(state, 0) for pool in pools if pool["database"] == dbname for state in states
    )


@pytest.mark.django_db(transaction=True)
def test_no_session_state_is_left_on_the_pooled_server_connections() -> None:
    """A SET outside a transaction (SET SESSION CHARACTERISTICS AS TRANSACTION
    ISOLATION LEVEL, SET deadlock_timeout) stays on whichever server connection ran
    it and applies to the transactions of whichever client gets it next, while the
    client that SET it runs its own on others; so does a WITH HOLD cursor left open. No test before this one (in file
    order) may leave any: set it inside the transaction (SET LOCAL, SET TRANSACTION
    ISOLATION LEVEL), or the isolation level with Django's OPTIONS (isolation_level).

    One client per idle server connection of default's pool holds a transaction
    open, so each looks at another server connection."""
    name = str(connections["default"].settings_dict["NAME"])
    clients = [psycopg_connect("default", name) for _ in range(idle_server_connections("default", name) or 1)]  # fmt: skip
    left: dict[int, dict[str, str]] = {}
    try:
        for client in clients:
            client.execute("BEGIN")
            pid = client.execute("SELECT pg_backend_pid()").fetchone()[0]
            rows = client.execute(
                "SELECT name, setting FROM pg_settings WHERE source = 'session'"
                " UNION ALL SELECT 'cursor ' || name, statement FROM pg_cursors"
            ).fetchall()
            settings = {param: value for param, value in rows if param.lower() not in TRACKED}
            if settings:
                left[pid] = settings
    finally:
        for client in clients:
            client.execute("ROLLBACK")
            client.close()
    assert left == {}, (
        f"session state left on pooled server connections (backend pid: state): {left}"
    )
