//! API tokens Kindling issues to its users, for scripts, schedulers and the CLI: the
//! aggregate every node projects (so any node honours a token one node issued) and the
//! leader decides against. A token's secret is never stored or logged: only its SHA-256
//! digest, which is enough to check a token presented later (the secret is 256 random bits,
//! so a fast digest is as good as a slow hash) and useless to whoever reads the log.
//! A revoked token leaves the aggregate at once; an expired one stays refused by its expiry
//! and is dropped when its user is next issued one.

use crate::error::{DomainError, Result};
use crate::event::{Aggregate, Envelope, Event};
use crate::ids::LogPosition;
use crate::job::Applied;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Live tokens one user may hold at once.
pub const MAX_TOKENS_PER_USER: usize = 100;

/// A token as issued: everything about it but its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    /// Public and unique: part of the token text, and how a token is listed and revoked.
    pub id: String,
    /// Whom the token authenticates.
    pub user: String,
    /// The user's label for it ("airflow-prod").
    pub name: String,
    /// The role it carries (`admin`, `user` or `viewer`): at most its user's when issued.
    pub role: String,
    /// Lowercase hex SHA-256 of the secret part.
    pub secret_sha256: String,
    pub expires_at_ms: i64,
}

/// A live token and when it was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub issued: IssuedToken,
    pub issued_at_ms: i64,
}

impl Token {
    pub fn expired(&self, now_ms: i64) -> bool {
        self.issued.expires_at_ms <= now_ms
    }
}

/// What a client asks of the tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCommand {
    Issue(IssuedToken),
    Revoke { id: String },
}

/// Every live token: the write model the leader decides against, and the document
/// projections store.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tokens {
    pub tokens: BTreeMap<String, Token>,
    /// Number of token events applied (the aggregate version).
    pub version: u64,
    /// The last log position reflected; meaningful once `version > 0`.
    pub applied: LogPosition,
}

impl Tokens {
    pub fn get(&self, id: &str) -> Option<&Token> {
        self.tokens.get(id)
    }

    /// The tokens of `user`, expired ones included (they show until dropped).
    pub fn of_user<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a Token> + 'a {
        self.tokens.values().filter(move |t| t.issued.user == user)
    }

    /// Decides `cmd` at `now_ms`.
    pub fn decide(&self, cmd: TokenCommand, now_ms: i64) -> Result<Vec<Event>> {
        match cmd {
            TokenCommand::Issue(token) => {
                if self.tokens.contains_key(&token.id) {
                    return Err(DomainError::TokenExists(token.id));
                }
                let live = self
                    .of_user(&token.user)
                    .filter(|t| !t.expired(now_ms))
                    .count();
                if live >= MAX_TOKENS_PER_USER {
                    return Err(DomainError::TooManyTokens {
                        user: token.user,
                        max: MAX_TOKENS_PER_USER,
                    });
                }
                Ok(vec![Event::TokenIssued { token }])
            }
            TokenCommand::Revoke { id } => {
                if !self.tokens.contains_key(&id) {
                    return Err(DomainError::UnknownToken(id));
                }
                Ok(vec![Event::TokenRevoked { id }])
            }
        }
    }

    /// Folds one event in; events of other aggregates are ignored.
    pub fn apply(&mut self, env: &Envelope) -> Applied {
        if !env.advances(Aggregate::Tokens, &mut self.version, &mut self.applied) {
            return Applied::AlreadyApplied;
        }
        match &env.event {
            Event::TokenIssued { token } => {
                // The user's expired tokens go: the aggregate stays bounded by live ones.
                self.tokens
                    .retain(|_, t| t.issued.user != token.user || !t.expired(env.at_ms));
                self.tokens.insert(
                    token.id.clone(),
                    Token {
                        issued: token.clone(),
                        issued_at_ms: env.at_ms,
                    },
                );
            }
            Event::TokenRevoked { id } => {
                self.tokens.remove(id);
            }
            _ => {}
        }
        Applied::Yes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Origin;
    use crate::ids::{NodeId, Term};

    fn issued(id: &str, user: &str, expires_at_ms: i64) -> IssuedToken {
        IssuedToken {
            id: id.into(),
            user: user.into(),
            name: format!("{user}'s"),
            role: "user".into(),
            secret_sha256: "00".repeat(32),
            expires_at_ms,
        }
    }

    fn fold(tokens: &mut Tokens, position: u64, at_ms: i64, event: Event) -> Applied {
        tokens.apply(&Envelope {
            format: crate::event::FORMAT_VERSION,
            position: LogPosition(position),
            aggregate: Aggregate::Tokens,
            version: tokens.version + 1,
            origin: Origin::ApiDecided { term: Term(1) },
            node: NodeId(1),
            actor: Some("ann".into()),
            at_ms,
            event,
        })
    }

    #[test]
    fn issue_revoke_and_expiry() {
        let mut t = Tokens::default();
        let events = t
            .decide(TokenCommand::Issue(issued("a", "ann", 1_000)), 0)
            .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(fold(&mut t, 5, 10, events[0].clone()), Applied::Yes);
        assert_eq!(
            fold(&mut t, 5, 10, events[0].clone()),
            Applied::AlreadyApplied
        );
        assert_eq!(t.get("a").unwrap().issued_at_ms, 10);
        assert!(matches!(
            t.decide(TokenCommand::Issue(issued("a", "bob", 1_000)), 0),
            Err(DomainError::TokenExists(_))
        ));
        // A later issue for ann drops her expired token; bob's stays (his own issue drops it).
        fold(
            &mut t,
            6,
            20,
            Event::TokenIssued {
                token: issued("b", "bob", 30),
            },
        );
        fold(
            &mut t,
            7,
            2_000,
            Event::TokenIssued {
                token: issued("c", "ann", 5_000),
            },
        );
        assert!(t.get("a").is_none(), "expired at 1000, dropped at 2000");
        assert!(
            t.get("b").is_some(),
            "another user's token is left to its user's next issue"
        );
        assert!(t.get("c").is_some());
        let revoke = t
            .decide(TokenCommand::Revoke { id: "c".into() }, 2_000)
            .unwrap();
        fold(&mut t, 8, 2_001, revoke[0].clone());
        assert!(t.get("c").is_none());
        assert!(matches!(
            t.decide(TokenCommand::Revoke { id: "c".into() }, 2_001),
            Err(DomainError::UnknownToken(_))
        ));
        assert_eq!(t.version, 4);
    }

    #[test]
    fn a_user_holds_a_bounded_number_of_live_tokens() {
        let mut t = Tokens::default();
        for i in 0..MAX_TOKENS_PER_USER {
            let token = issued(&format!("t{i}"), "ann", 1_000);
            fold(&mut t, i as u64, 0, Event::TokenIssued { token });
        }
        let one_more = TokenCommand::Issue(issued("x", "ann", 5_000));
        assert!(matches!(
            t.decide(one_more.clone(), 500),
            Err(DomainError::TooManyTokens {
                max: MAX_TOKENS_PER_USER,
                ..
            })
        ));
        // Once they have expired they no longer count.
        assert_eq!(t.decide(one_more, 1_000).unwrap().len(), 1);
        let other = TokenCommand::Issue(issued("y", "bob", 5_000));
        assert_eq!(t.decide(other, 500).unwrap().len(), 1);
    }
}
