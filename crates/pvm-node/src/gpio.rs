//! Optional hardware on the Pi's header: two push buttons (pause/resume, next level) and a buzzer
//! that beeps on level changes. Everything works without them: no GPIO means a log line, not an error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Which pins (BCM numbering) do what. A pin left `None` is simply not used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpioSettings {
    /// Off: never touch the GPIO hardware.
    pub enabled: bool,
    /// Button that pauses or resumes the running clock.
    pub pause_resume_pin: Option<u8>,
    /// Button that jumps to the next level.
    pub next_level_pin: Option<u8>,
    /// Output pin driving the buzzer (high = sounding).
    pub buzzer_pin: Option<u8>,
    /// Edges closer than this to the last accepted edge of the same pin are contact bounce.
    pub debounce_ms: u64,
    /// Buttons wired to ground with the internal pull-up: pressed reads low.
    pub active_low: bool,
    /// How long the buzzer sounds on a level change.
    pub buzz_ms: u64,
}

impl Default for GpioSettings {
    fn default() -> Self {
        GpioSettings {
            enabled: false,
            pause_resume_pin: None,
            next_level_pin: None,
            buzzer_pin: None,
            debounce_ms: 50,
            active_low: true,
            buzz_ms: 1_500,
        }
    }
}

/// What a button press asks the engine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonAction {
    PauseResume,
    NextLevel,
}

/// A logic level on a pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinLevel {
    Low,
    High,
}

/// One raw edge seen on an input pin, bounces included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinEdge {
    /// BCM pin number.
    pub pin: u8,
    /// Level after the edge.
    pub level: PinLevel,
    /// When the edge was seen.
    pub at: Instant,
}

/// Why GPIO could not be used.
#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    #[error("this machine has no GPIO controller (no /dev/gpiochip* or /dev/gpiomem)")]
    NoHardware,
    #[error("GPIO pin {pin} could not be set up: {reason}")]
    Pin { pin: u8, reason: String },
    #[error("the GPIO controller could not be opened: {reason}")]
    Controller { reason: String },
}

/// The hardware seam: watch input pins for edges, drive output pins.
pub trait GpioBackend: Send + Sync {
    /// Start delivering every edge of `pins` to `edges` (bounces included; debouncing is ours).
    fn watch_inputs(
        &self,
        pins: &[u8],
        pull_up: bool,
        edges: mpsc::UnboundedSender<PinEdge>,
    ) -> Result<(), GpioError>;

    /// Drive an output pin (configuring it as an output on first use).
    fn set_output(&self, pin: u8, level: PinLevel) -> Result<(), GpioError>;
}

/// Accepts an edge only if the same pin had no accepted edge within the window, and reports a
/// press only on a transition from released to pressed.
#[derive(Debug, Clone)]
pub struct Debouncer {
    window: Duration,
    pressed_level: PinLevel,
    /// Per pin: when the last edge was accepted and the level it left the pin at.
    accepted: HashMap<u8, (Instant, PinLevel)>,
}

impl Debouncer {
    /// A debouncer for buttons that read `pressed_level` while held.
    pub fn new(window: Duration, pressed_level: PinLevel) -> Self {
        Debouncer {
            window,
            pressed_level,
            accepted: HashMap::new(),
        }
    }

    /// Feeds one raw edge; true when it is a genuine new press.
    pub fn is_press(&mut self, edge: PinEdge) -> bool {
        if let Some((last_at, last_level)) = self.accepted.get(&edge.pin) {
            if edge.at.saturating_duration_since(*last_at) < self.window {
                return false;
            }
            if *last_level == edge.level {
                // A repeated level (a lost edge in between) is not a second press.
                return false;
            }
        }
        self.accepted.insert(edge.pin, (edge.at, edge.level));
        edge.level == self.pressed_level
    }
}

/// Turns raw edges into debounced actions until the edge source or the action receiver goes away.
pub fn spawn_buttons(
    mut edges: mpsc::UnboundedReceiver<PinEdge>,
    mapping: HashMap<u8, ButtonAction>,
    mut debouncer: Debouncer,
    actions: mpsc::Sender<ButtonAction>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(edge) = edges.recv().await {
            let Some(action) = mapping.get(&edge.pin).copied() else {
                continue;
            };
            if debouncer.is_press(edge) {
                tracing::debug!(pin = edge.pin, ?action, "button pressed");
                if actions.send(action).await.is_err() {
                    break;
                }
            }
        }
    })
}

