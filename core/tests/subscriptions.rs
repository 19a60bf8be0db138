//! Subscriptions against the reference server: management, pull-wake workers, webhooks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::{
    acked_to_tail, client, create_json_stream as json_stream, subscriptions as subs,
    tail_offset as tail,
};
use durable_streams_client::{
    Ack, Error, ErrorCode, PullWakeWorker, RetryPolicy, SignatureCheck, SubscriptionConfig,
    SubscriptionErrorCode, SubscriptionStatus, Subscriptions, WakeOutcome, WebhookVerifier,
    WorkItem, WEBHOOK_DONE,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn prefix(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

/// A pull-wake subscription `sub-<prefix>` over one JSON stream `<prefix>/s`, with its wake
/// stream `<prefix>/wake`: `(wake, path, id)`.
async fn one_stream_subscription(
    s: &Subscriptions,
    name: &str,
    lease: Duration,
) -> (String, String, String) {
    let p = prefix(name);
    let wake = format!("{p}/wake");
    json_stream(s, &wake).await;
    let path = format!("{p}/s");
    json_stream(s, &path).await;
    let id = format!("sub-{p}");
    s.create(
        &id,
        &SubscriptionConfig::pull_wake(&wake)
            .streams([path.clone()])
            .lease(lease),
    )
    .await
    .unwrap();
    (wake, path, id)
}

fn sub_code(e: &Error) -> Option<SubscriptionErrorCode> {
    match e {
        Error::Subscription { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test]
async fn config_is_validated_before_any_request() {
    let bad = [
        SubscriptionConfig::pull_wake("wake"),
        SubscriptionConfig::pull_wake("wake")
            .pattern("a/*")
            .lease(Duration::from_millis(500)),
        SubscriptionConfig::pull_wake("wake")
            .pattern("a/*")
            .lease(Duration::from_secs(601)),
        SubscriptionConfig::pull_wake("/abs").pattern("a/*"),
        SubscriptionConfig::pull_wake("wake").streams(["../x"]),
        SubscriptionConfig::pull_wake("wake").streams(["__ds/x"]),
        SubscriptionConfig::webhook("ftp://h/x").pattern("a/*"),
    ];
    // A root no server listens on: validation must fail first.
    let s = Subscriptions::builder("http://127.0.0.1:9/v1/stream/")
        .client(client())
        .build()
        .unwrap();
    for cfg in bad {
        let e = s.create("x", &cfg).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{cfg:?}: {e}");
    }
}

#[tokio::test]
async fn three_workers_process_every_message_exactly_once() {
    let s = subs();
    let p = prefix("race");
    let wake = format!("{p}/wake");
    json_stream(&s, &wake).await;
    let extra = format!("{p}/extra/a");
    json_stream(&s, &extra).await;
    let id = format!("sub-{p}");
    let cfg = SubscriptionConfig::pull_wake(&wake)
        .pattern(format!("{p}/events/*"))
        .streams([extra.clone()])
        .lease(Duration::from_secs(3))
        .description("race test");
    let (st, sub) = s.create(&id, &cfg).await.unwrap();
    assert_eq!(st, SubscriptionStatus::Created);
    assert_eq!(sub.lease_ttl_ms, 3000);
    let (st, _) = s.create(&id, &cfg).await.unwrap();
    assert_eq!(st, SubscriptionStatus::Confirmed);
    let e = s
        .create(&id, &cfg.clone().lease(Duration::from_secs(4)))
        .await
        .unwrap_err();
    assert_eq!(sub_code(&e), Some(SubscriptionErrorCode::AlreadyExists));
    assert_eq!(
        (e.code(), e.status()),
        (ErrorCode::ConflictExists, Some(409))
    );

    // Membership: add and remove an explicit stream.
    let other = format!("{p}/extra/b");
    s.add_streams(&id, [other.clone()]).await.unwrap();
    assert!(s.get(&id).await.unwrap().acked_offset(&other).is_some());
    s.remove_stream(&id, &other).await.unwrap();
    assert!(s.get(&id).await.unwrap().acked_offset(&other).is_none());

    let mut paths: Vec<String> = (0..3).map(|i| format!("{p}/events/{i}")).collect();
    for path in &paths {
        json_stream(&s, path).await;
    }
    paths.push(extra.clone());

    let seen: Arc<Mutex<Vec<(String, i64, i64)>>> = Arc::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for w in 0..3 {
        let worker = PullWakeWorker::new(s.clone(), &id, format!("w{w}"), &wake).unwrap();
        let seen = seen.clone();
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            worker
                .run(
                    move |d: WorkItem| {
                        let seen = seen.clone();
                        async move {
                            for m in d.json::<serde_json::Value>().unwrap() {
                                let item = (
                                    d.stream.clone(),
                                    m["s"].as_i64().unwrap(),
                                    m["n"].as_i64().unwrap(),
                                );
                                seen.lock().unwrap().push(item);
                            }
                            Ok::<_, String>(())
                        }
                    },
                    async move {
                        let _ = stop.wait_for(|v| *v).await;
                    },
                )
                .await
        }));
    }
    const N: i64 = 5;
    for n in 0..N {
        for (i, path) in paths.iter().enumerate() {
            s.stream(path)
                .unwrap()
                .append_json(&serde_json::json!({"s": i, "n": n}))
                .await
                .unwrap();
        }
    }
    let total = paths.len() * N as usize;
    let mut done = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if seen.lock().unwrap().len() >= total && acked_to_tail(&s, &id, &paths).await {
            done = true;
            break;
        }
    }
    stop_tx.send(true).unwrap();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert!(done, "not all acked: {:?}", s.get(&id).await.unwrap());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), total, "duplicates or losses: {seen:?}");
    let set: BTreeSet<_> = seen.into_iter().collect();
    let want: BTreeSet<_> = paths
        .iter()
        .enumerate()
        .flat_map(|(i, path)| (0..N).map(move |n| (path.clone(), i as i64, n)))
        .collect();
    assert_eq!(set, want);
    s.delete(&id).await.unwrap();
    let e = s.get(&id).await.unwrap_err();
    assert_eq!(sub_code(&e), Some(SubscriptionErrorCode::NotFound));
}

