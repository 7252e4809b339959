//! Redis pub/sub as a baseline, shared by the `latency` and `server_ws`
//! benches: a `redis-server` child on a free loopback port (no
//! persistence), and subscriber connections that read their socket
//! directly and count messages by their fixed frame length (cheaper than
//! any client library's parsing).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a bench waits for `redis-server` to accept connections.
pub const REDIS_START_WAIT_MAX: Duration = Duration::from_secs(10);
/// The Redis channel the messages go through.
pub const REDIS_CHANNEL: &str = "colloquy-bench";

/// A `redis-server` child on a free loopback port, killed when dropped.
pub struct RedisServer {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl RedisServer {
    /// The server process's id (to read its CPU time in `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `redis-server`, or says why not.
pub fn start_redis() -> Result<RedisServer, String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free loopback port: {e}"))?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--maxclients", "4096"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!("redis-server could not start ({e}); install it to measure the baseline")
        })?;
    let server = RedisServer { child, port };
    let deadline = Instant::now() + REDIS_START_WAIT_MAX;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "redis-server did not accept connections on port {port} within {REDIS_START_WAIT_MAX:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(server)
}

/// The RESP frame Redis sends a subscriber for one published body of
/// `body_bytes` bytes on [`REDIS_CHANNEL`]: all frames have this length,
/// so a subscriber counts messages by counting bytes.
pub fn redis_message_frame_bytes(body_bytes: usize) -> usize {
    let head = format!(
        "*3\r\n$7\r\nmessage\r\n${}\r\n{REDIS_CHANNEL}\r\n${body_bytes}\r\n",
        REDIS_CHANNEL.len(),
    );
    head.len() + body_bytes + 2
}

/// One subscriber connection: subscribes, counts itself in `subscribed`,
/// then calls `received(k)` for its `k`th message as the bytes arrive,
/// until it has `posts` messages of `body_bytes`-byte bodies.
pub async fn subscriber(
    port: u16,
    subscribed: Arc<AtomicU64>,
    posts: u64,
    body_bytes: usize,
    mut received: impl FnMut(usize),
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let channel = REDIS_CHANNEL;
    let subscribe = format!(
        "*2\r\n$9\r\nSUBSCRIBE\r\n${}\r\n{channel}\r\n",
        channel.len()
    );
    stream.write_all(subscribe.as_bytes()).await?;
    let confirm = format!(
        "*3\r\n$9\r\nsubscribe\r\n${}\r\n{channel}\r\n:1\r\n",
        channel.len()
    );
    let mut got = vec![0u8; confirm.len()];
    stream.read_exact(&mut got).await?;
    assert_eq!(got, confirm.as_bytes(), "Redis confirms the subscription");
    subscribed.fetch_add(1, Ordering::AcqRel);
    let frame = redis_message_frame_bytes(body_bytes);
    let (mut buffer, mut pending, mut k) = (vec![0u8; 64 * 1024], 0usize, 0usize);
    while (k as u64) < posts {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        pending += n;
        while pending >= frame {
            pending -= frame;
            received(k);
            k += 1;
        }
    }
    Ok(())
}
