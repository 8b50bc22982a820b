//! Reports: a golden Markdown file, structural checks of the HTML (well-formed, one chart per
//! metric, nothing external, user text escaped), JSON round trips and reports from history.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cased_core::history::{AlertRecord, HistoryStore, SqliteHistory};
use cased_core::report::{self, Baseline, Format, ReportContext, SeriesPoint};
use cased_core::{
    CheckCategory, CheckOutcome, DeploymentEvent, DeploymentStatus, EndReason, Finding, FnCheck,
    Monitor, MonitorConfig, Report, RollbackHook, ScheduleConfig, Severity, StatusUpdate, Verdict,
};
use quick_xml::events::Event;

/// 2024-01-01T10:00:00Z.
const STARTED: u64 = 1_704_103_200_000;
const PIPELINE: &str = "https://ci.example.com/acme/shop/runs/1?attempt=1&x=2";

fn event() -> DeploymentEvent {
    DeploymentEvent::builder("Deploy v2 <script>alert(1)</script> | pipes")
        .repository("acme/shop")
        .environment("prod")
        .commit_sha("0123456789abcdef0123456789abcdef01234567")
        .git_ref("refs/heads/main")
        .external_url(PIPELINE)
        .correlation_id("deploy-42")
        .status(DeploymentStatus::Running)
        .build()
        .unwrap()
}

/// A real session under the paused clock: `web` passes twice then fails (HTTP 503), `db`
/// always passes; the deployment completes at 15 s; the rollback hook fails. Then the
/// non-deterministic ids are fixed and two findings added (sessions do not raise findings yet).
async fn fixture() -> (Report, ReportContext) {
    let n = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&n);
    let web = FnCheck::new("web", move || {
        let k = seen.fetch_add(1, Ordering::SeqCst);
        async move {
            let (outcome, ms) = match k {
                0 => (CheckOutcome::pass("HTTP 200"), 12),
                1 => (CheckOutcome::pass("HTTP 200"), 15),
                _ => (CheckOutcome::fail("HTTP 503 | <b>down</b>"), 30),
            };
            outcome.with_latency(Duration::from_millis(ms))
        }
    })
    .category(CheckCategory::Endpoint);
    let db = FnCheck::new("db", || async {
        CheckOutcome::pass("SELECT 1").with_latency(Duration::from_micros(3400))
    })
    .category(CheckCategory::Database);
    let config = MonitorConfig {
        schedule: ScheduleConfig {
            intervals: vec![Duration::from_secs(10)],
            ..Default::default()
        },
        ..Default::default()
    };
    let monitor = Monitor::builder(config)
        .check(web)
        .check(db)
        .on_rollback(RollbackHook::new(|_| async {
            Err("deploy API answered 502".to_owned())
        }))
        .build()
        .unwrap();
    let session = monitor.start(event()).unwrap();
    for v in [180.0, 220.0, 410.0] {
        session.push("p99_ms", v).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    session.complete();
    let mut report = session.wait().await;
    assert_eq!(
        (report.verdict, report.ended_by, report.ticks.len()),
        (Verdict::Unhealthy, EndReason::Unhealthy, 3)
    );
    report.session_id = "deploy-42-0000beef".into();
    report.started_at_unix_ms = STARTED;
    report.findings = vec![
        Finding::new(
            "web.latency_ms",
            "baseline",
            Severity::Warning,
            "web latency 15 ms vs 10 ms before (+50%)",
        ),
        Finding::new(
            "error_rate",
            "error_rate",
            Severity::Critical,
            "errors 12/200 vs 1/400 before <script>x</script>",
        ),
    ];
    let context = ReportContext {
        baselines: [
            (
                "web.latency_ms".to_owned(),
                Baseline {
                    low: 8.0,
                    high: 14.0,
                    label: "last 5 healthy deployments".into(),
                },
            ),
            (
                "error_rate".to_owned(),
                Baseline {
                    low: 0.0,
                    high: 0.01,
                    label: "the hour before".into(),
                },
            ),
        ]
        .into(),
        series: [(
            "error_rate".to_owned(),
            [
                (-60_000.0, 0.002),
                (-30_000.0, 0.004),
                (0.0, 0.003),
                (10_000.0, 0.02),
                (20_000.0, 0.06),
            ]
            .into_iter()
            .map(|(elapsed_ms, value)| SeriesPoint { elapsed_ms, value })
            .collect(),
        )]
        .into(),
        finding_ticks: vec![Some(2), Some(3)],
        alerts: vec![AlertRecord::new(
            "alert-1",
            "acme/shop:prod:error_rate",
            Severity::Critical,
            "Errors up after Deploy v2",
            STARTED + 20_000,
        )],
    };
    (report, context)
}

fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("CASED_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (set CASED_UPDATE_GOLDEN=1 to write it)",
            path.display()
        )
    });
    assert!(
        actual == expected,
        "{name} differs from the golden file:\n{actual}"
    );
}

#[tokio::test(start_paused = true)]
async fn markdown_matches_the_golden_file() {
    let (report, context) = fixture().await;
    let md = report::to_markdown(&report, &context);
    golden("report.md", &md);
    assert!(
        md.starts_with("## Deployment unhealthy: acme/shop to prod\n\n**Verdict: unhealthy.**")
    );
    assert!(
        !md.contains("<script>") && !md.contains("<b>"),
        "raw HTML in the Markdown"
    );
    let findings = md.find("### Findings").unwrap();
    assert!(
        findings < md.find("### Ticks").unwrap(),
        "findings come before the ticks"
    );
}

#[tokio::test(start_paused = true)]
async fn markdown_cells_escape_links_images_and_emphasis() {
    let (mut report, mut context) = fixture().await;
    report.event = DeploymentEvent::builder(
        "[Approve rollback](https://evil.example) ![x](https://evil.example/p.png) **now** _em_ ~~s~~",
    )
    .environment("[prod](https://evil.example)")
    .build()
    .unwrap();
    report.findings[0].message = "see [the runbook](https://evil.example) *now*".into();
    context.alerts[0].title = "![pixel](https://evil.example/t.gif)".into();
    let md = report::to_markdown(&report, &context);
    for raw in [
        "[Approve rollback](",
        "![x](",
        "**now**",
        "_em_",
        "~~s~~",
        "[prod](",
        "[the runbook](",
        "*now*",
        "![pixel](",
    ] {
        assert!(!md.contains(raw), "unescaped {raw:?} in:\n{md}");
    }
    assert!(
        md.contains(
            "| Deployment | \\[Approve rollback\\](https://evil.example) !\\[x\\](https://evil.example/p.png) \\*\\*now\\*\\* \\_em\\_ \\~\\~s\\~\\~ |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| Environment | \\[prod\\](https://evil.example) |"),
        "{md}"
    );
}

/// Many checks: every tick-table cell is the check of its column (checks are found by name
/// through an index, so the table is linear in the number of results).
#[tokio::test(start_paused = true)]
async fn tick_tables_put_each_result_in_its_column() {
    let (mut report, _) = fixture().await;
    let template = report.ticks[0].checks[0].clone();
    for t in &mut report.ticks {
        t.checks = (0..2_000)
            .rev()
            .map(|i| {
                let mut c = template.clone();
                c.name = format!("c{i}").into();
                c.latency = Duration::from_millis(i);
                c
            })
            .collect();
    }
    // The second tick lists the checks in the other order: columns follow the first.
    report.ticks[1].checks.reverse();
    let md = report::to_markdown(&report, &ReportContext::default());
    let header = md.lines().find(|l| l.starts_with("| Tick |")).unwrap();
    let columns: Vec<&str> = header.split(" | ").skip(4).collect();
    assert_eq!(columns.len(), 2_000);
    assert_eq!((columns[0], columns[1999]), ("c1999", "c0 |"));
    let row = md.lines().find(|l| l.starts_with("| 2 | 10s |")).unwrap();
    let cells: Vec<&str> = row.split(" | ").skip(4).collect();
    assert_eq!((cells[0], cells[1999]), ("pass, 2.00 s", "pass, 0.0 ms |"));
    let html = report::to_html(&report, &ReportContext::default());
    assert!(html.contains("<th>c1999</th>"));
}

