//! Randomized pull-wake rounds against the reference server: 1–3 workers share one
//! subscription over 1–4 streams while a writer appends to them; handlers are slow or fail at
//! random, and the server fails claims, acks, releases or reads now and then. Every message
//! must be handled successfully exactly once (a failed delivery comes again; the 3 s lease is
//! never outlived here; the server's injected failures come before it handles a request),
//! every stream's acked offset must reach its tail, and the workers must stop when asked.
//!
//! `DSC_SOAK_ROUNDS` sets the number of rounds (default 6) and `DSC_SOAK_SEED` the first seed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    acked_to_tail, create_json_stream, inject, soak_seeds, subscription_server, subscriptions, Rng,
};
use durable_streams_client::{PullWakeWorker, SubscriptionConfig, WorkItem};
use serde_json::json;

/// Runs round `seed`; returns how many deliveries its handlers failed on purpose, and how
/// many faults it armed on the server.
async fn round(seed: u64) -> (usize, usize) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let workers = 1 + rng.below(3);
    let streams = 1 + rng.below(4);
    let messages = 10 + rng.below(50);
    let fail_percent = [0, 15, 30][rng.below(3) as usize];
    // Where the server fails requests now and then: nowhere, claims, acks, releases, or reads
    // of the streams. The test server fails them before handling them (a 503, a 500, a
    // dropped connection) or handles them late.
    let faults = ["none", "claim", "ack", "release", "read"][rng.below(5) as usize];
    let what = format!(
        "seed {seed}: {workers} workers, {streams} streams, {messages} messages, handlers \
         failing {fail_percent} % of deliveries, faults on {faults}"
    );

    let s = subscriptions();
    let p = format!("soak-sub-{}-{seed}", std::process::id());
    let wake = format!("{p}/wake");
    create_json_stream(&s, &wake).await;
    let paths: Vec<String> = (0..streams).map(|i| format!("{p}/events/{i}")).collect();
    for path in &paths {
        create_json_stream(&s, path).await;
    }
    let id = format!("sub-{p}");
    let cfg = SubscriptionConfig::pull_wake(&wake)
        .pattern(format!("{p}/events/*"))
        .lease(Duration::from_secs(3));
    s.create(&id, &cfg).await.unwrap();

    // (stream, message number) -> successful deliveries.
    let handled: Arc<Mutex<BTreeMap<(String, u64), usize>>> = Arc::default();
    let failed = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let worker = PullWakeWorker::new(s.clone(), &id, format!("w{w}"), &wake).unwrap();
        let handled = handled.clone();
        let failed = failed.clone();
        let mut stop = stop_rx.clone();
        // Each worker draws its own failures and pauses. Where handlers fail at all, a
        // worker's first delivery always fails, so that every such round fails at least one
        // (deliveries carry several messages, so a round may see only a few of them).
        let rng = Arc::new(Mutex::new((Rng(rng.next() | 1), fail_percent > 0)));
        tasks.push(tokio::spawn(async move {
            worker
                .run(
                    move |d: WorkItem| {
                        let handled = handled.clone();
                        let failed = failed.clone();
                        let (fail, pause) = {
                            let mut g = rng.lock().unwrap();
                            let (r, first) = &mut *g;
                            let fail = std::mem::take(first) || r.below(100) < fail_percent;
                            (fail, r.below(30))
                        };
                        async move {
                            tokio::time::sleep(Duration::from_millis(pause)).await;
                            if fail {
                                failed.fetch_add(1, Ordering::SeqCst);
                                return Err("failed on purpose".to_owned());
                            }
                            let mut h = handled.lock().unwrap();
                            for m in d.json::<serde_json::Value>().unwrap() {
                                let n = m["n"].as_u64().unwrap();
                                *h.entry((d.stream.clone(), n)).or_default() += 1;
                            }
                            Ok(())
                        }
                    },
                    async move {
                        let _ = stop.wait_for(|v| *v).await;
                    },
                )
                .await
        }));
    }

    // The writer: message n goes to a random stream, in groups with small pauses; before a
    // group, now and then, a fault is armed for the next one or two requests of its kind.
    let mut want: BTreeMap<(String, u64), usize> = BTreeMap::new();
    let mut n = 0;
    let mut armed = 0;
    while n < messages {
        if faults != "none" && rng.below(2) == 0 {
            let (path, method) = match faults {
                "read" => (
                    format!("/v1/stream/{}", paths[rng.below(streams) as usize]),
                    "GET",
                ),
                tail => (format!("/v1/stream/__ds/subscriptions/{id}/{tail}"), "POST"),
            };
            let mut fault = match rng.below(4) {
                0 => json!({"status": 503}),
                1 => json!({"status": 500}),
                2 => json!({"dropConnection": true}),
                _ => json!({"delayMs": rng.below(50)}),
            };
            fault["path"] = path.into();
            fault["method"] = method.into();
            fault["count"] = (1 + rng.below(2)).into();
            inject(subscription_server(), fault).await;
            armed += 1;
        }
        let k = (1 + rng.below(6)).min(messages - n);
        for _ in 0..k {
            let path = &paths[rng.below(streams) as usize];
            s.stream(path)
                .unwrap()
                .append_json(&json!({ "n": n }))
                .await
                .unwrap();
            want.insert((path.clone(), n), 1);
            n += 1;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
    }

    // Everything handled and acked, within 30 s.
    let mut done = false;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if handled.lock().unwrap().len() < want.len() {
            continue;
        }
        if acked_to_tail(&s, &id, &paths).await {
            done = true;
            break;
        }
    }
    stop_tx.send(true).unwrap();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .unwrap_or_else(|_| panic!("{what}: a worker did not stop within 10 s"))
            .unwrap()
            .unwrap_or_else(|e| panic!("{what}: a worker failed: {e}"));
    }
    let handled = handled.lock().unwrap().clone();
    assert!(
        done,
        "{what}: not everything handled and acked in 30 s: {} of {} handled, {:?}",
        handled.len(),
        want.len(),
        s.get(&id).await.unwrap()
    );
    assert_eq!(handled, want, "{what}: every message handled exactly once");
    s.delete(&id).await.unwrap();
    (failed.load(Ordering::SeqCst), armed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_handle_every_message_once_through_failing_handlers() {
    let seeds = soak_seeds(6);
    let rounds = seeds.end - seeds.start;
    let (mut failed, mut armed) = (0, 0);
    for seed in seeds {
        let (f, a) = round(seed).await;
        failed += f;
        armed += a;
    }
    println!(
        "{rounds} rounds: {failed} deliveries failed on purpose and came again; {armed} \
         server faults armed"
    );
    if rounds >= 6 {
        assert!(
            failed > 0 && armed > 0,
            "no handler failed or no fault was armed: the rounds tested less than they say"
        );
    }
}
