//! The kernels' threads: a team that the calling thread leads and works in. A split product is
//! posted as a job of parts; the caller takes parts like the others, and the team's threads,
//! which keep watching for the next job for a short while after each one (the next product of a
//! training step follows within microseconds), take the rest. No thread is woken through the
//! kernel per product, as a thread pool that the caller hands its work to and sleeps on would.
//!
//! Results do not depend on the team: a part computes its share of the output exactly as the
//! whole would, and the caller runs every part itself when the team is busy (another model
//! training on another thread) or when it is a team thread already (a part that splits again).
//!
//! Why not rayon, already in the dependency tree: the same `run` and `rows_mut` on a rayon scope
//! over a dedicated pool (the caller running the first part) trained `wide` 1.11x and `deep`
//! 1.20x slower an epoch at two threads, paired with this team (docs/speed.md, kernel choices).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long a team thread watches for the next job before it sleeps until woken.
const WATCH: Duration = Duration::from_micros(100);

/// How long of that it spins; after that it yields its core at each look, so that another
/// thread or process with work (a second model, a loader, more threads than cores) runs.
const SPIN: Duration = Duration::from_micros(5);

/// A job: calls of `f`, each with its own part index (their number is in [`Shared::state`]).
struct Job<'a> {
    f: &'a (dyn Fn(usize) + Sync),
}

/// The most parts a job of the team may have (they are counted in 16 bits of the state word);
/// a job of more runs on its caller alone.
const MAX_PARTS: usize = 0xffff;

/// What the leader and its team share.
struct Shared {
    /// The job's number (high 32 bits), its number of parts (the next 16) and the next part to
    /// take (the low 16): one word, so that a thread can tell whether a part is left to take
    /// without reading the job, which may have ended (its leader gone) since the thread saw it.
    state: AtomicU64,
    /// The current job (valid while its parts are not all done).
    job: AtomicPtr<Job<'static>>,
    /// Parts of the current job finished.
    done: AtomicUsize,
    /// Team threads asleep (or about to be).
    sleeping: AtomicUsize,
    /// Whether a leader holds the team.
    busy: AtomicBool,
    /// The panic of a part of the current job, if one panicked: the leader raises it again once
    /// every part is over (a part's data lives on the leader's stack until then).
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    /// The team's threads, to wake.
    threads: Mutex<Vec<Thread>>,
}

/// The kernels' team: `size - 1` threads besides the caller.
pub(crate) struct Team {
    shared: Arc<Shared>,
    size: usize,
}

thread_local! {
    /// Whether this thread is running a part of a job now.
    static IN_PART: Cell<bool> = const { Cell::new(false) };
}

/// The team of [`crate::threads::kernel_threads`] threads (`None` for one).
pub(crate) fn team() -> Option<&'static Team> {
    static TEAM: OnceLock<Option<Team>> = OnceLock::new();
    TEAM.get_or_init(|| Team::new(crate::threads::kernel_threads())).as_ref()
}

/// The number of parts worth making of a job: the team's size, or 1 where it would run alone
/// (inside a part, or while another thread leads the team).
pub(crate) fn width() -> usize {
    match team() {
        Some(t) if !IN_PART.with(Cell::get) && !t.shared.busy.load(Relaxed) => t.size,
        _ => 1,
    }
}

/// Runs `f(0)`, ..., `f(parts - 1)`, split between the team and the caller when there is one to
/// have. Every part runs, also when one panics; the panic then reaches the caller.
pub(crate) fn run(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    match team() {
        Some(t) if parts > 1 && !IN_PART.with(Cell::get) => t.run(parts, f),
        _ => alone(parts, f),
    }
}

/// [`run`] on the calling thread alone.
fn alone(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    let mut panic = None;
    for p in 0..parts {
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(p))) {
            panic.get_or_insert(payload);
        }
    }
    if let Some(payload) = panic {
        std::panic::resume_unwind(payload);
    }
}

