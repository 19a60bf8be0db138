//! Our Rust core, `durable-streams-client`, through its public API.
//!
//! Implemented today: awaited single appends (`DurableStream::append`). The producer
//! (`IdempotentProducer`) and the read path are plug-in slots: implement `producer_json`,
//! `producer_bytes`, `overload`, `catchup_read` and `live_tail` below (see bench/README.md,
//! "Adding a contender") and list the scenarios in bench/contenders/rust-core.json.

use bytes::Bytes;
use durable_streams_client::DurableStream;

use super::{awaited_ops, Contender};
use crate::job::{Job, Outcome};
use crate::msg::json_message;
use crate::util::Res;

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
}

impl Contender for RustCore {
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
}
