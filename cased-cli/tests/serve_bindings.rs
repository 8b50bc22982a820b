//! `cased serve` against the Python and Node clients, unchanged: each posts a deployment, a later
//! event of it, and is refused with a wrong key, then reads deployments back (a filtered page,
//! one deployment, a bad filter, an unknown id), as the Rust `Client` does in `serve.rs`.
//!
//! Needs the bindings built (`make python node`, which `make test` runs first): Python from
//! `CASED_TEST_PYTHON`, else the project's `.venv`; Node's `cased-node/index.js`. A missing
//! binding fails the test, never skips it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cased-serve-bindings-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `cased serve` on a free loopback port with one ingest and one read key; killed on drop.
struct Serve {
    child: std::process::Child,
    base: String,
    ingest: String,
    read: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Serve {
    let key = |scope: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_cased"))
            .env_clear()
            .args(["keys", "create", "--scope", scope, "--store"])
            .arg(dir.join(".cased"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (ingest, read) = (key("ingest"), key("read"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_cased"))
        .env_clear()
        .args(["serve", "--listen", "127.0.0.1:0", "--store"])
        .arg(dir.join(".cased"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.split("listening on ").nth(1) {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("cased serve listens");
    Serve {
        child,
        base,
        ingest,
        read,
    }
}

/// What every language's script prints: its two answers and how the wrong key was refused.
fn check(server: &Serve, printed: &str, language: &str) -> String {
    let out: Value = serde_json::from_str(printed.trim())
        .unwrap_or_else(|e| panic!("{language} printed {printed:?}: {e}"));
    assert_eq!(out["first"]["status"], 201, "{language}: {out}");
    assert_eq!(out["first"]["attempts"], 1, "{language}: {out}");
    let id = out["first"]["body"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        out["first"]["body"]["url"],
        json!(format!("{}/deployments/{id}", server.base)),
        "{language}"
    );
    assert_eq!(out["later"]["status"], 200, "{language}: {out}");
    assert_eq!(out["later"]["body"]["id"], json!(id), "{language}: {out}");
    assert_eq!(out["refused"], "unauthorized", "{language}: {out}");
    // Read back with the read key: the newest deployment of acme/shop in staging is this one
    // (each language runs after the previous), one per page.
    let page = &out["page"]["deployments"];
    assert_eq!(page.as_array().map(Vec::len), Some(1), "{language}: {out}");
    assert_eq!(page[0]["id"], json!(id), "{language}: {out}");
    assert_eq!(page[0]["status"], "success", "{language}: {out}");
    assert_eq!(out["one"]["id"], json!(id), "{language}: {out}");
    assert_eq!(
        out["one"]["events"].as_array().map(Vec::len),
        Some(2),
        "{language}: {out}"
    );
    assert_eq!(
        out["bad_filter"],
        json!(["invalid_request", 400]),
        "{language}: {out}"
    );
    assert_eq!(
        out["missing"],
        json!(["invalid_request", 404]),
        "{language}: {out}"
    );
    id
}

fn python() -> String {
    let candidates = match std::env::var("CASED_TEST_PYTHON") {
        Ok(p) => vec![p],
        Err(_) => vec![format!("{ROOT}/.venv/bin/python")],
    };
    candidates
        .iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import cased"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .cloned()
        .unwrap_or_else(|| {
            panic!("the Python binding is not built ({candidates:?} cannot import cased): run `make python`")
        })
}

const PYTHON: &str = r#"
import asyncio, json, sys
import cased

async def main(base, key, read_key):
    def event(status):
        return cased.DeploymentEvent("Deploy from Python", repository_full_name="acme/shop",
            status=status, commit_sha="5eaf00d", event_metadata={"environment": "staging"})
    client = cased.Client(key, base_url=base)
    first = await client.create_deployment(event("running"))
    later = await client.create_deployment(event("success"))
    try:
        await cased.Client("cased_ingest_wrong", base_url=base).create_deployment(event("running"))
        refused = None
    except cased.UnauthorizedError as e:
        refused = e.code
    reader = cased.Client(read_key, base_url=base)
    page = await reader.deployments(repository="acme/shop", environment="staging", limit=1)
    one = await reader.deployment(first["body"]["id"])
    try:
        await reader.deployments(verdict="fine")
        bad_filter = None
    except cased.InvalidRequestError as e:
        bad_filter = [e.code, e.status]
    try:
        await reader.deployment("dep_nope")
        missing = None
    except cased.InvalidRequestError as e:
        missing = [e.code, e.status]
    print(json.dumps({"first": first, "later": later, "refused": refused, "page": page,
                      "one": one, "bad_filter": bad_filter, "missing": missing}))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
"#;

const NODE: &str = r#"
const [index, base, key, readKey] = process.argv.slice(1)
const { Client, DeploymentEvent } = await import(index)
const event = (status) => new DeploymentEvent({
  deployment_request: 'Deploy from Node', repository_full_name: 'acme/shop', status,
  commit_sha: 'c0ffee1', event_metadata: { environment: 'staging' },
})
const client = new Client({ apiKey: key, baseUrl: base })
const first = await client.createDeployment(event('running'))
const later = await client.createDeployment(event('success'))
let refused = null
try {
  await new Client({ apiKey: 'cased_ingest_wrong', baseUrl: base }).createDeployment(event('running'))
} catch (e) {
  refused = e.code
}
const reader = new Client({ apiKey: readKey, baseUrl: base })
const page = await reader.deployments({ repository: 'acme/shop', environment: 'staging', limit: 1 })
const one = await reader.deployment(first.body.id)
const failure = (p) => p.then(() => null, (e) => [e.code, e.status])
const badFilter = await failure(reader.deployments({ verdict: 'fine' }))
const missing = await failure(reader.deployment('dep_nope'))
console.log(JSON.stringify({
  first, later, refused, page: { deployments: page.deployments, next_cursor: page.nextCursor },
  one, bad_filter: badFilter, missing,
}))
"#;

#[test]
fn the_python_and_node_clients_post_to_cased_serve_unchanged() {
    let python = python();
    let index = format!("{ROOT}/cased-node/index.js");
    let node_ok = Command::new("node")
        .args(["-e", &format!("require({index:?})")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        node_ok,
        "the Node binding is not built ({index} does not load): run `make node`"
    );
    let dir = temp_dir("clients");
    let server = serve(&dir);

    let py = Command::new(&python)
        .args(["-c", PYTHON, &server.base, &server.ingest, &server.read])
        .output()
        .unwrap();
    assert!(py.status.success(), "{py:?}");
    let py_id = check(&server, &String::from_utf8(py.stdout).unwrap(), "Python");

    let js = Command::new("node")
        .args([
            "--input-type=module",
            "-e",
            NODE,
            &index,
            &server.base,
            &server.ingest,
            &server.read,
        ])
        .output()
        .unwrap();
    assert!(js.status.success(), "{js:?}");
    let js_id = check(&server, &String::from_utf8(js.stdout).unwrap(), "Node");

    // Two deployments, one per language, each with both of its events.
    let list = Command::new("curl")
        .args([
            "-sS",
            "-H",
            &format!("Authorization: Bearer {}", server.read),
        ])
        .arg(format!("{}/api/v1/deployments/", server.base))
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    let ids: Vec<&str> = list["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [js_id.as_str(), py_id.as_str()], "{list}");
    assert!(
        list["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "success"),
        "{list}"
    );
}
