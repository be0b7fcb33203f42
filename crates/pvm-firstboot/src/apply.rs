//! Checking each setting's value and writing it where the system reads it.
//!
//! The root filesystem is read-only, so every setting lands on the data partition and the
//! image's `/etc` links there (`/etc/hostname`, `/etc/localtime`, the Wi-Fi config, SSH's
//! authorized keys; see overlays/). Each write happens only when the content differs, so
//! running again with the same `pvm.toml` changes nothing and reports nothing as applied.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::report::Problem;
use crate::settings::{Entry, Settings};

/// Where the settings go, under a root folder (`/` on the appliance).
#[derive(Debug, Clone)]
pub struct Target {
    root: PathBuf,
}

impl Target {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    fn path(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    /// `/etc/hostname` links here.
    pub fn hostname(&self) -> PathBuf {
        self.path("/data/etc/hostname")
    }
    /// `/etc/localtime` links here; this is itself a link into the zoneinfo database.
    pub fn localtime(&self) -> PathBuf {
        self.path("/data/etc/localtime")
    }
    pub fn zoneinfo(&self) -> PathBuf {
        self.path("/usr/share/zoneinfo")
    }
    /// Read by pvm-node.service as an `EnvironmentFile`.
    pub fn node_env(&self) -> PathBuf {
        self.path("/data/etc/pvm/node.env")
    }
    /// `/etc/wpa_supplicant/wpa_supplicant-wlan0.conf` links here.
    pub fn wifi(&self) -> PathBuf {
        self.path("/data/etc/wpa_supplicant/wpa_supplicant-wlan0.conf")
    }
    /// The node picks the code up from its data directory and enrols with the cloud.
    pub fn pending_enrolment(&self) -> PathBuf {
        self.path("/data/pvm/pending-enrolment")
    }
    /// sshd starts only when this file exists (sshd.service.d/10-pvm.conf).
    pub fn authorized_keys(&self) -> PathBuf {
        self.path("/data/etc/ssh/authorized_keys")
    }
}

/// What applying did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Settings changed by this run, by key (`wifi` for the Wi-Fi keys together).
    pub applied: Vec<String>,
    /// Keys whose values were valid and are now in force, changed or not.
    pub accepted: Vec<String>,
    pub problems: Vec<Problem>,
}

impl Applied {
    fn problem(&mut self, key: &str, entry: Option<&Entry>, message: String) {
        self.problems.push(Problem {
            key: Some(key.to_owned()),
            message,
            line: entry.map(|entry| entry.line),
        });
    }

    fn written(&mut self, key: &str, result: io::Result<bool>, entry: Option<&Entry>) {
        match result {
            Ok(changed) => {
                self.accepted.push(key.to_owned());
                if changed {
                    self.applied.push(key.to_owned());
                }
            }
            Err(error) => self.problem(key, entry, format!("could not apply {key}: {error}")),
        }
    }
}

