//! The mirrored files on disk, bounded in bytes.
//!
//! Each video has a directory named by its uuid under the cache root; files keep the origin's
//! names. The budget holds even while fetching: bytes are reserved before a fetch
//! ([`Cache::reserve`]), a write takes its bytes from the reservation, and what is left is
//! released when the [`Reservation`] is dropped. Writes are atomic (a temporary file in the same
//! directory, then a rename). [`plan_eviction`] says which expired entries to drop, oldest expiry
//! first, to make room. [`Cache::open`] reconciles the disk with the database's file records: a
//! file whose size or SHA-256 does not match its record is deleted and reported (to be fetched
//! again), a file without a record (a leftover temporary file, a stray) is deleted, so that
//! nothing unverified is ever served.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use sha2::{Digest, Sha256};

use super::state::FileRecord;
use super::strategy::{Entry, Strategy};
use crate::native::peertube::mirror::safe_relative;

/// Why a cache operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Not enough free bytes for a reservation.
    #[error("cache full: {needed} bytes needed, {free} free of {budget}")]
    Full {
        /// Bytes asked for.
        needed: u64,
        /// Bytes free (budget less stored and reserved).
        free: u64,
        /// The budget.
        budget: u64,
    },
    /// A write larger than what is left of its reservation.
    #[error("{path}: {len} bytes, more than the {left} left in the reservation")]
    OverReservation {
        /// The file.
        path: String,
        /// Its length.
        len: u64,
        /// Bytes left in the reservation.
        left: u64,
    },
    /// A uuid or file path that cannot name a file under the cache root.
    #[error("{0:?} is not a safe relative path")]
    BadPath(String),
    /// A file system error.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Bytes stored and reserved, read together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes in files written.
    pub stored: u64,
    /// Bytes reserved for fetches in progress.
    pub reserved: u64,
    /// The budget.
    pub budget: u64,
}

impl Usage {
    /// Bytes neither stored nor reserved.
    pub fn free(&self) -> u64 {
        self.budget
            .saturating_sub(self.stored.saturating_add(self.reserved))
    }
}

#[derive(Debug, Default)]
struct Accounts {
    usage: Usage,
    /// Size of each file written, by `uuid/path`.
    files: BTreeMap<String, u64>,
}

/// The cache. Cheap to clone (shared accounts).
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    accounts: Arc<Mutex<Accounts>>,
}

/// Bytes set aside for a fetch; what is not written is released on drop.
#[derive(Debug)]
pub struct Reservation {
    accounts: Arc<Mutex<Accounts>>,
    left: u64,
}

impl Reservation {
    /// Bytes left.
    pub fn left(&self) -> u64 {
        self.left
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut a = lock(&self.accounts);
        a.usage.reserved = a.usage.reserved.saturating_sub(self.left);
    }
}

/// The accounts survive a panic elsewhere: they are plain numbers, always consistent between
/// statements.
fn lock(m: &Mutex<Accounts>) -> MutexGuard<'_, Accounts> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What [`Cache::open`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Files that match their record, as `(uuid, path)`.
    pub kept: Vec<(String, String)>,
    /// Records whose file was missing or did not match (the file deleted), as `(uuid, path,
    /// why)`: fetch these again.
    pub dropped: Vec<(String, String, String)>,
    /// Files without a record, deleted (paths relative to the root).
    pub strays: Vec<String>,
    /// Bytes kept.
    pub bytes: u64,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// SHA-256 of a file, streamed.
fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Every entry (file, symlink, other) under `dir`, depth first, directories after their contents
/// (so that emptied ones can be removed in the same pass).
fn walk(dir: &Path, out: &mut Vec<(PathBuf, std::fs::FileType)>) -> std::io::Result<()> {
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        let kind = item.file_type()?;
        let path = item.path();
        if kind.is_dir() {
            walk(&path, out)?;
        }
        out.push((path, kind));
    }
    Ok(())
}

impl Cache {
    /// Sets the budget, bytes (a configuration reload). A budget below what is stored lets
    /// nothing be reserved until entries are evicted.
    pub fn set_budget(&self, budget: u64) {
        lock(&self.accounts).usage.budget = budget;
    }

