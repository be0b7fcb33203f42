//! pvm-release: make and check signed PVM update bundles (format: docs/ota.md).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pvm_ota::bundle::{self, BundleSpec, VerifyOptions};
use pvm_ota::keys::{self, TrustStore};
use pvm_ota::{KeyChanges, Manifest, OtaError, PayloadKind};
use semver::Version;

#[derive(Parser)]
#[command(
    name = "pvm-release",
    about = "Build, sign, verify and inspect PVM update bundles"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args)]
struct Password {
    /// Read the secret key's password from this file instead of the terminal.
    #[arg(long, env = "PVM_RELEASE_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ManifestArgs {
    #[arg(long, default_value = "pvm")]
    product: String,
    #[arg(long, default_value = "rpi5")]
    board: String,
    #[arg(long)]
    version: Version,
    /// Oldest running version this bundle may be installed over.
    #[arg(long, default_value = "0.0.0")]
    min_version: Version,
    /// Unix seconds; defaults to now (set it for reproducible builds).
    #[arg(long, env = "SOURCE_DATE_EPOCH")]
    build_time: Option<u64>,
    #[arg(long)]
    boot: Option<PathBuf>,
    #[arg(long)]
    rootfs: Option<PathBuf>,
    /// An application binary; may be given several times.
    #[arg(long)]
    app: Vec<PathBuf>,
    /// A public key file to announce as trusted from this release on.
    #[arg(long)]
    announce_key: Vec<PathBuf>,
    /// A key id to revoke.
    #[arg(long)]
    revoke_key: Vec<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate a key pair: NAME.pub and NAME.key (password-protected unless --unencrypted).
    Keygen {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        unencrypted: bool,
        #[command(flatten)]
        password: Password,
    },
    /// Write manifest.json for the given payloads (to sign it with any minisign tool).
    Manifest {
        #[command(flatten)]
        m: ManifestArgs,
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a file (FILE.minisig). A manifest gets its trusted comment from its contents.
    Sign {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        trusted_comment: Option<String>,
        #[arg(long)]
        unencrypted: bool,
        #[command(flatten)]
        password: Password,
        file: PathBuf,
    },
    /// Assemble a bundle from a manifest, its signature and the payload files.
    Pack {
        #[arg(long)]
        manifest: PathBuf,
        /// Defaults to MANIFEST.minisig; --unsigned leaves it out (for tests only).
        #[arg(long)]
        signature: Option<PathBuf>,
        #[arg(long)]
        unsigned: bool,
        /// Where the payload files are; defaults to the manifest's directory.
        #[arg(long)]
        payload_dir: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// manifest + sign + pack in one step.
    Build {
        #[command(flatten)]
        m: ManifestArgs,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        unencrypted: bool,
        #[command(flatten)]
        password: Password,
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a bundle as a device would (signature, trust, board, versions, payloads).
    Verify {
        /// Trust store directory (*.pub and an optional `revoked` file).
        #[arg(long)]
        keys: PathBuf,
        #[arg(long, default_value = "pvm")]
        product: String,
        #[arg(long, default_value = "rpi5")]
        board: String,
        #[arg(long, default_value = "0.0.0")]
        running: Version,
        #[arg(long)]
        allow_downgrade: bool,
        bundle: PathBuf,
    },
    /// Print a bundle's manifest and signature details without trusting them.
    Inspect { bundle: PathBuf },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pvm-release: {e}");
            ExitCode::FAILURE
        }
    }
}

fn password(p: &Password, confirm: bool) -> Result<String, OtaError> {
    if let Some(path) = &p.password_file {
        let text = fs::read_to_string(path)
            .map_err(|e| OtaError::Key(format!("{}: {e}", path.display())))?;
        return Ok(text.trim_end_matches(['\r', '\n']).to_string());
    }
    let pw = rpassword::prompt_password("Password: ")
        .map_err(|e| OtaError::Key(format!("password prompt: {e}")))?;
    if confirm {
        let again = rpassword::prompt_password("Password (again): ")
            .map_err(|e| OtaError::Key(format!("password prompt: {e}")))?;
        if again != pw {
            return Err(OtaError::Key("the passwords differ".into()));
        }
    }
    Ok(pw)
}

fn load_key(key: &Path, unencrypted: bool, p: &Password) -> Result<minisign::SecretKey, OtaError> {
    let pw = if unencrypted {
        None
    } else {
        Some(password(p, false)?)
    };
    keys::load_secret_key(key, pw)
}

fn write(path: &Path, data: &[u8]) -> Result<(), OtaError> {
    fs::write(path, data).map_err(|e| OtaError::Io {
        context: format!("write {}", path.display()),
        source: e,
    })
}

fn manifest(m: &ManifestArgs) -> Result<Manifest, OtaError> {
    let mut payloads = Vec::new();
    if let Some(b) = &m.boot {
        payloads.push((PayloadKind::Boot, b.clone()));
    }
    if let Some(r) = &m.rootfs {
        payloads.push((PayloadKind::Rootfs, r.clone()));
    }
    payloads.extend(m.app.iter().map(|a| (PayloadKind::App, a.clone())));
    let mut announce = Vec::new();
    for path in &m.announce_key {
        let text = fs::read_to_string(path)
            .map_err(|e| OtaError::Key(format!("{}: {e}", path.display())))?;
        announce.push(keys::parse_public_key(&text)?.to_base64());
    }
    let build_time = m.build_time.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    bundle::make_manifest(&BundleSpec {
        product: m.product.clone(),
        board: m.board.clone(),
        version: m.version.clone(),
        min_version: m.min_version.clone(),
        build_time,
        payloads,
        keys: KeyChanges {
            announce,
            revoke: m
                .revoke_key
                .iter()
                .map(|k| k.to_ascii_uppercase())
                .collect(),
        },
    })
}

fn payload_dir(m: &ManifestArgs) -> Result<PathBuf, OtaError> {
    let all: Vec<&PathBuf> = m
        .boot
        .iter()
        .chain(m.rootfs.iter())
        .chain(m.app.iter())
        .collect();
    let dir = all
        .first()
        .and_then(|p| p.parent())
        .map(Path::to_path_buf)
        .unwrap_or_default();
    if all.iter().any(|p| p.parent() != Some(dir.as_path())) {
        return Err(OtaError::Malformed(
            "all payload files must be in one directory".into(),
        ));
    }
    Ok(dir)
}

fn run(cli: Cli) -> Result<(), OtaError> {
    match cli.cmd {
        Cmd::Keygen {
            out,
            unencrypted,
            password: p,
        } => {
            let pw = if unencrypted {
                None
            } else {
                Some(password(&p, true)?)
            };
            let (pk, sk) = keys::generate_keypair(pw)?;
            let pub_path = out.with_extension("pub");
            let key_path = out.with_extension("key");
            if key_path.exists() {
                return Err(OtaError::Key(format!(
                    "{} exists; not overwriting",
                    key_path.display()
                )));
            }
            write(&pub_path, pk.as_bytes())?;
            write(&key_path, sk.as_bytes())?;
            let id = keys::public_key_id(&keys::parse_public_key(&pk)?);
            println!(
                "key id {id}\npublic key {}\nsecret key {}",
                pub_path.display(),
                key_path.display()
            );
        }
        Cmd::Manifest { m, out } => {
            let manifest = manifest(&m)?;
            write(&out, &manifest.to_json()?)?;
            println!("{}", manifest.trusted_comment());
        }
        Cmd::Sign {
            key,
            trusted_comment,
            unencrypted,
            password: p,
            file,
        } => {
            let data = fs::read(&file).map_err(|e| OtaError::Io {
                context: format!("read {}", file.display()),
                source: e,
            })?;
            let comment = match trusted_comment {
                Some(c) => c,
                None => Manifest::from_json(&data)?.trusted_comment(),
            };
            let sk = load_key(&key, unencrypted, &p)?;
            let sig = keys::sign(&sk, &data, &comment)?;
            let mut sig_path = file.into_os_string();
            sig_path.push(".minisig");
            write(Path::new(&sig_path), sig.as_bytes())?;
        }
        Cmd::Pack {
            manifest,
            signature,
            unsigned,
            payload_dir,
            out,
        } => {
            let data = fs::read(&manifest).map_err(|e| OtaError::Io {
                context: format!("read {}", manifest.display()),
                source: e,
            })?;
            let sig = if unsigned {
                None
            } else {
                let path = signature.unwrap_or_else(|| {
                    let mut p = manifest.clone().into_os_string();
                    p.push(".minisig");
                    p.into()
                });
                Some(fs::read_to_string(&path).map_err(|e| OtaError::Io {
                    context: format!("read {}", path.display()),
                    source: e,
                })?)
            };
            let dir = payload_dir
                .or_else(|| manifest.parent().map(Path::to_path_buf))
                .unwrap_or_default();
            bundle::write_bundle(&out, &data, sig.as_deref(), &dir)?;
        }
        Cmd::Build {
            m,
            key,
            unencrypted,
            password: p,
            out,
        } => {
            let sk = load_key(&key, unencrypted, &p)?;
            let manifest = manifest(&m)?;
            let json = manifest.to_json()?;
            let sig = keys::sign(&sk, &json, &manifest.trusted_comment())?;
            bundle::write_bundle(&out, &json, Some(&sig), &payload_dir(&m)?)?;
            println!("{} -> {}", manifest.trusted_comment(), out.display());
        }
        Cmd::Verify {
            keys: dir,
            product,
            board,
            running,
            allow_downgrade,
            bundle: path,
        } => {
            let store = TrustStore::open(&dir, None)?;
            let opts = VerifyOptions {
                product,
                board,
                running,
                allow_downgrade,
            };
            let v = bundle::verify_bundle(&path, &store, &opts, &mut |_| {})?;
            println!("OK {} signed by {}", v.manifest.trusted_comment(), v.signer);
        }
        Cmd::Inspect { bundle: path } => {
            let (manifest, sig) = bundle::read_header(&path)?;
            println!("{}", String::from_utf8_lossy(&manifest).trim_end());
            match sig {
                Some(s) => println!("--- signature (not verified here)\n{}", s.trim_end()),
                None => println!("--- UNSIGNED"),
            }
        }
    }
    Ok(())
}
