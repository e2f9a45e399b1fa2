//! What the mirror holds, in an SQLite database (rusqlite, bundled library) that survives
//! restarts: one row per mirrored video (`entries`: origin, uuid, strategy, since, until, bytes,
//! hits) and one per file of it (`files`: entry, path relative to the video's directory, size,
//! SHA-256).
//!
//! The schema carries its version in `PRAGMA user_version` and the file is marked as the
//! mirror's with `PRAGMA application_id`, so that a file of another program or of a newer
//! segswarm is refused with a clear error instead of being written over. The journal is WAL
//! (readers do not block the writer); every query is parameterised. Times are Unix seconds.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use super::strategy::{Entry, Plan, Strategy};

/// The schema version this code reads and writes.
pub const SCHEMA_VERSION: i64 = 1;

/// `PRAGMA application_id` of a mirror database: `SGSW` in ASCII.
pub const APPLICATION_ID: i64 = 0x5347_5357;

const SCHEMA: &str = "
CREATE TABLE entries (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    uuid TEXT NOT NULL UNIQUE,
    strategy TEXT NOT NULL,
    since INTEGER NOT NULL,
    until INTEGER,
    bytes INTEGER NOT NULL DEFAULT 0,
    hits INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE files (
    entry INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (entry, path)
);
";

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file is not an SQLite database (or is damaged).
    #[error("{path}: not a mirror database (not SQLite, or damaged): {message}")]
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// SQLite's words.
        message: String,
    },
    /// An SQLite database of another program.
    #[error(
        "{path}: an SQLite database of another program (application_id {application_id}, \
         {tables} tables); give the mirror a database file of its own"
    )]
    Foreign {
        /// The file.
        path: PathBuf,
        /// Its `application_id`.
        application_id: i64,
        /// How many tables it has.
        tables: i64,
    },
    /// A schema newer than this code's.
    #[error("{path}: schema version {found}, newer than this segswarm's {supported}; upgrade it")]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// [`SCHEMA_VERSION`].
        supported: i64,
    },
    /// A value that cannot be (a negative size, an unknown strategy).
    #[error("{path}: bad value in {column}: {value}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// `table.column`.
        column: &'static str,
        /// The value.
        value: String,
    },
    /// Any other SQLite error.
    #[error("{path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// The error.
        source: rusqlite::Error,
    },
}

/// One file of a mirrored video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// Path relative to the video's directory (`/`-separated).
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
}

/// A mirrored video and its hit count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRecord {
    /// The entry.
    pub entry: Entry,
    /// Requests served for it (HTTP and P2P).
    pub hits: u64,
}

/// The mirror's database. See the module documentation.
#[derive(Debug)]
pub struct State {
    conn: Connection,
    path: PathBuf,
}

