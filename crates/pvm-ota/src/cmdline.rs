//! The kernel command line of a boot slot names that slot's root filesystem.
//!
//! One boot payload serves both slots: a release does not know whether it will land in A or
//! B. The firmware reads `cmdline.txt` from the boot partition it chose and passes it on as it
//! is, and nothing between the firmware and the kernel knows which system partition goes with
//! that boot partition. So the installer, once the boot payload is written and read back, sets
//! `root=` in the slot's `cmdline.txt` to that slot's system device (the same device it just
//! wrote the root filesystem into). Everything else on the line stays as the release shipped it.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{OtaError, Result};

/// The file the firmware reads the kernel's command line from.
pub const CMDLINE_FILE: &str = "cmdline.txt";

/// `line` with its `root=` word set to `root`, or the word added when there was none. Only the
/// first line counts (the firmware ignores the rest), and it stays one line.
pub fn with_root(line: &str, root: &str) -> String {
    let first = line.lines().next().unwrap_or("");
    let mut words: Vec<String> = Vec::new();
    let mut seen = false;
    for w in first.split_whitespace() {
        if w.starts_with("root=") {
            if !seen {
                words.push(format!("root={root}"));
                seen = true;
            }
        } else {
            words.push(w.to_owned());
        }
    }
    if !seen {
        words.insert(0, format!("root={root}"));
    }
    let mut out = words.join(" ");
    out.push('\n');
    out
}

fn fat_error(dev: &Path, e: std::io::Error) -> OtaError {
    OtaError::Slot {
        path: dev.to_path_buf(),
        reason: format!("its FAT file system: {e}"),
    }
}

/// Sets `root=` in `cmdline.txt` on the FAT file system at `dev` (a boot partition, or a file
/// holding one). The boot payload must carry a `cmdline.txt`: a boot partition without one
/// could only boot with whatever the firmware guesses, so it is refused.
pub fn set_root(dev: &Path, root: &str) -> Result<()> {
    let mut disk = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .map_err(OtaError::io(format!("open {}", dev.display())))?;
    {
        let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new())
            .map_err(|e| fat_error(dev, e))?;
        {
            let root_dir = fs.root_dir();
            let mut file = root_dir
                .open_file(CMDLINE_FILE)
                .map_err(|e| OtaError::Slot {
                    path: dev.to_path_buf(),
                    reason: format!("the boot payload has no {CMDLINE_FILE}: {e}"),
                })?;
            let mut text = String::new();
            file.read_to_string(&mut text)
                .map_err(|e| fat_error(dev, e))?;
            let line = with_root(&text, root);
            file.seek(SeekFrom::Start(0))
                .map_err(|e| fat_error(dev, e))?;
            file.truncate().map_err(|e| fat_error(dev, e))?;
            file.write_all(line.as_bytes())
                .map_err(|e| fat_error(dev, e))?;
            file.flush().map_err(|e| fat_error(dev, e))?;
        }
        fs.unmount().map_err(|e| fat_error(dev, e))?;
    }
    disk.sync_all()
        .map_err(OtaError::io(format!("fsync {}", dev.display())))
}

/// `cmdline.txt` as it is on the FAT file system at `dev`.
pub fn read(dev: &Path) -> Result<String> {
    let mut disk = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .map_err(OtaError::io(format!("open {}", dev.display())))?;
    let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new())
        .map_err(|e| fat_error(dev, e))?;
    let mut text = String::new();
    fs.root_dir()
        .open_file(CMDLINE_FILE)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| fat_error(dev, e))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_replaced_in_place_and_the_rest_of_the_line_kept() {
        assert_eq!(
            with_root("root=/dev/vda4 rootfstype=squashfs ro quiet\n", "/dev/vda5"),
            "root=/dev/vda5 rootfstype=squashfs ro quiet\n"
        );
        assert_eq!(
            with_root(
                "console=tty1 root=/dev/mmcblk0p4 rootwait root=x\nignored",
                "/dev/mmcblk0p5"
            ),
            "console=tty1 root=/dev/mmcblk0p5 rootwait\n"
        );
        assert_eq!(with_root("quiet", "/dev/vda5"), "root=/dev/vda5 quiet\n");
    }

    fn fat_image(cmdline: Option<&str>) -> tempfile::NamedTempFile {
        let img = tempfile::NamedTempFile::new().unwrap();
        let f = img.as_file();
        f.set_len(4 << 20).unwrap();
        let mut f = f.try_clone().unwrap();
        fatfs::format_volume(&mut f, fatfs::FormatVolumeOptions::new()).unwrap();
        if let Some(text) = cmdline {
            let fs = fatfs::FileSystem::new(&mut f, fatfs::FsOptions::new()).unwrap();
            let mut c = fs.root_dir().create_file("cmdline.txt").unwrap();
            c.write_all(text.as_bytes()).unwrap();
            drop(c);
            fs.root_dir().create_file("vmlinuz").unwrap();
            fs.unmount().unwrap();
        }
        img
    }

    #[test]
    fn a_boot_partition_gets_the_root_of_the_slot_it_was_written_into() {
        let img = fat_image(Some(
            "root=/dev/vda4 rootfstype=squashfs ro console=ttyS0,115200 panic=5 systemd.volatile=state\n",
        ));
        set_root(img.path(), "/dev/vda5").unwrap();
        assert_eq!(
            read(img.path()).unwrap(),
            "root=/dev/vda5 rootfstype=squashfs ro console=ttyS0,115200 panic=5 systemd.volatile=state\n"
        );
        // Shorter than before: the file shrinks, nothing of the old line is left behind.
        set_root(img.path(), "/dev/sda2").unwrap();
        assert!(read(img.path())
            .unwrap()
            .starts_with("root=/dev/sda2 rootfstype"));
    }

    #[test]
    fn a_boot_partition_without_a_cmdline_or_a_file_system_is_refused() {
        let img = fat_image(None);
        let err = set_root(img.path(), "/dev/vda5").unwrap_err();
        assert!(err.to_string().contains("no cmdline.txt"), "{err}");
        let junk = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(junk.path(), vec![0x5a; 1 << 20]).unwrap();
        assert!(set_root(junk.path(), "/dev/vda5").is_err());
    }
}
