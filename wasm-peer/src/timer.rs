//! Timers: `setTimeout` owned by a value that clears it when dropped, and an async sleep.
//!
//! Both use the global `setTimeout`/`clearTimeout`, so they work in windows and workers.

use std::future::Future;
use std::time::Duration;

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// Longest delay browsers honour; larger ones fire at once, so delays are clamped to it.
const MAX_DELAY_MS: i32 = i32::MAX;

fn delay_ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(MAX_DELAY_MS)
}

/// The current time for the sans-IO core (`performance.now()`).
pub fn now() -> segswarm_core::time::Instant {
    segswarm_core::time::Instant::now()
}

/// A scheduled callback. Dropping it before it fires cancels it and releases its closure.
pub struct Timeout {
    id: JsValue,
    _closure: Closure<dyn FnMut()>,
}

impl Timeout {
    /// Calls `f` once after `delay` (clamped to about 24.8 days).
    pub fn new(delay: Duration, f: impl FnOnce() + 'static) -> Self {
        let closure = Closure::once(f);
        let id = set_timeout(closure.as_ref().unchecked_ref(), delay_ms(delay));
        Self {
            id,
            _closure: closure,
        }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        clear_timeout(&self.id);
    }
}

impl std::fmt::Debug for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeout").field("id", &self.id).finish()
    }
}

/// Resolves after `delay`. The callback is the promise's own `resolve` function, so nothing is
/// left behind on the Rust side.
pub async fn sleep(delay: Duration) {
    let ms = delay_ms(delay);
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        set_timeout(&resolve, ms);
    });
    // A plain timer promise never rejects.
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Runs `fut` for at most `limit`; `None` when the time ran out first.
pub async fn timeout<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut timer = std::pin::pin!(sleep(limit));
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(v));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(None);
        }
        std::task::Poll::Pending
    })
    .await
}
