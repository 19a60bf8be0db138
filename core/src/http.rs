//! Request building, response-header parsing and status-to-error mapping shared by every
//! operation (writes, reads, producers).

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use url::Url;

use crate::error::{Cause, Error, Result};
use crate::offset::Offset;
use crate::retry::{parse_retry_after, AttemptObserver, FailedAttempt, Operation, RetryPolicy};
use crate::values::{header_name, header_value, RequestExtras};

/// Protocol header names.
pub mod headers {
    /// `Stream-Next-Offset`.
    pub const STREAM_NEXT_OFFSET: &str = "Stream-Next-Offset";
    /// `Stream-Cursor`.
    pub const STREAM_CURSOR: &str = "Stream-Cursor";
    /// `Stream-Up-To-Date`.
    pub const STREAM_UP_TO_DATE: &str = "Stream-Up-To-Date";
    /// `Stream-Closed`.
    pub const STREAM_CLOSED: &str = "Stream-Closed";
    /// `Stream-Seq`.
    pub const STREAM_SEQ: &str = "Stream-Seq";
    /// `Stream-TTL`.
    pub const STREAM_TTL: &str = "Stream-TTL";
    /// `Stream-Expires-At`.
    pub const STREAM_EXPIRES_AT: &str = "Stream-Expires-At";
    /// `Stream-Forked-From`.
    pub const STREAM_FORKED_FROM: &str = "Stream-Forked-From";
    /// `Stream-Fork-Offset`.
    pub const STREAM_FORK_OFFSET: &str = "Stream-Fork-Offset";
    /// `Stream-Fork-Sub-Offset`.
    pub const STREAM_FORK_SUB_OFFSET: &str = "Stream-Fork-Sub-Offset";
    /// `Stream-SSE-Data-Encoding`.
    pub const STREAM_SSE_DATA_ENCODING: &str = "Stream-SSE-Data-Encoding";
    /// `Producer-Id`.
    pub const PRODUCER_ID: &str = "Producer-Id";
    /// `Producer-Epoch`.
    pub const PRODUCER_EPOCH: &str = "Producer-Epoch";
    /// `Producer-Seq`.
    pub const PRODUCER_SEQ: &str = "Producer-Seq";
    /// `Producer-Expected-Seq`.
    pub const PRODUCER_EXPECTED_SEQ: &str = "Producer-Expected-Seq";
    /// `Producer-Received-Seq`.
    pub const PRODUCER_RECEIVED_SEQ: &str = "Producer-Received-Seq";
}

/// Which operation a response answers; it decides how a 409 or 403 is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Create,
    Append { with_seq: bool },
    Close,
    Head,
    Delete,
    Read,
}

impl Op {
    /// The public name of the operation, as an [`AttemptObserver`] sees it.
    pub(crate) fn operation(self) -> Operation {
        match self {
            Op::Create => Operation::Create,
            Op::Append { .. } => Operation::Append,
            Op::Close => Operation::Close,
            Op::Head => Operation::Head,
            Op::Delete => Operation::Delete,
            Op::Read => Operation::Read,
        }
    }
}

/// The stream URL as shown in errors and logs: no userinfo, no query, no fragment.
pub(crate) fn display_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// Whether a content type is JSON mode (`application/json`, parameters ignored).
pub fn is_json_content_type(ct: &str) -> bool {
    ct.split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// A response header as a string, if present and valid.
pub(crate) fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Whether a `true`-valued protocol header (case-insensitive) is present.
pub(crate) fn header_true(h: &HeaderMap, name: &str) -> bool {
    header_str(h, name).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

pub(crate) fn header_offset(h: &HeaderMap) -> Option<Offset> {
    header_str(h, headers::STREAM_NEXT_OFFSET)
        .filter(|s| !s.is_empty())
        .map(Offset::from)
}

pub(crate) fn header_u64(h: &HeaderMap, name: &str) -> Result<Option<u64>> {
    match header_str(h, name) {
        None => Ok(None),
        Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
            Error::parse(
                format!("header {name}"),
                format!("not an integer: \"{}\"", escape_server_text(v, 64)),
            )
        }),
    }
}

