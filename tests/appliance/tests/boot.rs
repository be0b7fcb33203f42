//! The QEMU test image boots like the appliance: the firmware stand-in picks slot A, the
//! read-only system starts the node and the kiosk by itself, first boot applies the venue's
//! pvm.toml, and what the venue keeps on the data partition survives a reboot.
//!
//! Each test builds the image if needed (`image/qemu/build-image.sh`, cached) and boots its own
//! copy of the card under QEMU (TCG). Set `PVM_KEEP_VM=1` to keep a VM's run dir (console log,
//! screendumps) after the test.

use std::path::PathBuf;
use std::time::Duration;

use pvm_appliance_tests::firmware::{self, TRYBOOT_FLAG};
use pvm_appliance_tests::{BootEnd, Disk, Image, Vm, VmOptions, AUTOBOOT, BOOT_A, BOOT_B};

/// Generous: an emulated guest on a busy two-core machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(600);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
const ADMIN: &str = "owner";
const PASSWORD: &str = "a long enough passphrase";

fn image() -> &'static Image {
    Image::get().unwrap_or_else(|e| panic!("{e}"))
}

/// Where a test leaves pictures worth looking at: beside the image, not in a temp dir.
fn artefact(name: &str) -> PathBuf {
    image().dir().join(name)
}

#[test]
fn the_firmware_stand_in_boots_the_trial_slot_once_then_the_normal_one_again() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = image().fresh_disk(tmp.path()).unwrap();
    let scratch = tmp.path().join("fw");

    // A fresh card boots slot A normally.
    let first = firmware::select(&disk, &scratch).unwrap();
    assert_eq!((first.partition, first.tryboot), (BOOT_A, false));
    assert!(
        first.cmdline.contains("root=/dev/vda4"),
        "{}",
        first.cmdline
    );
    assert!(first
        .cmdline
        .ends_with("pvm.tryboot=0 pvm.boot_partition=2"));

    // Slot B filled as an update fills it, and the one-shot flag set as the guest's
    // bootloader control sets it: one trial boot of B, and the flag is gone.
    disk.write_partition(BOOT_B, &std::fs::read(image().boot_b()).unwrap())
        .unwrap();
    disk.write_file(AUTOBOOT, TRYBOOT_FLAG, b"").unwrap();
    let trial = firmware::select(&disk, &scratch).unwrap();
    assert_eq!((trial.partition, trial.tryboot), (BOOT_B, true));
    assert!(
        trial.cmdline.contains("root=/dev/vda5"),
        "{}",
        trial.cmdline
    );
    assert!(trial
        .cmdline
        .ends_with("pvm.tryboot=1 pvm.boot_partition=3"));
    assert!(!disk.exists(AUTOBOOT, TRYBOOT_FLAG).unwrap());

    // Nothing committed B: the next boot is A again.
    let after = firmware::select(&disk, &scratch).unwrap();
    assert_eq!((after.partition, after.tryboot), (BOOT_A, false));

    // Committing B ([all] names it) makes it the normal boot.
    disk.write_file(
        AUTOBOOT,
        "autoboot.txt",
        b"[all]\ntryboot_a_b=1\nboot_partition=3\n[tryboot]\nboot_partition=2\n",
    )
    .unwrap();
    let committed = firmware::select(&disk, &scratch).unwrap();
    assert_eq!((committed.partition, committed.tryboot), (BOOT_B, false));
}

#[test]
fn a_trial_boot_of_an_empty_slot_is_refused_and_the_flag_still_consumed() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = image().fresh_disk(tmp.path()).unwrap();
    disk.write_file(AUTOBOOT, TRYBOOT_FLAG, b"").unwrap();
    let err = firmware::select(&disk, &tmp.path().join("fw")).unwrap_err();
    assert!(err.to_string().contains("no vmlinuz"), "{err}");
    assert!(!disk.exists(AUTOBOOT, TRYBOOT_FLAG).unwrap());
}

