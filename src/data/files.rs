//! A user's own real-valued vectors (`--data-file FILE`): CSV (one row per line, comma-separated
//! numbers, an optional header line) or NumPy `.npy` (a 2-D float32 or float64 array, or a 1-D one
//! read as a column). Everything is validated before training starts: an empty file, ragged rows,
//! a field that is not a number, NaN or infinity, and an unsupported array each give an error that
//! names the file and the place.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::{DataError, DataSet};

/// Most values a data file may hold (256 MB of f32).
pub const MAX_VALUES: usize = 64 << 20;

/// Reads `path` by its extension: `.npy` as NumPy, anything else as CSV.
pub fn read(path: &Path) -> Result<DataSet, DataError> {
    parse(path, BufReader::new(open(path)?))
}

/// The data set in `reader`, read as [`read`] reads the file `path`: the path gives the format
/// (by its extension) and names the file in errors.
pub fn parse(path: &Path, reader: impl Read) -> Result<DataSet, DataError> {
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let (dim, values) = if is_npy {
        read_npy(path, reader)?
    } else {
        read_csv(path, reader)?
    };
    check_values(path, dim, &values)?;
    Ok(DataSet::real(dim, values, Vec::new()))
}

fn open(path: &Path) -> Result<File, DataError> {
    File::open(path).map_err(|e| {
        DataError(format!(
            "--data-file {}: cannot be opened ({e})",
            path.display()
        ))
    })
}

/// (columns, values) of a CSV file. A first line whose fields are not all numbers is a header.
fn read_csv(path: &Path, reader: impl Read) -> Result<(usize, Vec<f32>), DataError> {
    let err = |what: String| DataError(format!("--data-file {}: {what}", path.display()));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(reader);
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
    Ok((dim, values))
}

/// (columns, values) of a C- or Fortran-ordered float array of one or two dimensions.
fn read_npy(path: &Path, mut reader: impl Read) -> Result<(usize, Vec<f32>), DataError> {
    let err = |what: String| DataError(format!("--data-file {}: {what}", path.display()));
    // npyz allocates the header length a file claims (4 GiB for version 2) before reading it, and
    // its parser's time and memory grow threefold a level of nesting: read the header here, at
    // most NumPy's own 10 000 bytes (`np.load`'s max_header_size) and 4 levels deep.
    let mut pre = Vec::with_capacity(12);
    (&mut reader)
        .take(12)
        .read_to_end(&mut pre)
        .map_err(|e| err(format!("cannot be read ({e})")))?;
    if pre.len() == 12 && pre.starts_with(b"\x93NUMPY") {
        let (at, len) = match pre[6] {
            1 => (10, u16::from_le_bytes([pre[8], pre[9]]) as usize),
            _ => (
                12,
                u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as usize,
            ),
        };
        if len > 10_000 {
            return Err(err(format!("not a NumPy .npy file (a {len}-byte header)")));
        }
        (&mut reader)
            .take((at + len).saturating_sub(pre.len()) as u64)
            .read_to_end(&mut pre)
            .map_err(|e| err(format!("cannot be read ({e})")))?;
        let (mut depth, mut deepest) = (0usize, 0usize);
        for b in &pre[at.min(pre.len())..] {
            match b {
                b'{' | b'[' | b'(' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b'}' | b']' | b')' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if deepest > 4 {
            return Err(err(format!(
                "not a NumPy .npy file (its header nests {deepest} levels deep)"
            )));
        }
    }
    let npy = npyz::NpyFile::new(pre.as_slice().chain(reader))
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
    let read_err = |e: std::io::Error| err(format!("the array data cannot be read ({e})"));
    let flat: Vec<f32> = match descr.trim_matches('\'') {
        "<f4" | ">f4" => npy.into_vec::<f32>().map_err(read_err)?,
        "<f8" | ">f8" => npy
            .into_vec::<f64>()
            .map_err(read_err)?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        other => {
            return Err(err(format!(
                "an array of dtype {other}; save it as float32 or float64 \
                 (e.g. np.save(f, x.astype(np.float32)))"
            )))
        }
    };
    // An empty array needs no transpose (and `rows` may be huge when `cols` is 0).
    if !fortran || flat.is_empty() {
        return Ok((cols, flat));
    }
    let mut values = vec![0.0; flat.len()];
    for r in 0..rows {
        for c in 0..cols {
            values[r * cols + c] = flat[c * rows + r];
        }
    }
    Ok((cols, values))
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
}
