//! Bench output: the summary printed to the terminal, a JSON result file,
//! and an SVG plot of throughput and p99 latency per second.

use crate::bench::BenchResult;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

pub fn summary(label: &str, clients: usize, result: &BenchResult) -> String {
    let l = &result.latency;
    let ms = |us: u64| us as f64 / 1000.0;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{label}: {clients} clients, {:.1} s",
        result.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        text,
        "  requests {}  sends {}  retries {}  throughput {:.0}/s  goodput {:.0}/s  retry rate {:.2} %  timeouts {}  overloads {}",
        result.completed,
        result.sends,
        result.retries,
        result.throughput(),
        result.goodput(),
        result.retry_rate() * 100.0,
        result.timeouts,
        result.overloads
    );
    let _ = writeln!(
        text,
        "  latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        ms(l.quantile_us(0.5)),
        ms(l.quantile_us(0.9)),
        ms(l.quantile_us(0.99)),
        ms(l.quantile_us(0.999)),
        ms(l.max_us())
    );
    let errors: Vec<String> = result
        .errors_by_code
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(code, n)| format!("code {code}: {n}"))
        .collect();
    let _ = writeln!(
        text,
        "  errors by code: {}",
        if errors.is_empty() {
            "none".into()
        } else {
            errors.join(", ")
        }
    );
    if let (Some(seconds), Some(per_request)) = (result.server_cpu_seconds, result.server_cpu_us_per_request()) {
        let _ = writeln!(
            text,
            "  server CPU: {per_request:.2} us/request ({:.0} % of one core)",
            100.0 * seconds / result.elapsed.as_secs_f64().max(1e-9)
        );
    }
    let _ = writeln!(text, "  wrong reads (correctness failures): {}", result.wrong_reads);
    for failure in &result.failures {
        let _ = writeln!(text, "    {failure}");
    }
    text
}

pub fn json(label: &str, clients: usize, result: &BenchResult, echo_throughput: Option<f64>) -> String {
    let l = &result.latency;
    let timeline: Vec<String> = result
        .timeline
        .iter()
        .enumerate()
        .map(|(s, second)| {
            format!(
                "{{\"second\":{s},\"completed\":{},\"p99_us\":{}}}",
                second.completed,
                second.latency.quantile_us(0.99)
            )
        })
        .collect();
    format!(
        "{{\"label\":{label:?},\"clients\":{clients},\"seconds\":{:.3},\"requests\":{},\"sends\":{},\"retries\":{},\"throughput\":{:.1},\"goodput\":{:.1},\"retry_rate\":{:.5},\"timeouts\":{},\"overloads\":{},\"wrong_reads\":{},\"errors_by_code\":{:?},\"latency_us\":{{\"p50\":{},\"p90\":{},\"p99\":{},\"p999\":{},\"max\":{}}},\"server_cpu_us_per_request\":{},\"echo_throughput\":{},\"timeline\":[{}]}}\n",
        result.elapsed.as_secs_f64(),
        result.completed,
        result.sends,
        result.retries,
        result.throughput(),
        result.goodput(),
        result.retry_rate(),
        result.timeouts,
        result.overloads,
        result.wrong_reads,
        result.errors_by_code,
        l.quantile_us(0.5),
        l.quantile_us(0.9),
        l.quantile_us(0.99),
        l.quantile_us(0.999),
        l.max_us(),
        result
            .server_cpu_us_per_request()
            .map_or("null".to_string(), |us| format!("{us:.3}")),
        echo_throughput.map_or("null".to_string(), |t| format!("{t:.1}")),
        timeline.join(",")
    )
}

/// Throughput (top) and p99 latency (bottom) per second.
pub fn plot(path: &Path, title: &str, result: &BenchResult) -> Result<(), String> {
    let points: Vec<(f64, f64, f64)> = result
        .timeline
        .iter()
        .enumerate()
        .map(|(s, second)| {
            (
                s as f64,
                second.completed as f64,
                second.latency.quantile_us(0.99) as f64 / 1000.0,
            )
        })
        .collect();
    let seconds = (points.len() as f64).max(1.0);
    let max_rate = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let max_p99 = points.iter().map(|p| p.2).fold(0.1, f64::max) * 1.1;
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(300);
    let mut chart = ChartBuilder::on(&top)
        .caption(format!("{title}: throughput"), ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..seconds, 0.0..max_rate)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("requests/s")
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(points.iter().map(|p| (p.0, p.1)), &BLUE))
        .map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&bottom)
        .caption(format!("{title}: p99 latency"), ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..seconds, 0.0..max_p99)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("p99 ms")
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        // A second in which nothing completed has no latency to show.
        .draw_series(LineSeries::new(
            points.iter().filter(|p| p.1 > 0.0).map(|p| (p.0, p.2)),
            &RED,
        ))
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
