//! Tools for operators: [`ctl`], the client that queries and drives a
//! running cluster; [`metrics`], its counters in the formats monitoring
//! systems read.

pub mod ctl;
pub mod metrics;
