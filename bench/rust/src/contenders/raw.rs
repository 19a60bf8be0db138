//! The raw-HTTP bound: the same bytes, batch shape and concurrency as a client would send,
//! through a bare HTTP/1.1 client, with none of a client library's work. It shows what the
//! server itself can take.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;

use super::{awaited_ops, paced_writer, Contender, LiveClock, LiveMode};
use crate::job::{Job, Outcome};
use crate::msg::{bytes_message, json_message, Id};
use crate::util::{err, expect_status, header, raw_http, read_all, Res};

pub struct Raw {
    http: reqwest::Client,
}

impl Raw {
    pub fn new() -> Res<Self> {
        Ok(Self { http: raw_http()? })
    }

    /// Producer shape: bodies of up to `batch_bytes` (JSON arrays or concatenated bytes),
    /// `max_in_flight` at a time. Each of the `max_in_flight` lanes is its own producer
    /// (`Producer-Id`/`-Epoch`/`-Seq`), so pipelined requests never race on one sequence.
    async fn produce(&self, job: &Job) -> Res<Outcome> {
        let bodies = build_bodies(job);
        let next = AtomicUsize::new(0);
        let start = Instant::now();
        let lanes = (0..job.max_in_flight.max(1)).map(|lane| {
            let (bodies, next) = (&bodies, &next);
            async move {
                let id = format!("{}-lane{lane}", job.producer_id);
                let mut seq = 0u64;
                while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let resp = self
                        .http
                        .post(&job.stream_url)
                        .header("content-type", &job.content_type)
                        .header("producer-id", &id)
                        .header("producer-epoch", "0")
                        .header("producer-seq", seq.to_string())
                        .body(body.clone())
                        .send()
                        .await?;
                    expect_status(resp, &[200], "producer POST").await?;
                    seq += 1;
                }
                Ok::<_, crate::util::BoxError>(())
            }
        });
        for r in futures_util::future::join_all(lanes).await {
            r?;
        }
        let seconds = start.elapsed().as_secs_f64();
        let mut extra = serde_json::Map::new();
        extra.insert("requests".into(), bodies.len().into());
        Ok(Outcome {
            ok: true,
            messages: job.count,
            bytes: job.count * job.msg_bytes as u64,
            seconds,
            extra,
            ..Outcome::default()
        })
    }

    async fn post_one(&self, job: &Job, i: u64) -> Res<()> {
        let body = format!("[{}]", json_message(i, job.msg_bytes));
        let resp = self
            .http
            .post(&job.stream_url)
            .header("content-type", &job.content_type)
            .body(body)
            .send()
            .await?;
        expect_status(resp, &[200, 204], "append POST").await?;
        Ok(())
    }
}

/// The messages of `job`, grouped into producer-sized request bodies.
fn build_bodies(job: &Job) -> Vec<Bytes> {
    let mut bodies = Vec::new();
    let mut cur = BytesMut::new();
    let json = job.is_json();
    for i in 0..job.count {
        let msg: Vec<u8> = if json {
            json_message(i, job.msg_bytes).into_bytes()
        } else {
            bytes_message(i, job.msg_bytes)
        };
        if !cur.is_empty() && cur.len() + msg.len() + 2 > job.batch_bytes {
            if json {
                cur.put_u8(b']');
            }
            bodies.push(std::mem::take(&mut cur).freeze());
        }
        if json {
            cur.put_u8(if cur.is_empty() { b'[' } else { b',' });
        }
        cur.put_slice(&msg);
    }
    if !cur.is_empty() {
        if json {
            cur.put_u8(b']');
        }
        bodies.push(cur.freeze());
    }
    bodies
}

impl Contender for Raw {
    async fn producer_json(&self, job: &Job) -> Res<Outcome> {
        self.produce(job).await
    }

    async fn producer_bytes(&self, job: &Job) -> Res<Outcome> {
        self.produce(job).await
    }

    async fn append_latency(&self, job: &Job) -> Res<Outcome> {
        let (latencies_us, elapsed) = awaited_ops(job, |i| self.post_one(job, i)).await?;
        Ok(Outcome {
            ok: true,
            messages: job.count,
            bytes: job.count * job.msg_bytes as u64,
            seconds: elapsed.as_secs_f64(),
            latencies_us,
            ..Outcome::default()
        })
    }