#[tokio::test]
async fn lost_lease_is_fenced_and_late_ack_advances_nothing() {
    let s = subs();
    let (_wake, path, id) = one_stream_subscription(&s, "fence", Duration::from_secs(1)).await;
    let before = s.get(&id).await.unwrap().acked_offset(&path).cloned();
    let st = s.stream(&path).unwrap();
    st.append_json(&serde_json::json!({"n": 1})).await.unwrap();
    st.append_json(&serde_json::json!({"n": 2})).await.unwrap();
    let end = tail(&s, &path).await;

    let first = s.claim(&id, "slow").await.unwrap();
    assert!(!format!("{first:?}").contains(first.token.expose()));
    let e = s.claim(&id, "other").await.unwrap_err();
    assert_eq!(sub_code(&e), Some(SubscriptionErrorCode::AlreadyClaimed));
    tokio::time::sleep(Duration::from_millis(1600)).await; // no heartbeat: the lease ends
    let second = s.claim(&id, "fast").await.unwrap();
    assert!(second.generation > first.generation);

    let late = [Ack {
        stream: path.clone(),
        offset: end.as_str().into(),
    }];
    let e = s.ack(&first, &late, true).await.unwrap_err();
    assert_eq!(sub_code(&e), Some(SubscriptionErrorCode::Fenced));
    assert_eq!(e.code(), ErrorCode::Fenced);
    assert!(!e.to_string().contains(first.token.expose()));
    assert_eq!(
        s.get(&id).await.unwrap().acked_offset(&path).cloned(),
        before
    );

    let r = s.ack(&second, &late, true).await.unwrap();
    assert!(r.ok);
    assert_eq!(
        s.get(&id)
            .await
            .unwrap()
            .acked_offset(&path)
            .unwrap()
            .as_str(),
        end
    );
}

