//! The window over a file's text: the bytes of the batch being decoded are kept, so that the
//! slow path can re-read them, and more are read as needed. It also hides what is not rows:
//! title lines at the start (`skip_rows`, through [`Window::skip_lines`]) and footer lines at
//! the end (`skip_footer`: the last lines are held back until the end of the file shows they
//! were the last, then dropped), and it ends a last comment line that has no line end, so that
//! the parser skips it as a comment instead of reading it as a row.

use std::io::Read;

/// How much of the start of a file its dialect (and that it is text) is decided from.
pub const HEAD_BYTES: usize = 64 * 1024;

/// The first read asks for this much, each read that fills its block asks for twice as much
/// next time, up to [`MAX_BLOCK`]. A block is zeroed before it is read into: a fixed 256 KiB
/// block cost a 10 KB file half a megabyte of zeroing (a fifth of a worker's time in a burst of
/// small files), while a large file reaches full-size blocks after a few reads.
const FIRST_BLOCK: usize = 16 * 1024;
const MAX_BLOCK: usize = 256 * 1024;

/// A sliding window over the text: holds the bytes of the batch being decoded (so that the
/// slow path can re-read them) and reads more as needed.
pub(crate) struct Window {
    src: Box<dyn Read + Send>,
    pub(crate) buf: Vec<u8>,
    pub(crate) eof: bool,
    /// Non-blank lines at the end of the text that are not rows (`skip_footer`).
    footer: usize,
    /// Text read but held back from `buf`: it may be the footer.
    held: Vec<u8>,
    /// The comment character, to end a last comment line.
    comment: Option<u8>,
    /// Footer lines dropped at the end.
    footer_dropped: u64,
    /// How much the next read asks for.
    block: usize,
}

impl Window {
    /// A window over `src` whose last `footer` non-blank lines are never shown.
    pub(crate) fn new(src: Box<dyn Read + Send>, footer: usize) -> Window {
        Window {
            src,
            buf: Vec::new(),
            eof: false,
            footer,
            held: Vec::new(),
            comment: None,
            footer_dropped: 0,
            block: FIRST_BLOCK,
        }
    }

    /// With `comment`, a last line starting with it and no line end is ended (see above).
    pub(crate) fn set_comment(&mut self, comment: Option<u8>) {
        self.comment = comment;
    }

    /// Reads one more block; false at end of input.
    pub(crate) fn fill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let old = self.buf.len();
        self.buf.append(&mut self.held);
        let at = self.buf.len();
        self.buf.resize(at + self.block, 0);
        let n = loop {
            match self.src.read(&mut self.buf[at..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(at);
                    self.held = self.buf.split_off(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(at + n);
        if n == self.block {
            self.block = (self.block * 2).min(MAX_BLOCK);
        }
        if n == 0 {
            self.eof = true;
            // What was held back is the footer: it is not shown.
            if self.footer > 0 {
                let cut = footer_start(&self.buf[old..], self.footer) + old;
                self.footer_dropped = non_blank_lines(&self.buf[cut..]);
                self.buf.truncate(cut);
            }
            self.end_last_comment();
            return Ok(false);
        }
        if self.footer > 0 {
            // The last lines may be the footer: held back until more text (or the end) comes.
            let cut = footer_start(&self.buf[old..], self.footer) + old;
            self.held = self.buf.split_off(cut);
        }
        Ok(true)
    }

    /// How many footer lines were dropped (known at the end of the text).
    pub(crate) fn footer_dropped(&self) -> u64 {
        self.footer_dropped
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

    /// Skips `n` physical lines from `from` (on physical line `line`): returns the offset and
    /// line after them. Reads more as needed; stops early at the end of the text.
    pub(crate) fn skip_lines(
        &mut self,
        mut from: usize,
        mut line: u64,
        n: usize,
    ) -> std::io::Result<(usize, u64)> {
        for _ in 0..n {
            loop {
                if let Some(i) = memchr::memchr(b'\n', &self.buf[from..]) {
                    from += i + 1;
                    line += 1;
                    break;
                }
                if !self.fill()? {
                    return Ok((self.buf.len(), line));
                }
            }
        }
        Ok((from, line))
    }

    /// A last line that starts with the comment character and has no line end gets one: the
    /// parser then skips it as a comment (without, it read it as a row of one empty field).
    fn end_last_comment(&mut self) {
        let Some(c) = self.comment else { return };
        let Some(&last) = self.buf.last() else { return };
        if last == b'\n' || last == b'\r' {
            return;
        }
        let start = memchr::memrchr(b'\n', &self.buf).map_or(0, |i| i + 1);
        if self.buf[start] == c {
            self.buf.push(b'\n');
        }
    }
}

fn non_blank_lines(text: &[u8]) -> u64 {
    text.split(|b| *b == b'\n')
        .filter(|l| l.iter().any(|b| !matches!(b, b'\r' | b' ' | b'\t')))
        .count() as u64
}

/// Where the last `lines` non-blank lines of `text` start (`text.len()` for none). A last line
/// without a line end counts.
fn footer_start(text: &[u8], lines: usize) -> usize {
    let mut seen = 0;
    let mut end = text.len();
    while end > 0 {
        let start = memchr::memrchr(b'\n', &text[..end.saturating_sub(1)]).map_or(0, |i| i + 1);
        let line = &text[start..end];
        if line
            .iter()
            .any(|b| !matches!(b, b'\n' | b'\r' | b' ' | b'\t'))
        {
            seen += 1;
            if seen == lines {
                return start;
            }
        }
        if start == 0 {
            return 0;
        }
        end = start;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &'static [u8], footer: usize, comment: Option<u8>) -> String {
        let mut w = Window::new(Box::new(text), footer);
        w.set_comment(comment);
        while w.fill().unwrap() {}
        String::from_utf8(w.buf).unwrap()
    }

    #[test]
    fn footer_lines_are_held_back_and_dropped() {
        assert_eq!(read_all(b"a\n1\n2\nTotal;3\n", 1, None), "a\n1\n2\n");
        assert_eq!(read_all(b"a\n1\nTotal;3\n\nRecords: 1", 2, None), "a\n1\n");
        assert_eq!(read_all(b"a\n1\n", 0, None), "a\n1\n");
        assert_eq!(read_all(b"a\n1\n", 5, None), "");
        assert_eq!(footer_start(b"x\ny\n", 1), 2);
        assert_eq!(footer_start(b"x\ny", 1), 2);
    }

    #[test]
    fn a_last_comment_line_is_ended() {
        assert_eq!(read_all(b"a\n1\n# end", 0, Some(b'#')), "a\n1\n# end\n");
        assert_eq!(read_all(b"a\n1\n2", 0, Some(b'#')), "a\n1\n2");
        assert_eq!(read_all(b"# only", 0, Some(b'#')), "# only\n");
    }

    #[test]
    fn title_lines_are_skipped_with_their_line_numbers() {
        let mut w = Window::new(Box::new(&b"Report\n\nh\n1\n"[..]), 0);
        w.fill().unwrap();
        assert_eq!(w.skip_lines(0, 1, 2).unwrap(), (8, 3));
        assert_eq!(&w.buf[8..], b"h\n1\n");
    }
}