/// Builds the request URL: the stream URL's own query, then caller parameters, then protocol
/// parameters (which win), all sorted by key so caches see one spelling.
pub(crate) fn build_url(base: &Url, params: &[(String, String)], protocol: &[(&str, &str)]) -> Url {
    if params.is_empty() && protocol.is_empty() {
        return base.clone();
    }
    let mut pairs: Vec<(String, String)> = base
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .filter(|(k, _)| !protocol.iter().any(|(p, _)| p == k))
        .collect();
    for (k, v) in params {
        if protocol.iter().any(|(p, _)| p == k) {
            continue;
        }
        pairs.retain(|(pk, _)| pk != k);
        pairs.push((k.clone(), v.clone()));
    }
    for (k, v) in protocol {
        pairs.push(((*k).to_owned(), (*v).to_owned()));
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut url = base.clone();
    url.set_query(None);
    url.query_pairs_mut().extend_pairs(pairs.iter());
    url
}

/// Everything needed to send one request, resolved (computed values called once).
pub(crate) struct Prepared {
    pub url: Url,
    pub headers: HeaderMap,
}

/// Resolves extras and protocol parts into a URL and a header map.
pub(crate) async fn prepare(
    base: &Url,
    extras: &RequestExtras,
    protocol_params: &[(&str, &str)],
    protocol_headers: &[(&str, &str)],
) -> Result<Prepared> {
    let (hs, ps) = extras.resolve().await?;
    let url = build_url(base, &ps, protocol_params);
    let mut headers = HeaderMap::with_capacity(hs.len() + protocol_headers.len());
    for (n, v) in &hs {
        headers.insert(header_name(n)?, header_value(n, v)?);
    }
    for (n, v) in protocol_headers {
        headers.insert(header_name(n)?, header_value(n, v)?);
    }
    Ok(Prepared { url, headers })
}

/// Maps an owned transport failure to `Timeout` or `Network`, without the URL; the
/// transport's own error (its innermost I/O error when there is one) becomes the source.
pub(crate) fn transport_error(e: reqwest::Error, url: &str) -> Error {
    let e = e.without_url();
    let timeout = e.is_timeout();
    let cause = Cause::from_transport(&e, timeout);
    if timeout {
        return Error::Timeout {
            what: format!("request to {url}"),
            source: Some(cause),
        };
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    Error::Network {
        url: url.to_owned(),
        message: server_text(&message),
        source: Some(cause),
    }
}

/// The longest server message kept in an error (in characters of the escaped text).
const MAX_MESSAGE: usize = 2048;

/// How much of an error response's body is read; the rest is never downloaded (the connection
/// is dropped).
pub(crate) const MAX_ERROR_BODY: usize = 4096;

/// Makes text that came from a server safe for an error message or a log line: control
/// characters (newlines, escape sequences, ...) are written as escapes such as `\n` or
/// `\u{1b}`, and text longer than `max_chars` characters is cut, ending with `…`.
///
/// ```
/// use durable_streams_client::escape_server_text;
/// assert_eq!(escape_server_text("a\nFAKE LOG LINE", 100), "a\\nFAKE LOG LINE");
/// assert_eq!(escape_server_text("abcdef", 3), "abc…");
/// ```
pub fn escape_server_text(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(2)));
    for (count, c) in text.chars().enumerate() {
        if count >= max_chars {
            out.push('…');
            break;
        }
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Server text in an error: escaped, at most [`MAX_MESSAGE`] characters.
pub(crate) fn server_text(text: &str) -> String {
    escape_server_text(text, MAX_MESSAGE)
}

/// Discards a response body the client has no use for (a producer's answer): reads at most
/// [`MAX_ERROR_BODY`] bytes, so an empty body lets the connection go back to the pool and a
/// server that sends a large one cannot make the client download it.
pub(crate) async fn discard_body(mut resp: reqwest::Response) {
    let mut read = 0usize;
    while read < MAX_ERROR_BODY {
        match resp.chunk().await {
            Ok(Some(chunk)) => read = read.saturating_add(chunk.len()),
            _ => return,
        }
    }
}

/// How long the body of a failed response may take to arrive (it is at most
/// [`MAX_ERROR_BODY`] bytes): a server that sends the head and then stalls does not hold the
/// error, and the retry after it, back forever.
pub(crate) const ERROR_BODY_WAIT: Duration = Duration::from_secs(5);

/// Reads a bounded error message from a failed response's body: at most [`MAX_ERROR_BODY`]
/// bytes, for at most [`ERROR_BODY_WAIT`]; then the response (and its connection) is dropped.
pub(crate) async fn read_message(mut resp: reqwest::Response) -> Option<String> {
    let mut body = Vec::new();
    let read = async {
        while body.len() < MAX_ERROR_BODY {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_ERROR_BODY - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                // A body cut short still says what it said so far.
                Ok(None) | Err(_) => break,
            }
        }
    };
    // A body that stalls says what it said so far, too.
    let _ = tokio::time::timeout(ERROR_BODY_WAIT, read).await;
    drop(resp);
    message_from_body(&body)
}

pub(crate) fn message_from_body(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)]);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    // JSON error bodies: prefer their message field.
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        for key in ["message", "error", "detail"] {
            match v.get(key) {
                Some(serde_json::Value::String(s)) => return Some(server_text(s)),
                Some(serde_json::Value::Object(o)) => {
                    if let Some(serde_json::Value::String(s)) = o.get("message") {
                        return Some(server_text(s));
                    }
                }
                _ => {}
            }
        }
    }
    Some(server_text(text))
}

