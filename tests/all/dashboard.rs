//! The dashboard of `flow serve`, in a real headless Chromium (Debian's
//! `chromium` and `chromium-driver`) driven over WebDriver. Each page is
//! loaded and used as a person would: a run started from the form, a node
//! turning green without a reload, cancel, resume, retry from a node,
//! filters, paging, a 10,000-node run and a server that wants a token.
//! Screenshots of each page go to `<target>/tmp/dashboard/`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::serve::{Served, env, served, token};

/// How long a page may take to show what a step waits for. Steps wait for
/// a condition, never for a fixed time; this bound only ends a test that
/// would otherwise hang.
const PATIENCE: Duration = Duration::from_secs(60);

/// A chromedriver with one headless Chromium session; both stop when
/// dropped.
struct Browser {
    driver: Child,
    client: Option<Client>,
    runtime: tokio::runtime::Runtime,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Self {
        let chromedriver = which("chromedriver");
        let chromium = which("chromium");
        let mut driver = Command::new(chromedriver)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start chromedriver");
        let mut out = BufReader::new(driver.stdout.take().unwrap());
        let port = loop {
            let mut line = String::new();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "chromedriver exited before it said its port"
            );
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                break rest.trim().trim_end_matches('.').to_string();
            }
        };
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let profile = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let client = runtime.block_on(async {
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities.as_object().unwrap().clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
                .expect("cannot open a Chromium session")
        });
        Self {
            driver,
            client: Some(client),
            runtime,
            _profile: profile,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    fn go(&self, url: &str) {
        self.runtime.block_on(self.client().goto(url)).unwrap();
    }

    /// Runs `script` (a function body) in the page; what it returns.
    fn eval(&self, script: &str) -> Value {
        self.runtime
            .block_on(self.client().execute(script, Vec::new()))
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Waits until the page has an element matching `css`.
    #[track_caller]
    fn wait_for(&self, css: &str) {
        let found = self.runtime.block_on(
            self.client()
                .wait()
                .at_most(PATIENCE)
                .every(Duration::from_millis(25))
                .for_element(Locator::Css(css)),
        );
        if let Err(error) = found {
            panic!(
                "no {css} on the page: {error}\n{}",
                self.eval("return document.getElementById('main').innerText")
            );
        }
    }

    /// Waits until `expression` is true in the page.
    #[track_caller]
    fn wait_until(&self, expression: &str) {
        let start = Instant::now();
        while self.eval(&format!("return !!({expression})")) != Value::Bool(true) {
            assert!(
                start.elapsed() < PATIENCE,
                "never true: {expression}\n{}",
                self.eval("return document.getElementById('main').innerText")
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn click(&self, css: &str) {
        self.wait_for(css);
        let element = self
            .runtime
            .block_on(self.client().find(Locator::Css(css)))
            .unwrap();
        self.runtime.block_on(element.click()).unwrap();
    }

    /// Clicks the button whose text is `text`.
    fn press(&self, text: &str) {
        self.wait_until(&format!(
            "[...document.querySelectorAll('button')].find(b => b.textContent.trim() === {text:?} && !b.disabled)"
        ));
        self.eval(&format!(
            "[...document.querySelectorAll('button')].find(b => b.textContent.trim() === {text:?}).click()"
        ));
    }

    fn type_into(&self, css: &str, text: &str) {
        self.wait_for(css);
        let element = self
            .runtime
            .block_on(self.client().find(Locator::Css(css)))
            .unwrap();
        self.runtime.block_on(element.clear()).unwrap();
        self.runtime.block_on(element.send_keys(text)).unwrap();
    }

    fn text(&self, css: &str) -> String {
        self.wait_for(css);
        self.eval(&format!("return document.querySelector({css:?}).innerText"))
            .as_str()
            .unwrap()
            .to_string()
    }

    fn path(&self) -> String {
        self.eval("return location.pathname + location.search")
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Saves a screenshot of the page as `<target>/tmp/dashboard/<name>.png`.
    fn screenshot(&self, name: &str) {
        let png = self.runtime.block_on(self.client().screenshot()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// The node box of `node` in the drawn graph has state `status`.
    fn node_is(&self, node: &str, status: &str) {
        self.wait_for(&format!("svg.graph g[data-node='{node}'].s-{status}"));
    }

    /// Focuses the element matching `css` and types `keys` (WebDriver key
    /// codes for arrows and Enter) into it.
    fn keys(&self, css: &str, keys: &str) {
        self.wait_for(css);
        self.eval(&format!("document.querySelector({css:?}).focus()"));
        self.runtime.block_on(async {
            let focused = self.client().active_element().await.unwrap();
            focused.send_keys(keys).await.unwrap();
        });
    }

    /// Waits until the page shows a run other than `from`; its id.
    fn new_run_page(&self, from: &str) -> String {
        self.wait_until(&format!(
            "location.pathname.startsWith('/runs/') && location.pathname !== '/runs/{from}'"
        ));
        self.path().trim_start_matches("/runs/").to_string()
    }

    /// Marks the page; [`Browser::same_page`] tells whether it was loaded
    /// again since.
    fn mark(&self) {
        self.eval("window.flowMark = 'kept'");
    }

    fn same_page(&self) -> bool {
        self.eval("return window.flowMark === 'kept'") == Value::Bool(true)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn which(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{program} is not installed: the dashboard tests need Debian's chromium and \
                 chromium-driver (apt-get install chromium chromium-driver; .ci/run does)"
            )
        })
}

#[test]
fn a_run_is_started_watched_and_steered_from_the_browser() {
    let env = env();
    let server = served(&env, &[]);
    let browser = Browser::start();

    // Workflows: each file, the broken one with its error count.
    browser.go(&format!("{}/workflows", server.url));
    browser.wait_for("table.table tbody tr");
    let list = browser.text("table.table tbody");
    assert!(list.contains("greet") && list.contains("sleepy"), "{list}");
    assert!(list.contains("✗ 1 error(s)"), "{list}");
    browser.screenshot("workflows");

    // A workflow: its graph and a form for its parameters.
    browser.click("a[href='/workflows/greet']");
    browser.wait_for("svg.graph g[data-node='hello']");
    browser.wait_for("svg.graph g[data-node='log']");
    assert_eq!(browser.path(), "/workflows/greet");
    browser.type_into("#param-name", "Grace");
    browser.type_into("#param-times", "3");
    browser.screenshot("workflow");
    browser.mark();
    browser.press("Start run");
    browser.wait_until("location.pathname.startsWith('/runs/')");
    browser.node_is("hello", "succeeded");
    browser.node_is("log", "succeeded");
    assert!(
        browser.same_page(),
        "the dashboard changes pages without loading one"
    );
    let run_id = browser.path().trim_start_matches("/runs/").to_string();
    let run = server.get(&format!("/api/v1/runs/{run_id}")).json();
    assert_eq!(run["params"], json!({"name": "Grace", "times": 3}));

    // The node panel: output, attempts and logs of the chosen node.
    browser.click("svg.graph g[data-node='hello']");
    browser.wait_until("document.querySelector('.node-panel').innerText.includes('Grace')");
    browser.click("svg.graph g[data-node='log']");
    browser.wait_until("document.querySelectorAll('.node-panel .logs li').length === 3");
    let panel = browser.text(".node-panel");
    assert!(
        panel.contains("misbehave") && panel.contains("Attempts"),
        "{panel}"
    );
    browser.screenshot("run");

    // The timeline from the keyboard: arrows move, Enter opens.
    browser.keys(
        ".vlist[aria-label='Nodes and their timeline']",
        "\u{E015}\u{E015}\u{E007}", // Down, Down, Enter
    );
    browser.wait_until(
        "document.querySelector('#node-title').innerText.includes('log') \
         && document.querySelector('.vrow.active').innerText.includes('log')",
    );

    // A run that sleeps: it shows as running, is cancelled from its page,
    // and resumed; its nodes turn green as events come, without a reload.
    let sleepy = server.start_run("sleepy", json!({}));
    browser.go(&format!("{}/runs/{sleepy}", server.url));
    browser.node_is("nap", "running");
    browser.node_is("after", "pending");
    browser.mark();
    browser.press("Cancel run");
    browser.node_is("nap", "cancelled");
    browser.wait_until("document.querySelector('h1 .badge').innerText.includes('cancelled')");
    browser.press("Resume");
    browser.node_is("nap", "succeeded");
    browser.node_is("after", "succeeded");
    browser.wait_until("document.querySelector('h1 .badge').innerText.includes('succeeded')");
    assert!(
        browser.same_page(),
        "the page followed the run without reloading"
    );
    let detail = server.get(&format!("/api/v1/runs/{sleepy}")).json();
    assert_eq!(detail["resumes"], 1);

    // Keyboard: a node is reached and opened without a mouse.
    browser.keys("svg.graph g[data-node='after']", "\u{E007}"); // Enter
    browser.wait_until("document.querySelector('#node-title').innerText.includes('after')");

    // Retry from that node: a new run that reuses `nap`'s output.
    browser.press("Retry from this node");
    let retry = browser.new_run_page(&sleepy);
    browser.node_is("after", "succeeded");
    let detail = server.get(&format!("/api/v1/runs/{retry}")).json();
    assert_eq!(detail["retry_of"], sleepy.as_str());
    assert_eq!(detail["nodes"][0]["reused_from"], sleepy.as_str());
    // The timeline says `nap` kept its output rather than ran.
    browser.wait_until(
        "[...document.querySelectorAll('.vrow')].some(r => r.innerText.includes('nap') && r.innerText.includes('kept'))",
    );
    browser.screenshot("run-retried");

    // Runs: every run, filtered by status through the form.
    browser.click("nav a[href='/runs']");
    browser.wait_for("table.table tbody tr");
    browser.wait_until("document.querySelectorAll('table.table tbody tr').length === 3");
    browser.eval("document.getElementById('f-status').value = 'succeeded'");
    browser.press("Filter");
    // The filtered page is drawn anew (with a Clear link in its form):
    // the next filter must go into the new form, not the old one.
    browser.wait_until(
        "location.search === '?status=succeeded' && document.querySelector('form.filters a') !== null \
         && document.querySelectorAll('table.table tbody tr').length === 3",
    );
    browser.eval("document.getElementById('f-workflow').value = 'greet'");
    browser.press("Filter");
    browser.wait_until("document.querySelectorAll('table.table tbody tr').length === 1");
    browser.screenshot("runs");

    // The first page follows new runs as they start.
    browser.click("a[href='/runs']");
    browser.wait_until("document.querySelectorAll('table.table tbody tr').length === 3");
    browser.wait_until("document.getElementById('live').innerText.includes('live')");
    browser.mark();
    let newest = server.start_run("greet", json!({"times": 1}));
    browser.wait_for(&format!("a[href='/runs/{newest}']"));
    assert!(browser.same_page());

    // Retry failed nodes: a cancelled run's page starts a new run of what
    // did not succeed, which runs (and is cancelled in turn).
    let stopped = server.start_run("sleepy", json!({}));
    browser.go(&format!("{}/runs/{stopped}", server.url));
    browser.node_is("nap", "running");
    browser.press("Cancel run");
    browser.press("Retry failed nodes");
    let again = browser.new_run_page(&stopped);
    browser.node_is("nap", "running");
    assert_eq!(
        server.get(&format!("/api/v1/runs/{again}")).json()["retry_of"],
        stopped.as_str()
    );
    browser.press("Cancel run");
    browser.node_is("nap", "cancelled");
}

/// 10,000 nodes in 100 levels, each of 100 no-op nodes after one of the
/// level before.
fn wide_workflow(levels: usize, width: usize) -> String {
    let mut text = String::from("[workflow]\nid = \"wide\"\n[defaults]\nretries = 0\n");
    for level in 0..levels {
        for at in 0..width {
            text.push_str(&format!("[nodes.n{level}_{at}]\naction = \"echo\"\n"));
            if level > 0 {
                text.push_str(&format!("depends_on = [\"n{}_{at}\"]\n", level - 1));
            }
        }
    }
    text
}

#[test]
fn a_run_of_ten_thousand_nodes_and_many_runs_stay_usable() {
    let env = env();
    env.write("workflows/wide.toml", &wide_workflow(100, 100));
    env.write(
        "workflows/fan.toml",
        "[workflow]\nid = \"fan\"\n[nodes.each]\naction = \"echo\"\nmap = [1, 2, 3]\n",
    );
    env.run(&["run", "workflows/wide.toml", "--plugins", "plugins"])
        .success();
    let server = served(&env, &[]);
    let wide = server.get("/api/v1/runs?limit=1").json()["runs"][0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    // 54 more runs: more than one page of the runs list.
    for _ in 0..54 {
        server.start_run("greet", json!({"times": 2}));
    }
    let browser = Browser::start();

    let start = Instant::now();
    browser.go(&format!("{}/runs/{wide}", server.url));
    browser.wait_for(".collapsed .vrow");
    browser.wait_until("document.body.innerText.includes('10,000 of 10,000 nodes')");
    eprintln!(
        "dashboard: a 10,000-node run's page drawn in {:.0} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    // Only the rows in view are in the page.
    let rows = browser.eval("return document.querySelectorAll('.vrow').length");
    assert!(rows.as_u64().unwrap() < 200, "{rows} rows drawn");
    assert!(browser.text(".collapsed").contains("100 nodes"));
    browser.screenshot("run-10k");

    // A level opens the list of its nodes; a filter narrows them.
    browser.click(".collapsed .vrow");
    browser.wait_until("document.body.innerText.includes('100 of 10,000 nodes (level 0)')");
    browser.type_into("#n-find", "n0_9");
    browser.wait_until("document.body.innerText.includes('11 of 10,000 nodes')");
    browser.click(".vlist[aria-label='Nodes and their timeline'] .vrow");
    browser.wait_until("document.querySelector('#node-title').innerText.includes('n0_9')");

    // 55 runs: a page of 50, then the rest.
    browser.go(&format!("{}/runs", server.url));
    browser.wait_until("document.querySelectorAll('table.table tbody tr').length === 50");
    browser.click("a[rel='next']");
    browser.wait_until("document.querySelectorAll('table.table tbody tr').length === 5");
    assert!(browser.path().contains("cursor="));
    browser.click(".pager a");
    browser.wait_until("document.querySelectorAll('table.table tbody tr').length === 50");

    // A map node's panel lists its elements.
    let fan = server.start_run("fan", json!({}));
    browser.go(&format!("{}/runs/{fan}", server.url));
    browser.node_is("each", "succeeded");
    browser.click("svg.graph g[data-node='each']");
    browser.wait_until(
        "document.querySelector('.node-panel').innerText.includes('Elements (3)') \
         && document.querySelector('.node-panel').innerText.includes('each[2]')",
    );
}

#[test]
fn a_server_with_tokens_asks_the_browser_for_one() {
    let env = env();
    let token = token(&env);
    let server: Served = served(&env, &["--token-file", "tokens"]);
    // The page holds no data: it loads without a token, with a strict
    // content security policy.
    let page = server.get("/workflows");
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));
    let policy = page.header("content-security-policy").unwrap();
    assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"));
    assert_eq!(server.get("/ui/nothing.js").status, 404);

    let browser = Browser::start();
    browser.go(&format!("{}/workflows", server.url));
    browser.wait_for("dialog.token[open]");
    // A wrong token is refused and asked for again.
    browser.type_into("#token-input", "flow_wrong");
    browser.press("Use token");
    browser.wait_for("dialog.token[open]");
    assert!(
        browser
            .text("dialog.token")
            .contains("not one this server accepts")
    );
    browser.type_into("#token-input", &token);
    browser.press("Use token");
    browser.wait_for("table.table tbody tr");
    assert!(browser.text("table.table").contains("greet"));
    // The token is kept for the tab only, never in the page's address.
    assert!(!browser.path().contains(&token));
}
