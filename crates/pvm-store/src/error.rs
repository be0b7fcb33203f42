//! The one error type of pvm-store.

use std::path::PathBuf;

use uuid::Uuid;

/// Everything that can go wrong with the event store, said so that the person at the
/// venue (or the engineer reading the journal) knows what was refused and why.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file exists but is not a PVM event store; it was left exactly as it was.
    #[error(
        "{path} is not a PVM event store (it belongs to another program or is not a database); \
         it was left untouched"
    )]
    Foreign {
        /// The file that was refused.
        path: PathBuf,
    },
    /// The file is a PVM event store but its contents are damaged; it was not modified,
    /// so it can still be copied off and recovered.
    #[error("the event store {path} is damaged ({detail}); it was left untouched for recovery")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What the integrity check (or the failed read) reported.
        detail: String,
    },
    /// The file was written by a newer PVM whose schema this version does not understand.
    #[error(
        "the event store {path} was written by a newer PVM version (schema version {found}, \
         this version knows up to {known}); update this node before opening it"
    )]
    TooNew {
        /// The refused file.
        path: PathBuf,
        /// The schema version found in the file.
        found: u32,
        /// The newest schema version this build can migrate to.
        known: u32,
    },
    /// The disk (or SQLite's configured size limit) is full; the write that hit it was
    /// rolled back completely.
    #[error(
        "the disk holding {path} is full while {doing}; nothing of that write was kept — \
         free some space and try again"
    )]
    DiskFull {
        /// The store that could not grow.
        path: PathBuf,
        /// What was being written.
        doing: &'static str,
    },
    /// An event with this id is already in the log (or twice in the same batch).
    #[error("event {id} is already in the event log; its command was not recorded again")]
    DuplicateEvent {
        /// The repeated event id.
        id: Uuid,
    },
    /// An event body is not valid JSON, so it could not be replayed or synced later.
    #[error("event {id} has a body that is not valid JSON ({detail}); its command was refused")]
    BodyNotJson {
        /// The event whose body was refused.
        id: Uuid,
        /// What the JSON parser reported.
        detail: String,
    },
    /// A snapshot or sync cursor pointed past the last event in the log.
    #[error("cannot {doing} at sequence {seq}: the event log ends at sequence {last_seq}")]
    BeyondLog {
        /// What was refused.
        doing: &'static str,
        /// The requested sequence number.
        seq: u64,
        /// The last sequence number actually in the log.
        last_seq: u64,
    },
    /// SQLite would not switch the file to write-ahead logging (e.g. a file system without
    /// shared memory support); without it a power cut could cost acknowledged commands.
    #[error(
        "the event store {path} cannot use write-ahead logging (SQLite stayed in journal mode \
         \"{mode}\"); put it on a local file system"
    )]
    NoWriteAheadLog {
        /// The store concerned.
        path: PathBuf,
        /// The journal mode SQLite reported instead.
        mode: String,
    },
    /// Any other SQLite failure, with the file and the operation it interrupted.
    #[error("the event store {path} failed while {doing}: {source}")]
    Sqlite {
        /// The store concerned.
        path: PathBuf,
        /// What was being done.
        doing: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A file-system failure outside SQLite (e.g. reading the file header before opening).
    #[error("could not access {path} while {doing}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What was being done.
        doing: &'static str,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
}

/// Why a snapshot body could not be packed or unpacked. A snapshot only saves replaying the log:
/// the state can always be rebuilt from the events themselves.
#[derive(Debug, thiserror::Error)]
#[error("the snapshot could not be {doing}: {detail}")]
pub struct SnapshotBodyError {
    /// `compressed` or `decompressed`.
    pub doing: &'static str,
    /// What zstd reported.
    pub detail: String,
}

impl StoreError {
    /// Sorts a SQLite error into the variant a caller can act on: a full disk and a damaged
    /// file need different responses from a programming error.
    pub(crate) fn from_sqlite(
        path: &std::path::Path,
        doing: &'static str,
        source: rusqlite::Error,
    ) -> Self {
        match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::DiskFull {
                path: path.to_path_buf(),
                doing,
            },
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: format!("{doing}: {source}"),
                }
            }
            _ => StoreError::Sqlite {
                path: path.to_path_buf(),
                doing,
                source,
            },
        }
    }
}
