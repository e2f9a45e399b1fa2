//! One stream's task: its engine on a [`PeerDriver`], fed by rescans, writing the manifest.

use super::*;

fn spawn_stream(
    config: &SeederConfig,
    root_url: &str,
    identity: &StreamIdentity,
    live: bool,
) -> Result<DriverHandle, String> {
    let mut rng = rand::rng();
    let mut peer_id = [0u8; 20];
    let id = generate_peer_id_with_prefix(&config.id_scheme.peer_id_prefix(), &mut rng);
    peer_id.copy_from_slice(&id.as_bytes()[..20]);
    let mut engine =
        EngineConfig::new(peer_id, identity.info_hash, live, vec![root_url.to_owned()]);
    engine.max_peers = config.max_peers;
    engine.upload_rate = config.upload_rate;
    engine.max_concurrent_uploads = config.max_concurrent_uploads.max(1);
    engine.store_max_bytes = config.store_max_bytes;
    engine.tracker.max_offers = config.offers_per_announce;
    engine.tracker.numwant = engine.tracker.numwant.max(config.offers_per_announce);
    engine.tracker.fill_interval = config.fill_announce_interval;
    engine.tracker.fill_idle_rounds = config.fill_idle_rounds;
    engine.tracker.offer_timeout = config.offer_timeout;
    engine.seed = rng.random();
    let mut driver = config.driver.clone();
    driver.tracker_urls = config.tracker_urls.clone();
    PeerDriver::spawn(engine, driver).map_err(|e| e.to_string())
}

fn corrupt(data: Bytes) -> Bytes {
    let mut v = data.to_vec();
    for b in v.iter_mut().skip(200).step_by(997) {
        *b ^= 0x5a;
    }
    Bytes::from(v)
}

/// Writes `manifest` to `dir/segments-sha256.json` if its text differs from what is there
/// (through a temporary file and a rename, so readers never see half a manifest).
pub(super) fn write_manifest(dir: &Path, manifest: &SegmentManifest) -> std::io::Result<bool> {
    let path = dir.join(MANIFEST_FILE_NAME);
    let text = manifest.to_json();
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    let tmp = dir.join(format!(".{MANIFEST_FILE_NAME}.tmp"));
    std::fs::write(&tmp, text.as_bytes())?;
    std::fs::rename(&tmp, &path)?;
    Ok(true)
}

