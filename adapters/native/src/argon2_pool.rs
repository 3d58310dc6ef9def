//! A fixed pool of threads for password hashing (argon2id, RFC 9106): each hash needs about
//! 19 MiB. On tokio's blocking pool, over time every thread of that pool ran one, and the
//! allocator kept a hash's worth of memory in each thread's arena: half a gigabyte resident
//! after a few minutes of logins. A fixed set of threads bounds both the concurrency (logins
//! queue, other requests do not) and the memory kept (one hash per thread).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// The pool: `size` threads started on first use, fed from one queue.
#[derive(Debug)]
pub struct Argon2Pool {
    size: usize,
    queue: std::sync::OnceLock<Mutex<Sender<Job>>>,
}

impl Argon2Pool {
    /// A pool of `size` threads (at least one).
    pub fn new(size: usize) -> Self {
        Self {
            size: size.max(1),
            queue: std::sync::OnceLock::new(),
        }
    }

    /// Runs `work` on one of the pool's threads and waits (asynchronously) for its result;
    /// `None` if the pool could not run it.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        self.sender().lock().ok()?.send(job).ok()?;
        result.await.ok()
    }

    fn sender(&self) -> &Mutex<Sender<Job>> {
        self.queue.get_or_init(|| {
            let (tx, rx) = channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            for i in 0..self.size {
                let rx = rx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("argon2-{i}"))
                    .spawn(move || worker(&rx));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "a password hashing thread could not start");
                }
            }
            Mutex::new(tx)
        })
    }
}

/// Runs jobs until the queue's sender is gone.
fn worker(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            // A panicking job loses its result (its caller gets an error), not the thread.
            Ok(job) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jobs run on the pool's named threads, never more at once than the pool's size, and
    /// each gives its own result.
    #[tokio::test]
    async fn runs_jobs_on_its_own_threads_at_most_size_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let pool = Arc::new(Argon2Pool::new(2));
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs = (0..8).map(|n| {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                    (n, std::thread::current().name().map(str::to_owned))
                })
                .await
            }
        });
        let results = futures_util::future::join_all(jobs).await;
        for (n, r) in results.into_iter().enumerate() {
            let (m, name) = r.expect("a result");
            assert_eq!(m, n);
            assert!(name.is_some_and(|t| t.starts_with("argon2-")));
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
