"""Outbound campaigns: every attempt on record (plan, dial, lease, outcome, transcript), consent and
the structured result per contact, the pacing slot per campaign.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("paced_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("campaign_contacts", sa.Column("consent", sa.Boolean(), nullable=True))
    op.add_column("campaign_contacts", sa.Column("result", sa.JSON(), nullable=True))
    op.create_table(
        "campaign_attempts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("call_id", sa.String(length=200), nullable=True),
        sa.Column("conversation_id", sa.String(length=32), nullable=True),
        sa.Column("transcript", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_attempts_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["campaign_contacts.id"],
            name=op.f("fk_campaign_attempts_contact_id_campaign_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_attempts")),
    )
    op.create_index(
        op.f("ix_campaign_attempts_contact_id_attempt"),
        "campaign_attempts",
        ["contact_id", "attempt"],
        unique=True,
    )
    op.create_index(
        op.f("ix_campaign_attempts_campaign_id_ended_at"),
        "campaign_attempts",
        ["campaign_id", "ended_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_campaign_attempts_campaign_id_ended_at"), table_name="campaign_attempts")
    op.drop_index(op.f("ix_campaign_attempts_contact_id_attempt"), table_name="campaign_attempts")
    op.drop_table("campaign_attempts")
    with op.batch_alter_table("campaign_contacts") as batch:
        batch.drop_column("result")
        batch.drop_column("consent")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("paced_until")
