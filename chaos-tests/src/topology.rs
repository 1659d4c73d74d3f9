//! Who talks to whom: the ports of every node and the links between the cluster's ends, each
//! of which runs through its own proxy. Pure: which links a fault cuts is computed here and
//! tested without sockets.
//!
//! Every node runs in its own network namespace and sees the whole cluster at the same
//! addresses: itself on its own ports, each peer's Raft, HTTP and driver ports, the broker and
//! the Mongo server on theirs, all on 127.0.0.1 of its namespace, where everything but its own
//! ports is a proxy. Clients (the workload, the checker) reach each node's HTTP port through
//! a proxy in the harness's namespace. So a link is (from, to, port), and cutting it affects
//! connections in both directions, since a TCP connection's replies share its path.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodePorts {
    pub id: u64,
    pub http: u16,
    pub driver: u16,
    pub raft: u16,
}

fn local(port: u16) -> SocketAddr {
    ([127, 0, 0, 1], port).into()
}

impl NodePorts {
    pub fn http_addr(&self) -> SocketAddr {
        local(self.http)
    }
    pub fn driver_addr(&self) -> SocketAddr {
        local(self.driver)
    }
    pub fn raft_addr(&self) -> SocketAddr {
        local(self.raft)
    }
}

/// An end of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// The harness: workload clients and the checker.
    Client,
    Node(u64),
    Broker,
    Mongo,
}

/// The service a link reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Http,
    Driver,
    Raft,
    Kafka,
    Mongo,
}

/// One proxied link: connections opened by `from` to `to`'s `service`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Link {
    pub from: End,
    pub to: End,
    pub service: Service,
}

/// Where a link's proxy listens and what it dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkSpec {
    pub link: Link,
    /// In `link.from`'s namespace (the harness's for `Client`).
    pub listen: SocketAddr,
    /// In `link.to`'s namespace (the harness's for the broker and Mongo).
    pub target: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// Every node, including a spare that only starts for the final replay check.
    pub nodes: Vec<NodePorts>,
    pub kafka: SocketAddr,
    pub mongo: SocketAddr,
}

impl Topology {
    pub fn node(&self, id: u64) -> Option<&NodePorts> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Every link of the cluster.
    pub fn links(&self) -> Vec<LinkSpec> {
        let mut out = vec![];
        for n in &self.nodes {
            out.push(LinkSpec {
                link: Link {
                    from: End::Client,
                    to: End::Node(n.id),
                    service: Service::Http,
                },
                listen: n.http_addr(),
                target: n.http_addr(),
            });
            for (to, service, addr) in [
                (End::Broker, Service::Kafka, self.kafka),
                (End::Mongo, Service::Mongo, self.mongo),
            ] {
                out.push(LinkSpec {
                    link: Link {
                        from: End::Node(n.id),
                        to,
                        service,
                    },
                    listen: addr,
                    target: addr,
                });
            }
            for peer in self.nodes.iter().filter(|p| p.id != n.id) {
                for (service, addr) in [
                    (Service::Raft, peer.raft_addr()),
                    (Service::Http, peer.http_addr()),
                    (Service::Driver, peer.driver_addr()),
                ] {
                    out.push(LinkSpec {
                        link: Link {
                            from: End::Node(n.id),
                            to: End::Node(peer.id),
                            service,
                        },
                        listen: addr,
                        target: addr,
                    });
                }
            }
        }
        out
    }
}

/// The node-to-node links a partition of `group` from the other nodes cuts: those with
/// exactly one end in the group. Client links and dependency links stay up.
pub fn partition(links: &[Link], group: &[u64]) -> Vec<Link> {
    let inside = |e: End| matches!(e, End::Node(id) if group.contains(&id));
    links
        .iter()
        .filter(|l| matches!((l.from, l.to), (End::Node(_), End::Node(_))))
        .filter(|l| inside(l.from) != inside(l.to))
        .copied()
        .collect()
}

/// The link between a node and a dependency.
pub fn dependency(node: u64, to: End) -> Link {
    Link {
        from: End::Node(node),
        to,
        service: match to {
            End::Broker => Service::Kafka,
            _ => Service::Mongo,
        },
    }
}

#[cfg(test)]
impl Topology {
    /// `n` nodes on made-up ports (`1000 + id` for HTTP, `2000 + id` for drivers, `3000 + id`
    /// for Raft), for unit tests.
    pub(crate) fn example(n: u64) -> Topology {
        Topology {
            nodes: (1..=n)
                .map(|id| NodePorts {
                    id,
                    http: 1000 + id as u16,
                    driver: 2000 + id as u16,
                    raft: 3000 + id as u16,
                })
                .collect(),
            kafka: local(9092),
            mongo: local(27017),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_reaches_every_peer_and_dependency() {
        let links = Topology::example(3).links();
        // Per node: 1 client link, 2 dependencies, 2 peers x 3 services.
        assert_eq!(links.len(), 3 * (1 + 2 + 6));
        let l = links
            .iter()
            .find(|s| {
                s.link.from == End::Node(1)
                    && s.link.to == End::Node(2)
                    && s.link.service == Service::Raft
            })
            .unwrap();
        assert_eq!((l.listen.port(), l.target.port()), (3002, 3002));
        // A node's own ports are never proxied inside its own namespace.
        for s in &links {
            if let (End::Node(a), End::Node(b)) = (s.link.from, s.link.to) {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn a_partition_cuts_exactly_the_crossing_links_both_ways() {
        let links: Vec<Link> = Topology::example(5)
            .links()
            .iter()
            .map(|s| s.link)
            .collect();
        let cut = partition(&links, &[2, 4]);
        // 2 inside x 3 outside x 2 directions x 3 services.
        assert_eq!(cut.len(), 36);
        for l in &cut {
            let (End::Node(a), End::Node(b)) = (l.from, l.to) else {
                panic!("{l:?}")
            };
            assert_ne!([2, 4].contains(&a), [2, 4].contains(&b));
        }
        assert!(!cut
            .iter()
            .any(|l| l.from == End::Node(2) && l.to == End::Node(4)));
        assert!(partition(&links, &[]).is_empty());
    }

    #[test]
    fn dependency_links_are_per_node() {
        assert_eq!(
            dependency(3, End::Broker),
            Link {
                from: End::Node(3),
                to: End::Broker,
                service: Service::Kafka
            }
        );
        assert_eq!(dependency(1, End::Mongo).service, Service::Mongo);
    }
}
