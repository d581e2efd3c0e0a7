//! The CPU path's threads: one pool (rayon) of `MATMUL_NUM_THREADS` threads, else one per core,
//! that runs every parallel part of a step — the GEMMs split by rows or columns of their output,
//! the convolutions' tiles of images, the likelihood's rows, a layer's bias and activation, the
//! optimizer. Each part is a contiguous range computed by the same code in the same order as one
//! thread would, so the results are bit-identical for any thread count; only the wall time
//! changes.
//!
//! Why one pool of our own rather than matrixmultiply's `threading`: its pool only splits large
//! products, so the convolutions' per-tile products, im2col and every element-wise pass ran on one
//! core (2 threads were no faster than 1 on the conv model), and its idle threads, blocked on a
//! channel, competed with the scoped threads the element-wise passes spawned (~36 µs each). A
//! task pushed to a warm rayon worker from inside the pool costs about a microsecond; callers run
//! a whole step inside the pool ([`install`]) so that every split inside it takes that path.

use std::sync::OnceLock;

use rayon::{Scope, ThreadPool, ThreadPoolBuilder};

/// Fewer values than this per part are done on the calling thread: handing a part to another
/// thread costs a few microseconds, the time of a few thousand exp-bearing element operations.
pub const MIN_PER_THREAD: usize = 10_000;

/// A product with fewer multiply-adds than this runs on the calling thread (~50 µs of work at
/// one core's rate: below it the split's cost and the duplicated packing outweigh the gain).
pub const MIN_GEMM_MACS: usize = 1 << 21;

/// The threads the CPU path uses: `MATMUL_NUM_THREADS` (the variable matrixmultiply's own
/// threading read, kept so that existing scripts and `sweep` still set it), else the cores.
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

/// The pool, built on first use; none when one thread is asked for, or when the operating system
/// refused to start threads (the path then runs serially, with the same results).
fn pool() -> Option<&'static ThreadPool> {
    static POOL: OnceLock<Option<ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = threads();
        let build = || {
            ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("vae-cpu-{i}"))
                .build()
                .ok()
        };
        (n > 1).then(build).flatten()
    })
    .as_ref()
}

/// The threads parts are split over: 1 without a pool.
fn width() -> usize {
    pool().map_or(1, |_| threads())
}

/// Runs `f` on one of the pool's threads (directly when already on one, or without a pool), so
/// that the splits inside it are cheap. Wrap a whole step, not its parts.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match pool() {
        Some(p) => p.install(f),
        None => f(),
    }
}

/// A scope on the pool whose spawned parts may borrow from the caller (`std::thread::scope` on
/// persistent threads). Only called with more than one part, so only with a pool; without one
/// (unreachable through [`parts`] and [`gemm_split`]) it falls back to rayon's global pool.
pub fn scope<'s, R: Send>(f: impl FnOnce(&Scope<'s>) -> R + Send) -> R {
    match pool() {
        Some(p) => p.scope(f),
        None => rayon::scope(f),
    }
}

/// How many parts `rows` rows of `per_row` values are split into.
pub fn parts(rows: usize, per_row: usize) -> usize {
    let work = rows.saturating_mul(per_row);
    width().min(work / MIN_PER_THREAD).clamp(1, rows.max(1))
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
    rows_mut_in(data, rows, width, parts(rows, width), f)
}

/// [`rows_mut`] with the number of parts given (`n` ≥ 1, at most `rows`).
pub fn rows_mut_in<T: Send>(
    data: &mut [T],
    rows: usize,
    width: usize,
    n: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let data = &mut data[..rows * width];
    let n = n.clamp(1, rows.max(1));
    if n == 1 {
        return f(0, data);
    }
    let b = bounds(rows, n);
    scope(|s| {
        let mut rest = data;
        for i in 0..n {
            let (part, tail) = rest.split_at_mut((b[i + 1] - b[i]) * width);
            rest = tail;
            let (f, r0) = (&f, b[i]);
            if i + 1 == n {
                f(r0, part);
            } else {
                s.spawn(move |_| f(r0, part));
            }
        }
    });
}

/// The ranges a product's long side of `len` is cut into for `macs` multiply-adds: one per
/// thread when the product is large enough, each a multiple of `align` (the GEMM kernel's tile)
/// but the last. Returns the range starts and `len`.
pub fn gemm_split(macs: usize, len: usize, align: usize) -> Vec<usize> {
    let align = align.max(1);
    let n = if macs < MIN_GEMM_MACS {
        1
    } else {
        width().min(len / align).max(1)
    };
    // Each part is at least `align` long (n ≤ len / align), so no range is empty.
    (0..n)
        .map(|i| (len * i / n) / align * align)
        .chain([len])
        .collect()
}