/// Applies every valid setting; invalid ones become problems and change nothing.
pub fn apply(target: &Target, settings: &Settings) -> Applied {
    let mut out = Applied::default();

    // The node's environment file carries both the venue's name and the mDNS name, so the
    // console is announced as `<hostname>.local`, the name the venue chose for the box.
    let mut node_env = String::new();
    if let Some(entry) = &settings.hostname {
        match check_hostname(&entry.value) {
            Ok(()) => {
                let result = write_if_changed(
                    &target.hostname(),
                    format!("{}\n", entry.value).as_bytes(),
                    0o644,
                );
                out.written("hostname", result, Some(entry));
                // A checked hostname is a DNS label: nothing in it needs escaping.
                node_env.push_str(&format!("PVM_MDNS_HOSTNAME={}\n", entry.value));
            }
            Err(message) => out.problem("hostname", Some(entry), message),
        }
    }

    let mut venue = None;
    if let Some(entry) = &settings.venue_name {
        match check_venue_name(&entry.value) {
            Ok(()) => {
                node_env.push_str(&format!("PVM_NODE_NAME=\"{}\"\n", env_escape(&entry.value)));
                venue = Some(entry);
            }
            Err(message) => out.problem("venue_name", Some(entry), message),
        }
    }
    if !node_env.is_empty() {
        let result = write_if_changed(&target.node_env(), node_env.as_bytes(), 0o644);
        match venue {
            Some(entry) => out.written("venue_name", result, Some(entry)),
            None => {
                if let Err(error) = result {
                    out.problem(
                        "hostname",
                        settings.hostname.as_ref(),
                        format!("could not hand the hostname to the node: {error}"),
                    );
                }
            }
        }
    }

    if let Some(entry) = &settings.timezone {
        match check_timezone(target, &entry.value) {
            Ok(()) => {
                let link = Path::new("/usr/share/zoneinfo").join(&entry.value);
                let result = link_if_changed(&target.localtime(), &link);
                out.written("timezone", result, Some(entry));
            }
            Err(message) => out.problem("timezone", Some(entry), message),
        }
    }

    apply_wifi(target, settings, &mut out);

    if let Some(entry) = &settings.enrolment_code {
        match check_enrolment_code(&entry.value) {
            Ok(()) => {
                let result = write_enrolment(target, &entry.value);
                out.written("enrolment_code", result, Some(entry));
            }
            Err(message) => out.problem("enrolment_code", Some(entry), message),
        }
    }

    match &settings.ssh_key {
        Some(entry) => match check_ssh_key(&entry.value) {
            Ok(()) => {
                let result = write_if_changed(
                    &target.authorized_keys(),
                    format!("{}\n", entry.value.trim()).as_bytes(),
                    0o600,
                );
                out.written("ssh_key", result, Some(entry));
            }
            Err(message) => out.problem("ssh_key", Some(entry), message),
        },
        // The key in pvm.toml is what keeps SSH on: taking it out turns SSH off again. A file
        // that could not be read says nothing either way, so SSH is left as it was.
        None if settings.readable => match remove_if_present(&target.authorized_keys()) {
            Ok(true) => out.applied.push("ssh_key".to_owned()),
            Ok(false) => {}
            Err(error) => out.problem(
                "ssh_key",
                None,
                format!("could not turn SSH off (remove the authorized key): {error}"),
            ),
        },
        None => {}
    }

    out
}

fn apply_wifi(target: &Target, settings: &Settings, out: &mut Applied) {
    let ssid = settings.wifi_ssid.as_ref();
    let passphrase = settings.wifi_passphrase.as_ref();
    let country = settings.wifi_country.as_ref();

    let Some(ssid) = ssid else {
        if let Some(entry) = passphrase {
            out.problem(
                "wifi_passphrase",
                Some(entry),
                "wifi_passphrase is set but wifi_ssid (the network's name) is missing".to_owned(),
            );
        }
        if let Some(entry) = country {
            out.problem(
                "wifi_country",
                Some(entry),
                "wifi_country is set but wifi_ssid (the network's name) is missing".to_owned(),
            );
        }
        return;
    };

    let mut valid = true;
    if let Err(message) = check_ssid(&ssid.value) {
        out.problem("wifi_ssid", Some(ssid), message);
        valid = false;
    }
    if let Some(entry) = passphrase {
        if let Err(message) = check_passphrase(&entry.value) {
            out.problem("wifi_passphrase", Some(entry), message);
            valid = false;
        }
    }
    if let Some(entry) = country {
        if let Err(message) = check_country(&entry.value) {
            out.problem("wifi_country", Some(entry), message);
            valid = false;
        }
    }
    if !valid {
        return;
    }

    let path = target.wifi();
    let ssid_line = format!("\tssid={}\n", hex(ssid.value.as_bytes()));
    let psk = match passphrase {
        Some(entry) => Some(entry.value.clone()),
        None => {
            // The passphrase was removed from the card after an earlier boot applied it: the
            // stored config for the same network stays as it is.
            match fs::read_to_string(&path) {
                Ok(existing) if existing.contains(&ssid_line) => {
                    out.accepted
                        .extend(["wifi_ssid", "wifi_country"].map(str::to_owned));
                    return;
                }
                // No stored config for this network: it is an open one.
                _ => None,
            }
        }
    };

    let mut config = String::from(
        "# Written by pvm-firstboot from pvm.toml; it is rewritten when pvm.toml changes.\n\
         ctrl_interface=/run/wpa_supplicant\nupdate_config=0\n",
    );
    if let Some(entry) = country {
        config.push_str(&format!("country={}\n", entry.value.to_ascii_uppercase()));
    }
    config.push_str("network={\n");
    // Hex, so any byte a network's name may hold needs no quoting.
    config.push_str(&ssid_line);
    match &psk {
        Some(psk) => config.push_str(&format!("\tpsk=\"{psk}\"\n")),
        None => config.push_str("\tkey_mgmt=NONE\n"),
    }
    config.push_str("}\n");

    match write_if_changed(&path, config.as_bytes(), 0o600) {
        Ok(changed) => {
            out.accepted.push("wifi_ssid".to_owned());
            if passphrase.is_some() {
                out.accepted.push("wifi_passphrase".to_owned());
            }
            if country.is_some() {
                out.accepted.push("wifi_country".to_owned());
            }
            if changed {
                out.applied.push("wifi".to_owned());
            }
        }
        Err(error) => out.problem(
            "wifi_ssid",
            Some(ssid),
            format!("could not write the Wi-Fi settings: {error}"),
        ),
    }
}

