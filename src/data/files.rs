//! A user's own real-valued vectors (`--data-file FILE`): CSV (one row per line, comma-separated
//! numbers, an optional header line) or NumPy `.npy` (a 2-D float32 or float64 array, or a 1-D one
//! read as a column). Everything is validated before training starts: an empty file, ragged rows,
//! a field that is not a number, NaN or infinity, and an unsupported array each give an error that
//! names the file and the place.

use std::io::{BufReader, Read};
use std::path::Path;

use super::input::{self, Hashing, InputError};
use super::{DataError, DataSet};

/// Most values a data file may hold (256 MB of f32).
pub const MAX_VALUES: usize = 64 << 20;
/// Largest CSV file read, checked before anything is read (16 bytes for each of `MAX_VALUES`).
pub const MAX_CSV_BYTES: u64 = 1 << 30;
/// Largest `.npy` file: `MAX_VALUES` float64 values and a header of up to 1 MiB.
pub const MAX_NPY_BYTES: u64 = MAX_VALUES as u64 * 8 + (1 << 20);
/// Largest `.npy` header: NumPy's own `np.load` limit (`max_header_size`); npyz would allocate
/// what a header claims, and its parser's time and memory grow threefold a level of nesting.
const MAX_NPY_HEADER: u64 = 10_000;
/// Deepest nesting of brackets a `.npy` header may have (NumPy's own have 2).
const MAX_NPY_DEPTH: usize = 4;

/// Reads `path` by its extension: `.npy` as NumPy, anything else as CSV.
pub fn read(path: &Path) -> Result<DataSet, DataError> {
    read_hashed(path).map(|(set, _)| set)
}

/// The data set in `bytes`, read as [`read`] reads a file named `path` of that content (the path
/// gives the format by its extension and names the file in errors). The fuzzer's entry point.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<DataSet, DataError> {
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let (dim, values, _) = if is_npy {
        read_npy(path, bytes, bytes.len() as u64)?
    } else {
        read_csv(path, bytes)?
    };
    check_values(path, dim, &values)?;
    Ok(DataSet::real(dim, values, Vec::new()))
}

/// [`read`], with the sha256 of the file's bytes (what `sha256sum` prints for it). Only a regular
/// file is read, and only if it is no larger than a file of `MAX_VALUES` values can be: a FIFO, a
/// device or a huge sparse file is refused before any read.
pub fn read_hashed(path: &Path) -> Result<(DataSet, String), DataError> {
    let err = |what: String| DataError(format!("--data-file {}: {what}", path.display()));
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let cap = if is_npy { MAX_NPY_BYTES } else { MAX_CSV_BYTES };
    let (file, len) = input::open(path, cap).map_err(|e| match e {
        InputError::Io(e) => err(format!("cannot be opened ({e})")),
        e => err(e.to_string()),
    })?;
    let (dim, values, sha) = if is_npy {
        read_npy(path, file, len)?
    } else {
        read_csv(path, file)?
    };
    check_values(path, dim, &values)?;
    Ok((DataSet::real(dim, values, Vec::new()), sha))
}

/// (columns, values, sha256) of a CSV file. A first line whose fields are not all numbers is a
/// header.
fn read_csv<R: Read>(path: &Path, file: R) -> Result<(usize, Vec<f32>, String), DataError> {
    let err = |what: String| DataError(format!("--data-file {}: {what}", path.display()));
    let mut hashing = Hashing::text(file);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(BufReader::new(&mut hashing));
    let mut dim = 0;
    let mut values = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| err(format!("not readable as CSV ({e})")))?;
        let line = record.position().map_or(i as u64 + 1, |p| p.line());
        let parsed: Result<Vec<f32>, usize> = record
            .iter()
            .enumerate()
            .map(|(c, f)| f.parse::<f32>().map_err(|_| c))
            .collect();
        let row = match parsed {
            Ok(row) => row,
            Err(_) if i == 0 && record.iter().all(|f| f.parse::<f32>().is_err()) => continue,
            Err(c) => {
                return Err(err(format!(
                    "line {line}, column {}: `{}` is not a number",
                    c + 1,
                    &record[c]
                )))
            }
        };
        if row.len() == 1 && record[0].is_empty() {
            continue; // a blank line
        }
        if dim == 0 {
            dim = row.len();
        } else if row.len() != dim {
            return Err(err(format!(
                "line {line} has {} values but the rows before it have {dim}; every row needs \
                 the same number of columns",
                row.len()
            )));
        }
        if values.len() + row.len() > MAX_VALUES {
            return Err(err(format!("more than {MAX_VALUES} values")));
        }
        values.extend(row);
    }
    drop(reader);
    let sha = finish(path, hashing, MAX_CSV_BYTES)?;
    Ok((dim, values, sha))
}

