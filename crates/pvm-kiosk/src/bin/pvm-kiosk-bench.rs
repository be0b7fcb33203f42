//! `pvm-kiosk-bench`: figures for scripts/bench-kiosk.sh.
//!
//! - `frames [--frames N]`: software-render time of a full clock frame (1080p and 4K) and of a
//!   one-second clock update (only the changed region repainted).
//! - `soak [--secs S] [--url WS]`: the kiosk running headless at 1080p for S seconds, drawing
//!   into an offscreen buffer exactly when its timer says something changed (the clock: once a
//!   second). With `--url` it follows a real node; without, a sample running clock. Prints its
//!   own CPU time and memory at the end; the script also samples it from outside.

use pvm_kiosk::client::{self, ClientConfig, LiveState};
use pvm_kiosk::clock::mono_ms;
use pvm_kiosk::fixtures;
use pvm_kiosk::headless;
use pvm_kiosk::ui::Presenter;
use slint::platform::software_renderer::RepaintBufferType;
use slint::ComponentHandle;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn arg_value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("frames") => {
            let n = arg_value(&args, "--frames")
                .and_then(|v| v.parse().ok())
                .unwrap_or(30);
            frames(n)
        }
        Some("soak") => {
            let secs = arg_value(&args, "--secs")
                .and_then(|v| v.parse().ok())
                .unwrap_or(60);
            soak(secs, arg_value(&args, "--url"))
        }
        _ => {
            eprintln!("usage: pvm-kiosk-bench frames [--frames N] | soak [--secs S] [--url WS]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pvm-kiosk-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

type BenchResult = Result<(), Box<dyn std::error::Error>>;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn frames(n: usize) -> BenchResult {
    let n = n.max(3);
    let mut frame = headless::frame(1920, 1080, 0, RepaintBufferType::ReusedBuffer)?;
    let mut p = Presenter::new(frame.window.clone_strong());
    p.set_view(Rc::new(fixtures::clock()), 1);
    for (w, h) in [(1920u32, 1080u32), (3840, 2160)] {
        frame.resize(w, h, 0);
        p.tick(fixtures::ANCHOR_MS);
        frame.render();
        // Full frames: the whole frame repainted each time.
        frame.set_repaint(RepaintBufferType::NewBuffer);
        let mut full = Vec::with_capacity(n);
        for _ in 0..n {
            frame.invalidate();
            let t = Instant::now();
            frame.render();
            full.push(t.elapsed());
        }
        // One-second updates: the clock moves on, only what changed is repainted (after one
        // whole frame that fills the renderer's cache).
        frame.set_repaint(RepaintBufferType::ReusedBuffer);
        frame.render();
        let mut tick = Vec::with_capacity(n);
        let mut area = 0u64;
        for i in 0..n {
            let now = fixtures::ANCHOR_MS + 1000 * (i as i64 + 1);
            let t = Instant::now();
            p.tick(now);
            let region = frame.render();
            tick.push(t.elapsed());
            if let Some(r) = region {
                area = area.max(headless::region_area(&r));
            }
        }
        println!(
            "render {w}x{h} full frame: median {:.2} ms (min {:.2}, {n} frames)",
            ms(median(full.clone())),
            ms(*full.iter().min().unwrap_or(&Duration::ZERO))
        );
        println!(
            "render {w}x{h} one-second clock update: median {:.2} ms, repainted at most {:.1}% of the frame",
            ms(median(tick)),
            area as f64 * 100.0 / f64::from(w * h)
        );
    }
    Ok(())
}

/// CPU seconds (user+system) and the current and peak resident set of this process.
fn self_usage() -> Option<(f64, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux we ship to (the Pi's kernel included).
    let cpu = (utime + stime) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = |key: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((cpu, kb("VmRSS:")?, kb("VmHWM:")?))
}

fn soak(secs: u64, url: Option<String>) -> BenchResult {
    let mut frame = headless::frame(1920, 1080, 0, RepaintBufferType::ReusedBuffer)?;
    let mut p = Presenter::new(frame.window.clone_strong());
    let live = match url {
        Some(url) => {
            let (tx, rx) = tokio::sync::watch::channel(LiveState::default());
            let config = ClientConfig::new(url, pvm_core::displays::HDMI_DISPLAY_ID);
            std::thread::Builder::new()
                .name("net".into())
                .spawn(move || {
                    if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        rt.block_on(client::run(config, tx));
                    }
                })?;
            Some(rx)
        }
        None => {
            p.set_view(Rc::new(fixtures::clock()), 1);
            None
        }
    };
    // Without a node the sample clock is anchored at the start of the run.
    let offset = fixtures::ANCHOR_MS - mono_ms();
    let start = Instant::now();
    let mut version = 0;
    let (mut renders, mut repainted) = (0u64, 0u64);
    while start.elapsed() < Duration::from_secs(secs) {
        let now = match &live {
            Some(rx) => {
                let s = rx.borrow().clone();
                if s.version != version {
                    if let Some(v) = &s.view {
                        p.set_view(Rc::new((**v).clone()), s.version);
                    }
                    version = s.version;
                }
                p.set_reconnecting(!s.connected);
                s.server_now().unwrap_or_else(mono_ms)
            }
            None => mono_ms() + offset,
        };
        let wait = p.tick(now);
        renders += 1;
        if let Some(r) = frame.render() {
            let s = r.bounding_box_size();
            if s.width > 0 {
                repainted += 1;
            }
        }
        // A connected kiosk also wakes on updates; polling at 100 ms at most stands in for that.
        let cap = if live.is_some() {
            Duration::from_millis(100)
        } else {
            wait
        };
        std::thread::sleep(wait.min(cap));
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Some((cpu, rss, peak)) = self_usage() {
        println!(
            "kiosk soak {elapsed:.0} s at 1920x1080: cpu {cpu:.2} s ({:.2}% of a core), rss {:.1} MiB (peak {:.1} MiB), {renders} wake-ups, {repainted} repaints",
            cpu * 100.0 / elapsed,
            rss as f64 / 1024.0,
            peak as f64 / 1024.0
        );
    }
    Ok(())
}
