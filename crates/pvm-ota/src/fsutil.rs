//! Durable file writes: the SD card can lose power at any instant.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{OtaError, Result};

/// Replaces `path` with `contents` so that a reader (or the firmware after a
/// power cut) sees either the old file or the new one, never a mix: write a
/// new file, fsync it, rename it over the old one, fsync the directory.
pub fn atomic_write(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| OtaError::Malformed(format!("{} has no file name", path.display())))?;
    let tmp = dir.join(format!(".{}.new", name.to_string_lossy()));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(OtaError::io(format!("create {}", tmp.display())))?;
        f.write_all(contents)
            .map_err(OtaError::io(format!("write {}", tmp.display())))?;
        f.sync_all()
            .map_err(OtaError::io(format!("fsync {}", tmp.display())))?;
    }
    fs::rename(&tmp, path).map_err(OtaError::io(format!("rename onto {}", path.display())))?;
    // On FAT (autoboot.txt's partition) a file's directory entry belongs to the file, not to
    // the directory: after a rename over an existing name, the entry that must now point at the
    // new clusters is written back with the renamed file's inode, which fsync on the directory
    // does not write — while the replaced file's clusters are freed in the FAT at once. A power
    // cut in the next writeback interval then left an entry pointing at freed clusters (found by
    // the QEMU power-cut test). fsync the file under its new name too; on ext4 it costs nothing.
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(OtaError::io(format!("fsync {}", path.display())))?;
    sync_dir(dir)
}

/// Makes a rename in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(OtaError::io(format!("open dir {}", dir.display())))?;
    // FAT (the autoboot partition) may refuse fsync on a directory handle;
    // vfat flushes the directory entry with the file there, so that refusal is harmless.
    match d.sync_all() {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(22) => Ok(()),
        Err(e) => Err(OtaError::Io {
            context: format!("fsync dir {}", dir.display()),
            source: e,
        }),
    }
}

/// Lower-case hex, for SHA-256 digests in the manifest.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
