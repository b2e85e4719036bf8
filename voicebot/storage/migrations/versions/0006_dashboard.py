"""Dashboard figures on conversations: the main intent, the handoff reason, when it ended, how long
the bot handled it, who the customer is (for repeat contacts) and whether they came back; an index
for per-action audit look-ups (the voice latency of each turn).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("intent", "handoff_reason", "ended_at", "handle_ms", "contact_key", "came_back")


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("intent", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("handoff_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("handle_ms", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("contact_key", sa.String(length=330), nullable=True))
        batch_op.add_column(sa.Column("came_back", sa.Boolean(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_conversations_tenant_id_contact_key_created_at"),
            ["tenant_id", "contact_key", "created_at"],
            unique=False,
        )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_log_tenant_id_action_at"), ["tenant_id", "action", "at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_tenant_id_action_at"))
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversations_tenant_id_contact_key_created_at"))
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
