//! The node's HTTP/1.1 server loop: accepts connections and serves the router on each.
//!
//! Not `axum::serve`: that server first sniffs every connection for HTTP/2 and wraps its
//! socket in a private type, so a WebSocket upgrade hands back a socket nobody can reach. The
//! live feed wants the plain `TcpStream` back (api/live/ws.rs writes each update straight to
//! it), and the node has no use for HTTP/2 without TLS. Like `axum::serve` it gives handlers
//! the peer's address (`ConnectInfo<SocketAddr>`, which the login rate limit is keyed by) and
//! stops gracefully: on `shutdown` it stops accepting, lets requests in flight finish and
//! waits for their connections to close.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// After an accept error that is about the listener rather than one connection (out of file
/// descriptors, most likely), wait this long before accepting again instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `shutdown` resolves and every connection has closed.
pub async fn serve(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    // Connections hold a receiver; the loop's end waits until the last one is dropped.
    let (closing_tx, closing_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_about_one_connection(&e) => continue,
                Err(e) => {
                    tracing::error!("accepting connections failed: {e}; trying again in {ACCEPT_BACKOFF:?}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        // Answers and live updates are small writes that should leave at once.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY on a connection from {peer}: {e}");
        }
        tokio::spawn(serve_connection(
            stream,
            peer,
            app.clone(),
            closing_rx.clone(),
        ));
    }
    drop(listener);
    drop(closing_rx);
    let _ = closing_tx.send(true);
    closing_tx.closed().await;
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    mut closing: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(request.map(axum::body::Body::new))
    });
    let connection = http1::Builder::new()
        // Enables hyper's header read timeout (30 s by default): a client that opens a
        // connection and never finishes its request does not hold it forever.
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let closing = async move {
        // The borrow `wait_for` returns must not live across the await below.
        let _ = closing.wait_for(|closing| *closing).await.map(|_| ());
    };
    let served = tokio::select! {
        served = connection.as_mut() => served,
        _ = closing => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = served {
        tracing::debug!("connection from {peer}: {e}");
    }
}

/// Accept errors that concern only the connection being accepted (it was reset before we got
/// to it): the next accept is fine.
fn is_about_one_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}