/// Turns a non-success response into the error its status means for `op`.
pub(crate) async fn error_from_response(resp: reqwest::Response, url: &str, op: Op) -> Error {
    let status = resp.status();
    let headers = resp.headers().clone();
    let message = read_message(resp).await;
    error_from_parts(status, &headers, message, url, op)
}

pub(crate) fn error_from_parts(
    status: StatusCode,
    headers: &HeaderMap,
    message: Option<String>,
    url: &str,
    op: Op,
) -> Error {
    let url = url.to_owned();
    let retry_after = header_str(headers, "retry-after").and_then(parse_retry_after);
    match status.as_u16() {
        400 => Error::BadRequest { url, message },
        401 => Error::Unauthorized { url, message },
        403 => Error::Forbidden { url, message },
        404 => Error::NotFound { url, message },
        409 if header_true(headers, headers::STREAM_CLOSED) => Error::StreamClosed {
            url,
            final_offset: header_offset(headers),
        },
        409 => match op {
            Op::Create => Error::ConflictExists {
                url,
                message,
                existing_closed: None,
            },
            Op::Append { with_seq: true } => Error::SeqConflict { url, message },
            _ => Error::Conflict { url, message },
        },
        410 => Error::Gone { url, message },
        413 => Error::PayloadTooLarge { url, message },
        429 => Error::RateLimited {
            url,
            retry_after,
            message,
        },
        s @ 500..=599 => Error::ServerError {
            status: s,
            url,
            retry_after,
            message,
        },
        s @ 300..=399 => Error::UnexpectedStatus {
            status: s,
            url,
            message: Some(match header_str(headers, "location") {
                Some(_) => "redirect to another origin not followed (see ClientBuilder::follow_cross_origin_redirects)".to_owned(),
                None => message.unwrap_or_else(|| "redirect without a Location".to_owned()),
            }),
        },
        s => Error::UnexpectedStatus {
            status: s,
            url,
            message,
        },
    }
}

/// A request body that can be sent more than once (retries) or only once (a stream).
pub(crate) enum Body {
    Empty,
    Bytes(Bytes),
}

impl Body {
    fn to_reqwest(&self) -> Option<reqwest::Body> {
        match self {
            Body::Empty => None,
            Body::Bytes(b) => Some(reqwest::Body::from(b.clone())),
        }
    }
}

/// One request, sent with retries under `policy` (none when `None`).
pub(crate) struct Sender<'a> {
    pub client: &'a reqwest::Client,
    pub method: Method,
    pub base: &'a Url,
    pub display: &'a str,
    pub extras: &'a RequestExtras,
    pub protocol_params: &'a [(&'a str, &'a str)],
    pub protocol_headers: &'a [(&'a str, &'a str)],
    pub body: Body,
    pub timeout: Duration,
    pub retry: Option<&'a RetryPolicy>,
    pub op: Op,
    /// Told about every failed attempt.
    pub observer: Option<&'a AttemptObserver>,
}

