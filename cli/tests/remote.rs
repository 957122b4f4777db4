//! A workspace server routing to three runtime servers on distinct loopback
//! addresses (`yoi runtime serve` on 127.0.0.2, .3 and .4): the same
//! contract, each Worker in its own Runtime, and no runtime host's address
//! or token in anything the browser gets.

mod common;

use std::path::Path;

use common::TestApp;
use common::process::{Server, free_port};
use serde_json::json;
use yoi::config::{FileConfig, Overrides};

const HOSTS: [(&str, &str, &str); 3] = [
    ("host-a", "127.0.0.2", "SENTINEL-TOKEN-A-1f2e"),
    ("host-b", "127.0.0.3", "SENTINEL-TOKEN-B-3d4c"),
    ("host-c", "127.0.0.4", "SENTINEL-TOKEN-C-5b6a"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_server_routes_to_runtime_servers_on_other_hosts() {
    let mut servers = Vec::new();
    let mut config = String::new();
    for (id, host, token) in HOSTS {
        let server = Server::start_command(
            &["runtime", "serve"],
            host,
            &["--id", id, "--memory"],
            &[("YOI_RUNTIME_TOKEN", token)],
        )
        .await;
        config.push_str(&format!(
            "[[runtimes]]\nid = \"{id}\"\nkind = \"remote\"\nurl = \"{}\"\ntoken_env = \"TOKEN_{id}\"\n\n",
            server.base
        ));
        servers.push(server);
    }
    let file = FileConfig::parse(Path::new("remote.toml"), &config).unwrap();
    let resolved = file
        .resolve(Overrides::default(), |var| {
            HOSTS
                .iter()
                .find(|(id, _, _)| var == format!("TOKEN_{id}"))
                .map(|(_, _, token)| (*token).to_owned())
        })
        .unwrap();
    let app = TestApp {
        state: yoi::build_state(resolved).await.unwrap(),
    };
    let mut seen = Vec::new();

    let runtimes = app.get("/api/runtimes").await;
    seen.push(runtimes.text.clone());
    let items = runtimes.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for item in items {
        assert_eq!(item["implementation"], "remote");
        assert_eq!(item["status"]["state"], "ready");
    }

    // A chat cycle on each host, one request per turn.
    let mut workers = Vec::new();
    for (id, _, _) in HOSTS {
        let created = app
            .post(
                &format!("/api/runtimes/{id}/workers"),
                json!({ "display_name": id }),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        let worker = created.json["worker_id"].as_str().unwrap().to_owned();
        let done = app
            .post(
                &format!("/api/runtimes/{id}/workers/{worker}/input?wait_ms=10000"),
                json!({ "text": format!("hello {id}") }),
            )
            .await;
        assert_eq!(done.status, 200, "{}", done.text);
        assert_eq!(done.json["reply"]["text"], format!("echo: hello {id}"));
        seen.push(done.text);
        workers.push((id, worker));
    }
    // A Worker lives in its own Runtime only.
    let (a, worker_a) = &workers[0];
    let (b, _) = &workers[1];
    let wrong = app
        .get(&format!("/api/runtimes/{b}/workers/{worker_a}"))
        .await;
    wrong.assert_problem(404, "unknown_worker");
    assert_eq!(wrong.json["runtime_id"], *b);
    seen.push(wrong.text);
    let right = app
        .get(&format!("/api/runtimes/{a}/workers/{worker_a}"))
        .await;
    assert_eq!(right.json["display_name"], *a);

    let mut pairs = app.all_worker_pairs().await;
    pairs.sort();
    let mut expected: Vec<(String, String)> = workers
        .iter()
        .map(|(id, w)| ((*id).to_owned(), w.clone()))
        .collect();
    expected.sort();
    assert_eq!(pairs, expected);
    seen.push(app.get("/api/workers").await.text);

    // A host goes down: it is unavailable, quickly, and the others serve on.
    let down = servers.pop().unwrap();
    down.kill();
    let (c, worker_c) = &workers[2];
    let gone = app
        .get(&format!("/api/runtimes/{c}/workers/{worker_c}"))
        .await;
    gone.assert_problem(503, "runtime_unavailable");
    seen.push(gone.text);
    let runtimes = app.get("/api/runtimes").await;
    assert_eq!(runtimes.json["items"][2]["status"]["state"], "unavailable");
    assert_eq!(runtimes.json["items"][0]["status"]["state"], "ready");
    seen.push(runtimes.text);
    let diagnostics = app.get("/api/diagnostics").await;
    seen.push(diagnostics.text);

    // The leak scan: no runtime host's address or token in any of it.
    for text in &seen {
        for (_, host, token) in HOSTS {
            assert!(!text.contains(host), "address leaked: {text}");
            assert!(!text.contains(token), "token leaked: {text}");
        }
    }
    assert!(!format!("{:?}", app.state).contains("SENTINEL"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_down_at_start_joins_later_and_a_wrong_token_is_a_diagnostic() {
    let late_port = free_port("127.0.0.5");
    let refusing = Server::start_command(
        &["runtime", "serve"],
        "127.0.0.6",
        &["--id", "refusing", "--memory"],
        &[("YOI_RUNTIME_TOKEN", "SENTINEL-RIGHT-TOKEN")],
    )
    .await;
    let config = format!(
        "[[runtimes]]\nid = \"late\"\nkind = \"remote\"\ndisplay_name = \"Late host\"\nurl = \"http://127.0.0.5:{late_port}\"\ntoken_env = \"LATE\"\n\n\
         [[runtimes]]\nid = \"refusing\"\nkind = \"remote\"\nurl = \"{0}\"\ntoken_env = \"WRONG\"\n\n\
         [[runtimes]]\nid = \"misnamed\"\nkind = \"remote\"\nurl = \"{0}\"\ntoken_env = \"RIGHT\"\n",
        refusing.base
    );
    let resolved = FileConfig::parse(Path::new("remote.toml"), &config)
        .unwrap()
        .resolve(Overrides::default(), |var| match var {
            "LATE" => Some("SENTINEL-LATE-TOKEN".to_owned()),
            "WRONG" => Some("SENTINEL-WRONG-TOKEN".to_owned()),
            "RIGHT" => Some("SENTINEL-RIGHT-TOKEN".to_owned()),
            _ => None,
        })
        .unwrap();
    // Neither host stops the workspace server from starting.
    let app = TestApp {
        state: yoi::build_state(resolved).await.unwrap(),
    };
    let mut seen = Vec::new();
    let runtimes = app.get("/api/runtimes").await;
    assert_eq!(runtimes.json["items"][0]["display_name"], "Late host");
    assert_eq!(runtimes.json["items"][0]["status"]["state"], "unavailable");
    assert_eq!(runtimes.json["items"][1]["status"]["state"], "unavailable");
    seen.push(runtimes.text);
    // Hosts elsewhere do not make this server unready.
    assert_eq!(app.get("/readyz").await.status, 200);
    // A runtime host answers the same probes, without its token.
    let probe = reqwest::get(format!("{}/readyz", refusing.base))
        .await
        .unwrap();
    assert_eq!(probe.status(), 200);
    let started = std::time::Instant::now();
    let refused = app.post("/api/runtimes/late/workers", json!({})).await;
    refused.assert_problem(503, "runtime_unavailable");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    seen.push(refused.text);
    let diagnostics = app.get("/api/diagnostics").await;
    let refusing_diagnostics = diagnostics.json["items"][1]["diagnostics"].to_string();
    assert!(
        refusing_diagnostics.contains("refuses our token"),
        "{refusing_diagnostics}"
    );
    // A host that serves another id than the entry's says so.
    let misnamed_diagnostics = diagnostics.json["items"][2]["diagnostics"].to_string();
    assert!(
        misnamed_diagnostics.contains("must be the host's --id"),
        "{misnamed_diagnostics}"
    );
    seen.push(diagnostics.text);
    // What the hosts refuse is about this server, not the browser: no 401
    // that would ask the browser to sign in, no 404 for a listed Runtime.
    for runtime_id in ["late", "refusing", "misnamed"] {
        let detail = app
            .get(&format!("/api/runtimes/{runtime_id}/workers/w-1"))
            .await;
        detail.assert_problem(503, "runtime_unavailable");
        assert_eq!(detail.headers["retry-after"], "1");
        seen.push(detail.text);
    }
    // The merged list names the Runtimes it could not ask, rather than
    // leaving them out unsaid.
    let workers = app.get("/api/workers").await;
    assert_eq!(
        workers.json["unavailable"],
        json!(["late", "refusing", "misnamed"]),
        "{}",
        workers.text
    );
    seen.push(workers.text);

    // The late host comes up: it joins, with its capabilities.
    let _late = Server::start_at(
        &["runtime", "serve"],
        &format!("127.0.0.5:{late_port}"),
        &["--id", "late", "--memory"],
        &[("YOI_RUNTIME_TOKEN", "SENTINEL-LATE-TOKEN")],
    )
    .await;
    let mut created = None;
    for _ in 0..50 {
        let reply = app.post("/api/runtimes/late/workers", json!({})).await;
        if reply.status == 201 {
            created = Some(reply);
            break;
        }
        // The registry asks the host again in the background.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let created = created.expect("the late host joined");
    seen.push(created.text);
    let runtimes = app.get("/api/runtimes").await;
    assert_eq!(runtimes.json["items"][0]["status"]["state"], "ready");
    assert_eq!(
        runtimes.json["items"][0]["capabilities"]["create_worker"],
        true
    );
    seen.push(runtimes.text);

    for text in &seen {
        assert!(
            !text.contains("127.0.0.5") && !text.contains("127.0.0.6"),
            "{text}"
        );
        assert!(!text.contains("SENTINEL"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_never_calls_a_host_elsewhere() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A "host" that counts connections and closes each at once, so the
    // Runtime never becomes known and every caller could ask again.
    let listener = tokio::net::TcpListener::bind("127.0.0.7:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let config = format!(
        "[[runtimes]]\nid = \"embedded\"\nkind = \"embedded\"\n\n\
         [[runtimes]]\nid = \"silent\"\nkind = \"remote\"\nurl = \"http://{address}\"\ntoken_env = \"SILENT\"\n"
    );
    let resolved = FileConfig::parse(Path::new("silent.toml"), &config)
        .unwrap()
        .resolve(
            Overrides {
                memory: true,
                ..Overrides::default()
            },
            |var| (var == "SILENT").then(|| "SENTINEL-SILENT".to_owned()),
        )
        .unwrap();
    let app = TestApp {
        state: yoi::build_state(resolved).await.unwrap(),
    };
    // An aggregate read asks the unknown host again: the counter works.
    let before = connections.load(Ordering::SeqCst);
    assert_eq!(app.get("/api/runtimes").await.status, 200);
    let asked = async {
        while connections.load(Ordering::SeqCst) == before {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), asked)
        .await
        .expect("the registry asks an unknown host again");
    // Probes do not, however often they come. The registry's own asking
    // retries (after 100 ms, then 400 ms): first a quiet second.
    let settled = quiet(&connections).await;
    for _ in 0..20 {
        assert_eq!(app.get("/readyz").await.status, 200);
    }
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(connections.load(Ordering::SeqCst), settled);
}

/// The count once a second has passed without it changing.
async fn quiet(count: &std::sync::atomic::AtomicUsize) -> usize {
    use std::sync::atomic::Ordering;
    let mut last = count.load(Ordering::SeqCst);
    let mut since = std::time::Instant::now();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let now = count.load(Ordering::SeqCst);
        if now != last {
            (last, since) = (now, std::time::Instant::now());
        } else if since.elapsed() >= std::time::Duration::from_secs(1) {
            return now;
        }
    }
}
