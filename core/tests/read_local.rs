//! The read path against a scripted local HTTP server: what the client sends, and answers the
//! reference server never gives (chunked catch-up, SSE connections that end, broken proxies).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable_streams_client::{
    Client, DurableStream, Error, ErrorCode, JsonPick, LiveMode, Offset, ReadOptions,
    RequestExtras, RetryPolicy, SseResilience, StreamResponse, Value,
};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A request as the local server saw it.
#[derive(Debug, Clone)]
struct Seen {
    target: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn param(&self, name: &str) -> Option<String> {
        let url = url::Url::parse(&format!("http://h{}", self.target)).unwrap();
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    /// `catch-up`, `long-poll` or `sse`.
    fn kind(&self) -> String {
        self.param("live").unwrap_or_else(|| "catch-up".into())
    }
}

/// What the local server answers.
enum Reply {
    /// A complete response.
    Full(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// A 200 body delimited by the connection's end: the parts are written in order, then the
    /// connection is closed, or (with `hold`) kept open until the client goes away.
    Open(Vec<(&'static str, String)>, Vec<Vec<u8>>, bool),
    /// A response whose body of `len` bytes is generated as it is written (never held in
    /// memory); the bytes actually written are added to the counter.
    Huge(u16, Vec<(&'static str, String)>, u64, Arc<AtomicUsize>),
    /// No answer at all: the connection stays open and silent until the client goes away.
    Silent,
    /// A response that declares `len` body bytes, sends the part, then stays silent until the
    /// client goes away.
    Stall(u16, Vec<(&'static str, String)>, usize, Vec<u8>),
    /// A 200 body delimited by the connection's end, written part by part with a pause
    /// before each part after the first.
    Paced(Vec<(&'static str, String)>, Vec<Vec<u8>>, Duration),
    /// A 200 response that declares `len` body bytes, then sends the parts (with a pause
    /// before each after the first) and closes the connection: a body cut short.
    Cut(Vec<(&'static str, String)>, usize, Vec<Vec<u8>>, Duration),
    /// An event stream of `count` events made by the function as they are written (never
    /// held in memory), then `tail`, then the end of the connection; the bytes written are
    /// added to the counter.
    SseRun(usize, EventFn, Vec<u8>, Arc<AtomicUsize>),
}

type EventFn = Arc<dyn Fn(usize) -> Vec<u8> + Send + Sync>;

struct Local {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Connections the client closed while the server held them open.
    abandoned: Arc<AtomicUsize>,
}

impl Local {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn kinds(&self) -> Vec<String> {
        self.seen().iter().map(Seen::kind).collect()
    }

    fn handle(&self) -> DurableStream {
        DurableStream::builder(format!("{}/s", self.url))
            .client(Client::new().unwrap())
            .build()
            .unwrap()
    }
}

/// Starts a server that answers request number `n` with `handler(n, request)`, one request per
/// connection.
async fn local<F>(handler: F) -> Local
where
    F: Fn(usize, &Seen) -> Reply + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let abandoned = Arc::new(AtomicUsize::new(0));
    let handler = Arc::new(handler);
    let (seen2, abandoned2) = (seen.clone(), abandoned.clone());
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let (seen, abandoned, handler) = (seen2.clone(), abandoned2.clone(), handler.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                let end = loop {
                    let n = sock.read(&mut tmp).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let mut lines = head.lines();
                let target = lines.next().unwrap().split(' ').nth(1).unwrap().to_owned();
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .collect();
                let req = Seen { target, headers };
                let n = {
                    let mut s = seen.lock().unwrap();
                    s.push(req.clone());
                    s.len() - 1
                };
                let write_head = |status: u16, hs: &[(&str, String)], len: Option<usize>| {
                    let mut out = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
                    for (k, v) in hs {
                        out += &format!("{k}: {v}\r\n");
                    }
                    if let Some(len) = len {
                        out += &format!("Content-Length: {len}\r\n");
                    }
                    out + "\r\n"
                };
                match handler(n, &req) {
                    Reply::Full(status, hs, body) => {
                        let len = (status != 204).then_some(body.len());
                        let _ = sock
                            .write_all(write_head(status, &hs, len).as_bytes())
                            .await;
                        let _ = sock.write_all(&body).await;
                    }
                    Reply::Huge(status, hs, len, written) => {
                        let head = write_head(status, &hs, usize::try_from(len).ok());
                        if sock.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let block = vec![b'e'; 64 * 1024];
                        let mut left = len;
                        while left > 0 {
                            let n = left.min(block.len() as u64) as usize;
                            if sock.write_all(&block[..n]).await.is_err() {
                                break;
                            }
                            written.fetch_add(n, Ordering::SeqCst);
                            left -= n as u64;
                        }
                    }
                    Reply::SseRun(count, event, tail, written) => {
                        let head = write_head(200, &sse_headers("text/plain"), None);
                        if sock.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        for i in 0..count {
                            let event = event(i);
                            if sock.write_all(&event).await.is_err() {
                                return;
                            }
                            written.fetch_add(event.len(), Ordering::SeqCst);
                        }
                        let _ = sock.write_all(&tail).await;
                    }
                    Reply::Paced(hs, parts, pause) => {
                        let _ = sock.write_all(write_head(200, &hs, None).as_bytes()).await;
                        for (i, p) in parts.into_iter().enumerate() {
                            if i > 0 {
                                tokio::time::sleep(pause).await;
                            }
                            let _ = sock.write_all(&p).await;
                            let _ = sock.flush().await;
                        }
                    }
                    Reply::Cut(hs, len, parts, pause) => {
                        let _ = sock
                            .write_all(write_head(200, &hs, Some(len)).as_bytes())
                            .await;
                        for (i, p) in parts.into_iter().enumerate() {
                            if i > 0 {
                                tokio::time::sleep(pause).await;
                            }
                            let _ = sock.write_all(&p).await;
                            let _ = sock.flush().await;
                        }
                    }
                    Reply::Silent => {
                        while sock.read(&mut tmp).await.unwrap_or(0) > 0 {}
                        abandoned.fetch_add(1, Ordering::SeqCst);
                    }
                    Reply::Stall(status, hs, len, part) => {
                        let _ = sock
                            .write_all(write_head(status, &hs, Some(len)).as_bytes())
                            .await;
                        let _ = sock.write_all(&part).await;
                        let _ = sock.flush().await;
                        while sock.read(&mut tmp).await.unwrap_or(0) > 0 {}
                        abandoned.fetch_add(1, Ordering::SeqCst);
                    }
                    Reply::Open(hs, parts, hold) => {
                        let _ = sock.write_all(write_head(200, &hs, None).as_bytes()).await;
                        for p in parts {
                            let _ = sock.write_all(&p).await;
                            let _ = sock.flush().await;
                        }
                        if hold {
                            while sock.read(&mut tmp).await.unwrap_or(0) > 0 {}
                            abandoned.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
    });
    Local {
        url,
        seen,
        abandoned,
    }
}

fn meta(offset: &str, up_to_date: bool, closed: bool) -> Vec<(&'static str, String)> {
    let mut hs = vec![
        ("Content-Type", "text/plain".to_owned()),
        ("Stream-Next-Offset", offset.to_owned()),
    ];
    if up_to_date {
        hs.push(("Stream-Up-To-Date", "true".into()));
    }
    if closed {
        hs.push(("Stream-Closed", "true".into()));
    }
    hs
}

fn sse_headers(ct: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "text/event-stream".to_owned()),
        ("X-Stream-Type", ct.to_owned()),
    ]
}

fn control(offset: &str, cursor: Option<&str>, closed: bool) -> Vec<u8> {
    let mut c = serde_json::json!({"streamNextOffset": offset, "upToDate": true});
    if let Some(cur) = cursor {
        c["streamCursor"] = cur.into();
    }
    if closed {
        c["streamClosed"] = true.into();
    }
    format!("event: control\ndata:{c}\n\n").into_bytes()
}

/// Fails the test instead of hanging when a read does not end.
async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .expect("the read should have ended")
}

/// `err` is a parse error (a protocol violation, a limit) whose text says `says`.
fn parse_error_saying(err: &Error, says: &str) {
    assert_eq!(err.code(), ErrorCode::ParseError, "{err}");
    assert!(err.to_string().contains(says), "{err}");
}

fn fast() -> ReadOptions {
    ReadOptions::new().retry(
        RetryPolicy::default()
            .with_initial_delay(Duration::from_millis(5))
            .with_max_delay(Duration::from_millis(20)),
    )
}

/// An SSE read that reconnects after 10 ms.
fn sse_quick_reconnect() -> ReadOptions {
    fast().live(LiveMode::Sse).sse_resilience(SseResilience {
        backoff_base_delay: Duration::from_millis(10),
        ..Default::default()
    })
}

#[tokio::test]
async fn catch_up_follows_chunks_until_up_to_date() {
    let server = local(|_, req| {
        let (body, next, done) = match req.param("offset").as_deref() {
            Some("-1") => ("ab", "o1", false),
            Some("o1") => ("cd", "o2", false),
            Some("o2") => ("ef", "o3", true),
            other => panic!("unexpected offset {other:?}"),
        };
        let mut hs = meta(next, done, false);
        hs.push(("Stream-Cursor", "c1".into()));
        Reply::Full(200, hs, body.into())
    })
    .await;
    let s = server.handle();

    let resp = s.stream(fast().live(LiveMode::Off)).await.unwrap();
    let batches: Vec<_> = within(
        resp.byte_batches()
            .unwrap()
            .into_stream()
            .map(|b| b.unwrap())
            .collect(),
    )
    .await;
    let shape: Vec<(&[u8], &str, bool)> = batches
        .iter()
        .map(|b| (&b.data[..], b.offset.as_str(), b.up_to_date))
        .collect();
    assert_eq!(
        shape,
        vec![
            (&b"ab"[..], "o1", false),
            (b"cd", "o2", false),
            (b"ef", "o3", true)
        ]
    );
    assert_eq!(batches[2].cursor.as_deref(), Some("c1"));
    // Catch-up requests are plain and cacheable: no live, no cursor.
    for req in server.seen() {
        assert_eq!(req.param("live"), None, "{req:?}");
        assert_eq!(req.param("cursor"), None, "{req:?}");
    }

    // Accumulators stop at the first up-to-date point even in a live mode.
    let resp = s.stream(fast().live(LiveMode::LongPoll)).await.unwrap();
    assert_eq!(&within(resp.bytes()).await.unwrap()[..], b"abcdef");
    assert_eq!(server.seen().len(), 6);
    assert_eq!(resp.offset().as_str(), "o3");
}

#[tokio::test]
async fn a_held_position_moves_only_when_released() {
    let server = local(|_, req| {
        let (body, next, done) = match req.param("offset").as_deref() {
            Some("-1") => ("ab", "o1", false),
            Some("o1") => ("cd", "o2", true),
            other => panic!("unexpected offset {other:?}"),
        };
        let mut hs = meta(next, done, false);
        hs.push(("Stream-Cursor", format!("c-{next}")));
        Reply::Full(200, hs, body.into())
    })
    .await;
    let s = server.handle();

    // Batches: each release moves the position past the batches returned so far, no further.
    let resp = s.stream(fast().live(LiveMode::Off)).await.unwrap();
    resp.hold_position();
    let mut batches = resp.byte_batches().unwrap();
    let first = within(batches.next_batch()).await.unwrap().unwrap();
    assert_eq!(&first.data[..], b"ab");
    assert_eq!(resp.offset(), Offset::beginning());
    assert_eq!(resp.cursor(), None);
    resp.release_position();
    assert_eq!(resp.offset().as_str(), "o1");
    assert_eq!(resp.cursor().as_deref(), Some("c-o1"));
    assert!(!resp.up_to_date());
    let second = within(batches.next_batch()).await.unwrap().unwrap();
    assert_eq!(&second.data[..], b"cd");
    assert_eq!(resp.offset().as_str(), "o1");
    resp.release_position();
    assert_eq!(resp.offset().as_str(), "o2");
    assert!(resp.up_to_date());

    // An accumulating read: nothing moves until it is released, so a caller that never got
    // the data resumes from the start.
    let resp = s.stream(fast().live(LiveMode::Off)).await.unwrap();
    resp.hold_position();
    resp.hold_position(); // a second call keeps what was held
    assert_eq!(&within(resp.bytes()).await.unwrap()[..], b"abcd");
    assert_eq!(resp.offset(), Offset::beginning());
    assert!(!resp.up_to_date());
    resp.release_position();
    assert_eq!(resp.offset().as_str(), "o2");
    assert!(resp.up_to_date());

    // Without a hold, release changes nothing and the position moves as data is returned.
    let resp = s.stream(fast().live(LiveMode::Off)).await.unwrap();
    resp.release_position();
    assert_eq!(resp.offset(), Offset::beginning());
    assert_eq!(&within(resp.bytes()).await.unwrap()[..], b"abcd");
    assert_eq!(resp.offset().as_str(), "o2");
}

/// Body `i` of `whole_reads_join_batches_of_any_size_in_order`: `len` bytes that differ from
/// every other body's at each position.
fn patterned(i: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|n| (n % 251) as u8 ^ i.wrapping_mul(37))
        .collect()
}

#[tokio::test]
async fn whole_reads_join_batches_of_any_size_in_order() {
    // Responses larger than one batch (64 KiB), an empty one, a one-byte one: `bytes()`
    // returns them joined, whichever batch comes first or last.
    let sizes = [700_000usize, 0, 1, 300_000, 5];
    let server = local(move |_, req| {
        let i: usize = match req.param("offset").as_deref() {
            Some("-1") => 0,
            Some(o) => o.trim_start_matches('o').parse().expect("an offset o<i>"),
            None => panic!("no offset"),
        };
        let last = i + 1 == sizes.len();
        let hs = meta(&format!("o{}", i + 1), last, false);
        Reply::Full(200, hs, patterned(i as u8, sizes[i]))
    })
    .await;
    let expected: Vec<u8> = (0..sizes.len())
        .flat_map(|i| patterned(i as u8, sizes[i]))
        .collect();
    let s = server.handle();
    let resp = s.stream(fast().live(LiveMode::Off)).await.unwrap();
    let got = within(resp.bytes()).await.unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got[..] == expected[..], "the bytes differ");
    assert_eq!(resp.offset().as_str(), "o5");

    // One response only: handed back as it is.
    let resp = s
        .stream(fast().live(LiveMode::Off).offset(Offset::from("o4")))
        .await
        .unwrap();
    assert_eq!(
        &within(resp.bytes()).await.unwrap()[..],
        &patterned(4, 5)[..]
    );
}

#[tokio::test]
async fn requests_carry_encoded_offsets_merged_extras_and_the_cursor() {
    let server = local(|n, _| match n {
        0 => {
            let mut hs = meta("n 1", true, false);
            hs.push(("Stream-Cursor", "c1".into()));
            Reply::Full(200, hs, b"x".to_vec())
        }
        1 => {
            let mut hs = meta("n 1", true, false);
            hs.push(("Stream-Cursor", "c2".into()));
            Reply::Full(204, hs, Vec::new())
        }
        _ => Reply::Full(204, meta("n 1", true, true), Vec::new()),
    })
    .await;
    let counter = Arc::new(AtomicUsize::new(0));
    let c = counter.clone();
    let s = DurableStream::builder(format!("{}/s?tenant=a", server.url))
        .client(Client::new().unwrap())
        .header("X-Handle", "h")
        .header("X-Read", "from-handle")
        .header(
            "X-Count",
            Value::computed(move || {
                let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                async move { Ok(n.to_string()) }
            }),
        )
        .build()
        .unwrap();
    let resp = s
        .stream(
            fast()
                .live(LiveMode::LongPoll)
                .offset("a b+c&d")
                .header("X-Read", "r")
                .param("z", "9"),
        )
        .await
        .unwrap();
    let text: String = within(
        resp.text_stream()
            .unwrap()
            .map(|t| t.unwrap())
            .collect::<Vec<_>>(),
    )
    .await
    .concat();
    assert_eq!(text, "x");
    assert!(resp.stream_closed());
    let seen = server.seen();
    let targets: Vec<&str> = seen.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(
        targets,
        vec![
            "/s?offset=a+b%2Bc%26d&tenant=a&z=9",
            "/s?cursor=c1&live=long-poll&offset=n+1&tenant=a&z=9",
            "/s?cursor=c2&live=long-poll&offset=n+1&tenant=a&z=9",
        ]
    );
    for (i, req) in seen.iter().enumerate() {
        assert_eq!(req.header("x-handle").as_deref(), Some("h"));
        assert_eq!(req.header("x-read").as_deref(), Some("r"));
        // Computed once per request.
        assert_eq!(req.header("x-count"), Some((i + 1).to_string()));
    }
    assert_eq!(counter.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_error_hook_extras_are_sent_on_the_retry_and_after() {
    let server = local(|n, req| match n {
        0 => Reply::Full(200, meta("o1", true, false), Vec::new()),
        1 => Reply::Full(401, vec![], b"expired".to_vec()),
        2 => {
            assert_eq!(req.header("authorization").as_deref(), Some("Bearer new"));
            Reply::Full(200, meta("o2", true, false), b"a".to_vec())
        }
        _ => {
            assert_eq!(req.header("authorization").as_deref(), Some("Bearer new"));
            Reply::Full(204, meta("o2", true, true), Vec::new())
        }
    })
    .await;
    let errors = Arc::new(Mutex::new(Vec::new()));
    let errs = errors.clone();
    let resp = server
        .handle()
        .stream(
            fast()
                .live(LiveMode::LongPoll)
                .header("Authorization", "Bearer old")
                .on_error(move |e: Error| {
                    errs.lock().unwrap().push(e);
                    async { Some(RequestExtras::new().header("Authorization", "Bearer new")) }
                }),
        )
        .await
        .unwrap();
    let bytes: Vec<_> = within(resp.byte_stream().unwrap().map(|b| b.unwrap()).collect()).await;
    assert_eq!(bytes.concat(), b"a");
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].code(), ErrorCode::Unauthorized);
    assert_eq!(errors[0].server_message(), Some("expired"));
    assert_eq!(server.seen().len(), 4);
}

#[tokio::test]
async fn sse_reconnects_from_the_last_control_event_and_echoes_the_cursor() {
    let server = local(|n, req| match n {
        0 => {
            let mut hs = meta("o1", true, false);
            hs.push(("Stream-Cursor", "c0".into()));
            Reply::Full(200, hs, Vec::new())
        }
        1 => {
            assert_eq!(req.param("offset").as_deref(), Some("o1"));
            assert_eq!(req.param("cursor").as_deref(), Some("c0"));
            Reply::Open(
                sse_headers("text/plain"),
                vec![
                    b"event: data\ndata:hello\ndata: there\n\n".to_vec(),
                    control("o2", Some("c1"), false),
                    // Data without its control event: dropped, and sent again after the
                    // reconnection.
                    b"event: data\ndata:LOST\n\n".to_vec(),
                ],
                false,
            )
        }
        _ => {
            assert_eq!(req.param("offset").as_deref(), Some("o2"));
            assert_eq!(req.param("cursor").as_deref(), Some("c1"));
            Reply::Open(
                sse_headers("text/plain"),
                vec![
                    b"event: data\ndata:world\n\n".to_vec(),
                    control("o3", None, true),
                ],
                false,
            )
        }
    })
    .await;
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::Sse))
        .await
        .unwrap();
    let batches: Vec<_> = within(
        resp.text_batches()
            .unwrap()
            .into_stream()
            .map(|b| b.unwrap())
            .collect(),
    )
    .await;
    let shape: Vec<(&str, &str, bool)> = batches
        .iter()
        .map(|b| (b.data.as_str(), b.offset.as_str(), b.stream_closed))
        .collect();
    assert_eq!(
        shape,
        vec![
            ("", "o1", false),
            ("hello\nthere", "o2", false),
            ("world", "o3", true)
        ]
    );
    assert_eq!(server.kinds(), vec!["catch-up", "sse", "sse"]);
}

#[tokio::test]
async fn sse_falls_back_to_long_polls_after_short_connections() {
    let server = local(|n, req| match req.kind().as_str() {
        "catch-up" => Reply::Full(200, meta("o1", true, false), Vec::new()),
        "sse" => Reply::Open(
            sse_headers("text/plain"),
            vec![control("o1", Some(&format!("c{n}")), false)],
            false,
        ),
        _ => Reply::Full(200, meta("o2", true, true), b"via long-poll".to_vec()),
    })
    .await;
    let resp = server.handle().stream(sse_quick_reconnect()).await.unwrap();
    let text: Vec<String> = within(resp.text_stream().unwrap().map(|t| t.unwrap()).collect()).await;
    assert_eq!(text.concat(), "via long-poll");
    assert_eq!(
        server.kinds(),
        vec!["catch-up", "sse", "sse", "sse", "long-poll"]
    );
    // The long-poll echoes the cursor of the last SSE control event.
    assert_eq!(server.seen()[4].param("cursor").as_deref(), Some("c3"));
}

/// SSE connections that hand on data after their last control event, then end at once, until
/// the read falls back to long-polls: the long-poll's body starts with that data again, which is
/// dropped (by bytes; for JSON by messages), so every message arrives once.
#[tokio::test]
async fn after_sse_falls_back_the_data_it_handed_on_is_not_handed_on_again() {
    // `split`: the first long-poll answer (not up to date) holds less than SSE handed on; what
    // remains to drop is dropped from the next answer.
    for (json, split) in [(false, false), (true, false), (false, true), (true, true)] {
        let server = local(move |_, req| {
            let ct = if json {
                "application/json"
            } else {
                "text/plain"
            };
            let meta = |offset: &str, up_to_date: bool, closed: bool| {
                let mut hs = meta(offset, up_to_date, closed);
                hs[0].1 = ct.to_owned();
                hs
            };
            match req.kind().as_str() {
                "catch-up" => Reply::Full(
                    200,
                    meta("o1", true, false),
                    if json { b"[]".to_vec() } else { Vec::new() },
                ),
                // No control event after the data: it is handed on (it fills a part) but
                // not confirmed, and every connection sends it again from o1.
                "sse" => Reply::Open(
                    sse_headers(ct),
                    vec![if json {
                        b"event: data\ndata:[{\"m\":1},{\"m\":2}]\n\n".to_vec()
                    } else {
                        b"event: data\ndata:abcdefghijklmnopq\n\n".to_vec()
                    }],
                    false,
                ),
                _ => {
                    let first = req.param("offset").as_deref() == Some("o1");
                    assert!(first || (split && req.param("offset").as_deref() == Some("o1b")));
                    // In parts, so the skip may cross the pieces the client gets.
                    let parts: Vec<&[u8]> = match (json, split, first) {
                        (true, false, _) => vec![b"[ {\"m\":1}", b", {\"m\":2}", b" ,{\"m\":3}]"],
                        (false, false, _) => vec![b"abcdefgh", b"ijklmnopq", b"rs"],
                        (true, true, true) => vec![b"[{\"m\":1}]"],
                        (true, true, false) => vec![b"[{\"m\":2},", b"{\"m\":3}]"],
                        (false, true, true) => vec![b"abcdefgh"],
                        (false, true, false) => vec![b"ijklmnopq", b"rs"],
                    };
                    let hs = if split && first {
                        meta("o1b", false, false)
                    } else {
                        meta("o2", true, true)
                    };
                    Reply::Open(hs, parts.into_iter().map(<[u8]>::to_vec).collect(), false)
                }
            }
        })
        .await;
        let options = sse_quick_reconnect().max_chunk_bytes(16);
        if json {
            let resp = server.handle().stream(options.json(true)).await.unwrap();
            let got = json_messages(resp).await;
            let ms: Vec<u64> = got.iter().map(|m| m["m"].as_u64().unwrap()).collect();
            assert_eq!(ms, vec![1, 2, 3], "split {split}");
        } else {
            let resp = server.handle().stream(options).await.unwrap();
            let text: Vec<String> =
                within(resp.text_stream().unwrap().map(|t| t.unwrap()).collect()).await;
            assert_eq!(text.concat(), "abcdefghijklmnopqrs", "split {split}");
        }
        let mut kinds = vec!["catch-up", "sse", "sse", "sse", "long-poll"];
        if split {
            kinds.push("long-poll");
        }
        assert_eq!(server.kinds(), kinds, "json {json}, split {split}");
    }
}

#[tokio::test]
async fn an_sse_request_answered_without_an_event_stream_falls_back_at_once() {
    let server = local(|_, req| match req.kind().as_str() {
        "catch-up" => Reply::Full(200, meta("o1", true, false), Vec::new()),
        "sse" => Reply::Full(200, meta("o1", true, false), b"buffered".to_vec()),
        _ => Reply::Full(200, meta("o2", true, true), b"!".to_vec()),
    })
    .await;
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::Sse))
        .await
        .unwrap();
    assert_eq!(
        within(
            resp.byte_stream()
                .unwrap()
                .map(|b| b.unwrap())
                .collect::<Vec<_>>()
        )
        .await
        .concat(),
        b"!"
    );
    assert_eq!(server.kinds(), vec!["catch-up", "sse", "long-poll"]);
}

#[tokio::test]
async fn dropping_a_reader_closes_its_connection() {
    let server = local(|_, req| match req.kind().as_str() {
        "catch-up" => Reply::Full(200, meta("o1", true, false), b"a".to_vec()),
        "sse" => Reply::Open(
            sse_headers("text/plain"),
            vec![
                b"event: data\ndata:b\n\n".to_vec(),
                control("o2", Some("1"), false),
            ],
            true,
        ),
        _ => Reply::Open(meta("o1", true, false), vec![], true),
    })
    .await;
    for (mode, expected) in [(LiveMode::Sse, 1), (LiveMode::LongPoll, 2)] {
        let resp = server.handle().stream(fast().live(mode)).await.unwrap();
        let mut chunks = resp.byte_stream().unwrap();
        assert_eq!(&chunks.next().await.unwrap().unwrap()[..], b"a");
        if mode == LiveMode::Sse {
            assert_eq!(&chunks.next().await.unwrap().unwrap()[..], b"b");
        }
        // The reader now waits on a connection the server holds open.
        let waiting = tokio::spawn(async move {
            let _ = chunks.next().await;
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        waiting.abort();
        let _ = waiting.await;
        tokio::time::timeout(Duration::from_secs(2), async {
            while server.abandoned.load(Ordering::SeqCst) < expected {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the server should see the connection closed");
    }
}

#[tokio::test]
async fn cancel_fails_an_accumulating_read_in_the_middle_of_a_request() {
    let server = local(|n, _| match n {
        0 => Reply::Full(200, meta("o1", false, false), b"part".to_vec()),
        _ => Reply::Open(meta("o2", true, false), vec![], true),
    })
    .await;
    let resp = Arc::new(server.handle().stream(fast()).await.unwrap());
    let r = resp.clone();
    let reading = tokio::spawn(async move { r.bytes().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    resp.cancel();
    let result = tokio::time::timeout(Duration::from_secs(2), reading)
        .await
        .expect("cancel must be prompt")
        .unwrap();
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    // The position stays at the data handed on.
    assert_eq!(resp.offset().as_str(), "o1");
}

#[tokio::test]
async fn a_read_response_without_a_next_offset_is_refused() {
    let server = local(|_, _| {
        Reply::Full(
            200,
            vec![("Content-Type", "text/plain".into())],
            b"x".to_vec(),
        )
    })
    .await;
    let resp = server.handle().stream(fast()).await.unwrap();
    let err = within(resp.bytes()).await.unwrap_err();
    parse_error_saying(&err, "Stream-Next-Offset");
}

// ---- A misbehaving server: every answer stays bounded ----

#[tokio::test]
async fn a_huge_error_body_is_not_downloaded() {
    let written = Arc::new(AtomicUsize::new(0));
    let w = written.clone();
    let server = local(move |_, _| {
        Reply::Huge(
            500,
            vec![("Content-Type", "text/plain".into())],
            1 << 30,
            w.clone(),
        )
    })
    .await;
    let opts = fast().retry(
        RetryPolicy::default()
            .with_initial_delay(Duration::from_millis(5))
            .with_max_delay(Duration::from_millis(20))
            .with_max_retries(Some(1)),
    );
    let err = within(server.handle().stream(opts)).await.unwrap_err();
    assert_eq!(err.status(), Some(500), "{err}");
    let message = err.server_message().unwrap();
    assert!(
        message.starts_with("eeee") && message.len() <= 2100,
        "{}",
        message.len()
    );
    assert_eq!(server.seen().len(), 2);
    // The client stopped reading after a prefix: far less than the 2 GiB two answers offered
    // went out (socket buffers hold a few MiB at most).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = written.load(Ordering::SeqCst);
    assert!(sent < 64 << 20, "{sent} bytes sent");
}

#[tokio::test]
async fn server_error_text_cannot_forge_log_lines() {
    let server = local(|_, _| {
        Reply::Full(
            400,
            vec![("Content-Type", "text/plain".into())],
            b"bad offset\n2026-12-04 INFO admin logged in\r\n\x1b[2J".to_vec(),
        )
    })
    .await;
    let err = within(server.handle().stream(fast())).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadRequest);
    let text = err.to_string();
    assert!(!text.chars().any(char::is_control), "{text:?}");
    assert!(
        text.contains(r"bad offset\n2026-12-04 INFO admin logged in\r\n\u{1b}[2J"),
        "{text}"
    );
}

#[tokio::test]
async fn a_huge_retry_after_is_capped_and_counts_against_the_budget() {
    let server = local(|_, _| {
        Reply::Full(
            503,
            vec![("Retry-After", "999999".into())],
            b"busy".to_vec(),
        )
    })
    .await;
    let opts = ReadOptions::new().retry(
        RetryPolicy::default()
            .with_initial_delay(Duration::from_millis(5))
            .with_max_delay(Duration::from_millis(20))
            .with_max_retries(Some(2))
            .with_max_retry_after(Duration::from_millis(50)),
    );
    let err = within(server.handle().stream(opts)).await.unwrap_err();
    assert_eq!(err.status(), Some(503), "{err}");
    // The first attempt and two retries.
    assert_eq!(server.seen().len(), 3);
    assert_eq!(
        RetryPolicy::default().max_retry_after,
        durable_streams_client::DEFAULT_MAX_RETRY_AFTER
    );
}

#[tokio::test]
async fn data_that_does_not_advance_the_offset_is_a_protocol_error() {
    let server = local(|n, _| match n {
        0 => Reply::Full(200, meta("o1", false, false), b"ab".to_vec()),
        _ => Reply::Full(200, meta("o1", false, false), b"cd".to_vec()),
    })
    .await;
    let resp = server.handle().stream(fast()).await.unwrap();
    let err = within(resp.bytes()).await.unwrap_err();
    parse_error_saying(&err, "without advancing the offset");
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn an_error_body_that_stalls_does_not_hold_the_error_back() {
    // The head of a 404 arrives, then part of its declared body, then nothing.
    let server = local(|_, _| {
        Reply::Stall(
            404,
            vec![("Content-Type", "text/plain".into())],
            100,
            b"no such str".to_vec(),
        )
    })
    .await;
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(20), server.handle().stream(fast()))
        .await
        .expect("the error should not wait for a body that never comes")
        .unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    assert_eq!(err.server_message(), Some("no such str"), "{err}");
    // Within the error body's wait (5 s) and some slack.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_sentinel_as_the_next_offset_is_a_protocol_error() {
    for sentinel in ["-1", "now"] {
        let server = local(move |n, _| match n {
            0 => Reply::Full(200, meta("o1", false, false), b"ab".to_vec()),
            1 => Reply::Full(200, meta(sentinel, false, false), b"cd".to_vec()),
            _ => Reply::Full(200, meta("o2", true, false), b"ef".to_vec()),
        })
        .await;
        let resp = server.handle().stream(fast()).await.unwrap();
        let err = within(resp.bytes()).await.unwrap_err();
        parse_error_saying(&err, &format!("gave \"{sentinel}\" as the next offset"));
        assert_eq!(server.seen().len(), 2);
    }
}

#[tokio::test]
async fn catch_up_answers_that_never_move_are_a_protocol_error() {
    // Empty, not up to date, the offset unchanged: no way forward. A few are let through
    // (the fourth answer moves on), a run of ten is an error.
    let server = local(|n, _| match n {
        0 => Reply::Full(200, meta("o1", false, false), b"ab".to_vec()),
        1..=3 => Reply::Full(200, meta("o1", false, false), Vec::new()),
        4 => Reply::Full(200, meta("o2", false, false), b"cd".to_vec()),
        _ => Reply::Full(200, meta("o2", false, false), Vec::new()),
    })
    .await;
    let resp = server.handle().stream(fast()).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(30), resp.bytes())
        .await
        .expect("the read should have ended")
        .unwrap_err();
    parse_error_saying(
        &err,
        "10 catch-up answers in a row held no data, left the offset at \"o2\"",
    );
    assert_eq!(server.seen().len(), 15);
}

#[tokio::test]
async fn an_offset_going_backwards_is_a_protocol_error() {
    let server = local(|n, _| match n {
        0 => Reply::Full(200, meta("o5", false, false), b"ab".to_vec()),
        _ => Reply::Full(200, meta("o3", true, false), Vec::new()),
    })
    .await;
    let resp = server.handle().stream(fast()).await.unwrap();
    let err = within(resp.bytes()).await.unwrap_err();
    parse_error_saying(&err, "went backwards from \"o5\" to \"o3\"");
}

#[tokio::test]
async fn a_storm_of_empty_answers_is_paced() {
    let server = local(|_, req| match req.kind().as_str() {
        "catch-up" => Reply::Full(200, meta("o1", true, false), Vec::new()),
        _ => Reply::Full(204, meta("o1", true, false), Vec::new()),
    })
    .await;
    let resp = server
        .handle()
        .stream(ReadOptions::new().live(LiveMode::LongPoll))
        .await
        .unwrap();
    let mut batches = resp.byte_batches().unwrap();
    let first = batches.next_batch().await.unwrap().unwrap();
    assert_eq!(first.offset.as_str(), "o1");
    // The answers repeat the position, so no batch follows; the read keeps asking, slowly.
    let more = tokio::time::timeout(Duration::from_secs(1), batches.next_batch()).await;
    assert!(more.is_err(), "no new batch expected");
    let requests = server.seen().len();
    // Without pacing this is hundreds of requests a second.
    assert!((3..40).contains(&requests), "{requests} requests in 1 s");
}

#[tokio::test]
async fn empty_answers_that_move_the_offset_are_paced_too() {
    // Each catch-up answer is empty, not up to date, and names a new offset: progress on
    // paper, nothing in fact. The read goes on (the offset moves), but slowly.
    let server =
        local(|n, _| Reply::Full(200, meta(&format!("o{n:06}"), false, false), Vec::new())).await;
    let resp = server.handle().stream(ReadOptions::new()).await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(1), resp.bytes()).await;
    assert!(read.is_err(), "the read has no end to reach");
    let requests = server.seen().len();
    // Without pacing this is thousands of requests a second.
    assert!((3..40).contains(&requests), "{requests} requests in 1 s");
}

/// A data event of 64 KiB: `i` as 8 digits, then filler.
fn data_event(i: usize) -> Vec<u8> {
    let mut event = format!("event: data\ndata:{i:08}").into_bytes();
    event.extend(std::iter::repeat_n(b'd', 64 * 1024 - 8));
    event.extend_from_slice(b"\n\n");
    event
}

/// Every JSON message of a read, in order (each one must parse).
async fn json_messages(resp: StreamResponse) -> Vec<serde_json::Value> {
    within(
        resp.json_stream::<serde_json::Value>()
            .unwrap()
            .map(|m| m.unwrap())
            .collect(),
    )
    .await
}

/// A JSON data event of `per` messages `{"i": n, "pad": "..."}` from message `first` on.
fn json_event(first: usize, per: usize, pad: usize) -> Vec<u8> {
    let msgs: Vec<String> = (first..first + per)
        .map(|n| format!("{{\"i\":{n},\"pad\":\"{}\"}}", "p".repeat(pad)))
        .collect();
    format!("event: data\ndata:[{}]\n\n", msgs.join(",")).into_bytes()
}

/// The `"i"` of every JSON message of a read, in order.
async fn json_ids(resp: StreamResponse) -> Vec<u64> {
    let got = json_messages(resp).await;
    got.iter().map(|m| m["i"].as_u64().unwrap()).collect()
}

/// JSON headers of an answer that ends a closed stream at `offset`.
fn closed_json(offset: &str) -> Vec<(&'static str, String)> {
    let mut hs = json_meta(offset, true);
    hs.push(("Stream-Closed", "true".into()));
    hs
}

/// The 110 messages `{"i": n, "pad": "..."}` (about 1 KB each) of the SSE-fallback tests, and
/// their long-poll body (one JSON array).
fn fallback_messages() -> (Vec<String>, Vec<u8>) {
    let all: Vec<String> = (0..110)
        .map(|n| format!("{{\"i\":{n},\"pad\":\"{}\"}}", "p".repeat(1000)))
        .collect();
    let body = format!("[{}]", all.join(",")).into_bytes();
    (all, body)
}

/// A JSON stream whose catch-up ends at o1 and whose SSE connections each hand on the first 100
/// of [`fallback_messages`] (one per event) with no control event and end, so the read falls
/// back to long-polls, which `long_poll` answers.
async fn sse_without_control_events(
    long_poll: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> Local {
    local(move |_, req| match req.kind().as_str() {
        "catch-up" => Reply::Full(200, json_meta("o1", true), b"[]".to_vec()),
        "sse" => Reply::SseRun(
            100,
            Arc::new(|i| json_event(i, 1, 1000)),
            Vec::new(),
            Arc::new(AtomicUsize::new(0)),
        ),
        _ => long_poll(req),
    })
    .await
}

#[tokio::test]
async fn sse_data_without_control_events_streams_in_bounded_parts() {
    // 1,700 events of 64 KiB (over 100 MiB) with no control event until the end: they are
    // handed on as they arrive, in parts that are not checkpoints.
    const EVENTS: usize = 1700;
    let written = Arc::new(AtomicUsize::new(0));
    let w = written.clone();
    let server = local(move |_, req| match req.kind().as_str() {
        "catch-up" => Reply::Full(200, meta("o1", true, false), Vec::new()),
        _ => Reply::SseRun(
            EVENTS,
            Arc::new(data_event),
            control("o2", None, true),
            w.clone(),
        ),
    })
    .await;
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::Sse))
        .await
        .unwrap();
    let mut batches = resp.byte_batches().unwrap();
    let first = within(batches.next_batch()).await.unwrap().unwrap();
    assert!(first.data.is_empty() && first.checkpoint && first.up_to_date);
    let (mut total, mut parts, mut largest, mut next) = (0usize, 0usize, 0usize, 0usize);
    let mut last = None;
    while let Some(b) = tokio::time::timeout(Duration::from_secs(60), batches.next_batch())
        .await
        .expect("the read should go on")
        .unwrap()
    {
        if !b.checkpoint {
            assert_eq!(b.offset.as_str(), "o1");
            assert!(!b.up_to_date && !b.stream_closed);
            assert_eq!(resp.offset().as_str(), "o1");
            parts += 1;
        }
        largest = largest.max(b.data.len());
        // Every event arrives whole and in order.
        for event in b.data.chunks(64 * 1024) {
            assert_eq!(&event[..8], format!("{next:08}").as_bytes());
            assert!(event[8..].iter().all(|&c| c == b'd'));
            next += 1;
        }
        total += b.data.len();
        last = Some((b.offset.as_str().to_owned(), b.checkpoint, b.stream_closed));
    }
    assert_eq!(total, EVENTS * 64 * 1024);
    assert_eq!(next, EVENTS);
    assert_eq!(last, Some(("o2".to_owned(), true, true)));
    assert_eq!(resp.offset().as_str(), "o2");
    // Parts of the gather size (64 KiB) plus at most one event.
    assert!(largest <= (64 + 64) << 10, "a batch of {largest} bytes");
    assert!(parts >= EVENTS / 5, "{parts} parts");
    assert!(written.load(Ordering::SeqCst) > 100 << 20);
}

#[tokio::test]
async fn sse_json_data_without_control_events_is_handed_on_as_whole_messages() {
    // Events of 3 messages; max_chunk_bytes sets the part size; messages are never cut.
    const EVENTS: usize = 400;
    let server = local(move |_, req| match req.kind().as_str() {
        "catch-up" => Reply::Full(200, json_meta("o1", true), b"[]".to_vec()),
        _ => Reply::SseRun(
            EVENTS,
            Arc::new(|i| json_event(i * 3, 3, 1000)),
            control("o2", None, true),
            Arc::new(AtomicUsize::new(0)),
        ),
    })
    .await;
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::Sse).max_chunk_bytes(16 << 10))
        .await
        .unwrap();
    let mut batches = resp.json_batches::<serde_json::Value>().unwrap();
    let (mut next, mut parts) = (0u64, 0usize);
    let mut checkpoints = Vec::new();
    while let Some(b) = within(batches.next_batch()).await.unwrap() {
        if b.checkpoint {
            checkpoints.push(b.offset.as_str().to_owned());
        } else {
            assert_eq!(b.offset.as_str(), "o1");
            parts += 1;
            // 16 KiB gathered, plus at most one event of 3 messages.
            assert!(b.data.len() <= 16 + 3, "{} messages", b.data.len());
        }
        for m in b.data {
            assert_eq!(m["i"], next);
            assert_eq!(m["pad"].as_str().unwrap().len(), 1000);
            next += 1;
        }
    }
    assert_eq!(next, EVENTS as u64 * 3);
    assert!(parts >= 50, "{parts} parts");
    assert_eq!(checkpoints, vec!["o1", "o2"]);

    // The accumulating consumers never read live: they stop at the catch-up's up-to-date
    // point, and a catch-up larger than max_read_bytes fails naming the limit (below).
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::Sse))
        .await
        .unwrap();
    assert!(within(resp.json::<serde_json::Value>())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn sse_data_is_handed_on_when_the_connection_pauses_before_the_control_event() {
    let server = local(|_, req| match req.kind().as_str() {
        "catch-up" => Reply::Full(200, meta("o1", true, false), Vec::new()),
        _ => Reply::Paced(
            sse_headers("text/plain"),
            vec![
                b"event: data\ndata:early\n\n".to_vec(),
                [
                    b"event: data\ndata:late\n\n".to_vec(),
                    control("o2", None, true),
                ]
                .concat(),
            ],
            Duration::from_millis(500),
        ),
    })
    .await;
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::Sse))
        .await
        .unwrap();
    let mut batches = resp.byte_batches().unwrap();
    within(batches.next_batch()).await.unwrap().unwrap();
    let started = std::time::Instant::now();
    let early = within(batches.next_batch()).await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_millis(400));
    assert_eq!(&early.data[..], b"early");
    assert!(!early.checkpoint);
    assert_eq!(early.offset.as_str(), "o1");
    let late = within(batches.next_batch()).await.unwrap().unwrap();
    assert_eq!(&late.data[..], b"late");
    assert!(late.checkpoint && late.stream_closed);
    assert_eq!(late.offset.as_str(), "o2");
}

#[tokio::test]
async fn an_sse_reconnection_drops_what_was_handed_on_after_the_last_control_event() {
    // The first connection hands on 10 events (parts that are not checkpoints) and ends
    // without a control event; the second sends the same bytes from o1 in other events.
    let server = local(|n, req| match req.kind().as_str() {
        "catch-up" => Reply::Full(200, meta("o1", true, false), Vec::new()),
        _ if n == 1 => Reply::SseRun(
            10,
            Arc::new(|i| {
                format!("event: data\ndata:{}\n\n", i.to_string().repeat(30_000)).into_bytes()
            }),
            Vec::new(),
            Arc::new(AtomicUsize::new(0)),
        ),
        _ => {
            assert_eq!(req.param("offset").as_deref(), Some("o1"));
            let all: String = (0..12).map(|i| i.to_string().repeat(30_000)).collect();
            let mut body = Vec::new();
            for piece in all.as_bytes().chunks(70_000) {
                body.extend_from_slice(b"event: data\ndata:");
                body.extend_from_slice(piece);
                body.extend_from_slice(b"\n\n");
            }
            body.extend(control("o2", None, true));
            Reply::Open(sse_headers("text/plain"), vec![body], false)
        }
    })
    .await;
    let resp = server
        .handle()
        .stream(sse_quick_reconnect().max_chunk_bytes(64 << 10))
        .await
        .unwrap();
    let got: Vec<u8> = within(
        resp.byte_stream()
            .unwrap()
            .map(|b| b.unwrap().to_vec())
            .concat(),
    )
    .await;
    let want: String = (0..12).map(|i| i.to_string().repeat(30_000)).collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want.as_bytes());
    assert_eq!(server.kinds(), vec!["catch-up", "sse", "sse"]);
    assert_eq!(resp.offset().as_str(), "o2");

    // JSON: counted in messages, the new connection grouping them differently.
    let server = local(|n, req| match req.kind().as_str() {
        "catch-up" => Reply::Full(200, json_meta("o1", true), b"[]".to_vec()),
        _ if n == 1 => Reply::SseRun(
            40,
            Arc::new(|i| json_event(i * 2, 2, 500)),
            Vec::new(),
            Arc::new(AtomicUsize::new(0)),
        ),
        _ => Reply::SseRun(
            50,
            Arc::new(|i| json_event(i * 3, 3, 500)),
            control("o2", None, true),
            Arc::new(AtomicUsize::new(0)),
        ),
    })
    .await;
    let resp = server
        .handle()
        .stream(sse_quick_reconnect().max_chunk_bytes(8 << 10))
        .await
        .unwrap();
    assert_eq!(json_ids(resp).await, (0..150).collect::<Vec<u64>>());
    assert_eq!(server.kinds(), vec!["catch-up", "sse", "sse"]);
}

#[tokio::test]
async fn an_sse_event_larger_than_its_limit_is_an_error_naming_it() {
    let server = local(|_, req| match req.kind().as_str() {
        "catch-up" => Reply::Full(200, meta("o1", true, false), Vec::new()),
        _ => Reply::SseRun(
            1,
            Arc::new(|_| {
                let mut e = b"event: data\ndata:".to_vec();
                e.extend(std::iter::repeat_n(b'x', 300 << 10));
                e
            }),
            Vec::new(),
            Arc::new(AtomicUsize::new(0)),
        ),
    })
    .await;
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::Sse).max_chunk_bytes(100 << 10))
        .await
        .unwrap();
    let mut batches = resp.byte_batches().unwrap();
    within(batches.next_batch()).await.unwrap().unwrap();
    let err = within(batches.next_batch()).await.unwrap_err();
    parse_error_saying(&err, "204800 bytes");
    assert!(err.to_string().contains("max_chunk_bytes"), "{err}");
}

