//! Button and buzzer logic. GPIO pins cannot exist on this build machine, so every test runs on
//! `MockGpio`, a mock backend that records outputs and lets the test inject raw edges.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pvm_node::gpio::{
    spawn_change_buzzer, spawn_with_backend, ButtonAction, Buzzer, Debouncer, GpioBackend,
    GpioError, GpioSettings, PinEdge, PinLevel,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Mock GPIO: remembers the edge sender so tests can "press" buttons, and logs every output write.
#[derive(Default)]
struct MockGpio {
    edges: Mutex<Option<mpsc::UnboundedSender<PinEdge>>>,
    watched: Mutex<Vec<u8>>,
    outputs: Mutex<Vec<(u8, PinLevel, Instant)>>,
    refuse_inputs: bool,
}

impl GpioBackend for MockGpio {
    fn watch_inputs(
        &self,
        pins: &[u8],
        _pull_up: bool,
        edges: mpsc::UnboundedSender<PinEdge>,
    ) -> Result<(), GpioError> {
        if self.refuse_inputs {
            return Err(GpioError::Pin {
                pin: pins[0],
                reason: "busy".to_owned(),
            });
        }
        self.watched.lock().unwrap().extend_from_slice(pins);
        *self.edges.lock().unwrap() = Some(edges);
        Ok(())
    }

    fn set_output(&self, pin: u8, level: PinLevel) -> Result<(), GpioError> {
        self.outputs
            .lock()
            .unwrap()
            .push((pin, level, Instant::now()));
        Ok(())
    }
}

impl MockGpio {
    fn edge(&self, pin: u8, level: PinLevel, at: Instant) {
        self.edges
            .lock()
            .unwrap()
            .as_ref()
            .expect("inputs not watched")
            .send(PinEdge { pin, level, at })
            .unwrap();
    }

    fn last_output(&self, pin: u8) -> Option<PinLevel> {
        self.outputs
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(p, _, _)| *p == pin)
            .map(|(_, level, _)| *level)
    }
}

const PAUSE_PIN: u8 = 17;
const NEXT_PIN: u8 = 27;
const BUZZER_PIN: u8 = 22;

