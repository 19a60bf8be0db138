//! A TCP proxy that caps the client-to-server byte rate: the "server" of the overload scenario
//! takes exactly this many bytes per second, whatever the client offers.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::util::Res;

const BURST: Duration = Duration::from_millis(20);

/// Listens on 127.0.0.1 (any port), prints `http://127.0.0.1:PORT`, forwards to `upstream`.
pub async fn run(upstream: String, bytes_per_sec: f64) -> Res<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("http://{}", listener.local_addr()?);
    // The time at which the shared link is free again.
    let link = Arc::new(Mutex::new(Instant::now()));
    loop {
        let (client, _) = listener.accept().await?;
        let upstream = upstream.clone();
        let link = Arc::clone(&link);
        tokio::spawn(async move {
            if let Ok(server) = TcpStream::connect(&upstream).await {
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let _ = pipe(client, server, link, bytes_per_sec).await;
            }
        });
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    link: Arc<Mutex<Instant>>,
    rate: f64,
) -> Res<()> {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let down = tokio::spawn(async move { tokio::io::copy(&mut sr, &mut cw).await });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = cr.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let done = {
            let mut free = link.lock().await;
            // Up to BURST of credit, so that timer overshoot (about 1 ms per sleep) does not
            // lower the rate below the target.
            let now = Instant::now();
            let start = (*free).max(now.checked_sub(BURST).unwrap_or(now));
            *free = start + Duration::from_secs_f64(n as f64 / rate);
            *free
        };
        tokio::time::sleep_until(done).await;
        sw.write_all(&buf[..n]).await?;
    }
    sw.shutdown().await?;
    let _ = down.await;
    Ok(())
}
