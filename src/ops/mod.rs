//! Tools for operators: [`ctl`], the command line that queries and drives
//! a running cluster.

pub mod ctl;
