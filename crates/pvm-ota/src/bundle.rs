//! The bundle container: a plain tar archive whose first entry is `manifest.json`,
//! second `manifest.json.minisig`, then every payload in manifest order. Plain tar
//! so an operator can `tar xf` it and check it with the minisign CLI; fixed order
//! so the device can check the signature before it reads a single payload byte.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use semver::Version;
use sha2::{Digest, Sha256};

use crate::error::{OtaError, Result};
use crate::fsutil::hex;
use crate::keys::TrustStore;
use crate::manifest::{check_trusted_comment, KeyChanges, Manifest, Payload, PayloadKind};

pub const MANIFEST_NAME: &str = "manifest.json";
pub const SIGNATURE_NAME: &str = "manifest.json.minisig";
const MAX_MANIFEST: u64 = 1 << 20;
const MAX_SIGNATURE: u64 = 64 << 10;
/// Streaming buffer: memory stays this small whatever the payload size.
pub(crate) const CHUNK: usize = 1 << 20;

/// Hashes a file in one streaming pass: (size, sha256 hex).
pub fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut f = File::open(path).map_err(OtaError::io(format!("open {}", path.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut n = 0u64;
    loop {
        let r = f
            .read(&mut buf)
            .map_err(OtaError::io(format!("read {}", path.display())))?;
        if r == 0 {
            break;
        }
        h.update(&buf[..r]);
        n += r as u64;
    }
    Ok((n, hex(&h.finalize())))
}

/// What a bundle is built from.
#[derive(Clone, Debug)]
pub struct BundleSpec {
    pub product: String,
    pub board: String,
    pub version: Version,
    pub min_version: Version,
    pub build_time: u64,
    pub payloads: Vec<(PayloadKind, PathBuf)>,
    pub keys: KeyChanges,
}

/// Builds the manifest for `spec`, hashing each payload file.
pub fn make_manifest(spec: &BundleSpec) -> Result<Manifest> {
    let mut payloads = Vec::new();
    for (kind, path) in &spec.payloads {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| OtaError::Malformed(format!("{} is not a file", path.display())))?;
        let (size, sha256) = hash_file(path)?;
        payloads.push(Payload {
            kind: *kind,
            file,
            size,
            sha256,
        });
    }
    let m = Manifest {
        format: crate::manifest::MANIFEST_FORMAT,
        product: spec.product.clone(),
        board: spec.board.clone(),
        version: spec.version.clone(),
        build_time: spec.build_time,
        min_version: spec.min_version.clone(),
        payloads,
        keys: spec.keys.clone(),
    };
    m.validate()?;
    Ok(m)
}

/// Writes a bundle: the manifest bytes exactly as signed, the signature (absent
/// only to build a deliberately unsigned bundle), then the payloads found in `payload_dir`.
pub fn write_bundle(
    out: &Path,
    manifest_json: &[u8],
    signature: Option<&str>,
    payload_dir: &Path,
) -> Result<()> {
    let manifest = Manifest::from_json(manifest_json)?;
    let file = File::create(out).map_err(OtaError::io(format!("create {}", out.display())))?;
    let mut tar = tar::Builder::new(io::BufWriter::with_capacity(CHUNK, file));
    let werr = |e: io::Error| OtaError::Io {
        context: format!("write {}", out.display()),
        source: e,
    };
    append_bytes(&mut tar, MANIFEST_NAME, manifest_json).map_err(werr)?;
    if let Some(sig) = signature {
        append_bytes(&mut tar, SIGNATURE_NAME, sig.as_bytes()).map_err(werr)?;
    }
    for p in &manifest.payloads {
        let path = payload_dir.join(&p.file);
        let mut f = File::open(&path).map_err(OtaError::io(format!("open {}", path.display())))?;
        let len = f
            .metadata()
            .map_err(OtaError::io(format!("stat {}", path.display())))?
            .len();
        let mut header = tar::Header::new_gnu();
        header.set_size(len);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, &p.file, &mut f)
            .map_err(werr)?;
    }
    let mut w = tar.into_inner().map_err(werr)?;
    w.flush().map_err(werr)?;
    w.get_ref().sync_all().map_err(werr)?;
    Ok(())
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, name: &str, data: &[u8]) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, name, data)
}

/// What the device checks a bundle against.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    pub product: String,
    pub board: String,
    pub running: Version,
    /// A deliberate downgrade (or reinstall of the running version); logged when used.
    pub allow_downgrade: bool,
}

/// A bundle whose manifest is signed by a trusted key and fits this device.
#[derive(Clone, Debug)]
pub struct Verified {
    pub manifest: Manifest,
    pub signer: String,
    pub trusted_comment: String,
}

/// Reads the unverified manifest and signature of a bundle (for `inspect`).
pub fn read_header(path: &Path) -> Result<(Vec<u8>, Option<String>)> {
    let file = File::open(path).map_err(OtaError::io(format!("open {}", path.display())))?;
    let mut archive = tar::Archive::new(BufReader::new(file));
    let mut entries = archive.entries().map_err(tar_error)?;
    let (m, s) = read_manifest_and_signature(&mut entries)?;
    Ok((m, s))
}

