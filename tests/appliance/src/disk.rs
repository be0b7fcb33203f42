//! One SD card image: its GPT partitions, and files on its FAT partitions through mtools.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::error::{Error, Result};

/// Partition numbers of the Pi's layout (and the QEMU image's).
pub const AUTOBOOT: u32 = 1;
pub const BOOT_A: u32 = 2;
pub const BOOT_B: u32 = 3;
pub const SYSTEM_A: u32 = 4;
pub const SYSTEM_B: u32 = 5;
pub const DATA: u32 = 6;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub number: u32,
    /// The GPT partition name (`autoboot`, `bootA`, …).
    pub name: String,
    /// Offset from the start of the card, in bytes.
    pub start: u64,
    pub size: u64,
}

#[derive(Clone, Debug)]
pub struct Disk {
    path: PathBuf,
    partitions: Vec<Partition>,
}

pub(crate) fn run(cmd: &mut Command) -> Result<Output> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Missing(program.clone())
        } else {
            Error::Io {
                what: format!("running {program}"),
                source: e,
            }
        }
    })?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(Error::Tool {
            program,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

impl Disk {
    /// Reads the partition table of the card image at `path` (with sfdisk).
    pub fn open(path: &Path) -> Result<Disk> {
        let out = run(Command::new("sfdisk").arg("--json").arg(path))?;
        let bad = |reason: String| Error::Disk {
            path: path.to_path_buf(),
            reason,
        };
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| bad(format!("sfdisk --json: {e}")))?;
        let table = &json["partitiontable"];
        let sector = table["sectorsize"].as_u64().unwrap_or(512);
        let parts = table["partitions"]
            .as_array()
            .ok_or_else(|| bad("no partitions".into()))?;
        let mut partitions = Vec::new();
        for p in parts {
            let node = p["node"].as_str().unwrap_or_default();
            // sfdisk names partitions of a file "<file>N".
            let number: u32 = node
                .strip_prefix(&*path.to_string_lossy())
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| bad(format!("partition node {node:?}")))?;
            let (Some(start), Some(size)) = (p["start"].as_u64(), p["size"].as_u64()) else {
                return Err(bad(format!("partition {number} lacks start or size")));
            };
            partitions.push(Partition {
                number,
                name: p["name"].as_str().unwrap_or_default().to_owned(),
                start: start * sector,
                size: size * sector,
            });
        }
        Ok(Disk {
            path: path.to_path_buf(),
            partitions,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn partitions(&self) -> &[Partition] {
        &self.partitions
    }

    pub fn partition(&self, number: u32) -> Result<&Partition> {
        self.partitions
            .iter()
            .find(|p| p.number == number)
            .ok_or_else(|| Error::Disk {
                path: self.path.clone(),
                reason: format!("no partition {number}"),
            })
    }

    /// A sparse copy of this card at `dest` (cheap: the card is mostly holes).
    pub fn copy_to(&self, dest: &Path) -> Result<Disk> {
        run(Command::new("cp")
            .arg("--sparse=always")
            .arg(&self.path)
            .arg(dest))?;
        Disk::open(dest)
    }

    /// The card's size in bytes.
    pub fn size(&self) -> Result<u64> {
        std::fs::metadata(&self.path)
            .map(|m| m.len())
            .map_err(Error::io(format!(
                "reading the size of {}",
                self.path.display()
            )))
    }

    /// Makes the card `bytes` long, as if the image had been written to a larger card: the
    /// partitions stay where they are (the backup GPT too, now short of the end) and the new
    /// space is a hole. First boot is what grows the data partition into it.
    pub fn grow_to(&self, bytes: u64) -> Result<()> {
        let size = self.size()?;
        if bytes < size {
            return Err(Error::Disk {
                path: self.path.clone(),
                reason: format!("cannot grow a {size}-byte card to {bytes} bytes"),
            });
        }
        OpenOptions::new()
            .write(true)
            .open(&self.path)
            .and_then(|f| f.set_len(bytes))
            .map_err(Error::io(format!("growing {}", self.path.display())))
    }

    /// mtools addresses a FAT file system inside an image as `image@@offset`.
    fn mtools(&self, program: &str, partition: u32) -> Result<Command> {
        let p = self.partition(partition)?;
        let mut cmd = Command::new(program);
        // The partitions are not on cylinder boundaries, which mtools checks unless told not to.
        cmd.env("MTOOLS_SKIP_CHECK", "1");
        cmd.arg("-i")
            .arg(format!("{}@@{}", self.path.display(), p.start));
        Ok(cmd)
    }

    /// Names of the files in the root directory of a FAT partition.
    pub fn list(&self, partition: u32) -> Result<Vec<String>> {
        let out = run(self.mtools("mdir", partition)?.arg("-b").arg("::/"))?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("::/"))
            .map(str::to_owned)
            .collect())
    }

    pub fn exists(&self, partition: u32, name: &str) -> Result<bool> {
        Ok(self
            .list(partition)?
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name)))
    }

    /// A file from a FAT partition, `None` when it is not there.
    pub fn read_file(&self, partition: u32, name: &str) -> Result<Option<Vec<u8>>> {
        if !self.exists(partition, name)? {
            return Ok(None);
        }
        let out = run(self
            .mtools("mcopy", partition)?
            .arg("-n")
            .arg(format!("::{name}"))
            .arg("-"))?;
        Ok(Some(out.stdout))
    }

    /// Copies a FAT file out to `dest` on the host.
    pub fn extract_file(&self, partition: u32, name: &str, dest: &Path) -> Result<()> {
        run(self
            .mtools("mcopy", partition)?
            .arg("-n")
            .arg("-o")
            .arg(format!("::{name}"))
            .arg(dest))?;
        Ok(())
    }

    /// Writes (or replaces) a file on a FAT partition.
    pub fn write_file(&self, partition: u32, name: &str, contents: &[u8]) -> Result<()> {
        let tmp = tempfile::NamedTempFile::new().map_err(Error::io("temporary file"))?;
        std::fs::write(tmp.path(), contents).map_err(Error::io("temporary file"))?;
        run(self
            .mtools("mcopy", partition)?
            .arg("-o")
            .arg(tmp.path())
            .arg(format!("::{name}")))?;
        Ok(())
    }

    /// Removes a file from a FAT partition; `false` when it was not there.
    pub fn remove_file(&self, partition: u32, name: &str) -> Result<bool> {
        if !self.exists(partition, name)? {
            return Ok(false);
        }
        run(self.mtools("mdel", partition)?.arg(format!("::{name}")))?;
        Ok(true)
    }

    /// The first `len` bytes of a partition (or all of it).
    pub fn read_partition(&self, partition: u32, len: Option<u64>) -> Result<Vec<u8>> {
        let p = self.partition(partition)?;
        let len = len.unwrap_or(p.size).min(p.size);
        let mut f = std::fs::File::open(&self.path)
            .map_err(Error::io(format!("open {}", self.path.display())))?;
        f.seek(SeekFrom::Start(p.start))
            .map_err(Error::io("seek"))?;
        let mut buf = Vec::new();
        f.take(len)
            .read_to_end(&mut buf)
            .map_err(Error::io(format!("read partition {partition}")))?;
        Ok(buf)
    }

    /// Writes `data` at the start of a partition, as `dd` onto the device would.
    pub fn write_partition(&self, partition: u32, data: &[u8]) -> Result<()> {
        let p = self.partition(partition)?;
        if data.len() as u64 > p.size {
            return Err(Error::Disk {
                path: self.path.clone(),
                reason: format!(
                    "{} bytes do not fit in partition {partition} ({} bytes)",
                    data.len(),
                    p.size
                ),
            });
        }
        let mut f = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(Error::io(format!("open {}", self.path.display())))?;
        f.seek(SeekFrom::Start(p.start))
            .map_err(Error::io("seek"))?;
        f.write_all(data)
            .map_err(Error::io(format!("write partition {partition}")))?;
        f.sync_all().map_err(Error::io("fsync"))
    }
}
