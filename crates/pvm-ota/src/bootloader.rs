//! Control of the boot firmware, behind one small trait.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{OtaError, Result};
use crate::slots::Autoboot;

/// How this boot came about, as the firmware reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootStatus {
    /// This is the one-shot trial boot requested with `tryboot`.
    pub tryboot: bool,
    /// The boot partition the firmware booted from.
    pub partition: u32,
}

pub trait Bootloader {
    fn status(&self) -> Result<BootStatus>;
    /// Reboot once into `[tryboot]`; the firmware clears the flag, so the boot after is normal.
    fn reboot_tryboot(&self) -> Result<()>;
    /// Ordinary reboot (into `[all]`).
    fn reboot(&self) -> Result<()>;
}

/// The node picks its firmware from configuration at run time.
impl<B: Bootloader + ?Sized> Bootloader for Box<B> {
    fn status(&self) -> Result<BootStatus> {
        (**self).status()
    }
    fn reboot_tryboot(&self) -> Result<()> {
        (**self).reboot_tryboot()
    }
    fn reboot(&self) -> Result<()> {
        (**self).reboot()
    }
}

/// Reads a device-tree cell: a big-endian u32.
fn read_cell(path: &Path) -> Result<u32> {
    let bytes = std::fs::read(path).map_err(OtaError::io(format!("read {}", path.display())))?;
    let cell: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| OtaError::Bootloader(format!("{} is not a u32 cell", path.display())))?;
    Ok(u32::from_be_bytes(cell))
}

fn read_status(dir: &Path) -> Result<BootStatus> {
    Ok(BootStatus {
        tryboot: read_cell(&dir.join("tryboot"))? != 0,
        partition: read_cell(&dir.join("partition"))?,
    })
}

/// How a reboot is brought about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RebootVia {
    /// Run `reboot` (with `0 tryboot` for a trial boot): the caller must be root.
    #[default]
    Command,
    /// Write `tryboot` or `normal` (and a newline) into this file, for a privileged helper
    /// that watches it (the appliance's `pvm-reboot.path`). The node then holds no power to
    /// reboot the machine at will, only to ask for one of these two reboots.
    Request(PathBuf),
}

impl RebootVia {
    fn reboot(&self, tryboot: bool) -> Result<()> {
        match self {
            RebootVia::Command => run_reboot(tryboot.then_some("0 tryboot")),
            RebootVia::Request(path) => {
                let what: &[u8] = if tryboot { b"tryboot\n" } else { b"normal\n" };
                crate::fsutil::atomic_write(path, what)
            }
        }
    }
}

/// The Raspberry Pi firmware: state from the device tree, reboots through `reboot`.
#[derive(Clone, Debug)]
pub struct PiFirmware {
    pub device_tree: PathBuf,
    pub reboot: RebootVia,
}

impl Default for PiFirmware {
    fn default() -> Self {
        PiFirmware {
            device_tree: PathBuf::from("/proc/device-tree/chosen/bootloader"),
            reboot: RebootVia::Command,
        }
    }
}

