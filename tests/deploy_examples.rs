//! The deployment files of `examples/deploy/` (segswarm-tracker as a PeerTube instance's tracker,
//! `segswarm seed` as a service), checked as an admin would use them:
//!
//! - both systemd units pass `systemd-analyze verify` with no warning about them (a misspelt
//!   directive or a bad value is only a warning there, so the test reads what it prints), carry
//!   the hardening directives the README promises and stay at "OK" in
//!   `systemd-analyze security --offline=true`;
//! - the nginx snippet passes `nginx -t`, alone and inside a server block laid out as PeerTube's
//!   `support/nginx/peertube` (whose own `location /tracker/socket` may stay);
//! - `tracker.toml` loads, and a real nginx with the snippet in front of a tracker started from
//!   it carries WebSocket and HTTP announces and scrapes, with private mode fed from an allow
//!   file and the client address taken from the entry nginx appends to `X-Forwarded-For`;
//! - a unit or snippet with a typo fails these checks.
//!
//! Needs `systemd-analyze` (Debian package `systemd`) and `nginx` (`nginx-light`); `.ci/run`
//! installs them. A missing tool fails the test, naming the package. Nothing talks to anything
//! but loopback; nginx runs from a temporary directory, as the test's own child.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use segswarm::tracker::config::Config;
use segswarm::tracker::server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

const TRACKER_UNIT: &str = "segswarm-tracker.service";
const SEED_UNIT: &str = "segswarm-seed@.service";
const SNIPPET: &str = "nginx-peertube-tracker.conf";
/// Where the units expect the binaries (`ExecStart=`), and the README installs them.
const BIN_DIR: &str = "/usr/local/bin/";
/// The tracker address of `tracker.toml`, which the snippet proxies to.
const TRACKER_ADDR: &str = "127.0.0.1:8000";

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/deploy")
}