/// The sha256 of the whole file, reading what the parser left; a file that grew past `cap` while
/// it was read is refused.
fn finish<R: Read>(path: &Path, hashing: Hashing<R>, cap: u64) -> Result<String, DataError> {
    let err = |what: String| DataError(format!("--data-file {}: {what}", path.display()));
    let (sha, len) = hashing
        .finish()
        .map_err(|e| err(format!("cannot be read ({e})")))?;
    if len > cap {
        return Err(err(format!(
            "grew past {} while it was read",
            input::size(cap)
        )));
    }
    Ok(sha)
}

/// (columns, values, sha256) of a C- or Fortran-ordered float array of one or two dimensions.
/// The header's own length and the array's size are checked against the file's length `len`
/// before anything is allocated for them.
fn read_npy<R: Read>(
    path: &Path,
    file: R,
    len: u64,
) -> Result<(usize, Vec<f32>, String), DataError> {
    let err = |what: String| DataError(format!("--data-file {}: {what}", path.display()));
    let read_err = |e: std::io::Error| err(format!("the array data cannot be read ({e})"));
    let mut hashing = Hashing::new(file);
    // The magic string, the version and the header length (2 bytes in version 1, 4 after).
    let mut pre = Vec::with_capacity(12);
    (&mut hashing)
        .take(12)
        .read_to_end(&mut pre)
        .map_err(|e| err(format!("cannot be read ({e})")))?;
    if pre.len() == 12 && pre.starts_with(b"\x93NUMPY") {
        let (header, start) = match pre[6] {
            1 => (u16::from_le_bytes([pre[8], pre[9]]) as u64, 10),
            _ => (
                u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as u64,
                12,
            ),
        };
        if header > MAX_NPY_HEADER || start + header > len {
            return Err(err(format!(
                "not a NumPy .npy file (its header claims {header} bytes; the file has {len}, \
                 and headers are at most {MAX_NPY_HEADER})"
            )));
        }
        (&mut hashing)
            .take((start + header).saturating_sub(pre.len() as u64))
            .read_to_end(&mut pre)
            .map_err(|e| err(format!("cannot be read ({e})")))?;
        let (mut depth, mut deepest) = (0usize, 0usize);
        for b in &pre[(start as usize).min(pre.len())..] {
            match b {
                b'{' | b'[' | b'(' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b'}' | b']' | b')' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if deepest > MAX_NPY_DEPTH {
            return Err(err(format!(
                "not a NumPy .npy file (its header nests {deepest} levels deep)"
            )));
        }
    }
    let npy = npyz::NpyFile::new(std::io::Cursor::new(pre).chain(&mut hashing))
        .map_err(|e| err(format!("not a NumPy .npy file ({e})")))?;
    let shape = npy.shape().to_vec();
    let (rows, cols) = match shape[..] {
        [n] => (n as usize, 1),
        [n, d] => (n as usize, d as usize),
        _ => {
            return Err(err(format!(
                "an array of shape {shape:?}; expected rows × columns (2-D) or one column (1-D)"
            )))
        }
    };
    if rows.saturating_mul(cols) > MAX_VALUES {
        return Err(err(format!("more than {MAX_VALUES} values")));
    }
    let fortran = npy.order() == npyz::Order::Fortran;
    let descr = npy.dtype().descr();
    let descr = descr.trim_matches('\'');
    let width: u64 = match descr {
        "<f4" | ">f4" => 4,
        "<f8" | ">f8" => 8,
        other => {
            return Err(err(format!(
                "an array of dtype {other}; save it as float32 or float64 \
                 (e.g. np.save(f, x.astype(np.float32)))"
            )))
        }
    };
    let need = (rows * cols) as u64 * width;
    if need > len {
        return Err(read_err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("{rows} × {cols} values need {need} bytes; the file has {len}"),
        )));
    }
    let flat: Vec<f32> = if width == 4 {
        npy.into_vec::<f32>().map_err(read_err)?
    } else {
        npy.into_vec::<f64>()
            .map_err(read_err)?
            .into_iter()
            .map(|v| v as f32)
            .collect()
    };
    let sha = finish(path, hashing, MAX_NPY_BYTES)?;
    // An empty array needs no transpose (and `rows` may be huge when `cols` is 0).
    if !fortran || flat.is_empty() {
        return Ok((cols, flat, sha));
    }
    let mut values = vec![0.0; flat.len()];
    for r in 0..rows {
        for c in 0..cols {
            values[r * cols + c] = flat[c * rows + r];
        }
    }
    Ok((cols, values, sha))
}

