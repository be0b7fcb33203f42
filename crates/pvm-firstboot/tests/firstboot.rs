//! pvm-firstboot against a temporary root folder and a temporary "autoboot partition".

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use pvm_firstboot::{run, write_report, Options, Report, FILE_NAME};
use tempfile::TempDir;

struct Card {
    _dir: TempDir,
    root: PathBuf,
    autoboot: PathBuf,
}

impl Card {
    /// A root with what the image provides: an empty data partition, a zoneinfo database.
    fn new(pvm_toml: Option<&str>) -> Card {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let autoboot = dir.path().join("autoboot");
        fs::create_dir_all(root.join("data/pvm")).unwrap();
        fs::create_dir_all(root.join("usr/share/zoneinfo/Europe")).unwrap();
        fs::write(root.join("usr/share/zoneinfo/Europe/London"), b"TZif").unwrap();
        fs::write(root.join("usr/share/zoneinfo/UTC"), b"TZif").unwrap();
        fs::create_dir_all(&autoboot).unwrap();
        if let Some(text) = pvm_toml {
            fs::write(autoboot.join(FILE_NAME), text).unwrap();
        }
        Card {
            _dir: dir,
            root,
            autoboot,
        }
    }

    fn run(&self) -> Report {
        run(&Options {
            root: self.root.clone(),
            autoboot: self.autoboot.clone(),
            set_kernel_hostname: false,
        })
    }

    fn read(&self, absolute: &str) -> String {
        fs::read_to_string(self.root.join(absolute.trim_start_matches('/'))).unwrap()
    }

    fn exists(&self, absolute: &str) -> bool {
        self.root.join(absolute.trim_start_matches('/')).exists()
    }

    fn pvm_toml(&self) -> String {
        fs::read_to_string(self.autoboot.join(FILE_NAME)).unwrap()
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

const FULL: &str = r#"# my box
hostname = "club7"
venue_name = "Club \"Seven\""
timezone = "Europe/London"
wifi_ssid = "Club WiFi"
wifi_passphrase = "correct horse battery"
wifi_country = "gb"
enrolment_code = "ABCD-1234"
ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx0bG9uZ2tleWJvZHk tech@laptop"
"#;

#[test]
fn no_pvm_toml_is_fine_and_changes_nothing() {
    let card = Card::new(None);
    let report = card.run();
    assert!(report.ok);
    assert!(!report.found);
    assert!(report.applied.is_empty());
    assert!(!card.exists("/data/etc"));
}

#[test]
fn every_setting_lands_where_the_system_reads_it() {
    let card = Card::new(Some(FULL));
    let report = card.run();
    assert!(report.ok, "{report:?}");
    assert_eq!(
        report.applied,
        [
            "hostname",
            "venue_name",
            "timezone",
            "wifi",
            "enrolment_code",
            "ssh_key"
        ]
    );

    assert_eq!(card.read("/data/etc/hostname"), "club7\n");
    assert_eq!(
        card.read("/data/etc/pvm/node.env"),
        "PVM_MDNS_HOSTNAME=club7\nPVM_NODE_NAME=\"Club \\\"Seven\\\"\"\n",
        "the node announces itself under the venue's hostname"
    );
    assert_eq!(
        fs::read_link(card.root.join("data/etc/localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/Europe/London")
    );
    let wifi = card.read("/data/etc/wpa_supplicant/wpa_supplicant-wlan0.conf");
    assert!(wifi.contains("country=GB\n"), "{wifi}");
    assert!(
        wifi.contains(&format!("\tssid={}\n", "436c75622057694669")),
        "{wifi}"
    );
    assert!(wifi.contains("\tpsk=\"correct horse battery\"\n"), "{wifi}");
    assert_eq!(
        mode(
            &card
                .root
                .join("data/etc/wpa_supplicant/wpa_supplicant-wlan0.conf")
        ),
        0o600
    );
    assert_eq!(card.read("/data/pvm/pending-enrolment"), "ABCD-1234\n");
    assert_eq!(mode(&card.root.join("data/pvm/pending-enrolment")), 0o600);
    assert!(card
        .read("/data/etc/ssh/authorized_keys")
        .starts_with("ssh-ed25519 AAAA"));
}

#[test]
fn secrets_leave_the_fat_partition_and_everything_else_stays() {
    let card = Card::new(Some(FULL));
    card.run();
    let left = card.pvm_toml();
    assert!(!left.contains("correct horse"), "{left}");
    assert!(!left.contains("ABCD-1234"), "{left}");
    assert!(left.contains("# wifi_passphrase: applied and removed from this file\n"));
    assert!(left.contains("# enrolment_code: applied and removed from this file\n"));
    assert!(
        left.starts_with("# my box\nhostname = \"club7\"\n"),
        "{left}"
    );
    assert!(left.contains("wifi_ssid = \"Club WiFi\"\n"));
    assert!(left.contains("ssh_key = "));
}

#[test]
fn a_second_boot_applies_nothing_new_and_keeps_the_wifi_secret() {
    let card = Card::new(Some(FULL));
    card.run();
    let report = card.run();
    assert!(report.ok, "{report:?}");
    assert!(report.applied.is_empty(), "{:?}", report.applied);
    let wifi = card.read("/data/etc/wpa_supplicant/wpa_supplicant-wlan0.conf");
    assert!(wifi.contains("psk=\"correct horse battery\""), "{wifi}");
    assert_eq!(card.read("/data/pvm/pending-enrolment"), "ABCD-1234\n");
}

#[test]
fn mistakes_are_reported_with_key_and_line_and_valid_settings_still_apply() {
    let text = "hostname = \"-bad-\"\nvenue_name = \"Fine\"\ntimezone = \"Mars/Olympus\"\n\
                wifi_passphrase = \"short\"\ncolour = \"red\"\nssh_key = \"not a key\"\n\
                enrolment_code = \"ABCD-1234\"\n";
    let card = Card::new(Some(text));
    let report = card.run();
    assert!(!report.ok);
    let errors: Vec<(Option<&str>, Option<usize>)> = report
        .errors
        .iter()
        .map(|e| (e.key.as_deref(), e.line))
        .collect();
    assert_eq!(
        errors,
        [
            (Some("hostname"), Some(1)),
            (Some("timezone"), Some(3)),
            (Some("wifi_passphrase"), Some(4)),
            (Some("colour"), Some(5)),
            (Some("ssh_key"), Some(6)),
        ]
    );
    assert_eq!(report.applied, ["venue_name", "enrolment_code"]);
    assert!(!card.exists("/data/etc/hostname"));
    assert!(!card.exists("/data/etc/ssh/authorized_keys"));
    // The refused passphrase stays on the card for the venue to fix; the applied code goes.
    let left = card.pvm_toml();
    assert!(left.contains("wifi_passphrase = \"short\""));
    assert!(!left.contains("ABCD-1234"));
}

#[test]
fn a_file_that_is_not_toml_applies_nothing_and_keeps_ssh_as_it_was() {
    let card = Card::new(Some(FULL));
    card.run();
    fs::write(
        card.autoboot.join(FILE_NAME),
        "hostname = \"club8\"\nwifi_ssid = \"x\n",
    )
    .unwrap();
    let report = card.run();
    assert!(!report.ok);
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].key, None);
    assert_eq!(report.errors[0].line, Some(2));
    assert!(report.errors[0].message.contains("line 2, column"));
    assert_eq!(card.read("/data/etc/hostname"), "club7\n");
    assert!(card.exists("/data/etc/ssh/authorized_keys"));
}

#[test]
fn taking_the_ssh_key_out_of_pvm_toml_turns_ssh_off() {
    let card = Card::new(Some(FULL));
    card.run();
    assert!(card.exists("/data/etc/ssh/authorized_keys"));
    fs::write(card.autoboot.join(FILE_NAME), "hostname = \"club7\"\n").unwrap();
    let report = card.run();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.applied, ["ssh_key"]);
    assert!(!card.exists("/data/etc/ssh/authorized_keys"));
}

