//! Commands to a test's `redis-server` (kept out of `server.rs`, which the nodes bench shares).

use crate::server::RedisServer;

impl RedisServer {
    /// Runs one command on the server (`["CONFIG", "SET", ...]`): a bulk reply as text, any
    /// other reply as its debug form.
    pub fn command(&self, args: &[&str]) -> String {
        let client = redis::Client::open(self.url()).expect("a redis url");
        let mut con = client.get_connection().expect("connect");
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        match cmd
            .query::<redis::Value>(&mut con)
            .expect("the command runs")
        {
            redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
            other => format!("{other:?}"),
        }
    }
}
