"""policy: posted versions and acceptance ledger

Revision ID: policy_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from aupguard.store.types import UTCDateTime

revision = "policy_0001"
down_revision = None
branch_labels = ("policy",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_versions",
        sa.Column("version", sa.String(50), primary_key=True),
        sa.Column("posted_at", UTCDateTime, nullable=False),
        sa.Column("posted_by", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("clauses", sa.JSON, nullable=False),
    )
    op.create_index("ix_policy_versions_posted_at", "policy_versions", ["posted_at"])
    op.create_table(
        "policy_acceptance",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("version", sa.String(50), nullable=False),
        sa.Column("accepted_at", UTCDateTime, nullable=False),
        sa.Column("activity", sa.String(50), nullable=False),
        sa.UniqueConstraint("client_id", "version", name="uq_acceptance_client_version"),
    )
    op.create_index("ix_policy_acceptance_client_id", "policy_acceptance", ["client_id"])


def downgrade() -> None:
    op.drop_table("policy_acceptance")
    op.drop_table("policy_versions")
