//! `dsc-bench`: the Rust half of the benchmark driver (bench/run.sh runs it).
//!
//! ```text
//! dsc-bench contender <raw|rust-core> <job-json>      run one job, print one Outcome JSON line
//! dsc-bench verify <url> <json|bytes> <count> <msg-bytes>
//!                                                      check a stream holds messages 0..count once
//! dsc-bench seed <url> <count> <msg-bytes>            fill a JSON stream (1 MiB batches, 5 in flight)
//! dsc-bench proxy <host:port> <bytes-per-sec>         byte-rate-capped TCP proxy; prints its URL
//! dsc-bench large-read <url> <stream|json>            read a JSON stream from the start through
//!                                                      json_stream() or json() (limit raised);
//!                                                      print messages, bytes and peak RSS (large-read.sh)
//! ```
//! Everything runs on one current-thread tokio runtime: the driver pins the process to one core.

mod contenders;
mod job;
mod msg;
mod proxy;
mod util;
mod verify;

use std::process::ExitCode;

use job::Job;
use util::{err, Res};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dsc-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dsc-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn arg<'a>(args: &'a [String], i: usize, what: &str) -> Res<&'a str> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| err(format!("missing argument: {what}")))
}

async fn dispatch(args: &[String]) -> Res<()> {
    match arg(args, 0, "command")? {
        "contender" => {
            let id = arg(args, 1, "contender id")?;
            let job: Job = serde_json::from_str(arg(args, 2, "job JSON")?)?;
            let outcome = contenders::run_by_id(id, &job).await?;
            println!("{}", serde_json::to_string(&outcome)?);
        }
        "verify" => {
            let url = arg(args, 1, "url")?;
            let json = match arg(args, 2, "json|bytes")? {
                "json" => true,
                "bytes" => false,
                other => return Err(err(format!("verify: unknown kind {other}"))),
            };
            let count: u64 = arg(args, 3, "count")?.parse()?;
            let msg_bytes: usize = arg(args, 4, "msg-bytes")?.parse()?;
            let report = verify::verify(url, json, count, msg_bytes).await?;
            println!("{}", serde_json::to_string(&report)?);
        }
        "seed" => {
            let job = Job {
                scenario: "producer-json".into(),
                stream_url: arg(args, 1, "url")?.to_owned(),
                count: arg(args, 2, "count")?.parse()?,
                msg_bytes: arg(args, 3, "msg-bytes")?.parse()?,
                content_type: "application/json".into(),
                concurrency: 1,
                batch_bytes: 1 << 20,
                linger_ms: 0,
                max_in_flight: 5,
                rate: 0.0,
                producer_id: "seed".into(),
                timeout_s: 600.0,
            };
            let outcome = contenders::run_by_id("raw", &job).await?;
            println!("{}", serde_json::to_string(&outcome)?);
        }
        "proxy" => {
            let upstream = arg(args, 1, "upstream host:port")?.to_owned();
            let rate: f64 = arg(args, 2, "bytes per second")?.parse()?;
            proxy::run(upstream, rate).await?;
        }
        "large-read" => {
            let url = arg(args, 1, "url")?;
            let report = large_read(url, arg(args, 2, "stream|json")?).await?;
            println!("{report}");
        }
        other => return Err(err(format!("unknown command {other}"))),
    }
    Ok(())
}

/// Peak resident set size of this process in KiB (Linux `VmHWM`).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Reads a JSON stream from offset -1 (not live), counting messages and their bytes, and
/// reports the peak RSS before and after.
async fn large_read(url: &str, how: &str) -> Res<String> {
    use durable_streams_client::{LiveMode, ReadOptions};
    use futures_util::StreamExt;
    let before = peak_rss_kib();
    let started = std::time::Instant::now();
    let opts = ReadOptions::new()
        .live(LiveMode::Off)
        .max_read_bytes(usize::MAX);
    let resp = durable_streams_client::stream(url, opts).await?;
    let (mut count, mut bytes) = (0u64, 0u64);
    match how {
        "stream" => {
            let mut messages = resp.json_stream::<Box<serde_json::value::RawValue>>()?;
            while let Some(m) = messages.next().await {
                count += 1;
                bytes += m?.get().len() as u64;
            }
        }
        "json" => {
            for m in resp.json::<Box<serde_json::value::RawValue>>().await? {
                count += 1;
                bytes += m.get().len() as u64;
            }
        }
        other => return Err(err(format!("large-read: unknown form {other}"))),
    }
    Ok(serde_json::json!({
        "client": "rust-core",
        "form": if how == "stream" { "json_stream()" } else { "json()" },
        "messages": count,
        "bytes": bytes,
        "seconds": started.elapsed().as_secs_f64(),
        "rss_before_kib": before,
        "peak_rss_kib": peak_rss_kib(),
    })
    .to_string())
}
