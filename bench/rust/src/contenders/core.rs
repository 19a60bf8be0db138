//! Our Rust core, `durable-streams-client`, through its public API: awaited appends
//! (`DurableStream::append`), the `IdempotentProducer` and the read path.

use std::time::{Duration, Instant};

use bytes::Bytes;
use durable_streams_client::{DurableStream, IdempotentProducer, LiveMode as Mode, ReadOptions};

use super::raw::Deliveries;
use super::{awaited_ops, paced_writer, Contender, LiveClock, LiveMode};
use crate::job::{Job, Outcome};
use crate::msg::{bytes_message, json_message, Id};
use crate::util::{err, rss_kib, Res};

pub struct RustCore {
    stream: DurableStream,
}

impl RustCore {
    pub fn new(job: &Job) -> Res<Self> {
        let stream = DurableStream::builder(job.stream_url.clone())
            .content_type(job.content_type.clone())
            .build()?;
        Ok(Self { stream })
    }

    fn producer(&self, job: &Job) -> Res<IdempotentProducer> {
        Ok(self
            .stream
            .producer(job.producer_id.clone())
            .max_batch_bytes(job.batch_bytes)
            .linger(Duration::from_millis(job.linger_ms))
            .max_in_flight(job.max_in_flight.max(1))
            .build()?)
    }

    fn messages(job: &Job) -> Vec<Bytes> {
        (0..job.count)
            .map(|i| {
                if job.is_json() {
                    Bytes::from(json_message(i, job.msg_bytes))
                } else {
                    Bytes::from(bytes_message(i, job.msg_bytes))
                }
            })
            .collect()
    }

    /// Appends every message in a tight loop (waiting only when the buffer is full), then
    /// flushes.
    async fn produce(&self, job: &Job) -> Res<Outcome> {
        let msgs = Self::messages(job);
        let producer = self.producer(job)?;
        let start = Instant::now();
        // Borrowed, as the other languages' contenders hand over messages that stay alive:
        // the messages are freed after the clock stops, not one by one inside the timed loop.
        for m in &msgs {
            producer.append(m).await?;
        }
        producer.flush().await?;
        let seconds = start.elapsed().as_secs_f64();
        let metrics = producer.metrics();
        producer.detach().await?;
        let mut extra = serde_json::Map::new();
        extra.insert("requests".into(), metrics.requests.into());
        extra.insert("retries".into(), metrics.retries.into());
        Ok(Outcome {
            ok: true,
            messages: job.count,
            bytes: job.count * job.msg_bytes as u64,
            seconds,
            extra,
            ..Outcome::default()
        })
    }
}

impl Contender for RustCore {
    async fn producer_json(&self, job: &Job) -> Res<Outcome> {
        self.produce(job).await
    }

    async fn producer_bytes(&self, job: &Job) -> Res<Outcome> {
        self.produce(job).await
    }

    async fn append_latency(&self, job: &Job) -> Res<Outcome> {
        let msgs: Vec<Bytes> = (0..job.count)
            .map(|i| Bytes::from(json_message(i, job.msg_bytes)))
            .collect();
        let (latencies_us, elapsed) = awaited_ops(job, |i| {
            let body = msgs[i as usize].clone();
            async move {
                self.stream.append(body).await?;
                Ok(())
            }
        })
        .await?;
        Ok(Outcome {
            ok: true,
            messages: job.count,
            bytes: job.count * job.msg_bytes as u64,
            seconds: elapsed.as_secs_f64(),
            latencies_us,
            ..Outcome::default()
        })
    }

    async fn catchup_read(&self, job: &Job) -> Res<Outcome> {
        let start = Instant::now();
        let resp = self
            .stream
            .stream(ReadOptions::new().live(Mode::Off))
            .await?;
        let items: Vec<Id> = resp.json().await?;
        let seconds = start.elapsed().as_secs_f64();
        Ok(Outcome {
            ok: true,
            messages: items.len() as u64,
            bytes: items.len() as u64 * job.msg_bytes as u64,
            seconds,
            checksum: Some(items.iter().map(|m| m.i).sum()),
            ..Outcome::default()
        })
    }

    async fn live_tail(&self, job: &Job, mode: LiveMode) -> Res<Outcome> {
        let clock = LiveClock::new(job.count);
        let start = Instant::now();
        let live = match mode {
            LiveMode::Sse => Mode::Sse,
            LiveMode::LongPoll => Mode::LongPoll,
        };
        let reader = async {
            let mut d = Deliveries::new(&clock, job.count);
            let resp = self.stream.stream(ReadOptions::new().live(live)).await?;
            let mut batches = resp.byte_batches()?;
            while !d.done() {
                let batch = batches
                    .next_batch()
                    .await?
                    .ok_or_else(|| err("live read ended early"))?;
                d.json_batch(&batch.data)?;
            }
            resp.cancel();
            Ok::<_, crate::util::BoxError>((d.latencies, d.checksum))
        };
        let writer = paced_writer(job, &clock, |i| {
            let body = Bytes::from(json_message(i, job.msg_bytes));
            async move {
                self.stream.append(body).await?;
                Ok(())
            }
        });
        let (got, wrote) = tokio::join!(reader, writer);
        wrote?;
        let (latencies_us, checksum) = got?;
        Ok(Outcome {
            ok: true,
            messages: latencies_us.len() as u64,
            bytes: latencies_us.len() as u64 * job.msg_bytes as u64,
            seconds: start.elapsed().as_secs_f64(),
            checksum: Some(checksum),
            latencies_us,
            ..Outcome::default()
        })
    }

    async fn overload(&self, job: &Job) -> Res<Outcome> {
        let producer = self.producer(job)?;
        let start = Instant::now();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let sampler = tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                samples.push((start.elapsed().as_secs_f64(), rss_kib()));
                tokio::select! {
                    _ = &mut stopped => return samples,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        });
        let rate = job.rate.max(1.0);
        let mut sent = 0u64;
        while sent < job.count {
            let due = ((start.elapsed().as_secs_f64() * rate) as u64).min(job.count);
            while sent < due {
                // Waits when the buffer is full: that is the bounded-memory behaviour measured.
                producer
                    .append(Bytes::from(json_message(sent, job.msg_bytes)))
                    .await?;
                sent += 1;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let offer_seconds = start.elapsed().as_secs_f64();
        producer.flush().await?;
        let seconds = start.elapsed().as_secs_f64();
        let _ = stop.send(());
        let rss_samples = sampler
            .await
            .map_err(|e| err(format!("RSS sampler failed: {e}")))?;
        producer.detach().await?;
        let mut extra = serde_json::Map::new();
        extra.insert("offer_seconds".into(), offer_seconds.into());
        extra.insert(
            "offered_rate".into(),
            (job.count as f64 / offer_seconds).into(),
        );
        Ok(Outcome {
            ok: true,
            messages: job.count,
            bytes: job.count * job.msg_bytes as u64,
            seconds,
            rss_samples,
            extra,
            ..Outcome::default()
        })
    }
}
