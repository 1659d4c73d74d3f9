//! What a plan's reasons say to a user: why a job waits, why one can never start.

use super::{Limit, Refusal, WaitReason};
use std::fmt;

fn limit_text(limit: Limit) -> String {
    match limit {
        Limit::Drivers(1) => "its limit of 1 concurrent driver is reached".into(),
        Limit::Drivers(n) => format!("its limit of {n} concurrent drivers is reached"),
        Limit::Cores(n) => format!("too few of its {n} driver cores are free"),
        Limit::MemoryMb(n) => format!("too little of its {n} MB of driver memory is free"),
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::Full { cluster, limit } => write!(
                f,
                "waiting for room on cluster '{cluster}': {}",
                limit_text(*limit)
            ),
            WaitReason::Behind { cluster, limit } => write!(
                f,
                "waiting for room on cluster '{cluster}' behind the job whose turn it is \
                 (turns go by queue share, user share, priority, then submission order): {}",
                limit_text(*limit)
            ),
            WaitReason::Queue {
                cluster,
                queue,
                limit,
            } => write!(
                f,
                "waiting in queue '{queue}' of cluster '{cluster}': {}",
                limit_text(*limit).replacen("its ", "the queue's ", 1)
            ),
            WaitReason::User {
                cluster,
                user,
                limit,
            } => write!(
                f,
                "waiting: {user} already runs {limit} driver(s) on cluster '{cluster}', the \
                 most one user may run there"
            ),
            WaitReason::Owner { owner, limit } => write!(
                f,
                "waiting: {owner} already runs {limit} driver(s), the most one owner may run"
            ),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownCluster { cluster } => write!(
                f,
                "cluster '{cluster}' does not exist (it was deleted after the job was \
                 submitted); the job cannot run"
            ),
            Refusal::TooBig {
                cluster,
                limit,
                demand,
            } => match limit {
                Limit::Cores(n) => write!(
                    f,
                    "the driver needs {} cores but cluster '{cluster}' allows {n} in all; the \
                     job can never start there",
                    demand.cores
                ),
                Limit::MemoryMb(n) => write!(
                    f,
                    "the driver needs {} MB of memory but cluster '{cluster}' allows {n} MB in \
                     all; the job can never start there",
                    demand.memory_mb
                ),
                Limit::Drivers(n) => write!(
                    f,
                    "cluster '{cluster}' allows {n} drivers; the job can never start there"
                ),
            },
            Refusal::TooBigForQueue {
                cluster,
                queue,
                limit,
                demand,
            } => match limit {
                Limit::Cores(n) => write!(
                    f,
                    "the driver needs {} cores but queue '{queue}' of cluster '{cluster}' \
                     allows {n} in all; the job can never start there",
                    demand.cores
                ),
                Limit::MemoryMb(n) => write!(
                    f,
                    "the driver needs {} MB of memory but queue '{queue}' of cluster \
                     '{cluster}' allows {n} MB in all; the job can never start there",
                    demand.memory_mb
                ),
                Limit::Drivers(n) => write!(
                    f,
                    "queue '{queue}' of cluster '{cluster}' allows {n} drivers; the job can \
                     never start there"
                ),
            },
        }
    }
}
