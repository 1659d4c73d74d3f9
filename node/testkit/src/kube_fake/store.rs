//! The fake's storage: objects by (resource, namespace, name) as JSON, one resourceVersion
//! counter for everything (as etcd's revision), and the history of changes a watch replays
//! from a resourceVersion on. `compact` drops the history, after which watching from an older
//! version answers 410 Gone, as after an etcd compaction.

use super::selector::Selector;
use k8s_openapi::jiff::{Timestamp, Unit};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// An API error as the API server returns it: a `Status` object with a code.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }

    fn not_found(resource: &str, name: &str) -> Self {
        ApiError {
            details: Some(json!({ "name": name, "kind": resource })),
            ..ApiError::new(404, "NotFound", format!("{resource} \"{name}\" not found"))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub resource: String,
    pub namespace: String,
    pub kind: ChangeType,
    /// The object before the change (`None` for a creation).
    pub old: Option<Value>,
    pub object: Value,
}

pub type Key = (String, String, String);

#[derive(Debug, Default)]
pub struct Store {
    pub rv: u64,
    objects: BTreeMap<Key, Value>,
    history: Vec<Change>,
    /// Watching from a version below this one is answered 410 Gone.
    pub compacted: u64,
    uids: u64,
    /// Log lines of each pod, stamped as the kubelet stamps them.
    pub logs: HashMap<(String, String), Vec<(Timestamp, String)>>,
}

pub fn kind_of(resource: &str) -> Option<&'static str> {
    match resource {
        "pods" => Some("Pod"),
        "services" => Some("Service"),
        "secrets" => Some("Secret"),
        _ => None,
    }
}

fn with_type(resource: &str, mut object: Value) -> Value {
    object["apiVersion"] = "v1".into();
    object["kind"] = kind_of(resource).unwrap_or("Unknown").into();
    object
}

pub fn now() -> String {
    Timestamp::now().round(Unit::Second).unwrap().to_string()
}

