//! Fixtures shared by the integration tests: real keys, real bundles, and real
//! tampering of bundle files on disk.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use pvm_ota::bundle::{self, BundleSpec, VerifyOptions};
use pvm_ota::keys;
use pvm_ota::{KeyChanges, OtaError, PayloadKind, TrustStore};
use semver::Version;

pub struct Key {
    pub id: String,
    pub pub_text: String,
    pub sk: minisign::SecretKey,
}

pub fn new_key() -> Key {
    let (pub_text, sk_text) = keys::generate_keypair(None).unwrap();
    let sk = minisign::SecretKeyBox::from_string(&sk_text)
        .unwrap()
        .into_unencrypted_secret_key()
        .unwrap();
    let id = keys::public_key_id(&keys::parse_public_key(&pub_text).unwrap());
    Key { id, pub_text, sk }
}

/// A trust store directory holding the given keys.
pub fn store_dir(dir: &Path, keys: &[&Key]) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    for k in keys {
        fs::write(dir.join(format!("{}.pub", k.id)), &k.pub_text).unwrap();
    }
    dir.to_path_buf()
}

pub fn opts(running: &str) -> VerifyOptions {
    VerifyOptions {
        product: "pvm".into(),
        board: "rpi5".into(),
        running: Version::parse(running).unwrap(),
        allow_downgrade: false,
    }
}

/// Deterministic payload contents, different per seed.
pub fn payload_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed)
        .collect()
}

pub struct Built {
    pub bundle: PathBuf,
    pub manifest_json: Vec<u8>,
    pub boot: Vec<u8>,
    pub rootfs: Vec<u8>,
}

pub struct Release<'a> {
    pub version: &'a str,
    pub min_version: &'a str,
    pub board: &'a str,
    pub key: Option<&'a Key>,
    pub keys: KeyChanges,
    pub boot_len: usize,
    pub rootfs_len: usize,
    pub seed: u8,
}

impl Default for Release<'_> {
    fn default() -> Self {
        Release {
            version: "1.2.0",
            min_version: "1.0.0",
            board: "rpi5",
            key: None,
            keys: KeyChanges::default(),
            boot_len: 64 * 1024 + 17,
            rootfs_len: 300 * 1024 + 5,
            seed: 7,
        }
    }
}

/// The usual start: a device in `root` trusting one new key, and the default release built
/// as "v2" and signed by that key (with `rootfs_len` bytes of rootfs when given).
pub fn signed_v2(root: &Path, rootfs_len: Option<usize>) -> (Key, Device, Built) {
    let key = new_key();
    let device = Device::new(root, &[&key]);
    let mut release = Release {
        key: Some(&key),
        ..Default::default()
    };
    if let Some(len) = rootfs_len {
        release.rootfs_len = len;
    }
    let built = build(root, "v2", release);
    (key, device, built)
}

/// Where the archive entry `name` starts in `bundle`, and its length.
pub fn entry_span(bundle: &Path, name: &str) -> (u64, u64) {
    entry_spans(bundle)
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, at, len)| (at, len))
        .unwrap_or_else(|| panic!("{name} is not in {}", bundle.display()))
}

/// Builds and (when a key is given) signs a bundle in `dir`.
pub fn build(dir: &Path, name: &str, r: Release<'_>) -> Built {
    let src = dir.join(format!("{name}.src"));
    fs::create_dir_all(&src).unwrap();
    let boot = payload_bytes(r.boot_len, r.seed);
    let rootfs = payload_bytes(r.rootfs_len, r.seed.wrapping_add(101));
    fs::write(src.join("boot.img"), &boot).unwrap();
    fs::write(src.join("rootfs.img"), &rootfs).unwrap();
    let m = bundle::make_manifest(&BundleSpec {
        product: "pvm".into(),
        board: r.board.into(),
        version: Version::parse(r.version).unwrap(),
        min_version: Version::parse(r.min_version).unwrap(),
        build_time: 1_790_000_000,
        payloads: vec![
            (PayloadKind::Boot, src.join("boot.img")),
            (PayloadKind::Rootfs, src.join("rootfs.img")),
        ],
        keys: r.keys,
    })
    .unwrap();
    let json = m.to_json().unwrap();
    let sig = r
        .key
        .map(|k| keys::sign(&k.sk, &json, &m.trusted_comment()).unwrap());
    let out = dir.join(format!("{name}.pvmb"));
    bundle::write_bundle(&out, &json, sig.as_deref(), &src).unwrap();
    Built {
        bundle: out,
        manifest_json: json,
        boot,
        rootfs,
    }
}

/// Byte offset and length of each tar entry's data, by name.
pub fn entry_spans(bundle: &Path) -> Vec<(String, u64, u64)> {
    let mut a = tar::Archive::new(fs::File::open(bundle).unwrap());
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.raw_file_position(),
                e.size(),
            )
        })
        .collect()
}

/// Copies `src` to `dst` with one byte of entry `name` changed at `at` (relative to its data).
pub fn flip_byte(src: &Path, dst: &Path, name: &str, at: u64) {
    let (_, off, len) = entry_spans(src)
        .into_iter()
        .find(|(n, _, _)| n == name)
        .unwrap();
    assert!(at < len);
    let mut bytes = fs::read(src).unwrap();
    bytes[(off + at) as usize] ^= 0x01;
    fs::write(dst, bytes).unwrap();
}