#[tokio::test(start_paused = true)]
async fn markdown_without_findings_or_checks_says_so() {
    let (mut report, _) = fixture().await;
    report.findings.clear();
    report.ticks.clear();
    report.metrics.clear();
    let md = report::to_markdown(&report, &ReportContext::default());
    assert!(md.contains("### Findings\n\nNo findings.\n"), "{md}");
    assert!(!md.contains("### Ticks") && !md.contains("### Alerts"));
}

/// Element names in document order and the `data-metric` of every `<svg>`, checking on the
/// way that the document is well-formed (every element closed in order).
fn parse(html: &str) -> (Vec<String>, Vec<String>) {
    let mut reader = quick_xml::Reader::from_str(html);
    reader.config_mut().check_end_names = true;
    let (mut names, mut svgs, mut stack) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Start(e)) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                if name == "svg" {
                    let attr = e
                        .try_get_attribute("data-metric")
                        .unwrap()
                        .expect("every chart names its metric");
                    svgs.push(String::from_utf8(attr.value.to_vec()).unwrap());
                }
                stack.push(name.clone());
                names.push(name);
            }
            Ok(Event::Empty(e)) => {
                names.push(String::from_utf8(e.name().as_ref().to_vec()).unwrap())
            }
            Ok(Event::End(_)) => {
                stack.pop().expect("an end tag without a start");
            }
            Ok(_) => {}
            Err(e) => panic!("not well-formed at byte {}: {e}", reader.buffer_position()),
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    (names, svgs)
}

#[tokio::test(start_paused = true)]
async fn html_is_well_formed_self_contained_and_charts_every_metric() {
    let (report, context) = fixture().await;
    let html = report::to_html(&report, &context);
    let (names, svgs) = parse(&html);
    assert_eq!(
        svgs,
        ["web.latency_ms", "db.latency_ms", "p99_ms", "error_rate"],
        "one chart per metric"
    );
    for required in ["html", "head", "title", "style", "body", "table", "figure"] {
        assert!(names.iter().any(|n| n == required), "no <{required}>");
    }
    for forbidden in ["script", "link", "img", "iframe", "a", "object", "embed"] {
        assert!(
            !names.iter().any(|n| n == forbidden),
            "a <{forbidden}> element"
        );
    }
    // Nothing external: the only URL is the pipeline's, shown escaped as text.
    let escaped_url = PIPELINE.replace('&', "&amp;");
    assert_eq!(html.matches(&escaped_url).count(), 1);
    let rest = html.replace(&escaped_url, "");
    for needle in [
        "http://", "https://", "href=", "src=", "url(", "@import", "xlink",
    ] {
        assert!(!rest.contains(needle), "found {needle:?} in the HTML");
    }
    // User text is escaped.
    assert!(!html.contains("<script>") && !html.contains("<b>down"));
    assert!(html.contains("Deploy v2 &lt;script&gt;alert(1)&lt;/script&gt; | pipes"));
    assert!(html.contains("HTTP 503 | &lt;b&gt;down&lt;/b&gt;"));
    assert!(html.contains("before &lt;script&gt;x&lt;/script&gt;"));
}

/// The SVG of one metric's chart.
fn chart<'a>(html: &'a str, metric: &str) -> &'a str {
    let start = html
        .find(&format!("<svg class=\"chart\" data-metric=\"{metric}\""))
        .expect("chart present");
    let end = start + html[start..].find("</svg>").unwrap();
    &html[start..end]
}

