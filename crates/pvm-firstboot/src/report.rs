//! The report the node serves (`GET /api/v1/system/firstboot`) and the TV's setup screen shows:
//! `/run/pvm/firstboot.json` → `{"ok":bool,"applied":[..],"errors":[{"key","message","line"}]}`.

use serde::{Deserialize, Serialize};

/// One mistake in `pvm.toml`, or one setting that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The setting's name; `null` when the file as a whole is at fault (a syntax error).
    pub key: Option<String>,
    /// What is wrong, in words a venue can act on.
    pub message: String,
    /// 1-based line in `pvm.toml`; `null` when no line is to blame (e.g. a disk error).
    pub line: Option<usize>,
}

/// What this boot did with `pvm.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// No problems at all (an absent `pvm.toml` is fine).
    pub ok: bool,
    /// Whether a `pvm.toml` was found on the autoboot partition.
    pub found: bool,
    /// The settings applied (changed) by this boot, by key name, in file order.
    pub applied: Vec<String>,
    pub errors: Vec<Problem>,
}
