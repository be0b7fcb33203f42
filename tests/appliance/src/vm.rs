//! QEMU running one card, booted again through the firmware stand-in after every reboot.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::disk::Disk;
use crate::error::{Error, Result};
use crate::firmware;
use crate::screen::Screen;

#[derive(Clone, Debug)]
pub struct VmOptions {
    pub memory_mib: u32,
    pub cpus: u32,
    /// The guest port the node listens on; forwarded to a free port on 127.0.0.1.
    pub guest_http_port: u16,
    /// Boots allowed before the harness calls it a boot loop and stops the machine.
    pub max_boots: usize,
    /// Extra words for every kernel command line (after cmdline.txt's).
    pub extra_cmdline: String,
    /// A host file handed to the guest as the read-only disk `/dev/vdb` (e.g. an update
    /// bundle: the guest has no network to fetch one, and the serial line is too slow).
    pub attachment: Option<PathBuf>,
}

impl Default for VmOptions {
    fn default() -> Self {
        VmOptions {
            memory_mib: 1024,
            cpus: 2,
            guest_http_port: 80,
            max_boots: 12,
            extra_cmdline: String::new(),
            attachment: None,
        }
    }
}

/// How a boot ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootEnd {
    /// The guest rebooted (or powered off, or panicked into a reboot): QEMU runs with
    /// `-no-reboot`, so either returns control to the harness, which boots the card again.
    GuestExit,
    /// [`Vm::power_cut`]: QEMU killed mid-flight, as if the power had gone.
    PowerCut,
    /// [`Vm::stop`].
    Stopped,
    /// QEMU itself failed; the harness stops booting.
    QemuFailed(String),
}

