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
}

#[cfg(test)]
mod tests {
    use super::*;

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