#[tokio::test]
async fn sse_control_events_repeating_the_position_are_not_batches() {
    let server = local(|_, req| match req.kind().as_str() {
        "catch-up" => Reply::Full(200, meta("o1", true, false), Vec::new()),
        _ => Reply::Open(
            sse_headers("text/plain"),
            vec![
                control("o1", Some("c1"), false),
                control("o1", Some("c2"), false),
                control("o1", None, false),
                b"event: data\ndata:x\n\n".to_vec(),
                control("o2", None, true),
            ],
            false,
        ),
    })
    .await;
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::Sse))
        .await
        .unwrap();
    let batches: Vec<_> = within(
        resp.text_batches()
            .unwrap()
            .into_stream()
            .map(|b| b.unwrap())
            .collect(),
    )
    .await;
    let shape: Vec<(&str, &str)> = batches
        .iter()
        .map(|b| (b.data.as_str(), b.offset.as_str()))
        .collect();
    assert_eq!(shape, vec![("", "o1"), ("x", "o2")]);
}

/// A live read from a server that answers the catch-up, then leaves every live request
/// without a response head: the server, the read's error and how often the error hook ran.
async fn read_from_a_silent_live_server(
    live: LiveMode,
    client: Client,
    max_retries: u32,
) -> (Local, Error, usize) {
    let server = local(|_, req| match req.kind().as_str() {
        "catch-up" => Reply::Full(200, meta("o1", true, false), Vec::new()),
        _ => Reply::Silent,
    })
    .await;
    let handle = DurableStream::builder(format!("{}/s", server.url))
        .client(client)
        .build()
        .unwrap();
    let hook_calls = Arc::new(AtomicUsize::new(0));
    let calls = hook_calls.clone();
    let opts = fast()
        .live(live)
        .retry(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(5))
                .with_max_delay(Duration::from_millis(20))
                .with_max_retries(Some(max_retries)),
        )
        .on_error(move |_err: Error| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { None }
        });
    let resp = handle.stream(opts).await.unwrap();
    let mut batches = resp.byte_batches().unwrap();
    batches.next_batch().await.unwrap().unwrap();
    let err = within(batches.next_batch()).await.unwrap_err();
    (server, err, hook_calls.load(Ordering::SeqCst))
}

