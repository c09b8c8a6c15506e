//! `mqbridge ctl`: the broker's administration from the command line, as a client of its
//! management API (the same HTTP API `rabbitmqadmin` uses), so it works against a broker on
//! another host and needs no access to its data directory.
//!
//! Output is one line per object, fields separated by tabs, with a header line: easy to read
//! and to `cut`. `--json` prints the API's answer as it is.

use std::path::PathBuf;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// Where the management API is and who logs in; the options may come before or after the
/// command (`mqbridge ctl queues list --url ...`).
#[derive(Debug, clap::Args)]
pub struct Ctl {
    /// The management API's address.
    #[arg(
        long,
        global = true,
        env = "MQBRIDGE_CTL_URL",
        default_value = "http://127.0.0.1:15672"
    )]
    pub url: String,
    #[arg(
        long,
        global = true,
        env = "MQBRIDGE_CTL_USER",
        default_value = "guest"
    )]
    pub user: String,
    #[arg(
        long,
        global = true,
        env = "MQBRIDGE_CTL_PASSWORD",
        default_value = "guest",
        hide_env_values = true
    )]
    pub password: String,
    /// Print the API's JSON instead of tab-separated lines.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Users: list, add, delete.
    #[command(subcommand)]
    Users(Users),
    /// Permissions of users in vhosts: list, set, clear.
    #[command(subcommand)]
    Permissions(Permissions),
    /// Virtual hosts: list, add, delete.
    #[command(subcommand)]
    Vhosts(Vhosts),
    /// Queues: list, purge, delete.
    #[command(subcommand)]
    Queues(Queues),
    /// Policies (TTL, length limits, dead-lettering by name pattern): list, set, clear.
    #[command(subcommand)]
    Policies(Policies),
    /// Definitions in RabbitMQ's JSON format: export, import.
    #[command(subcommand)]
    Definitions(Definitions),
}

