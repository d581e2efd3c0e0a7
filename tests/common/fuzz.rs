//! A small deterministic mutation fuzzer in stable Rust: a SplitMix64 generator, byte- and
//! text-level mutations, a counting allocator that measures each case's peak heap, a watchdog for
//! cases that never finish, and the loop that runs one parser over many mutated inputs.
//!
//! Every case is a pure function of (seed, target, case number), so a failure can be reproduced
//! from its number (`VAE_GPU_FUZZ_FIRST=N VAE_GPU_FUZZ_CASES=1`); its input is also saved under
//! `target/fuzz-failures/` and can be replayed with
//! `VAE_GPU_FUZZ_REPLAY=FILE cargo test --release --test fuzz replay -- --nocapture`.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Random numbers.

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, and good enough to drive mutations.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0);
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability 1/n.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// FNV-1a, to give each target its own stream of cases.
pub fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The generator of case `case` of target `name`: independent of every other case.
pub fn case_rng(seed: u64, name: &str, case: u64) -> Rng {
    let mut r = Rng::new(seed ^ hash(name) ^ case.wrapping_mul(0xd1b5_4a32_d192_ed03));
    r.next_u64();
    r
}

// ---------------------------------------------------------------------------------------------
// Mutations.

/// Bytes a mutation writes over one byte.
const BYTES: [u8; 6] = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe];

/// 32- and 64-bit values a mutation writes over a 4- or 8-byte window, little- or big-endian.
const WORDS: [u64; 12] = [
    u32::MAX as u64,
    0x7fff_ffff,
    0x8000_0000,
    u64::MAX,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    0,
    1,
    0xffff,
    0x1_0000,
    1 << 32,
    0x0fff_ffff,
];

/// What a "huge number" mutation puts in place of a number in a text format: the extremes of the
/// integer and float types, values the parsers' caps sit on (16 384 widths, 1 024 latents and
/// channels, 65 536 inputs, 2^20 features, 15 kernels, 12 layers, 65 535 rows), and non-numbers.
pub const NUMBERS: [&str; 58] = [
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "3",
    "7",
    "12",
    "13",
    "15",
    "16",
    "28",
    "255",
    "256",
    "784",
    "1023",
    "1024",
    "1025",
    "4096",
    "16383",
    "16384",
    "16385",
    "60000",
    "65535",
    "65536",
    "65537",
    "1048576",
    "1048577",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999",
    "1e308",
    "-1e308",
    "1e-308",
    "1e999",
    "-1e999",
    "3.4e38",
    "3.5e38",
    "1e-45",
    "0.5",
    "-0.0",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "null",
    "true",
    "\"\"",
    "\"x\"",
    "[]",
    "{}",
];