#[tokio::test]
async fn an_sse_response_head_that_never_arrives_times_out_and_reaches_the_hook() {
    let client = Client::builder()
        .request_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let (server, err, hook_calls) = read_from_a_silent_live_server(LiveMode::Sse, client, 1).await;
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    assert!(err.to_string().contains("response head"), "{err}");
    // Once per failed attempt: the first one (retried by the policy) and the last one.
    assert_eq!(hook_calls, 2);
    assert_eq!(server.kinds(), vec!["catch-up", "sse", "sse"]);
}

#[tokio::test]
async fn an_unreachable_server_fails_in_bounded_time_with_default_options() {
    let handle = DurableStream::builder("http://127.0.0.1:1/x")
        .client(Client::new().unwrap())
        .build()
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(60), handle.stream(ReadOptions::new()))
        .await
        .expect("a catch-up read must give up")
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Network, "{err}");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}

#[tokio::test]
async fn without_a_retry_limit_catch_ups_give_up_and_live_requests_do_not() {
    // A catch-up that keeps failing ends after DEFAULT_CATCH_UP_RETRIES retries.
    let server = local(|_, _| Reply::Full(503, vec![], b"down".to_vec())).await;
    let err = within(server.handle().stream(fast().live(LiveMode::Off)))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503), "{err}");
    assert_eq!(
        server.seen().len(),
        1 + durable_streams_client::DEFAULT_CATCH_UP_RETRIES as usize
    );

    // A long-poll failing more often than that is still retried.
    let failures = durable_streams_client::DEFAULT_CATCH_UP_RETRIES as usize + 5;
    let server = local(move |n, req| match req.kind().as_str() {
        "catch-up" => Reply::Full(200, meta("o1", true, false), Vec::new()),
        _ if n <= failures => Reply::Full(503, vec![], b"down".to_vec()),
        _ => Reply::Full(200, meta("o2", true, true), b"x".to_vec()),
    })
    .await;
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::LongPoll))
        .await
        .unwrap();
    let text = within(
        resp.text_stream()
            .unwrap()
            .map(|c| c.unwrap())
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(text, vec!["x".to_owned()]);
    assert_eq!(server.seen().len(), 1 + failures + 1);
}

