//! The REST API's listener, with the bounds that keep one client from starving the others:
//! at most `max_connections` open connections, at most `per_client` from one address (the
//! rest are closed as they arrive), and a connection that takes longer than
//! `header_timeout` to send a request's headers, or sits idle that long between requests,
//! is closed. Without them a client holding a few hundred idle sockets used up the node's
//! file descriptors and `/api/v1/health` stopped answering. The file-descriptor limit
//! itself is raised to its hard limit at start-up, and the connection cap kept below it.
//! With a certificate, every connection is TLS (its handshake within the header timeout).

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Descriptors kept for everything but client connections: storage, Raft, the broker,
/// drivers' logs.
const RESERVED_FDS: u64 = 128;

/// How many connections the listener keeps, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub per_client: usize,
    pub header_timeout: Duration,
}

impl Limits {
    /// `self`, with the connection cap kept within `fd_limit` descriptors.
    pub fn within(self, fd_limit: u64) -> Limits {
        let room = fd_limit.saturating_sub(RESERVED_FDS).max(16) as usize;
        Limits {
            max_connections: self.max_connections.min(room),
            per_client: self.per_client.min(room),
            ..self
        }
    }
}

/// Raises this process's soft limit of open files to its hard limit; returns the limit.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// Open connections, in all and per client address.
struct Slots {
    limits: Limits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection's slot, given back when it closes.
struct Slot {
    slots: Arc<Slots>,
    client: IpAddr,
}

impl Slots {
    fn take(self: &Arc<Self>, client: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock();
        let (all, by_client) = &mut *open;
        let mine = by_client.get(&client).copied().unwrap_or(0);
        if *all >= self.limits.max_connections || mine >= self.limits.per_client {
            return None;
        }
        *all += 1;
        by_client.insert(client, mine + 1);
        Some(Slot {
            slots: self.clone(),
            client,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock();
        let (all, by_client) = &mut *open;
        *all -= 1;
        if let Some(n) = by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                by_client.remove(&self.client);
            }
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown`, then lets open requests
/// finish; over TLS with `tls`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Slots {
        limits,
        open: Mutex::new((0, HashMap::new())),
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(limits.header_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors (or another transient error): let some close
                    // before accepting again, instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    metrics::counter!("kindling_http_connections_refused_total", "reason" => "accept_error").increment(1);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                    }
                }
            },
        };
        let Some(slot) = slots.take(peer.ip()) else {
            metrics::counter!("kindling_http_connections_refused_total", "reason" => "limit")
                .increment(1);
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let service =
            hyper_util::service::TowerToHyperService::new(tower::ServiceExt::map_request(
                app.clone(),
                move |req: hyper::Request<hyper::body::Incoming>| {
                    let mut req = req.map(axum::body::Body::new);
                    // The peer address limits failed authentications per client.
                    req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                    req
                },
            ));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let header_timeout = limits.header_timeout;
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            // Telling HTTP/1 from HTTP/2 waits for the first bytes without a deadline of its
            // own: a connection that sends none is closed here.
            let mut first = [0u8; 1];
            match tokio::time::timeout(header_timeout, tcp.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let ended = match tls {
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(tls) => {
                    let handshake = tokio_rustls::TlsAcceptor::from(tls).accept(tcp);
                    let stream = match tokio::time::timeout(header_timeout, handshake).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_descriptors_and_slots_come_back() {
        let limits = Limits {
            max_connections: 4096,
            per_client: 256,
            header_timeout: Duration::from_secs(30),
        };
        let tight = limits.within(256);
        assert_eq!((tight.max_connections, tight.per_client), (128, 128));
        assert_eq!(limits.within(1 << 20), limits);

        let slots = Arc::new(Slots {
            limits: Limits {
                max_connections: 3,
                per_client: 2,
                ..limits
            },
            open: Mutex::new((0, HashMap::new())),
        });
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let a1 = slots.take(a).unwrap();
        let _a2 = slots.take(a).unwrap();
        assert!(slots.take(a).is_none(), "a third from one client");
        let _b1 = slots.take(b).unwrap();
        assert!(slots.take(b).is_none(), "a fourth in all");
        drop(a1);
        assert!(
            slots.take(b).is_some(),
            "a closed connection frees its slot"
        );
        assert_eq!(slots.open.lock().1.get(&a), Some(&1));
    }
}
