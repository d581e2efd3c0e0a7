//! MNIST from the original IDX files (gzip-compressed or raw).
//!
//! The crate ships its own copy under `data/mnist/` (regenerated and verified by
//! `tools/fetch_mnist.sh`), so training works offline. Every input-dependent check
//! returns a [`DataError`] instead of panicking: a bad data directory is a user
//! mistake and deserves a message that says which file and how to fix it.

use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use super::input::{self, InputError};
use super::{Corpus, DataError, DataSet};

/// Side length of an MNIST image in pixels.
pub const IMAGE_SIDE: usize = 28;
/// Pixels per MNIST image (`IMAGE_SIDE * IMAGE_SIDE`).
pub const PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

/// IDX magic for a 3-D unsigned-byte tensor (images).
const IMAGES_MAGIC: u32 = 0x0000_0803;
/// IDX magic for a 1-D unsigned-byte tensor (labels).
const LABELS_MAGIC: u32 = 0x0000_0801;
const IMAGES_HEADER: usize = 16;
const LABELS_HEADER: usize = 8;
const TRAIN_COUNT: usize = 60_000;
const TEST_COUNT: usize = 10_000;
const NUM_CLASSES: u8 = 10;

const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// Appended to file-level errors so the user always knows the way out.
const HINT: &str = "run tools/fetch_mnist.sh to regenerate the embedded copy, \
                    or pass --data DIR pointing at the four MNIST IDX files (.gz or raw)";

/// The four gzip IDX files of `data/mnist/`, compiled into the binary so that an installed
/// `vae-gpu` (e.g. `cargo install --path .`) trains with no data directory at all. 11 MB of
/// compressed bytes; decoding them takes about half a second.
const EMBEDDED: [(&str, &[u8]); 4] = [
    (
        TRAIN_IMAGES,
        include_bytes!("../../data/mnist/train-images-idx3-ubyte.gz"),
    ),
    (
        TRAIN_LABELS,
        include_bytes!("../../data/mnist/train-labels-idx1-ubyte.gz"),
    ),
    (
        TEST_IMAGES,
        include_bytes!("../../data/mnist/t10k-images-idx3-ubyte.gz"),
    ),
    (
        TEST_LABELS,
        include_bytes!("../../data/mnist/t10k-labels-idx1-ubyte.gz"),
    ),
];

/// Largest decompressed IDX file read from a user's directory (the real training images are
/// 47 MB): a bound on memory for a file whose header lies. Also the largest file (compressed or
/// raw) opened there, checked before it is read.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// The sha256 of the built-in copy's content: its four files decompressed and read one after
/// another (train images, train labels, test images, test labels), what
/// `zcat train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz
/// t10k-labels-idx1-ubyte.gz | sha256sum` prints in `data/mnist`. A `--data DIR` holding the same
/// images (compressed or raw) hashes the same; a test checks the constant against the embedded
/// bytes.
pub const BUILTIN_SHA256: &str = "b2d8f5bf39174ee5ffeefa97e42d673c35432b411bb5d1f74fbbeddae7f1690a";

/// The copy compiled into the binary: exactly 60 000 training and 10 000 test images.
pub fn embedded() -> Result<Corpus, DataError> {
    let file = |name: &str| -> Result<Vec<u8>, DataError> {
        let (_, gz) = EMBEDDED
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| DataError(format!("no embedded file {name}")))?;
        let mut bytes = Vec::new();
        MultiGzDecoder::new(*gz)
            .take(MAX_FILE_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                DataError(format!(
                    "embedded {name}: corrupt gzip ({e}); rebuild after tools/fetch_mnist.sh"
                ))
            })?;
        Ok(bytes)
    };
    let set = |images: &str, labels: &str, count: usize| {
        let what = format!("embedded {images}");
        let set = parse_set(&file(images)?, &what, || Ok((file(labels)?, labels.into())))?;
        if set.len() != count {
            return Err(DataError(format!(
                "{what}: {} images, expected {count}; rebuild after tools/fetch_mnist.sh",
                set.len()
            )));
        }
        Ok(set)
    };
    Ok(Corpus {
        train: set(TRAIN_IMAGES, TRAIN_LABELS, TRAIN_COUNT)?,
        test: set(TEST_IMAGES, TEST_LABELS, TEST_COUNT)?,
    })
}

