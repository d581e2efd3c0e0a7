//! Element-wise loops compiled for the widest vector unit the CPU has. The crate is built for the
//! baseline of its target (x86-64: SSE2, four f32 lanes), so that one binary runs everywhere; the
//! loops that stream the most values (Adam, a layer's bias and activation) are also compiled for
//! AVX-512F and for AVX2 + FMA, and [`widest!`] picks one at run time (`is_x86_feature_detected`,
//! checked once).
//!
//! The variants compute bit-identical results: each lane does the same IEEE-754 operations
//! (+, −, ×, ÷, √ are correctly rounded at any width), Rust never contracts a·b + c into an FMA
//! by itself, and no variant reorders a sum. Only the number of values per instruction changes.
//! Measured on the Zen 4 development machine, one thread, Adam over 790k parameters: 0.58 ms
//! baseline, 0.47 ms AVX2, 0.15 ms AVX-512 (its √ and ÷ are 16 lanes wide).
//!
//! A loop that calls libm's `expf` cannot be vectorized (each value is a call), and the hidden
//! layers' tanh was 15% of a CPU step of the default model. [`exp_f32`] is Cephes' range
//! reduction and polynomial in plain multiplies and adds, without branches, so a loop of it
//! vectorizes and gives the same bits at every width; tanh takes it (`Scalar::exp_inline`). It is
//! within 1 ulp of the exact value (0.95 ulp at worst on the test's sweep of its whole range
//! against f64), as libm's is, and flushes results below f32's smallest normal (e^-87.3) to zero
//! where libm returns subnormals. Measured (phase bench, 2 threads): the decoder's 2→500 layer
//! with its tanh 0.125 → 0.044 ms. One value at a time it is slower than glibc's (the Bernoulli
//! likelihood, whose loop keeps a running sum and does not vectorize, took 5× longer on it and a
//! Cephes logf), so the other element-wise code keeps libm's.

/// The vector units [`widest!`] dispatches between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Avx512,
    Avx2,
    Baseline,
}

/// The widest unit this CPU has (detected once).
pub fn unit() -> Unit {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static UNIT: OnceLock<Unit> = OnceLock::new();
        *UNIT.get_or_init(|| {
            if std::is_x86_feature_detected!("avx512f") {
                Unit::Avx512
            } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            {
                Unit::Avx2
            } else {
                Unit::Baseline
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Unit::Baseline
    }
}

/// `widest!(fn name(arg: Type, ...) { body })` defines `fn name` whose body runs compiled for
/// the widest [`Unit`] present: three copies of the body, two under `#[target_feature]`. The
/// body must be plain element-wise code whose every operation is exact at any width (see the
/// module note); helpers it calls should be `#[inline(always)]` so that they are compiled into
/// each copy.
#[macro_export]
macro_rules! widest {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512($($arg: $ty),*) $body
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) $body
                match $crate::cpu::wide::unit() {
                    // SAFETY: `unit()` reported the features these copies were compiled for.
                    $crate::cpu::wide::Unit::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    $crate::cpu::wide::Unit::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::cpu::wide::Unit::Baseline => {}
                }
            }
            $body
        }
    };
    // Generic functions: `widest!(fn name<T, U>(args) where [T: Bound, U: Bound] { body })`.
    ($(#[$meta:meta])* $vis:vis fn $name:ident<$($g:ident),+>($($arg:ident: $ty:ty),* $(,)?)
        where [$($wc:tt)*] $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<$($g),+>($($arg: $ty),*) where $($wc)* {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512<$($g),+>($($arg: $ty),*) where $($wc)* $body
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2<$($g),+>($($arg: $ty),*) where $($wc)* $body
                match $crate::cpu::wide::unit() {
                    // SAFETY: `unit()` reported the features these copies were compiled for.
                    $crate::cpu::wide::Unit::Avx512 => {
                        return unsafe { avx512::<$($g),+>($($arg),*) }
                    }
                    // SAFETY: as above.
                    $crate::cpu::wide::Unit::Avx2 => return unsafe { avx2::<$($g),+>($($arg),*) },
                    $crate::cpu::wide::Unit::Baseline => {}
                }
            }
            $body
        }
    };
}

/// e^x in f32 (Cephes `expf`): x = n·ln 2 + r with |r| ≤ ln 2 / 2 (ln 2 in two parts, so r is
/// exact), e^r by a degree-6 polynomial, times 2ⁿ built in the exponent bits. Above ln(f32::MAX)
/// +∞, below −87.34 (results that would be subnormal) 0, NaN stays NaN.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const HI: f32 = 88.722_83;
    const LO: f32 = -87.336_55;
    let c = x.clamp(LO, HI);
    // Round c·log₂e to the nearest integer: adding 1.5·2²³ leaves no fraction bits.
    const SHIFT: f32 = 12_582_912.0;
    let n = (c * std::f32::consts::LOG2_E + SHIFT) - SHIFT;
    let r = c - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let z = r * r;
    let p = (((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5)
        * z
        + r
        + 1.0;
    // 2ⁿ as two normal factors 2^⌊n/2⌋·2^⌈n/2⌉: n = 128 (just below ln(f32::MAX)) and n = −126
    // are outside the exponent bits' range for one.
    let n = n as i32;
    let pow2 = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let y = p * pow2(n >> 1) * pow2(n - (n >> 1));
    if x.is_nan() {
        x
    } else if x > HI {
        f32::INFINITY
    } else if x < LO {
        0.0
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// |got − exact| in units of the last place of the exact value rounded to f32.
    fn ulps(got: f32, exact: f64) -> f64 {
        let e = exact as f32;
        let ulp = (f32::from_bits(e.abs().to_bits() + 1) - e.abs()) as f64;
        (got as f64 - exact).abs() / ulp
    }

    #[test]
    fn exp_is_within_one_ulp_everywhere_and_keeps_the_special_values() {
        let mut worst = 0.0f64;
        // The whole range whose results are normal f32, 400,001 points.
        for i in 0..=400_000 {
            let x = -87.3 + 176.0 * i as f32 / 400_000.0;
            worst = worst.max(ulps(exp_f32(x), (x as f64).exp()));
        }
        for x in [
            -1e-7f32,
            1e-7,
            0.5,
            -0.5,
            0.346_573_6,
            -0.346_573_6,
            88.72,
            -87.33,
        ] {
            worst = worst.max(ulps(exp_f32(x), (x as f64).exp()));
        }
        assert!(worst <= 1.0, "worst error {worst} ulp");
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(exp_f32(88.7).is_finite());
    }

    crate::widest!(
        /// A sum of squares and quotients: exact operations only, so every copy agrees.
        fn mix(out: &mut [f32], a: &[f32], b: &[f32]) {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = (x * x + y).sqrt() / (y.abs() + 1e-3) - x;
            }
        }
    );

    #[test]
    fn the_widest_copy_matches_the_plain_loop_bit_for_bit() {
        let n = 1003; // not a multiple of any vector width: the remainder loop runs too
        let a: Vec<f32> = (0..n).map(|i| (i as f32 - 500.0) / 37.0).collect();
        let b: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 / 999.0).collect();
        let mut wide = vec![0.0; n];
        mix(&mut wide, &a, &b);
        let plain: Vec<f32> = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (x * x + y).sqrt() / (y.abs() + 1e-3) - x)
            .collect();
        assert_eq!(wide, plain, "on {:?}", unit());
    }
}
