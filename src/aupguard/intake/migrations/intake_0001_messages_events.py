"""intake: messages and events

Revision ID: intake_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from aupguard.store.types import UTCDateTime

revision = "intake_0001"
down_revision = None
branch_labels = ("intake",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "intake_messages",
        sa.Column("id", ID, primary_key=True),
        sa.Column("reference", sa.String(40), nullable=False, unique=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("raw_ref", sa.String(300), nullable=False),
        sa.Column("size", sa.Integer, nullable=False, server_default="0"),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("source", sa.String(30), nullable=False, server_default="smtp"),
        sa.Column("reporter", sa.String(254), nullable=False, server_default=""),
        sa.Column("message_id", sa.String(500), nullable=False, server_default=""),
        sa.Column("subject", sa.String(1000), nullable=False, server_default=""),
        sa.Column("parser", sa.String(40), nullable=False, server_default=""),
        sa.Column("status", sa.String(20), nullable=False, server_default="parsed"),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("trust", sa.Integer, nullable=False, server_default="50"),
        sa.Column("event_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("duplicate_of", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_intake_messages_sha256", "intake_messages", ["sha256"])
    op.create_index("ix_intake_messages_content_hash", "intake_messages", ["content_hash"])
    op.create_index("ix_intake_messages_received_at", "intake_messages", ["received_at"])
    op.create_index("ix_intake_messages_reporter", "intake_messages", ["reporter"])
    op.create_table(
        "intake_events",
        sa.Column("id", ID, primary_key=True),
        sa.Column("message_id", sa.BigInteger, nullable=False),
        sa.Column("ip", sa.String(45), nullable=True),
        sa.Column("port", sa.Integer, nullable=True),
        sa.Column("time", UTCDateTime, nullable=True),
        sa.Column("time_uncertainty", sa.Integer, nullable=False, server_default="0"),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("clause_id", sa.String(100), nullable=False),
        sa.Column("parser", sa.String(40), nullable=False),
        sa.Column("reporter", sa.String(254), nullable=False, server_default=""),
        sa.Column("url", sa.Text, nullable=False, server_default=""),
        sa.Column("domain", sa.String(255), nullable=False, server_default=""),
        sa.Column("excerpt", sa.Text, nullable=False, server_default=""),
        sa.Column("extra", sa.JSON, nullable=False),
        sa.Column("client_id", sa.String(100), nullable=True),
        sa.Column("reseller_chain", sa.JSON, nullable=False),
        sa.Column("candidates", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("review_reason", sa.String(200), nullable=False, server_default=""),
        sa.Column("incident_id", sa.BigInteger, nullable=True),
        sa.Column("duplicate_of", sa.BigInteger, nullable=True),
        sa.Column("dedupe_key", sa.String(500), nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    for column in ("message_id", "ip", "client_id", "status", "incident_id", "dedupe_key"):
        op.create_index(f"ix_intake_events_{column}", "intake_events", [column])


def downgrade() -> None:
    op.drop_table("intake_events")
    op.drop_table("intake_messages")
