"""registry: clients and address assignments

Revision ID: registry_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from aupguard.store.types import UTCDateTime

revision = "registry_0001"
down_revision = None
branch_labels = ("registry",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("parent_id", sa.String(100), nullable=True),
        sa.Column("abuse_email", sa.String(300), nullable=False, server_default=""),
        sa.Column("escalation_email", sa.String(300), nullable=False, server_default=""),
        sa.Column("emails", sa.JSON, nullable=False),
        sa.Column("cdr_bps", sa.BigInteger, nullable=True),
        sa.Column("contract_start", UTCDateTime, nullable=True),
        sa.Column("contract_end", UTCDateTime, nullable=True),
        sa.Column("mail_servers", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_clients_parent_id", "clients", ["parent_id"])
    op.create_table(
        "assignments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("client_id", sa.String(100), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("prefix", sa.String(60), nullable=False),
        sa.Column("valid_from", UTCDateTime, nullable=True),
        sa.Column("valid_to", UTCDateTime, nullable=True),
        sa.Column("port_lo", sa.Integer, nullable=True),
        sa.Column("port_hi", sa.Integer, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_assignments_client_id", "assignments", ["client_id"])
    op.create_index("ix_assignments_prefix", "assignments", ["prefix"])


def downgrade() -> None:
    op.drop_table("assignments")
    op.drop_table("clients")
