//! The bytes of a file as UTF-8 text: decompressed (gzip, zstd — by magic bytes, whatever the
//! name says) and transcoded (windows-1252/latin-1/UTF-16 → UTF-8 with `encoding_rs`), streamed.
//! The content hash is computed on the raw file bytes as they are read.

use std::io::{self, BufReader, Read};

use encoding_rs::{Encoding as RsEncoding, UTF_8, WINDOWS_1252};
use encoding_rs_io::DecodeReaderBytesBuilder;

use crate::config::Encoding;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Hash state of the raw file bytes, readable once the stream is consumed.
#[derive(Clone, Default)]
pub struct HashHandle(std::sync::Arc<std::sync::Mutex<(blake3::Hasher, u64)>>);

impl HashHandle {
    /// (hex hash, bytes read)
    pub fn finish(&self) -> (String, u64) {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (g.0.finalize().to_hex().to_string(), g.1)
    }
}

/// Hashes and counts what is read from the file itself (before decompression).
struct Hashing<R> {
    inner: R,
    handle: HashHandle,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut g = self.handle.0.lock().unwrap_or_else(|e| e.into_inner());
        g.0.update(&buf[..n]);
        g.1 += n as u64;
        Ok(n)
    }
}

/// Every byte of `file` (at most `max`), hashed as [`open_text`] hashes: for formats read whole
/// (a workbook is a zip archive, read by seeking). None when the file is larger than `max`.
pub fn read_all_hashed(file: impl Read, max: u64) -> io::Result<Option<(Vec<u8>, HashHandle)>> {
    let handle = HashHandle::default();
    let mut hashing = Hashing {
        inner: file,
        handle: handle.clone(),
    };
    let mut bytes = Vec::new();
    (&mut hashing).take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Ok(None);
    }
    Ok(Some((bytes, handle)))
}

/// Every byte of `file` read once and hashed as [`open_text`] hashes, nothing kept: for formats
/// whose reader seeks (Parquet: footer first).
pub fn hash_stream(file: impl Read) -> io::Result<HashHandle> {
    let handle = HashHandle::default();
    let mut hashing = Hashing {
        inner: file,
        handle: handle.clone(),
    };
    let mut buf = vec![0u8; 256 * 1024];
    while hashing.read(&mut buf)? > 0 {}
    Ok(handle)
}

/// What was found about the file while opening it.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    pub compression: Compression,
    /// The encoding the text is read in (UTF-8 whenever a UTF-8 byte order mark starts it).
    pub encoding: &'static RsEncoding,
    /// A UTF-8 byte order mark started the text.
    pub utf8_bom: bool,
}

impl SourceInfo {
    /// The encoding as recorded with a commit and shown: its WHATWG name (`windows-1252`),
    /// `utf-8 (BOM)` for UTF-8 with a byte order mark.
    pub fn encoding_label(&self) -> &'static str {
        if self.utf8_bom {
            "utf-8 (BOM)"
        } else {
            self.encoding.name()
        }
    }
}

/// How the file's bytes are compressed (told by their magic bytes, whatever the name says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl std::fmt::Display for Compression {
    /// As recorded with a commit and shown by `inspect` and `sniff`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

/// Opens `file` as a stream of UTF-8 text. Bytes that are invalid UTF-8 in a file read as
/// UTF-8 stay as they are: the row holding them is quarantined downstream.
pub fn open_text(
    file: impl Read + Send + 'static,
    encoding: Encoding,
) -> io::Result<(Box<dyn Read + Send>, HashHandle, SourceInfo)> {
    let handle = HashHandle::default();
    let hashing = Hashing {
        inner: file,
        handle: handle.clone(),
    };
    // Zeroed whole at its first fill: small, as most files are. Reads of the text larger than
    // it (the window's) bypass it; only a decompressor reads through it.
    let mut raw = BufReader::with_capacity(64 * 1024, hashing);
    let magic = {
        use std::io::BufRead;
        let b = raw.fill_buf()?;
        b[..b.len().min(4)].to_vec()
    };
    let (decompressed, compression): (Box<dyn Read + Send>, Compression) =
        if magic.starts_with(GZIP_MAGIC) {
            (
                Box::new(Corrupt {
                    inner: flate2::read::MultiGzDecoder::new(raw),
                    what: "gzip",
                }),
                Compression::Gzip,
            )
        } else if magic.starts_with(ZSTD_MAGIC) {
            (
                Box::new(Corrupt {
                    inner: zstd::stream::read::Decoder::with_buffer(raw)?,
                    what: "zstd",
                }),
                Compression::Zstd,
            )
        } else {
            (Box::new(raw), Compression::None)
        };

    // Sample the start of the text to choose the encoding.
    let mut sample = Vec::with_capacity(64 * 1024);
    let mut decompressed = decompressed;
    (&mut decompressed)
        .take(64 * 1024)
        .read_to_end(&mut sample)?;
    let chosen: &'static RsEncoding = match encoding {
        Encoding::Fixed(e) => e,
        Encoding::Auto => detect(&sample),
    };
    let utf8_bom = sample.starts_with(UTF8_BOM);
    let info = SourceInfo {
        compression,
        // The decoder goes by a byte order mark before the encoding it is given.
        encoding: if utf8_bom { UTF_8 } else { chosen },
        utf8_bom,
    };
    let whole: Box<dyn Read + Send> = Box::new(io::Cursor::new(sample).chain(decompressed));
    if chosen == UTF_8 {
        // Pass through (invalid bytes are reported per row); only the BOM goes.
        return Ok((Box::new(StripBom::new(whole)), handle, info));
    }
    let decoded = DecodeReaderBytesBuilder::new()
        .encoding(Some(chosen))
        .strip_bom(true)
        .build(whole);
    Ok((Box::new(decoded), handle, info))
}

