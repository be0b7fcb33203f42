//! The node's one configuration loader.
//!
//! Settings come from three layers, each overriding the one before: the TOML file (default
//! [`DEFAULT_CONFIG_PATH`]), then environment variables (`PVM_DATA_DIR`, `PVM_LISTEN`, …), then
//! command-line flags (`--data-dir`, `--listen`, …). Without any of them the node runs with
//! desktop defaults (`./data`, `0.0.0.0:8080`).
//!
//! A mistake is refused at start and names where it is: the file with line and column, the
//! environment variable, or the flag, plus the reason in plain words. Typos are mistakes too:
//! every section denies unknown fields.
//!
//! Entry point: [`load_from_process`].

use std::ffi::OsString;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

/// Where the appliance keeps its configuration. A missing file here is fine (desktop use).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/pvm/node.toml";

/// The highest BCM GPIO number on the Raspberry Pi 40-pin header (GPIO 0–27).
pub const MAX_GPIO_PIN: u8 = 27;

/// Everything the node needs to know at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Where the event log, snapshots and other state live.
    pub data_dir: PathBuf,
    /// Address and port the HTTP/WebSocket API listens on.
    #[serde(deserialize_with = "deserialize_listen")]
    pub listen: SocketAddr,
    /// A human name for this node, shown on screens and in the fleet.
    pub node_name: String,
    /// The address people use to reach the node, when it differs from what it can guess.
    pub public_url: Option<String>,
    /// Clock synchronisation (SNTP).
    pub time: TimeConfig,
    /// Optional hardware buttons and buzzer.
    pub gpio: GpioConfig,
    /// Announcing the node on the local network.
    pub mdns: MdnsConfig,
    pub cast: CastConfig,
    /// The single-writer engine.
    pub engine: EngineConfig,
    /// WebSocket clients.
    pub ws: WsConfig,
    /// Cloud sync tuning; pairing itself is done from the console, not here.
    pub cloud: CloudConfig,
    /// System updates (A/B slots, trial boots).
    pub update: crate::update::config::UpdateConfig,
    /// The appliance's first-boot report (pvm-firstboot), served at
    /// `GET /api/v1/system/firstboot`; absent on a desktop.
    pub firstboot_report: PathBuf,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            node_name: "pvm".to_owned(),
            public_url: None,
            time: TimeConfig::default(),
            gpio: GpioConfig::default(),
            mdns: MdnsConfig::default(),
            cast: CastConfig::default(),
            engine: EngineConfig::default(),
            ws: WsConfig::default(),
            cloud: CloudConfig::default(),
            update: Default::default(),
            firstboot_report: PathBuf::from("/run/pvm/firstboot.json"),
        }
    }
}

impl NodeConfig {
    /// The venue's name, when one was configured: `node_name` (the appliance's first boot sets
    /// it from pvm.toml's `venue_name`). The default `pvm` names the box, not a venue: `None`.
    pub fn venue_name(&self) -> Option<&str> {
        let name = self.node_name.trim();
        (!name.is_empty() && name != NodeConfig::default().node_name).then_some(name)
    }
}

/// `[time]`: how the node keeps its clock honest. An empty server list turns SNTP off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeConfig {
    /// SNTP servers, tried in order (`host` or `host:port`).
    pub ntp_servers: Vec<String>,
    /// Seconds between synchronisations.
    pub sync_interval_secs: u64,
    /// Whether the node may set the system clock (the appliance does; a desktop should not).
    pub set_system_clock: bool,
    /// An offset larger than this is stepped at once instead of being reported only
    /// (0 steps on every difference).
    pub step_threshold_ms: u64,
}

impl Default for TimeConfig {
    fn default() -> Self {
        Self {
            ntp_servers: vec!["pool.ntp.org".to_owned()],
            sync_interval_secs: 600,
            set_system_clock: false,
            step_threshold_ms: 1000,
        }
    }
}