#[tokio::test(start_paused = true)]
async fn charts_show_baselines_deploy_and_cooldown_starts_and_findings() {
    let (report, context) = fixture().await;
    let html = report::to_html(&report, &context);
    let web = chart(&html, "web.latency_ms");
    assert_eq!(web.matches("<rect class=\"baseline\"").count(), 1);
    assert_eq!(
        web.matches("<circle class=\"sample").count(),
        3,
        "one sample per tick"
    );
    assert_eq!(
        web.matches("<g class=\"finding warning\"").count(),
        1,
        "the latency finding at tick 2"
    );
    assert!(web.contains("finding 1: web latency 15 ms"));
    // Cool-down started at 15 s: the tick at 20 s is after it.
    assert_eq!(web.matches("class=\"cooldown-start\"").count(), 1);
    assert_eq!(web.matches("class=\"sample cooldown\"").count(), 1);
    assert_eq!(web.matches("class=\"sample after\"").count(), 2);
    assert!(
        !web.contains("deploy-start"),
        "no samples before the deploy"
    );

    let errors = chart(&html, "error_rate");
    assert_eq!(
        errors.matches("class=\"sample before\"").count(),
        2,
        "two samples before the deploy"
    );
    assert_eq!(errors.matches("class=\"deploy-start\"").count(), 1);
    assert_eq!(errors.matches("<g class=\"finding critical\"").count(), 1);
    assert!(errors.contains("<rect class=\"baseline\""));

    let db = chart(&html, "db.latency_ms");
    assert!(!db.contains("baseline") && !db.contains("finding"));
    let pushed = chart(&html, "p99_ms");
    assert_eq!(
        pushed.matches("<line class=\"level\"").count(),
        2,
        "mean and last of the pushed samples"
    );

    // Without the finding ticks the findings are listed but not placed.
    let untimed = ReportContext {
        finding_ticks: Vec::new(),
        ..context
    };
    let html = report::to_html(&report, &untimed);
    assert!(!html.contains("<g class=\"finding"));
    assert!(html.contains("1 finding(s) on this metric without a known time are not marked."));
}

#[tokio::test(start_paused = true)]
async fn json_round_trips_and_formats_parse() {
    let (report, context) = fixture().await;
    let json = report::render(&report, &context, Format::Json);
    assert_eq!(Report::from_json(&json).unwrap(), report);
    assert_eq!("md".parse::<Format>().unwrap(), Format::Markdown);
    assert_eq!("HTML".parse::<Format>().unwrap(), Format::Html);
    assert_eq!(
        "pdf".parse::<Format>().unwrap_err().field_errors()[0].field,
        "format"
    );
}

#[tokio::test(start_paused = true)]
async fn reports_from_history_carry_finding_ticks_and_alerts() {
    let (report, context) = fixture().await;
    let store = SqliteHistory::in_memory().unwrap();
    let id: &str = &report.session_id;
    store
        .begin_session(id, &report.event, report.started_at_unix_ms)
        .await
        .unwrap();
    let info = Arc::new(cased_core::DeploymentInfo {
        deployment_request: report.event.deployment_request().into(),
        repository: Some("acme/shop".into()),
        commit_sha: None,
        environment: Some("prod".into()),
        correlation_id: "deploy-42".into(),
    });
    for t in &report.ticks {
        let findings: Vec<Finding> = report
            .findings
            .iter()
            .zip(&context.finding_ticks)
            .filter(|(_, k)| **k == Some(t.tick))
            .map(|(f, _)| f.clone())
            .collect();
        let update = StatusUpdate {
            session_id: report.session_id.clone(),
            deployment: Arc::clone(&info),
            phase: t.phase,
            tick: t.tick,
            elapsed: t.elapsed,
            checks: t.checks.clone(),
            findings,
            verdict: t.verdict,
            reason: String::new(),
            next_tick_in: None,
            source_errors: Vec::new(),
        };
        store.record_update(&update).await.unwrap();
    }
    store.record_report(&report).await.unwrap();
    store.record_alert(id, &context.alerts[0]).await.unwrap();
    let (loaded, ctx) = report::load(&store, id).await.unwrap().unwrap();
    assert_eq!(loaded, report);
    assert_eq!(ctx.finding_ticks, [Some(2), Some(3)]);
    assert_eq!(ctx.alerts, context.alerts);
    let expected = ReportContext {
        baselines: Default::default(),
        series: Default::default(),
        ..context
    };
    assert_eq!(
        report::to_markdown(&loaded, &ctx),
        report::to_markdown(&report, &expected)
    );
    assert!(report::load(&store, "unknown").await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn the_charts_section_alone_is_the_reports_own_charts() {
    let (report, context) = fixture().await;
    let charts = report::charts_html(&report, &context);
    let (names, svgs) = parse(&charts);
    assert_eq!(
        svgs,
        ["web.latency_ms", "db.latency_ms", "p99_ms", "error_rate"]
    );
    assert!(names.iter().all(|n| n != "script"), "{names:?}");
    // The very section of the full report, after its stylesheet.
    let section = &charts[charts.find("<section id=\"charts\">").unwrap()..];
    assert!(report::to_html(&report, &context).contains(section));
    assert!(charts.starts_with("<style>") && charts.contains("svg .baseline"));
}
