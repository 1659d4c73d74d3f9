//! A fault-injecting TCP proxy. Each link of the cluster (a node to a peer's Raft port, a node
//! to the broker, a client to a node, ...) runs through one, and the nemesis switches it:
//!
//! - `Pass`: bytes flow both ways.
//! - `Drop`: every connection is reset (RST), and new ones are reset as soon as accepted.
//! - `Blackhole`: connections stay open and new ones are accepted, but nothing is forwarded
//!   until the link heals; then the held bytes flow on. This is a partition as TCP sees one
//!   (packets lost, retransmitted once the network returns), not a closed socket.
//!
//! The proxy takes an already-bound listener and a dial function, so the caller decides in
//! which network namespace each end lives.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkMode {
    Pass,
    Drop,
    Blackhole,
}

impl From<crate::schedule::Cut> for LinkMode {
    fn from(c: crate::schedule::Cut) -> Self {
        match c {
            crate::schedule::Cut::Drop => LinkMode::Drop,
            crate::schedule::Cut::Blackhole => LinkMode::Blackhole,
        }
    }
}

/// Opens the upstream connection of one proxied connection.
pub type Dial = Arc<dyn Fn() -> BoxFuture<'static, io::Result<TcpStream>> + Send + Sync>;

/// A dial function for an address in this process's own network namespace.
pub fn dial_addr(addr: SocketAddr) -> Dial {
    Arc::new(move || {
        Box::pin(async move {
            tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
        })
    })
}

pub struct Proxy {
    pub name: String,
    addr: SocketAddr,
    mode: watch::Sender<LinkMode>,
    stats: Arc<Stats>,
    accept_task: tokio::task::JoinHandle<()>,
}

/// What one proxy has carried, kept in a run's directory so a stalled link can be told from a
/// quiet one.
#[derive(Debug, Default)]
struct Stats {
    accepted: AtomicU64,
    accept_errors: AtomicU64,
    /// Connections being served (held, dialling or piping).
    open: AtomicU64,
    /// Bytes read from the connecting side (to forward upstream), and from the upstream.
    up: AtomicU64,
    down: AtomicU64,
}

/// A snapshot of a proxy's [`Stats`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProxyStats {
    pub name: String,
    pub mode: LinkMode,
    pub accepted: u64,
    pub accept_errors: u64,
    pub open: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

