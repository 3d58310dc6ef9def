//! The SQLite writer thread and its group commit: every write of the process runs on the one
//! writer connection, owned by one thread, and the writes that queued up while a transaction
//! was committing are committed together in the next one. Concurrent requests then share one
//! WAL commit (its frame writes and file locks) instead of paying one each, which was the
//! largest cost per token on the native host (BENCHMARKS.md, issue 16).
//!
//! Each caller's statement keeps the meaning it has on its own: statements run one after
//! another in the order they arrived, a failed statement is undone alone (SQLite's statement
//! atomicity; a `batch` gets its own savepoint), and a caller hears back only after the
//! transaction holding its write has committed, so nothing is reported written that is not.
//! A caller that stops waiting (a dropped request) does not withdraw a write it queued: the
//! write runs, as it would on PostgreSQL once sent.

use std::sync::mpsc;
use std::thread::JoinHandle;

use futures_channel::oneshot;
use rusqlite::{Connection, TransactionBehavior};

use super::{map_err, run_execute, run_query};
use crate::store::{Row, StoreError, Value};

/// At most this many callers' writes share one transaction.
const MAX_GROUP: usize = 128;

/// What a caller asked of the writer.
enum Work {
    Execute(String, Vec<Value>),
    Query(String, Vec<Value>),
    Batch(Vec<(String, Vec<Value>)>),
}

/// What the writer answers.
enum Done {
    Changed(u64),
    Rows(Vec<Row>),
    Batch(Vec<u64>),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<Done, StoreError>>,
}

/// The handle the store keeps: a queue to the writer thread, which ends (closing the
/// connection) when the handle is dropped.
pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread that owns `conn`.
    pub(super) fn start(mut conn: Connection) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("portcullis-sqlite-writer".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP {
                        match queue.try_recv() {
                            Ok(job) => group.push(job),
                            Err(_) => break,
                        }
                    }
                    run_group(&mut conn, group);
                }
            })
            .map_err(|e| StoreError::Unavailable(format!("starting the SQLite writer: {e}")))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    async fn ask(&self, work: Work) -> Result<Done, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .as_ref()
            .ok_or_else(stopped)?
            .send(Job { work, reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    pub(super) async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        match self
            .ask(Work::Execute(sql.to_owned(), params.to_vec()))
            .await?
        {
            Done::Changed(n) => Ok(n),
            _ => Err(mismatch()),
        }
    }

    pub(super) async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        match self
            .ask(Work::Query(sql.to_owned(), params.to_vec()))
            .await?
        {
            Done::Rows(rows) => Ok(rows),
            _ => Err(mismatch()),
        }
    }

    pub(super) async fn batch(
        &self,
        statements: &[(String, Vec<Value>)],
    ) -> Result<Vec<u64>, StoreError> {
        match self.ask(Work::Batch(statements.to_vec())).await? {
            Done::Batch(changed) => Ok(changed),
            _ => Err(mismatch()),
        }
    }
}

impl Drop for Writer {
    /// Closes the queue and waits for the thread to finish what was queued and close the
    /// connection, so the file is released when the store is dropped.
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the SQLite writer thread stopped".into())
}

fn mismatch() -> StoreError {
    StoreError::Unavailable("the SQLite writer answered another kind of work".into())
}

/// Runs `work` on its own, as the store did before there was a group: one statement in
/// autocommit, or a batch in its own `BEGIN IMMEDIATE` transaction.
fn run_alone(conn: &mut Connection, work: &Work) -> Result<Done, StoreError> {
    match work {
        Work::Execute(sql, params) => run_execute(conn, sql, params).map(Done::Changed),
        Work::Query(sql, params) => run_query(conn, sql, params).map(Done::Rows),
        Work::Batch(statements) => {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            let changed = run_statements(&tx, statements)?;
            tx.commit().map_err(map_err)?;
            Ok(Done::Batch(changed))
        }
    }
}

/// Runs a batch's statements in order, stopping at the first failure; the rows each changed.
fn run_statements(
    conn: &Connection,
    statements: &[(String, Vec<Value>)],
) -> Result<Vec<u64>, StoreError> {
    statements
        .iter()
        .map(|(sql, params)| run_execute(conn, sql, params))
        .collect()
}

