//! Where CPU-heavy request work runs: a pool of threads sized to the cores, apart from the
//! async runtime, with a bounded queue and a deadline per job.
//!
//! Rendering an uncached tile, running a filtered item query, nearest, containing or an
//! aggregate can take from microseconds to seconds. On the runtime's own threads a few slow
//! ones would stall every connection: `/health`, cached tiles and `/changes` included.
//! Here they queue for the pool instead, and:
//! - a job past the queue's bound is refused at once ([`Refused::Busy`], a 503 with
//!   `Retry-After`), rather than joining an ever-growing queue;
//! - a job has a deadline from the moment it is admitted. Long loops call [`expired`],
//!   which tells them, cheaply, that the deadline has passed; they stop, and the job's
//!   result is thrown away ([`Refused::Overrun`]): a half-cut tile is never served nor
//!   cached;
//! - a job whose client has gone before it starts is skipped.
//!
//! The pool's threads run at a lower scheduling priority than the runtime's, so that
//! answering cached tiles and health checks wins the cores from long work.
//!
//! Maintenance that must finish (rebuilding a layer's index after a reload) runs here too,
//! through [`Compute::run_always`]: not shed, no deadline.
//!
//! A job that proves light runs in place instead ([`Compute::run_here`]): on the runtime
//! thread that asked for it, which saves the two thread hand-overs of the pool (on a
//! loaded box, the kernel's task switching took a fifth of an uncached tile's CPU). It is
//! bounded more tightly than a pool job, so that the runtime stays free for everything
//! else: each runs for about [`IN_PLACE_TIME`] (as [`expired`] checks it), takes on at
//! most [`IN_PLACE_ITEMS`] items, makes at most [`IN_PLACE_BYTES`] (see [`afford`]) and
//! waits for no lock ([`read`]); a job that goes past any of them is dropped where it
//! stands and goes to the pool as any other. Together they take at most
//! [`IN_PLACE_SHARE`] of the threads' time; past it, work goes to the pool, which queues
//! and sheds it as above.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// The pool's bounds; each is a `serve` flag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Threads; the default is one per core.
    pub threads: usize,
    /// Jobs admitted beyond the running ones; past it, [`Refused::Busy`].
    pub queue: usize,
    /// How long a job may take from its admission, waiting in the queue included.
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            queue: DEFAULT_QUEUE,
            deadline: DEFAULT_DEADLINE,
        }
    }
}

/// Default of [`Limits::queue`].
pub const DEFAULT_QUEUE: usize = 128;
/// How long a job run in place ([`Compute::run_here`]) may take.
pub const IN_PLACE_TIME: Duration = Duration::from_millis(2);
/// How many items (features found in a tile, points to cluster) a job run in place may
/// take on ([`afford`]).
pub const IN_PLACE_ITEMS: usize = 2_000;
/// The share of the threads' time (as many as the pool's, one per core by default) that
/// jobs run in place may take together, as a fraction: the rest stays for everything
/// else the runtime does, and the work past it goes to the pool's queue and its bound.
pub const IN_PLACE_SHARE: (u64, u64) = (3, 4);
/// How far jobs run in place may go over their share for a moment.
pub const IN_PLACE_SLACK: Duration = Duration::from_millis(20);
/// How many bytes a job run in place may make ([`afford_bytes`]), to compress in place.
pub const IN_PLACE_BYTES: usize = 256 * 1024;
/// Default of [`Limits::deadline`].
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// Why a job gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the server is busy: {queued} expensive requests are already waiting")]
    Busy { queued: usize },
    #[error("the request did not finish within the server's deadline of {:.1} s", deadline.as_secs_f64())]
    Overrun { deadline: Duration },
    #[error("the server is shutting down")]
    Stopped,
    /// The work panicked (a bug); the pool thread lives on.
    #[error("the work panicked")]
    Panicked,
}

type Job = Box<dyn FnOnce() + Send>;

/// The pool. Cloning shares it.
#[derive(Clone)]
pub struct Compute {
    inner: Arc<Inner>,
}

