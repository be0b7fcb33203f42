//! Bundles and trust: every refusal, proven on a real bundle file that was tampered with.

mod common;

use std::fs;

use common::*;
use pvm_ota::bundle::{self, VerifyOptions};
use pvm_ota::keys;
use pvm_ota::{KeyChanges, OtaError, TrustStore};

#[test]
fn a_signed_bundle_from_a_trusted_key_verifies() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let store = TrustStore::open(&store_dir(&d.path().join("keys"), &[&k]), None).unwrap();
    let b = build(
        d.path(),
        "ok",
        Release {
            key: Some(&k),
            ..Default::default()
        },
    );
    let v = verify(&b.bundle, &store, "1.0.0").unwrap();
    assert_eq!(v.signer, k.id);
    assert_eq!(
        v.trusted_comment,
        "pvm-bundle product=pvm board=rpi5 version=1.2.0"
    );
    assert_eq!(v.manifest.payloads.len(), 2);
}

#[test]
fn unsigned_bundle_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let store = TrustStore::open(&store_dir(&d.path().join("keys"), &[&k]), None).unwrap();
    let b = build(d.path(), "unsigned", Release::default());
    assert!(matches!(
        verify(&b.bundle, &store, "1.0.0"),
        Err(OtaError::Unsigned)
    ));
}

#[test]
fn a_flipped_byte_in_the_manifest_is_a_bad_signature() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let store = TrustStore::open(&store_dir(&d.path().join("keys"), &[&k]), None).unwrap();
    let b = build(
        d.path(),
        "ok",
        Release {
            key: Some(&k),
            ..Default::default()
        },
    );
    let bad = d.path().join("bad.pvmb");
    // Inside the "board" value: still valid JSON shape, but not what was signed.
    let at = b
        .manifest_json
        .windows(4)
        .position(|w| w == b"rpi5")
        .unwrap() as u64;
    flip_byte(&b.bundle, &bad, "manifest.json", at);
    assert!(matches!(
        verify(&bad, &store, "1.0.0"),
        Err(OtaError::BadSignature(_))
    ));
}

#[test]
fn a_flipped_byte_in_the_signature_is_a_bad_signature() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let store = TrustStore::open(&store_dir(&d.path().join("keys"), &[&k]), None).unwrap();
    let b = build(
        d.path(),
        "ok",
        Release {
            key: Some(&k),
            ..Default::default()
        },
    );
    let spans = entry_spans(&b.bundle);
    let (_, off, len) = spans
        .iter()
        .find(|(n, _, _)| n == "manifest.json.minisig")
        .unwrap()
        .clone();
    let bytes = fs::read(&b.bundle).unwrap();
    let text = String::from_utf8(bytes[off as usize..(off + len) as usize].to_vec()).unwrap();
    // The second line is base64(alg, key id, signature); change a character well into
    // the signature so the key id still names the trusted key.
    let line2 = text.find('\n').unwrap() as u64 + 1;
    let mut tampered = bytes.clone();
    let pos = (off + line2 + 60) as usize;
    tampered[pos] = if tampered[pos] == b'A' { b'B' } else { b'A' };
    let bad = d.path().join("bad.pvmb");
    fs::write(&bad, tampered).unwrap();
    assert!(matches!(
        verify(&bad, &store, "1.0.0"),
        Err(OtaError::BadSignature(_))
    ));
    // The trusted comment is signed too.
    let comment_at = text.find("version=1.2.0").unwrap() as u64 + 12;
    let bad2 = d.path().join("bad2.pvmb");
    flip_byte(&b.bundle, &bad2, "manifest.json.minisig", comment_at);
    assert!(matches!(
        verify(&bad2, &store, "1.0.0"),
        Err(OtaError::BadSignature(_))
    ));
}

#[test]
fn a_flipped_byte_in_each_payload_is_a_hash_mismatch() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let store = TrustStore::open(&store_dir(&d.path().join("keys"), &[&k]), None).unwrap();
    let b = build(
        d.path(),
        "ok",
        Release {
            key: Some(&k),
            ..Default::default()
        },
    );
    for (name, at) in [
        ("boot.img", 0u64),
        ("boot.img", 65_000),
        ("rootfs.img", 300 * 1024 + 4),
    ] {
        let bad = d.path().join("bad.pvmb");
        flip_byte(&b.bundle, &bad, name, at);
        match verify(&bad, &store, "1.0.0") {
            Err(OtaError::PayloadHash { name: n }) => assert_eq!(n, name),
            other => panic!("{name}@{at}: {other:?}"),
        }
    }
}