/// Loads the four files from a user's directory `dir`. For each file accept either
/// `<name>.gz` (gzip) or the raw `<name>` file (prefer .gz if both). Names:
/// train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
/// t10k-labels-idx1-ubyte. Validates magic numbers, 28×28 images, at least one image per
/// set, as many labels as images, exact payload length (no truncation, no trailing bytes),
/// labels ≤ 9 and gzip integrity. Any number of images is accepted (a subset of MNIST, or
/// another set of 28×28 digits); the run's split sizes are checked against what is there.
pub fn load(dir: &Path) -> Result<Corpus, DataError> {
    load_hashed(dir).map(|(corpus, _)| corpus)
}

/// [`load`], with the sha256 of the content read (see [`BUILTIN_SHA256`] for what it covers).
pub fn load_hashed(dir: &Path) -> Result<(Corpus, String), DataError> {
    check_readable_dir(dir)?;
    let mut hash = Sha256::new();
    let train = load_set(dir, TRAIN_IMAGES, TRAIN_LABELS, &mut hash)?;
    let test = load_set(dir, TEST_IMAGES, TEST_LABELS, &mut hash)?;
    Ok((Corpus { train, test }, input::hex(&hash.finalize())))
}

/// `--data DIR` when given, else the embedded copy.
pub fn from_flag(dir: Option<&Path>) -> Result<Corpus, DataError> {
    match dir {
        Some(d) => load(d),
        None => embedded(),
    }
}

/// A missing directory and an unreadable one need different advice: only the first is fixed by
/// pointing `--data` elsewhere or regenerating the files.
fn check_readable_dir(dir: &Path) -> Result<(), DataError> {
    let unreadable = |e: io::Error| {
        DataError(format!(
            "MNIST data directory {} cannot be read: {e}; check its permissions",
            dir.display()
        ))
    };
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(DataError(format!(
            "MNIST data directory {} does not exist; {HINT}",
            dir.display()
        ))),
        Err(e) => Err(unreadable(e)),
        Ok(m) if !m.is_dir() => Err(DataError(format!(
            "--data {} is a file, not a directory; pass the directory that holds the four IDX files",
            dir.display()
        ))),
        Ok(_) => std::fs::read_dir(dir).map(|_| ()).map_err(unreadable),
    }
}

/// Lower-level parsers usable on arbitrary bytes (for tests): return (count, rows, cols, pixels) / labels.
///
/// Accepts any dimensions (shape policy lives in [`load`]); `what` names the source in
/// error messages. The payload must be exactly `count * rows * cols` bytes.
pub fn parse_idx_images(
    bytes: &[u8],
    what: &str,
) -> Result<(usize, usize, usize, Vec<u8>), DataError> {
    if bytes.len() < IMAGES_HEADER {
        return Err(DataError(format!(
            "{what}: truncated IDX image file: {} bytes, shorter than the {IMAGES_HEADER}-byte header",
            bytes.len()
        )));
    }
    let magic = be_u32(bytes, 0);
    if magic != IMAGES_MAGIC {
        return Err(bad_magic(what, magic, IMAGES_MAGIC, "image"));
    }
    let count = be_u32(bytes, 4) as usize;
    let rows = be_u32(bytes, 8) as usize;
    let cols = be_u32(bytes, 12) as usize;
    let expected = count
        .checked_mul(rows)
        .and_then(|n| n.checked_mul(cols))
        .ok_or_else(|| {
            DataError(format!(
                "{what}: implausible IDX header ({count} images of {rows}x{cols} overflows)"
            ))
        })?;
    let payload = &bytes[IMAGES_HEADER..];
    check_payload_len(what, payload.len(), expected, || {
        format!("{count} images of {rows}x{cols}")
    })?;
    Ok((count, rows, cols, payload.to_vec()))
}