/// The name a box answers to until pvm.toml gives it another (http://pvm.local).
pub const DEFAULT_HOSTNAME: &str = "pvm";

/// Hands the stored hostname (or [`DEFAULT_HOSTNAME`]) to the running kernel: the root
/// filesystem's `/etc/hostname` links to the data partition, which is not mounted yet when
/// systemd first reads it.
pub fn hand_hostname_to_kernel(target: &Target) -> Result<(), Problem> {
    let name = match fs::read_to_string(target.hostname()) {
        Ok(name) => name.trim().to_owned(),
        Err(error) if error.kind() == io::ErrorKind::NotFound => DEFAULT_HOSTNAME.to_owned(),
        Err(error) => {
            return Err(Problem {
                key: Some("hostname".to_owned()),
                message: format!("cannot read the stored hostname: {error}"),
                line: None,
            })
        }
    };
    let name = if check_hostname(&name).is_ok() {
        name
    } else {
        DEFAULT_HOSTNAME.to_owned()
    };
    fs::write("/proc/sys/kernel/hostname", &name).map_err(|error| Problem {
        key: Some("hostname".to_owned()),
        message: format!("could not set the hostname to {name}: {error}"),
        line: None,
    })
}

pub fn check_hostname(name: &str) -> Result<(), String> {
    let valid = (1..=63).contains(&name.len())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "hostname `{name}` must be 1 to 63 letters, digits or hyphens, not starting or \
             ending with a hyphen (it becomes {name}.local)"
        ))
    }
}

fn check_venue_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("venue_name must not be empty".to_owned());
    }
    if name.chars().count() > 80 {
        return Err("venue_name must be at most 80 characters".to_owned());
    }
    if name.chars().any(char::is_control) {
        return Err("venue_name must be one line without tabs or control characters".to_owned());
    }
    Ok(())
}

fn check_timezone(target: &Target, zone: &str) -> Result<(), String> {
    let well_formed = !zone.is_empty()
        && zone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
        && Path::new(zone)
            .components()
            .all(|component| matches!(component, Component::Normal(_)));
    let known = well_formed && target.zoneinfo().join(zone).is_file();
    if known {
        Ok(())
    } else {
        Err(format!(
            "timezone `{zone}` is not a time zone this system knows; write it like \
             Europe/London or America/New_York"
        ))
    }
}

fn check_ssid(ssid: &str) -> Result<(), String> {
    if (1..=32).contains(&ssid.len()) {
        Ok(())
    } else {
        Err(format!(
            "wifi_ssid must be 1 to 32 bytes long (it is {})",
            ssid.len()
        ))
    }
}

