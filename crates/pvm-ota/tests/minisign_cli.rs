//! Interoperability with the minisign command-line tool (Debian package `minisign`),
//! both ways: bundles signed by the CLI verify in PVM, and PVM's signatures verify
//! with the CLI. Needs `minisign` on PATH.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use pvm_ota::bundle;
use pvm_ota::{OtaError, TrustStore};

fn minisign(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("minisign")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("the minisign CLI must be installed (apt-get install -y minisign)")
}

#[test]
fn a_manifest_signed_by_the_minisign_cli_verifies_in_pvm() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let out = minisign(&["-G", "-W", "-p", "cli.pub", "-s", "cli.key"], dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys_dir = dir.join("keys");
    fs::create_dir(&keys_dir).unwrap();
    fs::copy(dir.join("cli.pub"), keys_dir.join("release.pub")).unwrap();
    let store = TrustStore::open(&keys_dir, None).unwrap();

    // Build an unsigned bundle only to get a manifest and payloads, then sign
    // that manifest with the CLI and pack it.
    let b = build(dir, "u", Release::default());
    let manifest = dir.join("u.src").join("manifest.json");
    fs::write(&manifest, &b.manifest_json).unwrap();
    let comment = "pvm-bundle product=pvm board=rpi5 version=1.2.0";
    let out = minisign(
        &[
            "-S",
            "-s",
            "cli.key",
            "-m",
            manifest.to_str().unwrap(),
            "-t",
            comment,
        ],
        dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sig = fs::read_to_string(dir.join("u.src").join("manifest.json.minisig")).unwrap();
    let signed = dir.join("cli.pvmb");
    bundle::write_bundle(&signed, &b.manifest_json, Some(&sig), &dir.join("u.src")).unwrap();

    let v = verify(&signed, &store, "1.0.0").unwrap();
    assert_eq!(v.trusted_comment, comment);

    // And the CLI's signature is held to the same rules: wrong comment, refused.
    let out = minisign(
        &[
            "-S",
            "-s",
            "cli.key",
            "-m",
            manifest.to_str().unwrap(),
            "-t",
            "anything",
        ],
        dir,
    );
    assert!(out.status.success());
    let sig = fs::read_to_string(dir.join("u.src").join("manifest.json.minisig")).unwrap();
    bundle::write_bundle(&signed, &b.manifest_json, Some(&sig), &dir.join("u.src")).unwrap();
    assert!(matches!(
        verify(&signed, &store, "1.0.0"),
        Err(OtaError::CommentMismatch(_))
    ));
}

#[test]
fn a_bundle_signed_by_pvm_verifies_with_the_minisign_cli_after_tar_extraction() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let k = new_key();
    fs::write(dir.join("k.pub"), &k.pub_text).unwrap();
    let b = build(
        dir,
        "p",
        Release {
            key: Some(&k),
            ..Default::default()
        },
    );
    let x = dir.join("x");
    fs::create_dir(&x).unwrap();
    let status = Command::new("tar")
        .args(["xf", b.bundle.to_str().unwrap(), "-C", x.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = minisign(&["-V", "-p", "k.pub", "-m", "x/manifest.json"], dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Trusted comment: pvm-bundle product=pvm board=rpi5 version=1.2.0"),
        "{stdout}"
    );
    // The CLI also notices tampering of what PVM signed.
    let mut m = fs::read(x.join("manifest.json")).unwrap();
    m[10] ^= 1;
    fs::write(x.join("manifest.json"), m).unwrap();
    let out = minisign(&["-V", "-p", "k.pub", "-m", "x/manifest.json"], dir);
    assert!(!out.status.success());
}

#[test]
fn pvm_release_password_protected_key_signs_what_the_cli_verifies_and_vice_versa() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let bin = env!("CARGO_BIN_EXE_pvm-release");
    fs::write(dir.join("pw"), "correct horse\n").unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .current_dir(dir)
            .env("PVM_RELEASE_PASSWORD_FILE", dir.join("pw"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, log) = run(&["keygen", "--out", "rel"]);
    assert!(ok, "{log}");
    let sk_text = fs::read_to_string(dir.join("rel.key")).unwrap();
    // Encrypted: without the password the key cannot be loaded.
    assert!(pvm_ota::keys::load_secret_key(&dir.join("rel.key"), None).is_err());
    assert!(sk_text.lines().count() >= 2);

    fs::write(dir.join("boot.img"), payload_bytes(5000, 1)).unwrap();
    fs::write(dir.join("rootfs.img"), payload_bytes(9000, 2)).unwrap();
    let (ok, log) = run(&[
        "build",
        "--version",
        "3.1.4",
        "--boot",
        "boot.img",
        "--rootfs",
        "rootfs.img",
        "--key",
        "rel.key",
        "--out",
        "b.pvmb",
    ]);
    assert!(ok, "{log}");
    fs::create_dir(dir.join("keys")).unwrap();
    fs::copy(dir.join("rel.pub"), dir.join("keys").join("rel.pub")).unwrap();
    let (ok, log) = run(&["verify", "--keys", "keys", "--running", "3.0.0", "b.pvmb"]);
    assert!(ok, "{log}");
    let (ok, log) = run(&["verify", "--keys", "keys", "--running", "3.1.4", "b.pvmb"]);
    assert!(!ok && log.contains("not newer"), "{log}");

    // The CLI reads the password-protected secret key pvm-release wrote (password on stdin).
    fs::write(dir.join("note.txt"), "hello").unwrap();
    let mut child = Command::new("minisign")
        .args(["-S", "-s", "rel.key", "-m", "note.txt"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = minisign(&["-V", "-p", "rel.pub", "-m", "note.txt"], dir);
    assert!(out.status.success());

    // And a file pvm-release signs with that key verifies with the CLI.
    fs::write(dir.join("other.txt"), "world").unwrap();
    let (ok, log) = run(&[
        "sign",
        "--key",
        "rel.key",
        "--trusted-comment",
        "t=1",
        "other.txt",
    ]);
    assert!(ok, "{log}");
    let out = minisign(&["-V", "-p", "rel.pub", "-m", "other.txt"], dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
