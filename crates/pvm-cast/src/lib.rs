//! pvm-cast: the Chromecast bridge.
