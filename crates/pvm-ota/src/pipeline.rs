//! Overlapped streaming for the installer's passes: the verify pass and the install pass
//! hash the bundle; the install pass also writes the slot and reads it back.
//!
//! One thread reads (a page-cache copy or a wait on the medium) while this thread hashes
//! the block before it; when installing, writer threads write the blocks before that and
//! another thread reads each written block back and compares it. Blocks travel through a
//! small ring of large buffers, so memory stays at `DEPTH × BLOCK` whatever the payload
//! size, and the two cores of a Pi-class machine are both busy instead of taking turns.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use crate::error::{OtaError, Result};

/// Bytes per block: large enough that a read or write is one big request to the medium.
pub(crate) const BLOCK: usize = 2 << 20;
/// Writes in flight at once when installing: queue depth 2 already doubled `O_DIRECT`
/// write throughput on the test machine's disk over queue depth 1 (more did not help),
/// and 3 keeps the medium busy while one writer is between requests.
pub(crate) const WRITERS: usize = 3;
/// Blocks in the ring when installing: one being read, one being hashed, one per writer
/// and one being read back and compared (the hasher is faster than the medium, so the
/// writers are what the ring waits on anyway).
pub(crate) const DEPTH: usize = WRITERS + 3;
/// `O_DIRECT` wants buffers, offsets and lengths aligned to the logical block size; 4 KiB
/// covers every SD card and disk in sight.
pub(crate) const ALIGN: usize = 4096;

/// A buffer whose usable part starts on an [`ALIGN`] boundary (for `O_DIRECT` reads),
/// carved out of a plain allocation so no unsafe code is needed.
pub(crate) struct Block {
    mem: Vec<u8>,
    start: usize,
    len: usize,
    /// Offset of the data within the source (and the destination).
    pos: u64,
}

impl Block {
    fn new() -> Block {
        let mem = vec![0u8; BLOCK + ALIGN];
        let start = mem.as_ptr().align_offset(ALIGN);
        // `align_offset` may in principle decline; an unaligned buffer only costs the
        // `O_DIRECT` path, which then falls back (see `Source::read_direct`).
        let start = if start < ALIGN { start } else { 0 };
        Block {
            mem,
            start,
            len: 0,
            pos: 0,
        }
    }

    fn space(&mut self) -> &mut [u8] {
        &mut self.mem[self.start..self.start + BLOCK]
    }

    fn data(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }
}

/// Where the reader thread takes bytes from: `size` bytes of `file` from `offset`.
pub(crate) struct Source<'a> {
    pub file: &'a File,
    pub offset: u64,
    pub size: u64,
    /// `file` was opened with `O_DIRECT`: read whole aligned blocks.
    pub direct: bool,
}

impl Source<'_> {
    /// Fills `buf` with up to `want` bytes from `pos` (relative to the source); fewer only
    /// at the end of the file.
    fn fill(&self, buf: &mut [u8], pos: u64, want: usize) -> io::Result<usize> {
        // O_DIRECT needs the request rounded up to the block size; the file (or device)
        // holds at least `size` bytes when it is whole, and only `want` of them are used.
        let ask = if self.direct {
            want.div_ceil(ALIGN) * ALIGN
        } else {
            want
        };
        let mut got = 0;
        while got < want {
            match self
                .file
                .read_at(&mut buf[got..ask], self.offset + pos + got as u64)
            {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got.min(want))
    }
}

enum Msg {
    Data(Block),
    /// The source ended after this many bytes.
    Short(u64),
    Failed(io::Error),
}

