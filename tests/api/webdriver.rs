//! Debian's headless Chromium driven through `chromedriver` with `fantoccini` (a WebDriver
//! client): the few steps the console's browser test takes, each waiting for the page as a
//! person would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// How long a step waits for the page to show what it looks for.
const PATIENCE: Duration = Duration::from_secs(5);
/// How often it looks meanwhile.
const EVERY: Duration = Duration::from_millis(100);

/// A `chromedriver` process and one browser session in it; both end on drop.
pub struct Browser {
    driver: Child,
    address: String,
    client: Client,
    session: String,
    screenshots: PathBuf,
}

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
        let address = format!("127.0.0.1:{port}");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--hide-scrollbars",
                         "--force-color-profile=srgb", "--lang=en-US",
                         format!("--window-size={width},{height}")],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        // chromedriver takes a moment to listen.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let client = loop {
            match builder.connect(&format!("http://{address}")).await {
                Ok(client) => break client,
                Err(error) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "no Chromium session: {error}"
                ),
            }
            tokio::time::sleep(EVERY).await;
        };
        let session = client
            .session_id()
            .await
            .unwrap()
            .expect("the session has an id");
        let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&screenshots).unwrap();
        Self {
            driver,
            address,
            client,
            session,
            screenshots,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("WebDriver goto {url}: {e}"));
    }

    pub async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// Waits up to 5 s for the address to contain `part` (a navigation finished).
    pub async fn wait_for_url(&self, part: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !self.url().await.contains(part) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never got to {part}: at {}",
                self.url().await
            );
            tokio::time::sleep(EVERY).await;
        }
    }

    /// The first element matching the CSS `selector`, waiting up to 5 s for it.
    pub async fn find(&self, selector: &str) -> Element {
        let found = self
            .client
            .wait()
            .at_most(PATIENCE)
            .every(EVERY)
            .for_element(Locator::Css(selector))
            .await;
        match found {
            Ok(element) => element,
            Err(error) => {
                let page = self.text("body").await.unwrap_or_default();
                panic!("no element {selector}: {error}\npage:\n{page}");
            }
        }
    }

    pub async fn click(&self, selector: &str) {
        let element = self.find(selector).await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("WebDriver click {selector}: {e}"));
    }

    pub async fn type_into(&self, selector: &str, text: &str) {
        let element = self.find(selector).await;
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("WebDriver keys into {selector}: {e}"));
    }

    /// The rendered text of the first element matching `selector`, if any.
    pub async fn text(&self, selector: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(selector)).await.ok()?;
        // A page that is being replaced makes the element stale: no text yet.
        element.text().await.ok()
    }

    /// Waits up to 5 s for `selector`'s text to contain `expected`; returns the text.
    pub async fn wait_for_text(&self, selector: &str, expected: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let text = self.text(selector).await.unwrap_or_default();
            if text.contains(expected) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{selector} never showed {expected:?}; it shows:\n{text}"
            );
            tokio::time::sleep(EVERY).await;
        }
    }

    pub async fn script(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("WebDriver script: {e}"))
    }

    /// Saves a PNG of the whole page as `target/screenshots/{name}.png` (the window grows to
    /// the page's height first, then goes back).
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let (_, _, width, window_height) = self.client.get_window_rect().await.unwrap();
        let height = self
            .script("return Math.max(document.documentElement.scrollHeight, window.innerHeight);")
            .await
            .as_u64()
            .unwrap_or(900);
        let inner = self
            .script("return window.innerHeight;")
            .await
            .as_u64()
            .unwrap_or(900);
        let chrome = window_height.saturating_sub(inner);
        self.resize(width, height + chrome).await;
        let png = self.client.screenshot().await.unwrap();
        self.resize(width, window_height).await;
        let path = self.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    async fn resize(&self, width: u64, height: u64) {
        let size = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        self.client
            .set_window_size(size(width), size(height))
            .await
            .unwrap();
    }
}

impl Drop for Browser {
    /// Ends the session (which closes Chromium), then chromedriver; also when a test
    /// panicked, so no browser outlives its test. A plain blocking request: drop cannot wait
    /// on the runtime (fantoccini's own close is async).
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let address = &self.address;
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