#[tokio::test]
async fn failing_handler_releases_and_work_is_woken_again() {
    let s = subs();
    let (wake, path, id) = one_stream_subscription(&s, "fail", Duration::from_secs(1)).await;
    let before = s.get(&id).await.unwrap().acked_offset(&path).cloned();
    s.stream(&path)
        .unwrap()
        .append_json(&serde_json::json!({"n": 1}))
        .await
        .unwrap();
    let end = tail(&s, &path).await;
    let worker = PullWakeWorker::new(s.clone(), &id, "w", &wake).unwrap();
    let failing = |_d: WorkItem| async { Err::<(), _>("boom") };
    assert_eq!(
        worker.process_once(&failing).await.unwrap(),
        WakeOutcome::HandlerFailed
    );
    assert_eq!(
        s.get(&id).await.unwrap().acked_offset(&path).cloned(),
        before
    );

    // The release made a new wake event on the wake stream.
    let events = s
        .stream(&wake)
        .unwrap()
        .stream(Default::default())
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert!(events.len() >= 2, "{events:?}");

    // A slow handler, kept alive by heartbeats past the 1 s lease.
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let g = got.clone();
    let slow = move |d: WorkItem| {
        let g = g.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            g.lock()
                .unwrap()
                .extend(d.json::<serde_json::Value>().unwrap());
            Ok::<_, String>(())
        }
    };
    assert_eq!(worker.process_once(&slow).await.unwrap(), WakeOutcome::Done);
    assert_eq!(*got.lock().unwrap(), vec![serde_json::json!({"n": 1})]);
    assert_eq!(
        s.get(&id)
            .await
            .unwrap()
            .acked_offset(&path)
            .unwrap()
            .as_str(),
        end
    );
    assert_eq!(
        worker.process_once(&slow).await.unwrap(),
        WakeOutcome::Skipped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_that_fails_on_the_way_is_tried_again() {
    // The server writes one wake event per wake and keeps that wake until it is claimed: a
    // claim lost to a 503 or a dropped connection, not tried again, would leave the work
    // there for good (new messages add no new wake).
    let s = subs();
    let (wake, path, id) = one_stream_subscription(&s, "claim-fault", Duration::from_secs(3)).await;
    let claim_path = format!("/v1/stream/__ds/subscriptions/{id}/claim");
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let g = got.clone();
    let worker = PullWakeWorker::new(s.clone(), &id, "w", &wake).unwrap();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(async move {
        worker
            .run(
                move |d: WorkItem| {
                    let g = g.clone();
                    async move {
                        g.lock()
                            .unwrap()
                            .extend(d.json::<serde_json::Value>().unwrap());
                        Ok::<_, String>(())
                    }
                },
                async move {
                    let _ = stop_rx.wait_for(|v| *v).await;
                },
            )
            .await
    });
    for (n, fault) in [
        serde_json::json!({"status": 503, "count": 2}),
        serde_json::json!({"dropConnection": true, "count": 1}),
        serde_json::json!({"status": 500, "count": 1}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut fault = fault;
        fault["path"] = claim_path.clone().into();
        fault["method"] = "POST".into();
        common::inject(common::subscription_server(), fault.clone()).await;
        s.stream(&path)
            .unwrap()
            .append_json(&serde_json::json!({ "n": n }))
            .await
            .unwrap();
        let mut waited = 0;
        while got.lock().unwrap().len() <= n {
            assert!(
                waited < 100,
                "message {n} not handled in 10 s after {fault}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
        }
    }
    let want: Vec<_> = (0..3).map(|n| serde_json::json!({ "n": n })).collect();
    assert_eq!(*got.lock().unwrap(), want);
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_refused_for_good_is_claimed_again_after_a_pause() {
    // A 400 on the stream's read is not retryable; the worker releases the wake and the server
    // wakes it again at once. It used to claim again straight away (no backoff for errors that
    // are not retryable); now five refusals cost at least five pauses of 100 ms (asserted with
    // room to spare: it took about 30 ms before).
    let s = subs();
    let (wake, path, id) = one_stream_subscription(&s, "refused", Duration::from_secs(3)).await;
    s.stream(&path).unwrap().append(r#"{"n":1}"#).await.unwrap();
    let read_path = format!("/v1/stream/{path}");
    common::inject(
        common::subscription_server(),
        serde_json::json!({"path": read_path, "method": "GET", "status": 400, "count": 5}),
    )
    .await;
    let (tx, rx) = tokio::sync::oneshot::channel::<std::time::Instant>();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let worker = PullWakeWorker::new(s.clone(), &id, "w", &wake).unwrap();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let started = std::time::Instant::now();
    let run = tokio::spawn(async move {
        worker
            .run(
                move |_d: WorkItem| {
                    if let Some(tx) = tx.lock().unwrap().take() {
                        let _ = tx.send(std::time::Instant::now());
                    }
                    async { Ok::<_, String>(()) }
                },
                async move {
                    let _ = stop_rx.wait_for(|v| *v).await;
                },
            )
            .await
    });
    let handled = tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .expect("handled after the refusals")
        .unwrap();
    stop_tx.send(true).unwrap();
    run.await.unwrap().unwrap();
    let took = handled - started;
    assert!(took >= Duration::from_millis(300), "handled after {took:?}");
}

#[tokio::test]
async fn job_queue_form_acks_and_fails() {
    let s = subs();
    let p = prefix("jobs");
    let wake = format!("{p}/wake");
    json_stream(&s, &wake).await;
    let path = format!("{p}/s");
    json_stream(&s, &path).await;
    let id = format!("sub-{p}");
    s.create(
        &id,
        &SubscriptionConfig::pull_wake(&wake)
            .streams([path.clone()])
            .lease(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    let before = s.get(&id).await.unwrap().acked_offset(&path).cloned();
    let mut queue = PullWakeWorker::new(s.clone(), &id, "q", &wake)
        .unwrap()
        .jobs();
    s.stream(&path)
        .unwrap()
        .append_json(&serde_json::json!({"n": 7}))
        .await
        .unwrap();
    let end = tail(&s, &path).await;
    let job = next_job(&mut queue).await;
    assert_eq!(job.item.messages_json(), r#"[{"n":7}]"#);
    job.fail("not now");
    let job = next_job(&mut queue).await; // woken again after the release
    assert_eq!(
        s.get(&id).await.unwrap().acked_offset(&path).cloned(),
        before
    );
    assert_eq!(job.item.stream, path);
    job.ack();
    assert!(acked_at(&s, &id, &path, &end, 50).await);
    queue.stop().await.unwrap();

    // Stopping right after an answer: the ack in flight lands, then the wake is released.
    let mut queue = PullWakeWorker::new(s.clone(), &id, "q2", &wake)
        .unwrap()
        .jobs();
    s.stream(&path)
        .unwrap()
        .append_json(&serde_json::json!({"n": 8}))
        .await
        .unwrap();
    let end = tail(&s, &path).await;
    let job = next_job(&mut queue).await;
    assert_eq!(
        job.item.json::<serde_json::Value>().unwrap(),
        vec![serde_json::json!({"n": 8})]
    );
    job.ack();
    queue.stop().await.unwrap();
    assert_eq!(
        s.get(&id)
            .await
            .unwrap()
            .acked_offset(&path)
            .map(|o| o.as_str().to_owned()),
        Some(end)
    );
    // Released, not held until the lease runs out: another worker claims at once.
    let again = s.claim(&id, "after-stop").await;
    assert!(
        matches!(&again, Err(e) if sub_code(e) == Some(SubscriptionErrorCode::NoPendingWork)),
        "{again:?}"
    );
}

type Hook = (
    Option<String>,
    Vec<u8>,
    tokio::sync::oneshot::Sender<String>,
);

async fn receiver() -> (String, tokio::sync::mpsc::Receiver<Hook>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = sock.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let mut len = 0;
                let mut sig = None;
                for line in head.lines() {
                    if let Some((k, v)) = line.split_once(':') {
                        match k.trim().to_ascii_lowercase().as_str() {
                            "content-length" => len = v.trim().parse().unwrap(),
                            "webhook-signature" => sig = Some(v.trim().to_owned()),
                            _ => {}
                        }
                    }
                }
                while buf.len() < head_end + len {
                    let n = sock.read(&mut chunk).await.unwrap();
                    assert!(n > 0);
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = buf[head_end..head_end + len].to_vec();
                let (otx, orx) = tokio::sync::oneshot::channel();
                tx.send((sig, body, otx)).await.unwrap();
                let answer: String = orx.await.unwrap_or_default();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn webhooks_end_to_end() {
    let s = subs();
    let p = prefix("hook");
    let (url, mut hooks) = receiver().await;
    let path = format!("{p}/wh/a");
    json_stream(&s, &path).await;
    let id = format!("sub-{p}");
    let (_, sub) = s
        .create(
            &id,
            &SubscriptionConfig::webhook(&url)
                .pattern(format!("{p}/wh/*"))
                .lease(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    let signing = sub.webhook.unwrap().signing.unwrap();
    assert_eq!(signing.jwks_url, s.jwks_url().as_str());
    let verifier = WebhookVerifier::new(&signing.jwks_url)
        .unwrap()
        .with_client(client());
    let st = s.stream(&path).unwrap();

    // Synchronous done.
    st.append_json(&serde_json::json!({"n": 1})).await.unwrap();
    let (sig, body, answer) = next(&mut hooks).await;
    let wake = verifier.verify(sig.as_deref(), &body).await.unwrap();
    assert_eq!(wake.subscription_id, id);
    assert_eq!(wake.streams[0].path, path);
    let end1 = tail(&s, &path).await;
    assert_eq!(wake.streams[0].tail_offset.as_str(), end1);
    answer.send(WEBHOOK_DONE.to_owned()).unwrap();
    let mut acked = false;
    for _ in 0..50 {
        if s.get(&id)
            .await
            .unwrap()
            .acked_offset(&path)
            .map(|o| o.as_str())
            == Some(end1.as_str())
        {
            acked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(acked, "synchronous done did not ack");

    // Asynchronous callback.
    st.append_json(&serde_json::json!({"n": 2})).await.unwrap();
    let (sig, body, answer) = next(&mut hooks).await;
    let wake = verifier.verify(sig.as_deref(), &body).await.unwrap();
    assert!(!format!("{wake:?}").contains(wake.token.expose()));
    answer.send("{}".to_owned()).unwrap();
    let end2 = tail(&s, &path).await;
    let acks = [Ack {
        stream: path.clone(),
        offset: end2.as_str().into(),
    }];
    let r = s.callback(&wake, &acks, true).await.unwrap();
    assert!(r.ok && !r.next_wake);
    assert_eq!(
        s.get(&id)
            .await
            .unwrap()
            .acked_offset(&path)
            .unwrap()
            .as_str(),
        end2
    );
    let e = s.callback(&wake, &acks, true).await.unwrap_err();
    assert_eq!(sub_code(&e), Some(SubscriptionErrorCode::Fenced));

    // Rejections, each naming its check.
    let check = |r: durable_streams_client::Result<_>| match r {
        Err(Error::WebhookSignature { check }) => check,
        other => panic!("{other:?}"),
    };
    let mut tampered = body.clone();
    let i = tampered.iter().position(|b| *b == b'2').unwrap();
    tampered[i] = b'3';
    assert_eq!(
        check(verifier.verify(sig.as_deref(), &tampered).await),
        SignatureCheck::BadSignature
    );
    let later = SystemTime::now() + Duration::from_secs(600);
    assert_eq!(
        check(verifier.verify_at(sig.as_deref(), &body, later).await),
        SignatureCheck::TimestampOutOfWindow
    );
    let sig = sig.unwrap();
    let kid = sig.split(',').find_map(|p| p.strip_prefix("kid=")).unwrap();
    let unknown = sig.replace(kid, "ds_unknown");
    assert_eq!(
        check(verifier.verify(Some(&unknown), &body).await),
        SignatureCheck::UnknownKey
    );
    assert_eq!(
        check(verifier.verify(None, &body).await),
        SignatureCheck::MissingHeader
    );
    assert_eq!(
        check(verifier.verify(Some("t=1"), &body).await),
        SignatureCheck::MalformedHeader
    );
    s.delete(&id).await.unwrap();
}

async fn next(hooks: &mut tokio::sync::mpsc::Receiver<Hook>) -> Hook {
    tokio::time::timeout(Duration::from_secs(10), hooks.recv())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn job_messages_are_the_texts_the_server_sent() {
    // Handlers get each message as the server sent it: keys in their order (not sorted, as a
    // parse into `serde_json::Value` without `preserve_order` made them), numbers as written.
    let s = subs();
    let (wake, path, id) = one_stream_subscription(&s, "exact", Duration::from_secs(3)).await;
    let stream = s.stream(&path).unwrap();
    for m in [
        r#"{"b":1,"a":{"z":null,"y":[2.5,"\u00e9"]}}"#,
        "12.50",
        r#""x""#,
    ] {
        stream.append(m).await.unwrap();
    }
    let sent = stream
        .stream(durable_streams_client::ReadOptions::new())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Started after the appends: its first claim gets all three in one read.
    let mut queue = PullWakeWorker::new(s.clone(), &id, "q", &wake)
        .unwrap()
        .jobs();
    let job = next_job(&mut queue).await;
    assert_eq!(job.item.messages_json(), sent);
    let texts: Vec<&str> = job.item.messages.iter().map(|m| m.get()).collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(
        texts[0].starts_with(r#"{"b":1,"a":{"z":null,"y":["#),
        "{texts:?}"
    );
    let values = job.item.json::<serde_json::Value>().unwrap();
    assert_eq!(values[1], serde_json::json!(12.5));
    assert_eq!(values[0]["a"]["y"][1], "\u{e9}");
    // A message that is not the type asked for names its index.
    let e = job.item.json::<u32>().unwrap_err().to_string();
    assert!(e.contains("message 0"), "{e}");
    job.ack();
    queue.stop().await.unwrap();
}

/// Whether `path`'s acked offset in subscription `id` reaches `end` within `tries` polls of
/// 100 ms.
async fn acked_at(s: &Subscriptions, id: &str, path: &str, end: &str, tries: u32) -> bool {
    for _ in 0..tries {
        let sub = s.get(id).await.unwrap();
        if sub.acked_offset(path).map(|o| o.as_str()) == Some(end) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn next_job(q: &mut durable_streams_client::WorkQueue) -> durable_streams_client::Job {
    tokio::time::timeout(Duration::from_secs(10), q.next())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_is_retried_with_backoff_not_in_a_loop() {
    // The server wakes a released subscription again at once. A worker that claimed on every
    // such wake called an always-failing handler about 240 times a second (claim, read and
    // release each time); it now pauses at least 100 ms, longer as failures go on.
    let s = subs();
    let (wake, path, id) = one_stream_subscription(&s, "backoff", Duration::from_secs(3)).await;
    s.stream(&path).unwrap().append(r#"{"n":1}"#).await.unwrap();
    let end = tail(&s, &path).await;
    let calls: Arc<Mutex<Vec<std::time::Instant>>> = Arc::default();
    let fail_first = Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
    let (c, f) = (calls.clone(), fail_first.clone());
    let worker = PullWakeWorker::new(s.clone(), &id, "w", &wake).unwrap();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(async move {
        worker
            .run(
                move |_d: WorkItem| {
                    let mut calls = c.lock().unwrap();
                    calls.push(std::time::Instant::now());
                    let fail = calls.len() <= f.load(std::sync::atomic::Ordering::SeqCst);
                    async move {
                        if fail {
                            Err("down")
                        } else {
                            Ok(())
                        }
                    }
                },
                async move {
                    let _ = stop_rx.wait_for(|v| *v).await;
                },
            )
            .await
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let failed = calls.lock().unwrap().len();
    // At most one call per 100 ms pause (about 20), with room for a fast machine; it was ~500.
    assert!((2..=40).contains(&failed), "{failed} handler calls in 2 s");
    // The handler recovers: the work is acked on a later try.
    fail_first.store(failed, std::sync::atomic::Ordering::SeqCst);
    let acked = acked_at(&s, &id, &path, &end, 150).await;
    stop_tx.send(true).unwrap();
    run.await.unwrap().unwrap();
    assert!(acked, "not acked after the handler recovered");
    let calls = calls.lock().unwrap();
    for pair in calls.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(90),
            "handler called again after {gap:?}"
        );
    }
}

#[tokio::test]
async fn an_endless_jwk_set_is_refused_at_its_limit() {
    // A JWK Set endpoint that never ends its body: the verifier stops reading at 1 MiB (it
    // used to read the whole body into memory before looking at its size).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = sent.clone();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut head = [0u8; 4096];
        let _ = sock.read(&mut head).await;
        let _ = sock
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                  transfer-encoding: chunked\r\n\r\n",
            )
            .await;
        let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
        while sock.write_all(chunk.as_bytes()).await.is_ok() {
            counted.fetch_add(0x10000, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let verifier = WebhookVerifier::new(format!("http://{addr}/jwks.json")).unwrap();
    use base64::Engine as _;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 64]);
    let now = SystemTime::now();
    let t = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let header = format!("t={t},kid=k1,ed25519={sig}");
    let e = tokio::time::timeout(
        Duration::from_secs(20),
        verifier.verify_at(Some(&header), b"{}", now),
    )
    .await
    .expect("the verifier gave up in time")
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ParseError, "{e}");
    assert!(e.to_string().contains("larger than 1048576 bytes"), "{e}");
    // What the server got into the socket before the client stopped: the limit plus buffers.
    let sent = sent.load(std::sync::atomic::Ordering::SeqCst);
    assert!(sent < 16 << 20, "{sent} bytes sent");
}

/// Appends `n` JSON messages of about 30 KB each (`{"n": i, "pad": "xxx…"}`) to `path`: 8 of
/// them make an answer over 64 KiB, which the reader hands on in several parts.
async fn append_big(s: &Subscriptions, path: &str, n: u64) {
    let st = s.stream(path).unwrap();
    let pad = "x".repeat(30_000);
    for i in 0..n {
        st.append_json(&serde_json::json!({ "n": i, "pad": pad }))
            .await
            .unwrap();
    }
}

/// The `n` fields of an item's messages.
fn numbers(d: &WorkItem) -> Vec<u64> {
    d.json::<serde_json::Value>()
        .unwrap()
        .iter()
        .map(|v| v["n"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_in_parts_is_handed_over_up_to_its_resume_point() {
    // An answer bigger than 64 KiB arrives in parts; only its end is an offset to resume from.
    // Each item must end at such an offset (its parts used to be handed over as items whose
    // offset was their start, so a handler following the documented rule skipped them, and
    // the closing part was never acked).
    let s = subs();
    let (_wake, path, id) = one_stream_subscription(&s, "parts", Duration::from_secs(10)).await;
    let start = s
        .get(&id)
        .await
        .unwrap()
        .acked_offset(&path)
        .cloned()
        .unwrap();
    append_big(&s, &path, 8).await;
    let end = tail(&s, &path).await;
    // (start_offset, offset, numbers) of each item, and the numbers the documented rule
    // handles: skip an item whose offset is not past the stored one.
    type Seen = Vec<(String, String, Vec<u64>)>;
    let items: Arc<Mutex<Seen>> = Arc::default();
    let handled: Arc<Mutex<(String, Vec<u64>)>> =
        Arc::new(Mutex::new((start.as_str().to_owned(), Vec::new())));
    let (it, h) = (items.clone(), handled.clone());
    let handler = move |d: WorkItem| {
        let (it, h) = (it.clone(), h.clone());
        async move {
            let ns = numbers(&d);
            it.lock().unwrap().push((
                d.start_offset.as_str().to_owned(),
                d.offset.as_str().to_owned(),
                ns.clone(),
            ));
            let mut h = h.lock().unwrap();
            if d.offset.as_str() > h.0.as_str() {
                h.0 = d.offset.as_str().to_owned();
                h.1.extend(ns);
            }
            Ok::<_, String>(())
        }
    };
    let worker = PullWakeWorker::new(s.clone(), &id, "w", "unused").unwrap();
    assert_eq!(
        worker.process_once(&handler).await.unwrap(),
        WakeOutcome::Done
    );
    let items = items.lock().unwrap().clone();
    assert_eq!(
        handled.lock().unwrap().1,
        (0..8).collect::<Vec<_>>(),
        "{items:?}"
    );
    // The items chain from the acked offset to the tail, each ending past its start.
    let mut at = start.as_str().to_owned();
    for (from, to, _) in &items {
        assert_eq!(from, &at);
        assert!(to > from, "{items:?}");
        at = to.clone();
    }
    assert_eq!(at, end);
    let acked = s.get(&id).await.unwrap().acked_offset(&path).cloned();
    assert_eq!(acked.map(|o| o.as_str().to_owned()), Some(end));
    // Everything was acked: nothing is pending, nothing is handed over again.
    assert_eq!(
        worker.process_once(&handler).await.unwrap(),
        WakeOutcome::Skipped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_answer_is_handed_over_once() {
    // A running worker used to hand the same big answer over again and again (its wake ended
    // without progress, so the server woke it at once).
    let s = subs();
    let (wake, path, id) = one_stream_subscription(&s, "once", Duration::from_secs(10)).await;
    append_big(&s, &path, 8).await;
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let sn = seen.clone();
    let worker = PullWakeWorker::new(s.clone(), &id, "w", &wake).unwrap();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(async move {
        worker
            .run(
                move |d: WorkItem| {
                    sn.lock().unwrap().extend(numbers(&d));
                    async { Ok::<_, String>(()) }
                },
                async move {
                    let _ = stop_rx.wait_for(|v| *v).await;
                },
            )
            .await
    });
    for _ in 0..200 {
        if seen.lock().unwrap().len() >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Long enough for several rounds of redelivery (each took about 30 ms).
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_tx.send(true).unwrap();
    run.await.unwrap().unwrap();
    assert_eq!(*seen.lock().unwrap(), (0..8).collect::<Vec<_>>());
    assert!(acked_to_tail(&s, &id, &[path]).await);
}

#[tokio::test]
async fn an_answer_over_max_item_bytes_fails_the_wake_without_a_handover_fails_the_wake_without_a_handover(
) {
    let s = subs();
    let (_wake, path, id) = one_stream_subscription(&s, "limit", Duration::from_secs(10)).await;
    let start = s.get(&id).await.unwrap().acked_offset(&path).cloned();
    append_big(&s, &path, 8).await;
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = calls.clone();
    let handler = move |_: WorkItem| {
        c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { Ok::<_, String>(()) }
    };
    let worker = PullWakeWorker::new(s.clone(), &id, "w", "unused")
        .unwrap()
        .max_item_bytes(100_000);
    let e = worker.process_once(&handler).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ParseError, "{e}");
    assert!(
        e.to_string().contains("max_item_bytes (100000 bytes)"),
        "{e}"
    );
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(
        s.get(&id).await.unwrap().acked_offset(&path).cloned(),
        start
    );
    // With room for the answer the same wake goes through.
    let worker = PullWakeWorker::new(s.clone(), &id, "w", "unused")
        .unwrap()
        .max_item_bytes(1 << 20);
    assert_eq!(
        worker.process_once(&handler).await.unwrap(),
        WakeOutcome::Done
    );
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(acked_to_tail(&s, &id, &[path]).await);
}

/// A raw HTTP/1.1 response with a JSON body, closing its connection.
fn http_answer(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{headers}\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A server on 127.0.0.1 answering its n-th request with `answers[n]` (the last one once they
/// run out), one request per connection: its URL and the number of requests it got.
async fn canned_server(answers: Vec<String>) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            // The head only: the requests sent here have no body worth reading.
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let answer = &answers[n.min(answers.len() - 1)];
            let _ = sock.write_all(answer.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
    });
    (url, count)
}

#[tokio::test]
async fn a_coded_503_is_retried_after_its_retry_after() {
    // A JSON error code on a 5xx (or 429) made it a subscription error: not retryable, its
    // Retry-After ignored.
    let busy = http_answer(
        "503 Service Unavailable",
        "retry-after: 1\r\n",
        r#"{"error":{"code":"UNAVAILABLE","message":"restarting"}}"#,
    );
    let sub = r#"{"id":"sub-r","type":"pull-wake","wake_stream":"w","lease_ttl_ms":30000,
        "streams":[{"path":"a/b","link_type":"explicit","acked_offset":"0000_0007"}]}"#;
    let (url, count) =
        canned_server(vec![busy.clone(), busy, http_answer("200 OK", "", sub)]).await;
    let handle = |retry: RetryPolicy| {
        Subscriptions::builder(format!("{url}/v1/stream/"))
            .client(client())
            .retry(retry)
            .build()
            .unwrap()
    };
    let e = handle(RetryPolicy::none()).get("sub-r").await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(e.status(), Some(503));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(e.server_message(), Some("UNAVAILABLE: restarting"));
    // Retried, after the second answer's Retry-After (the policy's own delays are 1 ms).
    let quick = RetryPolicy::default()
        .with_initial_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(1));
    let started = std::time::Instant::now();
    let got = handle(quick).get("sub-r").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(
        got.acked_offset("a/b").map(|o| o.as_str()),
        Some("0000_0007")
    );
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_failing_jwk_set_is_not_fetched_for_every_unknown_key() {
    // The refresh limit was recorded only after a fetch succeeded: while the JWK Set endpoint
    // failed, every delivery with a new `kid` (forged ones too) fetched it again.
    let (url, count) = canned_server(vec![http_answer(
        "500 Internal Server Error",
        "",
        r#"{"error":"down"}"#,
    )])
    .await;
    let verifier = WebhookVerifier::new(format!("{url}/jwks.json"))
        .unwrap()
        .with_client(client());
    use base64::Engine as _;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 64]);
    let now = SystemTime::now();
    let t = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut errors = Vec::new();
    for i in 0..5 {
        let header = format!("t={t},kid=forged-{i},ed25519={sig}");
        errors.push(
            verifier
                .verify_at(Some(&header), b"{}", now)
                .await
                .unwrap_err(),
        );
    }
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(errors[0].status(), Some(500), "{:?}", errors[0]);
    for e in &errors[1..] {
        assert!(
            matches!(
                e,
                Error::WebhookSignature {
                    check: SignatureCheck::UnknownKey
                }
            ),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn a_fenced_done_after_a_lost_answer_says_it_may_have_landed() {
    // The first `done` lands but its answer is lost (the connection closes): its retry is
    // answered FENCED, which alone would read "advanced nothing".
    let fenced = http_answer("409 Conflict", "", r#"{"error":{"code":"FENCED"}}"#);
    let (url, count) = canned_server(vec![String::new(), fenced]).await;
    let quick = RetryPolicy::default()
        .with_initial_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(1));
    let s = Subscriptions::builder(format!("{url}/v1/stream/"))
        .client(client())
        .retry(quick)
        .build()
        .unwrap();
    let wake: durable_streams_client::Wake = serde_json::from_str(
        r#"{"subscription_id":"sub-f","wake_id":"w1","generation":3,"token":"t","streams":[]}"#,
    )
    .unwrap();
    let e = s.ack(&wake, &[], true).await.unwrap_err();
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(sub_code(&e), Some(SubscriptionErrorCode::Fenced), "{e:?}");
    assert!(
        e.server_message().is_some_and(
            |m| m.contains("an earlier attempt got no answer and may have been applied")
        ),
        "{e}"
    );
    // A first attempt answered FENCED is plain.
    let (url, _) = canned_server(vec![http_answer(
        "409 Conflict",
        "",
        r#"{"error":{"code":"FENCED"}}"#,
    )])
    .await;
    let s = Subscriptions::builder(format!("{url}/v1/stream/"))
        .client(client())
        .build()
        .unwrap();
    let e = s.release(&wake).await.unwrap_err();
    assert_eq!(sub_code(&e), Some(SubscriptionErrorCode::Fenced), "{e:?}");
    assert_eq!(e.server_message(), None, "{e}");
}