/// Where the writer stage puts each block, at the block's offset from 0.
pub(crate) struct Sink<'a> {
    /// Opened with `O_DIRECT`, where the device or file system allows it: 2 MiB requests go
    /// to the medium as they are made, so the disk writes while the next block is hashed
    /// instead of all at the final `fdatasync`.
    pub direct: Option<&'a File>,
    /// The same file opened plainly, for the unaligned tail of a payload (or everything
    /// where `O_DIRECT` was refused).
    pub buffered: &'a File,
    /// For error messages: `write <what>`.
    pub what: &'a str,
    /// The same file opened for reading with `O_DIRECT`: each block is read back from the
    /// medium and compared with what was written, on a thread of its own, as soon as it
    /// was written (a direct read
    /// first flushes any cached page of its range, so the buffered tail is read back from
    /// the medium too). Only ever set together with `direct`: a buffered read here would
    /// see the page cache, not the medium.
    pub check: Option<&'a File>,
}

impl Sink<'_> {
    fn put(&self, block: &Block) -> io::Result<()> {
        let data = block.data();
        let aligned = match self.direct {
            Some(direct) => {
                let n = data.len() / ALIGN * ALIGN;
                direct.write_all_at(&data[..n], block.pos)?;
                n
            }
            None => 0,
        };
        self.buffered
            .write_all_at(&data[aligned..], block.pos + aligned as u64)
    }
}

/// Streams the source through `consume`, one block at a time, with the reads done ahead
/// on a thread of their own. Returns once every byte was consumed; a short source is
/// [`OtaError::Truncated`], a read error is [`OtaError::Io`] with `what` as context, and
/// the first error from `consume` stops both sides and is returned as is.
pub(crate) fn stream(
    src: &Source<'_>,
    what: &str,
    consume: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    stream_into(src, what, consume, None).map(|_| ())
}

