//! The plain-Rust reference path: the same forward and backward pass as the WGSL kernels, written
//! as directly as possible, generic over f32 (training, parity tests) and f64 (finite-difference
//! gradient checks). Its only concession to speed is a blocked GEMM (matrixmultiply).

pub mod layers;
pub mod network;
pub mod par;
pub mod reference;
pub mod trainer;
pub mod vem;
pub mod wide;

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

/// The floating-point operations the reference path needs, for f32 and f64.
pub trait Scalar:
    Copy
    + Debug
    + Default
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
{
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    /// e^x as a loop compiled for vectors can inline (f32: `wide::exp_f32`, within 1 ulp; f64:
    /// libm's): for the element-wise passes that `cpu::wide` vectorizes (tanh). Elsewhere libm's
    /// `exp`, whose calls are faster one value at a time.
    fn exp_inline(self) -> Self;
    fn ln(self) -> Self;
    fn abs(self) -> Self;
    fn max(self, other: Self) -> Self;

    /// C = alpha·A·B + beta·C with arbitrary row/column strides (matrixmultiply's sgemm/dgemm).
    ///
    /// # Safety
    /// The strided index ranges of A (m×k), B (k×n) and C (m×n) must lie inside the pointers'
    /// allocations; `gemm` below checks that before calling.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );

    fn zero() -> Self {
        Self::from_f64(0.0)
    }
    fn one() -> Self {
        Self::from_f64(1.0)
    }
}

macro_rules! impl_scalar {
    ($t:ty, $gemm:path, $exp_inline:path) => {
        impl Scalar for $t {
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            fn exp_inline(self) -> Self {
                $exp_inline(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            unsafe fn gemm_raw(
                m: usize,
                k: usize,
                n: usize,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                // SAFETY: forwarded contract of `gemm_raw`.
                unsafe { $gemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
            }
        }
    };
}
// f32's inline exp is the branch-free one of `wide`, which vectorizes; f64's (the gradient checks)
// is libm's.
impl_scalar!(f32, matrixmultiply::sgemm, wide::exp_f32);
impl_scalar!(f64, matrixmultiply::dgemm, f64::exp);

/// A strided matrix view: element (i, j) at `data[off + i*rs + j*cs]`.
#[derive(Clone, Copy)]
pub struct View<'a, T> {
    pub data: &'a [T],
    pub off: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> View<'a, T> {
    /// Row-major matrix with `cols` columns starting at `off`.
    pub fn rows(data: &'a [T], off: usize, cols: usize) -> Self {
        Self {
            data,
            off,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose of a row-major matrix with `cols` columns starting at `off`.
    pub fn transposed(data: &'a [T], off: usize, cols: usize) -> Self {
        Self {
            data,
            off,
            rs: 1,
            cs: cols,
        }
    }
    fn fits(&self, m: usize, n: usize) -> bool {
        m == 0 || n == 0 || self.off + (m - 1) * self.rs + (n - 1) * self.cs < self.data.len()
    }
}

/// C[m×n] (row-major, `ldc` columns apart, from `c_off`) = A·B (+ C when `accumulate`).
/// The twin of `shaders/matmul.wgsl` without its epilogue.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Scalar>(
    m: usize,
    k: usize,
    n: usize,
    a: View<T>,
    b: View<T>,
    c: &mut [T],
    c_off: usize,
    ldc: usize,
    accumulate: bool,
) {
    gemm_on(m, k, n, a, b, c, c_off, ldc, accumulate, true)
}

/// [`gemm`] on the calling thread alone: for products that are themselves one of several parts
/// running in parallel (a convolution's tile of images).
#[allow(clippy::too_many_arguments)]
pub fn gemm_serial<T: Scalar>(
    m: usize,
    k: usize,
    n: usize,
    a: View<T>,
    b: View<T>,
    c: &mut [T],
    c_off: usize,
    ldc: usize,
    accumulate: bool,
) {
    gemm_on(m, k, n, a, b, c, c_off, ldc, accumulate, false)
}

#[allow(clippy::too_many_arguments)]
fn gemm_on<T: Scalar>(
    m: usize,
    k: usize,
    n: usize,
    a: View<T>,
    b: View<T>,
    c: &mut [T],
    c_off: usize,
    ldc: usize,
    accumulate: bool,
    split: bool,
) {
    assert!(a.fits(m, k) && b.fits(k, n), "gemm operand out of bounds");
    assert!(
        m == 0 || n == 0 || c_off + (m - 1) * ldc + n <= c.len(),
        "gemm output out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    let beta = if accumulate { T::one() } else { T::zero() };
    // Split the longer side of C over the CPU path's threads (tile-aligned ranges): every element
    // is still one thread's sum over all of k in the same kc blocks, so the bits do not depend
    // on the split.
    let by_columns = n >= m;
    let long = if by_columns { n } else { m };
    let cuts = if split {
        par::gemm_split(m * k * n, long, GEMM_TILE)
    } else {
        vec![0, long]
    };
    let (a_ptr, b_ptr) = (Shared(a.data.as_ptr()), Shared(b.data.as_ptr()));
    let c_ptr = Shared(c.as_mut_ptr() as *const T);
    let part = |i: usize| {
        let (lo, hi) = (cuts[i], cuts[i + 1]);
        let (mi, ni, a_off, b_off, c_at) = if by_columns {
            (m, hi - lo, a.off, b.off + lo * b.cs, c_off + lo)
        } else {
            (hi - lo, n, a.off + lo * a.rs, b.off, c_off + lo * ldc)
        };
        // SAFETY: bounds of all three strided ranges were checked above, each part's A and B
        // ranges lie inside them, and the parts write disjoint elements of C (its own columns
        // or rows), so no two threads touch the same value.
        unsafe {
            T::gemm_raw(
                mi,
                k,
                ni,
                a_ptr.get().add(a_off),
                a.rs as isize,
                a.cs as isize,
                b_ptr.get().add(b_off),
                b.rs as isize,
                b.cs as isize,
                beta,
                (c_ptr.get() as *mut T).add(c_at),
                ldc as isize,
                1,
            )
        }
    };
    let parts = cuts.len() - 1;
    if parts == 1 {
        return part(0);
    }
    par::scope(|s| {
        for i in 1..parts {
            let part = &part;
            s.spawn(move |_| part(i));
        }
        part(0);
    });
}

/// The side of matrixmultiply's f32 kernel tile (16 × 16 with AVX-512): a split of a product
/// falls on its multiples so that no part adds a partial tile.
const GEMM_TILE: usize = 16;

/// A pointer the parts of one split product share; each part only reads its operands' ranges and
/// writes its own elements of C (see [`gemm`]).
#[derive(Clone, Copy)]
struct Shared<T>(*const T);
impl<T> Shared<T> {
    /// The pointer (a method, so that closures capture the `Send` wrapper, not its field).
    fn get(self) -> *const T {
        self.0
    }
}
// SAFETY: only used by `gemm`, whose parts read shared operands and write disjoint outputs.
unsafe impl<T: Sync> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Shared<T> {}
