//! Transient storage faults, injected: a small HTTP proxy between the job and Azurite (or
//! moto) answers a share of requests with 503 or 500, drops connections halfway through a
//! response body and stalls others past the client's timeout. object_store's retries must
//! carry the run to byte-identical outputs; a permanent 500 on one object must end with exit 3
//! naming it, or be skipped with `--skip-bad-files`. The proxy counts what it broke, so the
//! tests cannot pass without faults. Delaying every request, it is a distant store, which the
//! scan must meet with more requests in flight.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use crate::storage::{assert_same_as_local, azure_env, azurite, cli, helper, moto, s3_env, Server};

/// What the proxy does to the requests it forwards.
#[derive(Clone, Copy)]
struct Faults {
    /// One request in `every` is broken (0: none), in turn: 503, 500, a dropped body, a stall.
    every: usize,
    /// How long a stalled response waits (past the client's `timeout`).
    stall: Duration,
    /// Added to every request forwarded: a store further away.
    delay: Duration,
}

/// What the proxy broke.
#[derive(Default)]
struct Broken {
    forwarded: AtomicUsize,
    unavailable: AtomicUsize,
    server_error: AtomicUsize,
    dropped_bodies: AtomicUsize,
    stalled: AtomicUsize,
    /// Requests for the poisoned object, answered 500 every time.
    poisoned: AtomicUsize,
}

impl Broken {
    fn total(&self) -> usize {
        self.unavailable.load(Ordering::Relaxed)
            + self.server_error.load(Ordering::Relaxed)
            + self.dropped_bodies.load(Ordering::Relaxed)
            + self.stalled.load(Ordering::Relaxed)
    }

    fn report(&self) -> String {
        let n = |a: &AtomicUsize| a.load(Ordering::Relaxed);
        format!(
            "forwarded {}, 503 {}, 500 {}, dropped bodies {}, stalled {}, poisoned {}",
            n(&self.forwarded),
            n(&self.unavailable),
            n(&self.server_error),
            n(&self.dropped_bodies),
            n(&self.stalled),
            n(&self.poisoned)
        )
    }
}

/// A fault-injecting reverse proxy to `upstream`, on its own loopback port.
struct Proxy {
    endpoint: String,
    broken: Arc<Broken>,
    /// Requests whose path holds this are answered 500, always.
    poison: Arc<std::sync::Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
    }
}

impl Proxy {
    fn start(upstream: &str, faults: Faults) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let broken = Arc::new(Broken::default());
        let poison = Arc::new(std::sync::Mutex::new(None::<String>));
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicUsize::new(0));
        let (b, p, s) = (broken.clone(), poison.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (b, p, up, count) = (b.clone(), p.clone(), upstream.clone(), count.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &up, faults, &b, &p, &count);
                });
            }
        });
        Proxy {
            endpoint,
            broken,
            poison,
            stop,
        }
    }
}

/// Reads one HTTP/1.1 request (head and `Content-Length` body); `None` at end of stream.
fn read_request(conn: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 {
            return Ok(None);
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body)?;
    Ok(Some((head, body)))
}

/// The request head with `Connection: close`, so the upstream's answer ends at end of stream.
fn closing(head: &str) -> String {
    let mut out: Vec<&str> = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    out.push("Connection: close");
    format!("{}\r\n\r\n", out.join("\r\n"))
}

fn status(conn: &mut TcpStream, code: &str) -> std::io::Result<()> {
    let body = format!("injected {code}");
    write!(
        conn,
        "HTTP/1.1 {code}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
        body.len()
    )
}

