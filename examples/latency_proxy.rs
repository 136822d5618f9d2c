//! A TCP proxy that adds a fixed delay to every request and to every new connection, as a
//! storage account in another region does: the latency benchmark (`benches/latency/run.sh`)
//! puts it between the job and Azurite.
//!
//! ```sh
//! cargo run --release --example latency_proxy -- 127.0.0.1:0 127.0.0.1:10000 25
//! ```
//!
//! It prints `listening on ADDR` once it accepts connections. A request is a turn of the
//! client's bytes after the server's answer (HTTP/1.1 does not pipeline), so no HTTP is parsed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, upstream, delay_ms] = args.as_slice() else {
        eprintln!("usage: latency_proxy LISTEN_ADDR UPSTREAM_ADDR DELAY_MS");
        std::process::exit(2);
    };
    let delay = Duration::from_millis(delay_ms.parse().map_err(std::io::Error::other)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind(listen).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (client, _) = listener.accept().await?;
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let _ = relay(client, &upstream, delay).await;
            });
        }
    })
}

/// Relays one connection, the handshake and every request delayed by `delay`.
async fn relay(client: TcpStream, upstream: &str, delay: Duration) -> std::io::Result<()> {
    tokio::time::sleep(delay).await;
    let server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    // Set when the server has answered since the client last sent: the client's next bytes
    // are a new request.
    let answered = Arc::new(AtomicBool::new(true));
    let seen = answered.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                return sw.shutdown().await;
            }
            if seen.swap(false, Ordering::AcqRel) {
                tokio::time::sleep(delay).await;
            }
            sw.write_all(&buf[..n]).await?;
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = sr.read(&mut buf).await?;
            if n == 0 {
                return cw.shutdown().await;
            }
            answered.store(true, Ordering::Release);
            cw.write_all(&buf[..n]).await?;
        }
    };
    let (a, b) = tokio::join!(up, down);
    a.and(b)
}
