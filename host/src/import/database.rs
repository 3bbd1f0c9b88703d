//! monasca-notification's database (`[database] repo_driver` with `[mysql]`,
//! `[postgresql]` or `[orm] url`) → a `[databases.mon]` table, and the
//! three lookups the notification guest needs, written in that database's
//! SQL dialect: the original's own queries with the host's placeholders.

use super::emit::TomlWriter;
use super::options::Options;
use super::ImportError;

/// The name of the generated `[databases]` entry.
pub(super) const NAME: &str = "mon";

/// Which SQL the lookups are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Mysql,
    Postgresql,
    Sqlite,
}

/// The database the original queried, as a `[databases.mon]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Database {
    pub(super) dialect: Dialect,
    /// The URL (MySQL, PostgreSQL) or the file (SQLite).
    pub(super) target: String,
    /// Where it came from, for the comment.
    pub(super) source: String,
    /// What was left out of an `[orm] url` (its query), if anything.
    pub(super) dropped: Option<String>,
}

/// The lookups the notification guest runs (its default lookup names).
pub(super) const ALARM_ACTIONS: &str = "alarm_actions";
pub(super) const ALARM_STATE: &str = "alarm_state";
pub(super) const NOTIFICATION_METHOD: &str = "notification_method";

/// The original's repository drivers: short names and class paths.
const DRIVERS: [(&str, &str); 3] = [
    ("mysql", "monasca_notification.common.repositories.mysql.mysql_repo:mysqlrepo"),
    ("postgresql", "monasca_notification.common.repositories.postgres.pgsql_repo:postgresqlrepo"),
    ("orm", "monasca_notification.common.repositories.orm.orm_repo:ormrepo"),
];

/// Read the database options.
pub(super) fn import(o: &mut Options) -> Result<Database, ImportError> {
    let driver = o.string("database", "repo_driver", "mysql")?.trim().to_ascii_lowercase();
    let Some((name, _)) = DRIVERS.iter().find(|(short, path)| driver == *short || driver == *path) else {
        return Err(o.invalid("database", "repo_driver", format!("`{driver}` is not mysql, postgresql or orm")));
    };
    for (other, _) in DRIVERS.iter().filter(|(short, _)| short != name) {
        o.note_rest_of(other, &format!("not used: [database] repo_driver is {name}"));
    }
    match *name {
        "mysql" => mysql(o),
        "postgresql" => postgresql(o),
        _ => orm(o),
    }
}

fn mysql(o: &mut Options) -> Result<Database, ImportError> {
    const S: &str = "mysql";
    let host = o.string(S, "host", "127.0.0.1")?;
    let port = o.port(S, "port", 3306)?;
    let user = o.string(S, "user", "notification")?;
    let password = o.string(S, "passwd", "password")?;
    let db = o.string(S, "db", "mon")?;
    let ssl = o.dict(S, "ssl", &[])?;
    if !ssl.is_empty() {
        o.note(S, "ssl", "TLS to the database is not supported yet (plain TCP): keep it on a trusted network");
    }
    Ok(Database {
        dialect: Dialect::Mysql,
        target: url("mysql", &user, &password, &host, port, &db),
        source: "[database] repo_driver = mysql; [mysql] host, port, user, passwd, db".to_string(),
        dropped: None,
    })
}

fn postgresql(o: &mut Options) -> Result<Database, ImportError> {
    const S: &str = "postgresql";
    let host = o.string(S, "host", "127.0.0.1")?;
    let port = o.port(S, "port", 5432)?;
    let user = o.string(S, "user", "notification")?;
    let password = o.string(S, "password", "password")?;
    let database = o.string(S, "database", "mon")?;
    Ok(Database {
        dialect: Dialect::Postgresql,
        target: url("postgresql", &user, &password, &host, port, &database),
        source: "[database] repo_driver = postgresql; [postgresql] host, port, user, password, database".to_string(),
        dropped: None,
    })
}

/// `[orm] url`, an SQLAlchemy URL: `dialect[+driver]://user:password@host:port/db?query`.
fn orm(o: &mut Options) -> Result<Database, ImportError> {
    let Some(url) = o.opt_string("orm", "url")? else {
        return Err(o.invalid(
            "orm",
            "url",
            "is required with repo_driver = orm (the original cannot start without it)",
        ));
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(o.invalid("orm", "url", "is not an SQLAlchemy URL (dialect://...)"));
    };
    let dialect_name = scheme.split('+').next().unwrap_or_default().to_ascii_lowercase();
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query.to_string())),
        None => (rest, None),
    };
    let source = "[database] repo_driver = orm; [orm] url".to_string();
    let (dialect, target) = match dialect_name.as_str() {
        "mysql" | "mariadb" => (Dialect::Mysql, format!("mysql://{rest}")),
        "postgresql" | "postgres" => (Dialect::Postgresql, format!("postgresql://{rest}")),
        "sqlite" => {
            // sqlite:///relative.db, sqlite:////absolute.db; sqlite:// is in memory.
            let path = rest.strip_prefix('/').unwrap_or_default();
            if path.is_empty() {
                return Err(o.invalid("orm", "url", "an in-memory SQLite database holds no alarms to look up"));
            }
            (Dialect::Sqlite, path.to_string())
        }
        other => return Err(o.invalid("orm", "url", format!("the `{other}` dialect is not supported here"))),
    };
    Ok(Database { dialect, target, source, dropped: query })
}

/// `scheme://user:password@host:port/database`, each part percent-encoded.
fn url(scheme: &str, user: &str, password: &str, host: &str, port: u16, database: &str) -> String {
    let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() };
    format!("{scheme}://{}:{}@{host}:{port}/{}", encode(user), encode(password), encode(database))
}

