"""detect: threat-feed entries and mitigations

Revision ID: detect_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from aupguard.store.types import UTCDateTime

revision = "detect_0001"
down_revision = None
branch_labels = ("detect",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "detect_feed_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("feed", sa.String(100), nullable=False),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("prefix", sa.String(60), nullable=False),
        sa.Column("label", sa.String(300), nullable=False, server_default=""),
        sa.Column("loaded_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("feed", "prefix", name="uq_detect_feed_entries_feed_prefix"),
    )
    op.create_index("ix_detect_feed_entries_feed", "detect_feed_entries", ["feed"])
    op.create_table(
        "detect_mitigations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("incident_id", sa.BigInteger, nullable=True),
        sa.Column("rule", sa.String(100), nullable=False, server_default=""),
        sa.Column("client_id", sa.String(100), nullable=True),
        sa.Column("prefix", sa.String(60), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("route", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("announced_at", UTCDateTime, nullable=True),
        sa.Column("withdrawn_at", UTCDateTime, nullable=True),
        sa.Column("last_attack_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_detect_mitigations_incident_id", "detect_mitigations", ["incident_id"])
    op.create_index("ix_detect_mitigations_prefix", "detect_mitigations", ["prefix"])
    op.create_index("ix_detect_mitigations_status", "detect_mitigations", ["status"])


def downgrade() -> None:
    op.drop_table("detect_mitigations")
    op.drop_table("detect_feed_entries")