/// As [`stream`], and then each block, once consumed (hashed), goes to `sink`: reading
/// block n+1, hashing block n and writing the blocks before it overlap. [`WRITERS`]
/// threads write at once, each its own block at that block's offset, so the medium has
/// several requests queued instead of idling between one write's completion and the next
/// request (one synchronous writer is queue depth 1). A write error stops everything and
/// is returned as [`OtaError::Io`] naming the sink.
///
/// With [`Sink::check`], each written block is read back from the medium by another
/// thread as soon as its write completed, and compared byte for byte with the block
/// itself, the very buffer that was hashed: the consumer's digest of those buffers is
/// checked against the manifest, so a read-back equal to them is a slot holding exactly
/// the manifest's bytes, shown without hashing them a third time. Returns `true` when
/// that was done for every block; a difference is [`OtaError::Slot`].
pub(crate) fn stream_into(
    src: &Source<'_>,
    what: &str,
    consume: &mut dyn FnMut(&[u8]) -> Result<()>,
    sink: Option<&Sink<'_>>,
) -> Result<bool> {
    // Shared by the writer threads, so they live outside the scope that joins them.
    let (write_tx, write_rx) = sync_channel::<Block>(DEPTH);
    let write_rx = Mutex::new(write_rx);
    let stop = AtomicBool::new(false);
    // Hashing alone needs one block being read and one being hashed, and one more lets
    // the reader start the next while both are busy; a smaller ring for the verify pass
    // also keeps the peak memory down when the allocator holds on to it afterwards.
    let ring = match sink {
        None => 3,
        Some(_) => DEPTH,
    };
    std::thread::scope(|scope| {
        let (data_tx, data_rx) = sync_channel::<Msg>(ring);
        let (free_tx, free_rx) = sync_channel::<Block>(ring);
        for _ in 0..ring {
            // Cannot fail: the channel has room for exactly `ring` blocks and the receiver
            // is alive in this scope.
            let _ = free_tx.send(Block::new());
        }
        scope.spawn(move || read_ahead(src, free_rx, data_tx));
        // The consumer's ends of the channels are dropped when this returns (before the
        // scope joins the other threads), so a thread waiting on one wakes up and stops.
        match sink {
            None => consume_all(
                src.size,
                what,
                data_rx,
                &mut |block| {
                    // The reader may have finished and dropped its end; nothing to recycle then.
                    let _ = free_tx.send(block);
                    Ok(())
                },
                consume,
            )
            .map(|()| false),
            Some(sink) => {
                let write_err = |source| OtaError::Io {
                    context: format!("write {}", sink.what),
                    source,
                };
                // Written blocks wait here for the read-back; at most the whole ring.
                let (check_tx, check_rx) = sync_channel::<Block>(ring);
                let checker = sink.check.map(|file| {
                    let src = Source {
                        file,
                        offset: 0,
                        size: src.size,
                        direct: true,
                    };
                    let free_tx = free_tx.clone();
                    // Allocated here with the ring, not on the new thread: buffers freed by
                    // an earlier pass on this thread are reused instead of a thread's own
                    // allocator arena growing beside them, which raised the peak RSS.
                    let back = Block::new();
                    scope.spawn(move || read_back_behind(&src, check_rx, free_tx, back))
                });
                let writers: Vec<_> = (0..WRITERS)
                    .map(|_| {
                        let (write_rx, stop) = (&write_rx, &stop);
                        let next = match checker {
                            Some(_) => check_tx.clone(),
                            None => free_tx.clone(),
                        };
                        scope.spawn(move || write_blocks(sink, write_rx, stop, next))
                    })
                    .collect();
                // The writers and the read-back hold the only senders now: the read-back
                // and the reader see their channels close once those are gone.
                drop((free_tx, check_tx));
                let consumed = consume_all(
                    src.size,
                    what,
                    data_rx,
                    &mut |block| {
                        if stop.load(Ordering::Relaxed) {
                            return Err(write_err(io::Error::other("the writing stopped")));
                        }
                        write_tx
                            .send(block)
                            .map_err(|_| write_err(io::Error::other("the writers stopped")))
                    },
                    consume,
                );
                drop(write_tx);
                let mut written = Ok(());
                for w in writers {
                    let r = match w.join() {
                        Ok(r) => r.map_err(write_err),
                        Err(_) => Err(write_err(io::Error::other("a writer thread panicked"))),
                    };
                    // The first writer's error in join order; any of them names the sink.
                    written = written.and(r);
                }
                let checked = match checker.map(|c| c.join()) {
                    None => Ok(false),
                    Some(Ok(Ok(()))) => Ok(true),
                    Some(Ok(Err(e))) if e.kind() == io::ErrorKind::InvalidData => {
                        Err(OtaError::Slot {
                            path: sink.what.into(),
                            reason: e.to_string(),
                        })
                    }
                    Some(Ok(Err(e))) => Err(OtaError::Io {
                        context: format!("read back {}", sink.what),
                        source: e,
                    }),
                    Some(Err(_)) => Err(OtaError::Io {
                        context: format!("read back {}", sink.what),
                        source: io::Error::other("the read-back thread panicked"),
                    }),
                };
                // A write error, then a read-back error, is the cause when several failed
                // (the consumer then only saw the writing stop).
                written
                    .and(checked)
                    .and_then(|compared| consumed.map(|()| compared))
            }
        }
    })
}

/// One of the [`WRITERS`]: takes the next hashed block, writes it at its offset and passes
/// it on (to the read-back, or back to the reader). Once anything failed (a write here or
/// in another writer, or the read-back) every writer only drains the queue until the
/// consumer, which sees `stop`, closes it: the queue's receiver outlives the writers, so a
/// writer that left early could leave the consumer waiting on a full channel forever.
fn write_blocks(
    sink: &Sink<'_>,
    queue: &Mutex<Receiver<Block>>,
    stop: &AtomicBool,
    next: SyncSender<Block>,
) -> io::Result<()> {
    let mut result = Ok(());
    loop {
        // The lock is held only while taking a block, never during the write.
        let taken = match queue.lock() {
            Ok(q) => q.recv(),
            Err(_) => return Err(io::Error::other("another writer panicked")),
        };
        let Ok(block) = taken else {
            return result; // The consumer is done.
        };
        if stop.load(Ordering::Relaxed) {
            continue;
        }
        if let Err(e) = sink.put(&block) {
            stop.store(true, Ordering::Relaxed);
            result = Err(e);
            continue;
        }
        // Only the read-back stopping closes this; it reports its own error.
        if next.send(block).is_err() {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

/// Reads each written block back from the medium (in whatever order the writes
/// completed: every block is compared on its own) and compares it with the block's
/// bytes, then hands the buffer back to the reader. A difference is an `InvalidData`
/// error naming the first byte that differs; a short read is `UnexpectedEof`.
fn read_back_behind(
    src: &Source<'_>,
    written: Receiver<Block>,
    free: SyncSender<Block>,
    mut back: Block,
) -> io::Result<()> {
    for block in written {
        let len = block.len;
        let n = src.fill(back.space(), block.pos, len)?;
        if n != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{n} of {len} bytes at {}", block.pos),
            ));
        }
        back.len = n;
        if let Some(i) = first_difference(back.data(), block.data()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "reads back differently than written from byte {}",
                    block.pos + i as u64
                ),
            ));
        }
        // The reader may have finished; nothing to recycle then.
        let _ = free.send(block);
    }
    Ok(())
}