fn json_meta(offset: &str, up_to_date: bool) -> Vec<(&'static str, String)> {
    let mut hs = meta(offset, up_to_date, false);
    hs[0].1 = "application/json".into();
    hs
}

#[tokio::test]
async fn data_is_handed_on_before_the_response_ends_and_is_not_a_checkpoint() {
    let server = local(|_, _| {
        Reply::Paced(
            json_meta("o1", true),
            vec![
                b"[{\"a\":\"x,]\"},".to_vec(),
                b"2,".to_vec(),
                b"\"three\"]".to_vec(),
            ],
            Duration::from_millis(300),
        )
    })
    .await;
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::Off))
        .await
        .unwrap();
    let mut batches = resp.json_batches::<serde_json::Value>().unwrap();
    let mut got = Vec::new();
    while let Some(b) = within(batches.next_batch()).await.unwrap() {
        // The position only moves at the response's end.
        assert_eq!(resp.offset().as_str(), b.offset.as_str());
        got.push((
            b.data,
            b.offset.as_str().to_owned(),
            b.checkpoint,
            b.up_to_date,
        ));
    }
    assert_eq!(
        got,
        vec![
            (
                vec![serde_json::json!({"a": "x,]"})],
                "-1".into(),
                false,
                false
            ),
            (vec![serde_json::json!(2)], "-1".into(), false, false),
            (vec![serde_json::json!("three")], "o1".into(), true, true),
        ]
    );

    // Bytes too: the first part arrives while the server still holds the response open.
    let server =
        local(|_, _| Reply::Open(meta("o1", true, false), vec![b"first part".to_vec()], true))
            .await;
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::Off))
        .await
        .unwrap();
    let mut chunks = resp.byte_stream().unwrap();
    let first = within(chunks.next()).await.unwrap().unwrap();
    assert_eq!(&first[..], b"first part");
    assert_eq!(resp.offset().as_str(), "-1");
    assert!(!resp.up_to_date());
}

