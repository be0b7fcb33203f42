//! The running kiosk: the client on a tokio thread, the UI on the main thread, one Slint timer
//! that wakes exactly when something on screen is due to change.

use crate::client::{self, ClientConfig, LiveState};
use crate::clock::mono_ms;
use crate::ui::{KioskWindow, Presenter};
use slint::ComponentHandle;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("slint: {0}")]
    Platform(#[from] slint::PlatformError),
    #[error("starting the network thread: {0}")]
    Runtime(std::io::Error),
}

/// What the window does when the node asks for another rotation than the one it runs with.
pub type RotationHook = Box<dyn Fn(u16)>;

pub struct AppOptions {
    pub client: ClientConfig,
    /// Window size for desktop backends (ignored on the TV, which uses the panel's mode).
    pub window_size: Option<(u32, u32)>,
    pub fullscreen: bool,
    /// The rotation the backend was started with, and what to do when the node wants another.
    pub rotation: u16,
    pub on_rotation_change: Option<RotationHook>,
    /// Created once the first frame is on screen: the node's health check after an update
    /// waits for it before it keeps the new system.
    pub frame_file: Option<std::path::PathBuf>,
}

struct Ui {
    presenter: Presenter,
    version: u64,
    timer: slint::Timer,
    rx: watch::Receiver<LiveState>,
    rotation: u16,
    on_rotation_change: Option<RotationHook>,
}

thread_local! {
    static UI: RefCell<Option<Rc<RefCell<Ui>>>> = const { RefCell::new(None) };
}

/// Reads the latest state and brings the screen up to date, then re-arms the timer.
fn refresh(ui: &Rc<RefCell<Ui>>) {
    let delay = {
        let mut guard = ui.borrow_mut();
        let u = &mut *guard;
        let live = u.rx.borrow().clone();
        if live.version != u.version {
            if let Some(view) = &live.view {
                if view.rotation != u.rotation {
                    if let Some(hook) = &u.on_rotation_change {
                        hook(view.rotation);
                    }
                }
                u.presenter
                    .set_view(Rc::new((**view).clone()), live.version);
            }
            u.version = live.version;
        }
        u.presenter.set_reconnecting(!live.connected);
        let now = live.server_now().unwrap_or_else(mono_ms);
        u.presenter.tick(now)
    };
    schedule(ui, delay);
}

fn schedule(ui: &Rc<RefCell<Ui>>, delay: Duration) {
    let weak = Rc::downgrade(ui);
    // A few ms late rather than early: the digit must have changed when we look.
    let delay = delay + Duration::from_millis(2);
    ui.borrow()
        .timer
        .start(slint::TimerMode::SingleShot, delay, move || {
            if let Some(ui) = weak.upgrade() {
                refresh(&ui);
            }
        });
}

/// Creates `path` after the first frame. Renderers with a rendering notifier say exactly
/// when. The software renderer has none: there the signal comes from the event loop's
/// first timer, once the window is shown and the loop runs — a kiosk that cannot open its
/// display or start its loop never gets that far, which is what the health check is after.
fn signal_first_frame(window: &KioskWindow, path: std::path::PathBuf) {
    let mut pending = Some(path.clone());
    let notified = window.window().set_rendering_notifier(move |state, _| {
        if matches!(state, slint::RenderingState::AfterRendering) {
            if let Some(p) = pending.take() {
                write_frame_signal(&p);
            }
        }
    });
    if notified.is_err() {
        slint::Timer::single_shot(Duration::from_millis(0), move || write_frame_signal(&path));
    }
}

fn write_frame_signal(path: &std::path::Path) {
    let written = match path.parent() {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    }
    .and_then(|()| std::fs::write(path, b"1\n"));
    match written {
        Ok(()) => tracing::info!(path = %path.display(), "first frame drawn"),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot signal the first frame")
        }
    }
}

/// Runs the kiosk until its window closes.
pub fn run(options: AppOptions) -> Result<(), AppError> {
    let window = KioskWindow::new()?;
    if let Some((w, h)) = options.window_size {
        window
            .window()
            .set_size(slint::LogicalSize::new(w as f32, h as f32));
    }
    if options.fullscreen {
        window.window().set_fullscreen(true);
    }
    let (tx, rx) = watch::channel(LiveState::default());
    let ui = Rc::new(RefCell::new(Ui {
        presenter: Presenter::new(window.clone_strong()),
        version: 0,
        timer: slint::Timer::default(),
        rx: rx.clone(),
        rotation: options.rotation,
        on_rotation_change: options.on_rotation_change,
    }));
    UI.with(|cell| *cell.borrow_mut() = Some(ui.clone()));
    refresh(&ui);
    if let Some(path) = options.frame_file {
        signal_first_frame(&window, path);
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AppError::Runtime)?;
    let config = options.client;
    std::thread::Builder::new()
        .name("pvm-kiosk-net".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut changes = rx;
                tokio::spawn(client::run(config, tx));
                // Every change wakes the UI thread at once: a new screen is up within a frame.
                while changes.changed().await.is_ok() {
                    let woke = slint::invoke_from_event_loop(|| {
                        UI.with(|cell| {
                            if let Some(ui) = cell.borrow().as_ref() {
                                refresh(ui);
                            }
                        })
                    });
                    if woke.is_err() {
                        break;
                    }
                }
            })
        })
        .map_err(AppError::Runtime)?;
    window.run()?;
    UI.with(|cell| cell.borrow_mut().take());
    Ok(())
}
