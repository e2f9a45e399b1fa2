//! Which swarm id scheme a PeerTube instance's players use, from its `serverVersion`.
//!
//! - before 7.1: the player used the `@peertube/p2p-media-loader-*` 1.x fork (JSON peer commands),
//!   which segswarm does not speak: refused ([`VersionError::TooOld`]);
//! - 7.1 to 8.x: upstream p2p-media-loader 2.2.x (`client/package.json` `^2.2.1`, "Upgrade
//!   p2p-media-loader to v2" in 7.1): [`IdScheme::Pml22`], swarms named after the master playlist
//!   URL and the variant's position;
//! - [`PEERTUBE_SCHEME_SINCE`] and later: PeerTube's own ids (`generateSwarmId` in
//!   `packages/core-utils/src/videos/p2p.ts`: `pt-v2-<uuid>-<type>-default-<resolution>`):
//!   [`IdScheme::PeerTube`].
//!
//! The boundaries are named constants; a seeder can always override the choice (`--id-scheme`).

use std::fmt;
use std::str::FromStr;

use crate::id_scheme::IdScheme;

/// A PeerTube `serverVersion`: `major.minor[.patch]`, with an optional `v` prefix and a
/// pre-release or build suffix (`-rc.1`, `+abc`) that is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch (0 if missing).
    pub patch: u32,
}

impl ServerVersion {
    /// `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// First version whose player speaks p2p-media-loader v2 (2.2.x ids).
pub const PML22_SINCE: ServerVersion = ServerVersion::new(7, 1, 0);

/// First version whose player names swarms with PeerTube's own `pt-v2-<uuid>-...` ids.
pub const PEERTUBE_SCHEME_SINCE: ServerVersion = ServerVersion::new(9, 0, 0);

/// Why no id scheme was chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// Not `major.minor[.patch]`.
    #[error("PeerTube serverVersion {0:?} is not a version number")]
    Unparsable(String),
    /// A player segswarm cannot talk to.
    #[error(
        "PeerTube {0} is too old: its player speaks p2p-media-loader 1.x, which segswarm does not \
         (PeerTube 7.1 or newer is needed)"
    )]
    TooOld(ServerVersion),
}

impl FromStr for ServerVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || VersionError::Unparsable(s.chars().take(80).collect());
        let t = s.trim();
        let t = t.strip_prefix(['v', 'V']).unwrap_or(t);
        let core = t.split(['-', '+']).next().unwrap_or(t);
        let mut parts = core.split('.');
        let mut num = |required: bool| -> Result<u32, VersionError> {
            match parts.next() {
                Some(p) if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) => {
                    p.parse().map_err(|_| bad())
                }
                None if !required => Ok(0),
                _ => Err(bad()),
            }
        };
        let major = num(true)?;
        let minor = num(true)?;
        let patch = num(false)?;
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Self::new(major, minor, patch))
    }
}

/// The id scheme of the players of a PeerTube `version`.
pub fn id_scheme_for(version: ServerVersion) -> Result<IdScheme, VersionError> {
    if version < PML22_SINCE {
        Err(VersionError::TooOld(version))
    } else if version < PEERTUBE_SCHEME_SINCE {
        Ok(IdScheme::Pml22)
    } else {
        Ok(IdScheme::PeerTube)
    }
}

/// [`id_scheme_for`] of a `serverVersion` string.
pub fn id_scheme_for_version(version: &str) -> Result<IdScheme, VersionError> {
    id_scheme_for(version.parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!("7.2.3".parse(), Ok(ServerVersion::new(7, 2, 3)));
        assert_eq!("v8.0".parse(), Ok(ServerVersion::new(8, 0, 0)));
        assert_eq!("8.1.0-rc.1".parse(), Ok(ServerVersion::new(8, 1, 0)));
        assert_eq!(" 6.3.3+abc ".parse(), Ok(ServerVersion::new(6, 3, 3)));
        for bad in ["", "8", "8.", "x.1", "8.1.2.3", "8.-1", "99999999999.0"] {
            assert!(
                matches!(
                    bad.parse::<ServerVersion>(),
                    Err(VersionError::Unparsable(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn chooses_the_players_scheme() {
        assert_eq!(id_scheme_for_version("7.1.0"), Ok(IdScheme::Pml22));
        assert_eq!(id_scheme_for_version("7.2.3"), Ok(IdScheme::Pml22));
        assert_eq!(id_scheme_for_version("8.0.1"), Ok(IdScheme::Pml22));
        assert_eq!(id_scheme_for_version("8.9.0"), Ok(IdScheme::Pml22));
        assert_eq!(id_scheme_for_version("9.0.0-rc.1"), Ok(IdScheme::PeerTube));
        assert_eq!(id_scheme_for_version("10.2.0"), Ok(IdScheme::PeerTube));
        assert_eq!(
            id_scheme_for_version("7.1.0").map(IdScheme::name),
            Ok("pml-2.2")
        );
        let old = id_scheme_for_version("7.0.1").unwrap_err();
        assert_eq!(old, VersionError::TooOld(ServerVersion::new(7, 0, 1)));
        assert!(old.to_string().contains("7.1 or newer"), "{old}");
        assert!(matches!(
            id_scheme_for_version("6.3.3"),
            Err(VersionError::TooOld(_))
        ));
        assert!(matches!(
            id_scheme_for_version("nope"),
            Err(VersionError::Unparsable(_))
        ));
    }
}
