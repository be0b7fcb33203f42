//! A/B installs on files standing in for partitions. The Pi firmware cannot run
//! here, so `FileBootloader` (the crate's one stand-in) plays its part: it records
//! reboot requests and, at `simulate_boot`, boots `[tryboot]` once or `[all]`.

mod common;

use std::fs;

use common::*;
use pvm_ota::{
    Autoboot, BootOutcome, Conditions, MaintenanceWindow, OtaError, UpdateAgent, UpdateState,
};

#[test]
fn install_writes_the_inactive_slot_and_arms_only_the_trial_boot() {
    let d = tempfile::tempdir().unwrap();
    let (_, dev, b) = signed_v2(d.path(), None);
    let mut agent = dev.agent("1.0.0");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    agent.set_listener(Box::new(move |s| s2.lock().unwrap().push(s.state)));
    agent.install(&b.bundle, &idle_venue(), false).unwrap();

    assert_eq!(agent.status().state, UpdateState::Ready);
    assert_eq!(agent.status().version.as_deref(), Some("1.2.0"));
    assert_eq!(
        dev.autoboot(),
        Autoboot {
            normal: 2,
            tryboot: 3
        }
    );
    assert!(dev.slot_holds(3, &b.boot, &b.rootfs));
    assert!(
        dev.slot_holds(2, &dev.v1_boot, &dev.v1_rootfs),
        "the running slot is untouched"
    );
    let seen = seen.lock().unwrap();
    for s in [
        UpdateState::Verifying,
        UpdateState::Installing,
        UpdateState::Ready,
    ] {
        assert!(seen.contains(&s), "{s:?} reported: {seen:?}");
    }
    // The state is on disk for the next process.
    assert_eq!(dev.agent("1.0.0").status().state, UpdateState::Ready);
}

#[test]
fn a_trial_boot_whose_health_check_passes_is_committed() {
    let d = tempfile::tempdir().unwrap();
    let (_, dev, b) = signed_v2(d.path(), None);
    let mut agent = dev.agent("1.0.0");
    agent.install(&b.bundle, &idle_venue(), false).unwrap();
    agent.reboot_to_try(&idle_venue(), false).unwrap();
    assert_eq!(agent.status().state, UpdateState::Trying);

    let boot = dev.firmware().simulate_boot(&dev.layout.autoboot).unwrap();
    assert!(boot.tryboot && boot.partition == 3);
    let mut agent = dev.agent("1.2.0");
    let mut checked = false;
    let outcome = agent
        .after_boot(&mut || {
            checked = true;
            true
        })
        .unwrap();
    assert!(checked);
    assert_eq!(outcome, BootOutcome::Committed);
    assert_eq!(agent.status().state, UpdateState::Committed);
    assert_eq!(
        dev.autoboot(),
        Autoboot {
            normal: 3,
            tryboot: 2
        }
    );
    // From now on a plain boot comes up in the new slot.
    let boot = dev.firmware().simulate_boot(&dev.layout.autoboot).unwrap();
    assert!(!boot.tryboot && boot.partition == 3);
    assert_eq!(
        dev.agent("1.2.0").after_boot(&mut || true).unwrap(),
        BootOutcome::Normal
    );
}

#[test]
fn a_trial_boot_whose_health_check_fails_goes_back_to_the_old_slot() {
    let d = tempfile::tempdir().unwrap();
    let (_, dev, b) = signed_v2(d.path(), None);
    let mut agent = dev.agent("1.0.0");
    agent.install(&b.bundle, &idle_venue(), false).unwrap();
    agent.reboot_to_try(&idle_venue(), false).unwrap();
    dev.firmware().simulate_boot(&dev.layout.autoboot).unwrap();

    let mut agent = dev.agent("1.2.0");
    assert_eq!(
        agent.after_boot(&mut || false).unwrap(),
        BootOutcome::RollingBack
    );
    assert_eq!(agent.status().state, UpdateState::RolledBack);
    assert!(agent
        .status()
        .error
        .as_deref()
        .unwrap()
        .contains("health check"));
    assert_eq!(
        dev.autoboot(),
        Autoboot {
            normal: 2,
            tryboot: 3
        },
        "never committed"
    );
    let boot = dev.firmware().simulate_boot(&dev.layout.autoboot).unwrap();
    assert!(!boot.tryboot && boot.partition == 2);
    assert!(dev.slot_holds(2, &dev.v1_boot, &dev.v1_rootfs));
    // The next start sees the rollback as settled.
    assert_eq!(
        dev.agent("1.0.0").after_boot(&mut || true).unwrap(),
        BootOutcome::Normal
    );
}

