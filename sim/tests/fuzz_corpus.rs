//! The fuzz targets on stable, in CI: every input of the checked-in corpus
//! (`fuzz/corpus/TARGET/`), then seeded mutations of them. The
//! coverage-guided runs that grow the corpus are in `fuzz/` (nightly; see
//! docs/reliability.md).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;

/// Mutated inputs per target: a few seconds each.
const MUTATIONS: usize = 3_000;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files.iter().map(|file| std::fs::read(file).unwrap()).collect();
    assert!(!inputs.is_empty(), "empty corpus for {target}");
    inputs
}

/// A byte flipped, inserted or removed, a run copied, or a tail cut.
fn mutate(input: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let at = rng.random_range(0..=out.len());
        match rng.random_range(0..5) {
            0 if at < out.len() => out[at] ^= 1 << rng.random_range(0..8),
            1 => out.insert(at, rng.random()),
            2 if at < out.len() => {
                out.remove(at);
            }
            3 if at < out.len() => {
                let len = rng.random_range(0..=(out.len() - at).min(64));
                let run = out[at..at + len].to_vec();
                let to = rng.random_range(0..=out.len());
                out.splice(to..to, run);
            }
            _ => out.truncate(at),
        }
    }
    out
}

fn run(target: &str, body: fn(&[u8])) {
    let inputs = corpus(target);
    for input in &inputs {
        body(input);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(431);
    for _ in 0..MUTATIONS {
        let input = &inputs[rng.random_range(0..inputs.len())];
        body(&mutate(input, &mut rng));
    }
}

#[test]
fn client_decoder_corpus_and_mutations() {
    run("client_decoder", dynakv_sim::fuzz::client_decoder);
}

#[test]
fn internal_decoder_corpus_and_mutations() {
    run("internal_decoder", dynakv_sim::fuzz::internal_decoder);
}

#[test]
fn node_corpus_and_mutations() {
    run("node", dynakv_sim::fuzz::node);
}

#[test]
fn recovery_corpus_and_mutations() {
    run("recovery", dynakv_sim::fuzz::recovery);
}