#[tokio::test]
async fn byte_limits_unset_take_the_defaults_and_zero_is_refused_before_any_request() {
    let server = local(|_, _| Reply::Full(200, json_meta("o1", true), b"[1]".to_vec())).await;
    assert_eq!(ReadOptions::new().max_chunk_bytes, None);
    assert_eq!(ReadOptions::new().max_read_bytes, None);
    for (opts, name) in [
        (fast().max_chunk_bytes(0), "max_chunk_bytes (maxChunkBytes)"),
        (fast().max_read_bytes(0), "max_read_bytes (maxReadBytes)"),
    ] {
        let err = server.handle().stream(opts).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err}");
        assert!(
            err.to_string()
                .contains(&format!("{name} must be at least 1 byte")),
            "{err}"
        );
    }
    assert!(server.seen().is_empty(), "no request for a refused option");
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::Off))
        .await
        .unwrap();
    assert_eq!(
        within(resp.json::<serde_json::Value>())
            .await
            .unwrap()
            .len(),
        1
    );
    let err = durable_streams_client::byte_count("max_read_bytes (maxReadBytes)", 1.5).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(
        err.to_string().contains("max_read_bytes (maxReadBytes)"),
        "{err}"
    );
    assert_eq!(
        durable_streams_client::byte_count("x", 4096.0).unwrap(),
        4096
    );
    // Past 2^53 (where a number stops counting single bytes) and Infinity: no limit.
    assert_eq!(
        durable_streams_client::byte_count("x", 2f64.powi(60)).unwrap(),
        1 << 60
    );
    for huge in [1e300, f64::INFINITY] {
        assert_eq!(
            durable_streams_client::byte_count("x", huge).unwrap(),
            usize::MAX
        );
    }
    for (bad, shown) in [
        (f64::NAN, "got NaN"),
        (f64::NEG_INFINITY, "got -Infinity"),
        (-2.0, "got -2"),
        (0.5, "got 0.5"),
    ] {
        let err = durable_streams_client::byte_count("x", bad).unwrap_err();
        assert!(err.to_string().ends_with(shown), "{err}");
    }
}