impl Proxy {
    /// Starts forwarding connections accepted on `listener` to what `dial` opens. Must be
    /// called inside a tokio runtime.
    pub fn spawn(name: &str, listener: std::net::TcpListener, dial: Dial) -> io::Result<Proxy> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = TcpListener::from_std(listener)?;
        let (tx, rx) = watch::channel(LinkMode::Pass);
        let stats = Arc::new(Stats::default());
        let shared = stats.clone();
        let accept_task = tokio::spawn(async move {
            loop {
                let conn = match listener.accept().await {
                    Ok((conn, _)) => conn,
                    Err(_) => {
                        // Out of descriptors, say: the listener stays readable, so retrying
                        // at once would spin a worker of the runtime every proxy shares.
                        shared.accept_errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                shared.accepted.fetch_add(1, Ordering::Relaxed);
                let _ = conn.set_nodelay(true);
                let (stats, dial, mode) = (shared.clone(), dial.clone(), rx.clone());
                tokio::spawn(async move {
                    stats.open.fetch_add(1, Ordering::Relaxed);
                    serve(conn, dial, mode, &stats).await;
                    stats.open.fetch_sub(1, Ordering::Relaxed);
                });
            }
        });
        Ok(Proxy {
            name: name.to_string(),
            addr,
            mode: tx,
            stats,
            accept_task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set(&self, mode: LinkMode) {
        self.mode.send_replace(mode);
    }

    pub fn mode(&self) -> LinkMode {
        *self.mode.borrow()
    }

    pub fn stats(&self) -> ProxyStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ProxyStats {
            name: self.name.clone(),
            mode: self.mode(),
            accepted: get(&self.stats.accepted),
            accept_errors: get(&self.stats.accept_errors),
            open: get(&self.stats.open),
            bytes_up: get(&self.stats.up),
            bytes_down: get(&self.stats.down),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        // Closing the watch ends every connection task.
        self.mode.send_replace(LinkMode::Drop);
    }
}

/// Closes a socket with a reset, as a failed link would.
fn reset(s: TcpStream) {
    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    drop(s);
}

async fn serve(client: TcpStream, dial: Dial, mut mode: watch::Receiver<LinkMode>, stats: &Stats) {
    // A blackholed link holds a new connection until it heals.
    loop {
        let now = *mode.borrow_and_update();
        match now {
            LinkMode::Pass => break,
            LinkMode::Drop => return reset(client),
            LinkMode::Blackhole => {
                if mode.changed().await.is_err() {
                    return reset(client);
                }
            }
        }
    }
    let upstream = match dial().await {
        Ok(u) => u,
        Err(_) => return reset(client),
    };
    let _ = upstream.set_nodelay(true);
    if pipe(&client, &upstream, &mode, stats).await.is_err() {
        reset(client);
        reset(upstream);
    }
}

/// Why a pipe stopped early: the link was dropped or a socket failed.
struct Cut;

/// Forwards both ways until both sides have closed, pausing while blackholed.
///
/// The two directions progress apart, as on a real network: a write that waits on a peer
/// that is not reading never stops bytes flowing the other way. (A peer that writes a long
/// answer before it reads the next request relies on that.)
async fn pipe(
    a: &TcpStream,
    b: &TcpStream,
    mode: &watch::Receiver<LinkMode>,
    stats: &Stats,
) -> Result<(), Cut> {
    tokio::try_join!(
        one_way(a, b, mode.clone(), &stats.up),
        one_way(b, a, mode.clone(), &stats.down),
    )
    .map(|_| ())
}

/// Forwards what `from` sends to `to` until `from` closes (its FIN is passed on).
async fn one_way(
    from: &TcpStream,
    to: &TcpStream,
    mut mode: watch::Receiver<LinkMode>,
    bytes: &AtomicU64,
) -> Result<(), Cut> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let paused = match *mode.borrow_and_update() {
            LinkMode::Pass => false,
            LinkMode::Blackhole => true,
            LinkMode::Drop => return Err(Cut),
        };
        let n = tokio::select! {
            changed = mode.changed() => {
                if changed.is_err() {
                    return Err(Cut);
                }
                continue;
            }
            r = read(from, &mut buf), if !paused => r.map_err(|_| Cut)?,
        };
        if n == 0 {
            // Half-close: pass the FIN on.
            let _ = socket2::SockRef::from(to).shutdown(std::net::Shutdown::Write);
            return Ok(());
        }
        bytes.fetch_add(n as u64, Ordering::Relaxed);
        forward(&buf[..n], to, &mut mode).await?;
    }
}

async fn read(s: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        s.readable().await?;
        match s.try_read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Writes all of `buf` to `to`. A write that waits on a stalled peer still gives way to a
/// dropped link.
async fn forward(
    buf: &[u8],
    to: &TcpStream,
    mode: &mut watch::Receiver<LinkMode>,
) -> Result<(), Cut> {
    let mut done = 0;
    while done < buf.len() {
        tokio::select! {
            w = write(to, &buf[done..]) => done += w.map_err(|_| Cut)?,
            changed = mode.changed() => {
                if changed.is_err() || *mode.borrow() == LinkMode::Drop {
                    return Err(Cut);
                }
            }
        }
    }
    Ok(())
}

async fn write(s: &TcpStream, buf: &[u8]) -> io::Result<usize> {
    loop {
        s.writable().await?;
        match s.try_write(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn read_exact(s: &mut TcpStream, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; n];
        s.read_exact(&mut buf).await?;
        Ok(buf)
    }

    async fn write_all(s: &mut TcpStream, buf: &[u8]) -> io::Result<()> {
        s.write_all(buf).await
    }

    /// A server on a free port that runs `conn` on each connection it accepts.
    async fn server<F, Fut>(conn: F) -> SocketAddr
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (s, _) = l.accept().await.unwrap();
                tokio::spawn(conn(s));
            }
        });
        addr
    }

    /// An echo server on a free port.
    async fn echo() -> SocketAddr {
        server(|mut s| async move {
            let mut buf = [0u8; 1024];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        })
        .await
    }

    fn proxy_to(addr: SocketAddr) -> Proxy {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        Proxy::spawn("test", l, dial_addr(addr)).unwrap()
    }

    async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> io::Result<Vec<u8>> {
        write_all(s, msg).await?;
        read_exact(s, msg.len()).await
    }

