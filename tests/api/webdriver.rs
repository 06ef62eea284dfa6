//! Just enough WebDriver (W3C, JSON over HTTP) to drive Debian's headless Chromium through
//! `chromedriver`: sessions, navigation, elements, keys, scripts and screenshots.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use stripe_reconciler::cli::HttpClient;

/// The key W3C WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A `chromedriver` process and one browser session in it; both end on drop.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: HttpClient,
    screenshots: PathBuf,
}

#[derive(Clone)]
pub struct Element(String);

impl Browser {
    /// Starts `chromedriver` and a headless Chromium of `width` × `height`. Fails (never
    /// skips) when either is missing: `scripts/test.sh` installs them.
    pub async fn start(width: u32, height: u32) -> Self {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver (Debian's chromium-driver) must be installed: run scripts/test.sh",
            );
        let mut browser = Self {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            screenshots: Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots"),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(status) = browser.call(Method::GET, "/status", None).await
                && status["ready"] == true
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--hide-scrollbars",
                         "--force-color-profile=srgb", "--lang=en-US",
                         format!("--window-size={width},{height}")],
            },
        }}});
        let session = browser
            .call(Method::POST, "/session", Some(capabilities))
            .await
            .expect("a Chromium session");
        browser.session = session["sessionId"].as_str().unwrap().to_owned();
        std::fs::create_dir_all(&browser.screenshots).unwrap();
        browser
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let bytes = body.map_or(Bytes::new(), |b| Bytes::from(b.to_string()));
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(bytes))
            .unwrap();
        let response = self.client.request(req).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let value: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{status}: {}", value["value"]));
        }
        Ok(value["value"].clone())
    }

    async fn session_call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.call(method, &path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
    }

    pub async fn goto(&self, url: &str) {
        self.session_call(Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn url(&self) -> String {
        let url = self.session_call(Method::GET, "/url", None).await;
        url.as_str().unwrap().to_owned()
    }

    /// Waits up to 5 s for the address to contain `part` (a navigation finished).
    pub async fn wait_for_url(&self, part: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.url().await.contains(part) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never got to {part}: at {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first element matching the CSS `selector`, waiting up to 5 s for it.
    pub async fn find(&self, selector: &str) -> Element {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let path = format!("/session/{}/element", self.session);
            let found = self
                .call(
                    Method::POST,
                    &path,
                    Some(json!({"using": "css selector", "value": selector})),
                )
                .await;
            let found = found.and_then(|element| match element[ELEMENT].as_str() {
                Some(id) => Ok(id.to_owned()),
                None => Err(format!("not an element: {element}")),
            });
            match found {
                Ok(id) => return Element(id),
                Err(error) if tokio::time::Instant::now() >= deadline => {
                    let page = self.text("body").await.unwrap_or_default();
                    panic!("no element {selector}: {error}\npage:\n{page}");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub async fn click(&self, selector: &str) {
        let element = self.find(selector).await;
        self.session_call(
            Method::POST,
            &format!("/element/{}/click", element.0),
            Some(json!({})),
        )
        .await;
    }

    pub async fn type_into(&self, selector: &str, text: &str) {
        let element = self.find(selector).await;
        self.session_call(
            Method::POST,
            &format!("/element/{}/value", element.0),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// The rendered text of the first element matching `selector`, if any.
    pub async fn text(&self, selector: &str) -> Option<String> {
        let path = format!("/session/{}/element", self.session);
        let element = self
            .call(
                Method::POST,
                &path,
                Some(json!({"using": "css selector", "value": selector})),
            )
            .await
            .ok()?;
        let id = element[ELEMENT].as_str()?.to_owned();
        // A page that is being replaced makes the element stale: no text yet.
        let path = format!("/session/{}/element/{id}/text", self.session);
        let text = self.call(Method::GET, &path, None).await.ok()?;
        text.as_str().map(str::to_owned)
    }

    /// Waits up to 5 s for `selector`'s text to contain `expected`; returns the text.
    pub async fn wait_for_text(&self, selector: &str, expected: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let text = self.text(selector).await.unwrap_or_default();
            if text.contains(expected) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{selector} never showed {expected:?}; it shows:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn script(&self, script: &str) -> Value {
        self.session_call(
            Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Saves a PNG of the whole page as `target/screenshots/{name}.png` (the window grows to
    /// the page's height first, then goes back).
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let rect = self.session_call(Method::GET, "/window/rect", None).await;
        let height = self
            .script("return Math.max(document.documentElement.scrollHeight, window.innerHeight);")
            .await
            .as_i64()
            .unwrap_or(900);
        let chrome = rect["height"].as_i64().unwrap_or(900)
            - self
                .script("return window.innerHeight;")
                .await
                .as_i64()
                .unwrap_or(900);
        self.resize(rect["width"].as_i64().unwrap(), height + chrome)
            .await;
        let png = self.session_call(Method::GET, "/screenshot", None).await;
        self.resize(
            rect["width"].as_i64().unwrap(),
            rect["height"].as_i64().unwrap(),
        )
        .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let path = self.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    async fn resize(&self, width: i64, height: i64) {
        self.session_call(
            Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }
}

impl Drop for Browser {
    /// Ends the session (which closes Chromium), then chromedriver; also when a test
    /// panicked, so no browser outlives its test. A plain blocking request: drop cannot wait
    /// on the runtime.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let address = self.base.trim_start_matches("http://");
        if let Ok(mut stream) = std::net::TcpStream::connect(address) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                stream,
                "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n",
                self.session
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Debian's Chromium binary (`/usr/lib/chromium/chromium`; `/usr/bin/chromium` is a shell
/// wrapper).
fn chromium() -> String {
    ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("Debian's chromium must be installed: run scripts/test.sh")
        .to_owned()
}