    /// Transfers the bytes only: the bound of a reader, which must also parse.
    async fn catchup_read(&self, job: &Job) -> Res<Outcome> {
        let start = Instant::now();
        let bodies = read_all(&self.http, &job.stream_url).await?;
        let seconds = start.elapsed().as_secs_f64();
        let mut extra = serde_json::Map::new();
        extra.insert("responses".into(), bodies.len().into());
        Ok(Outcome {
            ok: true,
            messages: job.count,
            bytes: bodies.iter().map(|b| b.len() as u64).sum(),
            seconds,
            extra,
            ..Outcome::default()
        })
    }

    async fn live_tail(&self, job: &Job, mode: LiveMode) -> Res<Outcome> {
        let clock = LiveClock::new(job.count);
        let start = Instant::now();
        let reader = async {
            match mode {
                LiveMode::Sse => self.sse_reader(job, &clock).await,
                LiveMode::LongPoll => self.long_poll_reader(job, &clock).await,
            }
        };
        let writer = paced_writer(job, &clock, |i| self.post_one(job, i));
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
}

/// Collects deliveries until `count` messages arrived; checks their order.
pub struct Deliveries<'a> {
    clock: &'a LiveClock,
    count: u64,
    pub latencies: Vec<u64>,
    pub checksum: u64,
}

impl<'a> Deliveries<'a> {
    pub fn new(clock: &'a LiveClock, count: u64) -> Self {
        Self {
            clock,
            count,
            latencies: Vec::new(),
            checksum: 0,
        }
    }

    pub fn json_batch(&mut self, body: &[u8]) -> Res<()> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let batch: Vec<Id> = serde_json::from_slice(body)?;
        for m in batch {
            if m.i != self.latencies.len() as u64 {
                return Err(err(format!(
                    "expected message {}, got {}",
                    self.latencies.len(),
                    m.i
                )));
            }
            self.latencies.push(self.clock.delivered(m.i)?);
            self.checksum += m.i;
        }
        Ok(())
    }

    pub fn done(&self) -> bool {
        self.latencies.len() as u64 >= self.count
    }
}

impl Raw {
    async fn sse_reader(&self, job: &Job, clock: &LiveClock) -> Res<(Vec<u64>, u64)> {
        let mut d = Deliveries::new(clock, job.count);
        let resp = self
            .http
            .get(&job.stream_url)
            .query(&[("offset", "-1"), ("live", "sse")])
            .send()
            .await?;
        let resp = expect_status(resp, &[200], "SSE GET").await?;
        let mut body = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        let (mut event, mut data) = (String::new(), Vec::<u8>::new());
        while !d.done() {
            let chunk = body
                .next()
                .await
                .ok_or_else(|| err("SSE connection ended early"))??;
            buf.extend_from_slice(&chunk);
            while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.is_empty() {
                    if event == "data" {
                        d.json_batch(&data)?;
                    }
                    event.clear();
                    data.clear();
                } else if let Some(v) = line.strip_prefix(b"event:") {
                    event = String::from_utf8_lossy(v).trim().to_owned();
                } else if let Some(v) = line.strip_prefix(b"data:") {
                    if !data.is_empty() {
                        data.push(b'\n');
                    }
                    data.extend_from_slice(v.strip_prefix(b" ").unwrap_or(v));
                }
            }
        }
        Ok((d.latencies, d.checksum))
    }

    async fn long_poll_reader(&self, job: &Job, clock: &LiveClock) -> Res<(Vec<u64>, u64)> {
        let mut d = Deliveries::new(clock, job.count);
        let mut offset = "-1".to_owned();
        let mut cursor: Option<String> = None;
        while !d.done() {
            let mut req = self
                .http
                .get(&job.stream_url)
                .query(&[("offset", offset.as_str()), ("live", "long-poll")]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c.as_str())]);
            }
            let resp = expect_status(req.send().await?, &[200, 204], "long-poll GET").await?;
            if let Some(n) = header(&resp, "stream-next-offset") {
                offset = n;
            }
            if let Some(c) = header(&resp, "stream-cursor") {
                cursor = Some(c);
            }
            let body = resp.bytes().await?;
            d.json_batch(&body)?;
        }
        Ok((d.latencies, d.checksum))
    }
}