struct Inner {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    limits: Limits,
    /// Jobs admitted and not finished: running plus queued.
    admitted: AtomicUsize,
    /// The time jobs run in place have taken.
    in_place: Share,
    /// Where [`Share`]'s clock starts.
    epoch: Instant,
    /// Jobs done in place, and jobs tried in place that went on to the pool.
    done_in_place: AtomicU64,
    moved_to_pool: AtomicU64,
}

/// The time jobs run in place may take: at most [`IN_PLACE_SHARE`] of the threads' time,
/// as a virtual clock (the generic cell rate algorithm) that each job moves on by its
/// time over the share, and that may run ahead of the real one by [`IN_PLACE_SLACK`].
#[derive(Default)]
struct Share {
    /// Nanoseconds since the epoch up to which the share is used.
    used_until: AtomicU64,
}

impl Share {
    /// How far the share is used ahead of `now`.
    fn ahead(&self, now: Duration) -> Duration {
        let now = now.as_nanos() as u64;
        Duration::from_nanos(self.used_until.load(Ordering::Acquire).saturating_sub(now))
    }

    /// Counts `spent` by a job that ended at `now`, on a pool of `threads`.
    fn spend(&self, now: Duration, spent: Duration, threads: usize) {
        let now = now.as_nanos() as u64;
        let (num, den) = IN_PLACE_SHARE;
        let cost = spent.as_nanos() as u64 * den / (num * threads.max(1) as u64);
        let _ = self
            .used_until
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |until| {
                Some(until.max(now) + cost)
            });
    }
}