#[test]
fn a_network_without_a_passphrase_is_an_open_one() {
    let card = Card::new(Some("wifi_ssid = \"Guest\"\n"));
    let report = card.run();
    assert!(report.ok, "{report:?}");
    let wifi = card.read("/data/etc/wpa_supplicant/wpa_supplicant-wlan0.conf");
    assert!(wifi.contains("key_mgmt=NONE"), "{wifi}");
    assert!(!wifi.contains("psk="), "{wifi}");
}

#[test]
fn a_passphrase_without_a_network_name_is_a_mistake() {
    let card = Card::new(Some("wifi_passphrase = \"long enough pass\"\n"));
    let report = card.run();
    assert!(!report.ok);
    assert_eq!(report.errors[0].key.as_deref(), Some("wifi_passphrase"));
    assert!(report.errors[0].message.contains("wifi_ssid"));
    assert!(!card.exists("/data/etc/wpa_supplicant"));
    // Not applied, so not removed: the venue sees what it wrote.
    assert!(card.pvm_toml().contains("long enough pass"));
}

#[test]
fn the_report_file_has_the_agreed_shape() {
    let card = Card::new(Some("hostname = \"ok\"\nnope = \"x\"\n"));
    let report = card.run();
    let path = card.root.join("run/pvm/firstboot.json");
    write_report(&path, &report).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["applied"], serde_json::json!(["hostname"]));
    assert_eq!(json["errors"][0]["key"], "nope");
    assert_eq!(json["errors"][0]["line"], 2);
    assert!(json["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("unknown setting"));
}

#[test]
fn the_shipped_example_is_valid_and_changes_nothing() {
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../overlays/usr/share/pvm/pvm.toml.example");
    let text = fs::read_to_string(example).unwrap();
    let card = Card::new(Some(&text));
    let report = card.run();
    assert!(report.ok, "{report:?}");
    assert!(report.applied.is_empty());
    assert_eq!(card.pvm_toml(), text);

    // Every commented-out line in it, switched on, is a valid setting.
    let uncommented: String = text
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if rest.contains(" = \"") => format!("{rest}\n"),
            _ => format!("{line}\n"),
        })
        .collect();
    let card = Card::new(Some(&uncommented));
    let report = card.run();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.applied.len(), 6, "{:?}", report.applied);
}

/// The appliance's `/etc/machine-id` is empty on a read-only root, so systemd makes up a new
/// id at every boot and `ConditionFirstBoot=yes` holds at every boot. Work meant for the first
/// boot only must key on state on /data instead (pvm-grow-data checks the sizes,
/// pvm-firstboot compares what it would write); no unit of ours may lean on that condition.
#[test]
fn no_overlay_unit_keys_first_boot_work_on_condition_first_boot() {
    let overlays = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../overlays");
    let mut units = 0;
    let mut stack = vec![overlays];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            if text.contains("[Unit]") || text.contains("[Service]") {
                units += 1;
            }
            // Comments may explain why it is not used; only a setting counts.
            let uses = text.lines().any(|line| {
                let line = line.trim_start();
                !line.starts_with('#')
                    && !line.starts_with(';')
                    && line.starts_with("ConditionFirstBoot")
            });
            assert!(
                !uses,
                "{} uses ConditionFirstBoot, which is true at every boot here",
                path.display()
            );
        }
    }
    assert!(units >= 5, "found only {units} units under overlays/");
}
