//! The core against a real sled log and projections: the leader's barrier and fence, the
//! write model, and commands whose callers go away.

use super::*;
use crate::clock::SystemClock;
use crate::leader::newest_leader_term;
use crate::test_log::ObservedLog;
use kindling_events::{Command, Event, JobState, Origin};
use kindling_store::conformance::{batch_spec, new_event};
use kindling_store::{SledEventLog, SledProjections};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;

/// A member of a cluster of one: it always leads.
struct Ids(AtomicU64);

#[async_trait::async_trait]
impl Member for Ids {
    async fn next_job_id(&self) -> Result<JobId, crate::MemberError> {
        Ok(JobId(self.0.fetch_add(1, Ordering::SeqCst)))
    }

    async fn confirm_leadership(&self) -> Result<(), crate::MemberError> {
        Ok(())
    }
}

/// A node's core on `log` (with its projector running), led by this node in `term`.
async fn core_on(
    log: Arc<ObservedLog>,
    dir: &std::path::Path,
    term: u64,
) -> (
    Core,
    watch::Sender<LeaderState>,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    member_on(log, dir, 1, term, true).await
}

/// Node `node`'s core on `log`, with projections of its own, believing it leads in
/// `term`; `fenced` as `--kafka-transactions`.
async fn member_on(
    log: Arc<ObservedLog>,
    dir: &std::path::Path,
    node: u64,
    term: u64,
    fenced: bool,
) -> (
    Core,
    watch::Sender<LeaderState>,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let projections: Arc<dyn ProjectionStore> =
        Arc::new(SledProjections::open(&dir.join(format!("projections-{node}"))).unwrap());
    let (tx, projected) = watch::channel(LogPosition(0));
    let terms = Arc::new(LeaderTerms::default());
    let shutdown = CancellationToken::new();
    let projector = tokio::spawn(crate::projector::run(
        log.clone(),
        projections.clone(),
        tx,
        terms.clone(),
        shutdown.clone(),
    ));
    let (leader, leadership) = watch::channel(LeaderState {
        term: Term(term),
        leader: Some(NodeId(node)),
        is_leader: true,
    });
    let core = Core::new(
        NodeId(node),
        Storage {
            log: log.clone(),
            projections,
            projected,
            writer_id: "leader".into(),
            fenced_writes: fenced,
            terms,
        },
        Arc::new(Ids(AtomicU64::new(100))),
        Arc::new(SystemClock),
        leadership,
        Duration::ZERO,
    )
    .await
    .unwrap();
    (core, leader, shutdown, projector)
}

/// A sled log in `dir`, observed.
fn observed_log(dir: &std::path::Path) -> Arc<ObservedLog> {
    Arc::new(ObservedLog::new(
        SledEventLog::open(&dir.join("log")).unwrap(),
    ))
}

/// `JobSubmitted` of a batch for each of `jobs`.
fn submissions(jobs: std::ops::Range<u64>) -> Vec<NewEvent> {
    jobs.map(|job| {
        let spec = batch_spec(None);
        new_event(job, 1, Origin::Api, Event::JobSubmitted { spec })
    })
    .collect()
}

#[tokio::test]
async fn a_new_leader_loads_every_active_job_behind_one_read_barrier() {
    let dir = tempfile::tempdir().unwrap();
    let log = observed_log(dir.path());
    log.append(submissions(0..40)).await.unwrap();
    let (core, _leader, shutdown, projector) = core_on(log.clone(), dir.path(), 1).await;
    core.take_over(Term(1)).await.unwrap();
    assert_eq!(core.leading_term(), Some(Term(1)));

    let asked_before = log.end_asks();
    let active = core.active_jobs().await.unwrap();
    assert_eq!(active.len(), 40);
    assert!(active.iter().all(|j| j.state == JobState::NotStarted));
    assert_eq!(
        log.end_asks() - asked_before,
        1,
        "one barrier for all forty jobs, not one each"
    );
    // And they are the leader's write model now, each loaded once.
    assert_eq!(core.model.len(), 40);
    shutdown.cancel();
    projector.await.unwrap();
}

