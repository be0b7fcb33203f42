//! Verify + install throughput and peak memory of the A/B installer.
//!
//! `cargo run --release -p pvm-ota --example ota_bench [-- MIB [DIR]]` builds a
//! signed bundle of MIB MiB (default 512: a 64 MiB boot image, the rest rootfs) in
//! DIR (default the temp dir), then runs the update agent's full path on files
//! standing in for partitions: verify the whole bundle, stream it into the inactive
//! slot hashing while writing, fsync, read back and hash again, arm tryboot.
//! Prints MB/s over the payload size and the process's peak RSS (VmHWM).

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use pvm_ota::bundle::{make_manifest, write_bundle, BundleSpec, VerifyOptions};
use pvm_ota::{
    keys, AgentConfig, Autoboot, Conditions, FileBootloader, KeyChanges, PayloadKind, Slot,
    SlotLayout, TrustStore, UpdateAgent,
};
use semver::Version;

fn fill(path: &Path, mib: u64, seed: u64) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(File::create(path)?);
    let mut block = vec![0u8; 1 << 20];
    let mut x = seed | 1;
    for _ in 0..mib {
        for chunk in block.chunks_mut(8) {
            // xorshift: incompressible, cheap, no RNG dependency.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        f.write_all(&block)?;
    }
    f.flush()
}

fn peak_rss_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Nanoseconds this process has run on a CPU (the machine may be shared and
/// overloaded; wall time alone would measure the neighbours).
fn cpu_ns() -> Option<u64> {
    fs::read_to_string("/proc/self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let total_mib: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(512);
    let base = args
        .next()
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir);
    let work = tempfile::tempdir_in(base)?;
    let d = work.path();
    let boot_mib = (total_mib / 8).max(1);
    let rootfs_mib = total_mib.saturating_sub(boot_mib).max(1);

    let src = d.join("src");
    fs::create_dir_all(&src)?;
    fill(&src.join("boot.img"), boot_mib, 1)?;
    fill(&src.join("rootfs.img"), rootfs_mib, 2)?;
    let (pk, sk) = keys::generate_keypair(None)?;
    let sk = minisign::SecretKeyBox::from_string(&sk)?.into_unencrypted_secret_key()?;
    let m = make_manifest(&BundleSpec {
        product: "pvm".into(),
        board: "rpi5".into(),
        version: Version::new(2, 0, 0),
        min_version: Version::new(1, 0, 0),
        build_time: 0,
        payloads: vec![
            (PayloadKind::Boot, src.join("boot.img")),
            (PayloadKind::Rootfs, src.join("rootfs.img")),
        ],
        keys: KeyChanges::default(),
    })?;
    let json = m.to_json()?;
    let sig = keys::sign(&sk, &json, &m.trusted_comment())?;
    let bundle = d.join("update.pvmb");
    write_bundle(&bundle, &json, Some(&sig), &src)?;
    fs::remove_dir_all(&src)?;

    fs::create_dir_all(d.join("keys"))?;
    fs::write(d.join("keys/release.pub"), pk)?;
    fs::create_dir_all(d.join("p1"))?;
    for p in ["p2", "p3", "p4", "p5"] {
        File::create(d.join(p))?;
    }
    let layout = SlotLayout {
        autoboot: d.join("p1/autoboot.txt"),
        slots: [
            Slot {
                boot_partition: 2,
                boot: d.join("p2"),
                system: d.join("p4"),
            },
            Slot {
                boot_partition: 3,
                boot: d.join("p3"),
                system: d.join("p5"),
            },
        ],
    };
    Autoboot {
        normal: 2,
        tryboot: 2,
    }
    .write(&layout.autoboot)?;
    let fw = FileBootloader::new(d.join("fw"), 2)?;
    let mut agent = UpdateAgent::open(
        AgentConfig {
            state_file: d.join("state.json"),
            layout,
            verify: VerifyOptions {
                product: "pvm".into(),
                board: "rpi5".into(),
                running: Version::new(1, 0, 0),
                allow_downgrade: false,
            },
            maintenance_window: None,
            set_cmdline_root: false,
        },
        TrustStore::open(&d.join("keys"), None)?,
        fw,
    )?;
    let venue = Conditions {
        clock_running: false,
        now_unix: 0,
        local_minute_of_day: 0,
    };

    let payload_bytes = (boot_mib + rootfs_mib) << 20;
    let rss_before = peak_rss_kib();
    let cpu0 = cpu_ns();
    let t0 = Instant::now();
    agent.install(&bundle, &venue, false)?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu_secs = match (cpu0, cpu_ns()) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e9,
        _ => f64::NAN,
    };
    let mb = payload_bytes as f64 / 1e6;
    println!(
        "payload: {} MiB (boot {boot_mib} MiB + rootfs {rootfs_mib} MiB)",
        payload_bytes >> 20
    );
    println!(
        "verify + install + read-back: {secs:.2} s wall, {:.0} MB/s (target >= 200 MB/s)",
        mb / secs
    );
    println!("  on-CPU time {cpu_secs:.2} s: {:.0} MB/s per CPU-second (3 SHA-256 passes, 2 reads, 1 write)", mb / cpu_secs);
    if let Ok(load) = fs::read_to_string("/proc/loadavg") {
        println!("  load average during the run: {}", load.trim());
    }
    println!(
        "peak RSS: {} KiB before install, {} KiB after (target <= 32768 KiB)",
        rss_before.unwrap_or(0),
        peak_rss_kib().unwrap_or(0)
    );
    Ok(())
}