pub fn truncate_copy(src: &Path, dst: &Path, len: u64) {
    let bytes = fs::read(src).unwrap();
    fs::write(dst, &bytes[..len as usize]).unwrap();
}

pub fn verify(
    bundle: &Path,
    store: &TrustStore,
    running: &str,
) -> Result<pvm_ota::Verified, OtaError> {
    bundle::verify_bundle(bundle, store, &opts(running), &mut |_| {})
}

use pvm_ota::{AgentConfig, Autoboot, Conditions, FileBootloader, Slot, SlotLayout, UpdateAgent};

/// A device made of files: p1 (autoboot.txt), boot/system A and B, the data
/// partition, and the file-backed firmware stand-in. Slot A holds the running v1.
pub struct Device {
    pub root: PathBuf,
    pub layout: SlotLayout,
    pub v1_boot: Vec<u8>,
    pub v1_rootfs: Vec<u8>,
}

pub const SLOT_FILE_LEN: usize = 512 * 1024;

impl Device {
    pub fn new(root: &Path, keys: &[&Key]) -> Device {
        let p1 = root.join("p1");
        fs::create_dir_all(&p1).unwrap();
        fs::create_dir_all(root.join("data")).unwrap();
        store_dir(&root.join("keys"), keys);
        let layout = SlotLayout {
            autoboot: p1.join("autoboot.txt"),
            slots: [
                Slot {
                    boot_partition: 2,
                    boot: root.join("p2"),
                    system: root.join("p4"),
                },
                Slot {
                    boot_partition: 3,
                    boot: root.join("p3"),
                    system: root.join("p5"),
                },
            ],
        };
        let v1_boot = payload_bytes(40_000, 200);
        let v1_rootfs = payload_bytes(200_000, 201);
        let mut junk = vec![0xEEu8; SLOT_FILE_LEN];
        fs::write(root.join("p3"), &junk).unwrap();
        fs::write(root.join("p5"), &junk).unwrap();
        junk[..v1_boot.len()].copy_from_slice(&v1_boot);
        fs::write(root.join("p2"), &junk).unwrap();
        let mut sys = vec![0xEEu8; SLOT_FILE_LEN];
        sys[..v1_rootfs.len()].copy_from_slice(&v1_rootfs);
        fs::write(root.join("p4"), &sys).unwrap();
        Autoboot {
            normal: 2,
            tryboot: 2,
        }
        .write(&layout.autoboot)
        .unwrap();
        FileBootloader::new(root.join("fw"), 2).unwrap();
        Device {
            root: root.to_path_buf(),
            layout,
            v1_boot,
            v1_rootfs,
        }
    }

    pub fn firmware(&self) -> FileBootloader {
        FileBootloader {
            dir: self.root.join("fw"),
        }
    }

    /// The agent as a fresh process on this device would open it.
    pub fn agent(&self, running: &str) -> UpdateAgent<FileBootloader> {
        let trust =
            TrustStore::open(&self.root.join("keys"), Some(&self.root.join("data/keys"))).unwrap();
        UpdateAgent::open(
            AgentConfig {
                state_file: self.root.join("data/ota-state.json"),
                layout: self.layout.clone(),
                verify: opts(running),
                maintenance_window: None,
                set_cmdline_root: false,
            },
            trust,
            self.firmware(),
        )
        .unwrap()
    }

    pub fn autoboot(&self) -> Autoboot {
        Autoboot::read(&self.layout.autoboot).unwrap()
    }

    /// Every byte of every slot and of autoboot.txt, to prove nothing was written.
    pub fn snapshot(&self) -> Vec<Vec<u8>> {
        ["p1/autoboot.txt", "p2", "p3", "p4", "p5"]
            .iter()
            .map(|p| fs::read(self.root.join(p)).unwrap())
            .collect()
    }

    pub fn slot_holds(&self, partition: u32, boot: &[u8], rootfs: &[u8]) -> bool {
        let s = self.layout.slot(partition).unwrap();
        let b = fs::read(&s.boot).unwrap();
        let r = fs::read(&s.system).unwrap();
        b.len() >= boot.len()
            && &b[..boot.len()] == boot
            && r.len() >= rootfs.len()
            && &r[..rootfs.len()] == rootfs
    }
}

pub fn idle_venue() -> Conditions {
    Conditions {
        clock_running: false,
        now_unix: 1_800_000_000,
        local_minute_of_day: 14 * 60,
    }
}

impl Device {
    /// The same device in another process: layout and v1 contents are deterministic.
    pub fn reopen(root: &Path) -> Device {
        let p1 = root.join("p1");
        Device {
            root: root.to_path_buf(),
            layout: SlotLayout {
                autoboot: p1.join("autoboot.txt"),
                slots: [
                    Slot {
                        boot_partition: 2,
                        boot: root.join("p2"),
                        system: root.join("p4"),
                    },
                    Slot {
                        boot_partition: 3,
                        boot: root.join("p3"),
                        system: root.join("p5"),
                    },
                ],
            },
            v1_boot: payload_bytes(40_000, 200),
            v1_rootfs: payload_bytes(200_000, 201),
        }
    }

    pub fn firmware_status_partition(&self) -> u32 {
        use pvm_ota::Bootloader;
        self.firmware().status().unwrap().partition
    }
}
