//! Runs a whole node: opens the log, starts the writer and the services around it, serves
//! HTTP until SIGTERM/SIGINT, then drains the writer and closes the database cleanly.

use crate::api::{AppState, NodeInfo};
use crate::auth::{AuthConfig, AuthService, SystemClock};
use crate::config::{self, NodeConfig};
use crate::engine::{self, EngineConfig, EngineHandle};
use crate::{gpio, mdns, scheduler, server, systemd, timesync};
use pvm_core::clock::ClockStatus;
use pvm_core::tournament::TournamentCommand;
use pvm_core::Command;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{mpsc, watch};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The event log's file name inside the data directory.
pub const EVENT_LOG_FILE: &str = "events.db";

#[derive(Debug, Error)]
pub enum NodeError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the event log: {0}")]
    Engine(#[from] engine::EngineError),
    #[error("cannot open the accounts database: {0}")]
    Auth(#[from] crate::auth::AuthError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// What a running node exposes to whoever started it (the binary, or a test).
pub struct RunningNode {
    pub addr: SocketAddr,
    pub engine: EngineHandle,
    pub auth: Arc<AuthService>,
    pub setup_code: Option<String>,
    pub console_urls: Vec<String>,
    /// Cloud pairing and sync.
    pub cloud: Arc<crate::sync::CloudService>,
    shutdown: watch::Sender<bool>,
    done: tokio::task::JoinHandle<Result<(), NodeError>>,
}

impl RunningNode {
    /// Stops serving, drains the writer, closes the database.
    pub async fn stop(self) -> Result<(), NodeError> {
        let _ = self.shutdown.send(true);
        match self.done.await {
            Ok(r) => r,
            Err(e) => Err(NodeError::Serve(std::io::Error::other(e.to_string()))),
        }
    }

    /// Waits until the node stops by itself (SIGTERM/SIGINT).
    pub async fn wait(self) -> Result<(), NodeError> {
        match self.done.await {
            Ok(r) => r,
            Err(e) => Err(NodeError::Serve(std::io::Error::other(e.to_string()))),
        }
    }
}

/// Starts everything and returns once the node is serving and its event log's integrity check
/// has ended (reads are served before that; see [`engine::Integrity`]). A log that failed the
/// check is not an error here: the node serves reads and refuses writes
/// ([`EngineHandle::integrity`] says so).
pub async fn start(config: NodeConfig) -> Result<RunningNode, NodeError> {
    start_with_auth(config, AuthConfig::default()).await
}

/// What a node does to the machine it runs on, replaceable by tests.
#[derive(Clone)]
pub struct NodeHooks {
    /// How a reboot asked for by the cloud is carried out.
    pub rebooter: Arc<dyn crate::sync::Rebooter>,
}

impl Default for NodeHooks {
    fn default() -> Self {
        NodeHooks {
            rebooter: Arc::new(crate::sync::SystemctlRebooter),
        }
    }
}

/// [`start`] with other account settings: the end-to-end tests use a cheap password hash,
/// since an unoptimised argon2 at the production cost takes seconds per login.
pub async fn start_with_auth(
    config: NodeConfig,
    auth_config: AuthConfig,
) -> Result<RunningNode, NodeError> {
    start_with_hooks(config, auth_config, NodeHooks::default()).await
}

/// [`start_with_auth`] with other machine hooks (tests record reboots instead of rebooting).
pub async fn start_with_hooks(
    config: NodeConfig,
    auth_config: AuthConfig,
    hooks: NodeHooks,
) -> Result<RunningNode, NodeError> {
    let started_at = Instant::now();
    std::fs::create_dir_all(&config.data_dir).map_err(|source| NodeError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let (engine, writer) = engine::start(
        &config.data_dir.join(EVENT_LOG_FILE),
        EngineConfig {
            queue_depth: config.engine.queue_depth,
            snapshot_every: config.engine.snapshot_every_events,
            broadcast_depth: config.ws.client_queue.max(16),
            ..EngineConfig::default()
        },
    )?;
    let auth = Arc::new(AuthService::open(
        &config.data_dir,
        Arc::new(SystemClock),
        auth_config,
    )?);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| NodeError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| NodeError::Listen {
        addr: config.listen,
        source,
    })?;

    let time = timesync::spawn(timesync::TimeSyncSettings {
        servers: config.time.ntp_servers.clone(),
        interval: Duration::from_secs(config.time.sync_interval_secs),
        query_timeout: Duration::from_secs(3),
        set_system_clock: config.time.set_system_clock,
        step_threshold_ms: i64::try_from(config.time.step_threshold_ms).unwrap_or(i64::MAX),
    });
    let mdns = if config.mdns.enabled {
        mdns::spawn(&mdns::MdnsSettings {
            enabled: true,
            hostname: config.mdns.hostname.clone(),
            instance_name: config.node_name.clone(),
            port: addr.port(),
            node_id: engine.node_id.clone(),
            version: VERSION.to_string(),
            interfaces: Vec::new(),
        })
    } else {
        None
    };
    let cloud = crate::sync::CloudService::new(
        config.data_dir.clone(),
        config.data_dir.join(EVENT_LOG_FILE),
        engine.clone(),
        crate::sync::SyncSettings::from(&config.cloud),
        hooks.rebooter.clone(),
        time.status(),
        started_at,
    );
    let cloud_handle = cloud.clone();
    let console_urls = console_urls(&config, addr);
    let cast = start_cast(&config, &engine, &console_urls, addr);
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let update = Arc::new(crate::update::UpdateService::open(
        &config.update,
        &config.data_dir,
        VERSION,
    ));
    cloud.report_updates(update.watch_status());
    let state = AppState {
        engine: engine.clone(),
        auth: auth.clone(),
        node: Arc::new(NodeInfo {
            version: VERSION,
            started_at,
            time: time.status(),
            live_clients: Default::default(),
            live_cache: Default::default(),
            live_hub: Default::default(),
            console_urls: console_urls.clone(),
            mdns_name: config
                .mdns
                .enabled
                .then(|| format!("{}.local", config.mdns.hostname)),
            listen: addr,
            live_client_queue: config.ws.client_queue.max(1),
            stopping: stopping_rx,
            cast: cast.as_ref().map(|c| c.statuses()),
            cloud: cloud.clone(),
            update: update.clone(),
            firstboot_report: config.firstboot_report.clone(),
            firstboot_notices: crate::api::system::firstboot_notices(&config.firstboot_report),
            venue_name: config.venue_name().map(str::to_owned),
        }),
    };

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (action_tx, action_rx) = mpsc::channel(16);
    let gpio = gpio::spawn(&gpio_settings(&config.gpio), action_tx);
    tokio::spawn(button_actions(engine.clone(), action_rx));
    let buzz = Duration::from_millis(
        config
            .gpio
            .buzzer
            .as_ref()
            .map(|b| b.pulse_ms)
            .unwrap_or(200),
    );
    let buzzer = gpio.buzzer().cloned();
    tokio::spawn(scheduler::run(
        engine.clone(),
        move |_b| {
            if let Some(b) = &buzzer {
                b.pulse(buzz);
            }
        },
        shutdown_rx.clone(),
    ));
    let watchdog_engine = engine.clone();
    let _watchdog = systemd::spawn_watchdog_from_env(move || watchdog_engine.queue_len() < 1024);

    let app = server::app(state);
    let setup_code = auth.setup_code().ok().flatten();
    let mut stop_rx = shutdown_rx.clone();
    let serve_engine = engine.clone();
    let done = tokio::spawn(async move {
        let stopping = &stopping_tx;
        let graceful = async move {
            let asked = async {
                loop {
                    if stop_rx.changed().await.is_err() {
                        // Whoever started the node let go of it: keep serving until a signal.
                        std::future::pending::<()>().await;
                    }
                    if *stop_rx.borrow() {
                        return;
                    }
                }
            };
            tokio::select! {
                _ = asked => {}
                _ = termination() => {}
            }
            // Said before the server waits for its connections: live feeds (an SSE response
            // never ends by itself) close on it, so that wait ends.
            let _ = systemd::notify_stopping();
            let _ = stopping.send(true);
        };
        crate::http_server::serve(listener, app, graceful).await;
        // Before the writer closes the log: the sync task holds its own connection to it.
        cloud.stop().await;
        tracing::info!("stopping: draining the command queue");
        serve_engine.shutdown().await;
        let joined = tokio::task::spawn_blocking(move || writer.join()).await;
        if !matches!(joined, Ok(Ok(()))) {
            tracing::error!("the writer thread did not stop cleanly");
        }
        drop(time);
        if let Some(m) = mdns {
            m.shutdown();
        }
        drop(gpio);
        if let Some(bridge) = cast {
            // TVs keep showing their page: stopping the bridge only stops supervising them.
            bridge.stop().await;
        }
        Ok(())
    });
    // Reads are served from here on, while the log's integrity check may still run; commands
    // wait in the writer's queue until it passes. Sync writes to the log through connections
    // of its own, so it starts only then, and never on a damaged log.
    //
    // A damaged log does not stop the node: exiting would only have systemd restart it into
    // the same check, again and again, with the screens dark. It keeps serving the state it
    // loaded, refuses every command, and says why on /healthz (503) and the health API.
    let status = match engine.integrity_checked().await {
        Ok(()) => {
            cloud_handle.start().await;
            format!("serving on {addr}")
        }
        Err(reason) => {
            tracing::error!(error = %reason, "the event log is damaged: serving reads only, every change is refused");
            format!("serving on {addr}; event log damaged, changes refused: {reason}")
        }
    };
    // After a trial boot, the new system is kept only once it serves: decided in the
    // background, since the check includes requests to this very server.
    let check_engine = engine.clone();
    tokio::spawn(async move { update.after_boot(addr, check_engine).await });
    let _ = systemd::notify_ready();
    let _ = systemd::notify_status(&status);
    Ok(RunningNode {
        addr,
        engine,
        auth,
        setup_code,
        console_urls,
        cloud: cloud_handle,
        shutdown: shutdown_tx,
        done,
    })
}

/// Starts the Chromecast bridge following the display assignments in venue state. TVs load
/// `<base>/display/<screen>`, where base is the node's LAN address (a Chromecast cannot
/// resolve `.local` names).
fn start_cast(
    config: &NodeConfig,
    engine: &EngineHandle,
    console_urls: &[String],
    addr: SocketAddr,
) -> Option<pvm_cast::BridgeHandle> {
    if !config.cast.enabled {
        return None;
    }
    let mut receiver = pvm_cast::ReceiverApp::default();
    if let Some(app) = &config.cast.receiver_app_id {
        receiver = pvm_cast::ReceiverApp::pvm(app);
        if let Some(ns) = &config.cast.receiver_namespace {
            receiver.namespace = ns.clone();
        }
    }
    let manual: Vec<pvm_cast::ManualDevice> = config
        .cast
        .devices
        .iter()
        .map(|d| pvm_cast::ManualDevice {
            id: d.id.clone(),
            name: d.name.clone(),
            addr: d.addr,
        })
        .collect();
    let make = |discovery| pvm_cast::BridgeConfig {
        receiver: receiver.clone(),
        discovery,
        manual_devices: manual.clone(),
        ..pvm_cast::BridgeConfig::default()
    };
    let discovery = config
        .cast
        .discovery
        .then(pvm_cast::DiscoveryConfig::default);
    let bridge = match pvm_cast::Bridge::start(make(discovery.clone())) {
        Ok(b) => b,
        Err(e) if discovery.is_some() => {
            tracing::warn!(error = %e, "Chromecast discovery unavailable; casting to configured devices only");
            match pvm_cast::Bridge::start(make(None)) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "Chromecast bridge off");
                    return None;
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "Chromecast bridge off");
            return None;
        }
    };
    let base = config.public_url.clone().unwrap_or_else(|| {
        console_urls
            .iter()
            .find(|u| !u.contains(".local") && !u.contains("127.0.0.1"))
            .cloned()
            .unwrap_or_else(|| format!("http://{addr}"))
    });
    let _follow = bridge.follow_venue(engine.watch_state(), base);
    Some(bridge)
}

