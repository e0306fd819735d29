"""cases: cases, timeline, enforcement orders, mandatory reports, strikes, evidence links, holds

Revision ID: cases_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from aupguard.store.types import UTCDateTime

revision = "cases_0001"
down_revision = None
branch_labels = ("cases",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", ID, primary_key=True),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("clause_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="open"),
        sa.Column("owner", sa.String(200), nullable=False, server_default=""),
        sa.Column("priority", sa.String(10), nullable=False, server_default="normal"),
        sa.Column("title", sa.String(500), nullable=False, server_default=""),
        sa.Column("restricted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("opened_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("first_seen", UTCDateTime, nullable=False),
        sa.Column("last_seen", UTCDateTime, nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=True),
        sa.Column("ladder_step", sa.Integer, nullable=False, server_default="-1"),
        sa.Column("last_notice_at", UTCDateTime, nullable=True),
        sa.Column("last_reply_at", UTCDateTime, nullable=True),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.Column("merged_into", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_cases_client_id", "cases", ["client_id"])
    op.create_index("ix_cases_clause_id", "cases", ["clause_id"])
    op.create_index("ix_cases_status", "cases", ["status"])

    op.create_table(
        "case_events",
        sa.Column("id", ID, primary_key=True),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id", name="fk_case_events_case_id_cases"),
                  nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_case_events_case_id", "case_events", ["case_id"])

    op.create_table(
        "enforcement_orders",
        sa.Column("id", ID, primary_key=True),
        sa.Column("case_id", ID,
                  sa.ForeignKey("cases.id", name="fk_enforcement_orders_case_id_cases"),
                  nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.Column("issued_by", sa.String(200), nullable=False),
        sa.Column("lifted_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_enforcement_orders_case_id", "enforcement_orders", ["case_id"])
    op.create_index("ix_enforcement_orders_client_id", "enforcement_orders", ["client_id"])

    op.create_table(
        "mandatory_reports",
        sa.Column("id", ID, primary_key=True),
        sa.Column("case_id", ID,
                  sa.ForeignKey("cases.id", name="fk_mandatory_reports_case_id_cases"),
                  nullable=False),
        sa.Column("authority", sa.String(200), nullable=False),
        sa.Column("report_id", sa.String(200), nullable=False),
        sa.Column("reported_at", UTCDateTime, nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_mandatory_reports_case_id", "mandatory_reports", ["case_id"])

    op.create_table(
        "strikes",
        sa.Column("id", ID, primary_key=True),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("case_id", sa.BigInteger, nullable=False),
        sa.Column("incident_id", sa.BigInteger, nullable=True),
        sa.Column("clause_id", sa.String(100), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("reference", sa.String(500), nullable=False, server_default=""),
        sa.Column("withdrawn_at", UTCDateTime, nullable=True),
        sa.Column("withdrawn_reason", sa.Text, nullable=False, server_default=""),
        sa.UniqueConstraint("incident_id", name="uq_strikes_incident_id"),
    )
    op.create_index("ix_strikes_client_id", "strikes", ["client_id"])

    op.create_table(
        "case_evidence",
        sa.Column("id", ID, primary_key=True),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id", name="fk_case_evidence_case_id_cases"),
                  nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("incident_id", sa.BigInteger, nullable=True),
        sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("added_at", UTCDateTime, nullable=False),
        sa.Column("added_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_case_evidence_case_id", "case_evidence", ["case_id"])
    op.create_index("ix_case_evidence_sha256", "case_evidence", ["sha256"])

    op.create_table(
        "legal_holds",
        sa.Column("id", ID, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("case_id", sa.BigInteger, nullable=True),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("start", UTCDateTime, nullable=False),
        sa.Column("until", UTCDateTime, nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_legal_holds_sha256", "legal_holds", ["sha256"])
    op.create_index("ix_legal_holds_case_id", "legal_holds", ["case_id"])


def downgrade() -> None:
    for table in ("legal_holds", "case_evidence", "strikes", "mandatory_reports",
                  "enforcement_orders", "case_events", "cases"):
        op.drop_table(table)
