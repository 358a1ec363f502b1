//! The `dynamo_request` fuzz target on stable, in CI: every input of the
//! checked-in corpus (`fuzz/corpus/dynamo_request/`), then seeded
//! mutations of them. Coverage-guided runs that grow the corpus are in
//! `fuzz/` (nightly).

use std::path::PathBuf;

/// Mutated inputs: a few seconds.
const MUTATIONS: usize = 20_000;

/// A small seeded generator (xorshift64*): the same mutations every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/dynamo_request");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|file| std::fs::read(file).unwrap()).collect()
}

/// A byte flipped, a JSON-ish byte inserted, a byte removed, a run of the
/// input copied elsewhere (members doubled, nesting deepened), or a tail cut.
fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(5) {
            0 if at < out.len() => out[at] ^= 1 << rng.below(8),
            1 => out.insert(at, b"{}[]\":,0-.eE\\ aN"[rng.below(16)]),
            2 if at < out.len() => {
                out.remove(at);
            }
            3 if at < out.len() => {
                let len = rng.below((out.len() - at).min(64) + 1);
                let run = out[at..at + len].to_vec();
                let to = rng.below(out.len() + 1);
                out.splice(to..to, run);
            }
            _ => out.truncate(at.max(1)),
        }
    }
    out
}

#[test]
fn dynamo_request_corpus_and_mutations() {
    let inputs = corpus();
    assert!(inputs.len() >= 10, "the corpus was read: {} inputs", inputs.len());
    for input in &inputs {
        dynakv_dynamo::fuzz::request(input);
    }
    let mut rng = Rng(431);
    for _ in 0..MUTATIONS {
        let input = &inputs[rng.below(inputs.len())];
        dynakv_dynamo::fuzz::request(&mutate(input, &mut rng));
    }
}

#[test]
fn every_corpus_input_parses_as_its_selector_says() {
    // The corpus is meant to reach past parsing: each input is a valid request.
    let operations = dynakv_dynamo::fuzz::OPERATIONS;
    for input in corpus() {
        let (selector, body) = input.split_first().expect("a selector byte");
        let operation = operations[usize::from(*selector) % operations.len()];
        assert!(
            dynakv_dynamo::fuzz::parses(operation, body),
            "{operation} {}",
            String::from_utf8_lossy(body)
        );
    }
}
