//! HTTP through the browser's `fetch`, cancellable with an `AbortController`, with byte ranges.
//!
//! [`fetch_from`] resumes with `Range: bytes=from-` (a byte-range segment: `bytes=from-last`) and
//! checks the answer: a `206` must carry a `Content-Range` starting at the asked byte; a `200` (the
//! server ignored the Range) is accepted, its first `from` bytes dropped and the body cut at the
//! range's end. The body is read piece by piece, so the engine sees progress.

use segswarm_core::http_range::{check_content_range, range_header};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal, Request, RequestInit, Response};

use crate::error::{is_abort_error, WebError};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_with_request(request: &Request) -> js_sys::Promise;
}

/// Cancels the requests given its [`Abort::signal`]: on [`Abort::abort`] and when dropped.
#[derive(Debug)]
pub struct Abort {
    controller: AbortController,
}

impl Abort {
    /// A new controller.
    pub fn new() -> Result<Self, WebError> {
        let controller = AbortController::new().map_err(|e| WebError::js("AbortController", &e))?;
        Ok(Self { controller })
    }

    /// The signal to pass to requests.
    pub fn signal(&self) -> AbortSignal {
        self.controller.signal()
    }

    /// Aborts every request using this signal.
    pub fn abort(&self) {
        self.controller.abort();
    }
}

impl Drop for Abort {
    fn drop(&mut self) {
        self.controller.abort();
    }
}

fn fetch_error(what: &'static str, e: &JsValue) -> WebError {
    if is_abort_error(e) {
        WebError::Aborted
    } else {
        WebError::js(what, e)
    }
}

/// A response body read piece by piece (see [`fetch_from`]).
#[derive(Debug)]
pub struct BodyStream {
    /// The HTTP status (200 or 206).
    pub status: u16,
    /// Bytes the body will yield from the asked offset on, when the server said.
    pub content_length: Option<u64>,
    /// Leading body bytes still to drop (a `200` answer to a `Range` request).
    skip: u64,
    /// Body bytes still to pass on when a range end was asked (more are dropped).
    left: Option<u64>,
    reader: web_sys::ReadableStreamDefaultReader,
}

/// GETs bytes `from..end` of `url` (`Range: bytes=from-` when `from > 0`, `bytes=from-(end-1)`
/// with an `end`), returning once the headers are in; the body is then read with
/// [`BodyStream::next_chunk`], never past `end`. A `206` must start at `from`; a `200` to a ranged
/// request has its first `from` bytes dropped. Any other status is [`WebError::Status`]. The
/// request stops when `signal` is aborted ([`WebError::Aborted`]).
pub async fn fetch_from(
    url: &str,
    from: u64,
    end: Option<u64>,
    signal: &AbortSignal,
) -> Result<BodyStream, WebError> {
    let init = RequestInit::new();
    init.set_method("GET");
    init.set_signal(Some(signal));
    let request =
        Request::new_with_str_and_init(url, &init).map_err(|e| WebError::js("new Request", &e))?;
    let range = range_header(from, end);
    if let Some(range) = range {
        request
            .headers()
            .set("Range", &range)
            .map_err(|e| WebError::js("Headers.set", &e))?;
    }
    let response = JsFuture::from(fetch_with_request(&request))
        .await
        .map_err(|e| fetch_error("fetch", &e))?;
    let response: Response = response.unchecked_into();
    let status = response.status();
    if status != 200 && status != 206 {
        return Err(WebError::Status(status));
    }
    let headers = response.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    // A compressed body's Content-Length counts compressed bytes: unknown length then.
    let length = if header("Content-Encoding").is_some_and(|e| !e.eq_ignore_ascii_case("identity"))
    {
        None
    } else {
        header("Content-Length").and_then(|v| v.trim().parse::<u64>().ok())
    };
    let (skip, content_length) = if status == 206 {
        let value = header("Content-Range").unwrap_or_default();
        let (start, last, _total) = check_content_range(&value, from, end)
            .ok_or_else(|| WebError::BadRange(value.clone()))?;
        (0, Some(last + 1 - start))
    } else {
        (from, length.map(|l| l.saturating_sub(from)))
    };
    let left = end.map(|e| e.saturating_sub(from));
    let content_length = match (content_length, left) {
        (Some(c), Some(l)) => Some(c.min(l)),
        (c, _) => c,
    };
    let body = response.body().ok_or(WebError::Js {
        what: "Response.body",
        message: "no body".into(),
    })?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    Ok(BodyStream {
        status,
        content_length,
        skip,
        left,
        reader,
    })
}

impl BodyStream {
    /// The next piece of the body (never empty); `None` at its end.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, WebError> {
        loop {
            if self.left == Some(0) {
                // The range's end: what the server sends past it is not read.
                return Ok(None);
            }
            let result = JsFuture::from(self.reader.read())
                .await
                .map_err(|e| fetch_error("reading the body", &e))?;
            let done = js_sys::Reflect::get(&result, &JsValue::from_str("done"))
                .ok()
                .and_then(|d| d.as_bool())
                .unwrap_or(true);
            if done {
                return Ok(None);
            }
            let value = js_sys::Reflect::get(&result, &JsValue::from_str("value"))
                .map_err(|e| WebError::js("ReadableStream chunk", &e))?;
            let chunk: js_sys::Uint8Array = value
                .dyn_into()
                .map_err(|e| WebError::js("ReadableStream chunk", &e))?;
            let len = u64::from(chunk.length());
            if self.skip >= len {
                self.skip -= len;
                continue;
            }
            let start = u32::try_from(self.skip).unwrap_or(u32::MAX);
            self.skip = 0;
            let mut stop = chunk.length();
            if let Some(left) = self.left.as_mut() {
                let n = u64::from(stop - start).min(*left);
                *left -= n;
                stop = start + n as u32;
            }
            let bytes = chunk.subarray(start, stop).to_vec();
            if !bytes.is_empty() {
                return Ok(Some(bytes));
            }
        }
    }
}

impl Drop for BodyStream {
    fn drop(&mut self) {
        // Stop the download when the reader is dropped early; a finished stream ignores this.
        let _ = self.reader.cancel();
    }
}
