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
    SlotLayout, TrustStore, UpdateAgent, UpdateState,
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

/// Seconds this process (every thread, including the installer's reader threads that
/// have ended) has run on a CPU: the machine may be shared and overloaded, and wall time
/// alone would measure the neighbours. utime + stime of /proc/self/stat, in the kernel's
/// fixed 100 Hz user-visible ticks.
fn cpu_secs() -> Option<f64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after it are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
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

    // When each state began, to split the time between the passes.
    let marks = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(UpdateState, Instant)>::new()));
    let seen = marks.clone();
    agent.set_listener(Box::new(move |st| {
        if let Ok(mut m) = seen.lock() {
            if m.last().map(|(s, _)| *s) != Some(st.state) {
                m.push((st.state, Instant::now()));
            }
        }
    }));

    let payload_bytes = (boot_mib + rootfs_mib) << 20;
    let rss_before = peak_rss_kib();
    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    agent.install(&bundle, &venue, false)?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = match (cpu0, cpu_secs()) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    };
    let mb = payload_bytes as f64 / 1e6;
    println!(
        "payload: {} MiB (boot {boot_mib} MiB + rootfs {rootfs_mib} MiB)",
        payload_bytes >> 20
    );
    let wall_rate = mb / secs;
    println!(
        "verify + install + read-back: {secs:.2} s wall, {wall_rate:.0} MB/s (target >= 200 MB/s: {})",
        verdict(wall_rate >= 200.0)
    );
    let cpu_rate = mb / cpu;
    println!(
        "  on-CPU time {cpu:.2} s (all threads): {cpu_rate:.0} MB/s per CPU-second (target >= 200: {}; \
         3 SHA-256 passes, 2 bundle reads, 1 write, 1 read from the medium)",
        verdict(cpu_rate >= 200.0)
    );
    if let Ok(m) = marks.lock() {
        let at = |state| m.iter().find(|(s, _)| *s == state).map(|(_, t)| *t);
        if let (Some(v), Some(i), Some(r)) = (
            at(UpdateState::Verifying),
            at(UpdateState::Installing),
            at(UpdateState::Ready),
        ) {
            println!(
                "  verify pass {:.2} s, write + fdatasync + read-back {:.2} s",
                (i - v).as_secs_f64(),
                (r - i).as_secs_f64()
            );
        }
    }
    if let Ok(load) = fs::read_to_string("/proc/loadavg") {
        println!("  load average during the run: {}", load.trim());
    }
    let peak = peak_rss_kib().unwrap_or(u64::MAX);
    println!(
        "peak RSS: {} KiB before install, {peak} KiB after (target <= 32768 KiB: {})",
        rss_before.unwrap_or(0),
        verdict(peak <= 32768)
    );
    Ok(())
}
