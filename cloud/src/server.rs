//! Starting and stopping one instance: pool, migrations, NATS, HTTP server, sync tasks.

use crate::config::CloudConfig;
use crate::state::CloudState;
use crate::token::TokenKeys;
use std::net::SocketAddr;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no database URL: set --database-url or PVM_CLOUD_DATABASE_URL")]
    NoDatabaseUrl,
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("NATS: {0}")]
    Nats(String),
    #[error(transparent)]
    Password(#[from] crate::password::PasswordError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running instance. Dropping it leaves the server running; call [`RunningCloud::stop`].
pub struct RunningCloud {
    pub addr: SocketAddr,
    pub state: CloudState,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    tasks: Vec<JoinHandle<()>>,
}

/// Connects to PostgreSQL and migrates it, connects to NATS when configured, then serves
/// the API on `config.listen` and starts the sync side's background tasks.
pub async fn start(config: CloudConfig, tokens: TokenKeys) -> Result<RunningCloud, StartError> {
    if config.database_url.is_empty() {
        return Err(StartError::NoDatabaseUrl);
    }
    let pool = crate::db::pool(&config.database_url, config.db_pool_size)?;
    crate::db::migrate(&pool).await?;
    let nats = connect_nats(&config).await?;
    let listen = config.listen;
    let state = CloudState::new(pool, config, tokens, nats)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: listen,
        source,
    })?;
    let (stop, stopping) = watch::channel(false);
    let app = crate::api::router(state.clone());
    let mut server_stopping = stopping.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = server_stopping.wait_for(|s| *s).await;
        })
        .await
    });
    let mut tasks = crate::sync::start(&state, stopping.clone());
    tasks.push(tokio::spawn(prune_throttle(state.clone(), stopping)));
    tracing::info!(%addr, "pvm-cloud listening");
    Ok(RunningCloud {
        addr,
        state,
        stop,
        server,
        tasks,
    })
}

/// This instance's own NATS connection (absent without `--nats-url`). It keeps retrying
/// in the background when NATS is down at start, so the API comes up regardless.
pub async fn connect_nats(config: &CloudConfig) -> Result<Option<async_nats::Client>, StartError> {
    let Some(urls) = config.nats_url.as_deref() else {
        return Ok(None);
    };
    let options = match &config.nats_creds {
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| StartError::Nats(format!("credentials {}: {e}", path.display())))?,
        None => async_nats::ConnectOptions::new(),
    };
    let addrs: Vec<async_nats::ServerAddr> = urls
        .split(',')
        .map(|u| u.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|e| StartError::Nats(format!("bad NATS URL {urls}: {e}")))?;
    let client = options
        .name("pvm-cloud")
        .retry_on_initial_connect()
        .connect(addrs)
        .await
        .map_err(|e| StartError::Nats(e.to_string()))?;
    Ok(Some(client))
}

/// Hourly, drops throttle rows whose windows and locks ended a day ago, so the table holds
/// only recent clients. Every instance does it; the deletes are idempotent.
async fn prune_throttle(state: CloudState, mut stopping: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        let result = match state.pool.get().await {
            Ok(db) => crate::throttle::prune(&db, 86_400)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "pruning the throttle table");
        }
    }
}

impl RunningCloud {
    /// Stops serving (open requests finish) and ends the background tasks.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.server.await {
            tracing::warn!(error = %e, "server task");
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