/// Where `a` and `b` (of equal length) first differ; the equal case, by far the common
/// one, is a single `memcmp`.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    Some(a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len()))
}

fn read_ahead(src: &Source<'_>, free: Receiver<Block>, out: SyncSender<Msg>) {
    let mut pos = 0u64;
    while pos < src.size {
        let Ok(mut block) = free.recv() else {
            return; // The consumer stopped.
        };
        let want = usize::try_from(src.size - pos).map_or(BLOCK, |left| left.min(BLOCK));
        let msg = match src.fill(block.space(), pos, want) {
            Ok(n) if n == want => {
                block.len = n;
                block.pos = pos;
                pos += n as u64;
                Msg::Data(block)
            }
            Ok(n) => Msg::Short(pos + n as u64),
            Err(e) => Msg::Failed(e),
        };
        let last = !matches!(msg, Msg::Data(_));
        if out.send(msg).is_err() || last {
            return;
        }
    }
}

fn consume_all(
    size: u64,
    what: &str,
    data: Receiver<Msg>,
    pass_on: &mut dyn FnMut(Block) -> Result<()>,
    consume: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut done = 0u64;
    while done < size {
        match data.recv() {
            Ok(Msg::Data(block)) => {
                consume(block.data())?;
                done += block.len as u64;
                pass_on(block)?;
            }
            Ok(Msg::Short(n)) => {
                return Err(OtaError::Truncated(format!("{what}: {n} of {size} bytes")))
            }
            Ok(Msg::Failed(e)) => {
                return Err(OtaError::Io {
                    context: format!("read {what}"),
                    source: e,
                })
            }
            Err(_) => {
                return Err(OtaError::Io {
                    context: format!("read {what}"),
                    source: io::Error::other("the reader thread stopped"),
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(len: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4096) as u8).collect();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&data).unwrap();
        (f, data)
    }

    #[test]
    fn every_byte_arrives_in_order_across_many_blocks() {
        let len = 3 * BLOCK + 12345;
        let (f, data) = file_of(len + 100);
        let file = File::open(f.path()).unwrap();
        let src = Source {
            file: &file,
            offset: 100,
            size: len as u64,
            direct: false,
        };
        let mut got = Vec::new();
        stream(&src, "test", &mut |b| {
            got.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, data[100..100 + len]);
    }

    #[test]
    fn a_source_shorter_than_promised_is_truncated() {
        let (f, _) = file_of(BLOCK + 10);
        let file = File::open(f.path()).unwrap();
        let src = Source {
            file: &file,
            offset: 0,
            size: 2 * BLOCK as u64,
            direct: false,
        };
        let mut seen = 0;
        let err = stream(&src, "short", &mut |b| {
            seen += b.len();
            Ok(())
        })
        .unwrap_err();
        assert!(
            matches!(err, OtaError::Truncated(ref m) if m.contains("short")),
            "{err}"
        );
        assert_eq!(
            seen, BLOCK,
            "the whole first block was handed on before the end"
        );
    }

    #[test]
    fn a_consumer_error_stops_the_reader_and_is_returned() {
        let (f, _) = file_of(8 * BLOCK);
        let file = File::open(f.path()).unwrap();
        let src = Source {
            file: &file,
            offset: 0,
            size: 8 * BLOCK as u64,
            direct: false,
        };
        let mut calls = 0;
        let err = stream(&src, "x", &mut |_| {
            calls += 1;
            if calls == 2 {
                Err(OtaError::Malformed("stop here".into()))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert!(matches!(err, OtaError::Malformed(ref m) if m == "stop here"));
        assert_eq!(calls, 2);
    }

    #[test]
    fn the_writer_stage_puts_every_block_at_its_offset_including_an_unaligned_tail() {
        use std::os::unix::fs::OpenOptionsExt;
        // Many more blocks than writers, so every writer has several and their writes
        // overlap and may finish out of order.
        let len = 4 * WRITERS * BLOCK + 5000 + 3;
        let (f, data) = file_of(len);
        let file = File::open(f.path()).unwrap();
        let src = Source {
            file: &file,
            offset: 0,
            size: len as u64,
            direct: false,
        };
        let out = tempfile::NamedTempFile::new().unwrap();
        let buffered = std::fs::OpenOptions::new()
            .write(true)
            .open(out.path())
            .unwrap();
        // O_DIRECT where the temp dir's file system takes it; the plain path otherwise.
        let direct = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
            .open(out.path())
            .ok();
        let check = direct.as_ref().and_then(|_| {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
                .open(out.path())
                .ok()
        });
        let sink = Sink {
            direct: direct.as_ref(),
            buffered: &buffered,
            what: "out",
            check: check.as_ref(),
        };
        let mut hashed = Vec::new();
        let compared = stream_into(
            &src,
            "test",
            &mut |b| {
                hashed.extend_from_slice(b);
                Ok(())
            },
            Some(&sink),
        )
        .unwrap();
        assert!(hashed == data, "the consumer saw every byte, in order");
        assert!(std::fs::read(out.path()).unwrap() == data);
        assert_eq!(compared, check.is_some(), "read back where O_DIRECT works");
    }

    fn direct(path: &std::path::Path, write: bool) -> Option<File> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
            .open(path)
            .ok()
    }

    #[test]
    fn a_medium_that_reads_back_other_bytes_than_written_fails_with_the_byte_named() {
        let len = 6 * BLOCK + 3000;
        let (f, data) = file_of(len);
        let file = File::open(f.path()).unwrap();
        let src = Source {
            file: &file,
            offset: 0,
            size: len as u64,
            direct: false,
        };
        let out = tempfile::NamedTempFile::new().unwrap();
        // The "medium" answers reads from another file, equal but for one byte: what a
        // card that lost a write would return.
        let bad_at = 3 * BLOCK + 777;
        let mut other = data.clone();
        other[bad_at] ^= 0x10;
        let medium = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(medium.path(), &other).unwrap();
        // O_DIRECT where the temp dir's file system takes it; the comparison is the same.
        let direct_out = direct(out.path(), true);
        let check =
            direct(medium.path(), false).unwrap_or_else(|| File::open(medium.path()).unwrap());
        let buffered = std::fs::OpenOptions::new()
            .write(true)
            .open(out.path())
            .unwrap();
        let sink = Sink {
            direct: direct_out.as_ref(),
            buffered: &buffered,
            what: "slot",
            check: Some(&check),
        };

        let err = stream_into(&src, "test", &mut |_| Ok(()), Some(&sink)).unwrap_err();

        match err {
            OtaError::Slot { path, reason } => {
                assert_eq!(path, std::path::Path::new("slot"));
                assert!(reason.contains(&format!("byte {bad_at}")), "{reason}");
            }
            other => panic!("expected the read-back difference, got {other}"),
        }
    }
}
