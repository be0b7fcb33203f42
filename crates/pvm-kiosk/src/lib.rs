//! pvm-kiosk: the HDMI renderer (Slint).
