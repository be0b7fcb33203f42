//! `pvm-kiosk`: the HDMI TV. On the Pi it draws straight on DRM/KMS (`--backend linuxkms`); on
//! a desktop it opens a window. It only reads the node's live feed on localhost.

use clap::Parser;
use pvm_core::displays::HDMI_DISPLAY_ID;
use pvm_core::ids::DisplayId;
use pvm_kiosk::app::{self, AppOptions};
use pvm_kiosk::client::ClientConfig;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "pvm-kiosk",
    version,
    about = "Draws the venue's screens on the HDMI TV"
)]
struct Args {
    /// The node's live feed (WebSocket), without a query.
    #[arg(
        long,
        env = "PVM_KIOSK_URL",
        default_value = "ws://127.0.0.1:8080/api/v1/ws"
    )]
    url: String,
    /// Which display to follow; the HDMI output's fixed id by default.
    #[arg(long, env = "PVM_KIOSK_DISPLAY")]
    display: Option<DisplayId>,
    /// `linuxkms` on the Pi (no X, no Wayland), `winit` for a desktop window; unset lets Slint
    /// pick the first that works.
    #[arg(long, env = "PVM_KIOSK_BACKEND")]
    backend: Option<String>,
    /// Panel rotation the KMS backend starts with (0, 90, 180, 270). The kiosk restarts itself
    /// with the display's setting when the console changes it.
    #[arg(long, env = "PVM_KIOSK_ROTATION", default_value_t = 0)]
    rotation: u16,
    /// Desktop window size, e.g. 1280x720.
    #[arg(long, env = "PVM_KIOSK_SIZE", default_value = "1280x720")]
    size: String,
    /// Desktop window fullscreen.
    #[arg(long, env = "PVM_KIOSK_FULLSCREEN")]
    fullscreen: bool,
    /// File created once the first frame is drawn (the node's update health check waits
    /// for it). On the TV it defaults to /run/pvm-kiosk/frame
    /// (the kiosk unit's runtime directory).
    #[arg(long, env = "PVM_KIOSK_FRAME_FILE")]
    frame_file: Option<std::path::PathBuf>,
}

fn parse_size(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.split_once('x')?;
    Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    if ![0, 90, 180, 270].contains(&args.rotation) {
        eprintln!(
            "pvm-kiosk: rotation {} is not one of 0, 90, 180, 270",
            args.rotation
        );
        return ExitCode::from(2);
    }
    let kms = args.backend.as_deref() == Some("linuxkms");
    // Slint reads these when its backend starts, which is after this point and before any
    // other thread exists, so setting them here races with nothing.
    if let Some(backend) = &args.backend {
        std::env::set_var("SLINT_BACKEND", backend);
    }
    if kms {
        std::env::set_var("SLINT_KMS_ROTATION", args.rotation.to_string());
    }
    let size = match parse_size(&args.size) {
        Some(s) => s,
        None => {
            eprintln!("pvm-kiosk: --size {:?} is not WIDTHxHEIGHT", args.size);
            return ExitCode::from(2);
        }
    };
    let options = AppOptions {
        client: ClientConfig::new(args.url.clone(), args.display.unwrap_or(HDMI_DISPLAY_ID)),
        window_size: (!kms).then_some(size),
        fullscreen: args.fullscreen,
        rotation: args.rotation,
        on_rotation_change: kms.then(|| {
            Box::new(|rotation: u16| restart_with_rotation(rotation)) as app::RotationHook
        }),
        frame_file: args
            .frame_file
            .or_else(|| kms.then(|| std::path::PathBuf::from("/run/pvm-kiosk/frame"))),
    };
    match app::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pvm-kiosk: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The KMS backend fixes the rotation when it opens the display: start over with the new one.
fn restart_with_rotation(rotation: u16) {
    use std::os::unix::process::CommandExt;
    let Ok(exe) = std::env::current_exe() else {
        tracing::warn!("cannot find my own executable to apply rotation {rotation}");
        return;
    };
    let mut args = Vec::new();
    let mut skip_value = false;
    for a in std::env::args().skip(1) {
        if skip_value {
            skip_value = false;
        } else if a == "--rotation" {
            skip_value = true;
        } else if !a.starts_with("--rotation=") {
            args.push(a);
        }
    }
    tracing::info!("rotation is now {rotation}: restarting the kiosk");
    let err = std::process::Command::new(exe)
        .args(args)
        .arg(format!("--rotation={rotation}"))
        .env("PVM_KIOSK_ROTATION", rotation.to_string())
        .exec();
    tracing::warn!("restart for rotation {rotation} failed: {err}");
}
