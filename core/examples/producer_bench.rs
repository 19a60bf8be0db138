//! Producer throughput against a running server, next to raw HTTP with the same batch shape.
//!
//! ```text
//! cargo run --release --example producer_bench -- http://127.0.0.1:4437 [messages] [mode] [in-flight]
//! ```
//!
//! `mode` is `all` (default), `producer`, `bytes` (the producer on a byte stream, so no JSON
//! validation), `raw`, `validate` (JSON validation alone, no network), `enqueue` (both
//! producers with an unbounded buffer, so the append loop shows the client's own cost) or
//! `sink` (raw and producer against an in-process server that stores nothing and answers at
//! once, so the client is the limit; the URL argument is then ignored). Each run creates
//! fresh streams under `/bench/`. Messages are ~100-byte JSON objects, appended in a burst and
//! then flushed; raw HTTP posts the same 1 MiB arrays, 5 at a time, as plain appends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use durable_streams_client::{Client, CreateOptions, DurableStream, Error, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MAX_BATCH: usize = 1 << 20;
const IN_FLIGHT: usize = 5;

fn message(i: usize) -> Bytes {
    Bytes::from(format!(
        r#"{{"i":{i},"ts":1764201600000,"type":"bench.event","user":"u{:05}","p":"{}"}}"#,
        i % 100_000,
        "x".repeat(30)
    ))
}

async fn fresh_stream(client: &Client, base: &str, name: &str, ct: &str) -> Result<DurableStream> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let s = DurableStream::builder(format!("{base}/bench/{name}-{nanos}"))
        .client(client.clone())
        .build()?;
    s.create(CreateOptions::with_content_type(ct)).await?;
    Ok(s)
}

/// CPU time (user + system, all threads) of this process so far, from `/proc/self/stat`
/// (clock ticks of 10 ms); zero where that file does not exist.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the parenthesized command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    Duration::from_millis(f.iter().sum::<u64>() * 10)
}

fn report(what: &str, n: usize, elapsed: Duration, cpu: Duration) -> f64 {
    let rate = n as f64 / elapsed.as_secs_f64();
    println!(
        "{what:<28} {n} msgs in {:>8.3} s = {:>10.0} msgs/s, client CPU {:.3} us/msg",
        elapsed.as_secs_f64(),
        rate,
        cpu.as_secs_f64() * 1e6 / n.max(1) as f64
    );
    rate
}

async fn producer_run(
    client: &Client,
    base: &str,
    msgs: &[Bytes],
    json: bool,
    unbounded: bool,
    in_flight: usize,
    validate: bool,
) -> Result<f64> {
    let ct = if json {
        "application/json"
    } else {
        "application/octet-stream"
    };
    let s = fresh_stream(client, base, "producer", ct).await?;
    let mut builder = s
        .producer("bench")
        .max_in_flight(in_flight)
        .validate_json(validate);
    if unbounded {
        // Room for everything: the append loop then measures the client's own cost.
        builder = builder.max_buffered_bytes(1 << 31);
    }
    let p = builder.build()?;
    let cpu0 = cpu_time();
    let started = Instant::now();
    // Borrowed: append copies each message into its batch.
    for m in msgs {
        p.append(m).await?;
    }
    let appended = started.elapsed();
    p.flush().await?;
    let elapsed = started.elapsed();
    println!(
        "  append loop {:.3} s ({:.0} ns/msg), then flush",
        appended.as_secs_f64(),
        appended.as_nanos() as f64 / msgs.len().max(1) as f64
    );
    let m = p.metrics();
    println!(
        "  batches {} requests {} retries {} mean latency {:?} max {:?}",
        m.batches,
        m.requests,
        m.retries,
        m.latency.mean(),
        m.latency.max
    );
    let label = match (json, validate) {
        (true, true) => "producer (json)",
        (true, false) => "producer (json, unchecked)",
        (false, _) => "producer (bytes)",
    };
    Ok(report(label, msgs.len(), elapsed, cpu_time() - cpu0))
}