fn run_reboot(arg: Option<&str>) -> Result<()> {
    let mut cmd = Command::new("reboot");
    if let Some(a) = arg {
        cmd.arg(a);
    }
    let status = cmd
        .status()
        .map_err(|e| OtaError::Bootloader(format!("running reboot: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(OtaError::Bootloader(format!("reboot exited with {status}")))
    }
}

impl Bootloader for PiFirmware {
    fn status(&self) -> Result<BootStatus> {
        read_status(&self.device_tree)
    }
    fn reboot_tryboot(&self) -> Result<()> {
        self.reboot.reboot(true)
    }
    fn reboot(&self) -> Result<()> {
        self.reboot.reboot(false)
    }
}

/// The firmware's behaviour over plain files, for the QEMU test image and tests,
/// where no Pi firmware can run. This is the one stand-in in the crate: `status`
/// reads the same big-endian cells the Pi exposes, reboots only record a request,
/// and [`FileBootloader::simulate_boot`] plays the firmware's part at the next boot.
#[derive(Clone, Debug)]
pub struct FileBootloader {
    pub dir: PathBuf,
}

const REQUEST: &str = "reboot-request";

impl FileBootloader {
    /// A machine that last booted `partition` normally.
    pub fn new(dir: PathBuf, partition: u32) -> Result<FileBootloader> {
        std::fs::create_dir_all(&dir).map_err(OtaError::io(format!("create {}", dir.display())))?;
        let b = FileBootloader { dir };
        b.set(false, partition)?;
        Ok(b)
    }

    fn set(&self, tryboot: bool, partition: u32) -> Result<()> {
        let w = |name: &str, v: u32| {
            let p = self.dir.join(name);
            std::fs::write(&p, v.to_be_bytes())
                .map_err(OtaError::io(format!("write {}", p.display())))
        };
        w("tryboot", u32::from(tryboot))?;
        w("partition", partition)
    }

    fn request(&self, what: &str) -> Result<()> {
        let p = self.dir.join(REQUEST);
        std::fs::write(&p, what).map_err(OtaError::io(format!("write {}", p.display())))
    }

    /// Boots as the firmware would: a pending `tryboot` request boots `[tryboot]`
    /// once, anything else (including a power cut) boots `[all]`.
    pub fn simulate_boot(&self, autoboot: &Path) -> Result<BootStatus> {
        let a = Autoboot::read(autoboot)?;
        let p = self.dir.join(REQUEST);
        let tryboot = std::fs::read_to_string(&p)
            .map(|s| s == "tryboot")
            .unwrap_or(false);
        let _ = std::fs::remove_file(&p);
        let status = BootStatus {
            tryboot,
            partition: if tryboot { a.tryboot } else { a.normal },
        };
        self.set(status.tryboot, status.partition)?;
        Ok(status)
    }
}

impl Bootloader for FileBootloader {
    fn status(&self) -> Result<BootStatus> {
        read_status(&self.dir)
    }
    fn reboot_tryboot(&self) -> Result<()> {
        self.request("tryboot")
    }
    fn reboot(&self) -> Result<()> {
        self.request("normal")
    }
}

/// The QEMU test image's stand-in for the Pi firmware, and only that: QEMU boots no
/// Pi firmware, so the test harness's boot selector plays its part. It reads
/// `autoboot.txt` from p1 like the firmware, boots `[tryboot]` once when the file
/// `TRYBOOT` is on p1 (and deletes it, which is the one-shot), and tells the kernel
/// what it did with `pvm.tryboot=0|1 pvm.boot_partition=N` on the command line.
///
/// So `status` reads the kernel command line, and `reboot_tryboot` leaves `TRYBOOT`
/// next to `autoboot.txt` (durably: the selector reads the disk image after the VM
/// is gone) before rebooting. Never used on a Pi.
#[derive(Clone, Debug)]
pub struct EmulatedFirmware {
    /// Usually `/proc/cmdline`.
    pub cmdline: PathBuf,
    /// The mounted p1: where `autoboot.txt` and the one-shot `TRYBOOT` flag live.
    pub autoboot_dir: PathBuf,
    pub reboot: RebootVia,
}

/// The one-shot flag file the test image's boot selector consumes.
pub const EMULATED_TRYBOOT_FLAG: &str = "TRYBOOT";

impl EmulatedFirmware {
    pub fn new(autoboot_dir: PathBuf) -> EmulatedFirmware {
        EmulatedFirmware {
            cmdline: PathBuf::from("/proc/cmdline"),
            autoboot_dir,
            reboot: RebootVia::Command,
        }
    }

    /// Parses `pvm.tryboot=` and `pvm.boot_partition=` out of a kernel command line.
    pub fn parse_cmdline(cmdline: &str) -> Result<BootStatus> {
        let mut tryboot = None;
        let mut partition = None;
        for word in cmdline.split_whitespace() {
            if let Some(v) = word.strip_prefix("pvm.tryboot=") {
                tryboot = Some(match v {
                    "0" => false,
                    "1" => true,
                    other => {
                        return Err(OtaError::Bootloader(format!("pvm.tryboot={other}")));
                    }
                });
            } else if let Some(v) = word.strip_prefix("pvm.boot_partition=") {
                partition = Some(
                    v.parse::<u32>()
                        .map_err(|_| OtaError::Bootloader(format!("pvm.boot_partition={v}")))?,
                );
            }
        }
        match (tryboot, partition) {
            (Some(tryboot), Some(partition)) => Ok(BootStatus { tryboot, partition }),
            _ => Err(OtaError::Bootloader(
                "the kernel command line lacks pvm.tryboot= and pvm.boot_partition= \
                 (not booted by the test image's boot selector)"
                    .into(),
            )),
        }
    }
}

impl Bootloader for EmulatedFirmware {
    fn status(&self) -> Result<BootStatus> {
        let text = std::fs::read_to_string(&self.cmdline)
            .map_err(OtaError::io(format!("read {}", self.cmdline.display())))?;
        EmulatedFirmware::parse_cmdline(&text)
    }
    fn reboot_tryboot(&self) -> Result<()> {
        crate::fsutil::atomic_write(&self.autoboot_dir.join(EMULATED_TRYBOOT_FLAG), b"1\n")?;
        self.reboot.reboot(true)
    }
    fn reboot(&self) -> Result<()> {
        self.reboot.reboot(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulated_firmware_reads_the_boot_selectors_command_line() {
        let s = EmulatedFirmware::parse_cmdline(
            "console=ttyS0 root=/dev/vda5 pvm.tryboot=1 pvm.boot_partition=3 quiet",
        )
        .unwrap();
        assert_eq!(
            s,
            BootStatus {
                tryboot: true,
                partition: 3
            }
        );
        let s = EmulatedFirmware::parse_cmdline("pvm.boot_partition=2 pvm.tryboot=0").unwrap();
        assert!(!s.tryboot);
        assert_eq!(s.partition, 2);
    }

    #[test]
    fn a_reboot_request_names_the_kind_of_reboot_for_the_helper() {
        let d = tempfile::tempdir().unwrap();
        let req = d.path().join("reboot-request");
        let fw = EmulatedFirmware {
            cmdline: d.path().join("cmdline"),
            autoboot_dir: d.path().to_path_buf(),
            reboot: RebootVia::Request(req.clone()),
        };
        fw.reboot_tryboot().unwrap();
        assert_eq!(std::fs::read_to_string(&req).unwrap(), "tryboot\n");
        assert!(d.path().join(EMULATED_TRYBOOT_FLAG).exists());
        fw.reboot().unwrap();
        assert_eq!(std::fs::read_to_string(&req).unwrap(), "normal\n");
    }

    #[test]
    fn emulated_firmware_refuses_a_command_line_without_its_words() {
        assert!(EmulatedFirmware::parse_cmdline("console=ttyS0 root=/dev/vda4").is_err());
        assert!(EmulatedFirmware::parse_cmdline("pvm.tryboot=2 pvm.boot_partition=2").is_err());
        assert!(EmulatedFirmware::parse_cmdline("pvm.tryboot=1 pvm.boot_partition=x").is_err());
    }
}