/// A command whose caller goes away while its append is in flight still records the
/// append in the write model: the next command is decided on the current aggregate.
#[tokio::test]
async fn a_command_whose_caller_went_away_mid_append_still_updates_the_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    let log = observed_log(dir.path());
    let (core, _leader, shutdown, projector) = core_on(log.clone(), dir.path(), 1).await;
    let core = Arc::new(core);
    core.take_over(Term(1)).await.unwrap();
    let session = core
        .submit(kindling_store::conformance::session_spec(None), None)
        .await
        .unwrap();
    let statement = |code: &str| Command::SubmitStatement {
        kind: kindling_events::spec::SessionKind::Pyspark,
        code: code.into(),
    };

    log.hold_answers(true);
    let mut landed = log.subscribe();
    let before = *landed.borrow_and_update();
    let first = tokio::spawn({
        let core = core.clone();
        let cmd = statement("1 + 1");
        async move { core.execute(session.id, Origin::Api, cmd).await }
    });
    // The statement is in the log; its caller hangs up before the answer comes.
    landed.wait_for(|end| *end > before).await.unwrap();
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    log.hold_answers(false);

    let (_, envs) = core
        .execute(session.id, Origin::Api, statement("2 + 2"))
        .await
        .unwrap();
    let submitted: Vec<_> = log
        .read(LogPosition(0), 100)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.event {
            Event::StatementSubmitted { statement, .. } => Some((statement, e.version)),
            _ => None,
        })
        .collect();
    assert_eq!(submitted.len(), 2, "{submitted:?}");
    assert_ne!(
        submitted[0], submitted[1],
        "two statements decided on one version of the session: {submitted:?}"
    );
    assert_eq!(envs[0].version, submitted[1].1);
    shutdown.cancel();
    projector.await.unwrap();
}

/// A deposed leader that still believes it leads takes nothing over once its successor
/// has written: opening the log's writer would depose the successor in turn.
#[tokio::test]
async fn a_leader_of_an_older_term_than_the_logs_newest_takes_nothing_over() {
    let dir = tempfile::tempdir().unwrap();
    let log = observed_log(dir.path());
    let successor = Origin::Scheduler { term: Term(9) };
    log.append(submissions(0..1)).await.unwrap();
    let queued = Event::JobQueued {
        reason: "full".into(),
    };
    log.append(vec![new_event(0, 2, successor, queued)])
        .await
        .unwrap();
    // And plain events after it: the last scheduler event decides, not the last event.
    log.append(submissions(1..300)).await.unwrap();
    assert_eq!(
        newest_leader_term(log.as_ref(), log.end()).await.unwrap(),
        Some((Term(9), LogPosition(1)))
    );

    let (stale, leader, shutdown, projector) = core_on(log.clone(), dir.path(), 5).await;
    let end = log.end();
    let refused = stale.take_over(Term(5)).await.unwrap_err();
    assert!(
        refused.to_string().contains("term 5 is out of date"),
        "{refused}"
    );
    assert_eq!(stale.leading_term(), None);
    assert_eq!(log.end(), end, "a refused take-over writes nothing");
    // Elected in the successor's term (or a newer one), it takes over.
    leader.send_modify(|s| s.term = Term(9));
    stale.take_over(Term(9)).await.unwrap();
    assert_eq!(stale.leading_term(), Some(Term(9)));
    shutdown.cancel();
    projector.await.unwrap();
}