impl Team {
    fn new(size: usize) -> Option<Team> {
        if size < 2 {
            return None;
        }
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            done: AtomicUsize::new(0),
            sleeping: AtomicUsize::new(0),
            busy: AtomicBool::new(false),
            panic: Mutex::new(None),
            threads: Mutex::new(Vec::new()),
        });
        for i in 1..size {
            let s = shared.clone();
            let spawned = std::thread::Builder::new().name(format!("minibatch-kernel-{i}")).spawn(move || work(&s));
            match spawned {
                Ok(handle) => shared.threads.lock().unwrap_or_else(|e| e.into_inner()).push(handle.thread().clone()),
                // Fewer threads than asked: the team works with those it has.
                Err(_) => return (i > 1).then_some(Team { shared, size: i }),
            }
        }
        Some(Team { shared, size })
    }

    fn run(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        let s = &*self.shared;
        if parts > MAX_PARTS || s.busy.swap(true, Acquire) {
            // Another thread leads the team now: this job runs here, alone.
            return alone(parts, f);
        }
        let job = Job { f };
        s.done.store(0, Relaxed);
        // SAFETY of the lifetime erasure: a thread uses the pointer only after it has taken a
        // part of this job, and this function waits for every part taken to be done before
        // `job` goes out of scope.
        s.job.store(&job as *const Job as *mut Job<'static>, Release);
        // Job numbers wrap around at 2^32 (a thread that missed four billion jobs is not waited for).
        let number = ((s.state.load(Relaxed) >> 32) + 1) & 0xffff_ffff;
        s.state.store(number << 32 | (parts as u64) << 16, SeqCst);
        if s.sleeping.load(SeqCst) > 0 {
            s.threads.lock().unwrap_or_else(|e| e.into_inner()).iter().for_each(Thread::unpark);
        }
        take_parts(s, number, &job);
        let mut waited = 0u32;
        while s.done.load(Acquire) < parts {
            // The others are inside their last parts; one may have lost its core for a while.
            waited += 1;
            if waited < 1 << 12 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        s.job.store(std::ptr::null_mut(), Relaxed);
        let panic = s.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
        s.busy.store(false, Release);
        if let Some(payload) = panic {
            std::panic::resume_unwind(payload);
        }
    }
}

/// Takes and runs parts of job `number` (read as `job`) until none is left. `job` is read only
/// once a part is taken: until then its leader may have finished and gone, and the pointer a
/// team thread holds may name another job.
fn take_parts(s: &Shared, number: u64, job: *const Job) {
    IN_PART.with(|p| p.set(true));
    loop {
        let state = s.state.load(Acquire);
        let (next, parts) = ((state & 0xffff) as usize, (state >> 16 & 0xffff) as usize);
        if state >> 32 != number || next >= parts {
            break;
        }
        if s.state.compare_exchange_weak(state, state + 1, AcqRel, Relaxed).is_ok() {
            // SAFETY: part `next` of job `number` is taken and not yet done, so its leader waits
            // and the job lives; `job` is that job, since the pointer was read after the state
            // named `number`, and a later job is posted only once every part of this one is done.
            let job = unsafe { &*job };
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.f)(next)));
            if let Err(payload) = ran {
                s.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(payload);
            }
            s.done.fetch_add(1, Release);
        }
    }
    IN_PART.with(|p| p.set(false));
}

/// A team thread: watches for jobs, takes parts, sleeps after a quiet while.
fn work(s: &Shared) {
    let mut seen = 0u64;
    loop {
        let since = Instant::now();
        let number = loop {
            let number = s.state.load(Acquire) >> 32;
            if number != seen {
                break number;
            }
            let watched = since.elapsed();
            if watched < SPIN {
                std::hint::spin_loop();
                continue;
            }
            if watched < WATCH {
                std::thread::yield_now();
                continue;
            }
            // Announce the sleep, then look once more: a leader that posts after this sees the
            // count and wakes us; one that posted before is seen here.
            s.sleeping.fetch_add(1, SeqCst);
            if s.state.load(SeqCst) >> 32 == seen {
                std::thread::park();
            }
            s.sleeping.fetch_sub(1, SeqCst);
        };
        seen = number;
        let ptr = s.job.load(Acquire);
        if ptr.is_null() {
            continue;
        }
        take_parts(s, number, ptr);
    }
}

