//! From venue state to what the bridge should do: the node's side of the wiring.

use pvm_core::displays::{DisplayKind, DisplayState};

use crate::config::{Wanted, WantedMap};

/// The page a Chromecast shows for a screen, served by the node.
pub fn display_url(node_base_url: &str, screen: impl std::fmt::Display) -> String {
    format!("{}/display/{screen}", node_base_url.trim_end_matches('/'))
}

/// Every Chromecast display that is assigned a screen, keyed by its mDNS device id.
///
/// `node_base_url` is how a TV reaches the node, e.g. `http://192.168.1.20:8080`: an address,
/// not `localhost`, and not a `.local` name (Chromecasts do not resolve mDNS names for pages).
pub fn wanted_from_displays(displays: &DisplayState, node_base_url: &str) -> WantedMap {
    displays
        .displays
        .values()
        .filter_map(|display| match (&display.kind, display.screen) {
            (DisplayKind::Chromecast { device_id }, Some(screen)) => Some((
                device_id.clone(),
                Wanted {
                    url: display_url(node_base_url, screen),
                    always: display.always,
                },
            )),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pvm_core::displays::Display;
    use pvm_core::ids::{DisplayId, ScreenId};
    use uuid::Uuid;

    fn chromecast(n: u128, device: &str, screen: Option<ScreenId>, always: bool) -> Display {
        Display {
            id: DisplayId(Uuid::from_u128(n)),
            name: format!("TV {n}"),
            kind: DisplayKind::Chromecast {
                device_id: device.into(),
            },
            screen,
            always,
            rotation: 0,
            overscan_percent: 0,
        }
    }

    #[test]
    fn only_assigned_chromecasts_are_wanted_with_their_screen_url() {
        let screen = ScreenId(Uuid::from_u128(42));
        let mut state = DisplayState::default();
        for d in [
            chromecast(1, "aaa", Some(screen), true),
            chromecast(2, "bbb", None, false),
        ] {
            state.displays.insert(d.id, d);
        }
        let wanted = wanted_from_displays(&state, "http://10.0.0.5:8080/");
        assert_eq!(wanted.len(), 1, "HDMI and unassigned displays are not cast");
        assert_eq!(
            wanted["aaa"],
            Wanted {
                url: format!("http://10.0.0.5:8080/display/{screen}"),
                always: true
            }
        );
    }
}