#[derive(Debug, clap::Subcommand)]
pub enum Users {
    List,
    Add {
        name: String,
        /// The new user's password (`--password` is the caller's, for the API).
        #[arg(value_name = "PASSWORD")]
        new_password: String,
        /// Comma-separated: administrator, management, monitoring.
        #[arg(long, default_value = "")]
        tags: String,
    },
    Delete {
        name: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum Permissions {
    List,
    /// Sets a user's configure, write and read patterns in a vhost.
    Set {
        /// Whose permissions (`--user` is who logs in to the API).
        #[arg(value_name = "USER")]
        username: String,
        configure: String,
        write: String,
        read: String,
        #[arg(long, default_value = "/")]
        vhost: String,
    },
    Clear {
        #[arg(value_name = "USER")]
        username: String,
        #[arg(long, default_value = "/")]
        vhost: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum Vhosts {
    List,
    Add { name: String },
    Delete { name: String },
}

#[derive(Debug, clap::Subcommand)]
pub enum Queues {
    List {
        #[arg(long)]
        vhost: Option<String>,
    },
    Purge {
        name: String,
        #[arg(long, default_value = "/")]
        vhost: String,
    },
    Delete {
        name: String,
        #[arg(long, default_value = "/")]
        vhost: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum Policies {
    List {
        #[arg(long)]
        vhost: Option<String>,
    },
    /// Sets a policy: `policies set ttl '^orders\.' '{"message-ttl": 60000}'`.
    Set {
        name: String,
        /// A regular expression over queue or exchange names.
        pattern: String,
        /// The definition as JSON.
        definition: String,
        #[arg(long, default_value = "/")]
        vhost: String,
        #[arg(long, default_value_t = 0)]
        priority: i64,
        /// What it applies to: all, queues or exchanges.
        #[arg(long, default_value = "all")]
        apply_to: String,
    },
    Clear {
        name: String,
        #[arg(long, default_value = "/")]
        vhost: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum Definitions {
    /// Writes the broker's definitions to FILE, or to standard output.
    Export { file: Option<PathBuf> },
    /// Applies the definitions in FILE.
    Import { file: PathBuf },
}

/// Runs one command; an error says what the API answered.
pub fn run(ctl: Ctl) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(ctl.execute())
}

/// A request for the API: method, path (after the host), body.
type Call = (Method, String, Option<Value>);

/// The fields a listing prints, in order; `None` for a command that prints nothing.
type Columns = Option<&'static [&'static str]>;

/// `/api/` and the segments, each percent-encoded (the vhost `/` is `%2F`).
fn path(parts: &[&str]) -> String {
    let encoded: Vec<String> = parts.iter().map(|p| encode(p)).collect();
    format!("/api/{}", encoded.join("/"))
}

fn get(path: String) -> Call {
    (Method::GET, path, None)
}

impl Users {
    fn call(&self) -> (Call, Columns) {
        match self {
            Users::List => (get(path(&["users"])), Some(&["name", "tags"])),
            Users::Add {
                name,
                new_password,
                tags,
            } => {
                let body = json!({ "password": new_password, "tags": tags });
                ((Method::PUT, path(&["users", name]), Some(body)), None)
            }
            Users::Delete { name } => ((Method::DELETE, path(&["users", name]), None), None),
        }
    }
}

impl Permissions {
    fn call(&self) -> (Call, Columns) {
        match self {
            Permissions::List => (
                get(path(&["permissions"])),
                Some(&["user", "vhost", "configure", "write", "read"]),
            ),
            Permissions::Set {
                username,
                configure,
                write,
                read,
                vhost,
            } => {
                let body = json!({ "configure": configure, "write": write, "read": read });
                let put = (
                    Method::PUT,
                    path(&["permissions", vhost, username]),
                    Some(body),
                );
                (put, None)
            }
            Permissions::Clear { username, vhost } => {
                let delete = (
                    Method::DELETE,
                    path(&["permissions", vhost, username]),
                    None,
                );
                (delete, None)
            }
        }
    }
}

impl Vhosts {
    fn call(&self) -> (Call, Columns) {
        match self {
            Vhosts::List => (get(path(&["vhosts"])), Some(&["name", "messages"])),
            Vhosts::Add { name } => {
                let put = (Method::PUT, path(&["vhosts", name]), Some(json!({})));
                (put, None)
            }
            Vhosts::Delete { name } => ((Method::DELETE, path(&["vhosts", name]), None), None),
        }
    }
}

impl Queues {
    fn call(&self) -> (Call, Columns) {
        match self {
            Queues::List { vhost } => {
                let listing = match vhost {
                    Some(vhost) => path(&["queues", vhost]),
                    None => path(&["queues"]),
                };
                let columns: &[&str] = &[
                    "vhost",
                    "name",
                    "messages_ready",
                    "messages_unacknowledged",
                    "consumers",
                ];
                (get(listing), Some(columns))
            }
            Queues::Purge { name, vhost } => {
                let delete = (
                    Method::DELETE,
                    path(&["queues", vhost, name, "contents"]),
                    None,
                );
                (delete, None)
            }
            Queues::Delete { name, vhost } => {
                let delete = (Method::DELETE, path(&["queues", vhost, name]), None);
                (delete, None)
            }
        }
    }
}

impl Policies {
    fn call(&self) -> anyhow::Result<(Call, Columns)> {
        Ok(match self {
            Policies::List { vhost } => {
                let listing = match vhost {
                    Some(vhost) => path(&["policies", vhost]),
                    None => path(&["policies"]),
                };
                let columns: &[&str] = &[
                    "vhost",
                    "name",
                    "pattern",
                    "apply-to",
                    "definition",
                    "priority",
                ];
                (get(listing), Some(columns))
            }
            Policies::Set {
                name,
                pattern,
                definition,
                vhost,
                priority,
                apply_to,
            } => {
                let definition: Value = serde_json::from_str(definition)
                    .map_err(|error| anyhow::anyhow!("the definition is not JSON: {error}"))?;
                let body = json!({
                    "pattern": pattern,
                    "definition": definition,
                    "priority": priority,
                    "apply-to": apply_to,
                });
                (
                    (Method::PUT, path(&["policies", vhost, name]), Some(body)),
                    None,
                )
            }
            Policies::Clear { name, vhost } => (
                (Method::DELETE, path(&["policies", vhost, name]), None),
                None,
            ),
        })
    }
}

impl Definitions {
    fn call(&self) -> anyhow::Result<(Call, Columns)> {
        Ok(match self {
            Definitions::Export { .. } => (get(path(&["definitions"])), None),
            Definitions::Import { file } => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let body: Value = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", file.display()))?;
                ((Method::POST, path(&["definitions"]), Some(body)), None)
            }
        })
    }
}

impl Ctl {
    async fn execute(&self) -> anyhow::Result<()> {
        let (call, columns) = self.call()?;
        let answer = self.send(call).await?;
        match (&self.command, columns) {
            (Command::Definitions(Definitions::Export { file: Some(file) }), _) => {
                let text = serde_json::to_string_pretty(&answer)?;
                std::fs::write(file, text)
                    .with_context(|| format!("cannot write {}", file.display()))?;
            }
            (_, Some(columns)) if !self.json => print_table(&answer, columns),
            (_, Some(_)) | (Command::Definitions(Definitions::Export { .. }), _) => {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            }
            _ => {}
        }
        Ok(())
    }

    /// The request a command makes, and the columns a listing prints.
    fn call(&self) -> anyhow::Result<(Call, Columns)> {
        Ok(match &self.command {
            Command::Users(users) => users.call(),
            Command::Permissions(permissions) => permissions.call(),
            Command::Vhosts(vhosts) => vhosts.call(),
            Command::Queues(queues) => queues.call(),
            Command::Policies(policies) => policies.call()?,
            Command::Definitions(definitions) => definitions.call()?,
        })
    }

    /// Sends one request; the answer's JSON (null when it has no body), or an error naming
    /// the status and the API's reason.
    async fn send(&self, (method, path, body): Call) -> anyhow::Result<Value> {
        let authority = self
            .url
            .strip_prefix("http://")
            .context("--url must be http://host:port")?
            .trim_end_matches('/');
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .with_context(|| format!("cannot reach the management API at {}", self.url))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let credentials = STANDARD.encode(format!("{}:{}", self.user, self.password));
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let request = Request::builder()
            .method(method.clone())
            .uri(&path)
            .header("host", authority)
            .header("authorization", format!("Basic {credentials}"))
            .header("content-type", "application/json")
            .body(Full::new(body))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            let reason = answer["reason"]
                .as_str()
                .unwrap_or_else(|| status.canonical_reason().unwrap_or(""));
            match status {
                StatusCode::NOT_FOUND => bail!("{method} {path}: not found"),
                _ => bail!("{method} {path}: {} {reason}", status.as_u16()),
            }
        }
        Ok(answer)
    }
}

/// Percent-encodes one path segment (the vhost `/` is `%2F`).
fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn print_table(answer: &Value, columns: &[&str]) {
    println!("{}", columns.join("\t"));
    for row in answer.as_array().map(Vec::as_slice).unwrap_or_default() {
        let fields: Vec<String> = columns
            .iter()
            .map(|column| match &row[*column] {
                Value::String(text) => text.clone(),
                Value::Array(items) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .collect();
        println!("{}", fields.join("\t"));
    }
}