/// A stored integer: u64 values above `i64::MAX` (never real times or sizes) are clamped.
fn to_sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl State {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let conn = Connection::open(path).map_err(|source| StateError::Sqlite {
            path: path.to_owned(),
            source,
        })?;
        let mut state = Self {
            conn,
            path: path.to_owned(),
        };
        state.check_and_create()?;
        state
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .map_err(|e| state.err(e))?;
        state
            .conn
            .execute_batch("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
            .map_err(|e| state.err(e))?;
        Ok(state)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> StateError {
        StateError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn check_and_create(&mut self) -> Result<(), StateError> {
        let not_db = |e: rusqlite::Error| StateError::NotADatabase {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let pragma = |name: &str| -> Result<i64, rusqlite::Error> {
            self.conn
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        };
        let app = pragma("application_id").map_err(not_db)?;
        let version = pragma("user_version").map_err(not_db)?;
        let tables: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .map_err(not_db)?;
        if app == APPLICATION_ID {
            if version > SCHEMA_VERSION {
                return Err(StateError::TooNew {
                    path: self.path.clone(),
                    found: version,
                    supported: SCHEMA_VERSION,
                });
            }
            if version == SCHEMA_VERSION {
                return Ok(());
            }
        }
        // Ours without a schema yet (a crash while creating it), or a new empty file.
        let fresh = (app == APPLICATION_ID && version == 0) || (app == 0 && tables == 0);
        if !fresh {
            return Err(StateError::Foreign {
                path: self.path.clone(),
                application_id: app,
                tables,
            });
        }
        let tx = self.conn.transaction().map_err(|e| StateError::Sqlite {
            path: self.path.clone(),
            source: e,
        })?;
        tx.execute_batch(SCHEMA)
            .and_then(|()| {
                // PRAGMA takes no parameters; both values are constants of this file.
                tx.execute_batch(&format!(
                    "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
                ))
            })
            .and_then(|()| tx.commit())
            .map_err(|source| StateError::Sqlite {
                path: self.path.clone(),
                source,
            })
    }

    fn u64_of(&self, column: &'static str, v: i64) -> Result<u64, StateError> {
        u64::try_from(v).map_err(|_| StateError::Corrupt {
            path: self.path.clone(),
            column,
            value: v.to_string(),
        })
    }

    /// Every entry, by uuid.
    pub fn entries(&self) -> Result<Vec<EntryRecord>, StateError> {
        self.query_entries("", "")
    }

    /// The entry of `uuid`.
    pub fn entry(&self, uuid: &str) -> Result<Option<EntryRecord>, StateError> {
        Ok(self.query_entries("WHERE uuid = ?1", uuid)?.pop())
    }

    /// Entries matching `filter` (a constant `WHERE` clause with at most the parameter `?1`).
    fn query_entries(&self, filter: &str, param: &str) -> Result<Vec<EntryRecord>, StateError> {
        type Row = (String, String, String, i64, Option<i64>, i64, i64);
        let sql = format!(
            "SELECT origin, uuid, strategy, since, until, bytes, hits FROM entries {filter} \
             ORDER BY uuid"
        );
        let rows: Vec<Row> = self
            .conn
            .prepare(&sql)
            .and_then(|mut st| {
                let map = |r: &rusqlite::Row<'_>| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                };
                if filter.is_empty() {
                    st.query_map([], map)?.collect()
                } else {
                    st.query_map(params![param], map)?.collect()
                }
            })
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(origin, uuid, strategy, since, until, bytes, hits)| {
                let strategy =
                    Strategy::from_name(&strategy).ok_or_else(|| StateError::Corrupt {
                        path: self.path.clone(),
                        column: "entries.strategy",
                        value: strategy.chars().take(64).collect(),
                    })?;
                Ok(EntryRecord {
                    entry: Entry {
                        origin,
                        uuid,
                        strategy,
                        since: self.u64_of("entries.since", since)?,
                        until: until.map(|u| self.u64_of("entries.until", u)).transpose()?,
                        bytes: self.u64_of("entries.bytes", bytes)?,
                    },
                    hits: self.u64_of("entries.hits", hits)?,
                })
            })
            .collect()
    }

    /// Records an entry (a new one, or new values for the uuid's; its hits and files are kept).
    pub fn upsert(&mut self, e: &Entry) -> Result<(), StateError> {
        upsert(&self.conn, e).map_err(|err| self.err(err))
    }

    /// Drops the entry of `uuid` and its file records; whether there was one.
    pub fn remove(&mut self, uuid: &str) -> Result<bool, StateError> {
        self.conn
            .execute("DELETE FROM entries WHERE uuid = ?1", params![uuid])
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Records a plan's outcome in one transaction: added and kept entries written, expired
    /// ones dropped with their file records.
    pub fn apply(&mut self, plan: &Plan) -> Result<(), StateError> {
        let path = self.path.clone();
        let sql = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        for e in plan.add.iter().chain(&plan.keep) {
            upsert(&tx, e).map_err(sql)?;
        }
        for e in &plan.expire {
            tx.execute("DELETE FROM entries WHERE uuid = ?1", params![e.uuid])
                .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// Adds `n` to the hits of `uuid` (nothing when there is no such entry).
    pub fn add_hits(&mut self, uuid: &str, n: u64) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE entries SET hits = min(hits + ?2, 9223372036854775807) WHERE uuid = ?1",
                params![uuid, to_sql(n)],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Records a file of the entry of `uuid` (replacing a record of the same path); false when
    /// there is no such entry.
    pub fn put_file(&mut self, uuid: &str, f: &FileRecord) -> Result<bool, StateError> {
        self.conn
            .execute(
                "INSERT INTO files (entry, path, size, sha256)
                 SELECT id, ?2, ?3, ?4 FROM entries WHERE uuid = ?1
                 ON CONFLICT (entry, path) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256",
                params![uuid, f.path, to_sql(f.size), f.sha256],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Drops the record of one file.
    pub fn remove_file(&mut self, uuid: &str, path: &str) -> Result<(), StateError> {
        self.conn
            .execute(
                "DELETE FROM files WHERE path = ?2 AND entry = (SELECT id FROM entries WHERE uuid = ?1)",
                params![uuid, path],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Every file record as `(uuid, file)`, by uuid then path.
    pub fn files(&self) -> Result<Vec<(String, FileRecord)>, StateError> {
        let rows: Vec<(String, String, i64, String)> = self
            .conn
            .prepare(
                "SELECT e.uuid, f.path, f.size, f.sha256 FROM files f JOIN entries e ON e.id = f.entry
                 ORDER BY e.uuid, f.path",
            )
            .and_then(|mut st| {
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
            })
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(uuid, path, size, sha256)| {
                Ok((
                    uuid,
                    FileRecord {
                        path,
                        size: self.u64_of("files.size", size)?,
                        sha256,
                    },
                ))
            })
            .collect()
    }
}

fn upsert(conn: &Connection, e: &Entry) -> Result<(), rusqlite::Error> {
    conn.execute(
        "INSERT INTO entries (origin, uuid, strategy, since, until, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (uuid) DO UPDATE SET origin = excluded.origin, strategy = excluded.strategy,
           since = excluded.since, until = excluded.until, bytes = excluded.bytes",
        params![
            e.origin,
            e.uuid,
            e.strategy.as_str(),
            to_sql(e.since),
            e.until.map(to_sql),
            to_sql(e.bytes)
        ],
    )
    .map(|_| ())
}

/// Whether a database file exists and has our application id (for tools that must not create
/// one by accident).
pub fn is_mirror_database(path: &Path) -> bool {
    let Ok(conn) = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return false;
    };
    conn.query_row("PRAGMA application_id", [], |r| r.get::<_, i64>(0))
        .optional()
        .ok()
        .flatten()
        == Some(APPLICATION_ID)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(uuid: &str, strategy: Strategy) -> Entry {
        Entry {
            origin: "https://a.example".into(),
            uuid: uuid.into(),
            strategy,
            since: 100,
            until: (strategy != Strategy::Manual).then_some(200),
            bytes: 4096,
        }
    }

    fn file(path: &str) -> FileRecord {
        FileRecord {
            path: path.into(),
            size: 7,
            sha256: "ab".repeat(32),
        }
    }

    #[test]
    fn reopen_keeps_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        {
            let mut s = State::open(&path).unwrap();
            s.upsert(&entry("v1", Strategy::MostViews)).unwrap();
            s.upsert(&entry("v2", Strategy::Manual)).unwrap();
            assert!(s.put_file("v1", &file("master.m3u8")).unwrap());
            assert!(s.put_file("v1", &file("a-240.mp4")).unwrap());
            assert!(!s.put_file("nope", &file("x")).unwrap());
            s.add_hits("v1", 3).unwrap();
            s.add_hits("v1", u64::MAX).unwrap();
        }
        assert!(is_mirror_database(&path));
        let mut s = State::open(&path).unwrap();
        let all = s.entries().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].entry, entry("v1", Strategy::MostViews));
        assert_eq!(all[0].hits, i64::MAX as u64);
        assert_eq!(all[1].entry.until, None);
        let files = s.files().unwrap();
        assert_eq!(
            files
                .iter()
                .map(|(u, f)| (u.as_str(), f.path.as_str()))
                .collect::<Vec<_>>(),
            [("v1", "a-240.mp4"), ("v1", "master.m3u8")]
        );
        // An upsert keeps hits and files; a removal drops the files too.
        let mut renewed = entry("v1", Strategy::MostViews);
        renewed.until = Some(999);
        s.upsert(&renewed).unwrap();
        assert_eq!(s.entry("v1").unwrap().unwrap().entry.until, Some(999));
        assert_eq!(s.files().unwrap().len(), 2);
        s.remove_file("v1", "a-240.mp4").unwrap();
        assert_eq!(s.files().unwrap().len(), 1);
        assert!(s.remove("v1").unwrap());
        assert!(s.files().unwrap().is_empty());
        assert!(!s.remove("v1").unwrap());
    }

    #[test]
    fn apply_records_a_plan() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(&dir.path().join("db")).unwrap();
        s.upsert(&entry("old", Strategy::Trending)).unwrap();
        s.put_file("old", &file("x")).unwrap();
        let plan = Plan {
            add: vec![entry("new", Strategy::MostViews)],
            keep: vec![],
            expire: vec![entry("old", Strategy::Trending)],
        };
        s.apply(&plan).unwrap();
        let uuids: Vec<String> = s
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| e.entry.uuid)
            .collect();
        assert_eq!(uuids, ["new"]);
        assert!(s.files().unwrap().is_empty());
    }

    #[test]
    fn hostile_files_give_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        // Not SQLite at all.
        let junk = dir.path().join("junk");
        std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
        let e = State::open(&junk).unwrap_err();
        assert!(matches!(e, StateError::NotADatabase { .. }), "{e}");
        assert!(e.to_string().contains("junk"), "{e}");
        assert!(!is_mirror_database(&junk));
        // Another program's database.
        let other = dir.path().join("other");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let e = State::open(&other).unwrap_err();
        assert!(matches!(e, StateError::Foreign { tables: 1, .. }), "{e}");
        // Left as it was.
        let n: i64 = Connection::open(&other)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        // A newer segswarm's.
        let newer = dir.path().join("newer");
        drop(State::open(&newer).unwrap());
        Connection::open(&newer)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99;")
            .unwrap();
        assert!(matches!(
            State::open(&newer).unwrap_err(),
            StateError::TooNew { found: 99, .. }
        ));
        // Values that cannot be: reported, not a panic.
        let bad = dir.path().join("bad");
        drop(State::open(&bad).unwrap());
        Connection::open(&bad)
            .unwrap()
            .execute_batch(
                "INSERT INTO entries (origin, uuid, strategy, since, bytes) VALUES ('o', 'u', 'x', 1, 1);",
            )
            .unwrap();
        let e = State::open(&bad).unwrap().entries().unwrap_err();
        assert!(
            matches!(
                e,
                StateError::Corrupt {
                    column: "entries.strategy",
                    ..
                }
            ),
            "{e}"
        );
        Connection::open(&bad)
            .unwrap()
            .execute_batch("UPDATE entries SET strategy = 'manual', bytes = -5;")
            .unwrap();
        let e = State::open(&bad).unwrap().entries().unwrap_err();
        assert!(
            matches!(
                e,
                StateError::Corrupt {
                    column: "entries.bytes",
                    ..
                }
            ),
            "{e}"
        );
        // A database truncated mid-page.
        let cut = dir.path().join("cut");
        {
            let mut s = State::open(&cut).unwrap();
            for i in 0..200 {
                s.upsert(&entry(&format!("v{i}"), Strategy::MostViews))
                    .unwrap();
            }
            s.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .unwrap();
        }
        let len = std::fs::metadata(&cut).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&cut)
            .unwrap()
            .set_len(len / 2 + 100)
            .unwrap();
        // An error (SQLite: "database disk image is malformed"), not a panic.
        let read = State::open(&cut).and_then(|s| s.entries());
        assert!(read.is_err(), "{read:?}");
    }
}
