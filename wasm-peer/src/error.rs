//! Errors of the browser driver.

use wasm_bindgen::{JsCast, JsValue};

/// What went wrong in a browser API call or on a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebError {
    /// A browser API threw or rejected.
    #[error("{what}: {message}")]
    Js {
        /// The call that failed.
        what: &'static str,
        /// The JavaScript error's message.
        message: String,
    },
    /// Something did not happen in the configured time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The data channel or peer connection is closed.
    #[error("data channel closed")]
    ChannelClosed,
    /// A message larger than the configured limit.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More received data queued than the configured limit (the reader is not keeping up).
    #[error("receive queue exceeds {0} bytes")]
    ReceiveQueueFull(usize),
    /// The request was aborted through its `AbortController`.
    #[error("request aborted")]
    Aborted,
    /// The server answered with a status other than 200 or 206.
    #[error("HTTP status {0}")]
    Status(u16),
    /// A 206 answer whose `Content-Range` does not match the request.
    #[error("bad Content-Range {0:?}")]
    BadRange(String),
    /// The tracker WebSocket is not open.
    #[error("tracker socket not open")]
    SocketNotOpen,
}

impl WebError {
    /// Wraps a thrown or rejected JavaScript value.
    pub(crate) fn js(what: &'static str, value: &JsValue) -> Self {
        WebError::Js {
            what,
            message: js_message(value),
        }
    }
}

/// The message of a JavaScript error value, or its debug form.
pub(crate) fn js_message(value: &JsValue) -> String {
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

/// Whether a JavaScript error is a `DOMException` named `AbortError`.
pub(crate) fn is_abort_error(value: &JsValue) -> bool {
    js_sys::Reflect::get(value, &JsValue::from_str("name"))
        .ok()
        .and_then(|n| n.as_string())
        .is_some_and(|n| n == "AbortError")
}

impl From<WebError> for JsValue {
    fn from(e: WebError) -> Self {
        js_sys::Error::new(&e.to_string()).into()
    }
}
