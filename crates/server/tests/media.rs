//! The media store over HTTP on loopback: upload, metadata, content,
//! limits and content types, scoping to the service, and a restart.

mod support;

use serde_json::Value;
use server::media::{MEDIA_BYTES_MAX, MEDIA_DIR_NAME};
use support::{assert_error, TestServer};

fn media_path(s: &TestServer) -> String {
    format!("/v1/Services/{}/Media", s.service)
}

/// The metadata files in the store (one per item), recursively.
fn metadata_files(s: &TestServer) -> usize {
    fn walk(dir: &std::path::Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| {
                let p = e.path();
                if p.is_dir() {
                    walk(&p)
                } else {
                    usize::from(p.extension().is_some_and(|x| x == "json"))
                }
            })
            .sum()
    }
    walk(&s.data_dir().join(MEDIA_DIR_NAME))
}

#[test]
fn an_upload_is_served_back_with_its_type_and_survives_a_restart() {
    let s = TestServer::start();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let r = s.post_bytes(
        &format!("{}?Filename=cat.jpg", media_path(&s)),
        "image/jpeg",
        &bytes,
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let sid = r.body["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("ME") && sid.len() == 34, "{sid}");
    assert_eq!(r.body["service_sid"], s.service);
    assert_eq!(r.body["size"], 70_000);
    assert_eq!(r.body["content_type"], "image/jpeg");
    assert_eq!(r.body["filename"], "cat.jpg");
    assert_eq!(r.body["category"], "media");
    let url = format!("{}{}/{sid}", s.base, media_path(&s));
    assert_eq!(r.body["url"], url);
    assert_eq!(r.body["links"]["content"], format!("{url}/Content"));

    // The same upload again is the same item.
    let again = s.post_bytes(
        &format!("{}?Filename=cat.jpg", media_path(&s)),
        "image/jpeg",
        &bytes,
    );
    assert_eq!(again.status, 201);
    assert_eq!(again.body["sid"], sid);
    assert_eq!(metadata_files(&s), 1);

    let fetched = s.get(&format!("{}/{sid}", media_path(&s)));
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, r.body);
    let (status, content_type, body) = s.get_bytes(&format!("{}/{sid}/Content", media_path(&s)));
    assert_eq!((status, content_type.as_str()), (200, "image/jpeg"));
    assert_eq!(body, bytes);

    let dir = s.stop().expect("the test server owns its directory");
    let s = TestServer::start_in(dir.path(), false);
    let (status, _, body) = s.get_bytes(&format!("{}/{sid}/Content", media_path(&s)));
    assert_eq!(status, 200);
    assert_eq!(body, bytes, "the bytes survive a restart");
    assert_eq!(
        s.get(&format!("{}/{sid}", media_path(&s))).body["filename"],
        "cat.jpg"
    );
    drop(s);
    drop(dir);
}

#[test]
fn oversized_empty_and_refused_uploads_write_nothing() {
    let s = TestServer::start();
    let path = media_path(&s);
    let big = vec![7u8; MEDIA_BYTES_MAX + 1];
    let r = s.post_bytes(&path, "image/png", &big);
    assert_eq!(r.status, 413, "{:?}", r.body);
    assert_eq!(r.body["code"], 20001);
    assert_error(&s.post_bytes(&path, "image/png", b""), 400, 20001);
    assert_error(&s.post_bytes(&path, "text/html", b"<script>"), 400, 20001);
    assert_error(&s.post_bytes(&path, "image/svg+xml", b"<svg/>"), 400, 20001);
    assert_error(
        &s.post_bytes(&format!("{path}?Filename=a%2Fb.png"), "image/png", b"x"),
        400,
        20001,
    );
    assert_error(
        &s.post_bytes(&format!("{path}?Author=alice"), "image/png", b"x"),
        400,
        20001,
    );
    assert_eq!(metadata_files(&s), 0, "nothing was stored");
    // Exactly at the limit is accepted.
    let max = vec![7u8; MEDIA_BYTES_MAX];
    let r = s.post_bytes(&path, "application/pdf", &max);
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["size"], MEDIA_BYTES_MAX);
}

#[test]
fn media_is_scoped_to_its_service() {
    let s = TestServer::start();
    let other = s.post("/v1/Services", &[("FriendlyName", "other")]);
    let other = other.body["sid"].as_str().unwrap().to_owned();
    let r = s.post_bytes(
        &format!("/v1/Services/{other}/Media"),
        "text/plain",
        b"theirs",
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let sid = r.body["sid"].as_str().unwrap();
    assert_error(&s.get(&format!("{}/{sid}", media_path(&s))), 404, 20404);
    assert_error(
        &s.get(&format!("{}/{sid}/Content", media_path(&s))),
        404,
        20404,
    );
    assert_eq!(
        s.get(&format!("/v1/Services/{other}/Media/{sid}")).status,
        200
    );
    assert_error(&s.get(&format!("{}/MEnot", media_path(&s))), 400, 20001);
    assert_error(
        &s.post_bytes(
            "/v1/Services/IS00000000000000000000000000000000/Media",
            "text/plain",
            b"x",
        ),
        404,
        20404,
    );
    // Unauthenticated uploads reach nothing.
    let r = s.get_as(&format!("/v1/Services/{other}/Media/{sid}"), "Basic eDp5");
    assert_error(&r, 401, 20003);
}

#[test]
fn damaged_bytes_are_a_500_never_served() {
    let s = TestServer::start();
    let r = s.post_bytes(&media_path(&s), "text/plain", b"original");
    let sid = r.body["sid"].as_str().unwrap().to_owned();
    let blob = s
        .data_dir()
        .join(MEDIA_DIR_NAME)
        .join("blobs")
        .join(blake3::hash(b"original").to_hex().as_str());
    std::fs::write(&blob, b"originaL").unwrap();
    let r = s.get(&format!("{}/{sid}/Content", media_path(&s)));
    assert_error(&r, 500, 20500);
    assert_ne!(r.body, Value::String("originaL".into()));
}
