//! A TCP proxy in front of a node's driver gateway that a test opens and closes: closing cuts
//! every connection through it and refuses new ones (each is accepted and closed at once), so
//! a session driver loses its link while the node and its scheduler carry on.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct Gate {
    /// Where drivers connect: the address the node advertises.
    pub addr: String,
    target: Arc<Mutex<Option<String>>>,
    open: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Gate {
    /// A closed gate on a free loopback port; `open_to` names the node's gateway once it runs.
    pub fn start() -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the gate");
        let gate = Gate {
            addr: listener.local_addr().unwrap().to_string(),
            target: Arc::default(),
            open: Arc::default(),
            links: Arc::default(),
            stop: Arc::default(),
        };
        let (target, open, links, stop) = (
            gate.target.clone(),
            gate.open.clone(),
            gate.links.clone(),
            gate.stop.clone(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let to = target.lock().unwrap().clone();
                let server = match (open.load(Ordering::SeqCst), to) {
                    (true, Some(to)) => TcpStream::connect(to).ok(),
                    _ => None,
                };
                let Some(server) = server else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                pipe(&client, &server, &links);
            }
        });
        gate
    }

    /// Lets drivers through to `target` from now on.
    pub fn open_to(&self, target: &str) {
        *self.target.lock().unwrap() = Some(target.to_string());
        self.open.store(true, Ordering::SeqCst);
    }

    /// Cuts every link through the gate and refuses new ones until `open_to`.
    pub fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
        for s in self.links.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.close();
        // Wakes the accepting thread so it sees `stop` and ends.
        let _ = TcpStream::connect(&self.addr);
    }
}

/// Copies both ways between `a` and `b` on two threads; keeps both sockets so `close` can cut
/// them.
fn pipe(a: &TcpStream, b: &TcpStream, links: &Mutex<Vec<TcpStream>>) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    {
        let mut l = links.lock().unwrap();
        l.push(a.try_clone().unwrap());
        l.push(b.try_clone().unwrap());
    }
    let copy = |mut from: TcpStream, mut to: TcpStream| {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        });
    };
    copy(a2, b.try_clone().unwrap());
    copy(b2, a.try_clone().unwrap());
}
