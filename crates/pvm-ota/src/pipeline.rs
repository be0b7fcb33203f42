//! Overlapped streaming for the installer's three SHA-256 passes.
//!
//! One thread reads (a page-cache copy or a wait on the medium) while this thread hashes
//! (and, when installing, writes) the block before it. Blocks travel through a small ring
//! of large buffers, so memory stays at `DEPTH × BLOCK` whatever the payload size, and the
//! two cores of a Pi-class machine are both busy instead of taking turns.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use crate::error::{OtaError, Result};

/// Bytes per block: large enough that a read or write is one big request to the medium.
pub(crate) const BLOCK: usize = 2 << 20;
/// Blocks in the ring: the reader may run this far ahead of the consumer.
pub(crate) const DEPTH: usize = 4;
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

/// As [`stream`], and then each block, once consumed (hashed), goes to `sink` on a third
/// thread: reading block n+1, hashing block n and writing block n-1 overlap. A write error
/// stops everything and is returned as [`OtaError::Io`] naming the sink. With
/// [`Sink::check`], a fourth thread reads each written block back from the medium and the
/// SHA-256 of what it read is returned.
pub(crate) fn stream_into(
    src: &Source<'_>,
    what: &str,
    consume: &mut dyn FnMut(&[u8]) -> Result<()>,
    sink: Option<&Sink<'_>>,
) -> Result<Option<String>> {
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
                let (write_tx, write_rx) = sync_channel::<Block>(DEPTH);
                let (check_tx, check_rx) = sync_channel::<(u64, usize)>(DEPTH);
                let checker = sink.check.map(|file| {
                    let src = Source {
                        file,
                        offset: 0,
                        size: src.size,
                        direct: true,
                    };
                    scope.spawn(move || read_back_behind(&src, check_rx))
                });
                let writer = scope.spawn(move || -> io::Result<()> {
                    for block in write_rx {
                        sink.put(&block)?;
                        if sink.check.is_some() && check_tx.send((block.pos, block.len)).is_err() {
                            return Err(io::Error::other("the read-back stopped"));
                        }
                        let _ = free_tx.send(block);
                    }
                    Ok(())
                });
                let consumed = consume_all(
                    src.size,
                    what,
                    data_rx,
                    &mut |block| {
                        write_tx.send(block).map_err(|_| OtaError::Io {
                            context: format!("write {}", sink.what),
                            source: io::Error::other("the writer stopped"),
                        })
                    },
                    consume,
                );
                drop(write_tx);
                let written = match writer.join() {
                    Ok(r) => r.map_err(|e| OtaError::Io {
                        context: format!("write {}", sink.what),
                        source: e,
                    }),
                    Err(_) => Err(OtaError::Io {
                        context: format!("write {}", sink.what),
                        source: io::Error::other("the writer thread panicked"),
                    }),
                };
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
                // saw the writer gone, the read-back only its input end).
                written.and(consumed).and(checked)
            }
        }
    })
}

/// Reads back each written range, in order, from the medium and hashes it; returns the
/// SHA-256 (hex) of everything read back. Ends with an error if a range comes back short.
fn read_back_behind(src: &Source<'_>, written: Receiver<(u64, usize)>) -> io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut block = Block::new();
    let mut hasher = Sha256::new();
    let mut expect = 0u64;
    for (pos, len) in written {
        if pos != expect {
            return Err(io::Error::other(format!(
                "read-back out of order: {pos} after {expect}"
            )));
        }
        let n = src.fill(block.space(), pos, len)?;
        if n != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{n} of {len} bytes at {pos}"),
            ));
        }
        block.len = n;
        hasher.update(block.data());
        expect = pos + n as u64;
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
    fn the_writer_stage_puts_every_block_at_its_offset_including_an_unaligned_tail() {
        use std::os::unix::fs::OpenOptionsExt;
        let len = 2 * BLOCK + 5000 + 3;
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
