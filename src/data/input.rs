//! Reading the files a user names (data, checkpoints, model files, metrics) safely: only regular
//! files, their size capped before anything is read, and a FIFO refused instead of waited on.
//!
//! `/dev/zero`, a FIFO, a directory or a 20 GB sparse file given as an input must end in one
//! error line at once, not in an endless read, an out-of-memory abort or a process blocked on a
//! pipe nobody writes. So every input is opened non-blocking (opening a FIFO then returns at once
//! instead of waiting for a writer), checked with `fstat` on the opened handle (no race with a
//! rename between the check and the open), its length compared with the caller's cap, and read
//! through [`Take`] so a file that grows while it is read is still bounded.
//!
//! [`Hashing`] wraps a reader to compute the sha256 of exactly the bytes read: the content hash a
//! checkpoint records of the data a run was trained on (for a single file, what `sha256sum` says).

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Take};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Why an input could not be read; `Display` completes a sentence that begins with the file's
/// name ("F: is a FIFO, not a regular file").
#[derive(Debug)]
pub enum InputError {
    Io(io::Error),
    /// Not a regular file: what it is instead ("a FIFO", "a directory", "a character device").
    NotRegular(&'static str),
    TooLarge {
        len: u64,
        max: u64,
    },
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::Io(e) if e.kind() == io::ErrorKind::NotFound => {
                write!(f, "does not exist")
            }
            InputError::Io(e) => write!(f, "cannot be read ({e})"),
            InputError::NotRegular(what) => write!(f, "is {what}, not a regular file"),
            InputError::TooLarge { len, max } => write!(
                f,
                "is {}, more than the {} such a file may be",
                size(*len),
                size(*max)
            ),
        }
    }
}

impl std::error::Error for InputError {}

impl From<io::Error> for InputError {
    fn from(e: io::Error) -> Self {
        InputError::Io(e)
    }
}

/// A byte count for messages: "20.0 GiB", "512 MiB", "1.5 KiB", "17 bytes".
pub fn size(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, scale) in UNITS {
        if n >= scale {
            let v = n as f64 / scale as f64;
            return if n.is_multiple_of(scale) {
                format!("{} {unit}", n / scale)
            } else {
                format!("{v:.1} {unit}")
            };
        }
    }
    format!("{n} bytes")
}

fn kind_of(t: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a plain file"
    }
}

/// Opens `path` for reading if it is a regular file of at most `max` bytes; returns the file,
/// bounded to `max` bytes, and its length. Symbolic links are followed (a user may link their
/// data), but what they lead to must be a regular file.
pub fn open(path: &Path, max: u64) -> Result<(Take<File>, u64), InputError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // A FIFO opened for reading blocks until a writer appears; non-blocking, it opens at once
        // and is refused below. On a regular file the flag changes nothing.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(InputError::NotRegular(kind_of(meta.file_type())));
    }
    let len = meta.len();
    if len > max {
        return Err(InputError::TooLarge { len, max });
    }
    // One byte beyond the cap, so a file that grew since the fstat is caught by `read_all`.
    Ok((file.take(max + 1), len))
}

/// The whole of `path`, a regular file of at most `max` bytes.
pub fn read(path: &Path, max: u64) -> Result<Vec<u8>, InputError> {
    let (mut file, len) = open(path, max)?;
    let mut bytes = Vec::with_capacity(len as usize);
    file.read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(InputError::TooLarge {
            len: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

/// [`read`] as UTF-8 text.
pub fn read_text(path: &Path, max: u64) -> Result<String, InputError> {
    String::from_utf8(read(path, max)?).map_err(|e| {
        InputError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not UTF-8 text: {e}"),
        ))
    })
}

/// A reader that hashes (sha256) every byte read through it and, for text formats, refuses NUL
/// bytes: a text file never holds one, and a sparse or binary file given as CSV would otherwise
/// be read as one endless field.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    reject_nul: bool,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            read: 0,
            reject_nul: false,
        }
    }

    /// Also fail on the first NUL byte (an `InvalidData` error naming its offset).
    pub fn text(inner: R) -> Self {
        Self {
            reject_nul: true,
            ..Self::new(inner)
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Reads what is left (so the hash covers the whole input); the hex sha256 and the number of
    /// bytes read in all.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((hex(&self.hasher.finalize()), self.read))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.reject_nul {
            if let Some(i) = buf[..n].iter().position(|&b| b == 0) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "byte {} is NUL: binary data, not text",
                        self.read + i as u64 + 1
                    ),
                ));
            }
        }
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sha256 of `parts` read one after another, in hex (what `cat parts… | sha256sum` prints).
pub fn sha256_of(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("vae_gpu_input_{}_{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let d = tmp("regular");
        let f = d.join("f");
        std::fs::write(&f, b"hello").unwrap();
        assert_eq!(read(&f, 5).unwrap(), b"hello");
        assert!(matches!(
            read(&f, 4),
            Err(InputError::TooLarge { len: 5, max: 4 })
        ));
        let m = read(&d, 100).unwrap_err().to_string();
        assert!(m.contains("a directory"), "{m}");
        let m = read(Path::new("/dev/zero"), 100).unwrap_err().to_string();
        assert!(m.contains("character device"), "{m}");
        let m = read(&d.join("absent"), 100).unwrap_err().to_string();
        assert_eq!(m, "does not exist");
        // A sparse file far larger than the cap is refused by its length, before any read.
        let sparse = d.join("sparse");
        File::create(&sparse).unwrap().set_len(20 << 30).unwrap();
        let t0 = std::time::Instant::now();
        let m = read(&sparse, 1 << 20).unwrap_err().to_string();
        assert!(m.contains("20 GiB") && m.contains("1 MiB"), "{m}");
        assert!(t0.elapsed().as_secs() < 1);
        std::fs::remove_dir_all(&d).ok();
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let d = tmp("fifo");
        let p = d.join("pipe");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let m = read(&p, 100).unwrap_err().to_string();
        assert!(m.contains("FIFO"), "{m}");
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn hashing_reader_hashes_what_was_read_and_refuses_nul_in_text() {
        let h = Hashing::new(&b"abc"[..]);
        assert_eq!(
            h.finish().unwrap(),
            (
                // sha256("abc"), FIPS 180-2's example.
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string(),
                3
            )
        );
        assert_eq!(sha256_of(&[b"a", b"bc"]), sha256_of(&[b"abc"]));
        let mut t = Hashing::text(&b"1,2\n\0\0"[..]);
        let mut s = String::new();
        let e = t.read_to_string(&mut s).unwrap_err();
        assert!(e.to_string().contains("byte 5 is NUL"), "{e}");
        assert_eq!(size(20 << 30), "20 GiB");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(17), "17 bytes");
    }
}
