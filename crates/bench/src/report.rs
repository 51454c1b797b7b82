//! The closing table: one row per figure, one column per server (or configuration), each cell
//! the median over the rounds with its range, and for two columns a ratio oriented so that
//! above 1 always means the first column did better. Server CPU seconds sit beside the rates
//! because the client and the server share the machine's cores.

use crate::phases::Measured;

/// Everything measured on one server, phase by phase.
pub struct ServerFigures {
    /// Phase a: monolithic push.
    pub monolithic: Measured,
    /// Phase b: chunked push.
    pub chunked: Measured,
    /// Phase c: pull.
    pub pull: Measured,
    /// Phase d: small images push.
    pub small: Measured,
    /// Phase e: manifest GETs.
    pub manifests: Measured,
    /// The server's peak resident set size from its start to the end of phase e, in MiB (not
    /// reset between phases: see [`crate::server::Server::run_peak_rss_mib`]).
    pub run_peak_rss_mib: f64,
    /// CPU time the server used from its start to the end of phase e, in seconds (startup and
    /// the pauses between phases included).
    pub run_cpu_s: f64,
    /// CPU time its object store (Garage) used over the same time; NaN without one.
    pub run_store_cpu_s: f64,
    /// CPU time the balancer in front of the nodes used over the same time; NaN without one.
    pub run_balancer_cpu_s: f64,
}

/// Whether a bigger figure is better (rates) or worse (latency, memory, CPU).
#[derive(Clone, Copy, PartialEq)]
enum Better {
    Higher,
    Lower,
}

/// One row of the table: its label, which way is better, and the figure.
type Row = (String, Better, f64);

/// The table's rows for one server, in phase order.
fn rows(figures: &ServerFigures) -> Vec<Row> {
    let phases = [
        ("monolithic push MiB/s", &figures.monolithic),
        ("chunked push MiB/s", &figures.chunked),
        ("pull MiB/s", &figures.pull),
        ("small images push img/s", &figures.small),
        ("manifest GET req/s", &figures.manifests),
    ];
    let mut rows = Vec::new();
    for (label, measured) in phases {
        rows.push((label.to_owned(), Better::Higher, measured.rate));
        if let Some((p50, p99)) = measured.latency {
            rows.push(("  p50 latency µs".to_owned(), Better::Lower, f64::from(p50)));
            rows.push(("  p99 latency µs".to_owned(), Better::Lower, f64::from(p99)));
        }
        rows.push((
            "  peak RSS MiB".to_owned(),
            Better::Lower,
            measured.peak_rss_mib,
        ));
        rows.push((
            "  server CPU s".to_owned(),
            Better::Lower,
            measured.server_cpu_s,
        ));
        rows.push((
            "  Garage CPU s".to_owned(),
            Better::Lower,
            measured.store_cpu_s,
        ));
        rows.push((
            "  nginx CPU s".to_owned(),
            Better::Lower,
            measured.balancer_cpu_s,
        ));
    }
    rows.push((
        "peak RSS over the run MiB".to_owned(),
        Better::Lower,
        figures.run_peak_rss_mib,
    ));
    rows.push((
        "server CPU s over the run".to_owned(),
        Better::Lower,
        figures.run_cpu_s,
    ));
    rows.push((
        "Garage CPU s over the run".to_owned(),
        Better::Lower,
        figures.run_store_cpu_s,
    ));
    rows.push((
        "nginx CPU s over the run".to_owned(),
        Better::Lower,
        figures.run_balancer_cpu_s,
    ));
    rows
}

/// The rows shown: those with a figure in some column (the Garage rows only with a Garage).
fn shown(values: &[Vec<f64>]) -> bool {
    values.iter().flatten().any(|value| value.is_finite())
}

/// One column of the table: a server or configuration and its figures, one per round.
pub struct Column {
    /// Display name, e.g. "Berth" or "Berth quiet".
    pub name: &'static str,
    /// The figures of each round, in round order.
    pub rounds: Vec<ServerFigures>,
}