#[test]
fn a_trial_boot_that_never_comes_up_is_rolled_back_by_the_firmware() {
    let d = tempfile::tempdir().unwrap();
    let (k, dev, b) = signed_v2(d.path(), None);
    let mut agent = dev.agent("1.0.0");
    agent.install(&b.bundle, &idle_venue(), false).unwrap();
    agent.reboot_to_try(&idle_venue(), false).unwrap();
    // The trial boot hangs before the agent runs; the watchdog resets the board and
    // the one-shot flag is gone, so the firmware boots [all].
    dev.firmware().simulate_boot(&dev.layout.autoboot).unwrap();
    let boot = dev.firmware().simulate_boot(&dev.layout.autoboot).unwrap();
    assert!(!boot.tryboot && boot.partition == 2);
    let mut agent = dev.agent("1.0.0");
    let outcome = agent
        .after_boot(&mut || panic!("no health check on the old slot"))
        .unwrap();
    assert_eq!(outcome, BootOutcome::RolledBack);
    assert_eq!(agent.status().state, UpdateState::RolledBack);
    // A later release can be installed again over the rolled-back one.
    let b3 = build(
        d.path(),
        "v3",
        Release {
            key: Some(&k),
            version: "1.3.0",
            seed: 9,
            ..Default::default()
        },
    );
    agent.install(&b3.bundle, &idle_venue(), false).unwrap();
    assert!(dev.slot_holds(3, &b3.boot, &b3.rootfs));
}

#[test]
fn every_refused_bundle_leaves_slots_and_autoboot_untouched() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let stranger = new_key();
    let revoked = new_key();
    let dev = Device::new(d.path(), &[&k, &revoked]);
    fs::write(d.path().join("keys/revoked"), format!("{}\n", revoked.id)).unwrap();
    // Something already in the tryboot slot, so "untouched" is visible there too.
    Autoboot {
        normal: 2,
        tryboot: 3,
    }
    .write(&dev.layout.autoboot)
    .unwrap();
    let good = build(
        d.path(),
        "good",
        Release {
            key: Some(&k),
            ..Default::default()
        },
    );
    let spans = entry_spans(&good.bundle);
    let rootfs = spans
        .iter()
        .find(|(n, _, _)| n == "rootfs.img")
        .unwrap()
        .clone();

    type Case = (&'static str, std::path::PathBuf, fn(&OtaError) -> bool);
    let mut cases: Vec<Case> = Vec::new();
    cases.push((
        "unsigned",
        build(d.path(), "u", Release::default()).bundle,
        |e| matches!(e, OtaError::Unsigned),
    ));
    let p = d.path().join("m.pvmb");
    flip_byte(&good.bundle, &p, "manifest.json", 30);
    cases.push(("manifest byte", p, |e| {
        matches!(e, OtaError::BadSignature(_))
    }));
    let p = d.path().join("r.pvmb");
    flip_byte(&good.bundle, &p, "rootfs.img", rootfs.2 - 1);
    cases.push(("last rootfs byte", p, |e| {
        matches!(e, OtaError::PayloadHash { .. })
    }));
    let p = d.path().join("t.pvmb");
    truncate_copy(&good.bundle, &p, rootfs.1 + rootfs.2 / 3);
    cases.push(("truncated", p, |e| matches!(e, OtaError::Truncated(_))));
    cases.push((
        "stranger",
        build(
            d.path(),
            "s",
            Release {
                key: Some(&stranger),
                ..Default::default()
            },
        )
        .bundle,
        |e| matches!(e, OtaError::UnknownKey(_)),
    ));
    cases.push((
        "revoked",
        build(
            d.path(),
            "rv",
            Release {
                key: Some(&revoked),
                ..Default::default()
            },
        )
        .bundle,
        |e| matches!(e, OtaError::RevokedKey(_)),
    ));
    cases.push((
        "board",
        build(
            d.path(),
            "b",
            Release {
                key: Some(&k),
                board: "rpi4",
                ..Default::default()
            },
        )
        .bundle,
        |e| matches!(e, OtaError::WrongBoard { .. }),
    ));
    cases.push((
        "older",
        build(
            d.path(),
            "o",
            Release {
                key: Some(&k),
                version: "0.9.0",
                min_version: "0.1.0",
                ..Default::default()
            },
        )
        .bundle,
        |e| matches!(e, OtaError::NotNewer { .. }),
    ));

    let before = dev.snapshot();
    for (what, bundle, expected) in cases {
        let mut agent = dev.agent("1.0.0");
        let err = agent.install(&bundle, &idle_venue(), false).unwrap_err();
        assert!(expected(&err), "{what}: {err:?}");
        assert_eq!(agent.status().state, UpdateState::Failed, "{what}");
        assert_eq!(
            agent.status().error.as_deref(),
            Some(err.to_string().as_str())
        );
        assert!(
            dev.snapshot() == before,
            "{what}: a slot or autoboot.txt changed"
        );
    }
}