/// One boot of the card, as the firmware stand-in chose it.
#[derive(Clone, Debug)]
pub struct Boot {
    /// 0 for the first boot of this VM, then 1, 2, …
    pub number: usize,
    pub partition: u32,
    pub tryboot: bool,
    pub cmdline: String,
    pub started: Instant,
    pub end: Option<BootEnd>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutput {
    pub status: i32,
    /// stdout and stderr, interleaved as the guest wrote them.
    pub output: String,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

#[derive(Default)]
struct State {
    boots: Vec<Boot>,
    child: Option<Child>,
    stop: bool,
    power_cut: bool,
    /// Why the machine no longer boots (bad autoboot.txt, empty slot, boot loop, QEMU error).
    halted: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Only one VM per test process: two emulated guests on two cores would starve each other.
static RUNNING: Mutex<bool> = Mutex::new(false);
static RUNNING_FREED: Condvar = Condvar::new();

struct OneAtATime;

impl OneAtATime {
    fn take() -> OneAtATime {
        let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        while *running {
            running = RUNNING_FREED
                .wait(running)
                .unwrap_or_else(|p| p.into_inner());
        }
        *running = true;
        OneAtATime
    }
}

impl Drop for OneAtATime {
    fn drop(&mut self) {
        *RUNNING.lock().unwrap_or_else(|p| p.into_inner()) = false;
        RUNNING_FREED.notify_one();
    }
}

pub struct Vm {
    shared: Arc<Shared>,
    supervisor: Option<JoinHandle<()>>,
    run_dir: PathBuf,
    tmp: Option<tempfile::TempDir>,
    disk: Disk,
    http_port: u16,
    shell: Mutex<Option<(usize, UnixStream)>>,
    next_id: AtomicU64,
    http: reqwest::blocking::Client,
    _slot: OneAtATime,
}

fn free_port() -> Result<u16> {
    // A small race (someone may take it before QEMU binds it) that loopback tests can live with.
    let l = TcpListener::bind("127.0.0.1:0").map_err(Error::io("finding a free port"))?;
    Ok(l.local_addr()
        .map_err(Error::io("finding a free port"))?
        .port())
}

fn socket(dir: &Path, kind: &str, boot: usize) -> PathBuf {
    dir.join(format!("{kind}-{boot}.sock"))
}

impl Vm {
    /// Powers the card on: the firmware stand-in picks a slot and QEMU boots it, and again after
    /// every reboot until [`Vm::stop`]. Returns at once; see [`Vm::wait_healthy`].
    pub fn start(disk: Disk, options: VmOptions) -> Result<Vm> {
        let slot = OneAtATime::take();
        for tool in ["qemu-system-x86_64", "mcopy", "mdir", "sfdisk"] {
            which(tool)?;
        }
        // Unix socket paths must stay short, so the run dir is in /tmp, not beside the card.
        let tmp = tempfile::Builder::new()
            .prefix("pvm-vm-")
            .tempdir()
            .map_err(Error::io("creating the VM's run dir"))?;
        let run_dir = tmp.path().to_path_buf();
        let http_port = free_port()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let supervisor = {
            let (shared, disk, dir) = (shared.clone(), disk.clone(), run_dir.clone());
            std::thread::Builder::new()
                .name("pvm-vm".into())
                .spawn(move || supervise(&shared, &disk, &dir, &options, http_port))
                .map_err(Error::io("starting the VM thread"))?
        };
        let http = reqwest::blocking::Client::builder()
            // Generous: the guest runs under TCG emulation, where one argon2id hash (setup,
            // login) takes seconds.
            .timeout(Duration::from_secs(120))
            .build()?;
        Ok(Vm {
            shared,
            supervisor: Some(supervisor),
            run_dir,
            tmp: Some(tmp),
            disk,
            http_port,
            shell: Mutex::new(None),
            next_id: AtomicU64::new(1),
            http,
            _slot: slot,
        })
    }

    pub fn disk(&self) -> &Disk {
        &self.disk
    }

    /// The run dir: `console.log` (ttyS0 of every boot), `qemu.log`, sockets, screendumps.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The host port forwarded to the guest's HTTP port.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// `http://127.0.0.1:<port>` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    /// A blocking HTTP client for talking to the guest.
    pub fn http(&self) -> &reqwest::blocking::Client {
        &self.http
    }

    /// Every boot so far, oldest first.
    pub fn boots(&self) -> Vec<Boot> {
        self.shared.lock().boots.clone()
    }

    /// The boot running now, if any.
    pub fn current_boot(&self) -> Option<Boot> {
        self.shared
            .lock()
            .boots
            .last()
            .filter(|b| b.end.is_none())
            .cloned()
    }

    /// Why the machine stopped booting, if it did.
    pub fn halted(&self) -> Option<String> {
        self.shared.lock().halted.clone()
    }

    /// Everything the guests printed on their console (ttyS0), all boots.
    pub fn console_log(&self) -> String {
        std::fs::read(self.run_dir.join("console.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of the console, for failure messages.
    pub fn console_tail(&self, lines: usize) -> String {
        let log = self.console_log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Waits until boot number `number` (0-based) has started.
    pub fn wait_boot(&self, number: usize, timeout: Duration) -> Result<Boot> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if let Some(b) = st.boots.get(number) {
                return Ok(b.clone());
            }
            if let Some(why) = &st.halted {
                return Err(Error::Stopped(why.clone()));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout {
                    what: format!("boot {number}"),
                    secs: timeout.as_secs(),
                });
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Polls `/healthz` until it answers 200; returns how long the current boot took to get
    /// there (from QEMU's start).
    pub fn wait_healthy(&self, timeout: Duration) -> Result<Duration> {
        let deadline = Instant::now() + timeout;
        let probe = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()?;
        loop {
            if let Some(why) = self.halted() {
                return Err(Error::Stopped(why));
            }
            if let Some(boot) = self.current_boot() {
                if let Ok(r) = probe.get(self.url("/healthz")).send() {
                    if r.status().is_success() {
                        return Ok(boot.started.elapsed());
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("the node to answer /healthz\n{}", self.console_tail(30)),
                    secs: timeout.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn shell_for(&self, boot: usize, deadline: Instant) -> Result<UnixStream> {
        let path = socket(&self.run_dir, "shell", boot);
        loop {
            if let Ok(s) = UnixStream::connect(&path) {
                return Ok(s);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("the serial shell socket {}", path.display()),
                    secs: 0,
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs `script` with bash as root in the guest, over the second serial port (ttyS1), and
    /// returns its exit status and output. Waits for the guest's shell to come up (so it can be
    /// called right after a boot starts). A script that reboots the guest never returns its
    /// status: use [`Vm::reboot`] or [`Vm::run_detached`] for those.
    pub fn run(&self, script: &str, timeout: Duration) -> Result<CommandOutput> {
        let deadline = Instant::now() + timeout;
        let boot = self
            .current_boot()
            .ok_or_else(|| Error::Stopped(self.halted().unwrap_or_else(|| "not running".into())))?;
        let mut guard = self.shell.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().map(|(b, _)| *b) != Some(boot.number) {
            *guard = None;
            let stream = self.shell_for(boot.number, deadline)?;
            *guard = Some((boot.number, stream));
        }
        let Some((_, stream)) = guard.as_mut() else {
            return Err(Error::Stopped("no serial shell".into()));
        };
        let result = self.exchange(stream, script, deadline, timeout);
        if result.is_err() {
            // A half-read answer would confuse the next command: start afresh.
            *guard = None;
        }
        result
    }

    fn exchange(
        &self,
        stream: &mut UnixStream,
        script: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<CommandOutput> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let io = Error::io("serial shell");
        // The markers are written so the command line never contains them verbatim: only the
        // guest's output can match, whatever the line discipline echoes.
        // Until the guest's shell reads the port, what is sent may be lost: ask it to say
        // something until it does, then send the command.
        let ready = format!("@@READY {id}@@");
        let mut seen = Vec::new();
        let mut last_probe = None::<Instant>;
        loop {
            if last_probe.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) {
                stream
                    .write_all(format!("echo @@READY\" \"{id}@@\n").as_bytes())
                    .map_err(Error::io("serial shell"))?;
                last_probe = Some(Instant::now());
            }
            read_some(stream, &mut seen, deadline)?;
            if contains(&seen, ready.as_bytes()) {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: "the guest's serial shell".into(),
                    secs: timeout.as_secs(),
                });
            }
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(script);
        // /run, not /tmp: the shell starts early, and /tmp (a tmpfs over the read-only root)
        // may not be mounted yet, or be mounted over the script between writing and running it.
        let line = format!(
            "printf %s {b64} | base64 -d >/run/.pvm-cmd-{id}; echo @@BEGIN\" \"{id}@@; \
             bash /run/.pvm-cmd-{id} </dev/null 2>&1; echo \"@@END\" {id} \"$?@@\"\n"
        );
        stream.write_all(line.as_bytes()).map_err(io)?;
        let begin = format!("@@BEGIN {id}@@\n");
        let end = format!("@@END {id} ");
        let mut buf = Vec::new();
        loop {
            read_some(stream, &mut buf, deadline)?;
            let text = String::from_utf8_lossy(&buf);
            if let (Some(b), Some(e)) = (text.find(&begin), text.find(&end)) {
                let rest = &text[e + end.len()..];
                if let Some(close) = rest.find("@@") {
                    let status = rest[..close].trim().parse().unwrap_or(-1);
                    let output = text.get(b + begin.len()..e).unwrap_or_default().to_owned();
                    return Ok(CommandOutput { status, output });
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("{script:?} in the guest (so far: {text:?})"),
                    secs: timeout.as_secs(),
                });
            }
        }
    }

    /// [`Vm::run`], failing unless the script exits 0; returns its output.
    pub fn run_ok(&self, script: &str, timeout: Duration) -> Result<String> {
        let out = self.run(script, timeout)?;
        if out.success() {
            Ok(out.output)
        } else {
            Err(Error::Tool {
                program: format!("guest: {script}"),
                status: out.status.to_string(),
                stderr: out.output,
            })
        }
    }

    /// Starts `script` in the guest in the background and returns at once (it may reboot).
    pub fn run_detached(&self, script: &str, timeout: Duration) -> Result<()> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(script);
        self.run_ok(
            &format!(
                "printf %s {b64} | base64 -d >/run/.pvm-detached; \
                 setsid bash /run/.pvm-detached </dev/null >/dev/null 2>&1 &"
            ),
            timeout,
        )
        .map(drop)
    }

    /// Reboots the guest the ordinary way (`systemctl reboot`) and waits for the next boot to
    /// start, which the firmware stand-in chooses. Returns that boot.
    pub fn reboot(&self, timeout: Duration) -> Result<Boot> {
        let next = self.boots().len();
        self.run_detached("sleep 0.5; systemctl reboot", timeout)?;
        self.wait_boot(next, timeout)
    }

    /// Cuts the power: QEMU is killed wherever the guest is (writes QEMU had not passed to the
    /// card file are lost, as a card loses what it had not written), then the card boots
    /// again. Returns the next boot.
    pub fn power_cut(&self, timeout: Duration) -> Result<Boot> {
        let next = {
            let mut st = self.shared.lock();
            let next = st.boots.len();
            st.power_cut = true;
            if let Some(child) = st.child.as_mut() {
                let _ = child.kill();
            }
            next
        };
        self.wait_boot(next, timeout)
    }

    /// A screendump of the TV (the virtio-gpu display), through QMP. Also saved as PNG at
    /// `png` when given.
    pub fn screendump(&self, png: Option<&Path>) -> Result<Screen> {
        let boot = self
            .current_boot()
            .ok_or_else(|| Error::Stopped("not running".into()))?;
        let ppm = self.run_dir.join(format!("screen-{}.ppm", boot.number));
        let _ = std::fs::remove_file(&ppm);
        let mut qmp = Qmp::connect(&socket(&self.run_dir, "qmp", boot.number))?;
        qmp.execute(&serde_json::json!({
            "execute": "screendump",
            "arguments": {"filename": ppm.to_string_lossy()}
        }))?;
        let bytes = std::fs::read(&ppm).map_err(Error::io(format!("read {}", ppm.display())))?;
        let screen = Screen::from_ppm(&bytes)?;
        if let Some(png) = png {
            screen.save_png(png)?;
        }
        Ok(screen)
    }

    /// Powers off for good and returns every boot.
    pub fn stop(mut self) -> Vec<Boot> {
        self.halt();
        self.boots()
    }

    fn halt(&mut self) {
        {
            let mut st = self.shared.lock();
            st.stop = true;
            if let Some(child) = st.child.as_mut() {
                let _ = child.kill();
            }
        }
        self.shared.changed.notify_all();
        if let Some(h) = self.supervisor.take() {
            let _ = h.join();
        }
        if std::env::var_os("PVM_KEEP_VM").is_some() {
            if let Some(tmp) = self.tmp.take() {
                eprintln!("PVM_KEEP_VM: keeping {}", tmp.keep().display());
            }
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if self.supervisor.is_some() {
            self.halt();
        }
    }
}

fn which(tool: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(Error::Missing(tool.into()))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Appends what the stream has (waiting at most a second, and never past `deadline`).
fn read_some(stream: &mut UnixStream, buf: &mut Vec<u8>, deadline: Instant) -> Result<()> {
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    stream
        .set_read_timeout(Some(wait))
        .map_err(Error::io("serial shell"))?;
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk) {
        Ok(0) => Err(Error::Stopped(
            "the serial shell closed (guest gone?)".into(),
        )),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(e)
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut =>
        {
            Ok(())
        }
        Err(e) => Err(Error::Io {
            what: "serial shell".into(),
            source: e,
        }),
    }
}

/// The few lines of QMP the harness speaks.
struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    fn connect(path: &Path) -> Result<Qmp> {
        let s = UnixStream::connect(path).map_err(Error::io(format!("QMP {}", path.display())))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(Error::io("QMP"))?;
        let writer = s.try_clone().map_err(Error::io("QMP"))?;
        let mut q = Qmp {
            reader: BufReader::new(s),
            writer,
        };
        q.read_message()?; // the greeting
        q.execute(&serde_json::json!({"execute": "qmp_capabilities"}))?;
        Ok(q)
    }

    fn read_message(&mut self) -> Result<serde_json::Value> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(Error::io("QMP read"))?;
        if n == 0 {
            return Err(Error::Qmp("connection closed".into()));
        }
        serde_json::from_str(&line).map_err(|e| Error::Qmp(format!("{e}: {line}")))
    }

    /// Sends a command and returns its `return`, skipping events.
    fn execute(&mut self, command: &serde_json::Value) -> Result<serde_json::Value> {
        let mut text = command.to_string();
        text.push('\n');
        self.writer
            .write_all(text.as_bytes())
            .map_err(Error::io("QMP write"))?;
        loop {
            let m = self.read_message()?;
            if let Some(r) = m.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = m.get("error") {
                return Err(Error::Qmp(e.to_string()));
            }
        }
    }
}

fn supervise(shared: &Shared, disk: &Disk, dir: &Path, options: &VmOptions, http_port: u16) {
    let halt = |why: String| {
        shared.lock().halted = Some(why);
        shared.changed.notify_all();
    };
    loop {
        let number = {
            let st = shared.lock();
            if st.stop {
                return;
            }
            st.boots.len()
        };
        if number >= options.max_boots {
            return halt(format!("{number} boots: a boot loop?"));
        }
        let choice = match firmware::select(disk, &dir.join("firmware")) {
            Ok(c) => c,
            Err(e) => return halt(format!("the firmware stand-in cannot boot: {e}")),
        };
        let cmdline = if options.extra_cmdline.is_empty() {
            choice.cmdline.clone()
        } else {
            format!("{} {}", choice.cmdline, options.extra_cmdline)
        };
        let child = match spawn_qemu(disk, dir, options, http_port, number, &choice, &cmdline) {
            Ok(c) => c,
            Err(e) => return halt(format!("starting QEMU: {e}")),
        };
        {
            let mut st = shared.lock();
            st.boots.push(Boot {
                number,
                partition: choice.partition,
                tryboot: choice.tryboot,
                cmdline,
                started: Instant::now(),
                end: None,
            });
            st.child = Some(child);
            // A stop that came while QEMU was starting must still end it.
            if st.stop {
                if let Some(c) = st.child.as_mut() {
                    let _ = c.kill();
                }
            }
        }
        shared.changed.notify_all();
        // Polled rather than waited on, so stop and power_cut can kill the child meanwhile.
        let status = loop {
            {
                let mut st = shared.lock();
                let Some(child) = st.child.as_mut() else {
                    break None;
                };
                match child.try_wait() {
                    Ok(Some(status)) => break Some(status),
                    Ok(None) => {}
                    Err(_) => break None,
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut st = shared.lock();
        st.child = None;
        let end = if st.stop {
            BootEnd::Stopped
        } else if std::mem::take(&mut st.power_cut) {
            BootEnd::PowerCut
        } else {
            match status {
                Some(s) if s.success() => BootEnd::GuestExit,
                other => BootEnd::QemuFailed(format!(
                    "QEMU exited with {other:?}; see {}",
                    dir.join("qemu.log").display()
                )),
            }
        };
        if let Some(b) = st.boots.last_mut() {
            b.end = Some(end.clone());
        }
        let stop = st.stop;
        drop(st);
        shared.changed.notify_all();
        match end {
            BootEnd::QemuFailed(why) => return halt(why),
            _ if stop => return,
            _ => {}
        }
    }
}

fn spawn_qemu(
    disk: &Disk,
    dir: &Path,
    options: &VmOptions,
    http_port: u16,
    number: usize,
    choice: &firmware::BootChoice,
    cmdline: &str,
) -> Result<Child> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("qemu.log"))
        .map_err(Error::io("qemu.log"))?;
    let log2 = log.try_clone().map_err(Error::io("qemu.log"))?;
    let shell = socket(dir, "shell", number);
    let qmp = socket(dir, "qmp", number);
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-nodefaults", "-no-user-config", "-display", "none"])
        // TCG, not KVM: guests hang under KVM on these machines.
        .args(["-machine", "pc", "-accel", "tcg"])
        // Every instruction set TCG emulates (SHA-NI, SSE4, AVX2), as the Pi 5's Cortex-A76 has
        // its SHA-2 instructions: with the default qemu64 model the update agent's SHA-256
        // falls back to portable code, and a debug build of it hashes a bundle at well under
        // 1 MB/s under emulation (it reads every payload three times).
        .args(["-cpu", "max"])
        .args(["-m", &options.memory_mib.to_string()])
        .args(["-smp", &options.cpus.to_string()])
        .args(["-rtc", "base=utc"])
        .arg("-kernel")
        .arg(&choice.kernel)
        .arg("-initrd")
        .arg(&choice.initrd)
        .args(["-append", cmdline])
        // cache=unsafe: the card file is only lost if the host crashes; a killed QEMU (power
        // cut) still leaves every write it passed on in the host's page cache.
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=virtio,cache=unsafe",
            disk.path().display()
        ));
    if let Some(file) = &options.attachment {
        cmd.arg("-drive").arg(format!(
            "file={},format=raw,if=virtio,readonly=on",
            file.display()
        ));
    }
    cmd
        // restrict=on: the guest reaches nothing but the forwarded port (no outside network).
        .arg("-netdev")
        .arg(format!(
            "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{http_port}-:{}",
            options.guest_http_port
        ))
        .args(["-device", "virtio-net-pci,netdev=net0"])
        .args([
            "-vga",
            "none",
            "-device",
            "virtio-gpu-pci,xres=1920,yres=1080",
        ])
        .arg("-chardev")
        .arg(format!(
            "file,id=console,path={},append=on",
            dir.join("console.log").display()
        ))
        .args(["-serial", "chardev:console"])
        .arg("-chardev")
        .arg(format!(
            "socket,id=shell,path={},server=on,wait=off",
            shell.display()
        ))
        .args(["-serial", "chardev:shell"])
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", qmp.display()))
        // A guest reboot ends QEMU, handing the next boot back to the firmware stand-in.
        .arg("-no-reboot")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    cmd.spawn()
        .map_err(Error::io("spawning qemu-system-x86_64"))
}
