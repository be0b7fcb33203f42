//! One worker per device: connect, launch the receiver, hand it the URL, keep it alive, and
//! start over (with backoff) when anything breaks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{sleep, sleep_until, Instant, MissedTickBehavior};
use tokio_rustls::TlsConnector;

use crate::channel::CastChannel;
use crate::config::{ReceiverApp, Timings, Wanted};
use crate::error::CastError;
use crate::protocol::{self, parse_incoming, Incoming, RunningApp, PLATFORM_ID};
use crate::status::{now_ms, DeviceState, Statuses};

/// What the supervisor wants of one device; the worker follows this through a watch channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Target {
    pub addr: Option<SocketAddr>,
    pub wanted: Option<Wanted>,
    /// Bumped when discovery sees the device (again): cuts a retry wait short.
    pub nudge: u64,
}

/// Why a connected session ended.
enum End {
    /// The assignment was removed; our receiver was stopped.
    Unwanted,
    /// The bridge is shutting down.
    Shutdown,
}

pub(crate) struct Worker {
    pub id: String,
    pub connector: TlsConnector,
    pub receiver: ReceiverApp,
    pub timings: Timings,
    pub target: watch::Receiver<Target>,
    pub statuses: Arc<watch::Sender<Statuses>>,
    pub failures: u32,
    /// The page we last handed to a receiver, kept across connections: after a network blip
    /// the receiver still running with the same transport is left alone, not reloaded.
    pub shown: Option<Shown>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shown {
    pub transport_id: String,
    pub url: String,
}

impl Worker {
    fn set_state(&self, state: DeviceState) {
        let failures = self.failures;
        self.statuses.send_if_modified(|all| {
            let Some(status) = all.get_mut(&self.id) else {
                return false;
            };
            let mut changed = false;
            if status.failures != failures {
                status.failures = failures;
                changed = true;
            }
            if status.state != state {
                status.state = state;
                status.changed_ms = now_ms();
                changed = true;
            }
            changed
        });
    }

    pub async fn run(mut self) {
        loop {
            let (addr, wanted) = loop {
                let target = self.target.borrow_and_update().clone();
                match (target.addr, target.wanted) {
                    (Some(addr), Some(wanted)) => break (addr, wanted),
                    (None, Some(_)) => self.set_state(DeviceState::NotFound),
                    (_, None) => {
                        self.failures = 0;
                        self.set_state(DeviceState::Discovered);
                    }
                }
                if self.target.changed().await.is_err() {
                    return;
                }
            };
            self.set_state(DeviceState::Connecting);
            let connected =
                CastChannel::connect(&self.connector, addr, self.timings.connect_timeout).await;
            let result = match connected {
                Ok(channel) => Session::new(&mut self, channel, wanted).run().await,
                Err(error) => Err(error),
            };
            match result {
                Ok(End::Shutdown) => return,
                Ok(End::Unwanted) => continue,
                Err(error) => {
                    self.failures = self.failures.saturating_add(1);
                    tracing::info!(device = %self.id, %error, failures = self.failures, "device lost");
                    self.set_state(DeviceState::Lost {
                        since_ms: now_ms(),
                        reason: error.to_string(),
                    });
                }
            }
            let delay = self.timings.backoff(self.failures);
            let started = Instant::now();
            tokio::select! {
                _ = sleep(delay) => {}
                changed = self.target.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // Seen again or reassigned: retry soon, but never faster than retry_min,
                    // so a chatty network cannot turn retries into a loop.
                    let floor = delay.min(self.timings.retry_min);
                    sleep(floor.saturating_sub(started.elapsed())).await;
                }
            }
        }
    }
}

struct Session<'w> {
    worker: &'w mut Worker,
    channel: CastChannel,
    wanted: Wanted,
    next_request: i64,
    apps: Vec<RunningApp>,
    /// The app transport we opened a virtual connection to on this connection.
    connected_transport: Option<String>,
    casting_since: Option<(u64, Instant)>,
    /// The pending LAUNCH: its request id and when we give up on it.
    launch: Option<(i64, Instant)>,
    /// A launch deferred by backoff: when to try again.
    retry_launch_at: Option<Instant>,
    last_heard: Instant,
    /// We stopped our receiver to relaunch it with a new page: its going away is no failure.
    restarting: bool,
    /// We already gave a receiver we did not launch one launch timeout to become ready.
    waited_for_foreign_start: bool,
}