/// `[gpio]`: optional buttons and buzzer. Absent hardware is not an error.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GpioConfig {
    /// Whether the node touches GPIO at all.
    pub enabled: bool,
    /// Push buttons, one per `[[gpio.buttons]]` table.
    pub buttons: Vec<ButtonConfig>,
    /// A buzzer or relay pulsed at level changes.
    pub buzzer: Option<BuzzerConfig>,
}

/// One `[[gpio.buttons]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonConfig {
    /// BCM GPIO number (0–27).
    pub pin: u8,
    /// What pressing the button does.
    pub action: ButtonAction,
    /// True when the pin reads low while pressed (button to ground with a pull-up).
    #[serde(default = "default_active_low")]
    pub active_low: bool,
    /// How long the level must stay stable before a press counts.
    #[serde(default = "default_debounce_ms")]
    pub debounce_ms: u64,
}

fn default_active_low() -> bool {
    true
}

fn default_debounce_ms() -> u64 {
    50
}

/// What a hardware button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonAction {
    /// Pause the clock if it runs, resume it if paused.
    PauseResume,
    /// Jump to the next blind level.
    NextLevel,
}

/// `[gpio.buzzer]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuzzerConfig {
    /// BCM GPIO number (0–27).
    pub pin: u8,
    /// How long one pulse lasts.
    #[serde(default = "default_pulse_ms")]
    pub pulse_ms: u64,
}

fn default_pulse_ms() -> u64 {
    200
}

/// `[mdns]`: announce the node as `<hostname>.local`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MdnsConfig {
    /// Whether to announce at all.
    pub enabled: bool,
    /// The name before `.local`.
    pub hostname: String,
}

impl Default for MdnsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            hostname: "pvm".to_owned(),
        }
    }
}

/// `[cast]`: the Chromecast bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CastConfig {
    /// Whether to cast at all.
    pub enabled: bool,
    /// Look for Chromecasts with mDNS (off: only `devices` below).
    pub discovery: bool,
    /// The web receiver to launch; default DashCast (`84912283`).
    pub receiver_app_id: Option<String>,
    /// The receiver's message namespace, with `receiver_app_id`.
    pub receiver_namespace: Option<String>,
    /// Chromecasts typed in by address, for venues whose Wi-Fi blocks multicast.
    pub devices: Vec<CastDeviceConfig>,
}

impl Default for CastConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            discovery: true,
            receiver_app_id: None,
            receiver_namespace: None,
            devices: Vec::new(),
        }
    }
}

/// `[[cast.devices]]`: one Chromecast by address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CastDeviceConfig {
    /// The id the console uses for it (like the mDNS `id`).
    pub id: String,
    pub name: String,
    /// `ip:port`, usually port 8009.
    pub addr: SocketAddr,
}

/// `[engine]`: the single writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Commands that may wait for the writer before callers are told to back off.
    pub queue_depth: usize,
    /// A snapshot is written after this many events, or more for a venue whose state is
    /// large (`engine::SNAPSHOT_BYTES_PER_EVENT`).
    pub snapshot_every_events: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            queue_depth: 1024,
            snapshot_every_events: 1000,
        }
    }
}

/// `[ws]`: WebSocket clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsConfig {
    /// Messages queued for one client before it is dropped as too slow.
    pub client_queue: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self { client_queue: 256 }
    }
}

/// `[cloud]`: how the node talks to the cloud once paired. Optional: every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudConfig {
    /// Seconds between heartbeats.
    pub heartbeat_interval_secs: u64,
    /// Events read from the log and published (acks awaited together) per round.
    pub batch_size: usize,
    /// How long to wait for JetStream to acknowledge a publish before re-sending.
    pub ack_timeout_ms: u64,
    /// Longest wait between reconnection attempts (the wait doubles up to this).
    pub max_backoff_secs: u64,
}

impl Default for CloudConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval_secs: 10,
            batch_size: 1000,
            ack_timeout_ms: 5000,
            max_backoff_secs: 30,
        }
    }
}

