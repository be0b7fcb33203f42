//! The guest node's HTTP API, used the way a venue uses it: reading JSON, and the first admin
//! made with the setup code the TV shows (also in the node's journal), who then logs in.

use std::time::Duration;

use crate::{Error, Result, Vm};

/// Reading the journal over the serial line; generous for an emulated guest.
const JOURNAL_TIMEOUT: Duration = Duration::from_secs(120);

impl Vm {
    /// `GET path` (with the bearer `token`, if any): the JSON body of a 2xx answer.
    pub fn get_json(&self, path: &str, token: Option<&str>) -> Result<serde_json::Value> {
        let mut request = self.http().get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Ok(request.send()?.error_for_status()?.json()?)
    }

    /// The setup code the node printed at start, read from its journal.
    pub fn setup_code(&self) -> Result<String> {
        let code = self.run_ok(
            "journalctl -u pvm-node -o cat --no-pager | sed -n 's/.*setup code: *//p' | tail -n1",
            JOURNAL_TIMEOUT,
        )?;
        let code = code.trim();
        if code.is_empty() {
            return Err(Error::Api("no setup code in the node's journal".into()));
        }
        Ok(code.to_owned())
    }

    /// Creates the first admin with the node's setup code (`POST /api/v1/setup`).
    pub fn setup_admin(&self, username: &str, password: &str) -> Result<()> {
        let code = self.setup_code()?;
        self.http()
            .post(self.url("/api/v1/setup"))
            .json(&serde_json::json!({
                "setup_code": code,
                "username": username,
                "password": password,
            }))
            .send()?
            .error_for_status()?;
        Ok(())
    }

    /// [`Vm::setup_admin`], then [`Vm::login`]: returns the bearer token.
    pub fn first_admin(&self, username: &str, password: &str) -> Result<String> {
        self.setup_admin(username, password)?;
        self.login(username, password)
    }

    /// Logs in (`POST /api/v1/auth/login`): returns the bearer token.
    pub fn login(&self, username: &str, password: &str) -> Result<String> {
        let body: serde_json::Value = self
            .http()
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()?
            .error_for_status()?
            .json()?;
        body["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::Api(format!("login answered without a token: {body}")))
    }
}
