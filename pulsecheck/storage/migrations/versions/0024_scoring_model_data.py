"""scoring model data: each stored model version's parsed form beside its text

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-01

Every read of the approved model (`report portfolio`, `model show`, scorecards, the live portfolio) parsed its YAML
text with the line-numbering loader and checked it again: a tenth of `report portfolio`'s start-up (issue 17).
`scoring_models.model_data` holds the text's sha256 and `ScoringModel.as_data()` as JSON, written at approval; a
read takes the model from it when it is of the row's text and its digest is the version's `sha256` (which the audit
chain records), else parses `content` as before.

The upgrade fills the column for the versions already stored, with the parser of the code that runs it; a version
its text no longer parses for stays NULL and is parsed on each read, as before.
"""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scoring_models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_data", sa.Text(), nullable=True))
    from pulsecheck.errors import InputError
    from pulsecheck.scoring.schema import parse_model

    models = sa.table("scoring_models", sa.column("id", sa.Integer), sa.column("content", sa.Text),
                      sa.column("version", sa.String), sa.column("model_data", sa.Text))
    connection = op.get_bind()
    for row in connection.execute(sa.select(models.c.id, models.c.content, models.c.version)).all():
        try:
            model = parse_model(row.content, f"model {row.version}")
        except InputError:  # stored before a check it fails was written: parsed on each read, as before
            continue
        text_sha256 = hashlib.sha256(row.content.encode("utf-8")).hexdigest()
        data = json.dumps({"text": text_sha256, "model": model.as_data()}, separators=(",", ":"))
        connection.execute(sa.update(models).where(models.c.id == row.id).values(model_data=data))


def downgrade() -> None:
    with op.batch_alter_table("scoring_models", schema=None) as batch_op:
        batch_op.drop_column("model_data")
