//! Randomized reads against the reference server while a writer appends: every read mode,
//! from the start or resumed from a saved offset, through injected 503s, dropped connections,
//! delays or a proxy that cuts responses in the middle. Each round's reader must see every
//! message once, in order, and end by itself when the writer closes the stream.
//!
//! `DSC_SOAK_ROUNDS` sets the number of rounds (default 24) and `DSC_SOAK_SEED` the first
//! seed, so that a failure can be replayed alone (the message names its seed).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{client, handle, inject, path_of, soak_seeds, CutProxy, Rng, TestServer};
use durable_streams_client::{
    CloseOptions, CreateOptions, DurableStream, ErrorDecision, ErrorHook, FailedAttempt, LiveMode,
    Offset, ReadOptions, RetryPolicy,
};
use serde_json::{json, Value as Json};

/// Message `n`: its number and a text of a random length (up to ~12 KiB, so that a response
/// spans several reads of the proxy) with quotes, newlines, multi-byte characters and the
/// line separators SSE must carry.
fn message(rng: &mut Rng, n: u64) -> Json {
    let pieces = ["a", "\"", "\n", "é", "😀", "\u{2028}", "\r", "x y", "\\"];
    let len = match rng.below(10) {
        0 => 2000 + rng.below(10_000),
        _ => rng.below(60),
    };
    let text: String = (0..len)
        .map(|_| pieces[rng.below(pieces.len() as u64) as usize])
        .collect();
    json!({ "n": n, "t": text })
}

fn numbers(items: &[Json]) -> Vec<u64> {
    items.iter().map(|v| v["n"].as_u64().unwrap()).collect()
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    /// GETs answered 503 with this probability (in percent).
    Unavailable(u8),
    /// GETs whose connection is dropped before an answer, with this probability (percent).
    Dropped(u8),
    /// GETs delayed by up to 20 ms.
    Delayed,
    /// Responses cut at every n-th chunk by a proxy (mid-body, mid-event), 8 times at most.
    Cut(usize),
}

/// Reads from `from` until the stream is closed; with `stop_after`, stops at the first
/// checkpoint after that many messages instead. Returns the messages kept (those up to the
/// last checkpoint), the offset to resume from and whether the stream was closed. Counts the
/// failed attempts (each then retried as the policy says) in `failures`.
async fn read(
    s: &DurableStream,
    mode: LiveMode,
    from: Offset,
    stop_after: Option<usize>,
    failures: &Arc<AtomicUsize>,
) -> Result<(Vec<Json>, Offset, bool), String> {
    let retry = RetryPolicy::default()
        .with_initial_delay(Duration::from_millis(5))
        .with_max_delay(Duration::from_millis(40));
    let mut opts = ReadOptions::new()
        .live(mode)
        .offset(from.clone())
        .retry(retry);
    let count = failures.clone();
    opts.on_error = Some(ErrorHook::decide(move |_: FailedAttempt| {
        count.fetch_add(1, Ordering::SeqCst);
        async { ErrorDecision::Default }
    }));
    let resp = s.stream(opts).await.map_err(|e| format!("stream: {e}"))?;
    let mut batches = resp
        .json_batches::<Json>()
        .map_err(|e| format!("json_batches: {e}"))?;
    let mut items = Vec::new();
    let mut kept = 0;
    let mut offset = from;
    let mut closed = false;
    while let Some(b) = batches
        .next_batch()
        .await
        .map_err(|e| format!("next_batch: {e}"))?
    {
        items.extend(b.data);
        if b.checkpoint {
            kept = items.len();
            offset = b.offset;
            closed = b.stream_closed;
            if stop_after.is_some_and(|n| kept >= n) {
                break;
            }
        }
    }
    // Messages after the last checkpoint come again from `offset`.
    items.truncate(kept);
    Ok((items, offset, closed))
}

