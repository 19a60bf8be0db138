//! The read loop: catch-up requests, then long-polls or SSE connections, with retries, the
//! error hook, SSE reconnection and the SSE-to-long-poll fallback.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use tokio::sync::watch;
use url::Url;

use super::decode::JsonSplitter;
use super::sse::{decode_base64_data, parse_control, SseEvent, SseParser, EVENT_LIMIT_FACTOR};
use super::{ErrorDecision, ErrorHook, FailedAttempt, LiveMode, SseResilience};
use crate::error::{Error, Result};
use crate::http::{
    error_from_response, escape_server_text, header_offset, header_str, header_true, headers as h,
    is_json_content_type, prepare, transport_error, Op,
};
use crate::offset::Offset;
use crate::retry::{Operation, RetryPolicy};
use crate::values::RequestExtras;

/// What a read response's headers say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResponseMeta {
    pub next_offset: Option<Offset>,
    pub cursor: Option<String>,
    pub up_to_date: bool,
    pub stream_closed: bool,
    pub content_type: Option<String>,
    pub sse_base64: bool,
}

/// Reads the protocol headers of a read response. Never fails: absent or unreadable headers
/// are reported as absent.
pub(crate) fn parse_meta(headers: &HeaderMap) -> ResponseMeta {
    ResponseMeta {
        next_offset: header_offset(headers),
        cursor: header_str(headers, h::STREAM_CURSOR)
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
        up_to_date: header_true(headers, h::STREAM_UP_TO_DATE),
        stream_closed: header_true(headers, h::STREAM_CLOSED),
        content_type: header_str(headers, "content-type").map(str::to_owned),
        sse_base64: header_str(headers, h::STREAM_SSE_DATA_ENCODING)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("base64")),
    }
}

/// One step of a read as the engine hands it on: the raw pieces (consecutive pieces of one
/// response body, or the data events before one control event) and the position after them.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub segments: Vec<Bytes>,
    /// The offset after the chunk when it is a checkpoint; otherwise the last checkpoint's.
    pub offset: Offset,
    pub cursor: Option<String>,
    pub up_to_date: bool,
    pub stream_closed: bool,
    pub framing: Framing,
}

/// How a chunk's pieces relate to the responses they came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Framing {
    /// Each piece is a whole body of its own (SSE data events), rather than the next part of
    /// one response body.
    pub whole_pieces: bool,
    /// The chunk ends where a response (or an SSE control event) ends: its offset resumes
    /// exactly after it.
    pub checkpoint: bool,
}

/// Looks for data in a response body as it arrives, the way [`carries_data`] does for a whole
/// one: any byte but whitespace, or for JSON anything but an empty array.
#[derive(Debug, Default)]
struct DataCheck {
    json: bool,
    /// The first two bytes that are not whitespace.
    seen: Vec<u8>,
    found: bool,
}

impl DataCheck {
    fn feed(&mut self, piece: &[u8]) {
        for &b in piece {
            if self.found {
                return;
            }
            if b.is_ascii_whitespace() {
                continue;
            }
            self.seen.push(b);
            self.found = !self.json || !matches!(self.seen.as_slice(), [b'['] | [b'[', b']']);
        }
    }
}

/// The raw elements of one JSON array (a whole SSE data event), each at most `limit` bytes.
fn json_elements(array: &Bytes, limit: usize) -> Result<Vec<Bytes>> {
    let mut splitter = JsonSplitter::new(limit);
    let mut elements = Vec::new();
    splitter.feed_into(array, &mut elements)?;
    splitter.end()?;
    Ok(elements)
}

/// Whether a response body holds any data: not when it is empty, blank, or (for a JSON
/// stream) an empty array, which is how servers answer a read at the tail.
fn carries_data(body: &[u8], content_type: Option<&str>) -> bool {
    let mut rest = body.iter().copied().filter(|b| !b.is_ascii_whitespace());
    match rest.next() {
        None => false,
        Some(b'[') if content_type.is_some_and(is_json_content_type) => {
            !(rest.next() == Some(b']') && rest.next().is_none())
        }
        Some(_) => true,
    }
}

/// Drops the first messages of a JSON array that arrives in pieces: a small scanner that
/// finds the array's top-level commas (outside strings). What it hands back is checked like
/// any body (this only cuts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MessageSkip {
    /// Messages still to drop.
    left: u64,
    /// Nesting depth: 0 before the array's `[`, 1 between its elements.
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// Whether the element being passed has begun (an empty array has none).
    element: bool,
}

impl MessageSkip {
    fn new(messages: u64) -> Self {
        MessageSkip {
            left: messages,
            depth: 0,
            in_string: false,
            escaped: false,
            element: false,
        }
    }

    /// Scans `piece`; `Some(i)` once the messages are dropped or the array ends: the array goes
    /// on at `piece[i..]` (its next element, or its `]`), to be handed on after a new `[`; when
    /// the array ended first, `left` says how many messages remain to drop.
    fn feed(&mut self, piece: &[u8]) -> Result<Option<usize>> {
        for (i, &b) in piece.iter().enumerate() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            if b.is_ascii_whitespace() {
                continue;
            }
            if self.depth == 0 {
                if b != b'[' {
                    return Err(Error::parse(
                        "read response",
                        "a JSON long-poll body that is not an array",
                    ));
                }
                self.depth = 1;
                continue;
            }
            match b {
                b',' if self.depth == 1 => {
                    self.element = false;
                    self.left = self.left.saturating_sub(1);
                    if self.left == 0 {
                        return Ok(Some(i + 1));
                    }
                }
                b']' | b'}' if self.depth == 1 => {
                    if b == b'}' {
                        return Err(Error::parse(
                            "read response",
                            "a JSON long-poll body that is not an array",
                        ));
                    }
                    // The end of the array: its last element (if any) ends here. Messages
                    // still `left` are in the next response (one that is not up to date).
                    if self.element {
                        self.left = self.left.saturating_sub(1);
                    }
                    return Ok(Some(i));
                }
                _ => {
                    self.element = true;
                    match b {
                        b'"' => self.in_string = true,
                        b'[' | b'{' => self.depth = self.depth.saturating_add(1),
                        b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                        _ => {}
                    }
                }
            }
        }
        Ok(None)
    }
}