/// The ninth hour-long chaos run's two violations, replayed: without the broker's fence, a
/// deposed leader that has not heard of its successor decides a kill on its stale copy of
/// the job, after the successor took over. The kill lands in the log, takes no effect for
/// any reader, and its caller is told it did not happen; the deposed leader steps down.
#[tokio::test]
async fn a_deposed_leaders_late_command_takes_no_effect_and_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = observed_log(dir.path());
    log.append(submissions(0..1)).await.unwrap();
    let (stale, _s, stop_stale, p_stale) = member_on(log.clone(), dir.path(), 2, 777, false).await;
    let stale = Arc::new(stale);
    stale.take_over(Term(777)).await.unwrap();
    // Loaded into the stale leader's write model before its successor takes over.
    assert_eq!(
        stale.job(JobId(0)).await.unwrap().state,
        JobState::NotStarted
    );
    let (leader, _l, stop_leader, p_leader) =
        member_on(log.clone(), dir.path(), 1, 778, false).await;
    let leader = Arc::new(leader);
    leader.take_over(Term(778)).await.unwrap();

    let kill = Command::Kill {
        reason: "killed by a client".into(),
    };
    let before = log.end();
    let refused = stale
        .execute(JobId(0), Origin::Api, kill.clone())
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::NotLeader(_)), "{refused}");
    assert_eq!(
        stale.leading_term(),
        None,
        "the deposed leader stepped down"
    );
    let late = log.read(before, 10).await.unwrap();
    assert_eq!(late.len(), 2, "the kill landed in the log: {late:?}");
    assert!(late
        .iter()
        .all(|e| e.origin == Origin::ApiDecided { term: Term(777) }));

    // Nobody counts it: the leader's write model, both nodes' projections, a replay.
    assert!(leader.catch_up().await && stale.catch_up().await);
    let fresh = SledProjections::open(&dir.path().join("fresh")).unwrap();
    fresh
        .apply(&log.read(LogPosition(0), 100).await.unwrap())
        .await
        .unwrap();
    for (who, job) in [
        ("leader", leader.job(JobId(0)).await.unwrap()),
        (
            "leader's projections",
            leader.reads().job(JobId(0)).await.unwrap().unwrap(),
        ),
        (
            "stale node's projections",
            stale.reads().job(JobId(0)).await.unwrap().unwrap(),
        ),
        ("fresh replay", fresh.job(JobId(0)).await.unwrap().unwrap()),
    ] {
        assert!(!job.kill_requested, "{who}: {job:?}");
        assert_eq!(job.state, JobState::NotStarted, "{who}");
    }
    // The client's retry reaches the leader, which decides it on the current job.
    let (job, envs) = leader.execute(JobId(0), Origin::Api, kill).await.unwrap();
    assert_eq!(job.state, JobState::Killed);
    assert!(envs
        .iter()
        .all(|e| e.origin == Origin::ApiDecided { term: Term(778) }));
    stop_stale.cancel();
    stop_leader.cancel();
    p_stale.await.unwrap();
    p_leader.await.unwrap();
}

/// The check has no false alarm: a leader's command written before its successor took
/// over counts, and the successor's write model starts from it.
#[tokio::test]
async fn a_command_written_before_the_successor_took_over_counts() {
    let dir = tempfile::tempdir().unwrap();
    let log = observed_log(dir.path());
    log.append(submissions(0..1)).await.unwrap();
    let (old, _o, stop_old, p_old) = member_on(log.clone(), dir.path(), 2, 3, false).await;
    let old = Arc::new(old);
    old.take_over(Term(3)).await.unwrap();
    let kill = Command::Kill {
        reason: "killed by a client".into(),
    };
    let (job, _) = old.execute(JobId(0), Origin::Api, kill).await.unwrap();
    assert_eq!(job.state, JobState::Killed);
    assert_eq!(old.leading_term(), Some(Term(3)));

    let (new, _n, stop_new, p_new) = member_on(log.clone(), dir.path(), 1, 4, false).await;
    new.take_over(Term(4)).await.unwrap();
    assert_eq!(new.job(JobId(0)).await.unwrap().state, JobState::Killed);
    stop_old.cancel();
    stop_new.cancel();
    p_old.await.unwrap();
    p_new.await.unwrap();
}