/// A stretch of raw bytes from the middle of a plain file, as UTF-8 text in the encoding
/// `open_text` chose for the file (UTF-8 as it is; a one-byte encoding transcoded). Where it
/// was cut may split a character: the caller starts at the next line.
pub fn decode_stretch(raw: &[u8], info: &SourceInfo) -> Vec<u8> {
    if info.encoding == UTF_8 {
        return raw.to_vec();
    }
    info.encoding
        .decode_without_bom_handling(raw)
        .0
        .into_owned()
        .into_bytes()
}

/// UTF-8 (possibly with a BOM) if the sample is valid UTF-8, UTF-16 by BOM, else windows-1252
/// (a superset of latin-1 for text, and what Brazilian Excel exports use).
pub fn detect(sample: &[u8]) -> &'static RsEncoding {
    if let Some((enc, _)) = RsEncoding::for_bom(sample) {
        return enc;
    }
    match std::str::from_utf8(sample) {
        Ok(_) => UTF_8,
        // Cut in the middle of a character at the end of the sample: still UTF-8.
        Err(e) if e.error_len().is_none() => UTF_8,
        Err(_) => WINDOWS_1252,
    }
}

/// A decompressor's errors are about the data (corrupt or truncated), not passing I/O trouble:
/// reported as `InvalidData` so that the file is rejected, not retried forever.
struct Corrupt<R> {
    inner: R,
    what: &'static str,
}

impl<R: Read> Read for Corrupt<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| match e.kind() {
            // Not about the data: a read that may work later (a writer came, see `lease`).
            io::ErrorKind::Interrupted
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::ResourceBusy => e,
            _ => io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} data: {e}", self.what),
            ),
        })
    }
}

/// Drops a leading UTF-8 BOM.
struct StripBom<R> {
    inner: R,
    checked: bool,
    pending: Vec<u8>,
}

impl<R: Read> StripBom<R> {
    fn new(inner: R) -> Self {
        StripBom {
            inner,
            checked: false,
            pending: Vec::new(),
        }
    }
}

impl<R: Read> Read for StripBom<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.checked {
            self.checked = true;
            let mut head = [0u8; 3];
            let mut n = 0;
            while n < 3 {
                let k = self.inner.read(&mut head[n..])?;
                if k == 0 {
                    break;
                }
                n += k;
            }
            if head[..n] != *UTF8_BOM {
                self.pending.extend_from_slice(&head[..n]);
            }
        }
        if !self.pending.is_empty() {
            let m = self.pending.len().min(buf.len());
            buf[..m].copy_from_slice(&self.pending[..m]);
            self.pending.drain(..m);
            return Ok(m);
        }
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_detected_from_the_start_of_the_file() {
        assert_eq!(detect(b"a,b\n1,2\n"), UTF_8);
        assert_eq!(detect("ação".as_bytes()), UTF_8);
        assert_eq!(detect(b"a\xe7\xe3o"), WINDOWS_1252);
        // A UTF-8 character cut by the end of the sample.
        assert_eq!(detect(&"ação".as_bytes()[..2]), UTF_8);
        assert_eq!(detect(b"\xff\xfea\x00"), encoding_rs::UTF_16LE);
    }

    #[test]
    fn a_bom_is_dropped() {
        let mut out = String::new();
        StripBom::new(&b"\xEF\xBB\xBFx,y"[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "x,y");
        let mut out = String::new();
        StripBom::new(&b"xy"[..]).read_to_string(&mut out).unwrap();
        assert_eq!(out, "xy");
    }
}
