//! A configuration reloaded while running (SIGHUP): which settings take effect now and which
//! wait for a restart.
//!
//! Take effect at once: `origins` (a new one is read at once; a dropped one is no longer read,
//! its entries kept until a strategy or `segswarm mirror remove` drops them), `manual` (a new URL
//! is recorded at the next check; a URL no longer listed stays mirrored until removed),
//! `check_interval_secs`, `cache_bytes` (a lower budget stops fetches until evictions make
//! room), `list_count`, `min_lifetime_floor_secs` and `strategies`. Need a restart, and keep
//! their running value until then: `cache_dir`, `database`, `listen`, `admin_listen`,
//! `upload_bytes_per_sec`, `max_peers` and `max_seeded_videos`.

use super::config::MirrorConfig;

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Settings changed and applied.
    pub applied: Vec<&'static str>,
    /// Settings changed but ignored until a restart.
    pub ignored_until_restart: Vec<&'static str>,
}

/// The settings of `new` that differ from `old`, as [`ReloadReport`] sorts them, and the
/// configuration to run with: `new`, with the settings that need a restart kept from `old`.
pub fn merge(old: &MirrorConfig, new: &MirrorConfig) -> (MirrorConfig, ReloadReport) {
    let mut report = ReloadReport::default();
    let mut next = new.clone();
    macro_rules! live {
        ($($f:ident),*) => {$(
            if old.$f != new.$f {
                report.applied.push(stringify!($f));
            }
        )*};
    }
    macro_rules! on_restart {
        ($($f:ident),*) => {$(
            if old.$f != new.$f {
                report.ignored_until_restart.push(stringify!($f));
                next.$f = old.$f.clone();
            }
        )*};
    }
    live!(
        origins,
        manual,
        check_interval_secs,
        cache_bytes,
        list_count,
        min_lifetime_floor_secs,
        strategies
    );
    on_restart!(
        cache_dir,
        database,
        listen,
        admin_listen,
        upload_bytes_per_sec,
        max_peers,
        max_seeded_videos
    );
    (next, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_settings_applied_and_the_others_kept_until_restart() {
        let old = MirrorConfig::default();
        let new = MirrorConfig {
            origins: vec!["https://a.example".into()],
            cache_bytes: 5,
            strategies: Vec::new(),
            listen: "127.0.0.1:1".parse().unwrap(),
            max_peers: 3,
            ..MirrorConfig::default()
        };
        let (next, report) = merge(&old, &new);
        assert_eq!(report.applied, ["origins", "cache_bytes", "strategies"]);
        assert_eq!(report.ignored_until_restart, ["listen", "max_peers"]);
        assert_eq!(
            next,
            MirrorConfig {
                listen: old.listen,
                max_peers: old.max_peers,
                ..new
            }
        );
        assert_eq!(merge(&old, &old).1, ReloadReport::default());
    }
}
