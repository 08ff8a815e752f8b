"""``python manage.py check_counters [app_label.Model.field ...] [--database]``:
report each target row whose ``counter_cache`` column differs from the number
of owner rows pointing at it, and exit 1 if any does.

Reads in primary-key batches (``--batch-size``), so that it runs on large
tables; writes nothing. ``rebuild_counters`` puts the rows it reports right.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from belongsto_ext.counters import counter_drift

from ._counted import CountedRelationsCommand


class Command(CountedRelationsCommand):
    help = (
        "Reports each target row whose counter_cache column differs from the number of "
        "owner rows pointing at it; exits 1 if any does. Writes nothing."
    )
    verb = "check"

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--batch-size",
            type=int,
            default=2000,
            help="Target rows read per query (default 2000).",
        )

    def handle(self, *labels: str, **options: Any) -> None:
        database, verbosity = options["database"], options["verbosity"]
        if options["batch_size"] < 1:
            raise CommandError(f"--batch-size must be at least 1, not {options['batch_size']}.")
        relations = self.relations(labels, database)
        if not relations and verbosity >= 1:
            self.stdout.write("No relation with counter_cache to check.")
        wrong = 0
        for model, field in relations:
            label = f"{model._meta.label}.{field.name}"
            target = field.related_model._meta.label
            found = 0
            for pk, counter, count in counter_drift(
                model, field.name, using=database, batch_size=options["batch_size"]
            ):
                found += 1
                self.stdout.write(
                    f"{label}: {target} pk={pk!r} has {field.counter_cache}={counter}, "
                    f"but {count} owner row(s)."
                )
            if verbosity >= 1 and not found:
                self.stdout.write(f"{label}: every {field.counter_cache} is right.")
            wrong += found
        if wrong:
            raise CommandError(
                f"{wrong} counter(s) out of step; 'python manage.py rebuild_counters' "
                f"sets them from the owner rows.",
                returncode=1,
            )
