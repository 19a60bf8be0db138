//! Test fixture: a real Durable Streams server (the npm reference server) on 127.0.0.1.
//!
//! Each test binary starts one shared server on first use; tests that need other server
//! settings start their own with [`TestServer::start`]. The launcher exits when our end of its
//! stdin closes, so no server outlives the test process.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use durable_streams_client::{Client, CreateOptions, DurableStream, Subscriptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

/// A TCP proxy in front of the server that, while enabled, cuts every `every`-th chunk the
/// server sends back: the server has applied the request, the client never hears about it.
pub struct CutProxy {
    base: String,
    /// How many cuts were made.
    pub cuts: Arc<AtomicUsize>,
    /// Cuts are made only while this is set.
    pub enabled: Arc<AtomicBool>,
    /// Cuts left to make (unbounded unless a test lowers it): a test that needs one lost
    /// answer sets 1, so the cut happens after the server has answered (it committed) and the
    /// resend gets through, whatever the timing.
    pub budget: Arc<AtomicUsize>,
}

impl CutProxy {
    pub async fn start(upstream: &str, every: usize) -> CutProxy {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let cuts = Arc::new(AtomicUsize::new(0));
        let enabled = Arc::new(AtomicBool::new(true));
        let budget = Arc::new(AtomicUsize::new(usize::MAX));
        let chunks = Arc::new(AtomicUsize::new(0));
        let (c2, e2, b2) = (cuts.clone(), enabled.clone(), budget.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client_sock, _)) = listener.accept().await else {
                    return;
                };
                let upstream = upstream.clone();
                let (cuts, enabled, budget, chunks) =
                    (c2.clone(), e2.clone(), b2.clone(), chunks.clone());
                tokio::spawn(async move {
                    let Ok(server_sock) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client_sock.into_split();
                    let (mut sr, mut sw) = server_sock.into_split();
                    let up = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut cr, &mut sw).await;
                        let _ = sw.shutdown().await;
                    });
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match sr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let k = chunks.fetch_add(1, Ordering::SeqCst) + 1;
                        if enabled.load(Ordering::SeqCst)
                            && k % every == 0
                            && budget
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                                    b.checked_sub(1)
                                })
                                .is_ok()
                        {
                            cuts.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    up.abort();
                });
            }
        });
        CutProxy {
            base,
            cuts,
            enabled,
            budget,
        }
    }

    /// The same stream URL, through the proxy.
    pub fn url_for(&self, stream_url: &str) -> String {
        format!("{}{}", self.base, path_of(stream_url))
    }
}

/// xorshift64 for the randomized tests: the same sequence for a seed on every machine.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A number from the environment (`DSC_SOAK_ROUNDS`, `DSC_SOAK_SEED`), if set and valid.
pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The seeds of a soak's rounds: `DSC_SOAK_ROUNDS` of them (default `rounds`), from
/// `DSC_SOAK_SEED` (default 1).
pub fn soak_seeds(rounds: u64) -> std::ops::Range<u64> {
    let rounds = env_u64("DSC_SOAK_ROUNDS").unwrap_or(rounds);
    let first = env_u64("DSC_SOAK_SEED").unwrap_or(1);
    first..first + rounds
}

/// The server of the subscription tests (webhooks on, long-poll timeout 1.5 s), one per test
/// binary.
pub fn subscription_server() -> &'static TestServer {
    static S: OnceLock<TestServer> = OnceLock::new();
    S.get_or_init(|| TestServer::start(&["--webhooks", "--long-poll-ms", "1500"]))
}

/// The subscriptions API of [`subscription_server`].
pub fn subscriptions() -> Subscriptions {
    Subscriptions::builder(format!("{}/v1/stream/", subscription_server().url))
        .client(client())
        .build()
        .unwrap()
}

/// Creates the JSON stream `path` under the subscriptions' root.
pub async fn create_json_stream(s: &Subscriptions, path: &str) {
    s.stream(path)
        .unwrap()
        .create(CreateOptions::json())
        .await
        .unwrap();
}

/// The offset after the last message of `path`.
pub async fn tail_offset(s: &Subscriptions, path: &str) -> String {
    let h = s.stream(path).unwrap().head().await.unwrap();
    h.next_offset.unwrap().as_str().to_owned()
}

/// Whether subscription `id` has acked every one of `paths` up to its tail.
pub async fn acked_to_tail(s: &Subscriptions, id: &str, paths: &[String]) -> bool {
    let sub = s.get(id).await.unwrap();
    for path in paths {
        if sub.acked_offset(path).map(|o| o.as_str().to_owned()) != Some(tail_offset(s, path).await)
        {
            return false;
        }
    }
    true
}
