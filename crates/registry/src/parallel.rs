//! Transfers a few at a time: scoped threads taking items from one queue, stopping at the
//! first failure. Shared by `pull` (layer downloads) and `push` (blob uploads).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};

/// Runs `work` on every item with `workers` threads, starting the items in the order given.
/// After the first failure no new item starts, the ones running finish, and that failure is
/// the result. Otherwise the results come back in the order of the items.
pub(crate) fn run<T: Send, R: Send>(
    items: Vec<T>,
    workers: usize,
    work: impl Fn(T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    // Popped from the end: the first item last.
    let queue = Mutex::new(items.into_iter().enumerate().rev().collect::<Vec<_>>());
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::new());
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Some((i, item)) = lock(&queue).pop() else {
                    return;
                };
                match work(item) {
                    Ok(r) => lock(&results).push((i, r)),
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        lock(&failure).get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

/// A lock that a panicking worker does not poison for the others.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_in_item_order() {
        let out = run((0..20).collect(), 3, |i: u32| Ok(i * 2)).unwrap();
        assert_eq!(out, (0..20).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn first_failure_stops_new_items() {
        let started = Mutex::new(Vec::new());
        let err = run((0..50).collect(), 1, |i: u32| {
            lock(&started).push(i);
            if i == 3 {
                return Err(Error::NotFound(format!("item {i}")));
            }
            Ok(i)
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "item 3");
        assert_eq!(*lock(&started), vec![0, 1, 2, 3]);
    }
}