fn check_values(path: &Path, dim: usize, values: &[f32]) -> Result<(), DataError> {
    let err = |what: String| DataError(format!("--data-file {}: {what}", path.display()));
    if values.is_empty() || dim == 0 {
        return Err(err("holds no data rows".into()));
    }
    if let Some(k) = values.iter().position(|v| !v.is_finite()) {
        return Err(err(format!(
            "row {}, column {} is {} (every value must be a finite number)",
            k / dim + 1,
            k % dim + 1,
            values[k]
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Values;
    use super::*;

    struct Temp(std::path::PathBuf);
    impl Temp {
        fn new(name: &str, bytes: &[u8]) -> Self {
            let dir =
                std::env::temp_dir().join(format!("vae_gpu_files_{}_{}", std::process::id(), name));
            std::fs::create_dir_all(&dir).unwrap();
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            Temp(p)
        }
    }
    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
        }
    }

    fn values(set: &DataSet) -> Vec<f32> {
        match &set.values {
            Values::Real(v) => v.clone(),
            Values::Pixels(_) => panic!(),
        }
    }

    fn error(name: &str, bytes: &[u8]) -> String {
        let t = Temp::new(name, bytes);
        read(&t.0).unwrap_err().0
    }

    /// A version-1.0 `.npy` file as NumPy writes it.
    fn npy(descr: &str, fortran: bool, shape: &str, payload: &[u8]) -> Vec<u8> {
        let mut header = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((header.len() as u16).to_le_bytes());
        b.extend(header.as_bytes());
        b.extend(payload);
        b
    }

    #[test]
    fn reads_csv_with_and_without_header() {
        let t = Temp::new("a.csv", b"x1,x2\n1, 2\n\n3,4.5\n# note\n-1e-3,0\n");
        let set = read(&t.0).unwrap();
        assert_eq!(set.dim, 2);
        assert_eq!(values(&set), vec![1.0, 2.0, 3.0, 4.5, -1e-3, 0.0]);
        let t = Temp::new("b.csv", b"0.5\n0.25\n");
        assert_eq!(values(&read(&t.0).unwrap()), vec![0.5, 0.25]);
    }

    #[test]
    fn reads_npy_in_both_orders_and_widths() {
        let f32s: Vec<u8> = [1f32, 2., 3., 4., 5., 6.]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let t = Temp::new("c.npy", &npy("<f4", false, "(3, 2)", &f32s));
        let set = read(&t.0).unwrap();
        assert_eq!((set.dim, values(&set)), (2, vec![1., 2., 3., 4., 5., 6.]));
        // Fortran order stores columns first: the same bytes are the transposed matrix.
        let t = Temp::new("d.npy", &npy("<f4", true, "(3, 2)", &f32s));
        assert_eq!(values(&read(&t.0).unwrap()), vec![1., 4., 2., 5., 3., 6.]);
        let f64s: Vec<u8> = [0.5f64, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let t = Temp::new("e.npy", &npy("<f8", false, "(2,)", &f64s));
        let set = read(&t.0).unwrap();
        assert_eq!((set.dim, values(&set)), (1, vec![0.5, -2.0]));
    }

    #[test]
    fn each_bad_file_names_its_problem() {
        assert!(error("empty.csv", b"").contains("no data rows"));
        assert!(error("header.csv", b"a,b\n").contains("no data rows"));
        let m = error("ragged.csv", b"1,2\n3,4\n5\n");
        assert!(
            m.contains("line 3 has 1 values") && m.contains("have 2"),
            "{m}"
        );
        let m = error("nan.csv", b"1,2\n3,nan\n");
        assert!(m.contains("row 2, column 2 is NaN"), "{m}");
        let m = error("inf.csv", b"1,inf\n");
        assert!(m.contains("row 1, column 2 is inf"), "{m}");
        let m = error("word.csv", b"1,2\n3,x\n");
        assert!(m.contains("line 2, column 2: `x` is not a number"), "{m}");
        let m = error("bad.npy", b"not numpy");
        assert!(m.contains("not a NumPy .npy file"), "{m}");
        let ints: Vec<u8> = [1i64, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
        let m = error("int.npy", &npy("<i8", false, "(2,)", &ints));
        assert!(m.contains("dtype <i8") && m.contains("float32"), "{m}");
        let m = error("cube.npy", &npy("<f4", false, "(1, 1, 1)", &[0; 4]));
        assert!(m.contains("shape [1, 1, 1]"), "{m}");
        let m = error("short.npy", &npy("<f4", false, "(3, 2)", &[0; 8]));
        assert!(m.contains("cannot be read"), "{m}");
        let nan: Vec<u8> = f32::NAN.to_le_bytes().to_vec();
        assert!(error("nan.npy", &npy("<f4", false, "(1,)", &nan)).contains("NaN"));
        let m = read(Path::new("/nonexistent/x.csv")).unwrap_err().0;
        assert!(m.contains("cannot be opened"), "{m}");
    }

    /// The hash is the file's sha256 (what `sha256sum` prints), whatever the format.
    #[test]
    fn the_hash_is_the_files_sha256() {
        let bytes = b"x,y\n1,2\n3,4\n";
        let t = Temp::new("h.csv", bytes);
        let (set, sha) = read_hashed(&t.0).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(sha, input::sha256_of(&[bytes]));
        let f32s: Vec<u8> = [1f32, 2.].iter().flat_map(|v| v.to_le_bytes()).collect();
        let b = npy("<f4", false, "(2,)", &f32s);
        let t = Temp::new("h.npy", &b);
        assert_eq!(read_hashed(&t.0).unwrap().1, input::sha256_of(&[&b]));
    }

    /// Devices, FIFOs, huge sparse files and headers that claim more than the file holds are
    /// refused at once, before any large allocation or endless read.
    #[test]
    fn what_is_not_a_data_file_is_refused_at_once() {
        let t0 = std::time::Instant::now();
        let m = read(Path::new("/dev/zero")).unwrap_err().0;
        assert!(m.contains("character device"), "{m}");
        let t = Temp::new("sparse.csv", b"");
        std::fs::File::options()
            .write(true)
            .open(&t.0)
            .unwrap()
            .set_len(20 << 30)
            .unwrap();
        let m = read(&t.0).unwrap_err().0;
        assert!(m.contains("20 GiB") && m.contains("1 GiB"), "{m}");
        // Within the cap, a sparse (all-NUL) file stops at its first byte.
        std::fs::File::options()
            .write(true)
            .open(&t.0)
            .unwrap()
            .set_len(900 << 20)
            .unwrap();
        let m = read(&t.0).unwrap_err().0;
        assert!(m.contains("byte 1 is NUL"), "{m}");
        let mut b = npy("<f4", false, "(2,)", &[0; 8]);
        b[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
        let m = error("header.npy", &b);
        assert!(m.contains("its header claims 65535 bytes"), "{m}");
        let mut b = npy("<f4", false, "(2,)", &[0; 8]);
        b[6] = 2;
        b.splice(8..10, [0xff, 0xff, 0xff, 0xff]);
        let m = error("header2.npy", &b);
        assert!(m.contains("its header claims 4294967295 bytes"), "{m}");
        let m = error("big.npy", &npy("<f8", false, "(4000000, 16)", &[0; 8]));
        assert!(
            m.contains("cannot be read") && m.contains("need 512000000 bytes"),
            "{m}"
        );
        assert!(t0.elapsed().as_secs() < 3, "{:?}", t0.elapsed());
    }
}
