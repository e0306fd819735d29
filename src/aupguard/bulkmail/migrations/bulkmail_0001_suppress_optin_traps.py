"""bulkmail: suppressions, opt-in records and requests, trap hits, client indicators

Revision ID: bulkmail_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from aupguard.store.types import UTCDateTime

revision = "bulkmail_0001"
down_revision = None
branch_labels = ("bulkmail",)
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("scope", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("value", sa.String(320), nullable=False),
        sa.Column("hashed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("source", sa.String(30), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("suppressed_at", UTCDateTime, nullable=False),
        sa.Column("suppressed_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("scope", "kind", "value", name="uq_suppressions_entry"),
    )
    op.create_table(
        "optin_records",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("subscribed_at", UTCDateTime, nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.Column("confirmed_at", UTCDateTime, nullable=True),
        sa.Column("confirm_from", sa.String(400), nullable=False, server_default=""),
        sa.Column("confirm_headers", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("imported_at", UTCDateTime, nullable=False),
        sa.Column("batch", sa.String(100), nullable=False, server_default=""),
    )
    op.create_index("ix_optin_records_client_id", "optin_records", ["client_id"])
    op.create_index("ix_optin_records_address", "optin_records", ["address"])
    op.create_table(
        "optin_requests",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("requested_at", UTCDateTime, nullable=False),
        sa.Column("deadline", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="open"),
        sa.Column("answered_at", UTCDateTime, nullable=True),
        sa.Column("answer", sa.Text, nullable=False, server_default=""),
        sa.Column("outcome", sa.String(20), nullable=False, server_default=""),
        sa.Column("ref", sa.String(200), nullable=False, server_default=""),
        sa.Column("incident_id", sa.BigInteger, nullable=True),
        sa.Column("outbox_id", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_optin_requests_client_id", "optin_requests", ["client_id"])
    op.create_table(
        "trap_hits",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("trap_address", sa.String(320), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("source", sa.String(30), nullable=False),
        sa.Column("offender", sa.String(200), nullable=False, server_default=""),
        sa.Column("ref", sa.String(200), nullable=False, server_default=""),
        sa.Column("incident_id", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_trap_hits_client_id", "trap_hits", ["client_id"])
    op.create_table(
        "client_indicators",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("indicator", sa.String(50), nullable=False),
        sa.Column("count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("first_at", UTCDateTime, nullable=False),
        sa.Column("last_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("client_id", "indicator", name="uq_client_indicator"),
    )


def downgrade() -> None:
    for table in ("client_indicators", "trap_hits", "optin_requests", "optin_records", "suppressions"):
        op.drop_table(table)