/// Parses an IDX label file; rejects labels outside 0..=9 since they would index past the
/// class range downstream.
pub fn parse_idx_labels(bytes: &[u8], what: &str) -> Result<Vec<u8>, DataError> {
    if bytes.len() < LABELS_HEADER {
        return Err(DataError(format!(
            "{what}: truncated IDX label file: {} bytes, shorter than the {LABELS_HEADER}-byte header",
            bytes.len()
        )));
    }
    let magic = be_u32(bytes, 0);
    if magic != LABELS_MAGIC {
        return Err(bad_magic(what, magic, LABELS_MAGIC, "label"));
    }
    let count = be_u32(bytes, 4) as usize;
    let payload = &bytes[LABELS_HEADER..];
    check_payload_len(what, payload.len(), count, || format!("{count} labels"))?;
    if let Some((i, &l)) = payload.iter().enumerate().find(|(_, &l)| l >= NUM_CLASSES) {
        return Err(DataError(format!(
            "{what}: label {i} is {l}, outside the valid range 0..=9"
        )));
    }
    Ok(payload.to_vec())
}

/// Binarization used in training: deterministic threshold pixel > 127 -> 1.0 else 0.0.
///
/// Deterministic (not stochastic Bernoulli sampling) so runs are reproducible and the
/// CPU and GPU paths see identical inputs.
pub fn binarize_threshold(pixel: u8) -> f32 {
    if pixel > 127 {
        1.0
    } else {
        0.0
    }
}

/// Loads and cross-validates one images/labels pair; `hash` takes the decompressed bytes of both
/// files, images first.
fn load_set(
    dir: &Path,
    images_name: &str,
    labels_name: &str,
    hash: &mut Sha256,
) -> Result<DataSet, DataError> {
    let (img_path, img_bytes) = read_maybe_gz(dir, images_name, MAX_FILE_BYTES)?;
    hash.update(&img_bytes);
    parse_set(&img_bytes, &img_path.display().to_string(), || {
        let (path, bytes) = read_maybe_gz(dir, labels_name, MAX_FILE_BYTES)?;
        hash.update(&bytes);
        Ok((bytes, path.display().to_string()))
    })
    .map_err(with_hint)
}

/// One image set from the bytes of its IDX image file and, read only once the images are known
/// to be good (so a bad image file is reported first), its label file and name.
fn parse_set(
    img_bytes: &[u8],
    img_what: &str,
    labels: impl FnOnce() -> Result<(Vec<u8>, String), DataError>,
) -> Result<DataSet, DataError> {
    let (count, rows, cols, images) = parse_idx_images(img_bytes, img_what)?;
    check_image_shape(img_what, count, rows, cols)?;
    let (lbl_bytes, lbl_what) = labels()?;
    let labels = parse_idx_labels(&lbl_bytes, &lbl_what)?;
    if labels.len() != count {
        return Err(DataError(format!(
            "{lbl_what}: has {} labels but {img_what} has {count} images",
            labels.len()
        )));
    }
    Ok(DataSet::pixels(PIXELS, images, labels))
}

fn check_image_shape(what: &str, count: usize, rows: usize, cols: usize) -> Result<(), DataError> {
    if rows != IMAGE_SIDE || cols != IMAGE_SIDE {
        return Err(DataError(format!(
            "{what}: images are {rows}x{cols}, expected {IMAGE_SIDE}x{IMAGE_SIDE} (not MNIST?)"
        )));
    }
    if count == 0 {
        return Err(DataError(format!("{what}: contains no images")));
    }
    Ok(())
}

fn read_maybe_gz(dir: &Path, name: &str, limit: u64) -> Result<(PathBuf, Vec<u8>), DataError> {
    let gz_path = dir.join(format!("{name}.gz"));
    let raw_path = dir.join(name);
    // Whatever is there under either name is opened, so that a FIFO or a device in its place is
    // reported as what it is rather than as a missing file.
    let (path, gz) = if std::fs::metadata(&gz_path).is_ok() {
        (gz_path, true)
    } else if std::fs::metadata(&raw_path).is_ok() {
        (raw_path, false)
    } else {
        return Err(DataError(format!(
            "MNIST file not found: tried {} and {}; {HINT}",
            gz_path.display(),
            raw_path.display()
        )));
    };
    // A raw file longer than the limit is refused by its length, before anything is read.
    let cap = if gz { MAX_FILE_BYTES } else { limit };
    let (file, _) = input::open(&path, cap).map_err(|e| match e {
        InputError::Io(e) => open_error(&path, e),
        e => DataError(format!(
            "{}: {e}; pass --data DIR holding the four MNIST IDX files (.gz or raw)",
            path.display()
        )),
    })?;
    let mut bytes = Vec::new();
    if gz {
        bytes = gunzip(BufReader::with_capacity(1 << 16, file), limit)
            .map_err(|e| gzip_error(&path, e))?;
    } else {
        file.take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| DataError(format!("{}: read failed: {e}; {HINT}", path.display())))?;
    }
    Ok((path, bytes))
}

