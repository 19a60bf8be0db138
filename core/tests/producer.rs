//! The idempotent producer against the real reference server, with injected faults and a
//! loopback proxy that drops responses after the server applied the request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{client, handle, inject, path_of, raw_json, raw_read, CutProxy, TestServer};
use durable_streams_client::{
    CreateOptions, DurableStream, Error, ErrorCode, IdempotentProducer, RetryPolicy, Value,
};
use serde_json::{json, Value as Json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn fast_retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_delay(Duration::from_millis(5))
        .with_max_delay(Duration::from_millis(50))
}

async fn json_stream(name: &str) -> DurableStream {
    let s = handle(name);
    s.create(CreateOptions::json()).await.unwrap();
    s
}

/// A producer POST as another writer would send it.
async fn raw_producer_post(url: &str, id: &str, epoch: u64, seq: u64, body: &str) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("Producer-Id", id)
        .header("Producer-Epoch", epoch.to_string())
        .header("Producer-Seq", seq.to_string())
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn numbers(items: &[Json], key: &str) -> Vec<u64> {
    items.iter().filter_map(|v| v[key].as_u64()).collect()
}

#[tokio::test]
async fn json_messages_arrive_in_order_with_receipts_and_metrics() {
    let s = json_stream("p-basic").await;
    let p = s
        .producer("basic")
        .linger(Duration::from_millis(2))
        .build()
        .unwrap();
    let mut receipts = Vec::new();
    for i in 0..1000u64 {
        receipts.push(p.append(format!(r#"{{"n":{i}}}"#)).await.unwrap());
    }
    p.flush().await.unwrap();
    let items = raw_json(s.url().as_str()).await;
    assert_eq!(numbers(&items, "n"), (0..1000).collect::<Vec<_>>());

    let head = s.head().await.unwrap();
    let last = receipts.pop().unwrap().await.unwrap();
    assert_eq!(last.offset, head.next_offset);
    assert!(!last.duplicate);
    assert_eq!(last.epoch, 0);
    assert_eq!(p.last_offset(), head.next_offset);
    let first = receipts[0].clone().await.unwrap();
    assert!(first.offset.unwrap() <= last.offset.clone().unwrap());
    assert_eq!(receipts[0].message_number(), 0);
    assert!(receipts[10].try_result().unwrap().is_ok());

    let m = p.metrics();
    assert_eq!(m.appended_messages, 1000);
    assert_eq!(m.messages, 1000);
    let body_bytes: u64 = (0..1000u64)
        .map(|i| format!(r#"{{"n":{i}}}"#).len() as u64)
        .sum();
    assert_eq!(m.bytes, body_bytes);
    assert_eq!(m.batches, last.seq + 1);
    assert_eq!(m.requests, m.batches);
    assert_eq!(m.latency.count, m.requests);
    assert!(m.latency.max >= m.latency.mean());
    assert_eq!((m.retries, m.duplicates, m.failed_batches), (0, 0, 0));
    assert_eq!((m.in_flight, m.buffered_bytes), (0, 0));
    assert_eq!(p.pending_count(), 0);
    assert_eq!(p.next_seq(), m.batches);
}

#[tokio::test]
async fn byte_streams_concatenate_and_batch_limits_hold() {
    let s = handle("p-bytes");
    s.create(CreateOptions::with_content_type("text/plain"))
        .await
        .unwrap();
    let p = s
        .producer("bytes")
        .linger(Duration::from_secs(10))
        .max_batch_messages(10)
        .build()
        .unwrap();
    for i in 0..95 {
        p.try_append(format!("{i};")).unwrap();
    }
    p.flush().await.unwrap();
    let expected: String = (0..95).map(|i| format!("{i};")).collect();
    assert_eq!(raw_read(s.url().as_str()).await.2, expected.as_bytes());
    // 10 messages per batch: 10 batches, the last one closed by the flush.
    assert_eq!(p.metrics().batches, 10);

    let p2 = s
        .producer("bytes-size")
        .linger(Duration::from_secs(10))
        .max_batch_bytes(100)
        .build()
        .unwrap();
    for _ in 0..10 {
        p2.try_append(vec![b'x'; 30]).unwrap();
    }
    // 3 messages (90 bytes) fit a batch; the linger is long, so size alone closed them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(p2.metrics().batches, 3);
    p2.flush().await.unwrap();
    assert_eq!(p2.metrics().batches, 4);
}

/// `try_append_numbered` is `try_append` without the receipt: the same numbering (shared with
/// receipts and `try_append_many`), the same refusals, and every message stored once, in order.
#[tokio::test]
async fn try_append_numbered_numbers_as_receipts_do_and_refuses_what_try_append_does() {
    let s = json_stream("p-numbered").await;
    let p = s
        .producer("numbered")
        .max_batch_bytes(64)
        .max_buffered_bytes(4096)
        .build()
        .unwrap();
    assert_eq!(p.try_append_numbered(r#"{"n":0}"#).unwrap(), 0);
    assert_eq!(p.try_append(r#"{"n":1}"#).unwrap().message_number(), 1);
    assert_eq!(p.try_append_many(&[r#"{"n":2}"#, r#"{"n":3}"#]).count, 2);
    for i in 4..300u64 {
        assert_eq!(p.try_append_numbered(format!(r#"{{"n":{i}}}"#)).unwrap(), i);
        if i % 50 == 0 {
            p.flush().await.unwrap();
        }
    }
    for bad in [r#"{"a":"#, "", "1 2"] {
        let err = p.try_append_numbered(bad).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{bad:?}: {err}");
    }
    // A full buffer is refused, not waited for, and leaves the numbering intact.
    let big = format!(r#""{}""#, "x".repeat(3000));
    let full = loop {
        match p.try_append_numbered(&big) {
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert_eq!(full.code(), ErrorCode::BufferFull, "{full}");
    p.flush().await.unwrap();
    let next = p.try_append_numbered(r#"{"n":-1}"#).unwrap();
    assert_eq!(next, p.metrics().appended_messages - 1);
    p.flush().await.unwrap();
    let items = raw_json(s.url().as_str()).await;
    assert_eq!(numbers(&items, "n"), (0..300).collect::<Vec<_>>());
    assert_eq!(items.len() as u64, next + 1);
    assert_eq!(items.last(), Some(&json!({"n":-1})));
    p.close(None).await.unwrap();
    let closed = p.try_append_numbered(r#"{"n":1}"#).unwrap_err();
    assert_eq!(closed.code(), ErrorCode::AlreadyClosed, "{closed}");
}

#[tokio::test]
async fn invalid_json_is_refused_at_append_and_never_sinks_a_batch() {
    let s = json_stream("p-invalid").await;
    let p = s.producer("v").build().unwrap();
    p.try_append(r#"{"ok":1}"#).unwrap();
    for bad in [r#"{"a":"#, "not json", "1 2", "", "[1,]"] {
        let err = p.try_append(bad).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{bad:?}: {err}");
    }
    p.try_append(r#"{"a":1}"#).unwrap();
    p.try_append(r#"{"ok":2}"#).unwrap();
    p.flush().await.unwrap();
    assert_eq!(
        raw_json(s.url().as_str()).await,
        vec![json!({"ok":1}), json!({"a":1}), json!({"ok":2})]
    );

    // A handle that does not know the content type: the task learns it (HEAD) and refuses
    // the bad message alone; the good ones around it are stored.
    let lazy = DurableStream::builder(s.url().as_str())
        .client(client())
        .build()
        .unwrap();
    let errors = Arc::new(AtomicUsize::new(0));
    let e2 = errors.clone();
    let p = lazy
        .producer("lazy")
        .on_error(move |_| {
            e2.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let good = p.try_append(r#"{"ok":3}"#).unwrap();
    let bad = p.try_append("{broken").unwrap();
    let good2 = p.try_append(r#"{"ok":4}"#).unwrap();
    let err = p.flush().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(good.await.is_ok());
    assert_eq!(bad.await.unwrap_err().code(), ErrorCode::InvalidArgument);
    assert!(good2.await.is_ok());
    assert_eq!(errors.load(Ordering::SeqCst), 1);
    // Now the mode is known: validation happens at append.
    assert!(p.try_append("{broken").is_err());
    assert_eq!(raw_json(s.url().as_str()).await.len(), 5);

    // Without validation a bad message reaches the server and sinks its whole batch.
    let unchecked = s
        .producer("unchecked")
        .validate_json(false)
        .linger(Duration::from_secs(10))
        .build()
        .unwrap();
    let good = unchecked.try_append(r#"{"ok":5}"#).unwrap();
    unchecked.try_append("{broken").unwrap();
    assert_eq!(
        unchecked.flush().await.unwrap_err().code(),
        ErrorCode::BadRequest
    );
    assert_eq!(good.await.unwrap_err().code(), ErrorCode::BadRequest);
    assert_eq!(raw_json(s.url().as_str()).await.len(), 5);
}

#[tokio::test]
async fn try_append_many_appends_in_order_and_stops_where_try_append_would() {
    let s = json_stream("p-many").await;
    // Small batches: runs of 256 messages cross many batch boundaries.
    let p = s
        .producer("many")
        .linger(Duration::from_millis(2))
        .max_batch_bytes(300)
        .max_buffered_bytes(4_000)
        .build()
        .unwrap();
    let msgs: Vec<String> = (0..2_000u64).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    let mut at = 0;
    let mut full_stops = 0;
    while at < msgs.len() {
        let done = p.try_append_many(&msgs[at..]);
        if done.count > 0 {
            assert_eq!(
                done.last.as_ref().unwrap().message_number(),
                (at + done.count - 1) as u64
            );
        }
        at += done.count;
        match done.stopped {
            None => assert_eq!(at, msgs.len()),
            Some(Error::BufferFull {
                requested, limit, ..
            }) => {
                assert_eq!((requested, limit), (msgs[at].len(), 4_000));
                full_stops += 1;
                p.wait_for_room(msgs[at].len()).await.unwrap();
            }
            Some(e) => panic!("unexpected {e}"),
        }
    }
    // 2,000 messages of ~10 bytes do not fit a 4,000-byte buffer at once.
    assert!(full_stops > 0);
    // A message that is not one JSON value stops a run where try_append would refuse it: the
    // messages before it are appended, it and those after are not.
    let mixed = [r#"{"n":2000}"#, r#"{"n":2001}"#, "{broken", r#"{"n":2002}"#];
    let done = p.try_append_many(&mixed);
    assert_eq!(done.count, 2);
    assert_eq!(done.last.unwrap().message_number(), 2_001);
    let err = done.stopped.unwrap();
    assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err}");
    // The number it would have had, not the run's first.
    assert!(err.to_string().contains("message number 2002 "), "{err}");
    let done = p.try_append_many(&mixed[3..]);
    assert_eq!((done.count, done.stopped.is_none()), (1, true));
    let empty: [&[u8]; 2] = [b"", b"1"];
    let done = p.try_append_many(&empty);
    assert_eq!(done.count, 0);
    assert!(done.last.is_none());
    assert_eq!(done.stopped.unwrap().code(), ErrorCode::InvalidArgument);
    let last = p.try_append_many(&[r#"{"n":2003}"#]).last.unwrap();
    p.flush().await.unwrap();
    assert_eq!(last.message_number(), 2_003);
    let delivery = last.await.unwrap();
    assert_eq!(delivery.offset, s.head().await.unwrap().next_offset);
    let items = raw_json(s.url().as_str()).await;
    assert_eq!(numbers(&items, "n"), (0..2_004).collect::<Vec<_>>());
    let m = p.metrics();
    assert_eq!((m.appended_messages, m.messages), (2_004, 2_004));
    assert_eq!(m.buffered_bytes, 0);

    // Nothing sent yet (long linger, large batches): exactly the messages that fit the buffer
    // are appended, and its room is all taken.
    let held = s
        .producer("many-held")
        .linger(Duration::from_secs(30))
        .max_batch_bytes(1 << 20)
        .max_buffered_bytes(1_000)
        .build()
        .unwrap();
    let thirty: Vec<String> = (0..100).map(|i| format!(r#""{i:028}""#)).collect();
    let done = held.try_append_many(&thirty);
    assert_eq!(done.count, 33);
    match done.stopped {
        Some(Error::BufferFull {
            requested,
            buffered,
            limit,
        }) => assert_eq!((requested, buffered, limit), (30, 990, 1_000)),
        other => panic!("expected BufferFull, got {other:?}"),
    }
    assert_eq!(held.buffered_bytes(), 990);
    held.close(None).await.unwrap();
    let done = held.try_append_many(&thirty[33..]);
    assert_eq!(done.count, 0);
    assert_eq!(done.stopped.unwrap().code(), ErrorCode::AlreadyClosed);
    let items = raw_json(s.url().as_str()).await;
    assert_eq!(items.len(), 2_004 + 33);
    assert_eq!(items[2_004], json!("0".repeat(28)));
}

#[tokio::test]
async fn try_append_joined_splits_and_checks_as_try_append_many_would() {
    let s = json_stream("p-joined").await;
    let p = s
        .producer("joined")
        .linger(Duration::from_millis(1))
        .max_batch_bytes(64)
        .build()
        .unwrap();
    // Whitespace around messages, an escaped NUL inside a string, a bare number last.
    let text = b" {\"n\":0} \0[1, 2]\n\0\"a\\u0000b\"\x0012";
    let done = p.try_append_joined(text, 0, 4).unwrap();
    assert_eq!((done.count, done.stopped.is_none()), (4, true));
    assert_eq!(done.last.unwrap().message_number(), 3);
    // Not `count` pieces: nothing is appended.
    assert!(p.try_append_joined(b"1\x002", 0, 3).is_none());
    assert!(p.try_append_joined(b"1\x002\x003", 0, 2).is_none());
    assert!(p.try_append_joined(b"", 0, 0).is_none());
    assert_eq!(p.metrics().appended_messages, 4);
    // A message that is not one JSON value stops there, with try_append_many's error.
    let done = p.try_append_joined(b"5\0{broken\x006", 0, 3).unwrap();
    assert_eq!(done.count, 1);
    let err = done.stopped.unwrap().to_string();
    let again = p.try_append_many(&["{broken"]).stopped.unwrap().to_string();
    assert_eq!(err, again);
    assert!(err.contains("message number 5 is not valid JSON"), "{err}");
    // So does trailing text after a value, and an empty message.
    let done = p.try_append_joined(b"7\0[8] 9\0", 0, 3).unwrap();
    assert_eq!(done.count, 1);
    assert!(done
        .stopped
        .unwrap()
        .to_string()
        .contains("a second value starts"));
    let done = p.try_append_joined(b"10\0", 0, 2).unwrap();
    assert_eq!(done.count, 1);
    assert!(done.stopped.unwrap().to_string().contains("empty message"));
    p.flush().await.unwrap();
    let items = raw_json(s.url().as_str()).await;
    assert_eq!(
        items,
        vec![
            json!({"n": 0}),
            json!([1, 2]),
            json!("a\u{0}b"),
            json!(12),
            json!(5),
            json!(7),
            json!(10)
        ]
    );

    // A byte stream: split at the separator, nothing checked.
    let b = handle("p-joined-bytes");
    b.create(CreateOptions::with_content_type("application/octet-stream"))
        .await
        .unwrap();
    let p = b.producer("joined-bytes").build().unwrap();
    let done = p.try_append_joined(b"{not json\nab", b'\n', 2).unwrap();
    assert_eq!((done.count, done.stopped.is_none()), (2, true));
    p.flush().await.unwrap();
    assert_eq!(raw_read(b.url().as_str()).await.2, b"{not jsonab");

    // Newline-delimited JSON: a whitespace separator is a separator, never whitespace around
    // a value, so every piece counts (an empty one too) and none takes its neighbour's byte.
    let n = handle("p-joined-ndjson");
    n.create(CreateOptions::json()).await.unwrap();
    let p = n.producer("joined-ndjson").build().unwrap();
    assert!(p.try_append_joined(b"1\n", b'\n', 1).is_none());
    assert!(p.try_append_joined(b"1\n\n2", b'\n', 2).is_none());
    let done = p.try_append_joined(b"1\n\n2", b'\n', 3).unwrap();
    assert_eq!(done.count, 1);
    assert!(done.stopped.unwrap().to_string().contains("empty message"));
    let done = p
        .try_append_joined(b"{\"a\":2}\n[3, 4]\n\"x y\"", b'\n', 3)
        .unwrap();
    assert_eq!((done.count, done.stopped.is_none()), (3, true));
    let done = p.try_append_joined(b"5 6\t7", b' ', 2).unwrap();
    assert_eq!(done.count, 1);
    assert!(done.stopped.is_some());
    p.flush().await.unwrap();
    assert_eq!(
        raw_json(n.url().as_str()).await,
        vec![
            json!(1),
            json!({"a": 2}),
            json!([3, 4]),
            json!("x y"),
            json!(5)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_try_append_many_calls_lose_and_double_nothing() {
    let s = json_stream("p-many-threads").await;
    let p = s
        .producer("many-threads")
        .linger(Duration::from_millis(1))
        .max_batch_bytes(2_000)
        .max_buffered_bytes(3_000)
        .build()
        .unwrap();
    let writers: Vec<_> = (0..3u64)
        .map(|w| {
            let p = p.clone();
            std::thread::spawn(move || {
                let msgs: Vec<String> = (0..3_000u64)
                    .map(|i| format!(r#"{{"w":{w},"i":{i}}}"#))
                    .collect();
                let mut at = 0;
                while at < msgs.len() {
                    let done = p.try_append_many(&msgs[at..]);
                    at += done.count;
                    match done.stopped {
                        None | Some(Error::BufferFull { .. }) => std::thread::yield_now(),
                        Some(e) => panic!("writer {w}: {e}"),
                    }
                }
            })
        })
        .collect();
    for w in writers {
        tokio::task::spawn_blocking(move || w.join().unwrap())
            .await
            .unwrap();
    }
    p.flush().await.unwrap();
    let items = raw_json(s.url().as_str()).await;
    assert_eq!(items.len(), 9_000);
    for w in 0..3u64 {
        let mine: Vec<u64> = items
            .iter()
            .filter(|v| v["w"] == w)
            .filter_map(|v| v["i"].as_u64())
            .collect();
        assert_eq!(mine, (0..3_000).collect::<Vec<_>>(), "writer {w}");
    }
    assert_eq!(p.metrics().messages, 9_000);
}

#[tokio::test]
async fn exactly_once_through_cut_connections_and_server_errors() {
    let server = TestServer::shared();
    let s = json_stream("p-chaos").await;
    let proxy = CutProxy::start(&server.url, 9).await;
    let via_proxy = DurableStream::builder(proxy.url_for(s.url().as_str()))
        .client(client())
        .content_type("application/json")
        .build()
        .unwrap();
    inject(
        server,
        json!({"path": path_of(s.url().as_str()), "method": "POST", "status": 503,
               "probability": 0.15, "count": 40}),
    )
    .await;
    let p = via_proxy
        .producer("chaos")
        .max_in_flight(5)
        .max_batch_messages(40)
        .linger(Duration::from_millis(1))
        .retry(fast_retry())
        .build()
        .unwrap();
    let n = 10_000u64;
    let mut last = None;
    for i in 0..n {
        last = Some(p.append(format!(r#"{{"i":{i}}}"#)).await.unwrap());
    }
    p.flush().await.unwrap();
    assert!(last.unwrap().await.is_ok());
    proxy.enabled.store(false, Ordering::SeqCst);

    let items = raw_json(s.url().as_str()).await;
    assert_eq!(numbers(&items, "i"), (0..n).collect::<Vec<_>>());
    let m = p.metrics();
    assert!(
        proxy.cuts.load(Ordering::SeqCst) > 5,
        "the proxy cut responses"
    );
    assert!(m.retries > 0 && m.duplicates > 0, "{m:?}");
    assert_eq!(m.messages, n);
    assert_eq!(m.failed_batches, 0);
}

#[tokio::test]
async fn pipelined_requests_reach_the_server_in_sequence_order() {
    let server = TestServer::shared();
    let s = json_stream("p-reorder").await;
    // Random delays before the server handles each POST: without the held last byte of each
    // body (see `GatedBody`), a later request would often be handled first and answered 409.
    inject(
        server,
        json!({"path": path_of(s.url().as_str()), "method": "POST", "delayMs": 1,
               "jitterMs": 40, "count": 100000}),
    )
    .await;
    let p = s
        .producer("reorder")
        .max_in_flight(5)
        .max_batch_messages(5)
        .linger(Duration::ZERO)
        .build()
        .unwrap();
    for i in 0..300u64 {
        p.append(format!(r#"{{"i":{i}}}"#)).await.unwrap();
    }
    p.flush().await.unwrap();
    let m = p.metrics();
    assert_eq!(m.retries, 0, "a request was sent again: {m:?}");
    assert_eq!(m.batches, 60, "{m:?}");
    let items = raw_json(s.url().as_str()).await;
    assert_eq!(numbers(&items, "i"), (0..300).collect::<Vec<_>>());
}

#[tokio::test]
async fn earlier_sequences_land_first_when_a_retried_request_is_overtaken() {
    let server = TestServer::shared();
    let s = json_stream("p-overtaken").await;
    // Some POSTs fail with 503: the batch waits out a backoff while later ones go ahead, are
    // answered 409 (an earlier sequence is missing) and go again after it.
    inject(
        server,
        json!({"path": path_of(s.url().as_str()), "method": "POST", "status": 503,
               "probability": 0.2, "jitterMs": 10, "count": 100000}),
    )
    .await;
    let p = s
        .producer("overtaken")
        .max_in_flight(5)
        .max_batch_messages(5)
        .linger(Duration::ZERO)
        .build()
        .unwrap();
    for i in 0..300u64 {
        p.append(format!(r#"{{"i":{i}}}"#)).await.unwrap();
    }
    p.flush().await.unwrap();
    let m = p.metrics();
    assert!(m.retries > 0, "no request was retried: {m:?}");
    assert_eq!(m.failed_batches, 0);
    assert_eq!(m.messages, 300);
    let items = raw_json(s.url().as_str()).await;
    assert_eq!(numbers(&items, "i"), (0..300).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_buffer_reused_for_every_message_is_appended_as_each_message_was() {
    let s = json_stream("p-reuse").await;
    let p = s
        .producer("reuse")
        .linger(Duration::from_millis(1))
        .max_batch_bytes(1024)
        .build()
        .unwrap();
    // One buffer, serialized into again for every message and handed over borrowed, while
    // earlier batches are still being sent.
    let mut buf = Vec::new();
    for i in 0..600u64 {
        buf.clear();
        serde_json::to_writer(
            &mut buf,
            &json!({"n": i, "pad": "x".repeat((i % 7) as usize)}),
        )
        .unwrap();
        p.append(&buf).await.unwrap();
        p.append(buf.as_slice()).await.unwrap();
    }
    p.flush().await.unwrap();
    let items = raw_json(s.url().as_str()).await;
    let expected: Vec<Json> = (0..600u64)
        .flat_map(|i| {
            let m = json!({"n": i, "pad": "x".repeat((i % 7) as usize)});
            [m.clone(), m]
        })
        .collect();
    assert_eq!(items, expected);
    assert!(
        p.metrics().requests > 10,
        "the messages went in many batches"
    );
}

#[tokio::test]
async fn rate_limits_honour_retry_after() {
    let server = TestServer::shared();
    let s = json_stream("p-429").await;
    let p = s.producer("rl").retry(fast_retry()).build().unwrap();
    inject(
        server,
        json!({"path": path_of(s.url().as_str()), "method": "POST", "status": 429, "retryAfter": 1}),
    )
    .await;
    let started = Instant::now();
    let r = p.append(r#"{"x":1}"#).await.unwrap().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(950));
    assert!(r.offset.is_some());
    assert_eq!(p.metrics().retries, 1);
}

#[tokio::test]
async fn a_batch_past_its_delivery_timeout_fails_and_flush_reports_it() {
    let server = TestServer::shared();
    let s = json_stream("p-deadline").await;
    let failures = Arc::new(Mutex::new(Vec::new()));
    let f2 = failures.clone();
    let p = s
        .producer("deadline")
        .delivery_timeout(Duration::from_millis(300))
        .retry(fast_retry())
        .on_error(move |e| f2.lock().unwrap().push(e.code()))
        .build()
        .unwrap();
    let path = path_of(s.url().as_str());
    inject(
        server,
        json!({"path": path, "method": "POST", "status": 503, "count": 100000}),
    )
    .await;
    let r = p.append(r#"{"lost":true}"#).await.unwrap();
    let err = r.await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    assert!(err.to_string().contains("may or may not"), "{err}");
    assert_eq!(p.flush().await.unwrap_err().code(), ErrorCode::Timeout);
    // Reported once: the next flush is clean.
    p.flush().await.unwrap();
    assert_eq!(*failures.lock().unwrap(), vec![ErrorCode::Timeout]);

    // The server recovers; the next batch reuses the sequence number that was never stored.
    inject(
        server,
        json!({"path": path, "method": "POST", "status": 503, "count": 1}),
    )
    .await;
    let d = p.append(r#"{"later":true}"#).await.unwrap().await.unwrap();
    assert!(d.offset.is_some());
    assert_eq!(
        raw_json(s.url().as_str()).await,
        vec![json!({"later":true})]
    );
    let m = p.metrics();
    assert_eq!((m.failed_batches, m.failed_messages, m.messages), (1, 1, 1));
}

#[tokio::test]
async fn a_refused_batch_is_reported_and_later_batches_fill_its_sequence() {
    let server = TestServer::shared();
    let s = json_stream("p-400").await;
    let p = s
        .producer("bad")
        .linger(Duration::ZERO)
        .max_batch_messages(1)
        .build()
        .unwrap();
    p.append(r#"{"n":0}"#).await.unwrap().await.unwrap();
    inject(
        server,
        json!({"path": path_of(s.url().as_str()), "method": "POST", "status": 400}),
    )
    .await;
    let refused = p.append(r#"{"n":1}"#).await.unwrap();
    let err = refused.await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadRequest);
    assert_eq!(err.server_message(), Some("Injected error for testing"));
    for i in 2..6 {
        p.append(format!(r#"{{"n":{i}}}"#)).await.unwrap();
    }
    let first = p.flush().await.unwrap_err();
    assert_eq!(first.code(), ErrorCode::BadRequest);
    p.flush().await.unwrap();
    assert_eq!(
        numbers(&raw_json(s.url().as_str()).await, "n"),
        vec![0, 2, 3, 4, 5]
    );
    assert_eq!(p.metrics().failed_batches, 1);
}

/// Five batches in flight when another session claims the producer id.
async fn fence_in_flight(auto_claim: bool) -> (DurableStream, IdempotentProducer, Vec<Error>) {
    let server = TestServer::shared();
    let s = json_stream(if auto_claim { "p-claim5" } else { "p-fence5" }).await;
    let p = s
        .producer("shared-id")
        .auto_claim(auto_claim)
        .linger(Duration::ZERO)
        .max_batch_messages(1)
        .max_in_flight(5)
        .build()
        .unwrap();
    p.append(r#"{"a":0}"#).await.unwrap().await.unwrap();
    inject(
        server,
        json!({"path": path_of(s.url().as_str()), "method": "POST", "delayMs": 400, "count": 6}),
    )
    .await;
    let url = s.url().to_string();
    let claimer =
        tokio::spawn(
            async move { raw_producer_post(&url, "shared-id", 1, 0, r#"[{"b":0}]"#).await },
        );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut receipts = Vec::new();
    for i in 1..=5 {
        receipts.push(p.append(format!(r#"{{"a":{i}}}"#)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(p.in_flight_count(), 5);
    assert_eq!(claimer.await.unwrap(), 200);
    let mut errors = Vec::new();
    for r in receipts {
        if let Err(e) = r.await {
            errors.push(e);
        }
    }
    (s, p, errors)
}

#[tokio::test]
async fn five_fenced_batches_fail_with_stale_epoch_without_auto_claim() {
    let (s, p, errors) = fence_in_flight(false).await;
    assert_eq!(errors.len(), 5);
    for e in &errors {
        assert!(
            matches!(
                e,
                Error::StaleEpoch {
                    producer_id,
                    epoch: 0,
                    current_epoch: 1
                } if producer_id == "shared-id"
            ),
            "{e:?}"
        );
    }
    let err = p.try_append(r#"{"a":6}"#).unwrap_err();
    assert_eq!(err.code(), ErrorCode::StaleEpoch);
    assert_eq!(p.flush().await.unwrap_err().code(), ErrorCode::StaleEpoch);
    assert_eq!(
        raw_json(s.url().as_str()).await,
        vec![json!({"a":0}), json!({"b":0})]
    );
    // restart() takes the server's epoch + 1 and clears the fence.
    p.restart().await.unwrap();
    assert_eq!((p.epoch(), p.next_seq()), (2, 0));
    p.append(r#"{"a":7}"#).await.unwrap().await.unwrap();
    assert_eq!(raw_json(s.url().as_str()).await.len(), 3);
}

#[tokio::test]
async fn a_session_with_acknowledged_batches_is_fenced_even_with_auto_claim() {
    // The newest claim wins: a session that already owned its epoch does not claim back.
    let (s, p, errors) = fence_in_flight(true).await;
    assert_eq!(errors.len(), 5, "{errors:?}");
    for e in &errors {
        assert!(
            matches!(
                e,
                Error::StaleEpoch {
                    producer_id,
                    epoch: 0,
                    current_epoch: 1
                } if producer_id == "shared-id"
            ),
            "{e:?}"
        );
    }
    assert_eq!(p.epoch(), 0);
    assert_eq!(p.flush().await.unwrap_err().code(), ErrorCode::StaleEpoch);
    assert_eq!(
        raw_json(s.url().as_str()).await,
        vec![json!({"a":0}), json!({"b":0})]
    );
    assert_eq!(p.metrics().duplicates, 0);
}

#[tokio::test]
async fn auto_claim_takes_over_from_a_newer_epoch_at_start() {
    let s = json_stream("p-claimstart").await;
    assert_eq!(
        raw_producer_post(s.url().as_str(), "eph", 5, 0, r#"[{"old":1}]"#).await,
        200
    );
    // Jittered requests: batches of a new epoch sent together would reach the server out of
    // order, and a new epoch must start at sequence 0.
    inject(
        TestServer::shared(),
        json!({"path": path_of(s.url().as_str()), "method": "POST", "delayMs": 1,
               "jitterMs": 30, "count": 100000}),
    )
    .await;
    let p = s
        .producer("eph")
        .auto_claim(true)
        .linger(Duration::ZERO)
        .max_batch_messages(1)
        .build()
        .unwrap();
    for i in 0..20 {
        p.append(format!(r#"{{"n":{i}}}"#)).await.unwrap();
    }
    p.flush().await.unwrap();
    assert_eq!(p.epoch(), 6);
    assert_eq!(
        numbers(&raw_json(s.url().as_str()).await, "n"),
        (0..20).collect::<Vec<_>>()
    );

    let fenced = s.producer("eph").build().unwrap();
    let err = fenced
        .append(r#"{"z":1}"#)
        .await
        .unwrap()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::StaleEpoch {
                ref producer_id,
                epoch: 0,
                current_epoch: 6
            } if producer_id == "eph"
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_stream_closed_under_a_running_producer_is_stream_closed() {
    let s = json_stream("p-closedunder").await;
    let p = s
        .producer("closer")
        .linger(Duration::ZERO)
        .max_batch_messages(1)
        .build()
        .unwrap();
    for i in 0..3 {
        p.append(format!(r#"{{"n":{i}}}"#)).await.unwrap();
    }
    p.flush().await.unwrap();
    let closed = s.close().await.unwrap();
    // The first batch after the close fails with StreamClosed; appends after that failure
    // was seen fail the same way at once (`append` lets the task run after each full batch).
    let mut receipts = Vec::new();
    for i in 3..8 {
        match p.append(format!(r#"{{"n":{i}}}"#)).await {
            Ok(r) => receipts.push(r),
            Err(e) => assert_eq!(e.code(), ErrorCode::StreamClosed, "append {i}: {e}"),
        }
    }
    assert!(!receipts.is_empty());
    for r in receipts {
        match r.await.unwrap_err() {
            Error::StreamClosed { final_offset, .. } => {
                assert_eq!(final_offset, closed.final_offset)
            }
            other => panic!("expected StreamClosed, got {other:?}"),
        }
    }
    assert_eq!(
        p.try_append(r#"{"n":9}"#).unwrap_err().code(),
        ErrorCode::StreamClosed
    );
    assert_eq!(p.flush().await.unwrap_err().code(), ErrorCode::StreamClosed);
    assert_eq!(raw_json(s.url().as_str()).await.len(), 3);
}

#[tokio::test]
async fn memory_stays_bounded_while_the_server_is_slow() {
    let server = TestServer::shared();
    let s = json_stream("p-bounded").await;
    let limit = 16 * 1024;
    let p = s
        .producer("bounded")
        .max_buffered_bytes(limit)
        .max_batch_bytes(4096)
        .max_in_flight(2)
        .buffer_timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    inject(
        server,
        json!({"path": path_of(s.url().as_str()), "method": "POST", "delayMs": 300, "count": 100000}),
    )
    .await;
    let msg = format!(r#"{{"pad":"{}"}}"#, "x".repeat(90));
    let mut accepted = 0usize;
    let full = loop {
        match p.try_append(msg.clone()) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(p.buffered_bytes() <= limit);
    };
    assert!(
        matches!(full, Error::BufferFull { limit: l, .. } if l == limit),
        "{full:?}"
    );
    assert_eq!(accepted, limit / msg.len());
    assert!(p.buffered_bytes() > limit - msg.len());
    // The async append waits for room, then fails after the buffer timeout.
    let started = Instant::now();
    let err = p.append(msg.clone()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    assert!(started.elapsed() >= Duration::from_millis(140));
    // Blocking appends refuse to run on a runtime thread.
    assert_eq!(
        p.append_blocking(msg.clone()).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    // A plain thread blocks until room frees up (the slow requests finish).
    let p2 = p.clone();
    let m2 = msg.clone();
    let sampler = {
        let p = p.clone();
        tokio::spawn(async move {
            let mut max = 0;
            for _ in 0..100 {
                max = max.max(p.buffered_bytes());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            max
        })
    };
    let blocking = std::thread::spawn(move || {
        let mut n = 0;
        while n < 300 {
            match p2.append_blocking(m2.clone()) {
                Ok(_) => n += 1,
                Err(e) if e.code() == ErrorCode::Timeout => continue,
                Err(e) => panic!("{e}"),
            }
        }
        n
    });
    p.wait_for_room(msg.len()).await.ok();
    assert!(sampler.await.unwrap() <= limit);
    assert_eq!(
        tokio::task::spawn_blocking(move || blocking.join().unwrap())
            .await
            .unwrap(),
        300
    );
    p.flush().await.unwrap();
    assert_eq!(raw_json(s.url().as_str()).await.len(), accepted + 300);
    assert_eq!(p.buffered_bytes(), 0);
    // A message larger than the whole buffer can never fit.
    let huge = format!(r#""{}""#, "y".repeat(limit));
    assert_eq!(
        p.try_append(huge).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
}

#[tokio::test]
async fn receipts_flag_duplicates_when_a_response_was_lost() {
    let server = TestServer::shared();
    let s = json_stream("p-dup").await;
    // Cut the first response chunk: the server stored the batch, the client saw nothing. The
    // proxy cuts once the server has answered, then lets the resend's answer through.
    let proxy = CutProxy::start(&server.url, 1).await;
    proxy.budget.store(1, Ordering::SeqCst);
    let via = DurableStream::builder(proxy.url_for(s.url().as_str()))
        .client(client())
        .content_type("application/json")
        .build()
        .unwrap();
    let p = via.producer("dup").retry(fast_retry()).build().unwrap();
    let r = p.append(r#"{"once":true}"#).await.unwrap();
    let d = r.await.unwrap();
    assert_eq!(proxy.cuts.load(Ordering::SeqCst), 1);
    assert!(d.duplicate, "{d:?}");
    assert_eq!(d.offset, None);
    assert_eq!((d.epoch, d.seq), (0, 0));
    assert_eq!(raw_json(s.url().as_str()).await, vec![json!({"once":true})]);
    assert_eq!(p.metrics().duplicates, 1);
}

#[tokio::test]
async fn close_returns_the_final_offset_and_is_idempotent() {
    let s = json_stream("p-close").await;
    let p = s.producer("closing").build().unwrap();
    for i in 0..10 {
        p.append(format!(r#"{{"n":{i}}}"#)).await.unwrap();
    }
    let final_offset = p
        .close(Some(Bytes::from_static(br#"{"n":"end"}"#)))
        .await
        .unwrap();
    let head = s.head().await.unwrap();
    assert!(head.closed);
    assert_eq!(final_offset, head.next_offset);
    assert_eq!(p.close(None).await.unwrap(), final_offset);
    assert_eq!(
        p.try_append(r#"{"n":11}"#).unwrap_err().code(),
        ErrorCode::AlreadyClosed
    );
    let items = raw_json(s.url().as_str()).await;
    assert_eq!(items.len(), 11);
    assert_eq!(items[10], json!({"n":"end"}));
    p.flush().await.unwrap();

    // Closing without a final message; the close request is retried safely.
    let server = TestServer::shared();
    let s2 = json_stream("p-close2").await;
    let p2 = s2.producer("closing2").retry(fast_retry()).build().unwrap();
    p2.append(r#"{"x":1}"#).await.unwrap();
    p2.flush().await.unwrap();
    inject(
        server,
        json!({"path": path_of(s2.url().as_str()), "method": "POST", "status": 503, "count": 2}),
    )
    .await;
    let off = p2.close(None).await.unwrap();
    assert_eq!(off, s2.head().await.unwrap().next_offset);
    assert!(s2.head().await.unwrap().closed);
}

#[tokio::test]
async fn close_retries_a_lost_final_message_without_storing_it_twice() {
    let server = TestServer::shared();
    let s = json_stream("p-closelost").await;
    let proxy = CutProxy::start(&server.url, 1).await;
    let via = DurableStream::builder(proxy.url_for(s.url().as_str()))
        .client(client())
        .content_type("application/json")
        .build()
        .unwrap();
    let p = via.producer("cl").retry(fast_retry()).build().unwrap();
    proxy.enabled.store(false, Ordering::SeqCst);
    p.append(r#"{"n":1}"#).await.unwrap().await.unwrap();
    // The close's first answer is lost after the server stored the final message.
    proxy.budget.store(1, Ordering::SeqCst);
    proxy.enabled.store(true, Ordering::SeqCst);
    let off = p
        .close(Some(Bytes::from_static(br#"{"n":2}"#)))
        .await
        .unwrap();
    assert_eq!(proxy.cuts.load(Ordering::SeqCst), 1);
    assert_eq!(off, s.head().await.unwrap().next_offset);
    assert_eq!(
        raw_json(s.url().as_str()).await,
        vec![json!({"n":1}), json!({"n":2})]
    );
}

#[tokio::test]
async fn detach_stops_without_closing_the_stream() {
    let s = json_stream("p-detach").await;
    let p = s.producer("d").build().unwrap();
    p.append(r#"{"n":1}"#).await.unwrap();
    p.detach().await.unwrap();
    assert_eq!(
        p.try_append(r#"{"n":2}"#).unwrap_err().code(),
        ErrorCode::AlreadyClosed
    );
    assert_eq!(
        p.close(None).await.unwrap_err().code(),
        ErrorCode::AlreadyClosed
    );
    p.detach().await.unwrap();
    assert!(!s.head().await.unwrap().closed);
    // Another session of the same producer id continues.
    let next = s.producer("d").epoch(1).build().unwrap();
    next.append(r#"{"n":3}"#).await.unwrap().await.unwrap();
    assert_eq!(numbers(&raw_json(s.url().as_str()).await, "n"), vec![1, 3]);
}

#[tokio::test]
async fn restart_bumps_the_epoch_and_starts_at_sequence_zero() {
    let s = json_stream("p-restart").await;
    let p = s
        .producer("r")
        .linger(Duration::ZERO)
        .max_batch_messages(1)
        .build()
        .unwrap();
    for i in 0..3 {
        p.append(format!(r#"{{"n":{i}}}"#)).await.unwrap();
    }
    p.restart().await.unwrap();
    assert_eq!((p.epoch(), p.next_seq()), (1, 0));
    let d = p.append(r#"{"n":3}"#).await.unwrap().await.unwrap();
    assert_eq!((d.epoch, d.seq), (1, 0));
    p.append(r#"{"n":4}"#).await.unwrap();
    p.flush().await.unwrap();
    assert_eq!(
        numbers(&raw_json(s.url().as_str()).await, "n"),
        vec![0, 1, 2, 3, 4]
    );
    // The old epoch is fenced now.
    let old = s.producer("r").build().unwrap();
    let err = old.append(r#"{"n":5}"#).await.unwrap().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::StaleEpoch);
}

#[tokio::test]
async fn dropping_the_producer_still_delivers_what_it_accepted() {
    let s = json_stream("p-drop").await;
    let p = s
        .producer("drop")
        .linger(Duration::from_millis(50))
        .build()
        .unwrap();
    let mut last = None;
    for i in 0..500 {
        last = Some(p.append(format!(r#"{{"n":{i}}}"#)).await.unwrap());
    }
    drop(p);
    let d = last.unwrap().await.unwrap();
    assert!(d.offset.is_some());
    assert_eq!(
        numbers(&raw_json(s.url().as_str()).await, "n"),
        (0..500).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn options_are_validated() {
    let s = handle("p-opts");
    let bad = [
        s.producer("").build().unwrap_err(),
        s.producer("x").epoch(1 << 53).build().unwrap_err(),
        s.producer("x").max_batch_bytes(0).build().unwrap_err(),
        s.producer("x").max_batch_messages(0).build().unwrap_err(),
        s.producer("x").max_in_flight(0).build().unwrap_err(),
        s.producer("x").max_buffered_bytes(0).build().unwrap_err(),
        s.producer("x")
            .delivery_timeout(Duration::ZERO)
            .build()
            .unwrap_err(),
        s.producer("x")
            .retry(RetryPolicy::default().with_multiplier(0.1))
            .build()
            .unwrap_err(),
        s.producer("x").header("bad name", "v").build().unwrap_err(),
        s.producer("x")
            .header("X-A", "line\nbreak")
            .build()
            .unwrap_err(),
    ];
    for e in bad {
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    }
    // Outside a runtime without a handle: a clear error.
    let s2 = s.clone();
    let err = std::thread::spawn(move || s2.producer("x").build().unwrap_err())
        .join()
        .unwrap();
    assert!(err.to_string().contains("tokio runtime"), "{err}");
}

#[tokio::test]
async fn headers_merge_handle_then_producer_then_protocol() {
    let (base, seen, task) = capture_server(2).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let s = DurableStream::builder(format!("{base}/v1/stream/h"))
        .client(client())
        .content_type("text/plain")
        .header("Authorization", "Bearer handle")
        .header("X-Handle", "h")
        .build()
        .unwrap();
    let p = s
        .producer("hdr")
        .header("Authorization", "Bearer producer")
        .header("Producer-Seq", "999")
        .header(
            "X-Token",
            Value::computed_sync(move || format!("t{}", c2.fetch_add(1, Ordering::SeqCst))),
        )
        .build()
        .unwrap();
    p.append("one").await.unwrap().await.unwrap();
    p.append("two").await.unwrap().await.unwrap();
    task.await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let lower: Vec<String> = seen.iter().map(|h| h.to_ascii_lowercase()).collect();
    assert!(
        lower[0].contains("authorization: bearer producer"),
        "{}",
        seen[0]
    );
    assert!(lower[0].contains("x-handle: h"));
    assert!(lower[0].contains("x-token: t0"));
    assert!(lower[1].contains("x-token: t1"));
    assert!(lower[0].contains("producer-id: hdr"));
    assert!(lower[0].contains("producer-epoch: 0"));
    assert!(lower[0].contains("producer-seq: 0"), "{}", seen[0]);
    assert!(lower[1].contains("producer-seq: 1"));
    assert!(lower[0].contains("content-type: text/plain"));
    // Bodies go out in chunks (see the task's GatedBody) but with their exact length.
    assert!(lower[0].contains("content-length: 3"), "{}", seen[0]);
    assert!(!lower[0].contains("transfer-encoding"), "{}", seen[0]);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A small HTTP server that answers every request with 200 and records request heads.
async fn capture_server(
    responses: usize,
) -> (String, Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let task = tokio::spawn(async move {
        let mut served = 0;
        while served < responses {
            let (mut sock, _) = listener.accept().await.unwrap();
            while served < responses {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                let end = loop {
                    let n = sock.read(&mut tmp).await.unwrap();
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(i);
                    }
                };
                let Some(end) = end else { break };
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                let mut have = buf.len() - end - 4;
                while have < len {
                    have += sock.read(&mut tmp).await.unwrap();
                }
                seen2.lock().unwrap().push(head);
                sock.write_all(
                    b"HTTP/1.1 200 OK\r\nStream-Next-Offset: 0_1\r\nContent-Length: 0\r\n\r\n",
                )
                .await
                .unwrap();
                served += 1;
            }
        }
    });
    (url, seen, task)
}

#[tokio::test]
async fn a_close_after_a_failed_batch_reports_it_and_closes_on_the_next_call() {
    let server = TestServer::shared();
    let s = json_stream("p-closefail").await;
    // The callback panics: the producer survives it.
    let p = s
        .producer("cf")
        .on_error(|_| panic!("callback failure"))
        .build()
        .unwrap();
    inject(
        server,
        json!({"path": path_of(s.url().as_str()), "method": "POST", "status": 400}),
    )
    .await;
    p.append_json(&json!({"n": 1})).await.unwrap();
    let err = p.close(None).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadRequest);
    assert!(!s.head().await.unwrap().closed, "the stream stays open");
    assert_eq!(
        p.try_append(r#"{"n":2}"#).unwrap_err().code(),
        ErrorCode::AlreadyClosed
    );
    let off = p.close(None).await.unwrap();
    assert!(s.head().await.unwrap().closed);
    assert_eq!(off, s.head().await.unwrap().next_offset);
    assert!(raw_json(s.url().as_str()).await.is_empty());
}

#[tokio::test]
async fn wait_for_room_returns_once_the_buffer_drains() {
    let server = TestServer::shared();
    let s = json_stream("p-room").await;
    let p = s
        .producer("room")
        .max_buffered_bytes(1000)
        .buffer_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    inject(
        server,
        json!({"path": path_of(s.url().as_str()), "method": "POST", "delayMs": 200}),
    )
    .await;
    let big = format!(r#""{}""#, "z".repeat(900));
    p.try_append(big.clone()).unwrap();
    assert_eq!(
        p.try_append(big.clone()).unwrap_err().code(),
        ErrorCode::BufferFull
    );
    let started = Instant::now();
    p.wait_for_room(big.len()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    p.try_append(big).unwrap();
    p.flush().await.unwrap();
    assert_eq!(raw_json(s.url().as_str()).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_keep_each_ones_order_and_lose_nothing() {
    let s = json_stream("p-concurrent").await;
    // A handle that learns the content type late, so the first batches are framed by the
    // task and the later ones by the appenders; small batches and a short linger, so batches
    // are sealed both by appenders (size) and by the task (linger) while others append.
    let lazy = DurableStream::builder(s.url().as_str())
        .client(client())
        .build()
        .unwrap();
    let p = lazy
        .producer("concurrent")
        .linger(Duration::from_millis(1))
        .max_batch_bytes(2048)
        .max_in_flight(3)
        .build()
        .unwrap();
    const PER: u64 = 3000;
    let mut threads = Vec::new();
    for t in 0..3u64 {
        let p = p.clone();
        threads.push(std::thread::spawn(move || {
            for i in 0..PER {
                p.append_blocking(format!(r#"{{"t":{t},"i":{i}}}"#))
                    .unwrap();
                if i % 500 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }));
    }
    let tasks: Vec<_> = (3..5u64)
        .map(|t| {
            let p = p.clone();
            tokio::spawn(async move {
                for i in 0..PER {
                    p.append(format!(r#"{{"t":{t},"i":{i}}}"#)).await.unwrap();
                    if i % 700 == 0 {
                        tokio::time::sleep(Duration::from_millis(3)).await;
                    }
                }
            })
        })
        .collect();
    // A flush racing the appenders covers what was appended before it.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let before = p.metrics().appended_messages;
    p.flush().await.unwrap();
    assert!(p.metrics().messages >= before);
    for t in tasks {
        t.await.unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    p.flush().await.unwrap();
    let items = raw_json(s.url().as_str()).await;
    assert_eq!(items.len() as u64, 5 * PER);
    for t in 0..5u64 {
        let seen: Vec<u64> = items
            .iter()
            .filter(|v| v["t"].as_u64() == Some(t))
            .map(|v| v["i"].as_u64().unwrap())
            .collect();
        assert_eq!(seen, (0..PER).collect::<Vec<_>>(), "appender {t}");
    }
    let m = p.metrics();
    assert_eq!((m.appended_messages, m.messages), (5 * PER, 5 * PER));
    assert!(m.batches > 20, "small batches expected, got {}", m.batches);
    assert_eq!(m.failed_messages, 0);
    assert_eq!(p.pending_count(), 0);
}

#[tokio::test]
async fn large_batches_arrive_intact_in_chunks() {
    let s = handle("p-large");
    s.create(CreateOptions::with_content_type("application/octet-stream"))
        .await
        .unwrap();
    let p = s
        .producer("large")
        .linger(Duration::from_secs(5))
        .max_batch_bytes(320 * 1024)
        .build()
        .unwrap();
    let msgs: Vec<Vec<u8>> = (0..5u8)
        .map(|k| (0..150 * 1024).map(|i| (i % 251) as u8 ^ k).collect())
        .collect();
    for m in &msgs {
        p.append(m.clone()).await.unwrap();
    }
    p.flush().await.unwrap();
    assert_eq!(raw_read(s.url().as_str()).await.2, msgs.concat());
    let m = p.metrics();
    assert_eq!((m.batches, m.failed_batches), (3, 0));
}

/// On a current-thread runtime (the default of `#[tokio::test]`) a tight loop of appends
/// that never wait for room still lets the other tasks (the producer's requests and their
/// answers) run every 64 KiB appended, not only once per full batch.
#[tokio::test]
async fn a_tight_append_loop_lets_other_tasks_run_every_64_kib() {
    let s = json_stream("p-yield").await;
    let p = s
        .producer("yield")
        .max_batch_bytes(4 << 20)
        .build()
        .unwrap();
    let polls = Arc::new(AtomicUsize::new(0));
    let counter = polls.clone();
    let spinner = tokio::spawn(async move {
        loop {
            counter.fetch_add(1, Ordering::Relaxed);
            tokio::task::yield_now().await;
        }
    });
    tokio::task::yield_now().await;
    let before = polls.load(Ordering::Relaxed);
    // 20,000 messages of 100 bytes: 2 MB, half a batch, with room to spare in the buffer.
    for i in 0..20_000u64 {
        p.append(format!(r#"{{"n":{i:<92}}}"#)).await.unwrap();
    }
    let during = polls.load(Ordering::Relaxed) - before;
    spinner.abort();
    // About 2,000,000 / 65,536 = 30 yields; without them the loop yields not once (no batch
    // fills up).
    assert!(
        during >= 25,
        "other tasks ran {during} times during the loop"
    );
    p.flush().await.unwrap();
    let items = raw_json(s.url().as_str()).await;
    assert_eq!(numbers(&items, "n"), (0..20_000).collect::<Vec<_>>());
}

/// A batch whose linger ends between the task's look at it (not due yet) and the task arming
/// its timer must still be sent: nothing else wakes the task when no request is in flight and
/// no appender opens a new batch. Lingers of a few microseconds put that end inside the
/// window on many rounds; each round's receipt must arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linger_ending_while_the_task_looks_still_sends_the_batch() {
    let s = json_stream("p-linger-edge").await;
    for linger_us in (1..=120u64).step_by(7) {
        let p = s
            .producer(format!("edge-{linger_us}"))
            .linger(Duration::from_micros(linger_us))
            .build()
            .unwrap();
        for round in 0..40u64 {
            let r = p
                .append(Bytes::from(format!(r#"{{"l":{linger_us},"r":{round}}}"#)))
                .await
                .unwrap();
            tokio::time::timeout(Duration::from_secs(5), r)
                .await
                .unwrap_or_else(|_| {
                    panic!("linger {linger_us} µs, round {round}: batch never sent")
                })
                .unwrap();
        }
        p.detach().await.unwrap();
    }
    assert_eq!(raw_json(s.url().as_str()).await.len(), 18 * 40);
}

#[tokio::test]
async fn a_delivery_timeout_or_linger_of_duration_max_means_never_not_a_crash() {
    // Instant + Duration::MAX does not fit: the producer's task used to panic on it, failing
    // every receipt with "closed". Such a deadline or linger is taken as "never".
    let s = json_stream("p-duration-max").await;
    let forever = s
        .producer("forever")
        .linger(Duration::ZERO)
        .delivery_timeout(Duration::MAX)
        .build()
        .unwrap();
    let r = forever.append(r#"{"a":1}"#).await.unwrap();
    let d = tokio::time::timeout(Duration::from_secs(10), r).await;
    assert!(matches!(d, Ok(Ok(_))), "{d:?}");
    forever.detach().await.unwrap();

    let lingering = s
        .producer("lingering")
        .linger(Duration::MAX)
        .build()
        .unwrap();
    let r = lingering.append(r#"{"a":2}"#).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(lingering.pending_count(), 1, "held by the linger");
    let f = tokio::time::timeout(Duration::from_secs(10), lingering.flush()).await;
    assert!(matches!(f, Ok(Ok(()))), "{f:?}");
    let d = tokio::time::timeout(Duration::from_secs(10), r).await;
    assert!(matches!(d, Ok(Ok(_))), "{d:?}");
    lingering.detach().await.unwrap();
    assert_eq!(
        raw_json(s.url().as_str()).await,
        vec![json!({"a":1}), json!({"a":2})]
    );
}

#[tokio::test]
async fn a_flush_given_up_by_its_caller_leaves_the_failure_to_the_next_flush() {
    // flush() reports every failure since the last flush. One whose caller stopped waiting
    // (a timeout, a cancelled task) used to take the failure with it to nobody.
    let server = TestServer::shared();
    let s = json_stream("p-flush-abandoned").await;
    let p = s
        .producer("w")
        .linger(Duration::from_secs(3600))
        .retry(fast_retry())
        .build()
        .unwrap();
    let path = path_of(s.url().as_str());
    inject(
        server,
        json!({"path": path, "method": "POST", "status": 400}),
    )
    .await;
    let r = p.append(r#"{"n":1}"#).await.unwrap();
    // Polled once (the flush is queued), then dropped.
    use futures_util::FutureExt;
    let gave_up = p.flush().now_or_never();
    assert!(gave_up.is_none(), "{gave_up:?}");
    assert_eq!(r.await.unwrap_err().code(), ErrorCode::BadRequest);
    let err = p.flush().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadRequest, "{err}");
    // Reported once: the flush after it has nothing to report.
    let r2 = p.append(r#"{"n":2}"#).await.unwrap();
    p.flush().await.unwrap();
    r2.await.unwrap();
    p.detach().await.unwrap();
    assert_eq!(raw_json(s.url().as_str()).await, vec![json!({"n":2})]);
}

#[tokio::test]
async fn an_append_dropped_before_it_returned_has_appended_nothing() {
    // `append` used in a select! or under a timeout: a future dropped while pending must not
    // have queued its message (the caller, with no receipt, would append it again). Each
    // message here fills a batch, the case where an append yields to the runtime.
    use futures_util::FutureExt;
    let s = json_stream("p-append-cancel-safe").await;
    let p = s
        .producer("w")
        .linger(Duration::from_secs(3600))
        .max_batch_messages(1)
        .build()
        .unwrap();
    let mut returned = Vec::new();
    for n in 0..20u64 {
        // Polled once, then dropped if pending.
        if let Some(r) = p.append(format!(r#"{{"n":{n}}}"#)).now_or_never() {
            r.unwrap();
            returned.push(n);
        }
        assert_eq!(
            p.metrics().appended_messages,
            returned.len() as u64,
            "after {n}"
        );
    }
    assert!(
        returned.len() < 20,
        "no append was ever pending: {returned:?}"
    );
    p.flush().await.unwrap();
    p.detach().await.unwrap();
    let items = raw_json(s.url().as_str()).await;
    let stored: Vec<u64> = items.iter().map(|v| v["n"].as_u64().unwrap()).collect();
    assert_eq!(stored, returned);
}