/// Runs `work` inside the group's open transaction. A failed statement is undone by SQLite
/// alone; a batch is a savepoint, rolled back whole when one of its statements fails.
fn run_in_group(conn: &Connection, work: &Work) -> Result<Done, StoreError> {
    match work {
        Work::Execute(sql, params) => run_execute(conn, sql, params).map(Done::Changed),
        Work::Query(sql, params) => run_query(conn, sql, params).map(Done::Rows),
        Work::Batch(statements) => {
            conn.execute_batch("SAVEPOINT batch").map_err(map_err)?;
            let changed = run_statements(conn, statements);
            if changed.is_err() && !conn.is_autocommit() {
                conn.execute_batch("ROLLBACK TO batch").map_err(map_err)?;
            }
            if !conn.is_autocommit() {
                conn.execute_batch("RELEASE batch").map_err(map_err)?;
            }
            changed.map(Done::Batch)
        }
    }
}

/// Runs a group of callers' writes in one transaction and answers each caller after the
/// commit. A failure that ends the transaction on SQLite's side (a full disk, an I/O error)
/// undoes the writes already run, so the whole group is run again one job at a time; a failed
/// commit is every caller's failure.
fn run_group(conn: &mut Connection, group: Vec<Job>) {
    if group.len() == 1 {
        for job in group {
            let _ = job.reply.send(run_alone(conn, &job.work));
        }
        return;
    }
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE").map_err(map_err) {
        for job in group {
            let _ = job.reply.send(Err(e.clone()));
        }
        return;
    }
    let mut results = Vec::with_capacity(group.len());
    for job in &group {
        results.push(run_in_group(conn, &job.work));
        if conn.is_autocommit() {
            for job in group {
                let _ = job.reply.send(run_alone(conn, &job.work));
            }
            return;
        }
    }
    let committed = conn.execute_batch("COMMIT").map_err(map_err);
    if committed.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for (job, result) in group.into_iter().zip(results) {
        let answer = match (&committed, result) {
            (Ok(()), result) => result,
            (Err(e), Ok(_)) => Err(e.clone()),
            (Err(_), Err(own)) => Err(own),
        };
        let _ = job.reply.send(answer);
    }
}

#[cfg(test)]
mod tests {
    //! The group itself, run directly on a connection with jobs built by hand, so which
    //! writes share a transaction is fixed rather than left to thread timing.

    use futures::executor::block_on;

    use super::*;

    fn job(work: Work) -> (Job, oneshot::Receiver<Result<Done, StoreError>>) {
        let (reply, answer) = oneshot::channel();
        (Job { work, reply }, answer)
    }

    fn insert(k: &str) -> Work {
        Work::Execute("INSERT INTO t (k) VALUES (?)".into(), vec![k.into()])
    }

    fn changed(answer: oneshot::Receiver<Result<Done, StoreError>>) -> Result<u64, StoreError> {
        match block_on(answer).expect("answered") {
            Ok(Done::Changed(n)) => Ok(n),
            Ok(_) => panic!("another kind of answer"),
            Err(e) => Err(e),
        }
    }

    fn batch_changed(
        answer: oneshot::Receiver<Result<Done, StoreError>>,
    ) -> Result<Vec<u64>, StoreError> {
        match block_on(answer).expect("answered") {
            Ok(Done::Batch(n)) => Ok(n),
            Ok(_) => panic!("another kind of answer"),
            Err(e) => Err(e),
        }
    }

