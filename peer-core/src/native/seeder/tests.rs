//! Tests of the directory scan and the file checks.

use super::*;
use crate::stream::generate_stream_short_id;

const PUBLIC: &str = "http://videos.example/live/master.m3u8?token=1";

/// `n` whole MPEG-TS packets with a pattern depending on `seed`.
fn ts(n: usize, seed: u8) -> Vec<u8> {
    let mut v = vec![seed; n * 188];
    for p in v.chunks_mut(188) {
        p[0] = 0x47;
    }
    v
}

fn media(seq: u64, segs: &[&str], ended: bool) -> String {
    let mut s = format!("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:{seq}\n");
    for seg in segs {
        s.push_str(&format!("#EXTINF:4.000000,\n{seg}\n"));
    }
    if ended {
        s.push_str("#EXT-X-ENDLIST\n");
    }
    s
}

fn scanner(dir: &Path, playlist: &str) -> Scanner {
    let entry = find_entry(&dir.join(playlist)).unwrap();
    Scanner::new(entry, PUBLIC, None, ScanSettings::default()).unwrap()
}

#[test]
fn single_media_playlist_ids_manifest_and_identity() {
    let d = tempfile::tempdir().unwrap();
    for i in 0..3 {
        std::fs::write(d.path().join(format!("s{i}.ts")), ts(10 + i, i as u8)).unwrap();
    }
    std::fs::write(
        d.path().join("index.m3u8"),
        media(0, &["s0.ts", "s1.ts", "s2.ts"], true),
    )
    .unwrap();
    // A directory with one playlist finds it.
    let entry = find_entry(d.path()).unwrap();
    assert_eq!(entry.playlist, "index.m3u8");
    let mut sc = Scanner::new(
        entry,
        "http://h:8080/v/index.m3u8",
        None,
        ScanSettings::default(),
    )
    .unwrap();
    assert_eq!(sc.root_url(), "http://h:8080/v/");
    let scan = sc.scan(SystemTime::now());
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    assert_eq!(scan.streams.len(), 1);
    let st = &scan.streams[0];
    let short = generate_stream_short_id(&ShortIdProps {
        bitrate: Some(0.0),
        ..Default::default()
    });
    assert_eq!(
        st.identity,
        StreamIdentity::new(None, "http://h:8080/v/index.m3u8", StreamType::Main, short)
    );
    let m = st.media.as_ref().unwrap();
    assert!(!m.live);
    let ids: Vec<i64> = m.segments.iter().map(|s| s.info.id).collect();
    assert_eq!(ids, vec![0, 1, 2]);
    assert_eq!(m.segments[1].info.path, "s1.ts");
    assert_eq!(m.segments[2].digest, sha256(&ts(12, 2)));
    let manifests = scan.manifests();
    assert_eq!(manifests.len(), 1);
    let man = &manifests[&d.path().canonicalize().unwrap()];
    assert_eq!(
        man.verify("s0.ts", None, &ts(10, 0)),
        crate::integrity::Verification::Valid
    );
    assert_eq!(
        man.verify("s0.ts", None, &ts(10, 9)),
        crate::integrity::Verification::Mismatch
    );
    assert_eq!(
        read_segment(&m.segments[0]).unwrap().as_ref(),
        ts(10, 0).as_slice()
    );
}

