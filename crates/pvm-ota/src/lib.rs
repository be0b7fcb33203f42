//! pvm-ota: signed updates.
//!
//! - [`manifest`] and [`bundle`]: what a release is, and the container it travels in
//!   (format in `docs/ota.md`).
//! - [`keys`]: minisign keys and the device's trust store (rotation, revocation).
//! - [`slots`], [`bootloader`], [`agent`]: A/B installs with the firmware's tryboot,
//!   health-checked commit and rollback.
//! - [`selfupdate`]: plain installs replace their own binary from a release catalog.
//!
//! Nothing here trusts a byte before the manifest's signature verified.

pub mod agent;
pub mod bootloader;
pub mod bundle;
pub mod cmdline;
pub mod error;
mod fsutil;
pub mod keys;
pub mod manifest;
mod pipeline;
pub mod selfupdate;
pub mod slots;

pub use agent::{
    AgentConfig, BootOutcome, Conditions, MaintenanceWindow, UpdateAgent, UpdateState, UpdateStatus,
};
pub use bootloader::{
    BootStatus, Bootloader, EmulatedFirmware, FileBootloader, PiFirmware, RebootVia,
};
pub use bundle::{verify_bundle, BundleSpec, Verified, VerifyOptions};
pub use error::{OtaError, Result};
/// Durable replace of a small file (new file, fsync, rename, fsync dir), for callers'
/// own state next to the agent's.
pub use fsutil::atomic_write;
pub use keys::TrustStore;
pub use manifest::{KeyChanges, Manifest, Payload, PayloadKind};
pub use slots::{Autoboot, Slot, SlotLayout};
