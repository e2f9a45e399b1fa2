//! The tracker's failures and warnings: events, refused announces pausing their swarm, what
//! drivers read of a frame for their reconnect backoff.

use super::*;

/// What a driver's backoff reads of a frame ([`TrackerFrame::refusal`]).
fn refusal(text: &str) -> Option<(Option<InfoHash>, String)> {
    let (info_hash, reason) = TrackerFrame::parse(text).ok()?.refusal()?;
    Some((info_hash.map(|id| id.0), reason))
}

#[test]
fn a_refused_swarm_is_not_announced_again_for_a_while() {
    let (mut c, t0) = client();
    joined_with_offers(&mut c, t0);
    c.join(IH2, t0);
    assert_eq!(drain(&mut c).len(), 1);
    c.offers_created(IH2, Vec::new(), t0);
    assert!(drain(&mut c).is_empty());
    frames(&mut c);
    assert!(refusal(&peertube_refusal(&IH)).is_some_and(|(ih, reason)| {
        ih == Some(IH) && reason.starts_with("Unknown infoHash 0001225c")
    }));
    let ev = recv(&mut c, &peertube_refusal(&IH), t0).unwrap();
    assert!(matches!(&ev[0], TrackerEvent::Failure { info_hash: Some(ih), .. } if *ih == IH));
    assert_eq!(ev.len(), 3, "the two offers expire: {ev:?}");
    assert_eq!(c.announces_refused(), 1);
    assert_eq!(c.pending_offer_count(), 0);
    let pause = Duration::from_secs(600);
    assert_eq!(c.refused_until(&IH), Some(t0 + pause));
    assert_eq!(c.refused_until(&IH2), None);
    // The other swarm goes on: accepted, re-announced at its interval; IH stays quiet.
    assert_eq!(recv(&mut c, &accepted(&IH2), t0).unwrap().len(), 1);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(120)));
    c.handle_timeout(t0 + Duration::from_secs(120));
    assert_eq!(drain(&mut c), vec![need_offers(IH2)]);
    c.offers_created(IH2, Vec::new(), t0 + Duration::from_secs(120));
    assert!(drain(&mut c).is_empty());
    assert!(frames(&mut c).iter().all(|f| f["info_hash"] == bin(&IH2)));
    // PeerTube closes the socket; on reconnect only IH2 is announced.
    let t1 = t0 + Duration::from_secs(200);
    c.disconnected(t1);
    drain(&mut c);
    c.connected(t1);
    assert_eq!(drain(&mut c), vec![need_offers(IH2)]);
    c.offers_created(IH2, Vec::new(), t1);
    assert!(drain(&mut c).is_empty());
    frames(&mut c);
    assert_eq!(recv(&mut c, &accepted(&IH2), t1).unwrap().len(), 1);
    c.leave(IH2, t1);
    assert!(drain(&mut c).is_empty());
    frames(&mut c);
    // Once the pause is over IH is announced `started` again (it never joined the swarm).
    assert_eq!(c.poll_timeout(), Some(t0 + pause));
    c.handle_timeout(t0 + pause);
    assert_eq!(drain(&mut c), vec![need_offers(IH)]);
    c.offers_created(IH, Vec::new(), t0 + pause);
    assert!(drain(&mut c).is_empty());
    let f = frames(&mut c);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["event"], "started");
    // Refused again: the pause doubles. Accepted later: the series ends.
    let t2 = t0 + pause;
    recv(&mut c, &peertube_refusal(&IH), t2).unwrap();
    assert_eq!(c.refused_until(&IH), Some(t2 + 2 * pause));
    assert_eq!(c.announces_refused(), 2);
    let t3 = t2 + 2 * pause;
    c.handle_timeout(t3);
    drain(&mut c);
    c.offers_created(IH, Vec::new(), t3);
    assert!(drain(&mut c).is_empty());
    assert_eq!(recv(&mut c, &accepted(&IH), t3).unwrap().len(), 1);
    assert_eq!(c.refused_until(&IH), None);
    c.handle_timeout(t3 + Duration::from_secs(120));
    drain(&mut c);
    c.offers_created(IH, Vec::new(), t3 + Duration::from_secs(120));
    assert!(drain(&mut c).is_empty());
    recv(
        &mut c,
        &peertube_refusal(&IH),
        t3 + Duration::from_secs(120),
    )
    .unwrap();
    assert_eq!(
        c.refused_until(&IH),
        Some(t3 + Duration::from_secs(120) + pause)
    );
}

