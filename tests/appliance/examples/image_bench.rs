//! Figures for `make bench` (via scripts/bench-image.sh): the QEMU test image's sizes, and the
//! time from QEMU's start to the node answering /healthz. The guest runs under TCG software
//! emulation on this machine, so the boot time says how the image and the harness are doing,
//! not how fast a Pi boots.

use std::time::{Duration, Instant};

use pvm_appliance_tests::{Image, Vm, VmOptions};

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let built = Instant::now();
    let image = Image::get()?;
    println!(
        "image: built or reused in {:.1} s ({})",
        built.elapsed().as_secs_f64(),
        image.dir().display()
    );
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let disk = image.disk().path();
    let allocated = std::fs::metadata(disk)
        .map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
        .unwrap_or(0);
    println!(
        "system slot (squashfs, gzip): {:.1} MiB",
        mib(size(&image.system()))
    );
    println!(
        "boot slot (FAT, kernel + initrd): {:.1} MiB",
        mib(size(&image.boot_a()))
    );
    println!(
        "card image: {:.0} MiB ({:.1} MiB allocated, sparse)",
        mib(size(disk)),
        mib(allocated)
    );
    let runs: usize = std::env::var("PVM_BENCH_BOOTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    for run in 1..=runs {
        let tmp = tempfile::tempdir()?;
        let vm = Vm::start(image.fresh_disk(tmp.path())?, VmOptions::default())?;
        let took = vm.wait_healthy(Duration::from_secs(600))?;
        println!(
            "boot {run}/{runs}: QEMU start -> node healthy {:.1} s (x86_64 under TCG emulation)",
            took.as_secs_f64()
        );
        vm.stop();
    }
    Ok(())
}