#[test]
fn master_playlist_one_swarm_per_variant_with_pml_ids() {
    let d = tempfile::tempdir().unwrap();
    let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS=\"avc1.42c01e\"\nlow/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720,CODECS=\"avc1.42c01f\"\nhigh/index.m3u8\n";
    std::fs::write(d.path().join("master.m3u8"), master).unwrap();
    std::fs::write(d.path().join("other.m3u8"), media(0, &[], true)).unwrap();
    for v in ["low", "high"] {
        std::fs::create_dir(d.path().join(v)).unwrap();
        std::fs::write(d.path().join(v).join("a.ts"), ts(5, 1)).unwrap();
        std::fs::write(
            d.path().join(v).join("index.m3u8"),
            media(0, &["a.ts"], true),
        )
        .unwrap();
    }
    // Two playlists, one of them multivariant: that one.
    assert_eq!(find_entry(d.path()).unwrap().playlist, "master.m3u8");
    let mut sc = scanner(d.path(), "master.m3u8");
    let scan = sc.scan(SystemTime::now());
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    let expected: Vec<StreamIdentity> = master_playlist_streams(master)
        .into_iter()
        .map(|s| StreamIdentity::new(None, PUBLIC, s.stream_type, s.short_id()))
        .collect();
    let got: Vec<&StreamIdentity> = scan.streams.iter().map(|s| &s.identity).collect();
    assert_eq!(got, expected.iter().collect::<Vec<_>>());
    assert!(got[0]
        .stream_swarm_id
        .starts_with("v2-http://videos.example/live/master.m3u8-main-"));
    assert_ne!(got[0].info_hash, got[1].info_hash);
    assert_eq!(scan.streams[1].playlist, "high/index.m3u8");
    assert_eq!(
        scan.streams[1].media.as_ref().unwrap().segments[0]
            .info
            .path,
        "high/a.ts"
    );
    // One manifest per segment directory.
    assert_eq!(scan.manifests().len(), 2);
    // An explicit swarm id replaces the URL.
    let entry = find_entry(&d.path().join("master.m3u8")).unwrap();
    let mut sc = Scanner::new(
        entry,
        PUBLIC,
        Some("my-swarm".into()),
        ScanSettings::default(),
    )
    .unwrap();
    let scan = sc.scan(SystemTime::now());
    assert!(scan.streams[0]
        .identity
        .stream_swarm_id
        .starts_with("v2-my-swarm-main-"));

    // pml-2.2: the variants' positions, MD5.
    let entry = find_entry(&d.path().join("master.m3u8")).unwrap();
    let mut sc = Scanner::new(entry.clone(), PUBLIC, None, ScanSettings::default())
        .unwrap()
        .with_id_scheme(IdScheme::Pml22, None, None)
        .unwrap();
    let scan = sc.scan(SystemTime::now());
    let ids: Vec<&str> = scan
        .streams
        .iter()
        .map(|s| s.identity.stream_swarm_id.as_str())
        .collect();
    let url = "v2-http://videos.example/live/master.m3u8";
    assert_eq!(ids, [format!("{url}-main-0"), format!("{url}-main-1")]);
    let md5 = crate::id_scheme::md5_info_hash(ids[1]);
    assert_eq!(scan.streams[1].identity.info_hash, md5);

    // peertube: the video uuid and each variant's resolution; without the uuid, an error.
    let uuid = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
    let base = Scanner::new(entry, PUBLIC, None, ScanSettings::default()).unwrap();
    assert!(matches!(
        Scanner::new(base.entry().clone(), PUBLIC, None, ScanSettings::default())
            .unwrap()
            .with_id_scheme(IdScheme::PeerTube, Some("ignored"), None),
        Err(SeederError::IdScheme(IdSchemeError::MissingVideoUuid))
    ));
    let mut sc = base
        .with_id_scheme(IdScheme::PeerTube, None, Some(uuid))
        .unwrap();
    let scan = sc.scan(SystemTime::now());
    let ids: Vec<&str> = scan
        .streams
        .iter()
        .map(|s| s.identity.stream_swarm_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            format!("pt-v2-{uuid}-main-default-360"),
            format!("pt-v2-{uuid}-main-default-720")
        ]
    );
}

