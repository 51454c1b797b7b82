//! Real clients against the real server: skopeo and umoci images in and out, a multi-arch
//! index per platform, an upload that survives a server restart, oras-py referrers, and
//! containerd's ctr pushing and pulling with credentials (through `POST /token`).

use std::path::Path;
use std::process::Command;

use crate::common::layout::{copy_all, layout_manifest_digest, skopeo, write_two_platform_index};
use crate::common::{Server, client, digest, have, require, run, temp_path};
use serde_json::Value;

#[test]
fn skopeo_copies_a_umoci_image_in_and_out_unchanged() {
    require("skopeo");
    require("umoci");
    let server = Server::start();
    let (_keep, dir) = temp_path();
    let layout = dir.join("src");
    let layout_arg = layout.to_str().unwrap();
    run(Command::new("umoci").args(["init", "--layout", layout_arg]));
    run(Command::new("umoci").args(["new", "--image", &format!("{layout_arg}:v1")]));
    for (i, size) in [(1, 10_000usize), (2, 300_000), (3, 2_000_000)] {
        let file = dir.join(format!("file{i}"));
        std::fs::write(
            &file,
            (0..size).map(|b| (b * 31 % 251) as u8).collect::<Vec<u8>>(),
        )
        .unwrap();
        run(Command::new("umoci")
            .args(["insert", "--image", &format!("{layout_arg}:v1")])
            .arg(&file)
            .arg(format!("/file{i}")));
    }
    let pushed = layout_manifest_digest(&layout, "v1");

    let remote = format!("docker://{}/acme/tools/umoci-image:v1", server.host);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{layout_arg}:v1"),
        &remote,
    ]);
    let inspected: Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &remote])).unwrap();
    assert_eq!(
        inspected["Digest"], pushed,
        "registry serves the manifest under the pushed digest"
    );
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 3);

    let out = dir.join("out");
    let out_arg = format!("oci:{}:v1", out.to_str().unwrap());
    skopeo(&["copy", "--src-tls-verify=false", &remote, &out_arg]);
    assert_eq!(
        layout_manifest_digest(&out, "v1"),
        pushed,
        "pulled manifest is byte-identical"
    );
    for entry in std::fs::read_dir(out.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(
            digest(&std::fs::read(&path).unwrap()),
            format!("sha256:{name}")
        );
        assert!(
            layout.join("blobs/sha256").join(&name).exists(),
            "blob {name} came from the source"
        );
    }
}

#[test]
fn multi_arch_index_is_pushed_and_pulled_per_platform() {
    require("skopeo");
    let server = Server::start();
    let (_keep, dir) = temp_path();
    let layout = dir.join("multi");
    write_two_platform_index(&layout);

    let remote = format!("docker://{}/acme/multi:v1", server.host);
    copy_all(&format!("oci:{}:v1", layout.display()), &remote);
    // skopeo compresses the uncompressed layers on the way, so it rewrites the children and
    // the index; what the registry holds is what skopeo pushed, read back here.
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &remote]);
    let stored: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        stored["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let stored_children = stored["manifests"].as_array().unwrap();
    assert_eq!(stored_children.len(), 2);

    for arch in ["amd64", "arm64"] {
        let child = stored_children
            .iter()
            .find(|c| c["platform"]["architecture"] == arch)
            .unwrap_or_else(|| panic!("no {arch} in {stored}"));
        let out = dir.join(format!("out-{arch}"));
        skopeo(&[
            "--override-arch",
            arch,
            "--override-os",
            "linux",
            "copy",
            "--src-tls-verify=false",
            &remote,
            &format!("oci:{}:x", out.display()),
        ]);
        assert_eq!(
            layout_manifest_digest(&out, "x"),
            child["digest"].as_str().unwrap(),
            "{arch} manifest pulled"
        );
        let manifest: Value = serde_json::from_slice(
            &std::fs::read(
                out.join("blobs/sha256")
                    .join(&child["digest"].as_str().unwrap()[7..]),
            )
            .unwrap(),
        )
        .unwrap();
        let config_path = out
            .join("blobs/sha256")
            .join(&manifest["config"]["digest"].as_str().unwrap()[7..]);
        let config: Value = serde_json::from_slice(&std::fs::read(config_path).unwrap()).unwrap();
        assert_eq!(
            config["architecture"], arch,
            "the {arch} image's own config came back"
        );
    }
}

