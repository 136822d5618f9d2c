//! The HTML reports' charts: drawn by plotters into SVG, each with a `<title>` and `<desc>` so
//! that a screen reader and a printout say what it shows. Inputs are plain numbers: the pages
//! pick them out of the run's frames.

use plotters::coord::ranged1d::{SegmentValue, ValueFormatter};
use plotters::prelude::*;

/// Chart size in SVG user units (the page scales it to its width).
const SIZE: (u32, u32) = (760, 360);
/// Colours that read on a light and a dark page alike.
const INK: RGBColor = RGBColor(0x6b, 0x72, 0x80);
const MAIN: RGBColor = RGBColor(0x25, 0x63, 0xeb);
const WARN: RGBColor = RGBColor(0xdc, 0x26, 0x26);
const AMBER: RGBColor = RGBColor(0xf5, 0x9e, 0x0b);

/// One drawn chart: its SVG and the title it carries.
pub(super) struct Chart {
    pub(super) title: String,
    pub(super) svg: String,
}

/// Draws with `draw` into an SVG and labels it.
fn svg(
    title: &str,
    desc: &str,
    draw: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> Result<(), String>,
) -> Chart {
    let mut out = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        draw(&root).and_then(|()| root.present().map_err(|e| e.to_string()))
    };
    let svg = match drawn {
        Ok(()) => labelled(&out, title, desc),
        // A chart that cannot be drawn says so in its place; the page stays whole.
        Err(e) => format!("<p>Chart not drawn: {}</p>", super::html::escape(&e)),
    };
    Chart {
        title: title.to_string(),
        svg,
    }
}

/// `svg` with `role="img"`, a `<title>` and a `<desc>` right after its opening tag, and the
/// fixed size replaced by a view box, so the page can scale it.
fn labelled(svg: &str, title: &str, desc: &str) -> String {
    let (w, h) = SIZE;
    let Some(open_end) = svg.find('>') else {
        return svg.to_string();
    };
    let body = svg.get(open_end + 1..).unwrap_or_default();
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\"><title>{}</title><desc>{}</desc>{body}",
        super::html::escape(title),
        super::html::escape(desc)
    )
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A count on an axis: whole numbers only (the ticks between them stay unlabelled).
fn whole(y: &f64) -> String {
    if y.fract() == 0.0 {
        format!("{y:.0}")
    } else {
        String::new()
    }
}

/// A readable duration for axis labels: `45s`, `12m`, `5h`, `3d`.
pub(super) fn short_duration(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 60.0 {
        format!("{s:.0}s")
    } else if s < 3_600.0 {
        format!("{:.0}m", s / 60.0)
    } else if s < 86_400.0 {
        format!("{:.0}h", s / 3_600.0)
    } else {
        format!("{:.0}d", s / 86_400.0)
    }
}

