//! Graceful shutdown of the real binary: SIGTERM stops accepting, finishes
//! the request in flight, closes the database pool and exits 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::process::ServerProcess;

/// Reads one HTTP/1.1 response with a `Content-Length` body.
fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).expect("read"),
            1,
            "connection closed"
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("body");
    buf.extend_from_slice(&body);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Whether a fresh connection gets a response at all.
fn new_connection_is_served(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out.starts_with(b"HTTP/1.1 200")
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits_zero() {
    let server = ServerProcess::start(&[
        ("LATCHKEY__LOG__LEVEL", "info"),
        ("LATCHKEY__SERVER__SHUTDOWN_TIMEOUT_SECS", "30"),
    ]);
    let mut conn = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    // A sign-up whose body is not sent yet when SIGTERM arrives. The server's
    // `100 Continue` shows that it has read the head and the request is in
    // flight (an idle keep-alive connection is simply closed at shutdown).
    let body = br#"{"email":"inflight@example.com","password":"correct horse battery"}"#;
    write!(
        conn,
        "POST /v1/users HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("write");
    let interim = read_response(&mut conn);
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");

    server.terminate();
    assert!(
        server.wait_for_log("SIGTERM received; starting graceful shutdown"),
        "{}",
        server.logs()
    );
    assert!(
        server.wait_for_log("graceful worker shutdown; finishing 1 connections"),
        "{}",
        server.logs()
    );
    // The accept loop was told to stop before the workers were: nothing new
    // is served.
    assert!(
        !new_connection_is_served(server.port),
        "still accepting after SIGTERM"
    );

    // The request in flight completes.
    conn.write_all(body).expect("write the body");
    let response = read_response(&mut conn);
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");

    let (status, logs) = server.wait();
    assert!(status.success(), "{status:?}\n{logs}");
    assert!(logs.contains("database pool closed"), "{logs}");
}
