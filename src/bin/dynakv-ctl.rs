//! `dynakv-ctl`, also reached as `dynakv ctl`: the operator's client (see
//! [`dynakv::ops::ctl`]). A binary of its own so that the node's binary
//! carries none of its command-line code: every page of code a node maps
//! counts against its 64 MiB.

use clap::Parser;
use dynakv::ops::ctl::{self, CtlArgs};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = CtlArgs::parse_from(std::iter::once("dynakv ctl".to_string()).chain(std::env::args().skip(1)));
    match ctl::run(args) {
        Ok(text) => {
            // A reader that stopped early (`| head -1`) is no failure.
            let _ = writeln!(std::io::stdout(), "{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("dynakv ctl: {message}");
            ExitCode::FAILURE
        }
    }
}
