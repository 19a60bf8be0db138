//! Test fixture: a real Durable Streams server (the npm reference server) on 127.0.0.1.
//!
//! Each test binary starts one shared server on first use; tests that need other server
//! settings start their own with [`TestServer::start`]. The launcher exits when our end of its
//! stdin closes, so no server outlives the test process.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use durable_streams_client::{Client, DurableStream};

pub struct TestServer {
    pub url: String,
    child: Mutex<Option<(Child, ChildStdin)>>,
}

fn repo_root() -> PathBuf {
    // At run time first: cargo sets it for the test process, and a test binary reused from a
    // build cache made in another checkout would otherwise point at that checkout.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("..")
}

fn ensure_installed() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let status = Command::new("bash")
            .arg(repo_root().join("tests/server/ensure.sh"))
            .stdout(Stdio::inherit())
            .status()
            .expect("run tests/server/ensure.sh");
        assert!(status.success(), "tests/server/ensure.sh failed");
    });
}

impl TestServer {
    /// Starts a server with extra launcher flags (`--long-poll-ms`, `--data-dir`).
    pub fn start(args: &[&str]) -> TestServer {
        ensure_installed();
        let mut child = Command::new("node")
            .arg(repo_root().join("tests/server/start.mjs"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("DS_TEST_SERVER_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("start node tests/server/start.mjs");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read server URL");
        let url = line.trim().to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "bad server URL line {url:?}"
        );
        TestServer {
            url,
            child: Mutex::new(Some((child, stdin))),
        }
    }

    /// The server shared by the tests of this binary (long-poll timeout 1.5 s).
    pub fn shared() -> &'static TestServer {
        static SHARED: OnceLock<TestServer> = OnceLock::new();
        SHARED.get_or_init(|| TestServer::start(&["--long-poll-ms", "1500"]))
    }

    /// A fresh stream URL on this server.
    pub fn stream_url(&self, name: &str) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        format!("{}/v1/stream/{name}-{}-{n}", self.url, std::process::id())
    }

    pub fn stop(&self) {
        if let Some((mut child, stdin)) = self.child.lock().unwrap().take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A client of its own for each test: pooled connections belong to the runtime that made
/// them, and every `#[tokio::test]` has its own runtime.
pub fn client() -> Client {
    Client::new().unwrap()
}

/// A handle to a fresh stream URL on the shared server.
pub fn handle(name: &str) -> DurableStream {
    DurableStream::builder(TestServer::shared().stream_url(name))
        .client(client())
        .build()
        .unwrap()
}

/// Arms a fault on the server for `path` (see `/_test/inject-error` in tests/server).
pub async fn inject(server: &TestServer, fault: serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/_test/inject-error", server.url))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "inject-error refused {fault}");
}

/// The URL path of a stream URL.
pub fn path_of(url: &str) -> String {
    url::Url::parse(url).unwrap().path().to_owned()
}

/// Reads the whole stream with a plain GET (independent of the client's read path).
pub async fn raw_read(url: &str) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let resp = reqwest::Client::new()
        .get(format!("{url}?offset=-1"))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

/// Reads a JSON stream with a plain GET and parses its array.
pub async fn raw_json(url: &str) -> Vec<serde_json::Value> {
    let (status, _, body) = raw_read(url).await;
    assert_eq!(status, 200);
    serde_json::from_slice(&body).unwrap()
}