impl<'w> Session<'w> {
    fn new(worker: &'w mut Worker, channel: CastChannel, wanted: Wanted) -> Self {
        Session {
            worker,
            channel,
            wanted,
            next_request: 1,
            apps: Vec::new(),
            connected_transport: None,
            casting_since: None,
            launch: None,
            retry_launch_at: None,
            last_heard: Instant::now(),
            restarting: false,
            waited_for_foreign_start: false,
        }
    }

    fn request_id(&mut self) -> i64 {
        let id = self.next_request;
        self.next_request += 1;
        id
    }

    async fn run(mut self) -> Result<End, CastError> {
        self.channel.send(&protocol::connect(PLATFORM_ID)).await?;
        let id = self.request_id();
        self.channel.send(&protocol::get_status(id)).await?;

        let timings = self.worker.timings.clone();
        let mut heartbeat =
            tokio::time::interval_at(Instant::now() + timings.heartbeat, timings.heartbeat);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let timer = match (self.launch, self.retry_launch_at) {
                (Some((_, deadline)), _) => Some(deadline),
                (None, at) => at,
            };
            tokio::select! {
                received = self.channel.recv() => {
                    let message = received?;
                    self.last_heard = Instant::now();
                    self.handle(parse_incoming(&message), &message.source_id).await?;
                }
                _ = heartbeat.tick() => {
                    if self.last_heard.elapsed() > timings.silent_after {
                        return Err(CastError::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("device silent for {} s", timings.silent_after.as_secs_f32()),
                        )));
                    }
                    if let Some((_, since)) = self.casting_since {
                        // Only a receiver that stayed up a while clears the failure count, so
                        // a receiver that keeps crashing backs off instead of looping.
                        if since.elapsed() >= timings.retry_max && self.worker.failures > 0 {
                            self.worker.failures = 0;
                            self.show_casting();
                        }
                    }
                    self.channel.send(&protocol::ping()).await?;
                    // Polling as well as listening: not every device broadcasts every change.
                    let id = self.request_id();
                    self.channel.send(&protocol::get_status(id)).await?;
                }
                changed = self.worker.target.changed() => {
                    if changed.is_err() {
                        return Ok(End::Shutdown);
                    }
                    let wanted = self.worker.target.borrow_and_update().wanted.clone();
                    match wanted {
                        None => {
                            self.stop_our_app().await?;
                            return Ok(End::Unwanted);
                        }
                        Some(wanted) if wanted != self.wanted => {
                            self.wanted = wanted;
                            self.reconcile().await?;
                        }
                        Some(_) => {}
                    }
                }
                _ = sleep_until(timer.unwrap_or_else(far_future)), if timer.is_some() => {
                    self.on_timer().await?;
                }
            }
        }
    }

    async fn handle(&mut self, incoming: Incoming, source: &str) -> Result<(), CastError> {
        match incoming {
            Incoming::Ping => self.channel.send(&protocol::pong(source)).await?,
            Incoming::Pong | Incoming::Ignored => {}
            Incoming::Close { from } => {
                if from == PLATFORM_ID {
                    return Err(CastError::Closed);
                }
                if self.connected_transport.as_deref() == Some(from.as_str()) {
                    // The receiver hung up on us: ask what is running now. What it shows is
                    // unchanged, so nothing is resent unless it stopped or must change.
                    self.connected_transport = None;
                    let id = self.request_id();
                    self.channel.send(&protocol::get_status(id)).await?;
                }
            }
            Incoming::ReceiverStatus { apps, .. } => {
                self.apps = apps;
                self.reconcile().await?;
            }
            Incoming::RequestFailed { request_id, reason } => {
                let ours = match (self.launch, request_id) {
                    (Some((pending, _)), Some(id)) => pending == id,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                if ours {
                    self.launch = None;
                    self.launch_failed(reason);
                } else {
                    tracing::debug!(device = %self.worker.id, %reason, "device refused a request");
                }
            }
        }
        Ok(())
    }

    fn launch_failed(&mut self, reason: String) {
        self.worker.failures = self.worker.failures.saturating_add(1);
        tracing::warn!(device = %self.worker.id, %reason, failures = self.worker.failures, "receiver launch failed");
        self.retry_launch_at =
            Some(Instant::now() + self.worker.timings.backoff(self.worker.failures));
        self.worker.set_state(DeviceState::Error { reason });
    }

    async fn on_timer(&mut self) -> Result<(), CastError> {
        let now = Instant::now();
        if let Some((_, deadline)) = self.launch {
            if now >= deadline {
                self.launch = None;
                self.restarting = false;
                let secs = self.worker.timings.launch_timeout.as_secs_f32();
                self.launch_failed(format!(
                    "the receiver did not start within {secs} s (it is downloaded from the internet: is the venue online?)"
                ));
            }
            return Ok(());
        }
        if self.retry_launch_at.is_some_and(|at| now >= at) {
            self.retry_launch_at = None;
            // Decide on fresh facts, not on the status from before the wait.
            let id = self.request_id();
            self.channel.send(&protocol::get_status(id)).await?;
        }
        Ok(())
    }

    fn show_casting(&self) {
        if let (Some((since_ms, _)), Some(shown)) = (self.casting_since, &self.worker.shown) {
            self.worker.set_state(DeviceState::Casting {
                since_ms,
                url: shown.url.clone(),
            });
        }
    }

    /// Brings the device in line with `wanted`, given the apps it last reported.
    async fn reconcile(&mut self) -> Result<(), CastError> {
        let app_id = self.worker.receiver.app_id.clone();
        if let Some(ours) = self.apps.iter().find(|a| a.app_id == app_id).cloned() {
            return self.reconcile_running(ours).await;
        }

        let other = self
            .apps
            .iter()
            .find(|a| a.app_id != app_id && !a.is_idle_screen);
        // Seen stopping on this connection, as opposed to found gone after the device
        // restarted or stopped by us to change page: only the first is a receiver failure.
        let restarting = std::mem::take(&mut self.restarting);
        if restarting {
            // The stop we asked for happened: launch now, not at the stop's deadline.
            self.launch = None;
        }
        let stopped_while_casting = self.casting_since.take().is_some() && !restarting;
        if self.worker.shown.take().is_some() || stopped_while_casting {
            tracing::info!(device = %self.worker.id, "our receiver stopped");
            self.connected_transport = None;
            if stopped_while_casting && other.is_none() {
                // Re-cast at once the first time; a receiver that keeps stopping backs off.
                self.worker.failures = self.worker.failures.saturating_add(1);
                if self.worker.failures > 1 {
                    let wait = self.worker.timings.backoff(self.worker.failures - 1);
                    self.retry_launch_at = Some(Instant::now() + wait);
                    self.worker.set_state(DeviceState::Error {
                        reason: "the receiver keeps stopping".into(),
                    });
                }
            }
        }
        if let Some(other) = other {
            if !self.wanted.always {
                let app = if other.display_name.is_empty() {
                    other.app_id.clone()
                } else {
                    other.display_name.clone()
                };
                self.worker.set_state(DeviceState::Busy { app });
                return Ok(());
            }
        }
        self.launch().await
    }

    /// Our receiver is running: leave it, give it the page, or restart it for a new page.
    async fn reconcile_running(&mut self, ours: RunningApp) -> Result<(), CastError> {
        let namespace = self.worker.receiver.namespace.clone();
        let shown = self.worker.shown.as_ref();
        let same_page = shown.is_some_and(|s| s.transport_id == ours.transport_id);
        let up_to_date = same_page && shown.is_some_and(|s| s.url == self.wanted.url);
        if up_to_date {
            // Showing the right page: nothing to send, whatever it lists as namespaces (a
            // receiver that navigated away may list none).
            self.launch = None;
            self.retry_launch_at = None;
        } else if same_page && self.worker.receiver.relaunch_to_change_url {
            // The receiver navigated away from itself to show the page, so nobody listens on
            // its namespace any more: a new page needs a new launch. Stop it first, since a
            // LAUNCH of a running app may just rejoin it.
            if !self.restarting {
                let id = self.request_id();
                self.channel
                    .send(&protocol::stop(id, &ours.session_id))
                    .await?;
                self.restarting = true;
                // A device that ignores the STOP gets the same deadline as a launch.
                self.launch = Some((0, Instant::now() + self.worker.timings.launch_timeout));
                self.worker.set_state(DeviceState::Launching);
            }
            return Ok(());
        } else if !ours.namespaces.contains(&namespace) {
            // Started but not ready to take messages yet.
            if self.launch.is_none() && self.retry_launch_at.is_none() {
                if self.waited_for_foreign_start {
                    // Still not ready after a whole launch timeout: start it afresh.
                    return self.launch().await;
                }
                self.waited_for_foreign_start = true;
                self.launch = Some((0, Instant::now() + self.worker.timings.launch_timeout));
            }
            self.worker.set_state(DeviceState::Launching);
            return Ok(());
        } else {
            self.launch = None;
            self.retry_launch_at = None;
            if self.connected_transport.as_deref() != Some(ours.transport_id.as_str()) {
                self.channel
                    .send(&protocol::connect(&ours.transport_id))
                    .await?;
                self.connected_transport = Some(ours.transport_id.clone());
            }
            self.channel
                .send(&protocol::load_url(
                    &ours.transport_id,
                    &namespace,
                    &self.wanted.url,
                ))
                .await?;
            self.worker.shown = Some(Shown {
                transport_id: ours.transport_id.clone(),
                url: self.wanted.url.clone(),
            });
            tracing::info!(device = %self.worker.id, url = %self.wanted.url, "casting");
        }
        if self.casting_since.is_none() {
            self.casting_since = Some((now_ms(), Instant::now()));
        }
        self.show_casting();
        Ok(())
    }

    /// Asks the device to (re)start our receiver, unless a launch is under way or waiting out
    /// a backoff.
    async fn launch(&mut self) -> Result<(), CastError> {
        if self.launch.is_some() || self.retry_launch_at.is_some() {
            return Ok(());
        }
        let app_id = self.worker.receiver.app_id.clone();
        let id = self.request_id();
        self.channel.send(&protocol::launch(id, &app_id)).await?;
        self.launch = Some((id, Instant::now() + self.worker.timings.launch_timeout));
        self.worker.set_state(DeviceState::Launching);
        Ok(())
    }

    /// Stops our receiver and says goodbye, waiting (briefly) for the device to confirm, so the
    /// STOP is not lost when the connection closes right after it.
    async fn stop_our_app(&mut self) -> Result<(), CastError> {
        let session = self
            .apps
            .iter()
            .find(|a| a.app_id == self.worker.receiver.app_id)
            .map(|a| a.session_id.clone());
        if let Some(session) = session {
            let id = self.request_id();
            self.channel.send(&protocol::stop(id, &session)).await?;
            let confirmed = async {
                loop {
                    let message = self.channel.recv().await?;
                    match parse_incoming(&message) {
                        Incoming::ReceiverStatus {
                            request_id: Some(r),
                            ..
                        }
                        | Incoming::RequestFailed {
                            request_id: Some(r),
                            ..
                        } if r == id => return Ok::<(), CastError>(()),
                        _ => {}
                    }
                }
            };
            // No confirmation in time is no reason to keep the connection: we are leaving.
            let _ = tokio::time::timeout(self.worker.timings.connect_timeout, confirmed).await;
        }
        self.worker.shown = None;
        self.channel.send(&protocol::close(PLATFORM_ID)).await?;
        self.channel.shutdown().await;
        Ok(())
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}