/// Returns the manifest bytes and the signature text, `None` when the entry after
/// the manifest is not a signature (so an unsigned bundle is named as such).
fn read_manifest_and_signature<R: Read>(
    entries: &mut tar::Entries<'_, R>,
) -> Result<(Vec<u8>, Option<String>)> {
    let mut first = next_entry(entries, "manifest.json")?;
    if entry_name(&first)? != MANIFEST_NAME {
        return Err(OtaError::Malformed(format!(
            "first entry is {:?}, not {MANIFEST_NAME}",
            entry_name(&first)?
        )));
    }
    let manifest = read_small(&mut first, MAX_MANIFEST, MANIFEST_NAME)?;
    drop(first);
    let mut second = match entries.next() {
        None => return Ok((manifest, None)),
        Some(e) => e.map_err(tar_error)?,
    };
    if entry_name(&second)? != SIGNATURE_NAME {
        return Ok((manifest, None));
    }
    let sig = read_small(&mut second, MAX_SIGNATURE, SIGNATURE_NAME)?;
    let sig = String::from_utf8(sig)
        .map_err(|_| OtaError::BadSignature("signature is not text".into()))?;
    Ok((manifest, Some(sig)))
}

fn next_entry<'a, R: Read>(
    entries: &mut tar::Entries<'a, R>,
    what: &str,
) -> Result<tar::Entry<'a, R>> {
    match entries.next() {
        None => Err(OtaError::Truncated(format!(
            "the bundle ends before {what}"
        ))),
        Some(e) => e.map_err(tar_error),
    }
}

fn entry_name<R: Read>(e: &tar::Entry<'_, R>) -> Result<String> {
    Ok(e.path().map_err(tar_error)?.to_string_lossy().into_owned())
}

fn read_small(e: &mut impl Read, max: u64, what: &str) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    e.take(max + 1).read_to_end(&mut v).map_err(tar_error)?;
    if v.len() as u64 > max {
        return Err(OtaError::Malformed(format!(
            "{what} is larger than {max} bytes"
        )));
    }
    Ok(v)
}

fn tar_error(e: io::Error) -> OtaError {
    if e.kind() == io::ErrorKind::UnexpectedEof || e.to_string().contains("entire block") {
        OtaError::Truncated(e.to_string())
    } else {
        OtaError::Malformed(e.to_string())
    }
}

/// Checks signature, trust, product, board and versions of the manifest; nothing
/// about payloads. Every refusal is a distinct error.
pub fn check_header(
    manifest_json: &[u8],
    signature: Option<&str>,
    store: &TrustStore,
    opts: &VerifyOptions,
) -> Result<Verified> {
    let signature = signature.ok_or(OtaError::Unsigned)?;
    let check = store.verify(manifest_json, signature)?;
    let manifest = Manifest::from_json(manifest_json)?;
    check_trusted_comment(&check.trusted_comment, &manifest)?;
    if manifest.product != opts.product {
        return Err(OtaError::WrongProduct {
            expected: opts.product.clone(),
            found: manifest.product,
        });
    }
    if manifest.board != opts.board {
        return Err(OtaError::WrongBoard {
            expected: opts.board.clone(),
            found: manifest.board,
        });
    }
    if opts.running < manifest.min_version {
        return Err(OtaError::RunningTooOld {
            running: opts.running.to_string(),
            offered: manifest.version.to_string(),
            minimum: manifest.min_version.to_string(),
        });
    }
    if manifest.version <= opts.running {
        if !opts.allow_downgrade {
            return Err(OtaError::NotNewer {
                running: opts.running.to_string(),
                offered: manifest.version.to_string(),
            });
        }
        tracing::warn!(
            running = %opts.running,
            offered = %manifest.version,
            "installing a version that is not newer: explicit downgrade override"
        );
    }
    Ok(Verified {
        manifest,
        signer: check.key_id,
        trusted_comment: check.trusted_comment,
    })
}

/// Streams a bundle: checks the header, then hands each payload to `sink` as a
/// reader, and afterwards checks that exactly the manifest's size was there and
/// that its SHA-256 matches. `sink` may stop reading early; the rest is drained.
pub fn walk_bundle(
    path: &Path,
    store: &TrustStore,
    opts: &VerifyOptions,
    sink: &mut dyn FnMut(&Payload, &mut dyn Read) -> Result<()>,
) -> Result<Verified> {
    let file = File::open(path).map_err(OtaError::io(format!("open {}", path.display())))?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(CHUNK, file));
    let mut entries = archive.entries().map_err(tar_error)?;
    let (manifest_json, sig) = read_manifest_and_signature(&mut entries)?;
    let verified = check_header(&manifest_json, sig.as_deref(), store, opts)?;
    for p in &verified.manifest.payloads {
        let mut entry = next_entry(&mut entries, &format!("payload {}", p.file))?;
        check_payload_entry(&entry, p)?;
        let mut hr = HashingReader::new(&mut entry);
        sink(p, &mut hr)?;
        io::copy(&mut hr, &mut io::sink()).map_err(tar_error)?;
        let (n, digest) = hr.finish();
        if n != p.size {
            return Err(OtaError::Truncated(format!(
                "payload {} has {n} of its {} bytes",
                p.file, p.size
            )));
        }
        if digest != p.sha256 {
            return Err(OtaError::PayloadHash {
                name: p.file.clone(),
            });
        }
    }
    if let Some(extra) = entries.next() {
        let extra = extra.map_err(tar_error)?;
        return Err(OtaError::Malformed(format!(
            "unexpected entry {:?} after the payloads",
            entry_name(&extra)?
        )));
    }
    Ok(verified)
}

