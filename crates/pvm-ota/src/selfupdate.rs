//! Self-update of a plain install (a `pvm-node` binary on Raspberry Pi OS, no A/B
//! slots): find a newer release in a catalog, download it, verify its minisign
//! signature before anything else touches it, then swap it in atomically and keep
//! the previous binary for rollback.
//!
//! The `self_update` crate was not used: its backends are GitHub/GitLab/S3 release
//! listings and its own signatures are zipsign, while ours are a JSON catalog and
//! minisign; a streaming download of one file is all that was left to borrow.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::bundle::hash_file;
use crate::error::{OtaError, Result};
use crate::fsutil::sync_dir;
use crate::keys::TrustStore;

const MAX_SIGNATURE: usize = 64 << 10;
const MAX_CATALOG: usize = 4 << 20;

/// The release catalog (served by the cloud, or any static file host).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Catalog {
    pub releases: Vec<CatalogRelease>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CatalogRelease {
    pub product: String,
    pub version: Version,
    /// Rust target triple, e.g. `aarch64-unknown-linux-gnu`.
    pub target: String,
    /// URL of the binary, absolute or relative to the catalog.
    pub url: String,
    /// URL of its minisign signature, absolute or relative to the catalog.
    pub signature: String,
    pub size: u64,
    pub sha256: String,
}

impl CatalogRelease {
    /// The trusted comment the binary's signature must carry.
    pub fn trusted_comment(&self) -> String {
        format!(
            "pvm-app product={} target={} version={}",
            self.product, self.target, self.version
        )
    }
}

