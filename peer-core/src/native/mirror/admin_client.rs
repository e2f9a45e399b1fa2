//! The client half of the admin listener's `/mirrors` ([`super::admin`]), for
//! `segswarm mirror list|add|remove`: one request to the running daemon, its answer as text.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use super::admin::AdminCommand;

/// How long a request to the daemon may take: the listener answers within its
/// [`command_wait`](super::AdminSettings::command_wait) (5 s by default), an add or remove
/// asking the origin's API may take one API timeout more. 60 s.
pub const ADMIN_CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the daemon did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    /// No answer (is the daemon running, with `admin_listen` at this address?).
    #[error("admin listener http://{addr}: {source} (is `segswarm mirror` running with this admin_listen?)")]
    Unreachable {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: reqwest::Error,
    },
    /// The daemon refused or failed.
    #[error("daemon answered {status}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Its `error`, or the body.
        message: String,
    },
}

/// Sends `command` to the admin listener at `addr`; the JSON answer (`{"queued": true, ...}`
/// when the daemon was busy with a check and does it when the check ends).
pub async fn send(addr: SocketAddr, command: &AdminCommand) -> Result<Value, AdminClientError> {
    let unreachable = |source| AdminClientError::Unreachable { addr, source };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(ADMIN_CLIENT_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(unreachable)?;
    let url = format!("http://{addr}/mirrors");
    let req = match command {
        AdminCommand::List => client.get(&url),
        AdminCommand::Add(u) => client.post(&url).body(u.clone()),
        AdminCommand::Remove(u) => client.delete(format!("{url}?url={}", percent_encode(u))),
    };
    let resp = req.send().await.map_err(unreachable)?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(unreachable)?;
    let value: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    if status != 200 && status != 202 {
        let message = match value.get("error").and_then(Value::as_str) {
            Some(m) => m.to_owned(),
            None => value.to_string(),
        };
        return Err(AdminClientError::Refused { status, message });
    }
    Ok(value)
}

/// Every byte but RFC 3986's unreserved ones as `%XX`.
pub(crate) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /mirrors` as a table: video, origin, strategy, since, until, bytes, hits, served.
pub fn listing_text(listing: &Value) -> String {
    let mut out = String::from("video\torigin\tstrategy\tsince\tuntil\tbytes\thits\tserved\n");
    for e in listing.as_array().map(Vec::as_slice).unwrap_or_default() {
        let field = |k: &str| match e.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => "-".to_owned(),
            Some(v) => v.to_string(),
        };
        let row: Vec<String> = [
            "uuid", "origin", "strategy", "since", "until", "bytes", "hits", "served",
        ]
        .iter()
        .map(|k| field(k))
        .collect();
        out.push_str(&row.join("\t"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_text_one_row_per_entry_and_nothing_from_odd_answers() {
        let header = "video\torigin\tstrategy\tsince\tuntil\tbytes\thits\tserved\n";
        let listing = serde_json::json!([{
            "uuid": "u", "origin": "https://o", "strategy": "manual", "since": 5,
            "until": null, "bytes": 7, "hits": 0, "served": true
        }]);
        assert_eq!(
            listing_text(&listing),
            format!("{header}u\thttps://o\tmanual\t5\t-\t7\t0\ttrue\n")
        );
        for odd in [serde_json::json!({"a": 1}), serde_json::json!([1, "x"])] {
            assert!(listing_text(&odd).starts_with(header));
        }
    }
}
