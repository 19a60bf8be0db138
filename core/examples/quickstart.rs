//! Quick start: create a JSON stream, append to it, read it back.
//!
//! Run against a local server with `bash scripts/demo.sh`, or:
//! `cargo run --example quickstart -- http://127.0.0.1:4437`

use durable_streams_client::{
    AppendOptions, CreateOptions, DurableStream, LiveMode, Offset, ReadOptions,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:4437".to_owned());
    let name = format!("quickstart-{}", std::process::id());
    let stream = DurableStream::new(format!("{base}/v1/stream/{name}"))?;

    let created = stream.create(CreateOptions::json()).await?;
    println!("created {} ({:?})", stream.url(), created.status);

    stream
        .append(r#"{"role":"user","text":"What is a durable stream?"}"#)
        .await?;
    stream
        .append_json(
            &serde_json::json!({"role": "assistant", "text": "An append-only log at a URL."}),
        )
        .await?;
    let last = stream
        .append_batch(
            [
                r#"{"token":"Resumable"}"#,
                r#"{"token":" from any offset."}"#,
            ],
            AppendOptions::default(),
        )
        .await?;
    if let Some(tail) = &last.next_offset {
        println!("appended 4 messages, tail offset {tail}");
    }

    // Catch up from the beginning and stop at the tail.
    let resp = stream
        .stream(
            ReadOptions::new()
                .offset(Offset::beginning())
                .live(LiveMode::Off),
        )
        .await?;
    let messages: Vec<serde_json::Value> = resp.json().await?;
    println!(
        "read back {} messages, resume from {}:",
        messages.len(),
        resp.offset()
    );
    for m in &messages {
        println!("  {m}");
    }
    stream.close().await?;
    println!("closed: {}", stream.head().await?.closed);
    Ok(())
}
