//! A real mDNS round trip: the node advertises, a second, independent mdns-sd daemon browses.
//! Both are pinned to the loopback interface so the test works on any Linux machine, needs no LAN,
//! and never announces test services to the rest of the network.

use std::time::{Duration, Instant};

use mdns_sd::{HostnameResolutionEvent, IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};
use pvm_node::mdns::{advertise, MdnsSettings, PVM_SERVICE_TYPE};

const TEST_INTERFACE: &str = "lo";

/// Unique per run, so parallel runs (or other engineers on the same host) never collide.
fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn browser() -> ServiceDaemon {
    let daemon = ServiceDaemon::new().unwrap();
    daemon.disable_interface(IfKind::All).unwrap();
    daemon.enable_interface(TEST_INTERFACE).unwrap();
    daemon
}

/// Waits for the named instance to resolve, or for `Removed` when `removed` is set.
fn wait_for_instance(
    events: &mdns_sd::Receiver<ServiceEvent>,
    fullname: &str,
    removed: bool,
) -> Option<ServiceInfo> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(ServiceEvent::ServiceResolved(info))
                if !removed && info.get_fullname() == fullname =>
            {
                return Some(info)
            }
            Ok(ServiceEvent::ServiceRemoved(_, name)) if removed && name == fullname => {
                return None
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!(
        "{fullname} was not {} within 10 s",
        if removed { "removed" } else { "resolved" }
    );
}

#[test]
fn a_browser_resolves_the_node_with_its_port_and_txt_and_sees_it_leave() {
    let instance = unique_name("pvm-test");
    let host = unique_name("pvmhost");
    let settings = MdnsSettings {
        enabled: true,
        hostname: host.clone(),
        instance_name: instance.clone(),
        port: 18_080,
        node_id: "node-7".to_owned(),
        version: "1.2.3".to_owned(),
        interfaces: vec![TEST_INTERFACE.to_owned()],
    };
    let browser = browser();
    let events = browser.browse(PVM_SERVICE_TYPE).unwrap();

    let handle = advertise(&settings).unwrap();
    let fullname = format!("{instance}.{PVM_SERVICE_TYPE}");
    assert!(handle.fullnames().contains(&fullname));
    assert!(handle
        .fullnames()
        .contains(&format!("{instance}._http._tcp.local.")));

    let found = wait_for_instance(&events, &fullname, false).unwrap();
    assert_eq!(found.get_port(), 18_080);
    assert_eq!(found.get_hostname(), format!("{host}.local."));
    assert_eq!(found.get_property_val_str("version"), Some("1.2.3"));
    assert_eq!(found.get_property_val_str("node_id"), Some("node-7"));
    assert_eq!(found.get_property_val_str("path"), Some("/"));
    // The advertisement carries the addresses of the interface it runs on (here loopback).
    let loopback: std::net::IpAddr = [127, 0, 0, 1].into();
    assert!(
        found.get_addresses().contains(&loopback),
        "{:?}",
        found.get_addresses()
    );

    handle.shutdown();
    assert!(wait_for_instance(&events, &fullname, true).is_none());
    let _ = browser.shutdown();
}

#[test]
fn the_console_is_advertised_as_http() {
    let instance = unique_name("pvm-console");
    let settings = MdnsSettings {
        instance_name: instance.clone(),
        hostname: unique_name("pvmweb"),
        port: 18_081,
        interfaces: vec![TEST_INTERFACE.to_owned()],
        ..MdnsSettings::default()
    };
    let browser = browser();
    let events = browser.browse("_http._tcp.local.").unwrap();
    let handle = advertise(&settings).unwrap();
    let found =
        wait_for_instance(&events, &format!("{instance}._http._tcp.local."), false).unwrap();
    assert_eq!(found.get_port(), 18_081);
    assert_eq!(found.get_property_val_str("path"), Some("/"));
    handle.shutdown();
    let _ = browser.shutdown();
}

#[test]
fn an_invalid_hostname_is_refused_and_spawn_carries_on_without_mdns() {
    let settings = MdnsSettings {
        hostname: "poker room".to_owned(),
        interfaces: vec![TEST_INTERFACE.to_owned()],
        ..MdnsSettings::default()
    };
    assert!(advertise(&settings).is_err());
    assert!(pvm_node::mdns::spawn(&settings).is_none());
}

#[test]
fn the_hostname_resolves_to_the_node_address() {
    let host = unique_name("pvmname");
    let settings = MdnsSettings {
        instance_name: unique_name("pvm-host"),
        hostname: host.clone(),
        port: 18_082,
        interfaces: vec![TEST_INTERFACE.to_owned()],
        ..MdnsSettings::default()
    };
    let handle = advertise(&settings).unwrap();
    let browser = browser();
    let events = browser
        .resolve_hostname(&format!("{host}.local."), Some(10_000))
        .unwrap();
    let loopback: std::net::IpAddr = [127, 0, 0, 1].into();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut found = None;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(HostnameResolutionEvent::AddressesFound(_, addresses)) => {
                found = Some(addresses);
                break;
            }
            Ok(HostnameResolutionEvent::SearchTimeout(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let addresses = found.expect("the host name never resolved");
    assert!(addresses.contains(&loopback), "{addresses:?}");
    handle.shutdown();
    let _ = browser.shutdown();
}
