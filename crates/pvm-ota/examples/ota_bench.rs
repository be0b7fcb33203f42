//! Verify + install throughput and peak memory of the A/B installer.
//!
//! `cargo run --release -p pvm-ota --example ota_bench [-- [MIB] [DIR] [--runs N] [--cold]]`
//! builds a signed bundle of MIB MiB (default 512: a 64 MiB boot image, the rest rootfs)
//! in DIR (default the temp dir), then runs the update agent's full path N times (default
//! 5) on files standing in for partitions: verify the whole bundle, stream it into the
//! inactive slot hashing while writing, read each block back from the medium and compare
//! it with what was hashed, fsync, arm tryboot.
//!
//! What it models: the inactive slot already holds the previous image (its files are
//! filled before the first run, as a partition is never empty), so the slot is overwritten
//! in place as a block device is, not grown block by block; and the bundle was just
//! downloaded, so it is in the page cache, as after a download on the Pi (a 512 MiB bundle
//! fits in the Pi 5's RAM next to the node). `--cold` drops the bundle from the page cache
//! before each run instead, so the verify pass reads it from the disk.
//!
//! Prints, per run, the wall time, MB/s over the payload size, the split between the
//! verify pass and write + read-back, the CPU time of all threads, and every byte of I/O:
//! what this process read and wrote on block devices (`/proc/self/io`) and what the disk
//! holding DIR did (`/sys/dev/block/*/stat`); then min/median/max over the runs with the
//! median against the target, and `dd` writing and reading back the same slot files with
//! `O_DIRECT` right before and after the runs, as the disk's own figure under the same
//! conditions. Last the process's peak RSS (VmHWM).

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use pvm_ota::bundle::{make_manifest, write_bundle, BundleSpec, VerifyOptions};
use pvm_ota::{
    keys, AgentConfig, Autoboot, Conditions, FileBootloader, KeyChanges, PayloadKind, Slot,
    SlotLayout, TrustStore, UpdateAgent, UpdateState,
};
use semver::Version;

type Error = Box<dyn std::error::Error>;

const TARGET_MBS: f64 = 200.0;
const TARGET_RSS_KIB: u64 = 32 << 10;

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
    f.flush()?;
    f.get_ref().sync_all()
}

fn peak_rss_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Seconds this process (every thread, including the installer's threads that have
/// ended) has run on a CPU: the machine may be shared, and wall time alone would measure
/// the neighbours too. utime + stime of /proc/self/stat, in the kernel's fixed 100 Hz
/// user-visible ticks.
fn cpu_secs() -> Option<f64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after it are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// Bytes this process made the block layer read and write (page-cache hits and
/// writes that only dirtied the cache are not in it until written back).
fn process_io() -> Option<(u64, u64)> {
    let io = fs::read_to_string("/proc/self/io").ok()?;
    let field = |name: &str| -> Option<u64> {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((field("read_bytes:")?, field("write_bytes:")?))
}

/// The disk (or partition) holding `dir`: its `stat` file in sysfs.
fn disk_stat_path(dir: &Path) -> Option<PathBuf> {
    let dev = fs::metadata(dir).ok()?.dev();
    let p = PathBuf::from(format!(
        "/sys/dev/block/{}:{}/stat",
        rustix::fs::major(dev),
        rustix::fs::minor(dev)
    ));
    p.exists().then_some(p)
}

/// Sectors (512 bytes, whatever the disk's block size) read and written by the whole
/// disk, every process included.
fn disk_sectors(stat: Option<&Path>) -> Option<(u64, u64)> {
    let text = fs::read_to_string(stat?).ok()?;
    let f: Vec<u64> = text
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    Some((*f.get(2)?, *f.get(6)?))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

struct Args {
    total_mib: u64,
    dir: PathBuf,
    runs: usize,
    cold: bool,
}

fn parse_args() -> Result<Args, Error> {
    let mut a = Args {
        total_mib: 512,
        dir: std::env::temp_dir(),
        runs: 5,
        cold: false,
    };
    let mut positional = 0;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--runs" => {
                a.runs = it.next().ok_or("--runs needs a number")?.parse()?;
                if a.runs == 0 {
                    return Err("--runs must be at least 1".into());
                }
            }
            "--cold" => a.cold = true,
            _ if positional == 0 => {
                a.total_mib = arg.parse()?;
                positional += 1;
            }
            _ if positional == 1 => {
                a.dir = arg.into();
                positional += 1;
            }
            _ => return Err(format!("unexpected argument {arg:?}").into()),
        }
    }
    Ok(a)
}