#[test]
fn broken_half_written_missing_and_escaping_segments_are_skipped() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("www");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("good.ts"), ts(4, 1)).unwrap();
    let mut cut = ts(4, 2);
    cut.truncate(500);
    std::fs::write(root.join("cut.ts"), &cut).unwrap();
    let mut nosync = ts(4, 3);
    nosync[188] = 0;
    std::fs::write(root.join("nosync.ts"), &nosync).unwrap();
    std::fs::write(root.join("empty.ts"), b"").unwrap();
    std::fs::write(d.path().join("secret.ts"), ts(1, 4)).unwrap();
    // A fresh file of an unchecked format waits for the settle time.
    std::fs::write(root.join("fresh.aac"), b"aac frames").unwrap();
    let segs = [
        "good.ts",
        "cut.ts",
        "nosync.ts",
        "empty.ts",
        "gone.ts",
        "../secret.ts",
        "fresh.aac",
    ];
    std::fs::write(root.join("index.m3u8"), media(0, &segs, true)).unwrap();
    let mut sc = scanner(&root, "index.m3u8");
    let now = SystemTime::now();
    let scan = sc.scan(now);
    let m = scan.streams[0].media.as_ref().unwrap();
    assert_eq!(m.segments.len(), 1, "{:?}", scan.problems);
    assert_eq!(m.segments[0].info.path, "good.ts");
    assert_eq!(m.skipped, 6);
    assert_eq!(scan.problems.len(), 6, "{:?}", scan.problems);
    assert!(scan
        .problems
        .iter()
        .any(|p| p.contains("cut.ts") && p.contains("half-written")));
    assert!(scan
        .problems
        .iter()
        .any(|p| p.contains("gone.ts") && p.contains("missing")));
    assert!(scan.problems.iter().any(|p| p.contains("secret.ts")));
    // Nothing refused reaches the manifest.
    let man = &scan.manifests()[&root.canonicalize().unwrap()];
    assert_eq!(man.len(), 1);
    // Later, the cut file is completed and the other file has settled: both are taken.
    std::fs::write(root.join("cut.ts"), ts(4, 2)).unwrap();
    let scan = sc.scan(now + Duration::from_secs(5));
    let m = scan.streams[0].media.as_ref().unwrap();
    let paths: Vec<&str> = m.segments.iter().map(|s| s.info.path.as_str()).collect();
    assert_eq!(paths, vec!["good.ts", "cut.ts", "fresh.aac"]);
    assert_eq!(m.segments[1].info.id, 1, "ids are playlist positions");
}

#[test]
fn broken_playlists_are_reported_not_fatal() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("a.ts"), ts(2, 1)).unwrap();
    std::fs::write(d.path().join("index.m3u8"), "garbage\n").unwrap();
    let mut sc = scanner(d.path(), "index.m3u8");
    let scan = sc.scan(SystemTime::now());
    assert_eq!(scan.streams.len(), 1);
    assert!(scan.streams[0].media.is_none());
    assert!(
        scan.problems[0].contains("not an HLS playlist"),
        "{:?}",
        scan.problems
    );
    // Half-written: the last URI line is cut short, so it names no file.
    let text = media(0, &["a.ts", "a.ts"], false);
    let cut = &text[..text.len() - 3];
    std::fs::write(d.path().join("index.m3u8"), cut).unwrap();
    let scan = sc.scan(SystemTime::now());
    let m = scan.streams[0].media.as_ref().unwrap();
    assert_eq!(m.segments.len(), 1);
    assert_eq!(m.skipped, 1);
    // No playlist at all yet (a live stream about to start).
    std::fs::remove_file(d.path().join("index.m3u8")).unwrap();
    let scan = sc.scan(SystemTime::now());
    assert!(scan.streams.is_empty());
    assert_eq!(scan.problems.len(), 1);
}

#[test]
fn live_window_slides_with_sequence_ids() {
    let d = tempfile::tempdir().unwrap();
    for i in 0..6 {
        std::fs::write(d.path().join(format!("s{i}.ts")), ts(3, i as u8)).unwrap();
    }
    std::fs::write(
        d.path().join("live.m3u8"),
        media(0, &["s0.ts", "s1.ts", "s2.ts"], false),
    )
    .unwrap();
    let mut sc = scanner(d.path(), "live.m3u8");
    let scan = sc.scan(SystemTime::now());
    let m = scan.streams[0].media.as_ref().unwrap();
    assert!(m.live);
    std::fs::write(
        d.path().join("live.m3u8"),
        media(3, &["s3.ts", "s4.ts", "s5.ts"], false),
    )
    .unwrap();
    std::fs::remove_file(d.path().join("s0.ts")).unwrap();
    let scan = sc.scan(SystemTime::now());
    let m = scan.streams[0].media.as_ref().unwrap();
    let ids: Vec<i64> = m.segments.iter().map(|s| s.info.id).collect();
    assert_eq!(ids, vec![3, 4, 5]);
    let man = &scan.manifests()[&d.path().canonicalize().unwrap()];
    assert_eq!(man.len(), 3, "the manifest follows the window");
    assert_eq!(
        sc.checked.len(),
        3,
        "checks of files that left the window are dropped"
    );
}

