//! `segswarm` command-line processes for end-to-end tests: started with piped stdout, their JSON
//! report lines collected as they come. For the root package's tests only (it needs the binary):
//! `#[path = "support/segswarm_proc.rs"] mod segswarm_proc;` next to `mod support;`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::ChildGuard;

pub const BIN: &str = env!("CARGO_BIN_EXE_segswarm");

/// WebRTC on loopback only (the namespace has nothing else).
pub const LOOPBACK: [&str; 3] = ["--udp", "127.0.0.1:0", "--loopback-candidates"];

/// A `segswarm` child whose stdout lines are collected as they come.
pub struct Proc {
    guard: ChildGuard,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Proc {
    pub fn start(name: &str, args: &[String]) -> Proc {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {BIN}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout");
        let sink = lines.clone();
        let tag = name.to_owned();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                eprintln!("[{tag}] {line}");
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
        Proc {
            guard: ChildGuard::new(name, child),
            lines,
            reader: Some(reader),
        }
    }

    /// The last stdout line that is a JSON object.
    pub fn last_json(&self) -> Option<Value> {
        let lines = self.lines.lock().ok()?;
        lines.iter().rev().find_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(Value::is_object)
        })
    }

    /// Waits until some JSON line satisfies `ok`, up to `timeout`.
    pub fn wait_json(&self, timeout: Duration, ok: impl Fn(&Value) -> bool) -> Option<Value> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(v) = self.last_json().filter(|v| ok(v)) {
                return Some(v);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Waits for the process to exit (up to `timeout`), then returns its last JSON line.
    pub fn finish(mut self, timeout: Duration) -> Value {
        let status = self.guard.wait_timeout(timeout);
        let name = self.guard.name.clone();
        let status = status.unwrap_or_else(|| panic!("{name} did not exit within {timeout:?}"));
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        assert!(status.success(), "{name} failed: {status}");
        self.last_json()
            .unwrap_or_else(|| panic!("{name} printed no JSON report"))
    }

    /// Stops the process gracefully (SIGTERM), then [`Proc::finish`]es it.
    pub fn stop(self, timeout: Duration) -> Value {
        self.guard.terminate();
        self.finish(timeout)
    }
}

/// Owned copies of `args`.
pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// The number at `key` of a JSON report; panics if there is none.
pub fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key:?} in {v}"))
}