/// The error of long-polls after SSE that end (up to date) before the data the SSE connections
/// had already handed on: `missing` messages (JSON) or bytes short of it.
fn short_after_sse(missing: u64, unit: &str) -> Error {
    Error::parse(
        "read response",
        format!(
            "the long-polls after SSE ended {missing} {unit} short of what the SSE connections had already handed on"
        ),
    )
}

/// Which request to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    CatchUp,
    LongPoll,
    Sse,
}

/// The live transport, once the read has caught up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    LongPoll,
    Sse,
}

/// A successful answer to a catch-up or long-poll request, its body not read yet.
pub(crate) struct Opened {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    meta: ResponseMeta,
    resp: reqwest::Response,
    started: Instant,
}

/// A catch-up or long-poll response whose body is being read.
struct BodyConn {
    kind: Kind,
    opened: Opened,
    /// The offset after the response, once its headers were checked.
    next: Option<Offset>,
    /// Bytes of the response handed on (counted across a reconnection).
    delivered: u64,
    /// Bytes still to drop from a repeated request's body (already handed on).
    skip: u64,
    /// JSON messages still to drop from the start of the body's array (handed on by SSE
    /// connections after their last control event), after `skip`.
    skip_messages: Option<MessageSkip>,
    /// Whether `skip` or `skip_messages` came from SSE connections (not from a repeated
    /// request): what this response did not hold is then in the next one.
    from_sse: bool,
    /// Whether any of this response's data was handed on (across repeated requests).
    handed: bool,
    /// JSON messages still to drop after this response's array ended.
    carry_messages: u64,
    data: DataCheck,
    /// Failed attempts at this response, counted with the request's retries.
    attempt: u32,
    /// A failure met while taking pieces that had already arrived, reported once the pieces
    /// before it are handed on.
    failed: Option<Error>,
}

/// Retries of a request that is not live (a catch-up, or any request of a read with
/// [`LiveMode::Off`]) when the retry policy sets no limit.
pub const DEFAULT_CATCH_UP_RETRIES: u32 = 10;

/// An empty answer faster than this, that did not move the offset, counts towards the
/// pause that keeps a misbehaving server from being asked in a tight loop. A long-poll the
/// server held until its timeout takes longer, and is not paced.
const QUICK_EMPTY_ANSWER: Duration = Duration::from_millis(100);

/// How long a response body may pause before the data that came so far is handed on (as a
/// batch that is not a checkpoint). The end of a body normally follows its last data at once,
/// so a response usually makes one batch.
const BODY_PAUSE: Duration = Duration::from_millis(20);

/// The most body data gathered into one chunk when `max_chunk_bytes` is larger: a body that
/// arrives faster than it is consumed is handed on in parts of this size. Bindings turn every
/// chunk into values of their language at once (Node: a string, then `JSON.parse`), so the
/// size of a part, not only the limit, sets their memory; `max_chunk_bytes` stays the largest
/// message a JSON read accepts. 64 KiB keeps a part and what is made of it in the core's
/// cache: a catch-up JSON read of 1,000,000 messages ran 28 % faster than with 256 KiB parts
/// (128 KiB gained nothing; BENCHMARKS.md, round 22).
const GATHER_BYTES: usize = 64 << 10;

/// The longest pause after quick empty answers (the retry backoff, capped at this).
const MAX_EMPTY_ANSWER_PAUSE: Duration = Duration::from_secs(1);

/// Catch-up answers in a row that hold no data, leave the offset where it was and do not say
/// the reader is up to date: the reader has no way forward, so past this many it is an error.
const MAX_STALLED_ANSWERS: u32 = 10;

enum Answer {
    Body(Opened),
    Sse(reqwest::Response, ResponseMeta),
    /// A 2xx answer to an SSE request that is not an event stream (a proxy in the way).
    NotSse,
}

struct SseConn {
    resp: reqwest::Response,
    parser: SseParser,
    events: VecDeque<SseEvent>,
    pending: Vec<Bytes>,
    pending_bytes: usize,
    /// Whether data arrived since the last control event (handed on or not).
    has_data: bool,
    /// Data of this connection still to drop: handed on by an earlier connection after its
    /// last control event, and sent again from that event's offset.
    skip: Unconfirmed,
    base64: bool,
    started: Instant,
}

/// SSE data handed on after the last control event (in batches that are not checkpoints):
/// raw bytes, and for JSON the messages they hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Unconfirmed {
    bytes: u64,
    messages: u64,
}

impl Unconfirmed {
    fn is_empty(&self) -> bool {
        self.bytes == 0 && self.messages == 0
    }
}

/// Everything fixed for the life of a read.
pub(crate) struct Config {
    pub http: reqwest::Client,
    pub request_timeout: Duration,
    pub long_poll_timeout: Duration,
    pub url: Url,
    pub display: String,
    pub extras: RequestExtras,
    pub retry: RetryPolicy,
    pub on_error: Option<ErrorHook>,
    pub sse: SseResilience,
    pub live: LiveMode,
    pub json: bool,
    /// The most data gathered into one chunk before it is handed on.
    pub max_chunk_bytes: usize,
}

pub(crate) struct Engine {
    cfg: Config,
    cancel: watch::Receiver<bool>,
    offset: Offset,
    cursor: Option<String>,
    up_to_date: bool,
    closed: bool,
    content_type: Option<String>,
    body: Option<BodyConn>,
    transport: Option<Transport>,
    sse: Option<SseConn>,
    short_connections: u32,
    stop_at_up_to_date: bool,
    last_emitted: Option<(Offset, bool, bool)>,
    /// SSE data handed on beyond `offset`, which a new connection from `offset` repeats.
    sse_unconfirmed: Unconfirmed,
    /// Quick answers in a row that handed nothing on or did not move the offset.
    empty_answers: u32,
    /// Catch-up answers in a row with no data, the same offset and no up-to-date.
    stalled_answers: u32,
    /// Retries the error hook asked for in a row, for errors the retry policy would not retry:
    /// the first goes out at once (a refreshed token), later ones after the policy's backoff,
    /// so that a hook that always asks again (`{}` in Node) cannot make a request storm.
    hook_retries: u32,
    /// What the first response said, kept for [`Engine::first_head`].
    first: Option<super::ResponseHead>,
    done: bool,
}