impl Sender<'_> {
    /// Sends until a success status arrives, the error is not retryable, or retries run out.
    /// Every attempt resolves computed headers again.
    pub async fn send(self) -> Result<reqwest::Response> {
        let mut attempt: u32 = 0;
        loop {
            match self.send_once().await {
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    let retry = self.retry.filter(|p| e.is_retryable() && p.allows(attempt));
                    if let Some(observer) = self.observer {
                        observer
                            .call(FailedAttempt {
                                error: e.clone(),
                                attempt: attempt.saturating_add(1),
                                will_retry: retry.is_some(),
                                operation: self.op.operation(),
                            })
                            .await;
                    }
                    let retry = match retry {
                        Some(p) => p,
                        None => {
                            tracing::debug!(url = %self.display, method = %self.method, error = %e, "request failed");
                            // Retryable, but the policy allows no more: say how often it tried.
                            return Err(if e.is_retryable() {
                                Error::gave_up(e, attempt.saturating_add(1))
                            } else {
                                e
                            });
                        }
                    };
                    let delay = retry.delay(attempt, e.retry_after());
                    tracing::info!(
                        url = %self.display,
                        method = %self.method,
                        attempt = attempt + 1,
                        delay_ms = delay.as_millis() as u64,
                        error = %e,
                        "retrying request"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn send_once(&self) -> Result<reqwest::Response> {
        let prepared = prepare(
            self.base,
            self.extras,
            self.protocol_params,
            self.protocol_headers,
        )
        .await?;
        let mut rb = self
            .client
            .request(self.method.clone(), prepared.url)
            .headers(prepared.headers)
            .timeout(self.timeout);
        if let Some(b) = self.body.to_reqwest() {
            rb = rb.body(b);
        }
        let started = Instant::now();
        let resp = rb
            .send()
            .await
            .map_err(|e| transport_error(e, self.display))?;
        let status = resp.status();
        tracing::debug!(
            url = %self.display,
            method = %self.method,
            status = status.as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "response"
        );
        if status.is_success() {
            Ok(resp)
        } else {
            Err(error_from_response(resp, self.display, self.op).await)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_is_escaped_and_bounded() {
        assert_eq!(escape_server_text("plain é", 100), "plain é");
        assert_eq!(
            escape_server_text("a\tb\u{7f}\u{2028}", 100),
            "a\\tb\\u{7f}\\u{2028}"
        );
        assert_eq!(escape_server_text("abcdef", 0), "…");
        let big = "x\n".repeat(100_000);
        let out = escape_server_text(&big, 10);
        assert_eq!(out, "x\\nx\\nx\\nx\\nx\\n…");
        assert!(!out.contains('\n'));
    }

    #[test]
    fn url_building_sorts_and_encodes() {
        let base = Url::parse("http://h/s?z=1&a=2").unwrap();
        let u = build_url(
            &base,
            &[("m".into(), "x y".into()), ("offset".into(), "evil".into())],
            &[("offset", "a/b&c=d"), ("live", "sse")],
        );
        assert_eq!(
            u.as_str(),
            "http://h/s?a=2&live=sse&m=x+y&offset=a%2Fb%26c%3Dd&z=1"
        );
        let plain = Url::parse("http://h/s").unwrap();
        assert_eq!(build_url(&plain, &[], &[]).as_str(), "http://h/s");
    }

    #[test]
    fn display_url_hides_credentials() {
        let u = Url::parse("https://user:secret@h:8443/a/b?token=abc#f").unwrap();
        assert_eq!(display_url(&u), "https://h:8443/a/b");
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON; charset=utf-8"));
        assert!(!is_json_content_type("application/jsonl"));
        assert!(!is_json_content_type("text/plain"));
    }

    #[test]
    fn messages_from_bodies() {
        assert_eq!(message_from_body(b""), None);
        assert_eq!(message_from_body(b"  oops \n").as_deref(), Some("oops"));
        assert_eq!(
            message_from_body(br#"{"error":"bad ttl"}"#).as_deref(),
            Some("bad ttl")
        );
        assert_eq!(
            message_from_body(br#"{"error":{"code":"X","message":"m"}}"#).as_deref(),
            Some("m")
        );
        let long = "é".repeat(5000);
        let m = message_from_body(long.as_bytes()).unwrap();
        assert!(m.chars().count() <= MAX_MESSAGE + 1);
        assert_eq!(
            message_from_body(b"line one\nFORGED: admin logged in\r\n\x1b[31mred").as_deref(),
            Some("line one\\nFORGED: admin logged in\\r\\n\\u{1b}[31mred")
        );
        assert_eq!(
            message_from_body(br#"{"message":"a\nb"}"#).as_deref(),
            Some("a\\nb")
        );
    }

    #[test]
    fn statuses_map_to_errors() {
        let mut h = HeaderMap::new();
        let e = error_from_parts(StatusCode::CONFLICT, &h, None, "u", Op::Create);
        assert!(matches!(e, Error::ConflictExists { .. }));
        let e = error_from_parts(
            StatusCode::CONFLICT,
            &h,
            None,
            "u",
            Op::Append { with_seq: true },
        );
        assert!(matches!(e, Error::SeqConflict { .. }));
        h.insert("stream-closed", "TRUE".parse().unwrap());
        h.insert("stream-next-offset", "0_5".parse().unwrap());
        let e = error_from_parts(
            StatusCode::CONFLICT,
            &h,
            None,
            "u",
            Op::Append { with_seq: true },
        );
        match e {
            Error::StreamClosed { final_offset, .. } => {
                assert_eq!(final_offset.unwrap().as_str(), "0_5")
            }
            other => panic!("{other:?}"),
        }
        let mut h = HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        let e = error_from_parts(StatusCode::TOO_MANY_REQUESTS, &h, None, "u", Op::Head);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
        assert!(e.is_retryable());
        let e = error_from_parts(StatusCode::GONE, &h, None, "u", Op::Head);
        assert_eq!(e.status(), Some(410));
        assert!(!e.is_retryable());
    }
}