/// Serves one client connection, request by request.
fn serve(
    mut conn: TcpStream,
    upstream: &str,
    faults: Faults,
    broken: &Broken,
    poison: &std::sync::Mutex<Option<String>>,
    count: &AtomicUsize,
) -> std::io::Result<()> {
    while let Some((head, body)) = read_request(&mut conn)? {
        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
        let poisoned = poison
            .lock()
            .unwrap()
            .as_deref()
            .is_some_and(|p| path.contains(p));
        if poisoned {
            broken.poisoned.fetch_add(1, Ordering::Relaxed);
            status(&mut conn, "500 Internal Server Error")?;
            continue;
        }
        let n = count.fetch_add(1, Ordering::Relaxed);
        let fault = (faults.every > 0 && n % faults.every == faults.every - 1)
            .then(|| (n / faults.every) % 4);
        match fault {
            Some(0) => {
                broken.unavailable.fetch_add(1, Ordering::Relaxed);
                status(&mut conn, "503 Service Unavailable")?;
                continue;
            }
            Some(1) => {
                broken.server_error.fetch_add(1, Ordering::Relaxed);
                status(&mut conn, "500 Internal Server Error")?;
                continue;
            }
            _ => {}
        }
        std::thread::sleep(faults.delay);
        let mut up = TcpStream::connect(upstream)?;
        up.write_all(closing(&head).as_bytes())?;
        up.write_all(&body)?;
        let mut answer = Vec::new();
        up.read_to_end(&mut answer)?;
        let head_end = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(answer.len(), |p| p + 4);
        match fault {
            // Only an answer with a body can be dropped halfway through it.
            Some(2) if answer.len() > head_end + 1 => {
                broken.dropped_bodies.fetch_add(1, Ordering::Relaxed);
                conn.write_all(&answer[..head_end + (answer.len() - head_end) / 2])?;
                conn.flush()?;
                let _ = conn.shutdown(Shutdown::Both);
                return Ok(());
            }
            Some(3) => {
                broken.stalled.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(faults.stall);
                return Ok(());
            }
            _ => {}
        }
        broken.forwarded.fetch_add(1, Ordering::Relaxed);
        conn.write_all(&answer)?;
    }
    Ok(())
}

/// Retries that outlast the faults: a 1 s timeout (stalls are 3 s), quick backoff.
const RETRY: [&str; 8] = [
    "--storage-option",
    "timeout=1s",
    "--storage-option",
    "max_retries=8",
    "--storage-option",
    "backoff_initial=20ms",
    "--storage-option",
    "backoff_max=200ms",
];

/// Generates the archive locally and, straight into the store (no proxy), at `logs/audit`.
fn upload(server: &Server, env: &[(&str, String)], scheme: &str, dir: &Path) -> PathBuf {
    let local = dir.join("archive");
    let flags = gen_flags(3, 30, 60, 4, 5);
    let mut gen = vec!["generate", "--out", local.to_str().unwrap()];
    gen.extend(flags.iter().map(String::as_str));
    succeeded(cli(&[], &gen));
    helper(scheme_kind(scheme), server, &["create", "logs"]);
    let remote = format!("{scheme}://logs/audit");
    let flags = gen_flags(3, 30, 60, 4, 5);
    let mut gen = vec!["generate", "--out", &remote];
    gen.extend(flags.iter().map(String::as_str));
    succeeded(cli(env, &gen));
    local
}

/// The run the tests compare: every object read, at a fixed T.
const BASE: [&str; 5] = ["run", "--no-cache", "-q", "--as-of", "2026-02-01"];

/// Uploads the archive (see [`upload`]) and runs the job on its local copy; the outputs' folder.
fn uploaded_and_run_locally(
    server: &Server,
    env: &[(&str, String)],
    scheme: &str,
    dir: &Path,
) -> PathBuf {
    let local = upload(server, env, scheme, dir);
    let want = dir.join("want");
    let mut args = BASE.to_vec();
    args.extend([
        "--archive",
        local.to_str().unwrap(),
        "--out",
        want.to_str().unwrap(),
    ]);
    succeeded(cli(&[], &args));
    want
}

fn scheme_kind(scheme: &str) -> &'static str {
    if scheme == "az" {
        "azure"
    } else {
        "s3"
    }
}

/// The job over the proxy gives the outputs of the job over local disk, though the proxy broke
/// requests of every kind; reports are written through the proxy too.
fn retried_to_the_same_outputs(scheme: &str, server: &Server, env: Vec<(&str, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let want = uploaded_and_run_locally(server, &env, scheme, dir.path());

    let proxy = Proxy::start(
        &server.endpoint,
        Faults {
            every: 3,
            stall: Duration::from_secs(3),
            delay: Duration::ZERO,
        },
    );
    let env = with_endpoint(env, &server.endpoint, &proxy.endpoint);
    let remote = format!("{scheme}://logs/audit");
    let out_url = format!("{scheme}://logs/reports");
    let mut args = BASE.to_vec();
    args.extend(["--archive", &remote, "--out", &out_url]);
    args.extend(RETRY);
    let got = cli(&env, &args);
    assert_eq!(
        got.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&got.stderr),
        proxy.broken.report()
    );
    let b = &proxy.broken;
    eprintln!("{scheme}:// through the proxy: {}", b.report());
    for (what, n) in [
        ("503", &b.unavailable),
        ("500", &b.server_error),
        ("dropped bodies", &b.dropped_bodies),
        ("stalls", &b.stalled),
    ] {
        assert!(n.load(Ordering::Relaxed) > 0, "no {what}: {}", b.report());
    }
    let unavailable = b.unavailable.load(Ordering::Relaxed) as u64;
    drop(proxy);
    let fetched = dir.path().join("fetched");
    helper(
        scheme_kind(scheme),
        server,
        &["get", "logs", "reports", fetched.to_str().unwrap()],
    );
    assert_same_as_local(&want, &fetched, &format!("{scheme}:// through faults"));
    // The scan counted the 503s it met, the ones that slow its fetches down (those of the
    // listing and of the reports' writes are not the scan's).
    let summary = summary(&fetched);
    let throttled = summary["timings"]["requests_throttled"].as_u64().unwrap();
    assert!(
        throttled > 0 && throttled <= unavailable,
        "{throttled} of {unavailable}"
    );
}

