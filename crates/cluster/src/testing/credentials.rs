//! NATS identities for tests (feature `test-server`): a server configuration that trusts an
//! operator (its accounts preloaded, JetStream enabled for the users' account) and `.creds`
//! files of users it issued, signed here with nkeys as `nsc` signs them; and nkey seeds for a
//! server that lists its users by nkey.

use std::path::{Path, PathBuf};

use data_encoding::BASE64URL_NOPAD;
use nkeys::KeyPair;
use serde_json::{Value, json};

/// An operator's trust chain in a directory: the server's configuration and user `.creds`.
pub struct Operator {
    account: KeyPair,
    dir: PathBuf,
}

impl Operator {
    /// Writes `server.conf` (operator mode, a memory resolver with the system account and
    /// one account with JetStream) under `dir`.
    pub fn new(dir: &Path) -> std::io::Result<Operator> {
        let operator = KeyPair::new_operator();
        let account = KeyPair::new_account();
        let system = KeyPair::new_account();
        let operator_jwt = jwt(
            &operator,
            &operator.public_key(),
            json!({"type": "operator", "version": 2}),
        )?;
        let limits = json!({
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1,
            "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
        });
        let account_jwt = jwt(
            &operator,
            &account.public_key(),
            json!({"type": "account", "version": 2, "limits": limits}),
        )?;
        let system_jwt = jwt(
            &operator,
            &system.public_key(),
            json!({"type": "account", "version": 2}),
        )?;
        std::fs::write(dir.join("operator.jwt"), &operator_jwt)?;
        let conf = format!(
            "operator: \"{}\"\nsystem_account: {}\nresolver: MEMORY\nresolver_preload: {{\n  {}: \"{account_jwt}\"\n  {}: \"{system_jwt}\"\n}}\n",
            dir.join("operator.jwt").display(),
            system.public_key(),
            account.public_key(),
            system.public_key(),
        );
        std::fs::write(dir.join("server.conf"), conf)?;
        Ok(Operator {
            account,
            dir: dir.to_owned(),
        })
    }

    /// The server's configuration file (`nats-server -c`).
    pub fn server_conf(&self) -> PathBuf {
        self.dir.join("server.conf")
    }

    /// A `.creds` file for a new user of the operator's account, named `name`.
    pub fn user_creds(&self, name: &str) -> std::io::Result<PathBuf> {
        creds_file(&self.account, &self.dir.join(format!("{name}.creds")))
    }

    /// A `.creds` file for a user of an account this operator never issued: refused.
    pub fn stranger_creds(&self, name: &str) -> std::io::Result<PathBuf> {
        creds_file(
            &KeyPair::new_account(),
            &self.dir.join(format!("{name}.creds")),
        )
    }
}

fn creds_file(account: &KeyPair, path: &Path) -> std::io::Result<PathBuf> {
    let user = KeyPair::new_user();
    let user_jwt = jwt(
        account,
        &user.public_key(),
        json!({"type": "user", "version": 2, "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1}),
    )?;
    let seed = user.seed().map_err(std::io::Error::other)?;
    let text = format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    );
    std::fs::write(path, text)?;
    Ok(path.to_owned())
}

/// A JWT as NATS reads them: `ed25519-nkey`, signed by `issuer`, about `subject`.
fn jwt(issuer: &KeyPair, subject: &str, nats: Value) -> std::io::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let jti = data_encoding::BASE32_NOPAD.encode(&random_bytes());
    let claims = json!({
        "jti": jti, "iat": now, "iss": issuer.public_key(), "sub": subject,
        "name": subject, "nats": nats,
    });
    let header = BASE64URL_NOPAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = BASE64URL_NOPAD.encode(claims.to_string().as_bytes());
    let signed = format!("{header}.{body}");
    let signature = issuer
        .sign(signed.as_bytes())
        .map_err(std::io::Error::other)?;
    Ok(format!("{signed}.{}", BASE64URL_NOPAD.encode(&signature)))
}

fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok();
    bytes
}

/// A user nkey: its seed (what the node keeps) and public key (what the server lists).
pub struct NkeyUser {
    pub seed: String,
    pub public: String,
}

impl NkeyUser {
    pub fn new() -> std::io::Result<NkeyUser> {
        let user = KeyPair::new_user();
        Ok(NkeyUser {
            seed: user.seed().map_err(std::io::Error::other)?,
            public: user.public_key(),
        })
    }
}
