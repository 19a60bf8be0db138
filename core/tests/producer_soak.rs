//! Randomized producer configurations against the reference server, some with injected 503s
//! or jittered server delays: every message must arrive once and in each writer's order, and
//! no append, receipt or flush may wait out its timeout. The configurations are drawn from a
//! fixed seed, the timing is not; `DSC_SOAK_ROUNDS` runs more rounds (the default is 40), and
//! `DSC_SOAK_SEED` another sequence. Against the producer before faf3b25 (the linger stall),
//! three runs of 300 rounds each failed, at rounds 42, 72 and 14, with a buffer timeout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{env_u64, handle, inject, path_of, raw_json, Rng, TestServer};
use durable_streams_client::{CreateOptions, RetryPolicy};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_configurations_deliver_every_message_once_without_stalling() {
    let rounds = env_u64("DSC_SOAK_ROUNDS").unwrap_or(40);
    let mut rng = Rng(env_u64("DSC_SOAK_SEED").unwrap_or(0x9E37_79B9_7F4A_7C15) | 1);
    let limit = Duration::from_secs(10);
    for round in 0..rounds {
        let linger = rng.below(300);
        let buffer = 512 + rng.below(8_000);
        let batch = 64 + rng.below(4_000);
        let in_flight = 1 + rng.below(5);
        let writers = 1 + rng.below(3);
        let n = 200 + rng.below(2_000);
        let fault = rng.below(3);
        let cfg = format!(
            "round {round}: linger {linger} µs, buffer {buffer}, batch {batch}, in flight \
             {in_flight}, writers {writers} × {n}, fault {fault}"
        );
        let s = handle(&format!("p-soak-{round}"));
        s.create(CreateOptions::json()).await.unwrap();
        let path = path_of(s.url().as_str());
        let fault_spec = match fault {
            1 => Some(json!({"status": 503, "probability": 0.2})),
            2 => Some(json!({"delayMs": 0, "jitterMs": 5})),
            _ => None,
        };
        if let Some(mut spec) = fault_spec {
            spec["path"] = json!(path);
            spec["method"] = json!("POST");
            spec["count"] = json!(100_000);
            inject(TestServer::shared(), spec).await;
        }
        let p = s
            .producer("soak")
            .linger(Duration::from_micros(linger))
            .max_buffered_bytes(usize::try_from(buffer).unwrap())
            .max_batch_bytes(usize::try_from(batch).unwrap())
            .max_in_flight(usize::try_from(in_flight).unwrap())
            .buffer_timeout(limit)
            .retry(
                RetryPolicy::default()
                    .with_initial_delay(Duration::from_millis(1))
                    .with_max_delay(Duration::from_millis(20)),
            )
            .build()
            .unwrap();
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let (p, cfg) = (p.clone(), cfg.clone());
                tokio::spawn(async move {
                    let mut last = None;
                    for i in 0..n {
                        let msg = Bytes::from(format!(r#"{{"w":{w},"i":{i}}}"#));
                        let r = p.append(msg).await;
                        last = Some(r.unwrap_or_else(|e| panic!("{cfg}: append {i}: {e}")));
                    }
                    tokio::time::timeout(limit, last.unwrap())
                        .await
                        .unwrap_or_else(|_| panic!("{cfg}: writer {w}'s last receipt never came"))
                        .unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        tokio::time::timeout(limit, p.flush())
            .await
            .unwrap_or_else(|_| panic!("{cfg}: flush hung"))
            .unwrap();
        p.detach().await.unwrap();
        let items = raw_json(s.url().as_str()).await;
        assert_eq!(items.len() as u64, n * writers, "{cfg}");
        for w in 0..writers {
            let mine: Vec<u64> = items
                .iter()
                .filter(|v| v["w"] == w)
                .filter_map(|v| v["i"].as_u64())
                .collect();
            assert_eq!(mine, (0..n).collect::<Vec<_>>(), "{cfg}: writer {w}");
        }
    }
}