/// The time-to-redeem ECDF on a log time axis, with the threshold and the lookback marked.
pub(super) fn ttr_ecdf(seconds: &[f64], threshold: f64, lookback: f64) -> Chart {
    let mut xs: Vec<f64> = seconds.iter().map(|s| s.max(1.0)).collect();
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let over = xs.iter().filter(|&&s| s > threshold).count();
    let share = if n == 0 { 0.0 } else { over as f64 / n as f64 };
    let title = "Time to redeem (ECDF)";
    let desc = format!(
        "Share of the {n} redeemed invites redeemed within a given time, on a log time axis. The threshold ({}) would have flagged {over} of them ({:.1}%) before they were redeemed; the lookback is {}.",
        short_duration(threshold),
        share * 100.0,
        short_duration(lookback)
    );
    svg(title, &desc, |root| {
        let hi = xs
            .last()
            .copied()
            .unwrap_or(1.0)
            .max(lookback)
            .max(threshold)
            * 1.5;
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d((1.0..hi).log_scale(), 0.0..1.0)
            .map_err(err)?;
        axes(
            &mut chart,
            "time to redeem",
            "share redeemed",
            |x| short_duration(*x),
            |y| format!("{:.0}%", y * 100.0),
        )?;
        let steps = ecdf_steps(&xs, hi);
        chart
            .draw_series(LineSeries::new(steps, MAIN.stroke_width(2)))
            .map_err(err)?
            .label(format!("{n} redeemed invites"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], MAIN.stroke_width(2)));
        let flagged = format!(
            "threshold {} ({:.1}% flagged)",
            short_duration(threshold),
            share * 100.0
        );
        mark(&mut chart, threshold, 1.0, WARN, flagged)?;
        let lookback_label = format!("lookback {}", short_duration(lookback));
        mark(&mut chart, lookback, 1.0, INK, lookback_label)?;
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// Points of the ECDF of `sorted` (ascending, all ≥ 1) as a step line: a step up at each
/// value, or past [`ECDF_POINTS`] values at as many log-spaced times up to `hi`, finer than
/// the chart's pixels (a tenant with 100,000 redeemed invites would otherwise draw as many).
fn ecdf_steps(sorted: &[f64], hi: f64) -> Vec<(f64, f64)> {
    let n = sorted.len() as f64;
    let share = |i: usize| i as f64 / n;
    if sorted.len() <= ECDF_POINTS {
        return sorted
            .iter()
            .enumerate()
            .flat_map(|(i, &x)| [(x, share(i)), (x, share(i + 1))])
            .collect();
    }
    let (lo, hi) = (sorted.first().copied().unwrap_or(1.0).ln(), hi.ln());
    let mut before = 0;
    let mut out = Vec::with_capacity(2 * ECDF_POINTS + 2);
    for k in 0..=ECDF_POINTS {
        let x = (lo + (hi - lo) * k as f64 / ECDF_POINTS as f64).exp();
        let upto = sorted.partition_point(|&v| v <= x);
        out.extend([(x, share(before)), (x, share(upto))]);
        before = upto;
    }
    out
}

/// Above this many redeemed invites the ECDF is drawn at this many points.
const ECDF_POINTS: usize = 800;

/// Bins of `values` (at most `max_bins` of equal width, from 0): (start, end, count).
fn bins(values: &[f64], max_bins: usize) -> Vec<(f64, f64, usize)> {
    let hi = values.iter().copied().fold(0.0_f64, f64::max);
    if values.is_empty() || max_bins == 0 {
        return Vec::new();
    }
    // Widths of whole days past two days, of whole hours below.
    let unit = if hi > 2.0 * 86_400.0 {
        86_400.0
    } else {
        3_600.0
    };
    let width = ((hi / unit / max_bins as f64).ceil().max(1.0)) * unit;
    let count = ((hi / width).floor() as usize + 1).min(max_bins + 1);
    let mut out: Vec<(f64, f64, usize)> = (0..count)
        .map(|i| (i as f64 * width, (i + 1) as f64 * width, 0))
        .collect();
    for v in values {
        let i = ((v.max(0.0) / width).floor() as usize).min(count - 1);
        if let Some(b) = out.get_mut(i) {
            b.2 += 1;
        }
    }
    out
}

/// How long the findings have been pending, as a histogram.
pub(super) fn pending_histogram(seconds: &[f64], threshold: f64) -> Chart {
    let bins = bins(seconds, 16);
    let top = bins.iter().map(|b| b.2).max().unwrap_or(0).max(1);
    let title = "Pending age of the findings";
    let desc = format!(
        "How long each of the {} findings has been pending at T, in bins of equal width; every finding is at least the threshold ({}) old.",
        seconds.len(),
        short_duration(threshold)
    );
    svg(title, &desc, |root| {
        let hi = bins.last().map_or(threshold * 2.0, |b| b.1).max(threshold);
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..hi, 0.0..(top as f64 * 1.1))
            .map_err(err)?;
        let label = |x: &f64| short_duration(*x);
        axes(&mut chart, "pending for", "findings", label, whole)?;
        chart
            .draw_series(bins.iter().map(|&(lo, hi, n)| {
                Rectangle::new([(lo, 0.0), (hi, n as f64)], MAIN.mix(0.8).filled())
            }))
            .map_err(err)?
            .label(format!("{} findings", seconds.len()))
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], MAIN.filled()));
        let label = format!("threshold {}", short_duration(threshold));
        mark(&mut chart, threshold, top as f64 * 1.1, WARN, label)?;
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// Counts per name (suppressed findings per exclusion rule), as bars.
pub(super) fn by_rule(counts: &[(String, u64)]) -> Chart {
    let total: u64 = counts.iter().map(|c| c.1).sum();
    let top = counts.iter().map(|c| c.1).max().unwrap_or(0).max(1);
    let title = "Suppressed findings by exclusion rule";
    let parts: Vec<String> = counts.iter().map(|(r, n)| format!("{r}: {n}")).collect();
    let desc = format!("{total} suppressed findings; {}.", parts.join(", "));
    svg(title, &desc, |root| {
        let names: Vec<String> = counts
            .iter()
            .map(|c| super::text::one_line(&c.0, 16))
            .collect();
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(
                (0..counts.len().max(1) - 1).into_segmented(),
                0.0..(top as f64 * 1.15),
            )
            .map_err(err)?;
        let name = |x: &SegmentValue<usize>| match x {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        axes(&mut chart, "exclusion rule", "suppressed", name, whole)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, c)| {
                let (l, r) = (SegmentValue::Exact(i), SegmentValue::Exact(i + 1));
                let mut bar = Rectangle::new([(l, 0.0), (r, c.1 as f64)], AMBER.filled());
                bar.set_margin(0, 0, 12, 12);
                bar
            }))
            .map_err(err)?;
        Ok(())
    })
}

