//! Stages as a graph: which stages a stage needs, the worker slots that run them in
//! parallel, and the build output kept in stage order.
//!
//! Every stage up to the last one is built (the classic builder's set), each on a thread of
//! its own that waits for the stages it needs (the one it builds `FROM`, those it `COPY
//! --from`s or `RUN --mount`s `from=`), then for one of `jobs` slots. A stage that finds it
//! needs another one only while it runs (a `--from` word with a variable, an ONBUILD
//! trigger of its base image) waits for it then, giving its slot back meanwhile, so no set of
//! waiting stages can hold every slot.
//!
//! The output is the sequential build's, byte for byte: the lowest stage not yet finished
//! writes through, every later one into a buffer of its own, printed when the stages before
//! it are done (`rawjson`'s events, whole lines naming their step, go out as they
//! come, as BuildKit's interleave).

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::sync::{Condvar, Mutex, MutexGuard};

use super::*;

/// The stages stage `index` is known to need before it starts: its base and the stages
/// its steps name with `--from`/`from=` (words without variables; the others are waited
/// for when the step runs).
pub(super) fn needs(
    plan: &Plan,
    index: usize,
    frontend: &dyn Frontend,
    meta: &[(String, String)],
) -> BTreeSet<usize> {
    let stage = &plan.stages[index];
    let mut out = BTreeSet::new();
    if let Ok(base) = frontend.word(&stage.base, meta) {
        out.extend(stages::stage_ref(plan, index, &base));
    }
    let mut refer = |word: &str| {
        if !word.contains('$') {
            out.extend(stages::stage_ref(plan, index, word));
        }
    };
    for step in &stage.steps {
        match &step.op {
            Op::Copy {
                from: Some(from), ..
            } => refer(from),
            Op::Run(_, mounts, _) => {
                for m in mounts {
                    if let RunMountKind::Bind { from: Some(f), .. } = &m.kind {
                        refer(f);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The stages BuildKit builds: `last` and the stages it needs, and those they need, in
/// turn. None when one of them names a stage with a variable (known only when its step
/// runs): then every stage up to `last` is built, as the classic builder does.
pub(super) fn wanted(
    plan: &Plan,
    last: usize,
    frontend: &dyn Frontend,
    meta: &[(String, String)],
) -> Option<BTreeSet<usize>> {
    let mut out = BTreeSet::new();
    let mut todo = vec![last];
    while let Some(i) = todo.pop() {
        if !out.insert(i) {
            continue;
        }
        let variable = plan.stages[i].steps.iter().any(
            |step| matches!(&step.op, Op::Copy { from: Some(from), .. } if from.contains('$')),
        );
        if variable {
            return None;
        }
        todo.extend(needs(plan, i, frontend, meta));
    }
    Some(out)
}

/// How many stages run at once: one per CPU, at least two.
pub(super) fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2)
}

/// The state the stage threads share.
pub(super) struct Graph {
    state: Mutex<GraphState>,
    changed: Condvar,
    jobs: usize,
}

struct GraphState {
    /// The final image of every stage built so far, by index.
    built: Vec<Option<Digest>>,
    /// The lowest stage that failed: the stages after it stop at their next step, the
    /// ones before it go on (the sequential build would have run them first), so the
    /// output and the error are the sequential build's.
    failed: Option<usize>,
    /// Stages the target does not need (BuildKit's display, [`wanted`]): built only when a
    /// stage asks for one while it runs (an ONBUILD trigger's `--from`), which sets
    /// `demanded`.
    skipped: Vec<bool>,
    demanded: Vec<bool>,
    /// The last stage ended: a skipped stage nobody asked for is not built.
    over: bool,
    /// Slots in use.
    running: usize,
    /// Stages waiting for a slot; the lowest index gets the next one.
    waiting: BTreeSet<usize>,
}

impl Graph {
    pub(super) fn new(stages: usize, jobs: usize) -> Graph {
        Graph {
            state: Mutex::new(GraphState {
                built: vec![None; stages],
                skipped: vec![false; stages],
                demanded: vec![false; stages],
                over: false,
                failed: None,
                running: 0,
                waiting: BTreeSet::new(),
            }),
            changed: Condvar::new(),
            jobs: jobs.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, GraphState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopped(g: &GraphState, index: usize) -> bool {
        g.failed.is_some_and(|f| f < index)
    }

    fn wait<'g>(&self, g: MutexGuard<'g, GraphState>) -> MutexGuard<'g, GraphState> {
        self.changed.wait(g).unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until every stage in `needs` is built, then for a slot.
    pub(super) fn start(&self, index: usize, needs: &BTreeSet<usize>) -> Result<()> {
        let mut g = self.lock();
        for &j in needs {
            Self::demand(&mut g, j);
        }
        self.changed.notify_all();
        while !Self::stopped(&g, index) && needs.iter().any(|&j| g.built[j].is_none()) {
            g = self.wait(g);
        }
        self.take_slot(g, index)
    }

    fn take_slot(&self, mut g: MutexGuard<'_, GraphState>, index: usize) -> Result<()> {
        g.waiting.insert(index);
        while !Self::stopped(&g, index)
            && (g.running >= self.jobs || g.waiting.first() != Some(&index))
        {
            g = self.wait(g);
        }
        g.waiting.remove(&index);
        if Self::stopped(&g, index) {
            self.changed.notify_all();
            return Err(BuildError::Cancelled);
        }
        g.running += 1;
        Ok(())
    }

    /// Stage `index` ends (built, or failed: then every later stage stops) and gives its
    /// slot back.
    pub(super) fn finish(&self, index: usize, result: Option<Digest>) {
        let mut g = self.lock();
        g.running -= 1;
        match result {
            Some(id) => g.built[index] = Some(id),
            None => Self::mark_failed(&mut g, index),
        }
        self.changed.notify_all();
    }

    fn mark_failed(g: &mut GraphState, index: usize) {
        g.failed = Some(g.failed.map_or(index, |f| f.min(index)));
    }

    /// Stage `index` is not built: the target does not need it.
    pub(super) fn skip(&self, index: usize) {
        self.lock().skipped[index] = true;
    }

    /// Whether stage `index` was skipped ([`Graph::skip`]).
    pub(super) fn skipped(&self, index: usize) -> bool {
        self.lock().skipped[index]
    }

    /// For a skipped stage ([`Graph::skip`]): waits until a stage asks for it (true: build
    /// it) or the build is over (false). True at once for any other stage.
    pub(super) fn wanted(&self, index: usize) -> bool {
        let mut g = self.lock();
        while g.skipped[index] && !g.demanded[index] && !g.over && g.failed.is_none() {
            g = self.wait(g);
        }
        !g.skipped[index] || g.demanded[index]
    }

    /// The last stage ended (built or not): skipped stages nobody asked for stop waiting.
    pub(super) fn end(&self) {
        self.lock().over = true;
        self.changed.notify_all();
    }

    fn demand(g: &mut GraphState, j: usize) {
        if g.skipped[j] {
            g.demanded[j] = true;
        }
    }

    /// Stops the stages after `index`, which failed without a slot.
    pub(super) fn fail(&self, index: usize) {
        Self::mark_failed(&mut self.lock(), index);
        self.changed.notify_all();
    }

    /// An error when an earlier stage failed: checked before each step of stage `index`.
    pub(super) fn check(&self, index: usize) -> Result<()> {
        match Self::stopped(&self.lock(), index) {
            true => Err(BuildError::Cancelled),
            false => Ok(()),
        }
    }

    /// The image of stage `j`, which stage `index` (holding a slot) needs: at once when it
    /// is built, else after waiting for it without the slot.
    pub(super) fn built(&self, index: usize, j: usize) -> Result<Digest> {
        let mut g = self.lock();
        if let Some(id) = g.built[j] {
            return Ok(id);
        }
        Self::demand(&mut g, j);
        g.running -= 1;
        self.changed.notify_all();
        // Stage `j` failing (or one before it) ends the wait too.
        while !Self::stopped(&g, index.max(j + 1)) && g.built[j].is_none() {
            g = self.wait(g);
        }
        self.take_slot(g, index)?;
        self.lock().built[j].ok_or(BuildError::Cancelled)
    }

    /// The final images of the stages built, by index.
    pub(super) fn images(&self) -> Vec<Option<Digest>> {
        self.lock().built.clone()
    }
}

/// The build output, kept in stage order (see the module's comment).
pub(super) struct Ordered<'o> {
    state: Mutex<OrderedState<'o>>,
}

struct OrderedState<'o> {
    out: &'o mut (dyn Write + Send),
    /// The lowest stage not finished: its output goes straight out.
    head: usize,
    /// What later stages wrote so far.
    held: Vec<Vec<u8>>,
    done: Vec<bool>,
    /// The lowest stage that failed: nothing after it comes out, as in the sequential
    /// build, which stops there.
    cut: usize,
    /// Every write goes out as it comes (`rawjson`, whose events are whole lines written
    /// at once and name their step, as BuildKit's interleave).
    through: bool,
}

impl<'o> Ordered<'o> {
    pub(super) fn new(out: &'o mut (dyn Write + Send), stages: usize, through: bool) -> Self {
        Ordered {
            state: Mutex::new(OrderedState {
                out,
                head: 0,
                held: vec![Vec::new(); stages],
                done: vec![false; stages],
                cut: usize::MAX,
                through,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, OrderedState<'o>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where stage `index` writes.
    pub(super) fn stage(&self, index: usize) -> StageOut<'_, 'o> {
        StageOut {
            ordered: self,
            index,
        }
    }

    /// Stage `index` wrote everything (and `failed` or not): the stages after it that are
    /// held come out.
    pub(super) fn finish(&self, index: usize, failed: bool) {
        let mut g = self.lock();
        let s = &mut *g;
        s.done[index] = true;
        if failed {
            s.cut = s.cut.min(index);
        }
        while s.head < s.done.len() && s.head < s.cut && s.done[s.head] {
            s.head += 1;
            if let Some(held) = s.held.get_mut(s.head) {
                let _ = s.out.write_all(&std::mem::take(held));
                let _ = s.out.flush();
            }
        }
    }

    /// After a failed build: whatever is still held, in stage order.
    pub(super) fn flush_all(&self) {
        let mut g = self.lock();
        let s = &mut *g;
        let end = s.held.len().min(s.cut.saturating_add(1));
        for held in &mut s.held[..end] {
            let _ = s.out.write_all(&std::mem::take(held));
        }
        let _ = s.out.flush();
    }
}

/// The output of one stage.
pub(super) struct StageOut<'a, 'o> {
    ordered: &'a Ordered<'o>,
    index: usize,
}

impl Write for StageOut<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut g = self.ordered.lock();
        if g.head == self.index || g.through {
            g.out.write_all(buf)?;
        } else {
            g.held[self.index].extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        let mut g = self.ordered.lock();
        if g.head == self.index || g.through {
            g.out.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn a_failed_stage_stops_the_later_ones_but_not_the_earlier_ones() {
        let graph = Graph::new(3, 3);
        for i in 0..3 {
            graph.start(i, &BTreeSet::new()).unwrap();
        }
        graph.finish(1, None);
        assert!(graph.check(0).is_ok(), "an earlier stage goes on");
        assert!(graph.check(1).is_ok());
        assert!(matches!(graph.check(2), Err(BuildError::Cancelled)));
        graph.finish(0, Some(digest(0)));
        assert_eq!(graph.images()[0], Some(digest(0)));
    }

    #[test]
    fn waiting_for_a_stage_that_failed_ends() {
        let graph = Graph::new(3, 1);
        graph.start(0, &BTreeSet::new()).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| graph.start(2, &BTreeSet::from([0])));
            graph.finish(0, None);
            assert!(matches!(waiter.join().unwrap(), Err(BuildError::Cancelled)));
        });
    }

    #[test]
    fn a_skipped_stage_is_built_only_when_asked_for() {
        let graph = Graph::new(3, 2);
        graph.skip(0);
        graph.skip(1);
        graph.start(2, &BTreeSet::new()).unwrap();
        std::thread::scope(|s| {
            let zero = s.spawn(|| graph.wanted(0));
            let one = s.spawn(|| graph.wanted(1));
            // Stage 2 asks for stage 1 while it runs: stage 1 is built, stage 0 is not.
            let asked = s.spawn(|| graph.built(2, 1));
            assert!(one.join().unwrap());
            graph.start(1, &BTreeSet::new()).unwrap();
            graph.finish(1, Some(digest(1)));
            assert_eq!(asked.join().unwrap().unwrap(), digest(1));
            graph.finish(2, Some(digest(2)));
            graph.end();
            assert!(!zero.join().unwrap());
        });
    }

    #[test]
    fn output_stops_at_the_failed_stage() {
        let mut out = Vec::new();
        {
            let ordered = Ordered::new(&mut out, 3, false);
            ordered.stage(2).write_all(b"two\n").unwrap();
            ordered.stage(1).write_all(b"one\n").unwrap();
            ordered.finish(2, true);
            ordered.finish(1, true);
            ordered.stage(0).write_all(b"zero\n").unwrap();
            ordered.finish(0, false);
            ordered.flush_all();
        }
        assert_eq!(String::from_utf8(out).unwrap(), "zero\none\n");
    }
}
