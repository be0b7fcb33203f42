//! scripts/lint-image.sh, the image lint `make test` runs, fed broken inputs: it must fail on
//! them and name the mistake. (It lives with pvm-firstboot because this crate is the image's
//! own Rust code; the lint itself is a shell script.)
//! Needs bash, and `systemd-analyze` (Debian package systemd) for the units part.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn lint(part: &str, env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(repo().join("scripts/lint-image.sh"));
    command.args(["--only", part]);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A symbol list in the format of ../shared/buildroot, with one legacy symbol.
fn symbol_lists(dir: &Path) {
    fs::write(
        dir.join("br2-symbols.txt"),
        "# Buildroot test: symbols\nBR2_aarch64\nBR2_INIT_SYSTEMD\nBR2_OLD_OPTION\n",
    )
    .unwrap();
    fs::write(
        dir.join("br2-legacy-symbols.txt"),
        "# Buildroot test: legacy\nBR2_OLD_OPTION\n",
    )
    .unwrap();
}

#[test]
fn a_defconfig_naming_a_made_up_symbol_fails_the_lint() {
    let dir = tempfile::tempdir().unwrap();
    symbol_lists(dir.path());
    let defconfig = dir.path().join("defconfig");
    fs::write(
        &defconfig,
        "BR2_aarch64=y\n# BR2_INIT_SYSTEMD is not set\nBR2_PACKAGE_PVM=y\nBR2_PACKAGE_MADE_UP_THING=y\n",
    )
    .unwrap();
    let output = lint(
        "symbols",
        &[
            ("PVM_BR2_SYMBOLS_DIR", dir.path()),
            ("PVM_LINT_DEFCONFIG", &defconfig),
        ],
    );
    let said = text(&output);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains(":4: BR2_PACKAGE_MADE_UP_THING is not a Buildroot symbol"));
    // Real symbols, unset ones and our own Config.in's are not complained about.
    assert!(!said.contains("BR2_aarch64 is"), "{said}");
    assert!(!said.contains("BR2_INIT_SYSTEMD is"), "{said}");
    assert!(!said.contains("BR2_PACKAGE_PVM is"), "{said}");
}

#[test]
fn a_legacy_symbol_fails_the_lint_and_is_called_legacy() {
    let dir = tempfile::tempdir().unwrap();
    symbol_lists(dir.path());
    let defconfig = dir.path().join("defconfig");
    fs::write(&defconfig, "BR2_aarch64=y\nBR2_OLD_OPTION=y\n").unwrap();
    let output = lint(
        "symbols",
        &[
            ("PVM_BR2_SYMBOLS_DIR", dir.path()),
            ("PVM_LINT_DEFCONFIG", &defconfig),
        ],
    );
    assert!(!output.status.success());
    assert!(text(&output).contains(":2: BR2_OLD_OPTION is a LEGACY symbol"));
}

#[test]
fn a_defconfig_of_real_symbols_passes() {
    let dir = tempfile::tempdir().unwrap();
    symbol_lists(dir.path());
    let defconfig = dir.path().join("defconfig");
    fs::write(
        &defconfig,
        "# comment\n\nBR2_aarch64=y\nBR2_PACKAGE_PVM_SRCDIR=\"$(BASE_DIR)/pvm-src\"\n",
    )
    .unwrap();
    let output = lint(
        "symbols",
        &[
            ("PVM_BR2_SYMBOLS_DIR", dir.path()),
            ("PVM_LINT_DEFCONFIG", &defconfig),
        ],
    );
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains("symbols: 2 checked against Buildroot test"),
        "{said}"
    );
}

#[test]
fn without_the_symbol_lists_the_lint_says_it_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let output = lint(
        "symbols",
        &[("PVM_BR2_SYMBOLS_DIR", &dir.path().join("absent"))],
    );
    assert!(output.status.success());
    assert!(text(&output).contains("symbols: SKIPPED"));
}

fn overlay_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(repo().join("overlays/."))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

#[test]
fn the_shipped_units_verify_cleanly() {
    let output = lint("units", &[]);
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn a_unit_with_a_mistyped_setting_fails_the_lint() {
    let overlay = overlay_copy();
    let unit = overlay
        .path()
        .join("usr/lib/systemd/system/pvm-node.service");
    let original = fs::read_to_string(&unit).unwrap();
    fs::write(
        &unit,
        original.replace("Restart=always", "Restart=always\nRestartt=always"),
    )
    .unwrap();
    let output = lint("units", &[("PVM_LINT_OVERLAYS", overlay.path())]);
    let said = text(&output);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("Unknown key"), "{said}");
}

#[test]
fn a_unit_running_a_program_the_image_lacks_fails_the_lint() {
    let overlay = overlay_copy();
    let unit = overlay
        .path()
        .join("usr/lib/systemd/system/pvm-grow-data.service");
    let original = fs::read_to_string(&unit).unwrap();
    fs::write(
        &unit,
        original.replace("/usr/libexec/pvm/grow-data", "/usr/libexec/pvm/grow-dta"),
    )
    .unwrap();
    let output = lint("units", &[("PVM_LINT_OVERLAYS", overlay.path())]);
    let said = text(&output);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("grow-dta"), "{said}");
}

#[test]
fn a_mistake_in_a_drop_in_fails_the_lint() {
    let overlay = overlay_copy();
    let dropin = overlay
        .path()
        .join("etc/systemd/system/sshd.service.d/10-pvm.conf");
    let original = fs::read_to_string(&dropin).unwrap();
    fs::write(
        &dropin,
        original.replace("ConditionPathExists=", "ConditionPathExist="),
    )
    .unwrap();
    let output = lint("units", &[("PVM_LINT_OVERLAYS", overlay.path())]);
    let said = text(&output);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("ConditionPathExist"), "{said}");
}