#[test]
fn a_failure_with_no_announce_pending_does_not_pause_the_swarm() {
    let (mut c, now) = client();
    joined_with_offers(&mut c, now);
    assert_eq!(recv(&mut c, &accepted(&IH), now).unwrap().len(), 1);
    // segswarm-tracker's failure to an answer whose offerer left names the swarm too.
    let f = server_msg(serde_json::json!({
        "action": "announce", "info_hash": bin(&IH), "failure reason": "unknown offer"
    }));
    assert_eq!(recv(&mut c, &f, now).unwrap().len(), 1);
    assert_eq!(c.refused_until(&IH), None);
    assert_eq!(c.announces_refused(), 0);
    assert_eq!(c.pending_offer_count(), 2);
    // Failures to scrapes, or for swarms not joined, pause nothing either.
    assert_eq!(refusal(r#"{"action":"scrape","failure reason":"x"}"#), None);
    assert_eq!(
        refusal(r#"{"failure reason":"bad request"}"#),
        Some((None, "bad request".into()))
    );
    assert_eq!(refusal(&accepted(&IH)), None);
    assert_eq!(refusal("not json"), None);
    let other = peertube_refusal(&IH2);
    assert_eq!(recv(&mut c, &other, now).unwrap().len(), 1);
    assert_eq!(c.announces_refused(), 0);
}

#[test]
fn failures_and_warnings_become_events() {
    let (mut c, now) = client();
    joined_with_offers(&mut c, now);
    let failure = server_msg(serde_json::json!({
        "action": "announce", "failure reason": "info_hash not allowed", "info_hash": bin(&IH)
    }));
    // It refuses the announce: its unanswered offers expire.
    assert_eq!(
        recv(&mut c, &failure, now).unwrap(),
        vec![
            TrackerEvent::Failure {
                info_hash: Some(IH),
                reason: "info_hash not allowed".into()
            },
            expired(IH, 1),
            expired(IH, 2),
        ]
    );
    // The reference server's reply to an unparsable request: no action, no info_hash.
    assert_eq!(
        recv(&mut c, r#"{"failure reason":"invalid info_hash"}"#, now).unwrap(),
        vec![TrackerEvent::Failure {
            info_hash: None,
            reason: "invalid info_hash".into()
        }]
    );
    // A failure naming an unreadable info_hash is still surfaced.
    assert_eq!(
        recv(&mut c, r#"{"failure reason":"x","info_hash":"short"}"#, now).unwrap(),
        vec![TrackerEvent::Failure {
            info_hash: None,
            reason: "x".into()
        }]
    );
    let warn = server_msg(serde_json::json!({
        "action": "announce", "warning message": "slow down", "info_hash": bin(&IH),
        "complete": 1, "incomplete": 2, "interval": 60
    }));
    assert_eq!(
        recv(&mut c, &warn, now).unwrap(),
        vec![
            TrackerEvent::Warning {
                info_hash: Some(IH),
                message: "slow down".into()
            },
            TrackerEvent::AnnounceAccepted {
                info_hash: IH,
                complete: 1,
                incomplete: 2,
                interval: Duration::from_secs(60)
            }
        ]
    );
}

#[test]
fn only_an_accepted_announce_resets_the_backoff() {
    let is_announce_accepted =
        |text: &str| TrackerFrame::parse(text).is_ok_and(|f| f.is_announce_accepted());
    assert!(is_announce_accepted(
        r#"{"action":"announce","info_hash":"x","interval":120,"complete":0,"incomplete":1}"#
    ));
    assert!(!is_announce_accepted(
        r#"{"action":"announce","failure reason":"full","complete":0}"#
    ));
    assert!(!is_announce_accepted(
        r#"{"action":"announce","offer":{"type":"offer","sdp":"x"},"offer_id":"y"}"#
    ));
    assert!(!is_announce_accepted(r#"{"action":"scrape","complete":1}"#));
    assert!(!is_announce_accepted("not json"));
}
