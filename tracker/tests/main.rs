//! segswarm-tracker's integration tests as one test binary (one link instead of one per file):
//! each module covers one area against a real server on loopback.

mod common;

mod access;
mod bad_input;
mod hostile;
mod http;
mod library;
mod lifecycle;
mod limits;
mod proxy;
mod tls;
mod warnings;
mod ws_framing;
mod ws_protocol;
