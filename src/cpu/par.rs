//! Element-wise passes of a step split across the GEMM's threads (`MATMUL_NUM_THREADS`, else every
//! core): the likelihood's rows, a layer's bias and activation, the optimizer. Each part is a
//! contiguous range of whole rows computed by the same code in the same order as one thread would,
//! so the results are bit-identical for any thread count; only the wall time changes.

use std::sync::OnceLock;

/// Fewer values than this per part are done on the calling thread: spawning a scoped thread costs
/// ~10–20 µs, the time of ~10,000 exp-bearing element operations (tanh, the likelihood).
pub const MIN_PER_THREAD: usize = 10_000;

/// The threads element-wise passes use: `MATMUL_NUM_THREADS` (as the GEMM does), else the cores.
pub fn threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("MATMUL_NUM_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n >= 1)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

/// How many parts `rows` rows of `per_row` values are split into.
pub fn parts(rows: usize, per_row: usize) -> usize {
    let work = rows.saturating_mul(per_row);
    threads().min(work / MIN_PER_THREAD).clamp(1, rows.max(1))
}

/// Splits `0..rows` into `n` near-equal contiguous ranges; returns their starts (and `rows`).
pub fn bounds(rows: usize, n: usize) -> Vec<usize> {
    (0..=n).map(|i| rows * i / n).collect()
}

/// Runs `f(first_row, rows_slice)` over `data` (`rows` rows of `width` values) cut into
/// [`parts`] ranges of whole rows, one per thread (the last on the calling thread).
pub fn rows_mut<T: Send>(
    data: &mut [T],
    rows: usize,
    width: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let n = parts(rows, width);
    let data = &mut data[..rows * width];
    if n == 1 {
        return f(0, data);
    }
    let b = bounds(rows, n);
    std::thread::scope(|s| {
        let mut rest = data;
        for i in 0..n {
            let (part, tail) = rest.split_at_mut((b[i + 1] - b[i]) * width);
            rest = tail;
            let (f, r0) = (&f, b[i]);
            if i + 1 == n {
                f(r0, part);
            } else {
                s.spawn(move || f(r0, part));
            }
        }
    });
}
