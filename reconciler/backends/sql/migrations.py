"""The SQL registry's tables, as versioned migrations; entry N brings the schema to version N+1.

Append only: a registry records the versions it ran, and a newer reconciler migrates an
older registry by running the entries it has not run yet.
"""

from __future__ import annotations

# The version whose migration gives `schema_snapshots` its current shape (snapshots.py): a
# registry created by an older reconciler and opened read-only (not migrated) has no such
# table, or one without its `registry` column.
SCHEMA_SNAPSHOTS_VERSION = 6


def migrations(types: dict[str, str]) -> list[list[str]]:
    """Versioned migrations; entry N brings the schema to version N+1. Append only."""
    t = types
    # One observation of a source's columns (schema_snapshots, created then rebuilt keyed by
    # registry in a later version).
    snapshot_columns = f"""
                name_key TEXT NOT NULL,
                seq INTEGER NOT NULL,
                name TEXT NOT NULL,
                observed_at {t["time"]} NOT NULL,
                hash TEXT NOT NULL,
                columns {t["json"]} NOT NULL,
                accepted_at {t["time"]},
                accepted_by TEXT NOT NULL DEFAULT '',"""
    return [
        [
            f"""CREATE TABLE sources (
                id {t["uuid"]} PRIMARY KEY,
                name TEXT NOT NULL,
                source_type TEXT NOT NULL,
                connection {t["json"]} NOT NULL,
                description TEXT NOT NULL DEFAULT '',
                tags {t["json"]} NOT NULL,
                registered_by TEXT NOT NULL,
                registered_at {t["time"]} NOT NULL,
                status TEXT NOT NULL DEFAULT 'active',
                managed_by TEXT,
                version INTEGER NOT NULL DEFAULT 1,
                last_applied {t["json"]},
                updated_at {t["time"]} NOT NULL
            )""",
            "CREATE UNIQUE INDEX sources_name_key ON sources (lower(name))",
            "CREATE INDEX sources_managed_by ON sources (managed_by)",
            f"""CREATE TABLE runs (
                id {t["uuid"]} PRIMARY KEY,
                owner TEXT NOT NULL,
                actor TEXT NOT NULL,
                started_at {t["time"]} NOT NULL,
                finished_at {t["time"]},
                created INTEGER NOT NULL DEFAULT 0,
                updated INTEGER NOT NULL DEFAULT 0,
                deleted INTEGER NOT NULL DEFAULT 0,
                outcome TEXT NOT NULL,
                message TEXT NOT NULL DEFAULT ''
            )""",
        ],
        [
            # Keyed fingerprints of applied secrets; the key lives in registry_meta.
            f"ALTER TABLE sources ADD COLUMN fingerprints {t['json']}",
            "CREATE TABLE registry_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            # What each owner applied, so a record deleted outside git is recognised as such.
            f"""CREATE TABLE applied_sources (
                owner TEXT NOT NULL,
                name_key TEXT NOT NULL,
                record_id TEXT NOT NULL,
                applied_at {t["time"]} NOT NULL,
                PRIMARY KEY (owner, name_key)
            )""",
        ],
        [
            # A state store for registries reached over an API (backends/http.py): the API
            # has no field for ownership, last-applied state or fingerprints, so they live
            # here, per registry URL and record id. A row outlives an out-of-band delete of
            # its record, which is how such a delete is told apart from a new source.
            f"""CREATE TABLE remote_records (
                registry TEXT NOT NULL,
                record_id TEXT NOT NULL,
                owner TEXT NOT NULL,
                name_key TEXT NOT NULL,
                last_applied {t["json"]} NOT NULL,
                fingerprints {t["json"]} NOT NULL,
                applied_at {t["time"]} NOT NULL,
                PRIMARY KEY (registry, record_id)
            )""",
            "CREATE INDEX remote_records_owner ON remote_records (registry, owner, name_key)",
            # Which registry a run was for when one state store serves several ('' = this
            # database's own), and how many records it replaced (delete, then register).
            "ALTER TABLE runs ADD COLUMN replaced INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE runs ADD COLUMN registry TEXT NOT NULL DEFAULT ''",
        ],
        [
            # The observed schema of each source, one row per distinct observation
            # (backends/snapshots.py). `seq` orders a source's history without relying on
            # clocks; a row with accepted_at is a baseline that later runs compare against.
            f"""CREATE TABLE schema_snapshots ({snapshot_columns}
                PRIMARY KEY (name_key, seq)
            )""",
        ],
        # Any UPDATE of a source that does not move its version (a UI or a script writing
        # the table) moves it here, in the database: a plan made before such an edit is
        # stale, and the reconciler's `WHERE version = ?` refuses to overwrite it.
        _VERSION_TRIGGER.get(t.get("dialect", ""), _VERSION_TRIGGER[""]),
        [
            # Which registry a snapshot is of when one state store serves several API
            # registries ('' = this database's own), as for runs: rebuilt, since the key
            # changes.
            f"""CREATE TABLE schema_snapshots_by_registry (
                registry TEXT NOT NULL DEFAULT '',{snapshot_columns}
                PRIMARY KEY (registry, name_key, seq)
            )""",
            "INSERT INTO schema_snapshots_by_registry (registry, name_key, seq, name, "
            "observed_at, hash, columns, accepted_at, accepted_by) SELECT '', name_key, seq, "
            "name, observed_at, hash, columns, accepted_at, accepted_by FROM schema_snapshots",
            "DROP TABLE schema_snapshots",
            "ALTER TABLE schema_snapshots_by_registry RENAME TO schema_snapshots",
        ],
        [
            # Content-addressed planning (planning/fast_plan.py): the digest of the manifest
            # document a row was applied from, the secret references it was applied with
            # (and their fingerprints), and the row's version right after that write. A row
            # whose version still equals applied_version was not touched since (the trigger
            # above moves version on any other UPDATE), so an unchanged document needs no diff.
            "ALTER TABLE sources ADD COLUMN source_digest TEXT",
            "ALTER TABLE sources ADD COLUMN secret_refs TEXT",
            "ALTER TABLE sources ADD COLUMN applied_version INTEGER",
        ],
    ]


_VERSION_TRIGGER = {
    "": [
        """CREATE TRIGGER sources_version AFTER UPDATE ON sources FOR EACH ROW
           WHEN NEW.version IS OLD.version
           BEGIN UPDATE sources SET version = OLD.version + 1 WHERE id = NEW.id; END""",
    ],
    "postgresql": [
        """CREATE OR REPLACE FUNCTION reconciler_sources_version() RETURNS trigger AS $$
           BEGIN
               IF NEW.version IS NOT DISTINCT FROM OLD.version THEN
                   NEW.version := OLD.version + 1;
               END IF;
               RETURN NEW;
           END $$ LANGUAGE plpgsql""",
        """CREATE TRIGGER sources_version BEFORE UPDATE ON sources FOR EACH ROW
           EXECUTE FUNCTION reconciler_sources_version()""",
    ],
}
