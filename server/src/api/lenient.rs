//! Request targets as people type them. `curl
//! 'http://host/api/v1/events?subject=logs.>'` sends the `>` raw (browsers
//! percent-encode it, curl does not), and the HTTP stack refuses such a
//! request line before any handler runs: a 400 with an empty body. NATS
//! subjects are full of `>`, so the listener percent-encodes the bytes the
//! stack refuses (`"`, `<`, `>`, `\`, `^`, `` ` ``, `{`, `|`, `}`) in each
//! HTTP/1 request line's target before the stack reads it; the handlers
//! decode them as they decode `%3E`.
//!
//! Only request heads are touched. After a head that announces a body
//! (`Content-Length` other than 0, `Transfer-Encoding`) or an upgrade (the
//! WebSocket), the rest of the connection passes through unread; so does
//! anything that is not HTTP/1.0 or 1.1 (HTTP/2), and a line longer than
//! [`MAX_LINE`] (the stack refuses it).

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The longest request or header line looked at.
pub const MAX_LINE: usize = 16 << 10;

/// A TCP listener whose connections are [`LenientIo`]: at most
/// `--max-connections` open at once (past it, new ones wait in the OS's
/// backlog until one closes), each given [`LenientListener::head_timeout`]
/// to send a request head.
#[derive(Debug)]
pub struct LenientListener {
    listener: TcpListener,
    open: Arc<tokio::sync::Semaphore>,
    head_timeout: std::time::Duration,
}

impl LenientListener {
    /// Serves `listener`, `max_connections` at once, cutting a connection
    /// whose request head has not come within `head_timeout` of its
    /// opening or of the previous head (a client that sends half a head
    /// and waits would otherwise hold its connection, and the graceful
    /// stop, for ever).
    pub fn new(
        listener: TcpListener,
        max_connections: usize,
        head_timeout: std::time::Duration,
    ) -> LenientListener {
        LenientListener {
            listener,
            open: Arc::new(tokio::sync::Semaphore::new(max_connections.max(1))),
            head_timeout,
        }
    }
}

