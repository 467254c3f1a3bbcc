//! A real `redis-server` on a free loopback port, for as long as the value lives.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` process of this test's own, without persistence.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    /// In cluster mode: the node's cluster config file (removed with the server).
    cluster: Option<std::path::PathBuf>,
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
        };
        server.restart();
        Some(server)
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
        server.cluster =
            Some(std::env::temp_dir().join(format!("wsreg-redis-cluster-{}.conf", server.port)));
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
        if self.port == 0 {
            self.port = free_port();
        }
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"]);
        if let Some(conf) = &self.cluster {
            let _ = std::fs::remove_file(conf);
            command
                .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(conf);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
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
        if let Some(conf) = &self.cluster {
            let _ = std::fs::remove_file(conf);
        }
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}