    /// Opens the cache at `root` (created if missing) with a budget of `budget` bytes, and
    /// reconciles the disk with `records` (`(uuid, file)` from the database). See the module
    /// documentation. Stored bytes may exceed the budget after a budget was lowered: then
    /// nothing can be reserved until entries are evicted.
    pub fn open(
        root: &Path,
        budget: u64,
        records: &[(String, FileRecord)],
    ) -> Result<(Cache, Reconciled), CacheError> {
        std::fs::create_dir_all(root).map_err(io(root))?;
        let mut report = Reconciled::default();
        let mut expected: BTreeMap<String, (&str, &FileRecord)> = BTreeMap::new();
        for (uuid, f) in records {
            if safe_name(uuid) && safe_relative(&f.path) {
                expected.insert(format!("{uuid}/{}", f.path), (uuid, f));
            } else {
                report
                    .dropped
                    .push((uuid.clone(), f.path.clone(), "not a safe path".into()));
            }
        }
        let mut items = Vec::new();
        walk(root, &mut items).map_err(io(root))?;
        let mut accounts = Accounts::default();
        accounts.usage.budget = budget;
        for (path, kind) in items {
            let rel = path
                .strip_prefix(root)
                .ok()
                .and_then(|p| p.to_str())
                .map(|s| s.replace(std::path::MAIN_SEPARATOR, "/"));
            if kind.is_dir() {
                // Emptied (or always empty) directories go; others stay (contents come first).
                let _ = std::fs::remove_dir(&path);
                continue;
            }
            let record = rel.as_deref().and_then(|r| expected.remove(r));
            let Some((uuid, f)) = record else {
                std::fs::remove_file(&path).map_err(io(&path))?;
                report
                    .strays
                    .push(rel.unwrap_or_else(|| path.display().to_string()));
                continue;
            };
            let why = if !kind.is_file() {
                Some("not a regular file".to_owned())
            } else {
                let size = std::fs::symlink_metadata(&path).map_err(io(&path))?.len();
                if size != f.size {
                    Some(format!("{size} bytes on disk, {} recorded", f.size))
                } else if sha256_file(&path).map_err(io(&path))? != f.sha256 {
                    Some("SHA-256 differs from the record".to_owned())
                } else {
                    None
                }
            };
            match why {
                None => {
                    accounts.usage.stored = accounts.usage.stored.saturating_add(f.size);
                    accounts.files.insert(format!("{uuid}/{}", f.path), f.size);
                    report.bytes = report.bytes.saturating_add(f.size);
                    report.kept.push((uuid.to_owned(), f.path.clone()));
                }
                Some(why) => {
                    std::fs::remove_file(&path).map_err(io(&path))?;
                    report.dropped.push((uuid.to_owned(), f.path.clone(), why));
                }
            }
        }
        for (uuid, f) in expected.into_values() {
            report
                .dropped
                .push((uuid.to_owned(), f.path.clone(), "missing on disk".into()));
        }
        report.kept.sort();
        report.dropped.sort();
        report.strays.sort();
        Ok((
            Cache {
                root: root.to_owned(),
                accounts: Arc::new(Mutex::new(accounts)),
            },
            report,
        ))
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Bytes stored and reserved.
    pub fn usage(&self) -> Usage {
        lock(&self.accounts).usage
    }

    /// Sets `bytes` aside for a fetch, or says how much is free.
    pub fn reserve(&self, bytes: u64) -> Result<Reservation, CacheError> {
        let mut a = lock(&self.accounts);
        let free = a.usage.free();
        if bytes > free {
            return Err(CacheError::Full {
                needed: bytes,
                free,
                budget: a.usage.budget,
            });
        }
        a.usage.reserved += bytes;
        Ok(Reservation {
            accounts: self.accounts.clone(),
            left: bytes,
        })
    }

    /// The path of a file of a video.
    pub fn path_of(&self, uuid: &str, path: &str) -> Result<PathBuf, CacheError> {
        if !safe_name(uuid) || !safe_relative(path) {
            return Err(CacheError::BadPath(format!("{uuid}/{path}")));
        }
        Ok(self.root.join(uuid).join(path))
    }

    /// Writes a file of a video atomically, its bytes taken from `reservation`; returns its
    /// record. A file it replaces frees its bytes.
    pub fn write(
        &self,
        reservation: &mut Reservation,
        uuid: &str,
        path: &str,
        data: &[u8],
    ) -> Result<FileRecord, CacheError> {
        let target = self.path_of(uuid, path)?;
        let len = data.len() as u64;
        if len > reservation.left {
            return Err(CacheError::OverReservation {
                path: format!("{uuid}/{path}"),
                len,
                left: reservation.left,
            });
        }
        let dir = target.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(
            ".{name}.{}-{}.part",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &target)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(CacheError::Io {
                path: target,
                source: e,
            });
        }
        self.account_written(reservation, format!("{uuid}/{path}"), len);
        Ok(FileRecord {
            path: path.to_owned(),
            size: len,
            sha256: hex::encode(Sha256::digest(data)),
        })
    }

