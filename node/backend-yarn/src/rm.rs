//! The ResourceManager's REST API (`/ws/v1/cluster/...`), as far as the backend uses it: one
//! application, applications by tag, an application's state, and killing it. Owns which
//! ResourceManager is asked: the one that answered last (the active one), then the others in
//! the configured order. A standby answers every request with `307 Temporary Redirect` to the
//! active one; the redirect is followed by asking the `Location`'s server the same request
//! (path and query as Kindling built them, so nothing a redirect drops is lost).
//!
//! Every request carries `user.name` (Hadoop's simple authentication): the RM needs a user to
//! kill an application, and applies view ACLs to what it shows.

use parking_lot::Mutex;
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// An application report (`GET /ws/v1/cluster/apps/{appid}`), the fields Kindling reads.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub id: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub queue: String,
    pub state: String,
    #[serde(default)]
    pub final_status: String,
    #[serde(default)]
    pub diagnostics: String,
    /// When the ResourceManager accepted the application (ms since the epoch); 0 when the
    /// RM does not show it (view ACLs).
    #[serde(default)]
    pub started_time: u64,
    /// Absent until the application runs (`trackingUI: UNASSIGNED`).
    #[serde(default)]
    pub tracking_url: Option<String>,
    /// Comma-separated, lowercase.
    #[serde(default)]
    pub application_tags: String,
    /// The ApplicationMaster's (the driver's) container logs on its NodeManager, once it has
    /// a container: `http://<nm>:8042/node/containerlogs/<container>/<user>`.
    #[serde(default)]
    pub am_container_logs: Option<String>,
    /// `NOT_START`, `RUNNING`, `RUNNING_WITH_FAILURE`, `SUCCEEDED`, `FAILED`, `TIME_OUT`,
    /// `DISABLED`.
    #[serde(default)]
    pub log_aggregation_status: Option<String>,
}

#[derive(Deserialize)]
struct AppReply {
    app: App,
}

/// `{"apps":null}` when nothing matches, else `{"apps":{"app":[...]}}`.
#[derive(Deserialize)]
struct AppsReply {
    apps: Option<AppList>,
}

#[derive(Deserialize)]
struct AppList {
    #[serde(default)]
    app: Vec<App>,
}

#[derive(Deserialize)]
struct StateReply {
    state: String,
}

/// One attempt of an application (`GET /ws/v1/cluster/apps/{appid}/appattempts`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    #[serde(default)]
    pub node_id: Option<String>,
    #[serde(default)]
    pub container_id: Option<String>,
    #[serde(default)]
    pub logs_link: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttemptsReply {
    app_attempts: Option<AttemptList>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttemptList {
    #[serde(default)]
    app_attempt: Vec<Attempt>,
}

/// What a kill request achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Killed {
    /// 200: the application is in a final state (killed now, or ended before).
    Done { state: String },
    /// 202: the ResourceManager is killing it; poll its state.
    Accepted,
    /// 404: the ResourceManager does not know the application.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RmError {
    /// No ResourceManager answered (or only standbys without an active one); one entry
    /// per server asked.
    #[error("no ResourceManager answers ({})", .0.join("; "))]
    Unreachable(Vec<String>),
    /// The ResourceManager refused the request.
    #[error("the ResourceManager at {url} answered {code}: {message}")]
    Refused {
        url: String,
        code: u16,
        message: String,
    },
    #[error("the ResourceManager's answer from {url} is unreadable: {error}")]
    Unreadable { url: String, error: String },
}

pub struct Rm {
    urls: Vec<String>,
    user: String,
    http: reqwest::Client,
    /// The server that answered last: asked first next time.
    active: Mutex<Option<String>>,
}

/// An answer: the server, status and body.
struct Answer {
    url: String,
    status: StatusCode,
    body: String,
}