/// Percent-encoding of everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Database {
    /// `[databases.mon]`.
    pub(super) fn write(&self, w: &mut TomlWriter) {
        w.table(&["databases", NAME]);
        match self.dialect {
            Dialect::Mysql => w.str("type", "mysql"),
            Dialect::Postgresql => w.str("type", "postgresql"),
            Dialect::Sqlite => w.str("type", "sqlite"),
        }
        w.trailing(&self.source);
        match self.dialect {
            Dialect::Sqlite => {
                w.str("path", &self.target);
                w.trailing("relative to this file (the original's was relative to its working directory)");
            }
            Dialect::Mysql | Dialect::Postgresql => {
                w.str("url", &self.target);
                w.trailing("holds the password; MONASCA_WASM_DATABASE_MON_URL wins");
            }
        }
        if let Some(query) = &self.dropped {
            w.comment(&format!(
                "[orm] url's parameters `{query}` are left out: the host's drivers take none of SQLAlchemy's"
            ));
        }
    }

    /// `[pipeline.lookups.<name>]` for one of the three lookups.
    pub(super) fn write_lookup(&self, w: &mut TomlWriter, name: &str) {
        w.table(&["pipeline", "lookups", name]);
        w.str("database", NAME);
        if name == ALARM_STATE {
            w.int("ttl_seconds", 0);
            w.trailing("always the current state, as the original's periodic engine asked for it");
        } else {
            w.int("ttl_seconds", 30);
            w.trailing("answers reused for 30 s; the original asked the database every time (0 does that)");
        }
        w.str("query", &query(self.dialect, name));
    }
}

/// The original's query (monasca-notification's `BaseRepo`) for a lookup,
/// with the dialect's placeholders. PostgreSQL binds the parameters as
/// `text`, so the state column (an enum in Monasca's PostgreSQL schema) is
/// compared as text.
pub(super) fn query(dialect: Dialect, name: &str) -> String {
    let (first, second) = match dialect {
        Dialect::Mysql => ("?", "?"),
        Dialect::Postgresql => ("$1", "$2"),
        Dialect::Sqlite => ("?1", "?2"),
    };
    let state = if dialect == Dialect::Postgresql { "aa.alarm_state::text" } else { "aa.alarm_state" };
    match name {
        ALARM_ACTIONS => format!(
            "SELECT id, type, name, address, period FROM alarm_action AS aa JOIN notification_method AS nm \
             ON aa.action_id = nm.id WHERE aa.alarm_definition_id = {first} AND {state} = {second}"
        ),
        ALARM_STATE => format!("SELECT state FROM alarm WHERE id = {first}"),
        _ => format!("SELECT name, type, address, period FROM notification_method WHERE id = {first}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::ini::Ini;

    fn database(text: &str) -> Result<Database, ImportError> {
        let ini = Ini::parse(text).unwrap();
        import(&mut Options::new(&ini))
    }

    #[test]
    fn mysql_is_the_default_with_the_originals_credentials() {
        let db = database("").unwrap();
        assert_eq!(db.dialect, Dialect::Mysql);
        assert_eq!(db.target, "mysql://notification:password@127.0.0.1:3306/mon");
        let db = database("[mysql]\nhost = db.example.org\nuser = n@tif\npasswd = p:a/s s%\ndb = mon2\n").unwrap();
        assert_eq!(db.target, "mysql://n%40tif:p%3Aa%2Fs%20s%25@db.example.org:3306/mon2");
    }

    #[test]
    fn postgresql_and_orm_urls() {
        let db = database("[database]\nrepo_driver = PostgreSQL\n[postgresql]\nhost = ::1\nport = 5433\n").unwrap();
        assert_eq!(
            (db.dialect, db.target.as_str()),
            (Dialect::Postgresql, "postgresql://notification:password@[::1]:5433/mon")
        );
        let orm = |url: &str| {
            database(&format!("[database]\nrepo_driver = monasca_notification.common.repositories.orm.orm_repo:OrmRepo\n[orm]\nurl = {url}\n"))
        };
        let db = orm("mysql+pymysql://u:p@db:3306/mon?charset=utf8").unwrap();
        assert_eq!((db.target.as_str(), db.dropped.as_deref()), ("mysql://u:p@db:3306/mon", Some("charset=utf8")));
        assert_eq!(orm("postgresql+psycopg2://u:p@db/mon").unwrap().target, "postgresql://u:p@db/mon");
        let db = orm("sqlite:////var/lib/monasca/mon.db").unwrap();
        assert_eq!((db.dialect, db.target.as_str()), (Dialect::Sqlite, "/var/lib/monasca/mon.db"));
        assert!(orm("sqlite://").is_err());
        assert!(orm("oracle://u:p@db/mon").unwrap_err().to_string().contains("oracle"));
        assert!(database("[database]\nrepo_driver = orm\n").unwrap_err().to_string().contains("[orm] url"));
        assert!(database("[database]\nrepo_driver = cassandra\n").is_err());
    }

    #[test]
    fn queries_use_each_dialects_placeholders() {
        assert!(query(Dialect::Mysql, ALARM_ACTIONS).ends_with("aa.alarm_definition_id = ? AND aa.alarm_state = ?"));
        assert!(query(Dialect::Postgresql, ALARM_ACTIONS).ends_with("= $1 AND aa.alarm_state::text = $2"));
        assert_eq!(query(Dialect::Sqlite, ALARM_STATE), "SELECT state FROM alarm WHERE id = ?1");
        assert_eq!(
            query(Dialect::Postgresql, NOTIFICATION_METHOD),
            "SELECT name, type, address, period FROM notification_method WHERE id = $1"
        );
    }
}