/// `env` with the store's endpoint replaced by the proxy's.
fn with_endpoint<'a>(env: Vec<(&'a str, String)>, from: &str, to: &str) -> Vec<(&'a str, String)> {
    env.into_iter()
        .map(|(k, v)| (k, if v == from { to.to_string() } else { v }))
        .collect()
}

/// A store 30 ms away: the scan keeps more objects in flight than a local scan has decoders
/// (the pace follows the latency), and finds what it finds on local disk.
#[test]
fn a_distant_store_gets_more_requests_in_flight() {
    let server = azurite();
    let dir = tempfile::tempdir().unwrap();
    let env = azure_env(&server);
    let want = uploaded_and_run_locally(&server, &env, "az", dir.path());
    // Locally each decoder reads its own object: two per core, at most.
    let cores = std::thread::available_parallelism().unwrap().get() as u64;
    let local = summary(&want)["timings"]["objects_in_flight"]
        .as_u64()
        .unwrap();
    assert!((1..=2 * cores).contains(&local), "local disk: {local}");
    let proxy = Proxy::start(
        &server.endpoint,
        Faults {
            every: 0,
            stall: Duration::ZERO,
            delay: Duration::from_millis(30),
        },
    );
    let env = with_endpoint(env, &server.endpoint, &proxy.endpoint);
    let got = dir.path().join("got");
    let mut args = BASE.to_vec();
    args.extend([
        "--archive",
        "az://logs/audit",
        "--out",
        got.to_str().unwrap(),
    ]);
    succeeded(cli(&env, &args));
    let ahead = summary(&got)["timings"]["objects_in_flight"]
        .as_u64()
        .unwrap();
    assert!(ahead > 8, "{ahead} in flight");
    assert_same_as_local(&want, &got, "az:// 30 ms away");
}

#[test]
fn azure_faults_are_retried_to_identical_outputs() {
    let server = azurite();
    retried_to_the_same_outputs("az", &server, azure_env(&server));
}

#[test]
fn s3_faults_are_retried_to_identical_outputs() {
    let server = moto();
    retried_to_the_same_outputs("s3", &server, s3_env(&server));
}

/// One object the store answers 500 for, every time: exit 3 naming it, or skipped and listed.
#[test]
fn a_permanent_500_on_one_object_is_that_objects_failure() {
    let server = azurite();
    let dir = tempfile::tempdir().unwrap();
    upload(&server, &azure_env(&server), "az", dir.path());
    let proxy = Proxy::start(
        &server.endpoint,
        Faults {
            every: 0,
            stall: Duration::ZERO,
            delay: Duration::ZERO,
        },
    );
    let bad = "y=2026/m=01/d=07/part-00000.parquet";
    *proxy.poison.lock().unwrap() = Some(format!("audit/{bad}"));
    let env = with_endpoint(azure_env(&server), &server.endpoint, &proxy.endpoint);
    let out = dir.path().join("out");
    let mut args = vec!["run", "--no-cache", "-q", "--archive", "az://logs/audit"];
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(RETRY);
    let failed = cli(&env, &args);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(bad) && stderr.contains("500"), "{stderr}");
    assert!(!out.join("summary.json").exists());
    // Retried first: a 500 may be transient.
    assert!(
        proxy.broken.poisoned.load(Ordering::Relaxed) > 1,
        "{}",
        proxy.broken.report()
    );

    args.push("--skip-bad-files");
    let skipped = succeeded(cli(&env, &args));
    let stderr = String::from_utf8_lossy(&skipped.stderr);
    assert!(stderr.contains(bad), "{stderr}");
    let bad_files = summary(&out)["bad_files"].clone();
    assert_eq!(bad_files.as_array().unwrap().len(), 1, "{bad_files}");
    assert_eq!(bad_files[0]["key"], bad);
    assert_eq!(proxy.broken.total(), 0);
}
