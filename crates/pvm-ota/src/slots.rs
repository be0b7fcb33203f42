//! The A/B layout and the firmware's `autoboot.txt`.
//!
//! p1 is a small FAT partition holding only `autoboot.txt`; p2/p3 are the boot
//! partitions of slots A/B, p4/p5 their read-only root filesystems, p6 data. The
//! firmware boots `[all] boot_partition` normally and `[tryboot] boot_partition`
//! once after `reboot '0 tryboot'`.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{OtaError, Result};
use crate::fsutil::{atomic_write, hex};

/// The two boot partition numbers the firmware can be told to use.
pub const BOOT_PARTITIONS: [u32; 2] = [2, 3];

/// What `autoboot.txt` says: the normal boot partition and the one-shot trial one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Autoboot {
    pub normal: u32,
    pub tryboot: u32,
}

impl Autoboot {
    pub fn render(&self) -> String {
        format!(
            "[all]\ntryboot_a_b=1\nboot_partition={}\n[tryboot]\nboot_partition={}\n",
            self.normal, self.tryboot
        )
    }

    /// Strict parse: both sections, `tryboot_a_b=1`, and partitions that are boot slots.
    pub fn parse(text: &str) -> Result<Autoboot> {
        let mut section = "";
        let (mut normal, mut tryboot, mut ab) = (None, None, false);
        for raw in text.lines() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if line.starts_with('[') {
                section = match line {
                    "[all]" => "all",
                    "[tryboot]" => "tryboot",
                    other => return Err(OtaError::Autoboot(format!("unexpected section {other}"))),
                };
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| OtaError::Autoboot(format!("unreadable line {line:?}")))?;
            match (section, k.trim(), v.trim()) {
                ("all", "tryboot_a_b", "1") => ab = true,
                (s, "boot_partition", v) => {
                    let n: u32 = v
                        .parse()
                        .map_err(|_| OtaError::Autoboot(format!("boot_partition={v}")))?;
                    if !BOOT_PARTITIONS.contains(&n) {
                        return Err(OtaError::Autoboot(format!("{n} is not a boot slot")));
                    }
                    match s {
                        "all" => normal = Some(n),
                        "tryboot" => tryboot = Some(n),
                        _ => {
                            return Err(OtaError::Autoboot(
                                "boot_partition outside a section".into(),
                            ))
                        }
                    }
                }
                (_, k, v) => return Err(OtaError::Autoboot(format!("unexpected {k}={v}"))),
            }
        }
        match (ab, normal, tryboot) {
            (true, Some(normal), Some(tryboot)) => Ok(Autoboot { normal, tryboot }),
            _ => Err(OtaError::Autoboot(
                "needs [all] tryboot_a_b=1 and boot_partition, and [tryboot] boot_partition".into(),
            )),
        }
    }

    pub fn read(path: &Path) -> Result<Autoboot> {
        let text = std::fs::read_to_string(path)
            .map_err(OtaError::io(format!("read {}", path.display())))?;
        Autoboot::parse(&text)
    }

    /// Written so the firmware sees the old file or the new one, never half of one.
    pub fn write(&self, path: &Path) -> Result<()> {
        atomic_write(path, self.render().as_bytes())
    }
}

/// The devices (or stand-in files) of one slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The partition number the firmware knows this slot's boot partition by.
    pub boot_partition: u32,
    pub boot: PathBuf,
    pub system: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotLayout {
    /// `autoboot.txt` on the mounted p1.
    pub autoboot: PathBuf,
    pub slots: [Slot; 2],
}

impl SlotLayout {
    /// The SD card layout of the image: `disk` is e.g. `/dev/mmcblk0`.
    pub fn raspberry_pi(autoboot: PathBuf, disk: &str) -> SlotLayout {
        let part = |n: u32| PathBuf::from(format!("{disk}p{n}"));
        SlotLayout {
            autoboot,
            slots: [
                Slot {
                    boot_partition: 2,
                    boot: part(2),
                    system: part(4),
                },
                Slot {
                    boot_partition: 3,
                    boot: part(3),
                    system: part(5),
                },
            ],
        }
    }

    pub fn slot(&self, boot_partition: u32) -> Result<&Slot> {
        self.slots
            .iter()
            .find(|s| s.boot_partition == boot_partition)
            .ok_or_else(|| {
                OtaError::Autoboot(format!("no slot with boot partition {boot_partition}"))
            })
    }