/// A buzzer on one output pin. Pulses may overlap; the buzzer goes quiet when the last one ends.
#[derive(Clone)]
pub struct Buzzer {
    backend: Arc<dyn GpioBackend>,
    pin: u8,
    /// When the longest running pulse ends; `None` while quiet.
    sounding_until: Arc<Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for Buzzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buzzer").field("pin", &self.pin).finish()
    }
}

impl Buzzer {
    /// A quiet buzzer on `pin`.
    pub fn new(backend: Arc<dyn GpioBackend>, pin: u8) -> Self {
        if let Err(error) = backend.set_output(pin, PinLevel::Low) {
            tracing::warn!(%error, "buzzer could not be silenced at start");
        }
        Buzzer {
            backend,
            pin,
            sounding_until: Arc::new(Mutex::new(None)),
        }
    }

    /// Sound for `duration` (extending a pulse already running if this one ends later).
    /// Must be called inside a Tokio runtime: a timer task switches the buzzer off.
    pub fn pulse(&self, duration: Duration) {
        let ends_at = Instant::now() + duration;
        {
            let Ok(mut until) = self.sounding_until.lock() else {
                return;
            };
            *until = Some(until.map_or(ends_at, |current| current.max(ends_at)));
            if let Err(error) = self.backend.set_output(self.pin, PinLevel::High) {
                tracing::warn!(%error, "buzzer could not be switched on");
            }
        }
        let buzzer = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(ends_at).await;
            buzzer.silence_if_due();
        });
    }

    /// Only the pulse that ends last switches the buzzer off, so a short pulse inside a long one
    /// cannot cut it short, and whichever pulse ends last always does.
    fn silence_if_due(&self) {
        // A poisoned lock still holds a valid deadline: silence rather than risk a stuck buzzer.
        let mut until = match self.sounding_until.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if until.is_some_and(|deadline| deadline <= Instant::now()) {
            *until = None;
            if let Err(error) = self.backend.set_output(self.pin, PinLevel::Low) {
                tracing::warn!(%error, "buzzer could not be switched off");
            }
        }
    }
}

/// Pulses the buzzer each time the watched value changes (e.g. the current level number).
pub fn spawn_change_buzzer<T>(
    buzzer: Buzzer,
    mut watched: watch::Receiver<T>,
    duration: Duration,
) -> JoinHandle<()>
where
    T: Send + Sync + 'static,
{
    tokio::spawn(async move {
        watched.mark_unchanged();
        while watched.changed().await.is_ok() {
            buzzer.pulse(duration);
        }
    })
}

/// Opens the real GPIO hardware, or explains why there is none.
pub fn open_hardware() -> Result<Arc<dyn GpioBackend>, GpioError> {
    if !hardware_present() {
        return Err(GpioError::NoHardware);
    }
    open_rppal()
}

fn hardware_present() -> bool {
    if std::path::Path::new("/dev/gpiomem").exists() {
        return true;
    }
    std::fs::read_dir("/dev").is_ok_and(|entries| {
        entries
            .flatten()
            .any(|entry| entry.file_name().to_string_lossy().starts_with("gpiochip"))
    })
}

#[cfg(target_os = "linux")]
fn open_rppal() -> Result<Arc<dyn GpioBackend>, GpioError> {
    rppal_backend::RppalBackend::open().map(|backend| Arc::new(backend) as Arc<dyn GpioBackend>)
}

#[cfg(not(target_os = "linux"))]
fn open_rppal() -> Result<Arc<dyn GpioBackend>, GpioError> {
    Err(GpioError::NoHardware)
}

#[cfg(target_os = "linux")]
mod rppal_backend {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use rppal::gpio::{Gpio, InputPin, Level, OutputPin, Trigger};
    use tokio::sync::mpsc;
    use tokio::time::Instant;

    use super::{GpioBackend, GpioError, PinEdge, PinLevel};

    /// GPIO through rppal (/dev/gpiochip* character device).
    pub struct RppalBackend {
        gpio: Gpio,
        // Pins must stay alive: dropping an InputPin cancels its interrupt, an OutputPin resets.
        inputs: Mutex<Vec<InputPin>>,
        outputs: Mutex<HashMap<u8, OutputPin>>,
    }

    impl RppalBackend {
        pub fn open() -> Result<Self, GpioError> {
            let gpio = Gpio::new().map_err(|e| GpioError::Controller {
                reason: e.to_string(),
            })?;
            Ok(RppalBackend {
                gpio,
                inputs: Mutex::new(Vec::new()),
                outputs: Mutex::new(HashMap::new()),
            })
        }
    }

    fn pin_error(pin: u8) -> impl Fn(rppal::gpio::Error) -> GpioError {
        move |e| GpioError::Pin {
            pin,
            reason: e.to_string(),
        }
    }

