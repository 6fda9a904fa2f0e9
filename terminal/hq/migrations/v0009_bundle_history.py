"""Version 9: the rules studio's release history (``bundle_release``, every bundle pushed, who
authored and approved it, its backtest), its policy, the bundle refusals terminals report
(``bundle_refusal``) and the versions each terminal holds per scope (``terminal_seen.bundles``)."""

from __future__ import annotations

from peewee import Database
from playhouse.migrate import PostgresqlMigrator, SchemaMigrator, SqliteMigrator, migrate

from terminal.hq.models import BundleRefusal, TerminalSeen
from terminal.hq.rules_studio.models import STUDIO_MODELS
from terminal.loyalty.store.binding import bound


def _add(db: Database, migrator: SchemaMigrator) -> None:
    table = TerminalSeen._meta.table_name
    if "bundles" not in {column.name for column in db.get_columns(table)}:
        migrate(migrator.add_column(table, "bundles", TerminalSeen.bundles))
    models = [BundleRefusal, *STUDIO_MODELS]
    with bound(db, models):
        db.create_tables(models, safe=True)


def sqlite(db: Database) -> None:
    _add(db, SqliteMigrator(db))


def postgresql(db: Database) -> None:
    _add(db, PostgresqlMigrator(db))
