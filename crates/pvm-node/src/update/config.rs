//! `[update]`: where the appliance's A/B slots, trusted keys and firmware are, and the
//! policy around trial boots. On a machine without the autoboot partition none of it
//! applies and the node says updates are not managed here.

use pvm_ota::MaintenanceWindow;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::PathBuf;

/// How this machine boots, i.e. who plays the firmware's part in a trial boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FirmwareKind {
    /// The Raspberry Pi firmware: device tree for the boot status, `reboot '0 tryboot'`.
    RaspberryPi,
    /// The QEMU test image's boot selector (kernel command line, `TRYBOOT` flag on p1).
    TestImage,
    /// Plain files standing in for the firmware (`pvm_ota::FileBootloader`): tests only.
    Files(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpdateConfig {
    /// Off: the node never touches slots, whatever the machine.
    pub enabled: bool,
    /// What bundles must say they are for.
    pub product: String,
    pub board: String,
    /// The minisign public keys shipped in the rootfs (`*.pub`, and a `revoked` list).
    pub keys_dir: PathBuf,
    /// `autoboot.txt` on the mounted p1. Its absence means: not an A/B appliance.
    pub autoboot: PathBuf,
    /// Slot A (boot partition 2) and slot B (boot partition 3): boot and system devices.
    pub boot_a: PathBuf,
    pub system_a: PathBuf,
    pub boot_b: PathBuf,
    pub system_b: PathBuf,
    pub firmware: FirmwareKind,
    /// The system image's version (one line, semver). Absent: the node's own version.
    pub version_file: PathBuf,
    /// A trial boot that is not healthy within this many seconds goes back to the old slot.
    pub health_deadline_secs: u64,
    /// The kiosk creates this file once it has drawn a frame; it must be on a file system
    /// emptied at boot (`/run`). Unset: no kiosk on this machine, so none is waited for.
    /// The default is in the kiosk's own runtime directory (its unit's `RuntimeDirectory=`),
    /// which systemd also empties whenever the kiosk stops.
    pub kiosk_frame_file: Option<PathBuf>,
    /// Reboots are asked of the appliance's `pvm-reboot.path` helper by writing this file
    /// (the node runs unprivileged). Unset: the node runs `reboot` itself, as root.
    pub reboot_request: Option<PathBuf>,
    /// Daily window, in UTC, when installs and reboots may go ahead with a clock running,
    /// written `"03:00-05:00"` (may wrap past midnight).
    #[serde(
        serialize_with = "serialize_window",
        deserialize_with = "deserialize_window"
    )]
    pub maintenance_window: Option<MaintenanceWindow>,
    /// Largest bundle accepted by upload or fetch.
    pub max_bundle_bytes: u64,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            enabled: true,
            product: "pvm".into(),
            board: "rpi5".into(),
            keys_dir: PathBuf::from("/etc/pvm/keys"),
            autoboot: PathBuf::from("/boot/autoboot/autoboot.txt"),
            boot_a: PathBuf::from("/dev/mmcblk0p2"),
            system_a: PathBuf::from("/dev/mmcblk0p4"),
            boot_b: PathBuf::from("/dev/mmcblk0p3"),
            system_b: PathBuf::from("/dev/mmcblk0p5"),
            firmware: FirmwareKind::RaspberryPi,
            version_file: PathBuf::from("/etc/pvm/version"),
            health_deadline_secs: 180,
            kiosk_frame_file: Some(PathBuf::from("/run/pvm-kiosk/frame")),
            reboot_request: Some(PathBuf::from("/run/pvm-update/reboot-request")),
            maintenance_window: None,
            max_bundle_bytes: 4 << 30,
        }
    }
}

/// Parses `HH:MM-HH:MM`.
pub fn parse_window(text: &str) -> Result<MaintenanceWindow, String> {
    let minute = |t: &str| -> Option<u16> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    let bad = || {
        format!("maintenance window `{text}` must be written HH:MM-HH:MM in UTC, e.g. 03:00-05:00")
    };
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let (start_minute, end_minute) = (minute(a).ok_or_else(bad)?, minute(b).ok_or_else(bad)?);
    if start_minute == end_minute {
        return Err(format!("maintenance window `{text}` is empty"));
    }
    Ok(MaintenanceWindow {
        start_minute,
        end_minute,
    })
}

pub fn format_window(w: &MaintenanceWindow) -> String {
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        w.start_minute / 60,
        w.start_minute % 60,
        w.end_minute / 60,
        w.end_minute % 60
    )
}

fn deserialize_window<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<MaintenanceWindow>, D::Error> {
    let text = String::deserialize(d)?;
    parse_window(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn serialize_window<S: Serializer>(w: &Option<MaintenanceWindow>, s: S) -> Result<S::Ok, S::Error> {
    match w {
        Some(w) => s.serialize_str(&format_window(w)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_windows_read_as_utc_minutes_and_may_wrap() {
        let w = parse_window("23:30-02:00").unwrap();
        assert_eq!((w.start_minute, w.end_minute), (1410, 120));
        assert!(w.contains(0) && w.contains(1430) && !w.contains(600));
        assert_eq!(format_window(&w), "23:30-02:00");
        for bad in ["3-5", "25:00-01:00", "03:00-03:00", "03:00", "03:60-04:00"] {
            assert!(parse_window(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_update_section_parses_from_toml() {
        let c: UpdateConfig = toml::from_str(
            "firmware = \"test_image\"\nmaintenance_window = \"03:00-05:00\"\nboot_a = \"/dev/vda2\"\n",
        )
        .unwrap();
        assert_eq!(c.firmware, FirmwareKind::TestImage);
        assert_eq!(c.boot_a, PathBuf::from("/dev/vda2"));
        assert_eq!(c.maintenance_window.map(|w| w.start_minute), Some(180));
        let c: UpdateConfig = toml::from_str("firmware = { files = \"/tmp/fw\" }\n").unwrap();
        assert_eq!(c.firmware, FirmwareKind::Files(PathBuf::from("/tmp/fw")));
        assert!(toml::from_str::<UpdateConfig>("maintenance_window = \"later\"\n").is_err());
        assert!(toml::from_str::<UpdateConfig>("slots = 3\n").is_err());
    }
}
