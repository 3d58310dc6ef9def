//! Tests of the listener limits over real loopback sockets with a trivial handler: the
//! header-read timeout (L1), the per-connection request limit (L2) and the connection cap
//! (L3). The readable 413 (L4) goes through the real server in `server_tests.rs`.
//! Waits are bounded generously ([`PATIENCE`]); nothing asserts how fast the server is.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// The longest a test waits for something that must happen.
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct Ok200;

impl Handler for Ok200 {
    fn call(
        &self,
        _req: Request<Incoming>,
        _peer: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = HttpResponse> + Send>> {
        Box::pin(async { Response::new(Full::new(Bytes::from_static(b"ok"))) })
    }
}

struct Listening {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Listening {
    async fn start(limits: Limits) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = watch::channel(false);
        let done = tokio::spawn(run(listener, limits, Ok200, rx));
        Self { addr, stop, done }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(PATIENCE, self.done)
            .await
            .expect("listener stops")
            .unwrap()
            .unwrap();
    }
}

const GET: &str = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";

/// Reads until the server closes the connection (bounded); a reset counts as closed.
async fn read_until_closed(sock: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(PATIENCE, sock.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server did not close the connection");
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one response with a `content-length` body (bounded).
async fn read_response(sock: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let head_done = out.ends_with(b"\r\n\r\n");
        if head_done {
            let head = String::from_utf8_lossy(&out).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            let mut body = vec![0u8; len];
            tokio::time::timeout_at(deadline, sock.read_exact(&mut body))
                .await
                .expect("response body in time")
                .unwrap();
            out.extend_from_slice(&body);
            return String::from_utf8_lossy(&out).into_owned();
        }
        let n = tokio::time::timeout_at(deadline, sock.read(&mut byte))
            .await
            .expect("response in time")
            .unwrap();
        assert_eq!(n, 1, "connection closed mid-response: {:?}", out);
        out.push(byte[0]);
    }
}

#[tokio::test]
async fn l1_slow_headers_connection_closed() {
    let app = Listening::start(Limits {
        header_read_timeout: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    // A slowloris client: a request line and one header, then nothing.
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut slow).await;
    assert!(
        !got.contains("200"),
        "an unfinished request was answered: {got}"
    );
    // An idle keep-alive connection is closed by the same timeout after its request.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(GET.as_bytes()).await.unwrap();
    assert!(read_response(&mut idle).await.starts_with("HTTP/1.1 200"));
    assert_eq!(read_until_closed(&mut idle).await, "");
    app.stop().await;
}

#[tokio::test]
async fn l2_requests_per_connection_are_limited() {
    let pipelined = GET.repeat(5);
    // Control: under the limit, every pipelined request is answered on one connection.
    let app = Listening::start(Limits::default()).await;
    let mut sock = TcpStream::connect(app.addr).await.unwrap();
    sock.write_all(pipelined.as_bytes()).await.unwrap();
    for _ in 0..5 {
        let resp = read_response(&mut sock).await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(!resp.to_ascii_lowercase().contains("connection: close"));
    }
    drop(sock);
    app.stop().await;
    // A limit of 3: the third answer says close, the connection ends, the rest is unanswered.
    let app = Listening::start(Limits {
        max_requests_per_connection: 3,
        ..Limits::default()
    })
    .await;
    let mut sock = TcpStream::connect(app.addr).await.unwrap();
    sock.write_all(pipelined.as_bytes()).await.unwrap();
    for i in 1..=3 {
        let resp = read_response(&mut sock).await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        let close = resp.to_ascii_lowercase().contains("connection: close");
        assert_eq!(close, i == 3, "response {i}: {resp}");
    }
    assert_eq!(read_until_closed(&mut sock).await, "");
    app.stop().await;
}

#[tokio::test]
async fn l3_connections_beyond_the_cap_wait_for_a_free_slot() {
    let app = Listening::start(Limits {
        max_connections: 2,
        header_read_timeout: PATIENCE * 4,
        ..Limits::default()
    })
    .await;
    // Two connections that are certainly accepted (each got an answer) and stay open.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut sock = TcpStream::connect(app.addr).await.unwrap();
        sock.write_all(GET.as_bytes()).await.unwrap();
        assert!(read_response(&mut sock).await.starts_with("HTTP/1.1 200"));
        held.push(sock);
    }
    // A third one is queued by the kernel but not served while both slots are taken.
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    third.write_all(GET.as_bytes()).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_secs(1), third.read(&mut byte)).await;
    assert!(early.is_err(), "a connection over the cap was served");
    // Closing one held connection frees a slot: the third is served.
    drop(held.pop());
    let mut status = [0u8; 12];
    tokio::time::timeout(PATIENCE, third.read_exact(&mut status))
        .await
        .expect("the queued connection is served once a slot is free")
        .unwrap();
    assert_eq!(&status, b"HTTP/1.1 200");
    drop(held);
    drop(third);
    app.stop().await;
}

#[tokio::test]
async fn stop_waits_for_connections_and_ends_idle_ones() {
    let app = Listening::start(Limits::default()).await;
    let mut sock = TcpStream::connect(app.addr).await.unwrap();
    sock.write_all(GET.as_bytes()).await.unwrap();
    assert!(read_response(&mut sock).await.starts_with("HTTP/1.1 200"));
    // The idle keep-alive connection is closed by the graceful stop.
    let (_, closed) = tokio::join!(app.stop(), read_until_closed(&mut sock));
    assert_eq!(closed, "");
}