fn check_passphrase(passphrase: &str) -> Result<(), String> {
    let printable = passphrase.chars().all(|c| (' '..='~').contains(&c));
    if !printable {
        return Err(
            "wifi_passphrase may hold only plain ASCII letters, digits, spaces and punctuation"
                .to_owned(),
        );
    }
    if !(8..=63).contains(&passphrase.len()) {
        return Err(format!(
            "wifi_passphrase must be 8 to 63 characters long (it is {})",
            passphrase.len()
        ));
    }
    Ok(())
}

fn check_country(country: &str) -> Result<(), String> {
    if country.len() == 2 && country.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(())
    } else {
        Err(format!(
            "wifi_country `{country}` must be a two-letter country code such as GB, US or DE"
        ))
    }
}

fn check_enrolment_code(code: &str) -> Result<(), String> {
    let valid = (1..=64).contains(&code.len())
        && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(
            "enrolment_code must be the code from the cloud console: letters, digits and \
             hyphens, at most 64"
                .to_owned(),
        )
    }
}

fn check_ssh_key(key: &str) -> Result<(), String> {
    const TYPES: [&str; 6] = [
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
    ];
    let key = key.trim();
    let mut parts = key.split_whitespace();
    let kind = parts.next().unwrap_or("");
    let body = parts.next().unwrap_or("");
    let body_ok = body.len() >= 16
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c));
    if key.contains(['\n', '\r']) || !TYPES.contains(&kind) || !body_ok {
        return Err(
            "ssh_key must be one public key line as in id_ed25519.pub, like \
             \"ssh-ed25519 AAAAC3Nza… you@laptop\""
                .to_owned(),
        );
    }
    Ok(())
}

/// The enrolment code, readable only by the node's user (the owner of its data directory).
fn write_enrolment(target: &Target, code: &str) -> io::Result<bool> {
    let path = target.pending_enrolment();
    let changed = write_if_changed(&path, format!("{code}\n").as_bytes(), 0o600)?;
    if let Some(dir) = path.parent() {
        let owner = fs::metadata(dir)?;
        std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid()))?;
    }
    Ok(changed)
}

/// Escapes a value for a double-quoted systemd `EnvironmentFile` assignment.
fn env_escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('$', "\\$")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `contents` unless the file already holds exactly that. `Ok(true)` when it wrote.
pub fn write_if_changed(path: &Path, contents: &[u8], mode: u32) -> io::Result<bool> {
    if fs::read(path).is_ok_and(|existing| existing == contents) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    write_atomically(path, contents, Some(mode))?;
    Ok(true)
}

/// Points the symlink at `path` to `dest` unless it already does.
fn link_if_changed(path: &Path, dest: &Path) -> io::Result<bool> {
    if fs::read_link(path).is_ok_and(|existing| existing == dest) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let temporary = sibling(path, ".new");
    let _ = fs::remove_file(&temporary);
    std::os::unix::fs::symlink(dest, &temporary)?;
    fs::rename(&temporary, path)?;
    sync_parent(path)?;
    Ok(true)
}

fn remove_if_present(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_parent(path)?;
            Ok(true)
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Write to a temporary sibling, fsync, rename over, fsync the folder: after a power cut the
/// file is the old one or the new one, never half of each (this matters on the FAT partition
/// too, where pvm.toml is rewritten).
pub fn write_atomically(path: &Path, contents: &[u8], mode: Option<u32>) -> io::Result<()> {
    let temporary = sibling(path, ".new");
    {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        if let Some(mode) = mode {
            options.mode(mode);
        }
        let mut file = options.open(&temporary)?;
        // A leftover temporary file from an earlier run keeps its old mode; set it again.
        if let Some(mode) = mode {
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        file.write_all(contents)?;
        file.sync_all()?;
    }
    fs::rename(&temporary, path)?;
    sync_parent(path)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            // FAT folders cannot always be opened for fsync; the rename is still done.
            match File::open(parent).and_then(|dir| dir.sync_all()) {
                Ok(()) => Ok(()),
                Err(error) if error.kind() == io::ErrorKind::InvalidInput => Ok(()),
                Err(error) => Err(error),
            }
        }
        None => Ok(()),
    }
}