    pub fn other(&self, boot_partition: u32) -> Result<&Slot> {
        self.slot(boot_partition)?;
        self.slots
            .iter()
            .find(|s| s.boot_partition != boot_partition)
            .ok_or_else(|| OtaError::Autoboot("layout has one slot".into()))
    }
}

/// Opens the device (or stand-in file) at `dest` for writing `size` bytes from offset 0.
/// Never creates or truncates: a block device can be neither.
pub(crate) fn open_slot(dest: &Path, size: u64) -> Result<File> {
    let err = |what: &str| OtaError::io(format!("{what} {}", dest.display()));
    let mut f = OpenOptions::new()
        .write(true)
        .open(dest)
        .map_err(err("open"))?;
    let meta = f.metadata().map_err(err("stat"))?;
    if meta.file_type().is_block_device() {
        let capacity = f.seek(SeekFrom::End(0)).map_err(err("size"))?;
        if capacity < size {
            return Err(OtaError::Slot {
                path: dest.to_path_buf(),
                reason: format!("{size} bytes do not fit in {capacity}"),
            });
        }
    }
    f.seek(SeekFrom::Start(0)).map_err(err("seek"))?;
    Ok(f)
}

/// Writes one payload of `bundle` (at `offset`) into the slot device at `dest`: a reader
/// thread reads the bundle ahead, this thread hashes each block (the bytes written are the
/// bytes hashed), and writer threads write the blocks before it, several at once, with
/// `O_DIRECT` where allowed so the medium is busy while hashing goes on. One `fdatasync` at the end, not one
/// per block; then any cached pages are dropped so [`read_back`] has to fetch them from the
/// medium.
///
/// Where `O_DIRECT` works both ways, each block is also read back from the medium right
/// after it was written and compared with the hashed block, and `true` is returned;
/// otherwise `false`, and the caller reads the slot back with [`read_back`] after this
/// returned. A block that reads back differently is [`OtaError::Slot`].
///
/// A digest that differs from the manifest's (the bundle changed since it was verified)
/// is [`OtaError::PayloadHash`] after the slot was written: callers keep the slot unnamed
/// in `autoboot.txt` until everything checked out, so a half-written slot never boots.
pub(crate) fn write_payload(
    dest: &Path,
    bundle: &File,
    payload: &crate::manifest::Payload,
    offset: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<bool> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = open_slot(dest, payload.size)?;
    // Block devices and ext4 take O_DIRECT; tmpfs and a few others refuse it at open, and
    // then everything goes through the page cache and the final fdatasync.
    let direct = OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
        .open(dest)
        .ok();
    // Read back right behind the writer only where both directions bypass the page cache.
    let check = match direct {
        Some(_) => OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
            .open(dest)
            .ok(),
        None => None,
    };
    let what = dest.display().to_string();
    let sink = crate::pipeline::Sink {
        direct: direct.as_ref(),
        buffered: &f,
        what: &what,
        check: check.as_ref(),
    };
    let read_back_equal =
        crate::bundle::hash_payload(bundle, payload, offset, Some(&sink), &mut |block| {
            progress(block.len() as u64);
            Ok(())
        })?;
    f.sync_data()
        .map_err(OtaError::io(format!("fdatasync {}", dest.display())))?;
    let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
    Ok(read_back_equal)
}

/// SHA-256 of the first `size` bytes at `path`, read back from the medium, not from
/// memory: with `O_DIRECT` where the file system supports it (ext4, block devices), else
/// buffered after dropping the cached pages (which [`write_payload`] did after its fsync).
pub fn read_back(path: &Path, size: u64) -> Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let direct = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
        .open(path);
    let (f, direct) = match direct {
        Ok(f) => (f, true),
        // tmpfs and a few others refuse O_DIRECT at open.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
            let f = File::open(path).map_err(OtaError::io(format!("open {}", path.display())))?;
            let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
            (f, false)
        }
        Err(e) => {
            return Err(OtaError::Io {
                context: format!("open {}", path.display()),
                source: e,
            })
        }
    };
    let src = crate::pipeline::Source {
        file: &f,
        offset: 0,
        size,
        direct,
    };
    let mut hasher = Sha256::new();
    let what = format!("back {}", path.display());
    crate::pipeline::stream(&src, &what, &mut |block| {
        hasher.update(block);
        Ok(())
    })
    .map_err(|e| match e {
        OtaError::Truncated(reason) => OtaError::Slot {
            path: path.to_path_buf(),
            reason: format!("read {reason}"),
        },
        e => e,
    })?;
    Ok(hex(&hasher.finalize()))
}