/// `dd` writing the bundle's bytes over the slot files (`O_DIRECT`, 2 MiB blocks, one
/// fdatasync per file) and reading them back (`O_DIRECT`): the same I/O an install does
/// on the medium, with no hashing. Returns (write seconds, read seconds).
fn dd_baseline(bundle: &Path, slots: &[(&Path, u64)]) -> Result<(f64, f64), Error> {
    let run = |args: Vec<String>| -> Result<(), Error> {
        let out = Command::new("dd").args(&args).output()?;
        if !out.status.success() {
            return Err(format!("dd {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(())
    };
    let t = Instant::now();
    for (slot, mib) in slots {
        run(vec![
            format!("if={}", bundle.display()),
            format!("of={}", slot.display()),
            "bs=2M".into(),
            format!("count={}", mib / 2),
            "oflag=direct".into(),
            "conv=fdatasync,notrunc".into(),
            "status=none".into(),
        ])?;
    }
    let write = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for (slot, mib) in slots {
        run(vec![
            format!("if={}", slot.display()),
            "of=/dev/null".into(),
            "bs=2M".into(),
            format!("count={}", mib / 2),
            "iflag=direct".into(),
            "status=none".into(),
        ])?;
    }
    Ok((write, t.elapsed().as_secs_f64()))
}

struct Run {
    secs: f64,
}

fn main() -> Result<(), Error> {
    let args = parse_args()?;
    let work = tempfile::tempdir_in(&args.dir)?;
    let d = work.path();
    // Whole 2 MiB blocks keep the dd comparison exact.
    let boot_mib = ((args.total_mib / 8).max(2) + 1) & !1;
    let rootfs_mib = ((args.total_mib.saturating_sub(boot_mib)).max(2) + 1) & !1;
    let payload_bytes = (boot_mib + rootfs_mib) << 20;
    let mb = payload_bytes as f64 / 1e6;

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
    // Slot A (p2, p4) runs and is never written; slot B (p3, p5) holds an older image.
    File::create(d.join("p2"))?;
    File::create(d.join("p4"))?;
    fill(&d.join("p3"), boot_mib, 3)?;
    fill(&d.join("p5"), rootfs_mib, 4)?;
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
    let venue = Conditions {
        clock_running: false,
        now_unix: 0,
        local_minute_of_day: 0,
    };
    let stat = disk_stat_path(d);
    let slot_files = [
        (layout.slots[1].boot.as_path(), boot_mib),
        (layout.slots[1].system.as_path(), rootfs_mib),
    ];

    println!(
        "payload: {} MiB (boot {boot_mib} MiB + rootfs {rootfs_mib} MiB) in {}; bundle {} \
         before each run; {} runs",
        payload_bytes >> 20,
        args.dir.display(),
        if args.cold {
            "dropped from the page cache"
        } else {
            "in the page cache (just downloaded)"
        },
        args.runs
    );
    let dd_before = dd_baseline(&bundle, &slot_files)?;
    let rss_before = peak_rss_kib();
    let mut runs = Vec::new();
    for i in 1..=args.runs {
        let _ = fs::remove_file(d.join("state.json"));
        Autoboot {
            normal: 2,
            tryboot: 2,
        }
        .write(&layout.autoboot)?;
        let fw = FileBootloader::new(d.join("fw"), 2)?;
        let mut agent = UpdateAgent::open(
            AgentConfig {
                state_file: d.join("state.json"),
                layout: layout.clone(),
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
        // When each state began, to split the time between the passes.
        let marks =
            std::sync::Arc::new(std::sync::Mutex::new(Vec::<(UpdateState, Instant)>::new()));
        let seen = marks.clone();
        agent.set_listener(Box::new(move |st| {
            if let Ok(mut m) = seen.lock() {
                if m.last().map(|(s, _)| *s) != Some(st.state) {
                    m.push((st.state, Instant::now()));
                }
            }
        }));
        if args.cold {
            let f = File::open(&bundle)?;
            rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed)?;
        }

        let io0 = process_io();
        let disk0 = disk_sectors(stat.as_deref());
        let cpu0 = cpu_secs();
        let t0 = Instant::now();
        agent.install(&bundle, &venue, false)?;
        let secs = t0.elapsed().as_secs_f64();
        let cpu = match (cpu0, cpu_secs()) {
            (Some(a), Some(b)) => b - a,
            _ => f64::NAN,
        };
        let split = marks.lock().ok().and_then(|m| {
            let at = |state| m.iter().find(|(s, _)| *s == state).map(|(_, t)| *t);
            Some((
                (at(UpdateState::Installing)? - at(UpdateState::Verifying)?).as_secs_f64(),
                (at(UpdateState::Ready)? - at(UpdateState::Installing)?).as_secs_f64(),
            ))
        });
        println!(
            "run {i}: {secs:.2} s wall, {:.0} MB/s; verify {}, write + fdatasync + read-back {}; \
             CPU {cpu:.2} s ({:.0} MB/s per CPU-second)",
            mb / secs,
            split.map_or("?".into(), |s| format!("{:.2} s", s.0)),
            split.map_or("?".into(), |s| format!("{:.2} s", s.1)),
            mb / cpu,
        );
        if let (Some((r0, w0)), Some((r1, w1))) = (io0, process_io()) {
            print!(
                "       I/O: this process read {:.0} MiB and wrote {:.0} MiB on the disk",
                mib(r1 - r0),
                mib(w1 - w0)
            );
            match (disk0, disk_sectors(stat.as_deref())) {
                (Some((r0, w0)), Some((r1, w1))) => println!(
                    "; the disk as a whole read {:.0} MiB and wrote {:.0} MiB",
                    mib((r1 - r0) * 512),
                    mib((w1 - w0) * 512)
                ),
                _ => println!(),
            }
        }
        runs.push(Run { secs });
    }
    let dd_after = dd_baseline(&bundle, &slot_files)?;

    let mut rates: Vec<f64> = runs.iter().map(|r| mb / r.secs).collect();
    rates.sort_by(f64::total_cmp);
    let median = if rates.len() % 2 == 1 {
        rates[rates.len() / 2]
    } else {
        (rates[rates.len() / 2 - 1] + rates[rates.len() / 2]) / 2.0
    };
    println!(
        "verify + install + read-back over {} runs: min {:.0}, median {median:.0}, max {:.0} MB/s \
         (target: median >= {TARGET_MBS:.0} MB/s: {})",
        rates.len(),
        rates[0],
        rates[rates.len() - 1],
        verdict(median >= TARGET_MBS)
    );
    for (when, (w, r)) in [("before", dd_before), ("after", dd_after)] {
        println!(
            "dd {when} (same slot files, O_DIRECT, 2 MiB, no hashing): write {:.0} MB/s, \
             read {:.0} MB/s, write + read {:.0} MB/s of payload",
            mb / w,
            mb / r,
            mb / (w + r)
        );
    }
    if let Ok(load) = fs::read_to_string("/proc/loadavg") {
        println!("load average at the end: {}", load.trim());
    }
    let peak = peak_rss_kib().unwrap_or(u64::MAX);
    println!(
        "peak RSS: {} KiB before installing, {peak} KiB after (target <= {TARGET_RSS_KIB} KiB: {})",
        rss_before.unwrap_or(0),
        verdict(peak <= TARGET_RSS_KIB)
    );
    Ok(())
}