/// The decompressed bytes of a gzip stream (several members read as one), at most `limit` of
/// them: more is reported by the parsers as trailing bytes.
pub fn gunzip(compressed: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    // The whole compressed file is small (<10 MB); buffered streaming through the decoder
    // is as fast as reading it first, and `take` bounds the decompressed size.
    let decoder = MultiGzDecoder::new(compressed);
    let capacity = usize::try_from(limit).unwrap_or(usize::MAX).min(1 << 27);
    let mut bytes = Vec::with_capacity(capacity);
    decoder.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A file that exists but cannot be opened is a permissions problem, not a missing download.
fn open_error(path: &Path, e: io::Error) -> DataError {
    if e.kind() == io::ErrorKind::PermissionDenied {
        DataError(format!(
            "{}: cannot be read: {e}; check its permissions",
            path.display()
        ))
    } else {
        DataError(format!("{}: cannot open: {e}; {HINT}", path.display()))
    }
}

fn gzip_error(path: &Path, e: io::Error) -> DataError {
    DataError(format!(
        "{}: corrupt gzip file ({e}); {HINT}",
        path.display()
    ))
}

/// Appends the way out, unless the message already has one (file-level errors carry their own).
fn with_hint(e: DataError) -> DataError {
    if e.0.contains(HINT) || e.0.contains("permissions") {
        e
    } else {
        DataError(format!("{}; {HINT}", e.0))
    }
}

fn bad_magic(what: &str, got: u32, want: u32, kind: &str) -> DataError {
    DataError(format!(
        "{what}: bad magic number 0x{got:08x}, expected 0x{want:08x} for an IDX {kind} file \
         (wrong file, or still compressed?)"
    ))
}

fn check_payload_len(
    what: &str,
    got: usize,
    expected: usize,
    describe: impl Fn() -> String,
) -> Result<(), DataError> {
    if got < expected {
        Err(DataError(format!(
            "{what}: truncated: header declares {} ({expected} payload bytes) but only {got} present",
            describe()
        )))
    } else if got > expected {
        Err(DataError(format!(
            "{what}: trailing bytes: header declares {} ({expected} payload bytes) but more data follows",
            describe()
        )))
    } else {
        Ok(())
    }
}

/// Caller guarantees `bytes.len() >= at + 4`.
fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn idx_images(count: u32, rows: u32, cols: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&IMAGES_MAGIC.to_be_bytes());
        v.extend_from_slice(&count.to_be_bytes());
        v.extend_from_slice(&rows.to_be_bytes());
        v.extend_from_slice(&cols.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn idx_labels(labels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
        v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        v.extend_from_slice(labels);
        v
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// A fresh, unique temp directory; removed on drop.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let p = std::env::temp_dir().join(format!(
                "vae_gpu_data_test_{tag}_{}_{n}_{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn write(&self, name: &str, bytes: &[u8]) {
            std::fs::write(self.0.join(name), bytes).unwrap();
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn err_msg<T>(r: Result<T, DataError>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_valid_images_and_labels() {
        let (n, r, c, px) = parse_idx_images(&idx_images(2, 2, 3, &[1; 12]), "x").unwrap();
        assert_eq!((n, r, c, px.len()), (2, 2, 3, 12));
        assert_eq!(
            parse_idx_labels(&idx_labels(&[0, 9, 3]), "y").unwrap(),
            vec![0, 9, 3]
        );
    }

    #[test]
    fn truncated_file() {
        // Short payload.
        let m = err_msg(parse_idx_images(&idx_images(2, 28, 28, &[0; 1000]), "img"));
        assert!(m.contains("img") && m.contains("truncated"), "{m}");
        // Shorter than the header.
        let m = err_msg(parse_idx_images(&[0, 0, 8, 3, 0], "img"));
        assert!(m.contains("truncated"), "{m}");
        let m = err_msg(parse_idx_labels(&idx_labels(&[1, 2, 3])[..9], "lbl"));
        assert!(m.contains("lbl") && m.contains("truncated"), "{m}");
        let m = err_msg(parse_idx_labels(&[], "lbl"));
        assert!(m.contains("truncated"), "{m}");
    }

    #[test]
    fn truncated_file_on_disk() {
        let t = TempDir::new("trunc");
        let full = idx_images(10_000, 28, 28, &vec![0; 10_000 * PIXELS]);
        t.write("t10k-images-idx3-ubyte", &full[..full.len() - 1]);
        let m = err_msg(load_set(&t.0, TEST_IMAGES, TEST_LABELS, &mut Sha256::new()));
        assert!(
            m.contains("t10k-images-idx3-ubyte") && m.contains("truncated"),
            "{m}"
        );
        assert!(m.contains("fetch_mnist.sh"), "{m}");
    }

    #[test]
    fn bad_magic() {
        let mut b = idx_images(1, 28, 28, &[0; PIXELS]);
        b[3] = 0x01;
        let m = err_msg(parse_idx_images(&b, "img"));
        assert!(m.contains("bad magic") && m.contains("0x00000801"), "{m}");
        // Label parser must reject an image file.
        let m = err_msg(parse_idx_labels(&idx_images(1, 1, 1, &[0]), "lbl"));
        assert!(m.contains("bad magic"), "{m}");
        // A still-gzipped buffer should also be caught by the magic check.
        let m = err_msg(parse_idx_labels(&gzip(&idx_labels(&[1])), "lbl"));
        assert!(m.contains("bad magic"), "{m}");
    }

    #[test]
    fn wrong_dims() {
        // Parser accepts any shape; the MNIST policy check rejects it.
        let (n, r, c, _) = parse_idx_images(&idx_images(3, 32, 32, &[0; 3 * 1024]), "img").unwrap();
        let m = err_msg(check_image_shape("img", n, r, c));
        assert!(m.contains("32x32") && m.contains("28x28"), "{m}");
        // An empty set is rejected; any other count is accepted.
        let m = err_msg(check_image_shape("img", 0, 28, 28));
        assert!(m.contains("no images"), "{m}");
        assert!(check_image_shape("img", 5, 28, 28).is_ok());
        // Overflowing header must not panic.
        let m = err_msg(parse_idx_images(
            &idx_images(u32::MAX, u32::MAX, u32::MAX, &[]),
            "img",
        ));
        assert!(m.contains("img"), "{m}");
    }

    #[test]
    fn wrong_dims_on_disk() {
        let t = TempDir::new("dims");
        t.write(
            "t10k-images-idx3-ubyte.gz",
            &gzip(&idx_images(10_000, 27, 29, &vec![0; 10_000 * 27 * 29])),
        );
        let m = err_msg(load_set(&t.0, TEST_IMAGES, TEST_LABELS, &mut Sha256::new()));
        assert!(m.contains("27x29"), "{m}");
    }

    #[test]
    fn trailing_bytes() {
        let m = err_msg(parse_idx_images(&idx_images(1, 2, 2, &[0; 5]), "img"));
        assert!(m.contains("trailing"), "{m}");
        let mut b = idx_labels(&[1, 2]);
        b.push(0);
        let m = err_msg(parse_idx_labels(&b, "lbl"));
        assert!(m.contains("trailing"), "{m}");
    }

    #[test]
    fn trailing_bytes_on_disk_bounded_read() {
        // A file much larger than expected is read only up to limit+1 and reported as trailing.
        let t = TempDir::new("trail");
        let mut b = idx_labels(&[1, 2, 3]);
        b.extend_from_slice(&[0; 4096]);
        t.write("lbl.gz", &gzip(&b));
        let (path, bytes) = read_maybe_gz(&t.0, "lbl", 12).unwrap();
        assert!(path.ends_with("lbl.gz"));
        assert_eq!(bytes.len(), 12);
        let m = err_msg(parse_idx_labels(&bytes, "lbl"));
        assert!(m.contains("trailing"), "{m}");
    }

    #[test]
    fn label_out_of_range() {
        let m = err_msg(parse_idx_labels(&idx_labels(&[0, 9, 10, 3]), "lbl"));
        assert!(m.contains("label 2 is 10"), "{m}");
        let m = err_msg(parse_idx_labels(&idx_labels(&[255]), "lbl"));
        assert!(m.contains("255"), "{m}");
    }

    #[test]
    fn label_count_mismatch() {
        let t = TempDir::new("count");
        t.write(
            "t10k-images-idx3-ubyte",
            &idx_images(10_000, 28, 28, &vec![0; 10_000 * PIXELS]),
        );
        t.write("t10k-labels-idx1-ubyte", &idx_labels(&[1; 9_999]));
        let m = err_msg(load_set(&t.0, TEST_IMAGES, TEST_LABELS, &mut Sha256::new()));
        assert!(
            m.contains("9999 labels") && m.contains("10000 images"),
            "{m}"
        );
        // And the valid pair loads, from raw files.
        t.write("t10k-labels-idx1-ubyte", &idx_labels(&[7; 10_000]));
        let set = load_set(&t.0, TEST_IMAGES, TEST_LABELS, &mut Sha256::new()).unwrap();
        assert_eq!(set.len(), 10_000);
    }

    #[test]
    fn gzip_garbage() {
        let t = TempDir::new("gzip");
        // Not gzip at all.
        t.write("a.gz", b"this is definitely not gzip data");
        let m = err_msg(read_maybe_gz(&t.0, "a", 1 << 20));
        assert!(m.contains("a.gz") && m.contains("corrupt gzip"), "{m}");
        // Valid gzip header, corrupted body.
        let mut g = gzip(&idx_labels(&[1; 1000]));
        let mid = g.len() / 2;
        for b in &mut g[mid..mid + 8] {
            *b ^= 0x5a;
        }
        t.write("b.gz", &g);
        let m = err_msg(read_maybe_gz(&t.0, "b", 1 << 20));
        assert!(m.contains("corrupt gzip"), "{m}");
        // Truncated gzip stream.
        let g = gzip(&idx_labels(&[1; 1000]));
        t.write("c.gz", &g[..g.len() - 6]);
        let m = err_msg(read_maybe_gz(&t.0, "c", 1 << 20));
        assert!(m.contains("corrupt gzip"), "{m}");
    }

    #[test]
    fn prefers_gz_over_raw() {
        let t = TempDir::new("pref");
        t.write("f", b"raw");
        t.write("f.gz", &gzip(b"gz"));
        let (p, b) = read_maybe_gz(&t.0, "f", 100).unwrap();
        assert!(p.ends_with("f.gz"));
        assert_eq!(b, b"gz");
    }

    #[test]
    fn missing_file_names_paths() {
        let t = TempDir::new("missing");
        let m = err_msg(load(&t.0));
        let expected = t.0.join("train-images-idx3-ubyte.gz");
        assert!(m.contains(&expected.display().to_string()), "{m}");
        assert!(m.contains("--data"), "{m}");
        let m = err_msg(load(&t.0.join("nope")));
        assert!(m.contains("does not exist"), "{m}");
    }

    #[test]
    fn a_smaller_idx_set_loads() {
        let t = TempDir::new("small");
        let img = |n: u32| gzip(&idx_images(n, 28, 28, &vec![9; n as usize * PIXELS]));
        t.write("train-images-idx3-ubyte.gz", &img(300));
        t.write("train-labels-idx1-ubyte.gz", &gzip(&idx_labels(&[3; 300])));
        t.write("t10k-images-idx3-ubyte.gz", &img(50));
        t.write("t10k-labels-idx1-ubyte.gz", &gzip(&idx_labels(&[4; 50])));
        let m = load(&t.0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((m.train.len(), m.test.len()), (300, 50));
    }

    #[test]
    fn unreadable_is_not_reported_as_missing() {
        let p = Path::new("/some/dir/train-images-idx3-ubyte.gz");
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let m = open_error(p, denied).to_string();
        assert!(
            m.contains("permissions") && !m.contains("fetch_mnist"),
            "{m}"
        );
        let t = TempDir::new("file");
        t.write("f", b"x");
        let m = err_msg(load(&t.0.join("f")));
        assert!(m.contains("not a directory"), "{m}");
    }

    #[test]
    fn image_set_accessors() {
        let set = DataSet::pixels(
            PIXELS,
            (0..3 * PIXELS).map(|i| (i / PIXELS) as u8).collect(),
            vec![4, 5, 6],
        );
        assert_eq!(set.len(), 3);
        assert!(!set.is_empty());
        assert!(set.image(1).iter().all(|&p| p == 1));
        let s = set.slice(1, 2);
        assert_eq!(s.len(), 2);
        assert_eq!(s.labels, vec![5, 6]);
        assert!(s.image(1).iter().all(|&p| p == 2));
        assert!(set.slice(3, 0).is_empty());
    }

    #[test]
    fn binarize() {
        assert_eq!(binarize_threshold(0), 0.0);
        assert_eq!(binarize_threshold(127), 0.0);
        assert_eq!(binarize_threshold(128), 1.0);
        assert_eq!(binarize_threshold(255), 1.0);
    }

    /// The constant the checkpoints record for the built-in copy is the hash of its content, and
    /// a directory holding the same files hashes the same, raw or compressed.
    #[test]
    fn the_builtin_hash_is_its_contents_and_a_copy_hashes_the_same() {
        let parts: Vec<Vec<u8>> = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS]
            .iter()
            .map(|name| {
                let (_, gz) = EMBEDDED.iter().find(|(n, _)| n == name).unwrap();
                let mut b = Vec::new();
                MultiGzDecoder::new(*gz).read_to_end(&mut b).unwrap();
                b
            })
            .collect();
        let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        assert_eq!(input::sha256_of(&refs), BUILTIN_SHA256);
        let t = TempDir::new("copy");
        for (i, name) in [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS]
            .iter()
            .enumerate()
        {
            // Two raw, two compressed.
            if i % 2 == 0 {
                t.write(name, &parts[i]);
            } else {
                t.write(&format!("{name}.gz"), &gzip(&parts[i]));
            }
        }
        let (corpus, sha) = load_hashed(&t.0).unwrap();
        assert_eq!(sha, BUILTIN_SHA256);
        assert_eq!(corpus.test.len(), TEST_COUNT);
        // One changed pixel is another data set.
        let mut changed = parts[2].clone();
        changed[IMAGES_HEADER + 400] ^= 1;
        t.write(TEST_IMAGES, &changed);
        assert_ne!(load_hashed(&t.0).unwrap().1, BUILTIN_SHA256);
    }

    /// A FIFO or a device under an IDX file's name is reported as such at once (a FIFO used to
    /// block the open until a writer came; /dev/zero was read up to the 1 GiB limit).
    #[cfg(unix)]
    #[test]
    fn a_fifo_or_device_in_place_of_a_file_is_refused_at_once() {
        let t = TempDir::new("fifo");
        let p = t.0.join("train-images-idx3-ubyte");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let m = err_msg(load(&t.0));
        assert!(m.contains("FIFO") && m.contains("train-images"), "{m}");
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
        let t0 = std::time::Instant::now();
        let m = err_msg(load(&t.0));
        assert!(m.contains("character device"), "{m}");
        assert!(t0.elapsed().as_secs() < 2);
    }

    #[test]
    fn loads_embedded_mnist() {
        let m = embedded().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.train.len(), 60_000);
        assert_eq!(m.train.labels.len(), 60_000);
        assert_eq!(m.train.values.len(), 60_000 * PIXELS);
        assert_eq!(m.test.len(), 10_000);
        assert_eq!(m.test.labels.len(), 10_000);
        assert_eq!(m.train.labels[0], 5);
        assert_eq!(m.test.labels[0], 7);
        // Sanity: the first digit has ink in the middle and blank corners.
        assert_eq!(m.train.image(0)[0], 0);
        assert!(m.train.image(0).iter().any(|&p| p > 200));
    }
}