impl Compute {
    /// Starts the pool's threads.
    pub fn new(limits: Limits) -> Compute {
        let limits = Limits {
            threads: limits.threads.max(1),
            ..limits
        };
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..limits.threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("compute-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match receiver.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("starting a compute thread");
        }
        Compute {
            inner: Arc::new(Inner {
                sender: Mutex::new(Some(sender)),
                limits,
                admitted: AtomicUsize::new(0),
                in_place: Share::default(),
                epoch: Instant::now(),
                done_in_place: AtomicU64::new(0),
                moved_to_pool: AtomicU64::new(0),
            }),
        }
    }

    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Runs `work` on the pool under the deadline, or refuses it at once when the queue is
    /// full. `work` should call [`expired`] in its long loops.
    pub async fn run<T, F>(&self, work: F) -> Result<T, Refused>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let limits = self.inner.limits;
        let admitted = self.inner.admitted.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(self.inner.clone());
        if admitted >= limits.threads + limits.queue {
            drop(slot);
            return Err(Refused::Busy {
                queued: limits.queue,
            });
        }
        let deadline = Instant::now() + limits.deadline;
        let (tx, rx) = oneshot::channel();
        self.submit(Box::new(move || {
            // A client that hung up while the job waited has no use for it.
            if tx.is_closed() {
                return;
            }
            let overrun = Refused::Overrun {
                deadline: limits.deadline,
            };
            let answer = if Instant::now() >= deadline {
                Err(overrun)
            } else {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    with_deadline(deadline, work)
                }))
                .map_err(|_| Refused::Panicked)
                .and_then(|done| done.ok_or(overrun))
            };
            // The place is free before the answer is seen.
            drop(slot);
            let _ = tx.send(answer);
        }))?;
        rx.await.unwrap_or(Err(Refused::Stopped))
    }

    /// Runs `work` here, on the calling thread, if it proves light: within
    /// [`IN_PLACE_TIME`] and the allowances of [`afford`] and [`afford_bytes`]. `None` when
    /// it did not (what it made is thrown away), or when jobs run in place have lately
    /// taken their share of the threads' time ([`IN_PLACE_SHARE`]): the caller then hands
    /// the work to [`Compute::run`], which queues and sheds it. `work` should call
    /// [`expired`] in its long loops, and [`afford`] before each step whose cost it can
    /// count.
    pub fn run_here<T>(&self, work: impl FnOnce() -> T) -> Option<Result<T, Refused>> {
        let inner = &*self.inner;
        if inner.in_place.ahead(inner.epoch.elapsed()) > IN_PLACE_SLACK {
            inner.moved_to_pool.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        /// Clears the thread's allowance however the work ends.
        struct Clear;
        impl Drop for Clear {
            fn drop(&mut self) {
                ALLOWANCE.set(None);
            }
        }
        let clear = Clear;
        ALLOWANCE.set(Some(Allowance {
            items: IN_PLACE_ITEMS,
            bytes: IN_PLACE_BYTES,
        }));
        let started = Instant::now();
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            with_deadline(started + IN_PLACE_TIME, work)
        }));
        drop(clear);
        let spent = started.elapsed();
        inner
            .in_place
            .spend(inner.epoch.elapsed(), spent, inner.limits.threads);
        let (count, out) = match done {
            Ok(Some(out)) => (&inner.done_in_place, Some(Ok(out))),
            Ok(None) => (&inner.moved_to_pool, None),
            Err(_) => (&inner.done_in_place, Some(Err(Refused::Panicked))),
        };
        count.fetch_add(1, Ordering::Relaxed);
        out
    }

    /// How many jobs [`Compute::run_here`] did in place, and how many it left to the pool.
    pub fn in_place_counts(&self) -> (u64, u64) {
        (
            self.inner.done_in_place.load(Ordering::Relaxed),
            self.inner.moved_to_pool.load(Ordering::Relaxed),
        )
    }

    /// Runs `work` on the pool whatever the load and without a deadline: work that must
    /// be done, such as rebuilding a layer's index.
    pub async fn run_always<T, F>(&self, work: F) -> Result<T, Refused>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.submit(Box::new(move || {
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let _ = tx.send(done.map_err(|_| Refused::Panicked));
        }))?;
        rx.await.unwrap_or(Err(Refused::Stopped))
    }

    fn submit(&self, job: Job) -> Result<(), Refused> {
        let sender = self.inner.sender.lock().map_err(|_| Refused::Stopped)?;
        sender
            .as_ref()
            .ok_or(Refused::Stopped)?
            .send(job)
            .map_err(|_| Refused::Stopped)
    }

    /// Jobs admitted and not finished.
    pub fn admitted(&self) -> usize {
        self.inner.admitted.load(Ordering::Acquire)
    }

    /// Takes no more jobs; the threads end after the queued ones.
    pub fn close(&self) {
        if let Ok(mut sender) = self.inner.sender.lock() {
            sender.take();
        }
    }
}

/// Gives back a job's place in the bounds when the job ends, however it ends.
struct Slot(Arc<Inner>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a job run in place may still take on.
#[derive(Debug, Clone, Copy)]
struct Allowance {
    items: usize,
    bytes: usize,
}

thread_local! {
    /// The allowance of the job running in place on this thread, if one is.
    static ALLOWANCE: Cell<Option<Allowance>> = const { Cell::new(None) };
    /// The deadline of the job running on this thread, and whether the job has seen it
    /// pass.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    static OVERRUN: Cell<bool> = const { Cell::new(false) };
    static TICKS: Cell<u32> = const { Cell::new(0) };
}

/// Runs `work` with `deadline` as this thread's; `None` when the work saw it pass (its
/// result is incomplete and thrown away).
pub fn with_deadline<T>(deadline: Instant, work: impl FnOnce() -> T) -> Option<T> {
    /// Clears the thread's deadline however `work` ends, a panic included.
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            DEADLINE.set(None);
        }
    }
    DEADLINE.set(Some(deadline));
    OVERRUN.set(false);
    let clear = Clear;
    let out = work();
    drop(clear);
    (!OVERRUN.replace(false)).then_some(out)
}

