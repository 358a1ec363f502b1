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

/// Plots throughput and p99 latency per second of `result` to `path`,
/// with `baseline` (the echo server's run, when `--echo` ran) as a second
/// series of each panel. Each second is drawn as a step over its whole
/// width, so the plot covers the run from 0 to its end.
pub fn plot(
    path: &Path,
    title: &str,
    result: &BenchResult,
    baseline: Option<(&str, &BenchResult)>,
) -> Result<(), String> {
    let mut runs = vec![(title.split(',').next().unwrap_or(title), result, BLUE)];
    runs.extend(baseline.map(|(label, run)| (label, run, RGBColor(160, 160, 160))));
    let seconds = runs
        .iter()
        .map(|(_, run, _)| run_seconds(run))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let root = SVGBackend::new(path, (900, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(320);
    let throughput = |run: &BenchResult| steps(run, |second| Some(second.completed as f64));
    let p99 = |run: &BenchResult| {
        // A second in which nothing completed has no latency to show.
        steps(run, |second| {
            (second.completed > 0).then(|| second.latency.quantile_us(0.99) as f64 / 1000.0)
        })
    };
    let series = |of: &dyn Fn(&BenchResult) -> Vec<(f64, f64)>| -> Vec<_> {
        runs.iter()
            .map(|&(label, run, color)| (label, of(run), color))
            .collect()
    };
    let panels = [
        (
            top,
            format!("{title}: throughput"),
            "requests per second",
            series(&throughput),
        ),
        (
            bottom,
            format!("{title}: p99 latency"),
            "p99 latency (ms)",
            series(&p99),
        ),
    ];
    for (area, caption, y_desc, series) in panels {
        draw_panel(&area, caption, y_desc, series, seconds)?;
    }
    root.present().map_err(|e| e.to_string())
}

/// One line of a panel: the run's label, its points, its colour.
type Series<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);

/// Draws one panel of the plot: each series as a line over `0..seconds`,
/// under a y axis that leaves some room above the highest point, with a
/// legend.
fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    caption: String,
    y_desc: &str,
    series: Vec<Series<'_>>,
    seconds: f64,
) -> Result<(), String> {
    let y_max = series.iter().flat_map(|s| s.1.iter().map(|p| p.1)).fold(0.1, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..seconds, 0.0..y_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("time since the start of the run (s)")
        .y_desc(y_desc)
        .y_label_formatter(&|v| si(*v))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(|e| e.to_string())?;
    for (label, points, color) in series {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| e.to_string())
}

/// Whole seconds the run covers (a last, partial second counts).
fn run_seconds(run: &BenchResult) -> usize {
    (run.elapsed.as_secs_f64().ceil() as usize)
        .min(run.timeline.len())
        .max(1)
}

/// Each second's value as a step from its start to its end; seconds with
/// no value (`None`) break nothing, they are left out.
fn steps(run: &BenchResult, value: impl Fn(&crate::bench::Second) -> Option<f64>) -> Vec<(f64, f64)> {
    let mut points = Vec::new();
    for (s, second) in run.timeline.iter().take(run_seconds(run)).enumerate() {
        if let Some(v) = value(second) {
            points.push((s as f64, v));
            points.push((s as f64 + 1.0, v));
        }
    }
    points
}

/// An axis number with a k or M suffix: 50000 -> "50k", 1500000 -> "1.5M".
pub fn si(value: f64) -> String {
    let (scaled, suffix) = match value.abs() {
        v if v >= 1e6 => (value / 1e6, "M"),
        v if v >= 1e3 => (value / 1e3, "k"),
        _ => (value, ""),
    };
    let text = format!("{scaled:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::si;

    #[test]
    fn axis_numbers_carry_k_and_m_suffixes() {
        assert_eq!(si(0.0), "0");
        assert_eq!(si(2.5), "2.5");
        assert_eq!(si(50_000.0), "50k");
        assert_eq!(si(12_500.0), "12.5k");
        assert_eq!(si(1_500_000.0), "1.5M");
    }
}
