"""``python manage.py rebuild_counters [app_label.Model.field ...]``: set the
``counter_cache`` columns of BelongsTo relations from the owner rows.

The database keeps the counters with triggers; this is for adopting a table
that already has rows, or after raw SQL that bypassed the triggers. One UPDATE
per relation, through :func:`belongsto_ext.rebuild_counters`.
"""

from __future__ import annotations

from typing import Any

from belongsto_ext.counters import rebuild_counters

from ._counted import CountedRelationsCommand


class Command(CountedRelationsCommand):
    help = (
        "Sets the counter_cache columns of BelongsTo relations from the owner rows: each "
        "target row gets the number of owner rows pointing at it (zero for none), one "
        "UPDATE per relation."
    )
    verb = "rebuild"

    def handle(self, *labels: str, **options: Any) -> None:
        database, verbosity = options["database"], options["verbosity"]
        relations = self.relations(labels, database)
        if not relations and verbosity >= 1:
            self.stdout.write("No relation with counter_cache to rebuild.")
        for model, field in relations:
            updated = rebuild_counters(model, field.name, using=database)
            if verbosity >= 1:
                target = field.related_model._meta.label
                self.stdout.write(
                    f"Rebuilt {model._meta.label}.{field.name}: {updated} {target} "
                    f"row(s) updated ({field.counter_cache})."
                )