#[tokio::test]
async fn a_json_message_larger_than_the_chunk_limit_is_an_error_naming_it() {
    let server = local(|_, _| {
        Reply::Full(
            200,
            json_meta("o1", true),
            br#"[1,"0123456789abcdefghijklmnopqrstuvwxyz",2]"#.to_vec(),
        )
    })
    .await;
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::Off).max_chunk_bytes(16))
        .await
        .unwrap();
    let err = within(resp.json::<serde_json::Value>()).await.unwrap_err();
    parse_error_saying(&err, "max_chunk_bytes (16 bytes)");
    // Under a sufficient limit the same answer reads fine.
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::Off).max_chunk_bytes(64))
        .await
        .unwrap();
    assert_eq!(
        within(resp.json::<serde_json::Value>())
            .await
            .unwrap()
            .len(),
        3
    );
}

/// A catch-up read of `server` limited to `limit` bytes.
async fn limited(server: &Local, limit: usize) -> durable_streams_client::StreamResponse {
    server
        .handle()
        .stream(fast().live(LiveMode::Off).max_read_bytes(limit))
        .await
        .unwrap()
}

/// `err` is the error of a read that went past `limit`.
fn past_limit(err: &durable_streams_client::Error, limit: usize) {
    assert_eq!(err.code(), ErrorCode::ParseError, "{err}");
    assert!(
        err.to_string()
            .contains(&format!("max_read_bytes ({limit} bytes)")),
        "{err}"
    );
}