impl Column {
    /// The median over the rounds of the figure `pick` takes (NaN without rounds).
    pub fn median(&self, pick: impl Fn(&ServerFigures) -> f64) -> f64 {
        let values: Vec<f64> = self.rounds.iter().map(pick).collect();
        Spread::of(&values).map_or(f64::NAN, |spread| spread.median)
    }
}

/// The median and range of one figure over the rounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The middle value, or the mean of the two middle values of an even count.
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of the finite values of `values`; `None` if there are none (a ratio with a
    /// zero denominator, e.g. a phase too short for the server's CPU time to tick).
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        };
        Some(Spread { median, min, max })
    }
}

/// The ratio of `first` to `second` oriented so that above 1 means `first` did better.
fn ratio(better: Better, first: f64, second: f64) -> f64 {
    match better {
        Better::Higher => first / second,
        Better::Lower => second / first,
    }
}

/// A figure's cell: the median with `decimals`, then its range when there were several rounds.
pub fn cell(values: &[f64], decimals: usize) -> String {
    match Spread::of(values) {
        None => "n/a".to_owned(),
        Some(spread) if values.len() == 1 => format!("{:.decimals$}", spread.median),
        Some(Spread { median, min, max }) => {
            format!("{median:.decimals$} ({min:.decimals$}–{max:.decimals$})")
        }
    }
}

/// The ratio cell of one row: the ratio of the two columns' medians, then, with several rounds,
/// the range of the ratios taken round by round (each round ran both servers).
fn ratio_cell(better: Better, first: &[f64], second: &[f64]) -> String {
    let (Some(a), Some(b)) = (Spread::of(first), Spread::of(second)) else {
        return "n/a".to_owned();
    };
    let from_medians = ratio(better, a.median, b.median);
    if !from_medians.is_finite() {
        return "n/a".to_owned();
    }
    let per_round: Vec<f64> = first
        .iter()
        .zip(second)
        .map(|(&a, &b)| ratio(better, a, b))
        .collect();
    match Spread::of(&per_round) {
        Some(range) if per_round.len() > 1 => {
            format!("{from_medians:.2} ({:.2}–{:.2})", range.min, range.max)
        }
        _ => format!("{from_medians:.2}"),
    }
}

/// The two names for the ratio's heading: without a first word they share ("Berth observed",
/// "Berth quiet" → "observed", "quiet").
fn short_names<'a>(first: &'a str, second: &'a str) -> (&'a str, &'a str) {
    match (first.split_once(' '), second.split_once(' ')) {
        (Some((a, rest_a)), Some((b, rest_b))) if a == b => (rest_a, rest_b),
        _ => (first, second),
    }
}

/// The width of `text` in characters.
fn width(text: &str) -> usize {
    text.chars().count()
}

/// A ratio between two columns for [`render_ratios`]: `first` over `second` (indexes into the
/// columns), oriented as the two-column table's ratio (above 1 = `first` better).
pub struct Ratio {
    pub first: usize,
    pub second: usize,
    pub heading: &'static str,
}

