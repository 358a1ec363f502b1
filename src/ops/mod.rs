//! Tools for operators: [`ctl`], the client that queries and drives a
//! running cluster; [`metrics`], its counters in the formats monitoring
//! systems read; [`exporter`], those served over HTTP for Prometheus;
//! [`plan`], what a reload would move and whether every node would fit.

pub mod ctl;
pub mod exporter;
pub mod metrics;
pub mod plan;
