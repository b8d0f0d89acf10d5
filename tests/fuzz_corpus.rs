//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the fuzz targets'
//! bodies (`fuzz/bodies/mod.rs`), then a fixed number of deterministic mutations of them,
//! so that every target runs on every `cargo test`, without cargo-fuzz or a nightly
//! toolchain. A body panics exactly when it finds a defect; the test then fails, naming the
//! target and the input (a mutated input is written to a file for `cargo fuzz run`).

#[path = "../fuzz/bodies/mod.rs"]
mod bodies;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Mutations per target, and the time they may take (a safety cap for slow machines; a
/// debug build does the count in well under it).
const MUTATIONS: usize = 300;
const MUTATION_TIME: Duration = Duration::from_secs(3);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The tokens of a libFuzzer dictionary: each line's quoted string, with `\\`, `\"` and
/// `\xNN` escapes.
fn dictionary(path: &Path) -> Vec<Vec<u8>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let (start, end) = (l.find('"')?, l.rfind('"')?);
            (end > start).then(|| &l.as_bytes()[start + 1..end])
        })
        .map(|raw| {
            let mut out = Vec::new();
            let mut i = 0;
            while i < raw.len() {
                match (raw[i], raw.get(i + 1)) {
                    (b'\\', Some(b'x')) if i + 4 <= raw.len() => {
                        let hex = std::str::from_utf8(&raw[i + 2..(i + 4).min(raw.len())])
                            .ok()
                            .and_then(|h| u8::from_str_radix(h, 16).ok());
                        out.push(hex.unwrap_or(b'x'));
                        i += 4;
                    }
                    (b'\\', Some(&c)) => {
                        out.push(c);
                        i += 2;
                    }
                    (c, _) => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            out
        })
        .collect()
}

/// xorshift64*: a fixed sequence from a fixed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] = b"\x00\xff\x7f\x80()[]{},.-0:\"'\\%_\n\r /?&=";

/// One to four of: flip a bit, set an interesting byte, insert a dictionary token, delete
/// a run, repeat a run (deep nesting, long lists), splice in another input, truncate.
fn mutate(base: &[u8], others: &[Vec<u8>], dict: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 if !dict.is_empty() => {
                let token = &dict[rng.below(dict.len())];
                v.splice(at..at, token.iter().copied());
            }
            3 if !v.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at.min(end)..end);
            }
            4 if !v.is_empty() => {
                let start = rng.below(v.len());
                let end = (start + 1 + rng.below(8)).min(v.len());
                let run = v[start..end].to_vec();
                for _ in 0..1 + rng.below(64) {
                    v.splice(start..start, run.iter().copied());
                }
            }
            5 if !others.is_empty() => {
                let other = &others[rng.below(others.len())];
                let from = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            _ => v.truncate(at),
        }
    }
    v.truncate(64 << 10);
    v
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into())
}

#[test]
fn every_fuzz_target_survives_its_corpus_and_mutations() {
    let mut failures = Vec::new();
    let saved = std::env::temp_dir().join("urbantile-fuzz-failures");
    for (name, body) in bodies::TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "target {name} has no corpus");
        let inputs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
        let started = Instant::now();
        for (file, input) in files.iter().zip(&inputs) {
            if let Err(e) = catch_unwind(AssertUnwindSafe(|| body(input))) {
                failures.push(format!(
                    "{name}: {}: {}",
                    file.display(),
                    panic_message(&*e)
                ));
            }
        }
        let replayed = started.elapsed();
        let dict = dictionary(&fuzz_dir().join("dicts").join(format!("{name}.dict")));
        let mut rng =
            Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64 ^ (name.as_bytes()[0] as u64) << 32);
        let started = Instant::now();
        let mut done = 0;
        while done < MUTATIONS && started.elapsed() < MUTATION_TIME {
            let base = &inputs[rng.below(inputs.len())];
            let input = mutate(base, &inputs, &dict, &mut rng);
            done += 1;
            if let Err(e) = catch_unwind(AssertUnwindSafe(|| body(&input))) {
                std::fs::create_dir_all(&saved).unwrap();
                let path = saved.join(format!("{name}-{done}"));
                std::fs::write(&path, &input).unwrap();
                failures.push(format!(
                    "{name}: mutation {done}, saved as {}: {}",
                    path.display(),
                    panic_message(&*e)
                ));
            }
        }
        println!(
            "{name}: {} corpus files in {:.2} s, {done} mutations in {:.2} s",
            files.len(),
            replayed.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
    }
    assert!(
        failures.is_empty(),
        "{} fuzz input(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Writes the `snapshot` target's seeds (`cargo test --test fuzz_corpus -- --ignored`):
/// a snapshot's layout follows the program, so they are written by it, not by hand.
#[test]
#[ignore]
fn write_snapshot_seeds() {
    let dir = fuzz_dir().join("corpus").join("snapshot");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in bodies::snapshot_seeds() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