    /// Moves a finished file (written elsewhere on the same file system, e.g. by a fetch into a
    /// staging directory whose bytes `reservation` covers) into place as a file of a video,
    /// atomically (a rename); its bytes are taken from `reservation`. Returns its record.
    pub fn adopt(
        &self,
        reservation: &mut Reservation,
        uuid: &str,
        path: &str,
        from: &Path,
    ) -> Result<FileRecord, CacheError> {
        let target = self.path_of(uuid, path)?;
        let meta = std::fs::symlink_metadata(from).map_err(io(from))?;
        if !meta.is_file() {
            return Err(CacheError::BadPath(from.display().to_string()));
        }
        let len = meta.len();
        if len > reservation.left {
            return Err(CacheError::OverReservation {
                path: format!("{uuid}/{path}"),
                len,
                left: reservation.left,
            });
        }
        let sha256 = sha256_file(from).map_err(io(from))?;
        let dir = target.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        std::fs::rename(from, &target).map_err(io(&target))?;
        self.account_written(reservation, format!("{uuid}/{path}"), len);
        Ok(FileRecord {
            path: path.to_owned(),
            size: len,
            sha256,
        })
    }

    /// Moves `len` bytes of `reservation` to the stored bytes of file `key` (`uuid/path`).
    fn account_written(&self, reservation: &mut Reservation, key: String, len: u64) {
        let mut a = lock(&self.accounts);
        reservation.left -= len;
        a.usage.reserved = a.usage.reserved.saturating_sub(len);
        a.usage.stored = a.usage.stored.saturating_add(len);
        if let Some(old) = a.files.insert(key, len) {
            a.usage.stored = a.usage.stored.saturating_sub(old);
        }
    }

    /// Deletes one file of a video; returns the bytes freed.
    pub fn remove_file(&self, uuid: &str, path: &str) -> Result<u64, CacheError> {
        let target = self.path_of(uuid, path)?;
        match std::fs::remove_file(&target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(CacheError::Io {
                    path: target,
                    source: e,
                })
            }
        }
        let mut a = lock(&self.accounts);
        let freed = a.files.remove(&format!("{uuid}/{path}")).unwrap_or(0);
        a.usage.stored = a.usage.stored.saturating_sub(freed);
        Ok(freed)
    }

    /// Deletes a video's directory; returns the bytes freed.
    pub fn remove_video(&self, uuid: &str) -> Result<u64, CacheError> {
        if !safe_name(uuid) {
            return Err(CacheError::BadPath(uuid.to_owned()));
        }
        let dir = self.root.join(uuid);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(CacheError::Io {
                    path: dir,
                    source: e,
                })
            }
        }
        let prefix = format!("{uuid}/");
        let mut a = lock(&self.accounts);
        let keys: Vec<String> = a
            .files
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        let mut freed = 0u64;
        for k in keys {
            freed = freed.saturating_add(a.files.remove(&k).unwrap_or(0));
        }
        a.usage.stored = a.usage.stored.saturating_sub(freed);
        Ok(freed)
    }
}

/// A uuid usable as one directory name.
fn safe_name(s: &str) -> bool {
    !s.contains('/') && safe_relative(s)
}

