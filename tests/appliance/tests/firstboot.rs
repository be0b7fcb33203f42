//! First boot on a card larger than the image, with a mistake in the venue's pvm.toml: the
//! data partition grows to fill the card and keeps what it held, the mistake is on the TV's
//! setup screen (not only in a log), the node announces the hostname pvm.toml gave it, and the
//! second boot does not do any of the first boot's one-time work again.
//!
//! One VM, two boots (each costs a minute or more under TCG). Set `PVM_KEEP_VM=1` to keep the
//! console log; the screendump is left beside the image as `firstboot-notice.png`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use pvm_appliance_tests::{Image, Screen, Vm, VmOptions, AUTOBOOT, DATA};

const BOOT_TIMEOUT: Duration = Duration::from_secs(600);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
const MIB: u64 = 1 << 20;
/// How much larger than the image the card is.
const EXTRA: u64 = 1024 * MIB;
/// The kiosk's accent colour (pvm-kiosk's default theme), which frames the notices.
const ACCENT: [u8; 3] = [0xf5, 0xb8, 0x00];
const ADMIN: &str = "owner";
const PASSWORD: &str = "a long enough passphrase";
const HDMI_DISPLAY_ID: &str = "00000000-0000-7000-8000-000000000001";

/// Line 3 is the mistake: no such time zone.
const PVM_TOML: &str = r#"# written by the first-boot test
hostname = "river-room"
timezone = "Mars/Olympus"
venue_name = "The River Room"
"#;

fn image() -> &'static Image {
    Image::get().unwrap_or_else(|e| panic!("{e}"))
}

fn artefact(name: &str) -> PathBuf {
    image().dir().join(name)
}

fn get_json(vm: &Vm, path: &str, token: Option<&str>) -> serde_json::Value {
    vm.get_json(path, token)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// The longest horizontal run of one colour in any row: the notices panel's frame is a line
/// of accent across most of the screen, which no text (the setup code included) comes near.
fn longest_run(screen: &Screen, colour: [u8; 3]) -> usize {
    let mut best = 0;
    for row in screen.rgb.chunks_exact(screen.width as usize * 3) {
        let mut run = 0;
        for px in row.chunks_exact(3) {
            if px == colour {
                run += 1;
                best = best.max(run);
            } else {
                run = 0;
            }
        }
    }
    best
}

/// Writes `contents` as `/name` into the ext4 data partition, before the first boot, with
/// debugfs on a copy of the partition (no mounts).
fn put_on_data_partition(vm_disk: &pvm_appliance_tests::Disk, name: &str, contents: &[u8]) {
    let tmp = tempfile::tempdir().unwrap();
    let part = tmp.path().join("data.ext4");
    let file = tmp.path().join("file");
    std::fs::write(&part, vm_disk.read_partition(DATA, None).unwrap()).unwrap();
    std::fs::write(&file, contents).unwrap();
    let out = Command::new("debugfs")
        .arg("-w")
        .arg("-R")
        .arg(format!("write {} /{name}", file.display()))
        .arg(&part)
        .output()
        .expect("debugfs (e2fsprogs)");
    assert!(out.status.success(), "debugfs: {out:?}");
    vm_disk
        .write_partition(DATA, &std::fs::read(&part).unwrap())
        .unwrap();
}

/// The client id the guest's DHCP lease was obtained with (networkd's lease file), checked to
/// be the MAC-based one (type 1, then the Ethernet address) of the interface holding it.
fn dhcp_client_id(vm: &Vm) -> String {
    let out = vm
        .run_ok(
            "for lease in /run/systemd/netif/leases/*; do \
               index=$(basename \"$lease\"); \
               for dev in /sys/class/net/*; do \
                 [ \"$(cat \"$dev/ifindex\")\" = \"$index\" ] && echo \"mac=$(cat \"$dev/address\")\"; \
               done; \
               grep '^CLIENTID=' \"$lease\"; \
             done",
            COMMAND_TIMEOUT,
        )
        .unwrap();
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} for the DHCP lease in:\n{out}"))
            .trim()
            .to_lowercase()
    };
    let (mac, client_id) = (field("mac="), field("CLIENTID="));
    assert_eq!(
        client_id,
        format!("01{}", mac.replace(':', "")),
        "the DHCP client id is not the MAC (networkd's default is a DUID made from the machine id)"
    );
    client_id
}

