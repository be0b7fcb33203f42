//! Version, health, time and network: what the console's System page and the monitoring read.

use super::error::ApiResult;
use super::AppState;
use crate::auth::{AuthUser, Role};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(version))
        .routes(routes!(health))
        .routes(routes!(time))
        .routes(routes!(network))
        .routes(routes!(firstboot))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    pub product: &'static str,
    pub version: &'static str,
}

/// The running node's version.
#[utoipa::path(get, path = "/api/v1/system/version", tag = "system",
    responses((status = 200, body = VersionInfo)))]
async fn version(State(s): State<AppState>) -> Json<VersionInfo> {
    Json(VersionInfo {
        product: "pvm-node",
        version: s.node.version,
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub uptime_secs: u64,
    /// Sequence of the last event in the log.
    pub seq: u64,
    /// Commands waiting for the writer.
    pub queue: usize,
    pub time_trusted: bool,
    /// The event log's start-up integrity check: `running`, `passed` or `failed`. While it
    /// runs, reads are served and commands wait; once failed, every change is refused.
    pub integrity: &'static str,
    /// Why the log was refused, when the check failed.
    pub database_problem: Option<String>,
}

/// Whether the node is serving, with a few vital signs.
#[utoipa::path(get, path = "/api/v1/system/health", tag = "system",
    responses((status = 200, body = Health)))]
async fn health(State(s): State<AppState>) -> Json<Health> {
    Json(health_of(&s))
}

pub fn health_of(s: &AppState) -> Health {
    let integrity = s.engine.integrity();
    let database_problem = match &integrity {
        crate::engine::Integrity::Failed(reason) => Some(format!(
            "the event log is damaged, so every change is refused (reads still work): {reason}"
        )),
        _ => None,
    };
    Health {
        status: if database_problem.is_some() {
            "database_damaged"
        } else {
            "ok"
        },
        integrity: integrity.word(),
        database_problem,
        uptime_secs: s.node.started_at.elapsed().as_secs(),
        seq: s.engine.last_seq(),
        queue: s.engine.queue_len(),
        time_trusted: s.node.time.borrow().trusted,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TimeInfo {
    /// The node's wall clock, ms since the Unix epoch. Displays use it to correct their own clock.
    pub server_time_ms: i64,
    #[schema(value_type = Object)]
    pub sntp: crate::timesync::TimeStatus,
}

/// The node's time and the SNTP status (offset, stratum, last sync, "not trusted yet").
#[utoipa::path(get, path = "/api/v1/system/time", tag = "system",
    responses((status = 200, body = TimeInfo)))]
async fn time(State(s): State<AppState>) -> Json<TimeInfo> {
    Json(TimeInfo {
        server_time_ms: crate::engine::wall_now().as_millis(),
        sntp: s.node.time.borrow().clone(),
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NetworkInfo {
    /// The machine's host name.
    pub hostname: String,
    /// The name phones find over mDNS (`pvm.local`), or null when announcing is off.
    pub mdns_name: Option<String>,
    /// The address and port the node listens on (`0.0.0.0` means every IPv4 interface).
    pub listen: String,
    /// Where staff open the console, the most memorable first.
    pub console_urls: Vec<String>,
    pub interfaces: Vec<NetworkInterface>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NetworkInterface {
    pub name: String,
    pub loopback: bool,
    pub addresses: Vec<InterfaceAddress>,
    /// Whether the console can be reached through this interface: the node listens on one
    /// of its addresses, or on every address of that family.
    pub serves_console: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InterfaceAddress {
    /// `ipv4` or `ipv6`.
    pub family: &'static str,
    pub ip: String,
    /// Network prefix length (24 for a 255.255.255.0 netmask).
    pub prefix_len: u8,
}

/// The node's host name, mDNS name and network interfaces, and which of them serve the
/// console: what the floor needs to tell a new phone where to go. Read-only; any signed-in
/// staff member may see it.
#[utoipa::path(get, path = "/api/v1/system/network", tag = "system",
    responses((status = 200, body = NetworkInfo),
        (status = 401, description = "Not signed in")))]
async fn network(State(s): State<AppState>, who: AuthUser) -> ApiResult<Json<NetworkInfo>> {
    who.require(Role::Dealer)?;
    // A machine whose interfaces cannot be listed still has a host name and URLs to show.
    let found = if_addrs::get_if_addrs().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot list the network interfaces");
        Vec::new()
    });
    let addrs = found
        .iter()
        .map(|i| {
            let prefix_len = match &i.addr {
                if_addrs::IfAddr::V4(a) => a.prefixlen,
                if_addrs::IfAddr::V6(a) => a.prefixlen,
            };
            (i.name.clone(), i.ip(), prefix_len)
        })
        .collect::<Vec<_>>();
    Ok(Json(NetworkInfo {
        hostname: hostname(),
        mdns_name: s.node.mdns_name.clone(),
        listen: s.node.listen.to_string(),
        console_urls: s.node.console_urls.clone(),
        interfaces: group_interfaces(&addrs, s.node.listen),
    }))
}

/// One entry per interface name, in the order the system lists them, each with its addresses.
fn group_interfaces(addrs: &[(String, IpAddr, u8)], listen: SocketAddr) -> Vec<NetworkInterface> {
    let mut out: Vec<NetworkInterface> = Vec::new();
    for (name, ip, prefix_len) in addrs {
        let address = InterfaceAddress {
            family: if ip.is_ipv4() { "ipv4" } else { "ipv6" },
            ip: ip.to_string(),
            prefix_len: *prefix_len,
        };
        let serves = serves_console(*ip, listen);
        match out.iter_mut().find(|i| &i.name == name) {
            Some(i) => {
                i.addresses.push(address);
                i.serves_console |= serves;
                i.loopback &= ip.is_loopback();
            }
            None => out.push(NetworkInterface {
                name: name.clone(),
                loopback: ip.is_loopback(),
                addresses: vec![address],
                serves_console: serves,
            }),
        }
    }
    out
}

/// Whether a listener on `listen` accepts connections made to `ip`. `[::]` counts for both
/// families: Linux binds it dual-stack unless told otherwise.
fn serves_console(ip: IpAddr, listen: SocketAddr) -> bool {
    match listen.ip() {
        IpAddr::V4(l) if l.is_unspecified() => ip.is_ipv4(),
        IpAddr::V6(l) if l.is_unspecified() => true,
        l => l == ip,
    }
}

/// The kernel's host name; "unknown" where it cannot be read (it is only shown to people).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// One mistake in the venue's `pvm.toml`, as pvm-firstboot reported it.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct FirstbootProblem {
    /// The setting's name; `null` when the file as a whole is at fault.
    pub key: Option<String>,
    pub message: String,
    /// 1-based line in `pvm.toml`, when one is to blame.
    pub line: Option<u64>,
}

