//! Test helpers: real servers on loopback, each started on a free port by the test that needs
//! it and stopped when the test's runtime ends.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{any, get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// An HTTP server on loopback with the routes the check tests need.
#[derive(Debug, Clone)]
pub struct TestHttp {
    /// `http://127.0.0.1:port`
    pub base: String,
    peers: Arc<Mutex<HashSet<SocketAddr>>>,
}

impl TestHttp {
    /// The URL of `path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    /// How many distinct client connections asked `/peer`.
    #[must_use]
    pub fn peer_connections(&self) -> usize {
        self.peers.lock().unwrap().len()
    }
}

/// Starts the HTTP test server. Routes: `/ok` (200 "ok"), `/json` (a JSON document with an
/// `x-service: api` header), `/bad-json` (200, JSON content type, invalid JSON), `/500`,
/// `/loop/a` ⇄ `/loop/b` (a redirect loop), `/redirect` (→ `/ok`), `/slow?ms=N` (answers after
/// N ms), `/echo` (any method: the method, the `x-test` header and the body, one per line),
/// `/peer` (records the client's address).
pub async fn http_server() -> TestHttp {
    let peers = Arc::new(Mutex::new(HashSet::new()));
    let app = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/json",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json"), (header::HeaderName::from_static("x-service"), "api")],
                    r#"{"status":"ok","version":"2.3.1","db":{"up":true,"latency_ms":3},"items":[1,2],"note":null}"#,
                )
            }),
        )
        .route("/bad-json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], "{\"status\": \"ok\", oops") }))
        .route("/500", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "database is down") }))
        .route("/loop/a", get(|| async { Redirect::temporary("/loop/b") }))
        .route("/loop/b", get(|| async { Redirect::temporary("/loop/a") }))
        .route("/redirect", get(|| async { Redirect::temporary("/ok") }))
        .route(
            "/slow",
            get(|RawQuery(q): RawQuery| async move {
                let ms = q.as_deref().and_then(|q| q.strip_prefix("ms=")).and_then(|v| v.parse().ok()).unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                "ok"
            }),
        )
        .route(
            "/echo",
            any(|method: Method, headers: HeaderMap, body: String| async move {
                let x = headers.get("x-test").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
                format!("{method}\n{x}\n{body}")
            }),
        )
        .route(
            "/peer",
            get(|State(peers): State<Arc<Mutex<HashSet<SocketAddr>>>>, ConnectInfo(addr): ConnectInfo<SocketAddr>| async move {
                peers.lock().unwrap().insert(addr);
                "ok".into_response()
            }),
        )
        .with_state(peers.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    TestHttp { base, peers }
}

/// A loopback port with nothing listening (bound, then released).
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

async fn read_request_head(s: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut b = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut b).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
}

/// A raw server, handling each connection with `handle`; returns its address.
pub async fn raw_server<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(handle(s));
        }
    });
    addr
}

/// Answers headers promising 1000 bytes, sends 10, then resets the connection (SO_LINGER 0).
pub async fn reset_mid_response() -> SocketAddr {
    raw_server(|mut s| async move {
        read_request_head(&mut s).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789")
            .await;
        let _ = s.flush().await;
        let _ = s.set_zero_linger();
        drop(s);
    })
    .await
}

/// Accepts connections and never answers (holds them open until the runtime ends).
pub async fn silent_server() -> SocketAddr {
    raw_server(|s| async move {
        let _held = s;
        std::future::pending::<()>().await;
    })
    .await
}

/// Answers headers promising 100 bytes, then sends one byte per second.
pub async fn slow_body_server() -> SocketAddr {
    raw_server(|mut s| async move {
        read_request_head(&mut s).await;
        if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        for _ in 0..100 {
            if s.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await
}

/// A server answering one request with a `total`-byte body, counting the bytes it managed to
/// write; the receiver gets that count when the client has gone (or all was sent).
pub async fn huge_body_server(total: u64) -> (SocketAddr, oneshot::Receiver<u64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        read_request_head(&mut s).await;
        let written = Arc::new(AtomicU64::new(0));
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {total}\r\n\r\n"
        );
        if s.write_all(head.as_bytes()).await.is_ok() {
            let chunk = vec![b'['; 64 << 10];
            while written.load(Ordering::Relaxed) < total {
                let n = (total - written.load(Ordering::Relaxed)).min(chunk.len() as u64) as usize;
                if s.write_all(&chunk[..n]).await.is_err() {
                    break;
                }
                written.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        let _ = tx.send(written.load(Ordering::Relaxed));
    });
    (addr, rx)
}

/// A TCP server that reads a line and answers `PONG <line>\n`, after a `220 ready\n` banner.
pub async fn line_server() -> SocketAddr {
    raw_server(|mut s| async move {
        if s.write_all(b"220 ready\n").await.is_err() {
            return;
        }
        let mut line = Vec::new();
        let mut b = [0u8; 256];
        while !line.contains(&b'\n') {
            match s.read(&mut b).await {
                Ok(0) | Err(_) => return,
                Ok(n) => line.extend_from_slice(&b[..n]),
            }
        }
        let mut answer = b"PONG ".to_vec();
        answer.extend_from_slice(&line);
        let _ = s.write_all(&answer).await;
    })
    .await
}

/// An HTTPS server with a fresh self-signed certificate for `localhost` and `127.0.0.1`,
/// answering every request with 200 "ok". Returns its address.
pub async fn self_signed_https() -> SocketAddr {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let der = rustls::pki_types::CertificateDer::from(cert.cert.der().to_vec());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    raw_server(move |s| {
        let acceptor = acceptor.clone();
        async move {
            let Ok(mut tls) = acceptor.accept(s).await else {
                return;
            };
            let mut buf = Vec::new();
            let mut b = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut b).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&b[..n]),
                }
            }
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
            let _ = tls.shutdown().await;
        }
    })
    .await
}

/// The value of a test-service variable set by `.ci/pg-redis.sh`. Panics (the test fails,
/// never skips) with what to run when it is absent.
#[must_use]
pub fn service_url(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => {
            let ci = if std::env::var_os("CI").is_some() {
                " (CI is set: .ci/run must start the services)"
            } else {
                ""
            };
            panic!(
                "{var} is not set{ci}: start Postgres and Redis with `eval \"$(.ci/pg-redis.sh)\"` and run the tests again"
            );
        }
    }
}