#[test]
fn a_fresh_card_boots_slot_a_read_only_into_the_node_and_the_kiosk_setup_screen() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = image().fresh_disk(tmp.path()).unwrap();
    let vm = Vm::start(disk, VmOptions::default()).unwrap();
    let took = vm
        .wait_healthy(BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "node healthy {:.1} s after QEMU started (TCG emulation)",
        took.as_secs_f64()
    );

    let boot = vm.current_boot().unwrap();
    assert_eq!(
        (boot.number, boot.partition, boot.tryboot),
        (0, BOOT_A, false)
    );
    let cmdline = vm.run_ok("cat /proc/cmdline", COMMAND_TIMEOUT).unwrap();
    assert!(
        cmdline.contains("pvm.tryboot=0 pvm.boot_partition=2"),
        "{cmdline}"
    );

    // The system slot is mounted read-only from p4; /data is the ext4 on p6, writable.
    let root = vm
        .run_ok(
            "findmnt -n -o SOURCE,FSTYPE,OPTIONS / | tr -s ' '",
            COMMAND_TIMEOUT,
        )
        .unwrap();
    assert!(root.starts_with("/dev/vda4 squashfs ro"), "{root}");
    let data = vm
        .run_ok(
            "findmnt -n -o SOURCE,FSTYPE,OPTIONS /data | tr -s ' '",
            COMMAND_TIMEOUT,
        )
        .unwrap();
    assert!(data.starts_with("/dev/vda6 ext4 rw"), "{data}");
    vm.run_ok(
        "touch /data/.writable && rm /data/.writable",
        COMMAND_TIMEOUT,
    )
    .unwrap();

    let node = vm
        .run("systemctl is-active pvm-node.service", COMMAND_TIMEOUT)
        .unwrap();
    assert_eq!(node.output.trim(), "active");

    // The kiosk drives the virtio-gpu through KMS; on a fresh node it shows the setup screen.
    // It may take a while to draw its first frame under emulation: poll the screen.
    let png = artefact("setup-screen.png");
    let deadline = std::time::Instant::now() + BOOT_TIMEOUT;
    let screen = loop {
        let kiosk = vm
            .run("systemctl is-active pvm-kiosk.service", COMMAND_TIMEOUT)
            .unwrap();
        let screen = vm.screendump(Some(&png)).unwrap();
        // The kiosk first shows "Starting… reconnecting" until its WebSocket is up; the setup
        // screen is the one with the QR code (a bright share well above that text's).
        let bright = screen.share_brighter_than(160.0);
        if kiosk.output.trim() == "active" && screen.distinct_colours() > 16 && bright >= 0.01 {
            break screen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the kiosk drew no setup screen ({} colours, {:.3} bright, kiosk {}); journal:\n{}",
            screen.distinct_colours(),
            bright,
            kiosk.output.trim(),
            vm.run(
                "journalctl -u pvm-kiosk --no-pager | tail -30",
                COMMAND_TIMEOUT
            )
            .map(|o| o.output)
            .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_secs(3));
    };
    eprintln!("setup screen: {}", png.display());
    assert_eq!((screen.width, screen.height), (1920, 1080));
    let (background, share) = screen.dominant_colour();
    // The setup screen: a dark background with light text and a QR code on it, not a console
    // or an empty frame.
    assert!(
        share > 0.5 && background.iter().all(|&c| c < 96),
        "background {background:?} covers {share:.2}"
    );
    let bright = screen.share_brighter_than(160.0);
    assert!(
        (0.01..0.4).contains(&bright),
        "{bright:.3} of the screen is bright: not the setup screen"
    );
    vm.stop();
}

const PVM_TOML: &str = r#"# written by the appliance test
hostname = "river-room"
venue_name = "The River Room"
timezone = "Europe/London"
wifi_ssid = "RiverGuests"
wifi_passphrase = "correct horse battery staple"
"#;