/// What the appliance's first boot did with `pvm.toml` (written by pvm-firstboot; see
/// docs/image.md).
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct FirstbootReport {
    /// No problems (an absent `pvm.toml` is fine).
    pub ok: bool,
    /// False where pvm-firstboot never ran (a desktop install): nothing to show.
    #[serde(default = "yes")]
    pub available: bool,
    /// Whether a `pvm.toml` was on the card.
    #[serde(default)]
    pub found: bool,
    /// Settings this boot applied.
    pub applied: Vec<String>,
    pub errors: Vec<FirstbootProblem>,
}

fn yes() -> bool {
    true
}

/// The first-boot report, for the TV's and the web console's setup screens. Public and
/// read-only: it holds no secrets (pvm-firstboot never repeats a passphrase or a code).
#[utoipa::path(get, path = "/api/v1/system/firstboot", tag = "system",
    responses((status = 200, body = FirstbootReport)))]
async fn firstboot(State(s): State<AppState>) -> Json<FirstbootReport> {
    let path = &s.node.firstboot_report;
    Json(report_of(path, tokio::fs::read(path).await))
}

/// The report at `path` as the node shows it: a missing file means no first boot ran here
/// (nothing to show), one that cannot be read or parsed is itself a problem to show.
fn report_of(path: &std::path::Path, read: std::io::Result<Vec<u8>>) -> FirstbootReport {
    let unreadable = |why: String| FirstbootReport {
        ok: false,
        available: true,
        found: true,
        applied: Vec::new(),
        errors: vec![FirstbootProblem {
            key: None,
            message: format!(
                "the first-boot report {} cannot be read: {why}",
                path.display()
            ),
            line: None,
        }],
    };
    match read {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| unreadable(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => FirstbootReport {
            ok: true,
            available: false,
            found: false,
            applied: Vec::new(),
            errors: Vec::new(),
        },
        Err(e) => unreadable(e.to_string()),
    }
}

/// The mistakes the TV's setup screen lists. Read once at start: pvm-firstboot runs before
/// the node (its unit orders it so) and not again until the next boot.
pub fn firstboot_notices(path: &std::path::Path) -> Vec<pvm_core::views::SetupNotice> {
    report_of(path, std::fs::read(path))
        .errors
        .into_iter()
        .map(|p| pvm_core::views::SetupNotice {
            setting: p.key,
            line: p.line,
            message: p.message,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(listen: &str) -> SocketAddr {
        listen.parse().unwrap()
    }

    #[test]
    fn a_node_on_one_address_serves_the_console_only_on_that_interface() {
        let addrs = vec![
            ("lo".to_owned(), "127.0.0.1".parse().unwrap(), 8),
            ("eth0".to_owned(), "192.168.1.20".parse().unwrap(), 24),
            ("eth0".to_owned(), "fe80::1".parse().unwrap(), 64),
        ];
        let got = group_interfaces(&addrs, at("192.168.1.20:80"));
        assert_eq!(got.len(), 2);
        assert!(got[0].loopback && !got[0].serves_console);
        assert_eq!(got[1].name, "eth0");
        assert!(!got[1].loopback && got[1].serves_console);
        assert_eq!(got[1].addresses.len(), 2);
        assert_eq!(got[1].addresses[0].prefix_len, 24);
        assert_eq!(got[1].addresses[1].family, "ipv6");
    }

    #[test]
    fn listening_on_every_ipv4_address_serves_every_ipv4_interface_but_not_ipv6_only_ones() {
        let addrs = vec![
            ("lo".to_owned(), "127.0.0.1".parse().unwrap(), 8),
            ("wlan0".to_owned(), "10.0.0.7".parse().unwrap(), 16),
            ("tun0".to_owned(), "fd00::2".parse().unwrap(), 64),
        ];
        let got = group_interfaces(&addrs, at("0.0.0.0:8080"));
        let serving: Vec<_> = got
            .iter()
            .filter(|i| i.serves_console)
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(serving, ["lo", "wlan0"]);
        let all = group_interfaces(&addrs, at("[::]:8080"));
        assert!(all.iter().all(|i| i.serves_console));
    }
}