    impl GpioBackend for RppalBackend {
        fn watch_inputs(
            &self,
            pins: &[u8],
            pull_up: bool,
            edges: mpsc::UnboundedSender<PinEdge>,
        ) -> Result<(), GpioError> {
            let mut inputs = self.inputs.lock().map_err(|_| GpioError::Controller {
                reason: "input table lock poisoned".to_owned(),
            })?;
            for &pin in pins {
                let raw = self.gpio.get(pin).map_err(pin_error(pin))?;
                let mut input = if pull_up {
                    raw.into_input_pullup()
                } else {
                    raw.into_input_pulldown()
                };
                let sender = edges.clone();
                input
                    .set_async_interrupt(Trigger::Both, None, move |event| {
                        let level = match event.trigger {
                            Trigger::RisingEdge => PinLevel::High,
                            _ => PinLevel::Low,
                        };
                        let _ = sender.send(PinEdge {
                            pin,
                            level,
                            at: Instant::now(),
                        });
                    })
                    .map_err(pin_error(pin))?;
                inputs.push(input);
            }
            Ok(())
        }

        fn set_output(&self, pin: u8, level: PinLevel) -> Result<(), GpioError> {
            let mut outputs = self.outputs.lock().map_err(|_| GpioError::Controller {
                reason: "output table lock poisoned".to_owned(),
            })?;
            let output = match outputs.entry(pin) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    let raw = self.gpio.get(pin).map_err(pin_error(pin))?;
                    entry.insert(raw.into_output_low())
                }
            };
            output.write(match level {
                PinLevel::Low => Level::Low,
                PinLevel::High => Level::High,
            });
            Ok(())
        }
    }
}

/// The running GPIO features; dropping it stops the button task.
#[derive(Debug, Default)]
pub struct GpioHandle {
    buzzer: Option<Buzzer>,
    buttons: Option<JoinHandle<()>>,
}

impl GpioHandle {
    /// The buzzer, when one is configured and the hardware is there.
    pub fn buzzer(&self) -> Option<&Buzzer> {
        self.buzzer.as_ref()
    }

    /// Sounds the buzzer if there is one; silently nothing otherwise.
    pub fn pulse(&self, duration: Duration) {
        if let Some(buzzer) = &self.buzzer {
            buzzer.pulse(duration);
        }
    }

    /// True when buttons are being watched.
    pub fn buttons_active(&self) -> bool {
        self.buttons.is_some()
    }
}

impl Drop for GpioHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.buttons {
            task.abort();
        }
    }
}

/// Starts the buttons and the buzzer on real hardware; without hardware, logs once and returns
/// a handle that does nothing. Must be called inside a Tokio runtime.
pub fn spawn(settings: &GpioSettings, actions: mpsc::Sender<ButtonAction>) -> GpioHandle {
    if !settings.enabled {
        return GpioHandle::default();
    }
    match open_hardware() {
        Ok(backend) => spawn_with_backend(settings, backend, actions),
        Err(error) => {
            tracing::info!(%error, "GPIO is off: buttons and buzzer are not available");
            GpioHandle::default()
        }
    }
}

/// As [`spawn`], on a given backend. A pin that cannot be set up is logged and left out.
pub fn spawn_with_backend(
    settings: &GpioSettings,
    backend: Arc<dyn GpioBackend>,
    actions: mpsc::Sender<ButtonAction>,
) -> GpioHandle {
    let mapping: HashMap<u8, ButtonAction> = [
        (settings.pause_resume_pin, ButtonAction::PauseResume),
        (settings.next_level_pin, ButtonAction::NextLevel),
    ]
    .into_iter()
    .filter_map(|(pin, action)| pin.map(|pin| (pin, action)))
    .collect();

    let buttons = if mapping.is_empty() {
        None
    } else {
        let (edge_sender, edge_receiver) = mpsc::unbounded_channel();
        let pins: Vec<u8> = mapping.keys().copied().collect();
        match backend.watch_inputs(&pins, settings.active_low, edge_sender) {
            Ok(()) => {
                let pressed = if settings.active_low {
                    PinLevel::Low
                } else {
                    PinLevel::High
                };
                let debouncer =
                    Debouncer::new(Duration::from_millis(settings.debounce_ms), pressed);
                Some(spawn_buttons(edge_receiver, mapping, debouncer, actions))
            }
            Err(error) => {
                tracing::warn!(%error, "GPIO buttons are off");
                None
            }
        }
    };
    let buzzer = settings
        .buzzer_pin
        .map(|pin| Buzzer::new(Arc::clone(&backend), pin));
    GpioHandle { buzzer, buttons }
}
