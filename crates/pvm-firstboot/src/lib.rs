//! First boot of the appliance: applies the venue's `pvm.toml` from the autoboot partition.
//!
//! A venue writes `pvm.toml` onto the card's small FAT partition (p1) before the first boot:
//! hostname, venue name, time zone, Wi-Fi, cloud enrolment code, an SSH public key. At every
//! boot [`run`] reads it, checks every key, applies what is valid to the data partition (the
//! root filesystem is read-only; `/etc` links into `/data/etc`), removes the secrets from the
//! FAT partition, and writes a [`Report`] for the node and the TV's setup screen. It never
//! fails the boot: a mistake becomes an entry in the report, with its line.
//!
//! Everything is done relative to a root folder, so tests run it against a temporary one.
//!
//! Entry point: [`run`].

pub mod apply;
pub mod report;
pub mod settings;

use std::path::{Path, PathBuf};

pub use apply::{Applied, Target};
pub use report::{Problem, Report};
pub use settings::{Settings, KNOWN_KEYS, SECRET_KEYS};

/// The file name on the autoboot partition.
pub const FILE_NAME: &str = "pvm.toml";

/// Where things are, for one run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The system root the settings are written under (`/` on the appliance).
    pub root: PathBuf,
    /// The mounted autoboot partition holding `pvm.toml`.
    pub autoboot: PathBuf,
    /// Whether to hand the hostname to the running kernel (only on the real system).
    pub set_kernel_hostname: bool,
}

/// Reads, checks and applies `pvm.toml`, strips its secrets, and says what happened.
pub fn run(options: &Options) -> Report {
    let target = Target::new(&options.root);
    let path = options.autoboot.join(FILE_NAME);
    let mut report = Report::default();

    let text = match std::fs::read(&path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(_) => {
                report.found = true;
                report.errors.push(Problem {
                    key: None,
                    message: format!(
                        "{FILE_NAME} is not plain text (UTF-8); save it again as plain text"
                    ),
                    line: None,
                });
                None
            }
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => {
            report.found = true;
            report.errors.push(Problem {
                key: None,
                message: format!("cannot read {}: {error}", path.display()),
                line: None,
            });
            None
        }
    };

    if let Some(text) = text {
        report.found = true;
        let (settings, problems) = settings::parse(&text);
        report.errors.extend(problems);
        let outcome = apply::apply(&target, &settings);
        report.applied = outcome.applied.clone();
        report.errors.extend(outcome.problems.clone());
        if let Err(error) = strip_secrets(&path, &text, &settings, &outcome) {
            report.errors.push(Problem {
                key: None,
                message: format!(
                    "the secrets could not be removed from {}: {error}",
                    path.display()
                ),
                line: None,
            });
        }
    }

    // The hostname lives on /data; the kernel forgets it at every boot.
    if options.set_kernel_hostname {
        if let Err(problem) = apply::hand_hostname_to_kernel(&target) {
            report.errors.push(problem);
        }
    }

    report.errors.sort_by_key(|problem| problem.line);
    report.ok = report.errors.is_empty();
    report
}

/// Rewrites `pvm.toml` without the secrets that were applied; a secret that was refused stays,
/// so the venue can see and fix it.
fn strip_secrets(
    path: &Path,
    text: &str,
    settings: &Settings,
    outcome: &Applied,
) -> std::io::Result<()> {
    let removed: Vec<(&str, &settings::Entry)> = settings
        .secrets()
        .filter(|(key, _)| outcome.accepted.iter().any(|accepted| accepted == key))
        .collect();
    if removed.is_empty() {
        return Ok(());
    }
    let rewritten = settings::without_entries(text, &removed, "applied and removed from this file");
    apply::write_atomically(path, rewritten.as_bytes(), None)
}

/// Writes the report where the node reads it (`/run/pvm/firstboot.json`), atomically.
pub fn write_report(path: &Path, report: &Report) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    apply::write_atomically(path, &json, Some(0o644))
}