#[tokio::test]
async fn chunked_upload_survives_a_server_restart() {
    let mut server = Server::start();
    let http = client();
    let blob: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let (first, rest) = blob.split_at(1_000_000);
    let (second, third) = rest.split_at(1_000_000);

    let started = http
        .post(server.url("/v2/acme/resume/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let patch = |location: String, start: usize, chunk: &[u8], base: String| {
        let http = http.clone();
        let chunk = chunk.to_vec();
        async move {
            http.patch(format!("{base}{location}"))
                .header(
                    "content-range",
                    format!("{start}-{}", start + chunk.len() - 1),
                )
                .header("content-type", "application/octet-stream")
                .body(chunk)
                .send()
                .await
                .unwrap()
        }
    };
    let response = patch(location.clone(), 0, first, server.base.clone()).await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["range"], "0-999999");

    // Killed without warning; a new process must resume from the persisted session.
    server.restart();
    let status = http.get(server.url(&location)).send().await.unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(
        status.headers()["range"],
        "0-999999",
        "offset survived the restart"
    );

    // A second interruption in the middle of a chunk: half a chunk is sent, then the server dies.
    {
        use tokio::io::AsyncWriteExt;
        let mut tcp = tokio::net::TcpStream::connect(&server.host).await.unwrap();
        let head = format!(
            "PATCH {location} HTTP/1.1\r\nHost: {}\r\nContent-Range: 1000000-1999999\r\nContent-Length: 1000000\r\n\r\n",
            server.host
        );
        tcp.write_all(crate::common::with_auth(&head).as_bytes())
            .await
            .unwrap();
        tcp.write_all(&second[..400_000]).await.unwrap();
        tcp.flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        server.restart();
    }
    let status = http.get(server.url(&location)).send().await.unwrap();
    assert_eq!(
        status.headers()["range"],
        "0-999999",
        "the broken chunk was not counted"
    );

    let response = patch(location.clone(), 1_000_000, second, server.base.clone()).await;
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
    let d = digest(&blob);
    let done = http
        .put(server.url(&format!("{location}?digest={d}")))
        .header("content-type", "application/octet-stream")
        .body(third.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 201, "{:?}", done.text().await);
    let pulled = http
        .get(server.url(&format!("/v2/acme/resume/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.bytes().await.unwrap().as_ref(), blob.as_slice());
}

#[tokio::test(flavor = "multi_thread")]
async fn oras_pushes_referrers_listed_and_filtered_by_artifact_type() {
    crate::common::require_oras_py();
    let server = Server::start();
    let (subject, subject_bytes) =
        crate::common::push_image(&server, "acme/app", "v1", b"the image").await;
    let (_keep, dir) = temp_path();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/oras_push_referrer.py"
    );
    for (tag, artifact_type) in [
        ("sbom", "application/spdx+json"),
        ("sig", "application/vnd.dev.cosign.simplesigning.v1+json"),
    ] {
        let printed = run(crate::common::python_in(&dir)
            .env("ORAS_USER", crate::common::ADMIN)
            .env("ORAS_PASSWORD", &server.admin_token)
            .args([
                script,
                &server.host,
                "acme/app",
                tag,
                artifact_type,
                "application/vnd.oci.image.manifest.v1+json",
                &subject,
                &subject_bytes.len().to_string(),
            ]));
        assert_eq!(
            printed.trim(),
            format!("201 {subject}"),
            "manifest PUT answers OCI-Subject"
        );
    }

    assert!(
        dir.join(".docker/config.json").exists(),
        "oras-py's login saves its credentials in the scratch home, not the tester's"
    );

    let http = client();
    let all: Value = http
        .get(server.url(&format!("/v2/acme/app/referrers/{subject}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut types: Vec<&str> = all["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "application/spdx+json",
            "application/vnd.dev.cosign.simplesigning.v1+json"
        ]
    );

    let filtered = http
        .get(server.url(&format!(
            "/v2/acme/app/referrers/{subject}?artifactType=application%2Fspdx%2Bjson"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(filtered.headers()["oci-filters-applied"], "artifactType");
    let filtered: Value = filtered.json().await.unwrap();
    let manifests = filtered["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0]["artifactType"], "application/spdx+json");
    let sbom = http
        .get(server.url(&format!(
            "/v2/acme/app/manifests/{}",
            manifests[0]["digest"].as_str().unwrap()
        )))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    let sbom: Value = sbom.json().await.unwrap();
    assert_eq!(sbom["subject"]["digest"], subject.as_str());
}

#[test]
fn skopeo_logs_in_with_a_classic_token_copies_as_that_user_and_pulls_a_public_package_anonymously()
{
    require("skopeo");
    require("umoci");
    let server = Server::start();
    let token = server.admin(&["create-user", "bob", "--token-scopes", "write:packages"]);
    server.admin(&["add-member", "acme", "bob"]);
    let (_keep, dir) = temp_path();
    let auth_file = dir.join("bob-auth.json");
    let login = |password: &str| {
        let mut child = Command::new("skopeo")
            .env("REGISTRY_AUTH_FILE", &auth_file)
            .args([
                "login",
                "--tls-verify=false",
                "-u",
                "bob",
                "--password-stdin",
            ])
            .arg(&server.host)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start skopeo login");
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        child.wait_with_output().expect("skopeo login")
    };
    // A password is refused (skopeo prints its own "invalid username/password"; the
    // server's message saying a token is needed is asserted over HTTP in auth.rs).
    let refused = login("bobs-password");
    assert!(!refused.status.success(), "a password must not log in");
    let accepted = login(&token);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );

    let layout = dir.join("src");
    let layout_arg = layout.to_str().unwrap();
    run(Command::new("umoci").args(["init", "--layout", layout_arg]));
    run(Command::new("umoci").args(["new", "--image", &format!("{layout_arg}:v1")]));
    let as_bob = |args: &[&str]| {
        run(Command::new("skopeo")
            .env("REGISTRY_AUTH_FILE", &auth_file)
            .args(["--insecure-policy"])
            .args(args))
    };
    let remote = format!("docker://{}/acme/bob-app:v1", server.host);
    as_bob(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{layout_arg}:v1"),
        &remote,
    ]);
    let inspected: Value =
        serde_json::from_str(&as_bob(&["inspect", "--tls-verify=false", &remote])).unwrap();
    assert_eq!(inspected["Digest"], layout_manifest_digest(&layout, "v1"));
    // Bob published it, so he administers it; the admin's packages stay invisible to him.
    let other = format!("docker://{}/acme/private:v1", server.host);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{layout_arg}:v1"),
        &other,
    ]);
    let denied = Command::new("skopeo")
        .env("REGISTRY_AUTH_FILE", &auth_file)
        .args(["inspect", "--tls-verify=false", &other])
        .output()
        .unwrap();
    assert!(!denied.status.success(), "bob must not see acme/private");

    // Bob makes his package public; then anyone pulls it without logging in.
    let made_public = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let made_public = crate::common::client_with_token(&token)
            .patch(server.url("/api/v3/orgs/acme/packages/container/bob-app"))
            .body(r#"{"visibility":"public"}"#)
            .send()
            .await
            .expect("PATCH visibility");
        let path = "/orgs/acme/packages/container/bob-app";
        crate::common::schema::judged("PATCH", path, made_public)
            .await
            .status()
    });
    assert_eq!(made_public, 204);
    let pulled = dir.join("anonymous");
    run(Command::new("skopeo")
        .env("REGISTRY_AUTH_FILE", dir.join("nobody.json"))
        .args([
            "--insecure-policy",
            "copy",
            "--src-tls-verify=false",
            "--src-no-creds",
            &remote,
            &format!("oci:{}:v1", pulled.to_str().unwrap()),
        ]));
    assert_eq!(
        layout_manifest_digest(&pulled, "v1"),
        layout_manifest_digest(&layout, "v1")
    );
}

/// A containerd of the test's own: root, state, socket and config under a temporary
/// directory, killed when dropped.
struct Containerd {
    child: std::process::Child,
    socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Containerd {
    /// Starts one, or says why it cannot (printed, and the test skips): containerd and ctr
    /// must be installed (the README's test command installs them) and it must run as root.
    fn start() -> Option<Containerd> {
        for tool in ["containerd", "ctr"] {
            if !have(tool) {
                eprintln!(
                    "SKIPPED: `{tool}` is not installed; the README's test command installs it (apt-get install -y containerd)"
                );
                return None;
            }
        }
        let uid = run(Command::new("id").arg("-u"));
        if uid.trim() != "0" {
            eprintln!("SKIPPED: containerd needs root to run; run the tests as root");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("containerd.sock");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = {:?}\nstate = {:?}\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = {:?}\n",
                dir.path().join("root"),
                dir.path().join("state"),
                socket
            ),
        )
        .unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start containerd");
        let containerd = Containerd {
            child,
            socket,
            _dir: dir,
        };
        for _ in 0..200 {
            let ready = Command::new("ctr")
                .arg("--address")
                .arg(&containerd.socket)
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success());
            if ready {
                return Some(containerd);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("containerd did not start within 10 s");
    }

    /// Runs `ctr --address <socket> <args>`; its stdout.
    fn ctr(&self, args: &[&str]) -> String {
        run(Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(args))
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-file umoci image at `<dir>/<name>:v1`; the layout's path.
fn umoci_image(dir: &Path, name: &str, content: &[u8]) -> std::path::PathBuf {
    let layout = dir.join(name);
    let image = format!("{}:v1", layout.display());
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    let file = dir.join(format!("{name}-file"));
    std::fs::write(&file, content).unwrap();
    run(Command::new("umoci")
        .args(["insert", "--image", &image])
        .arg(&file)
        .arg("/file"));
    layout
}

#[test]
fn containerd_pushes_and_pulls_with_credentials_through_the_oauth2_token_endpoint() {
    require("skopeo");
    require("umoci");
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let server = Server::start();
    let user = format!("{}:{}", crate::common::ADMIN, server.admin_token);
    let (_keep, dir) = temp_path();

    // Push: an image imported into containerd, pushed with credentials (containerd asks
    // POST /token first when it has them).
    let pushed = umoci_image(&dir, "pushed", &vec![7u8; 200_000]);
    let archive = dir.join("pushed.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&pushed)
        .arg("-cf")
        .arg(&archive)
        .arg("."));
    let name = format!("{}/acme/ctr-app", server.host);
    containerd.ctr(&[
        "images",
        "import",
        "--base-name",
        &name,
        archive.to_str().unwrap(),
    ]);
    let reference = format!("{name}:v1");
    containerd.ctr(&[
        "images",
        "push",
        "--plain-http",
        "--user",
        &user,
        &reference,
    ]);
    let inspected: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]))
    .unwrap();
    assert_eq!(
        inspected["Digest"],
        layout_manifest_digest(&pushed, "v1"),
        "the registry serves what containerd pushed"
    );

    // Pull: an image containerd has none of, pushed by skopeo.
    let other = umoci_image(&dir, "other", &vec![9u8; 100_000]);
    let other_ref = format!("{}/acme/ctr-pulled:v1", server.host);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", other.display()),
        &format!("docker://{other_ref}"),
    ]);
    containerd.ctr(&[
        "images",
        "pull",
        "--plain-http",
        "--user",
        &user,
        &other_ref,
    ]);
    let listed = containerd.ctr(&["images", "ls"]);
    let line = listed
        .lines()
        .find(|l| l.starts_with(&other_ref))
        .unwrap_or_else(|| panic!("{other_ref} not in\n{listed}"));
    assert!(
        line.contains(&layout_manifest_digest(&other, "v1")),
        "pulled the manifest skopeo pushed: {line}"
    );
}
