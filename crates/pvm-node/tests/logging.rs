//! Installing the global subscriber (its own test binary, as it is process-wide).

use pvm_node::logging::{init, LoggingError};

#[test]
fn init_installs_once_and_refuses_a_second_subscriber() {
    init("info").unwrap();
    tracing::info!("logging works");
    let again = init("debug").unwrap_err();
    assert!(
        matches!(again, LoggingError::AlreadyInitialised(_)),
        "{again:?}"
    );
}