/// True once the deadline of the job running on this thread has passed; the caller should
/// stop and return whatever it has, which will be thrown away. Reads the clock once every
/// 64 calls, so a loop can call it per item. Always false outside a job.
pub fn expired() -> bool {
    let Some(deadline) = DEADLINE.get() else {
        return false;
    };
    if OVERRUN.get() {
        return true;
    }
    let ticks = TICKS.get().wrapping_add(1);
    TICKS.set(ticks);
    if !ticks.is_multiple_of(64) {
        return false;
    }
    let past = Instant::now() >= deadline;
    OVERRUN.set(past);
    past
}

/// A read guard of `lock` for the job running on this thread. A job run in place does not
/// wait for a writer (a layer's compaction or new thinning can hold its lock for a while,
/// and the runtime must not stall behind it): when the lock is taken, the job gives up as
/// past its allowance, and gets `None`.
pub fn read<T>(lock: &parking_lot::RwLock<T>) -> Option<parking_lot::RwLockReadGuard<'_, T>> {
    if ALLOWANCE.get().is_none() {
        return Some(lock.read());
    }
    let got = lock.try_read();
    if got.is_none() {
        give_up();
    }
    got
}

/// The items a job run in place may still take on ([`afford`]); `None` outside such a
/// job, where nothing is counted.
pub fn items_left() -> Option<usize> {
    ALLOWANCE.get().map(|a| a.items)
}

/// Marks the job running in place on this thread as past its allowance: it should stop,
/// and its result is thrown away. Nothing outside such a job, which must not stop short.
pub fn give_up() {
    if ALLOWANCE.get().is_some() {
        OVERRUN.set(true);
    }
}

/// Takes `items` (features found, points to cluster) from the allowance of a job run in
/// place; false when they are more than it has left, or the job is already past its
/// deadline or allowance: the job should then stop as at [`expired`], and its result is
/// thrown away. Always true for a job on the pool, and outside a job.
pub fn afford(items: usize) -> bool {
    take(|a| {
        a.items
            .checked_sub(items)
            .map(|items| Allowance { items, ..a })
    })
}

/// [`afford`] for `bytes` made (a tile to compress).
pub fn afford_bytes(bytes: usize) -> bool {
    take(|a| {
        a.bytes
            .checked_sub(bytes)
            .map(|bytes| Allowance { bytes, ..a })
    })
}

fn take(spend: impl FnOnce(Allowance) -> Option<Allowance>) -> bool {
    let Some(left) = ALLOWANCE.get() else {
        return true;
    };
    if OVERRUN.get() {
        return false;
    }
    match spend(left) {
        Some(rest) => {
            ALLOWANCE.set(Some(rest));
            true
        }
        None => {
            OVERRUN.set(true);
            false
        }
    }
}

