//! The client address behind trusted proxies, as each kind of proxy writes
//! it: a client must not pick its own address (to walk around its address
//! limit) nor someone else's (to lock them out).

use crate::both_backends;
use crate::helpers::{spawn_on_with, Backend, TestApp, TestClient};

const PASSWORD: &str = "correct horse battery";
/// Failures allowed per address before the address is throttled.
const ADDRESS_LIMIT: i64 = 2;

/// A server behind a trusted proxy at 127.0.0.1 reading `header`.
async fn app_behind_proxy(backend: Backend, header: &'static str) -> Option<TestApp> {
    spawn_on_with(backend, move |s| {
        s.throttle.account_max_failures = 1000;
        s.throttle.address_max_failures = ADDRESS_LIMIT;
        s.server.trusted_proxies = vec!["127.0.0.1".into()];
        s.server.forwarded_header = header.into();
    })
    .await
}

/// A password login carrying `lines` as separate header lines, in order.
async fn login_with_lines(
    app: &TestApp,
    client: &TestClient,
    email: &str,
    password: &str,
    header: &str,
    lines: &[String],
) -> reqwest::StatusCode {
    let mut req = app.client.post(app.url("/oauth/token")).form(&[
        ("grant_type", "password"),
        ("username", email),
        ("password", password),
        ("client_id", client.id.as_str()),
    ]);
    for line in lines {
        // `header` appends: each call is one more line of the same header.
        req = req.header(header, line.as_str());
    }
    req.send().await.expect("request").status()
}

/// One proxy shape: the header lines that reach latchkey when the client
/// sent `forged` and the proxy recorded the client as `real`.
struct Shape {
    name: &'static str,
    header: &'static str,
    lines: fn(forged: &str, real: &str, port: u16) -> Vec<String>,
    /// The real client's address as the proxy writes it (with its port
    /// filled in by `lines`).
    real: &'static str,
}

const XFF_SHAPES: &[Shape] = &[
    Shape {
        // nginx `$proxy_add_x_forwarded_for`: one line, appended.
        name: "one line",
        header: "x-forwarded-for",
        lines: |forged, real, _| vec![format!("{forged}, {real}")],
        real: "198.51.100.1",
    },
    Shape {
        // HAProxy `option forwardfor`: its own line after the client's.
        name: "a separate line",
        header: "x-forwarded-for",
        lines: |forged, real, _| vec![forged.to_owned(), real.to_owned()],
        real: "198.51.100.2",
    },
    Shape {
        // A proxy that records the client's port.
        name: "ip:port",
        header: "x-forwarded-for",
        lines: |forged, real, port| vec![format!("{forged}, {real}:{port}")],
        real: "198.51.100.3",
    },
    Shape {
        name: "[v6]:port on its own line",
        header: "x-forwarded-for",
        lines: |forged, real, port| vec![forged.to_owned(), format!("[{real}]:{port}")],
        real: "2001:db8:5::1",
    },
    Shape {
        // Two proxies in a row, both trusted, the inner one on its own line.
        name: "a chain of trusted proxies",
        header: "x-forwarded-for",
        lines: |forged, real, _| vec![format!("{forged}, {real}"), "127.0.0.1".to_owned()],
        real: "198.51.100.4",
    },
];

const FORWARDED_SHAPES: &[Shape] = &[
    Shape {
        name: "Forwarded, one line",
        header: "forwarded",
        lines: |forged, real, _| vec![format!("for={forged}, for={real};proto=https")],
        real: "198.51.100.5",
    },
    Shape {
        name: "Forwarded, a separate quoted [v6]:port line",
        header: "forwarded",
        lines: |forged, real, port| {
            vec![
                format!("for=\"{forged}\""),
                format!("for=\"[{real}]:{port}\";by=127.0.0.1"),
            ]
        },
        real: "2001:db8:6::1",
    },
];

/// For each shape: the client fails more than its address limit, each time
/// forging a different address to the left of what the proxy recorded (one
/// of them a victim's); it is throttled all the same, and the victim it
/// named is not.
async fn forged_addresses_do_not_move_the_limit(backend: Backend, header: &'static str) {
    let Some(app) = app_behind_proxy(backend, header).await else {
        return;
    };
    let client = app.public_client().await;
    let shapes = if header == "forwarded" {
        FORWARDED_SHAPES
    } else {
        XFF_SHAPES
    };
    let victim = "203.0.113.200";
    for (s, shape) in shapes.iter().enumerate() {
        let email = format!("owner-{s}@example.com");
        assert_eq!(app.signup(&email, PASSWORD).await.status(), 201);
        for attempt in 0..ADDRESS_LIMIT {
            let forged = if attempt == 0 {
                victim.to_owned()
            } else {
                format!("192.0.2.{}", 10 * s as i64 + attempt)
            };
            let lines = (shape.lines)(&forged, shape.real, 40000 + attempt as u16);
            let status = login_with_lines(
                &app,
                &client,
                &format!("nobody-{s}-{attempt}@example.com"),
                "wrong password!",
                shape.header,
                &lines,
            )
            .await;
            assert_eq!(status, 400, "{}: {lines:?}", shape.name);
        }
        // Yet another forged address and another source port: still the
        // same client, now over its limit, so even the right password is 429.
        let lines = (shape.lines)("192.0.2.250", shape.real, 50000);
        let status = login_with_lines(&app, &client, &email, PASSWORD, shape.header, &lines).await;
        assert_eq!(status, 429, "{}: {lines:?}", shape.name);
    }
    // The victim whose address was forged in every shape logs in freely.
    let lines = (shapes[0].lines)("192.0.2.251", victim, 443);
    let status = login_with_lines(
        &app,
        &client,
        "owner-0@example.com",
        PASSWORD,
        shapes[0].header,
        &lines,
    )
    .await;
    assert_eq!(status, 200, "the victim was locked out");
}

async fn x_forwarded_for_shapes(backend: Backend) {
    forged_addresses_do_not_move_the_limit(backend, "x-forwarded-for").await;
}
both_backends!(x_forwarded_for_shapes);

async fn forwarded_shapes(backend: Backend) {
    forged_addresses_do_not_move_the_limit(backend, "forwarded").await;
}
both_backends!(forwarded_shapes);

/// An entry the proxy wrote that is not an address (`unknown`) is the client
/// as it stands: the walk never skips it to reach what the client wrote.
async fn an_unparsable_entry_is_the_client_not_skipped(backend: Backend) {
    let Some(app) = app_behind_proxy(backend, "x-forwarded-for").await else {
        return;
    };
    let client = app.public_client().await;
    assert_eq!(app.signup("u@example.com", PASSWORD).await.status(), 201);
    for i in 0..ADDRESS_LIMIT {
        let lines = vec![format!("192.0.2.{i}, unknown")];
        let status = login_with_lines(
            &app,
            &client,
            &format!("nobody-{i}@example.com"),
            "wrong password!",
            "x-forwarded-for",
            &lines,
        )
        .await;
        assert_eq!(status, 400);
    }
    let lines = vec!["192.0.2.99, unknown".to_owned()];
    let status = login_with_lines(
        &app,
        &client,
        "u@example.com",
        PASSWORD,
        "x-forwarded-for",
        &lines,
    )
    .await;
    assert_eq!(status, 429);
}
both_backends!(an_unparsable_entry_is_the_client_not_skipped);
