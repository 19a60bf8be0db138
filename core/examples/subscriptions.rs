//! Subscriptions as a work queue: a pull-wake subscription over `example-subs/orders/*`, two
//! orders appended, one worker handling them, acked offsets read back from the server.
//! Safe to run again against the same server (the subscription is re-confirmed).
//!
//! `cargo run --example subscriptions -- http://127.0.0.1:4437`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use durable_streams_client::{
    CreateOptions, PullWakeWorker, SubscriptionConfig, Subscriptions, WorkItem,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:4437".to_owned());
    let subs = Subscriptions::new(format!("{base}/v1/stream/"))?;

    // The wake stream and the work streams are ordinary streams (create is idempotent).
    subs.stream("example-subs/wake")?
        .create(CreateOptions::json())
        .await?;
    let orders = subs.stream("example-subs/orders/eu")?;
    orders.create(CreateOptions::json()).await?;

    let config = SubscriptionConfig::pull_wake("example-subs/wake")
        .pattern("example-subs/orders/*")
        .lease(Duration::from_secs(10))
        .description("example order processor");
    let (status, _) = subs.create("example-subs-orders", &config).await?;
    println!("subscription: {status:?}");

    orders.append_json(&serde_json::json!({"order": 1})).await?;
    orders.append_json(&serde_json::json!({"order": 2})).await?;

    let handled = Arc::new(AtomicUsize::new(0));
    let worker = PullWakeWorker::new(
        subs.clone(),
        "example-subs-orders",
        "worker-1",
        "example-subs/wake",
    )?;
    let h = handled.clone();
    let stop = async {
        // Stop once this run's two orders are handled (or after 10 s).
        for _ in 0..100 {
            if handled.load(Ordering::SeqCst) >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    worker
        .run(
            move |item: WorkItem| {
                let h = h.clone();
                async move {
                    for m in &item.messages {
                        // Idempotency key: (item.stream, item.offset) with the effects.
                        println!("{} @ {}: {m}", item.stream, item.offset);
                        h.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok::<_, std::io::Error>(())
                }
            },
            stop,
        )
        .await?;

    let sub = subs.get("example-subs-orders").await?;
    for link in &sub.streams {
        println!("{} acked up to {}", link.path, link.acked_offset);
    }
    if handled.load(Ordering::SeqCst) < 2 {
        return Err("the worker did not handle both orders".into());
    }
    Ok(())
}