pub(super) async fn run(
    config: SeederConfig,
    mut scanner: Scanner,
    stats: Arc<Mutex<SeederStats>>,
    mut stop: watch::Receiver<bool>,
) {
    let root_url = scanner.root_url().to_owned();
    let mut streams: BTreeMap<String, StreamState> = BTreeMap::new();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut manifests_written = 0u64;
    let mut scans = 0u64;
    let mut last_order: Vec<String> = Vec::new();
    loop {
        // Scanning reads and hashes files: off the async threads.
        let (back, scan) = match tokio::task::spawn_blocking(move || {
            let scan = scanner.scan(SystemTime::now());
            (scanner, scan)
        })
        .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("seeder scan task failed: {e}");
                break;
            }
        };
        scanner = back;
        scans += 1;
        // Each problem is logged when it appears, once.
        let now_problems: BTreeSet<String> = scan.problems.iter().cloned().collect();
        for p in now_problems.difference(&reported) {
            tracing::warn!("seeder: {p}");
        }
        reported = now_problems;

        let mut order = Vec::new();
        for st in &scan.streams {
            let key = st.identity.stream_swarm_id.clone();
            order.push(key.clone());
            let Some(media) = &st.media else { continue };
            // A stream that turns from live to VOD (or back) changes its segment ids, and a
            // segment rewritten with other bytes (a re-encoded VOD) cannot be taken back from the
            // engine's store: start that stream over.
            let rewritten = streams.get(&key).is_some_and(|s| {
                media.segments.iter().any(|seg| {
                    s.added
                        .get(&seg.info.id)
                        .is_some_and(|(_, d)| *d != seg.digest)
                })
            });
            if rewritten {
                tracing::warn!(playlist = %st.playlist, "segments rewritten; rejoining the swarm");
            }
            if rewritten || streams.get(&key).is_some_and(|s| s.live != media.live) {
                if let Some(old) = streams.remove(&key) {
                    old.driver.shutdown().await;
                }
            }
            if !streams.contains_key(&key) {
                match spawn_stream(&config, &root_url, &st.identity, media.live) {
                    Ok(driver) => {
                        tracing::info!(
                            playlist = %st.playlist,
                            swarm = %st.identity.stream_swarm_id,
                            info_hash = %st.identity.info_hash_str(),
                            live = media.live,
                            "joined swarm"
                        );
                        streams.insert(
                            key.clone(),
                            StreamState {
                                driver,
                                playlist_path: st.playlist.clone(),
                                identity: st.identity.clone(),
                                live: media.live,
                                added: BTreeMap::new(),
                                playlist: Vec::new(),
                                skipped: 0,
                            },
                        );
                    }
                    Err(e) => {
                        tracing::error!(playlist = %st.playlist, "cannot start the peer driver: {e}");
                        continue;
                    }
                }
            }
            let Some(state) = streams.get_mut(&key) else {
                continue;
            };
            state.skipped = media.skipped;
            let infos: Vec<SegmentInfo> = media.segments.iter().map(|s| s.info.clone()).collect();
            if infos != state.playlist {
                let _ = state.driver.set_playlist(infos.clone());
                state.playlist = infos;
            }
            for seg in &media.segments {
                if state.added.contains_key(&seg.info.id) {
                    continue;
                }
                let s = seg.clone();
                let read = tokio::task::spawn_blocking(move || read_segment(&s)).await;
                match read {
                    Ok(Ok(data)) => {
                        let len = data.len() as u64;
                        let data = if config.corrupt_uploads {
                            corrupt(data)
                        } else {
                            data
                        };
                        let _ = state.driver.add_segment(seg.info.id, data);
                        state.added.insert(seg.info.id, (len, seg.digest));
                    }
                    Ok(Err(e)) => tracing::warn!(segment = %seg.info.path, "seeder: {e}, skipped"),
                    Err(e) => tracing::warn!("seeder read task failed: {e}"),
                }
            }
            // Forget segments that left a live window (the engine's store ages them out).
            let window: BTreeSet<SegmentId> = media.segments.iter().map(|s| s.info.id).collect();
            state.added.retain(|id, _| window.contains(id));
        }
        // Streams gone from a readable entry playlist: leave their swarms.
        if !scan.streams.is_empty() {
            let gone: Vec<String> = streams
                .keys()
                .filter(|k| !order.contains(k))
                .cloned()
                .collect();
            for k in gone {
                if let Some(s) = streams.remove(&k) {
                    tracing::info!(swarm = %k, "stream left the playlist; leaving its swarm");
                    s.driver.shutdown().await;
                }
            }
        }
        if config.write_manifest {
            let manifests = scan.manifests();
            let written = tokio::task::spawn_blocking(move || {
                let mut n = 0;
                for (dir, m) in &manifests {
                    match write_manifest(dir, m) {
                        Ok(true) => n += 1,
                        Ok(false) => {}
                        Err(e) => tracing::warn!(dir = %dir.display(), "cannot write {MANIFEST_FILE_NAME}: {e}"),
                    }
                }
                n
            })
            .await
            .unwrap_or(0);
            manifests_written += written;
        }
        for s in streams.values_mut() {
            // Peer events are not needed here; keep the queue empty.
            while s.driver.try_event().is_some() {}
        }
        let snapshot = snapshot(&order, &streams, &scan.problems, scans, manifests_written).await;
        if let Ok(mut s) = stats.lock() {
            *s = snapshot;
        }
        last_order = order;
        tokio::select! {
            _ = tokio::time::sleep(config.rescan_interval) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    // Final statistics, then a graceful stop: every swarm at once.
    let order: Vec<String> = last_order;
    let final_stats = {
        let problems = stats.lock().map(|s| s.problems.clone()).unwrap_or_default();
        snapshot(&order, &streams, &problems, scans, manifests_written).await
    };
    if let Ok(mut s) = stats.lock() {
        *s = final_stats;
    }
    let mut handles = Vec::new();
    for (_, s) in std::mem::take(&mut streams) {
        handles.push(tokio::spawn(async move { s.driver.shutdown().await }));
    }
    for h in handles {
        let _ = h.await;
    }
    tracing::info!("seeder stopped");
}

async fn snapshot(
    order: &[String],
    streams: &BTreeMap<String, StreamState>,
    problems: &[String],
    scans: u64,
    manifests_written: u64,
) -> SeederStats {
    let mut out = Vec::new();
    for key in order {
        let Some(s) = streams.get(key) else { continue };
        let ds = s.driver.stats().await.unwrap_or_default();
        out.push(StreamStats {
            playlist: s.playlist_path.clone(),
            stream_swarm_id: s.identity.stream_swarm_id.clone(),
            info_hash: s.identity.info_hash_str().to_owned(),
            live: s.live,
            segments: s.added.len(),
            segment_bytes: s.added.values().map(|(n, _)| n).sum(),
            skipped: s.skipped,
            uploaded_bytes: ds.engine.uploaded_bytes,
            peers: ds.peers_connected,
            peers_connected_total: ds.engine.peers_connected,
        });
    }
    SeederStats {
        streams: out,
        problems: problems.to_vec(),
        scans,
        manifests_written,
    }
}