    fn keys(conn: &Connection) -> Vec<String> {
        let mut stmt = conn.prepare("SELECT k FROM t ORDER BY k").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY)")
            .unwrap();
        conn
    }

    #[test]
    fn a_failed_write_in_a_group_is_undone_alone_and_the_rest_commit() {
        let mut conn = table();
        let (a, a_answer) = job(insert("a"));
        let (dup, dup_answer) = job(insert("a"));
        let (b, b_answer) = job(insert("b"));
        let (bad_batch, bad_answer) = job(Work::Batch(vec![
            ("INSERT INTO t (k) VALUES (?)".into(), vec!["c".into()]),
            ("INSERT INTO t (k) VALUES (?)".into(), vec!["b".into()]),
        ]));
        let (good_batch, good_answer) = job(Work::Batch(vec![(
            "INSERT INTO t (k) VALUES (?)".into(),
            vec!["d".into()],
        )]));
        let (read, read_answer) = job(Work::Query("SELECT COUNT(*) FROM t".into(), vec![]));
        run_group(&mut conn, vec![a, dup, b, bad_batch, good_batch, read]);
        assert_eq!(changed(a_answer), Ok(1));
        assert!(matches!(changed(dup_answer), Err(StoreError::Conflict(_))));
        assert_eq!(changed(b_answer), Ok(1));
        // A batch is all or nothing inside the group too: "c" went with the failed "b".
        assert!(matches!(
            batch_changed(bad_answer),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(batch_changed(good_answer), Ok(vec![1]));
        // A statement in the group sees the writes before it.
        match block_on(read_answer).unwrap() {
            Ok(Done::Rows(rows)) => assert_eq!(rows, vec![Row(vec![Value::Int(3)])]),
            _ => panic!("rows expected"),
        }
        assert_eq!(keys(&conn), ["a", "b", "d"]);
        assert!(conn.is_autocommit(), "the group's transaction is closed");
    }

    /// A failed commit (here a deferred foreign key, checked only at COMMIT) is every
    /// caller's failure: nobody is told their write is stored.
    #[test]
    fn a_failed_commit_fails_every_caller_and_stores_nothing() {
        let mut conn = table();
        conn.execute_batch(
            "PRAGMA foreign_keys = ON; \
             CREATE TABLE child (p TEXT REFERENCES t (k) DEFERRABLE INITIALLY DEFERRED)",
        )
        .unwrap();
        let (a, a_answer) = job(insert("a"));
        let (orphan, orphan_answer) = job(Work::Execute(
            "INSERT INTO child (p) VALUES (?)".into(),
            vec!["nobody".into()],
        ));
        run_group(&mut conn, vec![a, orphan]);
        assert!(changed(a_answer).is_err());
        assert!(changed(orphan_answer).is_err());
        assert!(keys(&conn).is_empty());
        assert!(conn.is_autocommit());
        // The connection goes on working.
        let (b, b_answer) = job(insert("b"));
        run_group(&mut conn, vec![b]);
        assert_eq!(changed(b_answer), Ok(1));
    }

    /// A full database: the write that does not fit fails, the others are stored, whether
    /// SQLite undid only the statement or the whole transaction.
    #[test]
    fn a_full_database_fails_only_the_write_that_does_not_fit() {
        let mut conn = table();
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        conn.execute_batch(&format!("PRAGMA max_page_count = {}", pages + 1))
            .unwrap();
        let (a, a_answer) = job(insert("a"));
        let (big, big_answer) = job(Work::Execute(
            "INSERT INTO t (k) VALUES (?)".into(),
            vec!["x".repeat(200_000).into()],
        ));
        let (b, b_answer) = job(insert("b"));
        run_group(&mut conn, vec![a, big, b]);
        assert_eq!(changed(a_answer), Ok(1));
        assert!(matches!(
            changed(big_answer),
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(changed(b_answer), Ok(1));
        assert_eq!(keys(&conn), ["a", "b"]);
    }

    /// Through the thread: callers on many threads at once all hear back, each with its own
    /// answer, and every write is there afterwards.
    #[test]
    fn concurrent_callers_each_get_their_own_answer() {
        let writer = Writer::start(table()).unwrap();
        let answers: Vec<Result<u64, StoreError>> = std::thread::scope(|s| {
            let callers: Vec<_> = (0..64)
                .map(|i| {
                    let writer = &writer;
                    s.spawn(move || {
                        block_on(writer.execute(
                            "INSERT INTO t (k) VALUES (?)",
                            &[format!("k{}", i % 48).into()],
                        ))
                    })
                })
                .collect();
            callers.into_iter().map(|c| c.join().unwrap()).collect()
        });
        assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 48);
        assert!(answers
            .iter()
            .filter_map(|a| a.as_ref().err())
            .all(|e| matches!(e, StoreError::Conflict(_))));
        let count = block_on(writer.query("SELECT COUNT(*) FROM t", &[])).unwrap();
        assert_eq!(count, vec![Row(vec![Value::Int(48)])]);
    }
}