/// Lowers this thread's scheduling priority (Linux threads have their own nice value).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on this thread's id changes only this thread's nice value.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 5);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(threads: usize, queue: usize, deadline_ms: u64) -> Compute {
        Compute::new(Limits {
            threads,
            queue,
            deadline: Duration::from_millis(deadline_ms),
        })
    }

    #[tokio::test]
    async fn work_runs_off_the_runtime_and_answers() {
        let p = pool(2, 4, 10_000);
        let name = p
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("compute-"));
        assert_eq!(p.admitted(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let p = pool(1, 1, 10_000);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Arc::new(Mutex::new(wait));
        let blocker = {
            let p = p.clone();
            let wait = wait.clone();
            tokio::spawn(async move { p.run(move || wait.lock().unwrap().recv().ok()).await })
        };
        let queued = {
            let p = p.clone();
            let wait = wait.clone();
            tokio::spawn(async move { p.run(move || wait.lock().unwrap().recv().ok()).await })
        };
        while p.admitted() < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            p.run(|| ()).await,
            Err(Refused::Busy { queued: 1 }),
            "a third job is refused"
        );
        release.send(()).unwrap();
        release.send(()).unwrap();
        assert!(blocker.await.unwrap().is_ok());
        assert!(queued.await.unwrap().is_ok());
        assert_eq!(p.admitted(), 0);
        assert_eq!(p.run(|| 7).await, Ok(7));
    }

    #[tokio::test]
    async fn work_that_checks_stops_at_the_deadline_and_is_thrown_away() {
        let p = pool(1, 1, 50);
        let started = Instant::now();
        let r = p
            .run(|| {
                let mut n = 0u64;
                while !expired() {
                    n += 1;
                    std::hint::black_box(n);
                }
                n
            })
            .await;
        assert_eq!(
            r,
            Err(Refused::Overrun {
                deadline: Duration::from_millis(50)
            })
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        // The next job on that thread starts afresh.
        assert_eq!(p.run(expired).await, Ok(false));
        assert!(!expired(), "no deadline outside a job");
    }

    #[test]
    fn light_work_runs_in_place_and_heavy_work_is_left_to_the_pool() {
        let p = pool(2, 4, 10_000);
        let here = std::thread::current().id();
        assert_eq!(p.run_here(|| std::thread::current().id()), Some(Ok(here)));
        assert!(afford(usize::MAX), "no allowance outside a job");
        // Past the items, the bytes or the time, the work is dropped.
        assert_eq!(p.run_here(|| afford(IN_PLACE_ITEMS + 1)), None);
        assert_eq!(
            p.run_here(|| afford(IN_PLACE_ITEMS / 2) && afford(IN_PLACE_ITEMS / 2)),
            Some(Ok(true))
        );
        assert_eq!(p.run_here(|| afford_bytes(IN_PLACE_BYTES + 1)), None);
        let started = Instant::now();
        assert_eq!(p.run_here(|| while !expired() {}), None);
        assert!(started.elapsed() < IN_PLACE_TIME * 10);
        // Once over, the job stays over; the next one starts afresh.
        assert_eq!(
            p.run_here(|| {
                afford(usize::MAX);
                afford(0)
            }),
            None
        );
        assert_eq!(p.run_here(|| afford(1)), Some(Ok(true)));
        assert!(afford(usize::MAX) && !expired(), "the allowance is cleared");
        // In place, a lock a writer holds is not waited for.
        let lock = parking_lot::RwLock::new(1);
        let writer = lock.write();
        assert_eq!(p.run_here(|| read(&lock).is_none()), None);
        drop(writer);
        assert_eq!(p.run_here(|| read(&lock).map(|r| *r)), Some(Ok(Some(1))));
        assert_eq!(read(&lock).map(|r| *r), Some(1));
        assert!(matches!(
            p.run_here(|| panic!("a bug")),
            Some(Err(Refused::Panicked))
        ));
        assert_eq!(p.in_place_counts(), (5, 5));
    }

    #[test]
    fn work_in_place_takes_no_more_than_its_share_of_time() {
        // One thread's worth of share, and jobs of 1 ms back to back for 400 ms, those
        // left to the pool done here too: about 3/4 of them may run in place, plus what
        // the slack lets through.
        let p = pool(1, 4, 10_000);
        let busy = || {
            let until = Instant::now() + Duration::from_millis(1);
            while Instant::now() < until {}
        };
        let started = Instant::now();
        let (mut here, mut moved) = (0u32, 0u32);
        while started.elapsed() < Duration::from_millis(400) {
            match p.run_here(busy) {
                Some(Ok(())) => here += 1,
                None => {
                    moved += 1;
                    busy();
                }
                Some(Err(e)) => panic!("{e}"),
            }
        }
        let (num, den) = IN_PLACE_SHARE;
        let share = f64::from(here) / f64::from(here + moved);
        let slack = IN_PLACE_SLACK.as_secs_f64() / 0.4;
        assert!(
            share <= num as f64 / den as f64 + slack + 0.02,
            "{here} in place, {moved} moved on"
        );
        assert!(
            moved > 0 && here > moved,
            "{here} in place, {moved} moved on"
        );
        assert_eq!(p.in_place_counts(), (u64::from(here), u64::from(moved)));
    }

    #[tokio::test]
    async fn maintenance_is_not_shed() {
        let p = pool(1, 0, 10);
        assert_eq!(p.run_always(|| 1).await, Ok(1));
        p.close();
        assert_eq!(p.run(|| 1).await, Err(Refused::Stopped));
    }
}
