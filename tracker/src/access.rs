//! Who may use the tracker: info_hash allow/deny lists loaded from files (reloadable, keeping
//! the previous good lists when a file is broken) and WebSocket `Origin` allow/deny lists.
//!
//! List file format: one info_hash a line, as 40 hexadecimal digits or as the 20-character
//! string clients send; `#` starts a comment; blank lines are ignored.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::config::AccessConfig;
use crate::protocol::Id20;

/// A list file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is neither 40 hex digits nor a 20-character binary string.
    #[error("{path}:{line}: not an info_hash (40 hex digits or 20 characters): {content:?}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending text (comment stripped).
        content: String,
    },
}

/// Parses the text of a list file; `path` is used in errors.
pub fn parse_list(text: &str, path: &Path) -> Result<HashSet<Id20>, AccessError> {
    let mut out = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let id = Id20::from_hex(content)
            .or_else(|| Id20::from_binary_str(content))
            .ok_or_else(|| AccessError::BadLine {
                path: path.to_owned(),
                line: i + 1,
                content: content.chars().take(80).collect(),
            })?;
        out.insert(id);
    }
    Ok(out)
}

/// Reads and parses a list file.
pub fn load_list(path: &Path) -> Result<HashSet<Id20>, AccessError> {
    let text = std::fs::read_to_string(path).map_err(|source| AccessError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_list(&text, path)
}

/// The info_hash lists in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InfoHashLists {
    /// `Some`: private mode, only these are tracked.
    pub allow: Option<HashSet<Id20>>,
    /// Always refused.
    pub deny: HashSet<Id20>,
}

impl InfoHashLists {
    /// Whether `info_hash` may be tracked.
    pub fn allows(&self, info_hash: &Id20) -> bool {
        !self.deny.contains(info_hash) && self.allow.as_ref().is_none_or(|a| a.contains(info_hash))
    }
}

/// The access policy: reloadable info_hash lists and fixed Origin lists.
#[derive(Debug)]
pub struct Access {
    allow_file: Option<PathBuf>,
    deny_file: Option<PathBuf>,
    lists: RwLock<Arc<InfoHashLists>>,
    origin_allow: Vec<String>,
    origin_deny: Vec<String>,
}

impl Access {
    /// Loads the lists named in the configuration.
    pub fn new(config: &AccessConfig) -> Result<Access, AccessError> {
        let access = Access {
            allow_file: config.info_hash_allow_file.clone(),
            deny_file: config.info_hash_deny_file.clone(),
            lists: RwLock::new(Arc::new(InfoHashLists::default())),
            origin_allow: config.origin_allow.clone(),
            origin_deny: config.origin_deny.clone(),
        };
        access.reload()?;
        Ok(access)
    }

    /// Re-reads the list files. On error the previous lists stay in force.
    pub fn reload(&self) -> Result<(), AccessError> {
        let allow = self.allow_file.as_deref().map(load_list).transpose()?;
        let deny = self
            .deny_file
            .as_deref()
            .map(load_list)
            .transpose()?
            .unwrap_or_default();
        let lists = Arc::new(InfoHashLists { allow, deny });
        *self.lists.write().unwrap_or_else(|e| e.into_inner()) = lists;
        Ok(())
    }

    /// The lists currently in force.
    pub fn lists(&self) -> Arc<InfoHashLists> {
        self.lists.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether `info_hash` may be tracked.
    pub fn allows_info_hash(&self, info_hash: &Id20) -> bool {
        self.lists
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .allows(info_hash)
    }

    /// Whether a WebSocket with this `Origin` header may connect. With an allow list, a missing
    /// Origin is refused.
    pub fn allows_origin(&self, origin: Option<&str>) -> bool {
        match origin {
            Some(o) if self.origin_deny.iter().any(|d| d == o) => false,
            Some(o) => self.origin_allow.is_empty() || self.origin_allow.iter().any(|a| a == o),
            None => self.origin_allow.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_binary_lines_with_comments() {
        let text = format!(
            "# private swarms\n{}\n\n  {}  # a p2p-media-loader stream\n",
            "ab".repeat(20),
            "0123456789abcdefghij"
        );
        let set = parse_list(&text, Path::new("allow.txt")).unwrap();
        assert!(set.contains(&Id20([0xab; 20])));
        assert!(set.contains(&Id20(*b"0123456789abcdefghij")));
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn bad_line_names_file_and_line() {
        let err = parse_list(
            &format!("{}\nnot-a-hash\n", "ab".repeat(20)),
            Path::new("deny.txt"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "deny.txt:2: not an info_hash (40 hex digits or 20 characters): \"not-a-hash\""
        );
    }

    #[test]
    fn reload_keeps_previous_lists_on_error() {
        let dir = std::env::temp_dir().join(format!("segswarm-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("allow.txt");
        std::fs::write(&file, "ab".repeat(20)).unwrap();
        let access = Access::new(&AccessConfig {
            info_hash_allow_file: Some(file.clone()),
            ..AccessConfig::default()
        })
        .unwrap();
        assert!(access.allows_info_hash(&Id20([0xab; 20])));
        assert!(!access.allows_info_hash(&Id20([0xcd; 20])));
        std::fs::write(&file, "oops\n").unwrap();
        assert!(matches!(
            access.reload(),
            Err(AccessError::BadLine { line: 1, .. })
        ));
        assert!(
            access.allows_info_hash(&Id20([0xab; 20])),
            "previous lists kept"
        );
        std::fs::write(&file, "cd".repeat(20)).unwrap();
        access.reload().unwrap();
        assert!(access.allows_info_hash(&Id20([0xcd; 20])));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn origins() {
        let open = Access::new(&AccessConfig {
            origin_deny: vec!["https://bad.example".into()],
            ..AccessConfig::default()
        })
        .unwrap();
        assert!(open.allows_origin(None));
        assert!(open.allows_origin(Some("https://good.example")));
        assert!(!open.allows_origin(Some("https://bad.example")));
        let closed = Access::new(&AccessConfig {
            origin_allow: vec!["https://video.example".into()],
            ..AccessConfig::default()
        })
        .unwrap();
        assert!(closed.allows_origin(Some("https://video.example")));
        assert!(!closed.allows_origin(Some("https://other.example")));
        assert!(!closed.allows_origin(None));
    }
}