/// Why the configuration was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The command line is wrong, or `--help`/`--version` was asked for (clap renders both;
    /// the binary should call `exit()` on it).
    #[error("{0}")]
    Usage(#[from] clap::Error),
    /// A config file named explicitly (flag or environment) does not exist.
    #[error("config file {} (given by {given_by}) does not exist", path.display())]
    MissingFile { path: PathBuf, given_by: String },
    /// The config file exists but cannot be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A mistake at a known place in the config file.
    #[error("{} line {line}, column {column}: {reason}", path.display())]
    InFile {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
    /// A mistake in the config file whose place the parser could not tell.
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    /// A mistake in an environment variable or a command-line flag, named by `origin`.
    #[error("{origin}: {reason}")]
    Setting { origin: String, reason: String },
}

/// Command-line flags. Every flag is optional; unset flags leave the lower layers alone.
#[derive(Debug, Parser)]
#[command(name = "pvm-node", version, about = "Poker Venue Manager node")]
struct Flags {
    /// Config file (default /etc/pvm/node.toml) [env: PVM_CONFIG]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for the event log and snapshots [env: PVM_DATA_DIR]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address for the HTTP/WebSocket API [env: PVM_LISTEN]
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// Name shown on screens and in the fleet [env: PVM_NODE_NAME]
    #[arg(long, value_name = "NAME")]
    node_name: Option<String>,
    /// The name announced over mDNS, before `.local` [env: PVM_MDNS_HOSTNAME]
    #[arg(long, value_name = "NAME")]
    mdns_hostname: Option<String>,
    /// Address people use to reach the node [env: PVM_PUBLIC_URL]
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
}

/// Reads the configuration of this process: its arguments and environment, and
/// [`DEFAULT_CONFIG_PATH`] unless another file is named.
pub fn load_from_process() -> Result<NodeConfig, ConfigError> {
    load(std::env::args_os(), &|name| std::env::var(name).ok())
}

/// Reads the configuration from `args` (including the program name, as `std::env::args_os`
/// gives it) and the environment `env`, with [`DEFAULT_CONFIG_PATH`] as the default file.
pub fn load(
    args: impl IntoIterator<Item = OsString>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<NodeConfig, ConfigError> {
    load_with_default_file(args, env, Path::new(DEFAULT_CONFIG_PATH))
}

/// [`load`] with another default file, for tests and other packaging layouts.
pub fn load_with_default_file(
    args: impl IntoIterator<Item = OsString>,
    env: &dyn Fn(&str) -> Option<String>,
    default_file: &Path,
) -> Result<NodeConfig, ConfigError> {
    let flags = Flags::try_parse_from(args)?;
    // An empty variable counts as unset, as shells and unit files often leave them so.
    let env = |name: &str| env(name).filter(|value| !value.is_empty());

    let (file, file_origin) = match (&flags.config, env("PVM_CONFIG")) {
        (Some(path), _) => (Some(path.clone()), "--config"),
        (None, Some(path)) => (Some(PathBuf::from(path)), "PVM_CONFIG"),
        (None, None) => (None, "default"),
    };
    let source = match file {
        Some(path) => Some(read_file(&path)?.ok_or_else(|| ConfigError::MissingFile {
            path: path.clone(),
            given_by: file_origin.to_owned(),
        })?),
        None => read_file(default_file)?,
    };

    let mut config = match &source {
        Some(file) => parse_file(file)?,
        None => NodeConfig::default(),
    };
    let mut origins = Origins::default();

    let overrides = [
        (
            Field::DataDir,
            "PVM_DATA_DIR",
            flags.data_dir.map(OsString::from),
        ),
        (
            Field::Listen,
            "PVM_LISTEN",
            flags.listen.map(OsString::from),
        ),
        (
            Field::NodeName,
            "PVM_NODE_NAME",
            flags.node_name.map(OsString::from),
        ),
        (
            Field::PublicUrl,
            "PVM_PUBLIC_URL",
            flags.public_url.map(OsString::from),
        ),
        // The appliance's pvm-firstboot writes this from pvm.toml's `hostname`, so phones find
        // the node under the name the venue gave the box (the file's `[mdns]` is read-only).
        (
            Field::MdnsHostname,
            "PVM_MDNS_HOSTNAME",
            flags.mdns_hostname.map(OsString::from),
        ),
    ];
    for (field, env_name, flag_value) in overrides {
        if let Some(value) = env(env_name) {
            let origin = format!("environment variable {env_name}");
            apply(&mut config, field, value.into(), &origin)?;
            origins.set(field, origin);
        }
        if let Some(value) = flag_value {
            let origin = format!("flag {}", field.flag());
            apply(&mut config, field, value, &origin)?;
            origins.set(field, origin);
        }
    }

    if let Err(problem) = validate(&config) {
        return Err(locate(problem, &origins, source.as_ref()));
    }
    Ok(config)
}

/// The text of a config file and where it came from.
struct SourceFile {
    path: PathBuf,
    text: String,
}

/// `Ok(None)` when the file does not exist; the caller decides whether that is fine.
fn read_file(path: &Path) -> Result<Option<SourceFile>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(SourceFile {
            path: path.to_owned(),
            text,
        })),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn parse_file(file: &SourceFile) -> Result<NodeConfig, ConfigError> {
    toml::from_str(&file.text)
        .map_err(|error| file_error(file, error.span(), error.message().trim_end().to_owned()))
}

fn file_error(file: &SourceFile, span: Option<Range<usize>>, reason: String) -> ConfigError {
    match span {
        Some(span) => {
            let (line, column) = line_and_column(&file.text, span.start);
            ConfigError::InFile {
                path: file.path.clone(),
                line,
                column,
                reason,
            }
        }
        None => ConfigError::File {
            path: file.path.clone(),
            reason,
        },
    }
}

/// 1-based line and column (in characters, as editors count) of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

fn deserialize_listen<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_listen(&text).map_err(serde::de::Error::custom)
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "listen address `{text}` is not an address and port; write it like 0.0.0.0:8080 \
             or [::]:8080"
        )
    })
}

