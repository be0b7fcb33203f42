//! Self-update of a plain install against a real HTTP server on loopback serving a
//! release catalog, binaries and their minisign signatures.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::routing::get;
use common::*;
use pvm_ota::selfupdate::{self, Catalog, CatalogRelease, SelfUpdateConfig, SelfUpdateOutcome};
use pvm_ota::{keys, OtaError, TrustStore};
use semver::Version;

const TARGET: &str = "aarch64-unknown-linux-gnu";

struct Server {
    url: String,
    root: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

async fn serve(root: PathBuf) -> Server {
    let dir = root.clone();
    let app = axum::Router::new().route(
        "/{*path}",
        get(move |UrlPath(p): UrlPath<String>| {
            let dir = dir.clone();
            async move {
                match fs::read(dir.join(p)) {
                    Ok(b) => Ok(b),
                    Err(_) => Err(StatusCode::NOT_FOUND),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        url: format!("http://{addr}/catalog.json"),
        root,
        task,
    }
}

fn script(version: &str, ok: bool) -> Vec<u8> {
    format!(
        "#!/bin/sh\necho pvm-node {version}\nexit {}\n",
        if ok { 0 } else { 1 }
    )
    .into_bytes()
}

/// Publishes a release of `bytes` signed by `key` and adds it to the catalog.
fn publish(srv: &Server, key: &Key, version: &str, bytes: &[u8]) -> CatalogRelease {
    let name = format!("pvm-node-{version}");
    fs::write(srv.root.join(&name), bytes).unwrap();
    let (size, sha256) = pvm_ota::bundle::hash_file(&srv.root.join(&name)).unwrap();
    let rel = CatalogRelease {
        product: "pvm-node".into(),
        version: Version::parse(version).unwrap(),
        target: TARGET.into(),
        url: name.clone(),
        signature: format!("{name}.minisig"),
        size,
        sha256,
    };
    let sig = keys::sign(&key.sk, bytes, &rel.trusted_comment()).unwrap();
    fs::write(srv.root.join(format!("{name}.minisig")), sig).unwrap();
    let cat_path = srv.root.join("catalog.json");
    let mut cat: Catalog = fs::read(&cat_path)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(Catalog { releases: vec![] });
    cat.releases.push(rel.clone());
    fs::write(cat_path, serde_json::to_vec(&cat).unwrap()).unwrap();
    rel
}

struct Install {
    binary: PathBuf,
    cfg: SelfUpdateConfig,
    trust: TrustStore,
}

fn install(dir: &Path, srv: &Server, trusted: &[&Key]) -> Install {
    let bin_dir = dir.join("bin");
    fs::create_dir_all(&bin_dir).unwrap();
    let binary = bin_dir.join("pvm-node");
    fs::write(&binary, script("1.2.0", true)).unwrap();
    fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).unwrap();
    let trust = TrustStore::open(&store_dir(&dir.join("keys"), trusted), None).unwrap();
    let cfg = SelfUpdateConfig {
        catalog_url: srv.url.clone(),
        product: "pvm-node".into(),
        target: TARGET.into(),
        running: Version::new(1, 2, 0),
        binary: binary.clone(),
    };
    Install { binary, cfg, trust }
}

async fn run(i: &Install) -> (Result<SelfUpdateOutcome, OtaError>, Vec<(u64, u64)>) {
    let client = reqwest::Client::new();
    let mut seen = Vec::new();
    let r = selfupdate::update(&client, &i.cfg, &i.trust, &mut |d, t| seen.push((d, t))).await;
    (r, seen)
}

#[tokio::test]
async fn a_newer_signed_release_replaces_the_binary_and_the_old_one_is_kept_for_rollback() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let srv = serve(d.path().join("www")).await;
    fs::create_dir_all(&srv.root).unwrap();
    let i = install(d.path(), &srv, &[&k]);
    publish(&srv, &k, "1.1.0", &script("1.1.0", true));
    let mut big = script("1.3.0", true);
    big.extend(std::iter::repeat_n(b'#', 300_000)); // several chunks of progress
    publish(&srv, &k, "1.3.0", &big);

    let (r, seen) = run(&i).await;
    match r.unwrap() {
        SelfUpdateOutcome::Updated { from, to, previous } => {
            assert_eq!(
                (from.to_string(), to.to_string()),
                ("1.2.0".into(), "1.3.0".into())
            );
            assert_eq!(fs::read(previous).unwrap(), script("1.2.0", true));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fs::read(&i.binary).unwrap(), big);
    assert!(fs::metadata(&i.binary).unwrap().permissions().mode() & 0o111 != 0);
    assert!(selfupdate::binary_runs(
        &i.binary,
        &[],
        std::time::Duration::from_secs(10)
    ));
    assert_eq!(seen.last(), Some(&(big.len() as u64, big.len() as u64)));
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "progress only goes up"
    );

    selfupdate::rollback(&i.binary).unwrap();
    assert_eq!(fs::read(&i.binary).unwrap(), script("1.2.0", true));
    srv.task.abort();
}

#[tokio::test]
async fn a_new_binary_that_fails_its_health_check_is_rolled_back() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let srv = serve(d.path().join("www")).await;
    fs::create_dir_all(&srv.root).unwrap();
    let i = install(d.path(), &srv, &[&k]);
    publish(&srv, &k, "1.3.0", &script("1.3.0", false));
    assert!(matches!(
        run(&i).await.0.unwrap(),
        SelfUpdateOutcome::Updated { .. }
    ));
    if !selfupdate::binary_runs(
        &i.binary,
        &["--version"],
        std::time::Duration::from_secs(10),
    ) {
        selfupdate::rollback(&i.binary).unwrap();
    }
    assert_eq!(fs::read(&i.binary).unwrap(), script("1.2.0", true));
    assert!(selfupdate::binary_runs(
        &i.binary,
        &["--version"],
        std::time::Duration::from_secs(10)
    ));
    srv.task.abort();
}

#[tokio::test]
async fn refused_downloads_leave_the_installed_binary_alone() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let stranger = new_key();
    let srv = serve(d.path().join("www")).await;
    fs::create_dir_all(&srv.root).unwrap();
    let i = install(d.path(), &srv, &[&k]);
    let original = fs::read(&i.binary).unwrap();
    let unchanged = |what: &str| {
        assert_eq!(fs::read(&i.binary).unwrap(), original, "{what}");
        assert!(!selfupdate::previous_path(&i.binary).exists(), "{what}");
        assert!(
            fs::read_dir(d.path().join("bin")).unwrap().count() == 1,
            "{what}: leftovers"
        );
    };

    // Tampered on the server after signing: one byte flipped.
    let rel = publish(&srv, &k, "1.3.0", &script("1.3.0", true));
    let path = srv.root.join(&rel.url);
    let mut b = fs::read(&path).unwrap();
    b[12] ^= 1;
    fs::write(&path, &b).unwrap();
    assert!(matches!(run(&i).await.0, Err(OtaError::BadSignature(_))));
    unchanged("tampered");

    // Truncated on the server.
    fs::write(&path, &script("1.3.0", true)[..20]).unwrap();
    assert!(matches!(run(&i).await.0, Err(OtaError::Truncated(_))));
    unchanged("truncated");

    // No signature at all.
    fs::write(&path, script("1.3.0", true)).unwrap();
    fs::remove_file(srv.root.join(&rel.signature)).unwrap();
    assert!(matches!(run(&i).await.0, Err(OtaError::Unsigned)));
    unchanged("unsigned");

    // Signed by a key the device does not trust.
    let rel = publish(&srv, &stranger, "1.4.0", &script("1.4.0", true));
    assert!(matches!(run(&i).await.0, Err(OtaError::UnknownKey(_))));
    unchanged("stranger");

    // A signature made for another version (replayed onto this catalog entry).
    let old = publish(&srv, &k, "1.0.1", &script("1.5.0", true));
    fs::copy(srv.root.join(&old.signature), srv.root.join(&rel.signature)).unwrap();
    fs::write(srv.root.join(&rel.url), script("1.5.0", true)).unwrap();
    let mut cat: Catalog =
        serde_json::from_slice(&fs::read(srv.root.join("catalog.json")).unwrap()).unwrap();
    for r in &mut cat.releases {
        if r.version == rel.version {
            let (size, sha) = pvm_ota::bundle::hash_file(&srv.root.join(&rel.url)).unwrap();
            r.size = size;
            r.sha256 = sha;
        }
    }
    fs::write(
        srv.root.join("catalog.json"),
        serde_json::to_vec(&cat).unwrap(),
    )
    .unwrap();
    assert!(matches!(run(&i).await.0, Err(OtaError::CommentMismatch(_))));
    unchanged("replayed signature");
    srv.task.abort();
}

#[tokio::test]
async fn nothing_newer_in_the_catalog_means_up_to_date() {
    let d = tempfile::tempdir().unwrap();
    let k = new_key();
    let srv = serve(d.path().join("www")).await;
    fs::create_dir_all(&srv.root).unwrap();
    let i = install(d.path(), &srv, &[&k]);
    publish(&srv, &k, "1.2.0", &script("1.2.0", true));
    publish(&srv, &k, "0.9.0", &script("0.9.0", true));
    assert_eq!(run(&i).await.0.unwrap(), SelfUpdateOutcome::UpToDate);
    srv.task.abort();
}
