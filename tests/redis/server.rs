//! A real `redis-server` on a free loopback port, for as long as the value lives.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` process of this test's own, without persistence.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    /// In cluster mode: the node's cluster config file (in its directory).
    cluster: Option<std::path::PathBuf>,
    /// A replica: the port of its primary.
    replica_of: Option<u16>,
}

impl RedisServer {
    /// Starts one, or says why not: `None` when `redis-server` is not installed and
    /// `WSREG_REQUIRE_REDIS` is unset (CI sets it, and installs the server).
    pub fn start() -> Option<Self> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var_os("WSREG_REQUIRE_REDIS").is_none(),
                "redis-server is not installed (apt-get install redis-server), and WSREG_REQUIRE_REDIS is set"
            );
            eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
            return None;
        }
        let mut server = Self {
            child: None,
            port: 0,
            cluster: None,
            replica_of: None,
        };
        server.restart();
        Some(server)
    }

    /// Starts a replica of `primary` (asynchronous replication, as Redis does by default).
    #[allow(
        dead_code,
        reason = "not every test binary that includes this file uses it"
    )]
    pub fn start_replica(primary: &RedisServer) -> Self {
        let mut server = Self {
            child: None,
            port: 0,
            cluster: None,
            replica_of: Some(primary.port),
        };
        server.restart();
        server
    }

    /// Starts one in cluster mode, as a one-node Redis Cluster holding every slot: every
    /// script must then touch only keys of one slot (a cross-slot script is refused), as on a
    /// cluster of many nodes. `None` as for [`RedisServer::start`].
    #[allow(
        dead_code,
        reason = "not every test binary that includes this file uses it"
    )]
    pub fn start_cluster() -> Option<Self> {
        let mut server = Self::start()?;
        server.stop();
        server.cluster = Some(std::path::PathBuf::from("nodes.conf"));
        server.restart();
        let client = redis::Client::open(server.url()).expect("a redis url");
        let mut con = client.get_connection().expect("connect");
        let _: () = redis::cmd("CLUSTER")
            .arg("ADDSLOTSRANGE")
            .arg(0)
            .arg(16383)
            .query(&mut con)
            .expect("CLUSTER ADDSLOTSRANGE");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query(&mut con)
                .expect("CLUSTER INFO");
            if info.contains("cluster_state:ok") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster never came up: {info}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops the server (nothing is saved) and starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        let fresh = self.port == 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if fresh {
                self.port = free_port();
            }
            if self.spawn() {
                return;
            }
            // Another test's server took the port first (a free port is only free until
            // someone binds it): ours exited, or a server that is not ours answers there.
            self.stop();
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the process on `self.port`; true once it answers there itself.
    fn spawn(&mut self) -> bool {
        // A directory of its own: a primary writes an RDB file there for a replica's full
        // sync, and a server started in a directory with one would load another test's data.
        let dir = self.dir();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory for redis-server");
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir);
        if let Some(conf) = &self.cluster {
            command
                .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(conf);
        }
        if let Some(primary) = self.replica_of {
            command.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            if exited || Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let answered = redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .and_then(|mut con| redis::cmd("INFO").arg("server").query::<String>(&mut con));
        answered.is_ok_and(|info| info.contains(&format!("process_id:{pid}\r\n")))
    }

    /// The server's working directory.
    fn dir(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("wsreg-redis-{}-{}", std::process::id(), self.port))
    }

    /// Kills the server.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(self.dir());
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}
