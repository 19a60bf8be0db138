//! Producer sessions: a producer id reused by a later or a concurrent session, and servers
//! whose sequencing answers would make a producer resend forever.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{handle, inject, path_of, raw_json, TestServer};
use durable_streams_client::{
    CreateOptions, DurableStream, Error, ErrorCode, IdempotentProducer, RetryPolicy,
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

fn producer(s: &DurableStream, id: &str, auto_claim: bool) -> IdempotentProducer {
    s.producer(id)
        .auto_claim(auto_claim)
        .linger(Duration::ZERO)
        .max_batch_messages(3)
        .retry(fast_retry())
        .build()
        .unwrap()
}

fn values(items: &[Json], key: &str) -> Vec<u64> {
    items.iter().filter_map(|v| v[key].as_u64()).collect()
}

/// Appends `range` as `{key: n}` and returns each message's outcome.
async fn write(
    p: &IdempotentProducer,
    key: &str,
    range: std::ops::Range<u64>,
) -> Vec<(u64, Result<durable_streams_client::Delivery, Error>)> {
    let mut receipts = Vec::new();
    for n in range {
        receipts.push((n, p.append(format!(r#"{{"{key}":{n}}}"#)).await));
    }
    let mut out = Vec::new();
    for (n, r) in receipts {
        out.push((
            n,
            match r {
                Ok(r) => r.await,
                Err(e) => Err(e),
            },
        ));
    }
    out
}

#[tokio::test]
async fn a_restarted_writer_with_auto_claim_stores_everything_once() {
    let s = json_stream("ps-restart-claim").await;
    let first = producer(&s, "job", true);
    assert!(write(&first, "a", 0..30)
        .await
        .iter()
        .all(|(_, r)| r.is_ok()));
    first.detach().await.unwrap();

    // The same id and epoch again, as a restarted process would start.
    let second = producer(&s, "job", true);
    let outcomes = write(&second, "b", 0..30).await;
    for (n, r) in &outcomes {
        let d = r.as_ref().unwrap_or_else(|e| panic!("message {n}: {e}"));
        assert!(!d.duplicate, "message {n} reported as a duplicate");
        assert_eq!(d.epoch, 1);
    }
    second.flush().await.unwrap();
    assert_eq!(second.epoch(), 1);
    let items = raw_json(s.url().as_str()).await;
    assert_eq!(values(&items, "a"), (0..30).collect::<Vec<_>>());
    assert_eq!(values(&items, "b"), (0..30).collect::<Vec<_>>());
    assert_eq!(items.len(), 60);
    assert_eq!(second.metrics().duplicates, 0);
}

#[tokio::test]
async fn a_restarted_writer_without_auto_claim_fails_with_a_session_conflict() {
    let s = json_stream("ps-restart-noclaim").await;
    let first = producer(&s, "job", false);
    assert!(write(&first, "a", 0..30)
        .await
        .iter()
        .all(|(_, r)| r.is_ok()));
    first.detach().await.unwrap();

    let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = errors.clone();
    let second = s
        .producer("job")
        .linger(Duration::ZERO)
        .max_batch_messages(3)
        .on_error(move |e| seen.lock().unwrap().push(e.code()))
        .build()
        .unwrap();
    let outcomes = write(&second, "b", 0..10).await;
    for (n, r) in &outcomes {
        match r {
            Err(Error::ProducerSessionConflict {
                producer_id, epoch, ..
            }) => {
                assert_eq!((producer_id.as_str(), *epoch), ("job", 0));
            }
            other => panic!("message {n}: {other:?}"),
        }
    }
    let err = second.flush().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ProducerSessionConflict);
    assert!(err.to_string().contains("\"job\""), "{err}");
    assert_eq!(
        second.try_append(r#"{"b":99}"#).unwrap_err().code(),
        ErrorCode::ProducerSessionConflict
    );
    assert!(errors
        .lock()
        .unwrap()
        .iter()
        .all(|c| *c == ErrorCode::ProducerSessionConflict));
    assert!(!errors.lock().unwrap().is_empty());
    assert_eq!(second.metrics().messages, 0, "nothing reported delivered");
    let items = raw_json(s.url().as_str()).await;
    assert_eq!(values(&items, "a"), (0..30).collect::<Vec<_>>());
    assert!(values(&items, "b").is_empty());

    // restart() moves to a new epoch and the session writes again.
    second.restart().await.unwrap();
    assert_eq!(second.epoch(), 1);
    second.append(r#"{"b":100}"#).await.unwrap().await.unwrap();
    assert_eq!(values(&raw_json(s.url().as_str()).await, "b"), vec![100]);
}

#[tokio::test]
async fn a_new_epoch_whose_first_batch_fails_goes_on_from_sequence_0() {
    // The server holds epoch 0 of the id; a session at epoch 1 has its first batch refused
    // (an injected 400). The next batch, numbered 1, is answered 400 "new epoch must start
    // at sequence 0" by the reference server: it moves to 0 and everything after is stored.
    let server = TestServer::shared();
    let s = json_stream("ps-new-epoch-400").await;
    let first = producer(&s, "w", false);
    first.append(r#"{"n":0}"#).await.unwrap().await.unwrap();
    first.detach().await.unwrap();

    let second = s
        .producer("w")
        .epoch(1)
        .linger(Duration::ZERO)
        .max_batch_messages(1)
        .retry(fast_retry())
        .build()
        .unwrap();
    let path = path_of(s.url().as_str());
    inject(
        server,
        json!({"path": path, "method": "POST", "status": 400}),
    )
    .await;
    let refused = second.append(r#"{"n":1}"#).await.unwrap().await;
    assert_eq!(refused.unwrap_err().code(), ErrorCode::BadRequest);
    let later = write(&second, "n", 2..6).await;
    for (n, r) in &later {
        let d = r.as_ref().unwrap_or_else(|e| panic!("message {n}: {e}"));
        assert_eq!((d.epoch, d.duplicate), (1, false), "message {n}");
    }
    assert_eq!(later[0].1.as_ref().unwrap().seq, 0);
    // The refusal is still the first failure since the last flush.
    assert_eq!(
        second.flush().await.unwrap_err().code(),
        ErrorCode::BadRequest
    );
    second.detach().await.unwrap();
    let items = raw_json(s.url().as_str()).await;
    assert_eq!(values(&items, "n"), vec![0, 2, 3, 4, 5]);
}

#[tokio::test]
async fn a_restarted_writer_turned_away_once_does_not_take_the_old_write_for_its_own() {
    // The earlier session stored (epoch 0, seq 0); the restarted one's first request is
    // answered 503 (nothing stored), its retry 204 for that old sequence 0. Reporting the
    // message delivered would lose it: it is a session conflict, and with auto-claim the
    // message is stored in a new epoch.
    let server = TestServer::shared();
    for auto_claim in [false, true] {
        let s = json_stream(&format!("ps-restart-503-{auto_claim}")).await;
        let first = producer(&s, "job", false);
        first.append(r#"{"run":1}"#).await.unwrap().await.unwrap();
        first.detach().await.unwrap();

        let second = producer(&s, "job", auto_claim);
        let path = path_of(s.url().as_str());
        inject(
            server,
            json!({"path": path, "method": "POST", "status": 503}),
        )
        .await;
        let outcome = second.append(r#"{"run":2}"#).await.unwrap().await;
        let runs = values(&raw_json(s.url().as_str()).await, "run");
        if auto_claim {
            let d = outcome.unwrap();
            assert_eq!((d.epoch, d.seq, d.duplicate), (1, 0, false));
            assert_eq!(runs, vec![1, 2]);
        } else {
            assert_eq!(
                outcome.unwrap_err().code(),
                ErrorCode::ProducerSessionConflict
            );
            assert_eq!(runs, vec![1]);
        }
    }
}

#[tokio::test]
async fn two_live_sessions_with_one_id_lose_nothing_silently() {
    let s = json_stream("ps-two-live").await;
    let a = producer(&s, "shared", true);
    // A owns epoch 0 once a batch of it is acknowledged.
    a.append(r#"{"a":0}"#).await.unwrap().await.unwrap();
    let b = producer(&s, "shared", true);
    let a2 = a.clone();
    let writer_a = tokio::spawn(async move {
        let mut out = Vec::new();
        for n in 1..60u64 {
            out.push((n, a2.append(format!(r#"{{"a":{n}}}"#)).await));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut settled = Vec::new();
        for (n, r) in out {
            settled.push((
                n,
                match r {
                    Ok(r) => r.await,
                    Err(e) => Err(e),
                },
            ));
        }
        settled
    });
    let outcomes_b = write(&b, "b", 0..60).await;
    let outcomes_a = writer_a.await.unwrap();

    let items = raw_json(s.url().as_str()).await;
    let stored_a = values(&items, "a");
    let stored_b = values(&items, "b");
    // Nothing stored twice.
    let mut dedup = stored_a.clone();
    dedup.dedup();
    assert_eq!(dedup, stored_a);
    // B is the newest claim: it wins and stores everything.
    for (n, r) in &outcomes_b {
        assert!(r.is_ok(), "b {n}: {r:?}");
    }
    assert_eq!(stored_b, (0..60).collect::<Vec<_>>());
    assert_eq!(b.epoch(), 1);
    // A was fenced: what it was told was delivered is stored, the rest failed with StaleEpoch.
    let mut fenced = 0;
    for (n, r) in &outcomes_a {
        match r {
            Ok(_) => assert!(stored_a.contains(n), "a {n} acknowledged but not stored"),
            Err(Error::StaleEpoch {
                producer_id,
                epoch: 0,
                current_epoch: 1,
            }) if producer_id == "shared" => {
                assert!(!stored_a.contains(n), "a {n} failed but stored");
                fenced += 1;
            }
            Err(e) => panic!("a {n}: {e:?}"),
        }
    }
    assert!(fenced > 0, "A was never fenced: {outcomes_a:?}");
    assert_eq!(a.flush().await.unwrap_err().code(), ErrorCode::StaleEpoch);
    assert_eq!(a.epoch(), 0, "the fenced session never claims back");
    assert!(a.metrics().requests < 200, "{:?}", a.metrics());
    assert!(b.metrics().requests < 200, "{:?}", b.metrics());
}

#[tokio::test]
async fn producers_restarted_mid_run_under_faults_store_everything_once() {
    let server = TestServer::shared();
    let s = json_stream("ps-restart-faults").await;
    inject(
        server,
        json!({"path": path_of(s.url().as_str()), "method": "POST", "status": 503,
               "probability": 0.2, "count": 30}),
    )
    .await;
    // Three sessions of one id, each a "process" that stops after its part.
    for (part, key) in ["x", "y", "z"].iter().enumerate() {
        let p = producer(&s, "restarted", true);
        let start = part as u64 * 40;
        let outcomes = write(&p, key, start..start + 40).await;
        assert!(
            outcomes.iter().all(|(_, r)| r.is_ok()),
            "session {part}: {outcomes:?}"
        );
        p.detach().await.unwrap();
    }
    let items = raw_json(s.url().as_str()).await;
    assert_eq!(values(&items, "x"), (0..40).collect::<Vec<_>>());
    assert_eq!(values(&items, "y"), (40..80).collect::<Vec<_>>());
    assert_eq!(values(&items, "z"), (80..120).collect::<Vec<_>>());
}

// ------------------------------------------------------------------ misbehaving servers

/// A loopback HTTP server that answers every producer POST with `answer(epoch, seq)` (a
/// status line and headers) and counts the requests.
async fn misbehaving_server(
    answer: fn(u64, u64) -> String,
) -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/s", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                loop {
                    let end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i;
                        }
                        match sock.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let header = |name: &str| -> u64 {
                        head.lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                (k.trim() == name).then(|| v.trim().parse::<u64>().ok())?
                            })
                            .unwrap_or(0)
                    };
                    let len = header("content-length") as usize;
                    let (epoch, seq) = (header("producer-epoch"), header("producer-seq"));
                    while buf.len() < end + 4 + len {
                        match sock.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    buf.drain(..end + 4 + len);
                    counted.fetch_add(1, Ordering::SeqCst);
                    let reply = format!("{}content-length: 0\r\n\r\n", answer(epoch, seq));
                    if sock.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, count, task)
}

/// Sends one message to a misbehaving server and returns its outcome and the requests made.
async fn against(answer: fn(u64, u64) -> String, auto_claim: bool) -> (Error, Error, usize) {
    let (url, count, server) = misbehaving_server(answer).await;
    let s = DurableStream::builder(url)
        .content_type("application/json")
        .build()
        .unwrap();
    let p = s
        .producer("misbehaved")
        .auto_claim(auto_claim)
        .linger(Duration::ZERO)
        .delivery_timeout(Duration::from_secs(2))
        .retry(fast_retry())
        .build()
        .unwrap();
    let receipt = p.append(r#"{"n":1}"#).await.unwrap();
    // A guard against a hang, far above the delivery timeout.
    let err = tokio::time::timeout(Duration::from_secs(30), receipt)
        .await
        .expect("the receipt settles")
        .unwrap_err();
    let flushed = tokio::time::timeout(Duration::from_secs(30), p.flush())
        .await
        .expect("flush returns")
        .unwrap_err();
    server.abort();
    (err, flushed, count.load(Ordering::SeqCst))
}

#[tokio::test]
async fn a_409_repeating_the_sent_sequence_fails_the_batch_within_its_deadline() {
    fn answer(_epoch: u64, seq: u64) -> String {
        format!(
            "HTTP/1.1 409 Conflict\r\nproducer-expected-seq: {seq}\r\nproducer-received-seq: {seq}\r\n"
        )
    }
    let (err, flushed, requests) = against(answer, false).await;
    assert!(
        matches!(err, Error::Timeout { .. } | Error::SequenceGap { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("expecting the sequence sent")
            || err.code() == ErrorCode::SequenceGap,
        "{err}"
    );
    assert_eq!(flushed.code(), err.code());
    assert!(requests >= 2, "it resent at least once: {requests}");
    assert!(requests <= 66, "bounded resends: {requests}");
}

#[tokio::test]
async fn a_server_that_fences_every_claim_stops_auto_claim_after_a_few_epochs() {
    fn answer(epoch: u64, _seq: u64) -> String {
        format!(
            "HTTP/1.1 403 Forbidden\r\nproducer-epoch: {}\r\n",
            epoch + 1
        )
    }
    let (err, flushed, requests) = against(answer, true).await;
    assert!(matches!(err, Error::StaleEpoch { .. }), "{err:?}");
    assert_eq!(flushed.code(), ErrorCode::StaleEpoch);
    // The first request and one per claim.
    assert_eq!(requests, 6);
}

#[tokio::test]
async fn an_epoch_beyond_the_protocol_maximum_is_a_protocol_error() {
    fn answer(_epoch: u64, _seq: u64) -> String {
        "HTTP/1.1 403 Forbidden\r\nproducer-epoch: 18446744073709551615\r\n".to_owned()
    }
    for auto_claim in [true, false] {
        let (err, flushed, requests) = against(answer, auto_claim).await;
        assert_eq!(err.code(), ErrorCode::ParseError, "{err:?}");
        assert!(err.to_string().contains("Producer-Epoch"), "{err}");
        assert_eq!(flushed.code(), ErrorCode::ParseError);
        assert_eq!(requests, 1);
    }
}

#[tokio::test]
async fn a_claim_at_the_largest_epoch_fails_instead_of_overflowing() {
    fn answer(_epoch: u64, _seq: u64) -> String {
        "HTTP/1.1 403 Forbidden\r\nproducer-epoch: 9007199254740991\r\n".to_owned()
    }
    let (err, _, requests) = against(answer, true).await;
    assert_eq!(err.code(), ErrorCode::ParseError, "{err:?}");
    assert!(err.to_string().contains("no epoch is left"), "{err}");
    assert_eq!(requests, 1);
}
