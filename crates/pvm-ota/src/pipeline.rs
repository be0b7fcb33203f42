//! Overlapped streaming for the installer's three SHA-256 passes.
//!
//! One thread reads (a page-cache copy or a wait on the medium) while this thread hashes
//! (and, when installing, writes) the block before it. Blocks travel through a small ring
//! of large buffers, so memory stays at `DEPTH × BLOCK` whatever the payload size, and the
//! two cores of a Pi-class machine are both busy instead of taking turns.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Mutex;

use crate::error::{OtaError, Result};

/// Bytes per block: large enough that a read or write is one big request to the medium.
pub(crate) const BLOCK: usize = 2 << 20;
/// Writes in flight at once when installing: queue depth 2 already doubled `O_DIRECT`
/// write throughput on the test machine's disk over queue depth 1 (more did not help),
/// and 3 keeps the medium busy while one writer is between requests.
pub(crate) const WRITERS: usize = 3;
/// Blocks in the ring: one being read, one being hashed and one per writer (the hasher
/// is faster than the medium, so the writers are what the ring waits on anyway).
pub(crate) const DEPTH: usize = WRITERS + 2;
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
    /// medium and hashed on a thread of its own as soon as it was written (a direct read
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
/// request (one synchronous writer is queue depth 1). Writes may complete out of order; the
/// consumer has already hashed every block in order before it was handed on. A write error
/// stops everything and is returned as [`OtaError::Io`] naming the sink. With
/// [`Sink::check`], another thread reads the written blocks back from the medium in order,
/// each as soon as it and every block before it were written, and the SHA-256 of what it
/// read is returned.
pub(crate) fn stream_into(
    src: &Source<'_>,
    what: &str,
    consume: &mut dyn FnMut(&[u8]) -> Result<()>,
    sink: Option<&Sink<'_>>,
) -> Result<Option<String>> {
    // Shared by the writer threads, so they live outside the scope that joins them.
    let (write_tx, write_rx) = sync_channel::<Block>(DEPTH);
    let write_rx = Mutex::new(write_rx);
    let failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (data_tx, data_rx) = sync_channel::<Msg>(DEPTH);
        let (free_tx, free_rx) = sync_channel::<Block>(DEPTH);
        for _ in 0..DEPTH {
            // Cannot fail: the channel has room for exactly DEPTH blocks and the receiver
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
            .map(|()| None),
            Some(sink) => {
                let write_err = |source| OtaError::Io {
                    context: format!("write {}", sink.what),
                    source,
                };
                // Positions only, a few bytes per block: unbounded, so a read-back that falls
                // behind never holds up the writers; it catches up once they are done.
                let (check_tx, check_rx) = channel::<(u64, usize)>();
                let checker = sink.check.map(|file| {
                    let src = Source {
                        file,
                        offset: 0,
                        size: src.size,
                        direct: true,
                    };
                    scope.spawn(move || read_back_behind(&src, check_rx))
                });
                let writers: Vec<_> = (0..WRITERS)
                    .map(|_| {
                        let (write_rx, failed) = (&write_rx, &failed);
                        let (free_tx, check_tx) = (free_tx.clone(), check_tx.clone());
                        scope.spawn(move || write_blocks(sink, write_rx, failed, free_tx, check_tx))
                    })
                    .collect();
                // The writers hold the only senders now: the read-back and the reader see
                // their channels close once every writer is gone.
                drop((free_tx, check_tx));
                let consumed = consume_all(
                    src.size,
                    what,
                    data_rx,
                    &mut |block| {
                        if failed.load(Ordering::Relaxed) {
                            return Err(write_err(io::Error::other("a writer stopped")));
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
                    None => Ok(None),
                    Some(Ok(Ok(digest))) => Ok(Some(digest)),
                    Some(Ok(Err(e))) => Err(OtaError::Io {
                        context: format!("read back {}", sink.what),
                        source: e,
                    }),
                    Some(Err(_)) => Err(OtaError::Io {
                        context: format!("read back {}", sink.what),
                        source: io::Error::other("the read-back thread panicked"),
                    }),
                };
                // A write error is the cause when several failed (the consumer then only
                // saw the writers gone, the read-back a gap it never got).
                written.and(consumed).and(checked)
            }
        }
    })
}