/// The top-level settings that the environment and flags may override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    DataDir,
    Listen,
    NodeName,
    PublicUrl,
    MdnsHostname,
}

impl Field {
    /// Where the field is in the file: a top-level key, or a table and its key.
    fn key(self) -> &'static [&'static str] {
        match self {
            Field::DataDir => &["data_dir"],
            Field::Listen => &["listen"],
            Field::NodeName => &["node_name"],
            Field::PublicUrl => &["public_url"],
            Field::MdnsHostname => &["mdns", "hostname"],
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Field::DataDir => "--data-dir",
            Field::Listen => "--listen",
            Field::NodeName => "--node-name",
            Field::PublicUrl => "--public-url",
            Field::MdnsHostname => "--mdns-hostname",
        }
    }
}

fn apply(
    config: &mut NodeConfig,
    field: Field,
    value: OsString,
    origin: &str,
) -> Result<(), ConfigError> {
    let text = |value: OsString| {
        value.into_string().map_err(|_| ConfigError::Setting {
            origin: origin.to_owned(),
            reason: "the value is not valid UTF-8".to_owned(),
        })
    };
    match field {
        Field::DataDir => config.data_dir = PathBuf::from(value),
        Field::Listen => {
            config.listen = parse_listen(&text(value)?).map_err(|reason| ConfigError::Setting {
                origin: origin.to_owned(),
                reason,
            })?;
        }
        Field::NodeName => config.node_name = text(value)?,
        Field::PublicUrl => config.public_url = Some(text(value)?),
        Field::MdnsHostname => config.mdns.hostname = text(value)?,
    }
    Ok(())
}

/// Which layer last set each overridable field; absent means the file (or the default).
#[derive(Debug, Default)]
struct Origins {
    set: Vec<(Field, String)>,
}

impl Origins {
    fn set(&mut self, field: Field, origin: String) {
        self.set.retain(|(known, _)| *known != field);
        self.set.push((field, origin));
    }

    fn of(&self, key: &[Segment]) -> Option<&str> {
        let names: Option<Vec<&str>> = key
            .iter()
            .map(|segment| match segment {
                Segment::Key(name) => Some(*name),
                Segment::Index(_) => None,
            })
            .collect();
        let names = names?;
        self.set
            .iter()
            .find(|(field, _)| field.key() == names.as_slice())
            .map(|(_, origin)| origin.as_str())
    }
}

/// One step of the path to a setting: a table key or an array index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Key(&'static str),
    Index(usize),
}

/// A semantic mistake: which setting, and why.
#[derive(Debug)]
struct Problem {
    path: Vec<Segment>,
    reason: String,
}

fn problem(path: Vec<Segment>, reason: impl Into<String>) -> Problem {
    Problem {
        path,
        reason: reason.into(),
    }
}

fn dotted(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// Points a semantic problem at the layer that set the value: flag, environment or file line.
fn locate(problem: Problem, origins: &Origins, file: Option<&SourceFile>) -> ConfigError {
    if let Some(origin) = origins.of(&problem.path) {
        return ConfigError::Setting {
            origin: origin.to_owned(),
            reason: problem.reason,
        };
    }
    match file {
        Some(file) => file_error(
            file,
            span_in_file(&file.text, &problem.path),
            problem.reason,
        ),
        // Only the defaults are left, and they are valid; say so rather than panic if not.
        None => ConfigError::Setting {
            origin: "built-in default".to_owned(),
            reason: problem.reason,
        },
    }
}

fn span_in_file(text: &str, path: &[Segment]) -> Option<Range<usize>> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let root_span = root.span();
    let mut value = toml::de::DeValue::Table(root.into_inner());
    let mut span = root_span;
    for segment in path {
        let next = match segment {
            Segment::Key(key) => value.get(*key),
            Segment::Index(index) => value.get(*index),
        }?;
        span = next.span();
        value = next.get_ref().clone();
    }
    Some(span)
}

/// Checks what serde cannot: ranges, non-zero intervals, pins used twice, name syntax.
fn validate(config: &NodeConfig) -> Result<(), Problem> {
    use Segment::{Index, Key};

    if config.node_name.trim().is_empty() {
        return Err(problem(
            vec![Key("node_name")],
            "node_name must not be empty",
        ));
    }
    if config.data_dir.as_os_str().is_empty() {
        return Err(problem(vec![Key("data_dir")], "data_dir must not be empty"));
    }
    if let Some(url) = &config.public_url {
        let has_scheme = url.starts_with("http://") || url.starts_with("https://");
        if !has_scheme || url.contains(char::is_whitespace) {
            return Err(problem(
                vec![Key("public_url")],
                format!(
                    "public_url `{url}` must be a web address starting with http:// or https://"
                ),
            ));
        }
    }

    for (index, server) in config.time.ntp_servers.iter().enumerate() {
        if server.trim().is_empty() {
            return Err(problem(
                vec![Key("time"), Key("ntp_servers"), Index(index)],
                "time.ntp_servers must not contain an empty server name",
            ));
        }
    }
    let zero_is_meaningless = [
        (
            vec![Key("time"), Key("sync_interval_secs")],
            config.time.sync_interval_secs == 0,
        ),
        (
            vec![Key("engine"), Key("queue_depth")],
            config.engine.queue_depth == 0,
        ),
        (
            vec![Key("engine"), Key("snapshot_every_events")],
            config.engine.snapshot_every_events == 0,
        ),
        (
            vec![Key("ws"), Key("client_queue")],
            config.ws.client_queue == 0,
        ),
        (
            vec![Key("cloud"), Key("heartbeat_interval_secs")],
            config.cloud.heartbeat_interval_secs == 0,
        ),
        (
            vec![Key("cloud"), Key("batch_size")],
            config.cloud.batch_size == 0,
        ),
        (
            vec![Key("cloud"), Key("ack_timeout_ms")],
            config.cloud.ack_timeout_ms == 0,
        ),
        (
            vec![Key("cloud"), Key("max_backoff_secs")],
            config.cloud.max_backoff_secs == 0,
        ),
    ];
    for (path, is_zero) in zero_is_meaningless {
        if is_zero {
            let name = dotted(&path);
            return Err(problem(path, format!("{name} must be greater than 0")));
        }
    }

    validate_gpio(&config.gpio)?;

    let hostname = &config.mdns.hostname;
    if !is_dns_label(hostname) {
        return Err(problem(
            vec![Key("mdns"), Key("hostname")],
            format!(
                "mdns.hostname `{hostname}` must be 1 to 63 letters, digits or hyphens, not \
                 starting or ending with a hyphen (it becomes {hostname}.local)"
            ),
        ));
    }
    Ok(())
}

fn validate_gpio(gpio: &GpioConfig) -> Result<(), Problem> {
    use Segment::{Index, Key};

    let mut used: Vec<(u8, String)> = Vec::new();
    let mut claim = |pin: u8, path: Vec<Segment>| -> Result<(), Problem> {
        let name = dotted(&path[..path.len().saturating_sub(1)]);
        if pin > MAX_GPIO_PIN {
            return Err(problem(
                path,
                format!("{name}: pin {pin} does not exist; GPIO pins are 0 to {MAX_GPIO_PIN}"),
            ));
        }
        if let Some((_, owner)) = used.iter().find(|(taken, _)| *taken == pin) {
            return Err(problem(
                path,
                format!("{name}: pin {pin} is already used by {owner}"),
            ));
        }
        used.push((pin, name));
        Ok(())
    };

    for (index, button) in gpio.buttons.iter().enumerate() {
        let at = |field| vec![Key("gpio"), Key("buttons"), Index(index), Key(field)];
        claim(button.pin, at("pin"))?;
        if button.debounce_ms == 0 {
            return Err(problem(
                at("debounce_ms"),
                format!("gpio.buttons[{index}].debounce_ms must be greater than 0"),
            ));
        }
    }
    if let Some(buzzer) = &gpio.buzzer {
        claim(buzzer.pin, vec![Key("gpio"), Key("buzzer"), Key("pin")])?;
        if buzzer.pulse_ms == 0 {
            return Err(problem(
                vec![Key("gpio"), Key("buzzer"), Key("pulse_ms")],
                "gpio.buzzer.pulse_ms must be greater than 0",
            ));
        }
    }
    Ok(())
}

fn is_dns_label(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters_from_one() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_and_column(text, 0), (1, 1));
        let second_equals = text.rfind('=').unwrap();
        assert_eq!(line_and_column(text, second_equals), (2, 4));
    }

    #[test]
    fn span_lookup_finds_values_inside_arrays_of_tables() {
        let text = "[gpio]\nenabled = true\n\n[[gpio.buttons]]\npin = 5\naction = \"next_level\"\n\n[[gpio.buttons]]\npin = 99\naction = \"next_level\"\n";
        let path = [
            Segment::Key("gpio"),
            Segment::Key("buttons"),
            Segment::Index(1),
            Segment::Key("pin"),
        ];
        let span = span_in_file(text, &path).unwrap();
        assert_eq!(&text[span.clone()], "99");
        assert_eq!(line_and_column(text, span.start), (9, 7));
    }

    #[test]
    fn dns_labels_are_checked() {
        assert!(is_dns_label("pvm"));
        assert!(is_dns_label("club-7"));
        assert!(!is_dns_label(""));
        assert!(!is_dns_label("-pvm"));
        assert!(!is_dns_label("p v m"));
        assert!(!is_dns_label(&"a".repeat(64)));
    }
}