impl Rm {
    pub fn new(urls: Vec<String>, user: String) -> Rm {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // A standby's redirect is followed by hand (see the module's doc).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Rm {
            urls,
            user,
            http,
            active: Mutex::new(None),
        }
    }

    /// The server that answered last, if any.
    pub fn active(&self) -> Option<String> {
        self.active.lock().clone()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Answer, RmError> {
        let mut order: Vec<String> = self.active().into_iter().collect();
        for u in &self.urls {
            if !order.contains(u) {
                order.push(u.clone());
            }
        }
        let mut asked: Vec<String> = vec![];
        let mut failures = vec![];
        let mut i = 0;
        while i < order.len() {
            let base = order[i].clone();
            i += 1;
            if asked.contains(&base) {
                continue;
            }
            asked.push(base.clone());
            let mut url = match Url::parse(&format!("{base}{path}")) {
                Ok(u) => u,
                Err(e) => {
                    failures.push(format!("{base}: bad URL: {e}"));
                    continue;
                }
            };
            url.query_pairs_mut()
                .extend_pairs(query)
                .append_pair("user.name", &self.user);
            let mut req = self.http.request(method.clone(), url);
            if let Some(b) = &body {
                req = req.json(b);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("{base}: {}", cause(&e)));
                    continue;
                }
            };
            let status = resp.status();
            if status == StatusCode::TEMPORARY_REDIRECT {
                let to = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| Url::parse(l).ok())
                    .map(|l| l.origin().ascii_serialization())
                    .filter(|o| o != "null");
                match to {
                    Some(active) => {
                        failures.push(format!("{base}: standby, redirects to {active}"));
                        // Asked next, before the remaining configured servers.
                        order.insert(i, active);
                    }
                    None => failures.push(format!("{base}: standby, no active ResourceManager")),
                }
                continue;
            }
            let text = match resp.text().await {
                Ok(t) => t,
                Err(e) => {
                    failures.push(format!("{base}: {}", cause(&e)));
                    continue;
                }
            };
            // A standby that cannot tell where the active one is, and gave up retrying.
            if status == StatusCode::OK && text.starts_with("There is no active RM") {
                failures.push(format!("{base}: standby, no active ResourceManager"));
                continue;
            }
            *self.active.lock() = Some(base.clone());
            return Ok(Answer {
                url: base,
                status,
                body: text,
            });
        }
        Err(RmError::Unreachable(failures))
    }

    /// The application's report; `None` when the ResourceManager does not know it.
    pub async fn app(&self, app_id: &str) -> Result<Option<App>, RmError> {
        let a = self
            .send(
                Method::GET,
                &format!("/ws/v1/cluster/apps/{app_id}"),
                &[],
                None,
            )
            .await?;
        if a.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let reply: AppReply = decode(&a)?;
        Ok(Some(reply.app))
    }

    /// The applications carrying `tag` (YARN compares tags in lowercase).
    pub async fn apps_tagged(&self, tag: &str) -> Result<Vec<App>, RmError> {
        let a = self
            .send(
                Method::GET,
                "/ws/v1/cluster/apps",
                &[("applicationTags", tag)],
                None,
            )
            .await?;
        let reply: AppsReply = decode(&a)?;
        Ok(reply.apps.map(|l| l.app).unwrap_or_default())
    }

    /// The application's state alone; `None` when the ResourceManager does not know it.
    pub async fn app_state(&self, app_id: &str) -> Result<Option<String>, RmError> {
        let a = self
            .send(
                Method::GET,
                &format!("/ws/v1/cluster/apps/{app_id}/state"),
                &[],
                None,
            )
            .await?;
        if a.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let reply: StateReply = decode(&a)?;
        Ok(Some(reply.state))
    }

    /// The application's attempts, the latest last.
    pub async fn attempts(&self, app_id: &str) -> Result<Vec<Attempt>, RmError> {
        let a = self
            .send(
                Method::GET,
                &format!("/ws/v1/cluster/apps/{app_id}/appattempts"),
                &[],
                None,
            )
            .await?;
        if a.status == StatusCode::NOT_FOUND {
            return Ok(vec![]);
        }
        let reply: AttemptsReply = decode(&a)?;
        Ok(reply
            .app_attempts
            .map(|l| l.app_attempt)
            .unwrap_or_default())
    }

    /// `PUT /ws/v1/cluster/apps/{appid}/state` with `{"state":"KILLED"}`.
    pub async fn kill(&self, app_id: &str) -> Result<Killed, RmError> {
        let a = self
            .send(
                Method::PUT,
                &format!("/ws/v1/cluster/apps/{app_id}/state"),
                &[],
                Some(json!({ "state": "KILLED" })),
            )
            .await?;
        match a.status {
            StatusCode::OK => {
                let reply: StateReply = decode(&a)?;
                Ok(Killed::Done { state: reply.state })
            }
            StatusCode::ACCEPTED => Ok(Killed::Accepted),
            StatusCode::NOT_FOUND => Ok(Killed::Unknown),
            _ => Err(refused(&a)),
        }
    }
}

