//! The QEMU test image of this checkout, built by `image/qemu/build-image.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::disk::Disk;
use crate::error::{Error, Result};

/// A built image: the card and the slot payloads an update carries.
#[derive(Debug)]
pub struct Image {
    dir: PathBuf,
    disk: Disk,
}

/// The repository this crate sits in (`tests/appliance` → the root).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The cargo profile directory this test binary was built into (`…/target/debug`), where the
/// workspace's binaries (pvm-node, pvm-kiosk) are too.
fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(Error::io("locating the test binary"))?;
    // …/target/debug/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::Boot(format!("{} is not in a cargo target dir", exe.display())))
}

static IMAGE: OnceLock<std::result::Result<Image, String>> = OnceLock::new();

impl Image {
    /// The image, built at most once per process. `PVM_IMAGE_DIR` names where it goes
    /// (default: `appliance-image` beside the cargo profile dir's binaries); `PVM_IMAGE_BINS`
    /// where the binaries come from (default: the profile dir this test was built into). The
    /// script reuses an image whose inputs have not changed, and caches the Debian root
    /// filesystem across checkouts.
    pub fn get() -> Result<&'static Image> {
        IMAGE
            .get_or_init(|| Image::build().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| Error::Boot(format!("building the image: {e}")))
    }

    fn build() -> Result<Image> {
        let profile = profile_dir()?;
        let dir = std::env::var_os("PVM_IMAGE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| profile.join("appliance-image"));
        let bins = std::env::var_os("PVM_IMAGE_BINS")
            .map(PathBuf::from)
            .unwrap_or(profile);
        let script = repo_root().join("image/qemu/build-image.sh");
        let status = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .arg(&bins)
            .status()
            .map_err(Error::io(format!("running {}", script.display())))?;
        if !status.success() {
            return Err(Error::Boot(format!(
                "{} exited with {status}",
                script.display()
            )));
        }
        Image::open(&dir)
    }

    /// An image already built into `dir`.
    pub fn open(dir: &Path) -> Result<Image> {
        Ok(Image {
            dir: dir.to_path_buf(),
            disk: Disk::open(&dir.join("disk.img"))?,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pristine card. Never boot it: take a [`Image::fresh_disk`].
    pub fn disk(&self) -> &Disk {
        &self.disk
    }

    /// Slot A's boot partition image (FAT: kernel, initrd, cmdline.txt naming /dev/vda4).
    pub fn boot_a(&self) -> PathBuf {
        self.dir.join("boot-a.vfat")
    }

    /// The same kernel and initrd with a cmdline.txt naming /dev/vda5: slot B's boot payload.
    pub fn boot_b(&self) -> PathBuf {
        self.dir.join("boot-b.vfat")
    }

    /// The read-only root filesystem (squashfs) both slots run.
    pub fn system(&self) -> PathBuf {
        self.dir.join("system.squashfs")
    }

    /// The same system as [`Image::system`] except that it reports [`Image::next_version`]:
    /// the rootfs payload of an update the running system will take.
    pub fn system_next(&self) -> PathBuf {
        self.dir.join("system-next.squashfs")
    }

    /// The version the image's system reports (`/etc/pvm/version`).
    pub fn version(&self) -> Result<String> {
        self.read_version("version")
    }

    /// The version [`Image::system_next`] reports.
    pub fn next_version(&self) -> Result<String> {
        self.read_version("version-next")
    }

    fn read_version(&self, name: &str) -> Result<String> {
        let path = self.dir.join(name);
        std::fs::read_to_string(&path)
            .map(|v| v.trim().to_owned())
            .map_err(Error::io(format!("read {}", path.display())))
    }

    /// A copy of the pristine card at `dir/disk.img`, for one test to boot and change.
    pub fn fresh_disk(&self, dir: &Path) -> Result<Disk> {
        self.disk.copy_to(&dir.join("disk.img"))
    }
}