/// Entries to evict so that `needed` bytes are free, when `free` are: expired entries only
/// (`until <= now`, never manual), oldest expiry first (then oldest `since`, then uuid). Fewer
/// than needed when the expired ones are not enough.
pub fn plan_eviction(entries: &[Entry], now: u64, free: u64, needed: u64) -> Vec<Entry> {
    let mut expired: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.strategy != Strategy::Manual && e.until.is_some_and(|u| u <= now))
        .collect();
    expired.sort_by(|a, b| {
        a.until
            .cmp(&b.until)
            .then(a.since.cmp(&b.since))
            .then(a.uuid.cmp(&b.uuid))
    });
    let mut free = free;
    let mut out = Vec::new();
    for e in expired {
        if free >= needed {
            break;
        }
        free = free.saturating_add(e.bytes);
        out.push(e.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(uuid: &str, since: u64, until: Option<u64>, bytes: u64) -> Entry {
        Entry {
            origin: "o".into(),
            uuid: uuid.into(),
            strategy: if until.is_some() {
                Strategy::MostViews
            } else {
                Strategy::Manual
            },
            since,
            until,
            bytes,
        }
    }

    #[test]
    fn reservations_bound_writes_and_release_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, _) = Cache::open(dir.path(), 100, &[]).unwrap();
        let mut r = cache.reserve(60).unwrap();
        assert!(matches!(
            cache.reserve(41),
            Err(CacheError::Full {
                needed: 41,
                free: 40,
                budget: 100
            })
        ));
        let rec = cache.write(&mut r, "v", "a.mp4", &[1; 50]).unwrap();
        assert_eq!(rec.size, 50);
        assert_eq!(rec.sha256, hex::encode(Sha256::digest([1u8; 50])));
        assert!(matches!(
            cache.write(&mut r, "v", "b.mp4", &[1; 11]),
            Err(CacheError::OverReservation { left: 10, .. })
        ));
        assert_eq!(
            cache.usage(),
            Usage {
                stored: 50,
                reserved: 10,
                budget: 100
            }
        );
        drop(r);
        assert_eq!(cache.usage().free(), 50);
        // Replacing a file frees the old bytes.
        let mut r = cache.reserve(20).unwrap();
        cache.write(&mut r, "v", "a.mp4", &[2; 20]).unwrap();
        assert_eq!(cache.usage().stored, 20);
        assert_eq!(std::fs::read(dir.path().join("v/a.mp4")).unwrap(), [2; 20]);
        // Hostile names never leave the root.
        for (u, p) in [
            ("..", "x"),
            ("v", "../x"),
            ("a/b", "x"),
            ("v", "/etc/x"),
            ("", "x"),
        ] {
            assert!(matches!(
                cache.write(&mut r, u, p, b""),
                Err(CacheError::BadPath(_))
            ));
        }
        assert_eq!(cache.remove_file("v", "a.mp4").unwrap(), 20);
        assert_eq!(cache.usage().stored, 0);
    }

    #[test]
    fn budget_holds_under_concurrent_reservations() {
        let dir = tempfile::tempdir().unwrap();
        let budget = 10_000;
        let (cache, _) = Cache::open(dir.path(), budget, &[]).unwrap();
        let threads = 8;
        let barrier = Arc::new(std::sync::Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let cache = cache.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut full = 0;
                    for i in 0..200u64 {
                        let want = (i * 37 + t as u64 * 101) % 1500 + 1;
                        match cache.reserve(want) {
                            Ok(mut r) => {
                                let u = cache.usage();
                                assert!(u.stored + u.reserved <= budget, "{u:?}");
                                let len = (want / 2) as usize;
                                let name = format!("f{}", i % 5);
                                cache
                                    .write(&mut r, &format!("t{t}"), &name, &vec![0; len])
                                    .unwrap();
                                let u = cache.usage();
                                assert!(u.stored + u.reserved <= budget, "{u:?}");
                                if i % 3 == 0 {
                                    cache.remove_file(&format!("t{t}"), &name).unwrap();
                                }
                            }
                            Err(CacheError::Full { .. }) => full += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    full
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let u = cache.usage();
        assert_eq!(u.reserved, 0);
        assert!(u.stored <= budget);
        // The accounts match the disk.
        let mut items = Vec::new();
        walk(dir.path(), &mut items).unwrap();
        let on_disk: u64 = items
            .iter()
            .filter(|(_, k)| k.is_file())
            .map(|(p, _)| std::fs::metadata(p).unwrap().len())
            .sum();
        assert_eq!(on_disk, u.stored);
    }

    #[test]
    fn eviction_takes_the_oldest_expired_first() {
        let entries = [
            entry("late", 0, Some(300), 10),
            entry("early", 5, Some(100), 10),
            entry("manual", 0, None, 1000),
            entry("live", 0, Some(10_000), 1000),
            entry("tie-b", 1, Some(200), 10),
            entry("tie-a", 1, Some(200), 10),
        ];
        let uuids = |v: Vec<Entry>| v.into_iter().map(|e| e.uuid).collect::<Vec<_>>();
        assert_eq!(
            uuids(plan_eviction(&entries, 500, 0, 25)),
            ["early", "tie-a", "tie-b"]
        );
        assert!(plan_eviction(&entries, 500, 25, 25).is_empty());
        // Not enough expired: all of them, never a manual or unexpired one.
        assert_eq!(plan_eviction(&entries, 500, 0, 10_000).len(), 4);
        assert_eq!(uuids(plan_eviction(&entries, 150, 0, 10_000)), ["early"]);
    }

    #[test]
    fn restart_reconciles_disk_with_records() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        let (cache, _) = Cache::open(&root, 1000, &[]).unwrap();
        let mut r = cache.reserve(1000).unwrap();
        let good = cache.write(&mut r, "v1", "a.mp4", &[7; 100]).unwrap();
        let cut = cache.write(&mut r, "v1", "b.mp4", &[8; 100]).unwrap();
        let flipped = cache.write(&mut r, "v2", "sub/c.ts", &[9; 50]).unwrap();
        let gone = cache.write(&mut r, "v2", "d.ts", &[9; 50]).unwrap();
        drop(r);
        drop(cache);
        let records = vec![
            ("v1".to_string(), good.clone()),
            ("v1".to_string(), cut),
            ("v2".to_string(), flipped),
            ("v2".to_string(), gone),
            ("../etc".to_string(), good.clone()),
        ];
        // A truncated file, a file with one byte changed, a deleted one, a leftover temporary
        // file, a stray directory.
        std::fs::OpenOptions::new()
            .write(true)
            .open(root.join("v1/b.mp4"))
            .unwrap()
            .set_len(60)
            .unwrap();
        let mut c = std::fs::read(root.join("v2/sub/c.ts")).unwrap();
        c[10] ^= 1;
        std::fs::write(root.join("v2/sub/c.ts"), c).unwrap();
        std::fs::remove_file(root.join("v2/d.ts")).unwrap();
        std::fs::write(root.join("v1/.a.mp4.1-1.part"), b"half").unwrap();
        std::fs::create_dir_all(root.join("v9/deep")).unwrap();
        std::fs::write(root.join("v9/deep/x"), b"?").unwrap();

        let (cache, report) = Cache::open(&root, 1000, &records).unwrap();
        assert_eq!(report.kept, [("v1".to_string(), "a.mp4".to_string())]);
        let dropped: Vec<(&str, &str)> = report
            .dropped
            .iter()
            .map(|(u, p, _)| (u.as_str(), p.as_str()))
            .collect();
        assert_eq!(
            dropped,
            [
                ("../etc", "a.mp4"),
                ("v1", "b.mp4"),
                ("v2", "d.ts"),
                ("v2", "sub/c.ts")
            ]
        );
        assert!(
            report.dropped[1]
                .2
                .contains("60 bytes on disk, 100 recorded"),
            "{report:?}"
        );
        assert_eq!(report.strays, ["v1/.a.mp4.1-1.part", "v9/deep/x"]);
        assert_eq!(report.bytes, 100);
        assert_eq!(cache.usage().stored, 100);
        assert!(!root.join("v1/b.mp4").exists());
        assert!(!root.join("v2").exists() && !root.join("v9").exists());
        assert_eq!(std::fs::read(root.join("v1/a.mp4")).unwrap(), [7; 100]);
        // The kept video's bytes are accounted: removing it frees them.
        assert_eq!(cache.remove_video("v1").unwrap(), 100);
        assert_eq!(cache.usage().stored, 0);
        // A lowered budget: stored bytes over it, nothing reservable until evicted.
        let (cache, _) = Cache::open(&root, 1000, &[]).unwrap();
        let mut r = cache.reserve(500).unwrap();
        let rec = cache.write(&mut r, "v3", "x", &[1; 500]).unwrap();
        drop((cache, r));
        let (cache, report) = Cache::open(&root, 100, &[("v3".into(), rec)]).unwrap();
        assert_eq!(report.bytes, 500);
        assert!(matches!(
            cache.reserve(1),
            Err(CacheError::Full { free: 0, .. })
        ));
    }
}
