//! The window over a file's text: the bytes of the batch being decoded are kept, so that the
//! slow path can re-read them, and more are read as needed.

use std::io::Read;

/// How much of the start of a file its dialect (and that it is text) is decided from.
pub const HEAD_BYTES: usize = 64 * 1024;

/// A sliding window over the text: holds the bytes of the batch being decoded (so that the
/// slow path can re-read them) and reads more as needed.
pub(crate) struct Window {
    src: Box<dyn Read + Send>,
    pub(crate) buf: Vec<u8>,
    pub(crate) eof: bool,
}

impl Window {
    pub(crate) fn new(src: Box<dyn Read + Send>) -> Window {
        Window {
            src,
            buf: Vec::with_capacity(512 * 1024),
            eof: false,
        }
    }

    /// Reads one more block; false at end of input.
    pub(crate) fn fill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let old = self.buf.len();
        self.buf.resize(old + 256 * 1024, 0);
        let n = loop {
            match self.src.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    pub(crate) fn fill_to(&mut self, len: usize) -> std::io::Result<()> {
        while self.buf.len() < len && self.fill()? {}
        Ok(())
    }

    /// The start of the text, as far as a file's dialect is decided from.
    pub(crate) fn head(&self) -> &[u8] {
        &self.buf[..self.buf.len().min(HEAD_BYTES)]
    }

    /// Drops the bytes before `keep_from`; returns how far offsets moved.
    pub(crate) fn compact(&mut self, keep_from: usize) -> usize {
        self.buf.drain(..keep_from);
        keep_from
    }
}
