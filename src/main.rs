//! The `dynakv` binary: a node (`serve`, or the short form `HOST PORT FILE`),
//! or the operator's client (`ctl`). See [`dynakv::ops::cli`].

use clap::Parser;
use dynakv::ops::cli::{Action, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    match Cli::parse().action() {
        Action::Ctl(args) => match dynakv::ops::ctl::run(args) {
            Ok(text) => {
                println!("{}", text.trim_end());
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("dynakv ctl: {message}");
                ExitCode::FAILURE
            }
        },
        Action::Serve(config) => match dynakv::runtime::server::serve(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("dynakv: {message}");
                ExitCode::FAILURE
            }
        },
    }
}
