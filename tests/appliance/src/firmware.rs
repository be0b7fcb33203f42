//! The Raspberry Pi firmware's part in booting, played by the harness.
//!
//! No Pi firmware runs under QEMU, so before each boot the harness does what the firmware's
//! documented `autoboot.txt` / tryboot behaviour does on the Pi 5:
//!
//! - It reads `autoboot.txt` from the first partition (p1). Its `[all]` section names the boot
//!   partition of a normal boot (`boot_partition=N`); with `tryboot_a_b=1`, its `[tryboot]`
//!   section names the partition of a trial boot.
//! - A trial boot happens once, when the one-shot tryboot flag is set. On the Pi, `reboot '0
//!   tryboot'` sets it in a register that survives the reset, and the firmware clears it as it
//!   boots, so the boot after is normal again whatever happens. The test image's
//!   bootloader control sets it by writing a file named [`TRYBOOT_FLAG`] on p1 before it reboots;
//!   [`select`] removes that file as it consumes it — also when the trial boot then fails.
//! - It loads the chosen boot partition's kernel (`vmlinuz`), initrd (`initrd.img`) and
//!   `cmdline.txt`, and tells the system what it did: on the Pi through the device tree
//!   (`/proc/device-tree/chosen/bootloader/{tryboot,partition}`), here by appending
//!   `pvm.tryboot=0|1 pvm.boot_partition=N` to the kernel command line.
//!
//! Like the firmware, it reads the partitions without mounting anything (mtools).

use std::path::{Path, PathBuf};

use crate::disk::{Disk, AUTOBOOT};
use crate::error::{Error, Result};

/// The file on p1 that stands in for the firmware's one-shot tryboot flag.
pub const TRYBOOT_FLAG: &str = "TRYBOOT";

/// What `autoboot.txt` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutobootTxt {
    pub boot_partition: u32,
    pub tryboot_a_b: bool,
    /// `[tryboot] boot_partition`, when there is one.
    pub tryboot_partition: Option<u32>,
}

/// Parses `autoboot.txt` the way the firmware reads `config.txt`-style files: `key=value`
/// lines under conditional sections; `[all]`, `[pi5]` and (on a trial boot) `[tryboot]` apply;
/// sections for other models are skipped; a later value overrides an earlier one; unknown keys
/// are ignored.
pub fn parse_autoboot(text: &str) -> Result<AutobootTxt> {
    let mut section = "all".to_owned();
    let mut normal = None;
    let mut trial = None;
    let mut ab = false;
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_ascii_lowercase();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let applies_normally = matches!(section.as_str(), "all" | "pi5");
        match key {
            "boot_partition" => {
                let n: u32 = value
                    .parse()
                    .map_err(|_| Error::Boot(format!("autoboot.txt: boot_partition={value}")))?;
                if applies_normally {
                    normal = Some(n);
                } else if section == "tryboot" {
                    trial = Some(n);
                }
            }
            "tryboot_a_b" if applies_normally => ab = value == "1",
            _ => {}
        }
    }
    let boot_partition =
        normal.ok_or_else(|| Error::Boot("autoboot.txt names no boot_partition".into()))?;
    Ok(AutobootTxt {
        boot_partition,
        tryboot_a_b: ab,
        tryboot_partition: trial,
    })
}

/// One boot decided by the firmware stand-in, with the files QEMU needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootChoice {
    pub partition: u32,
    pub tryboot: bool,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// `cmdline.txt` plus what the firmware reports (`pvm.tryboot`, `pvm.boot_partition`).
    pub cmdline: String,
}

/// Decides and prepares the next boot of `disk`, consuming the tryboot flag. The kernel and
/// initrd are copied into `scratch` (they may change on the card while the guest runs).
pub fn select(disk: &Disk, scratch: &Path) -> Result<BootChoice> {
    let text = disk
        .read_file(AUTOBOOT, "autoboot.txt")?
        .ok_or_else(|| Error::Boot("p1 has no autoboot.txt".into()))?;
    let autoboot = parse_autoboot(&String::from_utf8_lossy(&text))?;
    // Consumed before the boot is attempted: the flag is one-shot even if this boot fails.
    let flag = disk.remove_file(AUTOBOOT, TRYBOOT_FLAG)?;
    let (partition, tryboot) = match (flag, autoboot.tryboot_a_b, autoboot.tryboot_partition) {
        (true, true, Some(p)) => (p, true),
        // Without tryboot_a_b the Pi would read tryboot.txt from the same partition: the
        // flag still reaches the system, the partition does not change.
        (true, _, _) => (autoboot.boot_partition, true),
        (false, _, _) => (autoboot.boot_partition, false),
    };
    load(disk, partition, tryboot, scratch)
}

/// Loads `partition`'s kernel, initrd and command line for a boot (no flag is touched).
pub fn load(disk: &Disk, partition: u32, tryboot: bool, scratch: &Path) -> Result<BootChoice> {
    let files = disk.list(partition)?;
    for needed in ["vmlinuz", "initrd.img", "cmdline.txt"] {
        if !files.iter().any(|f| f.eq_ignore_ascii_case(needed)) {
            return Err(Error::Boot(format!(
                "boot partition {partition} has no {needed} (files: {files:?})"
            )));
        }
    }
    std::fs::create_dir_all(scratch).map_err(Error::io(format!("create {}", scratch.display())))?;
    let kernel = scratch.join("vmlinuz");
    let initrd = scratch.join("initrd.img");
    disk.extract_file(partition, "vmlinuz", &kernel)?;
    disk.extract_file(partition, "initrd.img", &initrd)?;
    let cmdline = disk
        .read_file(partition, "cmdline.txt")?
        .ok_or_else(|| Error::Boot(format!("boot partition {partition} lost cmdline.txt")))?;
    // The Pi's cmdline.txt is one line; anything after it is ignored.
    let cmdline = String::from_utf8_lossy(&cmdline)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    Ok(BootChoice {
        partition,
        tryboot,
        kernel,
        initrd,
        cmdline: format!(
            "{cmdline} pvm.tryboot={} pvm.boot_partition={partition}",
            u8::from(tryboot)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tryboot_section_applies_only_to_a_trial_boot() {
        let a =
            parse_autoboot("[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n")
                .unwrap();
        assert_eq!(
            a,
            AutobootTxt {
                boot_partition: 2,
                tryboot_a_b: true,
                tryboot_partition: Some(3)
            }
        );
    }

    #[test]
    fn sections_for_other_models_are_skipped_and_later_values_win() {
        let a = parse_autoboot(
            "# comment\n[pi4]\nboot_partition=5\n[all]\nboot_partition=2\n[pi5]\nboot_partition=3\n",
        )
        .unwrap();
        assert_eq!(a.boot_partition, 3);
        assert!(!a.tryboot_a_b);
        assert_eq!(a.tryboot_partition, None);
    }

    #[test]
    fn an_autoboot_without_a_partition_cannot_boot() {
        assert!(parse_autoboot("[all]\ntryboot_a_b=1\n").is_err());
        assert!(parse_autoboot("[all]\nboot_partition=two\n").is_err());
    }
}
