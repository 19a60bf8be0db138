//! Write and lifecycle operations against the real reference server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{client, handle, inject, path_of, raw_json, raw_read, TestServer};
use durable_streams_client::{
    AppendOptions, AttemptObserver, CauseKind, Client, CloseOptions, CreateOptions, CreateStatus,
    DurableStream, Error, ErrorCode, FailedAttempt, ForkOptions, Operation, RequestExtras,
    RetryPolicy, Value,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A retry policy with short delays and at most `max` retries.
fn quick_retries(max: u32) -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_delay(Duration::from_millis(5))
        .with_max_delay(Duration::from_millis(20))
        .with_max_retries(Some(max))
}

#[tokio::test]
async fn create_tells_created_existing_and_conflicting_apart() {
    let s = handle("create");
    let r = s.create(CreateOptions::json()).await.unwrap();
    assert_eq!(r.status, CreateStatus::Created);
    assert!(!r.closed);
    assert!(r.next_offset.is_some());
    assert!(s.is_json());

    let again = s.create(CreateOptions::json()).await.unwrap();
    assert_eq!(again.status, CreateStatus::AlreadyExists);

    let err = s
        .create(CreateOptions::with_content_type("text/plain"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ConflictExists {
                existing_closed: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.status(), Some(409));
    assert_eq!(err.code(), ErrorCode::ConflictExists);
    assert!(!err.to_string().contains("closed"), "{err}");
}

#[tokio::test]
async fn create_on_a_closed_stream_says_that_it_is_closed() {
    let s = handle("create-closed");
    s.create(CreateOptions::json()).await.unwrap();
    s.close().await.unwrap();
    // Another run of the same program: the stream exists but is closed.
    let err = s.create(CreateOptions::json()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::ConflictExists {
                existing_closed: Some(true),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), ErrorCode::ConflictExists);
    let text = err.to_string();
    assert!(text.contains("the existing stream is closed"), "{text}");

    // And the other way round: an open stream, created again as closed.
    let open = handle("create-open");
    open.create(CreateOptions::json()).await.unwrap();
    let err = open
        .create(CreateOptions {
            closed: true,
            ..CreateOptions::json()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ConflictExists {
                existing_closed: Some(false),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("the existing stream is open"),
        "{err}"
    );
}

#[tokio::test]
async fn ttl_and_expires_at_are_exclusive_and_reported_by_head() {
    let s = handle("ttl");
    let err = s
        .create(CreateOptions {
            ttl_seconds: Some(60),
            expires_at: Some("2099-01-01T00:00:00Z".into()),
            ..CreateOptions::json()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    // Nothing was sent: the stream does not exist.
    assert!(!s.exists().await.unwrap());

    s.create(CreateOptions {
        ttl_seconds: Some(3600),
        ..CreateOptions::json()
    })
    .await
    .unwrap();
    let head = s.head().await.unwrap();
    assert_eq!(head.ttl_seconds, Some(3600));
    assert_eq!(head.expires_at, None);

    let e = handle("expires");
    e.create(CreateOptions {
        expires_at: Some("2099-01-01T00:00:00Z".into()),
        ..CreateOptions::with_content_type("text/plain")
    })
    .await
    .unwrap();
    let head = e.head().await.unwrap();
    assert_eq!(head.ttl_seconds, None);
    assert!(head.expires_at.unwrap().starts_with("2099-01-01"));
    assert_eq!(head.content_type.as_deref(), Some("text/plain"));
}

#[tokio::test]
async fn missing_streams_are_not_found() {
    let s = handle("missing");
    let err = s.head().await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(err.status(), Some(404));
    assert!(!s.exists().await.unwrap());
    let err = DurableStream::connect(TestServer::shared().stream_url("missing2"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    let err = s
        .append_with(
            "x",
            AppendOptions {
                content_type: Some("text/plain".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = s.delete().await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn byte_appends_grow_the_offset_and_read_back_in_order() {
    let s = handle("bytes");
    s.create(CreateOptions::with_content_type("application/octet-stream"))
        .await
        .unwrap();
    let mut last = s.head().await.unwrap().next_offset.unwrap();
    for chunk in ["hello ", "durable ", "world"] {
        let r = s.append(chunk).await.unwrap();
        let next = r.next_offset.unwrap();
        assert!(next > last, "{next:?} should exceed {last:?}");
        last = next;
    }
    let r = s
        .append_batch(
            [Bytes::from_static(b"!"), Bytes::from_static(b"?")],
            AppendOptions::default(),
        )
        .await
        .unwrap();
    assert!(r.next_offset.unwrap() > last);
    let (_, _, body) = raw_read(s.url().as_str()).await;
    assert_eq!(body, b"hello durable world!?");
    assert_eq!(
        s.head().await.unwrap().next_offset,
        r_next(&s).await,
        "head agrees with itself"
    );
}

async fn r_next(s: &DurableStream) -> Option<durable_streams_client::Offset> {
    s.head().await.unwrap().next_offset
}

#[tokio::test]
async fn json_mode_wraps_single_messages_and_flattens_batches_one_level() {
    let s = handle("json");
    s.create(CreateOptions::json()).await.unwrap();
    s.append(r#"{"event":"created"}"#).await.unwrap();
    // An array appended as one message stays one message.
    s.append("[1,2]").await.unwrap();
    s.append_json(&json!({"n": 3})).await.unwrap();
    s.append_batch([r#"{"a":1}"#, r#"[3,4]"#], AppendOptions::default())
        .await
        .unwrap();
    let items = raw_json(s.url().as_str()).await;
    assert_eq!(
        items,
        vec![
            json!({"event":"created"}),
            json!([1, 2]),
            json!({"n": 3}),
            json!({"a": 1}),
            json!([3, 4]),
        ]
    );
}

#[tokio::test]
async fn empty_appends_are_refused_before_any_request() {
    let s = handle("empty");
    // The stream does not exist: an empty append that reached the server would be a 404.
    let s = DurableStream::builder(s.url().as_str())
        .client(client())
        .content_type("application/json")
        .build()
        .unwrap();
    for err in [
        s.append("").await.unwrap_err(),
        s.append("  \n").await.unwrap_err(),
        s.append_batch(Vec::<Bytes>::new(), AppendOptions::default())
            .await
            .unwrap_err(),
        s.append_batch(["1", ""], AppendOptions::default())
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    }
    let b = DurableStream::builder(s.url().as_str())
        .client(client())
        .content_type("text/plain")
        .build()
        .unwrap();
    assert!(matches!(
        b.append("").await.unwrap_err(),
        Error::InvalidArgument { .. }
    ));
}

#[tokio::test]
async fn server_side_json_errors_carry_the_message() {
    let s = handle("badjson");
    s.create(CreateOptions::json()).await.unwrap();
    let err = s.append("{not json").await.unwrap_err();
    assert!(matches!(err, Error::BadRequest { .. }), "{err:?}");
    assert_eq!(err.server_message(), Some("Invalid JSON"));
    // The stream is unchanged.
    assert_eq!(
        raw_json(s.url().as_str()).await,
        Vec::<serde_json::Value>::new()
    );
}

#[tokio::test]
async fn stream_seq_must_increase() {
    let s = handle("seq");
    s.create(CreateOptions::with_content_type("text/plain"))
        .await
        .unwrap();
    let with = |seq: &str| AppendOptions {
        seq: Some(seq.into()),
        ..Default::default()
    };
    s.append_with("a", with("001")).await.unwrap();
    s.append_with("b", with("002")).await.unwrap();
    let err = s.append_with("c", with("002")).await.unwrap_err();
    assert!(matches!(err, Error::SeqConflict { .. }), "{err:?}");
    assert_eq!(err.code(), ErrorCode::ConflictSeq);
    let err = s.append_with("c", with("001")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConflictSeq);
    s.append_with("d", with("003")).await.unwrap();
    assert_eq!(raw_read(s.url().as_str()).await.2, b"abd");
}

#[tokio::test]
async fn content_type_mismatch_is_a_conflict() {
    let s = handle("ctmismatch");
    s.create(CreateOptions::with_content_type("text/plain"))
        .await
        .unwrap();
    let err = s
        .append_with(
            "x",
            AppendOptions {
                content_type: Some("application/octet-stream".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
}

#[tokio::test]
async fn close_is_idempotent_and_later_appends_get_the_final_offset() {
    let s = handle("close");
    s.create(CreateOptions::json()).await.unwrap();
    s.append(r#"{"n":1}"#).await.unwrap();
    let closed = s
        .close_with(CloseOptions {
            body: Some(Bytes::from_static(br#"{"n":"last"}"#)),
            ..Default::default()
        })
        .await
        .unwrap();
    let final_offset = closed.final_offset.clone().unwrap();
    assert!(s.head().await.unwrap().closed);
    assert_eq!(
        s.head().await.unwrap().next_offset.as_ref(),
        Some(&final_offset)
    );

    // Closing again succeeds and reports the same final offset.
    let again = s.close().await.unwrap();
    assert_eq!(again.final_offset.as_ref(), Some(&final_offset));

    let err = s.append(r#"{"n":2}"#).await.unwrap_err();
    match &err {
        Error::StreamClosed {
            final_offset: Some(o),
            ..
        } => assert_eq!(o, &final_offset),
        other => panic!("expected StreamClosed with offset, got {other:?}"),
    }
    assert_eq!(err.status(), Some(409));
    // A final message cannot be added to a closed stream.
    let err = s
        .close_with(CloseOptions {
            body: Some(Bytes::from_static(b"{}")),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StreamClosed);
    assert_eq!(
        raw_json(s.url().as_str()).await,
        vec![json!({"n":1}), json!({"n":"last"})]
    );
}

#[tokio::test]
async fn created_closed_with_a_body_is_complete() {
    let s = handle("createclosed");
    let r = s
        .create(CreateOptions {
            closed: true,
            body: Some(Bytes::from_static(b"all of it")),
            ..CreateOptions::with_content_type("text/plain")
        })
        .await
        .unwrap();
    assert!(r.closed);
    let head = s.head().await.unwrap();
    assert!(head.closed);
    let err = s.append("more").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::StreamClosed {
                final_offset: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    let (_, headers, body) = raw_read(s.url().as_str()).await;
    assert_eq!(body, b"all of it");
    assert_eq!(headers.get("stream-closed").unwrap(), "true");
}

#[tokio::test]
async fn delete_removes_the_stream() {
    let s = handle("delete");
    s.create(CreateOptions::json()).await.unwrap();
    assert!(s.exists().await.unwrap());
    s.delete().await.unwrap();
    assert!(!s.exists().await.unwrap());
}

#[tokio::test]
async fn connect_learns_the_content_type() {
    let s = handle("connect");
    s.create(CreateOptions::json()).await.unwrap();
    let c = DurableStream::connect(s.url().as_str()).await.unwrap();
    assert_eq!(c.content_type().as_deref(), Some("application/json"));
    // A fresh handle without a content type asks once, then appends in JSON mode.
    let lazy = DurableStream::builder(s.url().as_str())
        .client(client())
        .build()
        .unwrap();
    assert_eq!(lazy.content_type(), None);
    lazy.append("[7]").await.unwrap();
    assert!(lazy.is_json());
    assert_eq!(raw_json(s.url().as_str()).await, vec![json!([7])]);
}

#[tokio::test]
async fn append_stream_sends_one_chunked_request() {
    let s = handle("appendstream");
    s.create(CreateOptions::with_content_type("text/plain"))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let writer = tokio::spawn(async move {
        for part in ["one ", "two ", "three"] {
            tx.send(Ok(Bytes::from(part))).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let r = s
        .append_stream(body, AppendOptions::default())
        .await
        .unwrap();
    writer.await.unwrap();
    assert!(r.next_offset.is_some());
    assert_eq!(raw_read(s.url().as_str()).await.2, b"one two three");
}

#[tokio::test]
async fn append_stream_aborts_on_a_source_error_and_stores_nothing() {
    let failed = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&failed);
    let s = DurableStream::builder(TestServer::shared().stream_url("appendstream-err"))
        .client(client())
        .on_failed_attempt(AttemptObserver::new(move |f: FailedAttempt| {
            seen.lock()
                .unwrap()
                .push((f.operation, f.attempt, f.will_retry, f.error.code()));
            async {}
        }))
        .build()
        .unwrap();
    s.create(CreateOptions::with_content_type("text/plain"))
        .await
        .unwrap();
    let parts: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from(vec![b'a'; 100_000])),
        Ok(Bytes::new()),
        Ok(Bytes::from_static(b"b")),
        Err(std::io::Error::other("the source broke")),
    ];
    let err = s
        .append_stream(futures_util::stream::iter(parts), AppendOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err:?}");
    let text = err.to_string();
    assert!(text.contains("the source broke"), "{text}");
    assert!(text.contains("after 100001 bytes"), "{text}");
    assert_eq!(
        *failed.lock().unwrap(),
        vec![(Operation::Append, 1, false, ErrorCode::InvalidArgument)]
    );
    // Nothing of the aborted body was stored; the stream takes the next append.
    let parts = ["x", "", "y"].map(|p| Ok::<_, std::io::Error>(Bytes::from(p)));
    s.append_stream(futures_util::stream::iter(parts), AppendOptions::default())
        .await
        .unwrap();
    assert_eq!(raw_read(s.url().as_str()).await.2, b"xy");
}

#[tokio::test]
async fn append_stream_is_not_retried_and_the_observer_sees_every_failed_attempt() {
    let server = TestServer::shared();
    let failed = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&failed);
    let s = DurableStream::builder(server.stream_url("observed"))
        .client(client())
        .retry(RetryPolicy::default().with_initial_delay(Duration::from_millis(1)))
        .append_retry(RetryPolicy::default().with_initial_delay(Duration::from_millis(1)))
        .on_failed_attempt(AttemptObserver::new(move |f: FailedAttempt| {
            seen.lock()
                .unwrap()
                .push((f.operation, f.attempt, f.will_retry));
            async {}
        }))
        .build()
        .unwrap();
    let path = path_of(s.url().as_str());
    inject(
        server,
        json!({"path": path, "status": 503, "method": "PUT", "count": 2}),
    )
    .await;
    s.create(CreateOptions::with_content_type("text/plain"))
        .await
        .unwrap();
    inject(
        server,
        json!({"path": path, "status": 503, "method": "POST", "count": 2}),
    )
    .await;
    s.append("a").await.unwrap();
    // A streamed body cannot be sent again: the 503 ends it, even with append retries on.
    inject(
        server,
        json!({"path": path, "status": 503, "method": "POST"}),
    )
    .await;
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from("b"))]);
    let err = s
        .append_stream(body, AppendOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Busy, "{err:?}");
    assert_eq!(
        *failed.lock().unwrap(),
        vec![
            (Operation::Create, 1, true),
            (Operation::Create, 2, true),
            (Operation::Append, 1, true),
            (Operation::Append, 2, true),
            (Operation::Append, 1, false),
        ]
    );
    failed.lock().unwrap().clear();
    // A 404 on delete is a failed attempt too (not retried).
    s.delete().await.unwrap();
    assert!(s.delete().await.is_err());
    assert_eq!(*failed.lock().unwrap(), vec![(Operation::Delete, 1, false)]);
    assert_eq!(raw_read(s.url().as_str()).await.0, 404);
}

#[tokio::test]
async fn forks_read_their_source_data() {
    let src = handle("forksrc");
    src.create(CreateOptions::json()).await.unwrap();
    src.append(r#"{"n":1}"#).await.unwrap();
    let at = src.append(r#"{"n":2}"#).await.unwrap().next_offset.unwrap();
    src.append(r#"{"n":3}"#).await.unwrap();

    let fork = handle("fork");
    let r = fork
        .create(CreateOptions {
            fork: Some(ForkOptions::of(path_of(src.url().as_str())).at(at.clone())),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(r.status, CreateStatus::Created);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    fork.append(r#"{"fork":true}"#).await.unwrap();
    assert_eq!(
        raw_json(fork.url().as_str()).await,
        vec![json!({"n":1}), json!({"n":2}), json!({"fork":true})]
    );
    // The source is unchanged.
    assert_eq!(raw_json(src.url().as_str()).await.len(), 3);

    // A sub-offset inherits one more message past the anchor; a full URL works as the source.
    let sub = handle("forksub");
    sub.create(CreateOptions {
        fork: Some(ForkOptions::of(src.url().as_str()).at(at).sub_offset(1)),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        raw_json(sub.url().as_str()).await,
        vec![json!({"n":1}), json!({"n":2}), json!({"n":3})]
    );

    // Deleting a source with forks soft-deletes it: 410 Gone.
    src.delete().await.unwrap();
    let err = src.head().await.unwrap_err();
    assert!(matches!(err, Error::Gone { .. }), "{err:?}");
    assert_eq!(err.status(), Some(410));
    // The fork still reads its inherited data.
    assert_eq!(raw_json(fork.url().as_str()).await.len(), 3);

    let missing = handle("forkmissing");
    let err = missing
        .create(CreateOptions {
            fork: Some(ForkOptions::of("/v1/stream/does-not-exist")),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
}

#[tokio::test]
async fn injected_statuses_map_to_typed_errors() {
    let server = TestServer::shared();
    let s = handle("statuses");
    s.create(CreateOptions::with_content_type("text/plain"))
        .await
        .unwrap();
    let path = path_of(s.url().as_str());
    let cases: [(u16, ErrorCode); 6] = [
        (401, ErrorCode::Unauthorized),
        (403, ErrorCode::Forbidden),
        (413, ErrorCode::PayloadTooLarge),
        (429, ErrorCode::RateLimited),
        (500, ErrorCode::ServerError),
        (418, ErrorCode::UnexpectedStatus),
    ];
    for (status, code) in cases {
        inject(
            server,
            json!({"path": path, "status": status, "method": "POST", "retryAfter": 7}),
        )
        .await;
        let err = s.append("x").await.unwrap_err();
        assert_eq!(err.code(), code, "{status}: {err:?}");
        assert_eq!(err.status(), Some(status));
        assert_eq!(err.server_message(), Some("Injected error for testing"));
        if status == 429 {
            assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        }
    }
    // None of the failed appends was stored.
    assert_eq!(raw_read(s.url().as_str()).await.2, b"");
}

#[tokio::test]
async fn plain_appends_do_not_retry_unless_asked() {
    let server = TestServer::shared();
    let s = handle("noretry");
    s.create(CreateOptions::with_content_type("text/plain"))
        .await
        .unwrap();
    let path = path_of(s.url().as_str());
    inject(
        server,
        json!({"path": path, "status": 503, "method": "POST"}),
    )
    .await;
    let err = s.append("a").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Busy);
    assert!(err.is_retryable());

    let retrying = DurableStream::builder(s.url().as_str())
        .client(client())
        .content_type("text/plain")
        .append_retry(quick_retries(3))
        .build()
        .unwrap();
    inject(
        server,
        json!({"path": path, "status": 503, "method": "POST", "count": 2}),
    )
    .await;
    retrying.append("b").await.unwrap();
    inject(
        server,
        json!({"path": path, "dropConnection": true, "method": "POST"}),
    )
    .await;
    retrying.append("c").await.unwrap();
    assert_eq!(raw_read(s.url().as_str()).await.2, b"bc");
}

#[tokio::test]
async fn idempotent_operations_retry_with_backoff() {
    let server = TestServer::shared();
    let s = DurableStream::builder(server.stream_url("idem"))
        .client(client())
        .retry(quick_retries(3))
        .build()
        .unwrap();
    let path = path_of(s.url().as_str());
    inject(
        server,
        json!({"path": path, "status": 503, "method": "PUT", "count": 2}),
    )
    .await;
    assert_eq!(
        s.create(CreateOptions::json()).await.unwrap().status,
        CreateStatus::Created
    );
    inject(
        server,
        json!({"path": path, "dropConnection": true, "method": "HEAD"}),
    )
    .await;
    assert!(s.head().await.is_ok());
    inject(
        server,
        json!({"path": path, "status": 500, "method": "HEAD", "count": 10}),
    )
    .await;
    let err = s.head().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ServerError);
    // The retries ran out: 1 attempt + 3 retries, the last attempt's 500 is the source.
    assert_eq!(err.attempts(), Some(4), "{err:?}");
    assert_eq!(err.status(), Some(500));
    assert!(err.is_retryable());
    assert!(
        err.to_string().ends_with("(gave up after 4 attempts)"),
        "{err}"
    );
    let last = std::error::Error::source(&err).expect("the last attempt");
    let last = last.downcast_ref::<Error>().expect("a core error");
    assert!(
        matches!(last, Error::ServerError { status: 500, .. }),
        "{last:?}"
    );
    assert_eq!(err.last_attempt().to_string(), last.to_string());
    assert!(std::error::Error::source(last).is_none());
    assert_eq!(err.server_message(), last.server_message());
}

#[tokio::test]
async fn a_503_until_the_retries_run_out_is_busy_with_the_last_503_as_source() {
    let server = TestServer::shared();
    let s = DurableStream::builder(server.stream_url("busy-exhausted"))
        .client(client())
        .retry(quick_retries(2))
        .build()
        .unwrap();
    s.create(CreateOptions::json()).await.unwrap();
    inject(
        server,
        json!({"path": path_of(s.url().as_str()), "status": 503, "method": "HEAD", "count": 10}),
    )
    .await;
    let err = s.head().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Busy, "{err:?}");
    assert_eq!(err.status(), Some(503));
    assert_eq!(err.attempts(), Some(3));
    assert!(matches!(err, Error::RetriesExhausted { attempts: 3, .. }));
    let last = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<Error>())
        .expect("the last attempt's error");
    assert_eq!(last.code(), ErrorCode::Busy);
    assert_eq!(last.attempts(), None);
    assert_eq!(
        err.root_cause(),
        None,
        "an HTTP answer has no transport cause"
    );
    // A policy without retries returns the failure itself.
    let once = DurableStream::builder(s.url().as_str())
        .client(client())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = once.head().await.unwrap_err();
    assert!(
        matches!(err, Error::ServerError { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(err.attempts(), None);
}

#[tokio::test]
async fn network_errors_and_timeouts_are_typed() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let s = DurableStream::builder(format!("http://127.0.0.1:{port}/v1/stream/x"))
        .client(client())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = s.head().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Network, "{err:?}");
    assert!(err.status().is_none());
    // The root of the chain is the transport's I/O error: connection refused.
    let cause = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<durable_streams_client::Cause>())
        .expect("the transport error");
    assert_eq!(cause.kind(), CauseKind::ConnectionRefused, "{cause:?}");
    assert!(
        cause.message().to_lowercase().contains("refused"),
        "{cause}"
    );
    assert_eq!(err.root_cause(), Some(cause));
    assert!(std::error::Error::source(cause).is_none());

    // With retries, the chain is: gave up -> last attempt's network error -> transport.
    let retrying = DurableStream::builder(format!("http://127.0.0.1:{port}/v1/stream/x"))
        .client(client())
        .retry(quick_retries(2))
        .build()
        .unwrap();
    let err = retrying.head().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Network);
    assert_eq!(err.attempts(), Some(3));
    let last = std::error::Error::source(&err).expect("last attempt");
    assert!(matches!(
        last.downcast_ref::<Error>(),
        Some(Error::Network { .. })
    ));
    let root = last.source().expect("transport error");
    assert_eq!(
        root.downcast_ref::<durable_streams_client::Cause>()
            .map(|c| c.kind()),
        Some(CauseKind::ConnectionRefused)
    );
    assert_eq!(
        err.root_cause().map(|c| c.kind()),
        Some(CauseKind::ConnectionRefused)
    );

    let server = TestServer::shared();
    let slow_client = Client::builder()
        .request_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let s = DurableStream::builder(server.stream_url("slow"))
        .client(slow_client)
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    s.create(CreateOptions::json()).await.unwrap();
    inject(
        server,
        json!({"path": path_of(s.url().as_str()), "delayMs": 1000, "method": "HEAD"}),
    )
    .await;
    let err = s.head().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout, "{err:?}");
    assert_eq!(err.root_cause().map(|c| c.kind()), Some(CauseKind::Timeout));
}

/// A one-shot HTTP server that records the request heads it receives.
async fn capture_server(
    responses: usize,
) -> (String, Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let task = tokio::spawn(async move {
        let mut served = 0;
        while served < responses {
            let (mut sock, _) = listener.accept().await.unwrap();
            loop {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                let head_end = loop {
                    let n = sock.read(&mut tmp).await.unwrap();
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(i);
                    }
                };
                let Some(end) = head_end else { break };
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
                    b"HTTP/1.1 204 No Content\r\nStream-Next-Offset: 0_1\r\nContent-Type: text/plain\r\n\r\n",
                )
                .await
                .unwrap();
                served += 1;
                if served >= responses {
                    break;
                }
            }
        }
    });
    (url, seen, task)
}

#[tokio::test]
async fn fixed_and_computed_headers_and_params_are_sent_once_per_request() {
    let (base, seen, task) = capture_server(3).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let calls2 = calls.clone();
    let s = DurableStream::builder(format!("{base}/v1/stream/h?tenant=a"))
        .client(client())
        .content_type("text/plain")
        .header("Authorization", "Bearer fixed")
        .header(
            "X-Token",
            Value::computed(move || {
                let n = calls2.fetch_add(1, Ordering::SeqCst) + 1;
                async move { Ok(format!("tok-{n}")) }
            }),
        )
        .param("region", Value::computed_sync(|| "eu".to_string()))
        .build()
        .unwrap();
    s.append("one").await.unwrap();
    s.append_with(
        "two",
        AppendOptions {
            seq: Some("5".into()),
            extras: RequestExtras::new()
                .header("Authorization", "Bearer per-call")
                .param("trace", "t1"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    s.close().await.unwrap();
    task.await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3, "computed once per request");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let lower: Vec<String> = seen.iter().map(|h| h.to_ascii_lowercase()).collect();
    assert!(
        seen[0].starts_with("POST /v1/stream/h?region=eu&tenant=a HTTP/1.1"),
        "{}",
        seen[0]
    );
    assert!(lower[0].contains("authorization: bearer fixed"));
    assert!(lower[0].contains("x-token: tok-1"));
    assert!(lower[0].contains("content-type: text/plain"));
    assert!(
        seen[1].starts_with("POST /v1/stream/h?region=eu&tenant=a&trace=t1 HTTP/1.1"),
        "{}",
        seen[1]
    );
    assert!(lower[1].contains("authorization: bearer per-call"));
    assert!(!lower[1].contains("bearer fixed"));
    assert!(lower[1].contains("x-token: tok-2"));
    assert!(lower[1].contains("stream-seq: 5"));
    assert!(lower[2].contains("stream-closed: true"));
    assert!(lower[2].contains("x-token: tok-3"));
    assert!(
        !lower[2].contains("content-type"),
        "close-only sends no content type"
    );
}

#[tokio::test]
async fn computed_header_errors_fail_the_request() {
    let s = DurableStream::builder(TestServer::shared().stream_url("hdrerr"))
        .client(client())
        .header(
            "Authorization",
            Value::computed(|| async {
                Err(Error::Unauthorized {
                    url: String::new(),
                    message: Some("token refresh failed".into()),
                })
            }),
        )
        .build()
        .unwrap();
    let err = s.head().await.unwrap_err();
    assert_eq!(err.server_message(), Some("token refresh failed"));
}

#[tokio::test]
async fn errors_never_show_credentials() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let s = DurableStream::builder(format!(
        "http://user:hunter2@127.0.0.1:{port}/v1/stream/x?token=sekrit"
    ))
    .client(client())
    .header("Authorization", "Bearer sekrit-header")
    .retry(RetryPolicy::none())
    .build()
    .unwrap();
    let err = s.head().await.unwrap_err();
    let shown = format!("{err} {err:?} {s:?}");
    for secret in ["hunter2", "sekrit"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}