/// `read` fails, within the test's time limit, as a read that went past `limit`.
async fn stops_past<T: std::fmt::Debug>(
    read: impl std::future::Future<Output = durable_streams_client::Result<T>>,
    limit: usize,
) {
    past_limit(&within(read).await.unwrap_err(), limit);
}

#[tokio::test]
async fn accumulating_reads_stop_at_their_size_limit_without_reading_on() {
    let written = Arc::new(AtomicUsize::new(0));
    let w = written.clone();
    let server =
        local(move |_, _| Reply::Huge(200, meta("o1", true, false), 1 << 30, w.clone())).await;
    stops_past(limited(&server, 1 << 20).await.bytes(), 1 << 20).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = written.load(Ordering::SeqCst);
    assert!(sent < 64 << 20, "the client read on: {sent} bytes sent");

    // `text()` reads through the same bounded collection.
    stops_past(limited(&server, 1 << 20).await.text(), 1 << 20).await;

    let body = format!("[{}]", vec!["\"0123456789\""; 1000].join(","));
    let server =
        local(move |_, _| Reply::Full(200, json_meta("o1", true), body.clone().into_bytes())).await;
    stops_past(limited(&server, 4096).await.json::<String>(), 4096).await;
    // The array texts and a picked read count the bytes received too, not what they keep.
    stops_past(limited(&server, 4096).await.json_arrays(), 4096).await;
    stops_past(
        limited(&server, 4096)
            .await
            .json_picked_arrays(JsonPick::Value("i".into())),
        4096,
    )
    .await;
    // So do the reads that hand each batch over as it comes.
    stops_past(
        limited(&server, 4096)
            .await
            .json_arrays_each(|_| ControlFlow::Continue(())),
        4096,
    )
    .await;
    stops_past(
        limited(&server, 4096)
            .await
            .json_picked_arrays_each(JsonPick::Value("i".into()), |_| ControlFlow::Continue(())),
        4096,
    )
    .await;
}

#[tokio::test]
async fn a_body_cut_short_is_read_again_from_where_it_stopped() {
    let full = b"[1,2,3]".to_vec();
    let server = local(move |n, _| {
        if n == 0 {
            Reply::Cut(
                json_meta("o1", true),
                full.len(),
                vec![b"[1,".to_vec(), b"2,".to_vec()],
                Duration::from_millis(100),
            )
        } else {
            Reply::Full(200, json_meta("o1", true), full.clone())
        }
    })
    .await;
    let calls = Arc::new(Mutex::new(Vec::new()));
    let calls2 = calls.clone();
    let mut opts = fast().live(LiveMode::Off);
    opts.on_error = Some(durable_streams_client::ErrorHook::decide(
        move |f: durable_streams_client::FailedAttempt| {
            calls2.lock().unwrap().push((f.error.code(), f.will_retry));
            async { durable_streams_client::ErrorDecision::Default }
        },
    ));
    let resp = server.handle().stream(opts).await.unwrap();
    let items = within(resp.json::<u32>()).await.unwrap();
    assert_eq!(items, vec![1, 2, 3]);
    assert_eq!(*calls.lock().unwrap(), vec![(ErrorCode::Network, true)]);
    assert_eq!(server.kinds(), vec!["catch-up", "catch-up"]);
}

#[tokio::test]
async fn the_error_hook_is_consulted_after_every_failed_attempt() {
    let server = local(|n, _| {
        if n < 3 {
            Reply::Full(500, vec![], b"down".to_vec())
        } else {
            Reply::Full(200, meta("o1", true, false), b"ok".to_vec())
        }
    })
    .await;
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let opts = fast().live(LiveMode::Off).on_error(move |err: Error| {
        assert_eq!(err.code(), ErrorCode::ServerError);
        c.fetch_add(1, Ordering::SeqCst);
        // `None` leaves the decision to the retry policy, which retries.
        async { None }
    });
    let resp = server.handle().stream(opts).await.unwrap();
    assert_eq!(&within(resp.bytes()).await.unwrap()[..], b"ok");
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // With the budget spent, `None` ends the read (the reference client's contract).
    let server = local(|_, _| Reply::Full(500, vec![], b"down".to_vec())).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let opts = fast()
        .live(LiveMode::Off)
        .retry(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(5))
                .with_max_retries(Some(1)),
        )
        .on_error(move |_err: Error| {
            c.fetch_add(1, Ordering::SeqCst);
            async { None }
        });
    let err = within(server.handle().stream(opts)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ServerError);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn json_array_texts_keep_the_messages_however_the_body_arrives() {
    let body = r#"[{"a":"x,]\"y"}, 12 ,"é",[1,{"b":null}],true,-3.5e2]"#.as_bytes();
    let expected: Vec<serde_json::Value> = serde_json::from_slice(body).unwrap();
    // Parts cut inside strings, numbers and a character; a pause after each, so the body is
    // handed on in several batches.
    let parts: Vec<Vec<u8>> = [0, 5, 13, 18, 23, 30, 44, body.len()]
        .windows(2)
        .map(|w| body[w[0]..w[1]].to_vec())
        .collect();
    for typed in [false, true] {
        let parts = parts.clone();
        let server = local(move |_, _| {
            Reply::Paced(
                json_meta("o1", true),
                parts.clone(),
                Duration::from_millis(40),
            )
        })
        .await;
        let resp = server
            .handle()
            .stream(fast().live(LiveMode::Off))
            .await
            .unwrap();
        if typed {
            let items = within(resp.json::<serde_json::Value>()).await.unwrap();
            assert_eq!(items, expected);
            continue;
        }
        let texts = within(resp.json_arrays()).await.unwrap();
        assert!(texts.len() > 1, "{texts:?}");
        let got: Vec<serde_json::Value> = texts
            .iter()
            .flat_map(|t| serde_json::from_str::<Vec<serde_json::Value>>(t).unwrap())
            .collect();
        assert_eq!(got, expected);
    }
    // A malformed message is an error for the array texts too.
    let server =
        local(|_, _| Reply::Full(200, json_meta("o1", true), b"[1,{\"a\":}]".to_vec())).await;
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::Off))
        .await
        .unwrap();
    let err = within(resp.json_arrays()).await.unwrap_err();
    assert!(matches!(err, Error::Parse { .. }), "{err:?}");
}

#[tokio::test]
async fn picked_reads_keep_the_members_asked_for_however_the_body_arrives() {
    let body = r#"[{"i":1,"t":"x,]\"y","n":{"i":0}}, {"t":"é"} ,7,{"i":[1,{"i":2}],"z":null},{"i":-3.5e2}]"#
        .as_bytes();
    let parts: Vec<Vec<u8>> = [0, 5, 13, 18, 23, 30, 44, 61, body.len()]
        .windows(2)
        .map(|w| body[w[0]..w[1]].to_vec())
        .collect();
    let server = local(move |_, _| {
        Reply::Paced(
            json_meta("o1", true),
            parts.clone(),
            Duration::from_millis(30),
        )
    })
    .await;
    let read = |pick: JsonPick, batches: bool| {
        let handle = server.handle();
        async move {
            let resp = handle.stream(fast().live(LiveMode::Off)).await.unwrap();
            let texts = if batches {
                let mut b = resp.json_picked_array_batches(pick).unwrap();
                let mut texts = Vec::new();
                while let Some(batch) = within(b.next_batch()).await.unwrap() {
                    texts.extend(batch.data);
                }
                texts
            } else {
                within(resp.json_picked_arrays(pick)).await.unwrap()
            };
            // The batches' texts; a whole read joins them into one.
            assert_eq!(texts.len() > 1, batches, "{texts:?}");
            texts
                .iter()
                .flat_map(|t| serde_json::from_str::<Vec<serde_json::Value>>(t).unwrap())
                .collect::<Vec<serde_json::Value>>()
        }
    };
    for batches in [false, true] {
        let got = read(JsonPick::Value("i".into()), batches).await;
        assert_eq!(
            got,
            serde_json::from_str::<Vec<serde_json::Value>>(r#"[1,null,null,[1,{"i":2}],-3.5e2]"#)
                .unwrap()
        );
        let got = read(JsonPick::Members(vec!["t".into(), "z".into()]), batches).await;
        assert_eq!(
            got,
            serde_json::from_str::<Vec<serde_json::Value>>(
                r#"[{"t":"x,]\"y"},{"t":"é"},null,{"z":null},{}]"#
            )
            .unwrap()
        );
    }
    // Handed over batch by batch as the read goes on: the same messages, in several calls; a
    // `Break` ends the read after the call that returned it.
    let each = |pick: Option<JsonPick>, stop_after: usize| {
        let handle = server.handle();
        async move {
            let resp = handle.stream(fast().live(LiveMode::Off)).await.unwrap();
            let mut calls = Vec::new();
            let take = |texts: Vec<String>| {
                calls.push(texts);
                if calls.len() == stop_after {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            };
            match pick {
                Some(pick) => within(resp.json_picked_arrays_each(pick, take)).await,
                None => within(resp.json_arrays_each(take)).await,
            }
            .unwrap();
            calls
        }
    };
    let values = |calls: &[Vec<String>]| {
        calls
            .iter()
            .flatten()
            .flat_map(|t| serde_json::from_str::<Vec<serde_json::Value>>(t).unwrap())
            .collect::<Vec<serde_json::Value>>()
    };
    let calls = each(Some(JsonPick::Value("i".into())), usize::MAX).await;
    assert!(calls.len() > 1, "{calls:?}");
    assert_eq!(
        values(&calls),
        serde_json::from_str::<Vec<serde_json::Value>>(r#"[1,null,null,[1,{"i":2}],-3.5e2]"#)
            .unwrap()
    );
    let calls = each(None, usize::MAX).await;
    assert!(calls.len() > 1, "{calls:?}");
    assert_eq!(
        values(&calls),
        serde_json::from_slice::<Vec<serde_json::Value>>(body).unwrap()
    );
    let calls = each(None, 1).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    // A malformed member that is not picked still fails the read; a pick naming nothing and a
    // stream that is not JSON are refused before reading.
    let server =
        local(|_, _| Reply::Full(200, json_meta("o1", true), br#"[{"i":1,"x":}]"#.to_vec())).await;
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::Off))
        .await
        .unwrap();
    let err = within(resp.json_picked_arrays(JsonPick::Value("i".into())))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Parse { .. }), "{err:?}");
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::Off))
        .await
        .unwrap();
    let err = within(resp.json_picked_arrays(JsonPick::Members(Vec::new())))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("fields must name"), "{err}");
    let server = local(|_, _| Reply::Full(200, meta("o1", true, false), b"[1]".to_vec())).await;
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::Off))
        .await
        .unwrap();
    let err = resp
        .json_picked_array_batches(JsonPick::Value("i".into()))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
}