#[derive(Clone, Debug)]
pub struct SelfUpdateConfig {
    pub catalog_url: String,
    pub product: String,
    pub target: String,
    pub running: Version,
    /// The installed binary to replace.
    pub binary: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelfUpdateOutcome {
    UpToDate,
    Updated {
        from: Version,
        to: Version,
        /// The previous binary, kept for [`rollback`].
        previous: PathBuf,
    },
}

/// Where the previous binary is kept.
pub fn previous_path(binary: &Path) -> PathBuf {
    let mut p = binary.as_os_str().to_owned();
    p.push(".prev");
    PathBuf::from(p)
}

fn download_path(binary: &Path) -> PathBuf {
    let mut p = binary.as_os_str().to_owned();
    p.push(".download");
    PathBuf::from(p)
}

fn dl_err(e: impl std::fmt::Display) -> OtaError {
    OtaError::Download(e.to_string())
}

async fn get(client: &reqwest::Client, url: &reqwest::Url) -> Result<reqwest::Response> {
    let resp = client.get(url.clone()).send().await.map_err(dl_err)?;
    if !resp.status().is_success() {
        return Err(OtaError::Download(format!("{url}: HTTP {}", resp.status())));
    }
    Ok(resp)
}

async fn get_small(client: &reqwest::Client, url: &reqwest::Url, max: usize) -> Result<Vec<u8>> {
    let mut resp = get(client, url).await?;
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(dl_err)? {
        if body.len() + chunk.len() > max {
            return Err(OtaError::Download(format!(
                "{url} is larger than {max} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Streams `url` into `dest`, refusing more than `size` bytes and reporting progress.
pub async fn download(
    client: &reqwest::Client,
    url: &reqwest::Url,
    dest: &Path,
    size: u64,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<()> {
    let mut resp = get(client, url).await?;
    let mut f = File::create(dest).map_err(OtaError::io(format!("create {}", dest.display())))?;
    let mut done = 0u64;
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            // A connection cut before Content-Length was reached is a truncated download.
            Err(e) if e.is_body() || e.is_decode() => {
                return Err(OtaError::Truncated(format!(
                    "{url}: {e} after {done} bytes"
                )))
            }
            Err(e) => return Err(dl_err(e)),
        };
        done += chunk.len() as u64;
        if done > size {
            return Err(OtaError::PayloadSize {
                name: url.to_string(),
                expected: size,
                actual: done,
            });
        }
        f.write_all(&chunk)
            .map_err(OtaError::io(format!("write {}", dest.display())))?;
        progress(done, size);
    }
    if done < size {
        return Err(OtaError::Truncated(format!(
            "{url}: {done} of {size} bytes"
        )));
    }
    f.sync_all()
        .map_err(OtaError::io(format!("fsync {}", dest.display())))
}

/// Streams `url` into `dest` when the size is not known in advance (a bundle named by
/// a release notice): at most `max` bytes, and exactly the server's Content-Length when
/// it sends one, so a cut connection is a truncated download. Progress reports
/// (bytes so far, Content-Length or 0). Returns the bytes written. Nothing here is
/// trusted: the bundle's signed manifest is checked before anything is installed.
pub async fn fetch_to_file(
    client: &reqwest::Client,
    url: &reqwest::Url,
    dest: &Path,
    max: u64,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<u64> {
    let mut resp = get(client, url).await?;
    let expected = resp.content_length();
    if let Some(len) = expected.filter(|len| *len > max) {
        return Err(OtaError::Download(format!(
            "{url} is {len} bytes, more than the {max} allowed"
        )));
    }
    let mut f = File::create(dest).map_err(OtaError::io(format!("create {}", dest.display())))?;
    let mut done = 0u64;
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) if e.is_body() || e.is_decode() => {
                return Err(OtaError::Truncated(format!(
                    "{url}: {e} after {done} bytes"
                )))
            }
            Err(e) => return Err(dl_err(e)),
        };
        done += chunk.len() as u64;
        if done > max {
            return Err(OtaError::Download(format!(
                "{url} is more than the {max} bytes allowed"
            )));
        }
        f.write_all(&chunk)
            .map_err(OtaError::io(format!("write {}", dest.display())))?;
        progress(done, expected.unwrap_or(0));
    }
    if let Some(len) = expected.filter(|len| done < *len) {
        return Err(OtaError::Truncated(format!("{url}: {done} of {len} bytes")));
    }
    f.sync_all()
        .map_err(OtaError::io(format!("fsync {}", dest.display())))?;
    Ok(done)
}

/// The newest release in the catalog for this product and target that is newer
/// than the running one.
pub async fn check(
    client: &reqwest::Client,
    cfg: &SelfUpdateConfig,
) -> Result<Option<(reqwest::Url, CatalogRelease)>> {
    let base = reqwest::Url::parse(&cfg.catalog_url).map_err(dl_err)?;
    let body = get_small(client, &base, MAX_CATALOG).await?;
    let catalog: Catalog =
        serde_json::from_slice(&body).map_err(|e| OtaError::Malformed(format!("catalog: {e}")))?;
    Ok(catalog
        .releases
        .into_iter()
        .filter(|r| r.product == cfg.product && r.target == cfg.target && r.version > cfg.running)
        .max_by(|a, b| a.version.cmp(&b.version))
        .map(|r| (base, r)))
}

/// Updates the binary if the catalog has a newer, correctly signed release. On any
/// refusal the installed binary is untouched and no `.prev` is created.
pub async fn update(
    client: &reqwest::Client,
    cfg: &SelfUpdateConfig,
    trust: &TrustStore,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<SelfUpdateOutcome> {
    let Some((base, rel)) = check(client, cfg).await? else {
        return Ok(SelfUpdateOutcome::UpToDate);
    };
    let sig_url = base.join(&rel.signature).map_err(dl_err)?;
    let bin_url = base.join(&rel.url).map_err(dl_err)?;
    let sig = match get_small(client, &sig_url, MAX_SIGNATURE).await {
        Ok(s) => String::from_utf8(s)
            .map_err(|_| OtaError::BadSignature("signature is not text".into()))?,
        Err(OtaError::Download(e)) if e.contains("404") => return Err(OtaError::Unsigned),
        Err(e) => return Err(e),
    };
    let tmp = download_path(&cfg.binary);
    let result = async {
        download(client, &bin_url, &tmp, rel.size, progress).await?;
        // The signature first: nothing about an unverified file is trusted, not even its hash.
        let check = trust.verify_file(&tmp, &sig)?;
        if check.trusted_comment != rel.trusted_comment() {
            return Err(OtaError::CommentMismatch(format!(
                "signed {:?}, catalog says {:?}",
                check.trusted_comment,
                rel.trusted_comment()
            )));
        }
        let (size, sha) = hash_file(&tmp)?;
        if size != rel.size {
            return Err(OtaError::PayloadSize {
                name: rel.url.clone(),
                expected: rel.size,
                actual: size,
            });
        }
        if sha != rel.sha256 {
            return Err(OtaError::PayloadHash {
                name: rel.url.clone(),
            });
        }
        replace_binary(&cfg.binary, &tmp)
    }
    .await;
    match result {
        Ok(previous) => {
            tracing::info!(from = %cfg.running, to = %rel.version, "binary updated");
            Ok(SelfUpdateOutcome::Updated {
                from: cfg.running.clone(),
                to: rel.version,
                previous,
            })
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Swaps `new` in for `binary`, keeping the old one as `binary.prev`. Each step is a
/// rename, so at every instant `binary` is either the old or the new file, whole.
fn replace_binary(binary: &Path, new: &Path) -> Result<PathBuf> {
    let dir = binary.parent().unwrap_or(Path::new("."));
    let mode = fs::metadata(binary)
        .map(|m| m.permissions().mode())
        .unwrap_or(0o755)
        | 0o111;
    fs::set_permissions(new, fs::Permissions::from_mode(mode))
        .map_err(OtaError::io(format!("chmod {}", new.display())))?;
    let prev = previous_path(binary);
    let mut staging = prev.as_os_str().to_owned();
    staging.push(".new");
    let staging = PathBuf::from(staging);
    let _ = fs::remove_file(&staging);
    fs::hard_link(binary, &staging).map_err(OtaError::io(format!("link {}", binary.display())))?;
    fs::rename(&staging, &prev).map_err(OtaError::io(format!("rename to {}", prev.display())))?;
    fs::rename(new, binary).map_err(OtaError::io(format!("rename onto {}", binary.display())))?;
    sync_dir(dir)?;
    Ok(prev)
}

/// Puts the previous binary back (after the new one failed its health check).
pub fn rollback(binary: &Path) -> Result<()> {
    let prev = previous_path(binary);
    if !prev.exists() {
        return Err(OtaError::WrongState {
            state: "no previous binary".into(),
            action: "rollback".into(),
        });
    }
    let mut staging = binary.as_os_str().to_owned();
    staging.push(".rollback");
    let staging = PathBuf::from(staging);
    let _ = fs::remove_file(&staging);
    fs::hard_link(&prev, &staging).map_err(OtaError::io(format!("link {}", prev.display())))?;
    fs::rename(&staging, binary)
        .map_err(OtaError::io(format!("rename onto {}", binary.display())))?;
    sync_dir(binary.parent().unwrap_or(Path::new(".")))?;
    tracing::warn!(binary = %binary.display(), "rolled back to the previous binary");
    Ok(())
}

/// A minimal health check for a freshly installed binary: it starts and exits 0
/// with `args` (e.g. `--version`) within `timeout`.
pub fn binary_runs(binary: &Path, args: &[&str], timeout: std::time::Duration) -> bool {
    let Ok(mut child) = std::process::Command::new(binary)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        return false;
    };
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}
