"""The cases migration creates exactly the tables the models declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from aupguard.cases import models
from aupguard.store.db import Base

OURS = {t.name for t in Base.metadata.sorted_tables
        if t.name in {m.__tablename__ for m in (
            models.CaseRow, models.CaseEventRow, models.EnforcementOrderRow,
            models.MandatoryReportRow, models.StrikeRow, models.CaseEvidenceRow,
            models.LegalHoldRow)}}


def test_migration_matches_models(store):
    assert len(OURS) == 7
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={
            "include_object": lambda obj, name, kind, reflected, compare_to: (
                (obj.table.name if kind in ("column", "index", "foreign_key_constraint",
                                            "unique_constraint") else name) in OURS)})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []
