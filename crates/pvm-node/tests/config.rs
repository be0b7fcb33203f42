//! The config loader: layers (defaults, file, environment, flags) and how mistakes are reported.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use pvm_node::config::{
    load_with_default_file, ButtonAction, ButtonConfig, BuzzerConfig, ConfigError, NodeConfig,
};

fn args(list: &[&str]) -> Vec<OsString> {
    std::iter::once("pvm-node")
        .chain(list.iter().copied())
        .map(OsString::from)
        .collect()
}

fn env_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A default-file path that does not exist, so the machine's /etc is never read.
    fn absent_default(&self) -> PathBuf {
        self.dir.path().join("no-such-default.toml")
    }

    fn load(
        &self,
        flags: &[&str],
        env: &[(&str, &str)],
        default_file: &Path,
    ) -> Result<NodeConfig, ConfigError> {
        let env = env_of(env);
        load_with_default_file(args(flags), &|name| env.get(name).cloned(), default_file)
    }

    fn load_file(&self, text: &str) -> Result<NodeConfig, ConfigError> {
        let path = self.write("node.toml", text);
        let flag = path.to_str().unwrap().to_owned();
        self.load(&["--config", &flag], &[], &self.absent_default())
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// The error's message, after checking it points at `line` of the file.
fn file_error_at(error: ConfigError, line: usize) -> String {
    match &error {
        ConfigError::InFile { line: found, .. } => {
            assert_eq!(*found, line, "wrong line in: {error}");
        }
        other => panic!("expected an error with a file position, got {other:?}"),
    }
    error.to_string()
}

#[test]
fn without_file_env_or_flags_the_desktop_defaults_apply() {
    let fx = Fixture::new();
    let config = fx.load(&[], &[], &fx.absent_default()).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("./data"));
    assert_eq!(config.listen, addr("0.0.0.0:8080"));
    assert_eq!(config.mdns.hostname, "pvm");
    assert!(config.mdns.enabled);
    assert!(!config.gpio.enabled);
    assert!(config.public_url.is_none());
    assert!(config.time.sync_interval_secs > 0);
    assert_eq!(config, NodeConfig::default());
}

#[test]
fn default_file_is_read_when_present() {
    let fx = Fixture::new();
    let default_file = fx.write("default.toml", "node_name = \"club\"\n");
    let config = fx.load(&[], &[], &default_file).unwrap();
    assert_eq!(config.node_name, "club");
}

#[test]
fn file_values_override_defaults_and_untouched_ones_stay_default() {
    let fx = Fixture::new();
    let config = fx
        .load_file(
            r#"
data_dir = "/var/lib/pvm"
listen = "127.0.0.1:9000"
node_name = "Casino Royale"
public_url = "https://pvm.example"

[time]
ntp_servers = ["ntp1.example", "ntp2.example:123"]
sync_interval_secs = 60
set_system_clock = true
step_threshold_ms = 250

[gpio]
enabled = true
buzzer = { pin = 18, pulse_ms = 300 }

[[gpio.buttons]]
pin = 17
action = "pause_resume"

[[gpio.buttons]]
pin = 27
action = "next_level"
active_low = false
debounce_ms = 20

[mdns]
hostname = "royale"

[engine]
queue_depth = 64
snapshot_every_events = 500

[ws]
client_queue = 32
"#,
        )
        .unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/pvm"));
    assert_eq!(config.listen, addr("127.0.0.1:9000"));
    assert_eq!(config.node_name, "Casino Royale");
    assert_eq!(config.public_url.as_deref(), Some("https://pvm.example"));
    assert_eq!(
        config.time.ntp_servers,
        vec!["ntp1.example".to_owned(), "ntp2.example:123".to_owned()]
    );
    assert_eq!(config.time.sync_interval_secs, 60);
    assert!(config.time.set_system_clock);
    assert_eq!(config.time.step_threshold_ms, 250);
    assert!(config.gpio.enabled);
    assert_eq!(
        config.gpio.buttons,
        vec![
            ButtonConfig {
                pin: 17,
                action: ButtonAction::PauseResume,
                active_low: true,
                debounce_ms: 50,
            },
            ButtonConfig {
                pin: 27,
                action: ButtonAction::NextLevel,
                active_low: false,
                debounce_ms: 20,
            },
        ]
    );
    assert_eq!(
        config.gpio.buzzer,
        Some(BuzzerConfig {
            pin: 18,
            pulse_ms: 300
        })
    );
    assert!(config.mdns.enabled, "mdns.enabled keeps its default");
    assert_eq!(config.mdns.hostname, "royale");
    assert_eq!(config.engine.queue_depth, 64);
    assert_eq!(config.engine.snapshot_every_events, 500);
    assert_eq!(config.ws.client_queue, 32);
}

#[test]
fn environment_overrides_file() {
    let fx = Fixture::new();
    let file = fx.write(
        "node.toml",
        "data_dir = \"/from/file\"\nlisten = \"127.0.0.1:1\"\nnode_name = \"file\"\n",
    );
    let config = fx
        .load(
            &[],
            &[
                ("PVM_CONFIG", file.to_str().unwrap()),
                ("PVM_DATA_DIR", "/from/env"),
                ("PVM_LISTEN", "127.0.0.1:2"),
            ],
            &fx.absent_default(),
        )
        .unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/from/env"));
    assert_eq!(config.listen, addr("127.0.0.1:2"));
    assert_eq!(config.node_name, "file", "not overridden, so the file wins");
}

#[test]
fn flags_override_environment() {
    let fx = Fixture::new();
    let env_file = fx.write("env.toml", "node_name = \"env-file\"\n");
    let flag_file = fx.write("flag.toml", "node_name = \"flag-file\"\n");
    let config = fx
        .load(
            &[
                "--config",
                flag_file.to_str().unwrap(),
                "--data-dir",
                "/from/flag",
                "--listen",
                "[::1]:3",
            ],
            &[
                ("PVM_CONFIG", env_file.to_str().unwrap()),
                ("PVM_DATA_DIR", "/from/env"),
                ("PVM_LISTEN", "127.0.0.1:2"),
            ],
            &fx.absent_default(),
        )
        .unwrap();
    assert_eq!(config.node_name, "flag-file", "--config beats PVM_CONFIG");
    assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
    assert_eq!(config.listen, addr("[::1]:3"));
}

#[test]
fn empty_environment_variable_counts_as_unset() {
    let fx = Fixture::new();
    let config = fx
        .load(&[], &[("PVM_LISTEN", "")], &fx.absent_default())
        .unwrap();
    assert_eq!(config.listen, addr("0.0.0.0:8080"));
}

#[test]
fn unknown_field_names_its_line_column_and_the_expected_fields() {
    let fx = Fixture::new();
    let message = file_error_at(
        fx.load_file("# node\ndata_dir = \"/x\"\n\nlistn = \"0.0.0.0:80\"\n")
            .unwrap_err(),
        4,
    );
    assert!(message.contains("node.toml line 4, column 1:"), "{message}");
    assert!(message.contains("unknown field `listn`"), "{message}");
    assert!(message.contains("`listen`"), "{message}");
}

#[test]
fn unknown_field_inside_a_section_is_refused() {
    let fx = Fixture::new();
    let message = file_error_at(
        fx.load_file("[time]\nntp_server = [\"a\"]\n").unwrap_err(),
        2,
    );
    assert!(message.contains("unknown field `ntp_server`"), "{message}");
    assert!(message.contains("`ntp_servers`"), "{message}");
}

#[test]
fn wrong_type_names_its_line_and_the_expected_type() {
    let fx = Fixture::new();
    let message = file_error_at(
        fx.load_file("[engine]\nqueue_depth = \"lots\"\n")
            .unwrap_err(),
        2,
    );
    assert!(message.contains("line 2, column 15"), "{message}");
    assert!(message.contains("invalid type"), "{message}");
}