/// DNS-1123 label (services need it; pods and secrets take subdomains, which include it).
fn valid_name(resource: &str, name: &str) -> bool {
    let label = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    match resource {
        "services" => label(name) && name.starts_with(|c: char| c.is_ascii_lowercase()),
        _ => name.len() <= 253 && name.split('.').all(label),
    }
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().unwrap();
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

impl Store {
    pub fn starting_at(rv: u64) -> Store {
        Store {
            rv,
            compacted: rv,
            ..Store::default()
        }
    }

    fn record(
        &mut self,
        resource: &str,
        ns: &str,
        kind: ChangeType,
        old: Option<Value>,
        object: Value,
    ) {
        self.history.push(Change {
            rv: self.rv,
            resource: resource.into(),
            namespace: ns.into(),
            kind,
            old,
            object,
        });
    }

    fn key(resource: &str, ns: &str, name: &str) -> Key {
        (resource.into(), ns.into(), name.into())
    }

    pub fn get(&self, resource: &str, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&Self::key(resource, ns, name))
            .map(|o| with_type(resource, o.clone()))
            .ok_or_else(|| ApiError::not_found(resource, name))
    }

    pub fn create(
        &mut self,
        resource: &str,
        ns: &str,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            return Err(ApiError::new(422, "Invalid", format!("{resource} \"\" is invalid: metadata.name: Required value: name or generateName is required")));
        }
        if !valid_name(resource, &name) {
            return Err(ApiError::new(422, "Invalid", format!("{resource} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 name must consist of lower case alphanumeric characters or '-'")));
        }
        match object["metadata"]["namespace"].as_str() {
            Some(n) if n != ns => {
                return Err(ApiError::new(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request"))
            }
            _ => {}
        }
        let key = Self::key(resource, ns, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError {
                details: Some(json!({ "name": name, "kind": resource })),
                ..ApiError::new(
                    409,
                    "AlreadyExists",
                    format!("{resource} \"{name}\" already exists"),
                )
            });
        }
        self.rv += 1;
        self.uids += 1;
        let meta = &mut object["metadata"];
        meta["namespace"] = ns.into();
        meta["uid"] = format!("00000000-0000-4000-8000-{:012x}", self.uids).into();
        meta["resourceVersion"] = self.rv.to_string().into();
        meta["creationTimestamp"] = now().into();
        if let Some(o) = object.as_object_mut() {
            o.remove("apiVersion");
            o.remove("kind");
        }
        match resource {
            // The API server ignores a new pod's status: the kubelet owns it.
            "pods" => object["status"] = json!({ "phase": "Pending", "qosClass": "Burstable" }),
            "services" => {
                let spec = &mut object["spec"];
                if spec.get("type").is_none() {
                    spec["type"] = "ClusterIP".into();
                }
                if spec.get("sessionAffinity").is_none() {
                    spec["sessionAffinity"] = "None".into();
                }
            }
            _ => {}
        }
        self.objects.insert(key, object.clone());
        self.record(resource, ns, ChangeType::Added, None, object.clone());
        Ok(with_type(resource, object))
    }

    /// Replaces an object's content through `f` (status updates, patches).
    pub fn update(
        &mut self,
        resource: &str,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Result<Value, ApiError> {
        let key = Self::key(resource, ns, name);
        let object = self
            .objects
            .get_mut(&key)
            .ok_or_else(|| ApiError::not_found(resource, name))?;
        let old = object.clone();
        f(object);
        self.rv += 1;
        object["metadata"]["resourceVersion"] = self.rv.to_string().into();
        let new = object.clone();
        self.record(resource, ns, ChangeType::Modified, Some(old), new.clone());
        Ok(with_type(resource, new))
    }

    pub fn patch(
        &mut self,
        resource: &str,
        ns: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ApiError> {
        self.update(resource, ns, name, |o| merge(o, patch))
    }

    /// Removes an object now, and (as the garbage collector would, later) what it owns.
    pub fn remove(&mut self, resource: &str, ns: &str, name: &str) -> Result<Value, ApiError> {
        let key = Self::key(resource, ns, name);
        let object = self
            .objects
            .remove(&key)
            .ok_or_else(|| ApiError::not_found(resource, name))?;
        self.rv += 1;
        let mut gone = object.clone();
        gone["metadata"]["resourceVersion"] = self.rv.to_string().into();
        self.record(
            resource,
            ns,
            ChangeType::Deleted,
            Some(object),
            gone.clone(),
        );
        if resource == "pods" {
            self.logs.remove(&(ns.to_string(), name.to_string()));
        }
        let uid = gone["metadata"]["uid"].clone();
        let owned: Vec<Key> = self
            .objects
            .iter()
            .filter(|((_, n, _), o)| {
                n == ns
                    && o["metadata"]["ownerReferences"]
                        .as_array()
                        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for (r, n, name) in owned {
            let _ = self.remove(&r, &n, &name);
        }
        Ok(with_type(resource, gone))
    }

    pub fn list(&self, resource: &str, ns: &str, selector: &Selector) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((r, n, _), o)| r == resource && n == ns && selector.matches(o))
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// The watch events after `from` for this resource, namespace and selector, as the API
    /// server sends them: an object that starts matching is ADDED, one that stops is DELETED.
    pub fn events_after(
        &self,
        from: u64,
        resource: &str,
        ns: &str,
        selector: &Selector,
    ) -> Vec<Value> {
        let mut events = vec![];
        for c in self.history.iter().filter(|c| c.rv > from) {
            if c.resource != resource || c.namespace != ns {
                continue;
            }
            let was = c.old.as_ref().is_some_and(|o| selector.matches(o));
            let is = selector.matches(&c.object);
            let kind = match (c.kind, was, is) {
                (ChangeType::Added, _, true) => "ADDED",
                (ChangeType::Modified, true, true) => "MODIFIED",
                (ChangeType::Modified, false, true) => "ADDED",
                (ChangeType::Modified, true, false) => "DELETED",
                (ChangeType::Deleted, true, _) => "DELETED",
                _ => continue,
            };
            events.push(json!({ "type": kind, "object": with_type(resource, c.object.clone()) }));
        }
        events
    }

    /// Current objects as the ADDED events a watch without a resourceVersion starts with.
    pub fn initial_events(&self, resource: &str, ns: &str, selector: &Selector) -> Vec<Value> {
        self.list(resource, ns, selector)
            .into_iter()
            .map(|o| json!({ "type": "ADDED", "object": with_type(resource, o) }))
            .collect()
    }

    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    pub fn all(&self, resource: &str) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((r, _, _), _)| r == resource)
            .map(|(_, o)| with_type(resource, o.clone()))
            .collect()
    }
}