fn number(text: &str) -> u64 {
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[test]
fn first_boot_grows_the_data_partition_shows_pvm_toml_mistakes_on_the_tv_and_is_not_redone() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = image().fresh_disk(tmp.path()).unwrap();
    let image_size = disk.size().unwrap();
    let data_before = disk.partition(DATA).unwrap().size;
    put_on_data_partition(
        &disk,
        "kept-from-the-factory",
        b"written before first boot\n",
    );
    disk.grow_to(image_size + EXTRA).unwrap();
    disk.write_file(AUTOBOOT, "pvm.toml", PVM_TOML.as_bytes())
        .unwrap();

    let vm = Vm::start(disk, VmOptions::default()).unwrap();
    vm.wait_healthy(BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));

    // --- The data partition fills the card, and what it held is still there.
    let p6 = number(
        &vm.run_ok("lsblk -b -n -d -o SIZE /dev/vda6", COMMAND_TIMEOUT)
            .unwrap(),
    );
    let card = number(
        &vm.run_ok("lsblk -b -n -d -o SIZE /dev/vda", COMMAND_TIMEOUT)
            .unwrap(),
    );
    assert_eq!(card, image_size + EXTRA, "the guest sees the larger card");
    assert!(
        p6 >= data_before + EXTRA - 2 * MIB,
        "p6 is {p6} bytes: it was {data_before} and the card grew by {EXTRA}"
    );
    let fs = number(
        &vm.run_ok("df -B1 --output=size /data | tail -n1", COMMAND_TIMEOUT)
            .unwrap(),
    );
    // df counts the filesystem less its own metadata: a few percent of the partition.
    assert!(
        fs > p6 / 100 * 90,
        "the ext4 on /data is {fs} bytes in a {p6}-byte partition: not grown"
    );
    let kept = vm
        .run_ok("cat /data/kept-from-the-factory", COMMAND_TIMEOUT)
        .unwrap();
    assert_eq!(kept.trim(), "written before first boot");
    let grew = vm
        .run_ok(
            "dmesg | grep -c 'grow-data: growing' || true",
            COMMAND_TIMEOUT,
        )
        .unwrap();
    assert_eq!(
        number(&grew),
        2,
        "partition then filesystem grown on first boot"
    );

    // --- The mistake: reported by the node, carried by the TV's view, drawn on the TV.
    let report = get_json(&vm, "/api/v1/system/firstboot", None);
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["errors"][0]["key"], "timezone", "{report}");
    assert_eq!(report["errors"][0]["line"], 3, "{report}");
    let view = get_json(
        &vm,
        &format!("/api/v1/displays/{HDMI_DISPLAY_ID}/view"),
        None,
    );
    assert_eq!(view["content"]["type"], "setup", "{view}");
    let notices = view["content"]["notices"].to_string();
    assert!(
        notices.contains("Line 3") && notices.contains("Mars/Olympus"),
        "{view}"
    );

    let png = artefact("firstboot-notice.png");
    let deadline = Instant::now() + BOOT_TIMEOUT;
    let frame = loop {
        let screen = vm.screendump(Some(&png)).unwrap();
        // The kiosk shows "Starting… reconnecting" until its WebSocket is up; wait for the
        // setup screen with its notices panel.
        if longest_run(&screen, ACCENT) > 1000 {
            break screen;
        }
        assert!(
            Instant::now() < deadline,
            "no notices panel on the TV (longest accent run {} px); kiosk journal:\n{}",
            longest_run(&screen, ACCENT),
            vm.run(
                "journalctl -u pvm-kiosk --no-pager | tail -30",
                COMMAND_TIMEOUT
            )
            .map(|o| o.output)
            .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_secs(3));
    };
    eprintln!("setup screen with the notice: {}", png.display());
    assert_eq!((frame.width, frame.height), (1920, 1080));
    let (background, share) = frame.dominant_colour();
    assert!(
        share > 0.5 && background.iter().all(|&c| c < 96),
        "the setup screen's dark background: {background:?} covers {share:.2}"
    );

    // --- mDNS follows pvm.toml's hostname (through node.env), not the image's `pvm`.
    let env = vm
        .run_ok("cat /data/etc/pvm/node.env", COMMAND_TIMEOUT)
        .unwrap();
    assert!(env.contains("PVM_MDNS_HOSTNAME=river-room"), "{env}");
    let token = vm
        .first_admin(ADMIN, PASSWORD)
        .unwrap_or_else(|e| panic!("{e}"));
    let network = get_json(&vm, "/api/v1/system/network", Some(&token));
    assert_eq!(network["hostname"], "river-room", "{network}");
    assert_eq!(network["mdns_name"], "river-room.local", "{network}");

    // --- DHCP asks with the MAC as client id, so the router can give the same address again.
    let first_client_id = dhcp_client_id(&vm);

    // --- The second boot redoes none of it: nothing grown, nothing applied again, and what
    // the first boot and the venue stored is all there.
    let next = vm.reboot(BOOT_TIMEOUT).unwrap();
    assert_eq!(next.number, 1);
    vm.wait_healthy(BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let grew = vm
        .run_ok(
            "dmesg | grep -c 'grow-data: growing' || true",
            COMMAND_TIMEOUT,
        )
        .unwrap();
    assert_eq!(number(&grew), 0, "the second boot grew something again");
    let p6_again = number(
        &vm.run_ok("lsblk -b -n -d -o SIZE /dev/vda6", COMMAND_TIMEOUT)
            .unwrap(),
    );
    assert_eq!(p6_again, p6);
    let report = get_json(&vm, "/api/v1/system/firstboot", None);
    assert_eq!(
        report["applied"],
        serde_json::json!([]),
        "pvm.toml applied again: {report}"
    );
    assert_eq!(
        report["errors"][0]["key"], "timezone",
        "the mistake is still reported until the card is fixed: {report}"
    );
    let kept = vm
        .run_ok(
            "cat /data/kept-from-the-factory; cat /proc/sys/kernel/hostname",
            COMMAND_TIMEOUT,
        )
        .unwrap();
    assert_eq!(kept, "written before first boot\nriver-room\n");
    if let Err(e) = vm.login(ADMIN, PASSWORD) {
        panic!("the admin did not survive: {e}");
    }
    // The machine id is new at every boot (read-only root); the DHCP client id must not be.
    assert_eq!(
        dhcp_client_id(&vm),
        first_client_id,
        "the second boot asked DHCP as another client"
    );

    let boots = vm.stop();
    assert_eq!(boots.len(), 2);
}