/// One of the [`WRITERS`]: takes the next hashed block, writes it at its offset, tells
/// the read-back it is on the medium and recycles the buffer. After any writer failed the
/// rest only drain the queue, so the consumer is not left waiting on a full channel.
fn write_blocks(
    sink: &Sink<'_>,
    queue: &Mutex<Receiver<Block>>,
    failed: &AtomicBool,
    free: SyncSender<Block>,
    written: Sender<(u64, usize)>,
) -> io::Result<()> {
    loop {
        // The lock is held only while taking a block, never during the write.
        let next = match queue.lock() {
            Ok(q) => q.recv(),
            Err(_) => return Err(io::Error::other("another writer panicked")),
        };
        let Ok(block) = next else {
            return Ok(()); // The consumer is done.
        };
        if failed.load(Ordering::Relaxed) {
            continue;
        }
        if let Err(e) = sink.put(&block) {
            failed.store(true, Ordering::Relaxed);
            return Err(e);
        }
        // The read-back may have stopped on an error of its own, which it reports.
        let _ = written.send((block.pos, block.len));
        let _ = free.send(block);
    }
}

/// Ranges reported written in any order, handed out in order: the next range is the one
/// that starts where everything handed out so far ends.
#[derive(Default)]
struct InOrder {
    next: u64,
    waiting: BTreeMap<u64, usize>,
}

impl InOrder {
    fn add(&mut self, pos: u64, len: usize) {
        self.waiting.insert(pos, len);
    }

    fn pop(&mut self) -> Option<(u64, usize)> {
        let len = self.waiting.remove(&self.next)?;
        let pos = self.next;
        self.next += len as u64;
        Some((pos, len))
    }
}

/// Reads back each written range from the medium, in order of position whatever the
/// order the writes completed in, and hashes it; returns the SHA-256 (hex) of everything
/// read back. Ends with an error if a range comes back short or a written range was
/// never reachable in order (a gap: some block before it was never written).
fn read_back_behind(src: &Source<'_>, written: Receiver<(u64, usize)>) -> io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut block = Block::new();
    let mut hasher = Sha256::new();
    let mut order = InOrder::default();
    for (pos, len) in written {
        order.add(pos, len);
        while let Some((pos, len)) = order.pop() {
            let n = src.fill(block.space(), pos, len)?;
            if n != len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{n} of {len} bytes at {pos}"),
                ));
            }
            block.len = n;
            hasher.update(block.data());
        }
    }
    if let Some(pos) = order.waiting.keys().next() {
        return Err(io::Error::other(format!(
            "read-back stopped at {} with the block at {pos} written but not those before it",
            order.next
        )));
    }
    Ok(crate::fsutil::hex(&hasher.finalize()))
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
    fn ranges_written_out_of_order_are_handed_out_in_order_and_a_gap_holds_back_the_rest() {
        let mut order = InOrder::default();
        order.add(4, 2);
        assert_eq!(order.pop(), None, "nothing before 4 was written yet");
        order.add(0, 2);
        assert_eq!(order.pop(), Some((0, 2)));
        assert_eq!(order.pop(), None, "2..4 is still missing");
        order.add(7, 1);
        order.add(2, 2);
        assert_eq!(order.pop(), Some((2, 2)));
        assert_eq!(order.pop(), Some((4, 2)));
        assert_eq!(order.pop(), None, "6..7 is still missing");
        order.add(6, 1);
        assert_eq!(order.pop(), Some((6, 1)));
        assert_eq!(order.pop(), Some((7, 1)));
        assert_eq!(order.pop(), None);
        assert!(order.waiting.is_empty());
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
        let mut hashed = 0;
        let read_back = stream_into(
            &src,
            "test",
            &mut |b| {
                hashed += b.len();
                Ok(())
            },
            Some(&sink),
        )
        .unwrap();
        assert_eq!(hashed, len);
        assert_eq!(std::fs::read(out.path()).unwrap(), data);
        use sha2::Digest;
        let want = crate::fsutil::hex(&sha2::Sha256::digest(&data));
        assert_eq!(read_back.is_some(), check.is_some());
        if let Some(got) = read_back {
            assert_eq!(got, want, "what was read back behind the writer");
        }
    }
}
