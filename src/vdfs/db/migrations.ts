// Versioned schema migrations of the library database. Each migration runs once, in
// order, inside one transaction; PRAGMA user_version records how far a library is.
import { EXT_SQL, kindClassSql } from '../kinds.js';

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
      -- inode first: led by location_id, this index lured the planner into sorting a whole
      -- location for every batch of the content phase (identify.ts) instead of walking ids.
      CREATE INDEX entries_by_inode ON entries (inode, location_id);
      CREATE INDEX entries_by_content ON entries (content_id) WHERE content_id IS NOT NULL;

      CREATE TABLE entry_closure (
        ancestor    INTEGER NOT NULL,
        descendant  INTEGER NOT NULL,
        depth       INTEGER NOT NULL,
        PRIMARY KEY (ancestor, descendant)
      ) WITHOUT ROWID;
      -- No index by descendant: the way up follows entries.parent_id (see entries.ts).

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

      -- No prefix indexes and no per-row column sizes: together they were 20 MB of a
      -- 1,000,000-entry library (8%), while "ab"* prefix queries and bm25 ranking measured
      -- as fast without them (FTS5 then walks the term range and tokenises the name).
      CREATE VIRTUAL TABLE search USING fts5 (
        name, content = 'entries', content_rowid = 'id', tokenize = 'unicode61', columnsize = 0
      );
      -- New names are added by EntryStore.insert, not by an insert trigger: a trigger that
      -- writes FTS5 makes every entry insert open a statement savepoint, and FTS5 flushes
      -- its pending terms to a new segment at each savepoint (then merges them): 3x slower.
      CREATE TRIGGER entries_search_delete AFTER DELETE ON entries BEGIN
        INSERT INTO search (search, rowid, name) VALUES ('delete', old.id, old.name);
      END;
      CREATE TRIGGER entries_search_rename AFTER UPDATE OF name ON entries BEGIN
        INSERT INTO search (search, rowid, name) VALUES ('delete', old.id, old.name);
        INSERT INTO search (rowid, name) VALUES (new.id, new.name);
      END;
    `,
  },
  {
    version: 2,
    description: 'jobs: owner, control, actor and their planned items (the journal); audit rows linked to their job',
    sql: `
      -- owner: 'pid:starttime' of the process running the job (NULL when none does);
      -- control: a pause or cancel asked by another process, seen at the next checkpoint.
      ALTER TABLE jobs ADD COLUMN owner TEXT;
      ALTER TABLE jobs ADD COLUMN control TEXT;
      ALTER TABLE jobs ADD COLUMN actor TEXT NOT NULL DEFAULT 'cli';
      CREATE INDEX jobs_by_status ON jobs (status);

      -- One row per step of a job, in the order it runs: what to do (op), from where to
      -- where, and once done what happened (status done|skipped, the final destination).
      CREATE TABLE job_items (
        job_id      INTEGER NOT NULL,
        seq         INTEGER NOT NULL,
        op          TEXT NOT NULL,
        src         TEXT,
        dst         TEXT,
        size        INTEGER NOT NULL DEFAULT 0,
        content_id  TEXT,
        status      TEXT,
        final_dst   TEXT,
        PRIMARY KEY (job_id, seq)
      ) WITHOUT ROWID;

      ALTER TABLE audit_log ADD COLUMN job_id INTEGER;
      CREATE INDEX audit_log_by_job ON audit_log (job_id) WHERE job_id IS NOT NULL;
    `,
  },
  {
    version: 3,
    description: 'libraries made by an earlier v1: entries and search laid out as v1 is now',
    // v1 changed in place before any release; a library made before that (the demo's, say)
    // still has the search insert trigger, which with EntryStore.insert would index every
    // new name twice. On a library made since, this rebuilds an empty search table.
    sql: `
      DROP TRIGGER IF EXISTS entries_search_insert;
      DROP INDEX IF EXISTS entry_closure_by_descendant;
      DROP INDEX IF EXISTS entries_by_inode;
      CREATE INDEX entries_by_inode ON entries (inode, location_id);
      DROP TABLE IF EXISTS search;
      CREATE VIRTUAL TABLE search USING fts5 (
        name, content = 'entries', content_rowid = 'id', tokenize = 'unicode61', columnsize = 0
      );
      INSERT INTO search (search) VALUES ('rebuild');
    `,
  },
  {
    version: 4,
    description: 'devices: paired peers with their log key, pairing and revocation times, presence and round-trip time',
    sql: `
      -- public_key (v1) holds a peer's swarm public key in hex; the local device's is derived
      -- from device.key and not stored. revoked_at set means refused by the firewall for good.
      ALTER TABLE devices ADD COLUMN log_key TEXT;
      ALTER TABLE devices ADD COLUMN paired_at INTEGER;
      ALTER TABLE devices ADD COLUMN revoked_at INTEGER;
      -- Written by the running node (sd mount) while connected: online_at is refreshed every
      -- few seconds and cleared on disconnect, so another process can tell who is online.
      ALTER TABLE devices ADD COLUMN online_at INTEGER;
      ALTER TABLE devices ADD COLUMN rtt_ms REAL;
      CREATE UNIQUE INDEX devices_by_public_key ON devices (public_key) WHERE public_key IS NOT NULL;
    `,
  },
  {
    version: 5,
    description: 'device-owned sync: the outbox of this device\'s index changes, mirrored peers\' ids and logs',
    // Version 4 (peer columns of devices) comes from the pairing work; migrate() runs
    // whatever is above a library's user_version in order, so the gap is harmless.
    sql: `
      -- This device's index changes waiting for its log (replication/device-log.ts), written
      -- in the same transaction as the change by whichever process makes it. op: 'location'
      -- (upsert), 'unlocation' (removed), 'entry' (upsert), 'tombstone' (a subtree root),
      -- 'content' (a content identity). Entry rows carry the row as it was at the change.
      CREATE TABLE index_outbox (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        op           TEXT NOT NULL,
        id           INTEGER,
        location_id  INTEGER,
        parent_id    INTEGER,
        name         TEXT,
        kind         TEXT,
        size         INTEGER,
        mtime        REAL,
        mode         INTEGER,
        content_id   TEXT,
        extra        TEXT
      );

      -- Rows mirrored from a peer keep the peer's own ids, to apply its later changes.
      ALTER TABLE entries ADD COLUMN remote_id INTEGER;
      CREATE UNIQUE INDEX entries_by_remote_id ON entries (device_id, remote_id) WHERE remote_id IS NOT NULL;
      ALTER TABLE locations ADD COLUMN remote_id INTEGER;
      CREATE UNIQUE INDEX locations_by_remote_id ON locations (device_id, remote_id) WHERE remote_id IS NOT NULL;

      -- One row per mirrored peer log: how many of its blocks are applied here.
      CREATE TABLE device_logs (
        device_id       TEXT PRIMARY KEY REFERENCES devices(id),
        log_key         TEXT NOT NULL,
        applied_length  INTEGER NOT NULL DEFAULT 0
      );
    `,
  },
  {
    version: 6,
    description: 'tags as last-writer-wins registers stamped by a hybrid logical clock (their operations travel in index_outbox)',
    sql: `
      -- The newest operation per (owning device, entry id there, tag); present = 0 is a removal.
      CREATE TABLE tag_ops (
        device_id  TEXT NOT NULL,
        entry_ref  INTEGER NOT NULL,
        tag        TEXT NOT NULL,
        present    INTEGER NOT NULL,
        hlc        TEXT NOT NULL,
        PRIMARY KEY (device_id, entry_ref, tag)
      ) WITHOUT ROWID;
      CREATE INDEX entry_tags_by_tag ON entry_tags (tag_id);
    `,
  },
  {
    version: 7,
    description: "changes made in another device's tree through the mount, waiting to be applied there; requests of other devices applied here",
    sql: `
      -- What the mount shows in a peer's tree until the peer has applied the change: a new
      -- file (bytes staged in <library>/outgoing/<id>), a new folder, a name that is gone, or
      -- a name moved from another (source). The newest row for a path wins.
      CREATE TABLE pending_changes (
        id          INTEGER PRIMARY KEY,
        device_id   TEXT NOT NULL,
        location    TEXT NOT NULL,
        path        TEXT NOT NULL,
        parent      TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('file', 'dir', 'gone', 'moved')),
        source      TEXT,
        mode        INTEGER NOT NULL DEFAULT 0,
        job_id      INTEGER,
        content_id  TEXT,
        created_at  INTEGER NOT NULL
      );
      CREATE INDEX pending_by_path ON pending_changes (device_id, location, path);
      CREATE INDEX pending_by_parent ON pending_changes (device_id, location, parent);
      CREATE INDEX pending_by_job ON pending_changes (job_id);
      CREATE INDEX pending_by_content ON pending_changes (content_id) WHERE content_id IS NOT NULL;
      -- Requests of paired devices run here, by their id there: one delivered again is
      -- answered from here, never run twice.
      CREATE TABLE peer_requests (
        device_id   TEXT NOT NULL,
        request_id  INTEGER NOT NULL,
        result      TEXT,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (device_id, request_id)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 8,
    description: "symlink targets of peers' entries (from their logs; this device's own are read from disk)",
    sql: `
      CREATE TABLE link_targets (
        entry_id  INTEGER PRIMARY KEY REFERENCES entries (id) ON DELETE CASCADE,
        target    TEXT NOT NULL
      );
    `,
  },
  {
    version: 9,
    description: 'user metadata: key/value last-writer-wins registers per entry, stamped by a hybrid logical clock (their operations travel in index_outbox)',
    sql: `
      -- The newest operation per (owning device, entry id there, key); value NULL is a removal.
      CREATE TABLE meta_ops (
        device_id  TEXT NOT NULL,
        entry_ref  INTEGER NOT NULL,
        key        TEXT NOT NULL,
        value      TEXT,
        hlc        TEXT NOT NULL,
        PRIMARY KEY (device_id, entry_ref, key)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 10,
    description: "Data Guardian: each copy's own full BLAKE3 check (this device's and peers'), shared guardian settings (policies, trust) as last-writer-wins registers, and settings refused from peers",
    sql: `
      -- The full BLAKE3 of one file (any device's entry) as it was at (size, mtime), from a
      -- deep index, a verified copy or a scrub; corrupt = 1: a scrub found its bytes changed
      -- while size and mtime did not. A check whose size or mtime differ from the entry's is stale.
      CREATE TABLE copy_checks (
        entry_id    INTEGER PRIMARY KEY REFERENCES entries (id) ON DELETE CASCADE,
        full_hash   TEXT NOT NULL,
        size        INTEGER NOT NULL,
        mtime       REAL NOT NULL,
        checked_at  INTEGER NOT NULL,
        corrupt     INTEGER NOT NULL DEFAULT 0
      );
      -- The newest operation per register: kind 'policy' (key: the target, value: JSON) or
      -- 'trust' (key: a device id, value 'untrusted'); value NULL removes the setting.
      CREATE TABLE guardian_ops (
        kind   TEXT NOT NULL,
        key    TEXT NOT NULL,
        value  TEXT,
        hlc    TEXT NOT NULL,
        PRIMARY KEY (kind, key)
      ) WITHOUT ROWID;
      -- Guardian operations from a peer's log that failed validation: ignored, and counted here.
      CREATE TABLE guardian_refused (
        device_id   TEXT PRIMARY KEY,
        count       INTEGER NOT NULL,
        last_error  TEXT NOT NULL,
        last_at     INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 11,
    description: "the guardian's scrub schedule of this device: how often the running mount scrubs its locations, and how fast",
    sql: `
      CREATE TABLE scrub_schedule (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        every_ms      INTEGER NOT NULL,
        rate          INTEGER NOT NULL
      );
    `,
  },
  {
    version: 12,
    description: "the guardian's guarded trash: files the mount kept in a location's .sd-trash instead of unlinking them (the last copy, or a copy the policy counts on), deleted once their content is back up to policy",
    sql: `
      CREATE TABLE guarded_trash (
        id           INTEGER PRIMARY KEY,
        location_id  INTEGER NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
        trash_path   TEXT NOT NULL,
        content_id   TEXT NOT NULL,
        size         INTEGER NOT NULL,
        trashed_at   INTEGER NOT NULL
      );
    `,
  },
  {
    version: 13,
    description: "free space of every device's locations, measured by the device and shared through its log: where the guardian's protect puts copies",
    sql: `
      CREATE TABLE location_space (
        location_id  INTEGER PRIMARY KEY REFERENCES locations (id) ON DELETE CASCADE,
        free_bytes   INTEGER NOT NULL,
        total_bytes  INTEGER NOT NULL,
        measured_at  INTEGER NOT NULL
      );
    `,
  },
  {
    version: 14,
    description: "the guardian's copy summary: per content, which devices hold it and which hold a verified copy (bit sets), and totals per such pair, kept by marking a content dirty when its files or checks change",
    sql: `
      -- A content whose files, checks or full hash changed since the summary was last brought up to date.
      CREATE TABLE guardian_dirty (content_id TEXT PRIMARY KEY) WITHOUT ROWID;
      -- Each device holding files gets a bit (0..62) in the bit sets below.
      CREATE TABLE guardian_device_bits (
        device_id  TEXT PRIMARY KEY,
        bit        INTEGER NOT NULL UNIQUE CHECK (bit BETWEEN 0 AND 62)
      ) WITHOUT ROWID;
      -- One content's files in one location: how many, their bytes, how many are verified.
      CREATE TABLE guardian_location_copies (
        content_id   TEXT NOT NULL,
        location_id  INTEGER NOT NULL,
        bit          INTEGER NOT NULL,
        files        INTEGER NOT NULL,
        bytes        INTEGER NOT NULL,
        verified     INTEGER NOT NULL,
        size         INTEGER NOT NULL,
        PRIMARY KEY (content_id, location_id)
      ) WITHOUT ROWID;
      -- One content: the devices holding it (holders) and those holding a verified copy (verified), as bit sets.
      CREATE TABLE guardian_contents (
        content_id  TEXT PRIMARY KEY,
        holders     INTEGER NOT NULL,
        verified    INTEGER NOT NULL,
        files       INTEGER NOT NULL,
        bytes       INTEGER NOT NULL,
        size        INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX guardian_contents_by_copies ON guardian_contents (holders, verified, size, content_id);
      -- Totals per (holders, verified): what status reads instead of every content.
      CREATE TABLE guardian_signatures (
        holders   INTEGER NOT NULL,
        verified  INTEGER NOT NULL,
        contents  INTEGER NOT NULL,
        files     INTEGER NOT NULL,
        bytes     INTEGER NOT NULL,
        size      INTEGER NOT NULL,
        PRIMARY KEY (holders, verified)
      ) WITHOUT ROWID;
      -- ... and per location.
      CREATE TABLE guardian_location_signatures (
        location_id     INTEGER NOT NULL,
        holders         INTEGER NOT NULL,
        verified        INTEGER NOT NULL,
        files           INTEGER NOT NULL,
        bytes           INTEGER NOT NULL,
        verified_files  INTEGER NOT NULL,
        PRIMARY KEY (location_id, holders, verified)
      ) WITHOUT ROWID;
      -- Files not identified (no content id yet), per location, counted without a scan.
      CREATE INDEX entries_unidentified ON entries (location_id) WHERE kind = 'file' AND content_id IS NULL;

      -- No trigger on INSERT INTO entries: any trigger there costs every insert a statement
      -- savepoint, and so the search index a flush of its pending terms (16 µs an entry, twice
      -- the insert). The one insert that carries a content id, a mirrored entry's, marks it.
      CREATE TRIGGER guardian_entry_removed AFTER DELETE ON entries
        WHEN old.content_id IS NOT NULL AND old.kind = 'file'
        BEGIN INSERT OR IGNORE INTO guardian_dirty VALUES (old.content_id); END;
      CREATE TRIGGER guardian_entry_changed AFTER UPDATE OF content_id, kind, size, mtime, location_id, device_id ON entries
        WHEN old.content_id IS NOT NULL OR new.content_id IS NOT NULL
        BEGIN
          INSERT OR IGNORE INTO guardian_dirty SELECT old.content_id WHERE old.content_id IS NOT NULL;
          INSERT OR IGNORE INTO guardian_dirty SELECT new.content_id WHERE new.content_id IS NOT NULL;
        END;
      CREATE TRIGGER guardian_check_added AFTER INSERT ON copy_checks
        BEGIN INSERT OR IGNORE INTO guardian_dirty SELECT content_id FROM entries WHERE id = new.entry_id AND content_id IS NOT NULL; END;
      CREATE TRIGGER guardian_check_changed AFTER UPDATE ON copy_checks
        BEGIN
          INSERT OR IGNORE INTO guardian_dirty SELECT content_id FROM entries WHERE id = old.entry_id AND content_id IS NOT NULL;
          INSERT OR IGNORE INTO guardian_dirty SELECT content_id FROM entries WHERE id = new.entry_id AND content_id IS NOT NULL;
        END;
      CREATE TRIGGER guardian_check_removed AFTER DELETE ON copy_checks
        BEGIN INSERT OR IGNORE INTO guardian_dirty SELECT content_id FROM entries WHERE id = old.entry_id AND content_id IS NOT NULL; END;
      CREATE TRIGGER guardian_full_hash_changed AFTER UPDATE OF full_hash ON content_identities
        BEGIN INSERT OR IGNORE INTO guardian_dirty VALUES (new.id); END;

      -- The summary starts empty: every content is dirty, built by the first query (or the running mount).
      INSERT OR IGNORE INTO guardian_dirty SELECT content_id FROM entries WHERE kind = 'file' AND content_id IS NOT NULL;
    `,
  },
  {
    version: 15,
    description: 'search: entries by time of change, so a search sorted newest first walks the newest entries instead of sorting all of them',
    sql: `
      CREATE INDEX entries_by_mtime ON entries (mtime);
    `,
  },
  {
    version: 16,
    description: "search: every file's extension and kind (image, video, document...) as generated columns, each indexed by time, so kind:, ext: and \"photos\" walk only their own files",
    // Virtual: computed from the name when read, nothing stored in the rows; the indexes
    // hold them. The kinds' extensions are frozen here as they were (see kinds.ts).
    sql: `
      ALTER TABLE entries ADD COLUMN ext TEXT GENERATED ALWAYS AS (${EXT_SQL}) VIRTUAL;
      ALTER TABLE entries ADD COLUMN kind_class TEXT GENERATED ALWAYS AS (${kindClassSql()}) VIRTUAL;
      CREATE INDEX entries_by_ext ON entries (ext, mtime) WHERE ext IS NOT NULL;
      CREATE INDEX entries_by_kind_class ON entries (kind_class, mtime) WHERE kind_class IS NOT NULL;
    `,
  },
  {
    version: 17,
    description: "contents' extracts (kind by bytes, text, photo and media metadata) with their full-text index; a file's kind from its bytes before its extension",
    // One row per content: what its bytes say is the same on every device that holds them
    // (content/extracts.ts). The text and metadata values are full-text indexed; the name
    // index stays as it was. entries.byte_kind is the kind the bytes of a file's content
    // say (set with the extract, and when a file gets a content id whose extract is known);
    // kind_class is redefined to take it before the extension's.
    sql: `
      CREATE TABLE content_extracts (
        id            INTEGER PRIMARY KEY,
        content_id    TEXT NOT NULL UNIQUE,
        version       INTEGER NOT NULL,
        status        TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
        mime          TEXT,
        kind_class    TEXT,
        taken_at      INTEGER,
        width         INTEGER,
        height        INTEGER,
        duration_ms   INTEGER,
        camera        TEXT,
        gps           INTEGER,
        words         TEXT,
        text          TEXT,
        text_truncated INTEGER NOT NULL DEFAULT 0,
        error         TEXT,
        extracted_by  TEXT NOT NULL,
        extracted_at  INTEGER NOT NULL
      );
      -- With the content id: a taken: filter reads only the index (through the rows, whose
      -- text makes them big, 46,000 photos of a year took 150 ms; so, 5 ms).
      CREATE INDEX content_extracts_by_taken ON content_extracts (taken_at, content_id) WHERE taken_at IS NOT NULL;
      CREATE VIRTUAL TABLE content_search USING fts5 (
        text, words, content = 'content_extracts', content_rowid = 'id', tokenize = 'unicode61', columnsize = 0
      );
      CREATE TRIGGER content_extracts_search_insert AFTER INSERT ON content_extracts BEGIN
        INSERT INTO content_search (rowid, text, words) VALUES (new.id, new.text, new.words);
      END;
      CREATE TRIGGER content_extracts_search_delete AFTER DELETE ON content_extracts BEGIN
        INSERT INTO content_search (content_search, rowid, text, words) VALUES ('delete', old.id, old.text, old.words);
      END;
      CREATE TRIGGER content_extracts_search_update AFTER UPDATE ON content_extracts BEGIN
        INSERT INTO content_search (content_search, rowid, text, words) VALUES ('delete', old.id, old.text, old.words);
        INSERT INTO content_search (rowid, text, words) VALUES (new.id, new.text, new.words);
      END;

      DROP INDEX entries_by_kind_class;
      ALTER TABLE entries DROP COLUMN kind_class;
      ALTER TABLE entries ADD COLUMN byte_kind TEXT;
      ALTER TABLE entries ADD COLUMN kind_class TEXT GENERATED ALWAYS AS (coalesce(byte_kind, ${kindClassSql()})) VIRTUAL;
      CREATE INDEX entries_by_kind_class ON entries (kind_class, mtime) WHERE kind_class IS NOT NULL;
      -- Contents of this device's files not extracted yet, oldest first: what the extraction
      -- phase works through (a killed run resumes with what is left). Filled when a file of
      -- this device gets a content id (the indexer's identify phase, an action).
      CREATE TABLE extract_pending (
        seq         INTEGER PRIMARY KEY,
        content_id  TEXT NOT NULL UNIQUE
      );
      INSERT OR IGNORE INTO extract_pending (content_id)
        SELECT content_id FROM entries WHERE kind = 'file' AND content_id IS NOT NULL AND device_id = (SELECT id FROM devices WHERE is_local = 1) ORDER BY id;
      -- A file given a content id takes that content's kind by bytes, once known.
      CREATE TRIGGER entries_content_extract AFTER UPDATE OF content_id ON entries
        WHEN new.kind = 'file'
        BEGIN
          -- Only when it changes: a rewrite of the row and of its kind's index entry cost
          -- the identify phase a third of its time (a new content has no extract yet).
          UPDATE entries SET byte_kind = (SELECT kind_class FROM content_extracts WHERE content_id = new.content_id)
            WHERE id = new.id AND byte_kind IS NOT (SELECT kind_class FROM content_extracts WHERE content_id = new.content_id);
          INSERT OR IGNORE INTO extract_pending (content_id) SELECT new.content_id
            WHERE new.content_id IS NOT NULL AND new.device_id = (SELECT id FROM devices WHERE is_local = 1)
              AND NOT EXISTS (SELECT 1 FROM content_extracts WHERE content_id = new.content_id);
        END;
    `,
  },
  {
    version: 18,
    description: "devices: how often a paired device sent file bytes its owner does not vouch for (a faulty or lying copy), and the last time and reason",
    sql: `
      ALTER TABLE devices ADD COLUMN faults INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE devices ADD COLUMN last_fault_at INTEGER;
      ALTER TABLE devices ADD COLUMN last_fault TEXT;
    `,
  },
  {
    version: 19,
    description: "content_vouches: what a device that sent a content's blocks signed for each (kept with a copy fetched from it, and passed along when this device serves that content)",
    sql: `
      CREATE TABLE content_vouches (
        content_id  TEXT NOT NULL,
        size        INTEGER NOT NULL,
        offset      INTEGER NOT NULL,
        length      INTEGER NOT NULL,
        hash        BLOB NOT NULL,
        file_mtime  REAL NOT NULL,
        signer      BLOB NOT NULL,
        signature   BLOB NOT NULL,
        PRIMARY KEY (content_id, size, offset, length, signer)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 20,
    description: 'device_log_snapshot: a snapshot of the index being streamed into a new device log (a stopped process left it half written: the next start writes it again)',
    sql: `
      CREATE TABLE device_log_snapshot (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        started_at  INTEGER NOT NULL
      );
    `,
  },
  {
    version: 21,
    description: 'devices: which paired device introduced a device into the group (and its signature), and whose revocation reached this device',
    sql: `
      -- introduced_by NULL: paired here with the words. Otherwise the id of the paired device
      -- that introduced it, and that device's signature over the introduction (see
      -- replication/group.ts). revoked_by: the device whose revocation was taken up here;
      -- NULL with revoked_at set: revoked on this device.
      ALTER TABLE devices ADD COLUMN introduced_by TEXT;
      ALTER TABLE devices ADD COLUMN introduction BLOB;
      ALTER TABLE devices ADD COLUMN revoked_by TEXT;
    `,
  },
  {
    version: 22,
    description: "entries_dirs: a location's folders by id (the watcher's first walk read every entry to find them)",
    sql: `
      -- The folder notifier pages through a location's folders by id when the mount starts.
      -- Without this it walked the whole entries table for them: 0.4 s at a million entries
      -- on a quiet machine (4 s under load), and it filled the connection's page cache
      -- (about 24 MB of the mount's memory) with pages of files.
      CREATE INDEX entries_dirs ON entries (location_id, id) WHERE kind = 'dir';
    `,
  },
  {
    version: 23,
    description: "pending_changes: whether a new file replaces what the device has at its name, and whether its staged bytes are still being fetched (what the next start needs to send a file a stopped process left unsent)",
    sql: `
      -- overwrite: the name showed a file of the device when it was staged (its copy replaces
      -- that file; else the device keeps both). Rows from before: 0, keeping both loses nothing.
      -- fetching: the staged bytes are a copy of the device's file being fetched to change it in
      -- place; left set by a stopped process they are incomplete and never sent.
      ALTER TABLE pending_changes ADD COLUMN overwrite INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE pending_changes ADD COLUMN fetching INTEGER NOT NULL DEFAULT 0;
    `,
  },
];
