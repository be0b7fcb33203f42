//! pvm-kiosk: draws the venue's screens on the HDMI TV with Slint.
//!
//! - `client`: the WebSocket link to the node (view of the HDMI display, clock offset,
//!   reconnect with backoff and `since=`).
//! - `clock`: the countdown computed locally from a view's anchor and the offset.
//! - `ui`: the Slint globals filled from a `DisplayView`; `ui/kiosk.slint` lays them out.
//! - `headless`: the software renderer into memory, for tests and the bench.
//! - `app`: the running kiosk (window, timer, client thread), used by the binary.
//!
//! The kiosk is a separate process from the node: it only reads the public live feed, so a
//! crash here is restarted by systemd and never touches the node.

pub mod app;
pub mod client;
pub mod clock;
pub mod fixtures;
pub mod headless;
pub mod logo;
pub mod ui;
