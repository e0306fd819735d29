"""reputation: DNSBL listings and runs, SMTP probes

Revision ID: reputation_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from aupguard.store.types import UTCDateTime

revision = "reputation_0001"
down_revision = None
branch_labels = ("reputation",)
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "dnsbl_listings",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("zone", sa.String(255), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=True),
        sa.Column("codes", sa.JSON, nullable=False),
        sa.Column("meanings", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="listed"),
        sa.Column("listed_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.Column("delisted_at", UTCDateTime, nullable=True),
        sa.Column("incident_id", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_dnsbl_listings_address", "dnsbl_listings", ["address"])
    op.create_index("ix_dnsbl_listings_client_id", "dnsbl_listings", ["client_id"])
    op.create_index("ix_dnsbl_listings_status", "dnsbl_listings", ["status", "zone"])
    op.create_table(
        "dnsbl_runs",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=False),
        sa.Column("client_id", sa.String(100), nullable=True),
        sa.Column("zones", sa.JSON, nullable=False),
        sa.Column("addresses", sa.Integer, nullable=False, server_default="0"),
        sa.Column("queries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("listed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("new_listings", sa.Integer, nullable=False, server_default="0"),
        sa.Column("delistings", sa.Integer, nullable=False, server_default="0"),
        sa.Column("errors", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error_samples", sa.JSON, nullable=False),
    )
    op.create_table(
        "smtp_probes",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("client_id", sa.String(100), nullable=True),
        sa.Column("verdict", sa.String(30), nullable=False),
        sa.Column("auth_offered", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("auth_required", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("accepted_variants", sa.JSON, nullable=False),
        sa.Column("transcript", sa.Text, nullable=False, server_default=""),
        sa.Column("incident_ids", sa.JSON, nullable=False),
    )
    op.create_index("ix_smtp_probes_host", "smtp_probes", ["host"])
    op.create_index("ix_smtp_probes_client_id", "smtp_probes", ["client_id"])


def downgrade() -> None:
    op.drop_table("smtp_probes")
    op.drop_table("dnsbl_runs")
    op.drop_table("dnsbl_listings")