/// A pointer that the parts of one job share, each using its own region of what it points to.
pub(crate) struct Disjoint<T>(*mut T);

impl<T> Disjoint<T> {
    pub(crate) fn new(ptr: *mut T) -> Self {
        Disjoint(ptr)
    }

    /// The pointer (a method, so that a closure captures the whole wrapper, which is `Sync`).
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

impl<T> Clone for Disjoint<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Disjoint<T> {}

// SAFETY: parts write only their own regions (each user's contract), and the data is `Send`.
unsafe impl<T: Send> Sync for Disjoint<T> {}
// SAFETY: as for `Sync`: the pointer is only a way to reach disjoint regions of `Send` data.
unsafe impl<T: Send> Send for Disjoint<T> {}

/// Runs `f(i, chunk)` on every `size`-element chunk of `data` (the last one may be shorter),
/// the chunks shared out between the team in runs of neighbours (see [`rows_mut`]).
pub(crate) fn chunks_mut<T: Send>(data: &mut [T], size: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let size = size.max(1);
    rows_mut(0, data, size, size, |first, run| {
        run.chunks_mut(size).enumerate().for_each(|(j, chunk)| f(first + j, chunk));
    });
}

/// Elements of work below which a part is not worth making: handing a part to a team thread that
/// is watching costs about a microsecond, about a pass over this many floats in the cache.
const PART_MIN: usize = 1 << 12;

/// Runs `f(first, run)` on runs of whole `row`-element rows of `data` (`first`: the index of the
/// run's first row; a last partial row goes with the last run): one run per thread of the team
/// when the pass is large, of [`PART_MIN`] elements of work or more on average where a row counts
/// `work`, and the whole of `data` on the caller otherwise, and also below `least` elements of work
/// in all (the convolution's passes, whose layer sizes ran slower on two threads than on one: see
/// `im2col.rs`; 0 elsewhere). For passes whose rows are computed independently (bias, ReLU and
/// their gradients, transposes), which give the same bits however they are split.
pub(crate) fn rows_mut<T: Send>(
    least: usize,
    data: &mut [T],
    row: usize,
    work: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let (len, row) = (data.len(), row.max(1));
    let rows = len / row;
    let total = rows.saturating_mul(work);
    let parts = if total < least { 1 } else { width().min(rows).min(total / PART_MIN).max(1) };
    if parts == 1 {
        return f(0, data);
    }
    let base = Disjoint::new(data.as_mut_ptr());
    run(parts, &|p| {
        let (first, next) = (p * rows / parts, (p + 1) * rows / parts);
        let end = if p + 1 == parts { len } else { next * row };
        // SAFETY: the parts take disjoint runs of rows inside `data`, which this function
        // borrows mutably until every part is over.
        f(first, unsafe { std::slice::from_raw_parts_mut(base.get().add(first * row), end - first * row) });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn every_part_runs_once_whatever_the_count() {
        for parts in [0, 1, 2, 3, 7, 64] {
            let runs: Vec<AtomicU32> = (0..parts).map(|_| AtomicU32::new(0)).collect();
            run(parts, &|p| {
                runs[p].fetch_add(1, Relaxed);
            });
            assert!(runs.iter().all(|r| r.load(Relaxed) == 1), "{parts} parts");
        }
    }

    #[test]
    fn a_part_that_splits_again_gets_all_its_parts() {
        let total = AtomicUsize::new(0);
        run(4, &|outer| {
            run(3, &|inner| {
                total.fetch_add(outer * 10 + inner, Relaxed);
            });
        });
        assert_eq!(total.load(Relaxed), (0..4).flat_map(|o| (0..3).map(move |i| o * 10 + i)).sum::<usize>());
    }

    #[test]
    fn a_panicking_part_panics_in_the_caller_after_the_others_and_the_team_goes_on() {
        let finished = AtomicUsize::new(0);
        let caught = std::panic::catch_unwind(|| {
            run(8, &|p| {
                if p == 5 {
                    panic!("part five");
                }
                std::thread::sleep(Duration::from_millis(2));
                finished.fetch_add(1, Relaxed);
            })
        });
        let message = caught.expect_err("the panic reaches the caller");
        assert_eq!(message.downcast_ref::<&str>(), Some(&"part five"));
        assert_eq!(finished.load(Relaxed), 7, "the other parts all ran before it did");
        let again = AtomicUsize::new(0);
        run(4, &|_| {
            again.fetch_add(1, Relaxed);
        });
        assert_eq!(again.load(Relaxed), 4);
    }

    #[test]
    fn callers_on_several_threads_each_get_all_their_parts() {
        let sums: Vec<usize> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    let sum = AtomicUsize::new(0);
                    for _ in 0..200 {
                        run(5, &|p| {
                            sum.fetch_add(t * 100 + p, Relaxed);
                        });
                    }
                    sum.into_inner()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let want: Vec<usize> = (0..4).map(|t| 200 * (0..5).map(|p| t * 100 + p).sum::<usize>()).collect();
        assert_eq!(sums, want);
    }

    #[test]
    fn short_jobs_back_to_back_never_run_a_part_of_an_ended_one() {
        // A team thread that saw a job, then lost its core until the caller had done every part
        // and returned, must not read the job (gone with the caller's stack, which is written
        // over here between jobs) to ask for more.
        #[inline(never)]
        fn scribble() {
            std::hint::black_box([usize::MAX; 256]);
        }
        for round in 0..100_000usize {
            let mut data = vec![round; 4096];
            let sums = AtomicUsize::new(0);
            chunks_mut(&mut data, 1024, |_, part| {
                sums.fetch_add(part.iter().sum::<usize>(), Relaxed);
            });
            assert_eq!(sums.load(Relaxed), 4096 * round, "round {round}");
            scribble();
        }
    }

    #[test]
    fn runs_of_rows_cover_the_slice_whatever_the_size() {
        for (len, row, work) in
            [(0, 4, 4), (10, 4, 1 << 14), (1 << 16, 1, 1), (1 << 16, 512, 512), (1000, 7, 1 << 20), (5, 0, 9)]
        {
            let mut data = vec![usize::MAX; len];
            let runs = AtomicUsize::new(0);
            rows_mut(0, &mut data, row, work, |first, run| {
                runs.fetch_add(1, Relaxed);
                run.iter_mut().enumerate().for_each(|(j, v)| *v = first * row.max(1) + j);
            });
            assert_eq!(data, (0..len).collect::<Vec<_>>(), "{len} in rows of {row}");
            let rows = len / row.max(1);
            let most = (rows * work / PART_MIN).clamp(1, team().map_or(1, |t| t.size));
            assert!(runs.load(Relaxed) <= most.max(1), "{len} in rows of {row}: {} runs", runs.load(Relaxed));
        }
    }

    #[test]
    fn chunks_cover_the_slice_with_their_indices() {
        for (len, size) in [(0, 4), (10, 4), (12, 4), (5, 100), (1000, 7)] {
            let mut data = vec![usize::MAX; len];
            chunks_mut(&mut data, size, |i, chunk| {
                assert!(chunk.len() == size || (i + 1) * size >= len);
                chunk.iter_mut().enumerate().for_each(|(j, v)| *v = i * size + j);
            });
            assert_eq!(data, (0..len).collect::<Vec<_>>(), "{len} in chunks of {size}");
        }
    }
}