#[test]
fn a_payload_of_another_size_than_the_manifest_says_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let store = TrustStore::open(&store_dir(&d.path().join("keys"), &[&k]), None).unwrap();
    let b = build(
        d.path(),
        "ok",
        Release {
            key: Some(&k),
            ..Default::default()
        },
    );
    // Re-pack the same signed manifest with a longer rootfs file.
    let src = d.path().join("ok.src");
    let mut rootfs = b.rootfs.clone();
    rootfs.extend_from_slice(b"appended");
    fs::write(src.join("rootfs.img"), &rootfs).unwrap();
    let sig = {
        let (_, s) = bundle::read_header(&b.bundle).unwrap();
        s.unwrap()
    };
    let bad = d.path().join("bad.pvmb");
    bundle::write_bundle(&bad, &b.manifest_json, Some(&sig), &src).unwrap();
    match verify(&bad, &store, "1.0.0") {
        Err(OtaError::PayloadSize {
            name,
            expected,
            actual,
        }) => {
            assert_eq!(name, "rootfs.img");
            assert_eq!(expected, b.rootfs.len() as u64);
            assert_eq!(actual, rootfs.len() as u64);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_downloads_are_refused_wherever_they_stop() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let store = TrustStore::open(&store_dir(&d.path().join("keys"), &[&k]), None).unwrap();
    let b = build(
        d.path(),
        "ok",
        Release {
            key: Some(&k),
            ..Default::default()
        },
    );
    let spans = entry_spans(&b.bundle);
    let (_, rootfs_off, rootfs_len) = spans
        .iter()
        .find(|(n, _, _)| n == "rootfs.img")
        .unwrap()
        .clone();
    let (_, boot_off, _) = spans
        .iter()
        .find(|(n, _, _)| n == "boot.img")
        .unwrap()
        .clone();
    let cuts = [
        rootfs_off + rootfs_len / 2, // inside a payload
        rootfs_off + rootfs_len - 1, // one byte short
        rootfs_off - 512,            // right before a payload's header
        boot_off - 100,              // inside a tar header
        boot_off + 10,
    ];
    for cut in cuts {
        let bad = d.path().join("cut.pvmb");
        truncate_copy(&b.bundle, &bad, cut);
        match verify(&bad, &store, "1.0.0") {
            Err(OtaError::Truncated(_)) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn a_key_the_device_does_not_trust_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let trusted = new_key();
    let stranger = new_key();
    let store = TrustStore::open(&store_dir(&d.path().join("keys"), &[&trusted]), None).unwrap();
    let b = build(
        d.path(),
        "s",
        Release {
            key: Some(&stranger),
            ..Default::default()
        },
    );
    match verify(&b.bundle, &store, "1.0.0") {
        Err(OtaError::UnknownKey(id)) => assert_eq!(id, stranger.id),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_revoked_key_is_refused_even_though_its_public_key_is_still_on_disk() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let dir = store_dir(&d.path().join("keys"), &[&k]);
    fs::write(dir.join("revoked"), format!("# compromised\n{}\n", k.id)).unwrap();
    let store = TrustStore::open(&dir, None).unwrap();
    let b = build(
        d.path(),
        "r",
        Release {
            key: Some(&k),
            ..Default::default()
        },
    );
    match verify(&b.bundle, &store, "1.0.0") {
        Err(OtaError::RevokedKey(id)) => assert_eq!(id, k.id),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_bundle_for_another_board_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let store = TrustStore::open(&store_dir(&d.path().join("keys"), &[&k]), None).unwrap();
    let b = build(
        d.path(),
        "b",
        Release {
            key: Some(&k),
            board: "rpi4",
            ..Default::default()
        },
    );
    match verify(&b.bundle, &store, "1.0.0") {
        Err(OtaError::WrongBoard { expected, found }) => {
            assert_eq!((expected.as_str(), found.as_str()), ("rpi5", "rpi4"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn older_or_same_versions_are_refused_unless_a_downgrade_is_explicitly_allowed() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let store = TrustStore::open(&store_dir(&d.path().join("keys"), &[&k]), None).unwrap();
    let b = build(
        d.path(),
        "v",
        Release {
            key: Some(&k),
            version: "1.2.0",
            min_version: "0.1.0",
            ..Default::default()
        },
    );
    for running in ["1.2.0", "1.3.0", "2.0.0"] {
        assert!(
            matches!(
                verify(&b.bundle, &store, running),
                Err(OtaError::NotNewer { .. })
            ),
            "running {running}"
        );
    }
    // A pre-release of the same version is older.
    assert!(verify(&b.bundle, &store, "1.2.0-rc.1").is_ok());
    let downgrade = VerifyOptions {
        allow_downgrade: true,
        ..opts("2.0.0")
    };
    assert!(bundle::verify_bundle(&b.bundle, &store, &downgrade, &mut |_| {}).is_ok());
}

#[test]
fn a_bundle_is_refused_over_a_version_older_than_its_minimum() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let store = TrustStore::open(&store_dir(&d.path().join("keys"), &[&k]), None).unwrap();
    let b = build(
        d.path(),
        "m",
        Release {
            key: Some(&k),
            version: "2.0.0",
            min_version: "1.5.0",
            ..Default::default()
        },
    );
    assert!(matches!(
        verify(&b.bundle, &store, "1.4.9"),
        Err(OtaError::RunningTooOld { .. })
    ));
    assert!(verify(&b.bundle, &store, "1.5.0").is_ok());
}

#[test]
fn a_new_key_announced_by_a_trusted_key_is_trusted_afterwards_and_rotation_can_revoke_the_old_one()
{
    let d = tempfile::tempdir().unwrap();
    let old = new_key();
    let new = new_key();
    let shipped = store_dir(&d.path().join("shipped"), &[&old]);
    let local = d.path().join("local");
    let mut store = TrustStore::open(&shipped, Some(&local)).unwrap();

    // Before the announcement the new key is a stranger.
    let early = build(
        d.path(),
        "early",
        Release {
            key: Some(&new),
            version: "1.1.0",
            ..Default::default()
        },
    );
    assert!(matches!(
        verify(&early.bundle, &store, "1.0.0"),
        Err(OtaError::UnknownKey(_))
    ));

    let announce = KeyChanges {
        announce: vec![keys::parse_public_key(&new.pub_text).unwrap().to_base64()],
        revoke: vec![],
    };
    let b1 = build(
        d.path(),
        "b1",
        Release {
            key: Some(&old),
            version: "1.1.0",
            keys: announce,
            ..Default::default()
        },
    );
    let v1 = verify(&b1.bundle, &store, "1.0.0").unwrap();
    store.apply(&v1.manifest.keys, &v1.signer).unwrap();

    // The next release, signed by the new key, revokes the old one.
    let revoke = KeyChanges {
        announce: vec![],
        revoke: vec![old.id.clone()],
    };
    let b2 = build(
        d.path(),
        "b2",
        Release {
            key: Some(&new),
            version: "1.2.0",
            keys: revoke,
            ..Default::default()
        },
    );
    // The change survives a restart: it was persisted in the local store.
    let mut store = TrustStore::open(&shipped, Some(&local)).unwrap();
    let v2 = verify(&b2.bundle, &store, "1.1.0").unwrap();
    assert_eq!(v2.signer, new.id);
    store.apply(&v2.manifest.keys, &v2.signer).unwrap();

    let store = TrustStore::open(&shipped, Some(&local)).unwrap();
    assert_eq!(store.trusted_ids(), vec![new.id.clone()]);
    let b3 = build(
        d.path(),
        "b3",
        Release {
            key: Some(&old),
            version: "1.3.0",
            ..Default::default()
        },
    );
    assert!(matches!(
        verify(&b3.bundle, &store, "1.2.0"),
        Err(OtaError::RevokedKey(_))
    ));
}

#[test]
fn a_bundle_may_not_revoke_its_own_signer_nor_reinstate_a_revoked_key() {
    let d = tempfile::tempdir().unwrap();
    let a = new_key();
    let b = new_key();
    let shipped = store_dir(&d.path().join("shipped"), &[&a]);
    fs::write(shipped.join("revoked"), format!("{}\n", b.id)).unwrap();
    let mut store = TrustStore::open(&shipped, Some(&d.path().join("local"))).unwrap();
    let own = KeyChanges {
        announce: vec![],
        revoke: vec![a.id.clone()],
    };
    assert!(matches!(store.apply(&own, &a.id), Err(OtaError::Key(_))));
    assert_eq!(store.trusted_ids(), vec![a.id.clone()]);
    let back = KeyChanges {
        announce: vec![keys::parse_public_key(&b.pub_text).unwrap().to_base64()],
        revoke: vec![],
    };
    store.apply(&back, &a.id).unwrap();
    assert_eq!(store.trusted_ids(), vec![a.id.clone()]);
}

#[test]
fn a_trusted_comment_that_names_another_version_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let store = TrustStore::open(&store_dir(&d.path().join("keys"), &[&k]), None).unwrap();
    let b = build(
        d.path(),
        "ok",
        Release {
            key: Some(&k),
            ..Default::default()
        },
    );
    let sig = keys::sign(
        &k.sk,
        &b.manifest_json,
        "pvm-bundle product=pvm board=rpi5 version=9.9.9",
    )
    .unwrap();
    let bad = d.path().join("bad.pvmb");
    bundle::write_bundle(&bad, &b.manifest_json, Some(&sig), &d.path().join("ok.src")).unwrap();
    assert!(matches!(
        verify(&bad, &store, "1.0.0"),
        Err(OtaError::CommentMismatch(_))
    ));
}