/// The status, headers and position of a response, as [`super::ResponseHead`].
fn head_of(opened: &Opened) -> super::ResponseHead {
    let headers = opened
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    super::ResponseHead {
        status: opened.status.as_u16(),
        status_text: opened
            .status
            .canonical_reason()
            .unwrap_or_default()
            .to_owned(),
        headers,
        offset: opened.meta.next_offset.clone(),
        cursor: opened.meta.cursor.clone(),
        up_to_date: opened.meta.up_to_date,
        stream_closed: opened.meta.stream_closed,
    }
}

impl Engine {
    /// Sends the first (catch-up) request and keeps its answer for the first chunk.
    pub(crate) async fn start(
        cfg: Config,
        offset: Offset,
        cancel: watch::Receiver<bool>,
    ) -> Result<Self> {
        let mut engine = Engine {
            cfg,
            cancel,
            offset,
            cursor: None,
            up_to_date: false,
            closed: false,
            content_type: None,
            body: None,
            transport: None,
            sse: None,
            short_connections: 0,
            stop_at_up_to_date: false,
            last_emitted: None,
            sse_unconfirmed: Unconfirmed::default(),
            empty_answers: 0,
            stalled_answers: 0,
            hook_retries: 0,
            first: None,
            done: false,
        };
        let mut attempt = 0;
        let opened = engine.fetch_opened(Kind::CatchUp, &mut attempt).await?;
        engine.content_type = opened.meta.content_type.clone();
        engine.first = Some(head_of(&opened));
        engine.body = Some(engine.body_conn(Kind::CatchUp, opened, attempt));
        Ok(engine)
    }

    /// The status, headers and position of the first response, before its body is handed on.
    pub(crate) fn first_head(&self) -> Option<super::ResponseHead> {
        self.first.clone()
    }

    /// The content type of the first response.
    pub(crate) fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// Makes the read end at the first up-to-date point (the accumulating consumers).
    pub(crate) fn stop_at_up_to_date(&mut self) {
        self.stop_at_up_to_date = true;
    }

    fn is_cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// Runs `fut` unless the read is cancelled first.
    async fn cancellable<T>(&self, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let mut cancel = self.cancel.clone();
        tokio::select! {
            biased;
            _ = cancel.wait_for(|c| *c) => Err(Error::Cancelled),
            r = fut => r,
        }
    }

    async fn sleep(&self, d: Duration) -> Result<()> {
        self.cancellable(async {
            tokio::time::sleep(d).await;
            Ok(())
        })
        .await
    }