fn read_deploy(name: &str) -> String {
    let path = deploy_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The path of `tool`, from PATH or the sbin directories (nginx lives in /usr/sbin, which a
/// non-root PATH may lack). Panics naming the Debian package when it is not installed.
fn require(tool: &str, package: &str) -> PathBuf {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path_var).collect();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{tool}` is not installed: this test checks examples/deploy/ with it. Install the \
                 Debian package `{package}` (apt-get install -y {package}); `.ci/run` does."
            )
        })
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// systemd units

/// The unit `name` with its text `text`, written to `dir` with every `/usr/local/bin/X` of
/// `ExecStart=` pointing into `dir/bin/`, where `X` is a symlink to `/bin/true`.
/// `systemd-analyze verify` requires the programs of `ExecStart=` to exist, and the tracker's
/// binary belongs to another package of the workspace (no `CARGO_BIN_EXE_` for it here); what
/// is checked is the unit, nothing is started. Returns the copy's path.
fn stage_unit(dir: &Path, name: &str, text: &str) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for program in ["segswarm", "segswarm-tracker"] {
        let link = bin.join(program);
        if !link.exists() {
            std::os::unix::fs::symlink("/bin/true", &link).unwrap();
        }
    }
    let staged = text.replace(
        &format!("ExecStart={BIN_DIR}"),
        &format!("ExecStart={}/", bin.display()),
    );
    assert_ne!(
        staged, text,
        "{name}: ExecStart= no longer starts a program from {BIN_DIR}"
    );
    let path = dir.join(name);
    std::fs::write(&path, staged).unwrap();
    path
}

/// `systemd-analyze verify` of the unit file `path`: Err with what it said when it fails or
/// prints anything about this unit (unknown directives and unparsable values are warnings that
/// leave its exit status at 0).
fn verify_unit(path: &Path) -> Result<(), String> {
    let tool = require("systemd-analyze", "systemd");
    let out = run(Command::new(tool).arg("verify").arg(path));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stem = path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".service")
        .trim_end_matches('@')
        .to_owned();
    let about_unit: Vec<&str> = stderr.lines().filter(|l| l.contains(&stem)).collect();
    if out.status.success() && about_unit.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "systemd-analyze verify {}: {}\n{stderr}",
            path.display(),
            out.status
        ))
    }
}

/// The values of `key` in the unit's text (`Key=value` lines, comments skipped).
fn directive<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
        .collect()
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    for name in [TRACKER_UNIT, SEED_UNIT] {
        let path = stage_unit(dir.path(), name, &read_deploy(name));
        if let Err(e) = verify_unit(&path) {
            panic!("{name} does not verify:\n{e}");
        }
    }
}

#[test]
fn a_unit_with_a_typo_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let text = read_deploy(TRACKER_UNIT);
    let cases = [
        ("NoNewPrivileges=yes", "NoNewPrivilegez=yes"),
        ("ProtectSystem=strict", "ProtectSystem=strickt"),
        ("[Service]", "[Servise]"),
    ];
    for (i, (right, wrong)) in cases.into_iter().enumerate() {
        assert!(text.contains(right), "{TRACKER_UNIT} lacks {right}");
        let bad = dir.path().join(format!("bad{i}"));
        std::fs::create_dir_all(&bad).unwrap();
        let path = stage_unit(&bad, TRACKER_UNIT, &text.replacen(right, wrong, 1));
        assert!(
            verify_unit(&path).is_err(),
            "systemd-analyze verify did not catch {wrong:?}"
        );
    }
    // A program that does not exist.
    let missing = dir.path().join("missing");
    std::fs::create_dir_all(&missing).unwrap();
    let path = stage_unit(&missing, TRACKER_UNIT, &text);
    std::fs::remove_file(missing.join("bin/segswarm-tracker")).unwrap();
    assert!(
        verify_unit(&path).is_err(),
        "a missing ExecStart program passed"
    );
}

#[test]
fn systemd_units_are_hardened() {
    let dir = tempfile::tempdir().unwrap();
    let common: &[(&str, &str)] = &[
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("Restart", "on-failure"),
        ("SystemCallFilter", "@system-service"),
        ("SystemCallArchitectures", "native"),
        ("MemoryDenyWriteExecute", "yes"),
    ];
    let tracker: &[(&str, &str)] = &[
        (
            "ExecStart",
            "/usr/local/bin/segswarm-tracker --config /etc/segswarm/tracker.toml",
        ),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("LimitNOFILE", "200000"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ];
    let seed: &[(&str, &str)] = &[
        ("EnvironmentFile", "/etc/segswarm/seed-%i.env"),
        (
            "RestrictAddressFamilies",
            "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        ),
    ];
    for (name, own) in [(TRACKER_UNIT, tracker), (SEED_UNIT, seed)] {
        let text = read_deploy(name);
        for (key, value) in common.iter().chain(own) {
            assert!(
                directive(&text, key).contains(value),
                "{name}: expected {key}={value}, found {:?}",
                directive(&text, key)
            );
        }
        // systemd's own rating of the sandbox: 0 (locked down) to 10; "OK" is below 2.
        let path = stage_unit(dir.path(), name, &text);
        let tool = require("systemd-analyze", "systemd");
        let out = run(Command::new(tool)
            .args(["security", "--offline=true", "--no-pager"])
            .arg(&path));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let exposure: f64 = stdout
            .lines()
            .find_map(|l| {
                l.split_once("Overall exposure level for ")?
                    .1
                    .split_once(": ")
            })
            .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "{name}: no exposure level in systemd-analyze security: {stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        assert!(
            exposure < 2.0,
            "{name}: exposure {exposure} (want below 2.0):\n{stdout}"
        );
    }
}

#[test]
fn the_seed_environment_example_sets_what_the_unit_reads() {
    let unit = read_deploy(SEED_UNIT);
    let env = read_deploy("seed.env.example");
    let set: Vec<&str> = env
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    let exec = directive(&unit, "ExecStart").join(" ");
    for var in [
        "SEGSWARM_TRACKER",
        "SEGSWARM_PUBLIC_URL",
        "SEGSWARM_DIR",
        "SEGSWARM_SEED_ARGS",
    ] {
        assert!(exec.contains(var), "ExecStart= does not use {var}");
        assert!(set.contains(&var), "seed.env.example does not set {var}");
    }
    // The seeder reaches the tracker of tracker.toml directly.
    assert!(env.contains(&format!("SEGSWARM_TRACKER=ws://{TRACKER_ADDR}/")));
    // Every flag of ExecStart= and of the example's SEGSWARM_SEED_ARGS is one `segswarm seed`
    // takes.
    let help = run(Command::new(env!("CARGO_BIN_EXE_segswarm")).args(["seed", "--help"]));
    let help = String::from_utf8_lossy(&help.stdout);
    let extra = env
        .lines()
        .find_map(|l| l.strip_prefix("SEGSWARM_SEED_ARGS="))
        .unwrap();
    for flag in exec
        .split_whitespace()
        .chain(extra.split_whitespace())
        .filter(|w| w.starts_with("--"))
    {
        assert!(
            help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
            "`segswarm seed` has no {flag}:\n{help}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// nginx

/// A directory for one nginx: configuration, logs, pid and temporary files all inside it.
struct NginxDir {
    dir: tempfile::TempDir,
}

impl NginxDir {
    fn new() -> Self {
        NginxDir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `nginx.conf` with one `server {}` listening on `port` whose body is `server_body`.
    fn write_conf(&self, port: u16, server_body: &str) -> PathBuf {
        let d = self.path().display();
        let conf = format!(
            "worker_processes 1;\n\
             error_log {d}/error.log info;\n\
             pid {d}/nginx.pid;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n\
             \x20 access_log {d}/access.log;\n\
             \x20 client_body_temp_path {d}/client_body;\n\
             \x20 proxy_temp_path {d}/proxy;\n\
             \x20 fastcgi_temp_path {d}/fastcgi;\n\
             \x20 uwsgi_temp_path {d}/uwsgi;\n\
             \x20 scgi_temp_path {d}/scgi;\n\
             \x20 server {{\n\
             \x20   listen 127.0.0.1:{port};\n\
             \x20   server_name videos.example;\n\
             {server_body}\n\
             \x20 }}\n\
             }}\n"
        );
        let path = self.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        path
    }

    fn command(&self, conf: &Path) -> Command {
        let mut command = Command::new(require("nginx", "nginx-light"));
        command.arg("-p").arg(self.path()).arg("-c").arg(conf);
        command
    }

    /// `nginx -t`: Err with its output when the configuration is refused.
    fn test(&self, conf: &Path) -> Result<(), String> {
        let out = run(self.command(conf).arg("-t"));
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "nginx -t -c {}: {}\n{}{}",
                conf.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

/// The snippet as shipped, copied into `dir` (as an admin copies it to /etc/nginx/snippets/),
/// its tracker address replaced by `tracker` when given. Returns the `include` line.
fn include_snippet(dir: &Path, text: &str, tracker: Option<SocketAddr>) -> String {
    let text = match tracker {
        Some(addr) => {
            let from = format!("http://{TRACKER_ADDR};");
            assert!(text.contains(&from), "{SNIPPET} does not proxy to {from}");
            text.replace(&from, &format!("http://{addr};"))
        }
        None => text.to_owned(),
    };
    let path = dir.join("segswarm-tracker.conf");
    std::fs::write(&path, text).unwrap();
    format!("    include {};", path.display())
}

/// A server block laid out as PeerTube's `support/nginx/peertube` (application and WebSocket
/// named locations, its own `location /tracker/socket`, the catch-all `/`), with `extra` in it.
fn peertube_like_server(extra: &str) -> String {
    format!(
        "    location @api {{\n\
         \x20     proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         \x20     proxy_set_header Host            $http_host;\n\
         \x20     proxy_set_header X-Real-IP       $remote_addr;\n\
         \x20     proxy_pass http://127.0.0.1:9;\n\
         \x20   }}\n\
         \x20   location / {{ try_files /dev/null @api; }}\n\
         \x20   location @api_websocket {{\n\
         \x20     proxy_http_version 1.1;\n\
         \x20     proxy_set_header Upgrade    $http_upgrade;\n\
         \x20     proxy_set_header Connection \"upgrade\";\n\
         \x20     proxy_pass http://127.0.0.1:9;\n\
         \x20   }}\n\
         \x20   location /socket.io {{ try_files /dev/null @api_websocket; }}\n\
         \x20   location /tracker/socket {{\n\
         \x20     proxy_read_timeout 15m;\n\
         \x20     try_files /dev/null @api_websocket;\n\
         \x20   }}\n\
         \x20   location ~ ^/static/(webseed|web-videos|redundancy|streaming-playlists)/ {{\n\
         \x20     try_files $uri @api;\n\
         \x20   }}\n\
         {extra}\n"
    )
}

#[test]
fn nginx_accepts_the_snippet() {
    let snippet = read_deploy(SNIPPET);
    for locations in ["/tracker/socket", "/tracker/announce", "/tracker/scrape"] {
        assert!(
            snippet.contains(&format!("location = {locations} {{")),
            "{SNIPPET}: no exact-match location for {locations}"
        );
    }
    // Alone in a server block, and in PeerTube's layout with its own /tracker/socket left in.
    for peertube in [false, true] {
        let nginx = NginxDir::new();
        let include = include_snippet(nginx.path(), &snippet, None);
        let body = if peertube {
            peertube_like_server(&include)
        } else {
            include
        };
        let conf = nginx.write_conf(8080, &body);
        if let Err(e) = nginx.test(&conf) {
            panic!("nginx refuses {SNIPPET} (PeerTube layout: {peertube}):\n{e}");
        }
    }
}

#[test]
fn nginx_refuses_a_broken_snippet() {
    let snippet = read_deploy(SNIPPET);
    for (right, wrong) in [
        ("proxy_read_timeout 15m;", "proxy_read_timeuot 15m;"),
        ("location = /tracker/scrape {", "location = /tracker/scrape"),
        ("proxy_http_version 1.1;", "proxy_http_version 1.1"),
    ] {
        assert!(snippet.contains(right), "{SNIPPET} lacks {right}");
        let nginx = NginxDir::new();
        let include = include_snippet(nginx.path(), &snippet.replacen(right, wrong, 1), None);
        let conf = nginx.write_conf(8080, &include);
        assert!(nginx.test(&conf).is_err(), "nginx -t accepted {wrong:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// tracker.toml, and requests through nginx

#[test]
fn tracker_toml_is_for_a_tracker_behind_nginx() {
    let config = Config::from_file(&deploy_dir().join("tracker.toml")).unwrap();
    assert_eq!(
        config.server.listen,
        vec![TRACKER_ADDR.parse::<SocketAddr>().unwrap()]
    );
    assert!(config.server.trust_forwarded_for);
    assert_eq!(
        config.access.info_hash_allow_file.as_deref(),
        Some(Path::new("/etc/segswarm/info-hashes.allow"))
    );
    assert!(config.access.origin_allow.is_empty());
    // LimitNOFILE of the unit covers the connection cap.
    let nofile: usize = directive(&read_deploy(TRACKER_UNIT), "LimitNOFILE")[0]
        .parse()
        .unwrap();
    assert!(nofile > config.limits.max_connections);
}

/// An nginx process of the test's own, killed when dropped.
struct RunningNginx {
    child: Child,
    error_log: PathBuf,
}

impl Drop for RunningNginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts nginx in the foreground, one process (`master_process off`: as root it does not
/// switch users), and waits until it accepts connections.
fn start_nginx(nginx: &NginxDir, conf: &Path, port: u16) -> RunningNginx {
    nginx
        .test(conf)
        .unwrap_or_else(|e| panic!("nginx refuses the configuration:\n{e}"));
    let child = nginx
        .command(conf)
        .args(["-g", "daemon off; master_process off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start nginx");
    let running = RunningNginx {
        child,
        error_log: nginx.path().join("error.log"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not listen on {port}: {}",
            std::fs::read_to_string(&running.error_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    running
}

/// One HTTP/1.1 GET through nginx; returns the status line and the body bytes.
async fn http_get(port: u16, target: &str, forwarded_for: &str) -> (String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: videos.example\r\nX-Forwarded-For: {forwarded_for}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of headers");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, response[split + 4..].to_vec())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A WebSocket announce through nginx at /tracker/socket; returns the tracker's JSON reply.
async fn ws_announce(port: u16, info_hash: &str, peer_id: &str) -> serde_json::Value {
    let url = format!("ws://127.0.0.1:{port}/tracker/socket");
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap_or_else(|e| panic!("WebSocket upgrade through nginx at {url}: {e}"));
    let announce = serde_json::json!({
        "action": "announce",
        "info_hash": info_hash,
        "peer_id": peer_id,
        "numwant": 5,
        "uploaded": 0,
        "downloaded": 0,
        "left": 0,
        "event": "started",
        "offers": [],
    });
    socket
        .send(Message::text(announce.to_string()))
        .await
        .unwrap();
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("no reply from the tracker through nginx: {other:?}"),
        }
    }
}

#[test]
fn requests_through_nginx_reach_the_tracker_in_private_mode() {
    // Two listed info_hashes, one in each form the allow file takes.
    let listed_str = "segswarm-deploy-0001";
    let listed_hex_of = "segswarm-deploy-0002";
    let unlisted = "segswarm-deploy-0003";
    let nginx = NginxDir::new();
    let allow = nginx.path().join("info-hashes.allow");
    std::fs::write(
        &allow,
        format!(
            "# listed as the 20-character string, then as 40 hex digits\n{listed_str}\n{}\n",
            listed_hex_of
                .bytes()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
    )
    .unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // tracker.toml as shipped, on a free port and with the test's allow file.
        let mut config = Config::from_file(&deploy_dir().join("tracker.toml")).unwrap();
        config.server.listen = vec!["127.0.0.1:0".parse().unwrap()];
        config.access.info_hash_allow_file = Some(allow.clone());
        let server = Server::start(config)
            .await
            .expect("tracker from tracker.toml");
        let tracker = server.local_addrs()[0];

        let port = free_port();
        let include = include_snippet(nginx.path(), &read_deploy(SNIPPET), Some(tracker));
        let conf = nginx.write_conf(port, &peertube_like_server(&include));
        let running = start_nginx(&nginx, &conf, port);

        let checks = async {
            // WebSocket at /tracker/socket: listed info_hashes are tracked, others refused.
            for info_hash in [listed_str, listed_hex_of] {
                let reply = ws_announce(port, info_hash, "-SS0001-deploy-ws-01").await;
                assert_eq!(reply["action"], "announce", "{info_hash}: {reply}");
                assert!(reply.get("failure reason").is_none(), "{reply}");
                assert!(reply["interval"].as_u64().unwrap() > 0, "{reply}");
            }
            let reply = ws_announce(port, unlisted, "-SS0001-deploy-ws-02").await;
            assert!(reply.get("failure reason").is_some(), "{reply}");

            // HTTP announce at /tracker/announce. The first peer's client claims an address of
            // its own in X-Forwarded-For; the tracker must use the one nginx appended.
            let announce = |peer: &str, port_no: u16| {
                format!(
                    "/tracker/announce?info_hash={listed_str}&peer_id={peer}&port={port_no}\
                     &uploaded=0&downloaded=0&left=100&compact=0&event=started"
                )
            };
            let (status, body) =
                http_get(port, &announce("-SS0001-deploy-http1", 6881), "203.0.113.9").await;
            assert!(status.contains(" 200 "), "{status}");
            assert!(
                !contains(&body, b"failure reason"),
                "{}",
                String::from_utf8_lossy(&body)
            );
            let (_, body) = http_get(
                port,
                &announce("-SS0001-deploy-http2", 6882),
                "198.51.100.7",
            )
            .await;
            let text = String::from_utf8_lossy(&body);
            assert!(contains(&body, b"2:ip9:127.0.0.1"), "{text}");
            assert!(
                !contains(&body, b"203.0.113.9"),
                "spoofed address used: {text}"
            );

            // HTTP scrape at /tracker/scrape.
            let (status, body) = http_get(
                port,
                &format!("/tracker/scrape?info_hash={listed_str}"),
                "198.51.100.7",
            )
            .await;
            assert!(status.contains(" 200 "), "{status}");
            assert!(
                contains(&body, b"5:files"),
                "{}",
                String::from_utf8_lossy(&body)
            );
            assert!(contains(&body, listed_str.as_bytes()));

            // An unlisted info_hash over HTTP is refused too.
            let (_, body) = http_get(
                port,
                &format!(
                    "/tracker/announce?info_hash={unlisted}&peer_id=-SS0001-deploy-http3\
                     &port=6883&left=0"
                ),
                "198.51.100.7",
            )
            .await;
            assert!(
                contains(&body, b"failure reason"),
                "{}",
                String::from_utf8_lossy(&body)
            );
        };
        if tokio::time::timeout(Duration::from_secs(60), checks)
            .await
            .is_err()
        {
            panic!(
                "requests through nginx timed out; nginx error log:\n{}",
                std::fs::read_to_string(&running.error_log).unwrap_or_default()
            );
        }
        drop(running);
        server.shutdown().await;
    });
}