#[test]
fn byte_ranges_and_fmp4_boxes() {
    let d = tempfile::tempdir().unwrap();
    let one = ts(3, 1);
    let two = ts(2, 2);
    std::fs::write(d.path().join("all.ts"), [one.clone(), two.clone()].concat()).unwrap();
    let text = format!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n#EXT-X-BYTERANGE:{}@0\nall.ts\n\
#EXTINF:4,\n#EXT-X-BYTERANGE:{}\nall.ts\n#EXTINF:4,\n#EXT-X-BYTERANGE:100@5000\nall.ts\n#EXT-X-ENDLIST\n",
        one.len(),
        two.len()
    );
    std::fs::write(d.path().join("index.m3u8"), text).unwrap();
    let mut sc = scanner(d.path(), "index.m3u8");
    let scan = sc.scan(SystemTime::now());
    let m = scan.streams[0].media.as_ref().unwrap();
    assert_eq!(m.segments.len(), 2, "{:?}", scan.problems);
    assert_eq!(
        read_segment(&m.segments[1]).unwrap().as_ref(),
        two.as_slice()
    );
    let man = &scan.manifests()[&d.path().canonicalize().unwrap()];
    let r = ByteRange::from_offset_length(one.len() as u64, two.len() as u64);
    assert_eq!(
        man.verify("all.ts", r, &two),
        crate::integrity::Verification::Valid
    );
    assert!(man
        .to_json()
        .contains(&format!("\"564-{}\"", 564 + 376 - 1)));

    let mut boxes = Vec::new();
    for (kind, len) in [(b"moof", 24u32), (b"mdat", 40)] {
        boxes.extend_from_slice(&len.to_be_bytes());
        boxes.extend_from_slice(kind);
        boxes.extend(std::iter::repeat_n(0u8, len as usize - 8));
    }
    assert_eq!(check_mp4_boxes(&boxes), Ok(()));
    assert!(check_mp4_boxes(&boxes[..50])
        .unwrap_err()
        .contains("half-written"));
    assert!(check_mp4_boxes(&boxes[..28]).is_err());
    let mut bad = boxes.clone();
    bad[3] = 4;
    assert!(check_mp4_boxes(&bad).is_err());
}

#[test]
fn uri_resolution() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("index.m3u8"), "#EXTM3U\n").unwrap();
    let sc = scanner(d.path(), "index.m3u8");
    assert_eq!(sc.resolve("v/x.m3u8", "a.ts?x=1"), Some("v/a.ts".into()));
    assert_eq!(sc.resolve("v/x.m3u8", "../a.ts"), Some("a.ts".into()));
    assert_eq!(sc.resolve("v/x.m3u8", "../../a.ts"), None);
    assert_eq!(
        sc.resolve("", "http://videos.example/live/v/a.ts"),
        Some("v/a.ts".into())
    );
    assert_eq!(sc.resolve("", "http://elsewhere.example/live/v/a.ts"), None);
    assert_eq!(
        sc.resolve("v/x.m3u8", "/live/w/b.ts"),
        Some("w/b.ts".into())
    );
    assert_eq!(sc.resolve("v/x.m3u8", "/other/b.ts"), None);
    assert!(Scanner::new(
        sc.entry().clone(),
        "ftp://x/y",
        None,
        ScanSettings::default()
    )
    .is_err());
}