async fn termination() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

fn gpio_settings(c: &config::GpioConfig) -> gpio::GpioSettings {
    let pin_for =
        |action: config::ButtonAction| c.buttons.iter().find(|b| b.action == action).map(|b| b.pin);
    gpio::GpioSettings {
        enabled: c.enabled,
        pause_resume_pin: pin_for(config::ButtonAction::PauseResume),
        next_level_pin: pin_for(config::ButtonAction::NextLevel),
        buzzer_pin: c.buzzer.as_ref().map(|b| b.pin),
        debounce_ms: c.buttons.first().map(|b| b.debounce_ms).unwrap_or(50),
        active_low: c.buttons.first().map(|b| b.active_low).unwrap_or(true),
        buzz_ms: c.buzzer.as_ref().map(|b| b.pulse_ms).unwrap_or(200),
    }
}

/// Buttons act on the tournament whose clock is running (or, if none, the one paused most
/// recently): the floor's hands are full, so the button does the obvious thing.
async fn button_actions(engine: EngineHandle, mut actions: mpsc::Receiver<gpio::ButtonAction>) {
    while let Some(action) = actions.recv().await {
        let state = engine.state();
        let target = state
            .tournaments
            .values()
            .rev()
            .find(|t| t.clock.status == ClockStatus::Running)
            .or_else(|| {
                state
                    .tournaments
                    .values()
                    .rev()
                    .find(|t| t.clock.status == ClockStatus::Paused)
            });
        let Some(t) = target else {
            tracing::info!(
                ?action,
                "button pressed, but no tournament clock is running"
            );
            continue;
        };
        let command = match action {
            gpio::ButtonAction::PauseResume if t.clock.status == ClockStatus::Running => {
                TournamentCommand::PauseClock
            }
            gpio::ButtonAction::PauseResume => TournamentCommand::ResumeClock,
            gpio::ButtonAction::NextLevel => TournamentCommand::NextLevel,
        };
        let cmd = Command::Tournament {
            tournament_id: t.id,
            command,
        };
        if let Err(e) = engine.execute(cmd).await {
            tracing::warn!(error = %e, ?action, "button action refused");
        }
    }
}

/// `http://pvm.local[:port]` first (what phones find over mDNS), then each address of this
/// machine, so a venue whose Wi-Fi blocks multicast can still type one in.
fn console_urls(config: &NodeConfig, addr: SocketAddr) -> Vec<String> {
    let port = if addr.port() == 80 {
        String::new()
    } else {
        format!(":{}", addr.port())
    };
    let mut urls = Vec::new();
    if let Some(public) = &config.public_url {
        urls.push(public.clone());
    }
    if config.mdns.enabled {
        urls.push(format!("http://{}.local{port}", config.mdns.hostname));
    }
    if addr.ip().is_unspecified() {
        if let Ok(ifaces) = if_addrs::get_if_addrs() {
            for i in ifaces.iter().filter(|i| !i.is_loopback()) {
                if let std::net::IpAddr::V4(v4) = i.ip() {
                    urls.push(format!("http://{v4}{port}"));
                }
            }
        }
        urls.push(format!("http://127.0.0.1{port}"));
    } else {
        urls.push(format!("http://{addr}"));
    }
    urls
}
