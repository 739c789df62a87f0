//! strata's build records (`store::records`) as the order advisor's [`StepHistory`]: how
//! long each step took when it last ran, and in how many kept builds its own inputs changed.

use std::path::Path;
use std::time::Duration;

use check::order::StepHistory;

/// The recorded steps of the builds of one (context, Dockerfile).
struct Records(Vec<store::StepStat>);

impl Records {
    /// The step recorded at `line` with the same instruction (the Dockerfile may have
    /// changed since).
    fn step(&self, line: usize, text: &str) -> Option<&store::StepStat> {
        let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let text = norm(text);
        self.0
            .iter()
            .find(|s| s.line == line && norm(&s.instruction).eq_ignore_ascii_case(&text))
    }
}

impl StepHistory for Records {
    fn duration(&self, _stage: usize, line: usize, text: &str) -> Option<Duration> {
        self.step(line, text)
            .map(|s| s.duration)
            .filter(|d| !d.is_zero())
    }

    fn misses(&self, _stage: usize, line: usize, text: &str) -> Option<(u32, u32)> {
        self.step(line, text).map(|s| (s.changed, s.builds))
    }
}

/// The build records of `dockerfile` built with `context` (none when the store has none or
/// cannot read them: the advisor then falls back on its heuristic).
pub fn records(store: &store::Store, context: &Path, dockerfile: &Path) -> Box<dyn StepHistory> {
    match store.step_stats(context, dockerfile) {
        Ok(steps) => Box::new(Records(steps)),
        Err(e) => {
            tracing::debug!("build records: {e}");
            Box::new(check::order::NoHistory)
        }
    }
}