#[test]
fn unknown_button_action_lists_the_actions() {
    let fx = Fixture::new();
    let message = file_error_at(
        fx.load_file("[[gpio.buttons]]\npin = 5\naction = \"rewind\"\n")
            .unwrap_err(),
        3,
    );
    assert!(message.contains("rewind"), "{message}");
    assert!(message.contains("pause_resume"), "{message}");
    assert!(message.contains("next_level"), "{message}");
}

#[test]
fn toml_syntax_error_names_its_line() {
    let fx = Fixture::new();
    let message = file_error_at(
        fx.load_file("node_name = \"a\"\nlisten = \n").unwrap_err(),
        2,
    );
    assert!(message.contains("node.toml line 2"), "{message}");
}

#[test]
fn listen_that_is_not_a_socket_address_is_refused_at_its_line() {
    let fx = Fixture::new();
    let message = file_error_at(
        fx.load_file("node_name = \"a\"\n\nlisten = \"localhost\"\n")
            .unwrap_err(),
        3,
    );
    assert!(message.contains("line 3, column 10"), "{message}");
    assert!(message.contains("`localhost`"), "{message}");
    assert!(message.contains("0.0.0.0:8080"), "{message}");
}

#[test]
fn bad_listen_from_environment_names_the_variable() {
    let fx = Fixture::new();
    let error = fx
        .load(&[], &[("PVM_LISTEN", "8080")], &fx.absent_default())
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("environment variable PVM_LISTEN:"),
        "{message}"
    );
    assert!(message.contains("`8080`"), "{message}");
}

#[test]
fn bad_listen_flag_names_the_flag() {
    let fx = Fixture::new();
    let message = fx
        .load(&["--listen", "nope"], &[], &fx.absent_default())
        .unwrap_err()
        .to_string();
    assert!(message.starts_with("flag --listen:"), "{message}");
}

#[test]
fn pin_out_of_range_names_its_line() {
    let fx = Fixture::new();
    let message = file_error_at(
        fx.load_file(
            "[gpio]\nenabled = true\n\n[[gpio.buttons]]\npin = 4\naction = \"next_level\"\n\n[[gpio.buttons]]\npin = 40\naction = \"pause_resume\"\n",
        )
        .unwrap_err(),
        9,
    );
    assert!(message.contains("line 9, column 7"), "{message}");
    assert!(message.contains("gpio.buttons[1]"), "{message}");
    assert!(message.contains("pin 40 does not exist"), "{message}");
}

#[test]
fn negative_pin_is_refused_as_wrong_value() {
    let fx = Fixture::new();
    let message = file_error_at(fx.load_file("[gpio.buzzer]\npin = -1\n").unwrap_err(), 2);
    assert!(message.contains("-1"), "{message}");
}

#[test]
fn pin_used_twice_names_the_first_user() {
    let fx = Fixture::new();
    let message = file_error_at(
        fx.load_file(
            "[[gpio.buttons]]\npin = 17\naction = \"next_level\"\n\n[gpio.buzzer]\npin = 17\n",
        )
        .unwrap_err(),
        6,
    );
    assert!(
        message.contains("pin 17 is already used by gpio.buttons[0]"),
        "{message}"
    );
}

#[test]
fn zero_interval_names_its_line_and_field() {
    let fx = Fixture::new();
    let message = file_error_at(
        fx.load_file("[time]\nset_system_clock = true\nsync_interval_secs = 0\n")
            .unwrap_err(),
        3,
    );
    assert!(
        message.contains("time.sync_interval_secs must be greater than 0"),
        "{message}"
    );
}

#[test]
fn zero_queue_and_pulse_are_refused() {
    let fx = Fixture::new();
    let ws = fx.load_file("[ws]\nclient_queue = 0\n").unwrap_err();
    assert!(file_error_at(ws, 2).contains("ws.client_queue must be greater than 0"));
    let engine = fx
        .load_file("[engine]\nqueue_depth = 8\nsnapshot_every_events = 0\n")
        .unwrap_err();
    assert!(
        file_error_at(engine, 3).contains("engine.snapshot_every_events must be greater than 0")
    );
    let buzzer = fx
        .load_file("[gpio]\nbuzzer = { pin = 18, pulse_ms = 0 }\n")
        .unwrap_err();
    assert!(file_error_at(buzzer, 2).contains("gpio.buzzer.pulse_ms must be greater than 0"));
}

