//! pvm-node: the venue's daemon. The binary (`main.rs`) only wires these modules together.
pub mod auth;