/// The archive's next entry must be the manifest's payload `p`, by name and size.
fn check_payload_entry<R: Read>(entry: &tar::Entry<'_, R>, p: &Payload) -> Result<()> {
    let name = entry_name(entry)?;
    if name != p.file {
        return Err(OtaError::Malformed(format!(
            "expected payload {} next, found {name:?}",
            p.file
        )));
    }
    if entry.size() != p.size {
        return Err(OtaError::PayloadSize {
            name: p.file.clone(),
            expected: p.size,
            actual: entry.size(),
        });
    }
    Ok(())
}

/// A bundle whose header verified, with where each payload's bytes lie in the file.
#[derive(Clone, Debug)]
pub struct BundleLayout {
    pub verified: Verified,
    /// Each payload of the manifest, in order, with the offset of its data in the bundle.
    pub payloads: Vec<(Payload, u64)>,
}

/// Checks the header (signature, trust, product, board, versions) and locates every
/// payload by seeking over the archive, without reading payload bytes: names, order and
/// sizes must be the manifest's, and nothing may follow. A bundle cut short inside the
/// last payload is found by whoever reads it ([`hash_payload`]).
pub fn read_layout(path: &Path, store: &TrustStore, opts: &VerifyOptions) -> Result<BundleLayout> {
    let file = File::open(path).map_err(OtaError::io(format!("open {}", path.display())))?;
    let mut archive = tar::Archive::new(file);
    let mut entries = archive.entries_with_seek().map_err(tar_error)?;
    let (manifest_json, sig) = read_manifest_and_signature(&mut entries)?;
    let verified = check_header(&manifest_json, sig.as_deref(), store, opts)?;
    let mut payloads = Vec::with_capacity(verified.manifest.payloads.len());
    for p in &verified.manifest.payloads {
        let entry = next_entry(&mut entries, &format!("payload {}", p.file))?;
        check_payload_entry(&entry, p)?;
        payloads.push((p.clone(), entry.raw_file_position()));
    }
    if let Some(extra) = entries.next() {
        let extra = extra.map_err(tar_error)?;
        return Err(OtaError::Malformed(format!(
            "unexpected entry {:?} after the payloads",
            entry_name(&extra)?
        )));
    }
    Ok(BundleLayout { verified, payloads })
}

/// Opens a file for streaming it front to back once: the kernel reads ahead further.
pub(crate) fn open_sequential(path: &Path) -> Result<File> {
    let f = File::open(path).map_err(OtaError::io(format!("open {}", path.display())))?;
    // Advice only; a file system that ignores it reads the same bytes.
    let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::Sequential);
    Ok(f)
}

/// Hashes one payload of an opened bundle, with the reads overlapped with the hashing,
/// and checks it against the manifest. `each` sees every block after it was hashed; with
/// a `sink`, each hashed block is then written there (the installer's slot). Returns
/// `true` when the sink also read every written block back from the medium and found it
/// equal to the hashed block: with the digest matching the manifest, the slot then holds
/// exactly the manifest's bytes.
pub(crate) fn hash_payload(
    bundle: &File,
    payload: &Payload,
    offset: u64,
    sink: Option<&crate::pipeline::Sink<'_>>,
    each: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<bool> {
    let src = crate::pipeline::Source {
        file: bundle,
        offset,
        size: payload.size,
        direct: false,
    };
    let mut hasher = Sha256::new();
    let read_back_equal = crate::pipeline::stream_into(
        &src,
        &format!("payload {}", payload.file),
        &mut |block| {
            hasher.update(block);
            each(block)
        },
        sink,
    )?;
    if hex(&hasher.finalize()) != payload.sha256 {
        return Err(OtaError::PayloadHash {
            name: payload.file.clone(),
        });
    }
    Ok(read_back_equal)
}

/// Full verification pass over a bundle, reporting bytes hashed so far.
pub fn verify_bundle(
    path: &Path,
    store: &TrustStore,
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Verified> {
    let layout = read_layout(path, store, opts)?;
    let file = open_sequential(path)?;
    let mut done = 0u64;
    for (p, offset) in &layout.payloads {
        hash_payload(&file, p, *offset, None, &mut |block| {
            done += block.len() as u64;
            progress(done);
            Ok(())
        })?;
    }
    Ok(layout.verified)
}

/// Counts and hashes what passes through.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub(crate) fn finish(self) -> (u64, String) {
        (self.count, hex(&self.hasher.finalize()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}