#[test]
fn bad_mdns_hostname_is_refused() {
    let fx = Fixture::new();
    let message = file_error_at(
        fx.load_file("[mdns]\nhostname = \"poker room\"\n")
            .unwrap_err(),
        2,
    );
    assert!(message.contains("`poker room`"), "{message}");
}

#[test]
fn public_url_without_scheme_from_flag_names_the_flag() {
    let fx = Fixture::new();
    let message = fx
        .load(&["--public-url", "pvm.local"], &[], &fx.absent_default())
        .unwrap_err()
        .to_string();
    assert!(message.starts_with("flag --public-url:"), "{message}");
}

#[test]
fn explicit_missing_file_is_an_error_naming_who_asked_for_it() {
    let fx = Fixture::new();
    let missing = fx.dir.path().join("missing.toml");
    let missing = missing.to_str().unwrap();

    let by_flag = fx
        .load(&["--config", missing], &[], &fx.absent_default())
        .unwrap_err();
    assert!(matches!(by_flag, ConfigError::MissingFile { .. }));
    assert!(by_flag.to_string().contains("--config"), "{by_flag}");
    assert!(by_flag.to_string().contains(missing), "{by_flag}");

    let by_env = fx
        .load(&[], &[("PVM_CONFIG", missing)], &fx.absent_default())
        .unwrap_err();
    assert!(by_env.to_string().contains("PVM_CONFIG"), "{by_env}");
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let fx = Fixture::new();
    let error = fx
        .load(&["--data-dri", "/x"], &[], &fx.absent_default())
        .unwrap_err();
    assert!(matches!(error, ConfigError::Usage(_)), "{error:?}");
}

#[test]
fn config_round_trips_through_toml() {
    let original = NodeConfig::default();
    let text = toml::to_string(&original).unwrap();
    let fx = Fixture::new();
    assert_eq!(fx.load_file(&text).unwrap(), original);
}

#[test]
fn the_mdns_hostname_from_the_environment_overrides_the_files_mdns_section() {
    let fx = Fixture::new();
    // The appliance's read-only node.toml, and the node.env pvm-firstboot writes from pvm.toml.
    let file = fx.write(
        "node.toml",
        "node_name = \"pvm\"\n[mdns]\nenabled = true\nhostname = \"pvm\"\n",
    );
    let config = fx
        .load(
            &[],
            &[
                ("PVM_CONFIG", file.to_str().unwrap()),
                ("PVM_MDNS_HOSTNAME", "river-room"),
            ],
            &fx.absent_default(),
        )
        .unwrap();
    assert_eq!(config.mdns.hostname, "river-room");
    assert!(config.mdns.enabled, "the rest of [mdns] stays the file's");

    let config = fx
        .load(
            &["--mdns-hostname", "bar-two"],
            &[("PVM_MDNS_HOSTNAME", "river-room")],
            &fx.absent_default(),
        )
        .unwrap();
    assert_eq!(
        config.mdns.hostname, "bar-two",
        "the flag beats the environment"
    );
}

#[test]
fn a_bad_mdns_hostname_from_the_environment_names_the_variable_not_the_file() {
    let fx = Fixture::new();
    let file = fx.write("node.toml", "[mdns]\nhostname = \"pvm\"\n");
    let error = fx
        .load(
            &[],
            &[
                ("PVM_CONFIG", file.to_str().unwrap()),
                ("PVM_MDNS_HOSTNAME", "river room"),
            ],
            &fx.absent_default(),
        )
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("environment variable PVM_MDNS_HOSTNAME:"),
        "{message}"
    );
    assert!(message.contains("river room"), "{message}");
}