/// Alerts per replay tick: the new ones and those still alerting from an earlier tick.
pub(super) fn alerts_per_tick(ticks: &[(i64, u64, u64)], every: i64) -> Chart {
    let (new, all): (u64, u64) = ticks.iter().fold((0, 0), |(n, a), t| (n + t.2, a + t.1));
    let top = ticks.iter().map(|t| t.1).max().unwrap_or(0).max(1);
    let title = "Alerts per replay tick";
    let desc = format!(
        "Alerts at each of the {} ticks: {new} new (the invite's first alert) and {} still alerting from an earlier tick, {all} in all.",
        ticks.len(),
        all - new
    );
    let day = |ns: i64| {
        crate::time::format_instant(ns)
            .chars()
            .take(10)
            .collect::<String>()
    };
    svg(title, &desc, |root| {
        let lo = ticks.first().map_or(0, |t| t.0);
        let hi = ticks.last().map_or(1, |t| t.0) + every.max(1);
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(lo..hi, 0.0..(top as f64 * 1.15))
            .map_err(err)?;
        axes(&mut chart, "evaluated at", "alerts", |x| day(*x), whole)?;
        let bar = |t0: i64, y0: f64, y1: f64, colour: RGBColor| {
            let mut r = Rectangle::new([(t0, y0), (t0 + every.max(1), y1)], colour.filled());
            r.set_margin(0, 0, 1, 1);
            r
        };
        let still = ticks
            .iter()
            .map(|&(t, a, n)| bar(t, 0.0, (a - n.min(a)) as f64, INK));
        chart
            .draw_series(still)
            .map_err(err)?
            .label("still alerting")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], INK.filled()));
        let fresh = ticks
            .iter()
            .map(|&(t, a, n)| bar(t, (a - n.min(a)) as f64, a as f64, WARN));
        chart
            .draw_series(fresh)
            .map_err(err)?
            .label("new")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], WARN.filled()));
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// Invites flagged per threshold, later redeemed against still pending, with the current and
/// the suggested threshold marked. `rows`: (threshold s, later redeemed, still pending).
pub(super) fn flagged_per_threshold(
    rows: &[(f64, u64, u64)],
    current: f64,
    suggested: Option<f64>,
) -> Chart {
    let top = rows.iter().map(|r| r.1 + r.2).max().unwrap_or(0).max(1) as f64 * 1.15;
    let title = "Flagged per threshold";
    let desc = format!(
        "Invites each of the {} thresholds would flag, split into those later redeemed (false alarms) and those still pending; current threshold {}{}.",
        rows.len(),
        short_duration(current),
        suggested.map_or(String::new(), |s| format!(", suggested {}", short_duration(s)))
    );
    svg(title, &desc, |root| {
        let lo = rows.iter().map(|r| r.0).fold(current, f64::min).max(1.0) / 1.5;
        let hi = rows
            .iter()
            .map(|r| r.0)
            .fold(current, f64::max)
            .max(lo * 2.0)
            * 1.5;
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..top)
            .map_err(err)?;
        let label = |x: &f64| short_duration(*x);
        axes(&mut chart, "threshold", "invites flagged", label, whole)?;
        let line = |pick: fn(&(f64, u64, u64)) -> u64, colour: RGBColor, label: &str| {
            let points: Vec<(f64, f64)> = rows.iter().map(|r| (r.0, pick(r) as f64)).collect();
            let label = label.to_string();
            (points, colour, label)
        };
        for (points, colour, label) in [
            line(|r| r.1, AMBER, "later redeemed"),
            line(|r| r.2, MAIN, "still pending"),
        ] {
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(err)?;
        }
        let label = format!("current {}", short_duration(current));
        mark(&mut chart, current, top, WARN, label)?;
        if let Some(s) = suggested {
            mark(
                &mut chart,
                s,
                top,
                INK,
                format!("suggested {}", short_duration(s)),
            )?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// A vertical line at `x`, in the legend as `label`.
fn mark<'a, X, DB>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    x: X::ValueType,
    top: f64,
    colour: RGBColor,
    label: String,
) -> Result<(), String>
where
    X: Ranged,
    X::ValueType: Clone + 'static,
    DB: DrawingBackend + 'a,
{
    chart
        .draw_series(std::iter::once(PathElement::new(
            [(x.clone(), 0.0), (x, top)],
            colour.stroke_width(2),
        )))
        .map_err(err)?
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2)));
    Ok(())
}

