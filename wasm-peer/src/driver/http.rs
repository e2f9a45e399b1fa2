//! HTTP downloads: `fetch` with a `Range` when resuming, the body read as a stream.

use super::*;

/// One HTTP request: headers → [`IoEvent::HttpStarted`], body pieces → [`IoEvent::HttpChunk`], then
/// completed or failed. An aborted request ends quietly (the engine already forgot it).
pub(super) async fn run_http(
    weak: Weak<RefCell<State>>,
    request: HttpHandle,
    url: String,
    range: (u64, Option<u64>),
    signal: web_sys::AbortSignal,
) {
    let result = http_body(&weak, request, &url, range, &signal).await;
    let input = match result {
        Ok(()) => IoEvent::HttpCompleted(request),
        Err(WebError::Aborted) => return,
        Err(e) => IoEvent::HttpFailed {
            request,
            reason: e.to_string(),
        },
    };
    let still_wanted = weak
        .upgrade()
        .is_some_and(|inner| inner.borrow_mut().http.remove(&request).is_some());
    if still_wanted {
        feed_weak(&weak, input);
    }
}

async fn http_body(
    weak: &Weak<RefCell<State>>,
    request: HttpHandle,
    url: &str,
    (from, end): (u64, Option<u64>),
    signal: &web_sys::AbortSignal,
) -> Result<(), WebError> {
    let mut body = fetch_from(url, from, end, signal).await?;
    feed_weak(
        weak,
        IoEvent::HttpStarted {
            request,
            content_length: body.content_length,
        },
    );
    while let Some(chunk) = body.next_chunk().await? {
        if signal.aborted() {
            return Err(WebError::Aborted);
        }
        feed_weak(
            weak,
            IoEvent::HttpChunk {
                request,
                data: Bytes::from(chunk),
            },
        );
    }
    Ok(())
}
