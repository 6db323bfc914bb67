//! Progress reporting: a bar with ETA on a terminal, plain periodic log lines otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Reporter {
    quiet: bool,
    tty: bool,
    bar: Option<ProgressBar>,
    label: String,
    done: usize,
    total: usize,
    started: Instant,
    last_line: Instant,
}

const LOG_EVERY: Duration = Duration::from_secs(15);

impl Reporter {
    pub fn new(quiet: bool) -> Self {
        Reporter {
            quiet,
            tty: std::io::stderr().is_terminal(),
            bar: None,
            label: String::new(),
            done: 0,
            total: 0,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    /// A line of output (above the bar when one is shown).
    pub fn line(&mut self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    /// A per-step message: printed unless quiet.
    pub fn message(&mut self, msg: &str) {
        if !self.quiet {
            self.line(msg);
        }
    }

    pub fn start_bar(&mut self, total: usize, label: &str) {
        self.finish_bar();
        self.label = label.to_string();
        self.done = 0;
        self.total = total;
        self.started = Instant::now();
        self.last_line = Instant::now();
        if self.tty && !self.quiet {
            let bar = ProgressBar::new(total as u64);
            if let Ok(style) =
                ProgressStyle::with_template("{prefix:>7} [{bar:40}] {pos}/{len} {elapsed_precise} eta {eta}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(label.to_string());
            self.bar = Some(bar);
        }
    }

    pub fn tick(&mut self) {
        self.advance_by(1);
    }

    /// `n` more units done.
    pub fn advance_by(&mut self, n: usize) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
        } else if !self.quiet && self.last_line.elapsed() >= LOG_EVERY {
            self.last_line = Instant::now();
            let elapsed = self.started.elapsed().as_secs_f64();
            let eta = if self.done > 0 {
                elapsed / self.done as f64 * (self.total - self.done.min(self.total)) as f64
            } else {
                0.0
            };
            eprintln!(
                "{}: {}/{} ({elapsed:.0} s, eta {eta:.0} s)",
                self.label, self.done, self.total
            );
        }
    }

    pub fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl crate::data::Progress for Reporter {
    fn start(&mut self, total: usize, label: &str) {
        self.start_bar(total, label);
    }

    fn advance(&mut self, n: usize) {
        self.advance_by(n);
    }

    fn finish(&mut self) {
        self.finish_bar();
    }
}