fn get_json(vm: &Vm, path: &str) -> serde_json::Value {
    vm.get_json(path, None)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// One VM for both, since every boot under emulation costs minutes: the venue's pvm.toml is
/// applied by the first boot (and its secret taken off the FAT partition), and what the first
/// boot stored — those settings, and an admin created through the API — is still there after
/// a reboot through the firmware stand-in.
#[test]
fn pvm_toml_is_applied_on_first_boot_and_it_and_an_admin_survive_a_reboot() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = image().fresh_disk(tmp.path()).unwrap();
    let card = disk.path().to_path_buf();
    disk.write_file(AUTOBOOT, "pvm.toml", PVM_TOML.as_bytes())
        .unwrap();
    let vm = Vm::start(disk, VmOptions::default()).unwrap();
    vm.wait_healthy(BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));

    // First boot applied pvm.toml.
    let report = vm
        .run_ok("cat /run/pvm/firstboot.json", COMMAND_TIMEOUT)
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["found"], true, "{report}");
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    for key in ["hostname", "timezone", "venue_name"] {
        assert!(
            report["applied"]
                .as_array()
                .is_some_and(|a| a.iter().any(|k| k == key)),
            "{key} not applied: {report}"
        );
    }
    let settings = "cat /proc/sys/kernel/hostname; readlink -f /etc/localtime; \
                    cat /data/etc/pvm/node.env";
    let applied = vm.run_ok(settings, COMMAND_TIMEOUT).unwrap();
    let mut lines = applied.lines();
    assert_eq!(lines.next(), Some("river-room"), "{applied}");
    assert!(
        lines
            .next()
            .is_some_and(|z| z.ends_with("zoneinfo/Europe/London")),
        "{applied}"
    );
    assert!(applied.contains("The River Room"), "{applied}");
    // The secret is gone from the FAT partition (read through the guest's own mount).
    let left = vm
        .run_ok("cat /boot/autoboot/pvm.toml", COMMAND_TIMEOUT)
        .unwrap();
    assert!(!left.contains("correct horse"), "{left}");
    assert!(left.contains("river-room"), "{left}");

    // The first admin, with the setup code the TV shows (the node also logs it).
    assert_eq!(get_json(&vm, "/api/v1/setup")["setup_required"], true);
    vm.setup_admin(ADMIN, PASSWORD)
        .unwrap_or_else(|e| panic!("setup: {e}"));

    // Reboot: the firmware stand-in boots slot A again, normally.
    let next = vm.reboot(BOOT_TIMEOUT).unwrap();
    assert_eq!(
        (next.number, next.partition, next.tryboot),
        (1, BOOT_A, false)
    );
    vm.wait_healthy(BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(
        get_json(&vm, "/api/v1/setup")["setup_required"],
        false,
        "the admin did not survive the reboot"
    );
    if let Err(e) = vm.login(ADMIN, PASSWORD) {
        panic!("login after reboot: {e}");
    }
    let again = vm.run_ok(settings, COMMAND_TIMEOUT).unwrap();
    assert_eq!(again, applied, "the settings changed across the reboot");

    // The journal on /data kept the whole first boot, its first minute included (the kernel's
    // opening lines, the node's setup code), although the machine id is new at each boot.
    let last_boot = vm
        .run_ok(
            "journalctl -b -1 -k -o cat --no-pager | head -n1; \
             journalctl -b -1 -u pvm-node -o cat --no-pager | grep -c 'setup code'; \
             journalctl -b 0 -o cat --no-pager | grep -c 'has been deleted' || true",
            COMMAND_TIMEOUT,
        )
        .unwrap();
    let mut last_boot_lines = last_boot.lines();
    assert!(
        last_boot_lines
            .next()
            .is_some_and(|l| l.starts_with("Linux version")),
        "the first boot's kernel log is not in the journal:\n{last_boot}"
    );
    assert_ne!(last_boot_lines.next(), Some("0"), "{last_boot}");
    assert_eq!(
        last_boot_lines.next(),
        Some("0"),
        "journald lost files it was writing:\n{last_boot}"
    );

    let boots = vm.stop();
    assert_eq!(boots[0].end, Some(BootEnd::GuestExit));
    assert_eq!(boots.len(), 2);
    // Off, the card itself shows the same: the passphrase is not on p1.
    let card = Disk::open(&card).unwrap();
    let on_card = card.read_file(AUTOBOOT, "pvm.toml").unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&on_card).contains("correct horse"));
}