/// One random edit of `data`: a bit flip, a byte set to an extreme, a truncation, random bytes
/// appended, a chunk of another input spliced in (inserted or overwriting), a 4/8-byte window set
/// to a huge number, a number in text replaced, a chunk deleted or repeated. Positions favour the
/// first 32 bytes half the time, where the binary formats keep their headers.
pub fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>]) {
    let pos = |rng: &mut Rng, len: usize| -> usize {
        if len == 0 {
            0
        } else if rng.one_in(2) {
            rng.below(len.min(32))
        } else {
            rng.below(len)
        }
    };
    match rng.below(10) {
        0 => {
            if !data.is_empty() {
                let i = pos(rng, data.len());
                data[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            if !data.is_empty() {
                let i = pos(rng, data.len());
                data[i] = if rng.one_in(4) {
                    rng.next_u64() as u8
                } else {
                    *rng.pick(&BYTES)
                };
            }
        }
        2 => {
            let n = rng.below(data.len() + 1);
            data.truncate(n);
        }
        3 => {
            let n = if rng.one_in(8) {
                rng.range(1, 4096)
            } else {
                rng.range(1, 64)
            };
            data.extend((0..n).map(|_| rng.next_u64() as u8));
        }
        4 => {
            let src = rng.pick(pool);
            if !src.is_empty() {
                let start = rng.below(src.len());
                let len = rng.range(1, (src.len() - start).min(512));
                let chunk = &src[start..start + len];
                let at = rng.below(data.len() + 1);
                if rng.one_in(2) {
                    data.splice(at..at, chunk.iter().copied());
                } else {
                    let end = (at + len).min(data.len());
                    data.splice(at..end, chunk.iter().copied());
                }
            }
        }
        5 => {
            let width = if rng.one_in(2) { 4 } else { 8 };
            if data.len() >= width {
                let mut at = pos(rng, data.len() - width + 1);
                if rng.one_in(2) {
                    at -= at % 4;
                }
                let v = *rng.pick(&WORDS);
                let bytes = match (width, rng.one_in(2)) {
                    (4, true) => (v as u32).to_le_bytes().to_vec(),
                    (4, false) => (v as u32).to_be_bytes().to_vec(),
                    (_, true) => v.to_le_bytes().to_vec(),
                    (_, false) => v.to_be_bytes().to_vec(),
                };
                data[at..at + width].copy_from_slice(&bytes);
            }
        }
        6 | 7 => replace_number(rng, data),
        8 => {
            if !data.is_empty() {
                let at = rng.below(data.len());
                let len = rng.range(1, (data.len() - at).min(64));
                data.drain(at..at + len);
            }
        }
        _ => {
            if !data.is_empty() {
                let at = rng.below(data.len());
                let len = rng.range(1, (data.len() - at).min(64));
                let chunk = data[at..at + len].to_vec();
                for _ in 0..rng.range(1, 8) {
                    data.splice(at..at, chunk.iter().copied());
                }
            }
        }
    }
}

/// Replaces one number written in ASCII (an optional sign, digits, a fraction, an exponent) with
/// one of [`NUMBERS`]; without one, writes one of them at a random place.
pub fn replace_number(rng: &mut Rng, data: &mut Vec<u8>) {
    let spans = number_spans(data);
    let with = rng.pick(&NUMBERS).as_bytes();
    if spans.is_empty() {
        let at = rng.below(data.len() + 1);
        data.splice(at..at, with.iter().copied());
        return;
    }
    let (a, b) = *rng.pick(&spans);
    data.splice(a..b, with.iter().copied());
}

fn number_spans(data: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if data[i].is_ascii_digit() {
            let mut a = i;
            if a > 0 && (data[a - 1] == b'-' || data[a - 1] == b'+') {
                a -= 1;
            }
            let mut b = i;
            while b < data.len()
                && (data[b].is_ascii_digit()
                    || data[b] == b'.'
                    || ((data[b] == b'e' || data[b] == b'E') && b + 1 < data.len())
                    || ((data[b] == b'-' || data[b] == b'+')
                        && (data[b - 1] == b'e' || data[b - 1] == b'E')))
            {
                b += 1;
            }
            spans.push((a, b));
            i = b;
        } else {
            i += 1;
        }
    }
    spans
}

/// 1–4 random edits of a copy of `seed`.
pub fn mutate(rng: &mut Rng, seed: &[u8], pool: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..rng.range(1, 4) {
        mutate_once(rng, &mut data, pool);
    }
    data
}

/// 1–3 numbers of a copy of `seed` replaced (see [`replace_number`]), nothing else: for text
/// formats, where most byte edits stop at the syntax check, this reaches the checks of values.
pub fn mutate_numbers(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..rng.range(1, 3) {
        replace_number(rng, &mut data);
    }
    data
}

/// [`mutate`] or, half the time, [`mutate_numbers`]: the cases of a text format.
pub fn mutate_text_format(rng: &mut Rng, seed: &[u8], pool: &[Vec<u8>]) -> Vec<u8> {
    if rng.one_in(2) {
        mutate_numbers(rng, seed)
    } else {
        mutate(rng, seed, pool)
    }
}

/// Mutates `text` as [`mutate_text_format`] does and gives it back as (possibly lossy) UTF-8: for the parts of
/// a format that are text inside a structure (a JSON header, a metadata string).
pub fn mutate_text(rng: &mut Rng, text: &str, pool: &[Vec<u8>]) -> String {
    String::from_utf8_lossy(&mutate_text_format(rng, text.as_bytes(), pool)).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Counting the heap.

thread_local! {
    /// Live bytes allocated (minus freed) by this thread.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// Most live bytes since the last [`reset_peak`].
    static PEAK: Cell<isize> = const { Cell::new(0) };
    /// While set, allocations bypass the cap (the abort path's own allocations).
    static BYPASS: Cell<bool> = const { Cell::new(false) };
    /// The case being run on this thread: (target, case number, input pointer, input length).
    static CASE: Cell<Option<(&'static str, u64, *const u8, usize)>> = const { Cell::new(None) };
}

/// No thread may hold more than this many live bytes: far past every target's stated bound, and a
/// guard for the shared machine. An allocation past it saves the case's input and aborts.
pub const HARD_CAP: isize = 4 << 30;

/// `System`, counting each thread's live and peak bytes.
pub struct Counting;

fn account(delta: isize) -> bool {
    if BYPASS.with(|b| b.get()) {
        return true;
    }
    let live = LIVE.with(|l| l.get()) + delta;
    if delta > 0 && live > HARD_CAP {
        over_cap(delta);
        return false;
    }
    LIVE.with(|l| l.set(live));
    PEAK.with(|p| {
        if live > p.get() {
            p.set(live)
        }
    });
    true
}

#[cold]
fn over_cap(request: isize) {
    BYPASS.with(|b| b.set(true));
    if let Some((name, case, ptr, len)) = CASE.with(|c| c.get()) {
        // SAFETY: the runner registers the input for the duration of the case and keeps it alive.
        let input = unsafe { std::slice::from_raw_parts(ptr, len) };
        let path = save_failure(name, &format!("alloc-case{case}"), input);
        // Straight to the file descriptor: the test harness's capture is lost in the abort.
        let _ = writeln!(
            std::io::stderr(),
            "fuzz {name}: case {case} asked for {request} bytes with {} already live, past the \
             {HARD_CAP}-byte hard cap; input saved to {}; aborting",
            LIVE.with(|l| l.get()),
            path.display()
        );
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !account(layout.size() as isize) {
            return std::ptr::null_mut();
        }
        let p = System.alloc(layout);
        if p.is_null() {
            account(-(layout.size() as isize));
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !account(layout.size() as isize) {
            return std::ptr::null_mut();
        }
        let p = System.alloc_zeroed(layout);
        if p.is_null() {
            account(-(layout.size() as isize));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        account(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let delta = new_size as isize - layout.size() as isize;
        if !account(delta) {
            return std::ptr::null_mut();
        }
        let p = System.realloc(ptr, layout, new_size);
        if p.is_null() {
            account(-delta);
        }
        p
    }
}

/// Starts a new peak measurement on this thread; returns the live bytes it starts from.
pub fn reset_peak() -> isize {
    let live = LIVE.with(|l| l.get());
    PEAK.with(|p| p.set(live));
    live
}

/// The most bytes live on this thread since [`reset_peak`] returned `base`, above `base`.
pub fn peak_since(base: isize) -> usize {
    (PEAK.with(|p| p.get()) - base).max(0) as usize
}

// ---------------------------------------------------------------------------------------------
// Running a target.

/// What a parser did with one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Rejected,
}

/// Makes a case's input from the generator and the corpus.
pub type Generate = Box<dyn Fn(&mut Rng, &[Vec<u8>]) -> Vec<u8>>;
/// A parser on the bytes of a file.
pub type Parse = Box<dyn Fn(&[u8]) -> Outcome>;

/// A parser of user input, its valid inputs, how its cases are made and how much heap it may use.
pub struct Target {
    pub name: &'static str,
    /// Valid inputs the mutations start from.
    pub corpus: Vec<Vec<u8>>,
    /// Case inputs: `None` mutates a corpus entry with [`mutate`]; a target with structure to
    /// keep (a length prefix, checksums, a compressed body) passes its own, which may call it.
    pub generate: Option<Generate>,
    /// The parser, on the bytes of a file.
    pub parse: Parse,
    /// The heap bound: `fixed + per_byte × input length` bytes above what was live before.
    pub fixed: usize,
    pub per_byte: usize,
    /// Why that bound holds, for the summary.
    pub why: &'static str,
}

impl Target {
    pub fn bound(&self, len: usize) -> usize {
        self.fixed + self.per_byte * len
    }

    /// The input of one case.
    pub fn input(&self, rng: &mut Rng) -> Vec<u8> {
        match &self.generate {
            Some(g) => g(rng, &self.corpus),
            None => {
                let seed = rng.pick(&self.corpus).clone();
                mutate(rng, &seed, &self.corpus)
            }
        }
    }
}

/// Cases per target: `VAE_GPU_FUZZ_CASES`, default 10 000.
pub fn cases() -> u64 {
    std::env::var("VAE_GPU_FUZZ_CASES")
        .ok()
        .map(|v| {
            v.replace('_', "")
                .parse()
                .expect("VAE_GPU_FUZZ_CASES: a number")
        })
        .unwrap_or(10_000)
}

/// The run's seed: `VAE_GPU_FUZZ_SEED`, default fixed (so `cargo test` is reproducible).
pub fn seed() -> u64 {
    std::env::var("VAE_GPU_FUZZ_SEED")
        .ok()
        .map(|v| v.parse().expect("VAE_GPU_FUZZ_SEED: a number"))
        .unwrap_or(0x5eed_f022)
}

/// `target/fuzz-failures/` of the build that runs this test.
pub fn failure_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("fuzz-failures")
}

/// Saves a failing input as `<target>-<what>.bin` and returns its path.
pub fn save_failure(name: &str, what: &str, input: &[u8]) -> PathBuf {
    let dir = failure_dir();
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{name}-{what}.bin"));
    let _ = std::fs::write(&path, input);
    path
}

#[derive(Debug, Default)]
pub struct Stats {
    pub cases: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub panics: u64,
    pub over_bound: u64,
    /// Cases slower than [`slow_limit`].
    pub slow: u64,
    /// (bytes, input length, case) of the case closest to its bound (largest peak ÷ bound).
    pub worst_peak: (usize, usize, u64),
    pub largest_peak: usize,
    pub slowest: (Duration, u64),
    pub elapsed: Duration,
    /// Saved inputs of the failures, with what went wrong.
    pub failures: Vec<String>,
}

/// How long one case may run before the watchdog saves it and stops the test binary:
/// `VAE_GPU_FUZZ_HANG_SECS`, default 60.
fn hang_limit() -> Duration {
    Duration::from_secs(
        std::env::var("VAE_GPU_FUZZ_HANG_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    )
}

/// A case slower than this is a finding (a parser whose time grows faster than its input):
/// `VAE_GPU_FUZZ_SLOW_SECS`, default 5.
fn slow_limit() -> Duration {
    Duration::from_secs_f64(
        std::env::var("VAE_GPU_FUZZ_SLOW_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5.0),
    )
}

/// Runs `cases` cases of `target` from case `first`: each under `catch_unwind`, with its heap
/// peak measured against the target's bound and its time against [`slow_limit`]. Panics, slow
/// cases and bound violations are counted and their inputs saved (the first ten of each); the
/// caller asserts there were none.
pub fn run(target: &Target, seed: u64, first: u64, cases: u64) -> Stats {
    let mut stats = Stats::default();
    let slow = slow_limit();
    let start = Instant::now();
    // The watchdog: a case that has not finished after the hang limit is saved, and the process
    // stops (a loop that never ends cannot be unwound).
    let current: Arc<Mutex<(u64, Vec<u8>)>> = Arc::new(Mutex::new((0, Vec::new())));
    let progress = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (current, progress, done) = (current.clone(), progress.clone(), done.clone());
        let name = target.name;
        let limit = hang_limit();
        std::thread::spawn(move || {
            let mut seen = (usize::MAX, Instant::now());
            while !done.load(Ordering::Relaxed) {
                std::thread::park_timeout(Duration::from_millis(100));
                let now = progress.load(Ordering::Relaxed);
                if now != seen.0 {
                    seen = (now, Instant::now());
                } else if seen.1.elapsed() > limit {
                    let (case, input) = &*current.lock().unwrap();
                    let path = save_failure(name, &format!("hang-case{case}"), input);
                    eprintln!(
                        "fuzz {name}: case {case} has run for more than {limit:?}; input saved \
                         to {}; stopping",
                        path.display()
                    );
                    std::process::exit(101);
                }
            }
        })
    };
    for case in first..first + cases {
        let mut rng = case_rng(seed, target.name, case);
        let input = target.input(&mut rng);
        {
            let mut c = current.lock().unwrap();
            c.0 = case;
            c.1.clear();
            c.1.extend_from_slice(&input);
        }
        progress.fetch_add(1, Ordering::Relaxed);
        CASE.with(|c| c.set(Some((target.name, case, input.as_ptr(), input.len()))));
        let t0 = Instant::now();
        let base = reset_peak();
        let result = catch_unwind(AssertUnwindSafe(|| (target.parse)(&input)));
        let peak = peak_since(base);
        let took = t0.elapsed();
        CASE.with(|c| c.set(None));
        stats.cases += 1;
        if took > stats.slowest.0 {
            stats.slowest = (took, case);
        }
        if took > slow {
            stats.slow += 1;
            if stats.slow <= 10 {
                let path = save_failure(target.name, &format!("slow-case{case}"), &input);
                stats.failures.push(format!(
                    "case {case} took {:.1} s on a {}-byte input; input {}",
                    took.as_secs_f64(),
                    input.len(),
                    path.display()
                ));
            }
        }
        let bound = target.bound(input.len());
        if peak as f64 / bound as f64
            > stats.worst_peak.0 as f64 / target.bound(stats.worst_peak.1) as f64
        {
            stats.worst_peak = (peak, input.len(), case);
        }
        stats.largest_peak = stats.largest_peak.max(peak);
        match result {
            Ok(Outcome::Accepted) => stats.accepted += 1,
            Ok(Outcome::Rejected) => stats.rejected += 1,
            Err(_) => {
                stats.panics += 1;
                if stats.panics <= 10 {
                    let path = save_failure(target.name, &format!("panic-case{case}"), &input);
                    stats
                        .failures
                        .push(format!("case {case} panicked; input {}", path.display()));
                }
            }
        }
        if peak > bound {
            stats.over_bound += 1;
            if stats.over_bound <= 10 {
                let path = save_failure(target.name, &format!("alloc-case{case}"), &input);
                stats.failures.push(format!(
                    "case {case} allocated {peak} bytes from a {}-byte input, past its bound of \
                     {bound}; input {}",
                    input.len(),
                    path.display()
                ));
            }
        }
    }
    stats.elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    watchdog.thread().unpark();
    watchdog.join().unwrap();
    stats
}

fn mib(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// The summary line of a run.
pub fn summary(target: &Target, s: &Stats) -> String {
    let (peak, len, case) = s.worst_peak;
    format!(
        "fuzz {}: {} cases in {:.2} s: {} accepted, {} rejected with an error, {} panics, {} slow, \
         {} over the heap bound ({} + {}×input: {}); largest peak {}; closest to its bound: case {case}, \
         {} from {len} bytes (bound {}); slowest case {} ({:.3} ms)",
        target.name,
        s.cases,
        s.elapsed.as_secs_f64(),
        s.accepted,
        s.rejected,
        s.panics,
        s.slow,
        s.over_bound,
        mib(target.fixed),
        target.per_byte,
        target.why,
        mib(s.largest_peak),
        mib(peak),
        mib(target.bound(len)),
        s.slowest.1,
        s.slowest.0.as_secs_f64() * 1e3,
    )
}

/// The first case: `VAE_GPU_FUZZ_FIRST`, default 0 (with `VAE_GPU_FUZZ_CASES=1`, one case again).
pub fn first() -> u64 {
    std::env::var("VAE_GPU_FUZZ_FIRST")
        .ok()
        .map(|v| v.parse().expect("VAE_GPU_FUZZ_FIRST: a number"))
        .unwrap_or(0)
}

/// Runs `target` for [`cases`] cases, prints its summary and fails on any panic or bound violation.
pub fn fuzz(target: Target) {
    let stats = run(&target, seed(), first(), cases());
    eprintln!("{}", summary(&target, &stats));
    assert!(
        stats.panics == 0 && stats.over_bound == 0 && stats.slow == 0,
        "fuzz {}: {} panics, {} slow cases, {} cases over the heap bound:\n  {}",
        target.name,
        stats.panics,
        stats.slow,
        stats.over_bound,
        stats.failures.join("\n  ")
    );
    assert!(
        stats.accepted > 0 || stats.cases < 100,
        "fuzz {}: no case was accepted; the corpus or the mutations are broken",
        target.name
    );
}
