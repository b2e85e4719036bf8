"""E-mail bot: mailbox bookkeeping, messages in and out, drafts for approval.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_mailboxes",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "source", name=op.f("pk_email_mailboxes")),
    )
    op.create_table(
        "email_messages",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("uid", sa.BigInteger(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=500), nullable=False),
        sa.Column("message_id", sa.String(length=500), nullable=True),
        sa.Column("in_reply_to", sa.String(length=500), nullable=True),
        sa.Column("thread_refs", sa.JSON(), nullable=False),
        sa.Column("from_address", sa.String(length=320), nullable=True),
        sa.Column("to_addresses", sa.JSON(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("conversation_id", sa.String(length=128), nullable=True),
        sa.Column("answers_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("intent", sa.String(length=100), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_email_messages_conversation_id_conversations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_messages")),
    )
    op.create_index(
        op.f("ix_email_messages_conversation_id"), "email_messages", ["conversation_id"], unique=False
    )
    op.create_index(
        op.f("ix_email_messages_tenant_id_direction_dedupe_key"),
        "email_messages",
        ["tenant_id", "direction", "dedupe_key"],
        unique=True,
    )
    op.create_index(
        op.f("ix_email_messages_tenant_id_direction_status"),
        "email_messages",
        ["tenant_id", "direction", "status"],
        unique=False,
    )
    op.create_index(
        op.f("ix_email_messages_tenant_id_from_address_received_at"),
        "email_messages",
        ["tenant_id", "from_address", "received_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_email_messages_tenant_id_message_id"),
        "email_messages",
        ["tenant_id", "message_id"],
        unique=False,
    )

    op.create_table(
        "email_drafts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("conversation_id", sa.String(length=128), nullable=True),
        sa.Column("to_address", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("proposed_text", sa.Text(), nullable=False),
        sa.Column("final_text", sa.Text(), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("intent", sa.String(length=100), nullable=True),
        sa.Column("customer", sa.JSON(), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reply_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_email_drafts_conversation_id_conversations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["email_messages.id"],
            name=op.f("fk_email_drafts_message_id_email_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_drafts")),
        sa.UniqueConstraint("message_id", name=op.f("uq_email_drafts_message_id")),
    )
    op.create_index(
        op.f("ix_email_drafts_tenant_id_status_created_at"),
        "email_drafts",
        ["tenant_id", "status", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_email_drafts_tenant_id_status_created_at"), table_name="email_drafts")

    op.drop_table("email_drafts")
    op.drop_index(op.f("ix_email_messages_tenant_id_message_id"), table_name="email_messages")
    op.drop_index(op.f("ix_email_messages_tenant_id_from_address_received_at"), table_name="email_messages")
    op.drop_index(op.f("ix_email_messages_tenant_id_direction_status"), table_name="email_messages")
    op.drop_index(op.f("ix_email_messages_tenant_id_direction_dedupe_key"), table_name="email_messages")
    op.drop_index(op.f("ix_email_messages_conversation_id"), table_name="email_messages")

    op.drop_table("email_messages")
    op.drop_table("email_mailboxes")