/// Runs round `seed`; returns how many read attempts failed and how many responses the proxy
/// cut (both retried by the reader).
async fn round(seed: u64) -> (usize, usize) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let server = TestServer::shared();
    let mode = [
        LiveMode::Off,
        LiveMode::LongPoll,
        LiveMode::Sse,
        LiveMode::Auto,
    ][rng.below(4) as usize];
    let fault = match rng.below(5) {
        0 => Fault::None,
        1 => Fault::Unavailable(20),
        2 => Fault::Dropped(15),
        3 => Fault::Delayed,
        _ => Fault::Cut(2 + rng.below(6) as usize),
    };
    let resume = rng.below(2) == 0;
    let before = rng.below(40);
    let after = if mode == LiveMode::Off {
        0
    } else {
        1 + rng.below(80)
    };
    let what = format!(
        "seed {seed}: {mode}, {fault:?}, {before} messages before the read and {after} during \
         it{}",
        if resume { ", resumed once" } else { "" }
    );

    let s = handle("soak-read");
    s.create(CreateOptions::json()).await.unwrap();
    let mut all = Vec::new();
    let mut append = |rng: &mut Rng, count: u64| -> Vec<Bytes> {
        (0..count)
            .map(|_| {
                let m = message(rng, all.len() as u64);
                all.push(m.clone());
                Bytes::from(serde_json::to_vec(&m).unwrap())
            })
            .collect()
    };
    // Written before the read, in a few appends.
    let mut left = before;
    while left > 0 {
        let k = 1 + rng.below(left.min(12));
        s.append_batch(append(&mut rng, k), Default::default())
            .await
            .unwrap();
        left -= k;
    }
    // Written during the read: groups, small pauses, then the stream is closed (a catch-up
    // read ends at the end of what was written, so the stream is closed before it).
    let mut groups = Vec::new();
    let mut left = after;
    while left > 0 {
        let k = 1 + rng.below(left.min(8));
        groups.push((append(&mut rng, k), rng.below(6)));
        left -= k;
    }
    let writer = s.clone();
    let write = async move {
        for (group, pause_ms) in groups {
            writer
                .append_batch(group, Default::default())
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        }
        writer.close_with(CloseOptions::default()).await.unwrap();
    };
    // A catch-up read starts once everything is written; a live one reads while it is.
    let write = if mode == LiveMode::Off {
        write.await;
        None
    } else {
        Some(write)
    };

    let path = path_of(s.url().as_str());
    let spec = match fault {
        Fault::Unavailable(p) => Some(json!({"status": 503, "probability": f64::from(p) / 100.0})),
        Fault::Dropped(p) => {
            Some(json!({"dropConnection": true, "probability": f64::from(p) / 100.0}))
        }
        Fault::Delayed => Some(json!({"delayMs": 0, "jitterMs": 20})),
        Fault::None | Fault::Cut(_) => None,
    };
    if let Some(mut spec) = spec {
        spec["path"] = json!(path);
        spec["method"] = json!("GET");
        spec["count"] = json!(100_000);
        inject(server, spec).await;
    }
    let proxy = match fault {
        Fault::Cut(every) => {
            let proxy = CutProxy::start(&server.url, every).await;
            // At most 8 cuts a round: a response of more chunks than `every` is cut every time
            // it is sent again, and a catch-up gives up after 10 failed attempts in a row.
            proxy.budget.store(8, Ordering::SeqCst);
            Some(proxy)
        }
        _ => None,
    };
    let reader_handle = match &proxy {
        Some(proxy) => DurableStream::builder(proxy.url_for(s.url().as_str()))
            .client(client())
            .content_type("application/json")
            .build()
            .unwrap(),
        None => s.clone(),
    };

    let stop_after = resume.then(|| rng.below(before + after + 1) as usize);
    let failures = Arc::new(AtomicUsize::new(0));
    let reading = async {
        let start = Offset::from("-1");
        let (mut seen, offset, closed) =
            read(&reader_handle, mode, start, stop_after, &failures).await?;
        if resume && !closed {
            let (rest, _, _) = read(&reader_handle, mode, offset, None, &failures).await?;
            seen.extend(rest);
        }
        Ok::<_, String>(seen)
    };
    let outcome = tokio::time::timeout(Duration::from_secs(30), async {
        match write {
            None => reading.await,
            Some(write) => tokio::join!(reading, write).0,
        }
    })
    .await;
    // The fault ends with the round (the stream's path is never used again anyway).
    let seen = match outcome {
        Err(_) => panic!("{what}: the read did not end within 30 s"),
        Ok(Err(e)) => panic!("{what}: the read failed: {e}"),
        Ok(Ok(seen)) => seen,
    };
    assert_eq!(
        numbers(&seen),
        (0..all.len() as u64).collect::<Vec<_>>(),
        "{what}: every message once and in order"
    );
    assert_eq!(seen, all, "{what}: the messages as written");
    let cuts = proxy.map_or(0, |p| p.cuts.load(Ordering::SeqCst));
    (failures.load(Ordering::SeqCst), cuts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_every_message_once_through_faults_in_every_mode() {
    let seeds = soak_seeds(24);
    let rounds = seeds.end - seeds.start;
    let (mut failed, mut cut) = (0, 0);
    for seed in seeds {
        let (f, c) = round(seed).await;
        failed += f;
        cut += c;
    }
    println!("{rounds} rounds: {failed} failed read attempts retried, {cut} responses cut");
    // The faults did happen (24 rounds draw about 5 of each kind).
    if rounds >= 24 {
        assert!(
            failed >= 5 && cut >= 2,
            "{failed} failed attempts, {cut} cuts"
        );
    }
}
