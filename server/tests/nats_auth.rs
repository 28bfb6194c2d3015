//! Connecting to a NATS that requires a token, a user and password or an
//! NKey: with it, events flow (each published one counted); without it,
//! the server is never reported ready.

mod common;

use common::*;
use eventscope::config::Config;
use eventscope::demo::managed_nats::{ManagedNats, free_port};
use std::time::Duration;

/// Events flow from `client` through the server started on `running`:
/// five published on `auth.flow`, exactly five counted.
async fn events_flow(client: &async_nats::Client, running: &eventscope::Running) {
    let mut ws = ws_connect(running.addr).await;
    let mut mirror = Mirror::default();
    mirror.apply(next_frame(&mut ws).await);
    wait_subscribed(client, &mut ws, &mut mirror, "auth.probe").await;
    for i in 0..5 {
        client
            .publish("auth.flow", format!(r#"{{"n":{i}}}"#).into())
            .await
            .expect("publish");
    }
    within("flush", client.flush()).await.expect("flush");
    mirror
        .until(&mut ws, "five events", |s| {
            s.subjects.get("auth.flow").is_some_and(|c| c.count >= 5)
        })
        .await;
    // (A sixth would have shown by now: the probes settled before.)
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(frame) =
        tokio::time::timeout(Duration::from_millis(100), next_frame(&mut ws)).await
    {
        mirror.apply(frame);
    }
    assert_eq!(mirror.count("auth.flow"), 5);
    assert_eq!(get(running.addr, "/readyz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth() {
    let port = free_port().expect("port");
    let mut nats = ManagedNats::start_with_args(&nats_bin(), port, &["--auth", "s3cret"])
        .await
        .expect("nats with auth");
    let url = nats.url();

    // Without the token: never ready.
    let refused = eventscope::start(Config::attach(url.clone(), &["auth.>"]))
        .await
        .expect("starts anyway");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (status, body) = get(refused.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    refused.stop().await;

    // With it: connected, and events flow.
    let mut config = Config::attach(url.clone(), &["auth.>"]);
    config.auth.nats_token = Some("s3cret".parse().expect("secret"));
    let running = eventscope::start(config).await.expect("starts");
    let client = within(
        "publisher connects",
        async_nats::ConnectOptions::with_token("s3cret".into()).connect(&url),
    )
    .await
    .expect("publisher connects");
    events_flow(&client, &running).await;

    running.stop().await;
    nats.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_and_password_auth() {
    let port = free_port().expect("port");
    let mut nats =
        ManagedNats::start_with_args(&nats_bin(), port, &["--user", "alice", "--pass", "pw-9"])
            .await
            .expect("nats with users");
    let mut config = Config::attach(nats.url(), &["auth.>"]);
    config.auth.nats_user = Some("alice".to_string());
    config.auth.nats_password = Some("pw-9".parse().expect("secret"));
    let running = eventscope::start(config).await.expect("starts");
    let client = within(
        "publisher connects",
        async_nats::ConnectOptions::with_user_and_password("alice".into(), "pw-9".into())
            .connect(nats.url()),
    )
    .await
    .expect("publisher connects");
    events_flow(&client, &running).await;
    running.stop().await;
    nats.stop().await;
}

/// `--nats-nkey SEED` against a nats-server whose only user is that
/// NKey's public key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nkey_auth() {
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().expect("a seed");
    let dir = std::env::temp_dir().join(format!("eventscope-nkey-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let conf = dir.join("nkey.conf");
    std::fs::write(
        &conf,
        format!(
            "authorization {{ users = [ {{ nkey: \"{}\" }} ] }}\n",
            user.public_key()
        ),
    )
    .expect("config written");
    let port = free_port().expect("port");
    let mut nats = ManagedNats::start_with_args(
        &nats_bin(),
        port,
        &["-c", conf.to_str().expect("utf-8 path")],
    )
    .await
    .expect("nats with an nkey user");
    // Without the seed: never ready.
    let refused = eventscope::start(Config::attach(nats.url(), &["auth.>"]))
        .await
        .expect("starts");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get(refused.addr, "/readyz").await.0, 503);
    refused.stop().await;
    // With it: events flow.
    let mut config = Config::attach(nats.url(), &["auth.>"]);
    config.auth.nats_nkey = Some(seed.parse().expect("secret"));
    let running = eventscope::start(config).await.expect("starts");
    let client = within(
        "publisher connects",
        async_nats::ConnectOptions::with_nkey(seed).connect(nats.url()),
    )
    .await
    .expect("publisher connects");
    events_flow(&client, &running).await;
    running.stop().await;
    nats.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_url_are_used_but_never_shown() {
    let port = free_port().expect("port");
    let mut nats =
        ManagedNats::start_with_args(&nats_bin(), port, &["--user", "bob", "--pass", "pw-in-url"])
            .await
            .expect("nats with users");
    let url = format!("nats://bob:pw-in-url@127.0.0.1:{port}");
    let running = eventscope::start(Config::attach(url, &["auth.>"]))
        .await
        .expect("starts");
    let body = within("ready with the URL's credentials", async {
        loop {
            let (status, body) = get(running.addr, "/readyz").await;
            if status == 200 {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        body.contains(&format!("nats://***@127.0.0.1:{port}")),
        "{body}"
    );
    // The page names the URL it reads from (the top bar), without them.
    let (_, page) = get(running.addr, "/").await;
    assert!(
        page.contains(&format!("NATS at nats://***@127.0.0.1:{port}")),
        "{page}"
    );
    for path in ["/readyz", "/healthz", "/metrics", "/"] {
        let (_, body) = get(running.addr, path).await;
        assert!(!body.contains("pw-in-url"), "{path} shows the password");
    }
    running.stop().await;
    nats.stop().await;
}

/// A test CA and certificates signed by it (made here, with rcgen): the
/// server's for 127.0.0.1, a client's for mutual TLS; PEM files in a
/// folder of their own.
struct Pki {
    dir: std::path::PathBuf,
}

impl Pki {
    fn new(name: &str) -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let dir = std::env::temp_dir().join(format!("eventscope-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ca_key = KeyPair::generate().expect("key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "eventscope test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca.self_signed(&ca_key).expect("CA");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("written");
        for (who, names, usage) in [
            (
                "server",
                vec!["127.0.0.1".to_string(), "localhost".to_string()],
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
            (
                "client",
                vec!["eventscope".to_string()],
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
        ] {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(names).expect("params");
            params.distinguished_name.push(DnType::CommonName, who);
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &ca, &ca_key).expect("signed");
            std::fs::write(dir.join(format!("{who}.pem")), cert.pem()).expect("written");
            std::fs::write(dir.join(format!("{who}-key.pem")), key.serialize_pem())
                .expect("written");
        }
        Pki { dir }
    }

    fn path(&self, file: &str) -> std::path::PathBuf {
        self.dir.join(file)
    }

    fn arg(&self, file: &str) -> String {
        self.path(file).to_str().expect("utf-8 path").to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `--nats-tls-ca` (TLS), then with `--nats-tls-cert`/`--nats-tls-key`
/// (mutual TLS), against a nats-server that requires each: without what
/// it requires never ready, with it events flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls() {
    let pki = Pki::new("tls");
    let port = free_port().expect("port");
    let (cert, key, ca) = (
        pki.arg("server.pem"),
        pki.arg("server-key.pem"),
        pki.arg("ca.pem"),
    );
    for mutual in [false, true] {
        let mut args = vec![
            "--tls",
            "--tlscert",
            cert.as_str(),
            "--tlskey",
            key.as_str(),
        ];
        if mutual {
            args.extend(["--tlsverify", "--tlscacert", ca.as_str()]);
        }
        let mut nats = ManagedNats::start_with_args(&nats_bin(), port, &args)
            .await
            .expect("nats with TLS");
        // Without the CA (TLS), or without a client certificate (mutual):
        // never ready.
        let mut config = Config::attach(nats.url(), &["auth.>"]);
        if mutual {
            config.auth.nats_tls_ca = Some(pki.path("ca.pem"));
        }
        let refused = eventscope::start(config).await.expect("starts");
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(
            get(refused.addr, "/readyz").await.0,
            503,
            "mutual: {mutual}"
        );
        refused.stop().await;
        // With them: events flow.
        let mut config = Config::attach(nats.url(), &["auth.>"]);
        config.auth.nats_tls_ca = Some(pki.path("ca.pem"));
        let mut publisher = async_nats::ConnectOptions::new()
            .add_root_certificates(pki.path("ca.pem"))
            .require_tls(true);
        if mutual {
            config.auth.nats_tls_cert = Some(pki.path("client.pem"));
            config.auth.nats_tls_key = Some(pki.path("client-key.pem"));
            publisher = publisher
                .add_client_certificate(pki.path("client.pem"), pki.path("client-key.pem"));
        }
        let running = eventscope::start(config).await.expect("starts");
        let client = within("publisher connects", publisher.connect(nats.url()))
            .await
            .expect("publisher connects");
        events_flow(&client, &running).await;
        running.stop().await;
        nats.stop().await;
    }
}
