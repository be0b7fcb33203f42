//! pvm-ota: signed updates.
