//! Which videos the mirror holds: the strategies, pure and deterministic.
//!
//! [`plan`] takes each origin's candidate videos, the entries held now and the time, and says
//! per strategy which videos to add, which to keep (with their new expiry) and which to expire:
//!
//! - `most-views`: most views first; `trending`: best rank in the origin's `-trending` list
//!   first; `recently-added`: newest first among videos with at least `min_views` views (all
//!   three VOD only, as PeerTube's); `most-watched-now`: most peers in the tracker's scrape first,
//!   at least `min_peers`, lives included. Ties go by views, then origin order, then uuid.
//! - Each strategy picks in its order while its videos fit its `size_bytes` (a video that does not
//!   fit is passed over, a smaller later one may still fit). A video is held once: one already
//!   held by another strategy or a manual entry is not picked again (a strategy may take over a
//!   video another one lets go in the same plan, without fetching it again).
//! - A picked video expires `min_lifetime_secs` after it was last picked; before then, and before
//!   `since + min_lifetime_secs`, it is kept even when no longer picked. The budget comes first:
//!   if the kept videos alone exceed `size_bytes` (the size was lowered), the newest go.
//! - Manual entries never expire and count against no strategy; entries of a strategy no longer
//!   configured expire.
//!
//! Videos are keyed by uuid across origins (a federated video has the same uuid on every
//! instance): the first origin that lists it is the one it is fetched from.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::config::StrategyConfig;

/// A strategy, or a manual entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Most viewed videos (PeerTube's `most-views`).
    MostViews,
    /// The origin's trending list (PeerTube's `trending`).
    Trending,
    /// Newest videos with enough views (PeerTube's `recently-added`).
    RecentlyAdded,
    /// The swarms with the most peers at this check (tracker scrape), lives included.
    MostWatchedNow,
    /// Added by hand; never expires.
    Manual,
}

impl Strategy {
    /// Every strategy.
    pub const ALL: [Strategy; 5] = [
        Strategy::MostViews,
        Strategy::Trending,
        Strategy::RecentlyAdded,
        Strategy::MostWatchedNow,
        Strategy::Manual,
    ];

    /// The name in configuration files and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::MostViews => "most-views",
            Strategy::Trending => "trending",
            Strategy::RecentlyAdded => "recently-added",
            Strategy::MostWatchedNow => "most-watched-now",
            Strategy::Manual => "manual",
        }
    }

    /// The strategy of a name.
    pub fn from_name(name: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// A video an origin lists, as the strategies see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The video's uuid.
    pub uuid: String,
    /// Views (PeerTube's `views`).
    pub views: u64,
    /// Position in the origin's `-trending` list, 0 first; `None` when not listed.
    pub trending_rank: Option<u32>,
    /// Publication time, Unix seconds.
    pub published_at: i64,
    /// Bytes the mirror needs for it (for a live, an estimate of its window); 0 when unknown,
    /// and then it is not picked.
    pub bytes: u64,
    /// A live stream.
    pub is_live: bool,
    /// Peers in its swarms in the tracker's last scrape (0 when unknown).
    pub peers: u32,
}

/// One origin's candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginCandidates {
    /// The origin (its URL as configured).
    pub origin: String,
    /// Its videos.
    pub videos: Vec<Candidate>,
}

/// A video the mirror holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The origin it is fetched from.
    pub origin: String,
    /// The video's uuid.
    pub uuid: String,
    /// The strategy holding it.
    pub strategy: Strategy,
    /// When the strategy picked it, Unix seconds.
    pub since: u64,
    /// When it may expire, Unix seconds; `None` for manual entries.
    pub until: Option<u64>,
    /// Bytes it holds (or, when just added, is expected to).
    pub bytes: u64,
}

/// What [`plan`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Videos to fetch, with the entry to record.
    pub add: Vec<Entry>,
    /// Entries kept, with their new expiry (and strategy, when one took over another's).
    pub keep: Vec<Entry>,
    /// Entries to drop.
    pub expire: Vec<Entry>,
}

