//! `dsc-bench`: the Rust half of the benchmark driver (bench/run.sh runs it).
//!
//! ```text
//! dsc-bench contender <raw|rust-core> <job-json>      run one job, print one Outcome JSON line
//! dsc-bench verify <url> <json|bytes> <count> <msg-bytes>
//!                                                      check a stream holds messages 0..count once
//! dsc-bench seed <url> <count> <msg-bytes>            fill a JSON stream (1 MiB batches, 5 in flight)
//! dsc-bench proxy <host:port> <bytes-per-sec>         byte-rate-capped TCP proxy; prints its URL
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
        other => return Err(err(format!("unknown command {other}"))),
    }
    Ok(())
}
