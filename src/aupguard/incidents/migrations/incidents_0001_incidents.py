"""incidents: incidents table

Revision ID: incidents_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from aupguard.store.types import UTCDateTime

revision = "incidents_0001"
down_revision = None
branch_labels = ("incidents",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("clause_id", sa.String(100), nullable=False),
        sa.Column("key", sa.String(500), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=True),
        sa.Column("offender", sa.String(200), nullable=False, server_default=""),
        sa.Column("victim", sa.String(200), nullable=False, server_default=""),
        sa.Column("summary", sa.Text, nullable=False, server_default=""),
        sa.Column("first_seen", UTCDateTime, nullable=False),
        sa.Column("last_seen", UTCDateTime, nullable=False),
        sa.Column("peak", sa.Float, nullable=False, server_default="0"),
        sa.Column("observations", sa.Integer, nullable=False, server_default="1"),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("policy_version", sa.String(50), nullable=False, server_default=""),
        sa.Column("case_id", sa.BigInteger, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_incidents_key", "incidents", ["key"])
    op.create_index("ix_incidents_client_id", "incidents", ["client_id"])
    op.create_index("ix_incidents_case_id", "incidents", ["case_id"])
    op.create_index("ix_incidents_last_seen", "incidents", ["last_seen"])


def downgrade() -> None:
    op.drop_table("incidents")
