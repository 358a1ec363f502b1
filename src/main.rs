//! The `dynakv` binary: a node (`serve`, or the short form `HOST PORT FILE`,
//! see [`dynakv::runtime::config`]) or the operator's client (`ctl`, see
//! [`dynakv::ops::ctl`]).

use clap::Parser;
use dynakv::ops::ctl::{self, CtlArgs};
use dynakv::runtime::config::{self, NodeCommand};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("ctl") {
        let args = CtlArgs::parse_from(std::iter::once("dynakv ctl".to_string()).chain(args.skip(1)));
        return match ctl::run(args) {
            Ok(text) => {
                println!("{}", text.trim_end());
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("dynakv ctl: {message}");
                ExitCode::FAILURE
            }
        };
    }
    match config::parse(args) {
        Ok(NodeCommand::Print(text)) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Ok(NodeCommand::Serve(config)) => match dynakv::runtime::server::serve(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("dynakv: {message}");
                ExitCode::FAILURE
            }
        },
        Err(message) => {
            eprintln!("dynakv: {message}");
            ExitCode::from(2)
        }
    }
}
