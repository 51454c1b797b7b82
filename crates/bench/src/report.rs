//! The closing table: one row per figure, one column per server, and a ratio oriented so that
//! above 1 always means Berth did better. Server CPU seconds sit beside the rates because the
//! client and the server share the machine's cores.

use crate::phases::Measured;

/// Everything measured on one server, phase by phase.
pub struct ServerFigures {
    /// Display name of the server.
    pub name: &'static str,
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
    rows
}

/// Prints the table for one or two servers; with two, the first is Berth and the ratio column
/// is Berth/Distribution for rates and Distribution/Berth for latency, memory and CPU.
pub fn print_table(runs: &[ServerFigures]) {
    let columns: Vec<Vec<Row>> = runs.iter().map(rows).collect();
    let Some(first) = columns.first() else { return };
    let label_width = first
        .iter()
        .map(|(label, ..)| label.chars().count())
        .max()
        .unwrap_or(0);
    let compare = runs.len() == 2;
    print!("\n{:<label_width$}", "");
    for run in runs {
        print!(" {:>13}", run.name);
    }
    if compare {
        print!(" {:>13}", "Berth gain ×");
    }
    println!();
    for (index, (label, better, _)) in first.iter().enumerate() {
        print!("{label:<label_width$}");
        for column in &columns {
            print!(" {:>13.1}", column[index].2);
        }
        if compare {
            let (berth, other) = (columns[0][index].2, columns[1][index].2);
            let gain = match better {
                Better::Higher => berth / other,
                Better::Lower => other / berth,
            };
            print!(" {gain:>13.2}");
        }
        println!();
    }
    if compare {
        println!(
            "\nBerth gain ×: Berth/Distribution for rates, Distribution/Berth for latency, \
             RSS and CPU (above 1 = Berth better)."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(name: &'static str, scale: f64) -> ServerFigures {
        let measured = |latency| Measured {
            rate: 100.0 * scale,
            latency,
            peak_rss_mib: 20.0 / scale,
            server_cpu_s: 1.0 / scale,
        };
        ServerFigures {
            name,
            monolithic: measured(None),
            chunked: measured(None),
            pull: measured(None),
            small: measured(None),
            manifests: measured(Some((100, 900))),
            run_peak_rss_mib: 30.0 / scale,
            run_cpu_s: 6.0 / scale,
        }
    }

    #[test]
    fn rows_line_up_across_servers() {
        let (berth, distribution) = (
            rows(&figures("Berth", 2.0)),
            rows(&figures("Distribution", 1.0)),
        );
        assert_eq!(berth.len(), 5 * 3 + 2 + 2);
        assert!(berth.iter().zip(&distribution).all(|(a, b)| a.0 == b.0));
        print_table(&[figures("Berth", 2.0), figures("Distribution", 1.0)]);
    }
}