impl axum::serve::Listener for LenientListener {
    type Io = LenientIo<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed.
        let permit = Arc::clone(&self.open).acquire_owned().await.ok();
        let (io, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        let mut io = LenientIo::new(io).with_head_timeout(self.head_timeout);
        io.permit = permit;
        (io, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// HTTP connections open at once, by default (`--max-connections`): the
/// live sockets' own cap (`--ws-max-clients`, 4,096) and as many again for
/// pages and API calls.
pub const MAX_CONNECTIONS: u32 = 8_192;

/// How long a client has to send a request head, by default.
pub const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The address a request came from (a handler extracts it as
/// `Extension<ConnectInfo<Peer>>`; absent when the router is served
/// another way, as in some tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub std::net::SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, LenientListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, LenientListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a request line.
    Line,
    /// Reading header lines.
    Headers { body: bool, upgrade: bool },
    /// Passing everything through.
    Pass,
}

/// A connection whose request lines are made acceptable (see the module).
#[derive(Debug)]
pub struct LenientIo<T> {
    inner: T,
    state: State,
    /// The line being read.
    line: Vec<u8>,
    /// Bytes ready to be read, from `done` on.
    out: Vec<u8>,
    done: usize,
    /// Time allowed for a request head (none: no limit).
    head_timeout: Option<std::time::Duration>,
    /// When the head being waited for must have come (set on the first
    /// read while waiting for one).
    head_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The connection's place among those open at once.
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl<T> LenientIo<T> {
    /// Wraps a connection at its start.
    pub fn new(inner: T) -> Self {
        LenientIo {
            inner,
            state: State::Line,
            line: Vec::new(),
            out: Vec::new(),
            done: 0,
            head_timeout: None,
            head_deadline: None,
            permit: None,
        }
    }

    /// The same, cutting the connection (`TimedOut`) when a request head
    /// takes longer than `timeout` from the connection's start or the
    /// previous head's end.
    pub fn with_head_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.head_timeout = Some(timeout);
        self
    }

    /// Whether a request head is being waited for.
    fn in_head(&self) -> bool {
        self.state != State::Pass
    }

    /// Takes bytes read from the connection.
    fn take(&mut self, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            if self.state == State::Pass {
                self.out.extend_from_slice(&bytes[i..]);
                return;
            }
            self.line.push(b);
            if b == b'\n' {
                self.end_line();
            } else if self.line.len() > MAX_LINE {
                self.out.append(&mut self.line);
                self.state = State::Pass;
            }
        }
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        match self.state {
            State::Line => {
                // Blank lines between requests are allowed.
                if line.iter().all(|b| b.is_ascii_whitespace()) {
                    self.out.extend_from_slice(&line);
                    return;
                }
                let text = trim_eol(&line);
                let first = text.iter().position(|&b| b == b' ');
                let last = text.iter().rposition(|&b| b == b' ');
                match (first, last) {
                    (Some(a), Some(z))
                        if a < z && matches!(&text[z + 1..], b"HTTP/1.1" | b"HTTP/1.0") =>
                    {
                        self.out.extend_from_slice(&text[..=a]);
                        for &c in &text[a + 1..z] {
                            if REFUSED.contains(&c) {
                                self.out.extend_from_slice(&[
                                    b'%',
                                    HEX[usize::from(c >> 4)],
                                    HEX[usize::from(c & 15)],
                                ]);
                            } else {
                                self.out.push(c);
                            }
                        }
                        self.out.extend_from_slice(&line[z..]);
                        self.state = State::Headers {
                            body: false,
                            upgrade: false,
                        };
                    }
                    _ => {
                        self.out.extend_from_slice(&line);
                        self.state = State::Pass;
                    }
                }
            }
            State::Headers { body, upgrade } => {
                self.out.extend_from_slice(&line);
                let text = trim_eol(&line);
                if text.is_empty() {
                    self.state = if body || upgrade {
                        State::Pass
                    } else {
                        State::Line
                    };
                    // The next head's time starts now.
                    self.head_deadline = None;
                    return;
                }
                let Some(colon) = text.iter().position(|&b| b == b':') else {
                    return;
                };
                let name = &text[..colon];
                let value = String::from_utf8_lossy(&text[colon + 1..])
                    .trim()
                    .to_ascii_lowercase();
                let body = body
                    || (name.eq_ignore_ascii_case(b"content-length") && value != "0")
                    || name.eq_ignore_ascii_case(b"transfer-encoding");
                let upgrade = upgrade
                    || name.eq_ignore_ascii_case(b"upgrade")
                    || (name.eq_ignore_ascii_case(b"connection") && value.contains("upgrade"));
                self.state = State::Headers { body, upgrade };
            }
            State::Pass => self.out.extend_from_slice(&line),
        }
    }
}

/// Bytes of a request target the HTTP stack refuses unencoded.
const REFUSED: &[u8] = b"\"<>\\^`{|}";
const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

impl<T: AsyncRead + Unpin> AsyncRead for LenientIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.done < this.out.len() {
                let n = buf.remaining().min(this.out.len() - this.done);
                buf.put_slice(&this.out[this.done..this.done + n]);
                this.done += n;
                if this.done == this.out.len() {
                    this.out.clear();
                    this.done = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.state == State::Pass && this.line.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            if this.in_head()
                && let Some(timeout) = this.head_timeout
            {
                let deadline = this
                    .head_deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no request head within {timeout:?}"),
                    )));
                }
            }
            let mut chunk = [0u8; 4096];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    // The end: what is left of a line goes as it is.
                    if this.line.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                    this.out.append(&mut this.line);
                    this.state = State::Pass;
                }
                Poll::Ready(Ok(())) => this.take(read.filled()),
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for LenientIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// What the HTTP stack reads when a client sends `sent` in pieces of
    /// `piece` bytes.
    async fn seen(sent: &[u8], piece: usize) -> Vec<u8> {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut io = LenientIo::new(server);
        for part in sent.chunks(piece) {
            client.write_all(part).await.expect("write");
        }
        drop(client);
        let mut out = Vec::new();
        io.read_to_end(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn request_targets_are_encoded_and_nothing_else_is_touched() {
        let sent = b"GET /api/v1/events?subject=logs.>&q=\"a|b\" HTTP/1.1\r\nHost: x\r\nX-Note: <kept>\r\n\r\n\
GET /api/v1/events?subject=a.*.<b> HTTP/1.1\r\nHost: x\r\n\r\n\
PUT /api/v1/demo HTTP/1.1\r\nContent-Length: 29\r\n\r\n{\"x\":\"<>\"}\r\nGET /a> HTTP/1.1\r\n\r\n";
        let want = b"GET /api/v1/events?subject=logs.%3E&q=%22a%7Cb%22 HTTP/1.1\r\nHost: x\r\nX-Note: <kept>\r\n\r\n\
GET /api/v1/events?subject=a.*.%3Cb%3E HTTP/1.1\r\nHost: x\r\n\r\n\
PUT /api/v1/demo HTTP/1.1\r\nContent-Length: 29\r\n\r\n{\"x\":\"<>\"}\r\nGET /a> HTTP/1.1\r\n\r\n";
        // Whole, and a byte at a time (lines split across reads).
        for piece in [sent.len(), 1, 7] {
            assert_eq!(
                String::from_utf8_lossy(&seen(sent, piece).await),
                String::from_utf8_lossy(want),
                "in pieces of {piece}"
            );
        }
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        /// Something a client might send: request lines with any target,
        /// headers (a body or an upgrade among them), blank lines, bodies,
        /// any bytes; never a `%` (so that the rewriter's own encodings
        /// can be read back).
        fn stream() -> impl Strategy<Value = Vec<u8>> {
            let target = "[ -$&-~]{0,40}";
            let part = prop_oneof![
                (
                    prop::sample::select(vec!["GET", "PUT", "POST", "PRI"]),
                    target,
                    prop::sample::select(vec!["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "x"])
                )
                    .prop_map(|(m, t, v)| format!("{m} {t} {v}\r\n").into_bytes()),
                prop::sample::select(vec![
                    "Host: x\r\n",
                    "Content-Length: 3\r\n",
                    "Content-Length: 0\r\n",
                    "Connection: Upgrade\r\n",
                    "Upgrade: websocket\r\n",
                    "Transfer-Encoding: chunked\r\n",
                    "X-Note: <\"|\">\r\n",
                    "\r\n",
                    "\n",
                ])
                .prop_map(|h| h.as_bytes().to_vec()),
                prop::collection::vec(any::<u8>().prop_filter("no %", |b| *b != b'%'), 0..20),
            ];
            prop::collection::vec(part, 0..12).prop_map(|parts| parts.concat())
        }

        /// The rewriter's own encodings read back (the input had no `%`).
        fn decoded(out: &[u8]) -> Vec<u8> {
            let mut back = Vec::with_capacity(out.len());
            let mut i = 0;
            while i < out.len() {
                if out[i] == b'%' && i + 2 < out.len() {
                    let hex = std::str::from_utf8(&out[i + 1..i + 3]).ok();
                    let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                    if let Some(b) = byte.filter(|b| REFUSED.contains(b)) {
                        back.push(b);
                        i += 3;
                        continue;
                    }
                }
                back.push(out[i]);
                i += 1;
            }
            back
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(crate::fuzz_cases(1_000)))]

            /// However a client's bytes are cut into reads, the HTTP stack
            /// reads the same; and what it reads is what was sent, with at
            /// most the refused bytes of request targets encoded.
            #[test]
            fn fuzz_any_bytes_in_any_pieces_come_out_the_same_with_only_targets_encoded(
                sent in stream(),
                piece in 1usize..64,
            ) {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("runtime");
                let (whole, cut) = runtime.block_on(async {
                    (seen(&sent, sent.len().max(1)).await, seen(&sent, piece).await)
                });
                prop_assert_eq!(&whole, &cut, "pieces of {}", piece);
                prop_assert_eq!(decoded(&whole), sent);
            }
        }
    }

    #[tokio::test]
    async fn upgrades_other_protocols_and_long_lines_pass_through() {
        let ws = b"GET /ws?x=> HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05<>|{}";
        let out = seen(ws, 3).await;
        assert!(out.starts_with(b"GET /ws?x=%3E HTTP/1.1\r\n"));
        assert!(out.ends_with(b"\r\n\r\n\x81\x05<>|{}"), "frames untouched");
        let h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00<>";
        assert_eq!(seen(h2, 5).await, h2.to_vec());
        let long = [
            b"GET /".as_slice(),
            &vec![b'>'; MAX_LINE + 10],
            b" HTTP/1.1\r\n\r\n",
        ]
        .concat();
        assert_eq!(seen(&long, 1000).await, long, "left to the stack to refuse");
    }
}
