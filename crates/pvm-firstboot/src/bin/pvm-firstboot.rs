//! pvm-firstboot: applies pvm.toml from the autoboot partition; run by pvm-firstboot.service.
//! It always exits 0 once the report is written: a venue's typo must not stop the boot, it
//! is shown on the TV instead.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "pvm-firstboot",
    version,
    about = "Apply pvm.toml from the autoboot partition"
)]
struct Args {
    /// The system root the settings are written under.
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// The mounted autoboot partition holding pvm.toml.
    #[arg(long, default_value = "/boot/autoboot")]
    autoboot: PathBuf,
    /// Where to write the JSON report the node serves.
    #[arg(long, default_value = "/run/pvm/firstboot.json")]
    report: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = pvm_firstboot::Options {
        set_kernel_hostname: args.root == std::path::Path::new("/"),
        root: args.root,
        autoboot: args.autoboot,
    };
    let report = pvm_firstboot::run(&options);
    for applied in &report.applied {
        println!("pvm-firstboot: applied {applied}");
    }
    for error in &report.errors {
        let line = error
            .line
            .map(|l| format!("line {l}: "))
            .unwrap_or_default();
        eprintln!("pvm-firstboot: {line}{}", error.message);
    }
    match pvm_firstboot::write_report(&args.report, &report) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!(
                "pvm-firstboot: cannot write {}: {error}",
                args.report.display()
            );
            ExitCode::FAILURE
        }
    }
}
