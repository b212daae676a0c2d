// Versioned schema migrations of the library database. Each migration runs once, in
// order, inside one transaction; PRAGMA user_version records how far a library is.

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'devices, locations, entries with closure table, content identities, tags, audit log, jobs, search',
    sql: `
      CREATE TABLE devices (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        slug        TEXT NOT NULL UNIQUE,
        public_key  TEXT,
        is_local    INTEGER NOT NULL DEFAULT 0,
        created_at  INTEGER NOT NULL,
        last_seen   INTEGER
      );

      CREATE TABLE locations (
        id              INTEGER PRIMARY KEY,
        device_id       TEXT NOT NULL REFERENCES devices(id),
        name            TEXT NOT NULL,
        root_path       TEXT NOT NULL,
        index_mode      TEXT NOT NULL CHECK (index_mode IN ('shallow', 'content', 'deep')),
        include_hidden  INTEGER NOT NULL DEFAULT 1,
        ignore_rules    TEXT NOT NULL DEFAULT '[]',
        root_entry_id   INTEGER,
        created_at      INTEGER NOT NULL,
        last_indexed_at INTEGER,
        UNIQUE (device_id, name),
        UNIQUE (device_id, root_path)
      );

      CREATE TABLE entries (
        id              INTEGER PRIMARY KEY,
        device_id       TEXT NOT NULL,
        location_id     INTEGER NOT NULL REFERENCES locations(id),
        parent_id       INTEGER,
        name            TEXT NOT NULL,
        kind            TEXT NOT NULL CHECK (kind IN ('file', 'dir', 'symlink')),
        size            INTEGER NOT NULL DEFAULT 0,
        mtime           REAL NOT NULL DEFAULT 0,
        inode           INTEGER NOT NULL DEFAULT 0,
        mode            INTEGER NOT NULL DEFAULT 0,
        content_id      TEXT,
        aggregate_size  INTEGER NOT NULL DEFAULT 0
      );
      CREATE UNIQUE INDEX entries_by_parent_name ON entries (parent_id, name);
      CREATE INDEX entries_by_inode ON entries (location_id, inode);
      CREATE INDEX entries_by_content ON entries (content_id) WHERE content_id IS NOT NULL;

      CREATE TABLE entry_closure (
        ancestor    INTEGER NOT NULL,
        descendant  INTEGER NOT NULL,
        depth       INTEGER NOT NULL,
        PRIMARY KEY (ancestor, descendant)
      ) WITHOUT ROWID;
      CREATE INDEX entry_closure_by_descendant ON entry_closure (descendant, depth);

      CREATE TABLE content_identities (
        id            TEXT PRIMARY KEY,
        size          INTEGER NOT NULL,
        sampled_hash  TEXT NOT NULL,
        full_hash     TEXT,
        first_seen    INTEGER NOT NULL
      );

      CREATE TABLE tags (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL
      );
      CREATE TABLE entry_tags (
        entry_id  INTEGER NOT NULL,
        tag_id    INTEGER NOT NULL,
        PRIMARY KEY (entry_id, tag_id)
      ) WITHOUT ROWID;
      CREATE TABLE user_metadata (
        entry_id  INTEGER NOT NULL,
        key       TEXT NOT NULL,
        value     TEXT,
        hlc       TEXT NOT NULL,
        PRIMARY KEY (entry_id, key)
      ) WITHOUT ROWID;

      CREATE TABLE audit_log (
        id       INTEGER PRIMARY KEY,
        at       INTEGER NOT NULL,
        actor    TEXT NOT NULL,
        action   TEXT NOT NULL,
        status   TEXT NOT NULL,
        target   TEXT,
        details  TEXT
      );

      CREATE TABLE jobs (
        id          INTEGER PRIMARY KEY,
        kind        TEXT NOT NULL,
        status      TEXT NOT NULL,
        payload     TEXT NOT NULL,
        progress    TEXT,
        error       TEXT,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
      );

      CREATE VIRTUAL TABLE search USING fts5 (
        name, content = 'entries', content_rowid = 'id', tokenize = 'unicode61', prefix = '2 3'
      );
      CREATE TRIGGER entries_search_insert AFTER INSERT ON entries BEGIN
        INSERT INTO search (rowid, name) VALUES (new.id, new.name);
      END;
      CREATE TRIGGER entries_search_delete AFTER DELETE ON entries BEGIN
        INSERT INTO search (search, rowid, name) VALUES ('delete', old.id, old.name);
      END;
      CREATE TRIGGER entries_search_rename AFTER UPDATE OF name ON entries BEGIN
        INSERT INTO search (search, rowid, name) VALUES ('delete', old.id, old.name);
        INSERT INTO search (rowid, name) VALUES (new.id, new.name);
      END;
    `,
  },
];