/// A table of `ratios` between columns, one row per figure, each cell the ratio of the
/// medians and, with several rounds, the min–max of the ratio taken round by round (every
/// round ran every column). For more columns than the two-column table compares.
pub fn render_ratios(columns: &[Column], ratios: &[Ratio]) -> String {
    use std::fmt::Write as _;
    let tables: Vec<Vec<Vec<Row>>> = columns
        .iter()
        .map(|column| column.rounds.iter().map(rows).collect())
        .collect();
    let Some(labels) = tables.first().and_then(|rounds| rounds.first()) else {
        return String::new();
    };
    if ratios.is_empty() {
        return String::new();
    }
    let series = |column: usize, index: usize| -> Vec<f64> {
        tables[column]
            .iter()
            .filter_map(|rows| rows.get(index))
            .map(|row| row.2)
            .collect()
    };
    let body: Vec<(String, Vec<String>)> = labels
        .iter()
        .enumerate()
        .filter(|(_, (label, ..))| !label.contains("RSS"))
        .map(|(index, (label, better, _))| {
            let cells = ratios
                .iter()
                .map(|ratio| {
                    ratio_cell(
                        *better,
                        &series(ratio.first, index),
                        &series(ratio.second, index),
                    )
                })
                .collect();
            (label.clone(), cells)
        })
        .filter(|(_, cells): &(String, Vec<String>)| cells.iter().any(|cell| cell != "n/a"))
        .collect();
    let label_width = body
        .iter()
        .map(|(label, _)| width(label))
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = ratios
        .iter()
        .enumerate()
        .map(|(index, ratio)| {
            body.iter()
                .map(|(_, cells)| width(&cells[index]))
                .chain([width(ratio.heading)])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut table = format!(
        "\nRatios (above 1 = the first named better; RSS rows left out):\n{:<label_width$}",
        ""
    );
    for (ratio, width) in ratios.iter().zip(&widths) {
        let _ = write!(table, "  {:>width$}", ratio.heading);
    }
    table.push('\n');
    for (label, cells) in &body {
        let _ = write!(table, "{label:<label_width$}");
        for (text, width) in cells.iter().zip(&widths) {
            let _ = write!(table, "  {text:>width$}");
        }
        table.push('\n');
    }
    table.push_str(
        "  Rates: first / second; latency and CPU: second / first. The ratio of the medians, then\n  \
         the min–max of the ratio taken round by round.\n",
    );
    table
}

/// Prints the table of [`render_table`].
pub fn print_table(columns: &[Column]) {
    print!("{}", render_table(columns));
}

/// The table for one or more columns: each figure's median over the rounds and, with several
/// rounds, its range (min–max). With exactly two columns, a ratio column compares the first
/// with the second: first/second for rates, second/first for latency, memory and CPU, so that
/// above 1 means the first did better; it is computed from the medians, and with several
/// rounds followed by the range of the per-round ratios.
pub fn render_table(columns: &[Column]) -> String {
    use std::fmt::Write as _;
    // Per column, per round, the rows.
    let tables: Vec<Vec<Vec<Row>>> = columns
        .iter()
        .map(|column| column.rounds.iter().map(rows).collect())
        .collect();
    let Some(labels) = tables.first().and_then(|rounds| rounds.first()) else {
        return String::new();
    };
    // Per row, per column, the values over the rounds.
    let values: Vec<Vec<Vec<f64>>> = (0..labels.len())
        .map(|index| {
            tables
                .iter()
                .map(|rounds| {
                    rounds
                        .iter()
                        .filter_map(|rows| rows.get(index))
                        .map(|row| row.2)
                        .collect()
                })
                .collect()
        })
        .collect();
    let compare = columns.len() == 2;
    let (short_first, short_second) = match columns {
        [first, second] => short_names(first.name, second.name),
        _ => ("", ""),
    };
    let ratio_heading = format!("{short_first}/{short_second} ×");

    let mut header: Vec<String> = columns
        .iter()
        .map(|column| column.name.to_owned())
        .collect();
    if compare {
        header.push(ratio_heading.clone());
    }
    let body: Vec<(String, Vec<String>)> = labels
        .iter()
        .zip(&values)
        .filter(|(_, by_column)| shown(by_column))
        .map(|((label, better, _), by_column)| {
            // CPU seconds of a short phase are tenths; show their hundredths (clock ticks).
            let decimals = if label.contains("CPU") { 2 } else { 1 };
            let mut cells: Vec<String> = by_column
                .iter()
                .map(|values| cell(values, decimals))
                .collect();
            if compare {
                cells.push(ratio_cell(*better, &by_column[0], &by_column[1]));
            }
            (label.clone(), cells)
        })
        .collect();

    let label_width = labels
        .iter()
        .map(|(label, ..)| width(label))
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = (0..header.len())
        .map(|index| {
            body.iter()
                .map(|(_, cells)| width(&cells[index]))
                .chain([width(&header[index]), 13])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut table = String::new();
    let _ = write!(table, "\n{:<label_width$}", "");
    for (text, width) in header.iter().zip(&widths) {
        let _ = write!(table, " {text:>width$}");
    }
    table.push('\n');
    for (label, cells) in &body {
        let _ = write!(table, "{label:<label_width$}");
        for (text, width) in cells.iter().zip(&widths) {
            let _ = write!(table, " {text:>width$}");
        }
        table.push('\n');
    }
    let rounds = columns
        .iter()
        .map(|column| column.rounds.len())
        .max()
        .unwrap_or(0);
    if rounds > 1 {
        let _ = writeln!(
            table,
            "\nEach figure: the median of {rounds} rounds (min–max over the rounds)."
        );
    }
    if let [first, second] = columns {
        let (first, second) = (first.name, second.name);
        let _ = write!(
            table,
            "{}{ratio_heading}: {first} / {second} for rates, {second} / {first} for latency, \
             RSS and CPU\n  (above 1 = {first} better, below 1 = {second} better)",
            if rounds > 1 { "" } else { "\n" }
        );
        table.push_str(".\n");
        if rounds > 1 {
            table.push_str(
                "  The ratio of the medians, then the min–max of the ratio taken round by round.\n",
            );
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(scale: f64) -> ServerFigures {
        let measured = |latency| Measured {
            rate: 100.0 * scale,
            latency,
            peak_rss_mib: 20.0 / scale,
            server_cpu_s: 1.0 / scale,
            store_cpu_s: f64::NAN,
            balancer_cpu_s: f64::NAN,
        };
        ServerFigures {
            monolithic: measured(None),
            chunked: measured(None),
            pull: measured(None),
            small: measured(None),
            manifests: measured(Some((100, 900))),
            run_peak_rss_mib: 30.0 / scale,
            run_cpu_s: 6.0 / scale,
            run_store_cpu_s: f64::NAN,
            run_balancer_cpu_s: f64::NAN,
        }
    }

    #[test]
    fn rows_line_up_across_servers() {
        let (berth, distribution) = (rows(&figures(2.0)), rows(&figures(1.0)));
        assert_eq!(berth.len(), 5 * 5 + 2 + 4);
        assert!(berth.iter().zip(&distribution).all(|(a, b)| a.0 == b.0));
        let table = render_table(&[
            Column {
                name: "Berth",
                rounds: vec![figures(2.0)],
            },
            Column {
                name: "Distribution",
                rounds: vec![figures(1.0)],
            },
        ]);
        print!("{table}");
        // One round: bare values, ratios of 2 both ways (rates and costs).
        let rate = table.lines().find(|l| l.starts_with("pull MiB/s")).unwrap();
        assert_eq!(
            rate.split_whitespace().collect::<Vec<_>>()[2..],
            ["200.0", "100.0", "2.00"]
        );
        let rss = table
            .lines()
            .find(|l| l.starts_with("peak RSS over"))
            .unwrap();
        assert_eq!(
            rss.split_whitespace().collect::<Vec<_>>()[6..],
            ["15.0", "30.0", "2.00"]
        );
        assert!(table.contains("Berth/Distribution ×"));
        assert!(!table.contains("min–max"));
    }

    #[test]
    fn spread_is_median_and_range() {
        let spread = Spread::of(&[3.0, 10.0, 1.0, 2.0]).unwrap();
        assert_eq!(
            spread,
            Spread {
                median: 2.5,
                min: 1.0,
                max: 10.0
            }
        );
        assert_eq!(Spread::of(&[5.0, 1.0, 9.0]).unwrap().median, 5.0);
        assert_eq!(Spread::of(&[7.0]).unwrap().median, 7.0);
        // A ratio with a zero denominator has no place in a range.
        assert_eq!(Spread::of(&[f64::INFINITY, 4.0]).unwrap().max, 4.0);
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn figures_and_ratios_use_the_medians_with_per_round_ranges() {
        // First column: rates 100, 900, 200 (median 200); second: 100, 400, 300 (median 300).
        let column = |name, scales: &[f64]| Column {
            name,
            rounds: scales.iter().map(|&scale| figures(scale)).collect(),
        };
        let table = render_table(&[
            column("Berth observed", &[1.0, 9.0, 2.0]),
            column("Berth quiet", &[1.0, 4.0, 3.0]),
        ]);
        print!("{table}");
        let row = |label: &str| {
            table
                .lines()
                .find(|line| line.starts_with(label))
                .unwrap()
                .to_owned()
        };
        // The ratio is that of the medians, 200/300 = 0.67: not the median (1.00) nor the mean
        // (1.31) of the per-round ratios 1, 2.25 and 0.67, whose range follows it.
        let rate = row("monolithic push MiB/s");
        assert!(
            rate.contains(" 200.0 (100.0–900.0) 300.0 (100.0–400.0) "),
            "{rate}"
        );
        assert!(rate.ends_with(" 0.67 (0.67–2.25)"), "{rate}");
        // Costs: quiet/observed, so the same orientation (above 1 = the first better); CPU
        // seconds are 6/scale, medians 3 and 2.
        let cpu = row("server CPU s over the run");
        assert!(cpu.contains(" 3.00 (0.67–6.00) "), "{cpu}");
        assert!(cpu.ends_with(" 0.67 (0.67–2.25)"), "{cpu}");
        let p50 = row("  p50 latency µs");
        assert!(p50.ends_with("1.00 (1.00–1.00)"), "{p50}");
        assert!(table.contains("observed/quiet ×"));
        assert!(table.contains("median of 3 rounds"));
        assert!(table.contains(
            "Berth observed / Berth quiet for rates, Berth quiet / Berth observed for latency"
        ));
    }

    #[test]
    fn ratios_between_any_columns_and_garage_rows_only_with_a_garage() {
        let column = |name, scales: &[f64]| Column {
            name,
            rounds: scales.iter().map(|&scale| figures(scale)).collect(),
        };
        let mut garage = column("On Garage", &[4.0, 4.0]);
        for figures in &mut garage.rounds {
            figures.pull.store_cpu_s = 2.0;
            figures.run_store_cpu_s = 8.0;
        }
        let columns = [
            column("Disk", &[1.0, 2.0]),
            column("Other", &[2.0, 2.0]),
            garage,
        ];
        let table = render_table(&columns);
        print!("{table}");
        // No ratio column for three, and the Garage rows only because one column has them.
        assert!(!table.contains('×'));
        // No balancer in any column: no nginx rows.
        assert!(!table.contains("nginx CPU"), "{table}");
        let garage_row = table.lines().find(|l| l.starts_with("Garage CPU")).unwrap();
        assert!(
            garage_row.contains("n/a") && garage_row.contains("8.00"),
            "{garage_row}"
        );
        assert!(!render_table(&columns[..2]).contains("Garage"));
        let ratios = render_ratios(
            &columns,
            &[
                Ratio {
                    first: 2,
                    second: 0,
                    heading: "Garage/Disk",
                },
                Ratio {
                    first: 1,
                    second: 0,
                    heading: "Other/Disk",
                },
            ],
        );
        print!("{ratios}");
        // Rates 400 against 100 and 200 (median 150): 2.67, per round 4 and 2.
        let rate = ratios
            .lines()
            .find(|l| l.starts_with("pull MiB/s"))
            .unwrap();
        assert!(rate.contains(" 2.67 (2.00–4.00) "), "{rate}");
        assert!(rate.ends_with(" 1.33 (1.00–2.00)"), "{rate}");
        assert!(!ratios.contains("peak RSS"));
        // Neither pair has Garage figures on both sides: the rows are left out.
        assert!(!ratios.contains("Garage CPU"));
    }
}
