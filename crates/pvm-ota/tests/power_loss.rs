//! Power loss during an update, on files standing in for partitions: the whole
//! update (install, trial reboot, commit) runs in a child process that is killed
//! with SIGKILL at hundreds of random points. After each kill, autoboot.txt must be
//! valid and every slot it names must hold a complete image; then the "firmware"
//! (the file stand-in, as the Pi firmware cannot run here) boots, and a fresh run
//! must finish the update.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use pvm_ota::{Autoboot, UpdateState};

const CHILD_ENV: &str = "PVM_OTA_POWER_LOSS_DEVICE";
const ITERATIONS: usize = 200;

fn release() -> Release<'static> {
    Release {
        boot_len: 48 * 1024 + 3,
        rootfs_len: 192 * 1024 + 11,
        ..Default::default()
    }
}

/// Drives the device towards a committed update from whatever state it is in, as
/// the node would at each start. Runs only as the child of `power_loss_...`.
#[test]
#[ignore = "run by power_loss_at_random_points_never_leaves_an_unbootable_slot as its child"]
fn power_loss_child() {
    let root = std::env::var(CHILD_ENV).expect("only run as the power-loss test's child");
    let root = Path::new(&root);
    let dev = Device::reopen(root);
    let bundle = root.join("bundle.pvmb");
    for _ in 0..6 {
        let booted = dev.firmware_status_partition();
        let mut agent = dev.agent(if booted == 3 { "1.2.0" } else { "1.0.0" });
        agent.after_boot(&mut || true).unwrap();
        match agent.status().state {
            UpdateState::Committed => return,
            UpdateState::Ready => {}
            _ => agent.install(&bundle, &idle_venue(), false).unwrap(),
        }
        agent.reboot_to_try(&idle_venue(), false).unwrap();
        dev.firmware().simulate_boot(&dev.layout.autoboot).unwrap();
    }
    panic!("the update did not converge");
}

fn check_bootable(dev: &Device, b: &Built, when: &str) -> Autoboot {
    let a = Autoboot::read(&dev.layout.autoboot).unwrap_or_else(|e| panic!("{when}: {e}"));
    for p in [a.normal, a.tryboot] {
        let complete = if p == 2 {
            dev.slot_holds(2, &dev.v1_boot, &dev.v1_rootfs)
        } else {
            dev.slot_holds(3, &b.boot, &b.rootfs)
        };
        assert!(
            complete,
            "{when}: autoboot {a:?} names partition {p}, which is incomplete"
        );
    }
    a
}

fn run_child(root: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "power_loss_child",
            "--test-threads=1",
            "-q",
        ])
        .env(CHILD_ENV, root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn power_loss_at_random_points_never_leaves_an_unbootable_slot() {
    // tmpfs when there is one: each run fsyncs a dozen times, and a busy disk would
    // make hundreds of runs take minutes without testing anything more.
    let shm = Path::new("/dev/shm");
    let d = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .unwrap();
    let k = new_key();
    let seed = fastrand::u64(..);
    println!("power-loss seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);

    let b = build(
        d.path(),
        "bundle",
        Release {
            key: Some(&k),
            ..release()
        },
    );
    let fresh = |root: &Path| -> Device {
        let _ = std::fs::remove_dir_all(root);
        let dev = Device::new(root, &[&k]);
        std::fs::copy(&b.bundle, root.join("bundle.pvmb")).unwrap();
        dev
    };

    // Uninterrupted runs tell how long the whole update takes (the fastest of
    // three, so a cold start does not stretch the window past the end).
    let root = d.path().join("dev");
    let mut full = Duration::MAX;
    for _ in 0..3 {
        let dev = fresh(&root);
        let t0 = Instant::now();
        let out = run_child(&root).wait_with_output().unwrap();
        full = full.min(t0.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            check_bootable(&dev, &b, "uninterrupted"),
            Autoboot {
                normal: 3,
                tryboot: 2
            }
        );
    }

    let mut landed = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..ITERATIONS {
        let dev = fresh(&root);
        let mut child = run_child(&root);
        let delay = rng.u64(..(full.as_micros() as u64 * 11 / 10).max(1));
        std::thread::sleep(Duration::from_micros(delay));
        let _ = child.kill();
        let _ = child.wait();
        let when = format!("iteration {i}, killed after {delay} us (seed {seed})");
        check_bootable(&dev, &b, &when);
        let state = std::fs::read_to_string(root.join("data/ota-state.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v["state"].as_str().map(str::to_string))
            .unwrap_or_else(|| "none".into());
        *landed.entry(state).or_default() += 1;

        // The power comes back: the firmware boots whatever autoboot.txt and the
        // one-shot flag say, and that slot must be whole.
        let boot = dev.firmware().simulate_boot(&dev.layout.autoboot).unwrap();
        check_bootable(&dev, &b, &format!("{when}, after boot {boot:?}"));
        let out = run_child(&root).wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{when}: recovery failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            check_bootable(&dev, &b, &when),
            Autoboot {
                normal: 3,
                tryboot: 2
            },
            "{when}"
        );
    }
    println!("{ITERATIONS} kills over a {full:?} update; persisted state at the kill: {landed:?}");
}