/// The body of a successful answer; the RM's own message for an error status.
fn decode<T: serde::de::DeserializeOwned>(a: &Answer) -> Result<T, RmError> {
    if !a.status.is_success() {
        return Err(refused(a));
    }
    serde_json::from_str(&a.body).map_err(|e| RmError::Unreadable {
        url: a.url.clone(),
        error: format!("{e} in {}", excerpt(&a.body)),
    })
}

/// `{"RemoteException":{"exception":…,"message":…,"javaClassName":…}}`, or the body itself.
fn refused(a: &Answer) -> RmError {
    let message = serde_json::from_str::<Value>(&a.body)
        .ok()
        .and_then(|v| {
            let e = v.get("RemoteException")?;
            let kind = e.get("exception").and_then(Value::as_str).unwrap_or("");
            let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
            Some(format!("{kind}: {msg}"))
        })
        .unwrap_or_else(|| excerpt(&a.body));
    RmError::Refused {
        url: a.url.clone(),
        code: a.status.as_u16(),
        message,
    }
}

fn excerpt(body: &str) -> String {
    let one: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = one.chars().take(200).collect();
    if cut.is_empty() {
        "(empty body)".into()
    } else {
        cut
    }
}

/// What went wrong with a request, in a few words (`Connection refused (os error 111)`,
/// `timed out`), rather than reqwest's "error sending request".
pub fn cause(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut last: &dyn std::error::Error = e;
    while let Some(s) = last.source() {
        last = s;
    }
    let inner = last.to_string();
    if e.is_connect() && !inner.contains("onnect") {
        format!("cannot connect: {inner}")
    } else {
        inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_resource_managers_answers() {
        let empty: AppsReply = serde_json::from_str(r#"{"apps":null}"#).unwrap();
        assert!(empty.apps.is_none());
        let listed: AppsReply = serde_json::from_str(
            r#"{"apps":{"app":[{"id":"application_1_1","state":"RUNNING",
                "applicationTags":"a,b","trackingUrl":"http://rm:8088/proxy/application_1_1/",
                "unmanagedApplication":false,"progress":10.0}]}}"#,
        )
        .unwrap();
        let app = &listed.apps.unwrap().app[0];
        assert_eq!(app.application_tags, "a,b");
        assert_eq!(
            app.tracking_url.as_deref(),
            Some("http://rm:8088/proxy/application_1_1/")
        );
        assert_eq!(app.final_status, "");
    }

    #[test]
    fn an_error_names_the_remote_exception() {
        let a = Answer {
            url: "http://rm1:8088".into(),
            status: StatusCode::FORBIDDEN,
            body: r#"{"RemoteException":{"exception":"ForbiddenException","message":"java.lang.Exception: user bob is not allowed","javaClassName":"org.apache.hadoop.yarn.webapp.ForbiddenException"}}"#.into(),
        };
        assert_eq!(
            refused(&a).to_string(),
            "the ResourceManager at http://rm1:8088 answered 403: ForbiddenException: \
             java.lang.Exception: user bob is not allowed"
        );
    }
}