    /// The next chunk worth handing on, or `None` once the read is over.
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.is_cancelled() {
                self.finish();
                return Err(Error::Cancelled);
            }
            let step = match self.body.take() {
                Some(conn) => Some(self.body_step(conn).await),
                None => match self.next_request() {
                    None => {
                        self.finish();
                        return Ok(None);
                    }
                    Some(Kind::Sse) => self.sse_step().await,
                    Some(kind) => match self.pace_empty_answers().await {
                        Err(e) => Some(Err(e)),
                        Ok(()) => {
                            let mut attempt = 0;
                            match self.fetch_opened(kind, &mut attempt).await {
                                Ok(opened) => {
                                    let mut conn = self.body_conn(kind, opened, attempt);
                                    self.skip_after_sse(&mut conn);
                                    Some(self.body_step(conn).await)
                                }
                                Err(e) => Some(Err(e)),
                            }
                        }
                    },
                },
            };
            match step {
                None => continue,
                Some(Err(e)) => {
                    self.finish();
                    return Err(e);
                }
                Some(Ok(chunk)) => {
                    let key = (chunk.offset.clone(), chunk.up_to_date, chunk.stream_closed);
                    if chunk.segments.is_empty() && self.last_emitted.as_ref() == Some(&key) {
                        continue;
                    }
                    self.last_emitted = Some(key);
                    return Ok(Some(chunk));
                }
            }
        }
    }

    fn finish(&mut self) {
        self.done = true;
        self.sse = None;
        self.body = None;
    }

    /// What to ask next, or `None` when the read is complete.
    fn next_request(&mut self) -> Option<Kind> {
        if self.closed {
            return None;
        }
        if self.up_to_date && (self.stop_at_up_to_date || self.cfg.live == LiveMode::Off) {
            return None;
        }
        if self.transport.is_none() && self.up_to_date {
            let sse = match self.cfg.live {
                LiveMode::Sse => true,
                LiveMode::Auto => {
                    self.cfg.json
                        || self
                            .content_type
                            .as_deref()
                            .is_some_and(is_json_content_type)
                }
                LiveMode::LongPoll | LiveMode::Off => false,
            };
            self.transport = Some(if sse {
                Transport::Sse
            } else {
                Transport::LongPoll
            });
            tracing::debug!(url = %self.cfg.display, sse, "caught up; reading live");
        }
        Some(match self.transport {
            None => Kind::CatchUp,
            Some(Transport::LongPoll) => Kind::LongPoll,
            Some(Transport::Sse) => Kind::Sse,
        })
    }

    /// After the second quick empty answer in a row (no data, or the offset where it was), waits
    /// like a retry (at most [`MAX_EMPTY_ANSWER_PAUSE`]) before asking again: a server
    /// answering 204 at once must not be asked in a tight loop.
    async fn pace_empty_answers(&mut self) -> Result<()> {
        if self.empty_answers < 2 {
            return Ok(());
        }
        let delay = self
            .cfg
            .retry
            .delay(self.empty_answers - 2, None)
            .min(MAX_EMPTY_ANSWER_PAUSE);
        tracing::debug!(
            url = %self.cfg.display,
            empty_answers = self.empty_answers,
            delay_ms = delay.as_millis() as u64,
            "empty answers in a row; pausing before the next request"
        );
        self.sleep(delay).await
    }

    /// Checks that the position moves forward: data must advance the offset, and an offset
    /// never goes back (offsets sort lexicographically).
    fn check_progress(&self, next: &Offset, has_data: bool, what: &str) -> Result<()> {
        let show = |o: &Offset| escape_server_text(o.as_str(), 120);
        if has_data && *next == self.offset {
            return Err(Error::parse(
                what,
                format!(
                    "the server sent data without advancing the offset (still \"{}\"); a protocol violation",
                    show(next)
                ),
            ));
        }
        // `-1` and `now` name places to start from; a server never gives them as the offset
        // to go on from (taken as such, the next request would read from the start again).
        // The same sentinel as the reader's is left to the checks on data and on answers that
        // do not move.
        if next.is_sentinel() && *next != self.offset {
            return Err(Error::parse(
                what,
                format!(
                    "the server gave \"{}\" as the next offset, which only a reader may ask for; a protocol violation",
                    show(next)
                ),
            ));
        }
        if !self.offset.is_sentinel() && *next < self.offset {
            return Err(Error::parse(
                what,
                format!(
                    "the offset went backwards from \"{}\" to \"{}\"; a protocol violation",
                    show(&self.offset),
                    show(next)
                ),
            ));
        }
        Ok(())
    }

    fn body_conn(&self, kind: Kind, opened: Opened, attempt: u32) -> BodyConn {
        let json = self.cfg.json
            || opened
                .meta
                .content_type
                .as_deref()
                .is_some_and(is_json_content_type);
        BodyConn {
            kind,
            opened,
            next: None,
            delivered: 0,
            skip: 0,
            skip_messages: None,
            from_sse: false,
            handed: false,
            carry_messages: 0,
            data: DataCheck {
                json,
                ..DataCheck::default()
            },
            attempt,
            failed: None,
        }
    }

    /// Checks a response's headers before any of its body is handed on.
    fn check_headers(&self, conn: &BodyConn) -> Result<Offset> {
        let Some(next) = conn.opened.meta.next_offset.clone() else {
            return Err(Error::parse(
                "read response",
                format!(
                    "status {} without a {} header",
                    conn.opened.status.as_u16(),
                    h::STREAM_NEXT_OFFSET
                ),
            ));
        };
        self.check_progress(&next, false, "read response")?;
        Ok(next)
    }

    /// Reads the next part of a response body: waits for one piece, then takes whatever else
    /// has already arrived, up to `max_chunk_bytes` (at most [`GATHER_BYTES`]). The chunk is a
    /// checkpoint only when the body ended; before that its offset stays the last checkpoint's.
    async fn body_step(&mut self, mut conn: BodyConn) -> Result<Chunk> {
        let next = match conn.next.clone() {
            Some(n) => n,
            None => {
                let n = self.check_headers(&conn)?;
                conn.next = Some(n.clone());
                n
            }
        };
        let idle = match conn.kind {
            Kind::LongPoll => self.cfg.long_poll_timeout,
            _ => self.cfg.request_timeout,
        };
        let mut segments: Vec<Bytes> = Vec::new();
        let mut size: usize = 0;
        let ended = loop {
            let piece = if segments.is_empty() {
                let waited = match conn.failed.take() {
                    Some(e) => Err(e),
                    None => {
                        let display = &self.cfg.display;
                        let resp = &mut conn.opened.resp;
                        self.cancellable(async {
                            match tokio::time::timeout(idle, resp.chunk()).await {
                                Ok(r) => r.map_err(|e| transport_error(e, display)),
                                Err(_) => Err(Error::Timeout {
                                    source: None,
                                    what: format!("response body from {display} idle for {idle:?}"),
                                }),
                            }
                        })
                        .await
                    }
                };
                match waited {
                    Ok(p) => p,
                    Err(Error::Cancelled) if self.is_cancelled() => return Err(Error::Cancelled),
                    Err(e) => {
                        conn = self.resume_body(conn, e).await?;
                        continue;
                    }
                }
            } else {
                // More of the body, or its end, usually follows at once; a body that pauses
                // is handed on as far as it came.
                let more = tokio::time::timeout(BODY_PAUSE, conn.opened.resp.chunk());
                match self.cancellable(async { Ok(more.await) }).await {
                    Ok(Err(_)) => break false,
                    Ok(Ok(Ok(p))) => p,
                    Ok(Ok(Err(e))) => {
                        conn.failed = Some(transport_error(e, &self.cfg.display));
                        break false;
                    }
                    Err(e) => return Err(e),
                }
            };
            let Some(mut piece) = piece else {
                break true;
            };
            if conn.skip > 0 {
                let n = usize::try_from(conn.skip)
                    .unwrap_or(usize::MAX)
                    .min(piece.len());
                piece = piece.slice(n..);
                conn.skip -= n as u64;
            }
            if let Some(skip) = conn.skip_messages.as_mut() {
                // `delivered` counts the body's own bytes (what a repeated request skips).
                let Some(rest) = skip.feed(&piece)? else {
                    conn.delivered = conn.delivered.saturating_add(piece.len() as u64);
                    continue;
                };
                conn.carry_messages = skip.left;
                conn.skip_messages = None;
                // The array goes on after a new `[`: of the body's bytes, `rest` are consumed
                // here and the others handed on below, where the `[` counts as one of them
                // (never below zero: the body's own `[` was consumed by now).
                conn.delivered = conn.delivered.saturating_add(rest as u64).saturating_sub(1);
                let mut array = Vec::with_capacity(piece.len() - rest + 1);
                array.push(b'[');
                array.extend_from_slice(&piece[rest..]);
                piece = Bytes::from(array);
            }
            if piece.is_empty() {
                continue;
            }
            if next == self.offset {
                conn.data.feed(&piece);
                if conn.data.found {
                    self.check_progress(&next, true, "read response")?;
                }
            }
            conn.delivered = conn.delivered.saturating_add(piece.len() as u64);
            conn.handed = true;
            size = size.saturating_add(piece.len());
            segments.push(piece);
            if size >= self.cfg.max_chunk_bytes.min(GATHER_BYTES) {
                break false;
            }
        };
        if !ended {
            let chunk = Chunk {
                segments,
                offset: self.offset.clone(),
                cursor: self.cursor.clone(),
                up_to_date: false,
                stream_closed: false,
                framing: Framing {
                    whole_pieces: false,
                    checkpoint: false,
                },
            };
            self.body = Some(conn);
            return Ok(chunk);
        }
        let meta = conn.opened.meta;
        // A response that is not up to date: the stream goes on in the next one.
        let more = !(meta.up_to_date
            || meta.stream_closed
            || conn.opened.status == StatusCode::NO_CONTENT);
        if conn.skip > 0 {
            if !conn.from_sse || conn.handed {
                return Err(Error::parse(
                    "read response",
                    "a repeated request returned less data than the first answer had already delivered",
                ));
            }
            if !more {
                return Err(short_after_sse(conn.skip, "bytes"));
            }
            self.sse_unconfirmed.bytes = conn.skip;
        }
        if conn.skip_messages.is_some() {
            return Err(Error::parse(
                "read response",
                "a JSON long-poll body that is not a whole array",
            ));
        }
        if conn.carry_messages > 0 {
            if !more {
                return Err(short_after_sse(conn.carry_messages, "messages"));
            }
            self.sse_unconfirmed.messages = conn.carry_messages;
        }
        if more && next == self.offset && !conn.handed && conn.kind == Kind::CatchUp {
            self.stalled_answers = self.stalled_answers.saturating_add(1);
            if self.stalled_answers >= MAX_STALLED_ANSWERS {
                return Err(Error::parse(
                    "read response",
                    format!(
                        "{} catch-up answers in a row held no data, left the offset at \"{}\" and did not say the stream is up to date; a protocol violation",
                        self.stalled_answers,
                        escape_server_text(next.as_str(), 120)
                    ),
                ));
            }
        } else {
            self.stalled_answers = 0;
        }
        // Quick answers with nothing in them are paced whether or not they move the offset: a
        // server that answers at once with empty bodies and ever new offsets would otherwise
        // be asked in a tight loop.
        let empty = next == self.offset || !conn.handed;
        if empty && conn.opened.started.elapsed() < QUICK_EMPTY_ANSWER {
            self.empty_answers = self.empty_answers.saturating_add(1);
        } else {
            self.empty_answers = 0;
        }
        self.offset = next;
        if meta.cursor.is_some() {
            self.cursor = meta.cursor;
        }
        self.closed = meta.stream_closed;
        self.up_to_date =
            meta.up_to_date || meta.stream_closed || conn.opened.status == StatusCode::NO_CONTENT;
        Ok(self.chunk(segments))
    }

    /// A response body failed in the middle: after the retry rules and the error hook agree,
    /// the request is sent again and the bytes already handed on are skipped (a stream's data
    /// never changes, so the new answer starts with the same bytes).
    async fn resume_body(&mut self, conn: BodyConn, err: Error) -> Result<BodyConn> {
        let (kind, delivered, skip_messages) = (conn.kind, conn.delivered, conn.skip_messages);
        let (from_sse, handed) = (conn.from_sse, conn.handed);
        let mut attempt = conn.attempt;
        drop(conn);
        self.after_failure(kind, err, &mut attempt).await?;
        let opened = self.fetch_opened(kind, &mut attempt).await?;
        let mut conn = self.body_conn(kind, opened, attempt);
        conn.next = Some(self.check_headers(&conn)?);
        conn.skip = delivered;
        conn.delivered = delivered;
        // The new body repeats the old one: a message skip half done goes on where it was.
        conn.skip_messages = skip_messages;
        conn.from_sse = from_sse;
        conn.handed = handed;
        tracing::debug!(url = %self.cfg.display, request = ?kind, skipped = delivered, "response body lost; reading it again");
        Ok(conn)
    }

    /// The first long-poll after SSE connections that handed on data beyond their last
    /// control event: its body starts with that data, which is dropped. A JSON body is one
    /// array where the events had arrays of their own, so it is skipped by messages, not bytes.
    fn skip_after_sse(&mut self, conn: &mut BodyConn) {
        let unconfirmed = std::mem::take(&mut self.sse_unconfirmed);
        if unconfirmed.is_empty() {
            return;
        }
        conn.from_sse = true;
        if self.sse_json() {
            if unconfirmed.messages > 0 {
                conn.skip_messages = Some(MessageSkip::new(unconfirmed.messages));
            }
            return;
        }
        conn.skip = unconfirmed.bytes;
        conn.delivered = unconfirmed.bytes;
    }

    /// Whether SSE data events carry JSON arrays.
    fn sse_json(&self) -> bool {
        self.cfg.json
            || self
                .content_type
                .as_deref()
                .is_some_and(is_json_content_type)
    }

    /// The most SSE data gathered before it is handed on without waiting for a control event.
    fn sse_gather(&self) -> usize {
        self.cfg.max_chunk_bytes.min(GATHER_BYTES)
    }

    /// Drops the start of a data event that an earlier connection already handed on; `None`
    /// when all of it was.
    fn drop_repeated(&self, conn: &mut SseConn, data: Bytes) -> Result<Option<Bytes>> {
        let json = self.sse_json();
        if (json && conn.skip.messages == 0) || (!json && conn.skip.bytes == 0) {
            return Ok(Some(data));
        }
        if json {
            // The events of a new connection may group the messages differently: count them.
            let elements = json_elements(&data, self.cfg.max_chunk_bytes)?;
            let n = elements.len() as u64;
            if n <= conn.skip.messages {
                conn.skip.messages -= n;
                if conn.skip.messages == 0 {
                    conn.skip = Unconfirmed::default();
                }
                return Ok(None);
            }
            let keep = usize::try_from(conn.skip.messages).unwrap_or(usize::MAX);
            conn.skip = Unconfirmed::default();
            let mut rest = Vec::with_capacity(data.len());
            rest.push(b'[');
            for (i, e) in elements[keep..].iter().enumerate() {
                if i > 0 {
                    rest.push(b',');
                }
                rest.extend_from_slice(e);
            }
            rest.push(b']');
            return Ok(Some(Bytes::from(rest)));
        }
        let n = usize::try_from(conn.skip.bytes)
            .unwrap_or(usize::MAX)
            .min(data.len());
        conn.skip.bytes -= n as u64;
        Ok((n < data.len()).then(|| data.slice(n..)))
    }

    /// Hands on the SSE data gathered so far as a batch that is not a checkpoint: its offset
    /// stays the last control event's, and a reconnection drops what it repeats of it.
    fn sse_part(&mut self, conn: &mut SseConn) -> Result<Chunk> {
        let segments = std::mem::take(&mut conn.pending);
        conn.pending_bytes = 0;
        let bytes: u64 = segments.iter().map(|s| s.len() as u64).sum();
        let mut messages = 0u64;
        if self.sse_json() {
            for s in &segments {
                messages += json_elements(s, self.cfg.max_chunk_bytes)?.len() as u64;
            }
        }
        self.sse_unconfirmed.bytes = self.sse_unconfirmed.bytes.saturating_add(bytes);
        self.sse_unconfirmed.messages = self.sse_unconfirmed.messages.saturating_add(messages);
        Ok(Chunk {
            segments,
            offset: self.offset.clone(),
            cursor: self.cursor.clone(),
            up_to_date: false,
            stream_closed: false,
            framing: Framing {
                whole_pieces: true,
                checkpoint: false,
            },
        })
    }

    fn chunk(&self, segments: Vec<Bytes>) -> Chunk {
        Chunk {
            segments,
            offset: self.offset.clone(),
            cursor: self.cursor.clone(),
            up_to_date: self.up_to_date,
            stream_closed: self.closed,
            framing: Framing {
                whole_pieces: false,
                checkpoint: true,
            },
        }
    }

    /// A catch-up or long-poll request, with retries and the error hook; its body is read
    /// later, piece by piece.
    async fn fetch_opened(&mut self, kind: Kind, attempt: &mut u32) -> Result<Opened> {
        match self.fetch(kind, attempt).await? {
            Answer::Body(o) => Ok(o),
            Answer::Sse(..) | Answer::NotSse => Err(Error::parse(
                "read response",
                "an event stream answered a plain read",
            )),
        }
    }

    /// Sends `kind` until it succeeds or [`after_failure`](Self::after_failure) ends the read.
    async fn fetch(&mut self, kind: Kind, attempt: &mut u32) -> Result<Answer> {
        loop {
            let err = match self.cancellable(self.attempt(kind)).await {
                Ok(answer) => {
                    self.hook_retries = 0;
                    return Ok(answer);
                }
                Err(Error::Cancelled) if self.is_cancelled() => return Err(Error::Cancelled),
                Err(e) => e,
            };
            self.after_failure(kind, err, attempt).await?;
        }
    }

    /// Decides what follows a failed attempt: `Ok` to try again (after the retry pause, when
    /// the retry policy is what allows it), or the error that ends the read.
    ///
    /// The error hook is consulted after every failed attempt. It can stop the read, ask for
    /// another attempt with new extras (also after the retry policy has given up, or for an
    /// error the policy does not retry, and then at once with the retry count reset), or leave
    /// the decision to the retry policy.
    async fn after_failure(&mut self, kind: Kind, err: Error, attempt: &mut u32) -> Result<()> {
        let live = matches!(kind, Kind::LongPoll | Kind::Sse) && self.cfg.live != LiveMode::Off;
        let allowed = match self.cfg.retry.max_retries {
            None if !live => *attempt < DEFAULT_CATCH_UP_RETRIES,
            _ => self.cfg.retry.allows(*attempt),
        };
        let will_retry = err.is_retryable() && allowed;
        let decision = match self.cfg.on_error.clone() {
            None => ErrorDecision::Default,
            Some(hook) => {
                let failed = FailedAttempt {
                    error: err.clone(),
                    attempt: attempt.saturating_add(1),
                    will_retry,
                    operation: Operation::Read,
                };
                self.cancellable(async { Ok(hook.call(failed).await) })
                    .await?
            }
        };
        let retry_now = match decision {
            ErrorDecision::Stop => {
                tracing::debug!(url = %self.cfg.display, error = %err, "error hook stopped the read");
                return Err(err);
            }
            ErrorDecision::Retry(extras) => {
                self.cfg.extras = self.cfg.extras.merged(&extras);
                !will_retry
            }
            ErrorDecision::Default if will_retry => false,
            ErrorDecision::Default => {
                tracing::debug!(url = %self.cfg.display, error = %err, attempts = *attempt + 1, "read failed");
                // Retryable, but the policy allows no more: say how often it tried.
                return Err(if err.is_retryable() {
                    Error::gave_up(err, attempt.saturating_add(1))
                } else {
                    err
                });
            }
        };
        if retry_now {
            tracing::info!(
                url = %self.cfg.display,
                request = ?kind,
                error = %err,
                "error hook asked to retry the read"
            );
            if self.hook_retries > 0 {
                let delay = self
                    .cfg
                    .retry
                    .delay(self.hook_retries - 1, err.retry_after());
                self.sleep(delay).await?;
            }
            self.hook_retries = self.hook_retries.saturating_add(1);
            *attempt = 0;
            return Ok(());
        }
        let delay = self.cfg.retry.delay(*attempt, err.retry_after());
        if live {
            tracing::warn!(
                url = %self.cfg.display,
                request = ?kind,
                attempt = *attempt + 1,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "live read request failed; retrying"
            );
        } else {
            tracing::info!(
                url = %self.cfg.display,
                request = ?kind,
                attempt = *attempt + 1,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "retrying read request"
            );
        }
        self.sleep(delay).await?;
        *attempt += 1;
        Ok(())
    }

    /// One request, up to its response head.
    async fn attempt(&self, kind: Kind) -> Result<Answer> {
        let mut params: Vec<(&str, &str)> = vec![("offset", self.offset.as_str())];
        let live = match kind {
            Kind::CatchUp => None,
            Kind::LongPoll => Some("long-poll"),
            Kind::Sse => Some("sse"),
        };
        if let Some(live) = live {
            params.push(("live", live));
            if let Some(c) = &self.cursor {
                params.push(("cursor", c));
            }
        }
        let accept: &[(&str, &str)] = if kind == Kind::Sse {
            &[("Accept", "text/event-stream")]
        } else {
            &[]
        };
        let prepared = prepare(&self.cfg.url, &self.cfg.extras, &params, accept).await?;
        let rb = self.cfg.http.get(prepared.url).headers(prepared.headers);
        // The response head must arrive in time; the body is then read piece by piece, each
        // piece within the idle timeout (no total timeout: a large response takes long).
        let (head, what) = match kind {
            Kind::CatchUp => (self.cfg.request_timeout, "a catch-up"),
            Kind::LongPoll => (self.cfg.long_poll_timeout, "a long-poll"),
            Kind::Sse => (self.cfg.request_timeout, "an SSE"),
        };
        let started = Instant::now();
        let resp = tokio::time::timeout(head, rb.send())
            .await
            .map_err(|_| Error::Timeout {
                source: None,
                what: format!(
                    "response head of {what} request to {} ({head:?})",
                    self.cfg.display
                ),
            })?
            .map_err(|e| transport_error(e, &self.cfg.display))?;
        let status = resp.status();
        tracing::debug!(url = %self.cfg.display, request = ?kind, status = status.as_u16(), "read response");
        if !status.is_success() {
            return Err(error_from_response(resp, &self.cfg.display, Op::Read).await);
        }
        let meta = parse_meta(resp.headers());
        if kind == Kind::Sse {
            let is_sse = meta.content_type.as_deref().is_some_and(|ct| {
                ct.split(';')
                    .next()
                    .is_some_and(|e| e.trim().eq_ignore_ascii_case("text/event-stream"))
            });
            return Ok(if is_sse {
                Answer::Sse(resp, meta)
            } else {
                Answer::NotSse
            });
        }
        Ok(Answer::Body(Opened {
            headers: resp.headers().clone(),
            status,
            meta,
            resp,
            started,
        }))
    }

    /// Advances the SSE connection (opening it first if needed) by one control event, or
    /// handles its end. `None` means nothing to hand on yet.
    async fn sse_step(&mut self) -> Option<Result<Chunk>> {
        let mut conn = match self.sse.take() {
            Some(conn) => conn,
            None => match self.fetch(Kind::Sse, &mut 0).await {
                Ok(Answer::Sse(resp, meta)) => SseConn {
                    resp,
                    parser: SseParser::new(
                        self.cfg.max_chunk_bytes.saturating_mul(EVENT_LIMIT_FACTOR),
                    ),
                    events: VecDeque::new(),
                    pending: Vec::new(),
                    pending_bytes: 0,
                    has_data: false,
                    skip: self.sse_unconfirmed,
                    base64: meta.sse_base64,
                    started: Instant::now(),
                },
                Ok(Answer::NotSse) | Ok(Answer::Body(_)) => {
                    tracing::warn!(
                        url = %self.cfg.display,
                        "the server answered an SSE request without an event stream; reading with long-polls instead"
                    );
                    self.transport = Some(Transport::LongPoll);
                    return None;
                }
                Err(e) => return Some(Err(e)),
            },
        };
        let ct = if self.cfg.json {
            Some("application/json".to_owned())
        } else {
            self.content_type.clone()
        };
        loop {
            while let Some(ev) = conn.events.pop_front() {
                match ev.event.as_str() {
                    "data" => {
                        let data = if conn.base64 {
                            match decode_base64_data(&ev.data) {
                                Ok(d) => d,
                                Err(e) => return Some(Err(e)),
                            }
                        } else {
                            ev.data
                        };
                        if !data.is_empty() {
                            conn.has_data = conn.has_data || carries_data(&data, ct.as_deref());
                            let data = match self.drop_repeated(&mut conn, data) {
                                Ok(Some(d)) => d,
                                Ok(None) => continue,
                                Err(e) => return Some(Err(e)),
                            };
                            conn.pending_bytes = conn.pending_bytes.saturating_add(data.len());
                            conn.pending.push(data);
                            if conn.pending_bytes >= self.sse_gather() {
                                let part = self.sse_part(&mut conn);
                                self.sse = Some(conn);
                                return Some(part);
                            }
                        }
                    }
                    "control" => {
                        let control = match parse_control(&ev.data) {
                            Ok(c) => c,
                            Err(e) => return Some(Err(e)),
                        };
                        let has_data = conn.has_data;
                        conn.has_data = false;
                        if let Err(e) =
                            self.check_progress(&control.next_offset, has_data, "SSE control event")
                        {
                            return Some(Err(e));
                        }
                        if !has_data
                            && control.next_offset == self.offset
                            && control.up_to_date == self.up_to_date
                            && control.stream_closed == self.closed
                        {
                            // A control event that repeats the position is not a new batch.
                            conn.pending.clear();
                            conn.pending_bytes = 0;
                            self.sse_unconfirmed = conn.skip;
                            if control.cursor.is_some() {
                                self.cursor = control.cursor;
                            }
                            continue;
                        }
                        self.offset = control.next_offset;
                        if control.cursor.is_some() {
                            self.cursor = control.cursor;
                        }
                        self.up_to_date = control.up_to_date;
                        self.closed = control.stream_closed;
                        let segments = std::mem::take(&mut conn.pending);
                        conn.pending_bytes = 0;
                        // What an earlier connection handed on and this one has not repeated
                        // yet lies beyond the new checkpoint.
                        self.sse_unconfirmed = conn.skip;
                        if !self.closed {
                            self.sse = Some(conn);
                        }
                        let mut chunk = self.chunk(segments);
                        chunk.framing.whole_pieces = true;
                        return Some(Ok(chunk));
                    }
                    other => {
                        tracing::debug!(url = %self.cfg.display, event = %escape_server_text(other, 64), "ignoring an unknown SSE event");
                    }
                }
            }
            let idle = self.cfg.long_poll_timeout;
            // Data events that wait for their control event are handed on (as a batch that
            // is not a checkpoint) once the connection pauses.
            let gathering = !conn.pending.is_empty();
            let wait = if gathering { BODY_PAUSE } else { idle };
            let read = self
                .cancellable(async {
                    match tokio::time::timeout(wait, conn.resp.chunk()).await {
                        Ok(Ok(Some(bytes))) => Ok(Some(bytes)),
                        Ok(Ok(None)) => Ok(None),
                        Ok(Err(e)) => Err(transport_error(e, &self.cfg.display)),
                        Err(_) if gathering => Ok(Some(Bytes::new())),
                        Err(_) => Err(Error::Timeout {
                            source: None,
                            what: format!("SSE connection idle for {idle:?}"),
                        }),
                    }
                })
                .await;
            match read {
                // An empty piece: the pause while gathering (reqwest never yields one).
                Ok(Some(bytes)) if bytes.is_empty() => {
                    if gathering {
                        let part = self.sse_part(&mut conn);
                        self.sse = Some(conn);
                        return Some(part);
                    }
                }
                Ok(Some(bytes)) => {
                    if let Err(e) = conn.parser.feed(&bytes, &mut conn.events) {
                        return Some(Err(e));
                    }
                }
                Err(Error::Cancelled) if self.is_cancelled() => return Some(Err(Error::Cancelled)),
                Ok(None) => return self.sse_ended(conn, None).await,
                Err(e) => return self.sse_ended(conn, Some(e)).await,
            }
        }
    }

    /// An SSE connection ended before the stream closed: data after the last control event is
    /// dropped (the reconnection starts from that event's offset and gets it again). Connections
    /// that end too soon, too often, switch the read to long-polls.
    async fn sse_ended(&mut self, conn: SseConn, error: Option<Error>) -> Option<Result<Chunk>> {
        let lasted = conn.started.elapsed();
        drop(conn);
        let cfg = &self.cfg.sse;
        if lasted >= cfg.min_connection_duration {
            self.short_connections = 0;
            tracing::debug!(url = %self.cfg.display, lasted_ms = lasted.as_millis() as u64, error = ?error.map(|e| e.to_string()), "SSE connection ended; reconnecting");
            return None;
        }
        self.short_connections += 1;
        if self.short_connections >= cfg.max_short_connections {
            tracing::warn!(
                url = %self.cfg.display,
                short_connections = self.short_connections,
                "SSE connections keep ending at once (a proxy may be buffering the responses); reading with long-polls instead"
            );
            self.transport = Some(Transport::LongPoll);
            return None;
        }
        let exp = cfg
            .backoff_base_delay
            .saturating_mul(1u32 << (self.short_connections - 1).min(20));
        let bound = exp.min(cfg.backoff_max_delay);
        let delay = Duration::from_nanos(
            rand::rng().random_range(0..=bound.as_nanos().min(u64::MAX as u128) as u64),
        );
        tracing::info!(
            url = %self.cfg.display,
            short_connections = self.short_connections,
            delay_ms = delay.as_millis() as u64,
            error = ?error.map(|e| e.to_string()),
            "SSE connection ended early; reconnecting after a pause"
        );
        match self.sleep(delay).await {
            Ok(()) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drops `n` messages from `body` fed in the pieces cut at `cuts`; the array that is
    /// handed on, as the engine builds it (`[` and the rest).
    fn skip_in_pieces(body: &[u8], n: u64, cuts: &[usize]) -> Result<Option<Vec<u8>>> {
        let mut skip = MessageSkip::new(n);
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(body.len());
        let mut out: Option<Vec<u8>> = None;
        for w in bounds.windows(2) {
            let piece = &body[w[0]..w[1]];
            match out.as_mut() {
                Some(o) => o.extend_from_slice(piece),
                None => {
                    if let Some(rest) = skip.feed(piece)? {
                        let mut o = vec![b'['];
                        o.extend_from_slice(&piece[rest..]);
                        out = Some(o);
                    }
                }
            }
        }
        Ok(out)
    }

    #[test]
    fn message_skip_drops_whole_messages_wherever_the_pieces_are_cut() {
        let body = br#" [ {"a":[1,{"b":"],\"}"}]} , "x,]" ,[[],{}] ,3 , null ] "#;
        let values: Vec<serde_json::Value> =
            serde_json::from_slice::<Vec<serde_json::Value>>(body).unwrap();
        for n in 1..=values.len() as u64 {
            let expected = &values[n as usize..];
            for a in 0..=body.len() {
                for b in a..=body.len() {
                    let out = skip_in_pieces(body, n, &[a, b])
                        .unwrap()
                        .unwrap_or_else(|| panic!("n {n}, cuts {a} {b}: not found"));
                    let got: Vec<serde_json::Value> = serde_json::from_slice(&out)
                        .unwrap_or_else(|e| panic!("n {n}, cuts {a} {b}: {e}: {out:?}"));
                    assert_eq!(got, expected, "n {n}, cuts {a} {b}");
                }
            }
        }
    }

    #[test]
    fn message_skip_reports_an_array_that_ends_first_and_refuses_no_array() {
        // The array ends before the messages to drop: `]` is where it goes on, `left` what
        // the next response must still drop.
        for (body, n, left) in [(&b"[1,2]"[..], 3u64, 1u64), (b"[]", 1, 1), (b" [ ] ", 2, 2)] {
            let mut skip = MessageSkip::new(n);
            let at = skip.feed(body).unwrap().unwrap();
            assert_eq!(body[at], b']', "{body:?}");
            assert_eq!(skip.left, left, "{body:?}");
        }
        for body in [&b"{\"a\":1}"[..], b"1", b"\"[\""] {
            let e = skip_in_pieces(body, 1, &[]).unwrap_err();
            assert!(e.to_string().contains("not an array"), "{e}");
        }
        // Still skipping when the body stops: nothing found yet.
        assert_eq!(skip_in_pieces(b"[1,2", 3, &[]).unwrap(), None);
    }

    #[test]
    fn empty_bodies_carry_no_data() {
        let json = Some("application/json");
        assert!(!carries_data(b"", json));
        assert!(!carries_data(b" \n", None));
        assert!(!carries_data(b"[]", json));
        assert!(!carries_data(b" [ \n ] ", json));
        assert!(carries_data(b"[]", Some("text/plain")));
        assert!(carries_data(b"[1]", json));
        assert!(carries_data(b"[],", json));
        assert!(carries_data(b"x", None));
    }

    #[test]
    fn response_headers() {
        let mut hm = HeaderMap::new();
        assert_eq!(parse_meta(&hm), ResponseMeta::default());
        hm.insert("stream-next-offset", "0_7".parse().unwrap());
        hm.insert("stream-cursor", " 123 ".parse().unwrap());
        hm.insert("stream-up-to-date", "TRUE".parse().unwrap());
        hm.insert("stream-closed", "false".parse().unwrap());
        hm.insert("content-type", "application/json".parse().unwrap());
        hm.insert("stream-sse-data-encoding", "Base64".parse().unwrap());
        let m = parse_meta(&hm);
        assert_eq!(m.next_offset.unwrap().as_str(), "0_7");
        assert_eq!(m.cursor.as_deref(), Some("123"));
        assert!(m.up_to_date && !m.stream_closed && m.sse_base64);
        assert_eq!(m.content_type.as_deref(), Some("application/json"));
        hm.insert("stream-next-offset", "".parse().unwrap());
        hm.insert("stream-cursor", "".parse().unwrap());
        let m = parse_meta(&hm);
        assert!(m.next_offset.is_none() && m.cursor.is_none());
    }
}