    /// Waits (with a deadline) for the connection to end, by reset or close.
    async fn ends(s: &mut TcpStream) -> bool {
        let mut buf = [0u8; 16];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    #[tokio::test]
    async fn passes_bytes_both_ways() {
        let p = proxy_to(echo().await);
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert_eq!(round_trip(&mut s, b"hello").await.unwrap(), b"hello");
        let big = vec![7u8; 300_000];
        assert_eq!(round_trip(&mut s, &big).await.unwrap(), big);
        assert_eq!(p.stats().accepted, 1);
    }

    /// A server that writes its whole answer before it reads the request, then confirms it
    /// read all of it.
    async fn answers_before_reading(size: usize) -> SocketAddr {
        server(move |mut s| async move {
            let answer = vec![1u8; size];
            if s.write_all(&answer).await.is_err() {
                return;
            }
            let Ok(request) = read_exact(&mut s, size).await else {
                return;
            };
            let ok = request.iter().all(|&b| b == 2);
            let _ = s.write_all(if ok { b"good" } else { b"bad!" }).await;
        })
        .await
    }

    /// Writes a request and reads the answer at the same time, as a full-duplex client does.
    async fn exchange(addr: SocketAddr, size: usize) -> Vec<u8> {
        let s = TcpStream::connect(addr).await.unwrap();
        let (mut r, mut w) = s.into_split();
        let request = vec![2u8; size];
        let (sent, got) = tokio::join!(w.write_all(&request), async {
            let mut got = vec![0u8; size + 4];
            r.read_exact(&mut got).await.map(|_| got)
        });
        sent.unwrap();
        let got = got.unwrap();
        assert!(
            got[..size].iter().all(|&b| b == 1),
            "the answer was garbled"
        );
        got[size..].to_vec()
    }

    #[tokio::test]
    async fn a_direction_waiting_on_its_peer_does_not_stop_the_other() {
        // More than loopback's socket buffers hold, so both directions must flow at once.
        let size = 32 << 20;
        let server = answers_before_reading(size).await;
        let limit = Duration::from_secs(30);
        // Without a proxy the exchange completes: the scenario is sound TCP.
        let direct = tokio::time::timeout(limit, exchange(server, size)).await;
        assert_eq!(direct.expect("the direct exchange stalled"), b"good");
        let p = proxy_to(server);
        let proxied = tokio::time::timeout(limit, exchange(p.addr(), size)).await;
        assert_eq!(
            proxied.expect("the proxy stopped one direction behind the other"),
            b"good"
        );
        let stats = p.stats();
        assert_eq!(
            (stats.bytes_up, stats.bytes_down),
            (size as u64, size as u64 + 4)
        );
    }

    #[tokio::test]
    async fn drop_resets_existing_and_new_connections() {
        let p = proxy_to(echo().await);
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert_eq!(round_trip(&mut s, b"a").await.unwrap(), b"a");
        p.set(LinkMode::Drop);
        assert!(
            ends(&mut s).await,
            "the existing connection survived a drop"
        );
        let mut fresh = TcpStream::connect(p.addr()).await.unwrap();
        assert!(ends(&mut fresh).await, "a new connection survived a drop");
        p.set(LinkMode::Pass);
        let mut again = TcpStream::connect(p.addr()).await.unwrap();
        assert_eq!(round_trip(&mut again, b"b").await.unwrap(), b"b");
    }

    #[tokio::test]
    async fn blackhole_holds_bytes_until_healed() {
        let p = proxy_to(echo().await);
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert_eq!(round_trip(&mut s, b"x").await.unwrap(), b"x");
        p.set(LinkMode::Blackhole);
        write_all(&mut s, b"held").await.unwrap();
        let mut fresh = TcpStream::connect(p.addr()).await.unwrap();
        write_all(&mut fresh, b"new").await.unwrap();
        // Nothing may come back while the link is down; this wait is the assertion.
        let mut buf = [0u8; 4];
        assert!(
            tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf))
                .await
                .is_err(),
            "bytes crossed a blackholed link"
        );
        p.set(LinkMode::Pass);
        assert_eq!(read_exact(&mut s, 4).await.unwrap(), b"held");
        assert_eq!(read_exact(&mut fresh, 3).await.unwrap(), b"new");
    }

    #[tokio::test]
    async fn an_unreachable_upstream_closes_the_client() {
        let gone = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let p = proxy_to(gone);
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert!(ends(&mut s).await);
    }
}
