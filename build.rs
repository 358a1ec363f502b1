//! Compiles `proto/*.proto` with the protobuf crate's pure-Rust parser, so a
//! build needs no `protoc` on the machine.

fn main() {
    protobuf_codegen::Codegen::new()
        .pure()
        .includes(["proto"])
        .inputs(["proto/kv.proto"])
        .cargo_out_dir("proto")
        .run_from_script();
}
