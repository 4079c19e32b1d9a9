//! A real SMTP server for the tests, on a loopback port: it speaks enough of
//! RFC 5321 (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) for lettre to
//! deliver to it, keeps every message it accepts, and can be told to refuse
//! (421 at the greeting) or to hang (accept the connection, never answer).
//! In-process, so `cargo test` needs no mail server on the machine.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// How the sink treats a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// 421 at the greeting, then close: a transient refusal.
    Refuse,
    /// Accept the TCP connection and never say a word.
    Hang,
}

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    #[expect(dead_code, reason = "shown by Debug when a mail test fails")]
    pub from: String,
    pub to: Vec<String>,
    /// The raw message with quoted-printable soft breaks and escapes undone.
    pub data: String,
}

impl Received {
    /// The 43-character token after `marker` (e.g. `/reset-password?token=`).
    pub fn token_after(&self, marker: &str) -> Option<String> {
        let at = self.data.find(marker)? + marker.len();
        let token: String = self.data[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        (token.len() == 43).then_some(token)
    }

    pub fn subject(&self) -> Option<&str> {
        self.data.lines().find_map(|l| l.strip_prefix("Subject: "))
    }
}

#[derive(Default)]
struct State {
    messages: Vec<Received>,
    connections: usize,
    open: usize,
}

/// The running sink. Dropping it stops accepting.
pub struct SmtpSink {
    pub port: u16,
    state: Arc<Mutex<State>>,
    mode: Arc<Mutex<Mode>>,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    pub async fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let mode = Arc::new(Mutex::new(mode));
        let changed = Arc::new(Notify::new());
        let (s, m, c) = (state.clone(), mode.clone(), changed.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (s, m, c) = (s.clone(), m.clone(), c.clone());
                tokio::spawn(async move { serve(stream, s, m, c).await });
            }
        });
        Self {
            port,
            state,
            mode,
            changed,
            task,
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().expect("lock") = mode;
    }

    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().expect("lock").messages.clone()
    }

    /// Connections accepted so far, and those still open.
    pub fn connections(&self) -> (usize, usize) {
        let s = self.state.lock().expect("lock");
        (s.connections, s.open)
    }

    /// Waits (at most 30 s, then panics) until `check` holds.
    pub async fn wait_until(&self, what: &str, check: impl Fn(&SmtpSink) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let notified = self.changed.notified();
            if check(self) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("the SMTP sink never saw {what}");
            }
        }
    }

    /// Waits until at least `n` messages arrived; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        self.wait_until(&format!("{n} messages"), |s| s.messages().len() >= n)
            .await;
        self.messages()
    }

    /// Waits for the first message to `to` whose data contains `marker`.
    pub async fn wait_for_to(&self, to: &str, marker: &str) -> Received {
        self.wait_until(&format!("a message to {to} with {marker}"), |s| {
            s.find(to, marker).is_some()
        })
        .await;
        self.find(to, marker).expect("found")
    }

    pub fn find(&self, to: &str, marker: &str) -> Option<Received> {
        self.messages()
            .into_iter()
            .find(|m| m.to.iter().any(|t| t == to) && m.data.contains(marker))
    }
}

async fn serve(
    stream: TcpStream,
    state: Arc<Mutex<State>>,
    mode: Arc<Mutex<Mode>>,
    changed: Arc<Notify>,
) {
    {
        let mut s = state.lock().expect("lock");
        s.connections += 1;
        s.open += 1;
    }
    changed.notify_waiters();
    let current = *mode.lock().expect("lock");
    let _ = match current {
        Mode::Hang => hang(stream).await,
        Mode::Refuse => refuse(stream).await,
        Mode::Accept => converse(stream, &state, &changed).await,
    };
    state.lock().expect("lock").open -= 1;
    changed.notify_waiters();
}

async fn hang(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 512];
    while stream.read(&mut buf).await? > 0 {}
    Ok(())
}

async fn refuse(mut stream: TcpStream) -> std::io::Result<()> {
    stream
        .write_all(b"421 sink.test Service not available, try later\r\n")
        .await?;
    stream.shutdown().await
}

async fn converse(
    stream: TcpStream,
    state: &Arc<Mutex<State>>,
    changed: &Arc<Notify>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if upper.starts_with("RSET") {
            (from, to) = (String::new(), Vec::new());
            b"250 OK\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&line);
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&line));
            b"250 OK\r\n"
        } else if upper.starts_with("DATA") {
            write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let data = read_data(&mut lines).await?;
            state.lock().expect("lock").messages.push(Received {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data: decode_quoted_printable(&data),
            });
            changed.notify_waiters();
            b"250 OK queued\r\n"
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else {
            b"502 Command not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

async fn read_data(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<String> {
    let mut data = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(data);
        }
        if line == ".\r\n" || line == ".\n" {
            return Ok(data);
        }
        // RFC 5321 §4.5.2: a leading dot was doubled by the sender.
        data.push_str(line.strip_prefix('.').unwrap_or(&line));
    }
}

fn address(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line.rfind('>').unwrap_or(line.len());
    line[start..end.max(start)].to_owned()
}

/// Undoes quoted-printable soft line breaks and `=XX` escapes wherever they
/// appear (headers hold no such sequences).
fn decode_quoted_printable(s: &str) -> String {
    let joined = s.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