#[test]
fn no_install_or_reboot_while_a_clock_runs_unless_in_the_window_or_forced() {
    let d = tempfile::tempdir().unwrap();
    let (_, dev, b) = signed_v2(d.path(), None);
    let busy = Conditions {
        clock_running: true,
        ..idle_venue()
    };
    let mut agent = dev.agent("1.0.0");
    let before = dev.snapshot();
    assert!(matches!(
        agent.install(&b.bundle, &busy, false),
        Err(OtaError::Deferred(_))
    ));
    assert_eq!(
        agent.status().state,
        UpdateState::Idle,
        "a deferral is not a failure"
    );
    assert!(dev.snapshot() == before);

    // Postponed by the console: even an idle venue waits, until the time passes.
    agent.postpone(idle_venue().now_unix + 3600).unwrap();
    assert!(matches!(
        agent.install(&b.bundle, &idle_venue(), false),
        Err(OtaError::Deferred(_))
    ));
    let later = Conditions {
        now_unix: idle_venue().now_unix + 3601,
        ..idle_venue()
    };
    agent.install(&b.bundle, &later, false).unwrap();

    assert!(matches!(
        agent.reboot_to_try(&busy, false),
        Err(OtaError::Deferred(_))
    ));
    assert_eq!(agent.status().state, UpdateState::Ready);
    assert!(
        !d.path().join("fw/reboot-request").exists(),
        "no reboot was requested"
    );
    agent.reboot_to_try(&busy, true).unwrap();
    assert_eq!(
        fs::read_to_string(d.path().join("fw/reboot-request")).unwrap(),
        "tryboot"
    );

    // A maintenance window lets work happen with a clock running (here 03:00-05:00, and wrapping windows).
    let w = MaintenanceWindow {
        start_minute: 180,
        end_minute: 300,
    };
    assert!(w.contains(180) && w.contains(299) && !w.contains(300) && !w.contains(179));
    let night = MaintenanceWindow {
        start_minute: 23 * 60,
        end_minute: 60,
    };
    assert!(night.contains(23 * 60 + 5) && night.contains(10) && !night.contains(61));
}

#[test]
fn an_install_interrupted_by_a_restart_is_reported_failed_and_can_start_over() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let dev = Device::new(d.path(), &[&k]);
    fs::write(d.path().join("data/ota-state.json"), r#"{"state":"installing","version":"1.2.0","target_partition":3,"previous_partition":2,"progress":{"done":5,"total":9},"error":null,"postponed_until":null}"#).unwrap();
    let mut agent: UpdateAgent<_> = dev.agent("1.0.0");
    assert_eq!(agent.status().state, UpdateState::Failed);
    assert!(agent
        .status()
        .error
        .as_deref()
        .unwrap()
        .contains("interrupted"));
    let b = build(
        d.path(),
        "v2",
        Release {
            key: Some(&k),
            ..Default::default()
        },
    );
    agent.install(&b.bundle, &idle_venue(), false).unwrap();
    assert_eq!(agent.status().state, UpdateState::Ready);
}

#[test]
fn autoboot_txt_parsing_is_strict() {
    let ok = "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n";
    assert_eq!(
        Autoboot::parse(ok).unwrap(),
        Autoboot {
            normal: 2,
            tryboot: 3
        }
    );
    assert_eq!(Autoboot::parse(ok).unwrap().render(), ok);
    for bad in [
        "",
        "[all]\nboot_partition=2\n[tryboot]\nboot_partition=3\n",
        "[all]\ntryboot_a_b=1\nboot_partition=2\n",
        "[all]\ntryboot_a_b=1\nboot_partition=6\n[tryboot]\nboot_partition=3\n",
        "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partit",
    ] {
        assert!(Autoboot::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_pi_firmware_reads_tryboot_and_partition_as_big_endian_device_tree_cells() {
    use pvm_ota::{Bootloader, PiFirmware};
    // A copy of /proc/device-tree/chosen/bootloader as the Pi 5 firmware lays it out.
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("tryboot"), 1u32.to_be_bytes()).unwrap();
    fs::write(d.path().join("partition"), 3u32.to_be_bytes()).unwrap();
    let fw = PiFirmware {
        device_tree: d.path().to_path_buf(),
        reboot: pvm_ota::RebootVia::Command,
    };
    let s = fw.status().unwrap();
    assert!(s.tryboot && s.partition == 3);
    fs::write(d.path().join("tryboot"), [0u8, 0]).unwrap();
    assert!(matches!(fw.status(), Err(OtaError::Bootloader(_))));
}

#[test]
fn download_progress_is_a_state_with_progress_and_survives_in_the_state_file() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let dev = Device::new(d.path(), &[&k]);
    let mut agent = dev.agent("1.0.0");
    agent.downloading(10, 100).unwrap();
    agent.downloading(60, 100).unwrap();
    assert_eq!(agent.status().state, UpdateState::Downloading);
    assert_eq!(
        agent.status().progress,
        Some(pvm_ota::agent::Progress {
            done: 60,
            total: 100
        })
    );
    // A restart in the middle of a download is an interrupted update.
    assert_eq!(dev.agent("1.0.0").status().state, UpdateState::Failed);
}