/// The producer's wire shape without the producer: the same arrays, 5 requests at a time.
async fn raw_run(client: &Client, base: &str, msgs: &[Bytes], in_flight: usize) -> Result<f64> {
    let s = fresh_stream(client, base, "raw", "application/json").await?;
    let cpu0 = cpu_time();
    let started = Instant::now();
    let mut bodies = Vec::new();
    let mut buf = BytesMut::with_capacity(MAX_BATCH + 2);
    for m in msgs {
        if !buf.is_empty() && buf.len() + m.len() + 2 > MAX_BATCH {
            buf.put_u8(b']');
            bodies.push(buf.split().freeze());
        }
        buf.put_u8(if buf.is_empty() { b'[' } else { b',' });
        buf.extend_from_slice(m);
    }
    if !buf.is_empty() {
        buf.put_u8(b']');
        bodies.push(buf.split().freeze());
    }
    let http = client.http().clone();
    let url = s.url().clone();
    let sem = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let mut tasks = Vec::new();
    for body in bodies {
        let permit = sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Cancelled)?;
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            drop(permit);
            match r {
                Ok(resp) => {
                    let ok = resp.status().is_success();
                    let _ = resp.bytes().await;
                    ok
                }
                Err(_) => false,
            }
        }));
    }
    let mut failed = 0;
    for t in tasks {
        if !matches!(t.await, Ok(true)) {
            failed += 1;
        }
    }
    if failed > 0 {
        println!("  {failed} raw requests failed");
    }
    Ok(report(
        "raw HTTP",
        msgs.len(),
        started.elapsed(),
        cpu_time() - cpu0,
    ))
}

fn validate_run(msgs: &[Bytes]) {
    let started = Instant::now();
    let mut ok = 0usize;
    for m in msgs {
        if serde_json::from_slice::<serde::de::IgnoredAny>(m).is_ok() {
            ok += 1;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{:<28} {ok} msgs in {:>8.3} s = {:.0} ns/msg",
        "JSON validation alone",
        elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / msgs.len() as f64
    );
}

/// An HTTP/1.1 server that reads each request and answers 200 at once, storing nothing.
async fn sink() -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = sock.set_nodelay(true);
                let mut buf = BytesMut::with_capacity(1 << 16);
                loop {
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break Some(i + 4);
                        }
                        match sock.read_buf(&mut buf).await {
                            Ok(0) | Err(_) => break None,
                            Ok(_) => {}
                        }
                    };
                    let Some(head_end) = head_end else { return };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        match sock.read_buf(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                    buf.advance(head_end + len);
                    let reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                        Stream-Next-Offset: 0000000000000000_0000000000000001\r\n\
                        Content-Length: 0\r\n\r\n";
                    if sock.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(url)
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:4437".to_owned());
    let mut base = base.trim_end_matches('/').to_owned();
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mode = args.next().unwrap_or_else(|| "all".to_owned());
    let in_flight: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(IN_FLIGHT);
    let msgs: Vec<Bytes> = (0..n).map(message).collect();
    let avg = msgs.iter().map(Bytes::len).sum::<usize>() / n.max(1);
    println!("{n} messages of ~{avg} bytes against {base}");
    let client = Client::new()?;
    if mode == "sink" {
        base = sink().await.map_err(|e| Error::Network {
            source: None,
            url: "sink".into(),
            message: e.to_string(),
        })?;
        println!("in-process sink server at {base}");
    }
    if mode == "all" || mode == "validate" {
        validate_run(&msgs);
    }
    let mut producer = None;
    let mut raw = None;
    if mode == "all" || mode == "raw" || mode == "sink" {
        raw = Some(raw_run(&client, &base, &msgs, in_flight).await?);
    }
    if mode == "all" || mode == "producer" || mode == "sink" {
        producer = Some(producer_run(&client, &base, &msgs, true, false, in_flight, true).await?);
    }
    if mode == "all" || mode == "sink" {
        producer_run(&client, &base, &msgs, true, false, in_flight, false).await?;
    }
    if mode == "all" || mode == "bytes" || mode == "sink" {
        producer_run(&client, &base, &msgs, false, false, in_flight, true).await?;
    }
    if mode == "enqueue" {
        producer_run(&client, &base, &msgs, true, true, in_flight, true).await?;
        producer_run(&client, &base, &msgs, false, true, in_flight, true).await?;
    }
    if let (Some(p), Some(r)) = (producer, raw) {
        println!("producer / raw = {:.2}", p / r);
    }
    Ok(())
}