#[tokio::test]
async fn a_long_poll_is_handed_on_before_it_ends_and_its_head_has_a_timeout() {
    // A long-poll body that pauses is handed on as far as it came (not a checkpoint).
    let server = local(|_, req| match req.kind().as_str() {
        "catch-up" => Reply::Full(200, meta("o1", true, false), Vec::new()),
        _ => Reply::Paced(
            meta("o2", true, true),
            vec![b"early".to_vec(), b"late".to_vec()],
            Duration::from_millis(500),
        ),
    })
    .await;
    let resp = server
        .handle()
        .stream(fast().live(LiveMode::LongPoll))
        .await
        .unwrap();
    let mut batches = resp.byte_batches().unwrap();
    within(batches.next_batch()).await.unwrap().unwrap();
    let started = std::time::Instant::now();
    let early = within(batches.next_batch()).await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_millis(400));
    assert_eq!(&early.data[..], b"early");
    assert!(!early.checkpoint && !early.up_to_date);
    assert_eq!(early.offset.as_str(), "o1");
    let late = within(batches.next_batch()).await.unwrap().unwrap();
    assert_eq!(&late.data[..], b"late");
    assert!(late.checkpoint && late.stream_closed);
    assert_eq!(late.offset.as_str(), "o2");

    // A long-poll whose response head never arrives times out after the long-poll timeout,
    // is retried, and every failure reaches the hook.
    let client = Client::builder()
        .long_poll_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let (server, err, hook_calls) =
        read_from_a_silent_live_server(LiveMode::LongPoll, client, 2).await;
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    assert!(err.to_string().contains("long-poll"), "{err}");
    assert_eq!(hook_calls, 3);
    assert_eq!(
        server.kinds(),
        vec!["catch-up", "long-poll", "long-poll", "long-poll"]
    );
    // The abandoned requests were closed by the client.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.abandoned.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn after_sse_data_without_control_events_a_long_poll_fallback_skips_what_was_handed_on() {
    // Three short SSE connections hand on the same 200,000 bytes without a control event (a
    // buffering proxy); the long-poll that follows starts from o1 and gets them again.
    let data: Vec<u8> = (0..250_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let d = data.clone();
    let server = local(move |_, req| match req.kind().as_str() {
        "catch-up" => Reply::Full(200, meta("o1", true, false), Vec::new()),
        "sse" => {
            let mut body = Vec::new();
            for piece in d[..200_000].chunks(50_000) {
                body.extend_from_slice(b"event: data\ndata:");
                body.extend_from_slice(piece);
                body.extend_from_slice(b"\n\n");
            }
            Reply::Open(sse_headers("text/plain"), vec![body], false)
        }
        _ => {
            assert_eq!(req.param("offset").as_deref(), Some("o1"));
            Reply::Full(200, meta("o2", true, true), d.clone())
        }
    })
    .await;
    let opts = sse_quick_reconnect().max_chunk_bytes(64 << 10);
    let resp = server.handle().stream(opts.clone()).await.unwrap();
    let got: Vec<u8> = within(
        resp.byte_stream()
            .unwrap()
            .map(|b| b.unwrap().to_vec())
            .concat(),
    )
    .await;
    assert_eq!(got.len(), data.len());
    assert!(got == data);
    assert_eq!(
        server.kinds(),
        vec!["catch-up", "sse", "sse", "sse", "long-poll"]
    );

    // JSON: the long-poll's one array is skipped by the messages the SSE events handed on
    // (parts of 64 KiB; the rest of the events had not been handed on), so each of the 110
    // messages arrives once.
    let (_, body) = fallback_messages();
    let server =
        sse_without_control_events(move |_| Reply::Full(200, closed_json("o2"), body.clone()))
            .await;
    let resp = server.handle().stream(opts.clone()).await.unwrap();
    assert_eq!(json_ids(resp).await, (0..110).collect::<Vec<u64>>());
    assert_eq!(
        server.kinds(),
        vec!["catch-up", "sse", "sse", "sse", "long-poll"]
    );

    // A long-poll array shorter than what was handed on is an error that says so.
    let server =
        sse_without_control_events(|_| Reply::Full(200, closed_json("o2"), b"[1]".to_vec())).await;
    let resp = server.handle().stream(opts).await.unwrap();
    let mut batches = resp.json_batches::<serde_json::Value>().unwrap();
    let err = within(async {
        loop {
            if let Err(e) = batches.next_batch().await {
                break e;
            }
        }
    })
    .await;
    assert_eq!(err.code(), ErrorCode::ParseError, "{err}");
    // (How many were handed on depends on how the events arrived: one part or more.)
    assert!(err.to_string().contains("messages short"), "{err}");
}

#[tokio::test]
async fn a_long_poll_fallback_cut_in_the_middle_of_its_skip_goes_on_where_it_stopped() {
    // As above (100 SSE events of one message each, then long-polls from o1 with all 110), but
    // the first long-poll's body is cut: inside the messages being skipped (in the middle of a
    // message's text), or after the skip has ended. The repeated long-poll drops the bytes
    // already consumed and carries the message skip on, so each message arrives once.
    let (all, body) = fallback_messages();
    // Where message `k` starts in `body`.
    let start = |k: usize| 1 + all[..k].iter().map(|m| m.len() + 1).sum::<usize>();
    // At most 100 messages are handed on before the fallback, and at least 60 (64 KiB parts of
    // about 100 KiB of events), so 10 is inside the skip and 105 after it.
    for (cut, at) in [
        ("in the skip, inside a message", start(10) + 500),
        ("in the skip, between two messages", start(40) - 1),
        ("after the skip", start(105) + 3),
    ] {
        let long_polls = Arc::new(AtomicUsize::new(0));
        let lp = long_polls.clone();
        let b = body.clone();
        let server = sse_without_control_events(move |req| {
            assert_eq!(req.param("offset").as_deref(), Some("o1"));
            let hs = closed_json("o2");
            if lp.fetch_add(1, Ordering::SeqCst) == 0 {
                // In two parts, so the client sees the skip cross a piece before the cut.
                let (first, second) = b[..at].split_at(at / 2);
                Reply::Cut(
                    hs,
                    b.len(),
                    vec![first.to_vec(), second.to_vec()],
                    Duration::from_millis(50),
                )
            } else {
                Reply::Full(200, hs, b.clone())
            }
        })
        .await;
        let resp = server
            .handle()
            .stream(sse_quick_reconnect().max_chunk_bytes(64 << 10))
            .await
            .unwrap();
        let ids = json_ids(resp).await;
        assert_eq!(ids, (0..110).collect::<Vec<u64>>(), "cut {cut}");
        assert_eq!(
            server.kinds(),
            vec!["catch-up", "sse", "sse", "sse", "long-poll", "long-poll"],
            "cut {cut}"
        );
    }
}

#[tokio::test]
async fn a_huge_response_head_is_refused() {
    // 2 MiB of headers: the HTTP layer refuses the head instead of buffering it.
    let server = local(|_, _| {
        let mut hs = meta("o1", true, false);
        hs.push(("X-Huge", "h".repeat(2 << 20)));
        Reply::Full(200, hs, b"x".to_vec())
    })
    .await;
    let opts = fast().live(LiveMode::Off).retry(
        RetryPolicy::default()
            .with_initial_delay(Duration::from_millis(5))
            .with_max_delay(Duration::from_millis(20))
            .with_max_retries(Some(1)),
    );
    let err = within(server.handle().stream(opts)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Network, "{err}");
    assert_eq!(server.seen().len(), 2);
}
