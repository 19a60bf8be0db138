//! The Rust contenders and the interface they implement.
//!
//! A contender implements [`Contender`]: one method per scenario, each taking the driver's
//! [`Job`] and returning an [`Outcome`]. Methods a contender does not implement keep the
//! default body, which fails with "not implemented"; the driver only calls the scenarios a
//! contender's manifest (bench/contenders/<id>.json) lists. To add a Rust contender, write one
//! file here, add it to [`run`], and add a manifest.

pub mod core;
pub mod raw;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::job::{Job, Outcome};
use crate::util::{err, Res};

/// How a live reader follows the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveMode {
    Sse,
    LongPoll,
}

/// One method per scenario; see bench/README.md for what each must do and report.
pub trait Contender {
    /// producer-json: append `job.count` JSON messages in a tight loop, then flush.
    fn producer_json(&self, job: &Job) -> impl Future<Output = Res<Outcome>> {
        unsupported(job)
    }
    /// producer-bytes: the same with `job.msg_bytes` (64 KiB) binary messages.
    fn producer_bytes(&self, job: &Job) -> impl Future<Output = Res<Outcome>> {
        unsupported(job)
    }
    /// append-c1 / append-c8: `job.count` awaited single appends from `job.concurrency`
    /// concurrent callers; report every append's latency.
    fn append_latency(&self, job: &Job) -> impl Future<Output = Res<Outcome>> {
        unsupported(job)
    }
    /// catchup-read: read the whole (pre-filled) stream from the start, parse every message,
    /// report the count and the checksum (sum of `i`).
    fn catchup_read(&self, job: &Job) -> impl Future<Output = Res<Outcome>> {
        unsupported(job)
    }
    /// live-sse / live-longpoll: subscribe, then append `job.count` messages paced at
    /// `job.rate`; report append-to-delivery latencies.
    fn live_tail(&self, job: &Job, mode: LiveMode) -> impl Future<Output = Res<Outcome>> {
        let _ = mode;
        unsupported(job)
    }
    /// overload: offer `job.rate` messages/s (twice what the throttled server takes) for
    /// `job.count / job.rate` seconds, then flush; sample RSS every 100 ms.
    fn overload(&self, job: &Job) -> impl Future<Output = Res<Outcome>> {
        unsupported(job)
    }
}

async fn unsupported(job: &Job) -> Res<Outcome> {
    Err(err(format!(
        "scenario {} is not implemented by this contender",
        job.scenario
    )))
}

/// Runs `job` on contender `c`, within the job's timeout.
pub async fn run<C: Contender>(c: &C, job: &Job) -> Res<Outcome> {
    let work = async {
        match job.scenario.as_str() {
            "producer-json" => c.producer_json(job).await,
            "producer-bytes" => c.producer_bytes(job).await,
            "append-c1" | "append-c8" => c.append_latency(job).await,
            "catchup-read" => c.catchup_read(job).await,
            "live-sse" => c.live_tail(job, LiveMode::Sse).await,
            "live-longpoll" => c.live_tail(job, LiveMode::LongPoll).await,
            "overload" => c.overload(job).await,
            other => Err(err(format!("unknown scenario {other}"))),
        }
    };
    tokio::time::timeout(Duration::from_secs_f64(job.timeout_s), work)
        .await
        .map_err(|_| err(format!("timed out after {} s", job.timeout_s)))?
}

/// Dispatches by contender id.
pub async fn run_by_id(id: &str, job: &Job) -> Res<Outcome> {
    match id {
        "raw" => run(&raw::Raw::new()?, job).await,
        "rust-core" => run(&core::RustCore::new(job)?, job).await,
        other => Err(err(format!("unknown Rust contender {other}"))),
    }
}

/// Runs `job.count` awaited operations from `job.concurrency` callers; `op(i)` does message
/// `i`. Returns the latencies (µs) and the elapsed time.
pub async fn awaited_ops<F, Fut>(job: &Job, op: F) -> Res<(Vec<u64>, Duration)>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Res<()>>,
{
    let next = AtomicU64::new(0);
    let start = Instant::now();
    let workers = (0..job.concurrency.max(1)).map(|_| async {
        let mut lat = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= job.count {
                return Ok::<_, crate::util::BoxError>(lat);
            }
            let t = Instant::now();
            op(i).await?;
            lat.push(t.elapsed().as_micros() as u64);
        }
    });
    let results = futures_util::future::join_all(workers).await;
    let elapsed = start.elapsed();
    let mut all = Vec::with_capacity(job.count as usize);
    for r in results {
        all.extend(r?);
    }
    Ok((all, elapsed))
}

/// Send times of live-tail messages, so a reader in the same process can compute latencies.
pub struct LiveClock {
    base: Instant,
    sent_ns: Vec<AtomicU64>,
}

impl LiveClock {
    pub fn new(count: u64) -> Self {
        Self {
            base: Instant::now(),
            sent_ns: (0..count).map(|_| AtomicU64::new(u64::MAX)).collect(),
        }
    }

    /// Call just before appending message `i`.
    pub fn sent(&self, i: u64) {
        if let Some(s) = self.sent_ns.get(i as usize) {
            s.store(self.base.elapsed().as_nanos() as u64, Ordering::Release);
        }
    }

    /// Latency in µs of message `i`, delivered now.
    pub fn delivered(&self, i: u64) -> Res<u64> {
        let sent = self
            .sent_ns
            .get(i as usize)
            .map(|s| s.load(Ordering::Acquire))
            .ok_or_else(|| err(format!("delivered message {i} was never sent")))?;
        if sent == u64::MAX {
            return Err(err(format!("message {i} delivered before it was sent")));
        }
        Ok((self.base.elapsed().as_nanos() as u64).saturating_sub(sent) / 1000)
    }
}

/// Writer side of the live-tail scenario: waits 200 ms for the reader to subscribe, then calls
/// `append(i)` for every message at `job.rate` per second (open loop: a late append does not
/// delay the schedule of the next ones beyond its own duration).
pub async fn paced_writer<F, Fut>(job: &Job, clock: &LiveClock, append: F) -> Res<()>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Res<()>>,
{
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = tokio::time::Instant::now();
    let interval = Duration::from_secs_f64(1.0 / job.rate.max(1.0));
    for i in 0..job.count {
        tokio::time::sleep_until(start + interval * i as u32).await;
        clock.sent(i);
        append(i).await?;
    }
    Ok(())
}