fn settings() -> GpioSettings {
    GpioSettings {
        enabled: true,
        pause_resume_pin: Some(PAUSE_PIN),
        next_level_pin: Some(NEXT_PIN),
        buzzer_pin: Some(BUZZER_PIN),
        debounce_ms: 50,
        active_low: true,
        buzz_ms: 100,
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn bounces_inside_the_window_are_ignored() {
    let t0 = Instant::now();
    let mut debouncer = Debouncer::new(ms(50), PinLevel::Low);
    let edge = |level, after| PinEdge {
        pin: PAUSE_PIN,
        level,
        at: t0 + ms(after),
    };
    assert!(debouncer.is_press(edge(PinLevel::Low, 0)));
    // Contact chatter right after the press.
    assert!(!debouncer.is_press(edge(PinLevel::High, 2)));
    assert!(!debouncer.is_press(edge(PinLevel::Low, 5)));
    assert!(!debouncer.is_press(edge(PinLevel::High, 49)));
    // Real release, with its own chatter, then a real second press.
    assert!(!debouncer.is_press(edge(PinLevel::High, 200)));
    assert!(!debouncer.is_press(edge(PinLevel::Low, 210)));
    assert!(debouncer.is_press(edge(PinLevel::Low, 400)));
}

#[test]
fn a_release_is_never_a_press_and_pins_debounce_independently() {
    let t0 = Instant::now();
    let mut debouncer = Debouncer::new(ms(50), PinLevel::Low);
    assert!(!debouncer.is_press(PinEdge {
        pin: PAUSE_PIN,
        level: PinLevel::High,
        at: t0,
    }));
    assert!(debouncer.is_press(PinEdge {
        pin: NEXT_PIN,
        level: PinLevel::Low,
        at: t0 + ms(1),
    }));
    assert!(debouncer.is_press(PinEdge {
        pin: PAUSE_PIN,
        level: PinLevel::Low,
        at: t0 + ms(60),
    }));
}

#[test]
fn active_high_buttons_press_on_the_rising_edge() {
    let t0 = Instant::now();
    let mut debouncer = Debouncer::new(ms(20), PinLevel::High);
    let edge = |level, after| PinEdge {
        pin: 5,
        level,
        at: t0 + ms(after),
    };
    assert!(!debouncer.is_press(edge(PinLevel::Low, 0)));
    assert!(debouncer.is_press(edge(PinLevel::High, 100)));
}

#[tokio::test]
async fn debounced_presses_become_actions_on_the_channel() {
    let mock = Arc::new(MockGpio::default());
    let (actions_tx, mut actions_rx) = mpsc::channel(8);
    let handle = spawn_with_backend(&settings(), mock.clone(), actions_tx);
    assert!(handle.buttons_active());
    let mut watched = mock.watched.lock().unwrap().clone();
    watched.sort_unstable();
    assert_eq!(watched, vec![PAUSE_PIN, NEXT_PIN]);

    let t0 = Instant::now();
    // Pause button: press with three bounces, then release.
    mock.edge(PAUSE_PIN, PinLevel::Low, t0);
    mock.edge(PAUSE_PIN, PinLevel::High, t0 + ms(1));
    mock.edge(PAUSE_PIN, PinLevel::Low, t0 + ms(3));
    mock.edge(PAUSE_PIN, PinLevel::High, t0 + ms(150));
    // Next-level button pressed once, then an edge on a pin nobody configured.
    mock.edge(NEXT_PIN, PinLevel::Low, t0 + ms(160));
    mock.edge(4, PinLevel::Low, t0 + ms(170));
    // Pause pressed again, well after the window.
    mock.edge(PAUSE_PIN, PinLevel::Low, t0 + ms(400));

    let mut received = Vec::new();
    for _ in 0..3 {
        let action = tokio::time::timeout(Duration::from_secs(2), actions_rx.recv())
            .await
            .unwrap()
            .unwrap();
        received.push(action);
    }
    assert_eq!(
        received,
        vec![
            ButtonAction::PauseResume,
            ButtonAction::NextLevel,
            ButtonAction::PauseResume
        ]
    );
    // Nothing else: the bounces really were swallowed.
    assert!(tokio::time::timeout(ms(100), actions_rx.recv())
        .await
        .is_err());
}

#[tokio::test]
async fn buttons_that_cannot_be_set_up_leave_the_buzzer_working() {
    let mock = Arc::new(MockGpio {
        refuse_inputs: true,
        ..MockGpio::default()
    });
    let (actions_tx, _actions_rx) = mpsc::channel(8);
    let handle = spawn_with_backend(&settings(), mock.clone(), actions_tx);
    assert!(!handle.buttons_active());
    handle.pulse(ms(10));
    assert_eq!(mock.last_output(BUZZER_PIN), Some(PinLevel::High));
}

#[tokio::test]
async fn a_pulse_sounds_then_goes_quiet() {
    let mock = Arc::new(MockGpio::default());
    let buzzer = Buzzer::new(mock.clone(), BUZZER_PIN);
    assert_eq!(mock.last_output(BUZZER_PIN), Some(PinLevel::Low));

    let started = Instant::now();
    buzzer.pulse(ms(80));
    assert_eq!(mock.last_output(BUZZER_PIN), Some(PinLevel::High));
    tokio::time::sleep(ms(30)).await;
    assert_eq!(mock.last_output(BUZZER_PIN), Some(PinLevel::High));
    tokio::time::sleep(ms(150)).await;
    assert_eq!(mock.last_output(BUZZER_PIN), Some(PinLevel::Low));

    let outputs = mock.outputs.lock().unwrap().clone();
    let (_, _, went_low) = outputs.last().unwrap();
    assert!(went_low.duration_since(started) >= ms(80));
}

#[tokio::test]
async fn overlapping_pulses_are_never_cut_short_nor_stuck_high() {
    let mock = Arc::new(MockGpio::default());
    let buzzer = Buzzer::new(mock.clone(), BUZZER_PIN);
    let started = Instant::now();
    buzzer.pulse(ms(200));
    tokio::time::sleep(ms(20)).await;
    // A short pulse inside the long one must not switch it off at its own end.
    buzzer.pulse(ms(30));
    tokio::time::sleep(ms(80)).await;
    assert_eq!(mock.last_output(BUZZER_PIN), Some(PinLevel::High));
    // A pulse that outlasts the first extends the sound.
    buzzer.pulse(ms(250));
    tokio::time::sleep(ms(200)).await;
    assert_eq!(
        mock.last_output(BUZZER_PIN),
        Some(PinLevel::High),
        "cut short by the first pulse"
    );
    tokio::time::sleep(ms(200)).await;
    assert_eq!(mock.last_output(BUZZER_PIN), Some(PinLevel::Low));

    let outputs = mock.outputs.lock().unwrap().clone();
    let lows_after_start: Vec<_> = outputs
        .iter()
        .filter(|(_, level, at)| *level == PinLevel::Low && *at > started)
        .collect();
    assert_eq!(lows_after_start.len(), 1, "{outputs:?}");
    assert!(lows_after_start[0].2.duration_since(started) >= ms(350));
}

#[tokio::test]
async fn the_buzzer_sounds_on_each_level_change() {
    let mock = Arc::new(MockGpio::default());
    let buzzer = Buzzer::new(mock.clone(), BUZZER_PIN);
    let (level_tx, level_rx) = watch::channel(1u32);
    let task = spawn_change_buzzer(buzzer, level_rx, ms(20));
    tokio::time::sleep(ms(30)).await;
    let highs = |mock: &MockGpio| {
        mock.outputs
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, level, _)| *level == PinLevel::High)
            .count()
    };
    assert_eq!(highs(&mock), 0, "sounded without a level change");

    level_tx.send(2).unwrap();
    tokio::time::sleep(ms(60)).await;
    assert_eq!(highs(&mock), 1);
    assert_eq!(mock.last_output(BUZZER_PIN), Some(PinLevel::Low));

    level_tx.send(3).unwrap();
    tokio::time::sleep(ms(60)).await;
    assert_eq!(highs(&mock), 2);
    drop(level_tx);
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn without_gpio_hardware_spawn_is_a_quiet_no_op() {
    let (actions_tx, _actions_rx) = mpsc::channel(1);
    let handle = pvm_node::gpio::spawn(&settings(), actions_tx);
    if !std::path::Path::new("/dev/gpiomem").exists() {
        assert!(!handle.buttons_active());
        assert!(handle.buzzer().is_none());
        handle.pulse(ms(1));
    }
}
