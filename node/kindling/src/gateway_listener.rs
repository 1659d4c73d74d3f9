//! The driver gateway's connections: plain TCP, or TLS with the node's certificate (the same
//! files as the REST API's, reloaded the same way). Each TLS handshake runs in a task of its
//! own with a deadline, so a client that opens a socket and sends nothing holds up no other
//! driver; finished handshakes go to the gRPC server in the order they complete. Every
//! connection gets `TCP_NODELAY`: statements and results are small messages, and without it
//! each waits out a delayed ACK (40 ms).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

/// How long a driver has to finish its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const BACKLOG: usize = 64;

/// A driver's connection, as the gRPC server takes it.
pub enum DriverConn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The connections `listener` accepts until `shutdown`, over TLS with `tls`.
pub fn incoming(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) -> Pin<Box<dyn Stream<Item = io::Result<DriverConn>> + Send>> {
    let plain = |conn: io::Result<TcpStream>| {
        conn.inspect(|c| {
            let _ = c.set_nodelay(true);
        })
    };
    let Some(tls) = tls else {
        let stream = tokio_stream::wrappers::TcpListenerStream::new(listener);
        return Box::pin(StreamExt::map(stream, move |c| {
            plain(c).map(DriverConn::Plain)
        }));
    };
    let (tx, rx) = tokio::sync::mpsc::channel(BACKLOG);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "driver gateway: cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(DriverConn::Tls(Box::new(tls)))).await;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "driver gateway: TLS handshake failed")
                    }
                    Err(_) => tracing::debug!(%peer, "driver gateway: TLS handshake timed out"),
                }
            });
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

impl tonic::transport::server::Connected for DriverConn {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for DriverConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            DriverConn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            DriverConn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for DriverConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            DriverConn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            DriverConn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            DriverConn::Plain(s) => Pin::new(s).poll_flush(cx),
            DriverConn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            DriverConn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            DriverConn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