impl Plan {
    /// Bytes of the entries a strategy holds after the plan.
    pub fn bytes_of(&self, strategy: Strategy) -> u64 {
        self.add
            .iter()
            .chain(&self.keep)
            .filter(|e| e.strategy == strategy)
            .fold(0, |a, e| a.saturating_add(e.bytes))
    }
}

/// A candidate with the index of the origin it comes from.
struct Ranked<'a> {
    origin: usize,
    origin_url: &'a str,
    c: &'a Candidate,
}

fn eligible(s: &StrategyConfig, c: &Candidate) -> bool {
    match s.strategy {
        Strategy::MostViews => !c.is_live,
        Strategy::Trending => !c.is_live && c.trending_rank.is_some(),
        Strategy::RecentlyAdded => !c.is_live && c.views >= s.min_views(),
        Strategy::MostWatchedNow => c.peers >= s.min_peers(),
        Strategy::Manual => false,
    }
}

/// Sorts candidates in a strategy's order (best first), ties by views, origin order, uuid.
fn rank(strategy: Strategy, list: &mut [Ranked<'_>]) {
    list.sort_by(|a, b| {
        let primary = match strategy {
            Strategy::MostViews | Strategy::Manual => std::cmp::Ordering::Equal,
            Strategy::Trending => a.c.trending_rank.cmp(&b.c.trending_rank),
            Strategy::RecentlyAdded => b.c.published_at.cmp(&a.c.published_at),
            Strategy::MostWatchedNow => b.c.peers.cmp(&a.c.peers),
        };
        primary
            .then(b.c.views.cmp(&a.c.views))
            .then(a.origin.cmp(&b.origin))
            .then(a.c.uuid.cmp(&b.c.uuid))
    });
}

/// Decides what each strategy adds, keeps and expires. See the module documentation.
pub fn plan(
    strategies: &[StrategyConfig],
    origins: &[OriginCandidates],
    entries: &[Entry],
    now: u64,
) -> Plan {
    let mut out = Plan::default();

    // One candidate per uuid: the first origin's (then the first listing's).
    let mut candidates: BTreeMap<&str, Ranked<'_>> = BTreeMap::new();
    for (i, o) in origins.iter().enumerate() {
        for c in &o.videos {
            candidates.entry(c.uuid.as_str()).or_insert(Ranked {
                origin: i,
                origin_url: &o.origin,
                c,
            });
        }
    }

    // One entry per uuid (the database guarantees it; a second one is dropped).
    let mut held: BTreeMap<&str, &Entry> = BTreeMap::new();
    for e in entries {
        if held.contains_key(e.uuid.as_str()) {
            out.expire.push(e.clone());
        } else {
            held.insert(&e.uuid, e);
        }
    }
    // Owner of each held uuid as the plan goes; removed when expired (then free to take over).
    let mut owner: BTreeMap<&str, Strategy> = held.iter().map(|(u, e)| (*u, e.strategy)).collect();
    // Expired so far in this plan, by uuid (index into out.expire).
    let mut expired: BTreeMap<String, Entry> = BTreeMap::new();

    let configured: BTreeSet<Strategy> = strategies.iter().map(|s| s.strategy).collect();
    for e in held.values() {
        if e.strategy == Strategy::Manual {
            out.keep.push((*e).clone());
        } else if !configured.contains(&e.strategy) {
            owner.remove(e.uuid.as_str());
            expired.insert(e.uuid.clone(), (*e).clone());
        }
    }

    for s in strategies {
        if s.strategy == Strategy::Manual {
            continue;
        }
        let lifetime = s.min_lifetime_secs;
        let renewed = now.saturating_add(lifetime);
        let mine: Vec<&Entry> = held
            .values()
            .copied()
            .filter(|e| e.strategy == s.strategy)
            .collect();
        let earliest = |e: &Entry| e.until.unwrap_or(0).max(e.since.saturating_add(lifetime));
        let (mut locked, unlocked): (Vec<&Entry>, Vec<&Entry>) =
            mine.into_iter().partition(|e| now < earliest(e));
        // Budget first: the newest locked entries go until the rest fit.
        locked.sort_by_key(|e| (e.since, Reverse(e.uuid.as_str())));
        let mut used = locked.iter().fold(0u64, |a, e| a.saturating_add(e.bytes));
        while used > s.size_bytes {
            let Some(e) = locked.pop() else { break };
            used = used.saturating_sub(e.bytes);
            owner.remove(e.uuid.as_str());
            expired.insert(e.uuid.clone(), e.clone());
        }
        let mut locked: BTreeMap<&str, Entry> = locked
            .into_iter()
            .map(|e| (e.uuid.as_str(), e.clone()))
            .collect();
        let unlocked: BTreeMap<&str, &Entry> =
            unlocked.into_iter().map(|e| (e.uuid.as_str(), e)).collect();

        let mut ranked: Vec<Ranked<'_>> = candidates
            .values()
            .filter(|r| eligible(s, r.c))
            .map(|r| Ranked {
                origin: r.origin,
                origin_url: r.origin_url,
                c: r.c,
            })
            .collect();
        rank(s.strategy, &mut ranked);

        let mut picked: BTreeSet<&str> = BTreeSet::new();
        for r in &ranked {
            let uuid = r.c.uuid.as_str();
            if let Some(e) = locked.get_mut(uuid) {
                // Still wanted: its lifetime starts again.
                e.until = Some(e.until.unwrap_or(0).max(renewed));
                continue;
            }
            if let Some(o) = owner.get(uuid) {
                if *o != s.strategy {
                    continue;
                }
            }
            // What is on disk counts for a held video; the origin's figure for a new one.
            let (bytes, taken) = if let Some(e) = unlocked.get(uuid) {
                (e.bytes, None)
            } else if let Some(e) = expired.get(uuid) {
                (e.bytes, Some(e.clone()))
            } else {
                (r.c.bytes, None)
            };
            if bytes == 0 || used.saturating_add(bytes) > s.size_bytes {
                continue;
            }
            used += bytes;
            picked.insert(uuid);
            if let Some(e) = unlocked.get(uuid) {
                out.keep.push(Entry {
                    until: Some(e.until.unwrap_or(0).max(renewed)),
                    ..(*e).clone()
                });
            } else if let Some(e) = taken {
                expired.remove(uuid);
                owner.insert(uuid, s.strategy);
                out.keep.push(Entry {
                    strategy: s.strategy,
                    since: now,
                    until: Some(renewed),
                    ..e
                });
            } else {
                owner.insert(uuid, s.strategy);
                out.add.push(Entry {
                    origin: r.origin_url.to_owned(),
                    uuid: uuid.to_owned(),
                    strategy: s.strategy,
                    since: now,
                    until: Some(renewed),
                    bytes,
                });
            }
        }
        out.keep.extend(locked.into_values());
        for (uuid, e) in unlocked {
            if !picked.contains(uuid) {
                owner.remove(uuid);
                expired.insert(uuid.to_owned(), e.clone());
            }
        }
    }
    out.expire.extend(expired.into_values());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop, prop_assert, prop_assert_eq, proptest};

    const H: u64 = 3600;

    fn strat(strategy: Strategy, size: u64, lifetime: u64) -> StrategyConfig {
        StrategyConfig {
            strategy,
            size_bytes: size,
            min_lifetime_secs: lifetime,
            min_views: None,
            min_peers: None,
        }
    }

    fn video(uuid: &str, views: u64, bytes: u64) -> Candidate {
        Candidate {
            uuid: uuid.into(),
            views,
            trending_rank: None,
            published_at: 0,
            bytes,
            is_live: false,
            peers: 0,
        }
    }

    fn origin(videos: Vec<Candidate>) -> Vec<OriginCandidates> {
        vec![OriginCandidates {
            origin: "https://a".into(),
            videos,
        }]
    }

    fn entry(uuid: &str, strategy: Strategy, since: u64, until: Option<u64>, bytes: u64) -> Entry {
        Entry {
            origin: "https://a".into(),
            uuid: uuid.into(),
            strategy,
            since,
            until,
            bytes,
        }
    }

    fn uuids(list: &[Entry]) -> Vec<&str> {
        list.iter().map(|e| e.uuid.as_str()).collect()
    }

    #[test]
    fn most_views_fills_its_budget_in_view_order() {
        let s = [strat(Strategy::MostViews, 100, 10 * H)];
        let o = origin(vec![
            video("a", 5, 40),
            video("b", 50, 60),
            video("c", 20, 50),
            video("d", 1, 30),
        ]);
        let p = plan(&s, &o, &[], 1000);
        // b (60) fits, c (50) does not, a (40) does, d (30) does not.
        assert_eq!(uuids(&p.add), ["b", "a"]);
        assert_eq!(p.add[0].until, Some(1000 + 10 * H));
        assert_eq!(p.add[0].since, 1000);
        assert_eq!(p.bytes_of(Strategy::MostViews), 100);
    }

    #[test]
    fn budget_edges() {
        let s = [strat(Strategy::MostViews, 100, 10 * H)];
        // Exactly the budget fits; one byte more does not; 0 bytes (unknown) is never picked.
        let p = plan(&s, &origin(vec![video("a", 2, 100)]), &[], 0);
        assert_eq!(uuids(&p.add), ["a"]);
        let p = plan(
            &s,
            &origin(vec![video("a", 2, 101), video("z", 1, 0)]),
            &[],
            0,
        );
        assert!(p.add.is_empty());
        // u64::MAX sizes do not overflow.
        let p = plan(
            &s,
            &origin(vec![video("a", 2, 60), video("b", 1, u64::MAX)]),
            &[],
            0,
        );
        assert_eq!(uuids(&p.add), ["a"]);
    }

    #[test]
    fn trending_goes_by_rank_and_skips_lives_and_unlisted() {
        let s = [strat(Strategy::Trending, 100, 10 * H)];
        let mut a = video("a", 1000, 10);
        a.trending_rank = Some(2);
        let mut b = video("b", 1, 10);
        b.trending_rank = Some(0);
        let mut live = video("l", 1, 10);
        live.trending_rank = Some(1);
        live.is_live = true;
        let p = plan(&s, &origin(vec![a, b, live, video("x", 9999, 10)]), &[], 0);
        assert_eq!(uuids(&p.add), ["b", "a"]);
    }

    #[test]
    fn recently_added_needs_min_views() {
        let mut s = strat(Strategy::RecentlyAdded, 100, 10 * H);
        s.min_views = Some(10);
        let mut old = video("old", 50, 10);
        old.published_at = 100;
        let mut new = video("new", 10, 10);
        new.published_at = 300;
        let mut unseen = video("unseen", 9, 10);
        unseen.published_at = 400;
        let p = plan(&[s], &origin(vec![old, new, unseen]), &[], 0);
        assert_eq!(uuids(&p.add), ["new", "old"]);
    }

    #[test]
    fn most_watched_now_follows_peers_lives_included() {
        let mut s = strat(Strategy::MostWatchedNow, 100, 60);
        s.min_peers = Some(2);
        let mut live = video("live", 0, 30);
        live.is_live = true;
        live.peers = 9;
        let mut vod = video("vod", 5, 30);
        vod.peers = 3;
        let mut lonely = video("lonely", 500, 30);
        lonely.peers = 1;
        let p = plan(&[s], &origin(vec![vod, lonely, live]), &[], 0);
        assert_eq!(uuids(&p.add), ["live", "vod"]);
    }

    #[test]
    fn ties_are_broken_by_views_then_origin_then_uuid() {
        let s = [strat(Strategy::MostWatchedNow, 30, 60)];
        let mk = |u: &str, views| {
            let mut v = video(u, views, 10);
            v.peers = 4;
            v
        };
        let origins = vec![
            OriginCandidates {
                origin: "https://z".into(),
                videos: vec![mk("b", 1), mk("a", 1)],
            },
            OriginCandidates {
                origin: "https://y".into(),
                videos: vec![mk("0", 1), mk("c", 2)],
            },
        ];
        let p = plan(&s, &origins, &[], 0);
        // c has more views; then the first origin's a, b; the second origin's 0 does not fit.
        assert_eq!(uuids(&p.add), ["c", "a", "b"]);
        // The same input in any order gives the same plan.
        let mut shuffled = origins.clone();
        shuffled[0].videos.reverse();
        shuffled[1].videos.reverse();
        assert_eq!(plan(&s, &shuffled, &[], 0), p);
    }

    #[test]
    fn a_video_is_held_once_and_from_the_first_origin() {
        let s = [
            strat(Strategy::MostViews, 100, 10 * H),
            strat(Strategy::RecentlyAdded, 100, 10 * H),
        ];
        let origins = vec![
            OriginCandidates {
                origin: "https://first".into(),
                videos: vec![video("v", 9, 10)],
            },
            OriginCandidates {
                origin: "https://second".into(),
                videos: vec![video("v", 99, 10)],
            },
        ];
        let p = plan(&s, &origins, &[], 0);
        assert_eq!(p.add.len(), 1);
        assert_eq!(p.add[0].origin, "https://first");
        assert_eq!(p.add[0].strategy, Strategy::MostViews);
    }

    #[test]
    fn min_lifetime_keeps_an_entry_no_longer_picked() {
        let s = [strat(Strategy::MostViews, 100, 10 * H)];
        let held = [entry("old", Strategy::MostViews, 0, Some(10 * H), 80)];
        let o = origin(vec![video("hot", 1000, 50)]);
        // Before its expiry: kept, and it takes budget (hot does not fit).
        let p = plan(&s, &o, &held, 10 * H - 1);
        assert_eq!(uuids(&p.keep), ["old"]);
        assert!(p.add.is_empty() && p.expire.is_empty());
        // At its expiry, not picked: expired, and hot comes in.
        let p = plan(&s, &o, &held, 10 * H);
        assert_eq!(uuids(&p.expire), ["old"]);
        assert_eq!(uuids(&p.add), ["hot"]);
        // since + min_lifetime holds even when `until` is earlier (a lifetime raised by a reload).
        let early = [entry("old", Strategy::MostViews, 0, Some(60), 80)];
        assert_eq!(uuids(&plan(&s, &o, &early, 5 * H).keep), ["old"]);
    }

    #[test]
    fn a_picked_entry_is_renewed() {
        let s = [strat(Strategy::MostViews, 100, 10 * H)];
        let o = origin(vec![video("a", 10, 50)]);
        let held = [entry("a", Strategy::MostViews, 0, Some(10 * H), 50)];
        for now in [H, 20 * H] {
            let p = plan(&s, &o, &held, now);
            assert_eq!(p.keep.len(), 1, "at {now}");
            assert_eq!(p.keep[0].until, Some(now + 10 * H));
            assert_eq!(p.keep[0].since, 0);
            assert!(p.add.is_empty() && p.expire.is_empty());
        }
    }

    #[test]
    fn manual_entries_never_expire_and_block_strategies() {
        let s = [strat(Strategy::MostViews, 100, 10 * H)];
        let held = [entry("m", Strategy::Manual, 0, None, 5000)];
        let p = plan(&s, &origin(vec![video("m", 10, 50)]), &held, u64::MAX);
        assert_eq!(uuids(&p.keep), ["m"]);
        assert!(p.add.is_empty() && p.expire.is_empty());
        assert_eq!(p.bytes_of(Strategy::MostViews), 0);
        // Even with no strategy configured at all.
        assert_eq!(uuids(&plan(&[], &[], &held, 1).keep), ["m"]);
    }

    #[test]
    fn a_removed_strategy_expires_its_entries_and_another_may_take_them_over() {
        let held = [
            entry("t", Strategy::Trending, 0, Some(100 * H), 10),
            entry("u", Strategy::Trending, 0, Some(100 * H), 10),
        ];
        let s = [strat(Strategy::MostViews, 100, 10 * H)];
        let p = plan(&s, &origin(vec![video("t", 5, 10)]), &held, 1);
        assert_eq!(uuids(&p.expire), ["u"]);
        assert_eq!(p.keep.len(), 1);
        assert_eq!(p.keep[0].strategy, Strategy::MostViews);
        assert_eq!(p.keep[0].since, 1);
        assert!(p.add.is_empty());
    }

    #[test]
    fn a_lowered_size_expires_the_newest_locked_entries() {
        let s = [strat(Strategy::MostViews, 100, 10 * H)];
        let held = [
            entry("a", Strategy::MostViews, 10, Some(100 * H), 60),
            entry("b", Strategy::MostViews, 20, Some(100 * H), 60),
        ];
        let p = plan(&s, &[], &held, 30);
        assert_eq!(uuids(&p.keep), ["a"]);
        assert_eq!(uuids(&p.expire), ["b"]);
    }

    fn arb_strategy() -> impl proptest::strategy::Strategy<Value = super::Strategy> {
        prop::sample::select(Strategy::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn budgets_always_hold(
            sizes in prop::collection::vec(0u64..400, 4),
            lifetimes in prop::collection::vec(0u64..50, 4),
            vids in prop::collection::vec(
                (0u8..30, 0u64..100, prop::option::of(0u32..10), 0i64..100, 0u64..150, any::<bool>(), 0u32..5, 0usize..3),
                0..40),
            held in prop::collection::vec(
                (0u8..30, arb_strategy(), 0u64..100, prop::option::of(0u64..200), 0u64..200),
                0..15),
            now in 0u64..200,
            min_views in prop::option::of(0u64..50),
        ) {
            let kinds = [Strategy::MostViews, Strategy::Trending, Strategy::RecentlyAdded, Strategy::MostWatchedNow];
            let mut strategies: Vec<StrategyConfig> = kinds.iter().enumerate()
                .filter(|(i, _)| sizes[*i] > 0)
                .map(|(i, k)| {
                    let mut s = strat(*k, sizes[i], lifetimes[i]);
                    if *k == Strategy::RecentlyAdded { s.min_views = min_views; }
                    s
                })
                .collect();
            let n = strategies.len();
            if n > 0 {
                strategies.rotate_left(lifetimes[3] as usize % n);
            }
            let mut origins: Vec<OriginCandidates> = (0..3).map(|i| OriginCandidates { origin: format!("o{i}"), videos: vec![] }).collect();
            for (u, views, rank, published, bytes, live, peers, o) in vids {
                origins[o].videos.push(Candidate { uuid: format!("v{u}"), views, trending_rank: rank, published_at: published, bytes, is_live: live, peers });
            }
            let mut uniq = BTreeSet::new();
            let entries: Vec<Entry> = held.iter().filter(|h| uniq.insert(h.0)).map(|(u, s, since, until, bytes)| Entry {
                origin: "o0".into(), uuid: format!("v{u}"), strategy: *s, since: *since,
                until: if *s == Strategy::Manual { None } else { *until }, bytes: *bytes,
            }).collect();
            let p = plan(&strategies, &origins, &entries, now);
            for s in &strategies {
                prop_assert!(p.bytes_of(s.strategy) <= s.size_bytes, "{:?} over budget: {:?}", s.strategy, p);
            }
            // Each uuid held at most once after the plan.
            let mut seen = BTreeSet::new();
            for e in p.add.iter().chain(&p.keep) {
                prop_assert!(seen.insert(e.uuid.clone()), "{} twice: {:?}", e.uuid, p);
            }
            // Every input entry is kept or expired, exactly once; manual entries are kept.
            prop_assert_eq!(p.keep.len() + p.expire.len(), entries.len());
            prop_assert!(p.expire.iter().all(|e| e.strategy != Strategy::Manual));
            // min_lifetime: a locked entry of a configured strategy is expired only when the
            // locked entries alone exceed the budget.
            for s in &strategies {
                let locked: Vec<&Entry> = entries.iter().filter(|e| e.strategy == s.strategy
                    && now < e.until.unwrap_or(0).max(e.since + s.min_lifetime_secs)).collect();
                let bytes: u64 = locked.iter().map(|e| e.bytes).sum();
                if bytes <= s.size_bytes {
                    for e in locked {
                        prop_assert!(!p.expire.iter().any(|x| x.uuid == e.uuid), "locked {} expired: {:?}", e.uuid, p);
                    }
                }
            }
            // Deterministic.
            prop_assert_eq!(plan(&strategies, &origins, &entries, now), p);
        }
    }
}
