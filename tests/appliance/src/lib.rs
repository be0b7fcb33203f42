//! The QEMU test image of the appliance, and a harness that runs it the way the Pi runs the
//! real one.
//!
//! - [`Image`] builds (or finds) the image: `image/qemu/build-image.sh`, the same GPT layout as
//!   the Pi's SD card (p1 autoboot, p2/p3 boot A/B, p4/p5 system A/B, p6 data).
//! - [`Disk`] reads and writes one card: partitions by number, files on the FAT partitions
//!   through mtools (no mounts, no root needed).
//! - [`firmware`] plays the Raspberry Pi firmware's part at every boot: `autoboot.txt`, the
//!   one-shot tryboot flag, the chosen slot's kernel, initrd and `cmdline.txt`.
//! - [`Vm`] runs QEMU (x86_64, TCG) on a card and boots it again through the firmware stand-in
//!   whenever the guest reboots or the power is cut, with a command line into the guest over a
//!   serial port, the node's HTTP port forwarded to loopback, and screendumps of the TV; and
//!   the node's API as a venue uses it: JSON reads and the first admin made with the
//!   setup code ([`Vm::first_admin`]).
//!
//! A test takes a fresh card with [`Image::fresh_disk`], starts a [`Vm`] on it, and stops it
//! (dropping it stops it too). One VM runs at a time per test process: the machine has two cores
//! and an emulated guest wants both.

mod disk;
mod error;
pub mod firmware;
mod image;
mod node_api;
mod screen;
mod vm;

pub use disk::{Disk, Partition, AUTOBOOT, BOOT_A, BOOT_B, DATA, SYSTEM_A, SYSTEM_B};
pub use error::{Error, Result};
pub use image::Image;
pub use screen::Screen;
pub use vm::{Boot, BootEnd, CommandOutput, Vm, VmOptions};