/// Axes and light grid lines, labelled.
fn axes<'a, X, Y, DB>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
    x_label: impl Fn(&X::ValueType) -> String,
    y_label: impl Fn(&Y::ValueType) -> String,
) -> Result<(), String>
where
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
    DB: DrawingBackend + 'a,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .axis_style(INK)
        .label_style(("sans-serif", 13).into_font().color(&INK))
        .light_line_style(INK.mix(0.12))
        .bold_line_style(INK.mix(0.25))
        .draw()
        .map_err(err)
}

fn legend<'a, X: Ranged, Y: Ranged, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    at: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(at)
        .label_font(("sans-serif", 13).into_font().color(&INK))
        .border_style(INK.mix(0.4))
        .background_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: f64 = 86_400.0;

    fn valid(c: &Chart) {
        assert!(c.svg.starts_with("<svg xmlns"), "{}", c.title);
        assert!(c.svg.trim_end().ends_with("</svg>"), "{}", c.title);
        assert!(c.svg.contains(&format!("<title>{}</title>", c.title)));
        assert!(!c.svg.contains("<script"));
    }

    #[test]
    fn every_chart_is_a_labelled_svg() {
        let ecdf = ttr_ecdf(&[60.0, 3_600.0, DAY, 10.0 * DAY], 5.0 * DAY, 14.0 * DAY);
        assert!(ecdf.svg.contains("flagged 1 of them (25.0%)"));
        let hist = pending_histogram(&[5.5 * DAY, 6.0 * DAY, 13.9 * DAY], 5.0 * DAY);
        let rules = by_rule(&[("<b>lab</b>".into(), 3), ("partners".into(), 1)]);
        assert!(
            rules.svg.contains("&lt;b&gt;lab&lt;/b&gt;: 3"),
            "escaped in its desc"
        );
        assert!(!rules.svg.contains("<b>"), "and in its axis labels");
        let ns = 1_000_000_000_i64;
        let ticks = alerts_per_tick(&[(0, 2, 2), (86_400 * ns, 3, 1)], 86_400 * ns);
        assert!(ticks.svg.contains("3 new"));
        let sweep = flagged_per_threshold(
            &[(DAY, 5, 2), (5.0 * DAY, 1, 2)],
            5.0 * DAY,
            Some(2.0 * DAY),
        );
        for c in [&ecdf, &hist, &rules, &ticks, &sweep] {
            valid(c);
            std::fs::write(format!("/tmp/chart-{}.svg", c.title.len()), &c.svg).unwrap();
        }
    }

    #[test]
    fn empty_inputs_still_draw() {
        for c in [
            ttr_ecdf(&[], DAY, 14.0 * DAY),
            pending_histogram(&[], DAY),
            by_rule(&[]),
            alerts_per_tick(&[], DAY as i64),
            flagged_per_threshold(&[], DAY, None),
        ] {
            valid(&c);
        }
    }

    #[test]
    fn a_large_ecdf_is_thinned_to_the_same_curve() {
        let xs: Vec<f64> = (1..=100_000).map(|i| 60.0 * f64::from(i)).collect();
        let steps = ecdf_steps(&xs, 1e8);
        assert!(steps.len() <= 2 * ECDF_POINTS + 2, "{}", steps.len());
        // Every drawn point lies on the exact ECDF.
        for &(x, y) in steps.iter().skip(1).step_by(2) {
            let exact = xs.partition_point(|&v| v <= x) as f64 / xs.len() as f64;
            assert!((y - exact).abs() < 1e-12, "{x}: {y} vs {exact}");
        }
        assert_eq!(steps.last().unwrap().1, 1.0);
        let small = ecdf_steps(&[10.0, 20.0], 100.0);
        assert_eq!(small, [(10.0, 0.0), (10.0, 0.5), (20.0, 0.5), (20.0, 1.0)]);
    }

    #[test]
    fn bins_cover_every_value() {
        let b = bins(&[0.0, 3.0 * DAY, 3.5 * DAY, 20.0 * DAY], 4);
        assert_eq!(b.iter().map(|x| x.2).sum::<usize>(), 4);
        assert!(b.iter().all(|x| x.1 - x.0 == b[0].1 - b[0].0));
        assert_eq!(b[0].0, 0.0);
    }
}
